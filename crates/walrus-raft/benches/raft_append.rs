//! `cargo xtask bench --raft`: throughput of openraft's `RaftLogStorage::append` up to its
//! flush callback, walrus-raft against Databend's `raft-log` and openraft's in-memory store;
//! then committed appends/s of a 3-node in-process cluster of the replicated log service.
//!
//! # What is measured
//!
//! Each cell is one system, one entry payload size (256 B, 4 KiB of request data) and one
//! number of entries per `append` call (1, 64). The driver acts as a Raft leader: one task
//! calls `append` with the next entries, back to back, and keeps up to [`IN_FLIGHT`] calls
//! whose flush callback (`IOFlushed`) has not fired yet, waiting for the oldest one before
//! the next call once the window is full (a leader pipelines its appends; a window bounds
//! the memory of what is not durable yet). So with one entry per call, a cell measures
//! [`IN_FLIGHT`] over the flush latency rather than a bandwidth. A cell first runs a short
//! warm-up, waits for all its callbacks, then measures for a fixed time (2 s by default, 10 s
//! with `--full`, or `--secs`) or until [`Options::cap_bytes`] of payload, and stops the
//! clock when the callback of its last call fired. entries/s and MB/s (payload bytes, 10^6)
//! count the measured phase only.
//!
//! Every system runs in a fresh temporary directory (under `--tmp`, default the system's
//! temporary directory) on a current-thread Tokio runtime, one cell after the other:
//!
//! - `walrus-raft`, `walrus-raft-mmap`: [`WalrusLogStore`] on the fd (default) and mmap
//!   backends, with `FsyncSchedule::Milliseconds(2)` (the service's default;
//!   `--walrus-fsync-ms` changes it): the callback fires once the group commit's fdatasync
//!   covers the call's last entry.
//! - `raft-log`: an adapter that does what a `RaftLogStorage::append` on raft-log 0.4 does:
//!   encode each entry (postcard, as walrus-raft's codec), `RaftLog::append` them under their
//!   (term, index), then `flush(true, callback)`: its flush worker writes, fdatasyncs and
//!   then calls the callback, which completes openraft's `IOFlushed` (default configuration:
//!   it waits up to 1 ms for more requests before a sync).
//! - `memstore`: `openraft-memstore`'s `LogStore`, which keeps entries as JSON in a map and
//!   fires the callback at once: the cost of openraft's API without a disk.
//!
//! # The cluster section
//!
//! Then, end to end (`--systems` name `cluster`): committed appends/s of a 3-node cluster
//! of the replicated log service ([`walrus_raft::service`]) in this process, on its
//! in-process [`Router`], each node its own Walrus instance (group commit as above) in its
//! own temporary directory, [`NodeConfig::new`]'s defaults otherwise (so a snapshot of a
//! group's whole in-memory state every 5,000 entries: longer cells pay more for them).
//! Cells: 1 group with 1 and with 64 appends in flight, and 3 groups with 64, group `g`
//! initialized from node `g + 1` so each node leads one (the multi-leader layout). Each
//! append in flight is a task with its own [`Client`] session appending 256 B to its own
//! topic (task `t` to a topic of group `t % groups`), one `append` after the other: an
//! append returns once committed (durable on a majority) and applied. A cell starts a fresh
//! cluster, waits for the leaders, warms up, then counts the appends acknowledged during
//! the measured time, with their latency (p50, p99); the leaders at the end and the
//! clients' retries of those appends (redirects, failures) show whether leadership moved.
//! Each task checks that its topic got its appends once, in order. The nodes are then shut
//! down, and each directory removed once its instance is closed. The runtime is
//! multi-threaded (one worker per core), as the nodes share it.
//!
//! Results: tables on stdout and in `raft.txt`, and `raft.csv`, under `--out` (default
//! `target/bench-results/`). The cluster rows of `raft.csv` are system `walrus-raft-cluster`
//! (batch 1, `in_flight` the tasks), with the columns `groups`, `leaders`, `retries`,
//! `p50_ms` and `p99_ms`, empty in the other rows.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use openraft::{
    RaftTypeConfig,
    alias::EntryOf,
    entry::RaftEntry,
    storage::{IOFlushed, RaftLogStorage},
    testing::log_id,
    type_config::TypeConfigExt,
};
use openraft_memstore::{ClientRequest, MemLogStore};
use raft_log::{RaftLog, api::raft_log_writer::RaftLogWriter};
use walrus_raft::{
    Request, TypeConfig, WalrusLogStore,
    service::{Client, Node, NodeConfig, Router, group_of},
};
use walrus_rust::{FsyncSchedule, Walrus};

