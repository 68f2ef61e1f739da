//! The replicated log between processes: HTTP/1.1 over TCP, with [hyper](https://hyper.rs).
//!
//! [`serve`] answers a [`Node`]'s requests on a TCP listener; [`HttpTransport`] is the
//! [`Transport`] whose Raft RPCs go to the other nodes' servers (at the address of their
//! membership entry, `BasicNode::addr`); [`HttpConnection`] is the [`Connection`] of clients.
//! Every request is a `POST` whose body, like the answer's, is the value encoded with the
//! crate's codec (a version byte, then [postcard](https://docs.rs/postcard): openraft's
//! messages derive serde, and the codec already encodes its entries):
//!
//! | path | body | answer |
//! | --- | --- | --- |
//! | `/append` | [`Request`] | `Result<u64, ServiceError>` |
//! | `/read` | [`ReadRequest`] | `Result<Entries, ServiceError>` |
//! | `/status` | `()` | `Vec<GroupStatus>` |
//! | `/raft/<group>/append` | `AppendEntriesRequest` | `Result<AppendEntriesResponse, String>` |
//! | `/raft/<group>/vote`, `/pre-vote` | `VoteRequest` | `Result<VoteResponse, String>` |
//! | `/raft/<group>/snapshot` | `(Vote, SnapshotMeta, Vec<u8>)` | `Result<SnapshotResponse, String>` |
//! | `/raft/<group>/transfer-leader` | `TransferLeaderRequest` | `Result<TransferLeaderResponse, String>` |
//!
//! A malformed request gets a `400` (an unknown path a `404`) with the reason as text.
//!
//! # Why hyper alone
//!
//! hyper is the HTTP implementation under axum, reqwest and tonic, maintained with them. Its
//! HTTP/1 server and client with hyper-util's pooled client come to about 25 crates in all
//! (tokio included) and no proc macro. axum (server) with reqwest (client), even without
//! default features, come to about 75: axum's router and tower stack, and reqwest's `url`,
//! whose IDNA support brings the ICU4X crates and their derive macros; tarpc to about 60
//! (OpenTelemetry, tokio-serde, tokio-util, its own proc macros). The routes here are a
//! handful of fixed paths, so axum's router would buy little, and the bodies are the codec's
//! bytes, so no JSON layer is needed.

use std::{convert::Infallible, future::Future, io, pin::pin, sync::Arc, time::Duration};

use futures_util::future::{Either, select};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request as HttpRequest, Response as HttpResponse, StatusCode, Uri,
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use openraft::{
    BasicNode, OptionalSend, RaftNetworkFactory, RaftNetworkV2,
    alias::{SnapshotMetaOf, SnapshotOf, VoteOf},
    errors::{RPCError, ReplicationClosed, StreamingError, Unreachable},
    network::RPCOption,
    raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::net::TcpListener;

use super::{Connection, Entries, GroupStatus, Node, ReadRequest, ServiceError, Transport};
use crate::{Request, TypeConfig, codec};

/// How long a client request may take, by default (an append waits for its commit).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `node`'s client requests and Raft RPCs on `listener`, until an error of the
/// listener (a failed connection only ends that connection).
pub async fn serve(node: Arc<Node>, listener: TcpListener) -> io::Result<()> {
    tracing::info!(node = node.id(), addr = ?listener.local_addr()?, "serving");
    loop {
        let (stream, peer) = listener.accept().await?;
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&node), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection: {e}");
            }
        });
    }
}

type Failure = (StatusCode, String);

async fn answer(
    node: Arc<Node>,
    request: HttpRequest<Incoming>,
) -> Result<HttpResponse<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let reply = match request.into_body().collect().await {
        Ok(body) => route(&node, &path, &body.to_bytes()).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, format!("body: {e}"))),
    };
    Ok(match reply {
        Ok(bytes) => HttpResponse::new(Full::new(Bytes::from(bytes))),
        Err((status, why)) => {
            tracing::debug!(path, %status, why, "bad request");
            let mut response = HttpResponse::new(Full::new(Bytes::from(why)));
            *response.status_mut() = status;
            response
        }
    })
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    codec::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Failure> {
    codec::encode(value).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A Raft RPC's answer: the reply or the error as text.
fn rpc<T: Serialize, E: ToString>(result: Result<T, E>) -> Result<Vec<u8>, Failure> {
    encode(&result.map_err(|e| e.to_string()))
}

async fn route(node: &Node, path: &str, body: &[u8]) -> Result<Vec<u8>, Failure> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["append"] => encode(&node.append(decode(body)?).await),
        ["read"] => {
            let read: ReadRequest = decode(body)?;
            let entries = if read.local {
                node.read_local(&read.topic, read.from, read.max)
            } else {
                node.read(&read.topic, read.from, read.max).await
            };
            encode(&entries)
        }
        ["status"] => encode(&node.status()),
        ["raft", group, call] => {
            let raft = group
                .parse()
                .ok()
                .and_then(|g| node.raft(g))
                .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no group {group}")))?;
            match *call {
                "append" => rpc(raft.append_entries(decode(body)?).await),
                "vote" => rpc(raft.vote(decode(body)?).await),
                "pre-vote" => rpc(raft.pre_vote(decode(body)?).await),
                "snapshot" => {
                    let (vote, meta, snapshot): (
                        VoteOf<TypeConfig>,
                        SnapshotMetaOf<TypeConfig>,
                        Vec<u8>,
                    ) = decode(body)?;
                    let snapshot = SnapshotOf::<TypeConfig, Vec<u8>> { meta, snapshot };
                    rpc(raft.install_full_snapshot(vote, snapshot).await)
                }
                "transfer-leader" => rpc(raft.handle_transfer_leader(decode(body)?).await),
                _ => Err((StatusCode::NOT_FOUND, format!("no raft call {call}"))),
            }
        }
        _ => Err((StatusCode::NOT_FOUND, format!("no route {path}"))),
    }
}

