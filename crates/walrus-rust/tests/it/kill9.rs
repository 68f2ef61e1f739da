//! T3: a real process crash. A child appends (single entries and batches) and prints an
//! acknowledgement after each append returns; the parent SIGKILLs it at a random moment,
//! reopens the directory and checks that every acknowledged entry is there, in order, once.
//! The page cache survives a process crash, so this holds under every schedule and backend.
//! In 10% of the cycles the last kill lands 0-5 ms after the child announced it is opening
//! the directory the earlier kills filled, i.e. during recovery: when it landed before the
//! child was ready, the next recovery must find exactly what the previous one did (I5).
//! `KILL_CYCLES` sets the number of cycles (default 12), `SEED` replays one.

use std::{
    io::{BufRead, BufReader},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::support::*;

const TOPICS: usize = 4;

/// Child side: append until killed.
#[test]
#[ignore = "run as a child process by kill9_acknowledged_entries_survive_sigkill"]
fn child_appends_until_killed() {
    let Some(dir) = std::env::var_os("WALRUS_TEST_DIR") else {
        return;
    };
    let schedule = std::env::var("SCHEDULE").unwrap();
    let backend = std::env::var("BACKEND").unwrap();
    // Each on a line of its own: the test harness leaves its "test ... " line open.
    println!("\nOPENING");
    let wal = open_cell(std::path::Path::new(&dir), &backend, &schedule).unwrap();
    let start: usize = std::env::var("START").unwrap().parse().unwrap();
    let mut next = [start; TOPICS];
    println!("\nREADY");
    for i in 0.. {
        let topic = i % TOPICS;
        if i % 7 == 0 {
            let batch: Vec<Vec<u8>> = (0..8).map(|k| payload(next[topic] + k)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            wal.batch_append_for_topic(&format!("t{topic}"), &refs)
                .unwrap();
            next[topic] += 8;
        } else {
            wal.append_for_topic(&format!("t{topic}"), &payload(next[topic]))
                .unwrap();
            next[topic] += 1;
        }
        println!("ACK {topic} {}", next[topic]);
    }
}

#[test]
fn kill9_acknowledged_entries_survive_sigkill() {
    let cycles: u64 = std::env::var("KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let base = seed_from_env();
    let mut acked_total = 0u64;
    let (mut open_kills_aimed, mut kills_during_open) = (0u64, 0u64);
    for cycle in 0..cycles {
        let seed = base.wrapping_add(cycle);
        let (backend, schedule) = CRASH_MATRIX[(seed % CRASH_MATRIX.len() as u64) as usize];
        let dir = tempfile::tempdir().unwrap();
        // One cycle in ten kills its last child during open, after two rounds of appends.
        let mut rng = Rng(seed ^ 0x6b69_6c6c_6f70_656e);
        let kill_in_open = rng.below(10) == 0;
        // Several kills on one directory: each run recovers the previous one's crash.
        let mut acked = [0usize; TOPICS];
        for round in 0..3u64 {
            let aim_at_open = kill_in_open && round == 2;
            let mut child = spawn_child(
                "kill9::child_appends_until_killed",
                dir.path(),
                &[("SCHEDULE", schedule), ("BACKEND", backend), ("START", "0")],
            );
            let stdout = child.stdout.take().unwrap();
            let delay = if aim_at_open {
                Duration::from_micros(rng.below(5001))
            } else {
                Duration::from_millis(1 + (seed.wrapping_mul(31).wrapping_add(round * 17)) % 100)
            };
            let (opening_tx, opening) = mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut acks = vec![0usize; TOPICS];
                let (mut opening, mut ready) = (false, false);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.split_whitespace();
                    match parts.next() {
                        Some("ACK") => {
                            let topic: usize = parts.next().unwrap().parse().unwrap();
                            acks[topic] = parts.next().unwrap().parse().unwrap();
                        }
                        Some("OPENING") => {
                            opening = true;
                            let _ = opening_tx.send(());
                        }
                        Some("READY") => ready = true,
                        _ => {}
                    }
                }
                (acks, opening, ready)
            });
            if aim_at_open {
                // The delay counts from the child's announcement that it is opening.
                opening
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the child never announced OPENING");
                open_kills_aimed += 1;
            }
            let started = Instant::now();
            while started.elapsed() < delay {
                std::thread::sleep(
                    Duration::from_millis(1).min(delay.saturating_sub(started.elapsed())),
                );
            }
            child.kill().unwrap();
            child.wait().unwrap();
            // Every line the child wrote before it died was an acknowledged append.
            let (acks, opening, ready) = reader.join().unwrap();
            // Killed before it could append: opening the directory is all it did.
            let killed_in_open = !ready;
            kills_during_open += u64::from(opening && !ready);
            let wal = open_cell(dir.path(), backend, schedule).unwrap();
            for topic in 0..TOPICS {
                let name = format!("t{topic}");
                let entries = wal.read_from(&name, 0, usize::MAX).unwrap();
                let end = entries.last().map_or(0, |e| e.seq as usize + 1);
                // The child restarts numbering payloads at 0 each round but the log goes on:
                // this round's entries follow the previous rounds'.
                let expected_min = acked[topic] + acks[topic];
                assert!(
                    end >= expected_min,
                    "seed {seed} round {round}: t{topic} lost acknowledged entries: {end} < {expected_min} ({backend}, {schedule})"
                );
                // I5: a recovery cut short changes nothing the previous one returned.
                assert!(
                    !killed_in_open || end == acked[topic],
                    "seed {seed} round {round}: t{topic} has {end} entries after a kill during \
                     open, the previous recovery found {} ({backend}, {schedule})",
                    acked[topic]
                );
                for (i, entry) in entries.iter().enumerate() {
                    assert_eq!(
                        entry.seq as usize, i,
                        "seed {seed}: t{topic} hole or duplicate"
                    );
                    // This round's entries start where the previous round's log ended.
                    if i >= acked[topic] {
                        assert_eq!(
                            entry.data,
                            payload(i - acked[topic]),
                            "seed {seed}: t{topic} entry {i} differs"
                        );
                    }
                }
                acked[topic] = end;
                acked_total += acks[topic] as u64;
            }
        }
    }
    println!(
        "kill9: cycles={} kills={} kills_during_open={kills_during_open} acked={acked_total} acked_lost=0 corrupt=0 duplicate=0 out_of_order=0 base_seed={base}",
        cycles,
        cycles * 3
    );
    eprintln!(
        "kill9: kills aimed at open={open_kills_aimed}; kills that landed during open, any round={kills_during_open}"
    );
}
