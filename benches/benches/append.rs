//! Appends per backend (fd, fd+io_uring, mmap) and entry size: single appends and batches of
//! 256, without fsync, so the numbers are the library's write path and not the disk's flush.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walrus_benches::{payload::Payloads, wal};
use walrus_rust::{FsyncSchedule, ReadConsistency};

const SIZES: &[usize] = &[64, 1024, 16 << 10];
const BATCH: usize = 256;

fn config<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10);
    group
}

fn append(c: &mut Criterion) {
    let mut group = config(c, "append");
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        for &size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(backend, format!("{size}B")), |b| {
                let dir = tempfile::tempdir().unwrap();
                let w = wal::open_walrus(
                    dir.path(),
                    fd,
                    uring,
                    FsyncSchedule::NoFsync,
                    ReadConsistency::StrictlyAtOnce,
                )
                .unwrap();
                let mut payloads = Payloads::fixed(size, 1);
                b.iter(|| w.append_for_topic("bench", payloads.one()).unwrap());
            });
        }
    }
    group.finish();
}

fn batch_append(c: &mut Criterion) {
    let mut group = config(c, "batch_append");
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        for &size in SIZES {
            // Throughput per entry, so single and batch appends compare directly.
            group.throughput(Throughput::Elements(BATCH as u64));
            group.bench_function(BenchmarkId::new(backend, format!("{BATCH}x{size}B")), |b| {
                let dir = tempfile::tempdir().unwrap();
                let w = wal::open_walrus(
                    dir.path(),
                    fd,
                    uring,
                    FsyncSchedule::NoFsync,
                    ReadConsistency::StrictlyAtOnce,
                )
                .unwrap();
                let mut payloads = Payloads::fixed(size, 2);
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let batch = payloads.batch(BATCH);
                        let start = Instant::now();
                        w.batch_append_for_topic("bench", &batch).unwrap();
                        total += start.elapsed();
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, append, batch_append);
criterion_main!(benches);
