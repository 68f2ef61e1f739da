//! `cargo xtask miri`: the `miri_*` unit tests of walrus-storage (frame codec, checksum,
//! scanner, in-memory and faulty storage, the mmap copy code on a heap-backed stand-in
//! mapping) and walrus-alloc (the file state machine) under Miri (docs: shared RELIABILITY.md
//! T10). Installs the nightly `miri` and `rust-src` components when missing, and prints one
//! figures line.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    thread,
    time::Instant,
};

use crate::util::{project_root, run, succeeds};

/// The crates with `miri_*` tests; the other crates hold no unsafe code and spend their time
/// in system calls Miri cannot run.
const CRATES: &[&str] = &["walrus-storage", "walrus-alloc"];

pub(crate) fn miri() -> Result<(), String> {
    ensure_miri()?;
    // Builds Miri's sysroot once (about two minutes the first time), outside the timing below.
    run("cargo", &["+nightly", "miri", "setup"], &[])?;
    let started = Instant::now();
    let mut args = vec!["+nightly", "miri", "test"];
    for krate in CRATES {
        args.extend(["-p", krate]);
    }
    args.extend(["--lib", "--", "miri_"]);
    eprintln!("$ cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(&args)
        .current_dir(project_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo miri: {e}"))?;
    // Echo both streams while counting passed and failed tests and Miri's UB reports.
    let stdout = child.stdout.take().ok_or("no stdout from cargo miri")?;
    let stderr = child.stderr.take().ok_or("no stderr from cargo miri")?;
    let out_reader = thread::spawn(move || scan_output(BufReader::new(stdout), false));
    let err_reader = thread::spawn(move || scan_output(BufReader::new(stderr), true));
    let status = child
        .wait()
        .map_err(|e| format!("cargo miri did not finish: {e}"))?;
    let (out, err) = match (out_reader.join(), err_reader.join()) {
        (Ok(out), Ok(err)) => (out, err),
        _ => return Err("an output reader panicked".into()),
    };
    let (passed, failed) = (out.passed + err.passed, out.failed + err.failed);
    let ub_reports = out.ub_reports + err.ub_reports;
    println!(
        "miri: tests={passed} failed={failed} ub_reports={ub_reports} secs={}",
        started.elapsed().as_secs()
    );
    if !status.success() {
        return Err(format!(
            "cargo miri test failed ({status}): undefined behaviour or a failing test, see above"
        ));
    }
    if passed == 0 {
        return Err("cargo miri test ran no miri_ test".into());
    }
    Ok(())
}

/// What the output of `cargo miri test` says.
#[derive(Debug, Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ub_reports: u64,
}

/// Echoes `output` (to stderr if `to_stderr`) and counts what it reports.
fn scan_output(output: impl BufRead, to_stderr: bool) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines().map_while(Result::ok) {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if let Some((passed, failed)) = result_counts(&line) {
            counts.passed += passed;
            counts.failed += failed;
        }
        if line.contains("Undefined Behavior") {
            counts.ub_reports += 1;
        }
    }
    counts
}

/// Installs the nightly Miri components unless `cargo +nightly miri` already runs; fails
/// loudly if it cannot.
fn ensure_miri() -> Result<(), String> {
    if succeeds("cargo", &["+nightly", "miri", "--version"]) {
        return Ok(());
    }
    run(
        "rustup",
        &[
            "component",
            "add",
            "--toolchain",
            "nightly",
            "miri",
            "rust-src",
        ],
        &[],
    )
    .map_err(|e| format!("the nightly miri component is missing and installing it failed: {e}"))
}

/// `(passed, failed)` from a libtest summary line such as
/// `test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 40 filtered out; ...`.
fn result_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u64> {
        rest.split(';')
            .find_map(|part| part.trim().split_once(&format!(" {word}")))
            .and_then(|(n, _)| n.rsplit(' ').next()?.parse().ok())
    };
    Some((count("passed")?, count("failed")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_results() {
        let line = "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 40 filtered out; \
                    finished in 30.1s";
        assert_eq!(result_counts(line), Some((12, 0)));
        let line = "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(result_counts(line), Some((3, 1)));
        assert_eq!(result_counts("running 12 tests"), None);
    }
}
