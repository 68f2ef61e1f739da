//! T7: running out of file descriptors (docs: shared RELIABILITY.md, section 3).
//!
//! A child process runs under `ulimit -n` 16, 32 or 64 and appends to 1,000 topics with
//! 4 KiB blocks and 4 blocks per file, so it needs far more segment files than it may open
//! descriptors (the fd backend keeps one per file; the mmap backend closes it once the file is
//! mapped, so it runs into no limit and must simply lose nothing). It prints every acknowledgement and every
//! error. The parent checks that the child never panicked, that the limit was hit and
//! reported as an `io::Error`, and, reopening the directory without the limit, that every
//! acknowledged entry is there in order, nothing else is, and recovery found no corruption.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
};

use walrus_rust::{FsyncSchedule, Walrus};

use crate::support::strict;

const TOPICS: usize = 1000;
const ROUNDS: usize = 2;

fn builder(dir: &Path, fd: bool) -> walrus_rust::WalrusBuilder {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(FsyncSchedule::NoFsync)
        .consistency(strict())
        .block_bytes(4096)
        .blocks_per_file(4)
}

fn entry(topic: usize, round: usize) -> Vec<u8> {
    format!("topic {topic} round {round}").into_bytes()
}

/// Child side: appends under the descriptor limit its parent set, reporting every outcome.
#[test]
#[ignore = "run as a child process by fd_limit_errors_are_returned_and_recovery_is_complete"]
fn child_appends_to_many_topics_under_a_low_fd_limit() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let fd = std::env::var("BACKEND").is_ok_and(|b| b == "fd");
    // The harness has printed "test <name> ... " without a newline: start a fresh line.
    println!();
    let wal = match builder(Path::new(&dir), fd).build() {
        Ok(wal) => wal,
        Err(err) => {
            println!("OPEN_ERR {:?} {err}", err.kind());
            return;
        }
    };
    let mut errors = 0;
    for round in 0..ROUNDS {
        for topic in 0..TOPICS {
            match wal.append_for_topic(&format!("t{topic}"), &entry(topic, round)) {
                Ok(()) => println!("ACK {topic} {round}"),
                Err(err) => {
                    errors += 1;
                    println!("ERR {topic} {round} {:?} {err}", err.kind());
                }
            }
        }
    }
    // Reads under the limit fail or succeed, but never panic.
    for topic in 0..TOPICS {
        let _ = wal.read_next(&format!("t{topic}"), false);
    }
    println!("DONE errors={errors}");
}

#[test]
fn fd_limit_errors_are_returned_and_recovery_is_complete() {
    let exe = std::env::current_exe().expect("test binary path");
    for limit in [16, 32, 64] {
        for fd in [true, false] {
            let backend = if fd { "fd" } else { "mmap" };
            let dir = tempfile::tempdir().unwrap();
            let output = Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "fd_limit::child_appends_to_many_topics_under_a_low_fd_limit",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("WALRUS_TEST_DIR", dir.path())
                .env("BACKEND", backend)
                .env("WALRUS_QUIET", "1")
                .stdin(Stdio::null())
                .output()
                .expect("run the child");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let case = format!("limit {limit}, {backend}");
            assert!(
                output.status.success(),
                "{case}: the child failed ({}): {stderr}",
                output.status
            );
            let mut acked: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
            let mut errors = Vec::new();
            let mut done = false;
            for line in stdout.lines() {
                let fields: Vec<&str> = line.splitn(4, ' ').collect();
                match fields[0] {
                    "ACK" => {
                        let topic: usize = fields[1].parse().unwrap();
                        let round: usize = fields[2].parse().unwrap();
                        acked.entry(topic).or_default().push(entry(topic, round));
                    }
                    "ERR" | "OPEN_ERR" => errors.push(line.to_owned()),
                    _ if line.starts_with("DONE") => done = true,
                    _ => {}
                }
            }
            let open_failed = errors.iter().any(|e| e.starts_with("OPEN_ERR"));
            assert!(
                done || open_failed,
                "{case}: the child stopped early: {stdout}"
            );
            // The fd backend keeps a descriptor per segment file and must hit the limit; the
            // mmap backend closes each descriptor once the file is mapped, so it may not.
            assert!(
                !fd || !errors.is_empty(),
                "{case}: the limit was never hit, so nothing was tested"
            );
            // Each error is a real message, not a panic or an empty string.
            assert!(
                errors.iter().all(|e| e.len() > 20),
                "{case}: unclear errors: {errors:?}"
            );
            // Without the limit: every acknowledged entry, nothing else, no corruption.
            let wal = builder(dir.path(), fd).build().unwrap();
            let findings = wal.recovery_findings();
            assert!(
                findings.iter().all(|f| !f.is_corruption()),
                "{case}: {findings:?}"
            );
            for topic in 0..TOPICS {
                let got: Vec<Vec<u8>> = wal
                    .read_from(&format!("t{topic}"), 0, usize::MAX)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.data)
                    .collect();
                let expected = acked.get(&topic).cloned().unwrap_or_default();
                assert_eq!(got, expected, "{case}: topic {topic}");
            }
            println!(
                "fd_limit: limit={limit} backend={backend} acked={} errors={} open_failed={open_failed} acked_lost=0 corrupt=0",
                acked.values().map(Vec::len).sum::<usize>(),
                errors.len(),
            );
            if let Some(first) = errors.first() {
                println!("fd_limit:   first error: {first}");
            }
        }
    }
}
