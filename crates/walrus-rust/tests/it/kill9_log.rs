//! T3 for the log primitives: a child appends, truncates, purges and sets metadata through
//! `TopicLog`, announcing each operation before it starts (`BEGIN`) and after it returned
//! (`DONE`); the parent SIGKILLs it at a random moment (often inside a truncation or a purge,
//! which take several syncs), reopens the directory and checks the log against what was
//! acknowledged:
//! - every acknowledged entry at or above the purge floor is there, once, in order, with the
//!   payload of the epoch that wrote it (a truncated entry never comes back);
//! - an operation in flight at the kill either took effect whole or not at all: a truncation
//!   leaves all of the old suffix or none of it; an append in flight may be there, after
//!   everything acknowledged;
//! - the metadata record is the last one set (or the one in flight).
//!
//! Each of several rounds continues on the directory the previous kill left.
//! `KILL_CYCLES` sets the number of directories (default 6; `cargo xtask reliability` runs the
//! kill -9 cycles of both harnesses), `SEED` replays one.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use walrus_rust::TopicLog;

use crate::support::*;

const TOPICS: usize = 2;
const ROUNDS: u64 = 3;

fn entry(topic: usize, position: u64, tag: u64) -> Vec<u8> {
    let mut data = format!("{topic}:{position}:{tag}:").into_bytes();
    data.resize(data.len() + (tag % 300) as usize, b'x');
    data
}

/// The tag of an entry written by [`entry`], if it is one of `topic`'s at `position`.
fn tag_of(topic: usize, position: u64, data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.split(':');
    let ok = parts.next()? == topic.to_string() && parts.next()? == position.to_string();
    let tag = parts.next()?.parse().ok()?;
    (ok && data == entry(topic, position, tag)).then_some(tag)
}

/// Child side: random log operations until killed.
#[test]
#[ignore = "run as a child process by kill9_log_operations_are_all_or_nothing"]
fn child_log_ops_until_killed() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let (backend, schedule) = (
        std::env::var("BACKEND").unwrap(),
        std::env::var("SCHEDULE").unwrap(),
    );
    let mut rng = Rng(std::env::var("SEED").unwrap().parse().unwrap());
    let wal = open_cell(std::path::Path::new(&dir), &backend, &schedule).unwrap();
    let logs: Vec<TopicLog> = (0..TOPICS)
        .map(|t| wal.topic_log(&format!("log{t}")).unwrap())
        .collect();
    println!("\nREADY");
    // Tags are unique per child run: a seed-derived base plus a counter.
    let mut tag = rng.next() >> 16;
    loop {
        let t = rng.below(TOPICS as u64) as usize;
        let log = &logs[t];
        let next = log.next_position();
        tag += 1;
        match rng.below(100) {
            0..=59 => {
                println!("BEGIN A {t} {next} {tag}");
                log.append(&entry(t, next, tag)).unwrap();
            }
            60..=79 => {
                let n = 1 + rng.below(8);
                let batch: Vec<Vec<u8>> = (0..n).map(|i| entry(t, next + i, tag + i)).collect();
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                println!("BEGIN B {t} {next} {n} {tag}");
                log.append_batch(&refs).unwrap();
                tag += n;
            }
            80..=88 => {
                let floor = log.first().unwrap_or(next);
                let cut = floor + rng.below(next - floor + 1);
                println!("BEGIN T {t} {cut}");
                log.truncate_from(cut).unwrap();
            }
            89..=93 => {
                let floor = log.first().unwrap_or(next);
                let p = floor + rng.below(next - floor + 4);
                println!("BEGIN P {t} {p}");
                log.purge_before(p).unwrap();
            }
            _ => {
                println!("BEGIN M {t} {tag}");
                log.set_meta(format!("meta {tag}").as_bytes()).unwrap();
            }
        }
        println!("DONE");
    }
}

/// What the parent knows of one topic: its acknowledged entries by position (tag), floor and
/// metadata.
#[derive(Clone, Debug, Default)]
struct Known {
    entries: BTreeMap<u64, u64>,
    next: u64,
    floor: u64,
    meta: Option<Vec<u8>>,
}

impl Known {
    fn apply(&mut self, op: &[u64], kind: &str) {
        match kind {
            "A" => {
                self.entries.insert(op[1], op[2]);
                self.next = op[1] + 1;
            }
            "B" => {
                for i in 0..op[2] {
                    self.entries.insert(op[1] + i, op[3] + i);
                }
                self.next = op[1] + op[2];
            }
            "T" => {
                self.entries.split_off(&op[1]);
                self.next = self.next.min(op[1]);
            }
            "P" => {
                self.floor = self.floor.max(op[1]);
                self.entries = self.entries.split_off(&self.floor);
                self.next = self.next.max(self.floor);
            }
            _ => self.meta = Some(format!("meta {}", op[1]).into_bytes()),
        }
    }
}