/// Append calls whose flush callback may be outstanding.
const IN_FLIGHT: usize = 64;
/// Payload sizes of an entry's request data.
const PAYLOADS: [usize; 2] = [256, 4096];
/// Entries per `append` call.
const BATCHES: [usize; 2] = [1, 64];
/// The systems, in the table's order.
const SYSTEMS: [&str; 4] = ["walrus-raft", "walrus-raft-mmap", "raft-log", "memstore"];
/// The `--systems` name of the cluster section.
const CLUSTER: &str = "cluster";
/// The system the ratio column and the goal compare with.
const PEER: &str = "raft-log";
/// How long a flush callback may take before the cell fails.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: cargo bench -p walrus-raft --bench raft_append -- \
                     [--quick|--full] [--secs S] [--systems a,b] [--walrus-fsync-ms N] \
                     [--out DIR] [--tmp DIR]";

#[derive(Debug)]
struct Options {
    full: bool,
    /// Measured seconds per cell.
    secs: f64,
    systems: Vec<String>,
    out: PathBuf,
    tmp: PathBuf,
    /// walrus-raft's group commit interval: `FsyncSchedule::Milliseconds(walrus_fsync_ms)`.
    walrus_fsync_ms: u64,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Options {
            full: false,
            secs: 0.0,
            systems: SYSTEMS
                .iter()
                .chain(&[CLUSTER])
                .map(|s| (*s).to_owned())
                .collect(),
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results"),
            tmp: std::env::temp_dir(),
            walrus_fsync_ms: 2,
        };
        let mut secs = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().ok_or(format!("{a} needs a value\n{USAGE}"));
            match a.as_str() {
                // `cargo bench` passes --bench to a bench without the libtest harness.
                "--bench" | "--quick" => {}
                "--full" => o.full = true,
                "--secs" => {
                    let v = value()?;
                    let s: f64 = v.parse().map_err(|_| format!("--secs {v}: not a number"))?;
                    if !(s > 0.0 && s.is_finite()) {
                        return Err(format!("--secs {v}: must be positive"));
                    }
                    secs = Some(s);
                }
                "--systems" => {
                    o.systems = value()?.split(',').map(str::to_owned).collect();
                    let known = |s: &str| SYSTEMS.contains(&s) || s == CLUSTER;
                    if let Some(bad) = o.systems.iter().find(|s| !known(s)) {
                        return Err(format!(
                            "unknown system {bad}; known: {}, {CLUSTER}",
                            SYSTEMS.join(", ")
                        ));
                    }
                }
                "--walrus-fsync-ms" => {
                    let v = value()?;
                    o.walrus_fsync_ms = v
                        .parse()
                        .ok()
                        .filter(|&ms| ms > 0)
                        .ok_or(format!("--walrus-fsync-ms {v}: not a positive integer"))?;
                }
                "--out" => o.out = value()?.into(),
                "--tmp" => o.tmp = value()?.into(),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other}\n{USAGE}")),
            }
        }
        o.secs = secs.unwrap_or(if o.full { 10.0 } else { 2.0 });
        Ok(o)
    }

    /// The warm-up before each measured phase.
    fn warmup(&self) -> Duration {
        Duration::from_secs_f64((self.secs / 8.0).min(1.0))
    }

    /// Payload bytes a measured phase writes at most: the in-memory store keeps every entry,
    /// and the disks of small machines are small.
    fn cap_bytes(&self) -> u64 {
        if self.full { 2 << 30 } else { 1 << 30 }
    }
}

/// One append target: a `RaftLogStorage` or the raft-log adapter, with the entries it takes.
trait Target {
    type C: RaftTypeConfig;

    /// The entry of index `index`, with the cell's payload.
    fn entry(&self, index: u64) -> EntryOf<Self::C>;

    /// `RaftLogStorage::append`.
    async fn append(
        &mut self,
        entries: Vec<EntryOf<Self::C>>,
        done: IOFlushed<Self::C>,
    ) -> io::Result<()>;
}

fn walrus_entry(index: u64, data: &[u8]) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig>::new_normal(
        log_id::<TypeConfig>(1, 1, index),
        Request::new("bench", data.to_vec()),
    )
}

/// The cell's payload: bytes that do not repeat in short runs.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// walrus-raft on one backend. The store is declared first: it is dropped before the
/// instance, and both before the directory.
struct WalrusRaft {
    store: WalrusLogStore<TypeConfig>,
    _wal: Walrus,
    data: Vec<u8>,
}

