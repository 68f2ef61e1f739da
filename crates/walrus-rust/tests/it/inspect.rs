//! Inspection and repair: topic and file figures, stats, reading from a position, moving
//! cursors, purging, and read-only opens that report instead of repairing.

use walrus_rust::{CursorTarget, FindingKind, FsyncSchedule, Walrus};

use crate::support::*;

fn read_only(dir: &std::path::Path) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .read_only(true)
        .build()
        .unwrap()
}

#[test]
fn topic_figures_follow_appends_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open_small(dir.path(), true, FsyncSchedule::NoFsync, strict());
    for i in 0..30 {
        wal.append_for_topic("a", &payload(i)).unwrap();
    }
    wal.append_for_topic("b", b"x").unwrap();
    for _ in 0..10 {
        wal.read_next("a", true).unwrap().unwrap();
    }
    let topics = wal.topics();
    assert_eq!(
        topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let a = &topics[0];
    assert_eq!(
        (a.first_seq, a.next_seq, a.entries, a.cursor, a.lag),
        (0, 30, 30, 10, 20)
    );
    assert_eq!(a.persisted_cursor, Some(10));
    assert_eq!(a.bytes, 30 * 48, "30 frames of 32 + 12 bytes, padded to 48");
    assert!(wal.topic("missing").is_none());
}

#[test]
fn stats_match_the_operations_performed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    for i in 0..7 {
        wal.append_for_topic("t", &payload(i)).unwrap();
    }
    wal.batch_append_for_topic("t", &[b"ab", b"cde"]).unwrap();
    let peek = wal.read_next("t", false).unwrap().unwrap();
    assert_eq!(peek.data, payload(0));
    let got = wal.batch_read_for_topic("t", 1 << 20, true).unwrap();
    assert_eq!(got.len(), 9);
    let stats = wal.stats();
    assert_eq!(stats.appends, 9);
    assert_eq!(stats.appended_bytes, 7 * 12 + 5);
    assert_eq!(stats.reads, 10, "one peek plus nine batch-read entries");
    assert_eq!(stats.cursor_persists, 1, "one batch read, one persist");
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 8, "{}", stats.fsyncs);
    assert_eq!(stats.files, 1);
    assert_eq!(
        stats.live_bytes,
        4096 + 2048 * 4096,
        "one small file (2,048 units of 4 KiB): the topic's first extents are small"
    );
    assert_eq!(stats.reclaimable_bytes, 0);
    assert_eq!(stats.corrupt_entries, 0);
}

#[test]
fn read_from_any_position_leaves_the_cursor_alone() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open_small(dir.path(), false, FsyncSchedule::NoFsync, strict());
    for i in 0..400 {
        wal.append_for_topic("t", &payload(i)).unwrap();
    }
    let from = wal.read_from("t", 123, 5).unwrap();
    assert_eq!(
        from.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [123, 124, 125, 126, 127]
    );
    assert_eq!(from[0].data, payload(123));
    assert_eq!(wal.read_from("t", 398, 10).unwrap().len(), 2);
    assert!(wal.read_from("t", 400, 10).unwrap().is_empty());
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, payload(0));
}

#[test]
fn cursor_set_is_honoured_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open_small(dir.path(), true, FsyncSchedule::SyncEach, strict());
        for i in 0..300 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
        assert_eq!(wal.set_cursor("t", CursorTarget::Seq(250)).unwrap(), 250);
    }
    {
        let wal = open_small(dir.path(), true, FsyncSchedule::SyncEach, strict());
        assert_eq!(
            wal.read_next("t", true).unwrap().unwrap().data,
            payload(250)
        );
        let earliest = wal.set_cursor("t", CursorTarget::Earliest).unwrap();
        assert!(
            earliest <= 250,
            "blocks before the cursor may be gone: {earliest}"
        );
        let first = wal.read_next("t", true).unwrap().unwrap();
        assert_eq!(first.data, payload(earliest as usize));
        assert_eq!(wal.set_cursor("t", CursorTarget::Latest).unwrap(), 300);
        assert!(wal.read_next("t", true).unwrap().is_none());
        assert!(wal.set_cursor("nope", CursorTarget::Latest).is_err());
    }
}

#[test]
fn purge_deletes_files_every_cursor_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open_small(dir.path(), true, FsyncSchedule::NoFsync, strict());
    for i in 0..20_000 {
        wal.append_for_topic("t", &payload(i)).unwrap();
    }
    let files_before = wal_files(dir.path()).len();
    assert!(files_before >= 4, "{files_before}");
    // Move the cursor to the very end without reading past the last sealed block.
    wal.set_cursor("t", CursorTarget::Latest).unwrap();
    wal.purge().unwrap();
    assert!(wal_files(dir.path()).len() < files_before);
    // A spare file being pre-created on the helper thread is on disk a moment before the
    // allocator lists it: compare once that creation has finished (at most a few ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while wal.files().len() != wal_files(dir.path()).len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(wal.files().len(), wal_files(dir.path()).len());
}

