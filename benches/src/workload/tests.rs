use super::*;

#[test]
fn params_round_trip() {
    let p = Params {
        system: "walrus".into(),
        workload: Workload::ReadBatch,
        threads: 3,
        sync: SyncMode::Interval(200),
        duration: Duration::from_millis(1500),
        batch: 256,
        bytes: 1 << 20,
        topics: 4,
        dir: "/tmp/x".into(),
    };
    let q = Params::parse(&p.to_args()).unwrap();
    assert_eq!(q.workload, Workload::ReadBatch);
    assert_eq!(q.sync, SyncMode::Interval(200));
    assert_eq!(q.duration, p.duration);
    assert_eq!(q.dir, p.dir);
}

#[test]
fn small_workloads_run() {
    let dir = tempfile::tempdir().unwrap();
    for (workload, threads) in [
        (Workload::Append, 2),
        (Workload::Batch, 1),
        (Workload::ReadBatch, 2),
        (Workload::ReadNext, 2),
        (Workload::ReadBorrowed, 2),
        (Workload::Reopen, 1),
        (Workload::WriteThenRead, 1),
    ] {
        let p = Params {
            system: "walrus".into(),
            workload,
            threads,
            sync: SyncMode::Never,
            duration: Duration::from_millis(50),
            batch: 8,
            bytes: 256 << 10,
            topics: 3,
            dir: dir.path().join(workload.to_string()),
        };
        let f = run(&p).unwrap();
        assert!(
            f.contains_key("ops") || f.contains_key("reopen_ms"),
            "{workload}"
        );
        if workload == Workload::Reopen {
            assert!(f.contains_key("open_ms") && f.contains_key("first_read_ms"));
        }
    }
}

fn small(system: &str, workload: Workload, dir: &std::path::Path) -> Params {
    Params {
        system: system.into(),
        workload,
        threads: 1,
        sync: SyncMode::Interval(200),
        duration: Duration::from_millis(30),
        batch: 8,
        bytes: 128 << 10,
        topics: 1,
        dir: dir.join(format!("{system}-{workload}")),
    }
}

#[test]
fn position_workloads_run() {
    let dir = tempfile::tempdir().unwrap();
    for system in ["walrus", "walrus-mmap"] {
        let f = run(&small(system, Workload::ReadAt, dir.path())).unwrap();
        assert_eq!(f["ops"], positions::READ_AT_OPS.to_string(), "{system}");
        let entries: u64 = f["fill_entries"].parse().unwrap();
        assert!(entries >= 128, "{entries}");
        let f = run(&small(system, Workload::ReadRange, dir.path())).unwrap();
        assert_eq!(f["ops"], (positions::READ_RANGE_OPS * 8).to_string());
        assert!(f.contains_key("p99_us") && !f.contains_key("na"));
        let f = run(&small(system, Workload::TailFollow, dir.path())).unwrap();
        assert_eq!(f["ops"], "30", "one wake-up per append");
        assert!(f.contains_key("p50_us") && f.contains_key("early_wakes"));
        assert!(f.contains_key("call_p50_us") && f.contains_key("call_p99_us"));
        let waited: f64 = f["idle_wait_ms"].parse().unwrap();
        assert!(waited >= 25.0, "{waited}");
        assert!(f["idle_cpu_us"].parse::<f64>().unwrap() >= 0.0);
    }
    // A system without reads by index: an n/a row, nothing filled.
    let f = run(&small("walrus-0.2.0", Workload::ReadAt, dir.path())).unwrap();
    assert!(f.contains_key("na") && !f.contains_key("ops"));
    assert!(run(&small("raft-engine", Workload::TailFollow, dir.path())).is_err());
}

#[test]
fn random_positions_are_seeded_and_in_range() {
    let a = positions::random_starts(10_000, 1_000);
    assert_eq!(
        a,
        positions::random_starts(10_000, 1_000),
        "same in every system"
    );
    assert!(a.iter().all(|&p| p < 1_000));
    // Uniform enough: each tenth of the range gets about a tenth of the reads.
    for tenth in 0..10 {
        let n = a.iter().filter(|&&p| p / 100 == tenth).count();
        assert!((800..1200).contains(&n), "tenth {tenth}: {n}");
    }
}

#[test]
fn thread_cpu_counts_this_thread_only() {
    let before = positions::thread_cpu().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let slept = positions::thread_cpu().unwrap() - before;
    assert!(slept < Duration::from_millis(20), "{slept:?} asleep");
    // Busy until this thread's clock shows 20 ms (however loaded the machine is).
    let start = std::time::Instant::now();
    let base = positions::thread_cpu().unwrap();
    while positions::thread_cpu().unwrap() - base < Duration::from_millis(20) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "CPU time never grew"
        );
        for i in 0..10_000u64 {
            std::hint::black_box(i);
        }
    }
}

#[test]
fn many_topics_runs_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut systems = vec!["walrus", "walrus-mmap"];
    if cfg!(feature = "peers") {
        systems.push("raft-engine");
    }
    for system in systems {
        let mut p = small(system, Workload::ManyTopics, dir.path());
        (p.topics, p.batch) = (8, 4);
        let f = run(&p).unwrap();
        assert_eq!(f["ops"], "32", "{system}: 4 rounds over 8 topics");
        let payload = topics::payload_bytes(8, 4);
        assert_eq!(f["payload_bytes"], payload.to_string(), "{system}");
        assert_eq!(f["bytes"], payload.to_string(), "{system}");
        // Flushed: every payload byte is in some file (nothing here compresses).
        let apparent: u64 = f["apparent_bytes"].parse().unwrap();
        assert!(apparent >= payload, "{system}: {apparent} < {payload}");
        let per: f64 = f["apparent_per_payload"].parse().unwrap();
        assert!((per - apparent as f64 / payload as f64).abs() < 1e-3);
        assert!(f["disk_per_payload"].parse::<f64>().unwrap() > 0.0);
        // Other tests open files at the same time, so only the fields' presence is certain.
        assert!(f["fds_after"].parse::<usize>().unwrap() > 0, "{system}");
        assert!(f.contains_key("open_fds") && f.contains_key("flush_ms"));
    }
    // walrus 0.2.0 would preallocate 10 MiB per topic: an n/a row, nothing opened.
    let f = run(&small("walrus-0.2.0", Workload::ManyTopics, dir.path())).unwrap();
    assert!(f.contains_key("na") && !f.contains_key("ops"));
    let mut p = small("walrus", Workload::ManyTopics, dir.path());
    p.batch = 0;
    assert!(run(&p).is_err(), "no entries per topic");
}

#[test]
fn disk_sizes_count_holes_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a"), vec![7u8; 8192]).unwrap();
    // A sparse file: 1 MiB long, no blocks.
    let sparse = std::fs::File::create(dir.path().join("b")).unwrap();
    sparse.set_len(1 << 20).unwrap();
    let d = disk_sizes(dir.path());
    assert_eq!(d.apparent, 8192 + (1 << 20));
    assert!((8192..1 << 20).contains(&d.allocated), "{d:?}");
    assert_eq!(disk_usage(dir.path()), d.allocated);
    // At least the descriptor of /proc/self/fd itself.
    assert!(topics::open_fds().unwrap() >= 1);
}
