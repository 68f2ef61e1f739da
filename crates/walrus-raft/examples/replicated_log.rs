//! A node of the replicated log, one process per node, over HTTP; and a client of it.
//!
//! ```text
//! # one command per node (add --init on the first start of a new cluster):
//! cargo run -p walrus-raft --example replicated_log -- --id 1 --addr 127.0.0.1:21001 \
//!     --peers 1=127.0.0.1:21001,2=127.0.0.1:21002,3=127.0.0.1:21003 --dir /tmp/n1 --init
//! cargo run -p walrus-raft --example replicated_log -- --id 2 --addr 127.0.0.1:21002 \
//!     --peers 1=127.0.0.1:21001,2=127.0.0.1:21002,3=127.0.0.1:21003 --dir /tmp/n2 --init
//! cargo run -p walrus-raft --example replicated_log -- --id 3 --addr 127.0.0.1:21003 \
//!     --peers 1=127.0.0.1:21001,2=127.0.0.1:21002,3=127.0.0.1:21003 --dir /tmp/n3 --init
//!
//! # a client:
//! P=1=127.0.0.1:21001,2=127.0.0.1:21002,3=127.0.0.1:21003
//! cargo run -p walrus-raft --example replicated_log -- append --peers $P --topic events hello
//! cargo run -p walrus-raft --example replicated_log -- read --peers $P --topic events
//! cargo run -p walrus-raft --example replicated_log -- status --peers $P
//! ```
//!
//! Every node and client must be given the same `--groups` (default 3). With `--init`, a
//! node initializes the groups it is to lead first: group `g` from the `g % n`-th node of
//! `--peers` in order of id, so the leaders start spread over the nodes. Pass it on the first
//! start only (a group that is initialized already ignores it).

use std::{collections::BTreeMap, error::Error, path::PathBuf, process::ExitCode, sync::Arc};

use openraft::BasicNode;
use tokio::net::TcpListener;
use walrus_raft::service::{
    Client, Connection, Node, NodeConfig, ReadRequest,
    http::{HttpConnection, HttpTransport, serve},
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage:
  replicated_log --id ID --addr HOST:PORT --peers ID=HOST:PORT,... --dir DIR [--groups N] [--init]
  replicated_log append --peers ID=HOST:PORT,... [--groups N] --topic TOPIC DATA...
  replicated_log read --peers ID=HOST:PORT,... [--groups N] --topic TOPIC [--from P] [--max N] [--local ID]
  replicated_log status --peers ID=HOST:PORT,...";

/// The command line: an optional command, `--name value` options, `--init`, and the words
/// left (the data of `append`).
#[derive(Debug, Default)]
struct Args {
    command: Option<String>,
    options: BTreeMap<String, String>,
    init: bool,
    words: Vec<String>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.peekable();
        if let Some(first) = args.next_if(|a| !a.starts_with("--")) {
            parsed.command = Some(first);
        }
        while let Some(arg) = args.next() {
            match arg.strip_prefix("--") {
                Some("init") => parsed.init = true,
                Some(name) => {
                    let value = args.next().ok_or(format!("--{name} needs a value"))?;
                    parsed.options.insert(name.to_owned(), value);
                }
                None => parsed.words.push(arg),
            }
        }
        Ok(parsed)
    }

    fn get(&self, name: &str) -> Result<&str> {
        self.options
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required\n{USAGE}").into())
    }

    fn number(&self, name: &str, default: u64) -> Result<u64> {
        match self.options.get(name) {
            Some(value) => Ok(value
                .parse()
                .map_err(|e| format!("--{name} {value}: {e}"))?),
            None => Ok(default),
        }
    }

    /// `--peers 1=host:port,2=host:port`: node ids to addresses.
    fn peers(&self) -> Result<BTreeMap<u64, String>> {
        let mut peers = BTreeMap::new();
        for peer in self.get("peers")?.split(',') {
            let (id, addr) = peer
                .split_once('=')
                .ok_or(format!("peer {peer}: expected ID=HOST:PORT"))?;
            peers.insert(id.parse()?, addr.to_owned());
        }
        Ok(peers)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let run = async {
        let args = Args::parse(std::env::args().skip(1))?;
        match args.command.as_deref() {
            None => run_node(&args).await,
            Some("append") => append(&args).await,
            Some("read") => read(&args).await,
            Some("status") => status(&args).await,
            Some(other) => Err(format!("unknown command {other}\n{USAGE}").into()),
        }
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replicated_log: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a node until the process is killed.
async fn run_node(args: &Args) -> Result<()> {
    let id = args.number("id", 0)?;
    let addr = args.get("addr")?;
    let peers = args.peers()?;
    if peers.get(&id).map(String::as_str) != Some(addr) {
        return Err(format!("--peers must give node {id} the address {addr}").into());
    }
    let groups = args.number("groups", 3)?;
    let config = NodeConfig::new(id, PathBuf::from(args.get("dir")?), groups);
    let node = Arc::new(Node::open(&config, &HttpTransport::new()).await?);
    let listener = TcpListener::bind(addr).await?;
    let server = tokio::spawn(serve(Arc::clone(&node), listener));
    if args.init {
        let members: BTreeMap<u64, BasicNode> = peers
            .iter()
            .map(|(&id, addr)| (id, BasicNode::new(addr)))
            .collect();
        let ids: Vec<u64> = peers.keys().copied().collect();
        for group in 0..groups {
            if ids[group as usize % ids.len()] == id {
                node.initialize(group, members.clone()).await?;
                println!("node {id}: initialized group {group}");
            }
        }
    }
    println!(
        "node {id}: listening on {addr}, {groups} groups, data in {}",
        config.dir.display()
    );
    server.await??;
    Ok(())
}

async fn append(args: &Args) -> Result<()> {
    let peers = args.peers()?;
    let connection = HttpConnection::new(peers.clone());
    let mut client = Client::new(connection, peers.into_keys(), args.number("groups", 3)?);
    let topic = args.get("topic")?;
    for data in &args.words {
        let position = client.append(topic, data.as_bytes()).await?;
        println!("{topic}@{position}");
    }
    Ok(())
}

async fn read(args: &Args) -> Result<()> {
    let peers = args.peers()?;
    let topic = args.get("topic")?;
    let (from, max) = (args.number("from", 0)?, args.number("max", 100)?);
    let connection = HttpConnection::new(peers.clone());
    let entries = if let Some(node) = args.options.get("local") {
        let read = ReadRequest {
            topic: topic.to_owned(),
            from,
            max,
            local: true,
        };
        connection.read(node.parse()?, read).await?
    } else {
        let mut client = Client::new(connection, peers.into_keys(), args.number("groups", 3)?);
        client.read(topic, from, max).await?
    };
    for (position, data) in entries {
        println!("{topic}@{position}: {}", String::from_utf8_lossy(&data));
    }
    Ok(())
}

async fn status(args: &Args) -> Result<()> {
    let peers = args.peers()?;
    let connection = HttpConnection::new(peers.clone());
    for (id, addr) in peers {
        match connection.status(id).await {
            Ok(groups) => {
                for g in groups {
                    println!(
                        "node {id} ({addr}) group {}: leader {:?}, term {}, last log {:?}, applied {:?}",
                        g.group, g.leader, g.term, g.last_log, g.applied
                    );
                }
            }
            Err(e) => println!("node {id} ({addr}): {e}"),
        }
    }
    Ok(())
}
