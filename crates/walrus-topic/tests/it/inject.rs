//! T6: fail the Nth storage operation, SQLite-style (docs: shared RELIABILITY.md, section 3).
//!
//! A fixed scenario runs on the engine over `FaultyStorage` with `SyncEach`: open, appends to
//! three topics, a batch across blocks, checkpointed reads (`read_next`, `batch_read`), a
//! flush, a close, a reopen, more appends, a batch, a drain of two topics that lets consumed
//! files be deleted, more appends, a close. A run without faults counts the operations of each
//! kind. Then, for every kind, every N up to its count, every fault (EIO, ENOSPC, short write)
//! and both the transient and the persistent variant, the scenario runs again with the Nth
//! operation of that kind failing, and the power is cut either while the second instance is
//! open (after its batch) or at the end. Every call must return `Ok` or `Err` (a panic fails
//! the test), and an oracle records what was acknowledged: an append that returned `Ok` under
//! `SyncEach` is durable.
//!
//! At the cut, whatever failed, the faults are cleared, the power goes (every unsynced write
//! lost; for transient EIO also a second run where every write is kept, a process crash) and
//! the storage is recovered. Pass criteria: recovery succeeds; every acknowledged entry is
//! present, in order, unless it was delivered and consumed (I1, I2); nothing unknown,
//! duplicated or out of order comes back, and an entry whose append failed never sits before
//! an acknowledged one unless a reopened instance already had it (I3); batches are whole; the
//! cursor passes no entry that was not delivered and lies past every delivered one (I4); a
//! second recovery gives the same state (I5); after a failed fsync every later append of that
//! instance fails with "poisoned" (I7); while running, no checkpointed read skips an
//! acknowledged entry or finds nothing while one is unread.
//!
//! `INJECT_CASE=<kind>:<n>:<fault>:<transient|persistent>` (for example `Sync:3:Eio:transient`)
//! replays one combination with both cuts and both power-loss modes and prints every call;
//! `INJECT_FULL=1` (as `cargo xtask reliability` sets it) adds the process-crash run to every
//! combination.

