//! This workspace's Walrus, on each of its backends.

use std::{path::Path, sync::OnceLock};

use anyhow::Result;
use walrus_rust::{FsyncSchedule, ReadConsistency, TopicLog, Walrus};

use super::{SyncMode, Wal, topic_names};

/// Walrus with one configuration of backend.
#[derive(Debug)]
pub(super) struct WalrusWal {
    wal: Walrus,
    names: Vec<String>,
    /// Each topic as a log of positions, made at its first read by position (so that the
    /// timed open of the reopen cells makes none).
    logs: Vec<OnceLock<TopicLog>>,
}

pub(super) fn schedule(sync: SyncMode) -> FsyncSchedule {
    match sync {
        SyncMode::Each => FsyncSchedule::SyncEach,
        SyncMode::Interval(ms) => FsyncSchedule::Milliseconds(ms),
        SyncMode::Never => FsyncSchedule::NoFsync,
    }
}

/// Walrus in `dir` on one backend, as every cell configures it.
pub(super) fn build(dir: &Path, sync: SyncMode, fd: bool, io_uring: bool) -> Result<Walrus> {
    Ok(Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fsync_schedule(schedule(sync))
        // The seeds' read benchmarks persist cursors every 5,000 entries.
        .consistency(ReadConsistency::AtLeastOnce {
            persist_every: 5000,
        })
        .fd_backend(fd)
        .io_uring(io_uring)
        .wait_for_batches(true)
        .build()?)
}

impl WalrusWal {
    pub(super) fn open(
        dir: &Path,
        sync: SyncMode,
        topics: usize,
        fd: bool,
        io_uring: bool,
    ) -> Result<Self> {
        Ok(Self {
            wal: build(dir, sync, fd, io_uring)?,
            names: topic_names(topics),
            logs: (0..topics).map(|_| OnceLock::new()).collect(),
        })
    }

    fn log(&self, topic: usize) -> Result<&TopicLog> {
        let cell = &self.logs[topic];
        if let Some(log) = cell.get() {
            return Ok(log);
        }
        let log = self.wal.topic_log(&self.names[topic])?;
        // Another thread may have set it first; either handle reads the same topic.
        Ok(cell.get_or_init(|| log))
    }
}

impl Wal for WalrusWal {
    fn append(&self, topic: usize, data: &[u8]) -> Result<()> {
        Ok(self.wal.append_for_topic(&self.names[topic], data)?)
    }

    fn batch_append(&self, topic: usize, entries: &[&[u8]]) -> Result<()> {
        Ok(self
            .wal
            .batch_append_for_topic(&self.names[topic], entries)?)
    }

    fn read_next(&self, topic: usize) -> Result<Option<usize>> {
        Ok(self
            .wal
            .read_next(&self.names[topic], true)?
            .map(|e| e.data.len()))
    }

    fn batch_read(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        let entries = self
            .wal
            .batch_read_for_topic(&self.names[topic], max_bytes, true)?;
        Ok((entries.len(), entries.iter().map(|e| e.data.len()).sum()))
    }

    fn batch_read_borrowed(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        // What a consumer that needs only the bytes does: look at each payload in place.
        let mut bytes = 0;
        let n =
            self.wal
                .batch_read_with(&self.names[topic], max_bytes, true, |_seq, payload| {
                    bytes += payload.len()
                })?;
        Ok((n, bytes))
    }

    fn read_at(&self, topic: usize, index: u64) -> Result<Option<usize>> {
        // Positions are the topic's sequence numbers, 0 for the first entry appended.
        Ok(self.log(topic)?.read_at(index)?.map(|e| e.len()))
    }

    fn read_range(
        &self,
        topic: usize,
        index: u64,
        count: usize,
        max_bytes: usize,
    ) -> Result<(usize, usize)> {
        let entries = self
            .log(topic)?
            .read_range(index..index.saturating_add(count as u64), max_bytes)?;
        Ok((entries.len(), entries.iter().map(|(_, e)| e.len()).sum()))
    }

    fn flush(&self) -> Result<()> {
        Ok(self.wal.flush()?)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let stats = self.wal.stats();
        vec![
            ("fsyncs", stats.fsyncs),
            ("synced_appends", stats.synced_appends),
            ("files", stats.files),
        ]
    }
}
