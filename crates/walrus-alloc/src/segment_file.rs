//! A segment file as the allocator sees it: geometry, counters, and the handle to its bytes.

use std::sync::Arc;

use parking_lot::RwLock;
use walrus_storage::{Segment, Storage};

use crate::{
    Extent, FileCounts,
    file_state::{FileState, Outcome},
    format::{FILE_HEADER_BYTES, file_name},
    sync::{AtomicBool, Ordering},
};

/// One pre-sized file of `block_count` blocks of `block_bytes` each.
#[derive(Debug)]
pub struct SegmentFile {
    seq: u64,
    name: String,
    block_bytes: u64,
    block_count: u32,
    storage: Arc<dyn Storage>,
    /// `None` once the file is deleted: the handle (and any mapping) is dropped before the
    /// unlink so the space is really freed.
    segment: RwLock<Option<Arc<dyn Segment>>>,
    state: FileState,
    dirty: AtomicBool,
    quiet: bool,
}

impl SegmentFile {
    pub(crate) fn new(
        seq: u64,
        block_bytes: u64,
        block_count: u32,
        storage: Arc<dyn Storage>,
        segment: Arc<dyn Segment>,
        quiet: bool,
    ) -> Self {
        Self {
            seq,
            name: file_name(seq),
            block_bytes,
            block_count,
            storage,
            segment: RwLock::new(Some(segment)),
            state: FileState::default(),
            dirty: AtomicBool::new(false),
            quiet,
        }
    }

    /// The file's sequence number (its name's number).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The file's name in its directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per block.
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes
    }

    /// Blocks in the file.
    pub fn block_count(&self) -> u32 {
        self.block_count
    }

    /// File offset of block `block`.
    pub fn block_offset(&self, block: u32) -> u64 {
        FILE_HEADER_BYTES + u64::from(block) * self.block_bytes
    }

    /// The file's bytes, or `None` once it has been deleted.
    pub fn segment(&self) -> Option<Arc<dyn Segment>> {
        self.segment.read().clone()
    }

    /// A snapshot of the deletion counters.
    pub fn counts(&self) -> FileCounts {
        self.state.counts()
    }

    pub(crate) fn state(&self) -> &FileState {
        &self.state
    }

    /// Whether the file has writes that are not yet durable.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Records that the file has writes that are not yet durable.
    pub fn mark_dirty(&self) {
        // Release pairs with the AcqRel swap in `sync_if_dirty`: a syncer that sees the flag
        // also sees the write made before it.
        self.dirty.store(true, Ordering::Release);
    }

    /// Starts the write-back of the file's pages if it is dirty, without waiting
    /// (`Segment::start_sync`), so that syncing several files overlaps their write-back.
    pub fn start_sync_if_dirty(&self) {
        if self.is_dirty()
            && let Some(segment) = self.segment()
        {
            segment.start_sync();
        }
    }

    /// Syncs the file if it was marked dirty since the last sync. Returns whether it synced.
    pub fn sync_if_dirty(&self) -> walrus_storage::Result<bool> {
        // Clear the flag before syncing: a write that lands during the sync marks it again.
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        match self.segment() {
            Some(segment) => match segment.sync() {
                Ok(()) => Ok(true),
                Err(err) => {
                    self.dirty.store(true, Ordering::Release);
                    Err(err)
                }
            },
            None => Ok(false),
        }
    }

    /// Adopts an extent found at recovery: counted as allocated and already sealed.
    pub fn adopt_extent(
        self: &Arc<Self>,
        first_block: u32,
        block_count: u32,
    ) -> Option<Arc<Extent>> {
        let fits = first_block
            .checked_add(block_count)
            .is_some_and(|end| end <= self.block_count);
        if !fits || self.state.adopt() == Outcome::Refused {
            return None;
        }
        Some(Arc::new(Extent::new(
            Arc::clone(self),
            first_block,
            block_count,
            true,
        )))
    }

    /// Ends adoption of a recovered file: it takes no new extents, and it is deleted at once
    /// if nothing in it is still needed.
    pub fn finish_recovery(&self) {
        self.mark_full();
    }

    pub(crate) fn mark_full(&self) {
        if self.state.mark_full() == Outcome::Delete {
            self.delete();
        }
    }

    /// Unlinks the file, then lets go of its handle on a helper thread. Called exactly once,
    /// by whoever claimed the deletion in the file state: usually a reader whose cursor just
    /// passed the file's last extent.
    ///
    /// The space (and the file's pages in the page cache) is freed when the last handle
    /// closes, which takes tens of milliseconds for a 250 MiB file: the handle is dropped on
    /// a thread of the lowest priority (`walrus_storage::release_in_background`). The name is gone
    /// when this returns.
    pub(crate) fn delete(&self) {
        let segment = self.segment.write().take();
        match self.storage.remove(&self.name) {
            Ok(()) if self.quiet => {}
            Ok(()) => tracing::debug!(file = %self.name, "deleted fully consumed segment file"),
            Err(err) => {
                tracing::warn!(file = %self.name, error = %err, "cannot delete segment file")
            }
        }
        if let Some(segment) = segment {
            walrus_storage::release_in_background(segment);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
