//! In-memory storage that tracks unsynced writes, simulates power loss and fails chosen
//! operations: the engine of the deterministic crash tests (docs/RELIABILITY T2 and T6).
//!
//! Each file keeps a *durable* image (what survived the last sync) and the list of writes made
//! since. A power loss rebuilds every file from its durable image plus a chosen subset of those
//! writes, and invalidates every handle from before it.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::Mutex;

use crate::{BackendKind, Error, Result, Segment, Storage, segment::check_bounds};

/// An operation kind that a [`FaultPlan`] can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpKind {
    /// [`Storage::create`].
    Create,
    /// [`Storage::open`].
    Open,
    /// [`Segment::write_at`] (each write of a batch counts once).
    Write,
    /// [`Segment::read_at`] (each read of a batch counts once).
    Read,
    /// [`Segment::sync`].
    Sync,
    /// [`Storage::remove`].
    Remove,
    /// [`Storage::sync_dir`].
    SyncDir,
}

/// The error an injected fault produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `EIO`.
    Eio,
    /// `ENOSPC`.
    Enospc,
    /// A write that stores only the first half of its bytes, then fails with `WriteZero`.
    /// Other operations fail with `EIO`.
    ShortWrite,
}

/// Fail the `nth` operation (1-based, counted from injection) of kind `op` (any kind if
/// `None`); with `persistent`, every later matching operation fails too.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    /// The operation kind to count, or every kind.
    pub op: Option<OpKind>,
    /// Which matching operation fails first.
    pub nth: u64,
    /// What the failure looks like.
    pub fault: Fault,
    /// Whether the failures go on after the first.
    pub persistent: bool,
}

/// What reaches the disk of the writes made since each file's last sync.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum PowerLoss {
    /// None of them.
    DropAll,
    /// Each independently with probability one half, chosen by `seed`.
    RandomSubset {
        /// Seed of the choice.
        seed: u64,
    },
    /// All but the last write of each file; the last keeps its bytes up to a random 512-byte
    /// boundary of the file (possibly none, possibly all of them) and the rest of its range is
    /// filled with `fill`.
    TearLast {
        /// Seed of the choice.
        seed: u64,
        /// What the lost part of the last write looks like.
        fill: TearFill,
    },
    /// All of them (a process crash: the page cache survives).
    KeepAll,
}

/// Content of the torn part of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TearFill {
    /// The bytes that were there before the write.
    Old,
    /// Zero bytes.
    Zeros,
    /// Pseudo-random bytes.
    Garbage,
}

const SECTOR_BYTES: usize = 512;

