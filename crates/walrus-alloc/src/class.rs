//! A class of segment files: one geometry (block size, blocks per file), the file extents are
//! currently carved from, and the spare file pre-created for when it is full.
//!
//! The allocator keeps two classes: ordinary files of the configured block size, and small
//! files of 4 KiB units for the first extents of each topic (`AllocConfig::small_unit_bytes`),
//! so a topic that holds a few entries does not reserve a whole block.

use std::{
    sync::{Arc, Weak},
    thread::JoinHandle,
};

use parking_lot::Mutex;
use walrus_storage::Storage;

use crate::{
    Error, Extent, Result, SegmentFile,
    file_state::Outcome,
    format::{FILE_HEADER_BYTES, encode_header},
    sync::{AtomicU64, Ordering},
};

/// What a class needs from its allocator to create files.
#[derive(Clone, Debug)]
pub(crate) struct FileMaker {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) next_seq: Arc<AtomicU64>,
    /// Every file not yet deleted, including a pre-created spare (shared with its thread).
    pub(crate) files: Arc<Mutex<Vec<Weak<SegmentFile>>>>,
    pub(crate) quiet: bool,
}

impl FileMaker {
    pub(crate) fn take_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }

    /// Creates, reserves and syncs file number `seq`, registers it, and returns it.
    pub(crate) fn create(
        &self,
        seq: u64,
        block_bytes: u64,
        blocks: u32,
    ) -> Result<Arc<SegmentFile>> {
        let file_bytes = FILE_HEADER_BYTES + block_bytes * u64::from(blocks);
        let name = crate::format::file_name(seq);
        let segment = self.storage.create(&name, file_bytes)?;
        segment.write_at(0, &encode_header(seq, block_bytes, blocks))?;
        segment.sync()?;
        if !self.quiet {
            tracing::debug!(file = %name, bytes = file_bytes, block_bytes, "created segment file");
        }
        let file = Arc::new(SegmentFile::new(
            seq,
            block_bytes,
            blocks,
            Arc::clone(&self.storage),
            segment,
            self.quiet,
        ));
        self.files.lock().push(Arc::downgrade(&file));
        Ok(file)
    }
}

#[derive(Debug)]
struct Current {
    file: Arc<SegmentFile>,
    next_block: u32,
}

#[derive(Debug)]
enum Spare {
    None,
    Pending(JoinHandle<Result<Arc<SegmentFile>>>),
}

/// Files of one geometry and the one extents are carved from.
#[derive(Debug)]
pub(crate) struct FileClass {
    pub(crate) block_bytes: u64,
    pub(crate) blocks_per_file: u32,
    precreate: bool,
    current: Mutex<Option<Current>>,
    spare: Mutex<Spare>,
}

impl FileClass {
    pub(crate) fn new(block_bytes: u64, blocks_per_file: u32, precreate: bool) -> Self {
        Self {
            block_bytes,
            blocks_per_file,
            precreate,
            current: Mutex::new(None),
            spare: Mutex::new(Spare::None),
        }
    }

    /// An extent of `want` contiguous blocks (at most a file's worth) from the current file,
    /// or of fewer, down to `min`, when that is what the current file has left; from a new
    /// file when it has less than `min` left. Taking the rest of a file rather than leaving it
    /// unused keeps files full (and recovery from probing unused blocks).
    pub(crate) fn allocate(&self, maker: &FileMaker, min: u32, want: u32) -> Result<Arc<Extent>> {
        debug_assert!(min > 0 && min <= want && want <= self.blocks_per_file);
        // Mutant extent_short_of_need: takes the rest of the current file even when it is
        // smaller than the request needs (its writer then writes past its extent).
        let min = if cfg!(walrus_mutant = "extent_short_of_need") {
            1
        } else {
            min
        };
        let mut current = self.current.lock();
        if let Some(cur) = current.as_mut()
            && cur.next_block + min <= cur.file.block_count()
        {
            let blocks = want.min(cur.file.block_count() - cur.next_block);
            let extent = carve(&cur.file, cur.next_block, blocks);
            cur.next_block += blocks;
            // Half way through the current file, create the next one off the hot path.
            if self.precreate && cur.next_block * 2 >= cur.file.block_count() {
                self.start_spare(maker);
            }
            return extent;
        }
        let file = self.take_spare(maker)?;
        let extent = carve(&file, 0, want)?;
        let old = current.replace(Current {
            file,
            next_block: want,
        });
        drop(current);
        if let Some(old) = old {
            old.file.mark_full();
        }
        Ok(extent)
    }

    fn start_spare(&self, maker: &FileMaker) {
        let mut spare = self.spare.lock();
        if !matches!(*spare, Spare::None) {
            return;
        }
        let maker = maker.clone();
        let seq = maker.take_seq();
        let (block_bytes, blocks) = (self.block_bytes, self.blocks_per_file);
        let spawned = std::thread::Builder::new()
            .name("walrus-precreate".into())
            .spawn(move || maker.create(seq, block_bytes, blocks));
        match spawned {
            Ok(handle) => *spare = Spare::Pending(handle),
            Err(err) => tracing::warn!(error = %err, "cannot spawn file pre-creation thread"),
        }
    }

    fn take_spare(&self, maker: &FileMaker) -> Result<Arc<SegmentFile>> {
        let spare = std::mem::replace(&mut *self.spare.lock(), Spare::None);
        let ready = match spare {
            Spare::Pending(handle) => match handle.join() {
                Ok(Ok(file)) => Some(file),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "pre-creating a segment file failed; retrying inline");
                    None
                }
                Err(_) => None,
            },
            Spare::None => None,
        };
        match ready {
            Some(file) => Ok(file),
            None => maker.create(maker.take_seq(), self.block_bytes, self.blocks_per_file),
        }
    }

    /// Stops carving from the current file.
    pub(crate) fn retire_current(&self) {
        let old = self.current.lock().take();
        if let Some(old) = old {
            old.file.mark_full();
        }
    }

    /// Removes a spare that never took an extent (it holds no data).
    pub(crate) fn drop_spare(&self) {
        let spare = std::mem::replace(&mut *self.spare.lock(), Spare::None);
        let unused = match spare {
            Spare::Pending(handle) => handle.join().ok().and_then(Result::ok),
            Spare::None => None,
        };
        if let Some(file) = unused {
            file.mark_full();
        }
    }
}

/// Counts a new extent of `blocks` blocks from `first_block` in `file`.
pub(crate) fn carve(file: &Arc<SegmentFile>, first_block: u32, blocks: u32) -> Result<Arc<Extent>> {
    match file.state().allocate() {
        Outcome::Refused => Err(Error::BadRequest {
            bytes: 0,
            reason: "file cannot take more extents",
        }),
        _ => Ok(Arc::new(Extent::new(
            Arc::clone(file),
            first_block,
            blocks,
            false,
        ))),
    }
}
