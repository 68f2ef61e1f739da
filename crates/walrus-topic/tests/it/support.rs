//! Engines over in-memory storage with small blocks, so tests cross block and file
//! boundaries quickly.

use std::sync::Arc;

use walrus_alloc::AllocConfig;
use walrus_storage::{BackendKind, FaultyStorage, MemStorage, Storage};
use walrus_topic::{Engine, EngineConfig, FsyncSchedule, ReadConsistency};

pub(crate) const STRICT: ReadConsistency = ReadConsistency::StrictlyAtOnce;

pub(crate) fn config(block_bytes: u64, fsync: FsyncSchedule) -> EngineConfig {
    EngineConfig {
        dir: "<mem>".into(),
        backend: BackendKind::Mem,
        alloc: AllocConfig {
            block_bytes,
            blocks_per_file: 4,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync,
        quiet: true,
        ..EngineConfig::default()
    }
}

pub(crate) fn open_mem(storage: &MemStorage, block_bytes: u64) -> Arc<Engine> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(block_bytes, FsyncSchedule::NoFsync)).unwrap()
}

pub(crate) fn open_faulty(storage: &FaultyStorage, fsync: FsyncSchedule) -> Arc<Engine> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(4096, fsync)).unwrap()
}

/// Entry `i`: a recognisable payload whose length varies with `i` (0 to 700 bytes).
pub(crate) fn payload(i: u64) -> Vec<u8> {
    let len = ((i * 37) % 701) as usize;
    let mut out = format!("{i:08}").into_bytes();
    out.resize(len.max(8), (i % 251) as u8);
    out
}

pub(crate) fn drain(engine: &Engine, topic: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(entry) = engine.read_next(topic, true, STRICT).unwrap() {
        out.push(entry.data);
    }
    out
}

/// Damages one entry in place: in the first segment file (`.wal`) that `storage` lists, finds
/// the first run of `len` bytes all equal to `byte` (the payload of an entry appended as
/// `[byte; len]`) and overwrites its 11th byte with 0xff, so that entry fails its checksum.
pub(crate) fn damage_payload_run(storage: &dyn Storage, byte: u8, len: usize) {
    let name = storage
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".wal"))
        .unwrap();
    let file = storage.open(&name).unwrap();
    let mut bytes = vec![0u8; file.len() as usize];
    file.read_at(0, &mut bytes).unwrap();
    let at = bytes
        .windows(len)
        .position(|w| w.iter().all(|b| *b == byte))
        .unwrap();
    file.write_at((at + 10) as u64, &[0xff]).unwrap();
}

pub(crate) use crate::rng::{Rng, env_on, seed_from_env};
