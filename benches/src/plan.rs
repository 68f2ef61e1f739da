//! What `harness suite` runs (the workloads, quick or `--full`) and the plots it draws.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;

use crate::{
    migrate, plot,
    suite::Cell,
    wal::{self, SyncMode},
    workload::{
        Fields, Workload,
        positions::{IDLE_WAIT, READ_AT_OPS, READ_RANGE_OPS},
        topics::{ENTRY_BYTES, payload_bytes},
    },
};

/// Data read back by the read cells, in the quick run as in `--full`: what users see (ratios
/// at 128 MiB were not those at 1 GiB).
pub const READ_BYTES: u64 = 1 << 30;
/// Topics of the read cells (one reader each).
pub const READ_TOPICS: usize = 4;
/// Data written before each reopen cell: the growth from 256 MiB to 4 GiB shows whether the
/// reopen reads the data (it should not: sealed blocks are not scanned).
pub const REOPEN_BYTES: [u64; 3] = [256 << 20, 1 << 30, 4 << 30];
/// Topics of the reopen cells.
pub const REOPEN_TOPICS: usize = 100;

/// Data filled into the one topic of the read-by-position cells: quick, `--full`.
pub const POSITION_BYTES: [u64; 2] = [128 << 20, 1 << 30];
/// Consecutive entries per range read of the `read-range` cells.
pub const RANGE_ENTRIES: usize = 1000;
/// Length of the `tail-follow` cells' writer (one append per millisecond): quick, `--full`.
pub const TAIL_SECS: [u64; 2] = [2, 5];

/// Topics of the many-topics cells, in the quick run as in `--full` (the count: a
/// log that costs a block or a file per topic shows it at this scale).
pub const MANY_TOPICS: usize = 10_000;
/// Entries written to each topic of the many-topics cells.
pub const MANY_TOPICS_ENTRIES: usize = 16;

/// `256 MiB`, `1 GiB`.
pub fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// The group of the reopen cell after `bytes` (goals and plots find the cells by workload and
/// `fill_bytes`, not by this name).
pub fn reopen_group(bytes: u64) -> String {
    format!(
        "reopen after {} over {REOPEN_TOPICS} topics (open + first read of each, warm page cache)",
        size(bytes)
    )
}

/// The workloads on `systems`: quick (2 s write cells, T = 1, 2, 4) or full (10 s,
/// single appends up to T = 8); batches (normal and durable) at T = 1, 2, 4 in both; the
/// read, reopen and import cells have the same sizes in both.
pub fn suite_cells(full: bool, systems: &[String]) -> Vec<Cell> {
    let (dur, threads, batch_threads): (_, &[usize], &[usize]) = if full {
        (Duration::from_secs(10), &[1, 2, 4, 8], &[1, 2, 4])
    } else {
        (Duration::from_secs(2), &[1, 2, 4], &[1, 2, 4])
    };
    let mut cells = vec![
        Cell::new(
            "disk limits",
            "disk",
            Workload::Fdatasync,
            1,
            SyncMode::Each,
        )
        // Three measurements (append, overwrite, four scattered pages) share it.
        .duration(dur * 3 / 2),
        Cell::new(
            "disk limits",
            "disk",
            Workload::SeqWrite,
            1,
            SyncMode::Never,
        )
        .duration(dur),
    ];
    let every = |g: &str, cells: &mut Vec<Cell>, make: &dyn Fn(&str, &str) -> Cell| {
        for s in systems {
            cells.push(make(g, s));
        }
    };
    for &t in threads {
        let g = format!("single appends, 500-1000 B, fsync every 200 ms, T={t}");
        every(&g, &mut cells, &|g, s| {
            Cell::new(g, s, Workload::Append, t, SyncMode::Interval(200)).duration(dur)
        });
    }
    for &t in threads {
        let g = format!("durable appends (acknowledged after fdatasync), T={t}");
        every(&g, &mut cells, &|g, s| {
            Cell::new(g, s, Workload::Append, t, SyncMode::Each).duration(dur)
        });
    }
    for &t in batch_threads {
        let g = format!("batches of 256 x 500-1000 B, fsync every 200 ms, T={t}");
        every(&g, &mut cells, &|g, s| {
            Cell::new(g, s, Workload::Batch, t, SyncMode::Interval(200))
                .duration(dur)
                .batch(256)
        });
    }
    for &t in batch_threads {
        let g =
            format!("durable batches of 256 x 500-1000 B (acknowledged after fdatasync), T={t}");
        every(&g, &mut cells, &|g, s| {
            Cell::new(g, s, Workload::Batch, t, SyncMode::Each)
                .duration(dur)
                .batch(256)
        });
    }
    let read = |g: &str, s: &str, w| {
        Cell::new(g, s, w, READ_TOPICS, SyncMode::Interval(200))
            .duration(dur)
            .fill(READ_BYTES, READ_TOPICS)
    };
    let g = format!(
        "read back {} over {READ_TOPICS} topics, {READ_TOPICS} readers, batch reads (10 MiB \
         cap; 'borrowed': batch_read_with)",
        size(READ_BYTES)
    );
    for s in systems {
        cells.push(read(&g, s, Workload::ReadBatch));
        if wal::is_walrus(s) {
            cells.push(read(&g, s, Workload::ReadBorrowed));
        }
    }
    let g = format!(
        "read back {} over {READ_TOPICS} topics, {READ_TOPICS} readers, read_next",
        size(READ_BYTES)
    );
    every(&g, &mut cells, &|g, s| read(g, s, Workload::ReadNext));
    for bytes in REOPEN_BYTES {
        // A syncing schedule, as a user's: Walrus seals its active blocks at a clean close
        // only then (under NoFsync nothing is known durable, so every block would be scanned).
        every(&reopen_group(bytes), &mut cells, &|g, s| {
            Cell::new(g, s, Workload::Reopen, 1, SyncMode::Interval(200))
                .duration(dur)
                .fill(bytes, REOPEN_TOPICS)
        });
    }
    cells.extend(many_topics_cells(systems, MANY_TOPICS, MANY_TOPICS_ENTRIES));
    cells.extend(positions_cells(full, systems));
    cells.extend(migrate::cells(systems));
    cells
}

