//! `truncate`: remove every entry of a topic after a position, through
//! `TopicLog::truncate_after` (durable when it returns).

use std::{io::Write, ops::RangeInclusive};

use anyhow::{Context, Result, bail};
use walrus_rust::TopicLog;

use super::{Outcome, dump::RANGE_CHUNK_BYTES, existing_topic, note_cuts};
use crate::{
    cli::TruncateArgs,
    open::{Mode, Target},
    output::{count, human_bytes},
};

pub(super) fn run(target: &Target, args: &TruncateArgs, out: &mut dyn Write) -> Result<Outcome> {
    let (topic, after) = (&args.topic, args.after);
    let wal = target.open(if args.dry_run {
        Mode::ReadOnly
    } else {
        Mode::Writable
    })?;
    if !args.dry_run {
        note_cuts(&wal);
    }
    let info = existing_topic(&wal, target, topic)?;
    // The purge floor is the topic's persisted cursor (`TopicLog`'s docs). The library
    // checks it too, but only when it truncates: check here so that a dry run fails alike,
    // and with the flag the user gave rather than the library's first removed position.
    let floor = info.persisted_cursor.unwrap_or(0);
    if after.saturating_add(1) < floor {
        bail!(
            "cannot truncate topic {topic:?} after position {after}: positions before {floor} \
             are purged already (the purge floor is {floor}), so --after must be at least {}",
            floor - 1
        );
    }
    let log = wal
        .topic_log(topic)
        .with_context(|| format!("cannot open topic {topic:?} as a log"))?;
    let Some(last) = log.last().filter(|&last| last > after) else {
        match log.last() {
            Some(last) => writeln!(
                out,
                "nothing to remove: the last position of topic {topic:?} is {last}"
            )?,
            None => writeln!(out, "nothing to remove: topic {topic:?} has no entries")?,
        }
        if args.dry_run {
            writeln!(out, "dry run: nothing was changed")?;
        }
        return Ok(Outcome::Clean);
    };
    // `after < last`, so this does not overflow; positions are contiguous above the floor.
    let removed = after + 1..=last;
    let what = format!(
        "{} of topic {topic:?}, positions {} to {last}, {}",
        count(last - after, "entry", "entries"),
        removed.start(),
        payload_text(&log, removed.clone())
    );
    if args.dry_run {
        writeln!(out, "would remove {what}")?;
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(Outcome::Clean);
    }
    log.truncate_after(after)
        .with_context(|| format!("cannot truncate topic {topic:?} after position {after}"))?;
    writeln!(out, "removed {what}")?;
    // The cursor, fresh from this open, is the persisted one: the floor, at or before the
    // cut, so the truncation never moves it.
    writeln!(
        out,
        "topic {topic:?} now ends at position {after}; the next append gets {}",
        log.next_position()
    )?;
    Ok(Outcome::Clean)
}

/// `1.5 KiB of payload (1536 bytes)` for the entries of `range`, read by position in chunks.
/// A damaged entry makes the count fail: the truncation may be meant to remove it, so that
/// is a note on stderr, not an error.
fn payload_text(log: &TopicLog, range: RangeInclusive<u64>) -> String {
    match payload_bytes(log, range) {
        Ok(bytes) => format!("{} of payload ({bytes} bytes)", human_bytes(bytes)),
        Err(err) => {
            eprintln!("walrus-ctl: note: cannot count the payload bytes: {err:#}");
            "payload bytes unknown".to_owned()
        }
    }
}

fn payload_bytes(log: &TopicLog, range: RangeInclusive<u64>) -> Result<u64> {
    let (mut next, end) = range.into_inner();
    let mut bytes = 0u64;
    while next <= end {
        let entries = log
            .read_range(next..=end, RANGE_CHUNK_BYTES)
            .with_context(|| format!("reading positions {next} to {end}"))?;
        let Some(&(last, _)) = entries.last() else {
            break;
        };
        bytes += entries
            .iter()
            .map(|(_, data)| data.len() as u64)
            .sum::<u64>();
        match last.checked_add(1) {
            Some(after) => next = after,
            None => break,
        }
    }
    Ok(bytes)
}
