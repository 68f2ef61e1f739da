//! The parent side of the harness: which cells to run, one child process per cell, progress,
//! and the rows that come back.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    wal::SyncMode,
    workload::{Fields, Params, Workload},
};

/// One child run: a workload on a system, and the table section it belongs to.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Section of the table (and key for plots), e.g. `append 200ms`.
    pub group: String,
    /// What the child runs (its `dir` is filled in per run).
    pub params: Params,
}

impl Cell {
    /// A cell of `workload` on `system`.
    pub fn new(
        group: &str,
        system: &str,
        workload: Workload,
        threads: usize,
        sync: SyncMode,
    ) -> Self {
        Self {
            group: group.to_owned(),
            params: Params {
                system: system.to_owned(),
                workload,
                threads,
                sync,
                duration: Duration::from_secs(2),
                batch: 256,
                bytes: 0,
                topics: threads,
                dir: PathBuf::new(),
            },
        }
    }

    /// Sets the timed phase's length.
    pub fn duration(mut self, d: Duration) -> Self {
        self.params.duration = d;
        self
    }

    /// Sets the batch size.
    pub fn batch(mut self, n: usize) -> Self {
        self.params.batch = n;
        self
    }

    /// Sets the data filled before a read or reopen measurement.
    pub fn fill(mut self, bytes: u64, topics: usize) -> Self {
        self.params.bytes = bytes;
        self.params.topics = topics;
        self
    }
}

/// Progress of a child: `TICK` lines.
#[derive(Clone, Debug)]
pub struct Tick {
    /// `write` or `read`.
    pub phase: String,
    /// Milliseconds since the phase started.
    pub ms: u64,
    /// Operations so far in the phase.
    pub ops: u64,
    /// Payload bytes so far in the phase.
    pub bytes: u64,
}

/// What came back from one cell: the cell's parameters and the child's fields (or `error`).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Cell parameters and results as `key=value` (see `report::COLUMNS`).
    pub row: Fields,
    /// The child's progress lines.
    pub ticks: Vec<Tick>,
}

/// Where and how cells run.
#[derive(Clone, Debug)]
pub struct Runner {
    /// The harness binary (this executable), started as `harness child ...`.
    pub exe: PathBuf,
    /// Parent of the per-cell temporary directories.
    pub tmp: PathBuf,
    /// Results directory; child logs go to `logs/` in it.
    pub out: PathBuf,
    /// Extra environment for children (e.g. `WALRUS_BACKEND`).
    pub env: Vec<(String, String)>,
}

fn base_row(cell: &Cell) -> Fields {
    let p = &cell.params;
    let mut row = Fields::new();
    row.insert("group".into(), cell.group.clone());
    row.insert("system".into(), p.system.clone());
    row.insert("workload".into(), p.workload.to_string());
    row.insert("threads".into(), p.threads.to_string());
    row.insert("sync".into(), p.sync.to_string());
    row.insert("batch".into(), p.batch.to_string());
    row.insert("fill_bytes".into(), p.bytes.to_string());
    row.insert("topics".into(), p.topics.to_string());
    row
}

/// Short human form of a rate.
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

impl Runner {
    /// Runs every cell, one child at a time, with a progress bar.
    pub fn run_all(&self, title: &str, cells: &[Cell]) -> Result<Vec<Outcome>> {
        std::fs::create_dir_all(self.out.join("logs"))?;
        std::fs::create_dir_all(&self.tmp)?;
        let bar = ProgressBar::new(cells.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(title.to_owned());
        let mut outcomes = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let p = &cell.params;
            let label = format!("{} T={} {}", p.workload, p.threads, p.system);
            bar.set_message(label.clone());
            let outcome = self.run_one(i, cell, &bar, &label)?;
            let line = match outcome.row.get("error") {
                Some(e) => format!("{:<28} {label}: FAILED: {e}", cell.group),
                None => summary(&cell.group, &label, &outcome.row),
            };
            if bar.is_hidden() {
                eprintln!("[{}/{}] {line}", i + 1, cells.len());
            } else {
                bar.println(line);
            }
            bar.inc(1);
            outcomes.push(outcome);
        }
        bar.finish_and_clear();
        Ok(outcomes)
    }

