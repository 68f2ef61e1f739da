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
    workload::{Fields, Workload},
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
/// T up to 8); the read, reopen and import cells have the same sizes in both.
pub fn suite_cells(full: bool, systems: &[String]) -> Vec<Cell> {
    let (dur, threads, batch_threads): (_, &[usize], &[usize]) = if full {
        (Duration::from_secs(10), &[1, 2, 4, 8], &[1, 2, 4])
    } else {
        (Duration::from_secs(2), &[1, 2, 4], &[1])
    };
    let mut cells = vec![
        Cell::new(
            "disk limits",
            "disk",
            Workload::Fdatasync,
            1,
            SyncMode::Each,
        )
        .duration(dur),
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
    cells.extend(migrate::cells(systems));
    cells
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
    Ok(plots)
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
    }
}
