//! The engine's data operations: validate, find the topic, take its writer or reader lock,
//! and wait for durability as the schedule asks. The work itself is the topic's writer
//! (`append.rs`) or reader (`reader.rs`).

use std::{ops::Range, sync::atomic::Ordering};

use walrus_storage::frame_len;

use crate::{
    Engine, Error, FsyncSchedule, ReadConsistency, Result,
    append::WriteCtx,
    format::{BATCH_BYTES_MAX, BATCH_ENTRIES_MAX, ENTRY_BYTES_MAX},
    reader::{ReadCtx, ReadEntry, TopicReader},
    topic::Topic,
};

/// Resets the topic's batch flag on every exit path.
struct BatchGuard<'a>(&'a Topic);

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        self.0.batch_active.store(false, Ordering::Release);
    }
}

// The batch-size error names the limit as walrus-rust 0.2.0 does ("10GB limit").
const _: () = assert!(BATCH_BYTES_MAX == 10 << 30);

fn check_entry_len(len: usize) -> Result<()> {
    if len > ENTRY_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "entry is {len} bytes, the limit is {ENTRY_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

fn check_batch(batch: &[&[u8]]) -> Result<()> {
    if batch.len() > BATCH_ENTRIES_MAX {
        return Err(Error::InvalidInput(format!(
            "batch of {} entries exceeds the {BATCH_ENTRIES_MAX} entry limit",
            batch.len()
        )));
    }
    let mut total = 0u64;
    for entry in batch {
        check_entry_len(entry.len())?;
        total += frame_len(entry.len()) as u64;
    }
    if total > BATCH_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "batch of {total} bytes (with entry headers) exceeds the 10GB limit \
             ({BATCH_BYTES_MAX} bytes)"
        )));
    }
    Ok(())
}

