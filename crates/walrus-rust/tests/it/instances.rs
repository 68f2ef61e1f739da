//! Several handles on one directory, other processes, and resource release on drop.

use std::{path::Path, process::Command, sync::Arc};

use walrus_rust::FsyncSchedule;

use crate::support::*;

/// Runs one ignored test of this binary in a child process with `WALRUS_TEST_DIR` set, and
/// returns its standard output. Panics if the child fails.
pub(crate) fn run_child(test: &str, dir: &Path) -> String {
    run_child_with(test, dir, &[])
}

/// [`run_child`] with extra environment variables.
pub(crate) fn run_child_with(test: &str, dir: &Path, envs: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WALRUS_TEST_DIR", dir)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {test} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn two_live_instances_on_one_directory_share_appends_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    let b = open(dir.path(), true, FsyncSchedule::SyncEach, strict());
    a.append_for_topic("t", b"from a").unwrap();
    b.append_for_topic("t", b"from b").unwrap();
    assert_eq!(b.read_next("t", true).unwrap().unwrap().data, b"from a");
    assert_eq!(a.read_next("t", true).unwrap().unwrap().data, b"from b");
    assert!(b.read_next("t", true).unwrap().is_none());
    drop(a);
    b.append_for_topic("t", b"after drop").unwrap();
    assert_eq!(drain(&b, "t"), [b"after drop".to_vec()]);
}

#[test]
fn another_process_gets_a_clear_error_while_the_directory_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    wal.append_for_topic("t", b"x").unwrap();
    let out = run_child("instances::child_tries_to_open", dir.path());
    assert!(out.contains("open failed: WouldBlock"), "{out}");
    assert!(out.contains("in use by another process"), "{out}");
    drop(wal);
    let out = run_child("instances::child_tries_to_open", dir.path());
    assert!(out.contains("open ok"), "{out}");
}

#[test]
#[ignore = "run as a child process by other tests"]
fn child_tries_to_open() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let result = walrus_rust::Walrus::builder().data_dir(dir.into()).build();
    match result {
        Ok(_) => println!("open ok"),
        Err(err) => println!("open failed: {:?} {err}", err.kind()),
    }
}

fn walrus_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("walrus-"))
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
#[ignore = "run as a child process by dropping_the_last_handle_releases_threads_and_files"]
fn child_open_and_drop_many_times() {
    if std::env::var_os("WALRUS_TEST_DIR").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (threads, fds) = (walrus_threads(), open_fds());
    for _ in 0..20 {
        let wal = open(dir.path(), true, FsyncSchedule::Milliseconds(1), strict());
        wal.append_for_topic("t", b"x").unwrap();
        drop(wal);
    }
    let files = wal_files(dir.path()).len();
    println!(
        "threads_before={threads} threads_after={} fds_before={fds} fds_after={} wal_files={files}",
        walrus_threads(),
        open_fds()
    );
}

#[test]
fn dropping_the_last_handle_releases_threads_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("instances::child_open_and_drop_many_times", dir.path());
    let field = |name: &str| -> usize {
        out.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(field("threads_after"), field("threads_before"), "{out}");
    assert_eq!(field("fds_after"), field("fds_before"), "{out}");
    // Twenty opens that each appended once: one file per open at most, never one per open
    // without data, and nothing pre-created left behind.
    assert!(field("wal_files") <= 20, "{out}");
}

#[test]
fn opening_without_appending_creates_no_data_file() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
        assert!(wal.read_next("t", true).unwrap().is_none());
    }
    let wal_files = wal_files(dir.path()).len();
    assert_eq!(wal_files, 0);
}

#[test]
fn hundred_topics_four_threads_lose_nothing() {
    for fd in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(open_small(
            dir.path(),
            fd,
            FsyncSchedule::Milliseconds(5),
            strict(),
        ));
        let handles: Vec<_> = (0..4)
            .map(|thread| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        for t in 0..100 {
                            let topic = format!("topic-{t}");
                            wal.append_for_topic(&topic, format!("{thread}:{i}").as_bytes())
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        for t in 0..100 {
            let entries = drain(&wal, &format!("topic-{t}"));
            assert_eq!(entries.len(), 200);
            // Per writer thread, entries come back in append order.
            for thread in 0..4 {
                let mine: Vec<usize> = entries
                    .iter()
                    .map(|e| String::from_utf8(e.clone()).unwrap())
                    .filter_map(|s| {
                        s.strip_prefix(&format!("{thread}:"))
                            .map(|i| i.parse().unwrap())
                    })
                    .collect();
                assert_eq!(mine, (0..50).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn concurrent_readers_and_writers_deliver_each_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open_small(
        dir.path(),
        true,
        FsyncSchedule::NoFsync,
        strict(),
    ));
    let writer = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            for i in 0..2000 {
                wal.append_for_topic("t", &payload(i)).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut idle = 0;
                while idle < 2000 {
                    let batch = if r == 0 {
                        wal.batch_read_for_topic("t", 300, true)
                            .unwrap()
                            .into_iter()
                            .map(|e| e.data)
                            .collect()
                    } else {
                        wal.read_next("t", true)
                            .unwrap()
                            .map(|e| vec![e.data])
                            .unwrap_or_default()
                    };
                    if batch.is_empty() {
                        idle += 1;
                        std::thread::yield_now();
                    } else {
                        idle = 0;
                        got.extend(batch);
                    }
                }
                got
            })
        })
        .collect();
    writer.join().unwrap();
    let mut all: Vec<Vec<u8>> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    all.extend(drain(&wal, "t"));
    all.sort();
    assert_eq!(all.len(), 2000);
    assert_eq!(all, (0..2000).map(payload).collect::<Vec<_>>());
}
