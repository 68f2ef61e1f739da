//! Written only against the walrus-rust 0.2.0 API, through both import paths: if this file
//! compiles and passes, a 0.2.0 user can switch by changing the version number.

use std::sync::Arc;

use walrus_rust::wal::{
    Entry as WalEntry, FsyncSchedule as WalFsync, ReadConsistency as WalConsistency,
    Walrus as WalWalrus,
};
use walrus_rust::{
    Entry, FsyncSchedule, ReadConsistency, WalIndex, Walrus, disable_fd_backend, enable_fd_backend,
};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_copy<T: Copy + std::fmt::Debug>() {}

/// 0.2.0 users pick the directory through the environment. Setting it in this process would
/// need `unsafe` (edition 2024), so the test body runs in a child process that gets it.
#[test]
fn api_of_0_2_0_compiles_and_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_body", "--ignored", "--nocapture"])
        .env("WALRUS_DATA_DIR", dir.path())
        .env("WALRUS_QUIET", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "run as a child process by api_of_0_2_0_compiles_and_behaves"]
fn child_body() {
    if std::env::var_os("WALRUS_DATA_DIR").is_none() {
        return;
    }
    assert_send_sync::<Walrus>();
    assert_send_sync::<Entry>();
    assert_copy::<FsyncSchedule>();
    assert_copy::<ReadConsistency>();

    let wal: Walrus = Walrus::new().unwrap();
    wal.append_for_topic("my-topic", b"Hello, Walrus!").unwrap();
    let entry: Option<Entry> = wal.read_next("my-topic", true).unwrap();
    assert_eq!(entry.unwrap().data, b"Hello, Walrus!".to_vec());
    drop(wal);

    let modes = [
        ReadConsistency::StrictlyAtOnce,
        ReadConsistency::AtLeastOnce {
            persist_every: 1000,
        },
    ];
    let schedules = [
        FsyncSchedule::Milliseconds(200),
        FsyncSchedule::SyncEach,
        FsyncSchedule::NoFsync,
    ];
    for (i, mode) in modes.into_iter().enumerate() {
        for (j, schedule) in schedules.into_iter().enumerate() {
            let key = format!("key-{i}-{j}");
            let wal = Walrus::with_consistency_and_schedule_for_key(&key, mode, schedule).unwrap();
            let wal = Arc::new(wal);
            let batch: Vec<&[u8]> = vec![b"a", b"bb", b"ccc"];
            wal.batch_append_for_topic("events", &batch).unwrap();
            let entries: Vec<Entry> = wal.batch_read_for_topic("events", 1024, true).unwrap();
            assert_eq!(entries.len(), 3);
            assert!(wal.read_next("events", false).unwrap().is_none());
        }
    }

    let w1 = Walrus::with_consistency(ReadConsistency::AtLeastOnce { persist_every: 10 }).unwrap();
    let w2 = Walrus::with_consistency_and_schedule(
        ReadConsistency::StrictlyAtOnce,
        FsyncSchedule::NoFsync,
    )
    .unwrap();
    let w3 = Walrus::new_for_key("k").unwrap();
    let w4 = Walrus::with_consistency_for_key("k", ReadConsistency::StrictlyAtOnce).unwrap();
    w1.append_for_topic("t", b"1").unwrap();
    assert_eq!(w2.read_next("t", true).unwrap().unwrap().data, b"1");
    w3.append_for_topic("t", b"2").unwrap();
    assert_eq!(w4.read_next("t", true).unwrap().unwrap().data, b"2");

    // The wal:: path names the same items.
    let w5: WalWalrus = WalWalrus::with_consistency_and_schedule(
        WalConsistency::StrictlyAtOnce,
        WalFsync::SyncEach,
    )
    .unwrap();
    w5.append_for_topic("t", b"3").unwrap();
    let e: Option<WalEntry> = w5.read_next("t", true).unwrap();
    assert_eq!(e.unwrap().data, b"3");

    // Over-limit batches are InvalidInput; the limit is 2,000 entries.
    let too_many: Vec<&[u8]> = vec![b"x"; 2001];
    assert_eq!(
        w5.batch_append_for_topic("t", &too_many)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::InvalidInput
    );

    disable_fd_backend();
    let mmap = Walrus::new_for_key("mmap").unwrap();
    mmap.append_for_topic("t", b"mapped").unwrap();
    assert_eq!(mmap.read_next("t", true).unwrap().unwrap().data, b"mapped");
    enable_fd_backend();

    let mut index = WalIndex::new("compat").unwrap();
    index.set("reader".to_string(), 1, 64).unwrap();
    let pos = index.get("reader").unwrap();
    assert_eq!((pos.cur_block_idx, pos.cur_block_offset), (1, 64));
    let removed = index.remove("reader").unwrap().unwrap();
    assert_eq!(removed.cur_block_offset, 64);

    walrus_rust::wal::__set_thread_namespace_for_tests("compat-ns");
    assert_eq!(
        walrus_rust::wal::__current_thread_namespace_for_tests().as_deref(),
        Some("compat-ns")
    );
    walrus_rust::wal::__clear_thread_namespace_for_tests();
}
