//! Data directories, keys, environment variables and the thread namespace.
//!
//! Setting the process environment needs `unsafe` (edition 2024), which lives only in
//! walrus-storage: the tests that depend on the environment run in child processes that get
//! it through `Command::env`.

use std::path::{Path, PathBuf};

use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus, wal};

fn data_dir() -> Option<PathBuf> {
    std::env::var_os("WALRUS_NS_TEST_DATA").map(PathBuf::from)
}

#[test]
fn environment_and_keys_choose_the_directory() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().as_os_str();
    let base = [
        ("WALRUS_DATA_DIR", dir),
        ("WALRUS_NS_TEST_DATA", dir),
        ("WALRUS_QUIET", "1".as_ref()),
    ];
    crate::support::run_child_test("namespaces::child_without_instance_key", &base);
    let mut with_key = base.to_vec();
    with_key.push(("WALRUS_INSTANCE_KEY", "".as_ref()));
    crate::support::run_child_test("namespaces::child_with_empty_instance_key", &with_key);
}

/// Child: no key, a key, keyed constructors ignoring the thread namespace, the builder's
/// directory ignoring the environment, and `WalIndex`.
#[test]
#[ignore = "run as a child process by environment_and_keys_choose_the_directory"]
fn child_without_instance_key() {
    let Some(data) = data_dir() else { return };
    // No key, no instance key: the data directory itself.
    let wal = Walrus::with_consistency_and_schedule(
        ReadConsistency::StrictlyAtOnce,
        FsyncSchedule::SyncEach,
    )
    .unwrap();
    wal.append_for_topic("t", b"root").unwrap();
    drop(wal);
    assert!(has_wal_file(&data));

    // A key: a sanitized sub-directory.
    let keyed = Walrus::new_for_key("prod/payments::v1").unwrap();
    keyed.append_for_topic("t", b"keyed").unwrap();
    keyed.flush().unwrap();
    assert!(has_wal_file(&data.join("prod_payments__v1")));
    assert_eq!(keyed.read_next("t", true).unwrap().unwrap().data, b"keyed");
    drop(keyed);

    // Keyed constructors ignore the thread namespace; the builder's directory ignores the env.
    wal::__set_thread_namespace_for_tests("ignored");
    let keyed = Walrus::with_consistency_for_key("k", ReadConsistency::StrictlyAtOnce).unwrap();
    keyed.append_for_topic("t", b"k").unwrap();
    keyed.flush().unwrap();
    assert!(has_wal_file(&data.join("k")));
    wal::__clear_thread_namespace_for_tests();
    let explicit = tempfile::tempdir().unwrap();
    let wal = Walrus::builder()
        .data_dir(explicit.path().to_path_buf())
        .key("x y")
        .build()
        .unwrap();
    wal.append_for_topic("t", b"explicit").unwrap();
    wal.flush().unwrap();
    assert!(has_wal_file(&explicit.path().join("x_y")));

    // WalIndex lives in the instance directory and persists.
    {
        let mut index = walrus_rust::WalIndex::new("positions").unwrap();
        index.set("a".into(), 3, 42).unwrap();
        index.set("b".into(), 1, 2).unwrap();
        assert_eq!(index.remove("b").unwrap().unwrap().cur_block_offset, 2);
        assert!(index.remove("missing").unwrap().is_none());
    }
    let index = walrus_rust::WalIndex::new("positions").unwrap();
    let pos = index.get("a").unwrap();
    assert_eq!((pos.cur_block_idx, pos.cur_block_offset), (3, 42));
    assert!(index.get("b").is_none());
    assert!(data.join("positions_index.db").exists());
}

/// Child: `WALRUS_INSTANCE_KEY` for the constructors without a key, even when empty, and the
/// thread namespace winning over it.
#[test]
#[ignore = "run as a child process by environment_and_keys_choose_the_directory"]
fn child_with_empty_instance_key() {
    let Some(data) = data_dir() else { return };
    let wal = Walrus::new().unwrap();
    wal.append_for_topic("t", b"instance").unwrap();
    wal.flush().unwrap();
    assert!(has_wal_file(&data.join("ns_cbf29ce484222325")));
    drop(wal);

    wal::__set_thread_namespace_for_tests("thread-ns");
    assert_eq!(
        wal::__current_thread_namespace_for_tests().as_deref(),
        Some("thread-ns")
    );
    let wal = Walrus::with_consistency(ReadConsistency::StrictlyAtOnce).unwrap();
    wal.append_for_topic("t", b"thread").unwrap();
    wal.flush().unwrap();
    assert!(has_wal_file(&data.join("thread-ns")));
    drop(wal);
    wal::__clear_thread_namespace_for_tests();
    assert_eq!(wal::__current_thread_namespace_for_tests(), None);
}

fn has_wal_file(dir: &Path) -> bool {
    !crate::support::wal_files(dir).is_empty()
}

#[test]
fn sanitize_matches_the_original_rules() {
    assert_eq!(
        walrus_rust::sanitize_key("prod/payments::v1"),
        "prod_payments__v1"
    );
    assert_eq!(walrus_rust::sanitize_key(""), "ns_cbf29ce484222325");
    assert_eq!(walrus_rust::sanitize_key("é"), format!("ns_{}", fnv("é")));
}

fn fnv(s: &str) -> String {
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{hash:x}")
}
