//! Fuzz target: structure-aware operation sequences against a model, with crashes, through
//! `FaultyStorage` (RELIABILITY.md T8, target 4; invariants I1-I5).
//!
//! The input (decoded with `arbitrary`) is a read mode and up to 64 operations on three
//! topics: appends and batches (durable or not), `read_next` and `batch_read`, the log
//! primitives (`truncate_from`, `purge_before` up to past the end, `set_meta`), flush, clean
//! reopen, power loss (drop all, keep all, random subset, torn last write with zeros or
//! garbage), and a power loss followed by a crash during recovery. The oracle is the one of
//! the power-loss simulator (crates/walrus-rust/tests/it/sim_crash.rs), driven here by
//! coverage instead of a seed: reads return the model's entries in order; after every crash
//! no acknowledged-durable entry is lost, what is on disk is a gap-free, byte-identical prefix,
//! batches are whole, the cursor lies between its last persisted and last delivered position,
//! and a second recovery without writes finds the same state.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::{arbitrary, fuzz_target};
use walrus_fuzz::open;
use walrus_storage::{Fault, FaultPlan, FaultyStorage, OpKind, PowerLoss, TearFill};
use walrus_topic::{Engine, FsyncSchedule, ReadConsistency, ReadEntry, TopicInfo};

const TOPICS: [&str; 3] = ["alpha", "beta", ""];
/// Longest operation sequence looked at: longer ones only slow an execution down.
const OPS_MAX: usize = 64;

#[derive(Debug, arbitrary::Arbitrary)]
enum Op {
    Append {
        topic: u8,
        len: u16,
        durable: bool,
    },
    Batch {
        topic: u8,
        count: u8,
        len: u16,
        durable: bool,
    },
    ReadNext {
        topic: u8,
        checkpoint: bool,
    },
    BatchRead {
        topic: u8,
        budget: u16,
    },
    Flush,
    Reopen,
    PowerLoss {
        mode: u8,
        seed: u64,
    },
    CrashDuringRecovery {
        mode: u8,
        seed: u64,
        sync: bool,
        nth: u8,
    },
    /// `TopicLog::truncate_from`, `back` entries before the end (never below the floor).
    Truncate {
        topic: u8,
        back: u8,
    },
    /// `TopicLog::purge_before`, `ahead` positions after the delivered one (maybe past the
    /// end).
    Purge {
        topic: u8,
        ahead: u8,
    },
    /// `TopicLog::set_meta` with `len % 513` bytes.
    SetMeta {
        topic: u8,
        len: u16,
    },
}

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    /// `None`: StrictlyAtOnce; `Some(n)`: AtLeastOnce, persisting every `1 + n % 5` entries.
    persist_every: Option<u8>,
    ops: Vec<Op>,
}

#[derive(Clone, Default)]
struct TopicModel {
    /// Every acknowledged entry, by sequence number.
    entries: Vec<Vec<u8>>,
    /// Entries known durable.
    durable: usize,
    /// Batch boundaries `(start, stop)`.
    batches: Vec<(usize, usize)>,
    /// Entries delivered with checkpoint, and the part of that known persisted.
    delivered: usize,
    persisted: usize,
    /// Truncations so far (part of every payload: a removed entry never passes for a new one).
    epoch: usize,
    /// The metadata record, durable once `set_meta` returned.
    meta: Option<Vec<u8>>,
}

fn payload(topic: usize, seq: usize, epoch: usize, len: u16) -> Vec<u8> {
    let mut data = format!("{topic}:{seq}:{epoch}:").into_bytes();
    data.extend((0..len % 3000).map(|i| (i as u8) ^ (seq as u8)));
    data
}

fn power_loss(mode: u8, seed: u64) -> PowerLoss {
    match mode % 5 {
        0 => PowerLoss::DropAll,
        1 => PowerLoss::KeepAll,
        2 => PowerLoss::RandomSubset { seed },
        3 => PowerLoss::TearLast {
            seed,
            fill: TearFill::Zeros,
        },
        _ => PowerLoss::TearLast {
            seed,
            fill: TearFill::Garbage,
        },
    }
}

fn reopen(storage: &FaultyStorage) -> Arc<Engine> {
    open(storage, false).expect("recovery must succeed")
}

/// Every topic's figures and entries on disk.
fn snapshot(engine: &Engine) -> Vec<(Option<TopicInfo>, Vec<ReadEntry>)> {
    TOPICS
        .iter()
        .map(|t| {
            let entries = engine.read_from(t, 0, usize::MAX).expect("read_from");
            (engine.topic_info_of(t), entries)
        })
        .collect()
}

