//! The file-descriptor backend: `pread`/`pwrite` for single calls, io_uring for batches.

use std::{
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use crate::{
    BackendKind, Error, ReadAt, Result, Segment, Storage, WriteAt, dir::Dir, segment::check_bounds,
    sys,
};

/// Options of the fd backend.
#[derive(Clone, Copy, Debug)]
pub struct FdOptions {
    /// Submit batches through io_uring when the kernel allows it.
    pub io_uring: bool,
}

impl Default for FdOptions {
    fn default() -> Self {
        Self { io_uring: true }
    }
}

/// Whether this process may use io_uring: probed once, then remembered.
///
/// The probe creates a small ring; kernels without io_uring, `io_uring_disabled` sysctls and
/// seccomp profiles all make that fail, and the reason is logged once.
pub fn io_uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match sys::uring::probe() {
        Ok(()) => {
            tracing::debug!("io_uring available: batches use one submission each");
            true
        }
        Err(err) => {
            tracing::info!(error = %err, "io_uring unavailable: batches use pwrite/pread");
            false
        }
    })
}

/// A directory of files accessed through file descriptors.
#[derive(Debug)]
pub struct FdStorage {
    dir: Dir,
    ring: Option<Arc<sys::uring::Ring>>,
}

impl FdStorage {
    /// Opens (and creates) the directory `dir`; files and directories it creates are
    /// owner-only ([`crate::DEFAULT_FILE_MODE`]).
    pub fn open(dir: &Path, options: FdOptions) -> Result<Self> {
        Self::open_with_mode(dir, options, crate::DEFAULT_FILE_MODE)
    }

    /// Opens (and creates) the directory `dir`; files it creates get the permission bits
    /// `file_mode`, directories [`crate::dir_mode`]`(file_mode)` (less the umask in both cases).
    pub fn open_with_mode(dir: &Path, options: FdOptions, file_mode: u32) -> Result<Self> {
        let dir = Dir::open(dir, file_mode)?;
        let ring = if options.io_uring && io_uring_available() {
            match sys::uring::Ring::new() {
                Ok(ring) => Some(Arc::new(ring)),
                Err(err) => {
                    tracing::info!(error = %err, "io_uring ring creation failed: using pwrite");
                    None
                }
            }
        } else {
            None
        };
        Ok(Self { dir, ring })
    }

    fn segment(&self, file: File, len: u64, name: &str) -> Arc<dyn Segment> {
        Arc::new(FdSegment {
            file,
            len,
            path: self.dir.file_path(name),
            ring: self.ring.clone(),
        })
    }
}

impl Storage for FdStorage {
    fn kind(&self) -> BackendKind {
        if self.ring.is_some() {
            BackendKind::FdUring
        } else {
            BackendKind::Fd
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn create(&self, name: &str, len: u64) -> Result<Arc<dyn Segment>> {
        let file = self.dir.create(name, len)?;
        Ok(self.segment(file, len, name))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Segment>> {
        let (file, len) = self.dir.open_file(name)?;
        Ok(self.segment(file, len, name))
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.dir.remove(name)
    }

    fn list(&self) -> Result<Vec<String>> {
        self.dir.list()
    }

    fn sync_dir(&self) -> Result<()> {
        self.dir.sync_dir()
    }
}

#[derive(Debug)]
struct FdSegment {
    file: File,
    len: u64,
    path: PathBuf,
    ring: Option<Arc<sys::uring::Ring>>,
}

impl Segment for FdSegment {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        // `write_all_at` retries short writes and EINTR, and turns a zero-byte write into an
        // error: no byte the caller asked for is silently dropped.
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io("read", &self.path, e))
    }

    fn write_batch(&self, writes: &[WriteAt<'_>]) -> Result<()> {
        for w in writes {
            check_bounds(&self.path, self.len, w.offset, w.buf.len())?;
        }
        match &self.ring {
            Some(ring) if writes.len() > 1 => ring
                .write_all(&self.file, writes)
                .map_err(|e| Error::io("io_uring write", &self.path, e)),
            _ => writes
                .iter()
                .try_for_each(|w| self.write_at(w.offset, w.buf)),
        }
    }

    fn read_batch(&self, reads: &mut [ReadAt<'_>]) -> Result<()> {
        for r in reads.iter() {
            check_bounds(&self.path, self.len, r.offset, r.buf.len())?;
        }
        match &self.ring {
            Some(ring) if reads.len() > 1 => ring
                .read_exact(&self.file, reads)
                .map_err(|e| Error::io("io_uring read", &self.path, e)),
            _ => reads
                .iter_mut()
                .try_for_each(|r| self.read_at(r.offset, r.buf)),
        }
    }

    fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))
    }

    fn start_sync(&self) {
        // A failure here is only a lost hint: the sync after it reports write-back errors.
        let _ = sys::fs::start_writeback(&self.file);
    }
}
