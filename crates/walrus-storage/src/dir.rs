//! Directory operations shared by the file-backed storages: create a pre-sized file, open,
//! remove, list, and sync the directory.

use std::{
    fs::{self, File, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use crate::{Error, Result, sys};

/// A directory of segment files on a real file system.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
}

impl Dir {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
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
