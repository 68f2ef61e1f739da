//! Truncating a topic's suffix (`TopicLog::truncate_from`), and the metadata record.
//!
//! A truncation removes the entries from position `cut` on, on disk, before it returns; the
//! next append gets `cut` and goes into a new block. The steps, under the topic's writer and
//! reader locks (no append or read of the topic runs meanwhile):
//!
//! 1. One group-commit sync: everything written so far is durable, so the entries kept are,
//!    and the claims of the entries appended after the cut stay true.
//! 2. The topic record says "cut at `cut`, pending" (durably, `topic_record.rs`).
//! 3. The entry before the cut is made the last of its batch if the cut splits a batch
//!    (its header rewritten with the batch-end flag: recovery would otherwise drop the
//!    batch's kept entries as a batch whose end never reached the disk); the entries from
//!    `cut` on are zeroed in the block that holds `cut`, with its seal record; later blocks
//!    get headers flagged removed (recovery gives their extents up) and are given up. One
//!    sync.
//! 4. The record says "cut at `cut`, done".
//!
//! A crash before step 2 is durable leaves the old suffix; after it, recovery finishes steps
//! 3 and 4 from the record before any append, so the suffix is gone. Appends after the cut
//! only happen after step 4, so old and new entries never meet at one position.

use std::sync::Arc;

use walrus_storage::{
    FRAME_HEADER_BYTES, FrameHeader, Segment, encode_frame, frame_len, stored_header,
};

use super::{index::seek, ops::READ_AT_WINDOW};
use crate::{
    Engine, Error, Result,
    block::{Block, header_frame},
    format::{BLOCK_FLAG_REMOVED, ENTRY_KIND, FLAG_BATCH, FLAG_BATCH_END, SEAL_BYTES},
    frames::{ReadAhead, Step},
    reader::TopicReader,
    topic::Topic,
    topic_record::Cut,
};

/// What a truncation changes: the block cut inside (with the offset of its first removed
/// entry), the blocks removed whole, and the entry whose batch it closes.
struct Plan {
    cut_inside: Option<(Arc<Block>, u64)>,
    removed: Vec<Arc<Block>>,
    close: Option<Close>,
}

/// The entry before the cut, when it must become the last of its batch.
struct Close {
    /// Its block, whose seal record (which says the block ends inside a batch) goes.
    block: Arc<Block>,
    segment: Arc<dyn Segment>,
    file_seq: u64,
    file_offset: u64,
}

impl Engine {
    /// Replaces the metadata record of `topic`, durably.
    pub(crate) fn set_meta(&self, topic: &Topic, bytes: &[u8]) -> Result<()> {
        if self.config.read_only {
            return Err(Error::ReadOnly("set_meta"));
        }
        self.durability.check_poisoned()?;
        self.records
            .update(&topic.name, |record| record.meta = Some(bytes.to_vec()))
    }

    /// The metadata record of `topic`, if one was set.
    pub(crate) fn meta(&self, topic: &Topic) -> Option<Vec<u8>> {
        self.meta_of(&topic.name)
    }

    /// The metadata record of the topic `name` (`TopicLog::meta`), without creating the
    /// topic.
    pub fn meta_of(&self, name: &str) -> Option<Vec<u8>> {
        self.records.get(name).meta
    }

