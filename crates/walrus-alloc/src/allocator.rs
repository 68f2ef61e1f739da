//! The block allocator: hands out extents from the current file of their class (`class.rs`),
//! moves to a pre-created spare file when it is full, and adopts the files of an earlier run
//! at recovery.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use walrus_storage::Storage;

use crate::{
    Error, Extent, Result, SegmentFile,
    class::{FileClass, FileMaker, carve},
    file_state::EXTENTS_PER_FILE_MAX,
    format::{FILE_HEADER_BYTES, decode_header, parse_file_name},
    sync::{AtomicU64, Ordering},
};

/// Units per small file: 8 MiB of 4 KiB units, so the small file being filled (and its spare)
/// add little to a directory of small topics. Fewer when ordinary files are smaller than that.
pub const SMALL_FILE_UNITS: u32 = 2048;
/// Smallest small unit: room for the largest block header (a 128-byte topic name) and a
/// seal record, so recovery's header probe never reads past a one-unit extent.
pub const SMALL_UNIT_BYTES_MIN: u64 = 256;
/// Lanes of ordinary files: extents of topics in different lanes come from different files,
/// so their writers never wait for each other on a file's lock in the kernel (a buffered
/// `pwrite` holds its file's inode lock; four writers of one file spent about a fifth of their
/// time waiting for it, and took 0.66-0.90M appends/s against 1.18-1.51M in four files).
/// Each lane's files have a quarter of the configured blocks, so the space reserved ahead is
/// what one file of the configured size would reserve. Used when files have at least
/// [`LANE_FILE_BLOCKS_MIN`] blocks per lane. The default of [`AllocConfig::lanes`].
pub const LANES: u32 = 4;
/// Fewest blocks a lane's file may have: with fewer blocks per file, one lane.
pub const LANE_FILE_BLOCKS_MIN: u32 = 4;
/// Largest small extent, in units (2 MiB of 4 KiB units, a quarter of a small file); larger
/// requests get blocks. A topic leaves small files once it has taken twice this, so the jump
/// to a 10 MiB block comes when it holds about 4 MiB (the space it reserves then is at most
/// about 3.5 times what it holds, and falls again as it fills the block).
pub const SMALL_EXTENT_UNITS_MAX: u32 = 512;

/// Geometry and behaviour of an [`Allocator`].
#[derive(Clone, Copy, Debug)]
pub struct AllocConfig {
    /// Bytes per block (default 10 MiB).
    pub block_bytes: u64,
    /// Blocks per ordinary segment file (default 100).
    pub blocks_per_file: u32,
    /// Unit of the small files that serve requests of at most
    /// [`Allocator::small_extent_max`] bytes (default 4 KiB; 0 turns small files off; else at
    /// least [`SMALL_UNIT_BYTES_MIN`]). They are used only when blocks are at least 4 units:
    /// a topic's first extents then take as few units as it needs instead of a whole block.
    pub small_unit_bytes: u64,
    /// Lanes of ordinary files ([`LANES`] by default; 1 puts every topic's blocks in one
    /// current file). Split only while each lane's file keeps [`LANE_FILE_BLOCKS_MIN`] blocks.
    pub lanes: u32,
    /// Create the next file on a helper thread once the current one is half allocated, so
    /// appenders never wait for a file creation.
    pub precreate: bool,
    /// Emit no debug-level events (`WALRUS_QUIET`).
    pub quiet: bool,
}

impl Default for AllocConfig {
    fn default() -> Self {
        Self {
            block_bytes: 10 * 1024 * 1024,
            blocks_per_file: 100,
            small_unit_bytes: 4096,
            lanes: LANES,
            precreate: true,
            quiet: false,
        }
    }
}

/// A segment file [`Allocator::recover`] could not open: its name and why.
pub type UnreadableFile = (String, Error);

/// A file from an earlier run, adopted by [`Allocator::recover`].
#[derive(Debug)]
pub struct RecoveredFile {
    /// The file; adopt its extents, then call [`SegmentFile::finish_recovery`].
    pub file: Arc<SegmentFile>,
}

/// Hands out extents of blocks. One per instance; nothing is process-global.
#[derive(Debug)]
pub struct Allocator {
    config: AllocConfig,
    maker: FileMaker,
    /// Files of `config.block_bytes` blocks, one class per lane ([`LANES`]).
    blocks: Vec<FileClass>,
    /// The lane the next [`Allocator::next_lane`] hands out.
    lane_turn: AtomicU64,
    /// Files of small units, when turned on.
    small: Option<FileClass>,
}