impl WalrusRaft {
    fn open(dir: &Path, fd: bool, fsync_ms: u64, payload_len: usize) -> io::Result<Self> {
        let wal = Walrus::builder()
            .data_dir(dir.to_path_buf())
            .fd_backend(fd)
            .fsync_schedule(FsyncSchedule::Milliseconds(fsync_ms))
            .build()?;
        Ok(Self {
            store: WalrusLogStore::open(&wal, 1)?,
            _wal: wal,
            data: payload(payload_len),
        })
    }
}

impl Target for WalrusRaft {
    type C = TypeConfig;

    fn entry(&self, index: u64) -> EntryOf<TypeConfig> {
        walrus_entry(index, &self.data)
    }

    async fn append(
        &mut self,
        entries: Vec<EntryOf<TypeConfig>>,
        done: IOFlushed<TypeConfig>,
    ) -> io::Result<()> {
        self.store.append(entries, done).await
    }
}

/// raft-log's type parameters: log ids `(term, index)`, payloads the encoded entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RaftLogTypes;

impl raft_log::Types for RaftLogTypes {
    type LogId = (u64, u64);
    type LogPayload = Vec<u8>;
    type Vote = (u64, u64);
    type Callback = Flushed;
    type UserData = String;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.1
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

/// raft-log's flush callback: completes openraft's.
struct Flushed(IOFlushed<TypeConfig>);

impl raft_log::Callback for Flushed {
    fn send(self, res: Result<(), io::Error>) {
        self.0.io_completed(res);
    }
}

/// What `RaftLogStorage::append` on raft-log does.
struct RaftLogAdapter {
    log: RaftLog<RaftLogTypes>,
    data: Vec<u8>,
}

impl RaftLogAdapter {
    fn open(dir: &Path, payload_len: usize) -> io::Result<Self> {
        let config = raft_log::Config::new(dir.display());
        Ok(Self {
            log: RaftLog::open(Arc::new(config))?,
            data: payload(payload_len),
        })
    }
}

impl Target for RaftLogAdapter {
    type C = TypeConfig;

    fn entry(&self, index: u64) -> EntryOf<TypeConfig> {
        walrus_entry(index, &self.data)
    }

    async fn append(
        &mut self,
        entries: Vec<EntryOf<TypeConfig>>,
        done: IOFlushed<TypeConfig>,
    ) -> io::Result<()> {
        let records = entries
            .iter()
            .map(|e| {
                let bytes = postcard::to_allocvec(e).map_err(io::Error::other)?;
                Ok(((e.log_id.leader_id.term, e.log_id.index), bytes))
            })
            .collect::<io::Result<Vec<_>>>()?;
        self.log.append(records)?;
        self.log.flush(true, Some(Flushed(done)))
    }
}

/// openraft-memstore's log store.
struct MemStore {
    store: Arc<MemLogStore>,
    status: String,
}

impl Target for MemStore {
    type C = openraft_memstore::TypeConfig;

    fn entry(&self, index: u64) -> EntryOf<Self::C> {
        EntryOf::<Self::C>::new_normal(
            log_id::<Self::C>(1, 1, index),
            ClientRequest {
                client: "bench".into(),
                serial: index,
                status: self.status.clone(),
            },
        )
    }

    async fn append(
        &mut self,
        entries: Vec<EntryOf<Self::C>>,
        done: IOFlushed<Self::C>,
    ) -> io::Result<()> {
        self.store.append(entries, done).await
    }
}

/// One cell's result.
#[derive(Debug, Clone, Default)]
struct Row {
    system: String,
    payload: usize,
    batch: usize,
    calls: u64,
    entries: u64,
    secs: f64,
    /// The phase ended at the byte cap, before its time.
    capped: bool,
    error: Option<String>,
}

impl Row {
    fn entries_per_s(&self) -> f64 {
        self.entries as f64 / self.secs.max(1e-9)
    }

    fn mb_per_s(&self) -> f64 {
        (self.entries * self.payload as u64) as f64 / self.secs.max(1e-9) / 1e6
    }

