//! The child side of the harness: one process runs one workload on one system and prints
//! `TICK` lines (progress every 500 ms) and one `RESULT` line.
//!
//! Each child opens its system in a directory of its own, so no run sees another's files,
//! threads, page-cache state of open files or leaked resources (walrus 0.2.0 leaks a thread per
//! instance).

use std::{
    collections::BTreeMap,
    fmt,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow};

use crate::{
    hist::Histogram,
    payload::{ENTRY_SIZES, Payloads},
    wal::{self, SyncMode, Wal},
};

/// The cap for batch reads.
pub const READ_BATCH_BYTES: usize = 10 << 20;

/// What a child measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// Single appends, one topic per thread, for a duration.
    Append,
    /// Batch appends of `batch` entries, one topic per thread, for a duration.
    Batch,
    /// Fill `bytes` over `topics` topics, then read everything back with batch reads.
    ReadBatch,
    /// Fill `bytes` over `topics` topics, then read everything back with `read_next`.
    ReadNext,
    /// Like [`Workload::ReadBatch`] through Walrus's borrowing `batch_read_with`.
    ReadBorrowed,
    /// Single appends for a duration, then batch reads until drained or a duration passed.
    WriteThenRead,
    /// Fill `bytes` over `topics` topics, close, and time the reopen (open, then the first
    /// read of every topic); also disk use.
    Reopen,
    /// The disk's limit: 4 KiB write + fdatasync in a loop.
    Fdatasync,
    /// The disk's limit: buffered sequential writes of 1 MiB.
    SeqWrite,
    /// walrus-rust 0.2.0 writes `bytes` over `topics`, Walrus imports it on open (`migrate`).
    Migrate,
    /// The 0.2.0 writer of [`Workload::Migrate`], in a process of its own.
    MigrateFill,
    /// Fill one topic with `bytes`, then random single-entry reads by position
    /// (`TopicLog::read_at`, raft-engine's `get_entry`).
    ReadAt,
    /// Fill one topic with `bytes`, then reads of `batch` consecutive entries from random
    /// positions (`TopicLog::read_range`, raft-engine's `fetch_entries_to`).
    ReadRange,
    /// Walrus only: wake-up latency of a reader blocked in `TopicLog::wait_for` behind a
    /// writer appending every millisecond for `duration`, then an idle waiter's CPU time.
    TailFollow,
    /// `batch` rounds of one 1 KiB entry to each of `topics` topics, round-robin on one
    /// thread, then a flush: the append rate, disk used per payload byte and the file
    /// descriptors held open (see `workload/topics.rs`).
    ManyTopics,
}

const WORKLOADS: &[(Workload, &str)] = &[
    (Workload::Append, "append"),
    (Workload::Batch, "batch"),
    (Workload::ReadBatch, "read-batch"),
    (Workload::ReadNext, "read-next"),
    (Workload::ReadBorrowed, "read-borrowed"),
    (Workload::WriteThenRead, "write-then-read"),
    (Workload::Reopen, "reopen"),
    (Workload::Fdatasync, "fdatasync"),
    (Workload::SeqWrite, "seq-write"),
    (Workload::Migrate, "migrate"),
    (Workload::MigrateFill, "migrate-fill"),
    (Workload::ReadAt, "read-at"),
    (Workload::ReadRange, "read-range"),
    (Workload::TailFollow, "tail-follow"),
    (Workload::ManyTopics, "many-topics"),
];

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = WORKLOADS
            .iter()
            .find(|(w, _)| w == self)
            .map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

impl FromStr for Workload {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        WORKLOADS
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(w, _)| *w)
            .ok_or_else(|| anyhow!("unknown workload {s:?}"))
    }
}

