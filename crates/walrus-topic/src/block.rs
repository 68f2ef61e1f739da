//! A block of a topic's chain: an extent plus how much of it readers may see (the
//! publication word of `publish.rs`).

use std::sync::Arc;

use walrus_alloc::Extent;
use walrus_storage::Segment;

use crate::publish::PublishedEnd;

#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) extent: Arc<Extent>,
    /// Sequence number of the block's first entry.
    pub(crate) first_seq: u64,
    /// Offset (in the extent) of the first entry, just after the block header.
    pub(crate) data_start: u64,
    /// The topic's tag, which every entry of the block carries in its flags.
    pub(crate) tag: u16,
    /// Offset (in the extent) just after the last published frame, and whether the writer
    /// has moved on.
    published: PublishedEnd,
    /// Offsets of every `INDEX_STRIDE`th entry, for reads by position (`log/index.rs`).
    pub(crate) offsets: crate::log::SparseIndex,
}

/// The header frame of a block of `topic` whose first entry is `first_seq`, in an extent of
/// `blocks` blocks, with header flags `flags`.
pub(crate) fn header_frame(topic: &str, first_seq: u64, blocks: u32, flags: u16) -> Vec<u8> {
    let mut header = Vec::with_capacity(crate::format::block_header_len(topic) as usize);
    let frame = walrus_storage::FrameHeader {
        kind: crate::format::BLOCK_HEADER_KIND,
        flags,
        aux: blocks,
        seq: first_seq,
    };
    walrus_storage::encode_frame(&mut header, &frame, topic.as_bytes());
    header
}

impl Block {
    pub(crate) fn new(
        extent: Arc<Extent>,
        first_seq: u64,
        data_start: u64,
        tag: u16,
        end: u64,
        sealed: bool,
    ) -> Self {
        Self {
            extent,
            first_seq,
            data_start,
            tag,
            published: PublishedEnd::new(end, sealed),
            // A block with data already (recovered) is indexed on first use.
            offsets: crate::log::SparseIndex::new(end <= data_start),
        }
    }

    /// `(sealed, end)`: readers may read frames up to `end`, and past the block once sealed.
    pub(crate) fn visible(&self) -> (bool, u64) {
        self.published.visible()
    }

    /// Makes the frames up to `end` visible; the writer may append more.
    pub(crate) fn publish(&self, end: u64) {
        self.published.publish(end);
    }

    /// Makes the frames up to `end` visible and final, and tells the allocator the writer is
    /// done with the extent.
    pub(crate) fn publish_sealed(&self, end: u64) {
        self.published.publish_sealed(end);
        self.extent.seal();
    }

    /// Seals the block at its current end.
    pub(crate) fn seal(&self) {
        self.published.seal();
        self.extent.seal();
    }

    /// Ends the block at `end`, before the entry `cut` (a truncation removed it and what
    /// followed, on disk already); the block is sealed and takes no more entries.
    pub(crate) fn truncate_to(&self, end: u64, cut: u64) {
        self.published.publish_sealed(end);
        self.extent.seal();
        self.offsets.truncate(cut);
    }

    /// Offset (in the extent) where entries must end: the extent less its seal record.
    pub(crate) fn capacity(&self) -> u64 {
        self.extent.len().saturating_sub(crate::format::SEAL_BYTES)
    }

    pub(crate) fn segment(&self) -> Option<Arc<dyn Segment>> {
        self.extent.file().segment()
    }

    /// File offset of byte `offset` of the extent.
    pub(crate) fn file_offset(&self, offset: u64) -> u64 {
        self.extent.offset() + offset
    }
}
