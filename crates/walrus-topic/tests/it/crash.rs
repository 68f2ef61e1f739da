//! Simulated power loss and injected I/O errors through the fault-injecting storage.

use std::sync::Arc;

use walrus_alloc::AllocConfig;
use walrus_storage::{
    BackendKind, Fault, FaultPlan, FaultyStorage, OpKind, PowerLoss, Storage, TearFill,
};
use walrus_topic::{Engine, EngineConfig, FsyncSchedule, ReadConsistency};

fn config(fsync: FsyncSchedule) -> EngineConfig {
    EngineConfig {
        dir: "<faulty>".into(),
        backend: BackendKind::Faulty,
        alloc: AllocConfig {
            block_bytes: 16 * 1024,
            blocks_per_file: 4,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: false,
        },
        fsync,
        quiet: true,
        ..EngineConfig::default()
    }
}

fn engine(storage: &FaultyStorage, fsync: FsyncSchedule) -> Arc<Engine> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(fsync)).unwrap()
}

fn read_all(engine: &Engine, topic: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(e) = engine
        .read_next(topic, true, ReadConsistency::StrictlyAtOnce)
        .unwrap()
    {
        out.push(e.data);
    }
    out
}

fn entry(i: usize) -> Vec<u8> {
    format!("e{i:05}").into_bytes()
}

#[test]
fn sync_each_acknowledged_entries_survive_power_loss() {
    for mode in [
        PowerLoss::DropAll,
        PowerLoss::RandomSubset { seed: 7 },
        PowerLoss::TearLast {
            seed: 3,
            fill: TearFill::Garbage,
        },
    ] {
        let storage = FaultyStorage::new();
        let wal = engine(&storage, FsyncSchedule::SyncEach);
        for i in 0..300 {
            wal.append("t", &entry(i), FsyncSchedule::SyncEach).unwrap();
        }
        drop(wal);
        storage.power_loss(mode);
        let wal = engine(&storage, FsyncSchedule::SyncEach);
        assert_eq!(
            read_all(&wal, "t"),
            (0..300).map(entry).collect::<Vec<_>>(),
            "{mode:?}"
        );
    }
}

#[test]
fn unsynced_entries_lost_to_power_loss_leave_a_prefix() {
    for seed in 0..50 {
        let storage = FaultyStorage::new();
        let wal = engine(&storage, FsyncSchedule::NoFsync);
        for i in 0..100 {
            wal.append("t", &entry(i), FsyncSchedule::NoFsync).unwrap();
        }
        wal.flush().unwrap();
        for i in 100..400 {
            wal.append("t", &entry(i), FsyncSchedule::NoFsync).unwrap();
        }
        std::mem::forget(wal);
        storage.power_loss(PowerLoss::RandomSubset { seed });
        let wal = engine(&storage, FsyncSchedule::NoFsync);
        let got = read_all(&wal, "t");
        assert!(
            got.len() >= 100,
            "seed {seed}: flushed entries lost ({})",
            got.len()
        );
        assert_eq!(
            got,
            (0..got.len()).map(entry).collect::<Vec<_>>(),
            "seed {seed}: not a prefix"
        );
        // Recovering twice gives the same state, and new appends continue the prefix.
        wal.append("t", b"next", FsyncSchedule::SyncEach).unwrap();
        drop(wal);
        let wal = engine(&storage, FsyncSchedule::NoFsync);
        assert_eq!(read_all(&wal, "t"), [b"next".to_vec()], "seed {seed}");
    }
}

