//! The engine behind every `Walrus` handle on one directory: storage, allocator, topics,
//! cursors and durability. Handles on the same directory in one process share one engine.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fnv::FnvHashMap;
use parking_lot::{Mutex, RwLock};
use walrus_alloc::Allocator;
use walrus_storage::{DirLock, Storage, open_storage_with_mode};

use crate::{
    EngineConfig, Error, FsyncSchedule, Result,
    cursor_store::CursorStore,
    durability::{Durability, Ticker},
    format::{CLEAN_MARKER_NAME, MARKER_BYTES, TOPIC_NAME_BYTES_MAX},
    reader::TopicReader,
    recovery,
    topic::Topic,
};

/// Counters kept with relaxed atomics; read by `stats()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appends: AtomicU64,
    pub(crate) appended_bytes: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) corrupt_entries: AtomicU64,
    pub(crate) cursor_persists: AtomicU64,
    /// Entries appended under `SyncEach`, acknowledged once a sync covered them.
    pub(crate) synced_appends: AtomicU64,
}

impl Counters {
    pub(crate) fn appended(&self, entries: u64, bytes: u64) {
        self.appends.fetch_add(entries, Ordering::Relaxed);
        self.appended_bytes.fetch_add(bytes, Ordering::Relaxed);
        crate::telemetry::appended(entries, bytes);
    }

    pub(crate) fn read(&self, entries: u64) {
        self.reads.fetch_add(entries, Ordering::Relaxed);
        crate::telemetry::read(entries);
    }

    pub(crate) fn corrupt(&self, entries: u64) {
        self.corrupt_entries.fetch_add(entries, Ordering::Relaxed);
        crate::telemetry::corrupt(entries);
    }

    pub(crate) fn cursor_persisted(&self) {
        self.cursor_persists.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::cursor_persist();
    }
}

/// The shared state of one open directory.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) alloc: Arc<Allocator>,
    pub(crate) durability: Arc<Durability>,
    pub(crate) cursors: CursorStore,
    pub(crate) records: crate::topic_record::RecordStore,
    pub(crate) preparer: crate::prepare::Preparer,
    pub(crate) topics: RwLock<FnvHashMap<String, Arc<Topic>>>,
    pub(crate) counters: Counters,
    pub(crate) recovery_time: Duration,
    pub(crate) findings: Vec<recovery::Finding>,
    ticker: Mutex<Option<Ticker>>,
    _lock: Option<DirLock>,
}

type Registry = Mutex<HashMap<PathBuf, Weak<Engine>>>;

/// Period of the sync thread `sync_soon` starts for a schedule that has none: it syncs when
/// asked, and otherwise about never.
const ON_REQUEST_PERIOD: Duration = Duration::from_secs(3600);

/// Largest ordinary segment file under `SyncEach` (header included): 120 MiB, below ext4's
/// largest extent (32,767 blocks of 4 KiB). A file that small keeps its extent tree in the
/// inode while one writer fills it, so the fdatasync after a write into its pre-allocated
/// (unwritten) space writes the data and the inode; a 1,000 MiB file needs an extent block as
/// well, one more device write before every round's flush (durable batches of 192 KB:
/// fdatasync p50 235-275 us in a 120 MiB file against 288-304 us in a 1 GiB one). Several
/// topics writing one file split it into more than four extents anyway.
pub(crate) const SYNC_EACH_FILE_BYTES_MAX: u64 = 120 << 20;
const _: () = assert!(
    SYNC_EACH_FILE_BYTES_MAX <= 32_767 * 4096,
    "within one ext4 extent"
);

