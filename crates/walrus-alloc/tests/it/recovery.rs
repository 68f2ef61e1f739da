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
