//! In-process clusters of the replicated log service (`walrus_raft::service`): three nodes,
//! each its own Walrus instance in a temporary directory, on the in-process `Router`.
//!
//! - One group: 10,000 appends through the leader, 16 in flight; the leader is dropped
//!   mid-stream and the clients go on through the new one; every append is acknowledged and
//!   is on every live node once, at its acknowledged position, in order; the old node
//!   reopens its directory and catches up to the same log.
//! - Three groups led by three different nodes: the death of one node makes the group it
//!   led elect a new leader, and leaves the leaders (and terms) of the others alone; all
//!   keep taking appends.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tempfile::TempDir;
use tokio::sync::Notify;
use walrus_raft::{
    Request, RequestId,
    service::{Client, Node, NodeConfig, Router, ServiceError, group_of, raft_config},
};

const NODES: [u64; 3] = [1, 2, 3];
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// Three nodes on one router, each with its own directory.
struct Cluster {
    router: Router,
    dirs: BTreeMap<u64, TempDir>,
    groups: u64,
}

impl Cluster {
    async fn start(groups: u64) -> Self {
        let mut cluster = Self {
            router: Router::new(),
            dirs: BTreeMap::new(),
            groups,
        };
        for id in NODES {
            cluster.dirs.insert(id, tempfile::tempdir().unwrap());
            cluster.open(id).await;
        }
        cluster
    }

    /// Opens node `id` on its directory (again) and puts it on the network.
    async fn open(&self, id: u64) -> Arc<Node> {
        let mut config = NodeConfig::new(id, self.dirs[&id].path().to_path_buf(), self.groups);
        // Snapshots every 2,000 entries, 200 entries kept behind them: a node away for a
        // while catches up from a snapshot.
        config.raft = Arc::new(
            openraft::Config {
                snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(2_000),
                max_in_snapshot_log_to_keep: 200,
                ..raft_config()
            }
            .validate()
            .unwrap(),
        );
        let node = Arc::new(Node::open(&config, &self.router).await.unwrap());
        self.router.add(Arc::clone(&node));
        node
    }

    fn node(&self, id: u64) -> Arc<Node> {
        self.router.node(id).unwrap()
    }

    fn client(&self) -> Client<Router> {
        Client::new(self.router.clone(), NODES, self.groups)
    }

    /// Initializes group `group` from node `from`, and waits until `from` leads it and has
    /// committed an entry of its term.
    async fn initialize(&self, group: u64, from: u64) {
        let members = NODES.map(|id| (id, Router::member(id))).into();
        let node = self.node(from);
        node.initialize(group, members).await.unwrap();
        let raft = node.raft(group).unwrap();
        // Its first entry committed: a quorum acknowledged it, so it takes writes.
        raft.wait(TIMEOUT)
            .metrics(
                |m| {
                    m.current_leader == Some(from)
                        && m.cluster_committed.map(|c| c.index()) == m.last_log_index
                },
                format!("node {from} leads group {group}"),
            )
            .await
            .unwrap();
    }

    /// Disconnects node `id`, shuts it down and drops it.
    async fn kill(&self, id: u64) {
        self.router.disconnect(id);
        let node = self.router.remove(id).unwrap();
        node.shutdown().await;
    }

    /// Waits until every live node has applied group `group` up to what `leader` applied,
    /// and returns that index. (The leader's state machine, not its metrics: the metrics
    /// may lag behind the answers to the appends.)
    async fn converge(&self, group: u64, leader: u64) -> u64 {
        let state = self.node(leader).state_machine(group).unwrap().clone();
        let applied = state.last_applied().unwrap().index();
        for id in self.router.ids() {
            let raft = self.node(id).raft(group).unwrap().clone();
            raft.wait(TIMEOUT)
                .applied_index_at_least(Some(applied), format!("node {id} applies {applied}"))
                .await
                .unwrap();
        }
        applied
    }

    async fn shutdown(self) {
        for id in self.router.ids() {
            self.kill(id).await;
        }
    }
}

/// Every entry of `topic` on `node`.
fn topic_log(node: &Node, topic: &str) -> Vec<Vec<u8>> {
    let entries = node.read_local(topic, 0, u64::MAX).unwrap();
    for (i, (position, _)) in entries.iter().enumerate() {
        assert_eq!(*position, i as u64, "positions of {topic} are contiguous");
    }
    entries.into_iter().map(|(_, data)| data).collect()
}

/// An acknowledged append.
struct Ack {
    worker: usize,
    seq: u64,
    topic: String,
    position: u64,
}

const APPENDS: u64 = 10_000;
const IN_FLIGHT: usize = 16;
const KILL_AFTER: usize = 4_000;
const TOPICS: u64 = 4;

fn topic_of(seq: u64) -> String {
    format!("events-{}", seq % TOPICS)
}

