//! openraft's storage test suite (`openraft::testing::log::Suite`) on walrus-raft, for both
//! backends (fd and mmap), each store in a fresh temporary directory: `test_all` once per
//! backend, and every check of it on its own (so that a failure names its check).

use std::{future::Future, io};

use openraft::{
    StorageError,
    testing::log::{StoreBuilder, Suite},
};
use tempfile::TempDir;
use walrus_raft::{LogStateMachine, TypeConfig, WalrusLogStore};
use walrus_rust::{FsyncSchedule, Walrus};

type Store = WalrusLogStore<TypeConfig>;

/// Builds a store in a fresh directory, on the fd backend or the mmap one.
struct Builder {
    fd: bool,
}

impl StoreBuilder<TypeConfig, Store, LogStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Store, LogStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let wal = Walrus::builder()
            .data_dir(dir.path().to_path_buf())
            .fd_backend(self.fd)
            .fsync_schedule(FsyncSchedule::Milliseconds(2))
            .build()
            .expect("open walrus");
        let store = Store::open(&wal, 1).expect("open store");
        // The state machine with its snapshots in the same instance, as the service runs it.
        let sm = LogStateMachine::open(&wal, 1).expect("open state machine");
        Ok((dir, store, sm))
    }
}

type S = Suite<TypeConfig, Store, LogStateMachine, Builder, TempDir>;

/// Runs one check of the suite on a fresh store.
async fn check<F, Fut>(fd: bool, test: F)
where
    F: FnOnce(Store, LogStateMachine) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let (_dir, store, sm) = Builder { fd }.build().await.unwrap();
    test(store, sm).await.unwrap();
}

macro_rules! checks {
    ($backend:ident, $fd:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn test_all() {
                S::test_all(Builder { fd: $fd }).await.unwrap();
            }

            #[tokio::test]
            async fn transfer_snapshot() {
                S::transfer_snapshot(&Builder { fd: $fd }).await.unwrap();
            }

            checks!(@each $fd;
                last_membership_in_log_initial,
                last_membership_in_log,
                last_membership_in_log_multi_step,
                get_membership_initial,
                get_membership_from_log_and_empty_sm,
                get_membership_from_empty_log_and_sm,
                get_membership_from_log_le_sm_last_applied,
                get_membership_from_log_gt_sm_last_applied_1,
                get_membership_from_log_gt_sm_last_applied_2,
                get_initial_state_without_init,
                get_initial_state_membership_from_empty_log_and_sm,
                get_initial_state_membership_from_sm_inlog_is_smaller,
                get_initial_state_membership_from_log_insm_is_smaller,
                get_initial_state_with_state,
                get_initial_state_last_log_gt_sm,
                get_initial_state_last_log_lt_sm,
                get_initial_state_inverted_log_order,
                get_initial_state_conflict_at_same_index,
                get_initial_state_log_ids,
                get_initial_state_re_apply_committed,
                save_vote,
                get_log_entries,
                limited_get_log_entries,
                leader_bounded_stream,
                entries_stream,
                try_get_log_entry,
                log_reader_reads_new_entries,
                initial_logs,
                get_log_state,
                get_log_id,
                last_id_in_log,
                last_applied_state,
                purge_logs_upto_0,
                purge_logs_upto_5,
                purge_logs_upto_20,
                delete_logs_after_11,
                delete_logs_after_5,
                delete_logs_after_0,
                delete_logs_after_none,
                append_to_log,
                snapshot_meta,
                snapshot_meta_optional,
                apply_single,
                apply_multiple,
            );
        }
    };
    (@each $fd:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                check($fd, S::$name).await;
            }
        )*
    };
}

checks!(fd, true);
checks!(mmap, false);
