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

/// Topics as logs of numbered positions: [`TopicLog`], from [`Walrus::topic_log`].
///
/// The primitives databases and Raft build on: a position is the topic's sequence number
/// (the first entry is 0, positions are contiguous); reads by position take a binary search
/// and a walk of a few dozen frames, never a scan; a prefix can be purged; readers can wait
/// for the tail; durability can be awaited, or called back, by position. The calls of
/// walrus-rust 0.2.0 keep their behaviour; a topic's 0.2.0 cursor and its purge floor are the
/// same persisted position (see [`TopicLog`]).
///
/// # Appending and reading by position
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use walrus_rust::Walrus;
///
/// let wal = Walrus::builder().data_dir(dir.path().into()).build()?;
/// let log = wal.topic_log("raft-7")?;
/// assert_eq!((log.first(), log.last(), log.next_position()), (None, None, 0));
/// let p: u64 = log.append(b"x")?;
/// let r = log.append_batch(&[b"a", b"b"])?; // crash-atomic
/// assert_eq!((p, r), (0, 1..3));
/// assert_eq!((log.first(), log.last()), (Some(0), Some(2)));
/// assert_eq!(log.read_at(1)?.as_deref(), Some(&b"a"[..]));
/// assert_eq!(log.read_at(3)?, None); // not appended yet
/// let entries = log.read_range(1..3, 1 << 20)?;
/// assert_eq!(entries, [(1, b"a".to_vec()), (2, b"b".to_vec())]);
/// // At most `max_bytes` of payloads, but at least one entry.
/// assert_eq!(log.read_range(.., 1)?, [(0, b"x".to_vec())]);
/// // No cursor moved: the 0.2.0 reader still starts at the beginning.
/// assert_eq!(wal.read_next("raft-7", false)?.unwrap().data, b"x");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Purging a prefix
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let wal = walrus_rust::Walrus::builder().data_dir(dir.path().into()).build()?;
/// let log = wal.topic_log("raft-7")?;
/// for i in 0..10u8 {
///     log.append(&[i])?;
/// }
/// log.purge_before(4)?; // persisted: the same after a restart
/// assert_eq!(log.first(), Some(4));
/// assert_eq!(log.read_at(3)?, None);
/// assert_eq!(log.read_at(4)?, Some(vec![4]));
/// // Purging past the end empties the log; the next append gets that position.
/// log.purge_before(100)?;
/// assert_eq!((log.first(), log.next_position()), (None, 100));
/// assert_eq!(log.append(b"after a snapshot")?, 100);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Truncating a suffix
///
/// What a Raft follower does when a new leader's log conflicts with its own: the entries
/// after the last agreed position go, durably, and the next append takes the freed position.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let wal = walrus_rust::Walrus::builder().data_dir(dir.path().into()).build()?;
/// let log = wal.topic_log("raft-7")?;
/// log.append_batch(&[b"a", b"b", b"c", b"d"])?;
/// log.truncate_after(1)?; // positions 2 and 3 are gone, also after a crash
/// assert_eq!((log.last(), log.read_at(2)?), (Some(1), None));
/// assert_eq!(log.append(b"c from the new leader")?, 2);
/// log.truncate_from(0)?; // everything
/// assert_eq!((log.first(), log.next_position()), (None, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # A metadata record beside the log
///
/// A few hundred bytes per topic (at most [`META_BYTES_MAX`]), replaced atomically and
/// durably: a Raft vote, a committed position, a snapshot id.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let wal = walrus_rust::Walrus::builder().data_dir(dir.path().into()).build()?;
/// let log = wal.topic_log("raft-7")?;
/// assert_eq!(log.meta(), None);
/// log.set_meta(b"term=3 voted_for=2")?; // durable when it returns
/// assert_eq!(log.meta().as_deref(), Some(&b"term=3 voted_for=2"[..]));
/// let too_big = vec![0u8; walrus_rust::log::META_BYTES_MAX + 1];
/// assert_eq!(log.set_meta(&too_big).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Durability by position
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use std::sync::mpsc;
/// use walrus_rust::{FsyncSchedule, Walrus};
///
/// let wal = Walrus::builder()
///     .data_dir(dir.path().into())
///     .fsync_schedule(FsyncSchedule::NoFsync)
///     .build()?;
/// let log = wal.topic_log("raft-7")?;
/// let p = log.append(b"x")?;
/// assert_eq!(log.durable_position(), None); // NoFsync: nothing synced yet
/// let (tx, rx) = mpsc::channel();
/// log.on_durable(p, move |result| tx.send(result.is_ok()).unwrap())?;
/// log.wait_durable(p)?; // shares (here: leads) a group-commit sync round
/// assert_eq!(log.durable_position(), Some(p));
/// assert!(rx.recv().unwrap(), "called once the covering sync completed");
/// let q = log.append(b"y")?;
/// log.sync()?; // everything appended so far
/// assert_eq!(log.durable_position(), Some(q));
/// // Without blocking: ask for a sync round to start now, and be called back.
/// let r = log.append(b"z")?;
/// let (tx, rx) = mpsc::channel();
/// log.on_durable(r, move |result| tx.send(result.is_ok()).unwrap())?;
/// log.sync_soon()?; // shared with every append made before the round starts
/// assert!(rx.recv().unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Following the tail
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use std::time::Duration;
///
/// let wal = std::sync::Arc::new(
///     walrus_rust::Walrus::builder().data_dir(dir.path().into()).build()?,
/// );
/// let log = wal.topic_log("events")?;
/// assert!(!log.wait_for(0, Duration::from_millis(1)), "times out: nothing appended");
/// let writer = {
///     let log = log.clone();
///     std::thread::spawn(move || log.append(b"hello"))
/// };
/// assert!(log.wait_for(0, Duration::from_secs(60))); // woken by the append
/// writer.join().unwrap()?;
/// // The 0.2.0-style reader, waiting for the tail when it is there.
/// let entry = wal.read_next_timeout("events", true, Duration::from_secs(60))?;
/// assert_eq!(entry.unwrap().data, b"hello");
/// assert!(wal.read_next_timeout("events", true, Duration::from_millis(1))?.is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
pub mod log {
    pub use walrus_topic::{META_BYTES_MAX, TopicLog};
}

pub use log::TopicLog;

pub use walrus_topic::{
    BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, CursorTarget, ENTRY_BYTES_MAX, FORMAT_VERSION, FileInfo,
    Finding, FindingKind, META_BYTES_MAX, PurgeReport, ReadEntry, TOPIC_NAME_BYTES_MAX, TopicInfo,
    sanitize_key,
};