    fn calls_per_s(&self) -> f64 {
        self.calls as f64 / self.secs.max(1e-9)
    }
}

/// Appends `batch` entries per call for `time` or until `max_entries`, keeping up to
/// [`IN_FLIGHT`] calls unflushed, then waits for every callback. Returns (calls, entries,
/// seconds, capped).
async fn phase<T: Target>(
    target: &mut T,
    next: &mut u64,
    batch: usize,
    time: Duration,
    max_entries: u64,
) -> io::Result<(u64, u64, f64, bool)> {
    let first = *next;
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut calls = 0;
    let mut capped = false;
    let start = Instant::now();
    loop {
        if start.elapsed() >= time {
            break;
        }
        if *next - first + batch as u64 > max_entries {
            capped = true;
            break;
        }
        let entries = (*next..*next + batch as u64)
            .map(|i| target.entry(i))
            .collect();
        let (tx, rx) = T::C::oneshot();
        target.append(entries, IOFlushed::signal(tx)).await?;
        *next += batch as u64;
        calls += 1;
        pending.push_back(rx);
        while pending.len() >= IN_FLIGHT {
            flushed(pending.pop_front()).await?;
        }
    }
    while !pending.is_empty() {
        flushed(pending.pop_front()).await?;
    }
    Ok((calls, *next - first, start.elapsed().as_secs_f64(), capped))
}

/// Waits for one flush callback.
async fn flushed<F, E>(rx: Option<F>) -> io::Result<()>
where
    F: Future<Output = Result<io::Result<()>, E>>,
    E: std::fmt::Display,
{
    let Some(rx) = rx else { return Ok(()) };
    match tokio::time::timeout(CALLBACK_TIMEOUT, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(io::Error::other(format!("flush callback dropped: {e}"))),
        Err(_) => Err(io::Error::other(format!(
            "no flush callback within {CALLBACK_TIMEOUT:?}"
        ))),
    }
}

/// Warm-up, then the measured phase.
async fn measure<T: Target>(target: &mut T, o: &Options, row: &mut Row) -> io::Result<()> {
    let max_entries = o.cap_bytes() / row.payload as u64;
    let mut next = 0;
    phase(target, &mut next, row.batch, o.warmup(), max_entries).await?;
    let (calls, entries, secs, capped) = phase(
        target,
        &mut next,
        row.batch,
        Duration::from_secs_f64(o.secs),
        max_entries,
    )
    .await?;
    (row.calls, row.entries, row.secs, row.capped) = (calls, entries, secs, capped);
    Ok(())
}

fn run_cell(o: &Options, system: &str, payload_len: usize, batch: usize) -> Row {
    let mut row = Row {
        system: system.to_owned(),
        payload: payload_len,
        batch,
        ..Row::default()
    };
    let result = (|| -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let dir = tempfile::Builder::new()
            .prefix("raft-bench-")
            .tempdir_in(&o.tmp)?;
        match system {
            "walrus-raft" | "walrus-raft-mmap" => {
                let mut t = WalrusRaft::open(
                    dir.path(),
                    system == "walrus-raft",
                    o.walrus_fsync_ms,
                    payload_len,
                )?;
                runtime.block_on(measure(&mut t, o, &mut row))
            }
            "raft-log" => {
                let mut t = RaftLogAdapter::open(dir.path(), payload_len)?;
                runtime.block_on(measure(&mut t, o, &mut row))
            }
            "memstore" => {
                let mut t = MemStore {
                    store: openraft_memstore::new_mem_store().0,
                    status: "x".repeat(payload_len),
                };
                runtime.block_on(measure(&mut t, o, &mut row))
            }
            other => Err(io::Error::other(format!("unknown system {other}"))),
        }
    })();
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
    row
}

/// The nodes of the cluster section's clusters.
const CLUSTER_NODES: [u64; 3] = [1, 2, 3];
/// The cluster section's payload per append.
const CLUSTER_PAYLOAD: usize = 256;
/// The cluster section's cells: (groups, appends in flight). Group `g` is initialized from
/// node `g + 1`, so with 3 groups each node leads one.
const CLUSTER_CELLS: [(u64, usize); 3] = [(1, 1), (1, 64), (3, 64)];
/// How long a cluster may take to elect its first leaders, and its nodes to close their
/// directories after the shutdown.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// One cell of the cluster section.
#[derive(Debug, Clone, Default)]
struct ClusterRow {
    groups: u64,
    in_flight: usize,
    /// Appends acknowledged in the measured phase.
    appends: u64,
    secs: f64,
    /// The latency of each append acknowledged in the measured phase, in nanoseconds.
    p50_ns: u64,
    p99_ns: u64,
    /// The leader of each group at the end, as its first leader sees it.
    leaders: Vec<Option<u64>>,
    /// Requests the clients sent again (to another node, or after a failure) for the appends
    /// acknowledged in the measured phase: not 0 if leadership moved (the first redirect of
    /// each session to its group's leader falls in the warm-up).
    retries: u64,
    error: Option<String>,
}