#[test]
fn batches_survive_a_crash_whole_or_not_at_all() {
    for seed in 0..200u64 {
        let storage = FaultyStorage::new();
        let wal = engine(&storage, FsyncSchedule::NoFsync);
        wal.append("t", b"before", FsyncSchedule::SyncEach).unwrap();
        let batch: Vec<Vec<u8>> = (0..(5 + seed as usize % 300)).map(entry).collect();
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        wal.batch_append("t", &refs, FsyncSchedule::NoFsync)
            .unwrap();
        std::mem::forget(wal);
        let mode = match seed % 3 {
            0 => PowerLoss::RandomSubset { seed },
            1 => PowerLoss::TearLast {
                seed,
                fill: TearFill::Zeros,
            },
            _ => PowerLoss::TearLast {
                seed,
                fill: TearFill::Garbage,
            },
        };
        storage.power_loss(mode);
        let wal = engine(&storage, FsyncSchedule::NoFsync);
        let got = read_all(&wal, "t");
        assert_eq!(got[0], b"before");
        assert!(
            got.len() == 1 || got[1..] == batch[..],
            "seed {seed}: partial batch of {} / {}",
            got.len() - 1,
            batch.len()
        );
    }
}

#[test]
fn failed_fsync_poisons_the_instance_until_reopen() {
    let storage = FaultyStorage::new();
    let wal = engine(&storage, FsyncSchedule::SyncEach);
    wal.append("t", b"ok", FsyncSchedule::SyncEach).unwrap();
    storage.inject(FaultPlan {
        op: Some(OpKind::Sync),
        nth: 1,
        fault: Fault::Eio,
        persistent: false,
    });
    let err = wal
        .append("t", b"lost?", FsyncSchedule::SyncEach)
        .unwrap_err();
    assert!(err.to_string().contains("poisoned"), "{err}");
    let err = wal
        .append("t", b"later", FsyncSchedule::SyncEach)
        .unwrap_err();
    assert!(err.to_string().contains("poisoned"), "{err}");
    assert!(wal.flush().is_err());
    drop(wal);
    storage.clear_faults();
    let wal = engine(&storage, FsyncSchedule::SyncEach);
    wal.append("t", b"after reopen", FsyncSchedule::SyncEach)
        .unwrap();
    assert_eq!(read_all(&wal, "t")[0], b"ok");
}

#[test]
fn write_errors_are_returned_and_leave_no_partial_entry() {
    for fault in [Fault::Eio, Fault::Enospc, Fault::ShortWrite] {
        let storage = FaultyStorage::new();
        let wal = engine(&storage, FsyncSchedule::SyncEach);
        wal.append("t", b"first", FsyncSchedule::SyncEach).unwrap();
        storage.inject(FaultPlan {
            op: Some(OpKind::Write),
            nth: 1,
            fault,
            persistent: false,
        });
        let err = wal
            .append("t", &[1u8; 3000], FsyncSchedule::SyncEach)
            .unwrap_err();
        let io: std::io::Error = err.into();
        let message = io.to_string();
        assert!(
            message.contains("00000000000000000001.wal"),
            "names the file: {message}"
        );
        match fault {
            Fault::Enospc => assert_eq!(io.kind(), std::io::ErrorKind::StorageFull),
            Fault::ShortWrite => assert_eq!(io.kind(), std::io::ErrorKind::WriteZero),
            _ => assert!(message.contains("Input/output error"), "{message}"),
        }
        wal.append("t", b"third", FsyncSchedule::SyncEach).unwrap();
        assert_eq!(
            read_all(&wal, "t"),
            [b"first".to_vec(), b"third".to_vec()],
            "{fault:?}"
        );
        drop(wal);
        storage.power_loss(PowerLoss::DropAll);
        let wal = engine(&storage, FsyncSchedule::SyncEach);
        wal.append("t", b"fourth", FsyncSchedule::SyncEach).unwrap();
        assert_eq!(read_all(&wal, "t"), [b"fourth".to_vec()], "{fault:?}");
    }
}