impl Engine {
    pub(crate) fn write_ctx(&self) -> WriteCtx<'_> {
        WriteCtx {
            alloc: &self.alloc,
            durability: &self.durability,
            preparer: &self.preparer,
        }
    }

    pub(crate) fn read_ctx(&self) -> ReadCtx<'_> {
        ReadCtx {
            cursors: &self.cursors,
            durability: &self.durability,
            counters: &self.counters,
            read_only: self.config.read_only,
        }
    }

    /// Appends one entry to `topic`; with `SyncEach` returns only once it is durable.
    pub fn append(&self, topic: &str, data: &[u8], schedule: FsyncSchedule) -> Result<()> {
        self.append_at(topic, data, schedule).map(drop)
    }

    /// [`Self::append`] that returns the entry's position (its sequence number).
    pub(crate) fn append_at(
        &self,
        topic: &str,
        data: &[u8],
        schedule: FsyncSchedule,
    ) -> Result<u64> {
        self.durability
            .check(self.append_inner(topic, data, schedule))
    }

    fn append_inner(&self, topic: &str, data: &[u8], schedule: FsyncSchedule) -> Result<u64> {
        check_entry_len(data.len())?;
        self.durability.check_poisoned()?;
        let topic = self.topic_or_create(topic)?;
        if !self.config.wait_for_batches && topic.batch_active.load(Ordering::Acquire) {
            return Err(Error::WouldBlock("batch write in progress for this topic"));
        }
        let (ticket, position) = {
            let mut writer = topic.writer.lock();
            let durable = matches!(schedule, FsyncSchedule::SyncEach);
            let ticket = writer.append(self.write_ctx(), &topic, data, durable)?;
            (ticket, writer.next_seq - 1)
        };
        self.counters.appended(1, data.len() as u64);
        self.wait_if_sync_each(schedule, ticket, 1)?;
        Ok(position)
    }

    /// Appends every entry of `batch` or none of them, also across a crash.
    pub fn batch_append(
        &self,
        topic: &str,
        batch: &[&[u8]],
        schedule: FsyncSchedule,
    ) -> Result<()> {
        self.batch_append_at(topic, batch, schedule).map(drop)
    }

    /// [`Self::batch_append`] that returns the entries' positions (empty for an empty batch,
    /// which appends nothing).
    pub(crate) fn batch_append_at(
        &self,
        topic: &str,
        batch: &[&[u8]],
        schedule: FsyncSchedule,
    ) -> Result<Range<u64>> {
        self.durability
            .check(self.batch_append_inner(topic, batch, schedule))
    }

    fn batch_append_inner(
        &self,
        topic: &str,
        batch: &[&[u8]],
        schedule: FsyncSchedule,
    ) -> Result<Range<u64>> {
        check_batch(batch)?;
        if batch.is_empty() {
            return Ok(0..0);
        }
        self.durability.check_poisoned()?;
        let topic = self.topic_or_create(topic)?;
        if topic.batch_active.swap(true, Ordering::AcqRel) && !self.config.wait_for_batches {
            return Err(Error::WouldBlock("another batch write already in progress"));
        }
        let guard = (!self.config.wait_for_batches).then(|| BatchGuard(&topic));
        let (ticket, positions) = {
            let mut writer = topic.writer.lock();
            let ticket = writer.append_batch(self.write_ctx(), &topic, batch)?;
            (
                ticket,
                writer.next_seq - batch.len() as u64..writer.next_seq,
            )
        };
        drop(guard);
        let bytes = batch.iter().map(|e| e.len() as u64).sum();
        self.counters.appended(batch.len() as u64, bytes);
        self.wait_if_sync_each(schedule, ticket, batch.len() as u64)?;
        Ok(positions)
    }

    /// Under `SyncEach`, returns once the `entries` appended under `ticket` are durable.
    fn wait_if_sync_each(&self, schedule: FsyncSchedule, ticket: u64, entries: u64) -> Result<()> {
        // Mutant ack_before_fsync: acknowledges SyncEach appends before they are durable.
        if matches!(schedule, FsyncSchedule::SyncEach) && !cfg!(walrus_mutant = "ack_before_fsync")
        {
            self.durability.wait_durable(ticket, &self.alloc)?;
            self.counters
                .synced_appends
                .fetch_add(entries, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads the entry at the cursor. With `checkpoint` the cursor moves past it (and is
    /// persisted as `consistency` asks); without, nothing changes.
    pub fn read_next(
        &self,
        topic: &str,
        checkpoint: bool,
        consistency: ReadConsistency,
    ) -> Result<Option<ReadEntry>> {
        let Some(topic) = self.topic(topic) else {
            return Ok(None);
        };
        let mut reader = topic.reader.lock();
        reader.read_next(self.read_ctx(), &topic, checkpoint, consistency)
    }

    /// Reads entries from the cursor until their payloads would exceed `max_bytes` (at least
    /// one entry when any is available), at most 2,000, never skipping one.
    pub fn batch_read(
        &self,
        topic: &str,
        max_bytes: usize,
        checkpoint: bool,
        consistency: ReadConsistency,
    ) -> Result<Vec<ReadEntry>> {
        let Some(topic) = self.topic(topic) else {
            return Ok(Vec::new());
        };
        let mut reader = topic.reader.lock();
        reader.batch_read(self.read_ctx(), &topic, max_bytes, checkpoint, consistency)
    }

    /// [`Self::batch_read`] without a copy or an allocation per entry: each entry goes to
    /// `sink` as `(sequence number, payload)`, borrowed for the call; returns the count.
    pub fn batch_read_with(
        &self,
        topic: &str,
        max_bytes: usize,
        checkpoint: bool,
        consistency: ReadConsistency,
        sink: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize> {
        let Some(topic) = self.topic(topic) else {
            return Ok(0);
        };
        let mut reader = topic.reader.lock();
        let ctx = self.read_ctx();
        reader.batch_visit(ctx, &topic, max_bytes, checkpoint, consistency, sink)
    }

    /// Persists the cursor of `topic` now.
    pub(crate) fn persist(&self, topic: &Topic, reader: &mut TopicReader) -> Result<()> {
        reader.persist(self.read_ctx(), topic)
    }
}
