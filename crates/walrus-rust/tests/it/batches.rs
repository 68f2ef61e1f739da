//! Batch appends and batch reads: limits, atomicity, budgets, concurrency.

use std::sync::Arc;

use walrus_rust::FsyncSchedule;

use crate::support::*;

fn refs(entries: &[Vec<u8>]) -> Vec<&[u8]> {
    entries.iter().map(Vec::as_slice).collect()
}

#[test]
fn batch_of_2001_entries_is_invalid_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    let entries: Vec<Vec<u8>> = (0..2001).map(payload).collect();
    let err = wal
        .batch_append_for_topic("t", &refs(&entries))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("2000"), "{err}");
    assert!(wal.read_next("t", true).unwrap().is_none());
    wal.batch_append_for_topic("t", &refs(&entries[..2000]))
        .unwrap();
    assert_eq!(drain(&wal, "t").len(), 2000);
}

#[test]
fn batch_over_10_gib_is_invalid_input_naming_the_limit_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    // 2,000 entries of 6 MiB each (one buffer, so nothing like 12 GiB is allocated).
    let entry = vec![7u8; 6 << 20];
    let batch: Vec<&[u8]> = vec![entry.as_slice(); 2000];
    let err = wal.batch_append_for_topic("t", &batch).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // walrus-rust 0.2.0 says "batch exceeds 10GB limit".
    let message = err.to_string();
    assert!(message.contains("10GB limit"), "{message}");
    assert!(
        message.contains(&walrus_rust::BATCH_BYTES_MAX.to_string()),
        "{message}"
    );
    assert!(wal.read_next("t", true).unwrap().is_none());
    assert!(wal_files(dir.path()).is_empty(), "nothing was allocated");
    // A smaller batch of the same entries goes through.
    wal.batch_append_for_topic("t", &batch[..2]).unwrap();
    assert_eq!(drain(&wal, "t").len(), 2);
}

#[test]
fn empty_batch_is_ok_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    wal.batch_append_for_topic("t", &[]).unwrap();
    assert!(wal.read_next("t", true).unwrap().is_none());
}

#[test]
fn batches_spanning_blocks_read_back_whole_everywhere() {
    each_config(|dir, fd, schedule| {
        let wal = open_small(dir, fd, schedule, strict());
        let mut expected = Vec::new();
        for b in 0..5 {
            let entries: Vec<Vec<u8>> = (0..700).map(|i| payload(b * 1000 + i)).collect();
            wal.batch_append_for_topic("t", &refs(&entries)).unwrap();
            expected.extend(entries);
        }
        assert_eq!(drain(&wal, "t"), expected, "fd={fd} {schedule:?}");
        drop(wal);
        let wal = open_small(dir, fd, schedule, strict());
        assert!(wal.read_next("t", true).unwrap().is_none());
    });
}

#[test]
fn batch_read_never_skips_and_respects_the_budget() {
    each_config(|dir, fd, schedule| {
        let wal = open_small(dir, fd, schedule, strict());
        let entries: Vec<Vec<u8>> = (0..400)
            .map(|i| vec![i as u8; 10 + (i * 37) % 900])
            .collect();
        for entry in &entries {
            wal.append_for_topic("t", entry).unwrap();
        }
        let mut got = Vec::new();
        loop {
            let batch = wal.batch_read_for_topic("t", 3000, true).unwrap();
            if batch.is_empty() {
                break;
            }
            let bytes: usize = batch.iter().map(|e| e.data.len()).sum();
            assert!(
                bytes <= 3000 || batch.len() == 1,
                "budget exceeded: {bytes}"
            );
            got.extend(batch.into_iter().map(|e| e.data));
        }
        assert_eq!(got, entries, "fd={fd} {schedule:?}");
    });
}

#[test]
fn batch_read_returns_one_entry_larger_than_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    wal.append_for_topic("t", &vec![7u8; 5000]).unwrap();
    wal.append_for_topic("t", b"small").unwrap();
    let first = wal.batch_read_for_topic("t", 100, true).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].data.len(), 5000);
    let second = wal.batch_read_for_topic("t", 100, true).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].data, b"small");
    assert!(wal.batch_read_for_topic("t", 0, true).unwrap().is_empty());
}

