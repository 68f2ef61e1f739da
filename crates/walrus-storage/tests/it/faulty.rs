//! The fault-injecting backend: what a simulated power loss keeps, and injected I/O errors.

use std::{collections::BTreeSet, io, sync::Arc};

use walrus_storage::{
    Error, Fault, FaultPlan, FaultyStorage, OpKind, PowerLoss, Segment, Storage, TearFill, WriteAt,
};

use crate::pattern;

const FILE_LEN: usize = 8192;

fn read_all(seg: &dyn Segment) -> Vec<u8> {
    let mut buf = vec![0u8; usize::try_from(seg.len()).unwrap()];
    seg.read_at(0, &mut buf).unwrap();
    buf
}

/// A storage with one file holding synced `a` at 0, and unsynced `b` at 4096.
fn synced_a_then_unsynced_b() -> (FaultyStorage, Arc<dyn Segment>, Vec<u8>, Vec<u8>) {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", FILE_LEN as u64).unwrap();
    let a = pattern(1, 1000);
    let b = pattern(2, 1500);
    seg.write_at(0, &a).unwrap();
    seg.sync().unwrap();
    seg.write_at(4096, &b).unwrap();
    assert_eq!(storage.unsynced_bytes("log"), b.len());
    (storage, seg, a, b)
}

#[test]
fn drop_all_keeps_synced_data_and_zeroes_unsynced_data() {
    let (storage, _seg, a, b) = synced_a_then_unsynced_b();
    storage.power_loss(PowerLoss::DropAll);
    let all = read_all(storage.open("log").unwrap().as_ref());
    assert_eq!(&all[..a.len()], &a[..]);
    assert!(all[4096..4096 + b.len()].iter().all(|x| *x == 0));
    assert_eq!(storage.unsynced_bytes("log"), 0);
}

#[test]
fn keep_all_keeps_unsynced_data() {
    let (storage, _seg, a, b) = synced_a_then_unsynced_b();
    storage.power_loss(PowerLoss::KeepAll);
    let all = read_all(storage.open("log").unwrap().as_ref());
    assert_eq!(&all[..a.len()], &a[..]);
    assert_eq!(&all[4096..4096 + b.len()], &b[..]);
}

#[test]
fn handles_from_before_a_power_loss_are_crashed() {
    let (storage, seg, _a, _b) = synced_a_then_unsynced_b();
    storage.power_loss(PowerLoss::KeepAll);
    let crashed = |err: Error| {
        assert!(matches!(err, Error::Crashed { .. }), "{err:?}");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(err.to_string().contains("log"), "{err}");
    };
    let mut buf = [0u8; 8];
    crashed(seg.read_at(0, &mut buf).unwrap_err());
    crashed(seg.write_at(0, &buf).unwrap_err());
    crashed(seg.sync().unwrap_err());
    crashed(
        seg.write_batch(&[WriteAt {
            offset: 0,
            buf: &buf,
        }])
        .unwrap_err(),
    );
    // A handle opened after the power loss works, and the crashed write left no trace.
    let fresh = storage.open("log").unwrap();
    fresh.write_at(0, b"after").unwrap();
    fresh.sync().unwrap();
    assert_eq!(storage.unsynced_bytes("log"), 0);
}

#[test]
fn files_created_but_never_synced_survive_as_zeros() {
    // Creation makes the file durable; only its content is volatile.
    let storage = FaultyStorage::new();
    let seg = storage.create("new", 1024).unwrap();
    seg.write_at(0, &[7; 100]).unwrap();
    storage.power_loss(PowerLoss::DropAll);
    let seg = storage.open("new").unwrap();
    assert_eq!(seg.len(), 1024);
    assert!(read_all(seg.as_ref()).iter().all(|b| *b == 0));
}

/// Unsynced writes of the random-subset test: distinct non-zero patterns, disjoint ranges.
fn subset_writes() -> Vec<(usize, Vec<u8>)> {
    (0..16)
        .map(|i| {
            let data: Vec<u8> = pattern(100 + i as u64, 200 + i * 13)
                .into_iter()
                .map(|b| b | 1)
                .collect();
            (i * 500, data)
        })
        .collect()
}

