//! Three node processes of the `replicated_log` example over HTTP, killed with SIGKILL.
//!
//! Client sessions append without pause and record every acknowledged append. Each cycle
//! (`WALRUS_RAFT_KILL_CYCLES`, default 3) kills the leader of group 0 at a random moment,
//! waits until the survivors acknowledged more appends, restarts it on its directory, then
//! kills it again while it catches up as a follower, and restarts it. At the end every node
//! must hold every acknowledged append at its position, nothing twice, nothing else, in each
//! session's order: 0 lost, 0 duplicated, 0 reordered. `WALRUS_RAFT_SEED` replays the
//! random moments of a run (each run prints its seed).
//!
//! The example binary is built by `cargo test` (examples are built with the tests); run
//! `cargo build -p walrus-raft --example replicated_log` first when running this test alone
//! with `--test processes`.

use std::{
    collections::{BTreeMap, HashSet},
    fs::File,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use tempfile::TempDir;
use tokio::sync::watch;
use walrus_raft::service::{Client, Connection, GroupStatus, ReadRequest, http::HttpConnection};

const GROUPS: u64 = 3;
const SESSIONS: usize = 8;
const TOPICS: usize = 6;
const DEADLINE: Duration = Duration::from_secs(30);

/// xorshift64*: the random moments, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        low + self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (high - low)
    }
}

/// The node processes; killed when dropped (the directory is kept if the test failed).
struct Nodes {
    bin: PathBuf,
    dir: Option<TempDir>,
    peers: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("node directories and logs kept in {}", dir.keep().display());
        }
    }
}

