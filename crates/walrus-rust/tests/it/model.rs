//! T1: model-based testing of the public API (docs: shared RELIABILITY.md, section 3).
//!
//! proptest generates sequences of up to 200 operations (appends of every size, including
//! entries spanning several blocks; batches, empty and over the 2,000-entry limit; `read_next`
//! and `batch_read_for_topic` with and without checkpoint; `flush`; clean close and reopen),
//! runs them against real files in a temporary directory, and compares every result with a
//! model: a `Vec` of entries per topic and the index of the next entry to deliver. Small
//! blocks (4 KiB, 4 per file) make rotation, multi-block extents and file deletion frequent.
//! Each backend runs every fsync schedule and both read consistencies; a divergence is
//! shrunk to a minimal sequence and reported with the seed.
//!
//! The positional API (`TopicLog`) runs in the same sequences: appends and batches that
//! return positions, `read_at` and `read_range` anywhere around the readable range, and
//! `purge_before` up to past the end; the model's purge floor is the persisted cursor, which a
//! purge moves up (and the cursor with it when it is behind). `truncate_from` cuts from the
//! floor to the end (the cursor moves back to a cut behind it; later appends carry the
//! topic's truncation count in their bytes, so a removed entry can never pass for a new one),
//! and `set_meta` records are checked after the last reopen.
//!
//! `MODEL_CASES` sets the cases per backend and schedule (default 24; `cargo xtask
//! reliability` runs 2,000), `SEED` replays a run.

use std::{cell::RefCell, path::Path};

use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

use crate::support::{SCHEDULES, seed_from_env};

const TOPICS: [&str; 3] = ["alpha", "beta", ""];
/// Entries per batch read, at most (as in walrus-rust 0.2.0).
const BATCH_READ_ENTRIES_MAX: usize = 2000;

#[derive(Clone, Debug)]
enum Op {
    Append {
        topic: usize,
        len: usize,
    },
    Batch {
        topic: usize,
        lens: Vec<usize>,
    },
    /// A batch of 2,001 entries: refused whole.
    OversizedBatch {
        topic: usize,
    },
    ReadNext {
        topic: usize,
        checkpoint: bool,
    },
    BatchRead {
        topic: usize,
        max_bytes: usize,
        checkpoint: bool,
    },
    Flush,
    Reopen,
    /// `TopicLog::append`: returns the position.
    LogAppend {
        topic: usize,
        len: usize,
    },
    /// `TopicLog::append_batch`: returns the positions.
    LogBatch {
        topic: usize,
        lens: Vec<usize>,
    },
    /// `TopicLog::read_at(pos % (entries + 3))`.
    ReadAt {
        topic: usize,
        pos: usize,
    },
    /// `TopicLog::read_range(from..from + count, max_bytes)`, `from` as for `ReadAt`.
    ReadRange {
        topic: usize,
        from: usize,
        count: usize,
        max_bytes: usize,
    },
    /// `TopicLog::purge_before(floor + ahead)`: sometimes below the floor, sometimes past the
    /// end.
    PurgeBefore {
        topic: usize,
        ahead: usize,
    },
    /// `TopicLog::truncate_from(max(end - back, floor))`: sometimes at the end (a no-op).
    Truncate {
        topic: usize,
        back: usize,
    },
    /// `TopicLog::set_meta` with `len` bytes.
    SetMeta {
        topic: usize,
        len: usize,
    },
}

