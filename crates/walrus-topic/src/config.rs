//! The user-facing modes (fsync schedule, read consistency) and the engine's options.

use std::path::PathBuf;

use walrus_alloc::AllocConfig;
use walrus_storage::BackendKind;

/// When appended data is made durable.
#[derive(Clone, Copy, Debug)]
pub enum FsyncSchedule {
    /// A background thread syncs every `n` milliseconds (default: 200). A crash of the
    /// machine may lose about the last `n` ms of appends; a crash of the process loses nothing.
    Milliseconds(u64),
    /// Every append returns only after an fdatasync that covers it. Concurrent appenders share
    /// fdatasync calls (group commit).
    SyncEach,
    /// Appends never wait for or trigger a sync; `flush()` still syncs on demand.
    NoFsync,
}

/// How often read cursors are made durable.
#[derive(Clone, Copy, Debug)]
pub enum ReadConsistency {
    /// Every checkpointed read persists the cursor before it returns: after a restart, reading
    /// resumes exactly after the last entry returned.
    StrictlyAtOnce,
    /// The cursor is persisted after every `persist_every` checkpointed entries (0 counts as
    /// 1), and only then: after a restart (a crash or a clean close alike, as in walrus-rust
    /// 0.2.0) the entries checkpointed since the last persist are delivered again, fewer
    /// than `persist_every`.
    ///
    /// Under `FsyncSchedule::Milliseconds(n)` a persist is written at once and made durable
    /// by the next background sync, like the data: a power loss also delivers again the
    /// entries read since the last background sync (about `n` ms).
    AtLeastOnce {
        /// Entries between two persists.
        persist_every: u32,
    },
}

/// When an `AtLeastOnce` cursor persist is made durable (`StrictlyAtOnce` persists always
/// sync before the read returns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CursorSync {
    /// By the next background sync under `FsyncSchedule::Milliseconds`, else by the persist's
    /// own sync.
    #[default]
    Schedule,
    /// By the persist's own sync, before the read returns.
    Immediate,
    /// By the next sync round, whatever the schedule: an append under `SyncEach`, the
    /// background sync, `flush()` or a clean close (tests use it to reach this path
    /// deterministically).
    NextRound,
}

/// Everything needed to open an engine on a directory.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The instance's directory.
    pub dir: PathBuf,
    /// Storage backend for data and cursor files.
    pub backend: BackendKind,
    /// Block geometry.
    pub alloc: AllocConfig,
    /// The fsync schedule.
    pub fsync: FsyncSchedule,
    /// Make appends and batches wait for a batch in progress on the same topic instead of
    /// failing with `WouldBlock`.
    pub wait_for_batches: bool,
    /// Suppress debug-level log events (`WALRUS_QUIET`).
    pub quiet: bool,
    /// Open for inspection only: recovery reports what it would cut instead of cutting, and
    /// appends and checkpoints fail.
    pub read_only: bool,
    /// Permission bits of the files the engine creates (data, cursor, lock and marker files);
    /// directories it creates get `walrus_storage::dir_mode` of it. Usually
    /// `walrus_storage::DEFAULT_FILE_MODE` (`0o600`, owner-only). Existing files and
    /// directories keep theirs.
    pub file_mode: u32,
    /// What to do with walrus-rust 0.2.0 files in the directory (import them by default).
    pub import: crate::ImportOptions,
    /// Scan the data of every block at open, even of blocks whose seal record says where
    /// their entries end (read-only opens always do: they are for inspection).
    pub scan_sealed: bool,
    /// When `AtLeastOnce` cursor persists are made durable.
    pub cursor_sync: CursorSync,
}

impl Default for EngineConfig {
    /// What `Walrus::new()` uses: `wal_files` (relative to the working directory), the fd
    /// backend (`pwrite`, no io_uring), 10 MiB blocks, a 200 ms sync, owner-only files, 0.2.0 data
    /// imported. Tests override the fields they care about.
    fn default() -> Self {
        Self {
            dir: PathBuf::from(crate::DEFAULT_DATA_DIR),
            backend: BackendKind::Fd,
            alloc: AllocConfig::default(),
            fsync: FsyncSchedule::Milliseconds(200),
            wait_for_batches: false,
            quiet: false,
            read_only: false,
            file_mode: walrus_storage::DEFAULT_FILE_MODE,
            import: crate::ImportOptions::default(),
            scan_sealed: false,
            cursor_sync: CursorSync::Schedule,
        }
    }
}
