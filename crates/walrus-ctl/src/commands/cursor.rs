//! `cursor get | set | reset`: where a topic's reader resumes.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;
use walrus_rust::CursorTarget;

use super::{Outcome, existing_topic, note_cuts};
use crate::{
    open::{Mode, Target},
    output::{json, or_dash},
};

/// `cursor get --json`. Field names are an interface: only add fields.
#[derive(Debug, Serialize)]
struct CursorJson {
    topic: String,
    cursor: u64,
    persisted_cursor: Option<u64>,
    first_seq: u64,
    next_seq: u64,
    lag: u64,
}

pub(super) fn get(
    target: &Target,
    topic: &str,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let wal = target.open(Mode::ReadOnly)?;
    let info = existing_topic(&wal, target, topic)?;
    let report = CursorJson {
        topic: info.name,
        cursor: info.cursor,
        persisted_cursor: info.persisted_cursor,
        first_seq: info.first_seq,
        next_seq: info.next_seq,
        lag: info.lag,
    };
    if as_json {
        json(out, &report)?;
        return Ok(Outcome::Clean);
    }
    let lines = [
        ("topic", report.topic.clone()),
        ("cursor", report.cursor.to_string()),
        ("persisted", or_dash(report.persisted_cursor)),
        ("first", report.first_seq.to_string()),
        ("next", report.next_seq.to_string()),
        ("lag", report.lag.to_string()),
    ];
    for (key, value) in lines {
        writeln!(out, "{key:<10} {value}")?;
    }
    Ok(Outcome::Clean)
}

pub(super) fn set(
    target: &Target,
    topic: &str,
    to: CursorTarget,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let wal = target.open(Mode::Writable)?;
    note_cuts(&wal);
    let before = existing_topic(&wal, target, topic)?;
    let now = wal
        .set_cursor(topic, to)
        .with_context(|| format!("cannot move the cursor of topic {topic:?}"))?;
    write!(
        out,
        "cursor of topic {topic:?} moved from {} to {now}",
        before.cursor
    )?;
    // The library clamps a position to the entries on disk: say so rather than pretend.
    match to {
        CursorTarget::Seq(asked) if asked > now => write!(
            out,
            " (position {asked} is past the end: the next append gets {now})"
        )?,
        CursorTarget::Seq(asked) if asked < now => write!(
            out,
            " (position {asked} is no longer on disk: the oldest entry is {now})"
        )?,
        _ => {}
    }
    writeln!(out)?;
    Ok(Outcome::Clean)
}
