//! Results as CSV, as a table with ratios (walrus to each peer, and to the disk's limits), and
//! the goals checked against one run.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};

use crate::{suite::si, wal, workload::Fields};

pub use crate::goals::{Goal, goals, goals_text};

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
    "open_ms",
    "first_read_ms",
    "disk_bytes",
    "payload_bytes",
    "disk_per_payload",
    "apparent_bytes",
    "apparent_per_payload",
    "fds_before",
    "fds_after",
    "open_fds",
    "flush_ms",
    "write_ops_per_s",
    "append_ops_per_s",
    "overwrite_ops_per_s",
    "scattered4_ops_per_s",
    "fsyncs",
    "synced_appends",
    "files",
    "disk_mb_per_s",
    "import_vs_disk",
    "fill_secs",
    "fill_mb_per_s",
    "fill_entries",
    "early_wakes",
    "call_p50_us",
    "call_p99_us",
    "idle_cpu_us",
    "idle_wait_ms",
    "na",
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

pub(crate) fn field<'a>(row: &'a Fields, key: &str) -> &'a str {
    row.get(key).map_or("", String::as_str)
}

pub(crate) fn ok(row: &Fields) -> bool {
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

pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// A row's name in the table: the system, the disk's workload, or `<system> borrowed` for
/// Walrus's `batch_read_with` rows.
fn label(r: &Fields) -> String {
    match (field(r, "system"), field(r, "workload")) {
        ("disk", w) => w.to_owned(),
        (s, "read-borrowed") => format!("{s} borrowed"),
        (s, _) => s.to_owned(),
    }
}

/// Width of the table's first column.
const NAME: usize = 20;

/// Writes the line of a failed row, or of a row whose system lacks what the cell measures
/// (`na`), and says whether it did.
fn failed(out: &mut String, r: &Fields) -> bool {
    if !ok(r) {
        let _ = writeln!(out, "  {:<NAME$} FAILED: {}", label(r), field(r, "error"));
    } else if r.contains_key("na") {
        let _ = writeln!(out, "  {:<NAME$} n/a: {}", label(r), field(r, "na"));
    }
    !ok(r) || r.contains_key("na")
}

/// The table: one section per group, walrus (the default backend) against every row, then
/// the reopen times side by side when several data sets were reopened.
pub fn table(rows: &[Fields]) -> String {
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
        // The default backend if it ran, else whichever walrus backend did (BACKEND=mmap);
        // never a borrowed-read row, which is compared with the batch reads.
        let reference = section
            .iter()
            .filter(|r| ok(r) && field(r, "workload") != "read-borrowed")
            .find(|r| field(r, "system") == "walrus")
            .or_else(|| {
                section
                    .iter()
                    .filter(|r| ok(r) && field(r, "workload") != "read-borrowed")
                    .find(|r| wal::is_walrus(field(r, "system")))
            })
            .copied();
        if section.iter().any(|r| r.contains_key("reopen_ms")) {
            reopen_section(&mut out, &section, reference);
        } else if section
            .iter()
            .any(|r| field(r, "workload") == "many-topics")
        {
            topics_section(&mut out, &section, reference);
        } else if section
            .iter()
            .any(|r| field(r, "workload") == "tail-follow")
        {
            tail_section(&mut out, &section);
        } else {
            rate_section(&mut out, &section, reference, limits(rows));
        }
    }
    reopen_scaling(&mut out, rows);
    out
}

fn reopen_section(out: &mut String, section: &[&Fields], reference: Option<&Fields>) {
    let _ = writeln!(
        out,
        "  {:<NAME$} {:>10} {:>9} {:>11} {:>13} {:>9} {:>16}",
        "system",
        "reopen ms",
        "open ms",
        "1st reads",
        "disk/payload",
        "disk MiB",
        "this/walrus time"
    );
    for r in section {
        if failed(out, r) {
            continue;
        }
        let n = |k: &str| num(r, k).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  {:<NAME$} {:>10.1} {:>9.1} {:>8.1} ms {:>13.2} {:>9.0} {:>16}",
            label(r),
            n("reopen_ms"),
            n("open_ms"),
            n("first_read_ms"),
            n("disk_per_payload"),
            n("disk_bytes") / (1 << 20) as f64,
            ratio(
                num(r, "reopen_ms"),
                reference.and_then(|w| num(w, "reopen_ms"))
            ),
        );
    }
}

