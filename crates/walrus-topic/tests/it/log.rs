//! `TopicLog` over in-memory storage with 4 KiB blocks: positions from appends and batches,
//! reads by position across many blocks and after reopens (sealed blocks, never scanned),
//! purges (floor, consumed blocks, deleted files, past the end, across reopens, with the
//! 0.2.0 cursor), waiting for the tail, durability by position, and damaged entries.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use walrus_storage::{MemStorage, Storage};
use walrus_topic::{Engine, FsyncSchedule, ReadConsistency, TopicLog};

use crate::support::{STRICT, config, damage_payload_run, payload};

const BLOCK: u64 = 4096;
const NO_FSYNC: FsyncSchedule = FsyncSchedule::NoFsync;

fn open(storage: &MemStorage, schedule: FsyncSchedule) -> Arc<Engine> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config(BLOCK, schedule)).unwrap()
}

fn log(engine: &Arc<Engine>, schedule: FsyncSchedule) -> TopicLog {
    engine.topic_log("t", schedule).unwrap()
}

/// Appends entries `0..n` (payload `payload(i)`), every seventh call a batch of three.
fn fill(log: &TopicLog, n: u64) {
    let mut next = log.next_position();
    while next < n {
        if next.is_multiple_of(7) && next + 3 <= n {
            let batch: Vec<Vec<u8>> = (next..next + 3).map(payload).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            assert_eq!(log.append_batch(&refs).unwrap(), next..next + 3);
            next += 3;
        } else {
            assert_eq!(log.append(&payload(next)).unwrap(), next);
            next += 1;
        }
    }
}

fn check_all(log: &TopicLog, from: u64, to: u64) {
    for p in from..to {
        assert_eq!(log.read_at(p).unwrap(), Some(payload(p)), "position {p}");
    }
    let all = log.read_range(from..to, usize::MAX).unwrap();
    let positions: Vec<u64> = all.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (from..to).collect::<Vec<_>>());
    assert!(all.iter().all(|(p, data)| *data == payload(*p)));
}

#[test]
fn positions_are_contiguous_and_read_back_across_many_blocks() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert_eq!(
        (log.first(), log.last(), log.next_position()),
        (None, None, 0)
    );
    assert_eq!(log.read_at(0).unwrap(), None);
    assert_eq!(log.append_batch(&[]).unwrap(), 0..0);
    fill(&log, 1500);
    assert!(engine.files_info().len() > 10, "many blocks and files");
    assert_eq!((log.first(), log.last()), (Some(0), Some(1499)));
    check_all(&log, 0, 1500);
    assert_eq!(log.read_at(1500).unwrap(), None);
    assert_eq!(log.read_at(u64::MAX).unwrap(), None);
    // Appends through the 0.2.0 calls take positions too.
    engine.append("t", &payload(1500), NO_FSYNC).unwrap();
    assert_eq!(log.read_at(1500).unwrap(), Some(payload(1500)));
    // Nothing moved the cursor.
    let first = engine.read_next("t", false, STRICT).unwrap().unwrap();
    assert_eq!(first.seq, 0);
}

#[test]
fn read_range_keeps_to_its_bounds_and_budget() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    for i in 0..300u64 {
        log.append(&[i as u8; 10]).unwrap();
    }
    let seqs = |v: Vec<(u64, Vec<u8>)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    assert_eq!(
        seqs(log.read_range(40..45, usize::MAX).unwrap()),
        [40, 41, 42, 43, 44]
    );
    assert_eq!(
        seqs(log.read_range(40..=42, usize::MAX).unwrap()),
        [40, 41, 42]
    );
    assert_eq!(seqs(log.read_range(298.., usize::MAX).unwrap()), [298, 299]);
    assert_eq!(log.read_range(..1000, usize::MAX).unwrap().len(), 300);
    assert!(log.read_range(300..400, usize::MAX).unwrap().is_empty());
    assert!(log.read_range(50..50, usize::MAX).unwrap().is_empty());
    // 10-byte payloads: 35 bytes hold three; a budget below one entry still gives one.
    assert_eq!(seqs(log.read_range(7..100, 35).unwrap()), [7, 8, 9]);
    assert_eq!(seqs(log.read_range(7..100, 30).unwrap()), [7, 8, 9]);
    assert_eq!(seqs(log.read_range(7..100, 29).unwrap()), [7, 8]);
    assert_eq!(seqs(log.read_range(7..100, 0).unwrap()), [7]);
    assert!(
        engine.read_next("t", false, STRICT).unwrap().unwrap().seq == 0,
        "no cursor moved"
    );
}

