//! Seal records (a summary at the end of each sealed block that lets recovery skip its data)
//! are trusted only because they are written after their block's data is durable: a power
//! loss never leaves a seal that promises entries the disk lost. Checked over many random
//! power losses, with and without a sync between the appends; the mutant
//! `seal_before_durable` must fail here.

use std::sync::Arc;

use walrus_alloc::AllocConfig;
use walrus_storage::{BackendKind, FaultyStorage, PowerLoss, Storage};
use walrus_topic::{Engine, EngineConfig, FsyncSchedule};

use crate::support::{Rng, seed_from_env};

fn open(storage: &FaultyStorage) -> Arc<Engine> {
    let config = EngineConfig {
        dir: "<seal>".into(),
        backend: BackendKind::Faulty,
        alloc: AllocConfig {
            block_bytes: 1024,
            blocks_per_file: 8,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync: FsyncSchedule::NoFsync,
        quiet: true,
        ..EngineConfig::default()
    };
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config).expect("recovery must succeed")
}

fn payload(seq: u64) -> Vec<u8> {
    let mut data = format!("seal-{seq}-").into_bytes();
    data.resize(40 + (seq as usize * 13) % 200, seq as u8);
    data
}

#[test]
fn seal_records_never_promise_entries_a_power_loss_took() {
    let base = seed_from_env();
    let (mut sealed_opens, mut cases) = (0u64, 0u64);
    for case in 0..300u64 {
        let seed = base.wrapping_add(case);
        let mut rng = Rng(seed);
        let storage = FaultyStorage::new();
        let synced = {
            let engine = open(&storage);
            let before = rng.below(40);
            for seq in 0..before {
                engine
                    .append("t", &payload(seq), FsyncSchedule::NoFsync)
                    .unwrap();
            }
            // A sync: the blocks sealed so far are durable and get their seals.
            let flushed = rng.below(2) == 0;
            if flushed {
                engine.flush().unwrap();
            }
            for seq in before..before + 30 {
                engine
                    .append("t", &payload(seq), FsyncSchedule::NoFsync)
                    .unwrap();
            }
            std::mem::forget(engine); // the machine dies: no close
            if flushed { before } else { 0 }
        };
        storage.clear_faults();
        storage.power_loss(PowerLoss::RandomSubset { seed });
        let engine = open(&storage);
        cases += 1;
        sealed_opens += u64::from(synced > 0);
        let got = engine.read_from("t", 0, usize::MAX).unwrap();
        // A prefix, numbered without a gap, and everything that was synced.
        for (i, entry) in got.iter().enumerate() {
            assert_eq!(entry.seq, i as u64, "seed {seed}: numbered without a gap");
            assert_eq!(entry.data, payload(i as u64), "seed {seed}: entry {i}");
        }
        assert!(
            got.len() as u64 >= synced,
            "seed {seed}: synced entries lost"
        );
        // The next append continues right after the last entry kept.
        engine
            .append("t", b"after", FsyncSchedule::NoFsync)
            .unwrap();
        let last = engine.read_from("t", got.len() as u64, 10).unwrap();
        assert_eq!(
            last.len(),
            1,
            "seed {seed}: the next entry is numbered {}",
            got.len()
        );
        assert_eq!(last[0].data, b"after");
    }
    println!("seal records: seed {base}, {cases} power losses, {sealed_opens} after a sync");
}
