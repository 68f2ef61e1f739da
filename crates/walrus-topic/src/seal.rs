//! Seal records: a summary of a sealed block, kept in the last [`SEAL_BYTES`] of its extent,
//! so that recovery reads a block's header and seal instead of scanning its data.
//!
//! A seal is written only after every entry of its block is durable (a sync that covers the
//! block's last write has completed); it becomes durable with a later sync. A block without a
//! valid seal (the writer had not sealed it, the seal was not yet written or not yet durable,
//! or it is damaged) is scanned as before. Entries of sealed blocks are verified when they are
//! read, and by `walrus-ctl verify`.

use std::sync::Arc;

use parking_lot::Mutex;
use walrus_storage::{Decoded, FrameHeader, decode_frame, encode_frame, read_u64};

use crate::{
    block::Block,
    format::{
        SEAL_BYTES, SEAL_COMPLETE_END_OFFSET, SEAL_COMPLETE_NEXT_SEQ_OFFSET, SEAL_END_OFFSET,
        SEAL_FIRST_SEQ_OFFSET, SEAL_KIND, SEAL_MAX_CLAIM_OFFSET, SEAL_PAYLOAD_BYTES, tag_matches,
    },
};

/// What recovery needs to know of a block without reading its entries. Offsets are relative
/// to the extent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SealSummary {
    /// Sequence number of the block's first entry (its header's).
    pub(crate) first_seq: u64,
    /// Offset after the last entry, and the sequence number after it.
    pub(crate) end: u64,
    pub(crate) next_seq: u64,
    /// Offset after the last entry that completes something (a single entry or a batch's
    /// last), the sequence number after it, and whether there is one.
    pub(crate) complete_end: u64,
    pub(crate) complete_next_seq: u64,
    pub(crate) any_complete: bool,
    /// The largest durable prefix any entry of the block claims.
    pub(crate) max_claim: u64,
}

impl SealSummary {
    /// The summary of an empty block whose first entry will be `first_seq` at `data_start`.
    pub(crate) fn empty(first_seq: u64, data_start: u64) -> Self {
        Self {
            first_seq,
            end: data_start,
            next_seq: first_seq,
            complete_end: data_start,
            complete_next_seq: first_seq,
            any_complete: false,
            max_claim: 0,
        }
    }

    /// Records entries written up to `end` (sequence numbers below `next_seq`), each claiming
    /// `claim`; `complete` if the last of them completes a batch or is a single entry.
    pub(crate) fn wrote(&mut self, end: u64, next_seq: u64, claim: u64, complete: bool) {
        self.end = end;
        self.next_seq = next_seq;
        self.max_claim = self.max_claim.max(claim);
        if complete {
            self.complete_end = end;
            self.complete_next_seq = next_seq;
            self.any_complete = true;
        }
    }
}