fn entry_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..200,
        2 => 200usize..3000,
        // Larger than a 4 KiB block: an extent of several blocks.
        1 => 4000usize..12_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let topic = 0..TOPICS.len();
    prop_oneof![
        30 => (topic.clone(), entry_len()).prop_map(|(topic, len)| Op::Append { topic, len }),
        10 => (topic.clone(), prop::collection::vec(entry_len(), 0..24))
            .prop_map(|(topic, lens)| Op::Batch { topic, lens }),
        1 => topic.clone().prop_map(|topic| Op::OversizedBatch { topic }),
        25 => (topic.clone(), any::<bool>())
            .prop_map(|(topic, checkpoint)| Op::ReadNext { topic, checkpoint }),
        12 => (topic, 0usize..20_000, any::<bool>()).prop_map(|(topic, max_bytes, checkpoint)| {
            Op::BatchRead {
                topic,
                max_bytes,
                checkpoint,
            }
        }),
        3 => Just(Op::Flush),
        4 => Just(Op::Reopen),
        10 => (0..TOPICS.len(), entry_len()).prop_map(|(topic, len)| Op::LogAppend { topic, len }),
        3 => (0..TOPICS.len(), prop::collection::vec(entry_len(), 0..8))
            .prop_map(|(topic, lens)| Op::LogBatch { topic, lens }),
        10 => (0..TOPICS.len(), 0usize..400).prop_map(|(topic, pos)| Op::ReadAt { topic, pos }),
        5 => (0..TOPICS.len(), 0usize..400, 0usize..40, 0usize..20_000).prop_map(
            |(topic, from, count, max_bytes)| Op::ReadRange {
                topic,
                from,
                count,
                max_bytes,
            }
        ),
        3 => (0..TOPICS.len(), prop_oneof![3 => 0usize..20, 1 => 0usize..200])
            .prop_map(|(topic, ahead)| Op::PurgeBefore { topic, ahead }),
        3 => (0..TOPICS.len(), prop_oneof![3 => 0usize..5, 1 => 0usize..100])
            .prop_map(|(topic, back)| Op::Truncate { topic, back }),
        2 => (0..TOPICS.len(), 0usize..=walrus_rust::META_BYTES_MAX)
            .prop_map(|(topic, len)| Op::SetMeta { topic, len }),
    ]
}

fn consistency() -> impl Strategy<Value = ReadConsistency> {
    prop_oneof![
        Just(ReadConsistency::StrictlyAtOnce),
        (1u32..6).prop_map(|persist_every| ReadConsistency::AtLeastOnce { persist_every }),
    ]
}

/// The bytes of entry `index` of `topic` written after `epoch` truncations of it:
/// recognisable (a removed entry never passes for its successor), and of the drawn length.
fn entry_bytes(topic: usize, index: usize, len: usize, epoch: usize) -> Vec<u8> {
    let mut data = format!("{topic}/{index}/{epoch}/").into_bytes();
    data.resize(len.max(data.len()), 0);
    for (i, b) in data.iter_mut().enumerate().skip(8) {
        *b = (i as u8).wrapping_mul(31) ^ index as u8;
    }
    data
}

#[derive(Default)]
struct Model {
    entries: Vec<Vec<Vec<u8>>>,
    delivered: Vec<usize>,
    /// The part of `delivered` whose cursor is persisted: where a reopen resumes.
    persisted: Vec<usize>,
    /// Truncations of each topic so far (part of its entries' bytes).
    epochs: Vec<usize>,
    /// Each topic's metadata record.
    meta: Vec<Option<Vec<u8>>>,
}

impl Model {
    fn new() -> Self {
        Self {
            entries: vec![Vec::new(); TOPICS.len()],
            delivered: vec![0; TOPICS.len()],
            persisted: vec![0; TOPICS.len()],
            epochs: vec![0; TOPICS.len()],
            meta: vec![None; TOPICS.len()],
        }
    }

    /// `truncate_from(cut)` with `cut` at or above the floor: the entries from `cut` on go,
    /// and a cursor past it moves back to it.
    fn truncate(&mut self, topic: usize, cut: usize) {
        if cut < self.entries[topic].len() {
            self.entries[topic].truncate(cut);
            self.epochs[topic] += 1;
        }
        self.delivered[topic] = self.delivered[topic].min(cut);
    }

    /// After a checkpointed read of `topic` delivered `count` entries: `StrictlyAtOnce`
    /// persists at once, `AtLeastOnce` once `persist_every` entries are unpersisted.
    fn checkpointed(&mut self, topic: usize, count: usize, mode: ReadConsistency) {
        if count == 0 {
            return;
        }
        self.delivered[topic] += count;
        let due = match mode {
            ReadConsistency::StrictlyAtOnce => true,
            ReadConsistency::AtLeastOnce { persist_every } => {
                self.delivered[topic] - self.persisted[topic] >= persist_every.max(1) as usize
            }
        };
        if due {
            self.persisted[topic] = self.delivered[topic];
        }
    }

    /// The purge floor: positions below it are not readable by position.
    fn floor(&self, topic: usize) -> usize {
        self.persisted[topic]
    }

