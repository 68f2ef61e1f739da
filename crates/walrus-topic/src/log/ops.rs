//! The engine side of [`TopicLog`](super::TopicLog): positional reads, purges, durability of
//! positions and waiting for the tail. Appends that return positions are `engine/ops.rs`'s.

use std::{
    ops::Range,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{durable::DurableCallback, index::seek};
use crate::{
    Engine, Error, FsyncSchedule, ReadConsistency, Result,
    frames::{ReadAhead, Step},
    reader::{ReadEntry, TopicReader},
    topic::Topic,
};

/// Read-ahead of a single positional read: enough for the frames it may walk past.
pub(super) const READ_AT_WINDOW: usize = 64 * 1024;
/// Largest read-ahead of a range read.
const RANGE_WINDOW_MAX: usize = 1024 * 1024;

impl Engine {
    /// The topic `name` for a log handle: an existing one, or a new, empty one (in memory
    /// only until its first append, as for appends).
    pub(crate) fn topic_for_log(&self, name: &str) -> Result<Arc<Topic>> {
        match self.topic(name) {
            Some(topic) => Ok(topic),
            None => self.topic_or_create(name),
        }
    }

    /// The entry at position `seq` of `topic`, if it is readable.
    pub(crate) fn read_at(
        &self,
        topic: &Topic,
        seq: u64,
        ahead: &mut ReadAhead,
    ) -> Result<Option<Vec<u8>>> {
        let mut out = None;
        let range = seq..seq.saturating_add(1);
        self.read_positions(topic, range, READ_AT_WINDOW, ahead, &mut |_, payload| {
            out = Some(payload.to_vec());
            false
        })?;
        self.counters.read(u64::from(out.is_some()));
        Ok(out)
    }

    /// The readable entries of `topic` in `range`, in order, until their payloads would
    /// exceed `max_bytes` (at least one entry if any is readable).
    pub(crate) fn read_range(
        &self,
        topic: &Topic,
        range: Range<u64>,
        max_bytes: usize,
        ahead: &mut ReadAhead,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let window = max_bytes.saturating_add(64 * 1024).min(RANGE_WINDOW_MAX);
        self.read_positions(topic, range, window, ahead, &mut |seq, payload| {
            if !out.is_empty() && bytes.saturating_add(payload.len()) > max_bytes {
                return false;
            }
            bytes += payload.len();
            out.push((seq, payload.to_vec()));
            true
        })?;
        self.counters.read(out.len() as u64);
        Ok(out)
    }

    /// Hands `take` the readable entries of `topic` in `range`, in order, until it declines
    /// one. A position inside the readable range without a valid entry is an error; one a
    /// concurrent purge took ends the read (or, before any entry, restarts it at the floor).
    fn read_positions(
        &self,
        topic: &Topic,
        range: Range<u64>,
        window: usize,
        ahead: &mut ReadAhead,
        take: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<()> {
        let positions = &topic.positions;
        let end = range.end.min(positions.tail.next());
        let mut from = range.start;
        let result = loop {
            let Some(first) = positions.first() else {
                break Ok(());
            };
            from = from.max(first);
            if from >= end {
                break Ok(());
            }
            let mut taken = 0;
            let stop = match walk(topic, from, end, window, ahead, take, &mut taken) {
                Ok(stop) => stop,
                // A purge consumed the block under the read and its file went: not an error.
                Err(_) if from + taken < positions.floor() => Some(from + taken),
                Err(err) => break Err(err),
            };
            match stop {
                None => break Ok(()),
                Some(seq) if seq < positions.floor() => {
                    if taken > 0 {
                        break Ok(());
                    }
                    from = seq;
                }
                Some(seq) => break Err(missing_entry(topic, seq)),
            }
        };
        ahead.shrink();
        result
    }

    /// Makes the entries of `topic` before `seq` unreadable: the cursor (shared with the
    /// 0.2.0 reader) moves up to `seq` and is persisted, which is the floor, and the blocks
    /// wholly behind it are consumed (their files deleted once all their blocks are). Past
    /// the end, the next append gets `seq`, in a new block.
    pub(crate) fn purge_before(&self, topic: &Topic, seq: u64) -> Result<()> {
        if self.config.read_only {
            return Err(Error::ReadOnly("purge"));
        }
        let mut writer = topic.writer.lock();
        let mut reader = topic.reader.lock();
        if seq <= topic.positions.floor() {
            return Ok(());
        }
        let ctx = self.write_ctx();
        let past_end = seq > writer.next_seq;
        if past_end {
            // Nothing more goes into the active block: the entry `seq` starts a new one.
            writer.seal_active(ctx);
        }
        if reader.next_seq <= seq {
            self.move_cursor(topic, &mut reader, seq, writer.next_seq)?;
        } else {
            // A cursor already past `seq` stays; only its persisted position (the floor)
            // moves up to `seq`.
            reader.persist_floor(self.read_ctx(), topic, seq)?;
        }
        if past_end {
            // Only now: a crash before the cursor was durable must not find entries after a
            // gap that nothing explains.
            writer.skip_to(ctx, topic, seq);
        }
        drop((reader, writer));
        topic.positions.prune();
        Ok(())
    }

    /// Moves the cursor, which is at or behind `seq`, to `seq`, passing the blocks wholly
    /// behind it, and persists it; on failure the cursor stays where it was.
    fn move_cursor(
        &self,
        topic: &Topic,
        reader: &mut TopicReader,
        seq: u64,
        writer_next: u64,
    ) -> Result<()> {
        let behind = {
            let chain = topic.chain.read();
            let mut count = 0;
            for (index, block) in chain.iter().enumerate() {
                let end_seq = chain.get(index + 1).map_or(writer_next, |b| b.first_seq);
                // The active block is never passed (the writer appends to it).
                if end_seq > seq || !block.visible().0 {
                    break;
                }
                count += 1;
            }
            count
        };
        let offset = match topic.block_at(behind) {
            Some(front) => seek(&front, seq, &mut ReadAhead::default())?,
            None => 0,
        };
        let before = (reader.offset, reader.next_seq, reader.passed.len());
        topic.pass_blocks(reader, behind, seq);
        reader.offset = offset;
        reader.next_seq = seq;
        if let Err(err) = self.persist(topic, reader) {
            (reader.offset, reader.next_seq) = (before.0, before.1);
            let mut chain = topic.chain.write();
            for (block, _) in reader.passed.drain(before.2..).rev() {
                chain.push_front(block);
            }
            return Err(err);
        }
        Ok(())
    }

    /// The last position of `topic` known durable.
    pub(crate) fn durable_position(&self, topic: &Topic) -> Option<u64> {
        let durable_ticket = self.durability.durable_ticket();
        let end = topic.writer.lock().marks.resolve(durable_ticket);
        end.checked_sub(1)
    }

    /// The group-commit ticket that makes position `seq` of `topic` durable; `None` if it is
    /// durable already. A position not appended yet is an error.
    fn position_ticket(&self, topic: &Topic, seq: u64) -> Result<Option<u64>> {
        let mut writer = topic.writer.lock();
        if seq >= writer.next_seq {
            return Err(Error::InvalidInput(format!(
                "position {seq} of topic {:?} is not appended yet (the next append gets {})",
                topic.name, writer.next_seq
            )));
        }
        writer.marks.resolve(self.durability.durable_ticket());
        Ok(writer.marks.ticket_for(seq))
    }

    /// Returns once position `seq` of `topic` is durable. `Milliseconds(n)` waits for the
    /// background sync (and leads a sync itself only if none came within `2n` ms); the other
    /// schedules join the sync round in progress or lead the next (group commit).
    pub(crate) fn wait_position_durable(
        &self,
        topic: &Topic,
        seq: u64,
        schedule: FsyncSchedule,
    ) -> Result<()> {
        let Some(ticket) = self.position_ticket(topic, seq)? else {
            return Ok(());
        };
        match schedule {
            FsyncSchedule::Milliseconds(ms) => {
                let patience = Duration::from_millis(ms.max(1))
                    .saturating_mul(2)
                    .saturating_add(Duration::from_millis(10));
                let deadline = Instant::now().checked_add(patience);
                self.durability
                    .wait_durable_until(ticket, &self.alloc, deadline)
            }
            FsyncSchedule::SyncEach | FsyncSchedule::NoFsync => {
                self.durability.wait_durable(ticket, &self.alloc)
            }
        }
    }

    /// Calls `callback` once position `seq` of `topic` is durable: now if it is, else from
    /// the thread that completes the covering sync.
    pub(crate) fn on_position_durable(
        &self,
        topic: &Topic,
        seq: u64,
        callback: DurableCallback,
    ) -> Result<()> {
        match self.position_ticket(topic, seq)? {
            None => callback(Ok(())),
            Some(ticket) => self.durability.on_durable(ticket, callback),
        }
        Ok(())
    }

    /// [`Engine::read_next`] that waits up to `timeout` for an entry to be appended when
    /// there is none to read.
    pub fn read_next_timeout(
        &self,
        name: &str,
        checkpoint: bool,
        consistency: ReadConsistency,
        timeout: Duration,
    ) -> Result<Option<ReadEntry>> {
        let deadline = Instant::now().checked_add(timeout);
        let topic = match self.topic(name) {
            Some(topic) => topic,
            // Nothing is ever appended to a read-only instance.
            None if self.config.read_only => return Ok(None),
            None => self.topic_or_create(name)?,
        };
        loop {
            // Noted before the read: an append after it moves the tail past this.
            let seen = topic.positions.tail.next();
            if let Some(entry) = self.read_next(name, checkpoint, consistency)? {
                return Ok(Some(entry));
            }
            if !topic.positions.tail.wait_past(seen, deadline) {
                return Ok(None);
            }
        }
    }
}

/// Hands `take` the entries of `topic` from the readable position `from` until `end`, in
/// order, until it declines one, counting them in `taken`. Returns the first position without
/// a valid entry if it met one.
fn walk(
    topic: &Topic,
    from: u64,
    end: u64,
    window: usize,
    ahead: &mut ReadAhead,
    take: &mut dyn FnMut(u64, &[u8]) -> bool,
    taken: &mut u64,
) -> Result<Option<u64>> {
    let mut expect = from;
    let Some(mut block) = topic.positions.block_for(expect) else {
        return Ok(Some(expect));
    };
    let mut offset = block.offsets.start_for(&block, expect, ahead)?;
    while expect < end {
        let (_, block_end) = block.visible();
        if offset >= block_end {
            match topic.positions.block_for(expect) {
                Some(next) if !Arc::ptr_eq(&next, &block) => {
                    offset = next.offsets.start_for(&next, expect, ahead)?;
                    block = next;
                    continue;
                }
                _ => return Ok(Some(expect)),
            }
        }
        match ahead.frame_at(&block, offset, block_end, window, block.first_seq)? {
            Step::Entry { seq, payload, next } => {
                if seq > expect {
                    return Ok(Some(expect));
                }
                if seq == expect {
                    if !take(seq, payload) {
                        break;
                    }
                    *taken += 1;
                    expect += 1;
                }
                offset = next;
            }
            Step::Damaged { resume } => offset = resume,
        }
    }
    Ok(None)
}

fn missing_entry(topic: &Topic, seq: u64) -> Error {
    let file = topic
        .positions
        .block_for(seq)
        .map_or_else(String::new, |b| b.extent.file().name().to_owned());
    tracing::warn!(topic = %topic.name, seq, file = %file, "positional read of a damaged entry");
    Error::MissingEntry {
        topic: topic.name.clone(),
        seq,
        file,
    }
}
