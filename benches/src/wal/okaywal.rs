//! okaywal 0.3: one log (it has no topics), so the positions of each topic's entries are kept
//! in memory for reading back, as an application on top of okaywal would keep them.

use std::{
    io::{self, Read},
    path::Path,
    sync::Mutex,
};

use anyhow::{Result, anyhow};
use okaywal::{
    Configuration, Entry, EntryId, LogManager, LogPosition, SegmentReader, WriteAheadLog,
};

use super::{SyncMode, Wal};

/// Reads every chunk at recovery, the work an application does when it reopens the log.
#[derive(Debug)]
struct Recover;

impl LogManager for Recover {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        let _ = entry.read_all_chunks()?;
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct TopicLog {
    entries: Vec<(LogPosition, usize)>,
    read: usize,
}

pub(super) struct OkayWal {
    log: WriteAheadLog,
    topics: Vec<Mutex<TopicLog>>,
}

impl OkayWal {
    pub(super) fn open(dir: &Path, _sync: SyncMode, topics: usize) -> Result<Self> {
        // Every commit is durable in okaywal; there is no cadence or no-sync mode to map to.
        // Checkpointing is pushed out of reach so that, as in the other systems, everything
        // written stays readable (a checkpoint would recycle the segment).
        let log = Configuration::default_for(dir)
            .checkpoint_after_bytes(u64::MAX / 4)
            .open(Recover)?;
        Ok(Self {
            log,
            topics: (0..topics).map(|_| Mutex::default()).collect(),
        })
    }

    fn topic(&self, topic: usize) -> Result<std::sync::MutexGuard<'_, TopicLog>> {
        self.topics[topic]
            .lock()
            .map_err(|_| anyhow!("topic lock poisoned"))
    }
}

impl Wal for OkayWal {
    fn append(&self, topic: usize, data: &[u8]) -> Result<()> {
        let mut writer = self.log.begin_entry()?;
        let record = writer.write_chunk(data)?;
        writer.commit()?;
        self.topic(topic)?
            .entries
            .push((record.position, data.len()));
        Ok(())
    }

    fn batch_append(&self, topic: usize, entries: &[&[u8]]) -> Result<()> {
        // One okaywal entry of many chunks is its atomic batch.
        let mut writer = self.log.begin_entry()?;
        let mut records = Vec::with_capacity(entries.len());
        for data in entries {
            records.push((writer.write_chunk(data)?.position, data.len()));
        }
        writer.commit()?;
        self.topic(topic)?.entries.extend(records);
        Ok(())
    }

    fn read_next(&self, topic: usize) -> Result<Option<usize>> {
        let mut t = self.topic(topic)?;
        let Some(&(position, len)) = t.entries.get(t.read) else {
            return Ok(None);
        };
        let mut buf = vec![0; len];
        self.log.read_at(position)?.read_exact(&mut buf)?;
        t.read += 1;
        Ok(Some(len))
    }

    fn batch_read(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        let (mut n, mut bytes) = (0, 0);
        while n < 2000 && (n == 0 || bytes < max_bytes) {
            match self.read_next(topic)? {
                Some(len) => {
                    n += 1;
                    bytes += len;
                }
                None => break,
            }
        }
        Ok((n, bytes))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
