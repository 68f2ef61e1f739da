//! loom model of two readers passing the same extent while its writer seals it.

use std::sync::Arc as StdArc;

use loom::thread;
use walrus_storage::{MemStorage, Storage};

use crate::{AllocConfig, Allocator};

/// Two readers race to consume one extent while the allocator retires its file: the extent
/// is counted consumed once, and the file is deleted exactly when both extents are consumed.
#[test]
fn loom_racing_consumers_count_an_extent_once() {
    loom::model(|| {
        let storage = MemStorage::new();
        let shared: StdArc<dyn Storage> = StdArc::new(storage.clone());
        let config = AllocConfig {
            block_bytes: 512,
            blocks_per_file: 2,
            small_unit_bytes: 0,
            lanes: 1,
            precreate: false,
            quiet: false,
        };
        let alloc = Allocator::new(shared, config).unwrap();
        let a = alloc.allocate(1).unwrap();
        let b = alloc.allocate(1).unwrap();
        alloc.retire_current();
        a.seal();

        let a1 = StdArc::clone(&a);
        let r1 = thread::spawn(move || a1.consume());
        let a2 = StdArc::clone(&a);
        let r2 = thread::spawn(move || a2.consume());
        let b1 = StdArc::clone(&b);
        let w = thread::spawn(move || {
            b1.seal();
            b1.consume()
        });
        let consumed = [r1.join().unwrap(), r2.join().unwrap()];
        assert!(w.join().unwrap());
        assert_eq!(consumed.iter().filter(|c| **c).count(), 1);
        let counts = a.file().counts();
        assert_eq!(counts.consumed, 2);
        assert!(counts.deleted);
        assert!(storage.list().unwrap().is_empty());
    });
}
