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

/// Small deterministic generator (SplitMix64), so a seed replays exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The seed of a randomized test: `SEED=<n>` replays one, otherwise one from the clock.
pub(crate) fn seed_from_env() -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Whether the environment variable `name` is set to something other than `0` or empty.
pub(crate) fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}