/// The seal frame of a block with topic tag `tag`.
pub(crate) fn encode(summary: &SealSummary, tag: u16) -> Vec<u8> {
    let mut payload = [0u8; SEAL_PAYLOAD_BYTES];
    for (at, value) in [
        (SEAL_FIRST_SEQ_OFFSET, summary.first_seq),
        (SEAL_END_OFFSET, summary.end),
        (SEAL_COMPLETE_END_OFFSET, summary.complete_end),
        (SEAL_COMPLETE_NEXT_SEQ_OFFSET, summary.complete_next_seq),
        (SEAL_MAX_CLAIM_OFFSET, summary.max_claim),
    ] {
        payload[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    let header = FrameHeader {
        kind: SEAL_KIND,
        flags: tag,
        aux: u32::from(summary.any_complete),
        seq: summary.next_seq,
    };
    let mut out = Vec::with_capacity(SEAL_BYTES as usize);
    encode_frame(&mut out, &header, &payload);
    out
}

/// The seal in `bytes` (the last [`SEAL_BYTES`] of an extent), if it is one for a block with
/// topic tag `tag`, first sequence number `first_seq`, data from `data_start` to at most
/// `capacity`, and consistent in itself. Anything else means: scan the block.
pub(crate) fn decode(
    bytes: &[u8],
    tag: u16,
    first_seq: u64,
    data_start: u64,
    capacity: u64,
) -> Option<SealSummary> {
    let Decoded::Frame(frame) = decode_frame(bytes) else {
        return None;
    };
    let (h, p) = (frame.header, frame.payload);
    if h.kind != SEAL_KIND || !tag_matches(h.flags, tag) || p.len() != SEAL_PAYLOAD_BYTES {
        return None;
    }
    let summary = SealSummary {
        first_seq: read_u64(p, SEAL_FIRST_SEQ_OFFSET),
        end: read_u64(p, SEAL_END_OFFSET),
        next_seq: h.seq,
        complete_end: read_u64(p, SEAL_COMPLETE_END_OFFSET),
        complete_next_seq: read_u64(p, SEAL_COMPLETE_NEXT_SEQ_OFFSET),
        any_complete: h.aux & 1 == 1,
        max_claim: read_u64(p, SEAL_MAX_CLAIM_OFFSET),
    };
    let consistent = summary.first_seq == first_seq
        && (data_start..=capacity).contains(&summary.end)
        && (data_start..=summary.end).contains(&summary.complete_end)
        && (first_seq..=summary.next_seq).contains(&summary.complete_next_seq)
        && summary.next_seq < u64::MAX
        && (summary.end > data_start) == (summary.next_seq > first_seq)
        && (summary.complete_end > data_start) == summary.any_complete;
    consistent.then_some(summary)
}

/// A seal waiting for its block's data to be durable.
#[derive(Debug)]
struct Pending {
    block: Arc<Block>,
    frame: Vec<u8>,
    /// The block's data is durable once this ticket is.
    ticket: u64,
}

/// Seals waiting for a sync; the leader of each successful sync round writes the ones it
/// covered.
#[derive(Debug, Default)]
pub(crate) struct PendingSeals {
    queue: Mutex<Vec<Pending>>,
    /// Held while due seals are written, so that `forget` returning means no seal of the
    /// forgotten blocks is being written either.
    writing: Mutex<()>,
}

impl PendingSeals {
    /// Queues the seal of `block`, whose last write took a ticket up to `ticket`.
    pub(crate) fn push(&self, block: Arc<Block>, summary: &SealSummary, ticket: u64) {
        if !has_room(&block, summary) {
            return;
        }
        let frame = encode(summary, block.tag);
        let pending = Pending {
            block,
            frame,
            ticket,
        };
        // Mutant seal_before_durable: writes the seal before the block's data is durable.
        if cfg!(walrus_mutant = "seal_before_durable") {
            write(&pending);
            return;
        }
        self.queue.lock().push(pending);
    }

    /// Writes the seals whose blocks are durable once every ticket up to `durable` is.
    pub(crate) fn write_due(&self, durable: u64) {
        let _writing = self.writing.lock();
        let due: Vec<Pending> = {
            let mut queue = self.queue.lock();
            let (due, wait) = std::mem::take(&mut *queue)
                .into_iter()
                .partition(|p| p.ticket <= durable);
            *queue = wait;
            due
        };
        for pending in &due {
            write(pending);
        }
    }
}

/// Writes the seal of a block recovery scanned, whose data the open has just synced.
impl PendingSeals {
    /// Drops the seals waiting for the blocks `which` picks (a truncation is about to change
    /// those blocks); none of them is written after this returns.
    pub(crate) fn forget(&self, which: impl Fn(&Block) -> bool) {
        let _writing = self.writing.lock();
        self.queue.lock().retain(|p| !which(&p.block));
    }
}

pub(crate) fn write_now(block: Arc<Block>, summary: &SealSummary) {
    if !has_room(&block, summary) {
        return;
    }
    let frame = encode(summary, block.tag);
    write(&Pending {
        block,
        frame,
        ticket: 0,
    });
}

/// Whether the seal region at the end of the block's extent lies past its data. Extents this
/// writer allocates always reserve it; a recovered block of a tiny block size, or one written
/// before seal records, may not, and is never sealed (its seal would overwrite data).
fn has_room(block: &Block, summary: &SealSummary) -> bool {
    summary
        .end
        .checked_add(SEAL_BYTES)
        .is_some_and(|needed| needed <= block.extent.len())
}

/// Writes a seal at the end of its block's extent. A failure only costs a scan at the next
/// open, so it is logged, not returned.
fn write(pending: &Pending) {
    let block = &pending.block;
    let Some(segment) = block.segment() else {
        return;
    };
    let at = block.file_offset(block.extent.len() - SEAL_BYTES);
    match segment.write_at(at, &pending.frame) {
        Ok(()) => block.extent.file().mark_dirty(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot write a seal record: the block will be scanned at open")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::topic_tag;

    #[test]
    fn a_seal_round_trips_and_inconsistent_ones_are_refused() {
        let mut s = SealSummary::empty(10, 64);
        s.wrote(400, 15, 12, true);
        s.wrote(500, 17, 14, false);
        let (tag, other) = (topic_tag("t"), topic_tag("u"));
        assert_ne!(tag, other);
        let bytes = encode(&s, tag);
        assert_eq!(bytes.len() as u64, SEAL_BYTES);
        assert_eq!(decode(&bytes, tag, 10, 64, 1000), Some(s));
        assert_eq!(decode(&bytes, other, 10, 64, 1000), None, "another topic");
        assert_eq!(decode(&bytes, tag, 11, 64, 1000), None, "another block");
        assert_eq!(decode(&bytes, tag, 10, 64, 499), None, "past the capacity");
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(decode(&flipped, tag, 10, 64, 1000), None, "checksum");
    }
}
