//! Upgrading from walrus-rust 0.2.0: a directory that holds 0.2.0 files is imported when it
//! is opened, exactly once, and crash-safe.
//!
//! The steps, in order (docs/ARCHITECTURE.md, "Importing 0.2.0 data"):
//! 1. **Journal**: `IMPORT-0.2.0` names the 0.2.0 files, the directory they will move to, and
//!    for each topic the sequence number its first imported entry gets (the topic's next
//!    sequence number before the import). It is durable before the first entry is appended.
//! 2. **Append**: per topic, the entries 0.2.0 would still deliver (after its persisted
//!    cursor), in order, in crash-atomic batches, skipping the `next_seq - first` entries that
//!    an interrupted import already appended.
//! 3. **Sync** everything appended.
//! 4. **Move** the 0.2.0 files into `legacy-0.2.0/` (never deleted here) and sync both
//!    directories.
//! 5. **Remove** the journal.
//!
//! A crash anywhere leaves the journal: the next open reads the files from wherever they are
//! (the directory or the destination), and step 2 appends only what is missing, so every
//! entry ends up imported once. Without a journal, 0.2.0 files in the directory start a new
//! import; without either, there is nothing to do.

mod journal;

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
    time::Instant,
};

use walrus_v020::{Damage, LegacyDir, OwnedBlock, format as v020};

use crate::{
    Engine, Error, FsyncSchedule, Result,
    format::{BATCH_ENTRIES_MAX, LEGACY_DIR_NAME},
    recovery::{Finding, FindingKind},
};

use journal::Journal;

/// How far an import has come, passed to the builder's progress hook after every block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportProgress {
    /// The topic being imported.
    pub topic: String,
    /// Entries imported so far, all topics together.
    pub entries: u64,
    /// Payload bytes imported so far, all topics together.
    pub bytes: u64,
}

/// A callback told of an import's progress.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(&ImportProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// What to do with walrus-rust 0.2.0 files found when a directory is opened.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Import them (default). If false, opening such a directory fails.
    pub enabled: bool,
    /// Told of the progress of an import.
    pub progress: Option<ProgressHook>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            progress: None,
        }
    }
}

/// Names of the files of a 0.2.0 instance directly in `dir` (data files and the cursor
/// index), sorted. User `WalIndex` files are not among them: `WalIndex::new` reads those.
pub fn legacy_files(dir: &Path) -> std::io::Result<Vec<String>> {
    Ok(find_legacy_files(dir)?)
}

