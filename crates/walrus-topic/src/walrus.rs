//! `Walrus`, the public handle: the whole walrus-rust 0.2.0 API plus the builder and `flush`.

use std::{
    io,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use walrus_alloc::AllocConfig;
use walrus_storage::BackendKind;

use crate::{Engine, EngineConfig, FsyncSchedule, ReadConsistency, namespace};

/// One entry read from a topic.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The bytes that were appended.
    pub data: Vec<u8>,
}

static FD_BACKEND: AtomicBool = AtomicBool::new(true);

/// Makes instances opened from now on use the file-descriptor backend (`pread`/`pwrite`).
/// This is the default.
pub fn enable_fd_backend() {
    FD_BACKEND.store(true, Ordering::Relaxed);
}

/// Makes instances opened from now on use the mmap backend. Instances already open keep
/// their backend; a directory already open in this process keeps the backend it has.
pub fn disable_fd_backend() {
    FD_BACKEND.store(false, Ordering::Relaxed);
}

/// The default schedule: a background sync every 200 ms.
const DEFAULT_SCHEDULE: FsyncSchedule = FsyncSchedule::Milliseconds(200);

/// A write-ahead log of named topics.
///
/// Handles are cheap to share (`Arc<Walrus>`): appends to different topics run in parallel,
/// and every handle opened on the same directory in one process shares one engine, so they
/// see each other's appends and cursors at once. Dropping the last handle syncs (unless the
/// schedule is `NoFsync`), stops the background thread and closes files. It persists no
/// cursor: `AtLeastOnce` reads since the last `persist_every` boundary are delivered again
/// after a restart, as in walrus-rust 0.2.0.
#[derive(Debug)]
pub struct Walrus {
    engine: Arc<Engine>,
    consistency: ReadConsistency,
    schedule: FsyncSchedule,
}

impl Walrus {
    /// Opens the default instance with `StrictlyAtOnce` reads and a 200 ms fsync schedule.
    pub fn new() -> io::Result<Self> {
        Self::with_consistency(ReadConsistency::StrictlyAtOnce)
    }

    /// Opens the default instance with the given read consistency.
    pub fn with_consistency(mode: ReadConsistency) -> io::Result<Self> {
        Self::with_consistency_and_schedule(mode, DEFAULT_SCHEDULE)
    }

    /// Opens the default instance with the given read consistency and fsync schedule.
    pub fn with_consistency_and_schedule(
        mode: ReadConsistency,
        fsync_schedule: FsyncSchedule,
    ) -> io::Result<Self> {
        WalrusBuilder::new()
            .consistency(mode)
            .fsync_schedule(fsync_schedule)
            .build()
    }

    /// Opens the instance of `key` (under `WALRUS_DATA_DIR`).
    pub fn new_for_key(key: &str) -> io::Result<Self> {
        Self::with_consistency_for_key(key, ReadConsistency::StrictlyAtOnce)
    }

    /// Opens the instance of `key` with the given read consistency.
    pub fn with_consistency_for_key(key: &str, mode: ReadConsistency) -> io::Result<Self> {
        Self::with_consistency_and_schedule_for_key(key, mode, DEFAULT_SCHEDULE)
    }

    /// Opens the instance of `key` with the given read consistency and fsync schedule.
    pub fn with_consistency_and_schedule_for_key(
        key: &str,
        mode: ReadConsistency,
        fsync_schedule: FsyncSchedule,
    ) -> io::Result<Self> {
        WalrusBuilder::new()
            .key(key)
            .consistency(mode)
            .fsync_schedule(fsync_schedule)
            .build()
    }

    /// A builder for instances with an explicit directory or other options.
    pub fn builder() -> WalrusBuilder {
        WalrusBuilder::new()
    }

    /// Appends `raw_bytes` to topic `col_name`, creating the topic if needed. Readers see the
    /// entry as soon as this returns; with `SyncEach` it is also durable.
    ///
    /// Fails with `InvalidInput` for an entry over the size limit or a topic name over 128
    /// bytes, and with `WouldBlock` while a batch is being appended to the same topic (unless
    /// the builder's `wait_for_batches` is set).
    pub fn append_for_topic(&self, col_name: &str, raw_bytes: &[u8]) -> io::Result<()> {
        Ok(self.engine.append(col_name, raw_bytes, self.schedule)?)
    }

    /// Appends every entry of `batch` or none of them, also across a crash: after recovery a
    /// batch is either wholly present or wholly absent. At most 2,000 entries and 10 GiB;
    /// an empty batch does nothing.
    pub fn batch_append_for_topic(&self, col_name: &str, batch: &[&[u8]]) -> io::Result<()> {
        Ok(self.engine.batch_append(col_name, batch, self.schedule)?)
    }

