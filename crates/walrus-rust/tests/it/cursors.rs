//! Cursor semantics across restarts: strict resume, drains, at-least-once windows.

use walrus_rust::{FsyncSchedule, ReadConsistency};

use crate::support::*;

#[test]
fn strictly_at_once_resumes_exactly_after_last_checkpoint_after_reopen() {
    each_config(|dir, fd, schedule| {
        {
            let wal = open_small(dir, fd, schedule, strict());
            for i in 0..300 {
                wal.append_for_topic("t", &payload(i)).unwrap();
            }
            for i in 0..120 {
                assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(i));
            }
            // A peek moves nothing.
            assert_eq!(
                wal.read_next("t", false).unwrap().unwrap().data,
                payload(120)
            );
        }
        let wal = open_small(dir, fd, schedule, strict());
        let rest = drain(&wal, "t");
        assert_eq!(rest.len(), 180, "fd={fd} {schedule:?}");
        assert_eq!(rest[0], payload(120));
    });
}

#[test]
fn drained_topic_is_not_redelivered_after_reopen() {
    each_config(|dir, fd, schedule| {
        {
            let wal = open(dir, fd, schedule, strict());
            for i in 0..10 {
                wal.append_for_topic("t", &payload(i)).unwrap();
            }
            assert_eq!(drain(&wal, "t").len(), 10);
            // The drain ended with a None: that must not reset anything.
            assert!(wal.read_next("t", true).unwrap().is_none());
        }
        let wal = open(dir, fd, schedule, strict());
        assert!(
            wal.read_next("t", true).unwrap().is_none(),
            "fd={fd} {schedule:?}"
        );
        wal.append_for_topic("t", b"new").unwrap();
        assert_eq!(drain(&wal, "t"), [b"new".to_vec()]);
    });
}

#[test]
fn reopen_after_drain_then_more_appends_continues_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let wal = open_small(
            dir.path(),
            round % 2 == 0,
            FsyncSchedule::SyncEach,
            strict(),
        );
        for i in 0..50 {
            wal.append_for_topic("t", &payload(round * 50 + i)).unwrap();
        }
        let got = drain(&wal, "t");
        assert_eq!(got.len(), 50, "round {round}");
        assert_eq!(got[0], payload(round * 50));
    }
}

#[test]
fn at_least_once_batch_reads_persist_every_n_entries() {
    let dir = tempfile::tempdir().unwrap();
    // The child appends 10 entries, batch-reads them all with persist_every 1, then exits
    // without closing anything (as a crash would).
    crate::instances::run_child_with(
        "cursors::child_reads_then_exits",
        dir.path(),
        &[("MODE", "batch"), ("EVERY", "1")],
    );
    let wal = open(
        dir.path(),
        true,
        FsyncSchedule::SyncEach,
        ReadConsistency::AtLeastOnce { persist_every: 1 },
    );
    assert!(
        drain(&wal, "t").is_empty(),
        "batch-read entries were delivered again"
    );
}

#[test]
fn at_least_once_redelivers_at_most_the_unpersisted_window() {
    let dir = tempfile::tempdir().unwrap();
    crate::instances::run_child_with(
        "cursors::child_reads_then_exits",
        dir.path(),
        &[("MODE", "single"), ("EVERY", "4")],
    );
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    let rest = drain(&wal, "t");
    // Six entries were read; the cursor was persisted after four, so two come back.
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0], payload(4));
}

/// Child side: appends 10 entries to `t`, reads 6 (or all, in one batch), exits abruptly.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_reads_then_exits() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let every: u32 = std::env::var("EVERY").unwrap().parse().unwrap();
    let mode = ReadConsistency::AtLeastOnce {
        persist_every: every,
    };
    let wal = open(
        std::path::Path::new(&dir),
        true,
        FsyncSchedule::SyncEach,
        mode,
    );
    for i in 0..10 {
        wal.append_for_topic("t", &payload(i)).unwrap();
    }
    if std::env::var("MODE").unwrap() == "batch" {
        assert_eq!(
            wal.batch_read_for_topic("t", 1 << 20, true).unwrap().len(),
            10
        );
    } else {
        for _ in 0..6 {
            wal.read_next("t", true).unwrap().unwrap();
        }
    }
    std::process::exit(0);
}

/// Appends 10 entries, reads 7 with checkpoint under `mode`, drops the handle (a clean
/// close), reopens and returns the entry the next read delivers.
fn next_after_reading_7_of_10_and_reopening(
    dir: &std::path::Path,
    fd: bool,
    schedule: FsyncSchedule,
    mode: ReadConsistency,
) -> Vec<u8> {
    {
        let wal = open(dir, fd, schedule, mode);
        for i in 0..10 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
        for i in 0..7 {
            assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(i));
        }
    }
    let wal = open(dir, fd, schedule, mode);
    wal.read_next("t", true).unwrap().unwrap().data
}

#[test]
fn at_least_once_clean_close_redelivers_reads_since_the_last_boundary() {
    // As walrus-rust 0.2.0: the cursor was persisted after reads 3 and 6 only, and dropping
    // the handle persists nothing, so entry 6 comes again.
    each_config(|dir, fd, schedule| {
        let mode = ReadConsistency::AtLeastOnce { persist_every: 3 };
        assert_eq!(
            next_after_reading_7_of_10_and_reopening(dir, fd, schedule, mode),
            payload(6),
            "fd={fd} {schedule:?}"
        );
    });
}

#[test]
fn strictly_at_once_clean_close_resumes_after_the_last_read() {
    each_config(|dir, fd, schedule| {
        assert_eq!(
            next_after_reading_7_of_10_and_reopening(dir, fd, schedule, strict()),
            payload(7),
            "fd={fd} {schedule:?}"
        );
    });
}

#[test]
fn at_least_once_batch_reads_persist_only_when_the_count_reaches_n() {
    let dir = tempfile::tempdir().unwrap();
    let mode = ReadConsistency::AtLeastOnce { persist_every: 3 };
    let len = payload(0).len();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, mode);
        for i in 0..10 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
        // Two entries: below the boundary, nothing persisted.
        assert_eq!(
            wal.batch_read_for_topic("t", 2 * len, true).unwrap().len(),
            2
        );
        assert_eq!(wal.stats().cursor_persists, 0);
    }
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, mode);
        // Redelivered from the start; four entries reach the boundary: persisted after them.
        let got = wal.batch_read_for_topic("t", 4 * len, true).unwrap();
        assert_eq!(got[0].data, payload(0));
        assert_eq!(got.len(), 4);
        assert_eq!(wal.stats().cursor_persists, 1);
        // One more (single read): counted, not persisted.
        assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(4));
        assert_eq!(wal.stats().cursor_persists, 1);
    }
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, mode);
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(4));
}

#[test]
fn persisting_a_cursor_does_not_rewrite_other_topics() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    for t in 0..2000 {
        wal.append_for_topic(&format!("topic-{t}"), b"x").unwrap();
        wal.read_next(&format!("topic-{t}"), true).unwrap().unwrap();
    }
    // Two cursor files of 1024 topics each: one slot per topic, nothing rewritten wholesale.
    let cursor_files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cursors-"))
        .collect();
    assert_eq!(cursor_files.len(), 2);
    assert_eq!(wal.stats().cursor_persists, 2000);
}
