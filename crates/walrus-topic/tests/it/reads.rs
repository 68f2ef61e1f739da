//! Reads through the read-ahead buffer: sequential `read_next`, tail following (the buffer
//! must never serve bytes past what was published when it was filled), batch budgets and
//! caps, entries larger than the read-ahead window, `read_from`, and damage skipping.

use walrus_storage::MemStorage;

use crate::support::{STRICT, damage_payload_run, drain, open_mem, payload};

#[test]
fn read_next_returns_every_entry_across_blocks_in_order() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 2048);
    for i in 0..500 {
        engine
            .append("t", &payload(i), walrus_topic::FsyncSchedule::NoFsync)
            .unwrap();
    }
    let got = drain(&engine, "t");
    assert_eq!(got.len(), 500);
    assert!(got.iter().enumerate().all(|(i, e)| *e == payload(i as u64)));
}

#[test]
fn a_reader_following_the_tail_sees_each_append_and_nothing_stale() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 64 * 1024);
    let schedule = walrus_topic::FsyncSchedule::NoFsync;
    let mut next = 0u64;
    let mut read = 0u64;
    for round in 1..60u64 {
        for _ in 0..(round % 4) {
            engine.append("t", &payload(next), schedule).unwrap();
            next += 1;
        }
        // Peek then read: both see the entry just appended, never an older buffer's view.
        while read < next {
            let peeked = engine.read_next("t", false, STRICT).unwrap().unwrap();
            let entry = engine.read_next("t", true, STRICT).unwrap().unwrap();
            assert_eq!(peeked, entry);
            assert_eq!((entry.seq, entry.data), (read, payload(read)));
            read += 1;
        }
        assert!(engine.read_next("t", true, STRICT).unwrap().is_none());
    }
}

#[test]
fn batch_reads_keep_to_the_budget_and_the_entry_cap() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 1 << 20);
    let schedule = walrus_topic::FsyncSchedule::NoFsync;
    for i in 0..2500u64 {
        engine.append("t", &i.to_le_bytes(), schedule).unwrap();
    }
    let first = engine.batch_read("t", usize::MAX, true, STRICT).unwrap();
    assert_eq!(first.len(), 2000, "at most 2,000 entries per call");
    let small = engine.batch_read("t", 20, true, STRICT).unwrap();
    assert_eq!(small.len(), 2, "8-byte payloads within a 20-byte budget");
    let rest = engine.batch_read("t", usize::MAX, true, STRICT).unwrap();
    assert_eq!(rest.len(), 498);
    let seqs: Vec<u64> = first
        .iter()
        .chain(&small)
        .chain(&rest)
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        seqs,
        (0..2500).collect::<Vec<_>>(),
        "none skipped, none twice"
    );
    // At least one entry, even if larger than the budget.
    engine.append("t", &[7u8; 100], schedule).unwrap();
    assert_eq!(engine.batch_read("t", 1, true, STRICT).unwrap().len(), 1);
}

#[test]
fn entries_larger_than_the_read_ahead_window_come_back_whole() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 4 << 20);
    let schedule = walrus_topic::FsyncSchedule::NoFsync;
    let big = |i: u8| vec![i; 700 * 1024];
    for i in 0..4u8 {
        engine.append("t", &[i], schedule).unwrap();
        engine.append("t", &big(i), schedule).unwrap();
    }
    let first = engine.read_next("t", true, STRICT).unwrap().unwrap();
    assert_eq!(first.data, vec![0]);
    assert_eq!(
        engine.read_next("t", true, STRICT).unwrap().unwrap().data,
        big(0)
    );
    let rest = engine.batch_read("t", usize::MAX, true, STRICT).unwrap();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[5].data, big(3));
}

#[test]
fn read_from_reads_any_range_without_moving_the_cursor() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 2048);
    let schedule = walrus_topic::FsyncSchedule::NoFsync;
    for i in 0..100 {
        engine.append("t", &payload(i), schedule).unwrap();
    }
    let range = engine.read_from("t", 40, 10).unwrap();
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (40..50).collect::<Vec<_>>()
    );
    assert!(range.iter().all(|e| e.data == payload(e.seq)));
    assert_eq!(
        engine.read_next("t", false, STRICT).unwrap().unwrap().seq,
        0
    );
}

#[test]
fn a_damaged_entry_is_skipped_counted_and_the_next_one_returned() {
    let storage = MemStorage::new();
    // Synced appends: each entry's claim says the ones before it were durable, so recovery
    // takes the damage for corruption (not a crash hole) and keeps the entries after it.
    let schedule = walrus_topic::FsyncSchedule::SyncEach;
    {
        let engine = open_mem(&storage, 1 << 20);
        for i in 0..10 {
            engine.append("t", &[i as u8; 100], schedule).unwrap();
        }
        engine.flush().unwrap();
    }
    // Flip a payload byte of entry 4 in the only segment file.
    damage_payload_run(&storage, 4, 100);
    let engine = open_mem(&storage, 1 << 20);
    let got = drain(&engine, "t");
    let firsts: Vec<u8> = got.iter().map(|e| e[0]).collect();
    assert_eq!(firsts, vec![0, 1, 2, 3, 5, 6, 7, 8, 9]);
    assert!(engine.stats().corrupt_entries >= 1);
}

#[test]
fn batch_read_with_hands_out_the_same_entries_as_batch_read_without_copies() {
    let storage = MemStorage::new();
    let engine = open_mem(&storage, 4096);
    let schedule = walrus_topic::FsyncSchedule::NoFsync;
    for i in 0..300 {
        engine.append("t", &payload(i), schedule).unwrap();
    }
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let mut bytes = 0;
        let mut first = true;
        let n = engine
            .batch_read_with("t", 2000, true, STRICT, &mut |seq, p| {
                assert!(first || bytes + p.len() <= 2000, "within the budget");
                first = false;
                bytes += p.len();
                got.push((seq, p.to_vec()));
            })
            .unwrap();
        if n == 0 {
            break;
        }
    }
    assert_eq!(got.len(), 300);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, (seq, p))| *seq == i as u64 && *p == payload(i as u64))
    );
    assert!(
        engine.read_next("t", false, STRICT).unwrap().is_none(),
        "the cursor moved"
    );
}
