//! Directory operations shared by the file-backed storages: create a pre-sized file, open,
//! remove, list, and sync the directory.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::{Error, Result, sys};

/// Permission bits of the files Walrus creates unless told otherwise: read and write for the
/// owner only (`0o600`), since they hold user data. Directories get [`dir_mode`] of it
/// (`0o700`).
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The permission bits of a directory created for files of `file_mode`: the same bits, plus
/// execute (search) wherever read is set (`0o600` -> `0o700`, `0o640` -> `0o750`). Only the
/// permission bits (`0o777`) of `file_mode` count.
pub fn dir_mode(file_mode: u32) -> u32 {
    let mode = file_mode & 0o777;
    mode | ((mode & 0o444) >> 2)
}

/// Creates `path` and every missing parent with [`dir_mode`]`(file_mode)`, as
/// `std::fs::create_dir_all` does. Directories that already exist keep their permissions;
/// the process umask still clears bits of new ones.
pub fn create_dir_all(path: &Path, file_mode: u32) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode(file_mode))
        .create(path)
        .map_err(|e| Error::io("create directory", path, e))
}

/// A directory of segment files on a real file system.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
    /// Permission bits of the files this directory creates.
    file_mode: u32,
}

impl Dir {
    /// Opens `path`, creating it (and its parents) with [`dir_mode`]`(file_mode)` if needed;
    /// files created in it get `file_mode`.
    pub(crate) fn open(path: &Path, file_mode: u32) -> Result<Self> {
        create_dir_all(path, file_mode)?;
        Ok(Self {
            path: path.to_path_buf(),
            file_mode: file_mode & 0o777,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `name`, reserves `len` bytes, and makes both the file and its directory entry
    /// durable. A file that cannot be fully reserved is removed again.
    pub(crate) fn create(&self, name: &str, len: u64) -> Result<File> {
        let path = self.file_path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(self.file_mode)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        // Each step names itself in the error (a full disk fails the reservation, a descriptor
        // limit the directory sync).
        let reserved = sys::fs::reserve(&file, len)
            .map_err(|e| ("reserve space for", e))
            .and_then(|()| file.sync_all().map_err(|e| ("sync new file", e)))
            .and_then(|()| {
                self.sync_dir_raw()
                    .map_err(|e| ("sync the directory entry of", e))
            });
        if let Err((what, err)) = reserved {
            // Best effort: the error that matters is the one we return.
            let _ = fs::remove_file(&path);
            return Err(Error::io(what, &path, err));
        }
        Ok(file)
    }

    pub(crate) fn open_file(&self, name: &str) -> Result<(File, u64)> {
        let path = self.file_path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        Ok((file, len))
    }

    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        let path = self.file_path(name);
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))
    }

    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.path).map_err(|e| Error::io("list", &self.path, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.path, e))?;
            let is_file = entry
                .file_type()
                .map_err(|e| Error::io("stat", entry.path(), e))?;
            if is_file.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn sync_dir_raw(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    pub(crate) fn sync_dir(&self) -> Result<()> {
        self.sync_dir_raw()
            .map_err(|e| Error::io("fsync directory", &self.path, e))
    }
}
