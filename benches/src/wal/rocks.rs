//! RocksDB's write-ahead log, through `put` (feature `rocksdb`): keys are topic then sequence
//! number, so a topic reads back in order with an iterator.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{SyncMode, Ticker, Wal};

pub(super) struct RocksWal {
    db: Arc<DB>,
    sync_each: bool,
    next_write: Vec<AtomicU64>,
    next_read: Vec<AtomicU64>,
    _ticker: Option<Ticker>,
}

// Keys are big-endian because RocksDB orders keys bytewise: a topic's entries must sort by
// sequence number. The workspace denies big-endian bytes for on-disk formats of our own; these
// helpers are the only exception.
#[allow(clippy::big_endian_bytes)]
fn key(topic: usize, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&(topic as u32).to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Whether `k` is a key of `topic`.
#[allow(clippy::big_endian_bytes)]
fn of_topic(k: &[u8], topic: usize) -> bool {
    k.len() == 12 && k[..4] == (topic as u32).to_be_bytes()
}

/// The sequence number in key `k`.
#[allow(clippy::big_endian_bytes)]
fn seq_of(k: &[u8]) -> u64 {
    let mut s = [0u8; 8];
    s.copy_from_slice(&k[4..12]);
    u64::from_be_bytes(s)
}

impl RocksWal {
    pub(super) fn open(dir: &Path, sync: SyncMode, topics: usize) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = Arc::new(DB::open(&opts, dir)?);
        // After a reopen, continue after the last key of each topic.
        let mut next_write = Vec::with_capacity(topics);
        for t in 0..topics {
            let last = db
                .iterator(IteratorMode::From(&key(t, u64::MAX), Direction::Reverse))
                .next()
                .transpose()?
                .filter(|(k, _)| of_topic(k, t))
                .map_or(0, |(k, _)| seq_of(&k) + 1);
            next_write.push(AtomicU64::new(last));
        }
        let ticker = match sync {
            SyncMode::Interval(ms) => {
                let db = Arc::clone(&db);
                Some(Ticker::start(Duration::from_millis(ms), move || {
                    let _ = db.flush_wal(true);
                }))
            }
            SyncMode::Each | SyncMode::Never => None,
        };
        Ok(Self {
            db,
            sync_each: sync == SyncMode::Each,
            next_write,
            next_read: (0..topics).map(|_| AtomicU64::new(0)).collect(),
            _ticker: ticker,
        })
    }

    fn write_options(&self) -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(self.sync_each);
        w
    }
}

impl Wal for RocksWal {
    fn append(&self, topic: usize, data: &[u8]) -> Result<()> {
        let seq = self.next_write[topic].fetch_add(1, Ordering::Relaxed);
        self.db
            .put_opt(key(topic, seq), data, &self.write_options())?;
        Ok(())
    }

    fn batch_append(&self, topic: usize, entries: &[&[u8]]) -> Result<()> {
        let first = self.next_write[topic].fetch_add(entries.len() as u64, Ordering::Relaxed);
        let mut batch = WriteBatch::default();
        for (i, data) in entries.iter().enumerate() {
            batch.put(key(topic, first + i as u64), data);
        }
        self.db.write_opt(batch, &self.write_options())?;
        Ok(())
    }

    fn read_next(&self, topic: usize) -> Result<Option<usize>> {
        let seq = self.next_read[topic].load(Ordering::Relaxed);
        match self.db.get_pinned(key(topic, seq))? {
            Some(v) => {
                self.next_read[topic].store(seq + 1, Ordering::Relaxed);
                Ok(Some(v.len()))
            }
            None => Ok(None),
        }
    }

    fn batch_read(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        let seq = self.next_read[topic].load(Ordering::Relaxed);
        let (mut n, mut bytes) = (0usize, 0usize);
        let start = key(topic, seq);
        for item in self
            .db
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if !of_topic(&k, topic) {
                break;
            }
            n += 1;
            bytes += v.len();
            if n >= 2000 || bytes >= max_bytes {
                break;
            }
        }
        self.next_read[topic].store(seq + n as u64, Ordering::Relaxed);
        Ok((n, bytes))
    }

    fn flush(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}
