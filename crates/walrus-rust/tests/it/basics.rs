//! Appends, peeks, checkpoints and tail visibility on every backend and schedule.

use walrus_rust::ReadConsistency;

use crate::support::*;

#[test]
fn append_then_read_returns_entries_in_order_everywhere() {
    each_config(|dir, fd, schedule| {
        let wal = open_small(dir, fd, schedule, strict());
        for i in 0..500 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
        let read = drain(&wal, "t");
        assert_eq!(read.len(), 500, "fd={fd} {schedule:?}");
        assert!(read.iter().enumerate().all(|(i, e)| *e == payload(i)));
        assert!(wal.read_next("t", true).unwrap().is_none());
    });
}

#[test]
fn peek_does_not_advance_and_checkpoint_does() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        true,
        walrus_rust::FsyncSchedule::NoFsync,
        strict(),
    );
    wal.append_for_topic("t", b"a").unwrap();
    wal.append_for_topic("t", b"b").unwrap();
    assert_eq!(wal.read_next("t", false).unwrap().unwrap().data, b"a");
    assert_eq!(wal.read_next("t", false).unwrap().unwrap().data, b"a");
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, b"a");
    assert_eq!(wal.read_next("t", false).unwrap().unwrap().data, b"b");
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, b"b");
    assert!(wal.read_next("t", true).unwrap().is_none());
}

#[test]
fn unknown_topic_reads_none_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        true,
        walrus_rust::FsyncSchedule::NoFsync,
        strict(),
    );
    assert!(wal.read_next("nope", true).unwrap().is_none());
    assert!(
        wal.batch_read_for_topic("nope", 1024, true)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn tail_entry_is_visible_as_soon_as_append_returns() {
    each_config(|dir, fd, schedule| {
        let wal = open(dir, fd, schedule, strict());
        for i in 0..50 {
            wal.append_for_topic("t", &payload(i)).unwrap();
            assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(i));
            assert!(wal.read_next("t", true).unwrap().is_none());
        }
    });
}

#[test]
fn topics_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        false,
        walrus_rust::FsyncSchedule::NoFsync,
        strict(),
    );
    wal.append_for_topic("a", b"1").unwrap();
    wal.append_for_topic("b", b"2").unwrap();
    wal.append_for_topic("a", b"3").unwrap();
    assert_eq!(drain(&wal, "a"), [b"1".to_vec(), b"3".to_vec()]);
    assert_eq!(drain(&wal, "b"), [b"2".to_vec()]);
}

#[test]
fn empty_topic_name_works_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(
            dir.path(),
            true,
            walrus_rust::FsyncSchedule::SyncEach,
            strict(),
        );
        wal.append_for_topic("", b"x").unwrap();
    }
    let wal = open(
        dir.path(),
        true,
        walrus_rust::FsyncSchedule::SyncEach,
        strict(),
    );
    assert_eq!(drain(&wal, ""), [b"x".to_vec()]);
}

#[test]
fn topic_name_over_the_limit_is_invalid_input_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        true,
        walrus_rust::FsyncSchedule::NoFsync,
        strict(),
    );
    let name = "n".repeat(walrus_rust::TOPIC_NAME_BYTES_MAX + 1);
    let err = wal.append_for_topic(&name, b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("128"), "{err}");
    wal.append_for_topic(&"n".repeat(walrus_rust::TOPIC_NAME_BYTES_MAX), b"x")
        .unwrap();
}

#[test]
fn flush_makes_appends_durable_under_every_schedule() {
    each_config(|dir, fd, schedule| {
        let wal = open(dir, fd, schedule, ReadConsistency::StrictlyAtOnce);
        wal.append_for_topic("t", b"x").unwrap();
        wal.flush().unwrap();
        assert!(wal.stats().fsyncs >= 1);
    });
}

#[test]
fn stats_count_appends_reads_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        false,
        walrus_rust::FsyncSchedule::NoFsync,
        strict(),
    );
    wal.append_for_topic("t", b"abc").unwrap();
    wal.batch_append_for_topic("t", &[b"de", b"f"]).unwrap();
    assert_eq!(drain(&wal, "t").len(), 3);
    let stats = wal.stats();
    assert_eq!(stats.appends, 3);
    assert_eq!(stats.appended_bytes, 6);
    assert_eq!(stats.reads, 3);
    assert_eq!(stats.backend, "mmap");
    assert_eq!(stats.cursor_persists, 3);
}

#[test]
fn stats_count_durable_appends_and_how_many_share_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let wal = std::sync::Arc::new(
        walrus_rust::Walrus::builder()
            .data_dir(dir.path().to_path_buf())
            .fsync_schedule(walrus_rust::FsyncSchedule::SyncEach)
            .build()
            .unwrap(),
    );
    assert_eq!(wal.stats().appends_per_fsync(), 0.0);
    for i in 0..10u8 {
        wal.append_for_topic("t", &[i]).unwrap();
    }
    wal.batch_append_for_topic("t", &[b"a".as_slice(); 5])
        .unwrap();
    let stats = wal.stats();
    assert_eq!(stats.synced_appends, 15);
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 11, "{stats:?}");
    assert_eq!(stats.appends_per_fsync(), 15.0 / stats.fsyncs as f64);
    // Concurrent durable appenders share sync rounds (never fewer than one append each).
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wal = std::sync::Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    wal.append_for_topic(&format!("c{t}"), &i.to_le_bytes())
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let after = wal.stats();
    assert_eq!(after.synced_appends, 815);
    assert!(after.fsyncs - stats.fsyncs <= 800, "{after:?}");
}