    /// What `read_range(from..from + count, max_bytes)` returns.
    fn range(&self, topic: usize, from: usize, count: usize, max_bytes: usize) -> Vec<usize> {
        let entries = &self.entries[topic];
        let mut out = Vec::new();
        let mut bytes = 0;
        let (start, end) = (from.max(self.floor(topic)), from + count);
        for (p, entry) in entries.iter().enumerate().take(end).skip(start) {
            if !out.is_empty() && bytes + entry.len() > max_bytes {
                break;
            }
            bytes += entry.len();
            out.push(p);
        }
        out
    }

    /// `purge_before(p)`: the floor (the persisted cursor) moves up to `p`, and the cursor
    /// with it when it is behind; past the end, the positions skipped hold no entry (the
    /// cursor is past them, so no read reaches the placeholders).
    fn purge(&mut self, topic: usize, p: usize) {
        if p > self.persisted[topic] {
            self.delivered[topic] = self.delivered[topic].max(p);
            self.persisted[topic] = p;
        }
        if self.entries[topic].len() < p {
            self.entries[topic].resize(p, Vec::new());
        }
    }

    /// What a batch read of `max_bytes` returns: payloads until the next would exceed the
    /// budget, at least one when any is available, at most 2,000.
    fn batch(&self, topic: usize, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in &self.entries[topic][self.delivered[topic]..] {
            if out.len() == BATCH_READ_ENTRIES_MAX
                || (!out.is_empty() && bytes + entry.len() > max_bytes)
            {
                break;
            }
            bytes += entry.len();
            out.push(entry.clone());
        }
        out
    }
}

#[derive(Default)]
struct Figures {
    cases: u64,
    ops: u64,
    acked: u64,
    delivered: u64,
    reopens: u64,
}

fn open(dir: &Path, fd: bool, schedule: FsyncSchedule, mode: ReadConsistency) -> Walrus {
    Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(schedule)
        .consistency(mode)
        .block_bytes(4096)
        .blocks_per_file(4)
        // Topics start in small files (512-byte units, 32 per file) and grow into blocks.
        .small_unit_bytes(512)
        .build()
        .expect("open")
}

fn run_case(
    fd: bool,
    schedule: FsyncSchedule,
    mode: ReadConsistency,
    ops: &[Op],
    figures: &mut Figures,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut wal = open(dir.path(), fd, schedule, mode);
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let at = format!("step {step} {op:?}");
        match op {
            Op::Append { topic, len } => {
                let data = entry_bytes(
                    *topic,
                    model.entries[*topic].len(),
                    *len,
                    model.epochs[*topic],
                );
                wal.append_for_topic(TOPICS[*topic], &data)
                    .map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                model.entries[*topic].push(data);
                figures.acked += 1;
            }
            Op::Batch { topic, lens } => {
                let start = model.entries[*topic].len();
                let batch: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, len)| entry_bytes(*topic, start + i, *len, model.epochs[*topic]))
                    .collect();
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                wal.batch_append_for_topic(TOPICS[*topic], &refs)
                    .map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                figures.acked += batch.len() as u64;
                model.entries[*topic].extend(batch);
            }
            Op::OversizedBatch { topic } => {
                let entry = [7u8; 3];
                let refs = vec![&entry[..]; BATCH_READ_ENTRIES_MAX + 1];
                let err = wal
                    .batch_append_for_topic(TOPICS[*topic], &refs)
                    .expect_err("a batch over the limit is refused");
                prop_assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{}", at);
            }
            Op::ReadNext { topic, checkpoint } => {
                let got = wal
                    .read_next(TOPICS[*topic], *checkpoint)
                    .map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                let expected = model.entries[*topic].get(model.delivered[*topic]);
                prop_assert_eq!(got.as_ref().map(|e| &e.data), expected, "{}", at);
                if got.is_some() && *checkpoint {
                    model.checkpointed(*topic, 1, mode);
                    figures.delivered += 1;
                }
            }
            Op::BatchRead {
                topic,
                max_bytes,
                checkpoint,
            } => {
                let got = wal
                    .batch_read_for_topic(TOPICS[*topic], *max_bytes, *checkpoint)
                    .map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                let got: Vec<Vec<u8>> = got.into_iter().map(|e| e.data).collect();
                let expected = model.batch(*topic, *max_bytes);
                prop_assert_eq!(&got, &expected, "{}", at);
                if *checkpoint {
                    model.checkpointed(*topic, got.len(), mode);
                    figures.delivered += got.len() as u64;
                }
            }
            Op::Flush => wal
                .flush()
                .map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?,
            Op::Reopen => {
                // A clean close persists no cursor: reads since the last persist come again
                // (`AtLeastOnce` only; `StrictlyAtOnce` persisted them all).
                drop(wal);
                model.delivered.clone_from(&model.persisted);
                wal = open(dir.path(), fd, schedule, mode);
                figures.reopens += 1;
                let findings = wal.recovery_findings();
                prop_assert!(findings.is_empty(), "{}: findings {:?}", at, findings);
            }
            Op::LogAppend { .. }
            | Op::LogBatch { .. }
            | Op::ReadAt { .. }
            | Op::ReadRange { .. }
            | Op::PurgeBefore { .. }
            | Op::Truncate { .. }
            | Op::SetMeta { .. } => {
                run_log_op(&wal, op, &mut model, figures).map_err(|e| e.at(&at))?;
            }
        }
        figures.ops += 1;
    }
    // The end state: each topic's figures agree with the model, and draining it after a last
    // reopen delivers exactly the entries after the persisted cursor.
    drop(wal);
    model.delivered.clone_from(&model.persisted);
    let wal = open(dir.path(), fd, schedule, mode);
    for (t, name) in TOPICS.iter().enumerate() {
        let meta = wal.topic_log(name).map_err(io)?.meta();
        prop_assert_eq!(&meta, &model.meta[t], "metadata of {:?}", name);
        let next_seq = wal.topic(name).map_or(0, |info| info.next_seq);
        prop_assert_eq!(next_seq, model.entries[t].len() as u64, "topic {:?}", name);
        let mut rest = Vec::new();
        while let Some(entry) = wal
            .read_next(name, true)
            .map_err(|e| TestCaseError::fail(format!("final drain: {e}")))?
        {
            rest.push(entry.data);
        }
        prop_assert_eq!(
            &rest[..],
            &model.entries[t][model.delivered[t]..],
            "{:?}",
            name
        );
    }
    figures.cases += 1;
    Ok(())
}