#[test]
fn read_only_open_reports_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        for i in 0..5 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
    }
    // A crash leaves no clean-close marker, and no seal record on the block it was writing:
    // the damaged tail may be a torn write.
    std::fs::remove_file(dir.path().join("CLEAN")).unwrap();
    let file = damage_last_entry(dir.path());
    crate::support::wipe_seal_of_first_block(&file);
    let before = std::fs::read(&file).unwrap();
    {
        let wal = read_only(dir.path());
        let findings = wal.recovery_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(matches!(findings[0].kind, FindingKind::TornTail { .. }));
        assert!(!findings[0].is_corruption());
        assert!(
            findings[0]
                .to_string()
                .contains(&file.file_name().unwrap().to_string_lossy().into_owned())
        );
        assert_eq!(wal.read_from("t", 0, 10).unwrap().len(), 4);
        let err = wal.append_for_topic("t", b"x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(wal.read_next("t", true).is_err());
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "read-only open wrote nothing"
    );
    // A normal open cuts it; afterwards nothing is reported.
    drop(open(dir.path(), true, FsyncSchedule::SyncEach, strict()));
    assert!(read_only(dir.path()).recovery_findings().is_empty());
}

#[test]
fn read_only_open_reports_corruption_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        for i in 0..5 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
    }
    let file = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let pos = bytes.windows(12).position(|w| w == payload(2)).unwrap();
    bytes[pos] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let wal = read_only(dir.path());
    let findings = wal.recovery_findings();
    assert_eq!(
        findings.len(),
        1,
        "{findings:?} {:?}",
        wal_files(dir.path())
    );
    assert!(findings[0].is_corruption());
    assert_eq!(
        findings[0].offset,
        (pos - 32) as u64,
        "offset of the damaged frame"
    );
    assert_eq!(findings[0].file, file);
}

#[test]
fn damaged_segment_file_header_is_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        wal.append_for_topic("t", b"x").unwrap();
    }
    let file = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let wal = read_only(dir.path());
    let findings = wal.recovery_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(matches!(
        findings[0].kind,
        FindingKind::DamagedFileHeader { .. }
    ));
    assert!(findings[0].is_corruption());
    assert_eq!(findings[0].file, file);
}

/// Overwrites the start of the last entry's payload (`payload(4)`) of the only segment file.
fn damage_last_entry(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::FileExt;
    let file = wal_files(dir).pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let pos = bytes.windows(12).position(|w| w == payload(4)).unwrap();
    let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    handle.write_all_at(b"garbage!", pos as u64).unwrap();
    file
}

#[test]
fn damaged_tail_after_a_clean_close_is_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        for i in 0..5 {
            wal.append_for_topic("t", &payload(i)).unwrap();
        }
    }
    assert!(
        dir.path().join("CLEAN").exists(),
        "a clean close leaves its marker"
    );
    let file = damage_last_entry(dir.path());
    let wal = read_only(dir.path());
    let findings = wal.recovery_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].is_corruption(), "{findings:?}");
    assert!(matches!(findings[0].kind, FindingKind::DamagedTail { .. }));
    assert!(
        findings[0]
            .to_string()
            .contains(&file.file_name().unwrap().to_string_lossy().into_owned())
    );
    assert_eq!(wal.read_from("t", 0, 10).unwrap().len(), 4);
    drop(wal);
    // A read-only open leaves the marker; a normal one removes it before any append.
    assert!(dir.path().join("CLEAN").exists());
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    assert!(!dir.path().join("CLEAN").exists());
    wal.append_for_topic("t", b"after").unwrap();
}

#[test]
fn segment_file_of_zeros_is_removed_as_unfinished_not_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
        wal.append_for_topic("t", b"kept").unwrap();
    }
    // What a power cut between a file's creation and its header's sync leaves.
    let unfinished = dir.path().join("00000000000000000077.wal");
    std::fs::write(&unfinished, vec![0u8; 64 * 1024]).unwrap();
    {
        let wal = read_only(dir.path());
        let findings = wal.recovery_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(matches!(findings[0].kind, FindingKind::UnfinishedFile));
        assert!(!findings[0].is_corruption());
    }
    assert!(unfinished.exists(), "a read-only open removes nothing");
    let wal = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    assert!(!unfinished.exists());
    assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, b"kept");
    drop(wal);
    let wal = read_only(dir.path());
    assert!(wal.recovery_findings().is_empty());
}