use std::{
    collections::{BTreeMap, HashMap},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use walrus_alloc::AllocConfig;
use walrus_storage::{BackendKind, Fault, FaultPlan, FaultyStorage, OpKind, PowerLoss, Storage};
use walrus_topic::{Engine, EngineConfig, FsyncSchedule, ReadConsistency, ReadEntry, TopicInfo};

use crate::support::env_on;

const TOPICS: [&str; 3] = ["orders", "payments", ""];
const KINDS: [OpKind; 7] = [
    OpKind::Create,
    OpKind::Open,
    OpKind::Write,
    OpKind::Read,
    OpKind::Sync,
    OpKind::Remove,
    OpKind::SyncDir,
];
const FAULTS: [Fault; 3] = [Fault::Eio, Fault::Enospc, Fault::ShortWrite];
const SYNC: FsyncSchedule = FsyncSchedule::SyncEach;
const MODE: ReadConsistency = ReadConsistency::StrictlyAtOnce;

fn config() -> EngineConfig {
    EngineConfig {
        dir: "<inject>".into(),
        backend: BackendKind::Faulty,
        alloc: AllocConfig {
            block_bytes: 4096,
            blocks_per_file: 2,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync: SYNC,
        quiet: true,
        ..EngineConfig::default()
    }
}

fn open(storage: &FaultyStorage) -> walrus_topic::Result<Arc<Engine>> {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// The append returned `Ok` under `SyncEach`: durable.
    Acked,
    /// The append returned an error: the entry may or may not exist.
    Failed,
}

#[derive(Debug)]
struct Attempt {
    data: Vec<u8>,
    status: Status,
    /// The batch append it was part of.
    batch: Option<usize>,
    /// The engine instance (1 = first open) that made the attempt.
    instance: u32,
}

#[derive(Debug, Default)]
struct TopicModel {
    attempts: Vec<Attempt>,
    /// Attempts delivered by a checkpointed read that returned `Ok`, in order.
    delivered: Vec<usize>,
    /// Whether a checkpointed read failed since the last one that succeeded.
    read_failed: bool,
}

/// Where the scenario stops for the power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// After the second instance's appends, with the instance still open.
    WhileOpen,
    /// After the whole scenario, both instances closed.
    AtEnd,
}

/// One combination: which operation fails and how, and how the run ends.
#[derive(Clone, Copy, Debug)]
struct Combo {
    kind: OpKind,
    nth: u64,
    fault: Fault,
    persistent: bool,
    cut: Cut,
    power: PowerLoss,
}

impl Combo {
    fn label(&self) -> String {
        let variant = if self.persistent {
            "persistent"
        } else {
            "transient"
        };
        format!(
            "{:?}:{}:{:?}:{variant} (cut {:?}, {:?})",
            self.kind, self.nth, self.fault, self.cut, self.power
        )
    }
}

/// What one combination found.
#[derive(Default)]
struct Outcome {
    errors: u64,
    acked: u64,
    lost: u64,
    corrupt: u64,
    duplicate: u64,
    out_of_order: u64,
    poison_checks: u64,
    fired: bool,
    fired_in: Option<String>,
    problems: Vec<(String, String)>,
}

/// The scenario with its oracle. Every engine call goes through a method that records it.
struct Run {
    storage: FaultyStorage,
    plan: Option<FaultPlan>,
    engine: Option<Arc<Engine>>,
    instance: u32,
    /// Whether an injected fsync failure happened during the current instance.
    sync_failed: bool,
    /// The call during which the injected fault first fired.
    fired_in: Option<String>,
    /// What instances up to this one wrote was visible to a later, reopened instance.
    reopened_up_to: u32,
    topics: Vec<TopicModel>,
    batches: usize,
    verbose: bool,
    out: Outcome,
}

fn entry_data(topic: usize, index: usize, len: usize) -> Vec<u8> {
    let mut data = format!("{topic}:{index}:").into_bytes();
    data.extend((0..len).map(|i| b'a' + ((i + index) % 26) as u8));
    data
}

impl Run {
    fn new(plan: Option<FaultPlan>, verbose: bool) -> Self {
        let storage = FaultyStorage::new();
        if let Some(plan) = plan {
            storage.inject(plan);
        }
        Self {
            storage,
            plan,
            engine: None,
            instance: 0,
            sync_failed: false,
            fired_in: None,
            reopened_up_to: 0,
            topics: (0..TOPICS.len()).map(|_| TopicModel::default()).collect(),
            batches: 0,
            verbose,
            out: Outcome::default(),
        }
    }

    fn problem(&mut self, kind: &str, detail: String) {
        if self.verbose {
            println!("  PROBLEM {kind}: {detail}");
        }
        self.out.problems.push((kind.to_owned(), detail));
    }

    /// Whether the injected fault has fired by now.
    fn fired(&self) -> bool {
        self.plan
            .is_some_and(|p| self.storage.op_count(p.op.expect("a kind")) >= p.nth)
    }

    fn plan_count(&self) -> u64 {
        self.plan
            .map_or(0, |p| self.storage.op_count(p.op.expect("a kind")))
    }

    /// Runs `f` on the open instance (if any), noting whether the injected fault fired in it
    /// and whether that was a failed fsync. Returns `None` without an instance.
    fn call<T>(&mut self, name: &str, f: impl FnOnce(&Engine) -> T) -> Option<T> {
        let engine = self.engine.clone()?;
        let before = self.plan_count();
        let result = f(&engine);
        self.after(name, before);
        Some(result)
    }

    /// Notes what the injected fault did during a call that started at count `before`.
    fn after(&mut self, name: &str, before: u64) {
        let Some(plan) = self.plan else {
            return;
        };
        let after = self.plan_count();
        let first_failing = plan.nth.max(before + 1);
        let failed = first_failing <= after && (plan.persistent || first_failing == plan.nth);
        if failed {
            if self.fired_in.is_none() {
                self.fired_in = Some(name.to_owned());
            }
            if plan.op == Some(OpKind::Sync) {
                self.sync_failed = true;
            }
        }
    }

    fn log(&self, what: &str, result: &str) {
        if self.verbose {
            println!("  {what}: {result}");
        }
    }

    fn open(&mut self) {
        let before = self.plan_count();
        let result = open(&self.storage);
        // A fault inside open fails the open: no instance is left to poison.
        self.after("open", before);
        self.log("open", &format!("{:?}", result.as_ref().map(|_| ())));
        match result {
            Ok(engine) => {
                if self.instance > 0 {
                    self.reopened_up_to = self.instance;
                }
                self.instance += 1;
                self.sync_failed = false;
                self.engine = Some(engine);
            }
            Err(_) => self.out.errors += 1,
        }
    }

    fn close(&mut self) {
        let before = self.plan_count();
        if self.engine.take().is_some() {
            self.after("close", before);
            self.log("close", "");
        }
    }

    /// Checks an append's result against the poison rule and records the attempt(s).
    fn record_append(
        &mut self,
        topic: usize,
        entries: Vec<Vec<u8>>,
        batch: bool,
        result: String,
        after_failed_sync: bool,
    ) {
        let ok = result.is_empty();
        if after_failed_sync {
            self.out.poison_checks += 1;
            if ok {
                self.problem(
                    "append acknowledged after a failed fsync",
                    format!("topic {topic}: instance {} was not poisoned", self.instance),
                );
            } else if !result.contains("poisoned") {
                self.problem(
                    "append after a failed fsync fails without \"poisoned\"",
                    format!("topic {topic}: {result}"),
                );
            }
        }
        if !ok {
            self.out.errors += 1;
        }
        let batch = batch.then(|| {
            self.batches += 1;
            self.batches
        });
        let status = if ok { Status::Acked } else { Status::Failed };
        for data in entries {
            if ok {
                self.out.acked += 1;
            }
            self.topics[topic].attempts.push(Attempt {
                data,
                status,
                batch,
                instance: self.instance,
            });
        }
    }

    fn append(&mut self, topic: usize, len: usize) {
        let data = entry_data(topic, self.topics[topic].attempts.len(), len);
        let after_failed_sync = self.sync_failed;
        let Some(result) = self.call("append", |e| e.append(TOPICS[topic], &data, SYNC)) else {
            return;
        };
        let result = result.err().map(|e| e.to_string()).unwrap_or_default();
        self.log(&format!("append t{topic}"), &result);
        self.record_append(topic, vec![data], false, result, after_failed_sync);
    }

    fn batch(&mut self, topic: usize, count: usize, len: usize) {
        let first = self.topics[topic].attempts.len();
        let entries: Vec<Vec<u8>> = (0..count)
            .map(|i| entry_data(topic, first + i, len))
            .collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let after_failed_sync = self.sync_failed;
        let Some(result) = self.call("batch_append", |e| {
            e.batch_append(TOPICS[topic], &refs, SYNC)
        }) else {
            return;
        };
        let result = result.err().map(|e| e.to_string()).unwrap_or_default();
        self.log(&format!("batch t{topic} x{count}"), &result);
        self.record_append(topic, entries, true, result, after_failed_sync);
    }

    fn flush(&mut self) {
        let Some(result) = self.call("flush", Engine::flush) else {
            return;
        };
        self.log("flush", &format!("{result:?}"));
        if result.is_err() {
            self.out.errors += 1;
        }
    }

    /// The attempt index of `data` in `topic`, if it is one.
    fn attempt_of(&self, topic: usize, data: &[u8]) -> Option<usize> {
        self.topics[topic]
            .attempts
            .iter()
            .position(|a| a.data == data)
    }

    /// Checks entries a checkpointed read delivered, in order, and records them.
    fn delivered(&mut self, topic: usize, entries: &[ReadEntry]) {
        for entry in entries {
            let Some(index) = self.attempt_of(topic, &entry.data) else {
                self.out.corrupt += 1;
                self.problem(
                    "read returned an unknown entry",
                    format!("topic {topic}: seq {}", entry.seq),
                );
                continue;
            };
            let model = &self.topics[topic];
            let after = model.delivered.last().map_or(0, |last| last + 1);
            if index < after {
                self.out.duplicate += 1;
                let detail = format!("topic {topic}: attempt {index} delivered again");
                self.problem("read delivered an entry twice", detail);
            } else if let Some(skipped) =
                (after..index).find(|i| model.attempts[*i].status == Status::Acked)
            {
                let why = if model.read_failed {
                    "read skipped an acknowledged entry after a failed read"
                } else {
                    "read skipped an acknowledged entry"
                };
                let detail = format!("topic {topic}: attempt {skipped} skipped, got {index}");
                self.problem(why, detail);
            }
            let model = &mut self.topics[topic];
            model.delivered.push(index);
            model.read_failed = false;
        }
    }

    /// After a read found nothing: every acknowledged entry must have been delivered.
    fn drained(&mut self, topic: usize) {
        let model = &self.topics[topic];
        let after = model.delivered.last().map_or(0, |last| last + 1);
        if let Some(unread) =
            (after..model.attempts.len()).find(|i| model.attempts[*i].status == Status::Acked)
        {
            let why = if model.read_failed {
                "read found nothing while acknowledged entries were unread, after a failed read"
            } else {
                "read found nothing while acknowledged entries were unread"
            };
            self.problem(why, format!("topic {topic}: attempt {unread}"));
        }
    }

    fn read_next(&mut self, topic: usize) -> bool {
        let Some(result) = self.call("read_next", |e| e.read_next(TOPICS[topic], true, MODE))
        else {
            return false;
        };
        self.log(
            &format!("read_next t{topic}"),
            &format!("{:?}", result.as_ref().map(|e| e.as_ref().map(|e| e.seq))),
        );
        match result {
            Ok(Some(entry)) => {
                self.delivered(topic, &[entry]);
                true
            }
            Ok(None) => {
                self.drained(topic);
                false
            }
            Err(_) => {
                self.out.errors += 1;
                self.topics[topic].read_failed = true;
                false
            }
        }
    }

    fn batch_read(&mut self, topic: usize, max_bytes: usize) -> bool {
        let Some(result) = self.call("batch_read", |e| {
            e.batch_read(TOPICS[topic], max_bytes, true, MODE)
        }) else {
            return false;
        };
        self.log(
            &format!("batch_read t{topic}"),
            &format!(
                "{:?}",
                result
                    .as_ref()
                    .map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>())
            ),
        );
        match result {
            Ok(entries) if entries.is_empty() => {
                self.drained(topic);
                false
            }
            Ok(entries) => {
                self.delivered(topic, &entries);
                true
            }
            Err(_) => {
                self.out.errors += 1;
                self.topics[topic].read_failed = true;
                false
            }
        }
    }

    /// The fixed scenario, up to the power cut.
    fn scenario(&mut self, cut: Cut) {
        // Instance 1.
        self.open();
        for round in 0..5 {
            self.append(0, 900);
            self.append(1, 300 + 10 * round);
            self.append(2, 50);
        }
        self.batch(1, 12, 350);
        for _ in 0..3 {
            self.read_next(0);
        }
        for _ in 0..2 {
            self.batch_read(1, 2000);
        }
        self.read_next(2);
        self.flush();
        self.close();
        // Instance 2.
        self.open();
        for _ in 0..3 {
            self.append(0, 700);
            self.append(1, 200);
            self.append(2, 1200);
        }
        self.batch(2, 8, 600);
        if cut == Cut::WhileOpen {
            return;
        }
        // Drain two topics, so fully consumed files are deleted; the third keeps what it has.
        for _ in 0..40 {
            if !self.read_next(0) {
                break;
            }
        }
        for _ in 0..10 {
            if !self.batch_read(1, 3000) {
                break;
            }
        }
        for topic in 0..TOPICS.len() {
            self.append(topic, 100);
        }
        self.flush();
        self.close();
    }

    /// Cuts the power, recovers with the faults cleared, and checks the oracle.
    fn verify(&mut self, power: PowerLoss) {
        self.storage.clear_faults();
        // The power goes first: an instance still open gets no chance to sync at close.
        self.storage.power_loss(power);
        self.engine = None;
        let engine = match open(&self.storage) {
            Ok(engine) => engine,
            Err(err) => {
                self.problem(
                    "recovery failed after the faults were cleared",
                    err.to_string(),
                );
                return;
            }
        };
        let before = snapshot(&engine);
        for (topic, (info, entries)) in before.iter().enumerate() {
            self.check_topic(topic, info.as_ref(), entries);
        }
        drop(engine);
        match open(&self.storage) {
            Ok(engine) => {
                let after = snapshot(&engine);
                if after != before {
                    let detail = format!("{:?} then {:?}", summary(&before), summary(&after));
                    self.problem("second recovery differs", detail);
                }
            }
            Err(err) => self.problem("second recovery failed", err.to_string()),
        }
    }

    fn check_topic(&mut self, topic: usize, info: Option<&TopicInfo>, entries: &[ReadEntry]) {
        let mut indexes: Vec<usize> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let seq_ok = i == 0 || entry.seq == entries[i - 1].seq + 1;
            if !seq_ok {
                let detail = format!(
                    "topic {topic}: seq {} after {}",
                    entry.seq,
                    entries[i - 1].seq
                );
                self.problem("sequence numbers not consecutive", detail);
            }
            match self.attempt_of(topic, &entry.data) {
                None => {
                    self.out.corrupt += 1;
                    self.problem(
                        "unknown entry recovered",
                        format!("topic {topic}: seq {}", entry.seq),
                    );
                }
                Some(index) => {
                    if let Some(&last) = indexes.last() {
                        if index == last {
                            self.out.duplicate += 1;
                            self.problem("entry recovered twice", format!("topic {topic}"));
                        } else if index < last {
                            self.out.out_of_order += 1;
                            self.problem(
                                "entries recovered out of order",
                                format!("topic {topic}"),
                            );
                        }
                    }
                    indexes.push(index);
                }
            }
        }
        let model = &self.topics[topic];
        let present: HashMap<usize, u64> = indexes
            .iter()
            .zip(entries)
            .map(|(index, entry)| (*index, entry.seq))
            .collect();
        // The first entry left on disk; with none left, all were consumed if the cursor is at
        // the end, and all are missing otherwise.
        let consumed_all = info.is_some_and(|i| i.lag == 0);
        let first = indexes.first().copied().unwrap_or(if consumed_all {
            model.attempts.len()
        } else {
            0
        });
        let delivered: Vec<bool> = {
            let mut d = vec![false; model.attempts.len()];
            model.delivered.iter().for_each(|i| d[*i] = true);
            d
        };
        let mut problems = Vec::new();
        // I1: acknowledged entries are present, or were delivered and consumed before the
        // first entry still on disk.
        let absent: Vec<usize> = (0..model.attempts.len())
            .filter(|i| model.attempts[*i].status == Status::Acked && !present.contains_key(i))
            .collect();
        let lost: Vec<usize> = absent.iter().copied().filter(|i| *i >= first).collect();
        let skipped: Vec<usize> = absent
            .iter()
            .copied()
            .filter(|i| *i < first && !delivered[*i])
            .collect();
        if !lost.is_empty() {
            self.out.lost += lost.len() as u64;
            problems.push((
                "acknowledged entries lost",
                format!(
                    "topic {topic}: attempts {lost:?} of {}",
                    model.attempts.len()
                ),
            ));
        }
        if !skipped.is_empty() {
            self.out.lost += skipped.len() as u64;
            problems.push((
                "acknowledged entries gone before the cursor, never delivered",
                format!(
                    "topic {topic}: attempts {skipped:?} of {}",
                    model.attempts.len()
                ),
            ));
        }
        // I3: an entry whose append failed never sits before an acknowledged one, unless a
        // reopened instance saw it (it then became part of the log).
        let last_acked = indexes
            .iter()
            .copied()
            .filter(|i| model.attempts[*i].status == Status::Acked)
            .max();
        for &index in &indexes {
            let attempt = &model.attempts[index];
            let adopted = attempt.instance <= self.reopened_up_to;
            if attempt.status == Status::Failed
                && !adopted
                && last_acked.is_some_and(|last| index < last)
            {
                problems.push((
                    "failed append recovered before an acknowledged one",
                    format!("topic {topic}: attempt {index}"),
                ));
            }
        }
        // Batches are whole: of the part not consumed, all or nothing is present.
        let mut batches: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        for (index, attempt) in model.attempts.iter().enumerate().skip(first) {
            if let Some(batch) = attempt.batch {
                let counts = batches.entry(batch).or_default();
                counts.0 += 1;
                counts.1 += usize::from(present.contains_key(&index));
            }
        }
        for (batch, (size, kept)) in batches {
            if kept != 0 && kept != size {
                problems.push((
                    "batch recovered in part",
                    format!("topic {topic}: batch {batch}: {kept} of {size}"),
                ));
            }
        }
        // I4: the cursor passes only delivered entries, and every delivery was persisted.
        if let Some(info) = info {
            for (&index, &seq) in &present {
                if seq < info.cursor && !delivered[index] {
                    problems.push((
                        "cursor passes an entry never delivered",
                        format!(
                            "topic {topic}: attempt {index} seq {seq} < cursor {}",
                            info.cursor
                        ),
                    ));
                }
                if seq >= info.cursor && delivered[index] {
                    problems.push((
                        "cursor behind a delivered entry",
                        format!(
                            "topic {topic}: attempt {index} seq {seq} >= cursor {}",
                            info.cursor
                        ),
                    ));
                }
            }
        }
        for (kind, detail) in problems {
            self.problem(kind, detail);
        }
    }
}

