//! The read path: `read_next` and `batch_read`, corruption skipping, and cursor persistence.
//!
//! A read walks the chain from the cursor's block. It never passes a block that is not sealed
//! and never reads past a block's published end. Damaged frames are logged once with file and
//! offset, counted, and skipped: the reader resumes at the next valid frame.

use std::sync::Arc;

use walrus_storage::{Decoded, FRAME_HEADER_BYTES, decode_frame, resync};

use crate::{
    Engine, ReadConsistency, Result,
    block::Block,
    cursor_store::{CursorStore, PersistedCursor},
    format::{BATCH_ENTRIES_MAX, ENTRY_KIND, tag_matches},
    topic::{ReaderState, Topic},
};

/// One entry read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadEntry {
    /// The topic sequence number of the entry (0 for the topic's first entry).
    pub seq: u64,
    /// The payload.
    pub data: Vec<u8>,
}

/// What lies at a position of a block.
pub(crate) enum Step {
    Entry {
        seq: u64,
        data: Vec<u8>,
        next: u64,
    },
    /// Damaged bytes; the next valid frame (or the end) is at `resume`.
    Damaged {
        resume: u64,
    },
}

/// A position in a topic's chain: the block's index in the chain and the offset in it.
#[derive(Clone, Copy, Debug)]
struct Position {
    index: usize,
    offset: u64,
}

const FIRST_READ_BYTES: usize = 4096;

/// Largest single read of a batch read; bigger budgets take several steps.
const BATCH_READ_STEP_BYTES: usize = 1024 * 1024;

pub(crate) fn read_step(block: &Block, offset: u64, end: u64) -> Result<Step> {
    let Some(segment) = block.segment() else {
        return Ok(Step::Damaged { resume: end });
    };
    let available = (end - offset) as usize;
    let mut head = [0u8; FIRST_READ_BYTES];
    let first = available.min(FIRST_READ_BYTES);
    segment.read_at(block.file_offset(offset), &mut head[..first])?;
    let big;
    let bytes: &[u8] = match decode_frame(&head[..first]) {
        Decoded::Invalid(walrus_storage::FrameError::Truncated { needed, .. })
            if needed <= available && first >= FRAME_HEADER_BYTES =>
        {
            let mut whole = vec![0u8; needed];
            segment.read_at(block.file_offset(offset), &mut whole)?;
            big = whole;
            &big
        }
        _ => &head[..first],
    };
    match decode_frame(bytes) {
        // An entry of another topic (a misdirected write) is damage here, not data.
        Decoded::Frame(frame)
            if frame.header.kind == ENTRY_KIND && tag_matches(frame.header.flags, block.tag) =>
        {
            Ok(Step::Entry {
                seq: frame.header.seq,
                data: frame.payload.to_vec(),
                next: offset + frame.frame_len as u64,
            })
        }
        _ => {
            // Damage inside published data: look for the next valid frame in the rest.
            let mut rest = vec![0u8; available];
            segment.read_at(block.file_offset(offset), &mut rest)?;
            let resume = resync(&rest, 0).map_or(end, |pos| offset + pos as u64);
            Ok(Step::Damaged { resume })
        }
    }
}

/// Sequence number of the entry at `offset`, if a valid entry is there.
pub(crate) fn seq_at(block: &Block, offset: u64, end: u64) -> Option<u64> {
    if offset >= end {
        return None;
    }
    match read_step(block, offset, end).ok()? {
        Step::Entry { seq, .. } => Some(seq),
        Step::Damaged { .. } => None,
    }
}

/// Offset of the first entry with a sequence number of at least `seq`.
pub(crate) fn find_seq(block: &Block, seq: u64, end: u64) -> Option<u64> {
    let mut offset = block.data_start;
    while offset < end {
        match read_step(block, offset, end).ok()? {
            Step::Entry {
                seq: found, next, ..
            } => {
                if found >= seq {
                    return Some(offset);
                }
                offset = next;
            }
            Step::Damaged { resume } => offset = resume,
        }
    }
    None
}