impl Allocator {
    /// An allocator over `storage`. Call [`Allocator::recover`] before the first allocation
    /// when the directory may hold files of an earlier run.
    pub fn new(storage: Arc<dyn Storage>, config: AllocConfig) -> Result<Self> {
        if config.block_bytes == 0 || config.blocks_per_file == 0 {
            return Err(Error::BadRequest {
                bytes: 0,
                reason: "block size and count must be positive",
            });
        }
        let unit = config.small_unit_bytes;
        if unit > 0 && unit < SMALL_UNIT_BYTES_MIN {
            return Err(Error::BadRequest {
                bytes: unit,
                reason: "small units must be 0 (off) or at least 256 bytes",
            });
        }
        let small = (unit > 0 && config.block_bytes / 4 >= unit).then(|| {
            // No larger than an ordinary file either (tests use tiny files).
            let file_bytes = config.block_bytes * u64::from(config.blocks_per_file);
            let units = (file_bytes / unit).clamp(1, u64::from(SMALL_FILE_UNITS)) as u32;
            FileClass::new(unit, units, config.precreate)
        });
        Ok(Self {
            config,
            maker: FileMaker {
                storage,
                next_seq: Arc::new(AtomicU64::new(1)),
                files: Arc::new(Mutex::new(Vec::new())),
                quiet: config.quiet,
            },
            blocks: {
                let lanes = config.lanes.max(1);
                let lanes = if config.blocks_per_file / lanes >= LANE_FILE_BLOCKS_MIN {
                    lanes
                } else {
                    1
                };
                let blocks = config.blocks_per_file / lanes;
                (0..lanes)
                    .map(|_| FileClass::new(config.block_bytes, blocks, config.precreate))
                    .collect()
            },
            lane_turn: AtomicU64::new(0),
            small,
        })
    }

    /// The largest request served from small files (0 when they are off): at most
    /// [`SMALL_EXTENT_UNITS_MAX`] units, a small file, and half a block.
    pub fn small_extent_max(&self) -> u64 {
        match &self.small {
            Some(small) => {
                let units = SMALL_EXTENT_UNITS_MAX.min(small.blocks_per_file);
                (u64::from(units) * small.block_bytes).min(self.config.block_bytes / 2)
            }
            None => 0,
        }
    }

    /// How many lanes of ordinary files there are (1 when files are too small to split).
    pub fn lanes(&self) -> usize {
        self.blocks.len()
    }

    /// A lane for a new writer, in turn, so that writers spread evenly over the lanes.
    pub fn next_lane(&self) -> usize {
        (self.lane_turn.fetch_add(1, Ordering::Relaxed) % self.blocks.len() as u64) as usize
    }

    /// The configuration.
    pub fn config(&self) -> &AllocConfig {
        &self.config
    }

