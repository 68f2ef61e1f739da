//! Unit tests of opening an engine on damaged or forged files: regressions found by the fuzz
//! targets (`fuzz/`, docs: shared RELIABILITY.md T8), each named after its symptom; and the
//! file geometry an engine picks for its schedule.

use std::sync::Arc;

use walrus_alloc::{AllocConfig, FILE_HEADER_BYTES, file_name};
use walrus_storage::{BackendKind, FrameHeader, MemStorage, Storage, encode_frame};

use crate::{
    Engine, EngineConfig, Error, FsyncSchedule, ReadConsistency,
    format::{CURSOR_FIXED_BYTES, CURSOR_KIND, ENTRY_KIND, block_header_len, cursor_file_name},
};

fn open(storage: &MemStorage) -> Arc<Engine> {
    let config = EngineConfig {
        dir: "<test>".into(),
        backend: BackendKind::Mem,
        alloc: AllocConfig {
            block_bytes: 1024,
            blocks_per_file: 4,
            small_unit_bytes: 4096,
            lanes: 1,
            precreate: false,
            quiet: true,
        },
        fsync: FsyncSchedule::SyncEach,
        quiet: true,
        ..EngineConfig::default()
    };
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    Engine::open_with_storage(shared, config).unwrap()
}

fn frame(kind: u8, aux: u32, seq: u64, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        kind,
        flags: 0,
        aux,
        seq,
    };
    let mut out = Vec::new();
    encode_frame(&mut out, &header, payload);
    out
}

/// Writes a valid cursor slot (slot 0, newer generation) for topic `t` at `next_seq`.
fn forge_cursor(storage: &MemStorage, next_seq: u64) {
    let mut payload = vec![0u8; CURSOR_FIXED_BYTES];
    payload[0..8].copy_from_slice(&next_seq.to_le_bytes());
    payload.extend_from_slice(b"t");
    let slot = frame(CURSOR_KIND, 0, 2, &payload);
    let file = storage.open(&cursor_file_name(0)).unwrap();
    file.write_at(0, &slot).unwrap();
    file.sync().unwrap();
}

#[test]
fn forged_cursor_at_the_last_sequence_number_fails_appends_instead_of_panicking() {
    for (next_seq, appends_ok) in [(u64::MAX, 0), (u64::MAX - 1, 1)] {
        let storage = MemStorage::new();
        {
            let engine = open(&storage);
            engine.append("t", b"x", FsyncSchedule::SyncEach).unwrap();
            let mode = ReadConsistency::StrictlyAtOnce;
            engine.read_next("t", true, mode).unwrap().unwrap();
        }
        forge_cursor(&storage, next_seq);
        let engine = open(&storage);
        for _ in 0..appends_ok {
            engine.append("t", b"y", FsyncSchedule::SyncEach).unwrap();
        }
        let err = engine.append("t", b"z", FsyncSchedule::SyncEach);
        assert!(matches!(err, Err(Error::SequenceExhausted(_))), "{err:?}");
        let batch: [&[u8]; 2] = [b"1", b"2"];
        let err = engine.batch_append("t", &batch, FsyncSchedule::SyncEach);
        assert!(matches!(err, Err(Error::SequenceExhausted(_))), "{err:?}");
    }
}

#[test]
fn entry_numbered_u64_max_is_not_recovered_and_does_not_panic() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage);
        engine.append("t", b"a", FsyncSchedule::SyncEach).unwrap();
    }
    // Replace the first entry by a valid frame carrying the largest sequence number, and wipe
    // the block's seal record so that recovery scans it.
    let at = FILE_HEADER_BYTES + block_header_len("t");
    let file = storage.open(&file_name(1)).unwrap();
    file.write_at(at, &frame(ENTRY_KIND, 0, u64::MAX, b"a"))
        .unwrap();
    let seal_at = FILE_HEADER_BYTES + 1024 - crate::format::SEAL_BYTES;
    file.write_at(seal_at, &[0u8; crate::format::SEAL_BYTES as usize])
        .unwrap();
    file.sync().unwrap();
    let engine = open(&storage);
    assert_eq!(engine.read_from("t", 0, usize::MAX).unwrap(), []);
    engine.append("t", b"b", FsyncSchedule::SyncEach).unwrap();
    let entries = engine.read_from("t", 0, usize::MAX).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].seq, 0);
}