fn data_of(worker: usize, seq: u64) -> Vec<u8> {
    format!("{worker}:{seq}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_group_survive_the_leader() {
    let cluster = Cluster::start(1).await;
    cluster.initialize(0, 1).await;
    let old_leader = 1;

    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let milestone = Arc::new(Notify::new());
    let start = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|worker| {
            let mut client = cluster.client();
            let (next, acked) = (Arc::clone(&next), Arc::clone(&acked));
            let (count, milestone) = (Arc::clone(&count), Arc::clone(&milestone));
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= APPENDS {
                        break;
                    }
                    let topic = topic_of(seq);
                    let position = client
                        .append(&topic, data_of(worker, seq))
                        .await
                        .unwrap_or_else(|e| panic!("append {seq}: {e}"));
                    acked.lock().push(Ack {
                        worker,
                        seq,
                        topic,
                        position,
                    });
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == KILL_AFTER {
                        milestone.notify_one();
                    }
                }
                client.retries()
            })
        })
        .collect();

    // Mid-stream: the leader goes away.
    milestone.notified().await;
    let killed_at = Instant::now();
    let before = count.load(Ordering::Relaxed);
    cluster.kill(old_leader).await;
    let survivor = cluster.node(2);
    let metrics = survivor
        .raft(0)
        .unwrap()
        .wait(TIMEOUT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != old_leader),
            "a new leader",
        )
        .await
        .unwrap();
    let new_leader = metrics.current_leader.unwrap();
    let term = metrics.current_term;
    let elected_in = killed_at.elapsed();

    let mut retries = 0;
    for worker in workers {
        retries += worker.await.unwrap();
    }
    let elapsed = start.elapsed();
    let acked = std::mem::take(&mut *acked.lock());
    println!(
        "{APPENDS} appends, {IN_FLIGHT} in flight, committed in {:.2} s: {:.0} appends/s; \
         leader {old_leader} dropped after {before} acknowledged, node {new_leader} leads \
         {:.0} ms later (term {}); {retries} requests sent again",
        elapsed.as_secs_f64(),
        APPENDS as f64 / elapsed.as_secs_f64(),
        elected_in.as_secs_f64() * 1e3,
        metrics.current_term,
    );
    assert_eq!(acked.len() as u64, APPENDS, "every append is acknowledged");

    // Every acknowledged entry once, at its position, in each session's order, on each live
    // node; and nothing else (retries were not appended twice).
    let applied = cluster.converge(0, new_leader).await;
    let reference: Vec<Vec<Vec<u8>>> = (0..TOPICS)
        .map(|t| topic_log(&cluster.node(new_leader), &topic_of(t)))
        .collect();
    let check = |logs: &[Vec<Vec<u8>>]| {
        assert_eq!(logs.iter().map(Vec::len).sum::<usize>() as u64, APPENDS);
        for log in logs {
            let distinct: HashSet<&Vec<u8>> = log.iter().collect();
            assert_eq!(distinct.len(), log.len(), "no entry twice");
        }
        let mut last: BTreeMap<(usize, &str), (u64, u64)> = BTreeMap::new();
        for ack in &acked {
            let log = &logs[(ack.seq % TOPICS) as usize];
            assert_eq!(log[ack.position as usize], data_of(ack.worker, ack.seq));
            let key = (ack.worker, ack.topic.as_str());
            if let Some(&(seq, position)) = last.get(&key) {
                // A session's appends are acknowledged in the order it sent them.
                assert!(seq < ack.seq && position < ack.position, "order of {key:?}");
            }
            last.insert(key, (ack.seq, ack.position));
        }
    };
    check(&reference);
    for id in cluster.router.ids() {
        let logs: Vec<_> = (0..TOPICS)
            .map(|t| topic_log(&cluster.node(id), &topic_of(t)))
            .collect();
        assert_eq!(logs, reference, "node {id} holds the leader's log");
    }
    // A linearizable read through the client sees the same.
    let read = cluster.client().read(&topic_of(0), 0, 5).await.unwrap();
    let expected: Vec<_> = (0..).zip(reference[0][..5].iter().cloned()).collect();
    assert_eq!(read, expected);

    // The old leader reopens its directory: it restarts from its snapshot and log, then
    // catches up (from the leader's snapshot: the leader purged what it missed).
    let reopened_at = Instant::now();
    let node = cluster.open(old_leader).await;
    let raft = node.raft(0).unwrap().clone();
    let metrics = raft
        .wait(TIMEOUT)
        .applied_index_at_least(Some(applied), "the old leader catches up")
        .await
        .unwrap();
    println!(
        "node {old_leader} reopened and caught up to index {applied} in {:.0} ms \
         (its snapshot: {:?}, purged: {:?})",
        reopened_at.elapsed().as_secs_f64() * 1e3,
        metrics.snapshot.map(|s| s.index()),
        metrics.purged.map(|p| p.index()),
    );
    let logs: Vec<_> = (0..TOPICS)
        .map(|t| topic_log(&node, &topic_of(t)))
        .collect();
    assert_eq!(logs, reference, "the reopened node holds the same log");
    // It rejoined without an election (Pre-Vote): same leader, same term.
    assert_eq!(
        (metrics.current_leader, metrics.current_term),
        (Some(new_leader), term)
    );
    drop((node, raft));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_appended_once() {
    let cluster = Cluster::start(1).await;
    cluster.initialize(0, 2).await;
    let leader = cluster.node(2);
    let id = |serial| RequestId { client: 7, serial };
    let request = |data: &str, serial| Request::new("t", data).with_id(id(serial));
    assert_eq!(leader.append(Request::new("t", "no id")).await, Ok(0));
    assert_eq!(leader.append(request("a", 1)).await, Ok(1));
    // The same request again (its answer was lost, say): the first position, no new entry.
    assert_eq!(leader.append(request("a", 1)).await, Ok(1));
    assert_eq!(leader.append(request("b", 2)).await, Ok(2));
    // A serial older than the session's last one is refused.
    let stale = leader.append(request("a", 1)).await.unwrap_err();
    assert!(matches!(stale, ServiceError::Rejected(_)), "{stale}");
    // Without an id, a request is appended each time.
    assert_eq!(leader.append(Request::new("t", "no id")).await, Ok(3));
    // A follower names the leader.
    let follower = cluster.node(1).append(request("c", 3)).await.unwrap_err();
    assert!(
        matches!(
            follower,
            ServiceError::NotLeader {
                group: 0,
                leader: Some(2),
                ..
            }
        ),
        "{follower}"
    );
    cluster.converge(0, 2).await;
    for id in NODES {
        let log = topic_log(&cluster.node(id), "t");
        assert_eq!(log, [&b"no id"[..], b"a", b"b", b"no id"], "node {id}");
    }
    cluster.shutdown().await;
}

