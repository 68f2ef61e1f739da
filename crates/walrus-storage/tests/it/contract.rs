//! The storage contract: one suite of generic checks, run against every backend.
//!
//! Each check takes a [`Fixture`], which opens a storage over a directory and can open it
//! again later ("reopen") to show what survived. The `contract!` macro at the bottom turns
//! every check into one named test per backend, e.g. `contract::mmap::data_survives_reopen`.

use std::{io, path::PathBuf, sync::Arc, thread};

use tempfile::TempDir;
use walrus_storage::{
    BackendKind, Error, FdOptions, FdStorage, MemStorage, MmapStorage, ReadAt, Segment, Storage,
    WriteAt,
};

use crate::pattern;

/// A backend under test: how to open (and reopen) its storage over the same files.
struct Fixture {
    reopen: Box<dyn Fn() -> Arc<dyn Storage>>,
    /// Kept so the directory outlives every storage opened over it.
    _dir: Option<TempDir>,
}

impl Fixture {
    fn on_disk(open: fn(PathBuf) -> Arc<dyn Storage>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segments");
        Self {
            reopen: Box::new(move || open(path.clone())),
            _dir: Some(dir),
        }
    }

    fn fd_uring() -> Self {
        Self::on_disk(|path| {
            Arc::new(FdStorage::open(&path, FdOptions { io_uring: true }).unwrap())
        })
    }

    fn fd() -> Self {
        Self::on_disk(|path| {
            Arc::new(FdStorage::open(&path, FdOptions { io_uring: false }).unwrap())
        })
    }

    fn mmap() -> Self {
        Self::on_disk(|path| Arc::new(MmapStorage::open(&path).unwrap()))
    }

    fn mem() -> Self {
        let mem = MemStorage::new();
        Self {
            reopen: Box::new(move || Arc::new(mem.clone())),
            _dir: None,
        }
    }

    fn open(&self) -> Arc<dyn Storage> {
        (self.reopen)()
    }
}

fn read_all(seg: &dyn Segment) -> Vec<u8> {
    let mut buf = vec![0u8; usize::try_from(seg.len()).unwrap()];
    seg.read_at(0, &mut buf).unwrap();
    buf
}

fn sorted_list(storage: &dyn Storage) -> Vec<String> {
    let mut names = storage.list().unwrap();
    names.sort();
    names
}

fn assert_out_of_bounds(err: Error, name: &str) {
    assert!(
        matches!(err, Error::OutOfBounds { .. }),
        "expected OutOfBounds, got {err:?}"
    );
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::UnexpectedEof);
    let message = io_err.to_string();
    assert!(
        message.contains(name),
        "message {message:?} does not name {name}"
    );
}

fn write_then_read_round_trips_at_various_offsets(fx: &Fixture) {
    const LEN: usize = 64 * 1024;
    let storage = fx.open();
    let seg = storage.create("seg", LEN as u64).unwrap();
    let mut model = vec![0u8; LEN];
    let cases: &[(usize, usize)] = &[
        (0, 1),
        (1, 7),
        (8, 32),
        (511, 2),
        (512, 512),
        (4095, 2),
        (4000, 9000),
        (LEN - 100, 100),
        (LEN - 1, 1),
        (30_000, 0),
        (LEN, 0),
    ];
    for (i, &(offset, len)) in cases.iter().enumerate() {
        let data = pattern(i as u64 + 1, len);
        seg.write_at(offset as u64, &data).unwrap();
        model[offset..offset + len].copy_from_slice(&data);
        let mut back = vec![0u8; len];
        seg.read_at(offset as u64, &mut back).unwrap();
        assert_eq!(back, data, "read back at offset {offset}");
    }
    assert_eq!(read_all(seg.as_ref()), model);
}

fn overwrite_replaces_only_the_written_range(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("seg", 4096).unwrap();
    seg.write_at(100, &[0xaa; 200]).unwrap();
    seg.write_at(150, &[0xbb; 10]).unwrap();
    let all = read_all(seg.as_ref());
    assert!(all[..100].iter().all(|b| *b == 0));
    assert!(all[100..150].iter().all(|b| *b == 0xaa));
    assert!(all[150..160].iter().all(|b| *b == 0xbb));
    assert!(all[160..300].iter().all(|b| *b == 0xaa));
    assert!(all[300..].iter().all(|b| *b == 0));
}

