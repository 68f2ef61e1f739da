//! A one-node Raft cluster on walrus-raft, end to end: writes through openraft, a restart
//! that rebuilds the in-memory state machine from the log, a snapshot and a purge, and a
//! restart that rebuilds it from the snapshot its snapshot topic kept.

use std::{collections::BTreeMap, future::Future, path::Path, sync::Arc, time::Duration};

use openraft::{
    BasicNode, Config, OptionalSend, Raft, RaftNetworkFactory, RaftNetworkV2,
    alias::{SnapshotOf, VoteOf},
    errors::{RPCError, ReplicationClosed, StreamingError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
    },
    storage::RaftLogStorage,
};
use walrus_raft::{LogStateMachine, Request, TypeConfig, WalrusLogStore};
use walrus_rust::{FsyncSchedule, Walrus};

/// The network of a cluster of one: there is no peer to reach.
struct NoPeers;

fn unreachable() -> Unreachable<TypeConfig> {
    Unreachable::new(&std::io::Error::other("a one-node cluster has no peers"))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> NoPeers {
        NoPeers
    }
}

impl RaftNetworkV2<TypeConfig> for NoPeers {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(unreachable().into())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(unreachable().into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<TypeConfig>,
        _snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(unreachable().into())
    }
}

type Node = Raft<TypeConfig, LogStateMachine>;

/// Opens the instance in `dir`, waiting for an earlier one to close: openraft's tasks drop
/// their handles of the log store (which keep the instance open) shortly after `shutdown`
/// returns.
async fn open_wal(dir: &Path) -> Walrus {
    for _ in 0..200 {
        let opened = Walrus::builder()
            .data_dir(dir.to_path_buf())
            .fsync_schedule(FsyncSchedule::Milliseconds(2))
            .build();
        match opened {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => return opened.unwrap(),
        }
    }
    panic!("{} still in use after 10 s", dir.display());
}

async fn start(dir: &Path) -> (Node, LogStateMachine) {
    let wal = open_wal(dir).await;
    let store = WalrusLogStore::<TypeConfig>::open(&wal, 1)
        .unwrap()
        .committed_interval(Duration::ZERO);
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Config::default()
    };
    let sm = LogStateMachine::open(&wal, 1).unwrap();
    let raft = Raft::new(
        1,
        Arc::new(config.validate().unwrap()),
        NoPeers,
        store,
        sm.clone(),
    )
    .await
    .unwrap();
    (raft, sm)
}

async fn write(raft: &Node, data: &[u8]) -> u64 {
    let request = Request::new("events", data);
    let response = raft.client_write(request).await.unwrap();
    response.data.position.expect("a request gets a position")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_restart_and_a_purge() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Some(Duration::from_secs(30));
    {
        let (raft, sm) = start(dir.path()).await;
        let members = BTreeMap::from([(1, BasicNode::default())]);
        raft.initialize(members).await.unwrap();
        raft.wait(timeout)
            .current_leader(1, "leader")
            .await
            .unwrap();
        for i in 0..5u8 {
            assert_eq!(write(&raft, &[i]).await, u64::from(i));
        }
        assert_eq!(sm.read("events", 4), Some(vec![4]));
        raft.shutdown().await.unwrap();
    }

    // The state machine is in memory: the restart re-applies the log up to the committed
    // id the store kept in the topic's meta record, before the node even runs.
    let (raft, sm) = start(dir.path()).await;
    assert_eq!(sm.topic_len("events"), 5);
    raft.wait(timeout)
        .current_leader(1, "leader again")
        .await
        .unwrap();
    assert_eq!(write(&raft, b"after restart").await, 5);

    raft.trigger().snapshot().await.unwrap();
    let applied = sm.last_applied().unwrap();
    raft.wait(timeout)
        .snapshot(applied, "snapshot")
        .await
        .unwrap();
    raft.trigger().purge_log(applied.index()).await.unwrap();
    raft.wait(timeout)
        .purged(Some(applied), "purged")
        .await
        .unwrap();
    raft.shutdown().await.unwrap();
    drop((raft, sm));

    // The log is purged up to the snapshot: the state machine restarts from the snapshot,
    // which its snapshot topic kept.
    let (raft, sm) = start(dir.path()).await;
    assert_eq!(sm.last_applied(), Some(applied));
    assert_eq!(sm.topic_len("events"), 6);
    assert_eq!(sm.read("events", 5).as_deref(), Some(&b"after restart"[..]));
    raft.wait(timeout)
        .current_leader(1, "leader after the purge")
        .await
        .unwrap();
    assert_eq!(write(&raft, b"after the purge").await, 6);
    raft.shutdown().await.unwrap();
    drop((raft, sm));

    // The purge is in the log too.
    let wal = open_wal(dir.path()).await;
    let mut store = WalrusLogStore::<TypeConfig>::open(&wal, 1).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(applied));
}
