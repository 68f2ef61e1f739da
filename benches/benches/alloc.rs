//! Block allocation at 1, 2 and 4 threads: allocate, seal and consume extents, so files are
//! created (pre-created on the helper thread) and deleted as they would be under load.

use std::{
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use walrus_alloc::{AllocConfig, Allocator};
use walrus_storage::{BackendKind, open_storage};

const EXTENTS_PER_THREAD: u64 = 2000;

fn allocate(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc/allocate");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for threads in [1u64, 2, 4] {
        group.throughput(Throughput::Elements(threads * EXTENTS_PER_THREAD));
        group.bench_function(format!("{threads}threads"), |b| {
            let dir = tempfile::tempdir().unwrap();
            let storage = open_storage(dir.path(), BackendKind::Fd).unwrap();
            let config = AllocConfig {
                block_bytes: 4096,
                blocks_per_file: 1024,
                small_unit_bytes: 4096,
                lanes: 1,
                precreate: true,
                quiet: false,
            };
            let alloc = Arc::new(Allocator::new(storage, config).unwrap());
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let barrier = Arc::new(Barrier::new(threads as usize + 1));
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let alloc = Arc::clone(&alloc);
                            let barrier = Arc::clone(&barrier);
                            std::thread::spawn(move || {
                                barrier.wait();
                                for _ in 0..EXTENTS_PER_THREAD {
                                    let extent = alloc.allocate(100).unwrap();
                                    extent.seal();
                                    extent.consume();
                                }
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    handles.into_iter().for_each(|h| h.join().unwrap());
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, allocate);
criterion_main!(benches);