/// Blocks per ordinary file under `SyncEach`: the configured count, at most what fits in
/// [`SYNC_EACH_FILE_BYTES_MAX`], and at least one.
fn sync_each_blocks_per_file(config: walrus_alloc::AllocConfig) -> u32 {
    let header = walrus_alloc::FILE_HEADER_BYTES;
    let fit = SYNC_EACH_FILE_BYTES_MAX.saturating_sub(header) / config.block_bytes.max(1);
    config.blocks_per_file.min(fit.max(1) as u32)
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

use open::{adopt_files, build_topics, read_hints, settle_after_recovery};

impl Engine {
    /// Opens the engine for `config.dir`, or returns the one this process already has open
    /// there. Another process holding the directory makes this fail with `WouldBlock`.
    pub fn open(config: EngineConfig) -> Result<Arc<Self>> {
        // Missing directories are created owner-only (by default); existing ones are left be.
        walrus_storage::create_dir_all(&config.dir, config.file_mode)?;
        let key = std::fs::canonicalize(&config.dir).map_err(|e| walrus_storage::Error::Io {
            op: "resolve",
            path: config.dir.clone(),
            source: e,
        })?;
        let mut engines = registry().lock();
        engines.retain(|_, weak| weak.strong_count() > 0);
        if let Some(engine) = engines.get(&key).and_then(Weak::upgrade) {
            engine.ensure_ticker(config.fsync)?;
            return Ok(engine);
        }
        let lock = DirLock::acquire_with_mode(&key, config.file_mode).map_err(Error::Locked)?;
        let storage = open_storage_with_mode(&key, config.backend, config.file_mode)?;
        let mut engine = Self::open_inner(storage, config, Some(lock))?;
        // Before anyone can append: a 0.2.0 directory's entries come first, in their order.
        let legacy = crate::legacy::import_on_open(&engine)?;
        engine.findings.extend(legacy);
        let engine = Arc::new(engine);
        engines.insert(key, Arc::downgrade(&engine));
        Ok(engine)
    }

    /// Opens an engine over any storage (in-memory and fault-injecting ones in tests), without
    /// the process-wide sharing or the directory lock.
    pub fn open_with_storage(storage: Arc<dyn Storage>, config: EngineConfig) -> Result<Arc<Self>> {
        Ok(Arc::new(Self::open_inner(storage, config, None)?))
    }

    fn open_inner(
        storage: Arc<dyn Storage>,
        config: EngineConfig,
        lock: Option<DirLock>,
    ) -> Result<Self> {
        let _span = tracing::info_span!("walrus_open", dir = %storage.dir().display()).entered();
        let started = Instant::now();
        let mut alloc_config = config.alloc;
        if matches!(config.fsync, FsyncSchedule::SyncEach) {
            // Every append waits for a sync round, and each file a round syncs costs a device
            // cache flush: one file per round beats spreading writers over lanes (durable
            // batches of 4 writers: 0.69-0.72M entries/s in one file, 0.49-0.52M in four).
            alloc_config.lanes = 1;
            alloc_config.blocks_per_file = sync_each_blocks_per_file(alloc_config);
        }
        let alloc = Arc::new(Allocator::new(Arc::clone(&storage), alloc_config)?);
        let (files, unreadable) = adopt_files(&storage, &alloc, config.read_only)?;
        let (cursors, loaded) = CursorStore::open(Arc::clone(&storage))?;
        let records = crate::topic_record::RecordStore::open(Arc::clone(&storage))?;
        let cuts = records.pending_cuts();
        let positions: HashMap<String, u64> = loaded
            .iter()
            .map(|(name, c)| (name.clone(), c.cursor.next_seq))
            .collect();
        let hints = read_hints(storage.as_ref(), config.read_only, config.scan_sealed)?;
        let mut report = {
            let _span = tracing::info_span!("walrus_recovery", files = files.len()).entered();
            recovery::recover(&files, &positions, hints, &cuts)?
        };
        if !config.read_only {
            cursors.sync_all()?;
            settle_after_recovery(storage.as_ref(), &alloc, hints)?;
            // The truncations recovery finished are durable now.
            for (name, cut) in cuts {
                let done = crate::topic_record::Cut {
                    pending: false,
                    ..cut
                };
                records.update(&name, |record| record.cut = Some(done))?;
            }
            // The blocks recovery had to scan are durable now: seal them, so that the next
            // open reads none of their data (their seals become durable with the next sync).
            for topic in report.topics.values_mut() {
                for (block, summary) in topic.unsealed.drain(..) {
                    crate::seal::write_now(block, &summary);
                }
            }
        }
        let topics = build_topics(std::mem::take(&mut report.topics), &loaded, &alloc);
        let recovery_time = started.elapsed();
        if !config.quiet {
            tracing::debug!(
                dir = %storage.dir().display(),
                backend = storage.kind().name(),
                topics = topics.len(),
                corrupt = report.corrupt_frames,
                dropped_blocks = report.dropped_blocks,
                cut_bytes = report.cut_bytes,
                ?recovery_time,
                "walrus opened"
            );
        }
        let defer_cursors = match config.cursor_sync {
            crate::CursorSync::Schedule => matches!(config.fsync, FsyncSchedule::Milliseconds(_)),
            crate::CursorSync::Immediate => false,
            crate::CursorSync::NextRound => true,
        };
        let durability = Durability::new(
            (!config.read_only).then(|| Arc::clone(&storage)),
            defer_cursors,
        );
        // Only the mmap backend takes a page fault per fresh page on the append path.
        let prepare = storage.kind() == walrus_storage::BackendKind::Mmap && !config.read_only;
        let engine = Self {
            config,
            storage,
            alloc,
            durability: Arc::new(durability),
            cursors,
            records,
            preparer: crate::prepare::Preparer::new(prepare),
            topics: RwLock::new(topics),
            counters: Counters::default(),
            recovery_time,
            findings: unreadable
                .into_iter()
                .chain(std::mem::take(&mut report.findings))
                .collect(),
            ticker: Mutex::new(None),
            _lock: lock,
        };
        engine.counters.corrupt(report.corrupt_frames);
        engine.ensure_ticker(engine.config.fsync)?;
        Ok(engine)
    }

    /// Starts the background sync thread if `schedule` needs one and none runs yet.
    pub(crate) fn ensure_ticker(&self, schedule: FsyncSchedule) -> Result<()> {
        let FsyncSchedule::Milliseconds(ms) = schedule else {
            return Ok(());
        };
        self.start_ticker(Duration::from_millis(ms.max(1)))
    }

    /// Starts the background sync thread with period `every`, unless one with that period
    /// or a shorter one runs already (a longer one is replaced: the handle that asked for
    /// the shorter period gets it).
    pub(crate) fn start_ticker(&self, every: Duration) -> Result<()> {
        let mut ticker = self.ticker.lock();
        if ticker.as_ref().is_none_or(|t| t.every > every) {
            // The old thread stops (and is joined) before the new one starts.
            drop(ticker.take());
            let started =
                Ticker::start(Arc::clone(&self.durability), Arc::clone(&self.alloc), every)
                    .map_err(|e| walrus_storage::Error::Io {
                        op: "spawn fsync thread",
                        path: self.config.dir.clone(),
                        source: e,
                    })?;
            *ticker = Some(started);
        }
        Ok(())
    }

    /// Asks for a sync round to start now, on the background sync thread (started, syncing
    /// only when asked, if the schedule has none); returns at once.
    pub(crate) fn sync_soon(&self) -> Result<()> {
        if self.config.read_only {
            return Ok(());
        }
        if self.ticker.lock().is_none() {
            self.start_ticker(ON_REQUEST_PERIOD)?;
        }
        self.durability.request_sync();
        Ok(())
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub(crate) fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>> {
        if self.config.read_only {
            return Err(Error::ReadOnly("append"));
        }
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        if name.len() > TOPIC_NAME_BYTES_MAX {
            return Err(Error::InvalidInput(format!(
                "topic name is {} bytes, the limit is {TOPIC_NAME_BYTES_MAX}",
                name.len()
            )));
        }
        let mut topics = self.topics.write();
        let topic = topics.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Topic::new(
                name.to_owned(),
                self.alloc.next_lane(),
                0,
                VecDeque::new(),
                TopicReader::default(),
            ))
        });
        Ok(Arc::clone(topic))
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self) -> Result<()> {
        self.durability.flush(&self.alloc)
    }

    /// The directory this engine serves.
    pub fn dir(&self) -> &std::path::Path {
        self.storage.dir()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Stop the background thread before anything it uses goes away.
        self.ticker.lock().take();
        if self.config.read_only {
            return;
        }
        if !matches!(self.config.fsync, FsyncSchedule::NoFsync) {
            // No more appends: the active blocks are sealed too, so that the next open reads
            // no block's data. The first sync makes the data durable and writes the seals,
            // the second makes the seals durable.
            for topic in self.topics.read().values() {
                topic.writer.lock().seal_for_close(self.write_ctx());
            }
        }
        let synced = !matches!(self.config.fsync, FsyncSchedule::NoFsync)
            && match self.flush().and_then(|()| self.flush()) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "final sync at close failed");
                    false
                }
            };
        // No cursor is persisted here. `StrictlyAtOnce` reads persisted theirs already;
        // `AtLeastOnce` reads since the topic's last `persist_every` boundary are delivered
        // again after a restart, a clean close being no different from a crash (as in
        // walrus-rust 0.2.0).

        // Everything in the segment files is durable: tell the next recovery, so that it
        // reports any hole or damaged tail as corruption instead of cutting it as a crash's.
        if synced && let Err(err) = self.storage.create(CLEAN_MARKER_NAME, MARKER_BYTES) {
            tracing::warn!(error = %err, "cannot leave the clean-close marker");
        }
    }
}

mod open;
mod ops;

#[cfg(test)]
mod tests;