impl ClusterRow {
    fn appends_per_s(&self) -> f64 {
        self.appends as f64 / self.secs.max(1e-9)
    }

    fn mb_per_s(&self) -> f64 {
        (self.appends * CLUSTER_PAYLOAD as u64) as f64 / self.secs.max(1e-9) / 1e6
    }

    fn leaders(&self) -> String {
        let leader = |l: &Option<u64>| l.map_or("-".into(), |l| l.to_string());
        self.leaders
            .iter()
            .map(leader)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Three nodes on one in-process [`Router`], each its own Walrus instance in its own
/// temporary directory.
struct BenchCluster {
    router: Router,
    dirs: Vec<tempfile::TempDir>,
    groups: u64,
}

impl BenchCluster {
    /// Opens the nodes (the ones that opened before a failure are in `self`, for
    /// [`shutdown`](Self::shutdown)).
    async fn open(&mut self, o: &Options) -> io::Result<()> {
        for id in CLUSTER_NODES {
            let dir = tempfile::Builder::new()
                .prefix(&format!("raft-bench-node{id}-"))
                .tempdir_in(&o.tmp)?;
            let mut config = NodeConfig::new(id, dir.path().to_path_buf(), self.groups);
            config.fsync = FsyncSchedule::Milliseconds(o.walrus_fsync_ms);
            self.dirs.push(dir);
            let node = Node::open(&config, &self.router).await?;
            self.router.add(Arc::new(node));
        }
        Ok(())
    }

    fn node(&self, id: u64) -> io::Result<Arc<Node>> {
        self.router
            .node(id)
            .ok_or_else(|| io::Error::other(format!("node {id} is not on the network")))
    }

    /// Initializes group `group` from node `from`, and waits until `from` leads it and has
    /// committed an entry of its term (as the cluster tests do).
    async fn initialize(&self, group: u64, from: u64) -> io::Result<()> {
        let members = CLUSTER_NODES.map(|id| (id, Router::member(id))).into();
        let node = self.node(from)?;
        node.initialize(group, members)
            .await
            .map_err(io::Error::other)?;
        let raft = node
            .raft(group)
            .ok_or_else(|| io::Error::other(format!("node {from} has no group {group}")))?;
        raft.wait(Some(CLUSTER_TIMEOUT))
            .metrics(
                |m| {
                    m.current_leader == Some(from)
                        && m.cluster_committed.map(|c| c.index()) == m.last_log_index
                },
                format!("node {from} leads group {group}"),
            )
            .await
            .map_err(io::Error::other)?;
        Ok(())
    }

    /// Takes the nodes off the network and shuts them down, waits until each Walrus instance
    /// is closed (openraft's tasks drop their handles shortly after the shutdown), and
    /// removes the directories.
    async fn shutdown(self) -> io::Result<()> {
        let nodes: Vec<Arc<Node>> = self
            .router
            .ids()
            .into_iter()
            .filter_map(|id| self.router.remove(id))
            .collect();
        for node in &nodes {
            node.shutdown().await;
        }
        drop(nodes);
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let mut result = Ok(());
        for dir in self.dirs {
            while !dir_closed(dir.path())? {
                if Instant::now() >= deadline {
                    result = Err(io::Error::other(format!(
                        "{} still open {CLUSTER_TIMEOUT:?} after the shutdown",
                        dir.path().display()
                    )));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Removed either way (an instance still open only loses its files).
            result = result.and(dir.close());
        }
        result
    }
}

/// Whether no Walrus instance holds `dir`: its lock file (`LOCK`, an `flock`, which a second
/// open file of the same process does not get either) is free.
fn dir_closed(dir: &Path) -> io::Result<bool> {
    match std::fs::File::open(dir.join("LOCK")) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
        Ok(file) => match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        },
    }
}

/// A topic of group `group` among `groups`, its name starting with `prefix`.
fn topic_in(prefix: &str, group: u64, groups: u64) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|t| group_of(t, groups) == group)
        .expect("some name hashes to each group")
}

/// Where the cluster cell is: warming up, measuring, or stopping.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What one task of a cluster cell did.
struct Worker {
    /// Latencies of the appends acknowledged in the measured phase, in nanoseconds.
    latencies: Vec<u64>,
    /// The retries of those appends.
    retries: u64,
}