impl Engine {
    fn report_damage(
        &self,
        topic: &Topic,
        reader: &mut ReaderState,
        block: &Block,
        offset: u64,
        resume: u64,
    ) {
        let key = (block.extent.file().seq(), block.file_offset(offset));
        if reader.last_corruption != Some(key) {
            reader.last_corruption = Some(key);
            self.counters.corrupt(1);
            tracing::warn!(
                topic = %topic.name,
                file = %block.extent.file().name(),
                offset = block.file_offset(offset),
                resumed_at = block.file_offset(resume),
                "corrupt entry skipped"
            );
        }
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
        let mut pos = Position {
            index: 0,
            offset: reader.offset,
        };
        loop {
            let Some(block) = topic.block_at(pos.index) else {
                break;
            };
            let (sealed, end) = block.visible();
            let offset = pos.offset.max(block.data_start);
            if offset < end {
                match read_step(&block, offset, end)? {
                    Step::Entry { seq, data, next } => {
                        self.counters.read(1);
                        if checkpoint {
                            self.commit(
                                &topic,
                                &mut reader,
                                Position {
                                    index: pos.index,
                                    offset: next,
                                },
                                seq + 1,
                                1,
                                consistency,
                            )?;
                        }
                        return Ok(Some(ReadEntry { seq, data }));
                    }
                    Step::Damaged { resume } => {
                        self.report_damage(&topic, &mut reader, &block, offset, resume);
                        pos.offset = resume;
                    }
                }
            } else if sealed {
                pos = Position {
                    index: pos.index + 1,
                    offset: 0,
                };
            } else {
                break;
            }
        }
        if checkpoint && pos.index > 0 {
            // Passing exhausted sealed blocks delivers nothing, but lets their files go.
            let next_seq = reader.next_seq;
            self.commit(&topic, &mut reader, pos, next_seq, 0, consistency)?;
        }
        Ok(None)
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
        // Taken out of the reader so `reader` stays free for the calls below; put back at
        // the end (an error just drops it).
        let mut scratch = std::mem::take(&mut reader.scratch);
        let mut pos = Position {
            index: 0,
            offset: reader.offset,
        };
        let mut entries: Vec<ReadEntry> = Vec::new();
        let mut payload_bytes = 0usize;
        let mut next_seq = reader.next_seq;
        'blocks: while let Some(block) = topic.block_at(pos.index) {
            let (sealed, end) = block.visible();
            let mut offset = pos.offset.max(block.data_start);
            while offset < end {
                let budget = max_bytes.saturating_sub(payload_bytes);
                // Read in bounded steps into a buffer reused across calls: reading a whole
                // budget at once wastes work when the 2,000-entry cap ends the call first.
                let want = ((end - offset) as usize)
                    .min(budget.saturating_add(64 * 1024))
                    .min(BATCH_READ_STEP_BYTES)
                    .max(FRAME_HEADER_BYTES.min((end - offset) as usize));
                let Some(segment) = block.segment() else {
                    break;
                };
                if scratch.len() < want {
                    scratch.resize(want, 0);
                }
                let buf = &mut scratch[..want];
                segment.read_at(block.file_offset(offset), buf)?;
                let buf = &*buf;
                let mut at = 0usize;
                loop {
                    if entries.len() >= BATCH_ENTRIES_MAX {
                        pos.offset = offset + at as u64;
                        break 'blocks;
                    }
                    if at >= buf.len() {
                        break;
                    }
                    match decode_frame(&buf[at..]) {
                        Decoded::Frame(frame)
                            if frame.header.kind == ENTRY_KIND
                                && tag_matches(frame.header.flags, block.tag) =>
                        {
                            let len = frame.payload.len();
                            if !entries.is_empty() && payload_bytes + len > max_bytes {
                                pos.offset = offset + at as u64;
                                break 'blocks;
                            }
                            payload_bytes += len;
                            next_seq = frame.header.seq + 1;
                            entries.push(ReadEntry {
                                seq: frame.header.seq,
                                data: frame.payload.to_vec(),
                            });
                            at += frame.frame_len;
                        }
                        Decoded::Invalid(walrus_storage::FrameError::Truncated {
                            needed, ..
                        }) if offset + at as u64 + needed as u64 <= end => {
                            // The frame continues past this read: read again from it.
                            break;
                        }
                        _ => {
                            let frame_offset = offset + at as u64;
                            let step = read_step(&block, frame_offset, end)?;
                            match step {
                                Step::Damaged { resume } => {
                                    self.report_damage(
                                        &topic,
                                        &mut reader,
                                        &block,
                                        frame_offset,
                                        resume,
                                    );
                                    at = (resume - offset) as usize;
                                    if at >= buf.len() {
                                        break;
                                    }
                                }
                                Step::Entry { .. } => break,
                            }
                        }
                    }
                }
                if at == 0 {
                    // One frame larger than what we read: take it whole if the budget allows.
                    match read_step(&block, offset, end)? {
                        Step::Entry { seq, data, next } => {
                            if !entries.is_empty() && payload_bytes + data.len() > max_bytes {
                                pos.offset = offset;
                                break 'blocks;
                            }
                            payload_bytes += data.len();
                            next_seq = seq + 1;
                            entries.push(ReadEntry { seq, data });
                            offset = next;
                        }
                        Step::Damaged { resume } => {
                            self.report_damage(&topic, &mut reader, &block, offset, resume);
                            offset = resume;
                        }
                    }
                } else {
                    offset += at as u64;
                }
            }
            pos.offset = offset;
            if !sealed || offset < end {
                break;
            }
            pos = Position {
                index: pos.index + 1,
                offset: 0,
            };
        }
        self.counters.read(entries.len() as u64);
        if checkpoint && (!entries.is_empty() || pos.index > 0) {
            self.commit(
                &topic,
                &mut reader,
                pos,
                next_seq,
                entries.len() as u64,
                consistency,
            )?;
        }
        reader.scratch = scratch;
        Ok(entries)
    }

    /// Moves the cursor to `pos` (consuming the blocks it passed) and persists it if the
    /// consistency mode asks for it now.
    fn commit(
        &self,
        topic: &Topic,
        reader: &mut ReaderState,
        pos: Position,
        next_seq: u64,
        delivered: u64,
        consistency: ReadConsistency,
    ) -> Result<()> {
        if self.config.read_only {
            return Err(crate::Error::ReadOnly("checkpoint"));
        }
        let before = (
            reader.offset,
            reader.next_seq,
            reader.unpersisted,
            reader.passed.len(),
        );
        topic.pass_blocks(reader, pos.index, next_seq);
        reader.offset = pos.offset;
        reader.next_seq = next_seq;
        reader.unpersisted += delivered;
        let due = match consistency {
            ReadConsistency::StrictlyAtOnce => reader.unpersisted > 0,
            ReadConsistency::AtLeastOnce { persist_every } => {
                reader.unpersisted >= u64::from(persist_every.max(1))
            }
        };
        if due && let Err(err) = self.persist(topic, reader) {
            // The read fails, so the cursor must not move: the same entries come back next.
            (reader.offset, reader.next_seq, reader.unpersisted) = (before.0, before.1, before.2);
            let mut chain = topic.chain.write();
            for (block, _) in reader.passed.drain(before.3..).rev() {
                chain.push_front(block);
            }
            return Err(err);
        }
        reader.release_passed();
        Ok(())
    }

    pub(crate) fn persist(&self, topic: &Topic, reader: &mut ReaderState) -> Result<()> {
        self.durability.check_poisoned()?;
        self.durability
            .check(persist_cursor(&self.cursors, topic, reader))?;
        self.counters.cursor_persisted();
        Ok(())
    }
}

