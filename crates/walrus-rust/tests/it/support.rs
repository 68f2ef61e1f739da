//! Shared helpers: temporary instances over every backend and schedule.

use std::path::{Path, PathBuf};

use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

#[path = "../../../walrus-topic/tests/it/rng.rs"]
mod rng;
pub(crate) use rng::{Rng, seed_from_env};

/// Both backends: fd (pwrite, the default) and mmap.
pub(crate) const BACKENDS: [bool; 2] = [true, false];

/// All three schedules.
pub(crate) const SCHEDULES: [FsyncSchedule; 3] = [
    FsyncSchedule::SyncEach,
    FsyncSchedule::Milliseconds(5),
    FsyncSchedule::NoFsync,
];

pub(crate) fn open(dir: &Path, fd: bool, schedule: FsyncSchedule, mode: ReadConsistency) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(schedule)
        .consistency(mode)
        .build()
        .unwrap()
}

/// Small blocks so tests cross block and file boundaries quickly.
pub(crate) fn open_small(
    dir: &Path,
    fd: bool,
    schedule: FsyncSchedule,
    mode: ReadConsistency,
) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(schedule)
        .consistency(mode)
        .block_bytes(64 * 1024)
        .blocks_per_file(4)
        .build()
        .unwrap()
}

/// The crash tests' matrix: {fd with io_uring, fd without, mmap} x {SyncEach,
/// Milliseconds(5), NoFsync}, by the names their child processes get in the environment.
pub(crate) const CRASH_MATRIX: [(&str, &str); 9] = [
    ("uring", "sync"),
    ("uring", "5ms"),
    ("uring", "none"),
    ("fd", "sync"),
    ("fd", "5ms"),
    ("fd", "none"),
    ("mmap", "sync"),
    ("mmap", "5ms"),
    ("mmap", "none"),
];

/// The schedule a crash-matrix name stands for.
pub(crate) fn schedule_of(name: &str) -> FsyncSchedule {
    match name {
        "sync" => FsyncSchedule::SyncEach,
        "none" => FsyncSchedule::NoFsync,
        _ => FsyncSchedule::Milliseconds(5),
    }
}

/// Opens `dir` as one cell of [`CRASH_MATRIX`], with small blocks (64 KiB, 4 per file).
pub(crate) fn open_cell(dir: &Path, backend: &str, schedule: &str) -> std::io::Result<Walrus> {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(backend != "mmap")
        .io_uring(backend == "uring")
        .fsync_schedule(schedule_of(schedule))
        .consistency(strict())
        .block_bytes(64 * 1024)
        .blocks_per_file(4)
        .build()
}

pub(crate) fn strict() -> ReadConsistency {
    ReadConsistency::StrictlyAtOnce
}

pub(crate) fn drain(wal: &Walrus, topic: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(entry) = wal.read_next(topic, true).unwrap() {
        out.push(entry.data);
    }
    out
}

pub(crate) fn payload(i: usize) -> Vec<u8> {
    format!("entry-{i:06}").into_bytes()
}

/// Runs `f` for every backend and schedule, each in a fresh directory.
pub(crate) fn each_config(mut f: impl FnMut(&Path, bool, FsyncSchedule)) {
    for fd in BACKENDS {
        for schedule in SCHEDULES {
            let dir = tempfile::tempdir().unwrap();
            f(dir.path(), fd, schedule);
        }
    }
}

/// The segment files (`*.wal`) of `dir`, sorted; none if `dir` does not exist.
pub(crate) fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Runs the (ignored) test `name` of this binary in a child process with `envs` set, and fails
/// with its output if it fails. For tests that need the process environment, which this
/// process must not change (`set_var` is `unsafe`).
pub(crate) fn run_child_test(name: &str, envs: &[(&str, &std::ffi::OsStr)]) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{name} did not run"
    );
}

/// Starts the (ignored) test `test` of this binary in a child process, as the kill -9 tests
/// do: `WALRUS_TEST_DIR` set to `dir`, `WALRUS_QUIET=1` and `envs`, stdout piped (for what the
/// child reports) and stderr dropped. The caller reads, kills and waits for it.
pub(crate) fn spawn_child(test: &str, dir: &Path, envs: &[(&str, &str)]) -> std::process::Child {
    use std::process::Stdio;
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WALRUS_TEST_DIR", dir)
        .env("WALRUS_QUIET", "1")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Zeroes the seal record of the first block of a segment file: the block looks as if the
/// process had died before sealing it, so recovery scans it. The extent's length comes from
/// the file header's block size (frame payload bytes 8..16) and the block header's block count
/// (`aux`, frame bytes 12..16), whatever class of file the block is in.
pub(crate) fn wipe_seal_of_first_block(file: &Path) {
    use std::os::unix::fs::FileExt;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut header = [0u8; 48];
    handle.read_exact_at(&mut header, 0).unwrap();
    let block_bytes = u64::from_le_bytes(header[40..48].try_into().unwrap());
    let mut aux = [0u8; 4];
    handle.read_exact_at(&mut aux, 4096 + 12).unwrap();
    let extent = u64::from(u32::from_le_bytes(aux).max(1)) * block_bytes;
    let seal = walrus_topic::SEAL_BYTES;
    handle
        .write_all_at(&vec![0u8; seal as usize], 4096 + extent - seal)
        .unwrap();
}