    /// Removes the entries of `topic` from `cut` on (see the module docs).
    pub(crate) fn truncate_from(&self, topic: &Topic, cut: u64) -> Result<()> {
        if self.config.read_only {
            return Err(Error::ReadOnly("truncate"));
        }
        let mut writer = topic.writer.lock();
        let mut reader = topic.reader.lock();
        if cut >= writer.next_seq {
            return Ok(());
        }
        let floor = topic.positions.floor();
        if cut < floor {
            return Err(Error::InvalidInput(format!(
                "cannot truncate topic {:?} from position {cut}: positions before {floor} are \
                 purged already",
                topic.name
            )));
        }
        let _span = tracing::debug_span!("walrus_truncate", topic = %topic.name, cut).entered();
        // 1. Everything written so far is durable.
        self.durability.flush(&self.alloc)?;
        let plan = plan(topic, cut)?;
        let mut affected: Vec<Arc<Block>> = plan.removed.clone();
        affected.extend(plan.cut_inside.iter().map(|(b, _)| Arc::clone(b)));
        affected.extend(plan.close.iter().map(|c| Arc::clone(&c.block)));
        // No seal record may land in these blocks from now on.
        self.durability
            .seals
            .forget(|b| affected.iter().any(|a| std::ptr::eq(Arc::as_ptr(a), b)));
        // 2. The intent, durably.
        let close_at = plan.close.as_ref().map(|c| (c.file_seq, c.file_offset));
        let pending = Cut {
            seq: cut,
            pending: true,
            close_at,
        };
        self.records
            .update(&topic.name, |record| record.cut = Some(pending))?;
        // 3 and 4. A failure here leaves the disk between the old suffix and none: only a
        // reopen (whose recovery finishes the truncation from the record) may go on.
        let done = Cut {
            pending: false,
            ..pending
        };
        let result = apply(&plan, &topic.name, cut)
            .and_then(|()| self.records.update(&topic.name, |r| r.cut = Some(done)));
        if let Err(err) = result {
            self.durability
                .poison(format!("truncation of {:?} interrupted: {err}", topic.name));
            return Err(err);
        }
        // The topic in memory follows.
        if let Some((block, offset)) = &plan.cut_inside {
            block.truncate_to(*offset, cut);
        }
        for block in &plan.removed {
            block.extent.abandon();
        }
        topic.chain.write().retain(|b| !is_in(b, &plan.removed));
        reader.passed.retain(|(b, _)| !is_in(b, &plan.removed));
        topic.positions.truncate(cut);
        writer.truncated(cut);
        topic.positions.tail.publish(cut);
        if reader.next_seq > cut {
            rewind(topic, &mut reader, cut)?;
        }
        Ok(())
    }
}

fn is_in(block: &Arc<Block>, list: &[Arc<Block>]) -> bool {
    list.iter().any(|b| Arc::ptr_eq(b, block))
}

/// Finds what a cut at `cut` changes.
fn plan(topic: &Topic, cut: u64) -> Result<Plan> {
    let mut ahead = ReadAhead::default();
    let blocks = topic.positions.all();
    let mut plan = Plan {
        cut_inside: None,
        removed: Vec::new(),
        close: None,
    };
    for block in blocks {
        if block.first_seq >= cut {
            plan.removed.push(block);
        } else {
            let offset = end_before(&block, cut, &mut ahead)?;
            if offset < block.visible().1 {
                plan.cut_inside = Some((block, offset));
            }
        }
    }
    if let Some(before) = cut.checked_sub(1)
        && before >= topic.positions.floor()
        && let Some(block) = topic.positions.block_for(before)
    {
        plan.close = batch_to_close(&block, before, &mut ahead)?;
    }
    Ok(plan)
}

/// Offset in `block` just after its last valid entry numbered below `cut` (where the block
/// ends once the entries from `cut` on are removed, damaged frames among them included).
fn end_before(block: &Block, cut: u64, ahead: &mut ReadAhead) -> Result<u64> {
    let (_, end) = block.visible();
    let mut offset = block.offsets.start_for(block, cut - 1, ahead)?;
    let mut kept = offset;
    while offset < end {
        match ahead.frame_at(block, offset, end, READ_AT_WINDOW, block.first_seq)? {
            Step::Entry { seq, .. } if seq >= cut => break,
            Step::Entry { next, .. } => {
                kept = next;
                offset = next;
            }
            Step::Damaged { resume } => offset = resume,
        }
    }
    Ok(kept.max(block.data_start))
}

/// The entry `seq` of `block`, if it is in a batch and not its last entry.
fn batch_to_close(block: &Arc<Block>, seq: u64, ahead: &mut ReadAhead) -> Result<Option<Close>> {
    let Some(segment) = block.segment() else {
        return Ok(None);
    };
    let offset = seek(block, seq, ahead)?;
    let (_, end) = block.visible();
    if offset >= end {
        return Ok(None);
    }
    let Step::Entry { seq: found, .. } =
        ahead.frame_at(block, offset, end, 4096, block.first_seq)?
    else {
        return Ok(None);
    };
    if found != seq {
        return Ok(None);
    }
    let mut header = [0u8; FRAME_HEADER_BYTES];
    segment.read_at(block.file_offset(offset), &mut header)?;
    let Some((fields, _, _)) = stored_header(&header) else {
        return Ok(None);
    };
    if fields.flags & FLAG_BATCH == 0 || fields.flags & FLAG_BATCH_END != 0 {
        return Ok(None);
    }
    Ok(Some(Close {
        block: Arc::clone(block),
        segment,
        file_seq: block.extent.file().seq(),
        file_offset: block.file_offset(offset),
    }))
}

