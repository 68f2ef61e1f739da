//! The fd backend with and without io_uring: which kind it reports, and that batches behave
//! the same either way.

use std::{io, path::Path, sync::Arc, thread};

use walrus_storage::{
    BackendKind, Error, FdOptions, FdStorage, ReadAt, Segment, Storage, WriteAt,
    io_uring_available, open_storage,
};

use crate::pattern;

fn fd(dir: &Path, io_uring: bool) -> FdStorage {
    FdStorage::open(dir, FdOptions { io_uring }).unwrap()
}

/// Writes `count` chunks of `chunk` bytes in one batch, reads them back in one batch, and
/// checks them.
fn batch_round_trip(seg: &dyn Segment, count: usize, chunk: usize, seed: u64) {
    let datas: Vec<Vec<u8>> = (0..count)
        .map(|i| pattern(seed + i as u64, chunk))
        .collect();
    let writes: Vec<WriteAt<'_>> = datas
        .iter()
        .enumerate()
        .map(|(i, buf)| WriteAt {
            offset: (i * chunk) as u64,
            buf,
        })
        .collect();
    seg.write_batch(&writes).unwrap();
    let mut bufs = vec![vec![0u8; chunk]; count];
    // Read back in reverse order, so completions and offsets do not line up by accident.
    let mut reads: Vec<ReadAt<'_>> = bufs
        .iter_mut()
        .enumerate()
        .rev()
        .map(|(i, buf)| ReadAt {
            offset: (i * chunk) as u64,
            buf,
        })
        .collect();
    seg.read_batch(&mut reads).unwrap();
    drop(reads);
    assert_eq!(bufs, datas);
}

#[test]
fn io_uring_turned_off_reports_fd_and_batches_work() {
    let dir = tempfile::tempdir().unwrap();
    let storage = fd(dir.path(), false);
    assert_eq!(storage.kind(), BackendKind::Fd);
    assert_eq!(storage.kind().name(), "fd");
    let seg = storage.create("seg", 1024 * 1024).unwrap();
    batch_round_trip(seg.as_ref(), 700, 1024, 1);
    batch_round_trip(seg.as_ref(), 3, 300_000, 2);
}

#[test]
fn io_uring_turned_on_reports_fd_uring_exactly_when_available() {
    let dir = tempfile::tempdir().unwrap();
    let storage = fd(dir.path(), true);
    if io_uring_available() {
        assert_eq!(storage.kind(), BackendKind::FdUring);
        assert_eq!(storage.kind().name(), "fd+io_uring");
    } else {
        eprintln!("io_uring is unavailable here: checking the fallback only");
        assert_eq!(storage.kind(), BackendKind::Fd);
    }
    // Batches work either way, including more operations than the ring has entries and
    // transfers larger than a page.
    let seg = storage.create("seg", 4 * 1024 * 1024).unwrap();
    batch_round_trip(seg.as_ref(), 1000, 512, 10);
    batch_round_trip(seg.as_ref(), 4, 1024 * 1024, 20);
}

#[test]
fn open_storage_picks_the_requested_backend() {
    let dir = tempfile::tempdir().unwrap();
    let fd = open_storage(&dir.path().join("fd"), BackendKind::Fd).unwrap();
    assert_eq!(fd.kind(), BackendKind::Fd);
    let mmap = open_storage(&dir.path().join("mmap"), BackendKind::Mmap).unwrap();
    assert_eq!(mmap.kind(), BackendKind::Mmap);
    let uring = open_storage(&dir.path().join("uring"), BackendKind::FdUring).unwrap();
    let expected = if io_uring_available() {
        BackendKind::FdUring
    } else {
        BackendKind::Fd
    };
    assert_eq!(uring.kind(), expected);
}

fn batch_past_the_end_fails_before_any_io(io_uring: bool) {
    let dir = tempfile::tempdir().unwrap();
    let storage = fd(dir.path(), io_uring);
    let seg = storage.create("seg", 4096).unwrap();
    seg.write_at(0, &pattern(5, 4096)).unwrap();

    // The in-bounds read comes first; its buffer must stay untouched.
    let mut first = vec![0x5a; 1024];
    let mut second = vec![0x5a; 16];
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
    let err = seg.read_batch(&mut reads).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfBounds {
                offset: 4090,
                len: 16,
                file_len: 4096,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(
        first.iter().all(|b| *b == 0x5a),
        "a read ran before the bounds check"
    );
    assert!(second.iter().all(|b| *b == 0x5a));

    let writes = [
        WriteAt {
            offset: 0,
            buf: &[0u8; 1024],
        },
        WriteAt {
            offset: 4096,
            buf: &[0u8; 1],
        },
    ];
    let err = seg.write_batch(&writes).unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err:?}");
    let mut back = vec![0u8; 4096];
    seg.read_at(0, &mut back).unwrap();
    assert_eq!(
        back,
        pattern(5, 4096),
        "a write ran before the bounds check"
    );
}

#[test]
fn batch_past_the_end_with_io_uring_fails_before_any_io() {
    batch_past_the_end_fails_before_any_io(true);
}

#[test]
fn batch_past_the_end_without_io_uring_fails_before_any_io() {
    batch_past_the_end_fails_before_any_io(false);
}

#[test]
fn batches_from_many_threads_share_one_ring() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(fd(dir.path(), true));
    thread::scope(|scope| {
        for t in 0..4u64 {
            let storage = Arc::clone(&storage);
            scope.spawn(move || {
                let seg = storage.create(&format!("seg-{t}"), 512 * 1024).unwrap();
                for round in 0..20 {
                    batch_round_trip(seg.as_ref(), 64, 8192, t * 1000 + round);
                }
            });
        }
    });
}

#[test]
fn data_written_through_the_ring_is_read_by_plain_calls() {
    let dir = tempfile::tempdir().unwrap();
    let datas: Vec<Vec<u8>> = (0..32).map(|i| pattern(40 + i, 3000)).collect();
    {
        let storage = fd(dir.path(), true);
        let seg = storage.create("seg", 32 * 4096).unwrap();
        let writes: Vec<WriteAt<'_>> = datas
            .iter()
            .enumerate()
            .map(|(i, buf)| WriteAt {
                offset: (i * 4096 + 7) as u64,
                buf,
            })
            .collect();
        seg.write_batch(&writes).unwrap();
        seg.sync().unwrap();
    }
    let storage = fd(dir.path(), false);
    let seg = storage.open("seg").unwrap();
    for (i, data) in datas.iter().enumerate() {
        let mut back = vec![0u8; data.len()];
        seg.read_at((i * 4096 + 7) as u64, &mut back).unwrap();
        assert_eq!(&back, data, "chunk {i}");
    }
}
