//! Command-line parsing for `cargo xtask`.

pub(crate) const USAGE: &str = "usage: cargo xtask <command>

commands:
  bench [OPTIONS]            the throughput harness: Walrus against its peers, a table with
                             ratios, CSV and PNG plots under target/bench-results/
                             (--quick, the default, takes about 3 minutes on 2 cores)
  bench writes|reads|scaling|batch-scaling|migrate
                             the seed load tests (env FSYNC, THREADS, WALRUS_DURATION,
                             WALRUS_BATCH_SIZE, BACKEND, SYSTEMS)
  bench show suite|writes|reads|scaling|batch-scaling
                             print the table and redraw the plots of the last run
  bench --criterion [FILTER] run the criterion suites (short measurement), optionally filtered
  bench --raft [--full] [--secs S] [--walrus-fsync-ms N] [--systems a,b]
                             openraft's RaftLogStorage::append up to its flush callback:
                             walrus-raft (fd, mmap) against raft-log and openraft-memstore
                             (16 cells), then committed appends/s of a 3-node in-process
                             cluster (3 cells; --systems cluster for those alone); a table,
                             raft.csv and raft.txt under target/bench-results/ (quick: 2 s
                             per cell; --full: 10 s)
  loom                       run the loom models of walrus-alloc and walrus-topic (time-boxed)
  tidy                       check the structural rules (part of `make test`): dependencies
                             point down and are all used, on-disk kinds and offsets only in
                             format.rs, no source file over 600 lines, unsafe only in
                             walrus-storage/src/sys
  ci                         run what .ci/run runs: fmt --check, clippy, tests, tidy, loom,
                             reliability --ci, mutants, fuzz --ci, miri
  reliability [--ci]         crash, power-loss, corruption and fault-injection suites in
                             release mode (full: about 20k power losses and 1,000 kill -9
                             cycles; --ci: the scaled-down variant), then loom
  fuzz [--ci] [--secs N] [--seed-corpus]
                             cargo-fuzz targets (nightly, ASan): replay fuzz/corpus and
                             fuzz/regressions, then N seconds of fuzzing per target (default
                             60, --ci 20); --seed-corpus rewrites fuzz/corpus instead
  miri                       the miri_* unit tests of walrus-storage and walrus-alloc under
                             Miri (installs the nightly miri component if missing)
  mutants                    build the 9 deliberately broken variants (ack before fsync,
                             checksum not verified, torn tail not cut, cursor persisted
                             ahead, no timed fsync, claim overstated, cursor slot not rolled
                             back, clean marker kept, seal before durable) and check that
                             the suites catch each

bench options:
  --quick | --full           data set and cell sizes (--full: 1 GiB, 10 s cells, T up to 8)
  --systems a,b              walrus, walrus-uring, walrus-mmap, walrus-0.2.0, raft-engine,
                             okaywal, rocksdb
  --rocksdb                  also build RocksDB's WAL (needs librocksdb-dev, libclang-dev;
                             see benches/RESULTS.md)
  --no-peers                 walrus only (no peer crates are built)
  --out DIR, --tmp DIR       results directory, parent of the data directories";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Bench(Bench),
    Loom,
    Ci,
    Reliability {
        /// `--ci`: the scaled-down variant.
        ci: bool,
    },
    Mutants,
    Fuzz(crate::fuzz::Fuzz),
    Miri,
    Tidy,
}

/// `cargo xtask bench ...`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Bench {
    /// `--criterion`: run the criterion suites instead of the harness.
    pub(crate) criterion: bool,
    /// The criterion filter.
    pub(crate) filter: Option<String>,
    /// `--rocksdb`: build the harness with RocksDB.
    pub(crate) rocksdb: bool,
    /// `--no-peers`: build the harness without peer crates.
    pub(crate) no_peers: bool,
    /// `--raft`: run walrus-raft's `raft_append` benchmark instead of the harness, with
    /// `harness` as its arguments.
    pub(crate) raft: bool,
    /// Harness arguments: the subcommand (default `suite`) and options passed through.
    pub(crate) harness: Vec<String>,
}

const SEEDS: &[&str] = &["writes", "reads", "scaling", "batch-scaling", "migrate"];

impl Command {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        match args.first().map(String::as_str) {
            Some("bench") => Bench::parse(&args[1..]).map(Command::Bench),
            Some("loom") => Ok(Command::Loom),
            Some("ci") => Ok(Command::Ci),
            Some("mutants") => Ok(Command::Mutants),
            Some("fuzz") => parse_fuzz(&args[1..]).map(Command::Fuzz),
            Some("miri") => Ok(Command::Miri),
            Some("tidy") => Ok(Command::Tidy),
            Some("reliability") => match args.get(1).map(String::as_str) {
                None => Ok(Command::Reliability { ci: false }),
                Some("--ci") => Ok(Command::Reliability { ci: true }),
                Some(other) => Err(format!("unknown reliability option {other}\n{USAGE}")),
            },
            _ => Err(USAGE.to_owned()),
        }
    }
}

