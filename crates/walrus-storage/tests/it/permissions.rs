//! Permissions of what the storage creates: files hold user data, so they are owner-only
//! unless the caller asks otherwise, and existing files and directories are never changed.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::Path,
};

use walrus_storage::{
    BackendKind, DEFAULT_FILE_MODE, DirLock, LOCK_FILE_NAME, dir_mode, open_storage,
    open_storage_with_mode,
};

/// The process umask, read without changing it (Linux 4.7+); 022, the usual one, otherwise.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[track_caller]
fn assert_mode(path: &Path, want: u32) {
    let got = mode_of(path);
    assert!(
        got == want,
        "{}: mode {got:o}, expected {want:o}",
        path.display()
    );
}

/// What a creation with `mode` leaves: the umask only ever clears bits.
fn created(mode: u32) -> u32 {
    mode & !umask()
}

const BACKENDS: [BackendKind; 3] = [BackendKind::Fd, BackendKind::FdUring, BackendKind::Mmap];

#[test]
fn directory_mode_adds_search_where_read_is_set() {
    assert_eq!(DEFAULT_FILE_MODE, 0o600);
    assert_eq!(dir_mode(0o600), 0o700);
    assert_eq!(dir_mode(0o640), 0o750);
    assert_eq!(dir_mode(0o644), 0o755);
    assert_eq!(dir_mode(0o200), 0o200);
    assert_eq!(dir_mode(0o4644), 0o755, "only the permission bits count");
}

#[test]
fn created_files_and_directories_are_owner_only_by_default() {
    for kind in BACKENDS {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        let storage = open_storage(&dir, kind).unwrap();
        storage.create("seg", 4096).unwrap();
        assert_mode(&root.path().join("a"), created(0o700));
        assert_mode(&dir, created(0o700));
        assert_mode(&dir.join("seg"), created(0o600));
    }
}

#[test]
fn the_file_mode_asked_for_is_used() {
    for kind in BACKENDS {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        let storage = open_storage_with_mode(&dir, kind, 0o640).unwrap();
        storage.create("seg", 4096).unwrap();
        assert_mode(&root.path().join("a"), created(0o750));
        assert_mode(&dir, created(0o750));
        assert_mode(&dir.join("seg"), created(0o640));
    }
}

#[test]
fn existing_directories_and_files_keep_their_mode() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("open");
    fs::DirBuilder::new().mode(0o755).create(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("seg"), vec![0u8; 4096]).unwrap();
    fs::set_permissions(dir.join("seg"), fs::Permissions::from_mode(0o644)).unwrap();
    let storage = open_storage(&dir, BackendKind::Fd).unwrap();
    storage.open("seg").unwrap();
    storage.create("new", 4096).unwrap();
    let lock = DirLock::acquire(&dir).unwrap();
    assert_mode(&dir, 0o755);
    assert_mode(&dir.join("seg"), 0o644);
    assert_mode(&dir.join("new"), created(0o600));
    assert_mode(lock.path(), created(0o600));
}

#[test]
fn the_lock_file_and_its_directory_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("locked");
    let lock = DirLock::acquire(&dir).unwrap();
    assert_eq!(lock.path(), dir.join(LOCK_FILE_NAME));
    assert_mode(&dir, created(0o700));
    assert_mode(lock.path(), created(0o600));
    drop(lock);

    let dir = root.path().join("shared");
    let lock = DirLock::acquire_with_mode(&dir, 0o640).unwrap();
    assert_mode(&dir, created(0o750));
    assert_mode(lock.path(), created(0o640));
}