#[derive(Debug, Default)]
struct FileState {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<(usize, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, FileState>,
    generation: u64,
    plan: Option<FaultPlan>,
    matched: u64,
    op_counts: HashMap<OpKind, u64>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    kind: BackendKind,
    state: Mutex<State>,
}

/// In-memory storage with power-loss simulation and fault injection. Clones share the files,
/// so a test can keep one clone to crash and reopen what the code under test wrote.
#[derive(Clone, Debug)]
pub struct FaultyStorage {
    shared: Arc<Shared>,
}

impl Default for FaultyStorage {
    fn default() -> Self {
        Self::new()
    }
}

/// Small deterministic generator (SplitMix64) so the crate needs no `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl FaultyStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::with_kind(BackendKind::Faulty)
    }

    pub(crate) fn with_kind(kind: BackendKind) -> Self {
        let dir = PathBuf::from(format!("<{}>", kind.name()));
        Self {
            shared: Arc::new(Shared {
                dir,
                kind,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Arms a fault; replaces any earlier plan and restarts its count.
    pub fn inject(&self, plan: FaultPlan) {
        let mut state = self.shared.state.lock();
        state.plan = Some(plan);
        state.matched = 0;
    }

    /// Disarms any fault.
    pub fn clear_faults(&self) {
        self.shared.state.lock().plan = None;
    }

    /// How many operations of `kind` were made since the storage was created.
    pub fn op_count(&self, kind: OpKind) -> u64 {
        self.shared
            .state
            .lock()
            .op_counts
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    /// Bytes written to `name` since its last sync.
    pub fn unsynced_bytes(&self, name: &str) -> usize {
        let state = self.shared.state.lock();
        state
            .files
            .get(name)
            .map_or(0, |f| f.unsynced.iter().map(|(_, d)| d.len()).sum())
    }

    /// Simulates a power loss (or, with [`PowerLoss::KeepAll`], a process crash): rebuilds
    /// every file and invalidates every open handle.
    pub fn power_loss(&self, mode: PowerLoss) {
        let mut state = self.shared.state.lock();
        state.generation += 1;
        for file in state.files.values_mut() {
            let writes = std::mem::take(&mut file.unsynced);
            apply_power_loss(&mut file.durable, &writes, mode);
            file.volatile.clone_from(&file.durable);
        }
    }

    fn fault_for(&self, state: &mut State, kind: OpKind) -> Option<Fault> {
        *state.op_counts.entry(kind).or_default() += 1;
        let plan = state.plan?;
        if plan.op.is_some_and(|op| op != kind) {
            return None;
        }
        state.matched += 1;
        let hit = state.matched == plan.nth || (plan.persistent && state.matched > plan.nth);
        hit.then_some(plan.fault)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.shared.dir.join(name)
    }
}

fn apply_power_loss(durable: &mut [u8], writes: &[(usize, Vec<u8>)], mode: PowerLoss) {
    let apply = |durable: &mut [u8], offset: usize, data: &[u8]| {
        durable[offset..offset + data.len()].copy_from_slice(data);
    };
    match mode {
        PowerLoss::DropAll => {}
        PowerLoss::KeepAll => writes.iter().for_each(|(o, d)| apply(durable, *o, d)),
        PowerLoss::RandomSubset { seed } => {
            let mut rng = SplitMix(seed);
            for (offset, data) in writes {
                if rng.next() & 1 == 1 {
                    apply(durable, *offset, data);
                }
            }
        }
        PowerLoss::TearLast { seed, fill } => {
            let Some(((last_offset, last), rest)) = writes.split_last() else {
                return;
            };
            rest.iter().for_each(|(o, d)| apply(durable, *o, d));
            let mut rng = SplitMix(seed);
            // Sector boundaries are file-relative, as on a disk. The tear lands on the write's
            // start, on a boundary strictly inside it, or on its end (nothing lost).
            let first_boundary = (last_offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
            let end = last_offset + last.len();
            let inner_boundaries =
                (last_offset / SECTOR_BYTES + 1..end.div_ceil(SECTOR_BYTES)).len();
            let choices = inner_boundaries + 2;
            let kept_sectors = (rng.next() % choices as u64) as usize;
            let kept = if kept_sectors == 0 {
                0
            } else {
                (first_boundary - last_offset + (kept_sectors - 1) * SECTOR_BYTES).min(last.len())
            };
            apply(durable, *last_offset, &last[..kept]);
            let torn = &mut durable[last_offset + kept..last_offset + last.len()];
            match fill {
                TearFill::Old => {}
                TearFill::Zeros => torn.fill(0),
                TearFill::Garbage => torn.iter_mut().for_each(|b| *b = rng.next() as u8),
            }
        }
    }
}

fn os_error(fault: Fault) -> io::Error {
    match fault {
        Fault::Enospc => io::Error::from_raw_os_error(libc::ENOSPC),
        Fault::Eio | Fault::ShortWrite => io::Error::from_raw_os_error(libc::EIO),
    }
}

impl Storage for FaultyStorage {
    fn kind(&self) -> BackendKind {
        self.shared.kind
    }

    fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn create(&self, name: &str, len: u64) -> Result<Arc<dyn Segment>> {
        let path = self.path_of(name);
        let mut state = self.shared.state.lock();
        if let Some(fault) = self.fault_for(&mut state, OpKind::Create) {
            return Err(Error::io("create", path, os_error(fault)));
        }
        if state.files.contains_key(name) {
            let err = io::Error::new(io::ErrorKind::AlreadyExists, "file exists");
            return Err(Error::io("create", path, err));
        }
        let size = usize::try_from(len).expect("in-memory file larger than memory");
        let file = FileState {
            volatile: vec![0; size],
            durable: vec![0; size],
            unsynced: vec![],
        };
        state.files.insert(name.to_owned(), file);
        let generation = state.generation;
        drop(state);
        Ok(Arc::new(FaultySegment {
            storage: self.clone(),
            name: name.to_owned(),
            path,
            len,
            generation,
        }))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Segment>> {
        let path = self.path_of(name);
        let mut state = self.shared.state.lock();
        if let Some(fault) = self.fault_for(&mut state, OpKind::Open) {
            return Err(Error::io("open", path, os_error(fault)));
        }
        let Some(file) = state.files.get(name) else {
            let err = io::Error::new(io::ErrorKind::NotFound, "no such file");
            return Err(Error::io("open", path, err));
        };
        let len = file.volatile.len() as u64;
        let generation = state.generation;
        drop(state);
        Ok(Arc::new(FaultySegment {
            storage: self.clone(),
            name: name.to_owned(),
            path,
            len,
            generation,
        }))
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut state = self.shared.state.lock();
        if let Some(fault) = self.fault_for(&mut state, OpKind::Remove) {
            return Err(Error::io("remove", self.path_of(name), os_error(fault)));
        }
        match state.files.remove(name) {
            Some(_) => Ok(()),
            None => {
                let err = io::Error::new(io::ErrorKind::NotFound, "no such file");
                Err(Error::io("remove", self.path_of(name), err))
            }
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.shared.state.lock().files.keys().cloned().collect())
    }

    fn sync_dir(&self) -> Result<()> {
        let mut state = self.shared.state.lock();
        match self.fault_for(&mut state, OpKind::SyncDir) {
            Some(fault) => Err(Error::io(
                "fsync directory",
                &self.shared.dir,
                os_error(fault),
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct FaultySegment {
    storage: FaultyStorage,
    name: String,
    path: PathBuf,
    len: u64,
    generation: u64,
}

impl FaultySegment {
    fn with_file<T>(
        &self,
        kind: OpKind,
        op: &'static str,
        f: impl FnOnce(&mut FileState, Option<Fault>) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.storage.shared.state.lock();
        if state.generation != self.generation {
            return Err(Error::Crashed {
                path: self.path.clone(),
            });
        }
        let fault = self.storage.fault_for(&mut state, kind);
        let Some(file) = state.files.get_mut(&self.name) else {
            let err = io::Error::new(io::ErrorKind::NotFound, "file was removed");
            return Err(Error::io(op, &self.path, err));
        };
        f(file, fault)
    }
}

impl Segment for FaultySegment {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        let offset = offset as usize;
        self.with_file(OpKind::Write, "write", |file, fault| {
            let stored = match fault {
                None => buf,
                Some(Fault::ShortWrite) => &buf[..buf.len() / 2],
                Some(other) => return Err(Error::io("write", &self.path, os_error(other))),
            };
            file.volatile[offset..offset + stored.len()].copy_from_slice(stored);
            file.unsynced.push((offset, stored.to_vec()));
            match fault {
                None => Ok(()),
                Some(_) => {
                    let err = io::Error::new(io::ErrorKind::WriteZero, "short write");
                    Err(Error::io("write", &self.path, err))
                }
            }
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(&self.path, self.len, offset, buf.len())?;
        let offset = offset as usize;
        self.with_file(OpKind::Read, "read", |file, fault| match fault {
            Some(fault) => Err(Error::io("read", &self.path, os_error(fault))),
            None => {
                buf.copy_from_slice(&file.volatile[offset..offset + buf.len()]);
                Ok(())
            }
        })
    }

    fn sync(&self) -> Result<()> {
        self.with_file(OpKind::Sync, "fdatasync", |file, fault| {
            if let Some(fault) = fault {
                // Like Linux after a failed fsync: the dirty data may or may not be on disk and
                // will not be retried, so the pending writes are forgotten, not made durable.
                file.unsynced.clear();
                return Err(Error::io("fdatasync", &self.path, os_error(fault)));
            }
            for (offset, data) in file.unsynced.drain(..) {
                file.durable[offset..offset + data.len()].copy_from_slice(&data);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