/// Writes the reader's position to its cursor slot (assigning one first if needed) and
/// releases the blocks the persisted cursor has now left behind.
pub(crate) fn persist_cursor(
    cursors: &CursorStore,
    topic: &Topic,
    reader: &mut ReaderState,
) -> Result<()> {
    let slot = match reader.slot {
        Some(slot) => slot,
        None => cursors.assign_slot()?,
    };
    reader.slot = Some(slot);
    let front: Option<Arc<Block>> = topic.block_at(0);
    let cursor = PersistedCursor {
        // Mutant cursor_persisted_ahead: persists a cursor one entry past what was read.
        next_seq: reader.next_seq + u64::from(cfg!(walrus_mutant = "cursor_persisted_ahead")),
        file_seq: front.as_ref().map_or(0, |b| b.extent.file().seq()),
        extent_offset: front.as_ref().map_or(0, |b| b.extent.offset()),
        offset: reader.offset,
    };
    // The generation moves only on success: a failed write may have damaged this half of
    // the slot pair, and the retry must rewrite it, not the other (still valid) half.
    let generation = reader.generation + 1;
    cursors.persist(slot, generation, &topic.name, &cursor)?;
    reader.generation = generation;
    reader.unpersisted = 0;
    reader.persisted_seq = Some(reader.next_seq);
    reader.release_passed();
    Ok(())
}
