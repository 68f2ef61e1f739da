//! Reads per backend and entry size: `read_next`, batch reads (10 MiB cap), and the cost of
//! persisting the cursor (peek, every read under `StrictlyAtOnce`, every 1,000 under
//! `AtLeastOnce`). Entries are appended untimed before each measured run.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walrus_benches::{payload::Payloads, wal};
use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

const SIZES: &[usize] = &[64, 1024, 16 << 10];

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10);
    g
}

fn open(dir: &std::path::Path, fd: bool, uring: bool, consistency: ReadConsistency) -> Walrus {
    wal::open_walrus(dir, fd, uring, FsyncSchedule::NoFsync, consistency).unwrap()
}

/// Appends `n` entries (untimed) in batches.
fn fill(w: &Walrus, payloads: &mut Payloads, n: u64) {
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(1000);
        w.batch_append_for_topic("bench", &payloads.batch(k))
            .unwrap();
        left -= k;
    }
}

fn read_next(c: &mut Criterion) {
    let mut g = group(c, "read_next");
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        for &size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new(backend, format!("{size}B")), |b| {
                let dir = tempfile::tempdir().unwrap();
                let w = open(
                    dir.path(),
                    fd,
                    uring,
                    ReadConsistency::AtLeastOnce {
                        persist_every: 5000,
                    },
                );
                let mut payloads = Payloads::fixed(size, 3);
                b.iter_custom(|iters| {
                    fill(&w, &mut payloads, iters);
                    let start = Instant::now();
                    for _ in 0..iters {
                        w.read_next("bench", true).unwrap().unwrap();
                    }
                    start.elapsed()
                });
            });
        }
    }
    g.finish();
}

fn batch_read(c: &mut Criterion) {
    let mut g = group(c, "batch_read");
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        for &size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new(backend, format!("{size}B")), |b| {
                let dir = tempfile::tempdir().unwrap();
                let w = open(
                    dir.path(),
                    fd,
                    uring,
                    ReadConsistency::AtLeastOnce {
                        persist_every: 5000,
                    },
                );
                let mut payloads = Payloads::fixed(size, 4);
                // One iteration is one entry; batches return up to 2,000 of them.
                b.iter_custom(|iters| {
                    fill(&w, &mut payloads, iters);
                    let start = Instant::now();
                    let mut read = 0;
                    while read < iters {
                        read += w
                            .batch_read_for_topic("bench", 10 << 20, true)
                            .unwrap()
                            .len() as u64;
                    }
                    start.elapsed()
                });
            });
        }
    }
    g.finish();
}

fn cursor_persist(c: &mut Criterion) {
    let mut g = group(c, "cursor_persist");
    g.throughput(Throughput::Elements(1));
    let modes: &[(&str, ReadConsistency, bool)] = &[
        ("peek", ReadConsistency::StrictlyAtOnce, false),
        ("strictly_at_once", ReadConsistency::StrictlyAtOnce, true),
        (
            "at_least_once_1000",
            ReadConsistency::AtLeastOnce {
                persist_every: 1000,
            },
            true,
        ),
    ];
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        for &(mode, consistency, checkpoint) in modes {
            g.bench_function(BenchmarkId::new(backend, mode), |b| {
                let dir = tempfile::tempdir().unwrap();
                let w = open(dir.path(), fd, uring, consistency);
                let mut payloads = Payloads::fixed(256, 5);
                b.iter_custom(|iters| {
                    fill(&w, &mut payloads, if checkpoint { iters } else { 1 });
                    let start = Instant::now();
                    for _ in 0..iters {
                        w.read_next("bench", checkpoint).unwrap().unwrap();
                    }
                    let elapsed = start.elapsed();
                    if !checkpoint {
                        // Consume the peeked entry so fills do not pile up.
                        w.read_next("bench", true).unwrap();
                    }
                    elapsed
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, read_next, batch_read, cursor_persist);
criterion_main!(benches);