/// A `TestCaseError` from a step, prefixed with where it happened.
trait At {
    fn at(self, at: &str) -> TestCaseError;
}

impl At for TestCaseError {
    fn at(self, at: &str) -> TestCaseError {
        TestCaseError::fail(format!("{at}: {self}"))
    }
}

fn io(err: std::io::Error) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// Runs one operation of the positional API against the model.
fn run_log_op(
    wal: &Walrus,
    op: &Op,
    model: &mut Model,
    figures: &mut Figures,
) -> Result<(), TestCaseError> {
    match op {
        Op::LogAppend { topic, len } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let position = model.entries[*topic].len();
            let data = entry_bytes(*topic, position, *len, model.epochs[*topic]);
            prop_assert_eq!(log.append(&data).map_err(io)?, position as u64);
            model.entries[*topic].push(data);
            figures.acked += 1;
        }
        Op::LogBatch { topic, lens } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let start = model.entries[*topic].len();
            let batch: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, len)| entry_bytes(*topic, start + i, *len, model.epochs[*topic]))
                .collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            let positions = log.append_batch(&refs).map_err(io)?;
            prop_assert_eq!(positions, start as u64..(start + batch.len()) as u64);
            figures.acked += batch.len() as u64;
            model.entries[*topic].extend(batch);
        }
        Op::ReadAt { topic, pos } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let entries = &model.entries[*topic];
            let p = pos % (entries.len() + 3);
            let expected = (p >= model.floor(*topic)).then(|| entries.get(p)).flatten();
            let got = log.read_at(p as u64).map_err(io)?;
            prop_assert_eq!(got.as_ref(), expected);
            let first = (model.floor(*topic) < entries.len()).then_some(model.floor(*topic));
            prop_assert_eq!(log.first(), first.map(|f| f as u64));
            prop_assert_eq!(log.next_position(), entries.len() as u64);
        }
        Op::ReadRange {
            topic,
            from,
            count,
            max_bytes,
        } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let from = from % (model.entries[*topic].len() + 3);
            let got = log
                .read_range(from as u64..(from + count) as u64, *max_bytes)
                .map_err(io)?;
            let expected = model.range(*topic, from, *count, *max_bytes);
            let positions: Vec<usize> = got.iter().map(|(p, _)| *p as usize).collect();
            prop_assert_eq!(&positions, &expected);
            for (p, data) in &got {
                prop_assert_eq!(data, &model.entries[*topic][*p as usize]);
            }
        }
        Op::PurgeBefore { topic, ahead } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            // From a little below the floor (a no-op) to past the end.
            let p = (model.floor(*topic) + ahead).saturating_sub(2);
            log.purge_before(p as u64).map_err(io)?;
            model.purge(*topic, p);
            let entries = model.entries[*topic].len();
            let first = (model.floor(*topic) < entries).then_some(model.floor(*topic) as u64);
            prop_assert_eq!(log.first(), first);
            prop_assert_eq!(log.next_position(), entries as u64);
        }
        Op::Truncate { topic, back } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let end = model.entries[*topic].len();
            let cut = end.saturating_sub(*back).max(model.floor(*topic));
            log.truncate_from(cut as u64).map_err(io)?;
            model.truncate(*topic, cut);
            prop_assert_eq!(log.next_position(), model.entries[*topic].len() as u64);
            prop_assert_eq!(log.read_at(cut as u64).map_err(io)?, None);
        }
        Op::SetMeta { topic, len } => {
            let log = wal.topic_log(TOPICS[*topic]).map_err(io)?;
            let meta = entry_bytes(*topic, 0, *len, model.epochs[*topic]);
            let meta = meta[..*len].to_vec();
            log.set_meta(&meta).map_err(io)?;
            prop_assert_eq!(log.meta(), Some(meta.clone()));
            model.meta[*topic] = Some(meta);
        }
        _ => unreachable!("not an operation of the positional API: {op:?}"),
    }
    Ok(())
}