#[test]
fn cursor_slot_naming_a_topic_longer_than_the_limit_is_ignored_not_a_panic() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage);
        engine.append("t", b"x", FsyncSchedule::SyncEach).unwrap();
        let mode = ReadConsistency::StrictlyAtOnce;
        engine.read_next("t", true, mode).unwrap().unwrap();
    }
    // A valid slot frame whose name is longer than any topic may be (it still fits the slot).
    let long = "n".repeat(crate::TOPIC_NAME_BYTES_MAX + 20);
    let mut payload = vec![0u8; CURSOR_FIXED_BYTES];
    payload.extend_from_slice(long.as_bytes());
    let file = storage.open(&cursor_file_name(0)).unwrap();
    file.write_at(0, &frame(CURSOR_KIND, 0, 2, &payload))
        .unwrap();
    file.sync().unwrap();
    let engine = open(&storage);
    assert!(engine.topic_info_of(&long).is_none());
    // Before the fix the topic existed, took appends, and persisting its cursor panicked.
    assert!(engine.append(&long, b"y", FsyncSchedule::SyncEach).is_err());
    let mode = ReadConsistency::StrictlyAtOnce;
    assert!(engine.read_next(&long, true, mode).unwrap().is_none());
}

#[test]
fn cursor_slot_with_a_generation_near_u64_max_is_ignored_not_a_panic() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage);
        engine.append("t", b"x", FsyncSchedule::SyncEach).unwrap();
        let mode = ReadConsistency::StrictlyAtOnce;
        engine.read_next("t", true, mode).unwrap().unwrap();
    }
    // The first persist wrote generation 1 into the second half; forge the first half with
    // the largest generation and a cursor of 0.
    let mut payload = vec![0u8; CURSOR_FIXED_BYTES];
    payload.extend_from_slice(b"t");
    let file = storage.open(&cursor_file_name(0)).unwrap();
    file.write_at(0, &frame(CURSOR_KIND, 0, u64::MAX, &payload))
        .unwrap();
    file.sync().unwrap();
    {
        let engine = open(&storage);
        assert_eq!(
            engine.topic_info_of("t").unwrap().cursor,
            1,
            "the valid slot wins"
        );
        engine.append("t", b"y", FsyncSchedule::SyncEach).unwrap();
        // Before the fix this persist computed u64::MAX + 1 and panicked.
        let mode = ReadConsistency::StrictlyAtOnce;
        let entry = engine.read_next("t", true, mode).unwrap().unwrap();
        assert_eq!((entry.seq, &entry.data[..]), (1, &b"y"[..]));
    }
    assert_eq!(open(&storage).topic_info_of("t").unwrap().cursor, 2);
}

#[test]
fn block_header_whose_padding_overruns_an_odd_sized_block_is_damage_not_a_panic() {
    let storage = MemStorage::new();
    {
        let engine = open(&storage);
        engine.append("t", b"x", FsyncSchedule::SyncEach).unwrap();
    }
    // Rewrite the file header with 33-byte blocks: block 0 then holds exactly the 33 bytes of
    // the header frame of "t" (32 + 1), whose padding runs 7 bytes past the block. Before the
    // fix recovery computed `extent length - frame length` and panicked.
    let mut payload = [0u8; 24];
    payload[0..8].copy_from_slice(&1u64.to_le_bytes());
    payload[8..16].copy_from_slice(&33u64.to_le_bytes());
    payload[16..20].copy_from_slice(&4u32.to_le_bytes());
    let file = storage.open(&file_name(1)).unwrap();
    file.write_at(0, &frame(walrus_alloc::FILE_HEADER_KIND, 0, 0, &payload))
        .unwrap();
    file.sync().unwrap();
    let engine = open(&storage);
    assert!(
        engine
            .findings()
            .iter()
            .any(|f| matches!(f.kind, crate::FindingKind::DamagedBlockHeader)),
        "{:?}",
        engine.findings()
    );
    assert_eq!(engine.read_from("t", 0, usize::MAX).unwrap(), []);
}

#[test]
fn sync_each_files_stay_within_one_ext4_extent() {
    use super::{SYNC_EACH_FILE_BYTES_MAX, sync_each_blocks_per_file};
    let file_bytes = |c: AllocConfig| {
        FILE_HEADER_BYTES + c.block_bytes * u64::from(sync_each_blocks_per_file(c))
    };
    // The defaults: 11 blocks of 10 MiB instead of 100.
    let default = AllocConfig::default();
    assert_eq!(sync_each_blocks_per_file(default), 11);
    assert!(file_bytes(default) <= SYNC_EACH_FILE_BYTES_MAX);
    // Fewer blocks than fit are kept; a block larger than the cap still gets a file.
    let few = AllocConfig {
        blocks_per_file: 4,
        ..default
    };
    assert_eq!(sync_each_blocks_per_file(few), 4);
    let huge = AllocConfig {
        block_bytes: 256 << 20,
        ..default
    };
    assert_eq!(sync_each_blocks_per_file(huge), 1);
}
