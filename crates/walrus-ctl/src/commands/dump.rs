//! `dump`: a topic's entries, or those of a range of positions, streamed page by page.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use walrus_rust::Walrus;

use super::{Outcome, existing_topic};
use crate::{
    cli::DumpArgs,
    open::{Mode, Target},
    output::{escape_text, hex},
};

/// Entries fetched per `read_from` call: a topic can be far larger than memory, so it is
/// printed a page at a time.
const PAGE_ENTRIES: u64 = 256;

/// Payload bytes fetched per `TopicLog::read_range` call, for the same reason (a call returns
/// one entry even if it is larger).
pub(super) const RANGE_CHUNK_BYTES: usize = 4 << 20;

/// One line of `dump --json`. Field names are an interface: only add fields.
#[derive(Debug, Serialize)]
struct EntryJson<'a> {
    seq: u64,
    len: usize,
    hex: String,
    utf8: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Auto,
    Hex,
    Utf8,
    Json,
}

pub(super) fn run(target: &Target, args: &DumpArgs, out: &mut dyn Write) -> Result<Outcome> {
    let format = match (args.hex, args.utf8, args.json) {
        (true, _, _) => Format::Hex,
        (_, true, _) => Format::Utf8,
        (_, _, true) => Format::Json,
        _ => Format::Auto,
    };
    if let (Some(from), Some(to)) = (args.from, args.to)
        && to < from
    {
        bail!("--to {to} is before --from {from}: the range is empty (both ends are included)");
    }
    let wal = target.open(Mode::ReadOnly)?;
    existing_topic(&wal, target, &args.topic)?;
    if args.from.is_some() || args.to.is_some() {
        dump_range(&wal, args, format, out)?;
        return Ok(Outcome::Clean);
    }
    let mut next = 0;
    let mut left = args.limit.unwrap_or(u64::MAX);
    while left > 0 {
        // `min` keeps the page within `usize` on every platform.
        let page = usize::try_from(left.min(PAGE_ENTRIES)).unwrap_or(1);
        let entries = wal
            .read_from(&args.topic, next, page)
            .with_context(|| format!("reading topic {:?} from position {next}", args.topic))?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            write_entry(out, format, entry.seq, &entry.data)?;
            next = next.max(entry.seq + 1);
            left -= 1;
        }
    }
    Ok(Outcome::Clean)
}

/// The entries of positions `--from` to `--to` (both included), read by position through
/// the topic's log: no scan from the start of the topic, no cursor moved.
fn dump_range(wal: &Walrus, args: &DumpArgs, format: Format, out: &mut dyn Write) -> Result<()> {
    let topic = &args.topic;
    let log = wal
        .topic_log(topic)
        .with_context(|| format!("cannot open topic {topic:?} as a log"))?;
    let mut next = args.from.unwrap_or(0);
    let to = args.to.unwrap_or(u64::MAX);
    if let (Some(from), Some(first)) = (args.from, log.first())
        && from < first
    {
        // Plain `dump` shows entries on disk below the floor: say why these are missing.
        eprintln!(
            "walrus-ctl: note: positions before {first} of topic {topic:?} are not readable \
             (purged); printing from {first}"
        );
    }
    let mut left = args.limit.unwrap_or(u64::MAX);
    while left > 0 && next <= to {
        // Positions are contiguous: `left` entries from `next` end at `next + left - 1`, so
        // a limit never makes the read fetch more than it prints.
        let end = to.min(next.saturating_add(left - 1));
        let entries = log
            .read_range(next..=end, RANGE_CHUNK_BYTES)
            .with_context(|| format!("reading topic {topic:?} positions {next} to {end}"))?;
        let Some(&(last, _)) = entries.last() else {
            break;
        };
        for (seq, data) in &entries {
            write_entry(out, format, *seq, data)?;
        }
        left = left.saturating_sub(entries.len() as u64);
        match last.checked_add(1) {
            Some(after) => next = after,
            None => break,
        }
    }
    Ok(())
}

fn write_entry(out: &mut dyn Write, format: Format, seq: u64, data: &[u8]) -> Result<()> {
    let len = data.len();
    match format {
        Format::Json => {
            let line = EntryJson {
                seq,
                len,
                hex: hex(data),
                utf8: std::str::from_utf8(data).ok(),
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
        Format::Hex => writeln!(out, "{seq}\t{len}\t{}", hex(data))?,
        Format::Utf8 => writeln!(
            out,
            "{seq}\t{len}\t{}",
            escape_text(&String::from_utf8_lossy(data))
        )?,
        Format::Auto => match std::str::from_utf8(data) {
            Ok(text) => writeln!(out, "{seq}\t{len}\t{}", escape_text(text))?,
            // The prefix tells binary from text that happens to look like hex.
            Err(_) => writeln!(out, "{seq}\t{len}\t0x{}", hex(data))?,
        },
    }
    Ok(())
}