/// One task of a cluster cell: a client session appending to its own topic, one append at a
/// time, until [`STOP`]. Checks at the end that its topic holds each of its appends once
/// (positions 0, 1, ... in order).
async fn cluster_worker(
    mut client: Client<Router>,
    topic: String,
    phase: Arc<AtomicU8>,
) -> io::Result<Worker> {
    let data = payload(CLUSTER_PAYLOAD);
    let mut latencies = Vec::new();
    let mut retries = 0;
    let mut sent = 0;
    while phase.load(Ordering::Acquire) != STOP {
        let retried = client.retries();
        let start = Instant::now();
        let position = client
            .append(&topic, data.clone())
            .await
            .map_err(|e| io::Error::other(format!("append to {topic}: {e}")))?;
        let latency = start.elapsed();
        if position != sent {
            return Err(io::Error::other(format!(
                "append {sent} of {topic} acknowledged at position {position}"
            )));
        }
        sent += 1;
        if phase.load(Ordering::Acquire) == MEASURE {
            latencies.push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
            retries += client.retries() - retried;
        }
    }
    Ok(Worker { latencies, retries })
}

/// The leaders, then `in_flight` tasks (task `t` on a topic of group `t % groups`) for the
/// warm-up and the measured phase.
async fn cluster_measure(
    cluster: &BenchCluster,
    o: &Options,
    row: &mut ClusterRow,
) -> io::Result<()> {
    let groups = cluster.groups;
    for group in 0..groups {
        cluster
            .initialize(group, CLUSTER_NODES[group as usize % CLUSTER_NODES.len()])
            .await?;
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let tasks: Vec<_> = (0..row.in_flight)
        .map(|t| {
            let client = Client::new(cluster.router.clone(), CLUSTER_NODES, groups);
            let topic = topic_in(&format!("bench-{t}"), t as u64 % groups, groups);
            tokio::spawn(cluster_worker(client, topic, Arc::clone(&phase)))
        })
        .collect();
    tokio::time::sleep(o.warmup()).await;
    let start = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    tokio::time::sleep(Duration::from_secs_f64(o.secs)).await;
    phase.store(STOP, Ordering::Release);
    row.secs = start.elapsed().as_secs_f64();
    // Every task is joined before the first error is returned: none may outlive the nodes.
    let mut latencies = Vec::new();
    let mut result = Ok(());
    for task in tasks {
        match task.await {
            Ok(Ok(w)) => {
                latencies.extend(w.latencies);
                row.retries += w.retries;
            }
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(e) => result = result.and(Err(io::Error::other(format!("task: {e}")))),
        }
    }
    result?;
    latencies.sort_unstable();
    row.appends = latencies.len() as u64;
    let at = |q: usize| {
        latencies
            .get((latencies.len().saturating_sub(1)) * q / 100)
            .copied()
    };
    (row.p50_ns, row.p99_ns) = (at(50).unwrap_or(0), at(99).unwrap_or(0));
    row.leaders = (0..groups)
        .map(|g| {
            let from = CLUSTER_NODES[g as usize % CLUSTER_NODES.len()];
            cluster.node(from).ok().and_then(|n| n.leader(g))
        })
        .collect();
    Ok(())
}

/// One cell of the cluster section on a fresh cluster, shut down and removed at the end.
fn run_cluster_cell(o: &Options, groups: u64, in_flight: usize) -> ClusterRow {
    let mut row = ClusterRow {
        groups,
        in_flight,
        ..ClusterRow::default()
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            runtime.block_on(async {
                let mut cluster = BenchCluster {
                    router: Router::new(),
                    dirs: Vec::new(),
                    groups,
                };
                let mut result = cluster.open(o).await;
                if result.is_ok() {
                    result = cluster_measure(&cluster, o, &mut row).await;
                }
                result.and(cluster.shutdown().await)
            })
        });
    if let Err(e) = result {
        row.error = Some(e.to_string());
    }
    row
}