/// Everything a child needs; passed as `key=value` arguments.
#[derive(Clone, Debug)]
pub struct Params {
    /// System name (see [`wal::ALL_SYSTEMS`]) or `disk` for the limits.
    pub system: String,
    /// The workload.
    pub workload: Workload,
    /// Worker threads (writers, or readers in the read phase).
    pub threads: usize,
    /// Durability of appends.
    pub sync: SyncMode,
    /// How long a timed phase runs.
    pub duration: Duration,
    /// Entries per batch.
    pub batch: usize,
    /// Payload bytes to fill before a read or reopen measurement.
    pub bytes: u64,
    /// Topics to fill before a read or reopen measurement.
    pub topics: usize,
    /// The child's directory (removed by the parent afterwards).
    pub dir: PathBuf,
}

impl Params {
    /// The arguments that [`Params::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("system={}", self.system),
            format!("workload={}", self.workload),
            format!("threads={}", self.threads),
            format!("sync={}", self.sync),
            format!("duration_ms={}", self.duration.as_millis()),
            format!("batch={}", self.batch),
            format!("bytes={}", self.bytes),
            format!("topics={}", self.topics),
            format!("dir={}", self.dir.display()),
        ]
    }

    /// Parses `key=value` arguments.
    pub fn parse(args: &[String]) -> Result<Self> {
        let map: BTreeMap<&str, &str> = args.iter().filter_map(|a| a.split_once('=')).collect();
        let get = |k: &str| map.get(k).copied().ok_or_else(|| anyhow!("missing {k}="));
        Ok(Self {
            system: get("system")?.to_owned(),
            workload: get("workload")?.parse()?,
            threads: get("threads")?.parse()?,
            sync: get("sync")?.parse()?,
            duration: Duration::from_millis(get("duration_ms")?.parse()?),
            batch: get("batch")?.parse()?,
            bytes: get("bytes")?.parse()?,
            topics: get("topics")?.parse()?,
            dir: PathBuf::from(get("dir")?),
        })
    }
}

/// Progress counters, one cache line per thread so that publishing costs a plain store.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Slot {
    ops: AtomicU64,
    bytes: AtomicU64,
}

impl Slot {
    #[inline]
    fn set(&self, ops: u64, bytes: u64) {
        self.ops.store(ops, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

/// The counters of one phase, summed by the monitor.
#[derive(Debug)]
struct Progress {
    slots: Vec<Slot>,
}

impl Progress {
    fn new(threads: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..threads).map(|_| Slot::default()).collect(),
        })
    }

    fn totals(&self) -> (u64, u64) {
        self.slots.iter().fold((0, 0), |(o, b), s| {
            (
                o + s.ops.load(Ordering::Relaxed),
                b + s.bytes.load(Ordering::Relaxed),
            )
        })
    }
}

/// Prints `TICK <phase> <elapsed_ms> <ops> <bytes>` every 500 ms while a phase runs.
struct Monitor {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(phase: &'static str, progress: Arc<Progress>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut next = start + Duration::from_millis(500);
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let now = Instant::now();
                if now >= next {
                    next += Duration::from_millis(500);
                    let (ops, bytes) = progress.totals();
                    let ms = (now - start).as_millis();
                    println!("TICK {phase} {ms} {ops} {bytes}");
                }
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What one timed phase produced.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    pub(crate) ops: u64,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    pub(crate) hist: Histogram,
}

/// Runs `body(thread, slot, deadline)` on `threads` threads released together; each returns
/// its (ops, bytes, histogram).
fn run_threads<F>(name: &'static str, threads: usize, duration: Duration, body: F) -> Result<Phase>
where
    F: Fn(usize, &Slot, Instant) -> Result<(u64, u64, Histogram)> + Sync,
{
    let progress = Progress::new(threads);
    let barrier = Barrier::new(threads + 1);
    let _monitor = Monitor::start(name, Arc::clone(&progress));
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (progress, barrier, body) = (&progress, &barrier, &body);
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + duration;
                    body(t, &progress.slots[t], deadline)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("worker panicked"))))
            .collect();
        (results, start.elapsed())
    });
    let mut phase = Phase {
        elapsed,
        ..Phase::default()
    };
    for r in results {
        let (ops, bytes, hist) = r?;
        phase.ops += ops;
        phase.bytes += bytes;
        phase.hist.merge(&hist);
    }
    Ok(phase)
}