#[test]
fn reads_by_position_after_reopen_use_sealed_blocks_never_scanned() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage, FsyncSchedule::SyncEach);
        fill(&log(&engine, FsyncSchedule::SyncEach), 2000);
        // Dropping a SyncEach engine syncs twice: every block's seal is durable.
    }
    for round in 0..2u64 {
        let engine = open(&storage, NO_FSYNC);
        let log = log(&engine, NO_FSYNC);
        let end = 2000 + 100 * round;
        assert_eq!(
            (log.first(), log.last()),
            (Some(0), Some(end - 1)),
            "round {round}"
        );
        // Out of order, so each read finds its block and builds its index on demand.
        for p in [1999, 0, 1000, 31, 32, 33, 1337, 64, 999, 1998] {
            assert_eq!(log.read_at(p).unwrap(), Some(payload(p)), "position {p}");
        }
        check_all(&log, 0, end);
        fill(&log, end + 100);
        check_all(&log, end - 100, end + 100);
        engine.flush().unwrap();
        engine.flush().unwrap();
    }
}

#[test]
fn purge_before_sets_the_floor_deletes_files_and_survives_reopen() {
    let storage = MemStorage::new();
    let files_before;
    {
        let engine = open(&storage, NO_FSYNC);
        let log = log(&engine, NO_FSYNC);
        fill(&log, 2000);
        files_before = engine.files_info();
        log.purge_before(1500).unwrap();
        assert_eq!((log.first(), log.last()), (Some(1500), Some(1999)));
        assert_eq!(log.read_at(1499).unwrap(), None);
        assert_eq!(log.read_at(0).unwrap(), None);
        check_all(&log, 1500, 2000);
        let range = log.read_range(1000..1600, usize::MAX).unwrap();
        assert_eq!(
            range.first().map(|(p, _)| *p),
            Some(1500),
            "starts at the floor"
        );
        let files_after = engine.files_info();
        assert!(
            files_after.len() + 5 < files_before.len(),
            "files behind the floor are deleted: {} -> {}",
            files_before.len(),
            files_after.len()
        );
        assert_eq!(engine.stats().files, files_after.len() as u64);
        // Purging below the floor does nothing; the floor never moves back.
        log.purge_before(10).unwrap();
        assert_eq!(log.first(), Some(1500));
        // The 0.2.0 cursor was behind: it moved to the floor.
        let next = engine.read_next("t", false, STRICT).unwrap().unwrap();
        assert_eq!(next.seq, 1500);
    }
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert_eq!((log.first(), log.last()), (Some(1500), Some(1999)));
    assert_eq!(log.read_at(1499).unwrap(), None);
    check_all(&log, 1500, 2000);
    assert!(engine.files_info().len() + 5 < files_before.len());
    assert_eq!(engine.findings(), []);
}

#[test]
fn purge_past_the_end_empties_the_log_and_the_next_append_gets_that_position() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage, NO_FSYNC);
        let log = log(&engine, NO_FSYNC);
        fill(&log, 500);
        log.purge_before(10_000).unwrap();
        assert_eq!(log.first(), None);
        assert_eq!((log.last(), log.next_position()), (Some(9_999), 10_000));
        assert_eq!(log.read_at(499).unwrap(), None);
        assert!(log.read_range(.., usize::MAX).unwrap().is_empty());
        let stats = engine.stats();
        assert!(
            stats.files <= 1,
            "everything consumed: {} files left",
            stats.files
        );
        assert!(engine.read_next("t", true, STRICT).unwrap().is_none());
    }
    {
        // Empty, across a reopen: numbering resumes at the floor.
        let engine = open(&storage, NO_FSYNC);
        let log = log(&engine, NO_FSYNC);
        assert_eq!((log.first(), log.next_position()), (None, 10_000));
        assert_eq!(log.append(b"a").unwrap(), 10_000);
        assert_eq!(log.append_batch(&[b"b", b"c"]).unwrap(), 10_001..10_003);
        assert_eq!(log.first(), Some(10_000));
        assert_eq!(log.read_at(10_001).unwrap().as_deref(), Some(&b"b"[..]));
        // And again without a reopen in between: a new block starts at the position.
        log.purge_before(20_000).unwrap();
        assert_eq!(log.append(b"d").unwrap(), 20_000);
        assert_eq!(log.read_at(20_000).unwrap().as_deref(), Some(&b"d"[..]));
        let read = engine.read_next("t", true, STRICT).unwrap().unwrap();
        assert_eq!((read.seq, read.data), (20_000, b"d".to_vec()));
        engine.flush().unwrap();
    }
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert_eq!(engine.findings(), []);
    // The checkpointed read persisted the cursor past 20,000: that is the floor now.
    assert_eq!((log.first(), log.next_position()), (None, 20_001));
}