fn cluster_table(rows: &[ClusterRow], walrus_fsync_ms: u64) -> String {
    let mut out = format!(
        "\nEnd to end: {}-node in-process cluster (Router), {} appends through \
         walrus_raft::service::Client, each committed (durable on a majority; group commit \
         every {walrus_fsync_ms} ms) and applied before its task sends the next\n",
        CLUSTER_NODES.len(),
        size(CLUSTER_PAYLOAD)
    );
    let _ = writeln!(
        out,
        "  {:<7} {:<8} {:>9} {:>10} {:>7} {:>8} {:>8} {:>8} {:>7}",
        "groups",
        "leaders",
        "in flight",
        "appends/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "retries",
        "secs"
    );
    for r in rows {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "  {:<7} {:<8} {:>9}  FAILED: {e}",
                r.groups, "", r.in_flight
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<7} {:<8} {:>9} {:>10} {:>7.2} {:>8.2} {:>8.2} {:>8} {:>7.2}",
            r.groups,
            r.leaders(),
            r.in_flight,
            si(r.appends_per_s()),
            r.mb_per_s(),
            r.p50_ns as f64 / 1e6,
            r.p99_ns as f64 / 1e6,
            r.retries,
            r.secs,
        );
    }
    out
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The peer's row of the same cell.
fn peer<'a>(rows: &'a [Row], r: &Row) -> Option<&'a Row> {
    rows.iter().find(|p| {
        p.system == PEER && p.payload == r.payload && p.batch == r.batch && p.error.is_none()
    })
}

/// This row's entries/s over the peer's in the same cell.
fn versus(rows: &[Row], r: &Row) -> Option<f64> {
    let p = peer(rows, r)?;
    (r.error.is_none() && p.entries > 0).then(|| r.entries_per_s() / p.entries_per_s())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    for payload_len in PAYLOADS {
        for batch in BATCHES {
            let _ = writeln!(
                out,
                "\n{} entries, {batch} per append call",
                size(payload_len)
            );
            let _ = writeln!(
                out,
                "  {:<18} {:>10} {:>9} {:>10} {:>7} {:>12}",
                "system", "entries/s", "MB/s", "appends/s", "secs", "x/raft-log"
            );
            for r in rows
                .iter()
                .filter(|r| r.payload == payload_len && r.batch == batch)
            {
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "  {:<18} FAILED: {e}", r.system);
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {:<18} {:>10} {:>9.1} {:>10} {:>7.2} {:>12}{}",
                    r.system,
                    si(r.entries_per_s()),
                    r.mb_per_s(),
                    si(r.calls_per_s()),
                    r.secs,
                    versus(rows, r).map_or("-".into(), |v| format!("{v:.2}x")),
                    if r.capped { "  (byte cap)" } else { "" },
                );
            }
        }
    }
    out
}

/// The goal, from this run's figures: walrus-raft (the default backend) at least as fast as
/// raft-log in entries/s, in every cell both ran.
fn goal(rows: &[Row]) -> String {
    let cells: Vec<(String, Option<f64>)> = rows
        .iter()
        .filter(|r| r.system == "walrus-raft")
        .map(|r| (format!("{} x{}", size(r.payload), r.batch), versus(rows, r)))
        .collect();
    let measured: Vec<String> = cells
        .iter()
        .map(|(cell, v)| match v {
            Some(v) => format!("{cell} {v:.2}x"),
            None => format!("{cell} -"),
        })
        .collect();
    let mark = if cells.iter().any(|(_, v)| v.is_some_and(|v| v < 1.0)) {
        "MISSED"
    } else if cells.is_empty() || cells.iter().any(|(_, v)| v.is_none()) {
        "n/a   "
    } else {
        "met   "
    };
    format!(
        "\nGoal (one run)\n  [{mark}] walrus-raft append+flush >= raft-log (entries/s, each \
         cell): {}\n",
        measured.join(", ")
    )
}

const CSV_COLUMNS: &str = "system,payload_bytes,batch,in_flight,durability,appends,entries,\
                           payload_total_bytes,secs,entries_per_s,mb_per_s,appends_per_s,\
                           vs_raft_log,capped,error,groups,leaders,retries,p50_ms,p99_ms";

fn durability(system: &str, walrus_fsync_ms: u64) -> String {
    match system {
        "walrus-raft" | "walrus-raft-mmap" => {
            format!("group commit fdatasync every {walrus_fsync_ms} ms")
        }
        "raft-log" => "flush worker fdatasync (1 ms batch wait)".into(),
        _ => "none (memory)".into(),
    }
}

/// An error as a CSV field.
fn csv_error(error: Option<&str>) -> String {
    error.map_or(String::new(), |e| format!("\"{}\"", e.replace('"', "'")))
}