type Snapshot = Vec<(Option<TopicInfo>, Vec<ReadEntry>)>;

fn snapshot(engine: &Engine) -> Snapshot {
    TOPICS
        .iter()
        .map(|t| {
            (
                engine.topic_info_of(t),
                engine.read_from(t, 0, usize::MAX).unwrap_or_default(),
            )
        })
        .collect()
}

fn summary(snapshot: &Snapshot) -> Vec<(Option<u64>, Vec<u64>)> {
    snapshot
        .iter()
        .map(|(info, entries)| {
            (
                info.as_ref().map(|i| i.cursor),
                entries.iter().map(|e| e.seq).collect(),
            )
        })
        .collect()
}

/// Runs one combination, scenario and check, catching panics.
fn run_combo(combo: Combo, verbose: bool) -> Outcome {
    let plan = FaultPlan {
        op: Some(combo.kind),
        nth: combo.nth,
        fault: combo.fault,
        persistent: combo.persistent,
    };
    let mut run = Run::new(Some(plan), verbose);
    let result = catch_unwind(AssertUnwindSafe(|| {
        run.scenario(combo.cut);
        run.out.fired = run.fired();
        run.out.fired_in.clone_from(&run.fired_in);
        run.verify(combo.power);
    }));
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        run.problem("panic", message);
    }
    run.out
}

