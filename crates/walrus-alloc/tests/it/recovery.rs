//! Files of an earlier run: adopted, numbered past, and deleted once consumed.

use std::sync::Arc;

use walrus_alloc::{Allocator, file_name};
use walrus_storage::{MemStorage, Storage};

use crate::allocator::small_config;

fn allocator(storage: &MemStorage) -> Allocator {
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Allocator::new(shared, small_config()).unwrap()
}

#[test]
fn recovered_files_take_part_in_deletion() {
    let storage = MemStorage::new();
    {
        let alloc = allocator(&storage);
        for _ in 0..5 {
            alloc.allocate(1).unwrap();
        }
    }
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(bad.is_empty());
    assert_eq!(
        files.iter().map(|f| f.file.seq()).collect::<Vec<_>>(),
        [1, 2]
    );
    let first = &files[0].file;
    let extents: Vec<_> = (0..2).map(|b| first.adopt_extent(b, 1).unwrap()).collect();
    first.finish_recovery();
    // The second file holds nothing this run cares about: deleted at once.
    files[1].file.finish_recovery();
    assert!(!storage.list().unwrap().contains(&file_name(2)));
    extents[0].consume();
    assert!(storage.list().unwrap().contains(&file_name(1)));
    extents[1].consume();
    assert!(!storage.list().unwrap().contains(&file_name(1)));
}

#[test]
fn new_files_are_numbered_after_recovered_ones() {
    let storage = MemStorage::new();
    {
        let alloc = allocator(&storage);
        for _ in 0..9 {
            alloc.allocate(1).unwrap();
        }
    }
    let alloc = allocator(&storage);
    let (files, _) = alloc.recover().unwrap();
    assert_eq!(files.last().unwrap().file.seq(), 3);
    assert_eq!(alloc.allocate(1).unwrap().file().seq(), 4);
}

#[test]
fn file_with_damaged_header_is_reported_and_left_alone() {
    let storage = MemStorage::new();
    {
        let alloc = allocator(&storage);
        alloc.allocate(1).unwrap();
    }
    let segment = storage.open(&file_name(1)).unwrap();
    segment.write_at(5, &[0xff]).unwrap();
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(files.is_empty());
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, file_name(1));
    assert!(bad[0].1.to_string().contains(&file_name(1)), "{}", bad[0].1);
    assert_eq!(
        alloc.allocate(1).unwrap().file().seq(),
        2,
        "never overwritten"
    );
}

#[test]
fn adopting_beyond_the_file_is_refused() {
    let storage = MemStorage::new();
    {
        allocator(&storage).allocate(1).unwrap();
    }
    let alloc = allocator(&storage);
    let (files, _) = alloc.recover().unwrap();
    assert!(files[0].file.adopt_extent(3, 2).is_none());
    assert!(files[0].file.adopt_extent(3, 1).is_some());
}

#[test]
fn unrelated_files_are_ignored() {
    let storage = MemStorage::new();
    storage.create("cursors.0", 10).unwrap();
    storage.create("12.wal", 10).unwrap();
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(files.is_empty() && bad.is_empty());
}

/// A file header whose geometry (block bytes × block count) overflows u64: found by the
/// `wal_dir_open` fuzz target as an overflow panic in `open_file`.
#[test]
fn file_header_with_overflowing_geometry_is_reported_not_a_panic() {
    let storage = MemStorage::new();
    let mut payload = [0u8; 24];
    payload[0..8].copy_from_slice(&1u64.to_le_bytes());
    payload[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    payload[16..20].copy_from_slice(&3u32.to_le_bytes());
    let mut header = Vec::new();
    let kind = walrus_alloc::FILE_HEADER_KIND;
    let frame = walrus_storage::FrameHeader {
        kind,
        ..Default::default()
    };
    walrus_storage::encode_frame(&mut header, &frame, &payload);
    let segment = storage.create(&file_name(1), 8192).unwrap();
    segment.write_at(0, &header).unwrap();
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(files.is_empty());
    assert_eq!(bad.len(), 1, "{bad:?}");
}

/// A segment file named with the largest number leaves none for the next file: found by the
/// `wal_dir_open` fuzz target as an overflow panic in `recover`.
#[test]
fn file_numbered_u64_max_is_reported_not_a_panic() {
    let storage = MemStorage::new();
    storage.create(&file_name(u64::MAX), 8192).unwrap();
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(files.is_empty());
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(alloc.allocate(1).unwrap().file().seq(), 1);
}

/// A power cut between the creation of a file (reserved, all zeros, directory entry durable)
/// and the sync of its header left a file of zeros: T4 (ext4 power cuts) saw it reported as
/// damaged, kept forever and counted as corruption.
#[test]
fn file_of_zeros_is_reported_unfinished_not_damaged() {
    let storage = MemStorage::new();
    storage.create(&file_name(3), 8192).unwrap();
    let alloc = allocator(&storage);
    let (files, bad) = alloc.recover().unwrap();
    assert!(files.is_empty());
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        matches!(bad[0].1, walrus_alloc::Error::UnfinishedFile { .. }),
        "{:?}",
        bad[0].1
    );
    // One non-zero byte anywhere makes it damage, left alone.
    storage
        .open(&file_name(3))
        .unwrap()
        .write_at(8000, &[1])
        .unwrap();
    let (_, bad) = allocator(&storage).recover().unwrap();
    assert!(
        matches!(bad[0].1, walrus_alloc::Error::BadFileHeader { .. }),
        "{:?}",
        bad[0].1
    );
}
