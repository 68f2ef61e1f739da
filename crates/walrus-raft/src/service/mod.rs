//! A replicated log service on walrus-raft: the example to copy.
//!
//! # Shape
//!
//! - A [`Node`] is one Walrus instance (one directory) holding the logs of `groups` Raft
//!   groups: one [`WalrusLogStore`](crate::WalrusLogStore) per group (topic `raft-<g>`), all on
//!   the same instance and so sharing its group commit, and one [`LogStateMachine`](crate::LogStateMachine) per group,
//!   whose snapshots are kept in topic `raft-snapshot-<g>` of the same instance.
//! - A topic of the replicated log belongs to group [`group_of`]`(topic, groups)`: a stable
//!   hash (FNV-1a) of its name modulo the number of groups, the same in every process and
//!   release, so clients and nodes agree without asking. Each group has its own leader, so
//!   the leaders (and the write load) spread over the nodes.
//! - Clients call [`Node::append`] and [`Node::read`] on the node that leads the topic's
//!   group. A node that does not lead it answers [`ServiceError::NotLeader`] with the
//!   leader's id and address when it knows them, and the [`Client`] retries there: requests
//!   are not forwarded between nodes, which keeps one hop per write and makes the client learn
//!   the leaders. `append` returns once the entry is committed (durable on a majority) and
//!   applied, with its position in its topic; `read` confirms the leadership first
//!   (openraft's `ReadIndex`), so it sees every append acknowledged before it started.
//! - Retries are exactly-once: the [`Client`] sends every append with a
//!   [`RequestId`](crate::RequestId) (a session and a serial), and the state machine answers
//!   a retry of an entry that was committed meanwhile with the first position instead of
//!   appending it again.
//! - The nodes talk through a [`Transport`]: the in-process [`Router`] (tests: a map of node
//!   ids to nodes, where a node can be disconnected), or HTTP over TCP (`http` module, cargo
//!   feature `http`, on by default).
//!
//! # Durability of the state machine
//!
//! The replicated topics live in memory, in each group's [`LogStateMachine`](crate::LogStateMachine). A restarted node
//! rebuilds them from the group's newest snapshot, which is kept in the node's Walrus instance
//! (synced before openraft may purge the log entries it covers), plus the log entries after
//! it, which openraft re-applies up to the committed log id the log store saved; the entries
//! committed after that come from the leader. So nothing acknowledged is lost as long as a
//! majority of each group keeps its directory.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{collections::BTreeMap, sync::Arc};
//! use walrus_raft::service::{Client, Node, NodeConfig, Router};
//!
//! let router = Router::new();
//! for id in 1..=3 {
//!     let config = NodeConfig::new(id, format!("/tmp/node-{id}").into(), 1);
//!     router.add(Arc::new(Node::open(&config, &router).await?));
//! }
//! let members = BTreeMap::from_iter((1..=3).map(|id| (id, Router::member(id))));
//! router.node(1).unwrap().initialize(0, members).await?;
//! let mut client = Client::new(router.clone(), [1, 2, 3], 1);
//! let position = client.append("events", b"hello".to_vec()).await?;
//! assert_eq!(client.read("events", position, 1).await?[0].1, b"hello");
//! # Ok(())
//! # }
//! ```

mod client;
#[cfg(feature = "http")]
pub mod http;
mod node;
mod router;

use std::{error::Error, fmt, future::Future, path::PathBuf, sync::Arc, time::Duration};

use openraft::{RaftNetworkFactory, network::NetSnapshot};
use serde::{Deserialize, Serialize};
use walrus_rust::FsyncSchedule;

pub use client::Client;
pub use node::{GroupRaft, Node};
pub use router::{Router, RouterNetwork, RouterNetworkFactory};

use crate::{Request, TypeConfig};

/// The group of topic `topic` among `groups` groups (`groups` > 0): the FNV-1a hash of its
/// name modulo `groups`. Stable across processes, platforms and releases.
pub fn group_of(topic: &str, groups: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in topic.as_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % groups.max(1)
}