/// Operation counts of the scenario without faults (and a check that it passes).
fn baseline() -> HashMap<OpKind, u64> {
    let mut run = Run::new(None, false);
    run.scenario(Cut::AtEnd);
    let counts = KINDS
        .iter()
        .map(|k| (*k, run.storage.op_count(*k)))
        .collect();
    run.verify(PowerLoss::DropAll);
    assert!(
        run.out.problems.is_empty() && run.out.errors == 0,
        "the scenario fails without faults: {:?}",
        run.out.problems
    );
    counts
}

/// Every combination: kind, N, fault, variant, cut; the power-loss modes for each.
fn combos(counts: &HashMap<OpKind, u64>, full: bool) -> Vec<Combo> {
    let mut out = Vec::new();
    for kind in KINDS {
        for nth in 1..=counts[&kind] {
            for fault in FAULTS {
                for persistent in [false, true] {
                    for cut in [Cut::WhileOpen, Cut::AtEnd] {
                        let combo = |power| Combo {
                            kind,
                            nth,
                            fault,
                            persistent,
                            cut,
                            power,
                        };
                        out.push(combo(PowerLoss::DropAll));
                        if full || (fault == Fault::Eio && !persistent) {
                            out.push(combo(PowerLoss::KeepAll));
                        }
                    }
                }
            }
        }
    }
    out
}

