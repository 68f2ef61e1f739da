//! Reopen (recovery) time per backend after 32 MiB of 500-1000 B entries over 100 topics: the
//! directory is written once, then each iteration opens it and drops the handle.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use walrus_benches::{
    payload::{ENTRY_SIZES, Payloads},
    wal,
};
use walrus_rust::{FsyncSchedule, ReadConsistency};

const TOPICS: usize = 100;
const BYTES: usize = 32 << 20;

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10);
    for &(backend, fd, uring) in wal::WALRUS_BACKENDS {
        g.bench_function(BenchmarkId::new(backend, "32MiB_100topics"), |b| {
            let dir = tempfile::tempdir().unwrap();
            let open = || {
                wal::open_walrus(
                    dir.path(),
                    fd,
                    uring,
                    FsyncSchedule::NoFsync,
                    ReadConsistency::StrictlyAtOnce,
                )
                .unwrap()
            };
            {
                let w = open();
                let mut payloads = Payloads::new(ENTRY_SIZES, 6);
                let mut written = 0;
                let names = wal::topic_names(TOPICS);
                while written < BYTES {
                    for name in &names {
                        let batch = payloads.batch(64);
                        written += batch.iter().map(|e| e.len()).sum::<usize>();
                        w.batch_append_for_topic(name, &batch).unwrap();
                    }
                }
                w.flush().unwrap();
            }
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let w = open();
                    total += start.elapsed();
                    drop(w);
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(benches, recovery);
criterion_main!(benches);
