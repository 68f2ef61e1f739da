//! One interface over Walrus and its peers, so every workload runs the same code on each.
//!
//! Topics are numbered; each system maps them to what it has (a topic, a raft group, a key
//! prefix, or positions kept in memory for okaywal, which has no topics). A workload gives each
//! topic to one thread, so no system needs to order concurrent writers of one topic.

use std::{
    fmt,
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Result, bail};

#[cfg(feature = "peers")]
mod okaywal;
#[cfg(feature = "peers")]
mod raft;
#[cfg(feature = "rocksdb")]
mod rocks;
mod walrus;
#[cfg(feature = "peers")]
mod walrus_v020;

/// When appends become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// An append returns after an fdatasync that covers it.
    Each,
    /// A background sync every so many milliseconds.
    Interval(u64),
    /// Never synced by the workload.
    Never,
}

impl FromStr for SyncMode {
    type Err = anyhow::Error;

    /// The seeds' `FSYNC` values: `sync-each`, `no-fsync` (or `none`), `async` (1000 ms),
    /// `<n>ms` or `<n>`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "sync-each" | "each" => SyncMode::Each,
            "no-fsync" | "none" | "never" => SyncMode::Never,
            "async" => SyncMode::Interval(1000),
            other => {
                let digits = other.strip_suffix("ms").unwrap_or(other);
                match digits.parse() {
                    Ok(ms) => SyncMode::Interval(ms),
                    Err(_) => {
                        bail!("bad fsync schedule {other:?}: sync-each | no-fsync | async | <n>ms")
                    }
                }
            }
        })
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncMode::Each => f.write_str("sync-each"),
            SyncMode::Interval(ms) => write!(f, "{ms}ms"),
            SyncMode::Never => f.write_str("no-fsync"),
        }
    }
}

/// A write-ahead log under test.
pub trait Wal: Send + Sync {
    /// Appends one entry to `topic`.
    fn append(&self, topic: usize, data: &[u8]) -> Result<()>;
    /// Appends entries to `topic` as one batch (atomically where the system can).
    fn batch_append(&self, topic: usize, entries: &[&[u8]]) -> Result<()>;
    /// Reads the next entry of `topic` and moves past it; returns its length, `None` at the end.
    fn read_next(&self, topic: usize) -> Result<Option<usize>>;
    /// Reads entries of `topic` up to about `max_bytes`; returns (entries, bytes), (0, 0) at the
    /// end.
    fn batch_read(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)>;
    /// [`Wal::batch_read`] through a borrowing API that allocates nothing per entry
    /// (Walrus's `batch_read_with`); the peers have none.
    fn batch_read_borrowed(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        let _ = (topic, max_bytes);
        bail!("no borrowed batch read in this system")
    }
    /// Reads entry `index` of `topic` (0: the first entry appended) without moving any
    /// cursor; returns its length, `None` past the end. Only the systems of
    /// [`reads_by_position`] have it.
    fn read_at(&self, topic: usize, index: u64) -> Result<Option<usize>> {
        let _ = (topic, index);
        bail!("no read by position in this system")
    }
    /// Reads up to `count` consecutive entries of `topic` from `index` (and up to about
    /// `max_bytes`) without moving any cursor; returns (entries, bytes).
    fn read_range(
        &self,
        topic: usize,
        index: u64,
        count: usize,
        max_bytes: usize,
    ) -> Result<(usize, usize)> {
        let _ = (topic, index, count, max_bytes);
        bail!("no read by position in this system")
    }
    /// Makes everything appended so far durable.
    fn flush(&self) -> Result<()>;
    /// Counters the system keeps, for the report (Walrus: fsync rounds).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// The systems the harness knows, whether or not this build has them.
pub const ALL_SYSTEMS: &[&str] = &[
    "walrus",
    "walrus-uring",
    "walrus-mmap",
    "walrus-0.2.0",
    "raft-engine",
    "okaywal",
    "rocksdb",
];

/// Systems this build can run (peers need the `peers` feature, RocksDB the `rocksdb` one).
pub fn available(system: &str) -> bool {
    let peer = matches!(system, "walrus-0.2.0" | "raft-engine" | "okaywal");
    is_walrus(system)
        || (peer && cfg!(feature = "peers"))
        || (system == "rocksdb" && cfg!(feature = "rocksdb"))
}

/// Whether `system` is one of ours.
pub fn is_walrus(system: &str) -> bool {
    matches!(system, "walrus" | "walrus-uring" | "walrus-mmap")
}

/// Whether `system` reads an entry by its index ([`Wal::read_at`], [`Wal::read_range`]);
/// `Err` says why not, for the report's `n/a` rows.
pub fn reads_by_position(system: &str) -> Result<(), &'static str> {
    match system {
        "walrus" | "walrus-uring" | "walrus-mmap" => Ok(()),
        "raft-engine" => Ok(()),
        "walrus-0.2.0" => Err("cursor reads only (read_next, batch reads), no read by position"),
        "okaywal" => Err("no index by entry number (reads take byte positions the caller keeps)"),
        "rocksdb" => Err("not wired in this harness (a get() of the topic+index key would be)"),
        _ => Err("unknown system"),
    }
}

