//! [`Node`]: one Walrus instance holding the logs and state machines of several Raft groups.

use std::{collections::BTreeMap, fmt, io, time::Instant};

use openraft::{
    BasicNode, Raft, ReadPolicy,
    async_runtime::watch::WatchReceiver,
    errors::{
        ClientWriteError, ForwardReason, ForwardToLeader, InitializeError, LinearizableReadError,
        RaftError,
    },
};
use walrus_rust::Walrus;

use super::{Entries, GroupStatus, NodeConfig, ServiceError, Transport, group_of};
use crate::{LogStateMachine, Request, TypeConfig, WalrusLogStore};

/// The openraft handle of one group.
pub type GroupRaft = Raft<TypeConfig, LogStateMachine>;

struct Group {
    raft: GroupRaft,
    state: LogStateMachine,
}

/// A node of the replicated log: one Walrus instance (one directory) holding the log store
/// and the state machine of each of its Raft groups (see the [module docs](super)).
///
/// Share it behind an `Arc`: the [`Router`](super::Router) and the HTTP server hold one.
/// Every handle must be dropped after [`shutdown`](Self::shutdown) before the directory can
/// be opened again.
pub struct Node {
    id: u64,
    groups: Vec<Group>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl Node {
    /// Opens the node of `config`: its Walrus instance in `config.dir` (waiting up to
    /// `config.open_timeout` for an earlier instance on it to close), and a Raft instance per
    /// group whose network comes from `transport`. Each group starts from what its log and
    /// newest snapshot hold; a fresh group waits for [`initialize`](Self::initialize) on one
    /// node (or for a leader to reach it).
    pub async fn open<T: Transport>(config: &NodeConfig, transport: &T) -> io::Result<Self> {
        let wal = open_wal(config).await?;
        let mut groups = Vec::new();
        for group in 0..config.groups {
            let store = WalrusLogStore::<TypeConfig>::open(&wal, group)?;
            let state = LogStateMachine::open(&wal, group)?;
            let network = transport.network(config.id, group);
            let raft = Raft::new(
                config.id,
                config.raft.clone(),
                network,
                store,
                state.clone(),
            )
            .await
            .map_err(|e| io::Error::other(format!("group {group}: {e}")))?;
            groups.push(Group { raft, state });
        }
        tracing::info!(
            node = config.id,
            groups = config.groups,
            dir = %config.dir.display(),
            "node open"
        );
        Ok(Self {
            id: config.id,
            groups,
        })
    }

    /// The node's Raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many groups the node holds.
    pub fn groups(&self) -> u64 {
        self.groups.len() as u64
    }

    /// The group of `topic` ([`group_of`] with this node's number of groups).
    pub fn group_of(&self, topic: &str) -> u64 {
        group_of(topic, self.groups())
    }

    fn group(&self, group: u64) -> Result<&Group, ServiceError> {
        usize::try_from(group)
            .ok()
            .and_then(|g| self.groups.get(g))
            .ok_or_else(|| {
                ServiceError::Rejected(format!(
                    "group {group}: node {} has {} groups",
                    self.id,
                    self.groups.len()
                ))
            })
    }

    /// The openraft handle of group `group` (for metrics, `wait`, triggers, membership
    /// changes), if the node has it.
    pub fn raft(&self, group: u64) -> Option<&GroupRaft> {
        self.group(group).ok().map(|g| &g.raft)
    }

    /// The state machine of group `group`, if the node has it.
    pub fn state_machine(&self, group: u64) -> Option<&LogStateMachine> {
        self.group(group).ok().map(|g| &g.state)
    }

    /// The leader of group `group` as far as this node knows.
    pub fn leader(&self, group: u64) -> Option<u64> {
        self.raft(group)?.metrics().borrow_watched().current_leader
    }

    /// What this node knows of each of its groups.
    pub fn status(&self) -> Vec<GroupStatus> {
        (0..)
            .zip(&self.groups)
            .map(|(group, g)| {
                let metrics = g.raft.metrics();
                let metrics = metrics.borrow_watched();
                GroupStatus {
                    group,
                    leader: metrics.current_leader,
                    term: metrics.current_term,
                    last_log: metrics.last_log_index,
                    // From the state machine: the metrics may lag behind the answers.
                    applied: g.state.last_applied().map(|id| id.index()),
                }
            })
            .collect()
    }

    /// Makes `members` (node id to address) the first membership of group `group`, from this
    /// node, which is among them and campaigns at once. Call it on one node per group, once
    /// in the life of the cluster; a group that is initialized already answers `Ok`.
    pub async fn initialize(
        &self,
        group: u64,
        members: BTreeMap<u64, BasicNode>,
    ) -> Result<(), ServiceError> {
        match self.group(group)?.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!(group, "already initialized: {e}");
                Ok(())
            }
            Err(RaftError::APIError(e)) => Err(ServiceError::Rejected(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(ServiceError::Unavailable(e.to_string())),
        }
    }

    /// Appends `request.data` to topic `request.topic` through the leader of its group, which
    /// must be this node. Returns once the entry is committed (durable on a majority of the
    /// group) and applied, with its position in the topic; for a retry of a request (same
    /// [`RequestId`](crate::RequestId)) that was committed already, with the position it got.
    pub async fn append(&self, request: Request) -> Result<u64, ServiceError> {
        let group = self.group_of(&request.topic);
        let response = self
            .group(group)?
            .raft
            .client_write(request)
            .await
            .map_err(|e| match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(group, f),
                RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => {
                    ServiceError::Unavailable(format!(
                        "entry discarded on a change of leader (now {:?}): it may or may not be \
                         committed",
                        f.leader_id
                    ))
                }
                RaftError::APIError(e) => ServiceError::Rejected(e.to_string()),
                RaftError::Fatal(e) => ServiceError::Unavailable(format!("node stopped: {e}")),
            })?;
        response.data.position.ok_or_else(|| {
            ServiceError::Rejected(
                "stale request: its session has applied a later serial already".to_owned(),
            )
        })
    }