/// Single appends to topic `t` until the deadline.
fn append_loop(
    wal: &dyn Wal,
    t: usize,
    slot: &Slot,
    deadline: Instant,
) -> Result<(u64, u64, Histogram)> {
    let mut payloads = Payloads::new(ENTRY_SIZES, t as u64 + 1);
    let mut hist = Histogram::new();
    let (mut ops, mut bytes) = (0u64, 0u64);
    // One clock read per operation: the gap between two reads is one append (plus a few
    // nanoseconds of loop), which keeps the clock from weighing on million-per-second loops.
    let mut prev = Instant::now();
    loop {
        let data = payloads.one();
        wal.append(t, data)
            .with_context(|| format!("append #{ops}"))?;
        let now = Instant::now();
        hist.record((now - prev).as_nanos() as u64);
        prev = now;
        ops += 1;
        bytes += data.len() as u64;
        slot.set(ops, bytes);
        if now >= deadline {
            return Ok((ops, bytes, hist));
        }
    }
}

/// Batch appends to topic `t` until the deadline; ops count entries, latency is per batch.
fn batch_loop(
    wal: &dyn Wal,
    t: usize,
    batch: usize,
    slot: &Slot,
    deadline: Instant,
) -> Result<(u64, u64, Histogram)> {
    let mut payloads = Payloads::new(ENTRY_SIZES, t as u64 + 1);
    let mut hist = Histogram::new();
    let (mut ops, mut bytes) = (0u64, 0u64);
    let mut prev = Instant::now();
    loop {
        let entries = payloads.batch(batch);
        let n: usize = entries.iter().map(|e| e.len()).sum();
        wal.batch_append(t, &entries)
            .with_context(|| format!("batch append after {ops} entries"))?;
        let now = Instant::now();
        hist.record((now - prev).as_nanos() as u64);
        prev = now;
        ops += batch as u64;
        bytes += n as u64;
        slot.set(ops, bytes);
        if now >= deadline {
            return Ok((ops, bytes, hist));
        }
    }
}

/// Bytes allocated on disk under `dir` (blocks, not apparent sizes: preallocation counts).
pub fn disk_usage(dir: &Path) -> u64 {
    disk_sizes(dir).allocated
}

/// The size of the files under a directory, two ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskSizes {
    /// Sum of the files' lengths (`st_size`): what `ls -l` shows, holes and all.
    pub apparent: u64,
    /// Sum of the blocks the files hold (`st_blocks * 512`): what `du` shows, preallocated
    /// space included and holes excluded.
    pub allocated: u64,
}

/// [`DiskSizes`] of every file under `dir`, recursively.
pub fn disk_sizes(dir: &Path) -> DiskSizes {
    let mut total = DiskSizes::default();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                let sub = disk_sizes(&e.path());
                total.apparent += sub.apparent;
                total.allocated += sub.allocated;
            } else {
                total.apparent += meta.size();
                total.allocated += meta.blocks() * 512;
            }
        }
    }
    total
}

/// The result of one child: `key=value` fields.
pub type Fields = BTreeMap<String, String>;

fn phase_fields(fields: &mut Fields, phase: &Phase) {
    let secs = phase.elapsed.as_secs_f64().max(1e-9);
    fields.insert("ops".into(), phase.ops.to_string());
    fields.insert("bytes".into(), phase.bytes.to_string());
    fields.insert("secs".into(), format!("{secs:.4}"));
    fields.insert(
        "ops_per_s".into(),
        format!("{:.1}", phase.ops as f64 / secs),
    );
    fields.insert(
        "mb_per_s".into(),
        format!("{:.2}", phase.bytes as f64 / secs / 1e6),
    );
    let us = |q: f64| format!("{:.2}", phase.hist.quantile(q) as f64 / 1e3);
    fields.insert("p50_us".into(), us(0.5));
    fields.insert("p99_us".into(), us(0.99));
    fields.insert("p999_us".into(), us(0.999));
    fields.insert("max_us".into(), us(1.0));
    fields.insert("cdf".into(), phase.hist.cdf_string());
}