/// A topic of group `group` among `groups`.
fn topic_in(group: u64, groups: u64) -> String {
    (0..)
        .map(|i| format!("topic-{i}"))
        .find(|t| group_of(t, groups) == group)
        .unwrap()
}

/// Appends `n` entries to each topic, one session per topic, concurrently; returns the
/// positions per topic.
async fn append_each(cluster: &Cluster, topics: &[String], n: usize) -> Vec<Vec<u64>> {
    let tasks: Vec<_> = topics
        .iter()
        .map(|topic| {
            let mut client = cluster.client();
            let topic = topic.clone();
            tokio::spawn(async move {
                let mut positions = Vec::new();
                for i in 0..n {
                    let data = format!("{topic}/{i}");
                    positions.push(client.append(&topic, data).await.unwrap());
                }
                positions
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap());
    }
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_groups_three_leaders_one_node_dies() {
    const GROUPS: u64 = 3;
    let cluster = Cluster::start(GROUPS).await;
    // Group g is initialized from node g + 1, which campaigns at once and leads it.
    for group in 0..GROUPS {
        cluster.initialize(group, group + 1).await;
    }
    let topics: Vec<String> = (0..GROUPS).map(|g| topic_in(g, GROUPS)).collect();
    let first = append_each(&cluster, &topics, 200).await;
    for positions in &first {
        assert_eq!(*positions, (0..200).collect::<Vec<u64>>());
    }
    let terms: Vec<u64> = (0..GROUPS)
        .map(|g| {
            let status = &cluster.node(g + 1).status()[g as usize];
            assert_eq!(status.leader, Some(g + 1), "node {} leads group {g}", g + 1);
            status.term
        })
        .collect();

    // Node 2, the leader of group 1, dies.
    let killed_at = Instant::now();
    cluster.kill(2).await;
    let metrics = cluster
        .node(1)
        .raft(1)
        .unwrap()
        .wait(TIMEOUT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != 2),
            "group 1 elects a new leader",
        )
        .await
        .unwrap();
    let new_leader = metrics.current_leader.unwrap();
    println!(
        "group 1: leader 2 died, node {new_leader} leads {:.0} ms later (term {} -> {})",
        killed_at.elapsed().as_secs_f64() * 1e3,
        terms[1],
        metrics.current_term
    );
    assert!(metrics.current_term > terms[1]);

    let second = append_each(&cluster, &topics, 200).await;
    for (group, positions) in (0..).zip(&second) {
        assert_eq!(
            *positions,
            (200..400).collect::<Vec<u64>>(),
            "group {group}"
        );
    }
    // The groups node 2 did not lead kept their leaders and terms: no election there.
    for group in [0, 2] {
        for id in [1, 3] {
            let status = &cluster.node(id).status()[group as usize];
            assert_eq!(
                (status.leader, status.term),
                (Some(group + 1), terms[group as usize]),
                "group {group} on node {id}"
            );
        }
        println!(
            "group {group}: leader {} kept (term {})",
            group + 1,
            terms[group as usize]
        );
    }
    for (group, topic) in (0..).zip(&topics) {
        let leader = cluster.node(1).leader(group).unwrap();
        cluster.converge(group, leader).await;
        let expected: Vec<Vec<u8>> = (0..400)
            .map(|i| format!("{topic}/{}", i % 200).into_bytes())
            .collect();
        for id in [1, 3] {
            assert_eq!(topic_log(&cluster.node(id), topic), expected, "node {id}");
        }
    }
    cluster.shutdown().await;
}