/// The many-topics cells: append rate, disk per payload byte (apparent: file lengths,
/// allocated: blocks) and the file descriptors the system holds open (the process's total in
/// parentheses).
fn topics_section(out: &mut String, section: &[&Fields], reference: Option<&Fields>) {
    let _ = writeln!(
        out,
        "  {:<NAME$} {:>9} {:>8} {:>8} {:>16} {:>17} {:>9} {:>14} {:>9}",
        "system",
        "appends/s",
        "p99 us",
        "flush ms",
        "apparent/payload",
        "allocated/payload",
        "disk MiB",
        "open fds (all)",
        "walrus/x"
    );
    for r in section {
        if failed(out, r) {
            continue;
        }
        let n = |k: &str| num(r, k).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  {:<NAME$} {:>9} {:>8.1} {:>8.1} {:>16.3} {:>17.3} {:>9.1} {:>14} {:>9}",
            label(r),
            si(n("ops_per_s")),
            n("p99_us"),
            n("flush_ms"),
            n("apparent_per_payload"),
            n("disk_per_payload"),
            n("disk_bytes") / (1 << 20) as f64,
            format!("{:.0} ({:.0})", n("open_fds"), n("fds_after")),
            ratio(
                reference.and_then(|w| num(w, "ops_per_s")),
                num(r, "ops_per_s")
            ),
        );
    }
}

/// Wake-up latency of the followers in `wait_for` (from `append`'s return, and from its
/// call) and the CPU time of the idle waiter.
fn tail_section(out: &mut String, section: &[&Fields]) {
    let _ = writeln!(
        out,
        "  {:<NAME$} {:>8} {:>8} {:>8} {:>9} {:>8} {:>6} {:>17} {:>19}",
        "system",
        "wake-ups",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "early",
        "from call p50/p99",
        "idle waiter CPU"
    );
    for r in section {
        if failed(out, r) {
            continue;
        }
        let n = |k: &str| num(r, k).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  {:<NAME$} {:>8.0} {:>8.1} {:>8.1} {:>9.1} {:>8.1} {:>6.0} {:>17} {:>19}",
            label(r),
            n("ops"),
            n("p50_us"),
            n("p99_us"),
            n("p999_us"),
            n("max_us"),
            n("early_wakes"),
            format!("{:.1} / {:.1}", n("call_p50_us"), n("call_p99_us")),
            format!("{:.0} us in {:.0} ms", n("idle_cpu_us"), n("idle_wait_ms")),
        );
    }
}

