//! `stats()`: counters of what an instance has done, from cheap atomics.

use std::{sync::atomic::Ordering, time::Duration};

use crate::Engine;

/// A snapshot of an instance's counters (shared by every handle on its directory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Entries appended since open (batch entries count one each).
    pub appends: u64,
    /// Payload bytes appended since open.
    pub appended_bytes: u64,
    /// Entries returned by reads since open (peeks included).
    pub reads: u64,
    /// Rounds of fdatasync calls made for durability (group commits).
    pub fsyncs: u64,
    /// Entries appended under `FsyncSchedule::SyncEach` (acknowledged once durable); with
    /// [`fsyncs`](Self::fsyncs), how many appends share a sync
    /// ([`appends_per_fsync`](Self::appends_per_fsync)).
    pub synced_appends: u64,
    /// Cursor persists since open.
    pub cursor_persists: u64,
    /// Corrupt entries detected and skipped (at recovery and while reading).
    pub corrupt_entries: u64,
    /// Segment files currently on disk.
    pub files: u64,
    /// Bytes of segment files that still hold an extent not yet consumed.
    pub live_bytes: u64,
    /// Bytes of segment files whose every extent is consumed: they are deleted as soon as
    /// the allocator moves on from them (or by `purge`).
    pub reclaimable_bytes: u64,
    /// The storage backend in use (`fd`, `fd+io_uring`, `mmap`, ...).
    pub backend: &'static str,
    /// How long recovery took when the directory was opened.
    pub recovery_time: Duration,
}

impl Stats {
    /// Durable appends per sync round: how well the group commit shares its fdatasyncs
    /// (0 before the first sync).
    pub fn appends_per_fsync(&self) -> f64 {
        if self.fsyncs == 0 {
            0.0
        } else {
            self.synced_appends as f64 / self.fsyncs as f64
        }
    }
}

impl Engine {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let files = self.files_info();
        let (mut live_bytes, mut reclaimable_bytes) = (0, 0);
        for file in &files {
            if file.extents > 0 && file.consumed == file.extents {
                reclaimable_bytes += file.bytes;
            } else {
                live_bytes += file.bytes;
            }
        }
        Stats {
            appends: c.appends.load(Ordering::Relaxed),
            appended_bytes: c.appended_bytes.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            fsyncs: self.durability.sync_count(),
            synced_appends: c.synced_appends.load(Ordering::Relaxed),
            cursor_persists: c.cursor_persists.load(Ordering::Relaxed),
            corrupt_entries: c.corrupt_entries.load(Ordering::Relaxed),
            files: files.len() as u64,
            live_bytes,
            reclaimable_bytes,
            backend: self.storage.kind().name(),
            recovery_time: self.recovery_time,
        }
    }
}
