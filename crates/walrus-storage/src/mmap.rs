//! The mmap backend: each file is one shared mapping; a write is a copy into it (no system
//! call), a sync is an `msync` of just the range written since the last sync.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::Mutex;

use crate::{
    BackendKind, Error, Result, Segment, Storage, dir::Dir, segment::check_bounds,
    sys::mmap::Mapping,
};

/// A directory of memory-mapped files.
///
/// Files are pre-sized with `fallocate`, so a full disk fails their creation with `ENOSPC`
/// instead of killing the process with `SIGBUS` on a later store.
#[derive(Debug)]
pub struct MmapStorage {
    dir: Dir,
}

impl MmapStorage {
    /// Opens (and creates) the directory `dir`; files and directories it creates are
    /// owner-only ([`crate::DEFAULT_FILE_MODE`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_mode(dir, crate::DEFAULT_FILE_MODE)
    }

    /// Opens (and creates) the directory `dir`; files it creates get the permission bits
    /// `file_mode`, directories [`crate::dir_mode`]`(file_mode)` (less the umask in both cases).
    pub fn open_with_mode(dir: &Path, file_mode: u32) -> Result<Self> {
        Ok(Self {
            dir: Dir::open(dir, file_mode)?,
        })
    }

    fn segment(&self, file: &File, len: u64, name: &str) -> Result<Arc<dyn Segment>> {
        let path = self.dir.file_path(name);
        let map = Mapping::map(file, len).map_err(|e| Error::io("mmap", &path, e))?;
        // The mapping keeps the file's pages alive on its own; the descriptor can close.
        Ok(Arc::new(MmapSegment {
            map,
            len,
            path,
            dirty: Mutex::new(None),
        }))
    }
}

impl Storage for MmapStorage {
    fn kind(&self) -> BackendKind {
        BackendKind::Mmap
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn create(&self, name: &str, len: u64) -> Result<Arc<dyn Segment>> {
        let file = self.dir.create(name, len)?;
        self.segment(&file, len, name)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Segment>> {
        let (file, len) = self.dir.open_file(name)?;
        self.segment(&file, len, name)
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
struct MmapSegment {
    map: Mapping,
    len: u64,
    path: PathBuf,
    /// Byte range written since the last sync, as `(start, end)`.
    dirty: Mutex<Option<(u64, u64)>>,
}

impl Segment for MmapSegment {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        // In bounds of a mapping of `len` bytes, so it fits in usize.
        self.map.write(offset as usize, buf);
        let end = offset + buf.len() as u64;
        let mut dirty = self.dirty.lock();
        *dirty = Some(match *dirty {
            Some((start, stop)) => (start.min(offset), stop.max(end)),
            None => (offset, end),
        });
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        self.map.read(offset as usize, buf);
        Ok(())
    }

    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        check_bounds(&self.path, self.len, offset, len)?;
        let mut out = Vec::new();
        self.map.read_append(offset as usize, len, &mut out);
        Ok(out)
    }

    fn reads_are_copies(&self) -> bool {
        true
    }

    fn sync(&self) -> Result<()> {
        let Some((start, end)) = self.dirty.lock().take() else {
            return Ok(());
        };
        let flushed = self.map.flush_range(start as usize, (end - start) as usize);
        if let Err(err) = flushed {
            // Put the range back so a later sync retries it; the caller still sees the error
            // and is expected to treat the data as not durable.
            let mut dirty = self.dirty.lock();
            *dirty = Some(match *dirty {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
            return Err(Error::io("msync", &self.path, err));
        }
        Ok(())
    }

    fn prepare_write(&self, offset: u64, len: u64) {
        // Clamped to the file; a kernel without MADV_POPULATE_WRITE makes it a no-op.
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return;
        }
        // Mutant prepare_overwrites: "prepares" pages by writing to them, racing the appends
        // the hint is for (the suites must catch a preparer that changes bytes).
        if cfg!(walrus_mutant = "prepare_overwrites") {
            self.map
                .write(offset as usize, &vec![0u8; (end - offset) as usize]);
            return;
        }
        let _ = self.map.prefault(offset as usize, (end - offset) as usize);
    }
}

#[cfg(test)]
mod tests;