fn data_survives_reopen(fx: &Fixture) {
    let data = pattern(7, 10_000);
    {
        let storage = fx.open();
        let seg = storage.create("kept", 16 * 1024).unwrap();
        seg.write_at(1234, &data).unwrap();
        seg.sync().unwrap();
        storage.sync_dir().unwrap();
    }
    let storage = fx.open();
    assert_eq!(sorted_list(storage.as_ref()), ["kept"]);
    let seg = storage.open("kept").unwrap();
    assert_eq!(seg.len(), 16 * 1024);
    let mut back = vec![0u8; data.len()];
    seg.read_at(1234, &mut back).unwrap();
    assert_eq!(back, data);
    let all = read_all(seg.as_ref());
    assert!(all[..1234].iter().all(|b| *b == 0));
    assert!(all[1234 + data.len()..].iter().all(|b| *b == 0));
}

fn two_handles_to_one_file_see_each_others_writes(fx: &Fixture) {
    let storage = fx.open();
    let writer = storage.create("shared", 4096).unwrap();
    let reader = storage.open("shared").unwrap();
    writer.write_at(64, b"visible").unwrap();
    let mut back = [0u8; 7];
    reader.read_at(64, &mut back).unwrap();
    assert_eq!(&back, b"visible");
}

/// Offsets and sizes of `count` non-overlapping batch operations, some of them empty.
fn batch_layout(count: usize) -> Vec<(u64, usize)> {
    let mut offset = 0u64;
    (0..count)
        .map(|i| {
            let len = match i % 7 {
                0 => 0,
                1 => 1,
                2 => 8,
                3 => 100,
                4 => 512,
                5 => 4096,
                _ => 33,
            };
            let at = offset;
            // Leave a gap so a misplaced write shows up as a non-zero gap byte.
            offset += len as u64 + 3;
            (at, len)
        })
        .collect()
}

fn batch_round_trip(storage: &dyn Storage, name: &str, count: usize) {
    let layout = batch_layout(count);
    let file_len = layout.last().map_or(0, |(o, l)| o + *l as u64) + 16;
    let seg = storage.create(name, file_len).unwrap();
    let datas: Vec<Vec<u8>> = layout
        .iter()
        .enumerate()
        .map(|(i, (_, len))| pattern(1000 + i as u64, *len))
        .collect();
    let writes: Vec<WriteAt<'_>> = layout
        .iter()
        .zip(&datas)
        .map(|((offset, _), buf)| WriteAt {
            offset: *offset,
            buf,
        })
        .collect();
    seg.write_batch(&writes).unwrap();

    let mut bufs: Vec<Vec<u8>> = layout.iter().map(|(_, len)| vec![0xee; *len]).collect();
    let mut reads: Vec<ReadAt<'_>> = layout
        .iter()
        .zip(bufs.iter_mut())
        .map(|((offset, _), buf)| ReadAt {
            offset: *offset,
            buf,
        })
        .collect();
    seg.read_batch(&mut reads).unwrap();
    drop(reads);
    assert_eq!(bufs, datas);

    let mut model = vec![0u8; usize::try_from(file_len).unwrap()];
    for ((offset, len), data) in layout.iter().zip(&datas) {
        let at = usize::try_from(*offset).unwrap();
        model[at..at + len].copy_from_slice(data);
    }
    assert_eq!(
        read_all(seg.as_ref()),
        model,
        "batch {name} wrote outside its ranges"
    );
}

fn batches_of_many_sizes_round_trip(fx: &Fixture) {
    let storage = fx.open();
    for count in [1, 2, 7, 255, 256, 257, 600] {
        batch_round_trip(storage.as_ref(), &format!("batch-{count}"), count);
    }
}

fn empty_batches_and_empty_buffers_succeed(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("seg", 64).unwrap();
    seg.write_batch(&[]).unwrap();
    seg.read_batch(&mut []).unwrap();
    let empties = [
        WriteAt {
            offset: 0,
            buf: &[],
        },
        WriteAt {
            offset: 64,
            buf: &[],
        },
    ];
    seg.write_batch(&empties).unwrap();
    let (mut a, mut b) = ([0u8; 0], [0u8; 0]);
    let mut reads = [
        ReadAt {
            offset: 64,
            buf: &mut a,
        },
        ReadAt {
            offset: 3,
            buf: &mut b,
        },
    ];
    seg.read_batch(&mut reads).unwrap();
    assert_eq!(read_all(seg.as_ref()), [0u8; 64]);
}

