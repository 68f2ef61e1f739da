//! The log primitives by position: random single-entry reads (`read-at`) and range reads
//! (`read-range`) of one filled topic, beside raft-engine's `get_entry` and
//! `fetch_entries_to`; and, for Walrus alone, how soon a reader blocked in
//! `TopicLog::wait_for` wakes after an append (`tail-follow`), with the CPU time an idle waiter
//! uses.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};

use super::{Fields, Params, READ_BATCH_BYTES, Workload, phase_fields, run_threads};
use crate::{
    hist::Histogram,
    payload::{ENTRY_SIZES, Payloads, Rng},
    wal,
};

/// Random single-entry reads of a `read-at` cell.
pub const READ_AT_OPS: usize = 10_000;
/// Range reads of a `read-range` cell (each of `batch` consecutive entries).
pub const READ_RANGE_OPS: usize = 1_000;
/// Seed of the random positions: every system reads the same ones.
const POSITION_SEED: u64 = 0x5EED_1095;
/// The writer's pace in `tail-follow`: one append, then this pause.
pub const TAIL_PAUSE: Duration = Duration::from_millis(1);
/// How long the idle reader of `tail-follow` waits with no writer (at most as long as the
/// writer ran, which only the tests make shorter).
pub const IDLE_WAIT: Duration = Duration::from_secs(2);
/// A follower waiting this long for one position means the writer failed.
const STALL: Duration = Duration::from_secs(5);

/// `read-at` and `read-range`: fill one topic with `p.bytes`, then read `READ_AT_OPS` random
/// entries, or `READ_RANGE_OPS` ranges of `p.batch` entries from random positions, on one
/// thread (positions uniform over the topic, the same in every system). Every read must
/// return what was asked for, or the cell fails. Systems without reads by index give an
/// `na` field instead.
pub(super) fn read_positions(p: &Params, fields: &mut Fields) -> Result<()> {
    if let Err(why) = wal::reads_by_position(&p.system) {
        fields.insert("na".into(), why.to_owned());
        return Ok(());
    }
    let (ops, count) = match p.workload {
        Workload::ReadAt => (READ_AT_OPS, 1),
        _ => (READ_RANGE_OPS, p.batch.max(1)),
    };
    let wal = wal::open(&p.system, &p.dir, p.sync, 1)?;
    let wal = wal.as_ref();
    let (_, entries) = super::read::fill(wal, 1, p.bytes)?;
    ensure!(
        entries >= count as u64,
        "{entries} entries filled, fewer than a range of {count}"
    );
    let starts = random_starts(ops, entries - count as u64 + 1);
    let phase = run_threads("read", 1, super::read::NO_LIMIT, |_, slot, _| {
        let mut hist = Histogram::new();
        let (mut done, mut bytes) = (0u64, 0u64);
        for &at in &starts {
            let start = Instant::now();
            let (n, b) = if count == 1 {
                let len = wal
                    .read_at(0, at)?
                    .with_context(|| format!("no entry at index {at} of {entries}"))?;
                (1, len)
            } else {
                wal.read_range(0, at, count, READ_BATCH_BYTES)?
            };
            hist.record(start.elapsed().as_nanos() as u64);
            ensure!(
                n == count,
                "read {n} entries from index {at}, asked for {count}"
            );
            done += n as u64;
            bytes += b as u64;
            slot.set(done, bytes);
        }
        Ok((done, bytes, hist))
    })?;
    phase_fields(fields, &phase);
    fields.insert("fill_entries".into(), entries.to_string());
    Ok(())
}

/// `ops` positions drawn uniformly from `0..span` with the fixed seed.
pub(super) fn random_starts(ops: usize, span: u64) -> Vec<u64> {
    let mut rng = Rng::new(POSITION_SEED);
    (0..ops).map(|_| rng.next_u64() % span.max(1)).collect()
}

/// Clock readings of one append of `tail-follow`: nanoseconds since the cell's base instant,
/// plus 1 (0: not taken yet).
#[derive(Debug, Default)]
struct Stamp {
    /// Right before `append` was called.
    called: AtomicU64,
    /// Right after `append` returned.
    returned: AtomicU64,
}