fn csv(rows: &[Row], cluster: &[ClusterRow], walrus_fsync_ms: u64) -> String {
    let mut out = format!("{CSV_COLUMNS}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{IN_FLIGHT},{},{},{},{},{:.4},{:.1},{:.2},{:.1},{},{},{},,,,,",
            r.system,
            r.payload,
            r.batch,
            durability(&r.system, walrus_fsync_ms),
            r.calls,
            r.entries,
            r.entries * r.payload as u64,
            r.secs,
            r.entries_per_s(),
            r.mb_per_s(),
            r.calls_per_s(),
            versus(rows, r).map_or(String::new(), |v| format!("{v:.3}")),
            r.capped,
            csv_error(r.error.as_deref()),
        );
    }
    // One entry per append: batch 1, entries = appends.
    for r in cluster {
        let _ = writeln!(
            out,
            "walrus-raft-cluster,{CLUSTER_PAYLOAD},1,{},majority of {} nodes (group commit \
             fdatasync every {walrus_fsync_ms} ms),{},{},{},{:.4},{:.1},{:.2},{:.1},,false,{},\
             {},{},{},{:.3},{:.3}",
            r.in_flight,
            CLUSTER_NODES.len(),
            r.appends,
            r.appends,
            r.appends * CLUSTER_PAYLOAD as u64,
            r.secs,
            r.appends_per_s(),
            r.mb_per_s(),
            r.appends_per_s(),
            csv_error(r.error.as_deref()),
            r.groups,
            r.leaders(),
            r.retries,
            r.p50_ns as f64 / 1e6,
            r.p99_ns as f64 / 1e6,
        );
    }
    out
}

/// CPU, cores, kernel and the file system of the temporary directory.
fn machine(tmp: &Path) -> String {
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease");
    let tmp = tmp.canonicalize().unwrap_or_else(|_| tmp.to_path_buf());
    let mounts = read("/proc/mounts");
    let fs = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (dev, at, fs) = (f.next()?, f.next()?, f.next()?);
            tmp.starts_with(at)
                .then(|| (at.len(), format!("{fs} on {dev}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, s)| s);
    format!(
        "{cpu}, {cores} cores | Linux {} | temp dir {} ({fs})",
        kernel.trim(),
        tmp.display()
    )
}

fn main() -> std::process::ExitCode {
    let o = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let mut rows = Vec::new();
    for payload_len in PAYLOADS {
        for batch in BATCHES {
            for system in SYSTEMS.iter().filter(|s| o.systems.iter().any(|x| x == *s)) {
                eprint!(
                    "{system}: {} entries, {batch} per call ... ",
                    size(payload_len)
                );
                let row = run_cell(&o, system, payload_len, batch);
                match &row.error {
                    None => eprintln!("{} entries/s", si(row.entries_per_s())),
                    Some(e) => eprintln!("FAILED: {e}"),
                }
                rows.push(row);
            }
        }
    }
    let mut cluster_rows = Vec::new();
    if o.systems.iter().any(|s| s == CLUSTER) {
        for (groups, in_flight) in CLUSTER_CELLS {
            eprint!("{CLUSTER}: {groups} group(s), {in_flight} appends in flight ... ");
            let row = run_cluster_cell(&o, groups, in_flight);
            match &row.error {
                None => eprintln!("{} appends/s", si(row.appends_per_s())),
                Some(e) => eprintln!("FAILED: {e}"),
            }
            cluster_rows.push(row);
        }
    }
    let mode = if o.full { "full" } else { "quick" };
    let csv_path = o.out.join("raft.csv");
    let mut text = format!(
        "Raft log append + flush callback ({mode}: {} s per cell after a {:.2} s warm-up, at \
         most {} MiB of payload, {IN_FLIGHT} appends in flight; walrus-raft fdatasync every {} \
         ms, raft-log's flush worker as configured by default), {} cells in {:.0} s\n{}\n\
         results: {}\n",
        o.secs,
        o.warmup().as_secs_f64(),
        o.cap_bytes() >> 20,
        o.walrus_fsync_ms,
        rows.len() + cluster_rows.len(),
        start.elapsed().as_secs_f64(),
        machine(&o.tmp),
        csv_path.display()
    );
    if !rows.is_empty() {
        text.push_str(&table(&rows));
        text.push_str(&goal(&rows));
    }
    if !cluster_rows.is_empty() {
        text.push_str(&cluster_table(&cluster_rows, o.walrus_fsync_ms));
    }
    println!("{text}");
    let written = std::fs::create_dir_all(&o.out)
        .and_then(|()| std::fs::write(&csv_path, csv(&rows, &cluster_rows, o.walrus_fsync_ms)))
        .and_then(|()| std::fs::write(o.out.join("raft.txt"), &text));
    if let Err(e) = written {
        eprintln!("cannot write results to {}: {e}", o.out.display());
        return std::process::ExitCode::FAILURE;
    }
    if rows.iter().any(|r| r.error.is_some()) || cluster_rows.iter().any(|r| r.error.is_some()) {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
