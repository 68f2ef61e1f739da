//! `TopicLog` through the public API on real files, every backend and schedule, 4 KiB blocks:
//! positions, reads by position across blocks and reopens, purges that delete files and
//! survive reopens, durability by position, and following the tail (`wait_for`,
//! `read_next_timeout`).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use walrus_rust::{FsyncSchedule, TopicLog, Walrus};

use crate::support::{each_config, payload, strict, wal_files};

fn open(dir: &Path, fd: bool, schedule: FsyncSchedule) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(schedule)
        .consistency(strict())
        .block_bytes(4096)
        .blocks_per_file(4)
        .build()
        .unwrap()
}

fn entry(p: u64) -> Vec<u8> {
    payload(p as usize)
}

fn check(log: &TopicLog, from: u64, to: u64) {
    for p in from..to {
        assert_eq!(log.read_at(p).unwrap(), Some(entry(p)), "position {p}");
    }
    let range = log.read_range(from..to, usize::MAX).unwrap();
    assert_eq!(range.len() as u64, to - from);
    assert!(range.iter().all(|(p, data)| *data == entry(*p)));
}

#[test]
fn positions_reads_and_purges_survive_reopens_on_every_backend_and_schedule() {
    each_config(|dir, fd, schedule| {
        let at = format!("fd={fd} {schedule:?}");
        {
            let wal = open(dir, fd, schedule);
            let log = wal.topic_log("raft").unwrap();
            for p in 0..3000u64 {
                if p % 10 == 0 {
                    let batch = [entry(p)];
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    assert_eq!(log.append_batch(&refs).unwrap(), p..p + 1, "{at}");
                } else {
                    assert_eq!(log.append(&entry(p)).unwrap(), p, "{at}");
                }
            }
            check(&log, 0, 3000);
        }
        let files_full = wal_files(dir).len();
        assert!(files_full >= 4, "{at}: {files_full} files");
        {
            let wal = open(dir, fd, schedule);
            let log = wal.topic_log("raft").unwrap();
            assert_eq!((log.first(), log.last()), (Some(0), Some(2999)), "{at}");
            check(&log, 0, 3000);
            log.purge_before(2500).unwrap();
            assert_eq!(log.first(), Some(2500), "{at}");
            assert_eq!(log.read_at(2499).unwrap(), None, "{at}");
            assert!(
                wal_files(dir).len() < files_full,
                "{at}: files behind the floor are deleted"
            );
            assert_eq!(wal.files().len(), wal_files(dir).len(), "{at}");
        }
        {
            let wal = open(dir, fd, schedule);
            let log = wal.topic_log("raft").unwrap();
            assert_eq!((log.first(), log.last()), (Some(2500), Some(2999)), "{at}");
            check(&log, 2500, 3000);
            assert_eq!(
                wal.read_next("raft", false).unwrap().unwrap().data,
                entry(2500)
            );
            log.purge_before(5000).unwrap();
            assert_eq!((log.first(), log.next_position()), (None, 5000), "{at}");
        }
        let wal = open(dir, fd, schedule);
        let log = wal.topic_log("raft").unwrap();
        assert_eq!((log.first(), log.next_position()), (None, 5000), "{at}");
        assert_eq!(log.append(b"x").unwrap(), 5000, "{at}");
        assert_eq!(log.read_at(5000).unwrap(), Some(b"x".to_vec()), "{at}");
        assert!(wal.recovery_findings().is_empty(), "{at}");
    });
}

#[test]
fn durability_by_position_on_every_backend_and_schedule() {
    each_config(|dir, fd, schedule| {
        let at = format!("fd={fd} {schedule:?}");
        let wal = open(dir, fd, schedule);
        let log = wal.topic_log("t").unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let mut last = 0;
        for i in 0..20u64 {
            last = log.append(&entry(i)).unwrap();
            let calls = Arc::clone(&calls);
            log.on_durable(last, move |result| {
                result.unwrap();
                calls.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            if i % 5 == 4 {
                log.wait_durable(last).unwrap();
                assert!(log.durable_position() >= Some(last), "{at}");
            }
        }
        log.sync().unwrap();
        assert_eq!(log.durable_position(), Some(last), "{at}");
        assert_eq!(calls.load(Ordering::SeqCst), 20, "{at}: each callback once");
        let err = log.wait_durable(last + 1).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{at}");
    });
}

#[test]
fn wait_for_and_read_next_timeout_wake_on_appends_from_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open(dir.path(), true, FsyncSchedule::NoFsync));
    let log = wal.topic_log("tail").unwrap();
    assert!(!log.wait_for(0, Duration::from_millis(5)));
    assert!(
        wal.read_next_timeout("tail", true, Duration::from_millis(5))
            .unwrap()
            .is_none()
    );
    for i in 0..10u64 {
        let appender = {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1));
                wal.append_for_topic("tail", &entry(i))
            })
        };
        let got = wal
            .read_next_timeout("tail", true, Duration::from_secs(600))
            .unwrap()
            .expect("woken by the append");
        assert_eq!(got.data, entry(i));
        appender.join().unwrap().unwrap();
        assert!(log.wait_for(i, Duration::ZERO));
    }
    let waiter = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_for(10, Duration::from_secs(600)))
    };
    wal.batch_append_for_topic("tail", &[b"a", b"b"]).unwrap();
    assert!(waiter.join().unwrap());
    // A reader waiting for a topic nobody has written yet.
    let reader = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || wal.read_next_timeout("fresh", true, Duration::from_secs(600)))
    };
    std::thread::sleep(Duration::from_millis(5));
    wal.append_for_topic("fresh", b"first").unwrap();
    assert_eq!(reader.join().unwrap().unwrap().unwrap().data, b"first");
}

#[test]
fn a_read_only_instance_reads_by_position_and_refuses_purges() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach);
        let log = wal.topic_log("t").unwrap();
        for i in 0..50 {
            log.append(&entry(i)).unwrap();
        }
    }
    let wal = Walrus::builder()
        .data_dir(dir.path().to_path_buf())
        .read_only(true)
        .build()
        .unwrap();
    let log = wal.topic_log("t").unwrap();
    check(&log, 0, 50);
    let err = log.purge_before(10).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    let err = log.append(b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    let err = wal.topic_log("missing").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(log.durable_position(), Some(49));
}
