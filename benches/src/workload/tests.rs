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
