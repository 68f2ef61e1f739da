//! The `migrate` cell: walrus-rust 0.2.0 writes a data set, then Walrus opens the directory,
//! which imports it (crates/walrus-topic/src/legacy.rs), timed, beside the disk's buffered
//! write bandwidth measured in the same cell.
//!
//! Three processes, so that neither system sees the other's threads, open files or memory:
//! the harness's parent starts the cell's child (`workload=migrate`, `WALRUS_DATA_DIR` set to
//! the cell's directory); that child starts a `workload=migrate-fill` child in which 0.2.0
//! appends `bytes` of 500 to 1000 random bytes round-robin over `topics` topics and exits. The
//! cell's child then syncs the 0.2.0 files (untimed, so their write-back does not overlap the
//! import), writes 1 GiB in 1 MiB chunks to a new file beside the directory and fdatasyncs it
//! (the disk's limit), and times `Walrus::builder().data_dir(dir).build()`: reading every 0.2.0
//! block, verifying its checksums, appending and syncing. It then checks the topic and entry
//! counts, so the cell cannot pass on an import that did nothing.

use std::{
    fmt::Write as _,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

use crate::{
    payload::{ENTRY_SIZES, Payloads},
    report::{Goal, num},
    suite::{Cell, Runner, si},
    wal::{self, SyncMode},
    workload::{Fields, Params, Workload},
};

/// The data set, in the quick run as in `--full`: the whole cell (0.2.0 writing at about
/// 200 MB/s, the disk test, the import) takes about 15 s on 2 cores.
pub const BYTES: u64 = 1 << 30;
/// Topics the data set is spread over.
pub const TOPICS: usize = 100;
/// Bytes written to measure the disk's buffered write bandwidth (with the fdatasync).
const DISK_BYTES: u64 = 1 << 30;
/// The goal: the import runs at least at this fraction of the disk's write bandwidth.
pub const GOAL_RATIO: f64 = 0.5;

/// The migrate cell, if this build has walrus-rust 0.2.0 (feature `peers`) and `walrus` is
/// among the systems.
pub fn cells(systems: &[String]) -> Vec<Cell> {
    if !wal::available("walrus-0.2.0") || !systems.iter().any(|s| s == "walrus") {
        return Vec::new();
    }
    let group = format!(
        "import of {} GiB written by walrus-rust 0.2.0 over {TOPICS} topics (open, warm cache)",
        BYTES >> 30
    );
    let cell = Cell::new(
        &group,
        "walrus",
        Workload::Migrate,
        1,
        SyncMode::Interval(200),
    );
    vec![cell.fill(BYTES, TOPICS)]
}

/// `harness migrate`: the migrate cell alone (whatever `--systems` says); writes
/// `migrate.csv` and `migrate.txt` and prints its table and goal.
pub fn alone(runner: &Runner) -> Result<()> {
    let cells = cells(&["walrus".to_owned()]);
    if cells.is_empty() {
        bail!("the migrate cell needs walrus-0.2.0: build with --features peers");
    }
    let outcomes = runner.run_all("migrate", &cells)?;
    let rows: Vec<Fields> = outcomes.into_iter().map(|o| o.row).collect();
    let csv = runner.out.join("migrate.csv");
    crate::report::write_csv(&csv, &rows)?;
    let mut text = crate::report::table(&rows);
    text.push_str(&crate::report::goals_text(&goal(&rows)));
    println!("{text}\nresults: {}", csv.display());
    std::fs::write(runner.out.join("migrate.txt"), text)?;
    Ok(())
}

/// The 0.2.0 side (`workload=migrate-fill`): single appends round-robin over the topics until
/// `bytes` of payload are written; prints `TICK write` lines.
pub fn fill(p: &Params) -> Result<Fields> {
    let wal = wal::open("walrus-0.2.0", &p.dir, SyncMode::Never, p.topics)?;
    let mut payloads = Payloads::new(ENTRY_SIZES, 42);
    let start = Instant::now();
    let mut next_tick = Duration::from_millis(500);
    let (mut ops, mut bytes) = (0u64, 0u64);
    'fill: loop {
        for topic in 0..p.topics {
            let data = payloads.one();
            wal.append(topic, data)
                .with_context(|| format!("0.2.0 append #{ops}"))?;
            ops += 1;
            bytes += data.len() as u64;
            if bytes >= p.bytes {
                break 'fill;
            }
        }
        if start.elapsed() >= next_tick {
            println!("TICK write {} {ops} {bytes}", next_tick.as_millis());
            next_tick += Duration::from_millis(500);
        }
    }
    drop(wal);
    let mut fields = Fields::new();
    fields.insert("ops".into(), ops.to_string());
    fields.insert("bytes".into(), bytes.to_string());
    fields.insert(
        "secs".into(),
        format!("{:.4}", start.elapsed().as_secs_f64()),
    );
    Ok(fields)
}