#[test]
fn a_cursor_ahead_of_the_purge_stays_and_the_floor_moves_to_the_purge() {
    let storage = MemStorage::new();
    let lazy = ReadConsistency::AtLeastOnce {
        persist_every: 1000,
    };
    {
        let engine = open(&storage, NO_FSYNC);
        let log = log(&engine, NO_FSYNC);
        fill(&log, 600);
        // Read 400 entries without persisting the cursor (AtLeastOnce, every 1,000).
        for _ in 0..400 {
            engine.read_next("t", true, lazy).unwrap().unwrap();
        }
        assert_eq!(log.first(), Some(0), "the persisted cursor is the floor");
        log.purge_before(100).unwrap();
        assert_eq!(log.first(), Some(100));
        assert_eq!(log.read_at(99).unwrap(), None);
        assert_eq!(log.read_at(100).unwrap(), Some(payload(100)));
        let next = engine.read_next("t", false, lazy).unwrap().unwrap();
        assert_eq!(next.seq, 400, "the cursor stays");
    }
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert_eq!(log.first(), Some(100));
    check_all(&log, 100, 600);
    let next = engine.read_next("t", false, lazy).unwrap().unwrap();
    assert_eq!(
        next.seq, 100,
        "unpersisted reads come again after a restart"
    );
}

#[test]
fn checkpointed_reads_move_the_floor_with_the_persisted_cursor() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    fill(&log, 100);
    for _ in 0..30 {
        engine.read_next("t", true, STRICT).unwrap().unwrap();
    }
    assert_eq!(log.first(), Some(30));
    assert_eq!(log.read_at(29).unwrap(), None);
    assert_eq!(log.read_at(30).unwrap(), Some(payload(30)));
}

#[test]
fn wait_for_wakes_on_an_append_from_another_thread_and_times_out_otherwise() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert!(!log.wait_for(0, Duration::from_millis(5)));
    for round in 0..20u64 {
        let waiter = {
            let log = log.clone();
            std::thread::spawn(move || log.wait_for(round, Duration::from_secs(600)))
        };
        if round % 2 == 0 {
            log.append(&payload(round)).unwrap();
        } else {
            engine.append("t", &payload(round), NO_FSYNC).unwrap();
        }
        assert!(waiter.join().unwrap(), "round {round}");
    }
    assert!(log.wait_for(19, Duration::ZERO), "already there");
    assert!(!log.wait_for(20, Duration::from_millis(5)));
    // A batch wakes a waiter for its last position.
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_for(22, Duration::from_secs(600)))
    };
    log.append_batch(&[b"a", b"b", b"c"]).unwrap();
    assert!(waiter.join().unwrap());
}

#[test]
fn read_next_timeout_waits_for_the_tail() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let none = engine
        .read_next_timeout("t", true, STRICT, Duration::from_millis(5))
        .unwrap();
    assert!(none.is_none());
    for round in 0..10u64 {
        let appender = {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || engine.append("t", &payload(round), NO_FSYNC))
        };
        let entry = engine
            .read_next_timeout("t", true, STRICT, Duration::from_secs(600))
            .unwrap()
            .expect("woken by the append");
        assert_eq!((entry.seq, entry.data), (round, payload(round)));
        appender.join().unwrap().unwrap();
    }
    let none = engine
        .read_next_timeout("t", true, STRICT, Duration::from_millis(5))
        .unwrap();
    assert!(none.is_none());
}

