//! The goals, checked against the rows of one run.

use std::fmt::Write as _;

use crate::{
    plan::{RANGE_ENTRIES, thousands},
    report::{field, limits, num, ok, ratio},
    suite::si,
    wal,
    workload::Fields,
};

/// The walrus backends the read and reopen goals are listed for: (system, backend).
const BACKENDS: &[(&str, &str)] = &[("walrus", "fd"), ("walrus-mmap", "mmap")];
/// 1 GiB: the reopen goals compare the reopen after 4 GiB with the one after 1 GiB.
const GIB: u64 = 1 << 30;
/// Many small topics: at most this many bytes on disk (apparent and allocated) per payload
/// byte.
pub const TOPICS_DISK_MAX: f64 = 1.5;
/// Many small topics: at most this many file descriptors held by the log, a quarter of the
/// usual soft limit of 1,024, so that the application keeps most of it for its own files and
/// sockets.
pub const TOPICS_FDS_MAX: f64 = 256.0;

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
    let d4_row = pick(rows, "walrus", "append", Some("sync-each"), Some(4));
    let d4 = ops(d4_row);
    let p4 = best_peer(rows, "append", Some("sync-each"), Some(4), "ops_per_s");
    // The most four writers of four topics can get: four appends per fdatasync of four pages
    // in four blocks, at the rate the disk gives such fdatasyncs in this run.
    let bound4 = pick(rows, "disk", "fdatasync", None, None)
        .and_then(|r| num(r, "scattered4_ops_per_s"))
        .map(|rate| 4.0 * rate);
    out.push(goal(
        "durable appends T=4 >= 2x best peer (group commit)",
        d4,
        p4.map(|p| 2.0 * p.1),
        format!(
            "walrus {}/s vs {} {}/s = {}; bound 4 x scattered fdatasync = {}/s",
            si(d4.unwrap_or(0.0)),
            p4.map_or("-", |p| p.0),
            si(p4.map_or(0.0, |p| p.1)),
            ratio(d4, p4.map(|p| p.1)),
            si(bound4.unwrap_or(0.0)),
        ),
    ));
    // How many durable appends one fdatasync covers, from the instance's own counters.
    let per_fsync = d4_row.and_then(|r| Some(num(r, "synced_appends")? / num(r, "fsyncs")?));
    out.push(goal(
        "durable appends T=4: >= 3 appends per fsync",
        per_fsync,
        Some(3.0),
        format!("{:.2} appends per fsync", per_fsync.unwrap_or(0.0)),
    ));
    // Batches of 256, normal (fsync every 200 ms) and durable, at every T the run has.
    for (sync, what) in [("200ms", "batch appends"), ("sync-each", "durable batches")] {
        for t in [1, 2, 4] {
            let w = ops(pick(rows, "walrus", "batch", Some(sync), Some(t)));
            let r = ops(pick(rows, "raft-engine", "batch", Some(sync), Some(t)));
            let (a, b) = (si(w.unwrap_or(0.0)), si(r.unwrap_or(0.0)));
            let m = format!("walrus {a}/s vs raft-engine {b}/s = {}", ratio(w, r));
            out.push(goal(
                &format!("{what} T={t} >= 1.2x raft-engine"),
                w,
                r.map(|r| 1.2 * r),
                m,
            ));
        }
    }
    let b = pick(rows, "walrus", "batch", Some("200ms"), Some(1));
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
    out.extend(read_goals(rows));
    out.extend(position_goals(rows));
    out.extend(reopen_goals(rows));
    out.extend(many_topics_goals(rows));
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
        let _ = writeln!(out, "  [{mark}] {:<64} {}", g.text, g.measured);
    }
    out
}

/// The row of `system` and `workload` after `fill` bytes.
fn pick_fill<'a>(
    rows: &'a [Fields],
    system: &str,
    workload: &str,
    fill: u64,
) -> Option<&'a Fields> {
    rows.iter().find(|r| {
        ok(r)
            && field(r, "system") == system
            && field(r, "workload") == workload
            && num(r, "fill_bytes") == Some(fill as f64)
    })
}

