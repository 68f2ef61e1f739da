//! [`Router`]: the in-process network of a test cluster, a map of node ids to nodes.

use std::{collections::BTreeMap, fmt, future::Future, pin::pin, sync::Arc, time::Duration};

use futures_util::future::{Either, select};
use openraft::{
    BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2,
    alias::{SnapshotOf, VoteOf},
    errors::{RPCError, ReplicationClosed, StreamingError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
};
use parking_lot::RwLock;

use super::{Connection, Entries, ReadRequest, ServiceError, Transport, node::GroupRaft};
use crate::{Request, TypeConfig, service::Node};

struct Route {
    node: Arc<Node>,
    connected: bool,
}

/// The network of an in-process cluster: node ids mapped to their [`Node`]s. RPCs are calls on
/// the target's Raft instance (no serialization); a node that is not in the map, or is
/// disconnected, is unreachable, and so is everything from a disconnected node.
///
/// It is the [`Transport`] of the nodes (clones share the map) and the [`Connection`] of
/// in-process [`Client`](super::Client)s.
#[derive(Clone, Default)]
pub struct Router {
    routes: Arc<RwLock<BTreeMap<u64, Route>>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.routes.read();
        f.debug_map()
            .entries(routes.iter().map(|(id, r)| (id, r.connected)))
            .finish()
    }
}

fn unreachable(what: String) -> Unreachable<TypeConfig> {
    Unreachable::new(&std::io::Error::new(std::io::ErrorKind::NotConnected, what))
}

impl Router {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The membership entry of node `id` on this network (its address is only a label).
    pub fn member(id: u64) -> BasicNode {
        BasicNode::new(format!("in-process-{id}"))
    }

    /// Adds `node` (connected), replacing a node of the same id.
    pub fn add(&self, node: Arc<Node>) {
        let route = Route {
            node,
            connected: true,
        };
        self.routes.write().insert(route.node.id(), route);
    }

    /// Takes node `id` off the network, and returns it.
    pub fn remove(&self, id: u64) -> Option<Arc<Node>> {
        self.routes.write().remove(&id).map(|r| r.node)
    }

    /// Cuts node `id` off: nothing reaches it and nothing it sends arrives, until
    /// [`reconnect`](Self::reconnect).
    pub fn disconnect(&self, id: u64) {
        if let Some(route) = self.routes.write().get_mut(&id) {
            route.connected = false;
        }
    }

    /// Undoes [`disconnect`](Self::disconnect).
    pub fn reconnect(&self, id: u64) {
        if let Some(route) = self.routes.write().get_mut(&id) {
            route.connected = true;
        }
    }

    /// Node `id`, connected or not.
    pub fn node(&self, id: u64) -> Option<Arc<Node>> {
        self.routes.read().get(&id).map(|r| Arc::clone(&r.node))
    }

    /// The ids of the nodes on the network, connected or not.
    pub fn ids(&self) -> Vec<u64> {
        self.routes.read().keys().copied().collect()
    }

    /// Node `to`, if a message from `from` (`None`: a client) reaches it.
    fn route(&self, from: Option<u64>, to: u64) -> Result<Arc<Node>, String> {
        let routes = self.routes.read();
        if let Some(from) = from
            && !routes.get(&from).is_some_and(|r| r.connected)
        {
            return Err(format!("node {from} is disconnected"));
        }
        match routes.get(&to) {
            Some(route) if route.connected => Ok(Arc::clone(&route.node)),
            Some(_) => Err(format!("node {to} is disconnected")),
            None => Err(format!("node {to} is not on the network")),
        }
    }
}

impl Transport for Router {
    type Network = RouterNetworkFactory;

    fn network(&self, node: u64, group: u64) -> RouterNetworkFactory {
        RouterNetworkFactory {
            router: self.clone(),
            from: node,
            group,
        }
    }
}

impl Connection for Router {
    async fn append(&self, node: u64, request: Request) -> Result<u64, ServiceError> {
        let node = self.route(None, node).map_err(ServiceError::Unavailable)?;
        node.append(request).await
    }

    async fn read(&self, node: u64, read: ReadRequest) -> Result<Entries, ServiceError> {
        let node = self.route(None, node).map_err(ServiceError::Unavailable)?;
        if read.local {
            node.read_local(&read.topic, read.from, read.max)
        } else {
            node.read(&read.topic, read.from, read.max).await
        }
    }
}

/// The [`Router`]'s network factory of one group of one node.
#[derive(Debug)]
pub struct RouterNetworkFactory {
    router: Router,
    from: u64,
    group: u64,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetworkFactory {
    type Network = RouterNetwork;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> RouterNetwork {
        RouterNetwork {
            router: self.router.clone(),
            from: self.from,
            to: target,
            group: self.group,
        }
    }
}

/// The [`Router`]'s connection from one group of one node to the same group of another.
#[derive(Debug)]
pub struct RouterNetwork {
    router: Router,
    from: u64,
    to: u64,
    group: u64,
}

impl RouterNetwork {
    /// The target's Raft instance of this group, if the message gets there.
    fn target(&self) -> Result<GroupRaft, Unreachable<TypeConfig>> {
        let node = self
            .router
            .route(Some(self.from), self.to)
            .map_err(unreachable)?;
        node.raft(self.group)
            .cloned()
            .ok_or_else(|| unreachable(format!("node {} has no group {}", self.to, self.group)))
    }

    /// `call` on the target, within `ttl`; a stopped target or a timeout is unreachable.
    async fn call<T, E: fmt::Display, Fut: Future<Output = Result<T, E>>>(
        &self,
        ttl: Duration,
        call: impl FnOnce(GroupRaft) -> Fut,
    ) -> Result<T, Unreachable<TypeConfig>> {
        let raft = self.target()?;
        match tokio::time::timeout(ttl, call(raft)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(unreachable(format!("node {}: {e}", self.to))),
            Err(_) => Err(unreachable(format!(
                "node {}: no answer in {ttl:?}",
                self.to
            ))),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for RouterNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply = self.call(option.soft_ttl(), |raft| async move {
            raft.append_entries(rpc).await
        });
        Ok(reply.await?)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply = self.call(
            option.soft_ttl(),
            |raft| async move { raft.vote(rpc).await },
        );
        Ok(reply.await?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply = self.call(
            option.soft_ttl(),
            |raft| async move { raft.pre_vote(rpc).await },
        );
        Ok(reply.await?)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let install = self.call(option.hard_ttl(), |raft| async move {
            raft.install_full_snapshot(vote, snapshot).await
        });
        match select(pin!(cancel), pin!(install)).await {
            Either::Left((closed, _)) => Err(closed.into()),
            Either::Right((reply, _)) => Ok(reply?),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply = self.call(option.soft_ttl(), |raft| async move {
            raft.handle_transfer_leader(req).await
        });
        Ok(reply.await?)
    }
}