/// The cells of the log primitives by position: random `read_at` and `read_range` of one
/// topic (128 MiB quick, 1 GiB `--full`) on every system (those without reads by index give
/// an `n/a` row), and `tail-follow` on the walrus backends.
pub fn positions_cells(full: bool, systems: &[String]) -> Vec<Cell> {
    let bytes = POSITION_BYTES[usize::from(full)];
    let tail = Duration::from_secs(TAIL_SECS[usize::from(full)]);
    let read = |g: &str, s: &str, w| Cell::new(g, s, w, 1, SyncMode::Interval(200)).fill(bytes, 1);
    let mut cells = Vec::new();
    let g = format!(
        "random reads by position: {} x 1 entry at uniform positions of one {} topic \
         (walrus read_at, raft-engine get_entry)",
        thousands(READ_AT_OPS),
        size(bytes)
    );
    for s in systems {
        cells.push(read(&g, s, Workload::ReadAt));
    }
    let g = format!(
        "range reads by position: {} x {} consecutive entries from uniform \
         positions of one {} topic (walrus read_range, raft-engine fetch_entries_to; latency \
         per range)",
        thousands(READ_RANGE_OPS),
        thousands(RANGE_ENTRIES),
        size(bytes)
    );
    for s in systems {
        cells.push(read(&g, s, Workload::ReadRange).batch(RANGE_ENTRIES));
    }
    let g = format!(
        "tail follow: wait_for wake-up after append (1 append/ms for {} s; latency from \
         append's return), then one idle waiter for {} s",
        tail.as_secs(),
        IDLE_WAIT.as_secs()
    );
    for s in systems.iter().filter(|s| wal::is_walrus(s)) {
        cells.push(
            Cell::new(&g, s, Workload::TailFollow, 1, SyncMode::Interval(200))
                .duration(tail)
                .fill(0, 1),
        );
    }
    cells
}

/// The `many-topics` cells: `entries` rounds of one 1 KiB entry to each of `topics` topics,
/// one writer, fsync every 200 ms as in the write cells. Every system runs but walrus-uring:
/// io_uring serves only batches, so its single appends are walrus's. Those that cannot hold
/// that many topics give an `n/a` row.
pub fn many_topics_cells(systems: &[String], topics: usize, entries: usize) -> Vec<Cell> {
    let g = format!(
        "many small topics: {} topics x {entries} entries of {} KiB, round-robin, 1 writer, \
         fsync every 200 ms (disk per payload byte and fds after a final flush)",
        thousands(topics),
        ENTRY_BYTES >> 10
    );
    systems
        .iter()
        .filter(|s| s.as_str() != "walrus-uring")
        .map(|s| {
            // `batch` is the entries per topic; `fill_bytes` records the payload, which also
            // gives the runner's time limit room for it.
            Cell::new(&g, s, Workload::ManyTopics, 1, SyncMode::Interval(200))
                .batch(entries)
                .fill(payload_bytes(topics, entries), topics)
        })
        .collect()
}

/// `10,000`.
pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn select(rows: &[Fields], f: impl Fn(&Fields) -> bool) -> Vec<&Fields> {
    rows.iter().filter(|r| f(r)).collect()
}

fn is(row: &Fields, key: &str, value: &str) -> bool {
    row.get(key).is_some_and(|v| v == value)
}