/// Runs [`fill`] in a child process (0.2.0 finds its directory through `WALRUS_DATA_DIR`,
/// set for that process here), passing its progress on; returns its fields.
fn fill_in_child(p: &Params) -> Result<Fields> {
    let params = Params {
        system: "walrus-0.2.0".into(),
        workload: Workload::MigrateFill,
        ..p.clone()
    };
    let mut child = Command::new(std::env::current_exe()?)
        .arg("child")
        .args(params.to_args())
        .env("WALRUS_DATA_DIR", &p.dir)
        .env("WALRUS_QUIET", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start the 0.2.0 writer")?;
    let stdout = child.stdout.take().context("the writer's stdout")?;
    let mut result = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.starts_with("TICK ") {
            println!("{line}");
        } else if let Some(rest) = line.strip_prefix("RESULT\t") {
            result = Some(rest.to_owned());
        }
    }
    let status = child.wait()?;
    let fields: Fields = result
        .context(format!(
            "the 0.2.0 writer exited with {status} without a result"
        ))?
        .split('\t')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Some(e) = fields.get("error") {
        bail!("the 0.2.0 writer failed: {e}");
    }
    ensure!(status.success(), "the 0.2.0 writer exited with {status}");
    Ok(fields)
}

fn field_u64(fields: &Fields, key: &str) -> Result<u64> {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key} in the writer's result"))
}

/// fsyncs every file 0.2.0 left in `dir`.
fn sync_files(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            File::open(&path)?.sync_all()?;
        }
    }
    Ok(())
}

/// The disk's buffered write bandwidth: [`DISK_BYTES`] in 1 MiB writes to a new file, then
/// fdatasync; bytes per second. The file is removed afterwards.
fn write_bandwidth(path: &Path) -> Result<f64> {
    const CHUNK: usize = 1 << 20;
    let chunk = Payloads::fixed(CHUNK, 3).one().to_vec();
    let mut file = File::create(path)?;
    let start = Instant::now();
    for _ in 0..DISK_BYTES / CHUNK as u64 {
        file.write_all(&chunk)?;
    }
    file.sync_data()?;
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(DISK_BYTES as f64 / secs.max(1e-9))
}

/// The cell's child (`workload=migrate`): see the module docs.
pub fn run(p: &Params) -> Result<Fields> {
    std::fs::create_dir_all(&p.dir)?;
    let written = fill_in_child(p)?;
    let (entries, payload) = (field_u64(&written, "ops")?, field_u64(&written, "bytes")?);
    let fill_secs: f64 = written
        .get("secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    sync_files(&p.dir)?;
    let beside = p.dir.parent().unwrap_or(&p.dir).join("disk-bandwidth.bin");
    let disk = write_bandwidth(&beside)?;

    // Progress of the import, from the builder's hook, as TICK lines every 500 ms.
    let start = Instant::now();
    let last_tick = Arc::new(AtomicU64::new(0));
    let hook = move |progress: &walrus_rust::upgrade::ImportProgress| {
        let ms = start.elapsed().as_millis() as u64;
        if ms >= last_tick.load(Ordering::Relaxed) + 500 {
            last_tick.store(ms, Ordering::Relaxed);
            println!("TICK import {ms} {} {}", progress.entries, progress.bytes);
        }
    };
    let start = Instant::now();
    let wal = walrus_rust::Walrus::builder()
        .data_dir(p.dir.clone())
        .on_import_progress(hook)
        .build()
        .context("open (import) the 0.2.0 directory")?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);

    // The import did the work: every topic, every entry, nothing damaged, nothing left.
    let topics = wal.topics();
    ensure!(
        topics.len() == p.topics,
        "{} topics after the import, {} written",
        topics.len(),
        p.topics
    );
    let imported: u64 = topics.iter().map(|t| t.entries).sum();
    ensure!(
        imported == entries,
        "{imported} entries after the import, {entries} written"
    );
    let findings = wal.recovery_findings();
    ensure!(findings.is_empty(), "the import found damage: {findings:?}");
    let left = walrus_rust::upgrade::legacy_files(&p.dir)?;
    ensure!(
        left.is_empty(),
        "0.2.0 files left in the directory: {left:?}"
    );
    let first = wal.read_next(&wal::topic_names(1)[0], false)?;
    ensure!(
        first.is_some_and(|e| ENTRY_SIZES.contains(&e.data.len())),
        "the first imported entry is not one that was written"
    );
    drop(wal);

    let mut f = Fields::new();
    let mb = payload as f64 / secs / 1e6;
    let disk_mb = disk / 1e6;
    f.insert("ops".into(), entries.to_string());
    f.insert("bytes".into(), payload.to_string());
    f.insert("payload_bytes".into(), payload.to_string());
    f.insert("secs".into(), format!("{secs:.4}"));
    f.insert("ops_per_s".into(), format!("{:.1}", entries as f64 / secs));
    f.insert("mb_per_s".into(), format!("{mb:.2}"));
    f.insert("disk_mb_per_s".into(), format!("{disk_mb:.2}"));
    f.insert("import_vs_disk".into(), format!("{:.3}", mb / disk_mb));
    f.insert("fill_secs".into(), format!("{fill_secs:.2}"));
    f.insert(
        "fill_mb_per_s".into(),
        format!("{:.2}", payload as f64 / fill_secs.max(1e-9) / 1e6),
    );
    Ok(f)
}

