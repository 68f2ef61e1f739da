//! Results as CSV, as a table with ratios (walrus to each peer, and to the disk's limits), and
//! the goals checked against one run.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};

use crate::{suite::si, wal, workload::Fields};

/// CSV columns, in order.
pub const COLUMNS: &[&str] = &[
    "group",
    "system",
    "workload",
    "threads",
    "sync",
    "batch",
    "fill_bytes",
    "topics",
    "ops",
    "bytes",
    "secs",
    "ops_per_s",
    "mb_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "max_us",
    "reopen_ms",
    "disk_bytes",
    "payload_bytes",
    "disk_per_payload",
    "write_ops_per_s",
    "append_ops_per_s",
    "overwrite_ops_per_s",
    "fsyncs",
    "files",
    "disk_mb_per_s",
    "import_vs_disk",
    "fill_secs",
    "fill_mb_per_s",
    "cdf",
    "error",
];

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(v: &str) -> String {
    let v = v.replace('\n', " ");
    if v.contains([',', '"']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Splits one CSV line written by [`write_csv`].
fn csv_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Writes rows as CSV with the [`COLUMNS`] header.
pub fn write_csv(path: &Path, rows: &[Fields]) -> Result<()> {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = COLUMNS
            .iter()
            .map(|c| row.get(*c).map_or(String::new(), |v| csv_field(v)))
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("write {}", path.display()))
}

/// Reads rows written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<Fields>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read {} (run the benchmark first)", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|l| {
            header
                .iter()
                .zip(csv_split(l))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| ((*k).to_owned(), v))
                .collect()
        })
        .collect())
}

/// A numeric field.
pub fn num(row: &Fields, key: &str) -> Option<f64> {
    row.get(key)?.parse().ok()
}

fn field<'a>(row: &'a Fields, key: &str) -> &'a str {
    row.get(key).map_or("", String::as_str)
}

fn ok(row: &Fields) -> bool {
    !row.contains_key("error")
}

/// The disk's limits found in `rows`: (fdatasync per second, buffered write MB/s).
pub fn limits(rows: &[Fields]) -> (Option<f64>, Option<f64>) {
    let find = |w: &str, k: &str| {
        rows.iter()
            .find(|r| field(r, "system") == "disk" && field(r, "workload") == w && ok(r))
            .and_then(|r| num(r, k))
    };
    (
        find("fdatasync", "ops_per_s"),
        find("seq-write", "mb_per_s"),
    )
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The table: one section per group, walrus (the default backend) against every row.
pub fn table(rows: &[Fields]) -> String {
    let (fsync_rate, seq_mb) = limits(rows);
    let mut groups: Vec<&str> = Vec::new();
    for r in rows {
        let g = field(r, "group");
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut out = String::new();
    for g in groups {
        let section: Vec<&Fields> = rows.iter().filter(|r| field(r, "group") == g).collect();
        let _ = writeln!(out, "\n{g}");
        if section.iter().any(|r| field(r, "workload") == "migrate") {
            crate::migrate::table_section(&mut out, &section);
            continue;
        }
        // The default backend if it ran, else whichever walrus backend did (BACKEND=mmap).
        let reference = section
            .iter()
            .find(|r| field(r, "system") == "walrus" && ok(r))
            .or_else(|| {
                section
                    .iter()
                    .find(|r| wal::is_walrus(field(r, "system")) && ok(r))
            })
            .copied();
        if section.iter().any(|r| r.contains_key("reopen_ms")) {
            let _ = writeln!(
                out,
                "  {:<14} {:>10} {:>13} {:>10} {:>16}",
                "system", "reopen ms", "disk/payload", "disk MiB", "this/walrus time"
            );
            for r in &section {
                if !ok(r) {
                    let _ = writeln!(
                        out,
                        "  {:<14} FAILED: {}",
                        field(r, "system"),
                        field(r, "error")
                    );
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {:<14} {:>10.1} {:>13.2} {:>10.0} {:>16}",
                    field(r, "system"),
                    num(r, "reopen_ms").unwrap_or(0.0),
                    num(r, "disk_per_payload").unwrap_or(0.0),
                    num(r, "disk_bytes").unwrap_or(0.0) / (1 << 20) as f64,
                    ratio(
                        num(r, "reopen_ms"),
                        reference.and_then(|w| num(w, "reopen_ms"))
                    ),
                );
            }
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "system", "ops/s", "MB/s", "p50 us", "p99 us", "walrus/x", "x/limit"
        );
        for r in &section {
            if !ok(r) {
                let _ = writeln!(
                    out,
                    "  {:<14} FAILED: {}",
                    field(r, "system"),
                    field(r, "error")
                );
                continue;
            }
            let workload = field(r, "workload");
            let durable = field(r, "sync") == "sync-each";
            // The limit that bounds this row: fdatasyncs for durable single appends, the
            // buffered write bandwidth for everything else that writes.
            let limit = match workload {
                "append" if durable => ratio(num(r, "ops_per_s"), fsync_rate),
                "append" | "batch" => ratio(num(r, "mb_per_s"), seq_mb),
                _ => "-".into(),
            };
            let system = match (field(r, "system"), workload) {
                ("disk", w) => w.to_owned(),
                (s, _) => s.to_owned(),
            };
            let vs = match reference {
                Some(w) if field(r, "system") != "disk" => {
                    ratio(num(w, "ops_per_s"), num(r, "ops_per_s"))
                }
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<14} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>9}",
                system,
                si(num(r, "ops_per_s").unwrap_or(0.0)),
                num(r, "mb_per_s").unwrap_or(0.0),
                num(r, "p50_us").unwrap_or(0.0),
                num(r, "p99_us").unwrap_or(0.0),
                vs,
                limit,
            );
        }
    }
    out
}

