//! A block of a topic's chain: an extent plus how much of it readers may see.
//!
//! The writer fills the extent, then publishes the new end with a release store; a reader
//! loads it with acquire, so it never reads bytes before the write that put them there has
//! returned, and sees a whole batch or none of it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use walrus_alloc::Extent;
use walrus_storage::Segment;

#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) extent: Arc<Extent>,
    /// Sequence number of the block's first entry.
    pub(crate) first_seq: u64,
    /// Offset (in the extent) of the first entry, just after the block header.
    pub(crate) data_start: u64,
    /// Offset (in the extent) just after the last published frame, with [`SEALED_BIT`] set
    /// once the writer has moved on. One word, so a batch that ends one block and continues
    /// in the next becomes visible with a single store.
    published: AtomicU64,
}

const SEALED_BIT: u64 = 1 << 63;

impl Block {
    pub(crate) fn new(
        extent: Arc<Extent>,
        first_seq: u64,
        data_start: u64,
        end: u64,
        sealed: bool,
    ) -> Self {
        let published = AtomicU64::new(end | if sealed { SEALED_BIT } else { 0 });
        Self {
            extent,
            first_seq,
            data_start,
            published,
        }
    }

    /// `(sealed, end)`: readers may read frames up to `end`, and past the block once sealed.
    pub(crate) fn visible(&self) -> (bool, u64) {
        // Acquire pairs with the release stores below: the frames up to `end` are written.
        let word = self.published.load(Ordering::Acquire);
        (word & SEALED_BIT != 0, word & !SEALED_BIT)
    }

    /// Makes the frames up to `end` visible; the writer may append more.
    pub(crate) fn publish(&self, end: u64) {
        // Release pairs with the acquire load in `visible`.
        self.published.store(end, Ordering::Release);
    }

    /// Makes the frames up to `end` visible and final, and tells the allocator the writer is
    /// done with the extent.
    pub(crate) fn publish_sealed(&self, end: u64) {
        // Release pairs with the acquire load in `visible`.
        self.published.store(end | SEALED_BIT, Ordering::Release);
        self.extent.seal();
    }

    /// Seals the block at its current end.
    pub(crate) fn seal(&self) {
        // Release pairs with `visible`; only the writer stores, so the end cannot change.
        self.published.fetch_or(SEALED_BIT, Ordering::Release);
        self.extent.seal();
    }

    pub(crate) fn segment(&self) -> Option<Arc<dyn Segment>> {
        self.extent.file().segment()
    }

    /// File offset of byte `offset` of the extent.
    pub(crate) fn file_offset(&self, offset: u64) -> u64 {
        self.extent.offset() + offset
    }
}