/// `tail-follow` (Walrus backends only): a writer appends one entry every [`TAIL_PAUSE`] for
/// `p.duration`, reading the clock right before and right after each `append`; a follower
/// blocked in `wait_for(next)` records the time from `append`'s return to its wake-up (0 when
/// it woke before `append` returned, as the tail is published inside it: those are counted as
/// `early_wakes`) and, as `call_p50_us` and `call_p99_us`, from the call (which includes the
/// append itself): the two bracket the wake-up after publication. Then it reads the entry.
/// Then a reader waits [`IDLE_WAIT`] (or `p.duration` if shorter) for a position nobody
/// appends, and its thread's CPU time over the wait is `idle_cpu_us`.
pub(super) fn tail_follow(p: &Params, fields: &mut Fields) -> Result<()> {
    ensure!(
        wal::is_walrus(&p.system),
        "tail-follow needs TopicLog::wait_for: walrus backends only"
    );
    let log = wal::open_topic_log(&p.system, &p.dir, p.sync, 0)?;
    let appends = (p.duration.as_micros() / TAIL_PAUSE.as_micros().max(1)).max(1) as u64;
    let first = log.next_position();
    let stamps: Vec<Stamp> = (0..appends).map(|_| Stamp::default()).collect();
    let early = AtomicU64::new(0);
    let from_call = Mutex::new(Histogram::new());
    let base = Instant::now();
    let now_ns = || base.elapsed().as_nanos() as u64 + 1;
    let mut phase = run_threads("follow", 2, super::read::NO_LIMIT, |t, slot, _| {
        if t == 0 {
            let mut payloads = Payloads::new(ENTRY_SIZES, 1);
            let mut next = Instant::now();
            for (i, stamp) in stamps.iter().enumerate() {
                next += TAIL_PAUSE;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                let data = payloads.one();
                stamp.called.store(now_ns(), Ordering::Release);
                let at = log.append(data)?;
                stamp.returned.store(now_ns(), Ordering::Release);
                ensure!(at == first + i as u64, "append #{i} got position {at}");
            }
            return Ok((0, 0, Histogram::new()));
        }
        let follower = log.clone();
        let (mut hist, mut call_hist) = (Histogram::new(), Histogram::new());
        for (i, stamp) in stamps.iter().enumerate() {
            let at = first + i as u64;
            if !follower.wait_for(at, STALL) {
                bail!("position {at} did not appear within {STALL:?}");
            }
            let woke = now_ns();
            let returned = loop {
                match stamp.returned.load(Ordering::Acquire) {
                    0 => std::thread::yield_now(),
                    s => break s,
                }
            };
            if woke < returned {
                early.fetch_add(1, Ordering::Relaxed);
            }
            hist.record(woke.saturating_sub(returned));
            call_hist.record(woke.saturating_sub(stamp.called.load(Ordering::Acquire)));
            ensure!(
                follower.read_at(at)?.is_some(),
                "no entry at {at} after wake"
            );
            slot.set(i as u64 + 1, 0);
        }
        *from_call.lock().map_err(|_| anyhow!("histogram lock"))? = call_hist;
        Ok((appends, 0, hist))
    })?;
    phase.bytes = 0;
    phase_fields(fields, &phase);
    fields.insert("early_wakes".into(), early.into_inner().to_string());
    let from_call = from_call
        .into_inner()
        .map_err(|_| anyhow!("histogram lock"))?;
    let us = |q: f64| format!("{:.2}", from_call.quantile(q) as f64 / 1e3);
    fields.insert("call_p50_us".into(), us(0.5));
    fields.insert("call_p99_us".into(), us(0.99));
    let (cpu, waited) = idle_wait(&log, IDLE_WAIT.min(p.duration))?;
    fields.insert(
        "idle_cpu_us".into(),
        format!("{:.1}", cpu.as_secs_f64() * 1e6),
    );
    fields.insert(
        "idle_wait_ms".into(),
        format!("{:.1}", waited.as_secs_f64() * 1e3),
    );
    Ok(())
}

/// A reader thread blocked in `wait_for` on the next position for `wait`, nothing appended:
/// (its CPU time over the wait, the wait's length).
fn idle_wait(log: &walrus_rust::TopicLog, wait: Duration) -> Result<(Duration, Duration)> {
    let waiter = log.clone();
    let at = log.next_position();
    std::thread::scope(|s| {
        s.spawn(move || -> Result<(Duration, Duration)> {
            let before = thread_cpu()?;
            let start = Instant::now();
            let appeared = waiter.wait_for(at, wait);
            let waited = start.elapsed();
            let cpu = thread_cpu()?.saturating_sub(before);
            ensure!(!appeared, "position {at} appeared while nobody wrote");
            Ok((cpu, waited))
        })
        .join()
        .map_err(|_| anyhow!("idle waiter panicked"))?
    })
}

/// The calling thread's CPU time: `/proc/thread-self/schedstat` (nanoseconds on the CPU), else
/// user + system time from `/proc/thread-self/stat` (clock ticks of 10 ms).
pub(super) fn thread_cpu() -> Result<Duration> {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok())
    {
        return Ok(Duration::from_nanos(ns));
    }
    let stat =
        std::fs::read_to_string("/proc/thread-self/stat").context("read /proc/thread-self/stat")?;
    // Fields after the command name (which may hold spaces) in parentheses: utime and stime
    // are the 14th and 15th of the line, the 12th and 13th after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc/thread-self/stat")?;
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Ok(Duration::from_millis(ticks * 10))
}
