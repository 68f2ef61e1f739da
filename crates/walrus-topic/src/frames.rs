//! The frames of a block, read through a reusable read-ahead buffer: the one place that says
//! what a valid next entry is (a frame that decodes, passes its checksum, is of the entry kind
//! and carries its block's topic tag). `read_next`, `batch_read`, `read_from`, cursor location
//! and recovery's scan (`is_entry_of`) all go through here.

use walrus_storage::{Decoded, FRAME_HEADER_BYTES, FrameError, FrameHeader, decode_frame, resync};

use crate::{
    Result,
    block::Block,
    format::{ENTRY_KIND, tag_matches},
};

/// Whether a frame with `header` is an entry of a block whose topic tag is `tag`. Any other
/// frame inside a block's data (another kind, or another topic's entry written to the wrong
/// place) is damage there, never data.
pub(crate) fn is_entry_of(header: &FrameHeader, tag: u16) -> bool {
    header.kind == ENTRY_KIND && tag_matches(header.flags, tag)
}

/// What lies at an offset of a block.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid entry of the block's topic.
    Entry {
        /// Its sequence number.
        seq: u64,
        /// Its payload, borrowed from the read-ahead buffer.
        payload: &'a [u8],
        /// Offset of the frame after it.
        next: u64,
    },
    /// Damaged bytes; the next valid frame (or the end) is at `resume`.
    Damaged {
        /// Where reading resumes.
        resume: u64,
    },
}

/// The entry at `offset` of `block` copied straight from `segment` into a buffer of its own,
/// for segments whose reads are plain memory copies (`Segment::reads_are_copies`: the mmap
/// backend), so the entry's bytes are copied once, not into a read-ahead buffer first.
/// `admit` sees the payload length before anything is allocated and may refuse it.
///
/// Valid means what [`ReadAhead::frame_at`] accepts (header, checksum over the copied bytes,
/// entry kind, the block's tag, `min_seq..u64::MAX`, inside the published `end`); anything
/// else is `Other`, and the caller reads the offset through `ReadAhead`, which tells damage
/// from the end.
pub(crate) fn copy_entry(
    segment: &dyn walrus_storage::Segment,
    block: &Block,
    (offset, end): (u64, u64),
    min_seq: u64,
    admit: &mut dyn FnMut(usize) -> bool,
) -> Result<Copied> {
    let mut head = [0u8; FRAME_HEADER_BYTES];
    if offset + FRAME_HEADER_BYTES as u64 > end {
        return Ok(Copied::Other);
    }
    segment.read_at(block.file_offset(offset), &mut head)?;
    let Ok((header, len)) = walrus_storage::decode_header(&head) else {
        return Ok(Copied::Other);
    };
    let fits = offset + (FRAME_HEADER_BYTES + len) as u64 <= end;
    if !fits || !is_entry_of(&header, block.tag) || !(min_seq..u64::MAX).contains(&header.seq) {
        return Ok(Copied::Other);
    }
    if !admit(len) {
        return Ok(Copied::Refused);
    }
    let payload = segment.read_vec(block.file_offset(offset) + FRAME_HEADER_BYTES as u64, len)?;
    // Verified on the copy the caller gets, so what is returned is what was checked.
    if walrus_storage::verify_payload(&head, &payload).is_err() {
        return Ok(Copied::Other);
    }
    let next = offset + walrus_storage::frame_len(len) as u64;
    Ok(Copied::Entry {
        seq: header.seq,
        payload,
        next,
    })
}

/// What [`copy_entry`] found.
#[derive(Debug)]
pub(crate) enum Copied {
    /// A valid entry, copied.
    Entry {
        seq: u64,
        payload: Vec<u8>,
        next: u64,
    },
    /// A valid-looking entry the caller's budget refused (nothing was copied).
    Refused,
    /// Not a valid entry: read it through `ReadAhead`.
    Other,
}

/// Bytes a reader reads ahead by default: sequential `read_next` costs one read per this many
/// bytes of entries instead of one per entry.
pub(crate) const READ_AHEAD_BYTES: usize = 256 * 1024;

/// A buffer of consecutive published bytes of one block, reused across calls.
///
/// Bytes of a block below its published end never change while the engine is open (appends
/// only add after it; cuts happen at open), so buffered bytes stay valid for as long as the
/// buffer names the same block; bytes past the end at the time of the read are never kept.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    buf: Vec<u8>,
    /// The block the bytes belong to: its file's sequence number and extent offset (never
    /// reused while the engine is open).
    block: Option<(u64, u64)>,
    /// Block offset of `buf[0]`.
    start: u64,
    /// Valid bytes in `buf`.
    len: usize,
}