    /// The storage the files live in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.maker.storage
    }

    /// Opens every segment file of an earlier run, in sequence order, and makes sure new files
    /// get higher numbers. Files whose header is damaged are reported (by name), not adopted,
    /// and never overwritten. A file that holds nothing but zeros is reported as
    /// [`Error::UnfinishedFile`]: a crash interrupted its creation (`FileMaker::create` syncs the
    /// header before a file is used), so it never held data and the caller may remove it.
    pub fn recover(&self) -> Result<(Vec<RecoveredFile>, Vec<UnreadableFile>)> {
        let mut seqs: Vec<u64> = self
            .maker
            .storage
            .list()?
            .iter()
            .filter_map(|name| parse_file_name(name))
            .collect();
        seqs.sort_unstable();
        let mut recovered = Vec::new();
        let mut bad = Vec::new();
        for seq in seqs {
            // Never reuse a number, even one whose file is unreadable. The largest number
            // leaves none for a next file: such a file is reported, not adopted.
            let Some(next) = seq.checked_add(1) else {
                let reason = "file number leaves none for the next file".to_owned();
                let path = self.maker.storage.dir().join(crate::format::file_name(seq));
                bad.push((
                    crate::format::file_name(seq),
                    Error::BadFileHeader { path, reason },
                ));
                continue;
            };
            self.maker.next_seq.fetch_max(next, Ordering::AcqRel);
            match self.open_file(seq) {
                Ok(file) => recovered.push(RecoveredFile { file }),
                // Damaged content is reported and the file left alone; an I/O error is not
                // evidence of damage, and skipping the file would lose its data: fail instead.
                Err(err @ Error::BadFileHeader { .. }) => {
                    let name = crate::format::file_name(seq);
                    let err = if self.all_zero(&name)? {
                        let path = self.maker.storage.dir().join(&name);
                        Error::UnfinishedFile { path }
                    } else {
                        err
                    };
                    bad.push((name, err));
                }
                Err(err) => return Err(err),
            }
        }
        Ok((recovered, bad))
    }

    /// Whether file `name` holds nothing but zeros. Cheap for a file that was only reserved:
    /// its unwritten extents read as zeros without touching the disk.
    fn all_zero(&self, name: &str) -> Result<bool> {
        const CHUNK: u64 = 1024 * 1024;
        let segment = self.maker.storage.open(name)?;
        let mut buf = vec![0u8; CHUNK.min(segment.len()) as usize];
        let mut offset = 0;
        while offset < segment.len() {
            let len = CHUNK.min(segment.len() - offset) as usize;
            segment.read_at(offset, &mut buf[..len])?;
            if buf[..len].iter().any(|b| *b != 0) {
                return Ok(false);
            }
            offset += len as u64;
        }
        Ok(true)
    }

    fn open_file(&self, seq: u64) -> Result<Arc<SegmentFile>> {
        let name = crate::format::file_name(seq);
        let segment = self.maker.storage.open(&name)?;
        let bad = |reason: String| Error::BadFileHeader {
            path: segment.path().to_path_buf(),
            reason,
        };
        let header_len = FILE_HEADER_BYTES.min(segment.len());
        let mut header = vec![0u8; header_len as usize];
        segment.read_at(0, &mut header)?;
        let (stored_seq, block_bytes, block_count) = decode_header(&header).map_err(bad)?;
        if stored_seq != seq {
            return Err(bad(format!("header names file {stored_seq}")));
        }
        let needed = block_bytes
            .checked_mul(u64::from(block_count))
            .and_then(|blocks| blocks.checked_add(FILE_HEADER_BYTES));
        match needed {
            Some(needed) if needed <= segment.len() => {}
            _ => {
                return Err(bad(format!(
                    "file is {} bytes, its geometry ({block_count} blocks of {block_bytes} \
                     bytes) needs more",
                    segment.len()
                )));
            }
        }
        let file = Arc::new(SegmentFile::new(
            seq,
            block_bytes,
            block_count,
            Arc::clone(&self.maker.storage),
            segment,
            self.config.quiet,
        ));
        self.maker.files.lock().push(Arc::downgrade(&file));
        Ok(file)
    }

    /// Every file not yet deleted, in no particular order.
    pub fn files(&self) -> Vec<Arc<SegmentFile>> {
        let mut files = self.maker.files.lock();
        files.retain(|f| f.upgrade().is_some_and(|f| !f.counts().deleted));
        files.iter().filter_map(Weak::upgrade).collect()
    }

    /// Syncs every file with writes that are not yet durable.
    pub fn sync_dirty(&self) -> walrus_storage::Result<usize> {
        let files = self.files();
        // With several dirty files (one per lane), start every write-back first so that they
        // overlap, then wait for each.
        if files.iter().filter(|f| f.is_dirty()).count() > 1 {
            for file in &files {
                file.start_sync_if_dirty();
            }
        }
        let mut synced = 0;
        for file in files {
            synced += usize::from(file.sync_if_dirty()?);
        }
        Ok(synced)
    }

    /// An extent large enough for `bytes`: small units when the request is at most
    /// [`Allocator::small_extent_max`], else one block or as many contiguous blocks as needed.
    /// Requests larger than a whole (lane's) file get a dedicated file of their own.
    pub fn allocate(&self, bytes: u64) -> Result<Arc<Extent>> {
        self.allocate_between(0, bytes, bytes)
    }

    /// An extent of at least `min` bytes, and of `want` bytes when that costs nothing: in a
    /// small file, the rest of the current file when it holds `min` but not `want` (rather
    /// than leave it unused and start a new file). Blocks are served as [`Allocator::allocate`]
    /// serves `want`, from the current file of `lane` (modulo [`Allocator::lanes`]; see
    /// [`Allocator::next_lane`]).
    pub fn allocate_between(&self, lane: usize, min: u64, want: u64) -> Result<Arc<Extent>> {
        let want = want.max(min);
        if min == 0 {
            return Err(Error::BadRequest {
                bytes: min,
                reason: "size must be between 1 byte and the largest extent",
            });
        }
        if let Some(small) = &self.small
            && want <= self.small_extent_max()
        {
            // At most SMALL_EXTENT_UNITS_MAX units: the casts are lossless.
            let units = |bytes: u64| bytes.div_ceil(small.block_bytes) as u32;
            return small.allocate(&self.maker, units(min), units(want));
        }
        let bytes = want;
        let blocks = bytes.div_ceil(self.config.block_bytes);
        let blocks = match u32::try_from(blocks) {
            Ok(b) if b > 0 && b <= EXTENTS_PER_FILE_MAX => b,
            _ => {
                return Err(Error::BadRequest {
                    bytes,
                    reason: "size must be between 1 byte and the largest extent",
                });
            }
        };
        let class = &self.blocks[lane % self.blocks.len()];
        if blocks > class.blocks_per_file {
            let seq = self.maker.take_seq();
            let file = self.maker.create(seq, self.config.block_bytes, blocks)?;
            let extent = carve(&file, 0, blocks);
            file.mark_full();
            return extent;
        }
        class.allocate(&self.maker, blocks, blocks)
    }

    /// Stops handing out extents from the current files (used at shutdown and in tests).
    pub fn retire_current(&self) {
        for lane in &self.blocks {
            lane.retire_current();
        }
        if let Some(small) = &self.small {
            small.retire_current();
        }
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        // A spare that never took an extent holds no data: remove it rather than leave an
        // empty file behind.
        for lane in &self.blocks {
            lane.drop_spare();
        }
        if let Some(small) = &self.small {
            small.drop_spare();
        }
    }
}