/// Reads topic `t` as the reopened instance has it.
fn observe(log: &TopicLog, t: usize) -> Known {
    let mut known = Known {
        next: log.next_position(),
        floor: log.first().unwrap_or(log.next_position()),
        meta: log.meta(),
        ..Known::default()
    };
    for (position, data) in log.read_range(.., usize::MAX).unwrap() {
        let tag =
            tag_of(t, position, &data).unwrap_or_else(|| panic!("foreign entry at {position}"));
        known.entries.insert(position, tag);
    }
    known
}

/// Whether `seen` is what `known` says, or `known` with the operation in flight applied.
fn check(seen: &Known, known: &Known, in_flight: Option<(&str, &[u64])>) -> Result<(), String> {
    let mut candidates = vec![known.clone()];
    if let Some((kind, op)) = in_flight {
        let mut after = known.clone();
        after.apply(op, kind);
        candidates.push(after);
    }
    let matches = |c: &Known| {
        c.entries == seen.entries
            && c.next == seen.next
            && c.meta == seen.meta
            && (seen.floor == c.floor || seen.entries.is_empty() && seen.floor >= c.floor)
    };
    if candidates.iter().any(matches) {
        Ok(())
    } else {
        let brief = |k: &Known| {
            let first = k.entries.keys().next().copied();
            format!(
                "{} entries from {first:?}, next {}, floor {}, meta {:?}",
                k.entries.len(),
                k.next,
                k.floor,
                k.meta.as_deref().map(String::from_utf8_lossy)
            )
        };
        Err(format!(
            "found {}; acknowledged {}; in flight {in_flight:?}",
            brief(seen),
            brief(known)
        ))
    }
}

#[test]
fn kill9_log_operations_are_all_or_nothing() {
    let cycles: u64 = std::env::var("KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let base = seed_from_env();
    let (mut kills, mut in_flight_kills, mut acked_ops) = (0u64, 0u64, 0u64);
    let mut in_flight_kinds: BTreeMap<String, u64> = BTreeMap::new();
    for cycle in 0..cycles {
        let seed = base.wrapping_add(cycle);
        let (backend, schedule) = CRASH_MATRIX[(seed % CRASH_MATRIX.len() as u64) as usize];
        let dir = tempfile::tempdir().unwrap();
        let mut known = vec![Known::default(); TOPICS];
        let mut rng = Rng(seed ^ 0x6c6f_675f_6b69_6c6c);
        for round in 0..ROUNDS {
            let mut child = spawn_child(
                "kill9_log::child_log_ops_until_killed",
                dir.path(),
                &[
                    ("SCHEDULE", schedule),
                    ("BACKEND", backend),
                    ("SEED", &rng.next().to_string()),
                ],
            );
            let stdout = child.stdout.take().unwrap();
            let delay = Duration::from_millis(20 + rng.below(200));
            let reader = std::thread::spawn(move || {
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<String>>()
            });
            let started = Instant::now();
            while started.elapsed() < delay {
                std::thread::sleep(Duration::from_millis(1));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            let lines = reader.join().unwrap();
            // Replay the acknowledged operations; the last BEGIN without DONE is in flight.
            let mut pending: Option<(String, Vec<u64>)> = None;
            for line in &lines {
                let mut parts = line.split_whitespace();
                match parts.next() {
                    Some("BEGIN") => {
                        let kind = parts.next().unwrap().to_owned();
                        let op: Vec<u64> = parts.map(|p| p.parse().unwrap()).collect();
                        pending = Some((kind, op));
                    }
                    Some("DONE") => {
                        let (kind, op) = pending.take().expect("DONE without BEGIN");
                        known[op[0] as usize].apply(&op, &kind);
                        acked_ops += 1;
                    }
                    _ => {}
                }
            }
            in_flight_kills += u64::from(pending.is_some());
            if let Some((kind, _)) = &pending {
                *in_flight_kinds.entry(kind.clone()).or_insert(0u64) += 1;
            }
            let wal = open_cell(dir.path(), backend, schedule).unwrap();
            for (t, known_t) in known.iter_mut().enumerate() {
                let log = wal.topic_log(&format!("log{t}")).unwrap();
                let seen = observe(&log, t);
                let in_flight = pending
                    .as_ref()
                    .filter(|(_, op)| op[0] as usize == t)
                    .map(|(kind, op)| (kind.as_str(), op.as_slice()));
                if let Err(what) = check(&seen, known_t, in_flight) {
                    panic!("seed {seed} round {round} ({backend}, {schedule}) log{t}: {what}");
                }
                *known_t = seen;
            }
        }
    }
    println!(
        "kill9_log: cycles={cycles} kills={kills} kills_with_an_operation_in_flight={in_flight_kills} in_flight_by_kind={in_flight_kinds:?} acked_ops={acked_ops} lost=0 resurrected=0 torn_operations=0 base_seed={base}"
    );
}