fn note_persist(model: &mut TopicModel, mode: ReadConsistency) {
    match mode {
        ReadConsistency::StrictlyAtOnce => model.persisted = model.delivered,
        ReadConsistency::AtLeastOnce { persist_every } => {
            if model.delivered - model.persisted >= persist_every.max(1) as usize {
                model.persisted = model.delivered;
            }
        }
    }
}

/// The oracle after a crash (as in sim_crash.rs), then the model follows what was recovered.
fn verify(engine: &Engine, models: &mut [TopicModel]) {
    for (t, topic) in TOPICS.iter().enumerate() {
        let model = &mut models[t];
        assert_eq!(engine.meta_of(topic), model.meta, "{topic:?}: metadata");
        let info = engine.topic_info_of(topic);
        let end = info.as_ref().map_or(0, |i| i.next_seq as usize);
        assert!(end >= model.durable, "{topic:?}: durable entries lost");
        assert!(
            end <= model.entries.len(),
            "{topic:?}: entries never acknowledged"
        );
        let on_disk = engine.read_from(topic, 0, usize::MAX).expect("read_from");
        let first = on_disk.first().map_or(end, |e| e.seq as usize);
        for (i, entry) in on_disk.iter().enumerate() {
            assert_eq!(
                entry.seq as usize,
                first + i,
                "{topic:?}: hole or duplicate"
            );
            assert_eq!(
                entry.data,
                model.entries[first + i],
                "{topic:?}: entry differs"
            );
        }
        let data_end = first + on_disk.len();
        let cursor = info.as_ref().map_or(0, |i| i.cursor as usize);
        assert!(
            data_end == end || (data_end < end && cursor == end),
            "{topic:?}: entries missing before the end"
        );
        for (start, stop) in &model.batches {
            let readable_from = (*start).max(cursor);
            let overlaps = readable_from < (*stop).min(end);
            assert!(!overlaps || end >= *stop, "{topic:?}: part of a batch kept");
        }
        if info.is_some() {
            let low = model.persisted.min(end);
            let high = model.delivered.min(end);
            assert!(
                cursor >= low && cursor <= high.max(low),
                "{topic:?}: cursor {cursor} outside {low}..={high}"
            );
            assert!(first <= cursor, "{topic:?}: data before the cursor deleted");
        }
        model.delivered = cursor;
        model.persisted = cursor;
        model.entries.truncate(end);
        model.durable = end;
        model.batches.retain(|(_, stop)| *stop <= end);
    }
}

/// Recovers after a power loss, checks the oracle and that a second recovery agrees.
fn recover_and_verify(storage: &FaultyStorage, models: &mut [TopicModel]) -> Arc<Engine> {
    let engine = reopen(storage);
    verify(&engine, models);
    let before = snapshot(&engine);
    drop(engine);
    storage.power_loss(PowerLoss::DropAll);
    let engine = reopen(storage);
    assert!(snapshot(&engine) == before, "a second recovery differs");
    engine
}

