//! `purge`: delete every segment file whose blocks every cursor has passed.

use std::io::Write;

use anyhow::{Context, Result};

use super::{Outcome, note_cuts};
use crate::{
    open::{Mode, Target},
    output::{count, human_bytes},
};

pub(super) fn run(target: &Target, out: &mut dyn Write) -> Result<Outcome> {
    // A normal open already deletes the files that were fully consumed before it, and
    // `purge()` counts only the ones it deletes itself: compare directory listings to report
    // both.
    let before = target.segment_files()?;
    let wal = target.open(Mode::Writable)?;
    note_cuts(&wal);
    wal.purge().context("purge failed")?;
    // Closing persists cursors, which may let more files go: list the directory after it.
    drop(wal);
    let after = target.segment_files()?;
    let deleted: Vec<_> = before
        .iter()
        .filter(|f| !after.iter().any(|a| a.name == f.name))
        .collect();
    for file in &deleted {
        writeln!(out, "deleted: {} ({})", file.name, human_bytes(file.bytes))?;
    }
    let freed: u64 = deleted.iter().map(|f| f.bytes).sum();
    writeln!(
        out,
        "purged {}, {} freed ({freed} bytes); {} left",
        count(deleted.len() as u64, "segment file", "segment files"),
        human_bytes(freed),
        count(after.len() as u64, "segment file", "segment files")
    )?;
    Ok(Outcome::Clean)
}
