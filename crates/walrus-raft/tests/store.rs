//! The log store beyond openraft's suite: what survives a reopen, and the appends it refuses.

use std::{io, path::Path, time::Duration};

use openraft::{
    Vote,
    alias::LogIdOf,
    entry::RaftEntry,
    storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt},
    testing::blank_ent,
};
use walrus_raft::{TypeConfig, WalrusLogStore};
use walrus_rust::{FsyncSchedule, Walrus};

type Store = WalrusLogStore<TypeConfig>;

fn log_id(term: u64, node: u64, index: u64) -> LogIdOf<TypeConfig> {
    openraft::testing::log_id::<TypeConfig>(term, node, index)
}

fn open(dir: &Path, fd: bool) -> Store {
    let wal = Walrus::builder()
        .data_dir(dir.to_path_buf())
        .fd_backend(fd)
        .fsync_schedule(FsyncSchedule::Milliseconds(2))
        .build()
        .unwrap();
    Store::open(&wal, 9)
        .unwrap()
        .committed_interval(Duration::ZERO)
}

async fn append(store: &mut Store, term: u64, indexes: std::ops::Range<u64>) {
    let entries = indexes.map(|i| blank_ent::<TypeConfig>(term, 1, i));
    store.blocking_append(entries).await.unwrap();
}

async fn indexes(store: &mut Store) -> Vec<u64> {
    let mut reader = store.get_log_reader().await;
    let entries = reader.try_get_log_entries(..).await.unwrap();
    entries.iter().map(|e| e.index()).collect()
}

async fn reopen_keeps_log_vote_committed_and_purged(fd: bool) {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), fd);
        append(&mut store, 1, 0..10).await;
        store.save_vote(&Vote::new(2, 1)).await.unwrap();
        store.save_committed(Some(log_id(1, 1, 7))).await.unwrap();
        store.purge(log_id(1, 1, 3)).await.unwrap();
        store.truncate_after(Some(log_id(1, 1, 8))).await.unwrap();
        append(&mut store, 2, 9..12).await;
    }
    let mut store = open(dir.path(), fd);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 11)));
    assert_eq!(indexes(&mut store).await, (4..12).collect::<Vec<_>>());
    let mut reader = store.get_log_reader().await;
    assert_eq!(reader.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 1, 7)));

    // A purge past the end empties the log; the next append follows the purged id.
    store.purge(log_id(2, 1, 20)).await.unwrap();
    drop(store);
    let mut store = open(dir.path(), fd);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 1, 20)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 20)));
    assert!(indexes(&mut store).await.is_empty());
    append(&mut store, 3, 21..23).await;
    assert_eq!(indexes(&mut store).await, [21, 22]);
}

async fn refuses_holes_and_overwrites(fd: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), fd);
    append(&mut store, 1, 0..3).await;
    for (index, what) in [(5, "hole"), (1, "overwrite")] {
        let err = store
            .blocking_append([blank_ent::<TypeConfig>(1, 1, index)])
            .await
            .unwrap_err();
        let source = err.to_string();
        assert!(source.contains("next index is 3"), "{what}: {source}");
    }
    // Entries of one append must be consecutive.
    let gap = [
        blank_ent::<TypeConfig>(1, 1, 3),
        blank_ent::<TypeConfig>(1, 1, 5),
    ];
    assert!(store.blocking_append(gap).await.is_err());
    // After truncating, the same index is taken again.
    store.truncate_after(Some(log_id(1, 1, 0))).await.unwrap();
    append(&mut store, 2, 1..3).await;
    let entries = store
        .get_log_reader()
        .await
        .try_get_log_entries(0..3)
        .await
        .unwrap();
    let ids: Vec<_> = entries.iter().map(|e| e.log_id()).collect();
    assert_eq!(ids, [log_id(1, 1, 0), log_id(2, 1, 1), log_id(2, 1, 2)]);
}

async fn appends_larger_than_one_batch(fd: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), fd);
    let n = walrus_rust::BATCH_ENTRIES_MAX as u64 * 2 + 7;
    append(&mut store, 1, 0..n).await;
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 1, n - 1)));
    assert_eq!(indexes(&mut store).await, (0..n).collect::<Vec<_>>());
    let limited = store
        .get_log_reader()
        .await
        .limited_get_log_entries(0, n)
        .await
        .unwrap();
    assert!(!limited.is_empty() && limited.len() as u64 <= n);
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod fd {
            $( #[tokio::test] async fn $name() { super::$name(true).await } )*
        }
        mod mmap {
            $( #[tokio::test] async fn $name() { super::$name(false).await } )*
        }
    };
}

both_backends!(
    reopen_keeps_log_vote_committed_and_purged,
    refuses_holes_and_overwrites,
    appends_larger_than_one_batch,
);

#[test]
fn works_outside_a_tokio_runtime() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut store = open(dir.path(), true);
    let vote = Vote::new(1, 1);
    futures_util::FutureExt::now_or_never(store.save_vote(&vote))
        .expect("no runtime: runs inline")?;
    let mut reader = futures_util::FutureExt::now_or_never(store.get_log_reader()).unwrap();
    let read = futures_util::FutureExt::now_or_never(reader.read_vote()).unwrap()?;
    assert_eq!(read, Some(vote));
    Ok(())
}
