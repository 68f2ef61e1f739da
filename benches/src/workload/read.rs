//! The read side of the harness: fill a log, then read it back (batch reads, borrowed batch
//! reads or `read_next`), or close it and time the reopen.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use super::{Fields, Params, READ_BATCH_BYTES, Workload, disk_usage, phase_fields, run_threads};
use crate::{
    hist::Histogram,
    payload::{ENTRY_SIZES, Payloads},
    wal::{self, Wal},
};

/// Batch size used to fill a log before a read or reopen measurement.
const FILL_BATCH: usize = 256;
/// A read phase that ends when the data does (an `Instant` cannot hold `Duration::MAX`).
pub(super) const NO_LIMIT: Duration = Duration::from_secs(86_400);
/// Memory touched before a timed reopen ([`warm_memory`]).
const WARM_BYTES: usize = 256 << 20;

/// How a read phase reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadMode {
    /// [`Wal::batch_read`] (10 MiB cap).
    Batch,
    /// [`Wal::batch_read_borrowed`] (10 MiB cap).
    Borrowed,
    /// [`Wal::read_next`].
    Next,
}

/// Fills `bytes` of payload over `topics` topics with batches, from up to 4 threads; returns
/// the payload bytes and the entries written.
pub(super) fn fill(wal: &dyn Wal, topics: usize, bytes: u64) -> Result<(u64, u64)> {
    let threads = topics.clamp(1, 4);
    let per_topic = bytes / topics.max(1) as u64;
    let written = AtomicU64::new(0);
    let entries = AtomicU64::new(0);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                let (written, entries) = (&written, &entries);
                s.spawn(move || -> Result<()> {
                    let mut payloads = Payloads::new(ENTRY_SIZES, th as u64 + 100);
                    for topic in (th..topics).step_by(threads) {
                        let mut done = 0u64;
                        let mut n = 0u64;
                        while done < per_topic {
                            let batch = payloads.batch(FILL_BATCH);
                            let b: u64 = batch.iter().map(|e| e.len() as u64).sum();
                            wal.batch_append(topic, &batch)
                                .with_context(|| format!("fill topic {topic}"))?;
                            done += b;
                            n += batch.len() as u64;
                        }
                        written.fetch_add(done, Ordering::Relaxed);
                        entries.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow!("fill thread panicked"))??;
        }
        Ok(())
    })?;
    wal.flush()?;
    Ok((written.into_inner(), entries.into_inner()))
}

/// Reads every topic to its end; thread `t` reads topics `t, t + threads, ...`.
pub(super) fn drain(
    wal: &dyn Wal,
    topics: usize,
    threads: usize,
    mode: ReadMode,
    limit: Duration,
) -> Result<super::Phase> {
    run_threads("read", threads, limit, |t, slot, deadline| {
        let mut hist = Histogram::new();
        let (mut ops, mut bytes) = (0u64, 0u64);
        let mut prev = Instant::now();
        for topic in (t..topics).step_by(threads) {
            loop {
                let (n, b) = match mode {
                    ReadMode::Batch => wal.batch_read(topic, READ_BATCH_BYTES)?,
                    ReadMode::Borrowed => wal.batch_read_borrowed(topic, READ_BATCH_BYTES)?,
                    ReadMode::Next => wal.read_next(topic)?.map_or((0, 0), |b| (1, b)),
                };
                let now = Instant::now();
                if n == 0 {
                    prev = now;
                    break;
                }
                hist.record((now - prev).as_nanos() as u64);
                prev = now;
                ops += n as u64;
                bytes += b as u64;
                slot.set(ops, bytes);
                if now >= deadline {
                    return Ok((ops, bytes, hist));
                }
            }
        }
        Ok((ops, bytes, hist))
    })
}

/// `read-batch`, `read-borrowed`, `read-next`: fill, then read everything back (every byte,
/// or the cell fails).
pub(super) fn read_back(p: &Params, fields: &mut Fields) -> Result<()> {
    let mode = match p.workload {
        Workload::ReadBatch => ReadMode::Batch,
        Workload::ReadBorrowed => ReadMode::Borrowed,
        _ => ReadMode::Next,
    };
    let wal = wal::open(&p.system, &p.dir, p.sync, p.topics)?;
    let (filled, _) = fill(wal.as_ref(), p.topics, p.bytes)?;
    let phase = drain(wal.as_ref(), p.topics, p.threads, mode, NO_LIMIT)?;
    if phase.bytes != filled {
        bail!("read back {} payload bytes of {filled}", phase.bytes);
    }
    phase_fields(fields, &phase);
    Ok(())
}

/// Touches and frees [`WARM_BYTES`] of memory, so that what the reopen allocates comes from
/// pages the host backs already. In this virtual machine a first touch of guest memory costs
/// about 14 us a page instead of 2.5 us, and after a 4 GiB fill most free pages are such:
/// without this the 6,400 page faults of Walrus's first reads (a 256 KiB read-ahead buffer per
/// topic) took 16 ms or 95 ms by chance.
fn warm_memory() {
    let mut pages = vec![0u8; WARM_BYTES];
    pages.iter_mut().step_by(4096).for_each(|b| *b = 1);
    std::hint::black_box(&pages);
}

/// `reopen`: fill, close (Walrus under a syncing schedule seals its active blocks at a clean
/// close), warm the memory allocator (untimed), then time what a restarted consumer waits
/// for: the open, and the first read of every topic.
pub(super) fn reopen(p: &Params, fields: &mut Fields) -> Result<()> {
    let wal = wal::open(&p.system, &p.dir, p.sync, p.topics)?;
    let (filled, _) = fill(wal.as_ref(), p.topics, p.bytes)?;
    drop(wal);
    let disk = disk_usage(&p.dir);
    warm_memory();
    let start = Instant::now();
    let wal = wal::open(&p.system, &p.dir, p.sync, p.topics)?;
    let open = start.elapsed();
    // okaywal keeps positions in memory only, so it has nothing to read here; its open reads
    // every chunk (its recovery callback) instead.
    let mut found = 0;
    for topic in 0..p.topics {
        found += usize::from(wal.read_next(topic)?.is_some());
    }
    let reopen = start.elapsed();
    drop(wal);
    if found != p.topics && p.system != "okaywal" {
        bail!(
            "{found} of {} topics had a first entry after the reopen",
            p.topics
        );
    }
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    fields.insert("reopen_ms".into(), ms(reopen));
    fields.insert("open_ms".into(), ms(open));
    fields.insert("first_read_ms".into(), ms(reopen - open));
    fields.insert("disk_bytes".into(), disk.to_string());
    fields.insert("payload_bytes".into(), filled.to_string());
    fields.insert(
        "disk_per_payload".into(),
        format!("{:.3}", disk as f64 / filled.max(1) as f64),
    );
    Ok(())
}
