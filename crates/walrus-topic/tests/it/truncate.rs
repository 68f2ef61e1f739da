//! `TopicLog::truncate_from` / `truncate_after` and the metadata record, over in-memory
//! storage with 4 KiB blocks: suffixes removed inside a block, across blocks and inside a
//! batch, appends after them, reopen (with and without a clean close), cursors moved back,
//! limits, and an interrupted truncation finished by recovery.

use std::sync::Arc;

use walrus_storage::{Fault, FaultPlan, FaultyStorage, PowerLoss, Storage, TearFill};
use walrus_topic::{Engine, FsyncSchedule, META_BYTES_MAX, ReadConsistency, TopicLog};

use crate::support::{config, damage_payload_run, payload};

const BLOCK: u64 = 4096;
const SYNC: FsyncSchedule = FsyncSchedule::SyncEach;

fn open(storage: &FaultyStorage) -> Arc<Engine> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(BLOCK, SYNC)).unwrap()
}

fn log_of(engine: &Arc<Engine>) -> TopicLog {
    engine.topic_log("t", SYNC).unwrap()
}

/// The whole readable log as `(position, payload)`.
fn contents(log: &TopicLog) -> Vec<(u64, Vec<u8>)> {
    log.read_range(.., usize::MAX).unwrap()
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
    range.map(|p| (p, payload(p))).collect()
}

/// Appends `from..to` as batches of `batch` entries (singles when `batch` is 1).
fn fill(log: &TopicLog, from: u64, to: u64, batch: u64) {
    assert_eq!(log.next_position(), from);
    let mut next = from;
    while next < to {
        let end = (next + batch).min(to);
        let data: Vec<Vec<u8>> = (next..end).map(payload).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        if refs.len() == 1 {
            log.append(refs[0]).unwrap();
        } else {
            log.append_batch(&refs).unwrap();
        }
        next = end;
    }
}

/// A payload that differs from `payload(p)`: what a new leader writes over a truncated suffix.
fn other(p: u64) -> Vec<u8> {
    format!("new entry {p}").into_bytes()
}

#[test]
fn truncation_removes_the_suffix_and_appends_take_its_positions_also_after_reopen() {
    for (cut, batch) in [
        (150u64, 1u64),
        (3, 1),
        (0, 1),
        (150, 7),
        (151, 50),
        (299, 300),
    ] {
        let storage = FaultyStorage::new();
        {
            let engine = open(&storage);
            let log = log_of(&engine);
            fill(&log, 0, 300, batch);
            assert!(engine.files_info().len() > 3, "many blocks");
            log.truncate_from(cut).unwrap();
            assert_eq!(log.next_position(), cut, "cut {cut} batch {batch}");
            assert_eq!(log.last(), cut.checked_sub(1));
            assert_eq!(log.read_at(cut).unwrap(), None);
            assert_eq!(contents(&log), expected(0..cut));
            for p in cut..cut + 20 {
                assert_eq!(log.append(&other(p)).unwrap(), p);
            }
            assert_eq!(log.read_at(cut).unwrap(), Some(other(cut)));
        }
        for _ in 0..2 {
            let engine = open(&storage);
            let log = log_of(&engine);
            assert!(engine.findings().is_empty(), "{:?}", engine.findings());
            let mut want = expected(0..cut);
            want.extend((cut..cut + 20).map(|p| (p, other(p))));
            assert_eq!(contents(&log), want, "cut {cut} batch {batch} after reopen");
        }
    }
}

#[test]
fn a_batch_cut_in_the_middle_keeps_its_first_entries_across_a_crash() {
    for clean in [false, true] {
        let storage = FaultyStorage::new();
        {
            let engine = open(&storage);
            let log = log_of(&engine);
            fill(&log, 0, 40, 40); // one batch, several blocks
            log.truncate_after(24).unwrap();
            assert_eq!(contents(&log), expected(0..25));
            if !clean {
                // No clean close: the power fails right after the truncation returned.
                std::mem::forget(engine);
                storage.power_loss(PowerLoss::DropAll);
            }
        }
        let engine = open(&storage);
        let log = log_of(&engine);
        let found = contents(&log);
        let positions: Vec<u64> = found.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            positions,
            (0..25).collect::<Vec<_>>(),
            "clean close: {clean}, {:?}",
            engine.findings()
        );
        assert!(found == expected(0..25), "payloads");
        assert!(engine.findings().is_empty(), "{:?}", engine.findings());
    }
}

#[test]
fn a_cursor_past_the_cut_moves_back_to_it_and_one_before_stays() {
    let storage = FaultyStorage::new();
    let engine = open(&storage);
    let log = log_of(&engine);
    fill(&log, 0, 200, 3);
    let at_least_once = ReadConsistency::AtLeastOnce {
        persist_every: 1000,
    };
    // The cursor reads past the cut (persisted only every 1,000 reads: the floor stays 0).
    for p in 0..120 {
        let entry = engine.read_next("t", true, at_least_once).unwrap().unwrap();
        assert_eq!(entry.seq, p);
    }
    log.truncate_from(100).unwrap();
    log.append(&other(100)).unwrap();
    let entry = engine.read_next("t", true, at_least_once).unwrap().unwrap();
    assert_eq!((entry.seq, entry.data), (100, other(100)));
    assert_eq!(engine.read_next("t", true, at_least_once).unwrap(), None);

    // A cursor before the cut is not moved.
    let second = engine.topic_log("u", SYNC).unwrap();
    fill(&second, 0, 50, 1);
    for _ in 0..10 {
        engine.read_next("u", true, at_least_once).unwrap().unwrap();
    }
    second.truncate_from(30).unwrap();
    let entry = engine.read_next("u", true, at_least_once).unwrap().unwrap();
    assert_eq!(entry.seq, 10);
}