/// `system`'s `workload` against raft-engine's `peer_workload`, entries/s and MB/s: met when
/// both are at least `factor` times raft-engine's.
fn versus_raft(
    rows: &[Fields],
    text: String,
    (system, workload): (&str, &str),
    peer_workload: &str,
    factor: f64,
) -> Goal {
    let w = pick(rows, system, workload, None, None);
    let r = pick(rows, "raft-engine", peer_workload, None, None);
    let get = |row: Option<&Fields>, k: &str| row.and_then(|row| num(row, k));
    let (wo, wm, ro, rm) = (
        get(w, "ops_per_s"),
        get(w, "mb_per_s"),
        get(r, "ops_per_s"),
        get(r, "mb_per_s"),
    );
    let worst = match (wo, wm, ro, rm) {
        (Some(wo), Some(wm), Some(ro), Some(rm)) if ro > 0.0 && rm > 0.0 => {
            Some((wo / ro).min(wm / rm))
        }
        _ => None,
    };
    Goal {
        text,
        measured: format!(
            "{system} {}/s {:.0} MB/s vs raft-engine {}/s {:.0} MB/s = {} / {}",
            si(wo.unwrap_or(0.0)),
            wm.unwrap_or(0.0),
            si(ro.unwrap_or(0.0)),
            rm.unwrap_or(0.0),
            ratio(wo, ro),
            ratio(wm, rm)
        ),
        met: worst.map(|x| x >= factor),
    }
}

/// Batch reads (the 0.2.0 API and the borrowed one) >= 1.2x raft-engine, `read_next` >= 1.0x
/// raft-engine, each for both walrus backends.
fn read_goals(rows: &[Fields]) -> Vec<Goal> {
    let mut out = Vec::new();
    for &(system, backend) in BACKENDS {
        out.push(versus_raft(
            rows,
            format!("batch reads ({backend}) >= 1.2x raft-engine, entries/s and MB/s"),
            (system, "read-batch"),
            "read-batch",
            1.2,
        ));
        out.push(versus_raft(
            rows,
            format!("batch_read_with ({backend}) >= 1.2x raft-engine batch reads"),
            (system, "read-borrowed"),
            "read-batch",
            1.2,
        ));
        out.push(versus_raft(
            rows,
            format!("read_next ({backend}) >= 1.0x raft-engine"),
            (system, "read-next"),
            "read-next",
            1.0,
        ));
    }
    out
}

/// Random `read_at` >= 1.0x raft-engine's `get_entry`, and `read_range` of
/// [`RANGE_ENTRIES`] entries >= 1.0x its `fetch_entries_to`, for both walrus backends.
pub fn position_goals(rows: &[Fields]) -> Vec<Goal> {
    let mut out = Vec::new();
    for &(system, backend) in BACKENDS {
        out.push(versus_raft(
            rows,
            format!("random read_at ({backend}) >= 1.0x raft-engine get_entry"),
            (system, "read-at"),
            "read-at",
            1.0,
        ));
        out.push(versus_raft(
            rows,
            format!("read_range({RANGE_ENTRIES}) ({backend}) >= 1.0x raft-engine fetch_entries_to"),
            (system, "read-range"),
            "read-range",
            1.0,
        ));
    }
    out
}

/// A goal that a time is at most `limit` times another.
fn at_most(
    text: String,
    value: Option<f64>,
    base: Option<f64>,
    limit: f64,
    measured: String,
) -> Goal {
    Goal {
        text,
        measured,
        met: match (value, base) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b <= limit),
            _ => None,
        },
    }
}

/// A goal that a value is at most `limit` (both, for a pair: see [`many_topics_goals`]).
fn ceiling(text: String, values: &[Option<f64>], limit: f64, measured: String) -> Goal {
    Goal {
        text,
        measured,
        met: values
            .iter()
            .try_fold(true, |met, v| v.map(|v| met && v <= limit)),
    }
}

