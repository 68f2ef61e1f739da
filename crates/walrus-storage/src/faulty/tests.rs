//! Unit tests of the in-memory and fault-injecting storage, small enough to run under Miri
//! (`miri_*`, docs: shared RELIABILITY.md T10).

use super::*;
use crate::MemStorage;

fn read_all(storage: &FaultyStorage, name: &str) -> Vec<u8> {
    let file = storage.open(name).unwrap();
    let mut bytes = vec![0u8; file.len() as usize];
    file.read_at(0, &mut bytes).unwrap();
    bytes
}

#[test]
fn miri_power_loss_keeps_what_was_synced_and_drops_or_tears_the_rest() {
    let modes = [
        PowerLoss::DropAll,
        PowerLoss::KeepAll,
        PowerLoss::RandomSubset { seed: 3 },
        PowerLoss::TearLast {
            seed: 5,
            fill: TearFill::Garbage,
        },
        PowerLoss::TearLast {
            seed: 6,
            fill: TearFill::Zeros,
        },
    ];
    for mode in modes {
        let storage = FaultyStorage::new();
        let file = storage.create("f", 2048).unwrap();
        file.write_at(0, &[1u8; 100]).unwrap();
        file.sync().unwrap();
        file.write_at(600, &[2u8; 1100]).unwrap();
        assert_eq!(storage.unsynced_bytes("f"), 1100);
        storage.power_loss(mode);
        // Handles from before the power loss are dead.
        assert!(file.read_at(0, &mut [0u8; 1]).is_err());
        let bytes = read_all(&storage, "f");
        assert_eq!(bytes[..100], [1u8; 100], "{mode:?}");
        assert!(bytes[100..600].iter().all(|b| *b == 0), "{mode:?}");
        match mode {
            PowerLoss::DropAll => assert!(bytes[600..].iter().all(|b| *b == 0)),
            PowerLoss::KeepAll => assert_eq!(bytes[600..1700], [2u8; 1100]),
            _ => {}
        }
    }
}

#[test]
fn miri_injected_fault_fails_the_nth_write_and_a_short_write_keeps_half() {
    let storage = FaultyStorage::new();
    let file = storage.create("f", 64).unwrap();
    storage.inject(FaultPlan {
        op: Some(OpKind::Write),
        nth: 2,
        fault: Fault::ShortWrite,
        persistent: false,
    });
    file.write_at(0, &[1u8; 8]).unwrap();
    assert!(file.write_at(8, &[2u8; 8]).is_err());
    file.write_at(16, &[3u8; 8]).unwrap();
    let bytes = read_all(&storage, "f");
    assert_eq!(bytes[..12], [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(bytes[12..16], [0u8; 4]);
    assert_eq!(bytes[16..24], [3u8; 8]);
    assert_eq!(storage.op_count(OpKind::Write), 3);
    storage.clear_faults();
    assert!(file.write_at(64, &[0u8; 1]).is_err(), "out of bounds");
}

#[test]
fn miri_mem_storage_creates_lists_and_removes_files() {
    let storage = MemStorage::new();
    storage.create("a", 16).unwrap();
    storage.create("b", 0).unwrap();
    assert!(
        storage.create("a", 16).is_err(),
        "never truncates an existing file"
    );
    let mut names = storage.list().unwrap();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    storage.remove("a").unwrap();
    assert_eq!(storage.list().unwrap(), ["b"]);
    assert!(storage.open("a").is_err());
    storage.sync_dir().unwrap();
}