fn find_legacy_files(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error("list", dir, err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let is_file = entry
            .file_type()
            .map_err(|e| io_error("stat", &entry.path(), e))?
            .is_file();
        if let Some(name) = entry.file_name().to_str()
            && is_file
            && v020::is_instance_file_name(name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether `dir` holds 0.2.0 files not imported yet, or an import that did not finish.
pub fn has_pending_import(dir: &Path) -> std::io::Result<bool> {
    Ok(dir.join(crate::format::IMPORT_JOURNAL_NAME).exists() || !legacy_files(dir)?.is_empty())
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    walrus_storage::Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// Creates `path` for writing with permission bits `mode`, failing if it exists... unless
/// it is a leftover temporary, which is replaced.
fn create_file(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode & 0o777)
        .open(path)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync directory", dir, e))
}

fn finding(damage: &Damage) -> Finding {
    Finding {
        file: damage.file.clone(),
        offset: damage.offset,
        kind: FindingKind::LegacyDamage {
            reason: damage.kind.to_string(),
        },
    }
}

/// Imports the 0.2.0 files of the engine's directory, if there are any (called by
/// `Engine::open` before the engine is handed out). Returns what damage it met.
pub(crate) fn import_on_open(engine: &Engine) -> Result<Vec<Finding>> {
    let dir = engine.dir().to_path_buf();
    let journal = Journal::load(&dir)?;
    let present = find_legacy_files(&dir)?;
    if journal.is_none() && present.is_empty() {
        return Ok(Vec::new());
    }
    if engine.config.read_only {
        tracing::warn!(dir = %dir.display(), files = ?present,
            "walrus-rust 0.2.0 files not imported (read-only open)");
        return Ok(Vec::new());
    }
    if !engine.config.import.enabled {
        let files = journal.as_ref().map_or(present, |j| j.files.clone());
        return Err(Error::LegacyNotImported { dir, files });
    }
    let started = Instant::now();
    let resumed = journal.is_some();
    let files = journal
        .as_ref()
        .map_or_else(|| present.clone(), |j| j.files.clone());
    let dest_name = match &journal {
        Some(j) => j.dest.clone(),
        None => free_dest_name(&dir),
    };
    let dest = dir.join(&dest_name);
    let legacy = open_legacy(&dir, &dest, &files)?;
    let journal = match journal {
        Some(journal) => journal,
        None => {
            let journal = Journal {
                dest: dest_name,
                files,
                bases: legacy
                    .topics()
                    .map(|t| (t.to_owned(), next_seq(engine, t)))
                    .collect(),
            };
            journal.store(&dir, engine.config.file_mode)?;
            journal
        }
    };
    let mut findings: Vec<Finding> = legacy.damage().iter().map(finding).collect();
    let names: Vec<&str> = legacy.topics().collect();
    let mut firsts = Vec::with_capacity(names.len());
    for topic in &names {
        let Some(&first) = journal.bases.get(*topic) else {
            return Err(Error::BadImportJournal {
                path: dir.join(crate::format::IMPORT_JOURNAL_NAME),
                reason: format!("topic {topic:?} of the 0.2.0 files is not in the journal"),
            });
        };
        firsts.push(first);
    }
    let progress = import_topics(engine, &legacy, &names, &firsts, &mut findings)?;
    let topics = names.len() as u64;
    engine.flush()?;
    move_files(&dir, &dest, &journal.files, engine.config.file_mode)?;
    Journal::remove(&dir)?;
    for f in &findings {
        tracing::warn!(finding = %f, "damaged walrus-rust 0.2.0 data left out of the import");
    }
    tracing::info!(
        dir = %dir.display(),
        topics,
        entries = progress.entries,
        bytes = progress.bytes,
        elapsed = ?started.elapsed(),
        resumed,
        moved_to = %dest.display(),
        "imported walrus-rust 0.2.0 data"
    );
    Ok(findings)
}

/// `legacy-0.2.0`, or `legacy-0.2.0.2`, `.3`, ... if an earlier import used it.
fn free_dest_name(dir: &Path) -> String {
    std::iter::once(LEGACY_DIR_NAME.to_owned())
        .chain((2..).map(|n| format!("{LEGACY_DIR_NAME}.{n}")))
        .find(|name| !dir.join(name).exists())
        .unwrap_or_else(|| LEGACY_DIR_NAME.to_owned())
}

/// Opens the import's files, each in `dir` or, if an interrupted import moved it, in `dest`.
fn open_legacy(dir: &Path, dest: &Path, files: &[String]) -> Result<LegacyDir> {
    let locate = |name: &String| {
        [dir.join(name), dest.join(name)]
            .into_iter()
            .find(|p| p.exists())
    };
    let data = files
        .iter()
        .filter(|n| v020::is_data_file_name(n))
        .filter_map(locate)
        .collect();
    let cursors = files
        .iter()
        .find(|n| *n == v020::CURSOR_INDEX_FILE)
        .and_then(locate);
    Ok(LegacyDir::open_files(data, cursors)?)
}

fn next_seq(engine: &Engine, topic: &str) -> u64 {
    engine.topic(topic).map_or(0, |t| t.writer.lock().next_seq)
}

/// Appends the pending entries of every topic, each after the entries an interrupted import
/// already appended (`next_seq - first`). A second thread reads and verifies the 0.2.0
/// blocks (FNV-1a over every payload) while this one appends the previous block.
fn import_topics(
    engine: &Engine,
    legacy: &LegacyDir,
    names: &[&str],
    firsts: &[u64],
    findings: &mut Vec<Finding>,
) -> Result<ImportProgress> {
    let mut progress = ImportProgress::default();
    std::thread::scope(|scope| {
        let (blocks, arriving) = mpsc::sync_channel::<walrus_v020::Result<(usize, OwnedBlock)>>(2);
        let (spent, returned) = mpsc::channel::<Vec<u8>>();
        scope.spawn(move || {
            for (index, topic) in names.iter().enumerate() {
                let mut reader = legacy.pending(topic);
                loop {
                    while let Ok(buf) = returned.try_recv() {
                        reader.recycle(buf);
                    }
                    let next = match reader.next_owned() {
                        Ok(Some(block)) => Ok((index, block)),
                        Ok(None) => break,
                        Err(err) => Err(err),
                    };
                    let failed = next.is_err();
                    // A closed channel: the appender failed and stopped.
                    if blocks.send(next).is_err() || failed {
                        return;
                    }
                }
            }
        });
        let mut already: Vec<Option<u64>> = vec![None; names.len()];
        for message in arriving {
            let (index, block) = message?;
            let topic = names[index];
            let skip = already[index]
                .get_or_insert_with(|| next_seq(engine, topic).saturating_sub(firsts[index]));
            findings.extend(block.damage.iter().map(finding));
            let batch: Vec<&[u8]> = block.entries().map(|(_, payload)| payload).collect();
            let skipped = usize::try_from(*skip)
                .unwrap_or(usize::MAX)
                .min(batch.len());
            *skip -= skipped as u64;
            for chunk in batch[skipped..].chunks(BATCH_ENTRIES_MAX) {
                // NoFsync: one sync covers the whole import (step 3); a crash before it loses
                // only whole batches, which a resumed import appends again.
                engine.batch_append(topic, chunk, FsyncSchedule::NoFsync)?;
                progress.entries += chunk.len() as u64;
                progress.bytes += chunk.iter().map(|e| e.len() as u64).sum::<u64>();
            }
            progress.topic = topic.to_owned();
            if let Some(hook) = &engine.config.import.progress {
                (hook.0)(&progress);
            }
            let _ = spent.send(block.into_buffer());
        }
        Ok(progress)
    })
}

/// Moves the files still in `dir` into `dest` (created owner-only), then syncs both.
fn move_files(dir: &Path, dest: &Path, files: &[String], mode: u32) -> Result<()> {
    if !dest.exists() {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(walrus_storage::dir_mode(mode))
            .create(dest)
            .map_err(|e| io_error("create directory", dest, e))?;
    }
    for name in files {
        let from = dir.join(name);
        if from.exists() {
            let to: PathBuf = dest.join(name);
            fs::rename(&from, &to).map_err(|e| io_error("move", &from, e))?;
        }
    }
    sync_dir(dest)?;
    sync_dir(dir)
}

/// What importing the walrus-rust 0.2.0 files of one directory would do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportPlan {
    /// The directory.
    pub dir: PathBuf,
    /// The 0.2.0 files the import takes (data files and the cursor index).
    pub files: Vec<String>,
    /// Whether an earlier import of these files was interrupted (the next open finishes it).
    pub interrupted: bool,
    /// Per topic, what would be imported, sorted by name.
    pub topics: Vec<TopicImportPlan>,
    /// Damaged 0.2.0 data that would be left out.
    pub findings: Vec<Finding>,
}

/// What importing one topic would do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TopicImportPlan {
    /// The topic.
    pub topic: String,
    /// Entries 0.2.0 would still deliver, which the import appends.
    pub entries: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The 0.2.0 cursor taken over, in words.
    pub cursor: String,
}

/// Reads the 0.2.0 files of `dir` (not its sub-directories) and says what an import would
/// do, changing nothing; `None` if there is nothing to import. Every entry is read and its
/// checksum verified, so the figures are exact.
pub fn plan_import(dir: &Path) -> std::io::Result<Option<ImportPlan>> {
    Ok(plan(dir)?)
}

fn plan(dir: &Path) -> Result<Option<ImportPlan>> {
    let journal = Journal::load(dir)?;
    let present = find_legacy_files(dir)?;
    if journal.is_none() && present.is_empty() {
        return Ok(None);
    }
    let files = journal.as_ref().map_or(present, |j| j.files.clone());
    let dest = dir.join(
        journal
            .as_ref()
            .map_or(LEGACY_DIR_NAME, |j| j.dest.as_str()),
    );
    let legacy = open_legacy(dir, &dest, &files)?;
    let mut findings: Vec<Finding> = legacy.damage().iter().map(finding).collect();
    let mut topics = Vec::new();
    for topic in legacy.topics() {
        let mut reader = legacy.pending(topic);
        let cursor = describe_cursor(reader.start().origin);
        let (mut entries, mut bytes) = (0, 0);
        while let Some(block) = reader.next_block()? {
            findings.extend(block.damage.iter().map(finding));
            entries += block.len() as u64;
            bytes += block.payload_bytes();
        }
        topics.push(TopicImportPlan {
            topic: topic.to_owned(),
            entries,
            bytes,
            cursor,
        });
    }
    Ok(Some(ImportPlan {
        dir: dir.to_path_buf(),
        files,
        interrupted: journal.is_some(),
        topics,
        findings,
    }))
}

fn describe_cursor(origin: walrus_v020::CursorOrigin) -> String {
    use walrus_v020::CursorOrigin;
    match origin {
        CursorOrigin::None => "none (from the start)".to_owned(),
        CursorOrigin::Chain { index, offset } => format!("block {index}, offset {offset}"),
        CursorOrigin::Tail {
            block_id,
            offset,
            matched: true,
        } => format!("tail of block id {block_id}, offset {offset}"),
        CursorOrigin::Tail {
            block_id,
            matched: false,
            ..
        } => format!("tail of block id {block_id}, which is gone: from the start, as 0.2.0 does"),
    }
}