impl Nodes {
    fn new() -> Self {
        let deps = std::env::current_exe().unwrap();
        let bin = deps
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/replicated_log");
        assert!(
            bin.exists(),
            "{} is missing: `cargo test` builds it, or `cargo build -p walrus-raft --example \
             replicated_log`",
            bin.display()
        );
        // Free ports: bound by the OS, released for the nodes.
        let listeners: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let peers = (1..)
            .zip(&listeners)
            .map(|(id, l)| (id, l.local_addr().unwrap().to_string()))
            .collect();
        Self {
            bin,
            dir: Some(tempfile::tempdir().unwrap()),
            peers,
            children: BTreeMap::new(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().to_path_buf()
    }

    fn spawn(&mut self, id: u64, init: bool) {
        let dir = self.dir();
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("node-{id}.log")))
            .unwrap();
        let peers: Vec<String> = self.peers.iter().map(|(i, a)| format!("{i}={a}")).collect();
        let mut command = Command::new(&self.bin);
        command
            .args(["--id", &id.to_string(), "--addr", &self.peers[&id]])
            .args(["--peers", &peers.join(",")])
            .args(["--groups", &GROUPS.to_string()])
            .arg("--dir")
            .arg(dir.join(format!("node-{id}")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if init {
            command.arg("--init");
        }
        self.children.insert(id, command.spawn().unwrap());
    }

    /// SIGKILL, then reaps the process.
    fn kill9(&mut self, id: u64) {
        let mut child = self.children.remove(&id).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn alive(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }
}

/// Polls `check` every 20 ms until it returns a value (processes have no metrics to wait on).
async fn poll<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(connection: &HttpConnection, id: u64) -> Option<Vec<GroupStatus>> {
    connection.status(id).await.ok()
}

/// The live leader of `group`, as a live node reports it.
async fn leader(connection: &HttpConnection, nodes: &Nodes, group: usize) -> u64 {
    let alive = nodes.alive();
    poll("a live leader", async || {
        for &id in &alive {
            if let Some(status) = status(connection, id).await
                && let Some(leader) = status[group].leader
                && alive.contains(&leader)
            {
                return Some(leader);
            }
        }
        None
    })
    .await
}

/// An acknowledged append: session, its sequence number, topic index, position.
type Ack = (usize, u64, usize, u64);

fn data_of(session: usize, seq: u64) -> Vec<u8> {
    format!("{session}:{seq}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_the_leader_and_a_catching_up_follower() {
    let cycles: u64 = std::env::var("WALRUS_RAFT_KILL_CYCLES")
        .map_or(3, |v| v.parse().expect("WALRUS_RAFT_KILL_CYCLES: a number"));
    let seed = std::env::var("WALRUS_RAFT_SEED").map_or_else(
        |_| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |v| v.parse().expect("WALRUS_RAFT_SEED: a number"),
    );
    println!("WALRUS_RAFT_SEED={seed} WALRUS_RAFT_KILL_CYCLES={cycles}");
    let mut rng = Rng(seed);

    let mut nodes = Nodes::new();
    for id in 1..=3 {
        nodes.spawn(id, true);
    }
    let connection = HttpConnection::new(nodes.peers.clone());
    for group in 0..GROUPS as usize {
        leader(&connection, &nodes, group).await;
    }

    let topics: Arc<Vec<String>> = Arc::new((0..TOPICS).map(|t| format!("t{t}")).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let (progress, mut acked) = watch::channel(0u64);
    let progress = Arc::new(progress);
    let start = Instant::now();
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|session| {
            let mut client = Client::new(connection.clone(), 1..=3, GROUPS);
            let (topics, stop, progress) = (topics.clone(), stop.clone(), progress.clone());
            tokio::spawn(async move {
                let mut acks: Vec<Ack> = Vec::new();
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let topic = (session + seq as usize) % TOPICS;
                    let position = client
                        .append(&topics[topic], data_of(session, seq))
                        .await
                        .unwrap_or_else(|e| panic!("session {session} append {seq}: {e}"));
                    acks.push((session, seq, topic, position));
                    progress.send_modify(|n| *n += 1);
                }
                acks
            })
        })
        .collect();

    let mut catching_up = 0;
    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_millis(rng.between(200, 800))).await;
        let victim = leader(&connection, &nodes, 0).await;
        nodes.kill9(victim);
        let at_kill = *acked.borrow();
        let killed_at = Instant::now();
        acked
            .wait_for(|&n| n >= at_kill + 200)
            .await
            .expect("the sessions run");
        let resumed = killed_at.elapsed();
        // Back as a follower that missed the last appends; killed again as soon as it
        // answers (while it catches up), then back for good.
        nodes.spawn(victim, false);
        let restarted = poll("the restarted node answers", async || {
            status(&connection, victim).await
        })
        .await;
        let leaders = status(&connection, leader(&connection, &nodes, 0).await).await;
        tokio::time::sleep(Duration::from_millis(rng.between(0, 20))).await;
        nodes.kill9(victim);
        let behind: u64 = (0..GROUPS as usize)
            .map(|g| {
                let lead = leaders.as_ref().and_then(|s| s[g].applied).unwrap_or(0);
                lead.saturating_sub(restarted[g].applied.unwrap_or(0))
            })
            .sum();
        catching_up += u64::from(behind > 0);
        nodes.spawn(victim, false);
        poll("the restarted node answers", async || {
            status(&connection, victim).await
        })
        .await;
        println!(
            "cycle {cycle}: leader {victim} killed at {at_kill} acknowledged, 200 more in \
             {:.0} ms; restarted, answered {behind} entries behind the leaders, killed at \
             once, restarted",
            resumed.as_secs_f64() * 1e3
        );
    }
    // At least one of the second kills hit a node still catching up.
    assert!(cycles == 0 || catching_up > 0, "no kill during catch-up");
    stop.store(true, Ordering::Relaxed);
    let mut acks: Vec<Ack> = Vec::new();
    for session in sessions {
        acks.extend(session.await.unwrap());
    }
    let elapsed = start.elapsed();

    // Every node catches up with every group's leader.
    for group in 0..GROUPS as usize {
        let leader = leader(&connection, &nodes, group).await;
        let applied = poll("the leader's status", async || {
            status(&connection, leader).await
        })
        .await[group]
            .applied;
        for id in 1..=3 {
            poll("a node catches up", async || {
                let status = status(&connection, id).await?;
                (status[group].applied >= applied).then_some(())
            })
            .await;
        }
    }
    let mut logs: BTreeMap<u64, Vec<Vec<Vec<u8>>>> = BTreeMap::new();
    for id in 1..=3 {
        let mut node_logs = Vec::new();
        for topic in topics.iter() {
            let read = ReadRequest {
                topic: topic.clone(),
                from: 0,
                max: u64::MAX,
                local: true,
            };
            let entries = connection.read(id, read).await.unwrap();
            assert!(entries.iter().enumerate().all(|(i, (p, _))| *p == i as u64));
            node_logs.push(entries.into_iter().map(|(_, data)| data).collect());
        }
        logs.insert(id, node_logs);
    }

    let reference = &logs[&1];
    let total: usize = reference.iter().map(Vec::len).sum();
    let mut lost = 0;
    let mut reordered = 0;
    let mut last: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    acks.sort();
    for &(session, seq, topic, position) in &acks {
        if reference[topic].get(position as usize) != Some(&data_of(session, seq)) {
            lost += 1;
        }
        if last
            .insert((session, topic), position)
            .is_some_and(|p| p >= position)
        {
            reordered += 1;
        }
    }
    let distinct: usize = reference
        .iter()
        .map(|log| log.iter().collect::<HashSet<_>>().len())
        .sum();
    let duplicated = total - distinct;
    println!(
        "{} appends acknowledged in {:.1} s ({:.0}/s) over {cycles} cycles; {total} entries on \
         each node: {lost} lost, {duplicated} duplicated, {reordered} reordered, {} \
         unacknowledged",
        acks.len(),
        elapsed.as_secs_f64(),
        acks.len() as f64 / elapsed.as_secs_f64(),
        total - acks.len().min(total),
    );
    for (id, node_logs) in &logs {
        assert!(node_logs == reference, "node {id} holds node 1's log");
    }
    assert_eq!((lost, duplicated, reordered), (0, 0, 0));
    // Sessions finish the append in flight when told to stop: every entry was acknowledged.
    assert_eq!(total, acks.len());
}
