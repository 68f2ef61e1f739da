//! raft-engine 0.4 (TiKV's log store): one raft group per topic, entries indexed from 1.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use protobuf::well_known_types::BytesValue;
use raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};

use super::{SyncMode, Ticker, Wal};

/// raft-engine stores protobuf messages and asks each for its index. A well-known
/// `BytesValue` holding the index (8 bytes) then the payload avoids generated protobuf code
/// (and a protoc build); raft's own `Entry` carries index and term too, so the overhead is fair.
#[derive(Clone, Copy, Debug)]
struct Ext;

impl MessageExt for Ext {
    type Entry = BytesValue;

    fn index(e: &BytesValue) -> u64 {
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&e.value[..8]);
        u64::from_le_bytes(idx)
    }
}

fn entry(index: u64, data: &[u8]) -> BytesValue {
    let mut value = Vec::with_capacity(8 + data.len());
    value.extend_from_slice(&index.to_le_bytes());
    value.extend_from_slice(data);
    let mut e = BytesValue::new();
    e.value = value;
    e
}

pub(super) struct RaftWal {
    engine: Arc<Engine>,
    sync_each: bool,
    next_write: Vec<AtomicU64>,
    next_read: Vec<AtomicU64>,
    _ticker: Option<Ticker>,
}

fn region(topic: usize) -> u64 {
    topic as u64 + 1
}

/// The raft group of [`sync_engine`]'s marker: no topic's (those are 1 up).
const SYNC_REGION: u64 = u64::MAX;

/// Makes everything written so far durable. `Engine::sync` cannot: 0.4 writes an empty batch,
/// which `Engine::write` returns from before its fdatasync (tikv/raft-engine#395), so it syncs
/// nothing. A one-key batch written with `sync` goes through the write group's fdatasync of
/// the active file, as a TiKV write that asks for durability does.
fn sync_engine(engine: &Engine) -> Result<()> {
    let mut batch = LogBatch::with_capacity(1);
    batch.put(SYNC_REGION, b"sync".to_vec(), Vec::new())?;
    engine.write(&mut batch, true)?;
    Ok(())
}

impl RaftWal {
    pub(super) fn open(dir: &Path, sync: SyncMode, topics: usize) -> Result<Self> {
        let config = Config {
            dir: dir.to_string_lossy().into_owned(),
            // Payloads are random: compressing them would only cost CPU.
            batch_compression_threshold: ReadableSize(0),
            ..Config::default()
        };
        let engine = Arc::new(Engine::open(config)?);
        // After a reopen, continue after what recovery found.
        let next_write = (0..topics)
            .map(|t| AtomicU64::new(engine.last_index(region(t)).map_or(1, |i| i + 1)))
            .collect();
        let next_read = (0..topics)
            .map(|t| AtomicU64::new(engine.first_index(region(t)).unwrap_or(1)))
            .collect();
        let ticker = match sync {
            SyncMode::Interval(ms) => {
                let engine = Arc::clone(&engine);
                Some(Ticker::start(Duration::from_millis(ms), move || {
                    let _ = sync_engine(&engine);
                }))
            }
            SyncMode::Each | SyncMode::Never => None,
        };
        Ok(Self {
            engine,
            sync_each: sync == SyncMode::Each,
            next_write,
            next_read,
            _ticker: ticker,
        })
    }
}

impl Wal for RaftWal {
    fn append(&self, topic: usize, data: &[u8]) -> Result<()> {
        let index = self.next_write[topic].fetch_add(1, Ordering::Relaxed);
        let mut batch = LogBatch::with_capacity(1);
        batch.add_entries::<Ext>(region(topic), &[entry(index, data)])?;
        self.engine.write(&mut batch, self.sync_each)?;
        Ok(())
    }

    fn batch_append(&self, topic: usize, entries: &[&[u8]]) -> Result<()> {
        let first = self.next_write[topic].fetch_add(entries.len() as u64, Ordering::Relaxed);
        let entries: Vec<BytesValue> = entries
            .iter()
            .enumerate()
            .map(|(i, data)| entry(first + i as u64, data))
            .collect();
        let mut batch = LogBatch::with_capacity(1);
        batch.add_entries::<Ext>(region(topic), &entries)?;
        self.engine.write(&mut batch, self.sync_each)?;
        Ok(())
    }

    fn read_next(&self, topic: usize) -> Result<Option<usize>> {
        let index = self.next_read[topic].load(Ordering::Relaxed);
        match self.engine.get_entry::<Ext>(region(topic), index)? {
            Some(e) => {
                self.next_read[topic].store(index + 1, Ordering::Relaxed);
                Ok(Some(e.value.len() - 8))
            }
            None => Ok(None),
        }
    }

    fn batch_read(&self, topic: usize, max_bytes: usize) -> Result<(usize, usize)> {
        let begin = self.next_read[topic].load(Ordering::Relaxed);
        let Some(last) = self.engine.last_index(region(topic)) else {
            return Ok((0, 0));
        };
        if begin > last {
            return Ok((0, 0));
        }
        // At most 2,000 entries, like Walrus's batch reads.
        let end = (last + 1).min(begin + 2000);
        let mut out = Vec::new();
        let n = self.engine.fetch_entries_to::<Ext>(
            region(topic),
            begin,
            end,
            Some(max_bytes),
            &mut out,
        )?;
        self.next_read[topic].store(begin + n as u64, Ordering::Relaxed);
        Ok((n, out.iter().map(|e| e.value.len() - 8).sum()))
    }

    fn read_at(&self, topic: usize, index: u64) -> Result<Option<usize>> {
        // Raft indexes start at 1.
        Ok(self
            .engine
            .get_entry::<Ext>(region(topic), index + 1)?
            .map(|e| e.value.len() - 8))
    }

    fn read_range(
        &self,
        topic: usize,
        index: u64,
        count: usize,
        max_bytes: usize,
    ) -> Result<(usize, usize)> {
        let Some(last) = self.engine.last_index(region(topic)) else {
            return Ok((0, 0));
        };
        let begin = index + 1;
        let end = (last + 1).min(begin.saturating_add(count as u64));
        if begin >= end {
            return Ok((0, 0));
        }
        let mut out = Vec::with_capacity(end.saturating_sub(begin) as usize);
        let n = self.engine.fetch_entries_to::<Ext>(
            region(topic),
            begin,
            end,
            Some(max_bytes),
            &mut out,
        )?;
        Ok((n, out.iter().map(|e| e.value.len() - 8).sum()))
    }

    fn flush(&self) -> Result<()> {
        sync_engine(&self.engine)
    }
}
