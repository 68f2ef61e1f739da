//! What an instance creates is not world-readable: owner-only by default, or the builder's
//! `file_mode` (directories get execute wherever read is set).

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use walrus_rust::{FsyncSchedule, Walrus, WalrusBuilder};

use crate::support::*;

/// The process umask, read without changing it (Linux 4.7+); 022, the usual one, otherwise.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[track_caller]
fn assert_mode(path: &Path, want: u32) {
    let got = fs::metadata(path).unwrap().permissions().mode() & 0o777;
    // A creation with `want` leaves `want` less the umask.
    let want = want & !umask();
    assert!(
        got == want,
        "{}: mode {got:o}, expected {want:o}",
        path.display()
    );
}

/// The names in `dir` that `keep` accepts, sorted.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| keep(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// Opens an instance in a directory two levels below a fresh temporary one, writes and reads
/// enough to create data, cursor and lock files, closes it, and checks every mode.
fn check(builder: impl Fn(WalrusBuilder) -> WalrusBuilder, file: u32, dir: u32) {
    for fd in BACKENDS {
        let root = tempfile::tempdir().unwrap();
        let parent = root.path().join("data");
        let instance = parent.join("instance");
        let wal = builder(Walrus::builder())
            .data_dir(instance.clone())
            .fd_backend(fd)
            .fsync_schedule(FsyncSchedule::SyncEach)
            .block_bytes(64 * 1024)
            .blocks_per_file(2)
            .build()
            .unwrap();
        // Enough for a second segment file.
        for i in 0..300 {
            wal.append_for_topic("t", &[i as u8; 1000]).unwrap();
        }
        wal.batch_append_for_topic("u", &[b"a".as_slice(), b"b"])
            .unwrap();
        assert!(wal.read_next("t", true).unwrap().is_some());
        assert_eq!(wal.batch_read_for_topic("u", 1024, true).unwrap().len(), 2);

        assert_mode(&parent, dir);
        assert_mode(&instance, dir);
        assert_mode(&instance.join("LOCK"), file);
        let segments = wal_files(&instance);
        assert!(segments.len() >= 2, "fd={fd}: {segments:?}");
        let cursors = files(&instance, |n| n.starts_with("cursors-"));
        assert!(!cursors.is_empty(), "fd={fd}: no cursor file");
        for path in segments.iter().chain(&cursors) {
            assert_mode(path, file);
        }
        drop(wal);
        // The clean-close marker, and everything a reopen finds, keep the same modes.
        assert_mode(&instance.join("CLEAN"), file);
        for path in files(&instance, |_| true) {
            assert_mode(&path, file);
        }
        assert_mode(&instance, dir);
    }
}

#[test]
fn instance_files_and_directories_are_owner_only_by_default() {
    check(|b| b, 0o600, 0o700);
}

#[test]
fn builder_file_mode_sets_files_and_directories() {
    check(|b| b.file_mode(0o640), 0o640, 0o750);
}

#[test]
fn an_existing_directory_keeps_its_mode() {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let wal = open(root.path(), true, FsyncSchedule::SyncEach, strict());
    wal.append_for_topic("t", b"x").unwrap();
    let got = fs::metadata(root.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(got, 0o755, "an existing directory is never chmod-ed");
    for path in wal_files(root.path()) {
        assert_mode(&path, 0o600);
    }
}
