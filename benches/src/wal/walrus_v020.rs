//! walrus-rust 0.2.0 from crates.io, the version this workspace replaces.

use std::path::Path;

use anyhow::{Result, ensure};
use walrus_v020::{FsyncSchedule, ReadConsistency, Walrus};

use super::{SyncMode, Wal, topic_names};

pub(super) struct WalrusV020 {
    wal: Walrus,
    names: Vec<String>,
}

impl WalrusV020 {
    pub(super) fn open(dir: &Path, sync: SyncMode, topics: usize) -> Result<Self> {
        // 0.2.0 has no builder: it reads WALRUS_DATA_DIR when an instance is made. Setting the
        // variable here would need `unsafe` (edition 2024), so the harness's parent sets it for
        // each child process; check that it names this cell's directory.
        let env_dir = std::env::var_os("WALRUS_DATA_DIR").unwrap_or_default();
        ensure!(
            Path::new(&env_dir) == dir,
            "walrus-0.2.0 needs WALRUS_DATA_DIR={} (the harness parent sets it)",
            dir.display()
        );
        if std::env::var_os("WALRUS_BACKEND").is_some_and(|b| b == "mmap") {
            walrus_v020::disable_fd_backend();
        }
        let schedule = match sync {
            SyncMode::Each => FsyncSchedule::SyncEach,
            SyncMode::Interval(ms) => FsyncSchedule::Milliseconds(ms),
            SyncMode::Never => FsyncSchedule::NoFsync,
        };
        let wal = Walrus::with_consistency_and_schedule(
            ReadConsistency::AtLeastOnce {
                persist_every: 5000,
            },
            schedule,
        )?;
        Ok(Self {
            wal,
            names: topic_names(topics),
        })
    }
}

impl Wal for WalrusV020 {
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

    fn flush(&self) -> Result<()> {
        // 0.2.0 has no flush; its writes are already in the page cache, which is what the
        // read and reopen workloads (same process) need.
        Ok(())
    }
}