/// After many small topics (the suite's 10,000 x 16 entries of 1 KiB), for both walrus
/// backends: disk per payload byte <= [`TOPICS_DISK_MAX`], apparent and allocated, and at
/// most [`TOPICS_FDS_MAX`] file descriptors held open by the log.
pub fn many_topics_goals(rows: &[Fields]) -> Vec<Goal> {
    let mut out = Vec::new();
    for &(system, backend) in BACKENDS {
        let row = pick(rows, system, "many-topics", None, None).filter(|r| !r.contains_key("na"));
        let get = |k: &str| row.and_then(|r| num(r, k));
        let topics = row.map_or("-".into(), |r| {
            thousands(num(r, "topics").unwrap_or(0.0) as usize)
        });
        let (apparent, allocated) = (get("apparent_per_payload"), get("disk_per_payload"));
        out.push(ceiling(
            format!(
                "many topics ({backend}): disk <= {TOPICS_DISK_MAX}x payload, apparent and \
                 allocated"
            ),
            &[apparent, allocated],
            TOPICS_DISK_MAX,
            format!(
                "{system}, {topics} topics: {:.2}x apparent, {:.2}x allocated of {:.0} MiB",
                apparent.unwrap_or(0.0),
                allocated.unwrap_or(0.0),
                get("payload_bytes").unwrap_or(0.0) / (1 << 20) as f64
            ),
        ));
        let fds = get("open_fds");
        out.push(ceiling(
            format!("many topics ({backend}): <= {TOPICS_FDS_MAX} fds open (soft limit 1,024)"),
            &[fds],
            TOPICS_FDS_MAX,
            format!(
                "{system}, {topics} topics: {:.0} fds ({:.0} in the process)",
                fds.unwrap_or(0.0),
                get("fds_after").unwrap_or(0.0)
            ),
        ));
    }
    out
}

