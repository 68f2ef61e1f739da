//! Data directories, keys, environment variables and the thread namespace.
//!
//! Tests that change the process environment run in one test function, one after another.

use std::path::Path;

use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus, wal};

fn set_env(key: &str, value: &Path) {
    // SAFETY: only this test function touches these variables, and the other tests in this
    // binary do not read them (they pass explicit directories).
    unsafe { std::env::set_var(key, value) };
}

fn remove_env(key: &str) {
    // SAFETY: as in `set_env`.
    unsafe { std::env::remove_var(key) };
}

#[test]
fn environment_and_keys_choose_the_directory() {
    let data = tempfile::tempdir().unwrap();
    set_env("WALRUS_DATA_DIR", data.path());
    set_env("WALRUS_QUIET", Path::new("1"));

    // No key, no instance key: the data directory itself.
    let wal = Walrus::with_consistency_and_schedule(
        ReadConsistency::StrictlyAtOnce,
        FsyncSchedule::SyncEach,
    )
    .unwrap();
    wal.append_for_topic("t", b"root").unwrap();
    drop(wal);
    assert!(data.path().join("cursors-0000.idx").exists() || has_wal_file(data.path()));

    // A key: a sanitized sub-directory.
    let keyed = Walrus::new_for_key("prod/payments::v1").unwrap();
    keyed.append_for_topic("t", b"keyed").unwrap();
    keyed.flush().unwrap();
    assert!(has_wal_file(&data.path().join("prod_payments__v1")));
    assert_eq!(keyed.read_next("t", true).unwrap().unwrap().data, b"keyed");
    drop(keyed);

    // WALRUS_INSTANCE_KEY for the constructors without a key, even when empty.
    set_env("WALRUS_INSTANCE_KEY", Path::new(""));
    let wal = Walrus::new().unwrap();
    wal.append_for_topic("t", b"instance").unwrap();
    wal.flush().unwrap();
    assert!(has_wal_file(&data.path().join("ns_cbf29ce484222325")));
    drop(wal);

    // The thread namespace wins over WALRUS_INSTANCE_KEY.
    wal::__set_thread_namespace_for_tests("thread-ns");
    assert_eq!(
        wal::__current_thread_namespace_for_tests().as_deref(),
        Some("thread-ns")
    );
    let wal = Walrus::with_consistency(ReadConsistency::StrictlyAtOnce).unwrap();
    wal.append_for_topic("t", b"thread").unwrap();
    wal.flush().unwrap();
    assert!(has_wal_file(&data.path().join("thread-ns")));
    drop(wal);
    wal::__clear_thread_namespace_for_tests();
    assert_eq!(wal::__current_thread_namespace_for_tests(), None);
    remove_env("WALRUS_INSTANCE_KEY");

    // Keyed constructors ignore the thread namespace; the builder's directory ignores the env.
    wal::__set_thread_namespace_for_tests("ignored");
    let keyed = Walrus::with_consistency_for_key("k", ReadConsistency::StrictlyAtOnce).unwrap();
    keyed.append_for_topic("t", b"k").unwrap();
    keyed.flush().unwrap();
    assert!(has_wal_file(&data.path().join("k")));
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
    assert!(data.path().join("positions_index.db").exists());

    remove_env("WALRUS_DATA_DIR");
    remove_env("WALRUS_QUIET");
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
