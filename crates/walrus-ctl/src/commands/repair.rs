//! `repair --truncate-torn-tail [--dry-run]`: let recovery cut what it cuts, and say what.
//!
//! The library has no separate repair call: a normal open is the repair (it cuts torn tails,
//! partial batches and blocks after a hole, zeroes and syncs the cuts, and deletes fully
//! consumed files), and a read-only open reports the same findings without writing.

use std::io::Write;

use anyhow::Result;

use super::{Outcome, info::file_states, is_cut, verify::Problem};
use crate::{
    open::{Mode, Target},
    output::{count, human_bytes},
};

pub(super) fn run(target: &Target, dry_run: bool, out: &mut dyn Write) -> Result<Outcome> {
    if dry_run {
        return dry(target, out);
    }
    let before = target.segment_files()?;
    let wal = target.open(Mode::Writable)?;
    let findings = wal.recovery_findings();
    // Closing persists cursors, which may let more files go: list the directory after it.
    drop(wal);
    let after = target.segment_files()?;
    let mut cuts = 0u64;
    for finding in findings.iter().filter(|f| is_cut(f)) {
        writeln!(out, "cut: {finding}")?;
        cuts += 1;
    }
    let deleted: Vec<_> = before
        .iter()
        .filter(|f| !after.iter().any(|a| a.name == f.name))
        .collect();
    for file in &deleted {
        writeln!(
            out,
            "deleted: {} ({}, fully consumed)",
            file.name,
            human_bytes(file.bytes)
        )?;
    }
    let left = report_left(&findings, out)?;
    match (cuts, deleted.len()) {
        (0, 0) => writeln!(out, "nothing to cut")?,
        (0, files) => writeln!(
            out,
            "repaired: {} deleted",
            count(files as u64, "file", "files")
        )?,
        (cuts, 0) => writeln!(out, "repaired: {}", count(cuts, "cut", "cuts"))?,
        (cuts, files) => writeln!(
            out,
            "repaired: {}, {} deleted",
            count(cuts, "cut", "cuts"),
            count(files as u64, "file", "files")
        )?,
    }
    if left > 0 {
        writeln!(
            out,
            "{} left in place: readers skip corrupt entries; verify still reports them",
            count(left, "problem", "problems")
        )?;
    }
    Ok(Outcome::Clean)
}

fn dry(target: &Target, out: &mut dyn Write) -> Result<Outcome> {
    let wal = target.open(Mode::ReadOnly)?;
    let findings = wal.recovery_findings();
    let mut cuts = 0u64;
    for finding in findings.iter().filter(|f| is_cut(f)) {
        writeln!(out, "would cut: {finding}")?;
        cuts += 1;
    }
    let files = file_states(&wal, target)?;
    let reclaimable: Vec<_> = files.iter().filter(|f| !f.live()).collect();
    for file in &reclaimable {
        writeln!(
            out,
            "would delete: {} ({}, fully consumed)",
            file.disk.name,
            human_bytes(file.disk.bytes)
        )?;
    }
    report_left(&findings, out)?;
    if cuts == 0 && reclaimable.is_empty() {
        writeln!(out, "nothing to cut")?;
    }
    writeln!(out, "dry run: nothing was changed")?;
    Ok(Outcome::Clean)
}

/// Prints what no repair changes; returns how many there are.
fn report_left(findings: &[walrus_rust::Finding], out: &mut dyn Write) -> Result<u64> {
    let mut left = 0;
    for finding in findings.iter().filter(|f| !is_cut(f)) {
        let problem = Problem::from_finding(finding);
        writeln!(out, "left in place ({}): {finding}", problem.label())?;
        left += 1;
    }
    Ok(left)
}
