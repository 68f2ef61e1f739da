//! `topics`: one row per topic with its extent on disk and its cursor.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::Outcome;
use crate::{
    open::{Mode, Target},
    output::{json, or_dash, table},
};

/// `topics --json`. Field names are an interface: only add fields (see the command's help).
#[derive(Debug, Serialize)]
struct TopicsJson {
    topics: Vec<TopicJson>,
}

#[derive(Debug, Serialize)]
struct TopicJson {
    name: String,
    entries: u64,
    bytes: u64,
    first_seq: u64,
    last_seq: Option<u64>,
    next_seq: u64,
    cursor: u64,
    persisted_cursor: Option<u64>,
    lag: u64,
}

pub(super) fn run(target: &Target, as_json: bool, out: &mut dyn Write) -> Result<Outcome> {
    let wal = target.open(Mode::ReadOnly)?;
    let topics: Vec<TopicJson> = wal
        .topics()
        .into_iter()
        .map(|t| TopicJson {
            // An empty topic has no last entry; `next_seq - 1` would name one that is gone.
            last_seq: (t.entries > 0).then(|| t.next_seq - 1),
            name: t.name,
            entries: t.entries,
            bytes: t.bytes,
            first_seq: t.first_seq,
            next_seq: t.next_seq,
            cursor: t.cursor,
            persisted_cursor: t.persisted_cursor,
            lag: t.lag,
        })
        .collect();
    if as_json {
        json(out, &TopicsJson { topics })?;
        return Ok(Outcome::Clean);
    }
    if topics.is_empty() {
        writeln!(out, "no topics in {}", wal.dir().display())?;
        return Ok(Outcome::Clean);
    }
    let mut rows = table(
        &[
            "TOPIC",
            "ENTRIES",
            "BYTES",
            "FIRST",
            "LAST",
            "CURSOR",
            "PERSISTED",
            "LAG",
        ],
        &[1, 2, 3, 4, 5, 6, 7],
    );
    for t in &topics {
        rows.add_row(vec![
            t.name.clone(),
            t.entries.to_string(),
            t.bytes.to_string(),
            if t.entries > 0 {
                t.first_seq.to_string()
            } else {
                "-".to_owned()
            },
            or_dash(t.last_seq),
            t.cursor.to_string(),
            or_dash(t.persisted_cursor),
            t.lag.to_string(),
        ]);
    }
    writeln!(out, "{rows}")?;
    Ok(Outcome::Clean)
}