fn key(block: &Block) -> (u64, u64) {
    (block.extent.file().seq(), block.extent.offset())
}

impl ReadAhead {
    /// The frame at `offset` of `block`, whose published data ends at `end` (`offset < end`).
    /// Reads at least `window` bytes (bounded by `end`) when the buffer does not hold it. An
    /// entry numbered below `min_seq` (the reader has passed that number) or `u64::MAX` (which
    /// no append gives) is damage: a stale or forged frame, never data.
    pub(crate) fn frame_at(
        &mut self,
        block: &Block,
        offset: u64,
        end: u64,
        window: usize,
        min_seq: u64,
    ) -> Result<Step<'_>> {
        debug_assert!(offset < end);
        // (A file that is gone, consumed and deleted, fills nothing: `damaged` says so. The
        // segment is not looked up per frame: it is an `Arc` shared by every reader.)
        let mut want = window.max(FRAME_HEADER_BYTES);
        for _ in 0..2 {
            if !self.holds(
                block,
                offset,
                FRAME_HEADER_BYTES.min((end - offset) as usize),
            ) {
                self.fill(block, offset, end, want)?;
            }
            let at = (offset - self.start) as usize;
            let (needed, step) = match decode_frame(&self.buf[at..self.len]) {
                Decoded::Frame(frame)
                    if is_entry_of(&frame.header, block.tag)
                        && (min_seq..u64::MAX).contains(&frame.header.seq) =>
                {
                    let next = offset + frame.frame_len as u64;
                    (0, Some((frame.header.seq, next, frame.payload.len())))
                }
                Decoded::Invalid(FrameError::Truncated { needed, .. })
                    if offset + needed as u64 <= end =>
                {
                    (needed, None)
                }
                _ => return self.damaged(block, offset, end),
            };
            if let Some((seq, next, len)) = step {
                let payload_at = at + FRAME_HEADER_BYTES;
                return Ok(Step::Entry {
                    seq,
                    payload: &self.buf[payload_at..payload_at + len],
                    next,
                });
            }
            // The frame continues past the buffer: read it whole from its start.
            want = needed.max(window);
            self.block = None;
        }
        self.damaged(block, offset, end)
    }

    /// Whether the buffer holds `len` bytes of `block` from `offset`.
    fn holds(&self, block: &Block, offset: u64, len: usize) -> bool {
        self.block == Some(key(block))
            && offset >= self.start
            && offset + len as u64 <= self.start + self.len as u64
    }

    fn fill(&mut self, block: &Block, offset: u64, end: u64, want: usize) -> Result<()> {
        let len = want.min((end - offset) as usize);
        self.block = None;
        self.start = offset;
        self.len = 0;
        let Some(segment) = block.segment() else {
            return Ok(());
        };
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        segment.read_at(block.file_offset(offset), &mut self.buf[..len])?;
        self.block = Some(key(block));
        self.len = len;
        Ok(())
    }

    /// Damage at `offset`: finds the next valid frame in the rest of the published data.
    fn damaged(&mut self, block: &Block, offset: u64, end: u64) -> Result<Step<'_>> {
        if block.segment().is_none() {
            return Ok(Step::Damaged { resume: end });
        }
        self.fill(block, offset, end, (end - offset) as usize)?;
        let resume = resync(&self.buf[..self.len], 0).map_or(end, |pos| offset + pos as u64);
        Ok(Step::Damaged { resume })
    }

    /// Drops the buffer's memory if it grew past the default window (a large entry).
    pub(crate) fn shrink(&mut self) {
        if self.buf.len() > 4 * READ_AHEAD_BYTES {
            *self = Self::default();
        }
    }
}

/// Sequence number of the entry at `offset`, if a valid entry is there.
pub(crate) fn seq_at(block: &Block, offset: u64, end: u64) -> Option<u64> {
    if offset >= end {
        return None;
    }
    match ReadAhead::default()
        .frame_at(block, offset, end, FRAME_HEADER_BYTES, block.first_seq)
        .ok()?
    {
        Step::Entry { seq, .. } => Some(seq),
        Step::Damaged { .. } => None,
    }
}

/// Offset of the first entry with a sequence number of at least `seq`.
pub(crate) fn find_seq(block: &Block, seq: u64, end: u64) -> Option<u64> {
    let mut ahead = ReadAhead::default();
    let mut offset = block.data_start;
    while offset < end {
        match ahead
            .frame_at(block, offset, end, READ_AHEAD_BYTES, block.first_seq)
            .ok()?
        {
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
