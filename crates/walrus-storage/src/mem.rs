//! Files in memory, for fast tests of the layers above: a [`FaultyStorage`] that never has a
//! fault armed and reports itself as [`BackendKind::Mem`].

use std::{ops::Deref, path::Path, sync::Arc};

use crate::{BackendKind, FaultyStorage, Result, Segment, Storage};

/// In-memory storage. Clones share the files, so a test can reopen what it wrote.
#[derive(Clone, Debug)]
pub struct MemStorage(FaultyStorage);

impl Default for MemStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self(FaultyStorage::with_kind(BackendKind::Mem))
    }
}

impl Deref for MemStorage {
    type Target = FaultyStorage;

    fn deref(&self) -> &FaultyStorage {
        &self.0
    }
}

impl Storage for MemStorage {
    fn kind(&self) -> BackendKind {
        self.0.kind()
    }
    fn dir(&self) -> &Path {
        self.0.dir()
    }
    fn create(&self, name: &str, len: u64) -> Result<Arc<dyn Segment>> {
        self.0.create(name, len)
    }
    fn open(&self, name: &str) -> Result<Arc<dyn Segment>> {
        self.0.open(name)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.0.remove(name)
    }
    fn list(&self) -> Result<Vec<String>> {
        self.0.list()
    }
    fn sync_dir(&self) -> Result<()> {
        self.0.sync_dir()
    }
}
