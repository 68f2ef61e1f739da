//! `migrate [--dry-run] [--remove-legacy]`: import walrus-rust 0.2.0 data, one namespace
//! directory at a time, with a progress bar.
//!
//! The library does the import when it opens a directory (crash-safe, exactly once); this
//! command finds the directories, says beforehand what the import will take
//! (`upgrade::plan_import`), draws the progress the library reports, and tidies up after it.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use walrus_rust::{
    FindingKind,
    upgrade::{ImportPlan, ImportProgress, LEGACY_DIR_NAME, has_pending_import, plan_import},
};

use super::{Outcome, note_cuts};
use crate::{
    cli::MigrateArgs,
    open::{Target, open_importing},
    output::{count, human_bytes, json, table},
};

/// `migrate --json`. Field names are an interface: only add fields (see the command's help).
#[derive(Debug, Serialize)]
struct MigrateJson {
    namespaces: Vec<NamespaceJson>,
}

#[derive(Debug, Serialize)]
struct NamespaceJson {
    dir: String,
    interrupted: bool,
    files: Vec<String>,
    topics: Vec<TopicJson>,
    findings: Vec<String>,
    imported: bool,
    seconds: Option<f64>,
    legacy_dir: Option<String>,
    removed_legacy: bool,
}

#[derive(Debug, Serialize)]
struct TopicJson {
    topic: String,
    entries: u64,
    bytes: u64,
    cursor: String,
}

/// Text output goes to `out` as each directory is done; JSON is written once at the end.
struct Run<'a> {
    args: &'a MigrateArgs,
    /// Where the text goes, `None` with `--json`.
    text: Option<&'a mut dyn Write>,
    /// Whether to draw progress bars.
    bars: bool,
}

impl Run<'_> {
    /// Writes one line of the text report, if there is one.
    fn say(&mut self, line: impl AsRef<str>) -> Result<()> {
        if let Some(out) = self.text.as_mut() {
            writeln!(out, "{}", line.as_ref())?;
        }
        Ok(())
    }
}

pub(super) fn run(target: &Target, args: &MigrateArgs, out: &mut dyn Write) -> Result<Outcome> {
    let dirs = namespace_dirs(target)?;
    let mut reports = Vec::new();
    {
        let mut run = Run {
            args,
            text: (!args.json).then_some(&mut *out),
            bars: !args.json && std::io::stderr().is_terminal(),
        };
        for (i, dir) in dirs.iter().enumerate() {
            if i > 0 {
                run.say("")?;
            }
            reports.push(migrate(&mut run, dir)?);
        }
    }
    if args.json {
        json(
            out,
            &MigrateJson {
                namespaces: reports,
            },
        )?;
        return Ok(Outcome::Clean);
    }
    let with_data = reports.iter().filter(|r| !r.files.is_empty()).count() as u64;
    let rest = reports.len() as u64 - with_data;
    let removed = reports.iter().filter(|r| r.removed_legacy).count() as u64;
    writeln!(out)?;
    let done = if args.dry_run {
        format!(
            "dry run: nothing was changed; {} to import, {} with nothing to import",
            count(with_data, "directory", "directories"),
            count(rest, "directory", "directories")
        )
    } else {
        let mut line = format!(
            "migrated: {} imported, {} with nothing to import",
            count(with_data, "directory", "directories"),
            count(rest, "directory", "directories")
        );
        if args.remove_legacy {
            line += &format!(
                "; legacy files removed from {}",
                count(removed, "directory", "directories")
            );
        }
        line
    };
    writeln!(out, "{done}")?;
    Ok(Outcome::Clean)
}