/// Step 3 on disk, then one sync of every file it wrote.
fn apply(plan: &Plan, topic: &str, cut: u64) -> Result<()> {
    let mut touched: Vec<Arc<dyn Segment>> = Vec::new();
    if let Some(close) = &plan.close {
        close_batch(close.segment.as_ref(), close.file_offset, cut - 1)?;
        touched.push(Arc::clone(&close.segment));
    }
    let zero = |block: &Block, from: u64, to: u64, touched: &mut Vec<Arc<dyn Segment>>| {
        let Some(segment) = block.segment() else {
            return Ok(());
        };
        if to > from {
            segment.write_at(block.file_offset(from), &vec![0u8; (to - from) as usize])?;
        }
        touched.push(segment);
        Ok::<(), Error>(())
    };
    let unseal = |block: &Block, touched: &mut Vec<Arc<dyn Segment>>| {
        zero(
            block,
            block.extent.len() - SEAL_BYTES,
            block.extent.len(),
            touched,
        )
    };
    if let Some(close) = &plan.close {
        unseal(&close.block, &mut touched)?;
    }
    if let Some((block, offset)) = &plan.cut_inside {
        zero(block, *offset, block.visible().1, &mut touched)?;
        unseal(block, &mut touched)?;
    }
    for block in &plan.removed {
        if let Some(segment) = block.segment() {
            let blocks = block.extent.block_count();
            let header = header_frame(topic, block.first_seq, blocks, BLOCK_FLAG_REMOVED);
            segment.write_at(block.file_offset(0), &header)?;
            touched.push(segment);
        }
    }
    touched.sort_by_key(|s| s.path().to_path_buf());
    touched.dedup_by(|a, b| a.path() == b.path());
    for segment in touched {
        segment.sync()?;
    }
    Ok(())
}

/// Makes the entry `seq` whose frame starts at `file_offset` the last of its batch, by
/// rewriting its header with the batch-end flag. Also repairs a header torn between the old
/// and the new version (only its flags and checksum differ): the payload is verified against
/// the checksum of either. Returns whether the entry now ends its batch.
pub(crate) fn close_batch(segment: &dyn Segment, file_offset: u64, seq: u64) -> Result<bool> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    segment.read_at(file_offset, &mut header)?;
    let Some((fields, len, stored)) = stored_header(&header) else {
        return Ok(false);
    };
    let len = len as usize;
    let fits = file_offset
        .checked_add(frame_len(len) as u64)
        .is_some_and(|end| end <= segment.len());
    if fields.kind != ENTRY_KIND || fields.seq != seq || !fits {
        return Ok(false);
    }
    let mut payload = vec![0u8; len];
    segment.read_at(file_offset + FRAME_HEADER_BYTES as u64, &mut payload)?;
    let encoded = |flags: u16| {
        let mut out = Vec::with_capacity(frame_len(len));
        encode_frame(&mut out, &FrameHeader { flags, ..fields }, &payload);
        out.truncate(FRAME_HEADER_BYTES);
        out
    };
    let closed = encoded(fields.flags | FLAG_BATCH_END);
    let open = encoded(fields.flags & !FLAG_BATCH_END);
    if closed == header {
        return Ok(true);
    }
    // The stored checksum must vouch for the payload under one of the two flag values.
    let checksum = |bytes: &[u8]| stored_header(bytes).map(|(_, _, c)| c);
    if Some(stored) != checksum(&closed) && Some(stored) != checksum(&open) {
        return Ok(false);
    }
    segment.write_at(file_offset, &closed)?;
    Ok(true)
}

/// Moves a cursor that was past the cut back to it: blocks it passed that hold entries
/// from the cut's block on return to the chain.
fn rewind(topic: &Topic, reader: &mut TopicReader, cut: u64) -> Result<()> {
    let mut chain = topic.chain.write();
    while let Some((_, end_seq)) = reader.passed.last() {
        if *end_seq <= cut {
            break;
        }
        let (block, _) = reader.passed.pop().expect("checked above");
        chain.push_front(block);
    }
    reader.offset = match chain.front() {
        Some(front) => seek(front, cut, &mut ReadAhead::default())?,
        None => 0,
    };
    // Fewer entries are delivered since the cursor was last persisted.
    reader.unpersisted = cut - reader.persisted_seq.unwrap_or(0).min(cut);
    reader.next_seq = cut;
    Ok(())
}