/// Whether `system` can hold the `many-topics` cells' 10,000 topics at a sensible cost;
/// `Err` says why not, for the report's `n/a` rows (such a cell opens nothing).
pub fn holds_many_topics(system: &str) -> Result<(), &'static str> {
    match system {
        "walrus" | "walrus-uring" | "walrus-mmap" | "raft-engine" | "rocksdb" => Ok(()),
        "walrus-0.2.0" => Err("preallocates a 10 MiB block per topic (100 GB at 10,000 topics)"),
        "okaywal" => Err("no topics (one log, positions kept in memory): nothing per topic"),
        _ => Err("unknown system"),
    }
}

/// A note on how a system was configured, for the report.
pub fn note(system: &str) -> &'static str {
    match system {
        "walrus" => "fd backend, pwrite (the default)",
        "walrus-uring" => "fd backend, io_uring for batches that span blocks",
        "walrus-mmap" => "mmap backend",
        "walrus-0.2.0" => "crates.io 0.2.0, fd backend",
        "raft-engine" => "0.4, one raft group per topic, compression off",
        "okaywal" => "0.3, every commit fsyncs (no cadence option)",
        "rocksdb" => "WAL via put(), manual_wal_flush off",
        _ => "",
    }
}

/// Opens `system` in `dir` (created if needed) for `topics` topics.
pub fn open(system: &str, dir: &Path, sync: SyncMode, topics: usize) -> Result<Box<dyn Wal>> {
    std::fs::create_dir_all(dir)?;
    Ok(match system {
        "walrus" => Box::new(walrus::WalrusWal::open(dir, sync, topics, true, false)?),
        "walrus-uring" => Box::new(walrus::WalrusWal::open(dir, sync, topics, true, true)?),
        "walrus-mmap" => Box::new(walrus::WalrusWal::open(dir, sync, topics, false, false)?),
        #[cfg(feature = "peers")]
        "walrus-0.2.0" => Box::new(walrus_v020::WalrusV020::open(dir, sync, topics)?),
        #[cfg(feature = "peers")]
        "raft-engine" => Box::new(raft::RaftWal::open(dir, sync, topics)?),
        #[cfg(feature = "peers")]
        "okaywal" => Box::new(okaywal::OkayWal::open(dir, sync, topics)?),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocks::RocksWal::open(dir, sync, topics)?),
        other if ALL_SYSTEMS.contains(&other) => {
            bail!("{other} is not in this build: enable the walrus-benches feature for it")
        }
        other => bail!(
            "unknown system {other:?} (known: {})",
            ALL_SYSTEMS.join(", ")
        ),
    })
}

/// A thread that calls `sync` every `interval` until dropped, for peers without a background
/// sync of their own (so every system gets the same cadence).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker").finish_non_exhaustive()
    }
}