/// Which of [`subset_writes`] survive a random-subset power loss with `seed`; checks that each
/// is wholly present or wholly absent.
fn survivors(seed: u64) -> Vec<bool> {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", FILE_LEN as u64).unwrap();
    let writes = subset_writes();
    for (offset, data) in &writes {
        seg.write_at(*offset as u64, data).unwrap();
    }
    storage.power_loss(PowerLoss::RandomSubset { seed });
    let all = read_all(storage.open("log").unwrap().as_ref());
    writes
        .iter()
        .enumerate()
        .map(|(i, (offset, data))| {
            let range = &all[*offset..offset + data.len()];
            let present = range == &data[..];
            assert!(
                present || range.iter().all(|b| *b == 0),
                "seed {seed}: write {i} is partly present"
            );
            present
        })
        .collect()
}

#[test]
fn random_subset_keeps_whole_writes_deterministically_per_seed() {
    let mut outcomes = BTreeSet::new();
    let mut kept_somewhere = vec![false; subset_writes().len()];
    let mut lost_somewhere = vec![false; subset_writes().len()];
    for seed in 0..32 {
        let kept = survivors(seed);
        assert_eq!(kept, survivors(seed), "seed {seed} is not deterministic");
        for (i, k) in kept.iter().enumerate() {
            kept_somewhere[i] |= *k;
            lost_somewhere[i] |= !*k;
        }
        outcomes.insert(kept);
    }
    assert!(
        outcomes.len() > 16,
        "only {} distinct subsets",
        outcomes.len()
    );
    assert!(kept_somewhere.iter().all(|k| *k), "a write is never kept");
    assert!(lost_somewhere.iter().all(|l| *l), "a write is never lost");
}

/// Where the last write of the tear tests lands: unaligned start and end, spanning sectors.
const LAST_OFFSET: usize = 1300;
const LAST_LEN: usize = 2000;

/// Runs a tear of the last write with `seed` and `fill`; returns how many of its bytes were
/// kept after checking everything else.
fn tear(seed: u64, fill: TearFill) -> usize {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", FILE_LEN as u64).unwrap();
    let old = vec![0xee; FILE_LEN];
    seg.write_at(0, &old).unwrap();
    seg.sync().unwrap();
    let first = pattern(1, 700);
    let second = pattern(2, 500);
    let last = pattern(3, LAST_LEN);
    seg.write_at(0, &first).unwrap();
    seg.write_at(800, &second).unwrap();
    seg.write_at(LAST_OFFSET as u64, &last).unwrap();
    storage.power_loss(PowerLoss::TearLast { seed, fill });
    let all = read_all(storage.open("log").unwrap().as_ref());

    assert_eq!(&all[..700], &first[..], "seed {seed}: earlier write lost");
    assert_eq!(
        &all[800..1300],
        &second[..],
        "seed {seed}: earlier write lost"
    );
    assert_eq!(&all[700..800], &old[700..800]);
    assert_eq!(
        &all[LAST_OFFSET + LAST_LEN..],
        &old[LAST_OFFSET + LAST_LEN..]
    );

    let region = &all[LAST_OFFSET..LAST_OFFSET + LAST_LEN];
    // Possible tears: nothing, a 512-byte file boundary inside the write, or everything.
    let boundaries = (0..=LAST_LEN)
        .filter(|k| *k == 0 || *k == LAST_LEN || (LAST_OFFSET + k).is_multiple_of(512));
    let matches: Vec<usize> = boundaries
        .filter(|k| {
            let (kept, torn) = region.split_at(*k);
            kept == &last[..*k]
                && match fill {
                    TearFill::Zeros => torn.iter().all(|b| *b == 0),
                    TearFill::Old => torn.iter().all(|b| *b == 0xee),
                    // Random bytes: neither the new data, nor the old, nor zeros.
                    TearFill::Garbage => {
                        torn.is_empty()
                            || (torn != &last[*k..]
                                && torn.iter().any(|b| *b != 0xee)
                                && torn.iter().any(|b| *b != 0))
                    }
                }
        })
        .collect();
    // For garbage, a shorter kept prefix may also match by chance; the longest is the truth.
    let Some(kept) = matches.last().copied() else {
        panic!("seed {seed}, {fill:?}: last write not torn on a sector boundary");
    };
    kept
}