fn counter_fields(fields: &mut Fields, wal: &dyn Wal) {
    for (k, v) in wal.counters() {
        fields.insert(k.into(), v.to_string());
    }
}

/// Runs the workload of `p` in this process and returns its fields.
pub fn run(p: &Params) -> Result<Fields> {
    let mut fields = Fields::new();
    match p.workload {
        Workload::Fdatasync => {
            // Appending to a file also commits its new size; overwriting a written block is
            // the flush alone. The limit is the better of the two.
            // A third of the time goes to the bound of four writers of four topics.
            let third = p.duration / 3;
            let append = fdatasync_rate(&p.dir, third, false)?;
            let overwrite = fdatasync_rate(&p.dir, third, true)?;
            let scattered = scattered_fdatasync_rate(&p.dir, third)?;
            let rate = |ph: &Phase| ph.ops as f64 / ph.elapsed.as_secs_f64().max(1e-9);
            fields.insert("append_ops_per_s".into(), format!("{:.1}", rate(&append)));
            fields.insert(
                "overwrite_ops_per_s".into(),
                format!("{:.1}", rate(&overwrite)),
            );
            fields.insert(
                "scattered4_ops_per_s".into(),
                format!("{:.1}", rate(&scattered)),
            );
            let best = if rate(&overwrite) > rate(&append) {
                overwrite
            } else {
                append
            };
            phase_fields(&mut fields, &best);
        }
        Workload::SeqWrite => phase_fields(&mut fields, &seq_write(&p.dir, p.duration)?),
        Workload::Migrate => fields = crate::migrate::run(p)?,
        Workload::MigrateFill => fields = crate::migrate::fill(p)?,
        Workload::Append => {
            let wal = wal::open(&p.system, &p.dir, p.sync, p.threads)?;
            let wal = wal.as_ref();
            let phase = run_threads("write", p.threads, p.duration, |t, slot, deadline| {
                append_loop(wal, t, slot, deadline)
            })?;
            phase_fields(&mut fields, &phase);
            counter_fields(&mut fields, wal);
        }
        Workload::Batch => {
            let wal = wal::open(&p.system, &p.dir, p.sync, p.threads)?;
            let wal = wal.as_ref();
            let phase = run_threads("write", p.threads, p.duration, |t, slot, deadline| {
                batch_loop(wal, t, p.batch, slot, deadline)
            })?;
            phase_fields(&mut fields, &phase);
            counter_fields(&mut fields, wal);
        }
        Workload::ReadBatch | Workload::ReadNext | Workload::ReadBorrowed => {
            read::read_back(p, &mut fields)?;
        }
        Workload::WriteThenRead => {
            let wal = wal::open(&p.system, &p.dir, p.sync, p.threads)?;
            let w = wal.as_ref();
            let write = run_threads("write", p.threads, p.duration, |t, slot, deadline| {
                append_loop(w, t, slot, deadline)
            })?;
            let read = read::drain(w, p.threads, p.threads, ReadMode::Batch, p.duration)?;
            fields.insert("write_ops_per_s".into(), {
                let secs = write.elapsed.as_secs_f64().max(1e-9);
                format!("{:.1}", write.ops as f64 / secs)
            });
            phase_fields(&mut fields, &read);
        }
        Workload::Reopen => read::reopen(p, &mut fields)?,
        Workload::ReadAt | Workload::ReadRange => positions::read_positions(p, &mut fields)?,
        Workload::TailFollow => positions::tail_follow(p, &mut fields)?,
        Workload::ManyTopics => topics::many_topics(p, &mut fields)?,
    }
    Ok(fields)
}

mod disk;
pub mod positions;
mod read;
pub mod topics;

use disk::{fdatasync_rate, scattered_fdatasync_rate, seq_write};
use read::ReadMode;

#[cfg(test)]
mod tests;