    /// Returns the next entry of `col_name`. With `checkpoint` the cursor moves past it;
    /// without (a peek), the same entry comes back next time.
    pub fn read_next(&self, col_name: &str, checkpoint: bool) -> io::Result<Option<Entry>> {
        let entry = self
            .engine
            .read_next(col_name, checkpoint, self.consistency)?;
        Ok(entry.map(|e| Entry { data: e.data }))
    }

    /// Returns entries from the cursor whose payloads add up to at most `max_bytes` (at least
    /// one entry if any is available, at most 2,000), in order, never skipping one.
    pub fn batch_read_for_topic(
        &self,
        col_name: &str,
        max_bytes: usize,
        checkpoint: bool,
    ) -> io::Result<Vec<Entry>> {
        let entries = self
            .engine
            .batch_read(col_name, max_bytes, checkpoint, self.consistency)?;
        Ok(entries
            .into_iter()
            .map(|e| Entry { data: e.data })
            .collect())
    }

    /// Like [`Walrus::batch_read_for_topic`], but hands each entry to `f` as a borrowed slice
    /// (valid for the call) instead of returning a `Vec<Entry>`: no allocation or copy per
    /// entry. Same budget rules: payloads up to `max_bytes` (at least one entry when one is
    /// available), at most 2,000 entries, in order, never skipping one; with `checkpoint` the
    /// cursor moves past them. Returns how many entries `f` got.
    ///
    /// ```
    /// # use walrus_topic as walrus_rust;
    /// # fn main() -> std::io::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let wal = walrus_rust::Walrus::builder().data_dir(dir.path().into()).build()?;
    /// wal.batch_append_for_topic("events", &[b"a", b"bb", b"ccc"])?;
    /// let mut total = 0;
    /// let n = wal.batch_read_with("events", 1 << 20, true, |_seq, payload| total += payload.len())?;
    /// assert_eq!((n, total), (3, 6));
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch_read_with(
        &self,
        col_name: &str,
        max_bytes: usize,
        checkpoint: bool,
        mut f: impl FnMut(u64, &[u8]),
    ) -> io::Result<usize> {
        Ok(self.engine.batch_read_with(
            col_name,
            max_bytes,
            checkpoint,
            self.consistency,
            &mut f,
        )?)
    }

    /// [`Walrus::read_next`] that waits for the tail: when there is no entry to read, it
    /// waits up to `timeout` for one to be appended (woken by the append, no polling) and
    /// returns it; `None` if none came. Waiting for a topic that does not exist creates it,
    /// empty, in memory (as [`Walrus::topic_log`] does), except on a read-only instance,
    /// which returns `None` at once.
    pub fn read_next_timeout(
        &self,
        col_name: &str,
        checkpoint: bool,
        timeout: std::time::Duration,
    ) -> io::Result<Option<Entry>> {
        let entry =
            self.engine
                .read_next_timeout(col_name, checkpoint, self.consistency, timeout)?;
        Ok(entry.map(|e| Entry { data: e.data }))
    }

    /// The topic `name` as a log of positions: appends that return their position, reads
    /// by position, purges of a prefix, waiting for the tail and durability by position (see
    /// [`TopicLog`](crate::TopicLog)). Appends through it follow this handle's fsync
    /// schedule. A topic that does not exist yet is created, empty and in memory only until
    /// its first append (as appends do); on a read-only instance that fails with
    /// `PermissionDenied`, while existing topics can be read.
    pub fn topic_log(&self, name: &str) -> io::Result<crate::TopicLog> {
        crate::TopicLog::open(Arc::clone(&self.engine), name, self.schedule)
    }

    /// Makes everything appended so far, by any handle on this directory, durable.
    pub fn flush(&self) -> io::Result<()> {
        Ok(self.engine.flush()?)
    }

    /// Counters of what this instance (all handles on its directory) has done since open.
    pub fn stats(&self) -> crate::Stats {
        self.engine.stats()
    }

    /// Figures of every topic (entries, bytes, cursor, lag), sorted by name.
    pub fn topics(&self) -> Vec<crate::TopicInfo> {
        self.engine.topics_info()
    }

    /// Figures of one topic, if it exists.
    pub fn topic(&self, name: &str) -> Option<crate::TopicInfo> {
        self.engine.topic_info_of(name)
    }

    /// Figures of every segment file.
    pub fn files(&self) -> Vec<crate::FileInfo> {
        self.engine.files_info()
    }

