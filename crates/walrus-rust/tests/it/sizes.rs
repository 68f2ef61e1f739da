//! Entry sizes: empty entries, entries larger than a block, the size limit.

use walrus_rust::FsyncSchedule;

use crate::support::*;

#[test]
fn zero_byte_entries_round_trip_and_survive_restart() {
    each_config(|dir, fd, schedule| {
        {
            let wal = open(dir, fd, schedule, strict());
            wal.append_for_topic("t", b"").unwrap();
            wal.batch_append_for_topic("t", &[b"", b"x", b""]).unwrap();
            let peek = wal.read_next("t", false).unwrap().unwrap();
            assert!(peek.data.is_empty());
        }
        let wal = open(dir, fd, schedule, strict());
        assert_eq!(
            drain(&wal, "t"),
            [vec![], vec![], b"x".to_vec(), vec![]],
            "fd={fd} {schedule:?}"
        );
    });
}

#[test]
fn entries_of_25_mib_survive_restart_on_both_backends() {
    for fd in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..25 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        {
            let wal = open(dir.path(), fd, FsyncSchedule::SyncEach, strict());
            wal.append_for_topic("t", b"before").unwrap();
            wal.append_for_topic("t", &big).unwrap();
            wal.append_for_topic("t", b"after").unwrap();
            wal.append_for_topic("other", b"neighbour").unwrap();
        }
        let wal = open(dir.path(), fd, FsyncSchedule::SyncEach, strict());
        assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, b"before");
        let read = wal.read_next("t", true).unwrap().unwrap().data;
        assert!(read == big, "25 MiB entry came back different (fd={fd})");
        assert_eq!(wal.read_next("t", true).unwrap().unwrap().data, b"after");
        assert_eq!(drain(&wal, "other"), [b"neighbour".to_vec()]);
    }
}

#[test]
fn first_entry_larger_than_a_block_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![9u8; 200 * 1024];
    {
        let wal = open_small(dir.path(), true, FsyncSchedule::SyncEach, strict());
        wal.append_for_topic("t", &big).unwrap();
        wal.append_for_topic("u", b"later topic in the same file")
            .unwrap();
    }
    let wal = open_small(dir.path(), true, FsyncSchedule::SyncEach, strict());
    assert_eq!(drain(&wal, "t"), [big]);
    assert_eq!(drain(&wal, "u").len(), 1);
}

#[test]
fn entry_over_the_limit_is_invalid_input_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), true, FsyncSchedule::NoFsync, strict());
    let too_big = vec![0u8; walrus_rust::ENTRY_BYTES_MAX + 1];
    let err = wal.append_for_topic("t", &too_big).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains(&walrus_rust::ENTRY_BYTES_MAX.to_string()),
        "{err}"
    );
    let err = wal
        .batch_append_for_topic("t", &[b"ok", &too_big])
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        wal.read_next("t", true).unwrap().is_none(),
        "nothing of the batch was written"
    );
}