/// An HTTP client of the nodes: pooled keep-alive connections, bodies in the codec.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with an empty connection pool.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Posts `body` to `http://<addr><path>` and decodes the answer, within `timeout`.
    /// Transport failures, non-2xx answers and timeouts are errors.
    pub async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Q,
        timeout: Duration,
    ) -> io::Result<A> {
        let uri: Uri = format!("http://{addr}{path}")
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let request = HttpRequest::post(uri)
            .body(Full::new(Bytes::from(codec::encode(body)?)))
            .map_err(io::Error::other)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(io::Error::other)?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(io::Error::other)?
                .to_bytes();
            if !status.is_success() {
                return Err(io::Error::other(format!(
                    "{addr}{path}: {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )));
            }
            codec::decode(&bytes)
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr}{path}: no answer in {timeout:?}"),
            )
        })?
    }
}

/// The [`Transport`] of nodes in separate processes: Raft RPCs posted to the other nodes'
/// [`serve`] at their membership address.
#[derive(Clone, Debug, Default)]
pub struct HttpTransport {
    http: HttpClient,
}

impl HttpTransport {
    /// A transport with its own connection pool.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Transport for HttpTransport {
    type Network = HttpNetworkFactory;

    fn network(&self, _node: u64, group: u64) -> HttpNetworkFactory {
        HttpNetworkFactory {
            http: self.http.clone(),
            group,
        }
    }
}

/// The [`HttpTransport`]'s network factory of one group.
#[derive(Debug)]
pub struct HttpNetworkFactory {
    http: HttpClient,
    group: u64,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> HttpNetwork {
        HttpNetwork {
            http: self.http.clone(),
            target,
            addr: node.addr.clone(),
            group: self.group,
        }
    }
}

/// The [`HttpTransport`]'s connection from one group of a node to the same group of another.
#[derive(Debug)]
pub struct HttpNetwork {
    http: HttpClient,
    target: u64,
    addr: String,
    group: u64,
}

impl HttpNetwork {
    /// Posts a Raft RPC; any failure, here or of the target's Raft instance, is unreachable.
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        call: &str,
        body: &Q,
        ttl: Duration,
    ) -> Result<A, Unreachable<TypeConfig>> {
        let path = format!("/raft/{}/{call}", self.group);
        let reply: Result<A, String> = self
            .http
            .post(&self.addr, &path, body, ttl)
            .await
            .map_err(|e| Unreachable::new(&e))?;
        reply.map_err(|e| {
            let e = io::Error::other(format!("node {} ({}): {e}", self.target, self.addr));
            Unreachable::new(&e)
        })
    }
}

impl RaftNetworkV2<TypeConfig> for HttpNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call("append", &rpc, option.soft_ttl()).await?)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call("vote", &rpc, option.soft_ttl()).await?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self.call("pre-vote", &rpc, option.soft_ttl()).await?)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let body = (vote, snapshot.meta, snapshot.snapshot);
        let send = self.call("snapshot", &body, option.hard_ttl());
        match select(pin!(cancel), pin!(send)).await {
            Either::Left((closed, _)) => Err(closed.into()),
            Either::Right((reply, _)) => Ok(reply?),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        Ok(self
            .call("transfer-leader", &req, option.soft_ttl())
            .await?)
    }
}

/// The [`Connection`] of clients in another process: requests posted to the nodes' [`serve`].
#[derive(Clone, Debug)]
pub struct HttpConnection {
    http: HttpClient,
    peers: std::collections::BTreeMap<u64, String>,
    timeout: Duration,
}

impl HttpConnection {
    /// A connection to the nodes `peers` (node id to address `host:port`); a request waits
    /// 10 s for its answer.
    pub fn new(peers: impl IntoIterator<Item = (u64, String)>) -> Self {
        Self {
            http: HttpClient::new(),
            peers: peers.into_iter().collect(),
            timeout: CLIENT_TIMEOUT,
        }
    }

    /// The node ids, in order.
    pub fn nodes(&self) -> Vec<u64> {
        self.peers.keys().copied().collect()
    }

    fn addr(&self, node: u64) -> Result<&str, ServiceError> {
        self.peers
            .get(&node)
            .map(String::as_str)
            .ok_or_else(|| ServiceError::Rejected(format!("node {node} is not a peer")))
    }

    async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        node: u64,
        path: &str,
        body: &Q,
    ) -> Result<A, ServiceError> {
        let addr = self.addr(node)?;
        self.http
            .post(addr, path, body, self.timeout)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("node {node} ({addr}): {e}")))
    }

    /// What node `node` knows of each of its groups.
    pub async fn status(&self, node: u64) -> Result<Vec<GroupStatus>, ServiceError> {
        self.post(node, "/status", &()).await
    }
}

impl Connection for HttpConnection {
    async fn append(&self, node: u64, request: Request) -> Result<u64, ServiceError> {
        self.post::<_, Result<u64, ServiceError>>(node, "/append", &request)
            .await?
    }

    async fn read(&self, node: u64, read: ReadRequest) -> Result<Entries, ServiceError> {
        self.post::<_, Result<Entries, ServiceError>>(node, "/read", &read)
            .await?
    }
}
