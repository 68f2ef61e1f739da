//! Recovery after power losses over the fault-injecting storage: what was acknowledged
//! durable survives, what is kept is a prefix, a torn batch is gone whole, and a second
//! recovery finds what the first one did.

use walrus_storage::{FaultyStorage, PowerLoss, TearFill};
use walrus_topic::FsyncSchedule;

use crate::support::{drain, open_faulty, payload};

#[test]
fn a_power_loss_keeps_every_synced_entry_and_a_prefix_of_the_rest() {
    for seed in 0..40u64 {
        let storage = FaultyStorage::new();
        let synced = {
            let engine = open_faulty(&storage, FsyncSchedule::NoFsync);
            for i in 0..60 {
                engine
                    .append("t", &payload(i), FsyncSchedule::NoFsync)
                    .unwrap();
            }
            engine.flush().unwrap();
            for i in 60..120 {
                engine
                    .append("t", &payload(i), FsyncSchedule::NoFsync)
                    .unwrap();
            }
            std::mem::forget(engine); // the process dies: no close
            60
        };
        let mode = match seed % 3 {
            0 => PowerLoss::DropAll,
            1 => PowerLoss::RandomSubset { seed },
            _ => PowerLoss::TearLast {
                seed,
                fill: TearFill::Old,
            },
        };
        storage.clear_faults();
        storage.power_loss(mode);
        let engine = open_faulty(&storage, FsyncSchedule::NoFsync);
        let got = drain(&engine, "t");
        assert!(got.len() >= synced, "seed {seed}: {} < {synced}", got.len());
        for (i, entry) in got.iter().enumerate() {
            assert_eq!(*entry, payload(i as u64), "seed {seed}: a prefix, in order");
        }
    }
}

#[test]
fn a_batch_torn_by_a_power_loss_is_gone_whole_and_recovery_is_stable() {
    for seed in 0..40u64 {
        let storage = FaultyStorage::new();
        {
            let engine = open_faulty(&storage, FsyncSchedule::NoFsync);
            engine
                .append("t", b"before", FsyncSchedule::SyncEach)
                .unwrap();
            let batch: Vec<Vec<u8>> = (0..50).map(payload).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            engine
                .batch_append("t", &refs, FsyncSchedule::NoFsync)
                .unwrap();
            std::mem::forget(engine);
        }
        storage.power_loss(PowerLoss::RandomSubset { seed });
        let first = {
            let engine = open_faulty(&storage, FsyncSchedule::NoFsync);
            let got: Vec<Vec<u8>> = engine
                .read_from("t", 0, 100)
                .unwrap()
                .into_iter()
                .map(|e| e.data)
                .collect();
            assert_eq!(got[0], b"before");
            assert!(
                got.len() == 1 || got.len() == 51,
                "seed {seed}: all or nothing, got {}",
                got.len()
            );
            got
        };
        // Recovery wrote its cuts durably: another power loss and open find the same.
        storage.power_loss(PowerLoss::DropAll);
        let engine = open_faulty(&storage, FsyncSchedule::NoFsync);
        let again: Vec<Vec<u8>> = engine
            .read_from("t", 0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(
            again, first,
            "seed {seed}: a second recovery finds the same"
        );
    }
}

#[test]
fn cursors_survive_a_reopen_and_consumed_entries_do_not_come_back() {
    let storage = FaultyStorage::new();
    {
        let engine = open_faulty(&storage, FsyncSchedule::SyncEach);
        for i in 0..30 {
            engine
                .append("t", &payload(i), FsyncSchedule::SyncEach)
                .unwrap();
        }
        for _ in 0..12 {
            engine.read_next("t", true, crate::support::STRICT).unwrap();
        }
    }
    let engine = open_faulty(&storage, FsyncSchedule::SyncEach);
    let rest = drain(&engine, "t");
    assert_eq!(rest.len(), 18);
    assert_eq!(rest[0], payload(12));
}