impl Ticker {
    /// Starts calling `sync` every `interval`.
    pub fn start(interval: Duration, sync: impl Fn() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            // Short sleeps so that dropping the ticker does not wait a whole interval.
            let step = Duration::from_millis(5).min(interval);
            let mut waited = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
                if waited >= interval {
                    waited = Duration::ZERO;
                    sync();
                }
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One topic of Walrus on the backend `system` names (`walrus`, `walrus-uring`, `walrus-mmap`),
/// configured as [`open`] configures it, as a [`walrus_rust::TopicLog`] (the handle keeps its
/// instance open).
pub fn open_topic_log(
    system: &str,
    dir: &Path,
    sync: SyncMode,
    topic: usize,
) -> Result<walrus_rust::TopicLog> {
    std::fs::create_dir_all(dir)?;
    let (fd, io_uring) = match system {
        "walrus" => (true, false),
        "walrus-uring" => (true, true),
        "walrus-mmap" => (false, false),
        other => bail!("{other} has no TopicLog (walrus backends only)"),
    };
    let wal = walrus::build(dir, sync, fd, io_uring)?;
    Ok(wal.topic_log(&topic_name(topic))?)
}

/// Walrus's backends as (name, fd backend, io_uring), for the criterion suites.
pub const WALRUS_BACKENDS: &[(&str, bool, bool)] = &[
    ("fd", true, false),
    ("fd+io_uring", true, true),
    ("mmap", false, false),
];

/// Opens this workspace's Walrus in `dir` on one backend, for the criterion suites.
pub fn open_walrus(
    dir: &Path,
    fd: bool,
    io_uring: bool,
    schedule: walrus_rust::FsyncSchedule,
    consistency: walrus_rust::ReadConsistency,
) -> std::io::Result<walrus_rust::Walrus> {
    walrus_rust::Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fsync_schedule(schedule)
        .consistency(consistency)
        .fd_backend(fd)
        .io_uring(io_uring)
        .wait_for_batches(true)
        .build()
}

/// Topic names shared by the systems that have named topics.
pub fn topic_names(topics: usize) -> Vec<String> {
    (0..topics).map(topic_name).collect()
}

/// The name of topic `i` in [`topic_names`].
pub fn topic_name(i: usize) -> String {
    format!("topic_{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_values() {
        assert_eq!("sync-each".parse::<SyncMode>().unwrap(), SyncMode::Each);
        assert_eq!("no-fsync".parse::<SyncMode>().unwrap(), SyncMode::Never);
        assert_eq!(
            "async".parse::<SyncMode>().unwrap(),
            SyncMode::Interval(1000)
        );
        assert_eq!(
            "200ms".parse::<SyncMode>().unwrap(),
            SyncMode::Interval(200)
        );
        assert_eq!("50".parse::<SyncMode>().unwrap(), SyncMode::Interval(50));
        assert!("often".parse::<SyncMode>().is_err());
    }

    #[test]
    fn every_walrus_backend_round_trips() {
        // walrus 0.2.0 is left to the harness: it finds its directory only through the
        // environment, which a test cannot set without `unsafe`.
        let mut peers: Vec<&str> = Vec::new();
        if cfg!(feature = "peers") {
            peers.extend(["raft-engine", "okaywal"]);
        }
        if cfg!(feature = "rocksdb") {
            peers.push("rocksdb");
        }
        for &system in ["walrus", "walrus-uring", "walrus-mmap"]
            .iter()
            .chain(&peers)
        {
            let dir = tempfile::tempdir().unwrap();
            let wal = open(system, dir.path(), SyncMode::Never, 2).unwrap();
            wal.append(0, b"one").unwrap();
            wal.batch_append(1, &[b"two".as_slice(), b"three"]).unwrap();
            wal.flush().unwrap();
            assert_eq!(wal.read_next(0).unwrap(), Some(3));
            assert_eq!(wal.read_next(0).unwrap(), None);
            assert_eq!(wal.batch_read(1, 1 << 20).unwrap(), (2, 8));
            assert_eq!(wal.batch_read(1, 1 << 20).unwrap(), (0, 0));
            // Reads by index move no cursor: the drained entries are still there.
            if reads_by_position(system).is_ok() {
                assert_eq!(wal.read_at(1, 0).unwrap(), Some(3), "{system}");
                assert_eq!(wal.read_at(1, 1).unwrap(), Some(5), "{system}");
                assert_eq!(wal.read_at(1, 2).unwrap(), None, "{system}");
                assert_eq!(wal.read_range(1, 0, 10, 1 << 20).unwrap(), (2, 8));
                assert_eq!(wal.read_range(1, 1, 1, 1 << 20).unwrap(), (1, 5));
                assert_eq!(wal.read_range(1, 2, 10, 1 << 20).unwrap(), (0, 0));
            } else {
                assert!(wal.read_at(1, 0).is_err() && wal.read_range(1, 0, 1, 1).is_err());
            }
            if is_walrus(system) {
                wal.batch_append(1, &[b"four".as_slice(), b"five!"])
                    .unwrap();
                assert_eq!(wal.batch_read_borrowed(1, 1 << 20).unwrap(), (2, 9));
                assert_eq!(wal.batch_read_borrowed(1, 1 << 20).unwrap(), (0, 0));
            } else {
                assert!(wal.batch_read_borrowed(1, 1 << 20).is_err());
            }
        }
    }
}
