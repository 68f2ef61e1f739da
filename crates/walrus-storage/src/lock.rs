//! An exclusive, advisory lock on a directory, so a second process cannot open the same log.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use crate::{DEFAULT_FILE_MODE, Error, Result};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Holds an exclusive lock on a directory until dropped.
///
/// The lock is `flock`-style and advisory: it keeps out other Walrus processes, which all take
/// it, and is released by the kernel if the process dies.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock on `dir` (creating the directory and lock file), failing at once with
    /// `WouldBlock` if another process holds it. What it creates is owner-only
    /// ([`DEFAULT_FILE_MODE`]).
    pub fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_with_mode(dir, DEFAULT_FILE_MODE)
    }

    /// [`DirLock::acquire`], creating the lock file with the permission bits `file_mode` and
    /// missing directories with [`crate::dir_mode`]`(file_mode)` (less the umask). An existing
    /// directory or lock file keeps its permissions.
    pub fn acquire_with_mode(dir: &Path, file_mode: u32) -> Result<Self> {
        crate::create_dir_all(dir, file_mode)?;
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(file_mode & 0o777)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
                "lock",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the directory is in use by another process",
                ),
            )),
            Err(std::fs::TryLockError::Error(err)) => Err(Error::io("lock", &path, err)),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
