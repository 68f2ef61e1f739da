//! Benchmarks behind two design choices: the frame checksum (`checksum/*`) and the storage
//! backends' append cost (`storage/append/*`).
//!
//! Run with `cargo bench -p walrus-storage --bench storage`; docs/FORMAT.md records results.

use std::{
    fs::OpenOptions, hash::Hasher, hint::black_box, os::unix::fs::FileExt, path::Path, sync::Arc,
    time::Duration,
};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use fnv::FnvHasher;
use walrus_storage::{
    FdOptions, FdStorage, FrameHeader, MmapStorage, Segment, Storage, WriteAt, encode_frame,
    frame_checksum, frame_len, io_uring_available,
};

/// Payload sizes and their ids.
const SIZES: [(usize, &str); 3] = [(64, "64B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

/// Bytes of the header the checksum covers.
const CHECKED_HEADER_BYTES: usize = 24;

/// Length of the pre-sized file the append benchmarks write into, wrapping at the end.
const FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Frames per `write_batch` in the io_uring benchmark.
const BATCH: usize = 16;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    configure(&mut group);
    let header: Vec<u8> = (0..CHECKED_HEADER_BYTES as u8).collect();
    for (size, id) in SIZES {
        let payload = payload(size);
        group.throughput(Throughput::Bytes((CHECKED_HEADER_BYTES + size) as u64));
        group.bench_function(format!("fnv1a64/{id}"), |b| {
            b.iter(|| {
                let mut hasher = FnvHasher::default();
                hasher.write(black_box(&header));
                hasher.write(black_box(&payload));
                hasher.finish()
            });
        });
        group.bench_function(format!("crc32c/{id}"), |b| {
            b.iter(|| {
                let crc = crc32c::crc32c(black_box(&header));
                crc32c::crc32c_append(crc, black_box(&payload))
            });
        });
        group.bench_function(format!("xxh3/{id}"), |b| {
            b.iter(|| frame_checksum(black_box(&header), black_box(&payload)));
        });
    }
    group.finish();
}

/// Appends frames to one pre-sized file: where the next one goes, and the encoding buffer.
struct Appender {
    offset: u64,
    buf: Vec<u8>,
    seq: u64,
}

impl Appender {
    fn new() -> Self {
        Self {
            offset: 0,
            buf: Vec::new(),
            seq: 0,
        }
    }

    /// Encodes `count` frames of `payload` into the buffer and returns the offset to write
    /// them at, wrapping to the start when they would not fit.
    fn next(&mut self, payload: &[u8], count: usize) -> u64 {
        self.buf.clear();
        for _ in 0..count {
            self.seq += 1;
            let header = FrameHeader {
                kind: 1,
                seq: self.seq,
                ..FrameHeader::default()
            };
            encode_frame(&mut self.buf, &header, payload);
        }
        if self.offset + self.buf.len() as u64 > FILE_BYTES {
            self.offset = 0;
        }
        let at = self.offset;
        self.offset += self.buf.len() as u64;
        at
    }
}

fn segment(storage: &dyn Storage, name: &str) -> Arc<dyn Segment> {
    storage
        .create(name, FILE_BYTES)
        .expect("create the benchmark file")
}

fn append_one(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, seg: &dyn Segment) {
    for (size, id) in SIZES {
        let payload = payload(size);
        group.throughput(Throughput::Bytes(frame_len(size) as u64));
        let mut appender = Appender::new();
        group.bench_function(format!("{name}/{id}"), |b| {
            b.iter(|| {
                let at = appender.next(&payload, 1);
                seg.write_at(at, &appender.buf).expect("write");
            });
        });
    }
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("storage/append");
    configure(&mut group);

    // Baseline: the same bytes through a plain std::fs::File.
    {
        let plain = FdStorage::open(dir.path(), FdOptions { io_uring: false }).expect("open");
        drop(segment(&plain, "std"));
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join("std"))
            .expect("open the baseline file");
        for (size, id) in SIZES {
            let payload = payload(size);
            group.throughput(Throughput::Bytes(frame_len(size) as u64));
            let mut appender = Appender::new();
            group.bench_function(format!("std_write_at/{id}"), |b| {
                b.iter(|| {
                    let at = appender.next(&payload, 1);
                    file.write_all_at(&appender.buf, at).expect("write");
                });
            });
        }
        remove(&plain, "std");
    }

    {
        let fd = FdStorage::open(dir.path(), FdOptions { io_uring: false }).expect("open");
        let seg = segment(&fd, "fd");
        append_one(&mut group, "fd", seg.as_ref());
        drop(seg);
        remove(&fd, "fd");
    }

    if io_uring_available() {
        let uring = FdStorage::open(dir.path(), FdOptions { io_uring: true }).expect("open");
        let seg = segment(&uring, "uring");
        for (size, id) in SIZES {
            let payload = payload(size);
            let frame = frame_len(size);
            group.throughput(Throughput::Bytes((BATCH * frame) as u64));
            let mut appender = Appender::new();
            group.bench_function(format!("uring/{id}"), |b| {
                b.iter(|| {
                    let at = appender.next(&payload, BATCH);
                    let writes: [WriteAt<'_>; BATCH] = std::array::from_fn(|i| WriteAt {
                        offset: at + (i * frame) as u64,
                        buf: &appender.buf[i * frame..(i + 1) * frame],
                    });
                    seg.write_batch(&writes).expect("write batch");
                });
            });
        }
        drop(seg);
        remove(&uring, "uring");
    } else {
        eprintln!("io_uring is unavailable here: skipping storage/append/uring");
    }

    {
        let mmap = MmapStorage::open(dir.path()).expect("open");
        let seg = segment(&mmap, "mmap");
        append_one(&mut group, "mmap", seg.as_ref());
        drop(seg);
        remove(&mmap, "mmap");
    }

    group.finish();
    check_empty(dir.path());
}

fn remove(storage: &dyn Storage, name: &str) {
    storage.remove(name).expect("remove the benchmark file");
}

fn check_empty(dir: &Path) {
    let left = std::fs::read_dir(dir).map_or(0, Iterator::count);
    assert_eq!(left, 0, "benchmark files left in {}", dir.display());
}

criterion_group!(benches, checksum, append);
criterion_main!(benches);
