//! `cargo xtask fuzz [--ci] [--secs N] [--seed-corpus]`: the cargo-fuzz targets under `fuzz/`
//! (docs: shared RELIABILITY.md T8). Installs cargo-fuzz when missing, builds the targets with
//! nightly and AddressSanitizer, replays the committed corpus and the saved regressions, then
//! fuzzes each target for a fixed time and prints one figures line per target.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use crate::util::{project_root, run, succeeds};

/// The fuzz targets, in the order they run.
const TARGETS: &[&str] = &[
    "frame_decode",
    "wal_dir_open",
    "cursor_file",
    "op_sequence",
    "v020_reader",
];

/// Seconds of new fuzzing per target: RELIABILITY.md T8 asks 60 s, CI 20 s.
const SECS_DEFAULT: u64 = 60;
const SECS_CI: u64 = 20;

/// Per-input time limit: an input that runs longer is a hang, and fails the target.
const INPUT_TIMEOUT_SECS: &str = "10";
/// Memory limit of the fuzzing process; past it libFuzzer reports an out-of-memory.
const RSS_LIMIT_MB: &str = "2048";

/// libFuzzer options of one target beyond the common ones.
fn target_args(target: &str) -> &'static [&'static str] {
    match target {
        // Its data files are at most 30 MiB (sparse) and the reader reads one block at a
        // time: a single allocation of 128 MiB or more can only come from a size read from
        // the input, so it fails the target (the default limit is the RSS limit).
        "v020_reader" => &["-malloc_limit_mb=128"],
        _ => &[],
    }
}

/// `cargo xtask fuzz` options.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fuzz {
    /// `--ci`: 20 s per target.
    pub(crate) ci: bool,
    /// `--secs N`: seconds per target (overrides `--ci`).
    pub(crate) secs: Option<u64>,
    /// `--seed-corpus`: rewrite the committed seed corpus instead of fuzzing.
    pub(crate) seed_corpus: bool,
}

pub(crate) fn fuzz(opts: &Fuzz) -> Result<(), String> {
    ensure_cargo_fuzz()?;
    let root = project_root();
    let started = Instant::now();
    run("cargo", &["+nightly", "fuzz", "build"], &[])?;
    println!(
        "fuzz: build secs={} targets={}",
        started.elapsed().as_secs(),
        TARGETS.len()
    );
    if opts.seed_corpus {
        let generator = built_binary(&root, "seed_corpus")?;
        let generator = generator.to_string_lossy().into_owned();
        return run(&generator, &["fuzz/corpus"], &[]);
    }
    let secs = opts
        .secs
        .unwrap_or(if opts.ci { SECS_CI } else { SECS_DEFAULT });
    let logs = root.join("fuzz/target/logs");
    fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let mut failed = Vec::new();
    for target in TARGETS {
        if let Err(message) = fuzz_target(&root, &logs, target, secs) {
            eprintln!("{message}");
            failed.push(*target);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: {} target(s) failed: {}; see the artifacts under fuzz/artifacts/ and the \
             logs under fuzz/target/logs/",
            failed.len(),
            failed.join(", ")
        ))
    }
}

/// Installs cargo-fuzz unless `cargo fuzz` already runs; fails loudly if it cannot.
fn ensure_cargo_fuzz() -> Result<(), String> {
    if succeeds("cargo", &["fuzz", "--version"]) {
        return Ok(());
    }
    run("cargo", &["install", "cargo-fuzz", "--locked"], &[])
        .map_err(|e| format!("cargo-fuzz is missing and installing it failed: {e}"))
}

/// Path of a binary `cargo fuzz build` made (under the host triple).
fn built_binary(root: &Path, name: &str) -> Result<PathBuf, String> {
    let out = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .output()
        .map_err(|e| format!("cannot run rustc +nightly -vV: {e}"))?;
    let info = String::from_utf8_lossy(&out.stdout);
    let host = info
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .ok_or("rustc -vV names no host triple")?;
    let path = root.join(format!("fuzz/target/{host}/release/{name}"));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} was not built", path.display()))
    }
}

