//! The block allocator: hands out extents from the current file, moves to a pre-created spare
//! file when it is full, and adopts the files of an earlier run at recovery.

use std::{
    sync::{Arc, Weak},
    thread::JoinHandle,
};

use parking_lot::Mutex;
use walrus_storage::Storage;

use crate::{
    Error, Extent, Result, SegmentFile,
    file_state::{EXTENTS_PER_FILE_MAX, Outcome},
    format::{FILE_HEADER_BYTES, decode_header, encode_header, parse_file_name},
    sync::{AtomicU64, Ordering},
};

/// Geometry and behaviour of an [`Allocator`].
#[derive(Clone, Copy, Debug)]
pub struct AllocConfig {
    /// Bytes per block (default 10 MiB).
    pub block_bytes: u64,
    /// Blocks per ordinary segment file (default 100).
    pub blocks_per_file: u32,
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

/// Hands out extents of blocks. One per instance; nothing is process-global.
#[derive(Debug)]
pub struct Allocator {
    storage: Arc<dyn Storage>,
    config: AllocConfig,
    next_seq: Arc<AtomicU64>,
    current: Mutex<Option<Current>>,
    spare: Mutex<Spare>,
    /// Every file not yet deleted, including a pre-created spare (shared with its thread).
    files: Arc<Mutex<Vec<Weak<SegmentFile>>>>,
}

fn create_file(
    storage: &Arc<dyn Storage>,
    seq: u64,
    config: &AllocConfig,
    block_count: u32,
) -> Result<Arc<SegmentFile>> {
    let block_bytes = config.block_bytes;
    let file_bytes = FILE_HEADER_BYTES + block_bytes * u64::from(block_count);
    let name = crate::format::file_name(seq);
    let segment = storage.create(&name, file_bytes)?;
    segment.write_at(0, &encode_header(seq, block_bytes, block_count))?;
    segment.sync()?;
    if !config.quiet {
        tracing::debug!(file = %name, bytes = file_bytes, "created segment file");
    }
    Ok(Arc::new(SegmentFile::new(
        seq,
        block_bytes,
        block_count,
        Arc::clone(storage),
        segment,
        config.quiet,
    )))
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
        Ok(Self {
            storage,
            config,
            next_seq: Arc::new(AtomicU64::new(1)),
            current: Mutex::new(None),
            spare: Mutex::new(Spare::None),
            files: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AllocConfig {
        &self.config
    }

    /// The storage the files live in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Opens every segment file of an earlier run, in sequence order, and makes sure new files
    /// get higher numbers. Files whose header is damaged are reported (by name), not adopted,
    /// and never overwritten. A file that holds nothing but zeros is reported as
    /// [`Error::UnfinishedFile`]: a crash interrupted its creation (`create_file` syncs the
    /// header before a file is used), so it never held data and the caller may remove it.
    pub fn recover(&self) -> Result<(Vec<RecoveredFile>, Vec<UnreadableFile>)> {
        let mut seqs: Vec<u64> = self
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
                let path = self.storage.dir().join(crate::format::file_name(seq));
                bad.push((
                    crate::format::file_name(seq),
                    Error::BadFileHeader { path, reason },
                ));
                continue;
            };
            self.next_seq.fetch_max(next, Ordering::AcqRel);
            match self.open_file(seq) {
                Ok(file) => recovered.push(RecoveredFile { file }),
                // Damaged content is reported and the file left alone; an I/O error is not
                // evidence of damage, and skipping the file would lose its data: fail instead.
                Err(err @ Error::BadFileHeader { .. }) => {
                    let name = crate::format::file_name(seq);
                    let err = if self.all_zero(&name)? {
                        let path = self.storage.dir().join(&name);
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
        let segment = self.storage.open(name)?;
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
        let segment = self.storage.open(&name)?;
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
            Arc::clone(&self.storage),
            segment,
            self.config.quiet,
        ));
        self.files.lock().push(Arc::downgrade(&file));
        Ok(file)
    }

    /// Every file not yet deleted, in no particular order.
    pub fn files(&self) -> Vec<Arc<SegmentFile>> {
        let mut files = self.files.lock();
        files.retain(|f| f.upgrade().is_some_and(|f| !f.counts().deleted));
        files.iter().filter_map(Weak::upgrade).collect()
    }

    /// Syncs every file with writes that are not yet durable.
    pub fn sync_dirty(&self) -> walrus_storage::Result<usize> {
        let mut synced = 0;
        for file in self.files() {
            synced += usize::from(file.sync_if_dirty()?);
        }
        Ok(synced)
    }

    /// An extent large enough for `bytes`: one block, or as many contiguous blocks as needed.
    /// Requests larger than a whole file get a dedicated file of their own.
    pub fn allocate(&self, bytes: u64) -> Result<Arc<Extent>> {
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
        if blocks > self.config.blocks_per_file {
            let file = self.register(create_file(
                &self.storage,
                self.take_seq(),
                &self.config,
                blocks,
            )?);
            let extent = Self::carve(&file, 0, blocks);
            file.mark_full();
            return extent;
        }
        let mut current = self.current.lock();
        if let Some(cur) = current.as_mut()
            && cur.next_block + blocks <= cur.file.block_count()
        {
            let extent = Self::carve(&cur.file, cur.next_block, blocks);
            cur.next_block += blocks;
            if self.config.precreate && cur.next_block * 2 >= cur.file.block_count() {
                self.start_spare();
            }
            return extent;
        }
        let file = self.take_spare()?;
        let extent = Self::carve(&file, 0, blocks)?;
        let old = current.replace(Current {
            file,
            next_block: blocks,
        });
        drop(current);
        if let Some(old) = old {
            old.file.mark_full();
        }
        Ok(extent)
    }

    fn carve(file: &Arc<SegmentFile>, first_block: u32, blocks: u32) -> Result<Arc<Extent>> {
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

    fn take_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }

    fn register(&self, file: Arc<SegmentFile>) -> Arc<SegmentFile> {
        self.files.lock().push(Arc::downgrade(&file));
        file
    }

    fn start_spare(&self) {
        let mut spare = self.spare.lock();
        if !matches!(*spare, Spare::None) {
            return;
        }
        let storage = Arc::clone(&self.storage);
        let seq = self.take_seq();
        let config = self.config;
        let files = Arc::clone(&self.files);
        let spawned = std::thread::Builder::new()
            .name("walrus-precreate".into())
            .spawn(move || {
                let file = create_file(&storage, seq, &config, config.blocks_per_file)?;
                files.lock().push(Arc::downgrade(&file));
                Ok(file)
            });
        match spawned {
            Ok(handle) => *spare = Spare::Pending(handle),
            Err(err) => tracing::warn!(error = %err, "cannot spawn file pre-creation thread"),
        }
    }

    fn take_spare(&self) -> Result<Arc<SegmentFile>> {
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
            // The pre-creation thread registered it already.
            Some(file) => Ok(file),
            None => Ok(self.register(create_file(
                &self.storage,
                self.take_seq(),
                &self.config,
                self.config.blocks_per_file,
            )?)),
        }
    }

    /// Stops handing out extents from the current file (used at shutdown and in tests).
    pub fn retire_current(&self) {
        let old = self.current.lock().take();
        if let Some(old) = old {
            old.file.mark_full();
        }
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        // A spare that never took an extent holds no data: remove it rather than leave an
        // empty file behind.
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
