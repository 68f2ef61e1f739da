//! `dump`: a topic's entries from a position on, streamed page by page.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Outcome, existing_topic};
use crate::{
    cli::DumpArgs,
    open::{Mode, Target},
    output::{escape_text, hex},
};

/// Entries fetched per `read_from` call: a topic can be far larger than memory, so it is
/// printed a page at a time.
const PAGE_ENTRIES: u64 = 256;

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
    let wal = target.open(Mode::ReadOnly)?;
    existing_topic(&wal, target, &args.topic)?;
    let mut next = args.from;
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