#[test]
fn truncation_limits_are_checked() {
    let storage = FaultyStorage::new();
    let engine = open(&storage);
    let log = log_of(&engine);
    fill(&log, 0, 50, 1);
    // At or past the end: nothing to do.
    log.truncate_from(50).unwrap();
    log.truncate_after(u64::MAX).unwrap();
    assert_eq!(log.next_position(), 50);
    log.purge_before(20).unwrap();
    let err = log.truncate_from(19).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("purged"), "{err}");
    // At the floor: the log is empty, and the next append gets the floor.
    log.truncate_from(20).unwrap();
    assert_eq!((log.first(), log.next_position()), (None, 20));
    assert_eq!(log.append(b"x").unwrap(), 20);
    drop(log);
    drop(engine);
    let engine = open(&storage);
    let log = log_of(&engine);
    assert_eq!(contents(&log), [(20, b"x".to_vec())]);
}

#[test]
fn blocks_removed_by_truncation_are_reclaimed() {
    let storage = FaultyStorage::new();
    let engine = open(&storage);
    let log = log_of(&engine);
    fill(&log, 0, 2000, 1);
    let files = engine.files_info().len();
    log.truncate_from(10).unwrap();
    log.purge_before(10).unwrap();
    let left = engine.files_info().len();
    assert!(left < files / 2, "{left} of {files} files left");
}

#[test]
fn a_crash_at_any_step_of_a_truncation_leaves_the_old_suffix_or_none_of_it() {
    let losses = [
        PowerLoss::DropAll,
        PowerLoss::RandomSubset { seed: 7 },
        PowerLoss::TearLast {
            seed: 3,
            fill: TearFill::Garbage,
        },
        PowerLoss::KeepAll,
    ];
    let old = expected(0..300);
    let truncated = expected(0..100);
    let (mut finished, mut undone) = (0, 0);
    for loss in losses {
        for nth in 1.. {
            let storage = FaultyStorage::new();
            let engine = open(&storage);
            let log = log_of(&engine);
            fill(&log, 0, 300, 9);
            // Every storage operation from the `nth` one on fails: the crash comes there.
            storage.inject(FaultPlan {
                op: None,
                nth,
                fault: Fault::Eio,
                persistent: true,
            });
            let returned = log.truncate_from(100).is_ok();
            std::mem::forget((log, engine));
            storage.power_loss(loss);
            storage.clear_faults();
            for reopen in 0..2 {
                let engine = open(&storage);
                let log = log_of(&engine);
                let found = contents(&log);
                assert!(
                    found == truncated || (found == old && !returned),
                    "step {nth}, {loss:?}, reopen {reopen}: {} entries, returned {returned}",
                    found.len()
                );
                if reopen == 1 {
                    let next = log.next_position();
                    assert_eq!(log.append(&other(next)).unwrap(), next);
                    if found == truncated {
                        finished += 1;
                    } else {
                        undone += 1;
                    }
                }
            }
            if returned {
                break;
            }
        }
    }
    assert!(
        finished > 4 && undone > 4,
        "finished {finished}, undone {undone}"
    );
}

#[test]
fn the_metadata_record_is_replaced_atomically_and_survives_reopen() {
    let storage = FaultyStorage::new();
    {
        let engine = open(&storage);
        let log = log_of(&engine);
        assert_eq!(log.meta(), None);
        log.set_meta(b"vote: term 3, node 1").unwrap();
        log.set_meta(b"").unwrap();
        assert_eq!(log.meta(), Some(Vec::new()));
        log.set_meta(&[7u8; META_BYTES_MAX]).unwrap();
        let err = log.set_meta(&[0u8; META_BYTES_MAX + 1]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("512"), "{err}");
        // A topic with a record and no entry, and many topics with records.
        for i in 0..300 {
            let other = engine.topic_log(&format!("m{i}"), SYNC).unwrap();
            other.set_meta(format!("meta {i}").as_bytes()).unwrap();
        }
    }
    let engine = open(&storage);
    assert_eq!(log_of(&engine).meta(), Some(vec![7u8; META_BYTES_MAX]));
    for i in [0, 255, 256, 299] {
        let other = engine.topic_log(&format!("m{i}"), SYNC).unwrap();
        assert_eq!(other.meta(), Some(format!("meta {i}").into_bytes()));
    }
}

#[test]
fn a_damaged_entry_at_the_cut_goes_with_the_suffix() {
    let storage = FaultyStorage::new();
    {
        let engine = open(&storage);
        let log = log_of(&engine);
        for i in 0..10u8 {
            log.append(&[i; 100]).unwrap();
        }
    }
    // Damage entry 4's payload.
    damage_payload_run(&storage, 4, 100);
    {
        let engine = open(&storage);
        let log = log_of(&engine);
        log.truncate_from(4).unwrap();
        assert_eq!(log.append(b"new").unwrap(), 4);
    }
    let engine = open(&storage);
    assert!(engine.findings().is_empty(), "{:?}", engine.findings());
    let log = log_of(&engine);
    let positions: Vec<u64> = contents(&log).iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4]);
    assert_eq!(log.read_at(4).unwrap(), Some(b"new".to_vec()));
}