fn parse_fuzz(args: &[String]) -> Result<crate::fuzz::Fuzz, String> {
    let mut f = crate::fuzz::Fuzz::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ci" => f.ci = true,
            "--seed-corpus" => f.seed_corpus = true,
            "--secs" => {
                let v = it.next().ok_or("--secs needs a value")?;
                let secs = v.parse().map_err(|_| format!("--secs {v}: not a number"))?;
                f.secs = Some(secs);
            }
            other => return Err(format!("unknown fuzz option {other}\n{USAGE}")),
        }
    }
    Ok(f)
}

impl Bench {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut b = Bench::default();
        let mut sub: Option<String> = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--criterion" => b.criterion = true,
                "--rocksdb" => b.rocksdb = true,
                "--no-peers" => b.no_peers = true,
                "--raft" => b.raft = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                "--systems" | "--out" | "--tmp" | "--secs" | "--walrus-fsync-ms" => {
                    let v = it.next().ok_or(format!("{a} needs a value"))?;
                    b.harness.extend([a.clone(), v.clone()]);
                }
                "--quick" | "--full" => b.harness.push(a.clone()),
                s if SEEDS.contains(&s) && sub.is_none() && !b.criterion => {
                    sub = Some(s.to_owned());
                }
                "show" if sub.is_none() && !b.criterion => {
                    let what = it
                        .next()
                        .ok_or("show what? suite|writes|reads|scaling|batch-scaling")?;
                    sub = Some(format!("show {what}"));
                }
                s if b.criterion && b.filter.is_none() && !s.starts_with('-') => {
                    b.filter = Some(s.to_owned());
                }
                other => return Err(format!("unknown bench argument {other:?}\n\n{USAGE}")),
            }
        }
        if b.rocksdb && b.no_peers {
            return Err("--rocksdb and --no-peers exclude each other".into());
        }
        if b.raft {
            if b.criterion || b.rocksdb || b.no_peers || sub.is_some() {
                return Err(
                    "--raft takes only --quick, --full, --secs, --walrus-fsync-ms, --systems, \
                     --out and --tmp"
                        .into(),
                );
            }
            return Ok(b);
        }
        if let Some(a) = ["--secs", "--walrus-fsync-ms"]
            .into_iter()
            .find(|a| b.harness.iter().any(|h| h == a))
        {
            return Err(format!("{a} goes with --raft only"));
        }
        let sub = sub.unwrap_or_else(|| "suite".to_owned());
        let mut harness: Vec<String> = sub.split(' ').map(str::to_owned).collect();
        harness.append(&mut b.harness);
        b.harness = harness;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, String> {
        let args: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        Command::parse(&args)
    }

    fn bench(s: &str) -> Bench {
        match parse(s) {
            Ok(Command::Bench(b)) => b,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn commands() {
        assert_eq!(parse("loom"), Ok(Command::Loom));
        assert_eq!(parse("ci"), Ok(Command::Ci));
        assert!(parse("").is_err());
        assert_eq!(bench("bench").harness, ["suite"]);
        assert_eq!(bench("bench --full").harness, ["suite", "--full"]);
        assert_eq!(
            bench("bench scaling --systems walrus,okaywal").harness,
            ["scaling", "--systems", "walrus,okaywal"]
        );
        assert_eq!(bench("bench show writes").harness, ["show", "writes"]);
        let c = bench("bench --criterion append");
        assert!(c.criterion);
        assert_eq!(c.filter.as_deref(), Some("append"));
        assert!(parse("bench --frobnicate").is_err());
        assert!(parse("bench --rocksdb --no-peers").is_err());
        let r = bench("bench --raft --full --secs 1");
        assert!(r.raft);
        assert_eq!(r.harness, ["--full", "--secs", "1"]);
        assert!(bench("bench --raft").harness.is_empty());
        assert!(parse("bench --raft writes").is_err());
        assert!(parse("bench --raft --criterion").is_err());
        assert!(parse("bench --secs 1").is_err());
        assert_eq!(parse("miri"), Ok(Command::Miri));
        assert_eq!(parse("tidy"), Ok(Command::Tidy));
        let Ok(Command::Fuzz(f)) = parse("fuzz --ci --secs 5") else {
            panic!("fuzz options")
        };
        assert!(f.ci && !f.seed_corpus);
        assert_eq!(f.secs, Some(5));
        assert!(parse("fuzz --secs x").is_err());
    }
}