#[test]
fn batch_read_returns_at_most_2000_entries() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    let entries: Vec<Vec<u8>> = (0..2000).map(payload).collect();
    wal.batch_append_for_topic("t", &refs(&entries)).unwrap();
    wal.batch_append_for_topic("t", &refs(&entries[..10]))
        .unwrap();
    assert_eq!(
        wal.batch_read_for_topic("t", usize::MAX, true)
            .unwrap()
            .len(),
        2000
    );
    assert_eq!(
        wal.batch_read_for_topic("t", usize::MAX, true)
            .unwrap()
            .len(),
        10
    );
}

#[test]
fn batch_read_peek_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open_small(dir.path(), false, FsyncSchedule::NoFsync, strict());
    for i in 0..100 {
        wal.append_for_topic("t", &payload(i)).unwrap();
    }
    let peek = wal.batch_read_for_topic("t", 500, false).unwrap();
    let again = wal.batch_read_for_topic("t", 500, false).unwrap();
    assert_eq!(peek.len(), again.len());
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(0));
}

#[test]
fn concurrent_batches_on_one_topic_are_whole_and_may_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open_small(
        dir.path(),
        true,
        FsyncSchedule::NoFsync,
        strict(),
    ));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut accepted = 0;
                for b in 0..30 {
                    let entries: Vec<Vec<u8>> = (0..50)
                        .map(|i| format!("{t}:{b}:{i}").into_bytes())
                        .collect();
                    match wal.batch_append_for_topic("t", &refs(&entries)) {
                        Ok(()) => accepted += 1,
                        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock),
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let entries = drain(&wal, "t");
    assert_eq!(entries.len(), accepted * 50);
    // Each batch is contiguous: entry i of a batch is followed by entry i + 1.
    for chunk in entries.chunks(50) {
        let first = String::from_utf8(chunk[0].clone()).unwrap();
        let prefix = first.rsplit_once(':').unwrap().0.to_owned();
        for (i, e) in chunk.iter().enumerate() {
            assert_eq!(
                String::from_utf8(e.clone()).unwrap(),
                format!("{prefix}:{i}")
            );
        }
    }
}

#[test]
fn wait_for_batches_makes_concurrent_batches_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(
        walrus_rust::Walrus::builder()
            .data_dir(dir.path().to_path_buf())
            .fsync_schedule(FsyncSchedule::NoFsync)
            .wait_for_batches(true)
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for b in 0..20 {
                    let entries: Vec<Vec<u8>> = (0..30)
                        .map(|i| format!("{t}:{b}:{i}").into_bytes())
                        .collect();
                    wal.batch_append_for_topic("t", &refs(&entries)).unwrap();
                    wal.append_for_topic("t", b"single").unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(drain(&wal, "t").len(), 4 * 20 * 31);
}

#[test]
fn concurrent_reader_never_sees_part_of_a_batch() {
    for fd in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(open_small(dir.path(), fd, FsyncSchedule::NoFsync, strict()));
        let writer = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for b in 0..200 {
                    // 50 entries of ~1 KiB: most batches cross a 64 KiB block boundary.
                    let entries: Vec<Vec<u8>> =
                        (0..50).map(|i| vec![(b * 50 + i) as u8; 1000]).collect();
                    wal.batch_append_for_topic("t", &refs(&entries)).unwrap();
                }
            })
        };
        let mut read = 0usize;
        while read < 200 * 50 {
            match wal.read_next("t", true).unwrap() {
                Some(_) => read += 1,
                None => {
                    assert_eq!(
                        read % 50,
                        0,
                        "saw {} entries of a batch (fd={fd})",
                        read % 50
                    );
                    std::thread::yield_now();
                }
            }
        }
        writer.join().unwrap();
        assert_eq!(read, 10_000);
    }
}

#[test]
fn batches_spanning_blocks_go_down_whole_with_io_uring_too() {
    for io_uring in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            walrus_rust::Walrus::builder()
                .data_dir(dir.path().to_path_buf())
                .io_uring(io_uring)
                .fsync_schedule(walrus_rust::FsyncSchedule::SyncEach)
                .block_bytes(4096)
                .blocks_per_file(64)
                .build()
                .unwrap()
        };
        let entries: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; 700]).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        {
            let wal = open();
            // About 50 blocks of one file: consecutive pieces, one submission with a ring.
            wal.batch_append_for_topic("t", &refs).unwrap();
        }
        let wal = open();
        let read: Vec<Vec<u8>> = std::iter::from_fn(|| wal.read_next("t", true).unwrap())
            .map(|e| e.data)
            .collect();
        assert_eq!(read, entries, "io_uring {io_uring}");
    }
}
