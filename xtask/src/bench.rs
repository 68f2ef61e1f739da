//! `cargo xtask bench`: builds and runs the throughput harness (walrus-benches, with the peer
//! crates behind its `peers` feature), the criterion suites, or (`--raft`) walrus-raft's
//! `raft_append` benchmark.
//!
//! xtask links no library crate: the harness is its own binary, built in release mode here, so
//! the peers are compiled only when benchmarks are asked for.

use crate::{flags::Bench, util};

pub(crate) fn run(b: &Bench) -> Result<(), String> {
    if b.raft {
        return raft(b);
    }
    if b.criterion {
        let mut args = vec![
            "bench",
            "--workspace",
            "--features",
            "walrus-storage/testing",
            "--",
        ];
        if let Some(filter) = &b.filter {
            args.push(filter);
        }
        return util::run("cargo", &args, &[]);
    }
    let features = match (b.no_peers, b.rocksdb) {
        (true, _) => None,
        (false, false) => Some("peers"),
        (false, true) => Some("peers,rocksdb"),
    };
    let mut args = vec!["run", "--release", "--quiet", "-p", "walrus-benches"];
    if let Some(f) = features {
        args.extend(["--features", f]);
    }
    args.extend(["--bin", "harness", "--"]);
    args.extend(b.harness.iter().map(String::as_str));
    // With Debian's librocksdb-dev installed, link it instead of building RocksDB from C++
    // sources (an hour on 2 cores); an explicit ROCKSDB_LIB_DIR wins.
    let system_rocksdb = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
        .into_iter()
        .find(|d| std::path::Path::new(d).join("librocksdb.so").exists());
    let mut envs = Vec::new();
    if let (true, None, Some(dir)) = (
        b.rocksdb,
        std::env::var_os("ROCKSDB_LIB_DIR"),
        system_rocksdb,
    ) {
        envs.push(("ROCKSDB_LIB_DIR", dir));
    }
    util::run("cargo", &args, &envs)
}

/// `cargo bench -p walrus-raft --bench raft_append`: the benchmark's own main (no criterion)
/// runs from the package's directory, so the result and temporary directories are made
/// absolute here, relative paths taken from the project root as the harness does.
fn raft(b: &Bench) -> Result<(), String> {
    let root = util::project_root();
    let mut args: Vec<String> = ["bench", "-p", "walrus-raft", "--bench", "raft_append", "--"]
        .map(String::from)
        .into();
    let mut has_out = false;
    let mut it = b.harness.iter();
    while let Some(a) = it.next() {
        args.push(a.clone());
        if a == "--out" || a == "--tmp" {
            let dir = root.join(it.next().ok_or(format!("{a} needs a value"))?);
            has_out |= a == "--out";
            args.push(dir.display().to_string());
        }
    }
    if !has_out {
        args.push("--out".into());
        args.push(root.join("target/bench-results").display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    util::run("cargo", &args, &[])
}
