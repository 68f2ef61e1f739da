//! The `many-topics` cell: many small topics written round-robin by one thread, as a broker
//! with thousands of quiet partitions writes them. It measures what a topic costs rather than
//! what a byte costs: the disk used per payload byte (a log that preallocates a block per topic
//! holds far more than it was given) and the file descriptors held open (a file per topic runs
//! into the usual soft limit of 1,024), beside the append rate.

use std::{path::Path, time::Instant};

use anyhow::{Context, Result, ensure};

use super::{
    Fields, Params, Slot, counter_fields, disk_sizes, phase_fields, read::NO_LIMIT, run_threads,
};
use crate::{
    hist::Histogram,
    payload::Payloads,
    wal::{self, Wal},
};

/// Payload bytes of every entry of a `many-topics` cell.
pub const ENTRY_BYTES: usize = 1024;

/// The payload a `many-topics` cell of `topics` topics and `entries` entries per topic
/// writes.
pub fn payload_bytes(topics: usize, entries: usize) -> u64 {
    (topics * entries * ENTRY_BYTES) as u64
}

/// `many-topics`: open the system for `p.topics` topics, then `p.batch` rounds of one
/// [`ENTRY_BYTES`] entry (random bytes) to each topic in turn, on one thread under `p.sync`,
/// then a flush (timed apart, as `flush_ms`: the append rate is the write phase's alone).
///
/// Then, with the system still open, as it would be while serving: the apparent and allocated
/// size of everything under the cell's directory per payload byte (`apparent_per_payload`,
/// `disk_per_payload`), and the process's file descriptors (`fds_before` the open, `fds_after`
/// the flush, and `open_fds`, the difference: the system's own). Systems that cannot hold
/// that many topics at a sensible cost give an `na` field instead.
pub(super) fn many_topics(p: &Params, fields: &mut Fields) -> Result<()> {
    if let Err(why) = wal::holds_many_topics(&p.system) {
        fields.insert("na".into(), why.to_owned());
        return Ok(());
    }
    ensure!(
        p.topics > 0 && p.batch > 0,
        "many-topics needs topics > 0 and batch (entries per topic) > 0"
    );
    let fds_before = open_fds()?;
    let wal = wal::open(&p.system, &p.dir, p.sync, p.topics)?;
    let wal = wal.as_ref();
    let phase = run_threads("write", 1, NO_LIMIT, |_, slot, _| {
        round_robin(wal, p.topics, p.batch, slot)
    })?;
    let start = Instant::now();
    wal.flush()?;
    let flush = start.elapsed();
    let fds_after = open_fds()?;
    let disk = disk_sizes(&p.dir);
    let payload = payload_bytes(p.topics, p.batch);
    ensure!(
        phase.bytes == payload,
        "wrote {} payload bytes, expected {payload}",
        phase.bytes
    );
    phase_fields(fields, &phase);
    counter_fields(fields, wal);
    let per_payload = |bytes: u64| format!("{:.3}", bytes as f64 / payload as f64);
    fields.insert("payload_bytes".into(), payload.to_string());
    fields.insert("apparent_bytes".into(), disk.apparent.to_string());
    fields.insert("apparent_per_payload".into(), per_payload(disk.apparent));
    fields.insert("disk_bytes".into(), disk.allocated.to_string());
    fields.insert("disk_per_payload".into(), per_payload(disk.allocated));
    fields.insert("fds_before".into(), fds_before.to_string());
    fields.insert("fds_after".into(), fds_after.to_string());
    fields.insert(
        "open_fds".into(),
        fds_after.saturating_sub(fds_before).to_string(),
    );
    fields.insert(
        "flush_ms".into(),
        format!("{:.2}", flush.as_secs_f64() * 1e3),
    );
    Ok(())
}

/// `entries` rounds of one entry to each of `topics` topics, topic 0 first in every round;
/// latency per append.
fn round_robin(
    wal: &dyn Wal,
    topics: usize,
    entries: usize,
    slot: &Slot,
) -> Result<(u64, u64, Histogram)> {
    let mut payloads = Payloads::fixed(ENTRY_BYTES, 1);
    let mut hist = Histogram::new();
    let (mut ops, mut bytes) = (0u64, 0u64);
    // One clock read per append, as in the other write loops.
    let mut prev = Instant::now();
    for round in 0..entries {
        for topic in 0..topics {
            let data = payloads.one();
            wal.append(topic, data)
                .with_context(|| format!("append of round {round} to topic {topic}"))?;
            let now = Instant::now();
            hist.record((now - prev).as_nanos() as u64);
            prev = now;
            ops += 1;
            bytes += data.len() as u64;
            slot.set(ops, bytes);
        }
    }
    Ok((ops, bytes, hist))
}

/// File descriptors open in this process: the entries of `/proc/self/fd` (the directory's own
/// descriptor among them, the same in every count, so differences are exact).
pub fn open_fds() -> Result<usize> {
    let fds = Path::new("/proc/self/fd");
    Ok(std::fs::read_dir(fds)
        .with_context(|| format!("read {}", fds.display()))?
        .count())
}
