//! Allocation geometry: blocks, extents, rollover, dedicated files, concurrency.

use std::{collections::HashSet, sync::Arc};

use walrus_alloc::{AllocConfig, Allocator, ExtentState, file_name};
use walrus_storage::{MemStorage, Storage};

pub(crate) fn small_config() -> AllocConfig {
    AllocConfig {
        block_bytes: 4096,
        blocks_per_file: 4,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: false,
        quiet: false,
    }
}

pub(crate) fn mem_allocator(config: AllocConfig) -> (MemStorage, Allocator) {
    let storage = MemStorage::new();
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    (storage, Allocator::new(shared, config).unwrap())
}

#[test]
fn extents_are_carved_in_order_and_roll_over_to_a_new_file() {
    let (storage, alloc) = mem_allocator(small_config());
    let extents: Vec<_> = (0..6).map(|_| alloc.allocate(100).unwrap()).collect();
    let firsts: Vec<_> = extents
        .iter()
        .map(|e| (e.file().seq(), e.first_block()))
        .collect();
    assert_eq!(firsts, [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1)]);
    assert!(
        extents
            .iter()
            .all(|e| e.block_count() == 1 && e.len() == 4096)
    );
    assert!(extents.iter().all(|e| e.state() == ExtentState::Writing));
    let mut names = storage.list().unwrap();
    names.sort();
    assert_eq!(names, [file_name(1), file_name(2)]);
    assert!(file_name(1) < file_name(10), "names sort like numbers");
}

#[test]
fn entry_larger_than_a_block_gets_contiguous_blocks() {
    let (_storage, alloc) = mem_allocator(small_config());
    let small = alloc.allocate(1).unwrap();
    let big = alloc.allocate(4096 * 2 + 1).unwrap();
    assert_eq!(big.block_count(), 3);
    assert_eq!(big.first_block(), 1);
    assert_eq!(big.offset(), small.offset() + 4096);
    assert_eq!(big.len(), 3 * 4096);
}

#[test]
fn extent_that_does_not_fit_the_current_file_starts_a_new_one() {
    let (_storage, alloc) = mem_allocator(small_config());
    let first = alloc.allocate(4096 * 3).unwrap();
    let second = alloc.allocate(4096 * 2).unwrap();
    assert_eq!(first.file().seq(), 1);
    assert_eq!((second.file().seq(), second.first_block()), (2, 0));
    assert!(first.file().counts().fully_allocated);
}

#[test]
fn extent_larger_than_a_file_gets_a_dedicated_file() {
    let (_storage, alloc) = mem_allocator(small_config());
    let before = alloc.allocate(10).unwrap();
    let huge = alloc.allocate(4096 * 9).unwrap();
    assert_eq!(huge.block_count(), 9);
    assert_eq!(huge.file().block_count(), 9);
    assert!(huge.file().counts().fully_allocated);
    assert_ne!(huge.file().seq(), before.file().seq());
    // The current file keeps serving small extents.
    let after = alloc.allocate(10).unwrap();
    assert_eq!(
        (after.file().seq(), after.first_block()),
        (before.file().seq(), 1)
    );
}