fn parse_case(text: &str) -> Combo {
    let parts: Vec<&str> = text.split(':').collect();
    let [kind, nth, fault, variant] = parts[..] else {
        panic!("INJECT_CASE is <kind>:<n>:<fault>:<transient|persistent>, not {text:?}");
    };
    let kind = *KINDS
        .iter()
        .find(|k| format!("{k:?}") == kind)
        .expect("a known op kind");
    let fault = *FAULTS
        .iter()
        .find(|f| format!("{f:?}") == fault)
        .expect("a known fault");
    Combo {
        kind,
        nth: nth.parse().expect("a number"),
        fault,
        persistent: variant == "persistent",
        cut: Cut::AtEnd,
        power: PowerLoss::DropAll,
    }
}

/// Aborts the process if no combination finishes for a minute: a hang is a failure too.
struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(progress: Arc<AtomicU64>, current: Arc<Mutex<String>>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut last = (progress.load(Ordering::Relaxed), Instant::now());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(60) {
                    eprintln!(
                        "inject: HANG in {} (no progress for 60 s)",
                        current.lock().unwrap()
                    );
                    std::process::abort();
                }
            }
        });
        Self { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Runs every combination of the operation kinds `kinds` (or the one `INJECT_CASE` names)
/// and fails on any violation.
fn run_kinds(kinds: &[OpKind]) {
    let started = Instant::now();
    let full = env_on("INJECT_FULL");
    let counts = baseline();
    let names: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
    let names = names.join("+");
    let mut counts_line: Vec<String> = KINDS
        .iter()
        .map(|k| format!("{k:?}={}", counts[k]))
        .collect();
    counts_line.sort();
    println!(
        "inject: {names}: operations of the scenario without faults: {}",
        counts_line.join(" ")
    );
    let selected: Vec<Combo> = match std::env::var("INJECT_CASE") {
        Ok(text) => {
            let combo = parse_case(&text);
            let mut all = Vec::new();
            if kinds.contains(&combo.kind) {
                for cut in [Cut::WhileOpen, Cut::AtEnd] {
                    for power in [PowerLoss::DropAll, PowerLoss::KeepAll] {
                        all.push(Combo {
                            cut,
                            power,
                            ..combo
                        });
                    }
                }
            }
            all
        }
        Err(_) => combos(&counts, full)
            .into_iter()
            .filter(|c| kinds.contains(&c.kind))
            .collect(),
    };
    let verbose = std::env::var_os("INJECT_CASE").is_some();
    let progress = Arc::new(AtomicU64::new(0));
    let current = Arc::new(Mutex::new(String::new()));
    let _watchdog = Watchdog::start(Arc::clone(&progress), Arc::clone(&current));
    let mut total = Outcome::default();
    let mut combinations = 0u64;
    let mut fired = 0u64;
    let mut failing_combinations = 0u64;
    let mut failing: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for combo in &selected {
        *current.lock().unwrap() = combo.label();
        if verbose {
            println!("combination {}", combo.label());
        }
        let out = run_combo(*combo, verbose);
        progress.fetch_add(1, Ordering::Relaxed);
        combinations += 1;
        fired += u64::from(out.fired);
        total.errors += out.errors;
        total.acked += out.acked;
        total.lost += out.lost;
        total.corrupt += out.corrupt;
        total.duplicate += out.duplicate;
        total.out_of_order += out.out_of_order;
        total.poison_checks += out.poison_checks;
        if out.problems.is_empty() {
            continue;
        }
        failing_combinations += 1;
        let mut problems: Vec<&str> = out.problems.iter().map(|(k, _)| k.as_str()).collect();
        problems.sort_unstable();
        problems.dedup();
        let fired_in = out.fired_in.as_deref().unwrap_or("-");
        let kind = format!(
            "{:?} {:?} failing in {fired_in}: {}",
            combo.kind,
            combo.fault,
            problems.join(", ")
        );
        let details: Vec<String> = out
            .problems
            .iter()
            .map(|(k, d)| format!("{k}: {d}"))
            .collect();
        let variant = if combo.persistent {
            "persistent"
        } else {
            "transient"
        };
        let example = format!(
            "INJECT_CASE={:?}:{}:{:?}:{variant} (cut {:?}, {:?}): {}",
            combo.kind,
            combo.nth,
            combo.fault,
            combo.cut,
            combo.power,
            details.join("; ")
        );
        failing.entry(kind).or_insert((0, example)).0 += 1;
    }
    println!(
        "inject: {names}: combinations={combinations} faults_fired={fired} errors_surfaced={} acked={} acked_lost={} corrupt={} duplicate={} out_of_order={} poison_checks={} failing_combinations={failing_combinations} secs={:.1}",
        total.errors,
        total.acked,
        total.lost,
        total.corrupt,
        total.duplicate,
        total.out_of_order,
        total.poison_checks,
        started.elapsed().as_secs_f64(),
    );
    if !failing.is_empty() {
        for (kind, (count, example)) in &failing {
            eprintln!("  {count} combinations: {kind}\n    e.g. {example}");
        }
        panic!(
            "inject {names}: {failing_combinations} of {combinations} combinations violate the pass criteria"
        );
    }
}

#[test]
fn inject_failed_file_create_remove_or_dir_sync_keeps_acknowledged_entries() {
    run_kinds(&[OpKind::Create, OpKind::Remove, OpKind::SyncDir]);
}

#[test]
fn inject_failed_open_or_read_keeps_acknowledged_entries() {
    run_kinds(&[OpKind::Open, OpKind::Read]);
}

#[test]
fn inject_failed_write_keeps_acknowledged_entries_and_leaves_no_partial_entry() {
    run_kinds(&[OpKind::Write]);
}

#[test]
fn inject_failed_fsync_poisons_the_instance_and_keeps_acknowledged_entries() {
    run_kinds(&[OpKind::Sync]);
}