fn sync_succeeds_with_and_without_pending_writes(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("seg", 8192).unwrap();
    seg.sync().unwrap();
    seg.write_at(4000, &pattern(3, 500)).unwrap();
    seg.sync().unwrap();
    seg.sync().unwrap();
    storage.sync_dir().unwrap();
    assert_eq!(&read_all(seg.as_ref())[4000..4500], pattern(3, 500));
}

fn created_file_has_its_length_and_reads_as_zeros(fx: &Fixture) {
    let storage = fx.open();
    for (name, len) in [("empty", 0u64), ("odd", 4097), ("big", 3 * 1024 * 1024 + 5)] {
        let seg = storage.create(name, len).unwrap();
        assert_eq!(seg.len(), len, "{name}");
        assert_eq!(seg.is_empty(), len == 0, "{name}");
        assert!(seg.path().ends_with(name), "{:?} names {name}", seg.path());
        assert!(read_all(seg.as_ref()).iter().all(|b| *b == 0), "{name}");
        let reopened = storage.open(name).unwrap();
        assert_eq!(reopened.len(), len, "{name} reopened");
    }
}

fn access_past_the_end_is_out_of_bounds(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("bounded", 4096).unwrap();
    let mut four = [0u8; 4];
    assert_out_of_bounds(seg.read_at(4093, &mut four).unwrap_err(), "bounded");
    assert_out_of_bounds(seg.read_at(4097, &mut []).unwrap_err(), "bounded");
    assert_out_of_bounds(seg.read_at(u64::MAX, &mut four).unwrap_err(), "bounded");
    assert_out_of_bounds(seg.write_at(4096, &[1]).unwrap_err(), "bounded");
    assert_out_of_bounds(seg.write_at(4000, &[1; 97]).unwrap_err(), "bounded");
    assert_out_of_bounds(seg.write_at(u64::MAX - 1, &[1; 4]).unwrap_err(), "bounded");
    // The last byte is still in bounds.
    seg.write_at(4095, &[9]).unwrap();
    seg.read_at(4095, &mut four[..1]).unwrap();
    assert_eq!(four[0], 9);
    // Nothing of a rejected write reached the file.
    let all = read_all(seg.as_ref());
    assert!(all[..4095].iter().all(|b| *b == 0));
}

fn batch_past_the_end_is_out_of_bounds_and_writes_nothing(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("bounded", 4096).unwrap();
    let writes = [
        WriteAt {
            offset: 0,
            buf: b"first",
        },
        WriteAt {
            offset: 100,
            buf: b"second",
        },
        WriteAt {
            offset: 4094,
            buf: b"too long",
        },
    ];
    assert_out_of_bounds(seg.write_batch(&writes).unwrap_err(), "bounded");
    assert!(read_all(seg.as_ref()).iter().all(|b| *b == 0));

    seg.write_at(0, b"content").unwrap();
    let mut first = [0u8; 7];
    let mut second = [0u8; 8];
    let mut reads = [
        ReadAt {
            offset: 0,
            buf: &mut first,
        },
        ReadAt {
            offset: 4090,
            buf: &mut second,
        },
    ];
    assert_out_of_bounds(seg.read_batch(&mut reads).unwrap_err(), "bounded");
}

fn create_of_an_existing_name_fails_and_keeps_the_old_content(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("taken", 4096).unwrap();
    seg.write_at(10, b"old content").unwrap();
    seg.sync().unwrap();
    drop(seg);
    let err = storage.create("taken", 8192).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err:?}");
    assert!(err.to_string().contains("taken"), "{err}");
    let seg = storage.open("taken").unwrap();
    assert_eq!(seg.len(), 4096);
    let mut back = [0u8; 11];
    seg.read_at(10, &mut back).unwrap();
    assert_eq!(&back, b"old content");
}

