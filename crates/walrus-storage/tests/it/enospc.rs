//! A full disk for real: a 2 MiB tmpfs on which an 8 MiB file cannot be reserved.
//!
//! Needs permission to mount. Without it the tests print why they skipped, except under CI
//! (`CI=true`), where a skipped check would hide a regression, so they fail instead.

use std::{io, path::Path, sync::Arc};

use walrus_storage::{FdOptions, FdStorage, MmapStorage, Storage};

use crate::pattern;

/// The 2 MiB tmpfs of these tests, or `None` when the test is skipped.
fn small_tmpfs(test: &str) -> Option<walrus_storage::SmallTmpfs> {
    walrus_storage::small_tmpfs(test, "2m")
}

/// The shared check: a file larger than the file system fails cleanly, leaves nothing
/// behind, and the storage keeps working for files that fit.
fn reserving_more_than_the_disk_holds_is_storage_full(storage: &dyn Storage, root: &Path) {
    let err = storage.create("big", 8 * 1024 * 1024).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err:?}");
    assert!(err.to_string().contains("big"), "{err}");
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::StorageFull);

    assert!(!storage.list().unwrap().contains(&"big".to_owned()));
    assert!(
        !root.join("big").exists(),
        "the failed file was left behind"
    );

    let seg = storage.create("small", 64 * 1024).unwrap();
    let data = pattern(11, 64 * 1024);
    seg.write_at(0, &data).unwrap();
    seg.sync().unwrap();
    let mut back = vec![0u8; data.len()];
    seg.read_at(0, &mut back).unwrap();
    assert_eq!(back, data);
    drop(seg);

    // A file that takes most of what is left can be written to its last byte: its space was
    // reserved at creation, so a store through a mapping cannot SIGBUS.
    let nearly_all = storage.create("nearly-all", 1024 * 1024).unwrap();
    let data = pattern(12, 1024 * 1024);
    nearly_all.write_at(0, &data).unwrap();
    nearly_all.sync().unwrap();
    let mut back = vec![0u8; data.len()];
    nearly_all.read_at(0, &mut back).unwrap();
    assert_eq!(back, data);
    drop(nearly_all);

    // Now the disk really is full.
    let err = storage.create("one-more", 1024 * 1024).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err:?}");
    assert!(!root.join("one-more").exists());
    let mut names = storage.list().unwrap();
    names.sort();
    assert_eq!(names, ["nearly-all", "small"]);
}

#[test]
fn fd_create_on_a_full_disk_is_storage_full_and_leaves_no_file() {
    let Some(fs) = small_tmpfs("fd_create_on_a_full_disk_is_storage_full_and_leaves_no_file")
    else {
        return;
    };
    let storage: Arc<dyn Storage> =
        Arc::new(FdStorage::open(fs.path(), FdOptions { io_uring: false }).unwrap());
    reserving_more_than_the_disk_holds_is_storage_full(storage.as_ref(), fs.path());
}

#[test]
fn fd_uring_create_on_a_full_disk_is_storage_full_and_leaves_no_file() {
    let Some(fs) = small_tmpfs("fd_uring_create_on_a_full_disk_is_storage_full_and_leaves_no_file")
    else {
        return;
    };
    let storage: Arc<dyn Storage> =
        Arc::new(FdStorage::open(fs.path(), FdOptions { io_uring: true }).unwrap());
    reserving_more_than_the_disk_holds_is_storage_full(storage.as_ref(), fs.path());
}

#[test]
fn mmap_create_on_a_full_disk_is_storage_full_and_does_not_sigbus() {
    let Some(fs) = small_tmpfs("mmap_create_on_a_full_disk_is_storage_full_and_does_not_sigbus")
    else {
        return;
    };
    let storage: Arc<dyn Storage> = Arc::new(MmapStorage::open(fs.path()).unwrap());
    reserving_more_than_the_disk_holds_is_storage_full(storage.as_ref(), fs.path());
}