/// Draws the suite's plots into `out`: throughput against threads, latency CDFs, and the
/// reopen time against the data written.
pub fn suite_plots(out: &Path, rows: &[Fields]) -> Result<Vec<PathBuf>> {
    let append = select(rows, |r| {
        is(r, "workload", "append") && is(r, "sync", "200ms")
    });
    let durable = select(rows, |r| {
        is(r, "workload", "append") && is(r, "sync", "sync-each")
    });
    let throughput = out.join("throughput_vs_threads.png");
    plot::draw(
        &throughput,
        &[
            plot::threads_panel(
                "Single appends, fsync every 200 ms",
                &append,
                "ops_per_s",
                "appends/s (log)",
            ),
            plot::threads_panel(
                "Durable appends (sync-each)",
                &durable,
                "ops_per_s",
                "appends/s (log)",
            ),
        ],
    )?;
    let t1 = |r: &&Fields| is(r, "threads", "1");
    let cdf = out.join("latency_cdf.png");
    plot::draw(
        &cdf,
        &[
            plot::cdf_panel(
                "Append latency, fsync every 200 ms, T=1",
                &append.iter().copied().filter(t1).collect::<Vec<_>>(),
            ),
            plot::cdf_panel(
                "Durable append latency, T=1",
                &durable.iter().copied().filter(t1).collect::<Vec<_>>(),
            ),
        ],
    )?;
    let mut plots = vec![throughput, cdf];
    let reopen = select(rows, |r| is(r, "workload", "reopen"));
    if !reopen.is_empty() {
        let path = out.join("reopen_scaling.png");
        plot::draw(
            &path,
            &[plot::size_panel(
                &format!("Reopen (open + first read of {REOPEN_TOPICS} topics)"),
                &reopen,
                "reopen_ms",
                "reopen ms (log)",
            )],
        )?;
        plots.push(path);
    }
    plots.extend(positions_plot(out, rows)?);
    Ok(plots)
}

/// Latency CDFs of the random `read_at` cells and of the `tail-follow` wake-ups, when the run
/// has them.
pub fn positions_plot(out: &Path, rows: &[Fields]) -> Result<Option<PathBuf>> {
    let measured = |w: &str| select(rows, |r| is(r, "workload", w) && r.contains_key("cdf"));
    let mut panels = Vec::new();
    let read_at = measured("read-at");
    if !read_at.is_empty() {
        panels.push(plot::cdf_panel("read_at of one random entry", &read_at));
    }
    let tail = measured("tail-follow");
    if !tail.is_empty() {
        panels.push(plot::cdf_panel(
            "wait_for wake-up after append returns",
            &tail,
        ));
    }
    if panels.is_empty() {
        return Ok(None);
    }
    let path = out.join("positions_cdf.png");
    plot::draw(&path, &panels)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_cells() {
        let systems: Vec<String> = ["walrus", "walrus-mmap", "raft-engine"]
            .map(String::from)
            .to_vec();
        let cells = suite_cells(false, &systems);
        let count = |w: Workload| cells.iter().filter(|c| c.params.workload == w).count();
        assert_eq!(count(Workload::ReadBorrowed), 2, "walrus backends only");
        assert_eq!(count(Workload::Reopen), 3 * systems.len());
        assert!(
            cells
                .iter()
                .filter(|c| c.params.workload == Workload::ReadNext)
                .all(|c| c.params.bytes == READ_BYTES)
        );
        let reopen: Vec<u64> = cells
            .iter()
            .filter(|c| c.params.workload == Workload::Reopen && c.params.system == "walrus")
            .map(|c| c.params.bytes)
            .collect();
        assert_eq!(reopen, REOPEN_BYTES);
        assert_eq!(count(Workload::ReadAt), systems.len());
        assert_eq!(count(Workload::ReadRange), systems.len());
        assert_eq!(count(Workload::TailFollow), 2, "walrus backends only");
        assert!(cells.iter().all(|c| match c.params.workload {
            Workload::ReadAt | Workload::ReadRange => {
                c.params.bytes == POSITION_BYTES[0] && c.params.topics == 1
            }
            _ => true,
        }));
        let full = positions_cells(true, &systems);
        assert!(
            full.iter()
                .filter(|c| c.params.workload == Workload::ReadRange)
                .all(|c| c.params.bytes == 1 << 30 && c.params.batch == RANGE_ENTRIES)
        );
        assert_eq!(count(Workload::ManyTopics), systems.len());
        let many: Vec<_> = cells
            .iter()
            .filter(|c| c.params.workload == Workload::ManyTopics)
            .collect();
        assert!(many.iter().all(|c| {
            let p = &c.params;
            p.topics == MANY_TOPICS
                && p.batch == MANY_TOPICS_ENTRIES
                && p.threads == 1
                && p.sync == SyncMode::Interval(200)
                && p.bytes == (MANY_TOPICS * MANY_TOPICS_ENTRIES) as u64 * 1024
        }));
        assert_eq!(
            suite_cells(true, &systems)
                .iter()
                .filter(|c| c.params.workload == Workload::ManyTopics)
                .count(),
            systems.len(),
            "in --full too"
        );
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(200), "200");
    }

    #[test]
    fn many_topics_cells_skip_uring() {
        let systems: Vec<String> = ["walrus", "walrus-uring", "walrus-0.2.0"]
            .map(String::from)
            .to_vec();
        let cells = many_topics_cells(&systems, 200, 4);
        let names: Vec<&str> = cells.iter().map(|c| c.params.system.as_str()).collect();
        assert_eq!(names, ["walrus", "walrus-0.2.0"], "0.2.0 gives an n/a row");
        assert!(cells[0].group.contains("200 topics x 4 entries of 1 KiB"));
        assert_eq!(cells[0].params.bytes, 200 * 4 * 1024);
    }
}