fn rate_section(
    out: &mut String,
    section: &[&Fields],
    reference: Option<&Fields>,
    (fsync_rate, seq_mb): (Option<f64>, Option<f64>),
) {
    let _ = writeln!(
        out,
        "  {:<NAME$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "system", "ops/s", "MB/s", "p50 us", "p99 us", "walrus/x", "x/limit"
    );
    for r in section {
        if failed(out, r) {
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
        let vs = match reference {
            Some(w) if field(r, "system") != "disk" => {
                ratio(num(w, "ops_per_s"), num(r, "ops_per_s"))
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "  {:<NAME$} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>9}",
            label(r),
            si(num(r, "ops_per_s").unwrap_or(0.0)),
            num(r, "mb_per_s").unwrap_or(0.0),
            num(r, "p50_us").unwrap_or(0.0),
            num(r, "p99_us").unwrap_or(0.0),
            vs,
            limit,
        );
    }
}

/// Reopen ms of each system after each data set, and the growth from the smallest to the
/// largest, when more than one data set was reopened.
fn reopen_scaling(out: &mut String, rows: &[Fields]) {
    let reopen: Vec<&Fields> = rows
        .iter()
        .filter(|r| field(r, "workload") == "reopen" && ok(r))
        .collect();
    let mut sizes: Vec<u64> = reopen
        .iter()
        .filter_map(|r| field(r, "fill_bytes").parse().ok())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 {
        return;
    }
    let (last, smaller) = sizes.split_last().unwrap_or((&0, &[]));
    let size = crate::plan::size;
    let _ = writeln!(
        out,
        "\nreopen ms by data written (open + first read of each topic)"
    );
    let _ = write!(out, "  {:<NAME$}", "system");
    for &b in &sizes {
        let _ = write!(out, " {:>10}", size(b));
    }
    for &b in smaller.iter().rev() {
        let _ = write!(
            out,
            " {:>12}",
            format!("{}/{}", size(*last), size(b)).replace(' ', "")
        );
    }
    let _ = writeln!(out);
    let mut systems: Vec<&str> = Vec::new();
    for r in &reopen {
        if !systems.contains(&field(r, "system")) {
            systems.push(field(r, "system"));
        }
    }
    for s in systems {
        let at = |b: u64| {
            reopen
                .iter()
                .find(|r| field(r, "system") == s && field(r, "fill_bytes") == b.to_string())
                .and_then(|r| num(r, "reopen_ms"))
        };
        let _ = write!(out, "  {s:<NAME$}");
        for &b in &sizes {
            let _ = match at(b) {
                Some(ms) => write!(out, " {ms:>10.1}"),
                None => write!(out, " {:>10}", "-"),
            };
        }
        for &b in smaller.iter().rev() {
            let _ = write!(out, " {:>12}", ratio(at(*last), at(b)));
        }
        let _ = writeln!(out);
    }
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
        let _ = writeln!(out, "  {s:<NAME$} {}", wal::note(s));
    }
    if rows.iter().any(|r| field(r, "workload") == "read-borrowed") {
        let _ = writeln!(
            out,
            "  {:<NAME$} Walrus::batch_read_with: each payload borrowed in place, no allocation \
             or copy per entry (raft-engine's fetch_entries_to is its batch-read row)",
            "<walrus> borrowed"
        );
    }
    if rows
        .iter()
        .any(|r| matches!(field(r, "workload"), "read-at" | "read-range"))
    {
        let _ = writeln!(
            out,
            "  {:<NAME$} one topic filled with batches, then one reader at uniform random \
             positions (the same seeded ones in every system), warm page cache; walrus: \
             TopicLog::read_at / read_range, raft-engine: get_entry / fetch_entries_to (both \
             move no cursor); n/a: no read by entry index",
            "by position"
        );
    }
    if rows.iter().any(|r| field(r, "workload") == "tail-follow") {
        let _ = writeln!(
            out,
            "  {:<NAME$} wake-up = the follower's return from TopicLog::wait_for minus the \
             writer's clock right after append returned (early: woke before that, counted as \
             0; 'from call': minus the clock right before append was called); idle waiter \
             CPU = /proc/thread-self/schedstat of a thread in wait_for with no writer",
            "tail follow"
        );
    }
    if rows.iter().any(|r| field(r, "workload") == "many-topics") {
        let _ = writeln!(
            out,
            "  {:<NAME$} measured after the final flush, the system still open: apparent = sum \
             of st_size, allocated = sum of st_blocks x 512 over every file in its directory, \
             each over the payload; open fds = entries of /proc/self/fd after, minus before the \
             open (all: after); appends/s excludes the flush",
            "many topics"
        );
    }
    if rows.iter().any(|r| field(r, "workload") == "reopen") {
        let _ = writeln!(
            out,
            "  {:<NAME$} written with a 200 ms fsync and closed (Walrus seals its active blocks \
             at a clean close); timed: the open and one read_next of every topic",
            "reopen"
        );
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