#[test]
fn failed_batch_write_leaves_nothing_behind() {
    let storage = FaultyStorage::new();
    let wal = engine(&storage, FsyncSchedule::SyncEach);
    wal.append("t", b"first", FsyncSchedule::SyncEach).unwrap();
    let batch: Vec<Vec<u8>> = (0..2000).map(entry).collect();
    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    storage.inject(FaultPlan {
        op: Some(OpKind::Write),
        nth: 2,
        fault: Fault::Enospc,
        persistent: false,
    });
    assert!(
        wal.batch_append("t", &refs, FsyncSchedule::SyncEach)
            .is_err()
    );
    assert_eq!(read_all(&wal, "t"), [b"first".to_vec()]);
    wal.batch_append("t", &refs[..3], FsyncSchedule::SyncEach)
        .unwrap();
    assert_eq!(read_all(&wal, "t").len(), 3);
    drop(wal);
    let wal = engine(&storage, FsyncSchedule::SyncEach);
    assert!(
        read_all(&wal, "t").is_empty(),
        "state after reopen matches what was read"
    );
}

#[test]
fn milliseconds_schedule_makes_appends_durable_in_the_background() {
    let storage = FaultyStorage::new();
    let wal = engine(&storage, FsyncSchedule::Milliseconds(5));
    for i in 0..50 {
        wal.append("t", &entry(i), FsyncSchedule::Milliseconds(5))
            .unwrap();
    }
    // No flush: only the background ticker can have synced these.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while storage.unsynced_bytes("00000000000000000001.wal") > 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Cut the power first, so closing cannot sync anything (its writes now fail).
    storage.power_loss(PowerLoss::DropAll);
    drop(wal);
    let wal = engine(&storage, FsyncSchedule::SyncEach);
    assert_eq!(read_all(&wal, "t"), (0..50).map(entry).collect::<Vec<_>>());
}

/// `AtLeastOnce` persists left to the next round (`CursorSync::NextRound`): until a round
/// makes the cursor durable, the blocks it passed stay (a power loss brings back the older
/// cursor, and what it points at must still be there); after the round they go, and the
/// cursor survives a power loss. Mutants `deferred_consume_early` and
/// `deferred_cursor_unsynced` fail here.
#[test]
fn deferred_cursor_frees_files_only_after_the_round_that_syncs_it() {
    let storage = FaultyStorage::new();
    let open = |storage: &FaultyStorage| {
        let shared: Arc<dyn Storage> = Arc::new(storage.clone());
        let config = EngineConfig {
            cursor_sync: walrus_topic::CursorSync::NextRound,
            ..config(FsyncSchedule::NoFsync)
        };
        Engine::open_with_storage(shared, config).unwrap()
    };
    let wal_files = |storage: &FaultyStorage| {
        let names = storage.list().unwrap();
        names.iter().filter(|n| n.ends_with(".wal")).count()
    };
    let mode = ReadConsistency::AtLeastOnce { persist_every: 1 };
    let entries: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            let mut e = i.to_le_bytes().to_vec();
            e.resize(900, i as u8);
            e
        })
        .collect();
    let read_to_end = |engine: &Engine| {
        let mut got = Vec::new();
        loop {
            let batch = engine.batch_read("t", 8 * 1024, true, mode).unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|e| e.data));
        }
    };

    let engine = open(&storage);
    for e in &entries {
        engine.append("t", e, FsyncSchedule::NoFsync).unwrap();
    }
    engine.flush().unwrap();
    let files = wal_files(&storage);
    assert!(files >= 3, "the data spans several files ({files})");
    assert_eq!(read_to_end(&engine), entries);
    assert_eq!(
        wal_files(&storage),
        files,
        "no file may go before a round has made the cursor that passed it durable"
    );
    storage.power_loss(PowerLoss::DropAll);
    drop(engine);

    // The cursor writes were lost with the power: everything is delivered again.
    let engine = open(&storage);
    assert_eq!(read_to_end(&engine), entries);
    engine.flush().unwrap();
    assert!(
        wal_files(&storage) < files,
        "the round that synced the cursor frees the files behind it"
    );
    storage.power_loss(PowerLoss::DropAll);
    drop(engine);

    // The flushed cursor survived: nothing is delivered again, and numbering goes on after
    // it although every file is gone.
    let engine = open(&storage);
    let info = engine.topic_info_of("t");
    assert_eq!(info.map(|i| (i.cursor, i.next_seq)), Some((300, 300)));
    assert_eq!(read_to_end(&engine), Vec::<Vec<u8>>::new());
}