/// The table section of migrate rows.
pub fn table_section(out: &mut String, rows: &[&Fields]) {
    let _ = writeln!(
        out,
        "  {:<14} {:>9} {:>10} {:>9} {:>10} {:>8} {:>13}",
        "system", "MB/s", "entries/s", "import s", "disk MB/s", "x/disk", "0.2.0 write"
    );
    for r in rows {
        let system = r.get("system").map_or("", String::as_str);
        if let Some(e) = r.get("error") {
            let _ = writeln!(out, "  {system:<14} FAILED: {e}");
            continue;
        }
        let n = |k: &str| num(r, k).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  {system:<14} {:>9.1} {:>10} {:>9.2} {:>10.1} {:>7.2}x {:>8.1} MB/s",
            n("mb_per_s"),
            si(n("ops_per_s")),
            n("secs"),
            n("disk_mb_per_s"),
            n("import_vs_disk"),
            n("fill_mb_per_s"),
        );
    }
}

/// The goal of the migrate cell, if it ran.
pub fn goal(rows: &[Fields]) -> Vec<Goal> {
    let row = rows
        .iter()
        .find(|r| r.get("workload").is_some_and(|w| w == "migrate") && !r.contains_key("error"));
    let Some(row) = row else {
        return Vec::new();
    };
    let (mb, disk) = (num(row, "mb_per_s"), num(row, "disk_mb_per_s"));
    let ratio = num(row, "import_vs_disk");
    vec![Goal {
        text: format!("0.2.0 import >= {GOAL_RATIO}x buffered write bandwidth (+fdatasync)"),
        measured: format!(
            "import {:.0} MB/s vs disk {:.0} MB/s = {:.2}x",
            mb.unwrap_or(0.0),
            disk.unwrap_or(0.0),
            ratio.unwrap_or(0.0)
        ),
        met: ratio.map(|r| r >= GOAL_RATIO),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn table_and_goal_of_a_migrate_row() {
        let rows = vec![row(&[
            ("group", "import"),
            ("system", "walrus"),
            ("workload", "migrate"),
            ("mb_per_s", "250.5"),
            ("ops_per_s", "330000"),
            ("secs", "4.3"),
            ("disk_mb_per_s", "450"),
            ("import_vs_disk", "0.557"),
            ("fill_mb_per_s", "210"),
        ])];
        let table = crate::report::table(&rows);
        assert!(table.contains("x/disk"), "{table}");
        assert!(table.contains("0.56x"), "{table}");
        let goals = crate::report::goals(&rows);
        let goal = goals
            .iter()
            .find(|g| g.text.contains("0.2.0 import"))
            .unwrap();
        assert_eq!(goal.met, Some(true));
        let slow = vec![row(&[("workload", "migrate"), ("import_vs_disk", "0.3")])];
        assert_eq!(super::goal(&slow)[0].met, Some(false));
        assert!(super::goal(&[row(&[("workload", "reopen")])]).is_empty());
    }
}