fn tear_keeps_earlier_writes_and_cuts_the_last_on_sector_boundaries(fill: TearFill) {
    let mut kept_sizes = BTreeSet::new();
    for seed in 0..64 {
        let kept = tear(seed, fill);
        assert_eq!(kept, tear(seed, fill), "seed {seed} is not deterministic");
        kept_sizes.insert(kept);
    }
    // 1300..3300 holds inner boundaries 1536, 2048, 2560 and 3072: six possible tears.
    let all: BTreeSet<usize> = [0, 236, 748, 1260, 1772, LAST_LEN].into();
    assert_eq!(kept_sizes, all, "{fill:?}");
}

#[test]
fn tear_last_with_zeros_keeps_earlier_writes_and_zeroes_the_torn_sectors() {
    tear_keeps_earlier_writes_and_cuts_the_last_on_sector_boundaries(TearFill::Zeros);
}

#[test]
fn tear_last_with_garbage_keeps_earlier_writes_and_scrambles_the_torn_sectors() {
    tear_keeps_earlier_writes_and_cuts_the_last_on_sector_boundaries(TearFill::Garbage);
}

#[test]
fn tear_last_with_old_keeps_earlier_writes_and_the_old_bytes_of_the_torn_sectors() {
    tear_keeps_earlier_writes_and_cuts_the_last_on_sector_boundaries(TearFill::Old);
}

#[test]
fn tear_last_tears_the_last_write_of_every_file() {
    let mut b_outcomes = BTreeSet::new();
    for seed in 0..32 {
        let storage = FaultyStorage::new();
        let a = storage.create("a", 4096).unwrap();
        let b = storage.create("b", 4096).unwrap();
        a.write_at(0, &[1; 1024]).unwrap();
        b.write_at(512, &[2; 1024]).unwrap();
        a.write_at(1024, &[3; 1024]).unwrap();
        storage.power_loss(PowerLoss::TearLast {
            seed,
            fill: TearFill::Zeros,
        });
        let a_now = read_all(storage.open("a").unwrap().as_ref());
        let b_now = read_all(storage.open("b").unwrap().as_ref());
        // The earlier write of "a" always survives; each last write keeps 0, 512 or 1024
        // bytes.
        assert_eq!(a_now[..1024], [1; 1024], "seed {seed}");
        let a_kept = a_now[1024..2048].iter().take_while(|x| **x == 3).count();
        let b_kept = b_now[512..1536].iter().take_while(|x| **x == 2).count();
        assert!(
            [0, 512, 1024].contains(&a_kept),
            "seed {seed}: a kept {a_kept}"
        );
        assert!(
            [0, 512, 1024].contains(&b_kept),
            "seed {seed}: b kept {b_kept}"
        );
        assert!(
            a_now[1024 + a_kept..].iter().all(|x| *x == 0),
            "seed {seed}"
        );
        assert!(b_now[512 + b_kept..].iter().all(|x| *x == 0), "seed {seed}");
        b_outcomes.insert(b_kept);
    }
    assert_eq!(
        b_outcomes,
        [0, 512, 1024].into(),
        "the only write of b is torn too"
    );
}