fuzz_target!(|input: Input| {
    let mode = match input.persist_every {
        None => ReadConsistency::StrictlyAtOnce,
        Some(n) => ReadConsistency::AtLeastOnce {
            persist_every: 1 + u32::from(n % 5),
        },
    };
    let storage = FaultyStorage::new();
    let mut engine = reopen(&storage);
    let mut models = vec![TopicModel::default(); TOPICS.len()];
    for op in input.ops.iter().take(OPS_MAX) {
        match *op {
            Op::Append {
                topic,
                len,
                durable,
            } => {
                let t = usize::from(topic) % TOPICS.len();
                let data = payload(t, models[t].entries.len(), models[t].epoch, len);
                let schedule = if durable {
                    FsyncSchedule::SyncEach
                } else {
                    FsyncSchedule::NoFsync
                };
                engine.append(TOPICS[t], &data, schedule).expect("append");
                models[t].entries.push(data);
                if durable {
                    models.iter_mut().for_each(|m| m.durable = m.entries.len());
                }
            }
            Op::Batch {
                topic,
                count,
                len,
                durable,
            } => {
                let t = usize::from(topic) % TOPICS.len();
                let start = models[t].entries.len();
                let batch: Vec<Vec<u8>> = (0..1 + usize::from(count % 8))
                    .map(|i| {
                        let len = len.wrapping_add(i as u16 * 97);
                        payload(t, start + i, models[t].epoch, len)
                    })
                    .collect();
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                let schedule = if durable {
                    FsyncSchedule::SyncEach
                } else {
                    FsyncSchedule::NoFsync
                };
                engine
                    .batch_append(TOPICS[t], &refs, schedule)
                    .expect("batch append");
                let model = &mut models[t];
                model.entries.extend(batch);
                model.batches.push((start, model.entries.len()));
                if durable {
                    models.iter_mut().for_each(|m| m.durable = m.entries.len());
                }
            }
            Op::ReadNext { topic, checkpoint } => {
                let t = usize::from(topic) % TOPICS.len();
                let model = &mut models[t];
                let got = engine
                    .read_next(TOPICS[t], checkpoint, mode)
                    .expect("read_next");
                assert_eq!(
                    got.as_ref().map(|e| &e.data),
                    model.entries.get(model.delivered),
                    "read_next of {:?}",
                    TOPICS[t]
                );
                if let Some(entry) = got {
                    assert_eq!(entry.seq as usize, model.delivered);
                    if checkpoint {
                        model.delivered += 1;
                        note_persist(model, mode);
                    }
                }
            }
            Op::BatchRead { topic, budget } => {
                let t = usize::from(topic) % TOPICS.len();
                let model = &mut models[t];
                let got = engine
                    .batch_read(TOPICS[t], usize::from(budget), true, mode)
                    .expect("batch_read");
                for (i, entry) in got.iter().enumerate() {
                    assert_eq!(entry.seq as usize, model.delivered + i, "batch read order");
                    assert_eq!(Some(&entry.data), model.entries.get(model.delivered + i));
                }
                if !got.is_empty() {
                    model.delivered += got.len();
                    note_persist(model, mode);
                }
            }
            Op::Flush => {
                engine.flush().expect("flush");
                models.iter_mut().for_each(|m| m.durable = m.entries.len());
            }
            Op::Reopen => {
                // A clean close syncs everything but persists no cursor: reading resumes at
                // the persisted one (reads since an `AtLeastOnce` boundary come again).
                drop(engine);
                engine = reopen(&storage);
                for m in &mut models {
                    m.durable = m.entries.len();
                    m.delivered = m.persisted;
                }
            }
            Op::Truncate { topic, back } => {
                let t = usize::from(topic) % TOPICS.len();
                let log = engine.topic_log(TOPICS[t], FsyncSchedule::NoFsync).expect("log");
                let m = &models[t];
                let cut = m.entries.len().saturating_sub(usize::from(back)).max(m.persisted);
                log.truncate_from(cut as u64).expect("truncate_from");
                if cut < m.entries.len() {
                    // It synced everything first.
                    models.iter_mut().for_each(|m| m.durable = m.entries.len());
                }
                let m = &mut models[t];
                m.entries.truncate(cut);
                m.durable = m.durable.min(cut);
                m.epoch += 1;
                m.delivered = m.delivered.min(cut);
                m.batches.retain(|(start, _)| *start < cut);
                m.batches.iter_mut().for_each(|b| b.1 = b.1.min(cut));
            }
            Op::Purge { topic, ahead } => {
                let t = usize::from(topic) % TOPICS.len();
                let log = engine.topic_log(TOPICS[t], FsyncSchedule::NoFsync).expect("log");
                let m = &mut models[t];
                let p = m.delivered + usize::from(ahead % 16);
                log.purge_before(p as u64).expect("purge_before");
                if p > m.entries.len() {
                    m.entries.resize(p, Vec::new());
                }
                m.delivered = m.delivered.max(p);
                m.persisted = m.persisted.max(p);
                m.durable = m.durable.max(p);
            }
            Op::SetMeta { topic, len } => {
                let t = usize::from(topic) % TOPICS.len();
                let log = engine.topic_log(TOPICS[t], FsyncSchedule::NoFsync).expect("log");
                let meta = payload(t, 0, models[t].epoch, len)[..].to_vec();
                let meta = meta[..meta.len().min(usize::from(len % 513))].to_vec();
                log.set_meta(&meta).expect("set_meta");
                models[t].meta = Some(meta);
            }
            Op::PowerLoss { mode: loss, seed } => {
                storage.power_loss(power_loss(loss, seed));
                drop(engine);
                engine = recover_and_verify(&storage, &mut models);
            }
            Op::CrashDuringRecovery {
                mode: loss,
                seed,
                sync,
                nth,
            } => {
                storage.power_loss(power_loss(loss, seed));
                drop(engine);
                // Every write (or sync) of the recovery from the nth on fails, as if the
                // machine died there; then the power goes again.
                storage.inject(FaultPlan {
                    op: Some(if sync { OpKind::Sync } else { OpKind::Write }),
                    nth: 1 + u64::from(nth % 8),
                    fault: Fault::Eio,
                    persistent: true,
                });
                drop(open(&storage, false));
                storage.clear_faults();
                storage.power_loss(PowerLoss::RandomSubset { seed: !seed });
                engine = recover_and_verify(&storage, &mut models);
            }
        }
    }
});
