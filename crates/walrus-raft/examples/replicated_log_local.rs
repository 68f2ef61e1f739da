//! Three nodes of the replicated log in one process, talking HTTP over TCP loopback, each
//! with its Walrus instance in a temporary directory; a client appends a few entries to
//! topics of the three groups (each led by another node) and reads them back.
//!
//! ```text
//! cargo run -p walrus-raft --example replicated_log_local
//! ```

use std::{collections::BTreeMap, error::Error, sync::Arc, time::Instant};

use openraft::BasicNode;
use tokio::net::TcpListener;
use walrus_raft::service::{
    Client, Node, NodeConfig, group_of,
    http::{HttpConnection, HttpTransport, serve},
};

const GROUPS: u64 = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    // Listen first (port 0: any free port), so that the membership has the real addresses.
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        listeners.insert(id, listener);
    }
    let peers: BTreeMap<u64, String> = listeners
        .iter()
        .map(|(&id, l)| Ok((id, l.local_addr()?.to_string())))
        .collect::<std::io::Result<_>>()?;
    let members: BTreeMap<u64, BasicNode> = peers
        .iter()
        .map(|(&id, addr)| (id, BasicNode::new(addr)))
        .collect();

    let mut nodes = Vec::new();
    for (id, listener) in listeners {
        let config = NodeConfig::new(id, dir.path().join(format!("node-{id}")), GROUPS);
        let node = Arc::new(Node::open(&config, &HttpTransport::new()).await?);
        tokio::spawn(serve(Arc::clone(&node), listener));
        println!("node {id} on {}", peers[&id]);
        nodes.push(node);
    }
    // Group g from node g + 1: three groups, three leaders.
    for (group, node) in (0..GROUPS).zip(&nodes) {
        node.initialize(group, members.clone()).await?;
    }

    let mut client = Client::new(
        HttpConnection::new(peers.clone()),
        peers.keys().copied(),
        GROUPS,
    );
    let topics: Vec<String> = (0..GROUPS)
        .map(|g| {
            (0..)
                .map(|i| format!("topic-{i}"))
                .find(|t| group_of(t, GROUPS) == g)
                .expect("some name falls in each group")
        })
        .collect();
    let start = Instant::now();
    let mut appended = 0;
    for i in 0..20 {
        for topic in &topics {
            let position = client.append(topic, format!("entry {i}")).await?;
            assert_eq!(position, i);
            appended += 1;
        }
    }
    println!(
        "{appended} appends committed in {:.0} ms (one at a time, over HTTP)",
        start.elapsed().as_secs_f64() * 1e3
    );
    for (group, topic) in (0..).zip(&topics) {
        let entries = client.read(topic, 18, 10).await?;
        let leader = client.leader(group).expect("a leader answered");
        println!(
            "{topic} (group {group}, leader node {leader}): {:?}",
            entries
                .iter()
                .map(|(p, d)| format!("{p}: {}", String::from_utf8_lossy(d)))
                .collect::<Vec<_>>()
        );
    }
    for node in &nodes {
        node.shutdown().await;
    }
    Ok(())
}