    /// At most `max` committed entries of `topic` from position `from` on, linearizable: this
    /// node must lead the topic's group; it confirms that with a quorum and waits until it
    /// applied every entry committed before, so the read sees every append acknowledged
    /// before it started.
    pub async fn read(&self, topic: &str, from: u64, max: u64) -> Result<Entries, ServiceError> {
        let group = self.group_of(topic);
        let g = self.group(group)?;
        g.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| match e {
                RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                    not_leader(group, f)
                }
                RaftError::APIError(e) => ServiceError::Unavailable(e.to_string()),
                RaftError::Fatal(e) => ServiceError::Unavailable(format!("node stopped: {e}")),
            })?;
        Ok(g.state.read_range(topic, from, usize_of(max)))
    }

    /// At most `max` entries of `topic` from position `from` on, as this node applied them:
    /// committed entries, but possibly not the latest ones (served by any node).
    pub fn read_local(&self, topic: &str, from: u64, max: u64) -> Result<Entries, ServiceError> {
        let group = self.group(self.group_of(topic))?;
        Ok(group.state.read_range(topic, from, usize_of(max)))
    }

    /// Shuts every group's Raft instance down. Requests still waiting fail with
    /// [`ServiceError::Unavailable`].
    pub async fn shutdown(&self) {
        for (group, g) in self.groups.iter().enumerate() {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(node = self.id, group, "shutdown: {e}");
            }
        }
        tracing::info!(node = self.id, "node shut down");
    }
}

fn usize_of(max: u64) -> usize {
    usize::try_from(max).unwrap_or(usize::MAX)
}

fn not_leader(group: u64, f: ForwardToLeader<TypeConfig>) -> ServiceError {
    if f.reason == ForwardReason::LeaseExpired {
        return ServiceError::Unavailable(format!(
            "group {group}: the leader's lease is not valid (no quorum acknowledged it lately)"
        ));
    }
    ServiceError::NotLeader {
        group,
        leader: f.leader_id,
        addr: f.leader_node.map(|n| n.addr),
    }
}

/// Opens the instance of `config`, waiting (up to `open_timeout`) while an earlier one on the
/// directory is still open: openraft's tasks drop their handles of the log store (which keep
/// the instance open) shortly after `Raft::shutdown` returns.
async fn open_wal(config: &NodeConfig) -> io::Result<Walrus> {
    let deadline = Instant::now() + config.open_timeout;
    loop {
        let opened = Walrus::builder()
            .data_dir(config.dir.clone())
            .fsync_schedule(config.fsync)
            .build();
        match opened {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            opened => return opened,
        }
    }
}