#[test]
fn unsynced_bytes_counts_pending_writes_until_sync() {
    let storage = FaultyStorage::new();
    let a = storage.create("a", 4096).unwrap();
    let b = storage.create("b", 4096).unwrap();
    assert_eq!(storage.unsynced_bytes("a"), 0);
    assert_eq!(storage.unsynced_bytes("missing"), 0);
    a.write_at(0, &[1; 10]).unwrap();
    a.write_at(5, &[2; 20]).unwrap();
    a.write_batch(&[
        WriteAt {
            offset: 100,
            buf: &[3; 30],
        },
        WriteAt {
            offset: 200,
            buf: &[],
        },
    ])
    .unwrap();
    b.write_at(0, &[4; 7]).unwrap();
    assert_eq!(storage.unsynced_bytes("a"), 60);
    assert_eq!(storage.unsynced_bytes("b"), 7);
    a.sync().unwrap();
    assert_eq!(storage.unsynced_bytes("a"), 0);
    assert_eq!(storage.unsynced_bytes("b"), 7);
    // Synced data survives any power loss.
    storage.power_loss(PowerLoss::DropAll);
    let a = storage.open("a").unwrap();
    let all = read_all(a.as_ref());
    assert_eq!(all[..5], [1; 5]);
    assert_eq!(all[5..25], [2; 20]);
    assert_eq!(all[100..130], [3; 30]);
    assert!(
        read_all(storage.open("b").unwrap().as_ref())
            .iter()
            .all(|x| *x == 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Fault injection.

const ALL_OPS: [OpKind; 7] = [
    OpKind::Create,
    OpKind::Open,
    OpKind::Write,
    OpKind::Read,
    OpKind::Sync,
    OpKind::Remove,
    OpKind::SyncDir,
];

const ALL_FAULTS: [Fault; 3] = [Fault::Eio, Fault::Enospc, Fault::ShortWrite];

/// Runs the `i`-th operation of `kind` (0-based) against a storage prepared by [`prepare`].
fn run_op(storage: &FaultyStorage, seg: &dyn Segment, kind: OpKind, i: usize) -> Result<(), Error> {
    match kind {
        OpKind::Create => storage.create(&format!("new-{i}"), 64).map(drop),
        OpKind::Open => storage.open("log").map(drop),
        OpKind::Write => seg.write_at(64 * i as u64, &[0xab; 64]),
        OpKind::Read => seg.read_at(0, &mut [0u8; 64]),
        OpKind::Sync => seg.sync(),
        OpKind::Remove => storage.remove(&format!("victim-{i}")),
        OpKind::SyncDir => storage.sync_dir(),
        other => unreachable!("no runner for {other:?}"),
    }
}

/// A storage with a file "log" and removable files "victim-0" and up.
fn prepare(ops: usize) -> (FaultyStorage, Arc<dyn Segment>) {
    let ops = ops + 1;
    let storage = FaultyStorage::new();
    let seg = storage.create("log", FILE_LEN as u64).unwrap();
    for i in 0..ops {
        drop(storage.create(&format!("victim-{i}"), 8).unwrap());
    }
    // Operations before the plan is armed do not count towards it.
    seg.write_at(0, b"before").unwrap();
    seg.sync().unwrap();
    (storage, seg)
}

/// The operating-system error number inside an [`Error::Io`].
fn raw_os_error(err: &Error) -> Option<i32> {
    match err {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

fn assert_injected(err: &Error, kind: OpKind, fault: Fault, what: &str) {
    assert!(
        matches!(err, Error::Io { .. }),
        "{what}: expected an I/O error, got {err:?}"
    );
    match (fault, kind) {
        (Fault::Enospc, _) => {
            assert_eq!(raw_os_error(err), Some(28), "{what}: {err:?}");
            assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{what}");
        }
        (Fault::ShortWrite, OpKind::Write) => {
            assert_eq!(err.kind(), io::ErrorKind::WriteZero, "{what}: {err:?}");
        }
        (Fault::Eio | Fault::ShortWrite, _) => {
            assert_eq!(raw_os_error(err), Some(5), "{what}: {err:?}");
        }
        (other, _) => unreachable!("no expectation for {other:?}"),
    }
}

#[test]
fn exactly_the_nth_matching_operation_fails() {
    const OPS: usize = 7;
    for kind in ALL_OPS {
        for fault in ALL_FAULTS {
            for nth in [1u64, 3] {
                for persistent in [false, true] {
                    let what = format!("{kind:?} {fault:?} nth={nth} persistent={persistent}");
                    let (storage, seg) = prepare(OPS);
                    storage.inject(FaultPlan {
                        op: Some(kind),
                        nth,
                        fault,
                        persistent,
                    });
                    for i in 0..OPS {
                        // Operations of other kinds never count and never fail.
                        for other in ALL_OPS.into_iter().filter(|o| *o != kind) {
                            run_op(&storage, seg.as_ref(), other, i)
                                .unwrap_or_else(|e| panic!("{what}: {other:?}: {e:?}"));
                        }
                        let n = i as u64 + 1;
                        let result = run_op(&storage, seg.as_ref(), kind, i);
                        let should_fail = n == nth || (persistent && n > nth);
                        match result {
                            Err(err) if should_fail => {
                                assert_injected(&err, kind, fault, &format!("{what}, op {n}"));
                            }
                            Ok(()) if !should_fail => {}
                            other => panic!("{what}, op {n}: got {other:?}"),
                        }
                    }
                    storage.clear_faults();
                    run_op(&storage, seg.as_ref(), kind, OPS).unwrap();
                }
            }
        }
    }
}

#[test]
fn short_write_stores_half_the_bytes_and_fails() {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", 4096).unwrap();
    storage.inject(FaultPlan {
        op: Some(OpKind::Write),
        nth: 1,
        fault: Fault::ShortWrite,
        persistent: false,
    });
    let data = pattern(9, 100);
    let err = seg.write_at(1000, &data).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WriteZero, "{err:?}");
    assert!(err.to_string().contains("log"), "{err}");
    let all = read_all(seg.as_ref());
    assert_eq!(&all[1000..1050], &data[..50]);
    assert!(all[1050..1100].iter().all(|b| *b == 0));
    assert_eq!(storage.unsynced_bytes("log"), 50);
    // The half that was stored behaves like any other unsynced write.
    seg.sync().unwrap();
    storage.power_loss(PowerLoss::DropAll);
    let all = read_all(storage.open("log").unwrap().as_ref());
    assert_eq!(&all[1000..1050], &data[..50]);
}

#[test]
fn failed_sync_does_not_make_pending_writes_durable() {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", 4096).unwrap();
    seg.write_at(0, b"durable").unwrap();
    seg.sync().unwrap();
    seg.write_at(100, b"pending").unwrap();
    storage.inject(FaultPlan {
        op: Some(OpKind::Sync),
        nth: 1,
        fault: Fault::Eio,
        persistent: false,
    });
    let err = seg.sync().unwrap_err();
    assert_eq!(raw_os_error(&err), Some(5), "{err:?}");
    // The data is still readable until the power goes, and a retried sync "succeeds" ...
    let mut back = [0u8; 7];
    seg.read_at(100, &mut back).unwrap();
    assert_eq!(&back, b"pending");
    seg.sync().unwrap();
    // ... but nothing made the pending write durable.
    storage.power_loss(PowerLoss::DropAll);
    let all = read_all(storage.open("log").unwrap().as_ref());
    assert_eq!(&all[..7], b"durable");
    assert_eq!(all[100..107], [0; 7]);
}

#[test]
fn plan_without_an_op_kind_counts_every_operation() {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", 4096).unwrap();
    storage.inject(FaultPlan {
        op: None,
        nth: 4,
        fault: Fault::Eio,
        persistent: false,
    });
    storage.create("other", 64).unwrap(); // 1
    seg.write_at(0, b"x").unwrap(); // 2
    storage.sync_dir().unwrap(); // 3
    let err = seg.read_at(0, &mut [0u8; 1]).unwrap_err(); // 4
    assert_eq!(raw_os_error(&err), Some(5), "{err:?}");
    seg.sync().unwrap(); // 5
    storage.open("log").unwrap(); // 6
    assert_eq!(storage.op_count(OpKind::Create), 2);
    assert_eq!(storage.op_count(OpKind::Read), 1);
    assert_eq!(storage.op_count(OpKind::Remove), 0);
}

#[test]
fn each_write_of_a_batch_counts_once() {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", 4096).unwrap();
    storage.inject(FaultPlan {
        op: Some(OpKind::Write),
        nth: 2,
        fault: Fault::Eio,
        persistent: false,
    });
    let writes = [
        WriteAt {
            offset: 0,
            buf: b"one",
        },
        WriteAt {
            offset: 10,
            buf: b"two",
        },
        WriteAt {
            offset: 20,
            buf: b"three",
        },
    ];
    let err = seg.write_batch(&writes).unwrap_err();
    assert_eq!(raw_os_error(&err), Some(5), "{err:?}");
    let all = read_all(seg.as_ref());
    assert_eq!(&all[..3], b"one");
    assert_eq!(all[10..13], [0; 3]);
    assert_eq!(all[20..25], [0; 5]);
    assert_eq!(storage.op_count(OpKind::Write), 2);
}

#[test]
fn rearming_a_plan_restarts_its_count() {
    let storage = FaultyStorage::new();
    let seg = storage.create("log", 4096).unwrap();
    let plan = FaultPlan {
        op: Some(OpKind::Sync),
        nth: 2,
        fault: Fault::Enospc,
        persistent: false,
    };
    storage.inject(plan);
    seg.sync().unwrap();
    storage.inject(plan);
    seg.sync().unwrap();
    assert_eq!(seg.sync().unwrap_err().kind(), io::ErrorKind::StorageFull);
    seg.sync().unwrap();
}
