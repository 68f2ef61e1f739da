//! Helpers shared by the end-to-end tests of `walrus-ctl`: directories written with the
//! library, then `walrus-ctl` run on them as a separate process, as a user would.

// Each test binary (`cli`, `log`, `migrate`) uses a different subset of these helpers.
#![allow(dead_code)]

use std::{
    fs,
    ops::Deref,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{PoisonError, RwLock, RwLockWriteGuard},
};

use serde_json::Value;
use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus, WalrusBuilder};

/// Small blocks and files, so a test directory takes kilobytes and a few dozen entries span
/// several blocks and files.
pub(crate) fn builder(dir: &Path) -> WalrusBuilder {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .block_bytes(4096)
        .blocks_per_file(2)
        .fsync_schedule(FsyncSchedule::SyncEach)
        .consistency(ReadConsistency::StrictlyAtOnce)
}

/// Tests run in parallel threads of one process. A child spawned by one test gets a copy of
/// every descriptor of the process until it execs, the lock file of a `Walrus` another test
/// holds included, so that test could find its directory still locked by a stranger right
/// after closing it. No child is spawned while a `Walrus` is open in this process: spawning
/// takes this lock shared, holding a `Walrus` takes it exclusively. (Each test file is its
/// own binary, so each has its own lock.)
pub(crate) static SPAWN: RwLock<()> = RwLock::new(());

/// A `Walrus` opened by the test, with the exclusive hold on [`SPAWN`].
pub(crate) struct Held {
    // Fields drop in order: the handle (and its lock file) before the hold.
    wal: Walrus,
    _spawns_blocked: RwLockWriteGuard<'static, ()>,
}

impl Deref for Held {
    type Target = Walrus;
    fn deref(&self) -> &Walrus {
        &self.wal
    }
}

pub(crate) fn open(builder: WalrusBuilder) -> Held {
    let guard = SPAWN.write().unwrap_or_else(PoisonError::into_inner);
    Held {
        wal: builder.build().unwrap(),
        _spawns_blocked: guard,
    }
}

/// Appends to `wal` the test data of a populated directory: `orders`, 20 entries
/// `order-000`.. (9 bytes each); `events`, 5 entries `event-0`..
pub(crate) fn append_orders_and_events(wal: &Walrus) {
    for i in 0..20 {
        wal.append_for_topic("orders", format!("order-{i:03}").as_bytes())
            .unwrap();
    }
    for i in 0..5 {
        wal.append_for_topic("events", format!("event-{i}").as_bytes())
            .unwrap();
    }
}

/// Every data, cursor and record file directly in `dir` with its bytes (the lock file left
/// out: opening creates it).
pub(crate) fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "LOCK"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

pub(crate) fn ctl(dir: &Path, args: &[&str]) -> Output {
    let _no_open_walrus = SPAWN.read().unwrap_or_else(PoisonError::into_inner);
    spawn(dir, args)
}

/// Runs walrus-ctl without waiting for [`SPAWN`]: only for a test that holds it itself.
pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_walrus-ctl"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    text(&output.stdout)
}

pub(crate) fn stderr(output: &Output) -> String {
    text(&output.stderr)
}

/// Runs and expects exit status 0; returns stdout.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let output = ctl(dir, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "walrus-ctl {args:?}: stdout {}, stderr {}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// Runs and expects exit status 0 and JSON on stdout; returns it parsed.
pub(crate) fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let text = ok(dir, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs and expects exit status 2 with exactly one line on stderr and nothing on stdout;
/// returns that line.
pub(crate) fn error_line(dir: &Path, args: &[&str]) -> String {
    one_error_line(&ctl(dir, args))
}

/// Expects of `output` exit status 2 with exactly one line on stderr and nothing on stdout;
/// returns that line.
pub(crate) fn one_error_line(output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("walrus-ctl: error: "), "{err:?}");
    assert!(output.stdout.is_empty());
    err
}
