//! Coordination-free deletion: whoever completes a file's last condition deletes it, and the
//! space really comes back.

use std::{path::Path, sync::Arc};

use walrus_alloc::{AllocConfig, Allocator, file_name};
use walrus_storage::{BackendKind, Storage, open_storage};

use crate::allocator::{mem_allocator, small_config};

#[test]
fn file_is_deleted_when_last_extent_is_consumed() {
    let (storage, alloc) = mem_allocator(small_config());
    let extents: Vec<_> = (0..4).map(|_| alloc.allocate(1).unwrap()).collect();
    // Roll over so file 1 is fully allocated.
    let next = alloc.allocate(1).unwrap();
    assert!(extents[0].file().counts().fully_allocated);
    for (i, extent) in extents.iter().enumerate() {
        assert!(extent.seal());
        assert!(extent.consume());
        let present = storage.list().unwrap().contains(&file_name(1));
        assert_eq!(present, i < 3, "deleted exactly after the last consume");
    }
    assert!(
        extents[0].file().segment().is_none(),
        "handle dropped on deletion"
    );
    assert!(
        storage
            .list()
            .unwrap()
            .contains(&file_name(next.file().seq()))
    );
}

#[test]
fn consume_is_idempotent_and_requires_a_seal() {
    let (storage, alloc) = mem_allocator(small_config());
    let a = alloc.allocate(1).unwrap();
    let b = alloc.allocate(1).unwrap();
    alloc.retire_current();
    assert!(!a.consume(), "an extent being written cannot be consumed");
    assert!(a.seal());
    assert!(!a.seal());
    assert!(a.consume());
    assert!(!a.consume(), "counted once however many readers pass");
    assert_eq!(a.file().counts().consumed, 1);
    assert!(
        storage.list().unwrap().contains(&file_name(1)),
        "b still unconsumed"
    );
    b.abandon();
    assert!(!storage.list().unwrap().contains(&file_name(1)));
}

#[test]
fn unused_precreated_spare_is_removed_on_drop() {
    let config = AllocConfig {
        block_bytes: 4096,
        blocks_per_file: 4,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: true,
        quiet: false,
    };
    let (storage, alloc) = mem_allocator(config);
    let _a = alloc.allocate(4096 * 2).unwrap(); // half allocated: a spare is started
    drop(alloc);
    assert_eq!(storage.list().unwrap(), [file_name(1)]);
}

/// `path` with its directory resolved, as the kernel shows it in `/proc/self`.
fn canonical(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path.parent().unwrap())
        .unwrap()
        .join(path.file_name().unwrap())
}

fn open_fds_to(path: &Path) -> usize {
    let target = canonical(path);
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| {
            link.to_string_lossy().trim_end_matches(" (deleted)") == target.to_string_lossy()
        })
        .count()
}

fn mappings_of(path: &Path) -> usize {
    // The whole path: tests running in parallel map files of the same name in other
    // temporary directories.
    let target = canonical(path).to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_once('/').is_some_and(|(_, rest)| {
                format!("/{rest}").trim_end_matches(" (deleted)") == target
            })
        })
        .count()
}

fn deleted_file_space_is_returned(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = open_storage(dir.path(), kind).unwrap();
    let config = AllocConfig {
        block_bytes: 1 << 20,
        blocks_per_file: 4,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: false,
        quiet: false,
    };
    let alloc = Allocator::new(storage, config).unwrap();
    let extent = alloc.allocate(1).unwrap();
    let path = dir.path().join(file_name(extent.file().seq()));
    let segment = extent.file().segment().unwrap();
    segment.write_at(extent.offset(), b"payload").unwrap();
    drop(segment);
    assert_eq!(
        open_fds_to(&path) + mappings_of(&path),
        1,
        "one handle while live"
    );
    alloc.retire_current();
    extent.seal();
    extent.consume();
    assert!(!path.exists(), "unlinked when the last extent is consumed");
    // The handle is closed on a helper thread (freeing the cached pages of a large file
    // takes a while): soon, not necessarily at once.
    let released = |what: fn(&Path) -> usize| {
        (0..500).any(|_| {
            let gone = what(&path) == 0;
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            gone
        })
    };
    assert!(
        released(open_fds_to),
        "no descriptor keeps the deleted file's blocks"
    );
    assert!(
        released(mappings_of),
        "no mapping keeps the deleted file's blocks"
    );
}

#[test]
fn deleted_file_space_is_returned_fd() {
    deleted_file_space_is_returned(BackendKind::Fd);
}

#[test]
fn deleted_file_space_is_returned_mmap() {
    deleted_file_space_is_returned(BackendKind::Mmap);
}

#[test]
fn disk_blocks_are_freed_after_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = open_storage(dir.path(), BackendKind::Fd).unwrap();
    let config = AllocConfig {
        block_bytes: 16 << 20,
        blocks_per_file: 4,
        small_unit_bytes: 4096,
        lanes: 1,
        precreate: false,
        quiet: false,
    };
    let alloc = Allocator::new(storage, config).unwrap();
    let extent = alloc.allocate(config.block_bytes).unwrap();
    let used_before = allocated_bytes(dir.path());
    assert!(
        used_before >= 64 << 20,
        "file is pre-allocated, not sparse: {used_before}"
    );
    alloc.retire_current();
    extent.seal();
    extent.consume();
    assert_eq!(allocated_bytes(dir.path()), 0);
}

/// Bytes actually allocated on disk by the files of `dir` (st_blocks * 512).
fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}