#[test]
fn durable_positions_follow_the_group_commit_under_every_schedule() {
    for schedule in [
        FsyncSchedule::SyncEach,
        FsyncSchedule::Milliseconds(5),
        FsyncSchedule::NoFsync,
    ] {
        let storage = MemStorage::new();
        let engine = open(&storage, schedule);
        let log = log(&engine, schedule);
        assert_eq!(log.durable_position(), None);
        let p = log.append(b"x").unwrap();
        if matches!(schedule, FsyncSchedule::SyncEach) {
            assert_eq!(
                log.durable_position(),
                Some(p),
                "SyncEach: durable on return"
            );
        }
        if matches!(schedule, FsyncSchedule::NoFsync) {
            assert_eq!(log.durable_position(), None, "NoFsync: nothing synced");
        }
        log.wait_durable(p).unwrap();
        assert!(log.durable_position() >= Some(p), "{schedule:?}");
        let r = log.append_batch(&[b"a", b"b"]).unwrap();
        log.sync().unwrap();
        assert_eq!(log.durable_position(), Some(r.end - 1), "{schedule:?}");
        log.wait_durable(r.start).unwrap();
        // Not appended yet: an error, not a wait forever.
        let err = log.wait_durable(r.end).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let err = log
            .on_durable(r.end, |_| panic!("never called"))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[test]
fn concurrent_waiters_share_sync_rounds() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let p = log.append(&payload(i)).unwrap();
                    log.wait_durable(p).unwrap();
                    assert!(log.durable_position() >= Some(p));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(log.durable_position(), Some(199));
    assert!(engine.stats().fsyncs <= 200, "at most one round per append");
}

#[test]
fn on_durable_callbacks_run_exactly_once() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    let calls = Arc::new(AtomicU64::new(0));
    let count = |calls: &Arc<AtomicU64>| {
        let calls = Arc::clone(calls);
        move |result: std::io::Result<()>| {
            result.unwrap();
            calls.fetch_add(1, Ordering::SeqCst);
        }
    };
    let p = log.append(b"x").unwrap();
    log.on_durable(p, count(&calls)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "NoFsync: not durable yet");
    let q = log.append(b"y").unwrap();
    log.on_durable(q, count(&calls)).unwrap();
    log.sync().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "run by the sync round");
    log.sync().unwrap();
    log.on_durable(p, count(&calls)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "already durable: at once");
    log.sync().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "never twice");

    // Many callbacks racing many sync rounds: each still runs once.
    let appender = {
        let log = log.clone();
        let calls = Arc::clone(&calls);
        std::thread::spawn(move || {
            for _ in 0..200 {
                let p = log.append(b"z").unwrap();
                let calls = Arc::clone(&calls);
                log.on_durable(p, move |r| {
                    r.unwrap();
                    calls.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        })
    };
    for _ in 0..50 {
        log.sync().unwrap();
    }
    appender.join().unwrap();
    log.sync().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 203);
    // A callback pending when the instance closes is told so.
    let closed = Arc::new(AtomicU64::new(0));
    let p = log.append(b"last").unwrap();
    {
        let closed = Arc::clone(&closed);
        log.on_durable(p, move |r| {
            assert!(r.is_err());
            closed.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    drop((log, engine));
    assert_eq!(closed.load(Ordering::SeqCst), 1);
}

#[test]
fn a_damaged_entry_is_an_error_for_reads_by_position_not_a_skip() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage, FsyncSchedule::SyncEach);
        let log = log(&engine, FsyncSchedule::SyncEach);
        for i in 0..10u8 {
            log.append(&[i; 100]).unwrap();
        }
    }
    damage_payload_run(&storage, 4, 100);
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    assert_eq!(log.read_at(3).unwrap(), Some(vec![3; 100]));
    assert_eq!(log.read_at(5).unwrap(), Some(vec![5; 100]));
    let err = log.read_at(4).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("entry 4"), "{err}");
    let err = log.read_range(0..10, usize::MAX).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // Past the damage reads go on.
    assert_eq!(log.read_range(5..10, usize::MAX).unwrap().len(), 5);
}

#[test]
fn reads_by_position_race_appends_and_purges() {
    let storage = MemStorage::new();
    let engine = open(&storage, NO_FSYNC);
    let log = log(&engine, NO_FSYNC);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..3000u64 {
                assert_eq!(log.append(&payload(i)).unwrap(), i);
                if i % 500 == 499 {
                    log.purge_before(i - 200).unwrap();
                }
            }
        })
    };
    let mut reads = 0u64;
    while !writer.is_finished() {
        let Some(last) = log.last() else { continue };
        let floor = log.first().unwrap_or(last);
        for p in [floor, (floor + last) / 2, last] {
            if let Some(data) = log.read_at(p).unwrap() {
                assert_eq!(data, payload(p));
                reads += 1;
            }
        }
        for (p, data) in log.read_range(floor..floor + 40, usize::MAX).unwrap() {
            assert_eq!(data, payload(p));
        }
    }
    writer.join().unwrap();
    // A fast writer may finish before the loop reads anything: the reads after it must
    // still see every position from the floor on.
    for p in 2799..3000 {
        assert_eq!(log.read_at(p).unwrap(), Some(payload(p)));
        reads += 1;
    }
    assert!(reads >= 201);
    assert_eq!(log.first(), Some(2799));
}

#[test]
fn sync_soon_runs_durable_callbacks_without_waiting_for_the_schedule() {
    // NoFsync (no background sync at all) and a 10-minute tick: without sync_soon the
    // callback would not run within the test's patience.
    for schedule in [NO_FSYNC, FsyncSchedule::Milliseconds(600_000)] {
        let storage = MemStorage::new();
        let engine = open(&storage, schedule);
        let log = log(&engine, schedule);
        let (tx, rx) = std::sync::mpsc::channel();
        for round in 0..3u64 {
            let p = log.append(&payload(round)).unwrap();
            let tx = tx.clone();
            log.on_durable(p, move |result| tx.send((p, result.is_ok())).unwrap())
                .unwrap();
            log.sync_soon().unwrap();
            let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(got, (p, true), "{schedule:?}");
            assert!(log.durable_position() >= Some(p));
        }
    }
}
