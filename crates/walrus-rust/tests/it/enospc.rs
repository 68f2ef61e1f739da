//! T6, the real part: a full disk (a 4 MiB tmpfs) under the public API, for both backends.
//!
//! Appends run until the disk is full: the failing append returns `StorageFull` naming the
//! file, the process gets no SIGBUS (the mmap backend reserves space with `fallocate` before it
//! maps), and every acknowledged entry stays readable. A checkpointed read that needs a new
//! cursor file fails the same way without moving the cursor. Once space is freed, the same
//! instance appends and persists cursors again, and a reopen finds everything acknowledged and
//! no corruption. Needs root to mount (skips otherwise, fails under `CI=true`).

use std::io::ErrorKind;

use walrus_rust::{FsyncSchedule, Walrus};

use crate::support::strict;

fn open(dir: &std::path::Path, fd: bool) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(FsyncSchedule::SyncEach)
        .consistency(strict())
        .block_bytes(64 * 1024)
        .blocks_per_file(8)
        .build()
        .unwrap()
}

fn entry(topic: usize, i: usize) -> Vec<u8> {
    let mut data = format!("{topic}:{i}:").into_bytes();
    data.resize(1000, b'x');
    data
}

/// Every acknowledged entry of every topic, in order, and nothing else.
fn assert_all_there(wal: &Walrus, topics: &[&str], acked: &[Vec<Vec<u8>>], when: &str) {
    for (t, topic) in topics.iter().enumerate() {
        let got: Vec<Vec<u8>> = wal
            .read_from(topic, 0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(got, acked[t], "{when}: topic {topic}");
    }
}

fn full_disk_then_space_freed(fd: bool) {
    let backend = if fd { "fd" } else { "mmap" };
    let test = format!("enospc_{backend}_full_disk_is_storage_full_and_recovers_when_freed");
    let Some(fs) = walrus_storage::small_tmpfs(&test, "4m") else {
        return;
    };
    // Ballast, freed later to give the instance room again.
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 1024 * 1024]).unwrap();
    let dir = fs.path().join("wal");
    let wal = open(&dir, fd);
    let topics = ["a", "b"];
    let mut acked = [Vec::new(), Vec::new()];
    let err = loop {
        let t = (acked[0].len() + acked[1].len()) % 2;
        let data = entry(t, acked[t].len());
        match wal.append_for_topic(topics[t], &data) {
            Ok(()) => acked[t].push(data),
            Err(err) => break err,
        }
        assert!(acked[0].len() < 100_000, "{backend}: the disk never filled");
    };
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{backend}: {err}");
    assert!(
        err.to_string().contains(".wal") || err.to_string().contains(".idx"),
        "{backend}: the error names no file: {err}"
    );
    assert_all_there(&wal, &topics, &acked, &format!("{backend}, on a full disk"));
    // A checkpointed read needs a cursor file: on the full disk it fails and moves nothing.
    let read_failed = match wal.read_next("a", true) {
        Ok(entry) => {
            assert_eq!(entry.unwrap().data, acked[0][0]);
            false
        }
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::StorageFull, "{backend}: {err}");
            true
        }
    };
    // Space again: the same instance works on.
    std::fs::remove_file(&ballast).unwrap();
    let data = entry(1, acked[1].len());
    wal.append_for_topic("b", &data).unwrap();
    acked[1].push(data);
    let first_unread = usize::from(!read_failed);
    let got = wal.read_next("a", true).unwrap().unwrap();
    assert_eq!(
        got.data, acked[0][first_unread],
        "{backend}: the cursor moved"
    );
    drop(wal);
    let wal = open(&dir, fd);
    let findings = wal.recovery_findings();
    assert!(
        findings.iter().all(|f| !f.is_corruption()),
        "{backend}: {findings:?}"
    );
    assert_all_there(&wal, &topics, &acked, &format!("{backend}, after reopen"));
    let got = wal.read_next("a", true).unwrap().unwrap();
    assert_eq!(
        got.data,
        acked[0][first_unread + 1],
        "{backend}: cursor after reopen"
    );
    println!(
        "enospc: backend={backend} acked={} full_disk_error={:?} checkpoint_read_failed={read_failed} acked_lost=0 sigbus=0",
        acked[0].len() + acked[1].len(),
        err.kind()
    );
}

#[test]
fn enospc_fd_full_disk_is_storage_full_and_recovers_when_freed() {
    full_disk_then_space_freed(true);
}

#[test]
fn enospc_mmap_full_disk_is_storage_full_and_recovers_when_freed() {
    full_disk_then_space_freed(false);
}
