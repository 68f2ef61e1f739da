//! Unit tests of the mmap segment over a heap-backed stand-in mapping: bounds checks, copies
//! and dirty-range tracking without a file, so that Miri can run them (`miri_*`, docs: shared
//! RELIABILITY.md T10).

use parking_lot::Mutex;

use super::MmapSegment;
use crate::{Error, ReadAt, Segment, WriteAt, sys::mmap::Mapping};

fn segment(len: usize) -> MmapSegment {
    MmapSegment {
        map: Mapping::fake(len),
        len: len as u64,
        path: "<fake>".into(),
        dirty: Mutex::new(None),
    }
}

#[test]
fn miri_mmap_segment_writes_reads_and_tracks_the_dirty_range() {
    let seg = segment(256);
    seg.write_at(100, b"hello").unwrap();
    seg.write_at(10, b"ab").unwrap();
    assert_eq!(*seg.dirty.lock(), Some((10, 105)));
    let mut back = [0u8; 5];
    seg.read_at(100, &mut back).unwrap();
    assert_eq!(&back, b"hello");
    seg.sync().unwrap();
    assert_eq!(*seg.dirty.lock(), None);
    let writes = [
        WriteAt {
            offset: 0,
            buf: b"x",
        },
        WriteAt {
            offset: 255,
            buf: b"y",
        },
    ];
    seg.write_batch(&writes).unwrap();
    let (mut first, mut last) = ([0u8; 1], [0u8; 1]);
    let mut reads = [
        ReadAt {
            offset: 0,
            buf: &mut first,
        },
        ReadAt {
            offset: 255,
            buf: &mut last,
        },
    ];
    seg.read_batch(&mut reads).unwrap();
    assert_eq!((first, last), (*b"x", *b"y"));
}

#[test]
fn miri_mmap_segment_refuses_ranges_past_the_end_without_copying() {
    let seg = segment(64);
    let out_of_bounds = |r: crate::Result<()>| matches!(r, Err(Error::OutOfBounds { .. }));
    assert!(out_of_bounds(seg.write_at(60, &[1u8; 8])));
    assert!(out_of_bounds(seg.write_at(u64::MAX, &[1u8])));
    assert!(out_of_bounds(seg.read_at(64, &mut [0u8; 1])));
    // A batch with one bad range writes nothing at all.
    let writes = [
        WriteAt {
            offset: 0,
            buf: &[9u8; 4],
        },
        WriteAt {
            offset: 62,
            buf: &[9u8; 4],
        },
    ];
    assert!(out_of_bounds(seg.write_batch(&writes)));
    let mut back = [0u8; 4];
    seg.read_at(0, &mut back).unwrap();
    assert_eq!(back, [0u8; 4]);
    assert_eq!(*seg.dirty.lock(), None);
}

#[test]
fn miri_empty_mmap_segment_allows_only_empty_ranges() {
    let seg = segment(0);
    seg.write_at(0, &[]).unwrap();
    seg.read_at(0, &mut []).unwrap();
    assert!(seg.write_at(0, &[1]).is_err());
    seg.sync().unwrap();
}
