//! `info` (alias `stats`): what the directory holds and how much of it could be reclaimed.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::{
    Outcome,
    migrate::{legacy_dirs, pending},
};
use crate::{
    open::{DiskFile, Mode, Target},
    output::{count, human_bytes, json, or_dash, table},
};

/// `info --json`. Field names are an interface: only add fields (see the command's help).
#[derive(Debug, Serialize)]
struct InfoJson {
    dir: String,
    format_version: u8,
    backend: &'static str,
    file_count: usize,
    bytes: u64,
    live_bytes: u64,
    reclaimable_bytes: u64,
    topic_count: usize,
    entries: u64,
    corrupt_entries: u64,
    findings: usize,
    recovery_time_us: u64,
    files: Vec<FileJson>,
    v020_pending: bool,
    v020_imported: bool,
}

/// The `0.2.0 data` line: files waiting for `migrate`, or where an import put them.
fn v020_state(
    target: &Target,
    pending: bool,
    legacy: Option<&std::path::PathBuf>,
) -> Result<Option<String>> {
    if pending {
        let files = walrus_rust::upgrade::legacy_files(target.instance())?.len() as u64;
        let state = if files == 0 {
            "an import of walrus-rust 0.2.0 data was cut short (walrus-ctl migrate finishes it)"
                .to_owned()
        } else {
            format!(
                "{} of walrus-rust 0.2.0 not imported yet (walrus-ctl migrate imports them)",
                count(files, "file", "files")
            )
        };
        return Ok(Some(state));
    }
    Ok(legacy.map(|dir| format!("imported; the 0.2.0 files are in {}", dir.display())))
}

#[derive(Debug, Serialize)]
struct FileJson {
    name: String,
    seq: u64,
    bytes: u64,
    live: bool,
    extents: Option<u32>,
}

/// One segment file on disk, with what the library knows of it.
#[derive(Debug)]
pub(super) struct FileState {
    pub(super) disk: DiskFile,
    /// The library's figures, if any live block refers to the file. A read-only open lets go
    /// of a file once all its blocks are consumed, so such files have none.
    pub(super) info: Option<walrus_rust::FileInfo>,
}

impl FileState {
    /// Whether some block of the file still holds data a cursor has not passed.
    pub(super) fn live(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|f| f.writing > 0 || f.consumed < f.extents)
    }

    fn seq(&self) -> u64 {
        let stem = self.disk.name.trim_end_matches(".wal");
        self.info
            .as_ref()
            .map_or_else(|| stem.parse().unwrap_or(0), |f| f.seq)
    }
}

/// Every segment file on disk, joined with `wal.files()` by name.
pub(super) fn file_states(wal: &walrus_rust::Walrus, target: &Target) -> Result<Vec<FileState>> {
    let known = wal.files();
    Ok(target
        .segment_files()?
        .into_iter()
        .map(|disk| {
            let info = known.iter().find(|f| f.name == disk.name).cloned();
            FileState { disk, info }
        })
        .collect())
}

pub(super) fn run(target: &Target, as_json: bool, out: &mut dyn Write) -> Result<Outcome> {
    let wal = target.open(Mode::ReadOnly)?;
    let stats = wal.stats();
    let topics = wal.topics();
    let findings = wal.recovery_findings();
    let files = file_states(&wal, target)?;
    let bytes: u64 = files.iter().map(|f| f.disk.bytes).sum();
    let live: Vec<&FileState> = files.iter().filter(|f| f.live()).collect();
    let live_bytes: u64 = live.iter().map(|f| f.disk.bytes).sum();
    let entries: u64 = topics.iter().map(|t| t.entries).sum();
    // A read-only open does not import walrus-rust 0.2.0 files: say whether any wait.
    let v020_pending = pending(target.instance())?;
    let legacy = legacy_dirs(target.instance())?;
    let report = InfoJson {
        dir: wal.dir().display().to_string(),
        format_version: walrus_rust::FORMAT_VERSION,
        backend: stats.backend,
        file_count: files.len(),
        bytes,
        live_bytes,
        reclaimable_bytes: bytes - live_bytes,
        topic_count: topics.len(),
        entries,
        corrupt_entries: stats.corrupt_entries,
        findings: findings.len(),
        recovery_time_us: u64::try_from(stats.recovery_time.as_micros()).unwrap_or(u64::MAX),
        files: files
            .iter()
            .map(|f| FileJson {
                name: f.disk.name.clone(),
                seq: f.seq(),
                bytes: f.disk.bytes,
                live: f.live(),
                extents: f.info.as_ref().map(|i| i.extents),
            })
            .collect(),
        v020_pending,
        v020_imported: !legacy.is_empty(),
    };
    if as_json {
        json(out, &report)?;
        return Ok(Outcome::Clean);
    }
    let reclaimable = files.len() - live.len();
    let findings_note = if findings.is_empty() {
        String::new()
    } else {
        " (details: walrus-ctl verify)".to_owned()
    };
    let mut lines = vec![
        ("directory", report.dir.clone()),
        ("format version", report.format_version.to_string()),
        (
            "backend",
            format!(
                "{} (walrus-ctl's; the files are the same with every backend)",
                report.backend
            ),
        ),
        (
            "segment files",
            format!("{} ({})", files.len(), human_bytes(bytes)),
        ),
        (
            "live",
            format!(
                "{} ({})",
                count(live.len() as u64, "file", "files"),
                human_bytes(live_bytes)
            ),
        ),
        (
            "reclaimable",
            format!(
                "{} ({})",
                count(reclaimable as u64, "file", "files"),
                human_bytes(report.reclaimable_bytes)
            ),
        ),
        ("topics", report.topic_count.to_string()),
        ("entries", entries.to_string()),
        ("corrupt entries", report.corrupt_entries.to_string()),
        ("findings", format!("{}{findings_note}", findings.len())),
        ("recovery time", format!("{:.1?}", stats.recovery_time)),
    ];
    if let Some(state) = v020_state(target, v020_pending, legacy.last())? {
        lines.push(("0.2.0 data", state));
    }
    for (key, value) in lines {
        writeln!(out, "{key:<16} {value}")?;
    }
    if !files.is_empty() {
        let mut files_table = table(&["FILE", "BYTES", "EXTENTS", "STATE"], &[1, 2]);
        for file in &report.files {
            files_table.add_row(vec![
                file.name.clone(),
                file.bytes.to_string(),
                or_dash(file.extents.map(u64::from)),
                if file.live { "live" } else { "reclaimable" }.to_owned(),
            ]);
        }
        writeln!(out, "{files_table}")?;
    }
    Ok(Outcome::Clean)
}
