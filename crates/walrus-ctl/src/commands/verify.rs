//! `verify`: every problem a read-only open finds, and exit status 1 if there is any.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use walrus_rust::{Finding, FindingKind, TopicInfo};

use super::{Outcome, info::file_states};
use crate::{
    open::{Mode, Target},
    output::{count, json},
};

/// `verify --json`. Field names are an interface: only add fields (see the command's help).
#[derive(Debug, Serialize)]
struct VerifyJson {
    dir: String,
    clean: bool,
    findings: Vec<Problem>,
}

/// One problem, from recovery or from the cursor check.
#[derive(Debug, Serialize)]
pub(super) struct Problem {
    kind: &'static str,
    corruption: bool,
    file: Option<String>,
    offset: Option<u64>,
    topic: Option<String>,
    message: String,
}

impl Problem {
    pub(super) fn from_finding(finding: &Finding) -> Self {
        let (kind, topic) = match &finding.kind {
            FindingKind::CorruptEntry { .. } => ("corrupt_entry", None),
            FindingKind::DamagedBlockHeader => ("damaged_block_header", None),
            FindingKind::TornTail { .. } => ("torn_tail", None),
            FindingKind::DamagedTail { .. } => ("damaged_tail", None),
            FindingKind::UnfinishedFile => ("unfinished_file", None),
            FindingKind::MissingEntries { topic, .. } => ("missing_entries", Some(topic.clone())),
            FindingKind::PartialBatch { .. } => ("partial_batch", None),
            FindingKind::DroppedBlock { topic } => ("dropped_block", Some(topic.clone())),
            FindingKind::DuplicateBlock { topic, .. } => ("duplicate_block", Some(topic.clone())),
            // The library may learn new kinds; they are still reported, by their message.
            _ => ("other", None),
        };
        Self {
            kind,
            corruption: finding.is_corruption(),
            file: Some(finding.file.display().to_string()),
            offset: Some(finding.offset),
            topic,
            message: finding.to_string(),
        }
    }

    /// A persisted cursor past the end of the data: entries were lost after it was saved
    /// (docs/FORMAT.md, cursor index). Readers resume at the end; the application may want
    /// to know that it skipped nothing it had not read.
    fn from_cursor(topic: &TopicInfo) -> Option<Self> {
        let persisted = topic.persisted_cursor?;
        (persisted > topic.next_seq).then(|| Self {
            kind: "cursor_past_end",
            corruption: false,
            file: None,
            offset: None,
            topic: Some(topic.name.clone()),
            message: format!(
                "cursor of topic {:?} was persisted at position {persisted}, past the end of \
                 its data (next position {}): entries were lost after it was saved",
                topic.name, topic.next_seq
            ),
        })
    }

    /// The class shown before the message: what the user can do about it.
    pub(super) fn label(&self) -> &'static str {
        match self.kind {
            _ if self.corruption => "corruption",
            "torn_tail" | "partial_batch" | "dropped_block" | "unfinished_file" => "repairable",
            "cursor_past_end" => "cursor",
            _ => "other",
        }
    }
}

pub(super) fn run(target: &Target, as_json: bool, out: &mut dyn Write) -> Result<Outcome> {
    let wal = target.open(Mode::ReadOnly)?;
    let topics = wal.topics();
    let mut problems: Vec<Problem> = wal
        .recovery_findings()
        .iter()
        .map(Problem::from_finding)
        .collect();
    problems.extend(topics.iter().filter_map(Problem::from_cursor));
    let outcome = if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    };
    if as_json {
        json(
            out,
            &VerifyJson {
                dir: wal.dir().display().to_string(),
                clean: problems.is_empty(),
                findings: problems,
            },
        )?;
        return Ok(outcome);
    }
    for problem in &problems {
        writeln!(out, "{}: {}", problem.label(), problem.message)?;
    }
    let files = file_states(&wal, target)?;
    let entries: u64 = topics.iter().map(|t| t.entries).sum();
    let checked = format!(
        "{}, {}, {}",
        count(files.len() as u64, "segment file", "segment files"),
        count(topics.len() as u64, "topic", "topics"),
        count(entries, "entry", "entries")
    );
    if problems.is_empty() {
        writeln!(out, "clean: {checked}")?;
        return Ok(outcome);
    }
    let kinds = [
        ("corruption", "corruption"),
        (
            "repairable",
            "repairable (walrus-ctl repair --truncate-torn-tail)",
        ),
        (
            "cursor",
            "cursor past the end of its data (walrus-ctl cursor set)",
        ),
        ("other", "other"),
    ];
    let summary: Vec<String> = kinds
        .iter()
        .filter_map(|(label, text)| {
            let n = problems.iter().filter(|p| p.label() == *label).count();
            (n > 0).then(|| format!("{n} {text}"))
        })
        .collect();
    writeln!(
        out,
        "{} in {checked}: {}",
        count(problems.len() as u64, "problem", "problems"),
        summary.join(", ")
    )?;
    Ok(outcome)
}