#[test]
fn zero_byte_request_is_invalid_input() {
    let (_storage, alloc) = mem_allocator(small_config());
    let err = alloc.allocate(0).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn file_header_records_geometry() {
    let (storage, alloc) = mem_allocator(small_config());
    let extent = alloc.allocate(1).unwrap();
    let segment = storage.open(&file_name(extent.file().seq())).unwrap();
    assert_eq!(segment.len(), walrus_alloc::FILE_HEADER_BYTES + 4 * 4096);
    let mut magic = [0u8; 4];
    segment.read_at(0, &mut magic).unwrap();
    assert_eq!(&magic, b"WLRE");
}

#[test]
fn concurrent_allocations_never_overlap() {
    let config = AllocConfig {
        block_bytes: 4096,
        blocks_per_file: 8,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: true,
        quiet: false,
    };
    let (_storage, alloc) = mem_allocator(config);
    let alloc = Arc::new(alloc);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let alloc = Arc::clone(&alloc);
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| alloc.allocate(1 + (i % 3) * 4096).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for handle in handles {
        for extent in handle.join().unwrap() {
            for block in extent.first_block()..extent.first_block() + extent.block_count() {
                assert!(
                    seen.insert((extent.file().seq(), block)),
                    "block handed out twice"
                );
            }
        }
    }
    // Every block of every extent is distinct, so the set holds them all.
    let per_thread: u64 = (0..50u64)
        .map(|i| (1 + (i % 3) * 4096).div_ceil(4096))
        .sum();
    assert_eq!(seen.len() as u64, 4 * per_thread);
}

fn config_with_small_units() -> AllocConfig {
    AllocConfig {
        block_bytes: 1 << 20,
        // 16 MiB files: small files get their full 2,048 units (8 MiB).
        blocks_per_file: 16,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: false,
        quiet: false,
    }
}

#[test]
fn small_requests_take_units_of_small_files_and_large_ones_take_blocks() {
    let (_storage, alloc) = mem_allocator(config_with_small_units());
    // Half a block at most: 512 KiB here (below the 2 MiB cap of SMALL_EXTENT_UNITS_MAX).
    assert_eq!(alloc.small_extent_max(), 512 * 1024);
    let one = alloc.allocate(1).unwrap();
    let three = alloc.allocate(3 * 4096 - 5).unwrap();
    let block = alloc.allocate(512 * 1024 + 1).unwrap();
    assert_eq!((one.len(), one.file().block_bytes()), (4096, 4096));
    assert_eq!(one.file().block_count(), walrus_alloc::SMALL_FILE_UNITS);
    assert_eq!((three.first_block(), three.block_count()), (1, 3));
    assert_eq!(three.offset(), one.offset() + 4096);
    assert!(Arc::ptr_eq(one.file(), three.file()));
    assert_eq!(
        (block.len(), block.file().block_bytes()),
        (1 << 20, 1 << 20)
    );
    assert_ne!(block.file().seq(), one.file().seq());
}

#[test]
fn small_files_roll_over_when_their_units_run_out() {
    let (storage, alloc) = mem_allocator(config_with_small_units());
    let units = walrus_alloc::SMALL_FILE_UNITS;
    let extents: Vec<_> = (0..units / 128 + 1)
        .map(|_| alloc.allocate(128 * 4096).unwrap())
        .collect();
    let files: HashSet<u64> = extents.iter().map(|e| e.file().seq()).collect();
    assert_eq!(files.len(), 2, "the last extent starts a second small file");
    assert_eq!(extents.last().unwrap().first_block(), 0);
    assert_eq!(storage.list().unwrap().len(), 2);
}

#[test]
fn small_files_are_never_larger_than_ordinary_files() {
    let tiny = AllocConfig {
        block_bytes: 64 * 1024,
        blocks_per_file: 4,
        ..config_with_small_units()
    };
    let (_storage, alloc) = mem_allocator(tiny);
    assert_eq!(alloc.allocate(1).unwrap().file().block_count(), 64);
    assert_eq!(alloc.small_extent_max(), 32 * 1024, "half a block");
}

#[test]
fn small_units_are_off_when_blocks_are_small_or_the_unit_is_zero() {
    let (_storage, alloc) = mem_allocator(small_config());
    assert_eq!(alloc.small_extent_max(), 0, "4 KiB blocks are not 4 units");
    assert_eq!(alloc.allocate(1).unwrap().file().block_bytes(), 4096);
    let off = AllocConfig {
        small_unit_bytes: 0,
        lanes: 1,
        ..config_with_small_units()
    };
    let (_storage, alloc) = mem_allocator(off);
    assert_eq!(alloc.small_extent_max(), 0);
    assert_eq!(alloc.allocate(1).unwrap().len(), 1 << 20);
}

#[test]
fn a_small_file_s_last_units_go_to_a_request_they_can_hold() {
    let (_storage, alloc) = mem_allocator(config_with_small_units());
    let units = walrus_alloc::SMALL_FILE_UNITS;
    // Fill the first small file but for 10 units.
    let mut taken = 0;
    while taken + 128 <= units - 10 {
        taken += alloc.allocate(128 * 4096).unwrap().block_count();
    }
    let rest = units - taken;
    let filler = alloc.allocate(u64::from(rest - 10) * 4096).unwrap();
    assert_eq!(filler.file().seq(), 1);
    // Wants 100 units, needs 3: takes the 10 left rather than leave them unused.
    let tail = alloc.allocate_between(0, 3 * 4096, 100 * 4096).unwrap();
    assert_eq!((tail.file().seq(), tail.block_count()), (1, 10));
    assert_eq!(tail.first_block(), units - 10);
    // The file is full now: the next request starts a new one, with what it wants.
    let next = alloc.allocate_between(0, 3 * 4096, 100 * 4096).unwrap();
    assert_eq!((next.file().seq(), next.block_count()), (2, 100));
    // A request that needs more than what is left never gets less than it needs.
    let (_storage, alloc) = mem_allocator(config_with_small_units());
    let extents: Vec<_> = (0..16)
        .map(|_| alloc.allocate(127 * 4096).unwrap())
        .collect();
    let last = alloc.allocate(14 * 4096).unwrap();
    assert!(extents.iter().all(|e| e.file().seq() == last.file().seq()));
    assert_eq!(
        last.first_block() + last.block_count(),
        units - 2,
        "2 units left"
    );
    let big = alloc.allocate_between(0, 5 * 4096, 50 * 4096).unwrap();
    assert_ne!(big.file().seq(), last.file().seq());
    assert_eq!((big.file().block_bytes(), big.block_count()), (4096, 50));
}

#[test]
fn lanes_carve_from_files_of_their_own_each_a_quarter_of_the_configured_size() {
    let config = AllocConfig {
        block_bytes: 4096,
        blocks_per_file: 16,
        small_unit_bytes: 0,
        lanes: walrus_alloc::LANES,
        precreate: false,
        quiet: false,
    };
    let (_storage, alloc) = mem_allocator(config);
    assert_eq!(alloc.lanes(), walrus_alloc::LANES as usize);
    let lanes: Vec<usize> = (0..8).map(|_| alloc.next_lane()).collect();
    assert_eq!(lanes, [0, 1, 2, 3, 0, 1, 2, 3], "handed out in turn");
    let extents: Vec<_> = (0..4)
        .map(|lane| alloc.allocate_between(lane, 1, 1).unwrap())
        .collect();
    let files: HashSet<u64> = extents.iter().map(|e| e.file().seq()).collect();
    assert_eq!(files.len(), 4, "one file per lane");
    assert!(extents.iter().all(|e| e.file().block_count() == 4));
    // A lane keeps carving from its own file.
    let again = alloc.allocate_between(2, 1, 1).unwrap();
    assert!(Arc::ptr_eq(again.file(), extents[2].file()));
    assert_eq!(again.first_block(), 1);
    // An extent larger than a lane's file gets a file of its own.
    let big = alloc.allocate_between(1, 5 * 4096, 5 * 4096).unwrap();
    assert_eq!((big.file().block_count(), big.first_block()), (5, 0));
    // Files of fewer than 16 blocks are not split, nor are files configured with one lane.
    let few = AllocConfig {
        lanes: walrus_alloc::LANES,
        ..small_config()
    };
    assert_eq!(mem_allocator(few).1.lanes(), 1);
    let one = AllocConfig { lanes: 1, ..config };
    assert_eq!(mem_allocator(one).1.lanes(), 1);
}