/// Reopen after 4 GiB <= 1.5x after 1 GiB, after 1 GiB <= raft-engine, and >= 10x faster than
/// walrus-rust 0.2.0.
fn reopen_goals(rows: &[Fields]) -> Vec<Goal> {
    let ms = |system: &str, fill: u64| {
        pick_fill(rows, system, "reopen", fill).and_then(|r| num(r, "reopen_ms"))
    };
    let mut out = Vec::new();
    let raft = ms("raft-engine", GIB);
    for &(system, backend) in BACKENDS {
        let (one, four) = (ms(system, GIB), ms(system, 4 * GIB));
        out.push(at_most(
            format!("reopen after 4 GiB ({backend}) <= 1.5x reopen after 1 GiB"),
            four,
            one,
            1.5,
            format!(
                "{system} {:.1} ms vs {:.1} ms = {}",
                four.unwrap_or(0.0),
                one.unwrap_or(0.0),
                ratio(four, one)
            ),
        ));
        out.push(at_most(
            format!("reopen 1 GiB / 100 topics ({backend}) <= raft-engine's time"),
            one,
            raft,
            1.0,
            format!(
                "{system} {:.1} ms vs raft-engine {:.1} ms = {}",
                one.unwrap_or(0.0),
                raft.unwrap_or(0.0),
                ratio(one, raft)
            ),
        ));
    }
    let (ow, oo) = (ms("walrus", GIB), ms("walrus-0.2.0", GIB));
    out.push(goal(
        "reopen 1 GiB >= 10x faster than walrus-rust 0.2.0",
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

    fn reopen(system: &str, fill: u64, ms: &str) -> Fields {
        row(&[
            ("group", "reopen"),
            ("system", system),
            ("workload", "reopen"),
            ("fill_bytes", &fill.to_string()),
            ("reopen_ms", ms),
        ])
    }

    fn read(system: &str, workload: &str, ops: &str, mb: &str) -> Fields {
        row(&[
            ("group", workload),
            ("system", system),
            ("workload", workload),
            ("ops_per_s", ops),
            ("mb_per_s", mb),
        ])
    }

    #[test]
    fn read_and_reopen_goals() {
        let rows = vec![
            read("walrus", "read-batch", "1300", "13"),
            read("walrus", "read-borrowed", "1100", "11"),
            read("walrus-mmap", "read-batch", "1300", "11"),
            read("raft-engine", "read-batch", "1000", "10"),
            read("walrus", "read-next", "1000", "10"),
            read("raft-engine", "read-next", "1000", "10"),
            reopen("walrus", GIB, "10"),
            reopen("walrus", 4 * GIB, "14"),
            reopen("walrus-mmap", GIB, "10"),
            reopen("walrus-mmap", 4 * GIB, "16"),
            reopen("raft-engine", GIB, "12"),
            reopen("walrus-0.2.0", GIB, "99"),
        ];
        let g = goals(&rows);
        let met = |text: &str| g.iter().find(|g| g.text.starts_with(text)).unwrap().met;
        assert_eq!(met("batch reads (fd)"), Some(true));
        assert_eq!(met("batch_read_with (fd)"), Some(false), "1.1x < 1.2x");
        assert_eq!(met("batch reads (mmap)"), Some(false), "MB/s only 1.1x");
        assert_eq!(met("batch_read_with (mmap)"), None, "not run");
        assert_eq!(met("read_next (fd)"), Some(true));
        assert_eq!(met("reopen after 4 GiB (fd)"), Some(true));
        assert_eq!(met("reopen after 4 GiB (mmap)"), Some(false), "1.6x");
        assert_eq!(met("reopen 1 GiB / 100 topics (fd)"), Some(true));
        assert_eq!(met("reopen 1 GiB >= 10x"), Some(false), "9.9x");
        assert_eq!(met("random read_at (fd)"), None, "not run");
        let table = crate::report::table(&rows);
        assert!(table.contains("walrus borrowed"), "{table}");
        assert!(table.contains("4GiB/1GiB"), "{table}");
        assert!(table.contains("1.40x"), "{table}");
    }

    #[test]
    fn position_goals_use_the_run() {
        let mut tail = read("walrus", "tail-follow", "1000", "0");
        tail.insert("group".into(), "tail".into());
        tail.insert("p50_us".into(), "12.5".into());
        tail.insert("idle_cpu_us".into(), "40".into());
        tail.insert("idle_wait_ms".into(), "2000.1".into());
        let mut na = read("okaywal", "read-at", "0", "0");
        na.insert("na".into(), "no index".into());
        let rows = vec![
            read("walrus", "read-at", "300000", "225"),
            read("walrus-mmap", "read-at", "200000", "150"),
            read("raft-engine", "read-at", "250000", "187.5"),
            na,
            read("walrus", "read-range", "900000", "675"),
            read("raft-engine", "read-range", "1000000", "750"),
            tail,
        ];
        let g = goals(&rows);
        let find = |text: &str| g.iter().find(|g| g.text.starts_with(text)).unwrap();
        assert_eq!(find("random read_at (fd)").met, Some(true));
        assert!(find("random read_at (fd)").measured.contains("1.20x"));
        assert_eq!(find("random read_at (mmap)").met, Some(false), "0.8x");
        assert_eq!(find("read_range(1000) (fd)").met, Some(false), "0.9x");
        assert_eq!(find("read_range(1000) (mmap)").met, None, "not run");
        let table = crate::report::table(&rows);
        assert!(table.contains("n/a: no index"), "{table}");
        assert!(table.contains("40 us in 2000 ms"), "{table}");
        assert!(table.contains("12.5"), "{table}");
    }

    #[test]
    fn many_topics_goals_and_table() {
        let topics = |system: &str, apparent: &str, allocated: &str, fds: &str| {
            row(&[
                ("group", "many small topics"),
                ("system", system),
                ("workload", "many-topics"),
                ("topics", "10000"),
                ("ops_per_s", "250000"),
                ("p99_us", "9.5"),
                ("payload_bytes", "163840000"),
                ("apparent_per_payload", apparent),
                ("disk_per_payload", allocated),
                ("disk_bytes", "167772160"),
                ("open_fds", fds),
                ("fds_after", "12"),
            ])
        };
        let mut na = topics("walrus-0.2.0", "0", "0", "0");
        na.insert("na".into(), "10 MiB per topic".into());
        let mut raft = topics("raft-engine", "1.1", "1.2", "3");
        raft.insert("ops_per_s".into(), "125000".into());
        let rows = vec![
            topics("walrus", "1.02", "1.5", "7"),
            topics("walrus-mmap", "1.02", "1.6", "300"),
            raft,
            na,
        ];
        let g = many_topics_goals(&rows);
        let find = |text: &str| g.iter().find(|g| g.text.starts_with(text)).unwrap();
        assert_eq!(
            find("many topics (fd): disk").met,
            Some(true),
            "1.5 is the limit"
        );
        assert!(
            find("many topics (fd): disk")
                .measured
                .contains("10,000 topics: 1.02x apparent, 1.50x allocated of 156 MiB")
        );
        assert_eq!(find("many topics (fd): <= 256 fds").met, Some(true));
        assert_eq!(
            find("many topics (mmap): disk").met,
            Some(false),
            "allocated"
        );
        assert_eq!(find("many topics (mmap): <= 256 fds").met, Some(false));
        assert!(
            goals(&rows)
                .iter()
                .any(|g| g.text.starts_with("many topics (fd)"))
        );
        assert_eq!(many_topics_goals(&rows[2..])[0].met, None, "not run");
        let table = crate::report::table(&rows);
        assert!(table.contains("allocated/payload"), "{table}");
        assert!(table.contains("n/a: 10 MiB per topic"), "{table}");
        assert!(table.contains("7 (12)"), "{table}");
        assert!(
            table.contains("2.00x"),
            "walrus/raft-engine appends: {table}"
        );
    }
}