    /// What recovery found wrong on disk when the directory was opened (corrupt entries,
    /// torn tails, partial batches), each with its file and offset.
    pub fn recovery_findings(&self) -> Vec<crate::Finding> {
        self.engine.findings().to_vec()
    }

    /// Up to `limit` entries of `topic` from sequence number `from` (the topic's first entry
    /// is 0), without moving the cursor.
    pub fn read_from(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> io::Result<Vec<crate::ReadEntry>> {
        Ok(self.engine.read_from(topic, from, limit)?)
    }

    /// Moves the cursor of `topic` and persists it; returns the sequence number it points at.
    pub fn set_cursor(&self, topic: &str, target: crate::CursorTarget) -> io::Result<u64> {
        Ok(self.engine.set_cursor(topic, target)?)
    }

    /// Deletes now every file whose blocks all cursors have passed.
    pub fn purge(&self) -> io::Result<crate::PurgeReport> {
        Ok(self.engine.purge()?)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &std::path::Path {
        self.engine.dir()
    }
}

/// Options for opening a [`Walrus`] instance.
#[derive(Clone, Debug)]
pub struct WalrusBuilder {
    data_dir: Option<PathBuf>,
    key: Option<String>,
    consistency: ReadConsistency,
    schedule: FsyncSchedule,
    fd_backend: Option<bool>,
    io_uring: bool,
    alloc: AllocConfig,
    wait_for_batches: bool,
    read_only: bool,
    file_mode: u32,
    import: crate::ImportOptions,
    full_scan: bool,
}

impl Default for WalrusBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WalrusBuilder {
    /// Defaults: directory as `Walrus::new()`, `StrictlyAtOnce`, `Milliseconds(200)`, the
    /// backend chosen by `enable_fd_backend`/`disable_fd_backend`, 10 MiB blocks, 100 per file.
    pub fn new() -> Self {
        Self {
            data_dir: None,
            key: None,
            consistency: ReadConsistency::StrictlyAtOnce,
            schedule: DEFAULT_SCHEDULE,
            fd_backend: None,
            io_uring: false,
            alloc: AllocConfig::default(),
            wait_for_batches: false,
            read_only: false,
            file_mode: walrus_storage::DEFAULT_FILE_MODE,
            import: crate::ImportOptions::default(),
            full_scan: false,
        }
    }

    /// Puts the instance in `dir` (or `dir/<key>` with a key), ignoring the environment.
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Puts the instance in the namespace of `key`.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Sets the read consistency.
    pub fn consistency(mut self, mode: ReadConsistency) -> Self {
        self.consistency = mode;
        self
    }

    /// Sets the fsync schedule.
    pub fn fsync_schedule(mut self, schedule: FsyncSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Chooses the file-descriptor backend (`true`) or the mmap backend (`false`) for this
    /// instance, whatever `enable_fd_backend`/`disable_fd_backend` said.
    pub fn fd_backend(mut self, fd: bool) -> Self {
        self.fd_backend = Some(fd);
        self
    }

    /// Allows io_uring on the fd backend (off by default): a batch whose entries span several
    /// blocks of one file is then written with one submission instead of one `pwrite` per
    /// block. Measured in `cargo xtask bench` (`walrus-uring`): no faster than `pwrite` for
    /// the workloads there, so it is not the default; where the kernel refuses io_uring the
    /// instance uses `pwrite` anyway.
    pub fn io_uring(mut self, enabled: bool) -> Self {
        self.io_uring = enabled;
        self
    }

    /// Sets the block size in bytes (default 10 MiB).
    pub fn block_bytes(mut self, bytes: u64) -> Self {
        self.alloc.block_bytes = bytes;
        self
    }

    /// Sets the unit of the small files that hold each topic's first extents (default 4 KiB;
    /// 0 turns them off, so every extent is whole blocks). A new topic starts with one unit and
    /// its extents grow with it to whole blocks, so many small topics do not each reserve a
    /// block. Small files are used when blocks are at least four units.
    ///
    /// ```
    /// # use walrus_topic as walrus_rust;
    /// let dir = tempfile::tempdir()?;
    /// let wal = walrus_rust::Walrus::builder()
    ///     .data_dir(dir.path().to_path_buf())
    ///     .small_unit_bytes(0)
    ///     .build()?;
    /// wal.append_for_topic("t", b"in a whole block")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn small_unit_bytes(mut self, bytes: u64) -> Self {
        self.alloc.small_unit_bytes = bytes;
        self
    }

    /// Sets the number of blocks per segment file (default 100). With at least 16, files come
    /// in 4 lanes of a quarter of that each, one lane per topic in turn, so writers of
    /// different topics do not share a file (and its lock in the kernel); under
    /// `FsyncSchedule::SyncEach`, one lane (a sync round then flushes one file) of files of at
    /// most 120 MiB (while one topic fills such a file, ext4 keeps its extents in the inode,
    /// so a sync writes no extent block).
    pub fn blocks_per_file(mut self, blocks: u32) -> Self {
        self.alloc.blocks_per_file = blocks;
        self
    }

    /// Makes appends wait for a batch in progress on the same topic, instead of failing with
    /// `WouldBlock` as walrus-rust 0.2.0 does.
    pub fn wait_for_batches(mut self, wait: bool) -> Self {
        self.wait_for_batches = wait;
        self
    }

    /// Opens for inspection only: recovery reports what it would repair instead of
    /// repairing it, nothing is deleted, and appends, checkpoints and cursor moves fail with
    /// `PermissionDenied`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets the permission bits of the files the instance creates: segment (`*.wal`),
    /// cursor, `LOCK` and marker files. Default `0o600`: they hold user data, so only the
    /// owner may read them. Directories it creates (the instance directory and any missing
    /// parent) get the same bits plus execute wherever read is set (`0o600` -> `0o700`,
    /// `0o640` -> `0o750`). Only the bits in `0o777` count, and the process umask still
    /// clears bits on creation. Files and directories that already exist are never changed,
    /// and a directory already open in this process keeps the mode it was opened with.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Makes recovery read the data of every block at open, also of blocks whose seal record
    /// says where their entries end (default: `false`, only unsealed blocks are scanned).
    /// Damage inside sealed blocks is then found (and, unless read-only, cut) at open rather
    /// than when the entries are read; `walrus-ctl` opens this way, and a read-only open
    /// always does.
    pub fn full_scan(mut self, full: bool) -> Self {
        self.full_scan = full;
        self
    }

    /// Imports walrus-rust 0.2.0 data found in the directory when it is opened (default:
    /// `true`). Each topic's entries that 0.2.0 would still deliver (those after its persisted
    /// cursor) are appended, in order, made durable, and only then are the 0.2.0 files moved
    /// into `legacy-0.2.0/` inside the directory (never deleted). A crash during the import is
    /// finished by the next open, with every entry imported exactly once. With `false`,
    /// opening a directory that holds 0.2.0 files fails with `InvalidData` naming them and
    /// `walrus-ctl migrate`.
    ///
    /// ```no_run
    /// # use walrus_topic as walrus_rust;
    /// # fn main() -> std::io::Result<()> {
    /// let err = walrus_rust::Walrus::builder()
    ///     .data_dir("old-wal-files".into())
    ///     .import_v020(false)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    /// # Ok(())
    /// # }
    /// ```
    pub fn import_v020(mut self, import: bool) -> Self {
        self.import.enabled = import;
        self
    }

    /// Calls `hook` with the progress of a 0.2.0 import after each block imported (for
    /// progress bars; `walrus-ctl migrate` draws one).
    pub fn on_import_progress(
        mut self,
        hook: impl Fn(&crate::ImportProgress) + Send + Sync + 'static,
    ) -> Self {
        self.import.progress = Some(crate::ProgressHook(std::sync::Arc::new(hook)));
        self
    }

    fn root(&self) -> PathBuf {
        match (&self.data_dir, &self.key) {
            (Some(dir), Some(key)) => dir.join(namespace::sanitize_key(key)),
            (Some(dir), None) => dir.clone(),
            (None, Some(key)) => namespace::key_root(key),
            (None, None) => namespace::default_root(),
        }
    }

    /// Opens the instance, recovering whatever an earlier run left in its directory.
    pub fn build(self) -> io::Result<Walrus> {
        let fd = self
            .fd_backend
            .unwrap_or_else(|| FD_BACKEND.load(Ordering::Relaxed));
        let backend = match (fd, self.io_uring) {
            (false, _) => BackendKind::Mmap,
            (true, true) => BackendKind::FdUring,
            (true, false) => BackendKind::Fd,
        };
        let quiet = namespace::quiet();
        let config = EngineConfig {
            dir: self.root(),
            backend,
            alloc: AllocConfig {
                quiet,
                ..self.alloc
            },
            fsync: self.schedule,
            wait_for_batches: self.wait_for_batches,
            quiet,
            read_only: self.read_only,
            file_mode: self.file_mode,
            import: self.import,
            scan_sealed: self.full_scan,
            cursor_sync: crate::CursorSync::Schedule,
        };
        let engine = Engine::open(config)?;
        Ok(Walrus {
            engine,
            consistency: self.consistency,
            schedule: self.schedule,
        })
    }
}