/// The directories to migrate: with `--key`, its instance directory; without, DIR itself and
/// each immediate sub-directory holding 0.2.0 files or the legacy directory of an import
/// (0.2.0 put each keyed instance in `DIR/<sanitized key>`).
fn namespace_dirs(target: &Target) -> Result<Vec<PathBuf>> {
    target.check_exists()?;
    let root = target.instance().to_path_buf();
    if target.key().is_some() {
        return Ok(vec![root]);
    }
    let mut subs = Vec::new();
    let entries =
        std::fs::read_dir(&root).with_context(|| format!("cannot list {}", root.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
        let is_dir = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?
            .is_dir();
        let name = entry.file_name();
        if !is_dir || name.to_string_lossy().starts_with(LEGACY_DIR_NAME) {
            continue;
        }
        let path = entry.path();
        if pending(&path)? || !legacy_dirs(&path)?.is_empty() {
            subs.push(path);
        }
    }
    subs.sort();
    Ok(std::iter::once(root).chain(subs).collect())
}

/// Whether `dir` holds 0.2.0 files not imported yet (or an interrupted import).
pub(super) fn pending(dir: &Path) -> Result<bool> {
    has_pending_import(dir).with_context(|| {
        format!(
            "cannot look for walrus-rust 0.2.0 files in {}",
            dir.display()
        )
    })
}

/// The directories in `dir` that imports moved 0.2.0 files to: `legacy-0.2.0`, then
/// `legacy-0.2.0.2`, `.3`, ... in the order the imports made them.
pub(super) fn legacy_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let Some(number) = entry.file_name().to_str().and_then(legacy_number) else {
            continue;
        };
        // A symbolic link is not followed, nor deleted: an import never makes one.
        let is_dir = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?
            .is_dir();
        if is_dir {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// `legacy-0.2.0` -> 1, `legacy-0.2.0.N` -> N (N > 1, no leading zero), anything else: `None`.
fn legacy_number(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(LEGACY_DIR_NAME)?;
    if rest.is_empty() {
        return Some(1);
    }
    let digits = rest.strip_prefix('.')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n > 1)
}

fn migrate(run: &mut Run<'_>, dir: &Path) -> Result<NamespaceJson> {
    let plan = plan_import(dir).with_context(|| {
        format!(
            "cannot read the walrus-rust 0.2.0 files of {}",
            dir.display()
        )
    })?;
    let before = legacy_dirs(dir)?;
    let mut report = NamespaceJson {
        dir: dir.display().to_string(),
        interrupted: false,
        files: Vec::new(),
        topics: Vec::new(),
        findings: Vec::new(),
        imported: false,
        seconds: None,
        legacy_dir: None,
        removed_legacy: false,
    };
    let Some(plan) = plan else {
        // Nothing to import; an earlier import may have left its legacy directories.
        if !run.args.dry_run {
            report.legacy_dir = before.last().map(|d| d.display().to_string());
        }
        match before.last() {
            Some(last) => run.say(format!(
                "{}: nothing to import (imported before: the 0.2.0 files are in {})",
                dir.display(),
                last.display()
            ))?,
            None => run.say(format!(
                "{}: nothing to import (no walrus-rust 0.2.0 files)",
                dir.display()
            ))?,
        }
        if run.args.remove_legacy {
            report.removed_legacy = remove_legacy(run, &before)?;
        }
        return Ok(report);
    };
    describe_plan(run, &plan)?;
    report.interrupted = plan.interrupted;
    report.files.clone_from(&plan.files);
    report.topics = plan
        .topics
        .iter()
        .map(|t| TopicJson {
            topic: t.topic.clone(),
            entries: t.entries,
            bytes: t.bytes,
            cursor: t.cursor.clone(),
        })
        .collect();
    let plan_findings: Vec<String> = plan.findings.iter().map(ToString::to_string).collect();
    let (entries, bytes) = plan
        .topics
        .iter()
        .fold((0, 0), |(e, b), t| (e + t.entries, b + t.bytes));
    if run.args.dry_run {
        report.findings = plan_findings;
        run.say(format!(
            "would import {} ({})",
            count(entries, "entry", "entries"),
            human_bytes(bytes)
        ))?;
        if run.args.remove_legacy {
            for legacy in &before {
                run.say(format!("would remove {}", legacy.display()))?;
            }
            run.say("would remove the legacy directory the import moves the 0.2.0 files to")?;
        }
        return Ok(report);
    }
    // The plan is on screen before the (maybe long) import starts.
    if let Some(out) = run.text.as_mut() {
        out.flush()?;
    }
    // A resumed import skips what the one cut short appended: how much is not known ahead.
    let imported = import(run, dir, (!plan.interrupted).then_some(bytes))?;
    report.imported = true;
    report.seconds = Some(imported.seconds);
    for finding in &imported.findings {
        if !plan_findings.contains(finding) {
            run.say(format!("damaged (left out): {finding}"))?;
        }
    }
    report.findings = imported.findings;
    let after = legacy_dirs(dir)?;
    // The one this import made; an interrupted import resumed into the one it had made.
    let dest = after
        .iter()
        .find(|d| !before.contains(d))
        .or_else(|| {
            after
                .iter()
                .rev()
                .find(|d| plan.files.iter().all(|f| d.join(f).exists()))
        })
        .or(after.last());
    report.legacy_dir = dest.map(|d| d.display().to_string());
    let rate = if imported.seconds > 0.0 {
        // Precision loss is fine: one decimal is shown.
        format!(
            ", {:.1} MB/s",
            imported.bytes as f64 / imported.seconds / 1e6
        )
    } else {
        String::new()
    };
    let resumed = if plan.interrupted && imported.entries < entries {
        format!(" (the rest of the {entries} entries was imported by the run cut short)")
    } else {
        String::new()
    };
    run.say(format!(
        "imported {} ({}) in {:.2} s{rate}{resumed}",
        count(imported.entries, "entry", "entries"),
        human_bytes(imported.bytes),
        imported.seconds
    ))?;
    if let Some(dest) = dest {
        run.say(format!(
            "moved {} to {}",
            count(plan.files.len() as u64, "0.2.0 file", "0.2.0 files"),
            dest.display()
        ))?;
    }
    if run.args.remove_legacy {
        report.removed_legacy = remove_legacy(run, &after)?;
    }
    Ok(report)
}

fn describe_plan(run: &mut Run<'_>, plan: &ImportPlan) -> Result<()> {
    const SHOWN: usize = 6;
    let mut names = plan.files[..plan.files.len().min(SHOWN)].join(", ");
    if plan.files.len() > SHOWN {
        names += &format!(", ... ({} more)", plan.files.len() - SHOWN);
    }
    run.say(format!(
        "{}: {} of walrus-rust 0.2.0 ({names})",
        plan.dir.display(),
        count(plan.files.len() as u64, "file", "files"),
    ))?;
    if plan.interrupted {
        run.say(if run.args.dry_run {
            "an earlier import was cut short: the next migrate (or open) finishes it"
        } else {
            "an earlier import was cut short: finishing it"
        })?;
    }
    if plan.topics.is_empty() {
        run.say("no topics")?;
    } else {
        let mut rows = table(&["TOPIC", "ENTRIES", "BYTES", "0.2.0 CURSOR"], &[1, 2]);
        for topic in &plan.topics {
            rows.add_row(vec![
                topic.topic.clone(),
                topic.entries.to_string(),
                topic.bytes.to_string(),
                topic.cursor.clone(),
            ]);
        }
        run.say(rows.to_string())?;
    }
    for finding in &plan.findings {
        run.say(format!("damaged (left out): {finding}"))?;
    }
    Ok(())
}

/// What an import did.
struct Imported {
    entries: u64,
    bytes: u64,
    seconds: f64,
    /// The damaged 0.2.0 data it left out.
    findings: Vec<String>,
}

/// Opens `dir`, which imports its 0.2.0 data, drawing the progress; `total` payload bytes are
/// expected, if known.
fn import(run: &Run<'_>, dir: &Path, total: Option<u64>) -> Result<Imported> {
    let bar = progress_bar(run.bars, dir, total);
    let done = Arc::new(Mutex::new(ImportProgress::default()));
    let hook = {
        let bar = bar.clone();
        let done = Arc::clone(&done);
        move |progress: &ImportProgress| {
            bar.set_position(progress.bytes);
            bar.set_message(progress.topic.clone());
            *done.lock().unwrap_or_else(PoisonError::into_inner) = progress.clone();
        }
    };
    let started = Instant::now();
    let opened = open_importing(dir, hook);
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    // The library's error names the directory.
    let wal = opened.context("the import of walrus-rust 0.2.0 data failed; nothing was deleted")?;
    note_cuts(&wal);
    let findings = wal
        .recovery_findings()
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::LegacyDamage { .. }))
        .map(ToString::to_string)
        .collect();
    drop(wal);
    if pending(dir)? {
        // The library imports on every normal open: only a 0.2.0 process writing into the
        // directory meanwhile gets here.
        bail!(
            "{} still holds walrus-rust 0.2.0 files after the import (is a walrus-rust 0.2.0 \
             application writing to it?)",
            dir.display()
        );
    }
    let done = done.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Ok(Imported {
        entries: done.entries,
        bytes: done.bytes,
        seconds,
        findings,
    })
}

