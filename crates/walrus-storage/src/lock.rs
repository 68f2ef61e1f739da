//! An exclusive, advisory lock on a directory, so a second process cannot open the same log.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
};

use crate::{Error, Result};

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
    /// `WouldBlock` if another process holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
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