/// One goal of the issue, checked.
#[derive(Debug, Clone)]
pub struct Goal {
    /// What the issue asks.
    pub text: String,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measurable in this run.
    pub met: Option<bool>,
}

fn pick<'a>(
    rows: &'a [Fields],
    system: &str,
    workload: &str,
    sync: Option<&str>,
    threads: Option<usize>,
) -> Option<&'a Fields> {
    rows.iter().find(|r| {
        ok(r)
            && field(r, "system") == system
            && field(r, "workload") == workload
            && sync.is_none_or(|s| field(r, "sync") == s)
            && threads.is_none_or(|t| field(r, "threads") == t.to_string())
    })
}

fn best_peer<'a>(
    rows: &'a [Fields],
    workload: &str,
    sync: Option<&str>,
    threads: Option<usize>,
    key: &str,
) -> Option<(&'a str, f64)> {
    rows.iter()
        .filter(|r| {
            ok(r)
                && field(r, "system") != "disk"
                && !wal::is_walrus(field(r, "system"))
                && field(r, "workload") == workload
                && sync.is_none_or(|s| field(r, "sync") == s)
                && threads.is_none_or(|t| field(r, "threads") == t.to_string())
        })
        .filter_map(|r| Some((field(r, "system"), num(r, key)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn goal(text: &str, value: Option<f64>, target: Option<f64>, measured: String) -> Goal {
    Goal {
        text: text.to_owned(),
        measured,
        met: match (value, target) {
            (Some(v), Some(t)) => Some(v >= t),
            _ => None,
        },
    }
}

/// The goals, from the main suite's rows.
pub fn goals(rows: &[Fields]) -> Vec<Goal> {
    let (fsync_rate, seq_mb) = limits(rows);
    let ops = |r: Option<&Fields>| r.and_then(|r| num(r, "ops_per_s"));
    let mut out = Vec::new();
    let mut thread_counts: Vec<usize> = rows
        .iter()
        .filter(|r| field(r, "workload") == "append")
        .filter_map(|r| field(r, "threads").parse().ok())
        .collect();
    thread_counts.sort_unstable();
    thread_counts.dedup();
    for &t in &thread_counts {
        let w = ops(pick(rows, "walrus", "append", Some("200ms"), Some(t)));
        let peer = best_peer(rows, "append", Some("200ms"), Some(t), "ops_per_s");
        out.push(goal(
            &format!("single appends (200 ms fsync) T={t} >= 2x best peer"),
            w,
            peer.map(|p| 2.0 * p.1),
            format!(
                "walrus {} vs {} {} = {}",
                si(w.unwrap_or(0.0)),
                peer.map_or("-", |p| p.0),
                si(peer.map_or(0.0, |p| p.1)),
                ratio(w, peer.map(|p| p.1))
            ),
        ));
    }
    let mmap = ops(pick(rows, "walrus-mmap", "append", Some("200ms"), Some(1)));
    out.push(goal(
        "mmap backend >= 1M appends/s at T=1",
        mmap,
        Some(1e6),
        format!("walrus-mmap {}/s", si(mmap.unwrap_or(0.0))),
    ));
    let d1 = ops(pick(rows, "walrus", "append", Some("sync-each"), Some(1)));
    out.push(goal(
        "durable appends T=1 >= 0.9x raw fdatasync rate",
        d1,
        fsync_rate.map(|f| 0.9 * f),
        format!(
            "walrus {}/s vs fdatasync {}/s = {}",
            si(d1.unwrap_or(0.0)),
            si(fsync_rate.unwrap_or(0.0)),
            ratio(d1, fsync_rate)
        ),
    ));
    let d4 = ops(pick(rows, "walrus", "append", Some("sync-each"), Some(4)));
    let p4 = best_peer(rows, "append", Some("sync-each"), Some(4), "ops_per_s");
    out.push(goal(
        "durable appends T=4 >= 3x best peer (group commit)",
        d4,
        p4.map(|p| 3.0 * p.1),
        format!(
            "walrus {}/s vs {} {}/s = {}",
            si(d4.unwrap_or(0.0)),
            p4.map_or("-", |p| p.0),
            si(p4.map_or(0.0, |p| p.1)),
            ratio(d4, p4.map(|p| p.1))
        ),
    ));
    let b = pick(rows, "walrus", "batch", None, Some(1));
    let rb = pick(rows, "raft-engine", "batch", None, Some(1));
    out.push(goal(
        "batch appends >= 1.2x raft-engine",
        ops(b),
        ops(rb).map(|r| 1.2 * r),
        format!(
            "walrus {}/s vs raft-engine {}/s = {}",
            si(ops(b).unwrap_or(0.0)),
            si(ops(rb).unwrap_or(0.0)),
            ratio(ops(b), ops(rb))
        ),
    ));
    let bmb = b.and_then(|r| num(r, "mb_per_s"));
    out.push(goal(
        "batch appends >= 0.9x buffered sequential write bandwidth",
        bmb,
        seq_mb.map(|s| 0.9 * s),
        format!(
            "walrus {:.0} MB/s vs disk {:.0} MB/s = {}",
            bmb.unwrap_or(0.0),
            seq_mb.unwrap_or(0.0),
            ratio(bmb, seq_mb)
        ),
    ));
    let rw = pick(rows, "walrus", "read-batch", None, None).and_then(|r| num(r, "mb_per_s"));
    let rr = pick(rows, "raft-engine", "read-batch", None, None).and_then(|r| num(r, "mb_per_s"));
    out.push(goal(
        "batch reads >= raft-engine",
        rw,
        rr,
        format!(
            "walrus {:.0} MB/s vs raft-engine {:.0} MB/s = {}",
            rw.unwrap_or(0.0),
            rr.unwrap_or(0.0),
            ratio(rw, rr)
        ),
    ));
    let ow = pick(rows, "walrus", "reopen", None, None).and_then(|r| num(r, "reopen_ms"));
    let oo = pick(rows, "walrus-0.2.0", "reopen", None, None).and_then(|r| num(r, "reopen_ms"));
    out.push(goal(
        "reopen >= 10x faster than walrus-rust 0.2.0",
        match (ow, oo) {
            (Some(w), Some(o)) if w > 0.0 => Some(o / w),
            _ => None,
        },
        Some(10.0),
        format!(
            "walrus {:.1} ms vs 0.2.0 {:.1} ms = {}",
            ow.unwrap_or(0.0),
            oo.unwrap_or(0.0),
            ratio(oo, ow)
        ),
    ));
    out.extend(crate::migrate::goal(rows));
    out
}

/// The goals as text.
pub fn goals_text(goals: &[Goal]) -> String {
    let mut out = String::from("\nGoals (one run)\n");
    for g in goals {
        let mark = match g.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        let _ = writeln!(out, "  [{mark}] {:<58} {}", g.text, g.measured);
    }
    out
}

/// Notes on how each system present was configured.
pub fn notes(rows: &[Fields]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for r in rows {
        let s = field(r, "system");
        if s != "disk" && !seen.contains(&s) {
            seen.push(s);
        }
    }
    let mut out = String::from("\nSystems\n");
    for s in seen {
        let _ = writeln!(out, "  {s:<14} {}", wal::note(s));
    }
    out
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
    fn csv_round_trips_and_goals_compute() {
        let rows = vec![
            row(&[
                ("group", "disk"),
                ("system", "disk"),
                ("workload", "fdatasync"),
                ("ops_per_s", "1000"),
            ]),
            row(&[
                ("group", "d1"),
                ("system", "walrus"),
                ("workload", "append"),
                ("sync", "sync-each"),
                ("threads", "1"),
                ("ops_per_s", "950"),
                ("cdf", "0.5:10|1:20"),
            ]),
            row(&[
                ("group", "d1"),
                ("system", "okaywal"),
                ("workload", "append"),
                ("sync", "sync-each"),
                ("threads", "1"),
                ("error", "boom, bang"),
            ]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        write_csv(&path, &rows).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1]["cdf"], "0.5:10|1:20");
        assert_eq!(back[2]["error"], "boom, bang");
        assert_eq!(csv_split(&csv_field("a \"b\", c")), ["a \"b\", c"]);
        let g = goals(&back);
        let durable = g
            .iter()
            .find(|g| g.text.starts_with("durable appends T=1"))
            .unwrap();
        assert_eq!(durable.met, Some(true));
        assert!(table(&back).contains("FAILED"));
    }
}