fn run_backend(fd: bool) {
    let cases: u32 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed = seed_from_env();
    let backend = if fd { "fd" } else { "mmap" };
    println!("model: backend={backend} seed={seed} (replay with SEED={seed})");
    let started = std::time::Instant::now();
    let figures = RefCell::new(Figures::default());
    for schedule in SCHEDULES {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8..16].copy_from_slice(&format!("{schedule:?}").len().to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let strategy = (consistency(), prop::collection::vec(op(), 1..200));
        let result = runner.run(&strategy, |(mode, ops)| {
            run_case(fd, schedule, mode, &ops, &mut figures.borrow_mut())
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, (mode, ops))) => panic!(
                "model: {backend} {schedule:?} diverged (seed {seed}): {reason}\nminimal case: {mode:?} {ops:#?}"
            ),
            Err(err) => panic!("model: {backend} {schedule:?}: {err} (seed {seed})"),
        }
    }
    let figures = figures.into_inner();
    println!(
        "model: backend={backend} seed={seed} cases={} ops={} acked={} delivered={} reopens={} divergences=0 secs={:.1}",
        figures.cases,
        figures.ops,
        figures.acked,
        figures.delivered,
        figures.reopens,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn model_fd_backend_matches_the_model() {
    run_backend(true);
}

#[test]
fn model_mmap_backend_matches_the_model() {
    run_backend(false);
}

/// Minimal sequences that once diverged from the model, replayed on every run; each test is
/// named after the symptom.
#[test]
fn model_regression_clean_reopen_reports_no_partial_batch_behind_the_cursor() {
    // A batch split over two files, read whole: the second reopen (after the file holding the
    // batch's end was deleted) reported and cut a "partial batch" in the consumed first block.
    let ops = [
        Op::Append { topic: 2, len: 0 },
        Op::Append { topic: 0, len: 0 },
        Op::Append { topic: 1, len: 0 },
        Op::Batch {
            topic: 0,
            lens: vec![0, 6209],
        },
        Op::Append {
            topic: 0,
            len: 1873,
        },
        Op::Append { topic: 0, len: 0 },
        Op::BatchRead {
            topic: 0,
            max_bytes: 8094,
            checkpoint: true,
        },
        Op::Reopen,
        Op::Reopen,
    ];
    for fd in [true, false] {
        run_case(
            fd,
            FsyncSchedule::NoFsync,
            ReadConsistency::StrictlyAtOnce,
            &ops,
            &mut Figures::default(),
        )
        .unwrap();
    }
}