/// Why a request to a node of the replicated log failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// This node does not lead the topic's group: retry at `leader` (at address `addr`) when
    /// they are known, else later or elsewhere (an election is under way).
    NotLeader {
        /// The topic's group.
        group: u64,
        /// The node that leads the group, as far as this node knows.
        leader: Option<u64>,
        /// The leader's address (what its membership entry says).
        addr: Option<String>,
    },
    /// The node could not finish the request: it is shut down or unreachable, lost its
    /// leadership meanwhile, or cannot reach a quorum. An append may or may not have been
    /// committed: retry it with the same [`RequestId`](crate::RequestId).
    Unavailable(String),
    /// The request is invalid (a group this node does not have, a stale serial): a retry
    /// would fail the same way.
    Rejected(String),
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeader {
                group,
                leader,
                addr,
            } => write!(
                f,
                "not the leader of group {group} (leader: {leader:?} at {addr:?})"
            ),
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
            Self::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

impl Error for ServiceError {}

/// What a read asks for: at most `max` entries of `topic` from position `from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// The topic to read.
    pub topic: String,
    /// The first position to return.
    pub from: u64,
    /// The most entries to return.
    pub max: u64,
    /// Read this node's applied state without confirming its leadership (possibly stale,
    /// served by followers too) instead of a linearizable read at the leader.
    pub local: bool,
}

/// What a node knows of one of its groups ([`Node::status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group.
    pub group: u64,
    /// Its leader, as far as the node knows.
    pub leader: Option<u64>,
    /// The node's current term in the group.
    pub term: u64,
    /// The index of the last entry of the node's log of the group.
    pub last_log: Option<u64>,
    /// The index of the last entry the node applied (every append the node acknowledged is
    /// at or before it).
    pub applied: Option<u64>,
}

/// The entries a read returns: `(position, data)`, in order of position.
pub type Entries = Vec<(u64, Vec<u8>)>;

/// How a node's Raft groups reach the other nodes: one openraft network factory per group.
pub trait Transport: Send + Sync + 'static {
    /// The network factory of one group of one node.
    type Network: RaftNetworkFactory<TypeConfig, Network: NetSnapshot<TypeConfig, SnapshotData = Vec<u8>>>;

    /// The network that group `group` of node `node` sends its RPCs through.
    fn network(&self, node: u64, group: u64) -> Self::Network;
}

/// How a [`Client`] reaches the nodes: a request to the node of id `node`.
pub trait Connection: Send + Sync + 'static {
    /// [`Node::append`] on node `node`.
    fn append(
        &self,
        node: u64,
        request: Request,
    ) -> impl Future<Output = Result<u64, ServiceError>> + Send;

    /// [`Node::read`] (or [`Node::read_local`] if `read.local`) on node `node`.
    fn read(
        &self,
        node: u64,
        read: ReadRequest,
    ) -> impl Future<Output = Result<Entries, ServiceError>> + Send;
}

/// How to open a [`Node`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's Raft id (the same in every group).
    pub id: u64,
    /// The directory of the node's Walrus instance.
    pub dir: PathBuf,
    /// How many Raft groups (0..groups); the same on every node and client.
    pub groups: u64,
    /// The openraft configuration of every group (validated).
    pub raft: Arc<openraft::Config>,
    /// The fsync schedule of the instance: a small `Milliseconds(n)` bounds the commit latency
    /// (see the [crate docs](crate#durability)).
    pub fsync: FsyncSchedule,
    /// How long [`Node::open`] waits for a previous instance on the directory to close.
    pub open_timeout: Duration,
}

impl NodeConfig {
    /// Node `id` in `dir` with `groups` groups, and the defaults: [`raft_config`], a group
    /// commit every 2 ms, 10 s to wait for the directory.
    pub fn new(id: u64, dir: PathBuf, groups: u64) -> Self {
        Self {
            id,
            dir,
            groups,
            raft: Arc::new(raft_config()),
            fsync: FsyncSchedule::Milliseconds(2),
            open_timeout: Duration::from_secs(10),
        }
    }
}

/// The openraft configuration [`NodeConfig::new`] uses: openraft's defaults (heartbeats every
/// 50 ms, elections after 150 to 300 ms without one, a snapshot every 5,000 entries, 1,000
/// entries kept behind it), with
/// - Pre-Vote: a node that comes back (restarted, or reconnected) asks before it campaigns,
///   so it does not depose a healthy leader by raising the term;
/// - 2 s to send and install a snapshot instead of 200 ms (it is sent whole, and installing it
///   syncs it to disk).
pub fn raft_config() -> openraft::Config {
    let config = openraft::Config {
        enable_pre_vote: Some(true),
        install_snapshot_timeout: 2_000,
        ..openraft::Config::default()
    };
    config
        .validate()
        .expect("the default openraft configuration is valid")
}