fn remove_deletes_the_file_and_list_shows_the_rest(fx: &Fixture) {
    let storage = fx.open();
    assert!(storage.list().unwrap().is_empty());
    for name in ["a", "b", "c"] {
        drop(storage.create(name, 512).unwrap());
    }
    assert_eq!(sorted_list(storage.as_ref()), ["a", "b", "c"]);
    storage.remove("b").unwrap();
    storage.sync_dir().unwrap();
    assert_eq!(sorted_list(storage.as_ref()), ["a", "c"]);
    assert_eq!(
        storage.open("b").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        storage.remove("b").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // The name is free again.
    drop(storage.create("b", 1024).unwrap());
    drop(storage);
    let storage = fx.open();
    assert_eq!(sorted_list(storage.as_ref()), ["a", "b", "c"]);
    assert_eq!(storage.open("b").unwrap().len(), 1024);
}

fn open_of_a_missing_file_is_not_found(fx: &Fixture) {
    let storage = fx.open();
    let err = storage.open("missing").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err:?}");
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
    assert!(io_err.to_string().contains("missing"), "{io_err}");
}

fn concurrent_writes_to_disjoint_ranges_all_land(fx: &Fixture) {
    const THREADS: usize = 4;
    const CHUNK: usize = 4096;
    const ROUNDS: usize = 16;
    let storage = fx.open();
    let seg = storage
        .create("shared", (THREADS * CHUNK * ROUNDS) as u64)
        .unwrap();
    thread::scope(|scope| {
        for t in 0..THREADS {
            let seg = Arc::clone(&seg);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let at = (round * THREADS + t) * CHUNK;
                    seg.write_at(at as u64, &pattern(at as u64, CHUNK)).unwrap();
                }
            });
        }
    });
    let all = read_all(seg.as_ref());
    for (i, chunk) in all.chunks(CHUNK).enumerate() {
        assert_eq!(chunk, pattern((i * CHUNK) as u64, CHUNK), "chunk {i}");
    }
}

/// `prepare_write` is a hint: it changes no byte, written or not, also past the end, and
/// writes after it land as usual.
fn prepare_write_changes_no_byte(fx: &Fixture) {
    let storage = fx.open();
    let seg = storage.create("seg", 3 << 20).unwrap();
    seg.write_at(5000, &[0xaa; 300]).unwrap();
    let before = read_all(seg.as_ref());
    seg.prepare_write(0, 3 << 20);
    seg.prepare_write(4096, u64::MAX);
    assert!(read_all(seg.as_ref()) == before, "bytes changed");
    seg.write_at(2 << 20, &[0xbb; 4096]).unwrap();
    let after = read_all(seg.as_ref());
    assert!(after[2 << 20..(2 << 20) + 4096].iter().all(|b| *b == 0xbb));
    assert!(after[..2 << 20] == before[..2 << 20]);
}

fn kind_names_the_backend(fx: &Fixture, expected: &[BackendKind]) {
    let kind = fx.open().kind();
    assert!(expected.contains(&kind), "{kind:?} not in {expected:?}");
}

macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        contract!(@backend fd_uring, Fixture::fd_uring, [BackendKind::FdUring, BackendKind::Fd]; $($check),*);
        contract!(@backend fd, Fixture::fd, [BackendKind::Fd]; $($check),*);
        contract!(@backend mmap, Fixture::mmap, [BackendKind::Mmap]; $($check),*);
        contract!(@backend mem, Fixture::mem, [BackendKind::Mem]; $($check),*);
    };
    (@backend $backend:ident, $fixture:path, [$($kind:expr),*]; $($check:ident),*) => {
        mod $backend {
            use super::*;

            #[test]
            fn kind_is_reported() {
                kind_names_the_backend(&$fixture(), &[$($kind),*]);
            }

            $(
                #[test]
                fn $check() {
                    super::$check(&$fixture());
                }
            )*
        }
    };
}

contract!(
    write_then_read_round_trips_at_various_offsets,
    overwrite_replaces_only_the_written_range,
    data_survives_reopen,
    two_handles_to_one_file_see_each_others_writes,
    batches_of_many_sizes_round_trip,
    empty_batches_and_empty_buffers_succeed,
    sync_succeeds_with_and_without_pending_writes,
    created_file_has_its_length_and_reads_as_zeros,
    access_past_the_end_is_out_of_bounds,
    batch_past_the_end_is_out_of_bounds_and_writes_nothing,
    create_of_an_existing_name_fails_and_keeps_the_old_content,
    remove_deletes_the_file_and_list_shows_the_rest,
    open_of_a_missing_file_is_not_found,
    concurrent_writes_to_disjoint_ranges_all_land,
    prepare_write_changes_no_byte,
);
