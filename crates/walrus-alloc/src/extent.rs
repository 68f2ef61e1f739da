//! An extent: a run of contiguous blocks in one file, owned by one topic.

use std::sync::Arc;

use crate::{
    SegmentFile,
    file_state::Outcome,
    sync::{AtomicU8, Ordering},
};

/// Where an extent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtentState {
    /// Its writer may still append to it.
    Writing,
    /// Its writer is done; readers may still need it.
    Sealed,
    /// Its topic's reader has passed it; the bytes are no longer needed.
    Consumed,
}

const WRITING: u8 = 0;
const SEALED: u8 = 1;
const CONSUMED: u8 = 2;

/// A run of `block_count` blocks of one segment file.
///
/// Sealing and consuming are idempotent, however many readers pass the extent, so a file's
/// counters count each extent once.
#[derive(Debug)]
pub struct Extent {
    file: Arc<SegmentFile>,
    first_block: u32,
    block_count: u32,
    state: AtomicU8,
}

impl Extent {
    pub(crate) fn new(
        file: Arc<SegmentFile>,
        first_block: u32,
        block_count: u32,
        sealed: bool,
    ) -> Self {
        let state = AtomicU8::new(if sealed { SEALED } else { WRITING });
        Self {
            file,
            first_block,
            block_count,
            state,
        }
    }

    /// The file the extent lives in.
    pub fn file(&self) -> &Arc<SegmentFile> {
        &self.file
    }

    /// Index of the extent's first block in its file.
    pub fn first_block(&self) -> u32 {
        self.first_block
    }

    /// Number of blocks in the extent.
    pub fn block_count(&self) -> u32 {
        self.block_count
    }

    /// File offset of the extent's first byte.
    pub fn offset(&self) -> u64 {
        self.file.block_offset(self.first_block)
    }

    /// Length of the extent in bytes.
    pub fn len(&self) -> u64 {
        u64::from(self.block_count) * self.file.block_bytes()
    }

    /// Whether the extent has no bytes (never true for an allocated extent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extent's current state.
    pub fn state(&self) -> ExtentState {
        // Acquire pairs with the AcqRel swaps in `transition`.
        match self.state.load(Ordering::Acquire) {
            WRITING => ExtentState::Writing,
            SEALED => ExtentState::Sealed,
            _ => ExtentState::Consumed,
        }
    }

    fn transition(&self, from: u8, to: u8) -> bool {
        // AcqRel: the writer's last append happens-before the seal, which happens-before a
        // reader's consume, which happens-before the deletion that the file state decides.
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The writer is done with the extent. Returns whether this call sealed it.
    pub fn seal(&self) -> bool {
        let sealed = self.transition(WRITING, SEALED);
        if sealed && self.file.state().seal() == Outcome::Delete {
            self.file.delete();
        }
        sealed
    }

    /// The reader has passed the extent. Returns whether this call consumed it; an extent
    /// that is still being written cannot be consumed.
    pub fn consume(&self) -> bool {
        let consumed = self.transition(SEALED, CONSUMED);
        if consumed && self.file.state().consume() == Outcome::Delete {
            self.file.delete();
        }
        consumed
    }

    /// Gives up an extent that will never hold readable data (a rolled-back batch): seals and
    /// consumes it so its file can still be deleted.
    pub fn abandon(&self) {
        self.seal();
        self.consume();
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