fn progress_bar(visible: bool, dir: &Path, total: Option<u64>) -> ProgressBar {
    // Opening first recovers the Walrus data already in the directory; then each block
    // imported names its topic. Everything is set before the bar can draw.
    let template = if total.is_some() {
        "{prefix} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} \
         ({binary_bytes_per_sec}, {eta} left)"
    } else {
        "{spinner} {prefix} {msg}: {binary_bytes} ({binary_bytes_per_sec}) [{elapsed}]"
    };
    let mut bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
        .with_prefix(format!("importing {}", dir.display()))
        .with_message("(opening)");
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar = bar.with_style(style.progress_chars("=> "));
    }
    if visible {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        // Redraws (elapsed time, rate) while the library opens and between blocks.
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// Deletes every legacy directory in `dirs`, saying so; whether it deleted any. A dry run
/// only says what it would delete.
fn remove_legacy(run: &mut Run<'_>, dirs: &[PathBuf]) -> Result<bool> {
    if run.args.dry_run {
        for legacy in dirs {
            run.say(format!("would remove {}", legacy.display()))?;
        }
        return Ok(false);
    }
    for legacy in dirs {
        std::fs::remove_dir_all(legacy)
            .with_context(|| format!("cannot remove {}", legacy.display()))?;
        run.say(format!("removed {}", legacy.display()))?;
    }
    if dirs.is_empty() {
        run.say("no legacy directory to remove")?;
    }
    Ok(!dirs.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_directory_names() {
        assert_eq!(legacy_number("legacy-0.2.0"), Some(1));
        assert_eq!(legacy_number("legacy-0.2.0.2"), Some(2));
        assert_eq!(legacy_number("legacy-0.2.0.17"), Some(17));
        assert_eq!(legacy_number("legacy-0.2.0.1"), None);
        assert_eq!(legacy_number("legacy-0.2.0.02"), None);
        assert_eq!(legacy_number("legacy-0.2.0."), None);
        assert_eq!(legacy_number("legacy-0.2.0x"), None);
        assert_eq!(legacy_number("legacy-0.2.0.2a"), None);
        assert_eq!(legacy_number("orders"), None);
    }
}
