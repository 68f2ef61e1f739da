//! [`Client`]: a session of the replicated log that finds the leaders and retries.

use std::{
    collections::BTreeMap,
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use super::{Connection, Entries, ReadRequest, ServiceError, group_of};
use crate::{Request, RequestId};

/// The pause before retrying when no leader is known (an election is under way, or the node
/// asked is unreachable).
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A client session of the replicated log: sends each request to the leader of its topic's
/// group, learns the leaders from the nodes' [`ServiceError::NotLeader`] answers, and retries
/// until an answer or its timeout (default 30 s).
///
/// Appends are exactly-once across retries: each carries this session's id and the next
/// serial ([`RequestId`]), and a session sends one request at a time (`&mut self`). For
/// appends in flight at once, open a client per flight; a session id is random, so clients
/// need no coordination.
#[derive(Debug)]
pub struct Client<C> {
    connection: C,
    nodes: Vec<u64>,
    groups: u64,
    session: u64,
    serial: u64,
    leaders: BTreeMap<u64, u64>,
    next_node: usize,
    timeout: Duration,
    retries: u64,
}

/// A request of a client.
enum Call {
    Append(Request),
    Read(ReadRequest),
}

/// The answer to a [`Call`].
enum Reply {
    Append(u64),
    Read(Entries),
}

/// A session id unlikely to be another's: random keys of std's hasher, the time and a
/// counter.
fn new_session() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((nanos, COUNTER.fetch_add(1, Ordering::Relaxed)))
}

impl<C: Connection> Client<C> {
    /// A new session on the cluster of nodes `nodes` with `groups` groups, reached through
    /// `connection`.
    ///
    /// # Panics
    ///
    /// If `nodes` is empty.
    pub fn new(connection: C, nodes: impl IntoIterator<Item = u64>, groups: u64) -> Self {
        let nodes: Vec<u64> = nodes.into_iter().collect();
        assert!(!nodes.is_empty(), "a client needs at least one node");
        Self {
            connection,
            nodes,
            groups,
            session: new_session(),
            serial: 0,
            leaders: BTreeMap::new(),
            next_node: 0,
            timeout: Duration::from_secs(30),
            retries: 0,
        }
    }

    /// Gives up a request after `timeout` of retries.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The session id its appends carry.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The leader of group `group` this session last succeeded with.
    pub fn leader(&self, group: u64) -> Option<u64> {
        self.leaders.get(&group).copied()
    }

    /// How many times this session sent a request again (to another node, or after a
    /// failure).
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// The connection to the nodes.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// Appends `data` to `topic`, exactly once, and returns its position in the topic once it
    /// is committed.
    pub async fn append(
        &mut self,
        topic: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<u64, ServiceError> {
        self.serial += 1;
        let request = Request::new(topic, data).with_id(RequestId {
            client: self.session,
            serial: self.serial,
        });
        let group = group_of(topic, self.groups);
        match self.at_leader(group, &Call::Append(request)).await? {
            Reply::Append(position) => Ok(position),
            Reply::Read(_) => unreachable!("an append answered with entries"),
        }
    }

    /// At most `max` committed entries of `topic` from position `from` on, read at the
    /// leader (linearizable: every append acknowledged before is there).
    pub async fn read(
        &mut self,
        topic: &str,
        from: u64,
        max: u64,
    ) -> Result<Entries, ServiceError> {
        let read = ReadRequest {
            topic: topic.to_owned(),
            from,
            max,
            local: false,
        };
        let group = group_of(topic, self.groups);
        match self.at_leader(group, &Call::Read(read)).await? {
            Reply::Read(entries) => Ok(entries),
            Reply::Append(_) => unreachable!("a read answered with a position"),
        }
    }

    /// `call` on node `node`.
    async fn call(&self, node: u64, call: &Call) -> Result<Reply, ServiceError> {
        match call {
            Call::Append(request) => self
                .connection
                .append(node, request.clone())
                .await
                .map(Reply::Append),
            Call::Read(read) => self
                .connection
                .read(node, read.clone())
                .await
                .map(Reply::Read),
        }
    }

    /// `call` on the leader of `group`, found and retried until the timeout.
    async fn at_leader(&mut self, group: u64, call: &Call) -> Result<Reply, ServiceError> {
        let deadline = Instant::now() + self.timeout;
        let mut node = self.leader(group).unwrap_or(self.nodes[self.next_node]);
        // Redirections followed without a pause: two nodes that name each other (stale
        // leaders) must not spin.
        let mut hops = 0;
        loop {
            let error = match self.call(node, call).await {
                Ok(reply) => {
                    self.leaders.insert(group, node);
                    return Ok(reply);
                }
                Err(e @ ServiceError::Rejected(_)) => return Err(e),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(error);
            }
            tracing::debug!(group, node, %error, "retrying");
            self.retries += 1;
            match error {
                ServiceError::NotLeader {
                    leader: Some(leader),
                    ..
                } if leader != node && self.nodes.contains(&leader) && hops < self.nodes.len() => {
                    hops += 1;
                    node = leader;
                    continue;
                }
                _ => {}
            }
            hops = 0;
            self.leaders.remove(&group);
            self.next_node = (self.next_node + 1) % self.nodes.len();
            node = self.nodes[self.next_node];
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}