/// Replays the corpus and regressions of `target`, then fuzzes it for `secs` seconds.
fn fuzz_target(root: &Path, logs: &Path, target: &str, secs: u64) -> Result<(), String> {
    let corpus = format!("fuzz/corpus/{target}");
    let regressions = format!("fuzz/regressions/{target}");
    let work = format!("fuzz/target/corpus-work/{target}");
    for dir in [&regressions, &work] {
        fs::create_dir_all(root.join(dir)).map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let files = |dir: &str| fs::read_dir(root.join(dir)).map_or(0, Iterator::count);
    let replayed = files(&corpus) + files(&regressions);
    // Every committed input once (-runs=0 stops after the initial corpus pass).
    let replay_log = logs.join(format!("{target}-replay.log"));
    libfuzzer(target, &[&corpus, &regressions], &["-runs=0"], &replay_log)
        .map_err(|e| format!("fuzz: target={target} replay failed: {e}"))?;
    // New units go to the first directory, a scratch one, so the committed corpus stays put.
    let log = logs.join(format!("{target}.log"));
    let max_time = format!("-max_total_time={secs}");
    let outcome = libfuzzer(target, &[&work, &corpus, &regressions], &[&max_time], &log);
    let text = fs::read_to_string(&log).unwrap_or_default();
    let stats = Stats::parse(&text);
    println!(
        "fuzz: target={target} secs={secs} execs={} exec_per_s={} cov={} corpus={} \
         replayed={replayed} crashes={}",
        stats.execs,
        stats.execs / secs.max(1),
        stats.cov,
        stats.corpus,
        u8::from(outcome.is_err()),
    );
    outcome.map_err(|e| format!("fuzz: target={target} failed: {e}"))
}

/// Runs `cargo +nightly fuzz run target dirs -- args`, output to `log`; on failure returns
/// the lines of the log that say what happened.
fn libfuzzer(target: &str, dirs: &[&str], args: &[&str], log: &Path) -> Result<(), String> {
    let file =
        fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err_file = file
        .try_clone()
        .map_err(|e| format!("cannot reuse {}: {e}", log.display()))?;
    let mut command = Command::new("cargo");
    command
        .args(["+nightly", "fuzz", "run", target])
        .args(dirs)
        .arg("--")
        .args([
            &format!("-timeout={INPUT_TIMEOUT_SECS}"),
            &format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ])
        .args(target_args(target))
        .args(args)
        .current_dir(project_root())
        .stdout(file)
        .stderr(err_file);
    eprintln!(
        "$ cargo +nightly fuzz run {target} {} -- {} (log: {})",
        dirs.join(" "),
        target_args(target)
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        log.display()
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    Err(format!("{status}\n{}", failure_summary(&text)))
}

/// The lines of a libFuzzer log that explain a failure: the panic, the sanitizer's or
/// libFuzzer's error, and where the input was saved (not the input itself).
fn failure_summary(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().copied().enumerate() {
        if line.contains("panicked at") {
            out.push(line);
            // The message (an assertion's spans several lines), up to the backtrace.
            let message = lines[i + 1..].iter().take_while(|l| {
                !l.starts_with("stack backtrace")
                    && !l.starts_with("note:")
                    && !l.starts_with("==")
                    && !l.starts_with("Output of")
            });
            out.extend(message.take(6).copied());
        } else if line.contains("ERROR: libFuzzer")
            || line.contains("ERROR: AddressSanitizer")
            || line.starts_with("SUMMARY:")
            || line.contains("Test unit written to")
            || line.contains("cargo fuzz run")
        {
            out.push(line);
        }
    }
    out.iter()
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Figures from a libFuzzer log.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    /// Executions: `Done N runs`, or the last status line's `#N` if the run died.
    execs: u64,
    /// Coverage counters (`cov:`) and corpus entries (`corp:`) of the last status line.
    cov: u64,
    corpus: u64,
}

impl Stats {
    fn parse(log: &str) -> Self {
        let mut stats = Self::default();
        let field = |line: &str, key: &str| -> Option<u64> {
            let rest = &line[line.find(key)? + key.len()..];
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        for line in log.lines() {
            if let Some(runs) = line.strip_prefix("Done ") {
                stats.execs = field(runs, "").unwrap_or(stats.execs);
            } else if line.starts_with('#') && line.contains("cov:") {
                stats.execs = field(line, "#").unwrap_or(stats.execs);
                stats.cov = field(line, "cov:").unwrap_or(stats.cov);
                stats.corpus = field(line, "corp:").unwrap_or(stats.corpus);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_figures() {
        let log = "INFO: Seed: 1\n\
                   #5\tINITED cov: 2390 ft: 3338 corp: 4/49Kb exec/s: 0 rss: 65Mb\n\
                   #8192\tpulse  cov: 2600 ft: 4000 corp: 40/100Kb lim: 4096 exec/s: 300\n\
                   Done 18238 runs in 61 second(s)\n";
        assert_eq!(
            Stats::parse(log),
            Stats {
                execs: 18238,
                cov: 2600,
                corpus: 40
            }
        );
        let died =
            "#700\tNEW    cov: 10 ft: 11 corp: 3/1Kb\n==1== ERROR: libFuzzer: deadly signal\n";
        assert_eq!(Stats::parse(died).execs, 700);
    }

    #[test]
    fn failure_summary_keeps_the_panic_not_the_input() {
        let log = "thread '<unnamed>' panicked at src/lib.rs:1:1:\nattempt to add with overflow\n\
                   Output of `std::fmt::Debug`:\n\t[1, 2, 3]\n\
                   ==1== ERROR: libFuzzer: deadly signal\n";
        let summary = failure_summary(log);
        assert!(summary.contains("attempt to add with overflow"));
        assert!(summary.contains("deadly signal"));
        assert!(!summary.contains("[1, 2, 3]"));
    }
}
