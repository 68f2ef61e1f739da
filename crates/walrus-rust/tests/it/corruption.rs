//! Damaged bytes on disk: detected, logged, skipped; torn tails cut for good.

use std::path::{Path, PathBuf};

use walrus_rust::FsyncSchedule;

use crate::support::*;

/// Offset of `needle` in the only data file of `dir`.
fn find(dir: &Path, needle: &[u8]) -> (PathBuf, usize) {
    for file in wal_files(dir) {
        let bytes = std::fs::read(&file).unwrap();
        if let Some(pos) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (file, pos);
        }
    }
    panic!("marker not found");
}

fn flip(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(file, bytes).unwrap();
}

fn write_markers(dir: &Path, fd: bool) {
    let wal = open(dir, fd, FsyncSchedule::SyncEach, strict());
    for i in 0..20 {
        wal.append_for_topic("t", format!("marker-{i:03}-payload").as_bytes())
            .unwrap();
    }
}

fn markers_except(skip: usize) -> Vec<Vec<u8>> {
    (0..20)
        .filter(|i| *i != skip)
        .map(|i| format!("marker-{i:03}-payload").into_bytes())
        .collect()
}

#[test]
fn corrupted_payload_is_skipped_at_recovery_and_reads_go_on() {
    for fd in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        write_markers(dir.path(), fd);
        let (file, pos) = find(dir.path(), b"marker-007-payload");
        flip(&file, pos + 3);
        let wal = open(dir.path(), fd, FsyncSchedule::SyncEach, strict());
        assert_eq!(drain(&wal, "t"), markers_except(7));
        assert!(wal.stats().corrupt_entries >= 1);
    }
}

#[test]
fn corrupted_header_is_skipped_at_recovery_and_reads_go_on() {
    for header_byte in [0usize, 4, 5, 9, 17, 25] {
        let dir = tempfile::tempdir().unwrap();
        write_markers(dir.path(), true);
        let (file, pos) = find(dir.path(), b"marker-011-payload");
        flip(&file, pos - 32 + header_byte);
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        assert_eq!(
            drain(&wal, "t"),
            markers_except(11),
            "header byte {header_byte}"
        );
    }
}

#[test]
fn corruption_found_while_running_does_not_stall_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    for i in 0..20 {
        wal.append_for_topic("t", format!("marker-{i:03}-payload").as_bytes())
            .unwrap();
    }
    let (file, pos) = find(dir.path(), b"marker-003-payload");
    // Through the page cache: the open descriptor sees the damage.
    use std::os::unix::fs::FileExt;
    let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    handle.write_all_at(b"X", (pos + 2) as u64).unwrap();
    assert_eq!(drain(&wal, "t"), markers_except(3));
    wal.append_for_topic("t", b"after").unwrap();
    assert_eq!(drain(&wal, "t"), [b"after".to_vec()]);
    // A batch read skips it too.
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    for i in 0..20 {
        wal.append_for_topic("t", format!("marker-{i:03}-payload").as_bytes())
            .unwrap();
    }
    let (file, pos) = find(dir.path(), b"marker-013-payload");
    let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    handle.write_all_at(b"X", (pos + 2) as u64).unwrap();
    let got: Vec<Vec<u8>> = wal
        .batch_read_for_topic("t", 1 << 20, true)
        .unwrap()
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(got, markers_except(13));
}

#[test]
fn torn_tail_is_cut_durably_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    write_markers(dir.path(), true);
    let (file, pos) = find(dir.path(), b"marker-019-payload");
    // Tear the last entry: garbage over the second half of its frame. A torn write means the
    // process died before the block was sealed: wipe its seal record, so that recovery scans it.
    {
        use std::os::unix::fs::FileExt;
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        handle.write_all_at(&[0xA5; 12], (pos + 8) as u64).unwrap();
    }
    crate::support::wipe_seal_of_first_block(&file);
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        let peeked = wal.batch_read_for_topic("t", usize::MAX, false).unwrap();
        assert_eq!(peeked.len(), 19);
        wal.append_for_topic("t", b"new-1").unwrap();
    }
    // The cut is on disk: the torn bytes are gone, not merely skipped.
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(12).any(|w| w == [0xA5; 12]));
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    wal.append_for_topic("t", b"new-2").unwrap();
    let mut expected = markers_except(19);
    expected.push(b"new-1".to_vec());
    expected.push(b"new-2".to_vec());
    assert_eq!(drain(&wal, "t"), expected);
}
