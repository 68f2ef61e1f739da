//! The storage interface: a directory of pre-sized files ([`Storage`]) and one file
//! ([`Segment`]). Every backend implements both; the layers above see only these traits.

use std::{fmt, path::Path, sync::Arc};

use crate::{DEFAULT_FILE_MODE, FdOptions, FdStorage, MmapStorage, Result};

/// One positional write of a batch.
#[derive(Clone, Copy, Debug)]
pub struct WriteAt<'a> {
    /// File offset of the first byte.
    pub offset: u64,
    /// The bytes to write.
    pub buf: &'a [u8],
}

/// One positional read of a batch.
#[derive(Debug)]
pub struct ReadAt<'a> {
    /// File offset of the first byte.
    pub offset: u64,
    /// Filled completely, or the batch fails.
    pub buf: &'a mut [u8],
}

/// Which implementation is behind a [`Storage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// `pread`/`pwrite` on file descriptors, batches through plain positional calls.
    Fd,
    /// `pread`/`pwrite` on file descriptors, batches through one io_uring submission each.
    FdUring,
    /// Shared memory mappings; a write is a copy, a sync is an `msync` of the dirty range.
    Mmap,
    /// Files in memory (tests).
    Mem,
    /// In-memory files with power-loss simulation and fault injection (tests).
    Faulty,
}

impl BackendKind {
    /// A short lower-case name, for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fd => "fd",
            Self::FdUring => "fd+io_uring",
            Self::Mmap => "mmap",
            Self::Mem => "mem",
            Self::Faulty => "faulty",
        }
    }
}

/// One pre-sized file.
///
/// Writes never extend a file: a full disk shows up when the file is created, not halfway
/// through an append. Each method either does all it was asked or returns an error.
/// Concurrent calls on disjoint ranges are allowed; a read that overlaps a concurrent write
/// returns unspecified bytes (never out-of-bounds memory), so callers publish ranges to
/// readers only after the write that filled them has returned.
pub trait Segment: Send + Sync + fmt::Debug {
    /// The file's path (or name, for in-memory backends), for error messages.
    fn path(&self) -> &Path;

    /// The file's length in bytes, fixed at creation.
    fn len(&self) -> u64;

    /// Whether the file has no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes all of `buf` at `offset`, retrying short writes and interruptions.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()>;

    /// Fills all of `buf` from `offset`; reading past [`Segment::len`] is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// The `len` bytes at `offset` in a new vector; reading past [`Segment::len`] is an
    /// error. The mmap backend copies them straight into the vector's allocation; others read
    /// into a zeroed one.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Whether [`Segment::read_at`] is a plain memory copy (no system call), so that many
    /// small reads cost no more than one large read and a copy out of it. The mmap backend
    /// copies straight from its mapping: a reader may then copy each entry into its own buffer
    /// at once instead of through a read-ahead buffer. `false` by default.
    fn reads_are_copies(&self) -> bool {
        false
    }

    /// Submits several writes at once (one io_uring submission where available).
    ///
    /// Every range is checked before the first byte moves, so a batch that reaches past the
    /// end fails with [`crate::Error::OutOfBounds`] having written nothing.
    fn write_batch(&self, writes: &[WriteAt<'_>]) -> Result<()> {
        for w in writes {
            check_bounds(self.path(), self.len(), w.offset, w.buf.len())?;
        }
        writes
            .iter()
            .try_for_each(|w| self.write_at(w.offset, w.buf))
    }

    /// Submits several reads at once (one io_uring submission where available).
    ///
    /// Bounds are checked up front as for [`Segment::write_batch`].
    fn read_batch(&self, reads: &mut [ReadAt<'_>]) -> Result<()> {
        for r in reads.iter() {
            check_bounds(self.path(), self.len(), r.offset, r.buf.len())?;
        }
        reads
            .iter_mut()
            .try_for_each(|r| self.read_at(r.offset, r.buf))
    }

    /// Makes every write that returned before this call durable.
    fn sync(&self) -> Result<()>;

    /// Starts writing the file's dirty pages back without waiting for them, before a
    /// [`Segment::sync`] that follows: when several files must be synced, their write-back
    /// then overlaps instead of running one file after the other. Durability still comes
    /// only from `sync`; this is a hint and does nothing by default.
    fn start_sync(&self) {}

    /// A hint that `len` bytes from `offset` will be written soon: a backend may prepare
    /// them (the mmap backend faults their pages in, so the writes take no page fault).
    /// Changes no byte; does nothing by default. Slow, so call it off the hot path.
    fn prepare_write(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

/// A directory of segment files.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// The directory, for messages.
    fn dir(&self) -> &Path;

    /// Creates `name` with exactly `len` bytes reserved (all zero) and makes the file and its
    /// directory entry durable. Fails with `AlreadyExists` rather than truncate a file, and
    /// with `StorageFull` when the space cannot be reserved.
    fn create(&self, name: &str, len: u64) -> Result<Arc<dyn Segment>>;

    /// Opens an existing file.
    fn open(&self, name: &str) -> Result<Arc<dyn Segment>>;

    /// Removes a file. Handles that are still open keep working until dropped, but callers
    /// drop theirs first so the space is really freed.
    fn remove(&self, name: &str) -> Result<()>;

    /// The names of the regular files in the directory, in no particular order.
    fn list(&self) -> Result<Vec<String>>;

    /// Makes creations and removals in the directory durable.
    fn sync_dir(&self) -> Result<()>;
}

/// Opens a file-backed storage of the given kind in `dir`, creating the directory.
///
/// `kind` must be [`BackendKind::Fd`], [`BackendKind::FdUring`] or [`BackendKind::Mmap`];
/// [`BackendKind::FdUring`] falls back to plain calls when the kernel refuses io_uring.
/// Files and directories it creates are owner-only ([`DEFAULT_FILE_MODE`]).
pub fn open_storage(dir: &Path, kind: BackendKind) -> Result<Arc<dyn Storage>> {
    open_storage_with_mode(dir, kind, DEFAULT_FILE_MODE)
}

/// [`open_storage`], with files created with the permission bits `file_mode` and
/// directories with [`crate::dir_mode`]`(file_mode)` (less the umask in both cases).
/// Existing files and directories keep theirs.
pub fn open_storage_with_mode(
    dir: &Path,
    kind: BackendKind,
    file_mode: u32,
) -> Result<Arc<dyn Storage>> {
    Ok(match kind {
        BackendKind::Mmap => Arc::new(MmapStorage::open_with_mode(dir, file_mode)?),
        BackendKind::Fd => Arc::new(FdStorage::open_with_mode(
            dir,
            FdOptions { io_uring: false },
            file_mode,
        )?),
        _ => Arc::new(FdStorage::open_with_mode(
            dir,
            FdOptions { io_uring: true },
            file_mode,
        )?),
    })
}

/// Checks that `len` bytes at `offset` lie inside a file of `file_len` bytes.
pub(crate) fn check_bounds(path: &Path, file_len: u64, offset: u64, len: usize) -> Result<()> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(crate::Error::OutOfBounds {
            path: path.to_path_buf(),
            offset,
            len,
            file_len,
        }),
    }
}