    fn run_one(
        &self,
        index: usize,
        cell: &Cell,
        bar: &ProgressBar,
        label: &str,
    ) -> Result<Outcome> {
        let mut row = base_row(cell);
        if cell.params.sync == SyncMode::Each {
            settle_discards(LAST_REMOVED.load(Ordering::Relaxed));
        }
        let dir = tempfile::Builder::new()
            .prefix("walrus-bench-")
            .tempdir_in(&self.tmp)
            .with_context(|| format!("temp dir in {}", self.tmp.display()))?;
        let mut params = cell.params.clone();
        params.dir = dir.path().join("data");
        let log_path = self.out.join("logs").join(format!(
            "{index:03}-{}-{}-t{}.log",
            params.system, params.workload, params.threads
        ));
        let log = File::create(&log_path)?;
        let mut child = Command::new(&self.exe)
            .arg("child")
            .args(params.to_args())
            // walrus 0.2.0 finds its directory only through this variable.
            .env("WALRUS_DATA_DIR", &params.dir)
            .env("WALRUS_QUIET", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Generous: setup phases of slow peers can take a while in --full runs.
        let limit = params.duration * 3
            + Duration::from_secs(120)
            + Duration::from_secs(params.bytes / (5 << 20));
        let start = Instant::now();
        let mut ticks = Vec::new();
        let mut result = None;
        let mut last = (0u64, 0u64);
        let mut timed_out = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("TICK ") {
                        if let Some(t) = parse_tick(rest) {
                            let (ms, ops) = last;
                            let rate = if t.ms > ms {
                                t.ops.saturating_sub(ops) as f64 * 1e3 / (t.ms - ms) as f64
                            } else {
                                0.0
                            };
                            last = (t.ms, t.ops);
                            bar.set_message(format!("{label}: {} {}/s", t.phase, si(rate)));
                            ticks.push(t);
                        }
                    } else if let Some(rest) = line.strip_prefix("RESULT\t") {
                        result = Some(rest.to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if start.elapsed() > limit {
                        // Only this child, by its own handle.
                        let _ = child.kill();
                        timed_out = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait()?;
        let _ = reader.join();
        match result {
            Some(fields) => {
                for kv in fields.split('\t') {
                    if let Some((k, v)) = kv.split_once('=') {
                        row.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
            None => {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail = tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                let why = if timed_out {
                    format!("timed out after {:?}", limit)
                } else {
                    format!("child exited with {status}")
                };
                row.insert(
                    "error".into(),
                    format!("{why}: {tail} (log {})", log_path.display()),
                );
            }
        }
        LAST_REMOVED.store(crate::workload::disk_usage(dir.path()), Ordering::Relaxed);
        drop(dir);
        settle_disk();
        Ok(Outcome { row, ticks })
    }
}

/// Lets the disk finish writing back what the cell left dirty before the next cell starts:
/// otherwise whichever system runs next pays for the previous one, and the first system of
/// each group (Walrus) ran against a busy disk in every group. Uses the `sync` command
/// (coreutils); where it is missing, cells simply start at once. Memory the host takes back
/// is not restored (see benches/RESULTS.md).
fn settle_disk() {
    let _ = Command::new("sync")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Bytes the previous cell's directory held when it was removed.
static LAST_REMOVED: AtomicU64 = AtomicU64::new(0);

/// Before a durable cell, waits a while for every GiB the previous cell removed: this file
/// system discards freed blocks and the host finishes them in the background (after 2 GiB
/// were removed and synced, 4 KiB fdatasyncs ran at 6.5-7.2k/s for 0.5-1 s, then at
/// 9.3-9.9k/s). Only before durable cells: idle time lets this VM hand freed memory back to
/// the host, which makes the next cell's first touch of it slow (in the one run that waited
/// after every cell, fd batch reads came out at 1.02x raft-engine, 1.11-1.44x in the three
/// runs before; not checked further).
fn settle_discards(removed_bytes: u64) {
    const PER_GIB: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(2);
    let gib = removed_bytes as f64 / (1u64 << 30) as f64;
    std::thread::sleep(PER_GIB.mul_f64(gib).min(MAX));
}

fn parse_tick(rest: &str) -> Option<Tick> {
    let mut it = rest.split(' ');
    Some(Tick {
        phase: it.next()?.to_owned(),
        ms: it.next()?.parse().ok()?,
        ops: it.next()?.parse().ok()?,
        bytes: it.next()?.parse().ok()?,
    })
}

fn summary(group: &str, label: &str, row: &Fields) -> String {
    let num = |k: &str| row.get(k).and_then(|v| v.parse::<f64>().ok());
    if let Some(why) = row.get("na") {
        return format!("{group:<28} {label}: n/a: {why}");
    }
    if let Some(cpu) = num("idle_cpu_us") {
        return format!(
            "{group:<28} {label}: {:.0} wake-ups, p50 {:.1} us, p99 {:.1} us; idle waiter \
             {cpu:.0} us CPU in {:.0} ms",
            num("ops").unwrap_or(0.0),
            num("p50_us").unwrap_or(0.0),
            num("p99_us").unwrap_or(0.0),
            num("idle_wait_ms").unwrap_or(0.0),
        );
    }
    if let Some(disk) = num("disk_mb_per_s") {
        return format!(
            "{group:<28} {label}: import {:.1} MB/s, {} entries/s, disk {disk:.1} MB/s, {:.2}x",
            num("mb_per_s").unwrap_or(0.0),
            si(num("ops_per_s").unwrap_or(0.0)),
            num("import_vs_disk").unwrap_or(0.0),
        );
    }
    if let Some(fds) = num("open_fds") {
        return format!(
            "{group:<28} {label}: {} appends/s, disk/payload {:.2} apparent, {:.2} allocated, \
             {fds:.0} fds open",
            si(num("ops_per_s").unwrap_or(0.0)),
            num("apparent_per_payload").unwrap_or(0.0),
            num("disk_per_payload").unwrap_or(0.0),
        );
    }
    if let Some(ms) = num("reopen_ms") {
        return format!(
            "{group:<28} {label}: reopen {ms:.1} ms (open {:.1} ms), disk/payload {:.2}",
            num("open_ms").unwrap_or(0.0),
            num("disk_per_payload").unwrap_or(0.0)
        );
    }
    format!(
        "{group:<28} {label}: {} ops/s, {:.1} MB/s, p50 {:.1} us, p99 {:.1} us",
        si(num("ops_per_s").unwrap_or(0.0)),
        num("mb_per_s").unwrap_or(0.0),
        num("p50_us").unwrap_or(0.0),
        num("p99_us").unwrap_or(0.0),
    )
}

/// Formats a child's result line.
pub fn result_line(fields: &Fields) -> String {
    let mut line = String::from("RESULT");
    for (k, v) in fields {
        line.push('\t');
        line.push_str(k);
        line.push('=');
        // Tabs and newlines would break the line format.
        line.push_str(&v.replace(['\t', '\n'], " "));
    }
    line
}
