//! Walrus: a fast, crash-safe write-ahead log of named topics.
//!
//! A drop-in replacement for walrus-rust 0.2.0: the same API at `walrus_rust::X` and
//! `walrus_rust::wal::X`, with durable cursors, crash-atomic batches, group commit, corruption
//! that is skipped instead of stalling a topic, and files that are reclaimed across restarts.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # // SAFETY: doctests run single-threaded here; nothing else reads the environment.
//! # unsafe { std::env::set_var("WALRUS_DATA_DIR", dir.path()) };
//! use walrus_rust::{Walrus, ReadConsistency, FsyncSchedule};
//!
//! // Default: StrictlyAtOnce reads, a background fsync every 200 ms.
//! let wal = Walrus::new()?;
//! wal.append_for_topic("my-topic", b"Hello, Walrus!")?;
//! if let Some(entry) = wal.read_next("my-topic", true)? {
//!     println!("Read: {:?}", String::from_utf8_lossy(&entry.data));
//!     assert_eq!(entry.data, b"Hello, Walrus!");
//! }
//!
//! // Other modes, and a namespace of its own.
//! let wal = Walrus::with_consistency_and_schedule_for_key(
//!     "orders",
//!     ReadConsistency::AtLeastOnce { persist_every: 1000 },
//!     FsyncSchedule::SyncEach,
//! )?;
//! wal.batch_append_for_topic("events", &[b"a".as_slice(), b"b", b"c"])?;
//! let entries = wal.batch_read_for_topic("events", 1024 * 1024, true)?;
//! assert_eq!(entries.len(), 3);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! With an explicit directory and options, use the builder:
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use walrus_rust::{Walrus, FsyncSchedule};
//!
//! let wal = Walrus::builder()
//!     .data_dir(dir.path().to_path_buf())
//!     .fsync_schedule(FsyncSchedule::SyncEach)
//!     .build()?;
//! wal.append_for_topic("t", b"durable when this returns")?;
//! wal.flush()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! See the README for the behaviour changes from 0.2.0, and docs/ARCHITECTURE.md for how it
//! works.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The API of walrus-rust 0.2.0's `wal` module (also re-exported at the crate root).
pub mod wal {
    pub use walrus_topic::{
        BlockPos, Entry, FsyncSchedule, ReadConsistency, Stats, WalIndex, Walrus, WalrusBuilder,
        disable_fd_backend, enable_fd_backend,
    };

    #[doc(hidden)]
    pub use walrus_topic::{
        __clear_thread_namespace_for_tests, __current_thread_namespace_for_tests,
        __set_thread_namespace_for_tests,
    };
}

pub use wal::{
    BlockPos, Entry, FsyncSchedule, ReadConsistency, Stats, WalIndex, Walrus, WalrusBuilder,
    disable_fd_backend, enable_fd_backend,
};
/// Upgrading from walrus-rust 0.2.0: what an import of a directory would do, and its progress.
/// Opening a directory imports its 0.2.0 files (see `WalrusBuilder::import_v020`).
pub mod upgrade {
    pub use walrus_topic::{
        ImportPlan, ImportProgress, LEGACY_DIR_NAME, TopicImportPlan, has_pending_import,
        legacy_files, plan_import,
    };
}

pub use walrus_topic::{
    BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, CursorTarget, ENTRY_BYTES_MAX, FORMAT_VERSION, FileInfo,
    Finding, FindingKind, PurgeReport, ReadEntry, TOPIC_NAME_BYTES_MAX, TopicInfo, sanitize_key,
};
