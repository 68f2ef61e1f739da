//! End-to-end tests: directories written with the library, then `walrus-ctl` run on them as
//! a separate process, as a user would.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use support::*;

/// `orders`: 20 entries `order-000`.. with 3 read (cursor 3, persisted); `events`: 5 entries,
/// never read. The handle is dropped before returning, which releases the directory lock.
fn populate(dir: &Path) {
    let wal = open(builder(dir));
    append_orders_and_events(&wal);
    for i in 0..3 {
        let entry = wal.read_next("orders", true).unwrap().unwrap();
        assert_eq!(entry.data, format!("order-{i:03}").as_bytes());
    }
}

fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    dir
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// The file holding `payload` (which must occur once in the directory) and the file offset
/// of its entry frame: the payload follows the 32-byte frame header.
fn locate(dir: &Path, payload: &[u8]) -> (PathBuf, u64) {
    let mut found = Vec::new();
    for path in wal_files(dir) {
        let bytes = fs::read(&path).unwrap();
        for (at, window) in bytes.windows(payload.len()).enumerate() {
            if window == payload {
                found.push((path.clone(), at as u64 - 32));
            }
        }
    }
    assert_eq!(found.len(), 1, "{payload:?} should occur once: {found:?}");
    found.remove(0)
}

/// Overwrites the payload of the entry carrying `payload` with `with` (same length).
fn damage(dir: &Path, payload: &[u8], with: &[u8]) -> (PathBuf, u64) {
    assert_eq!(payload.len(), with.len());
    let (path, frame) = locate(dir, payload);
    let mut bytes = fs::read(&path).unwrap();
    let start = frame as usize + 32;
    bytes[start..start + with.len()].copy_from_slice(with);
    fs::write(&path, bytes).unwrap();
    (path, frame)
}

/// Makes the directory look like a crash left it: no clean-close marker, so a damaged tail
/// may be a torn write (after a clean close it is corruption).
fn as_after_a_crash(dir: &Path) {
    fs::remove_file(dir.join("CLEAN")).unwrap();
}

#[test]
fn info_and_stats_show_the_directory() {
    let dir = populated();
    let text = ok(dir.path(), &["info"]);
    assert!(text.contains("format version   1"), "{text}");
    assert!(text.contains("topics           2"), "{text}");
    assert!(text.contains("entries          25"), "{text}");
    assert!(text.contains("00000000000000000001.wal"), "{text}");
    // `stats` is the same command.
    assert_eq!(
        without_recovery_time(&ok(dir.path(), &["stats"])),
        without_recovery_time(&text)
    );

    let info = ok_json(dir.path(), &["info", "--json"]);
    assert_eq!(
        info["format_version"],
        u64::from(walrus_rust::FORMAT_VERSION)
    );
    assert_eq!(info["topic_count"], 2);
    assert_eq!(info["entries"], 25);
    assert_eq!(info["findings"], 0);
    assert_eq!(info["corrupt_entries"], 0);
    assert_eq!(info["file_count"], wal_files(dir.path()).len());
    let bytes = info["bytes"].as_u64().unwrap();
    let live = info["live_bytes"].as_u64().unwrap();
    let reclaimable = info["reclaimable_bytes"].as_u64().unwrap();
    assert!(bytes > 0);
    assert_eq!(live + reclaimable, bytes);
    let files = info["files"].as_array().unwrap();
    let listed: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(listed, bytes);
    assert!(info["backend"].is_string());
    let stats = ok_json(dir.path(), &["stats", "--json"]);
    assert_eq!(stats["bytes"], info["bytes"]);
}

/// The `recovery time` line differs from run to run.
fn without_recovery_time(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with("recovery time"))
        .collect()
}

#[test]
fn topics_table_and_json() {
    let dir = populated();
    let text = ok(dir.path(), &["topics"]);
    for header in ["TOPIC", "ENTRIES", "FIRST", "LAST", "PERSISTED", "LAG"] {
        assert!(text.contains(header), "{text}");
    }
    let orders = text.lines().find(|l| l.contains("orders")).unwrap();
    let cells: Vec<&str> = orders
        .split(['│', '┆'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    // TOPIC ENTRIES BYTES FIRST LAST CURSOR PERSISTED LAG
    assert_eq!(cells[0], "orders");
    assert_eq!(cells[1], "20");
    assert_eq!(&cells[3..], ["0", "19", "3", "3", "17"]);

    let json = ok_json(dir.path(), &["topics", "--json"]);
    let topics = json["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 2);
    let events = &topics[0];
    assert_eq!(events["name"], "events");
    assert_eq!(events["entries"], 5);
    assert_eq!(events["first_seq"], 0);
    assert_eq!(events["last_seq"], 4);
    assert_eq!(events["next_seq"], 5);
    assert_eq!(events["cursor"], 0);
    assert_eq!(events["persisted_cursor"], Value::Null);
    assert_eq!(events["lag"], 5);
    let orders = &topics[1];
    assert_eq!(orders["name"], "orders");
    assert_eq!(orders["persisted_cursor"], 3);
    assert_eq!(orders["lag"], 17);
    assert!(orders["bytes"].as_u64().unwrap() >= 20 * (32 + 9));
}

#[test]
fn topics_of_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ok(dir.path(), &["topics"]).starts_with("no topics"));
    let json = ok_json(dir.path(), &["topics", "--json"]);
    assert_eq!(json["topics"].as_array().unwrap().len(), 0);
}

#[test]
fn dump_formats() {
    let dir = populated();
    {
        let wal = open(builder(dir.path()));
        wal.append_for_topic("bin", &[0xff, 0x00, 0x01]).unwrap();
        wal.append_for_topic("bin", b"two\tlines\n").unwrap();
    }
    let text = ok(dir.path(), &["dump", "--topic", "orders"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20);
    assert_eq!(lines[0], "0\t9\torder-000");
    assert_eq!(lines[19], "19\t9\torder-019");

    let text = ok(
        dir.path(),
        &["dump", "--topic", "orders", "--from", "5", "--limit", "3"],
    );
    assert_eq!(text, "5\t9\torder-005\n6\t9\torder-006\n7\t9\torder-007\n");

    let text = ok(
        dir.path(),
        &["dump", "--topic", "orders", "--limit", "1", "--hex"],
    );
    assert_eq!(text, "0\t9\t6f726465722d303030\n");

    let text = ok(dir.path(), &["dump", "--topic", "bin"]);
    assert_eq!(text, "0\t3\t0xff0001\n1\t10\ttwo\\tlines\\n\n");
    let text = ok(dir.path(), &["dump", "--topic", "bin", "--utf8"]);
    assert_eq!(text, "0\t3\t\u{fffd}\\u{0}\\u{1}\n1\t10\ttwo\\tlines\\n\n");

    let text = ok(dir.path(), &["dump", "--topic", "bin", "--json"]);
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["seq"], 0);
    assert_eq!(entries[0]["len"], 3);
    assert_eq!(entries[0]["hex"], "ff0001");
    assert_eq!(entries[0]["utf8"], Value::Null);
    assert_eq!(entries[1]["utf8"], "two\tlines\n");

    // Past the end: nothing, and no error.
    assert_eq!(
        ok(dir.path(), &["dump", "--topic", "orders", "--from", "50"]),
        ""
    );
    // Dumping moves no cursor.
    let cursor = ok_json(
        dir.path(),
        &["cursor", "get", "--topic", "orders", "--json"],
    );
    assert_eq!(cursor["cursor"], 3);
}

#[test]
fn dump_pages_through_a_long_topic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(builder(dir.path()));
        for i in 0..600u32 {
            wal.append_for_topic("long", &i.to_le_bytes()).unwrap();
        }
    }
    let text = ok(dir.path(), &["dump", "--topic", "long", "--hex"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 600);
    assert_eq!(lines[599], "599\t4\t57020000");
    let text = ok(
        dir.path(),
        &["dump", "--topic", "long", "--from", "250", "--limit", "300"],
    );
    assert_eq!(text.lines().count(), 300);
    assert!(text.starts_with("250\t"));
}

#[test]
fn verify_a_clean_directory() {
    let dir = populated();
    let text = ok(dir.path(), &["verify"]);
    assert!(text.starts_with("clean: "), "{text}");
    let json = ok_json(dir.path(), &["verify", "--json"]);
    assert_eq!(json["clean"], true);
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn verify_names_a_corrupt_entry_in_the_middle() {
    let dir = populated();
    let (file, offset) = damage(dir.path(), b"order-010", b"order-X10");
    let output = ctl(dir.path(), &["verify"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.starts_with("corruption: "))
        .unwrap();
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset {offset}")), "{line}");
    assert!(text.contains("1 problem in "), "{text}");

    let json: Value =
        serde_json::from_slice(&ctl(dir.path(), &["verify", "--json"]).stdout).unwrap();
    assert_eq!(json["clean"], false);
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "corrupt_entry");
    assert_eq!(finding["corruption"], true);
    assert_eq!(finding["offset"], offset);
    assert_eq!(finding["file"], file.display().to_string());

    // Readers skip it; a repair leaves it, so verify still fails.
    let dumped = ok(dir.path(), &["dump", "--topic", "orders"]);
    assert_eq!(dumped.lines().count(), 19);
    assert!(!dumped.contains("order-X10"));
    let repaired = ok(dir.path(), &["repair", "--truncate-torn-tail"]);
    assert!(
        repaired.contains("left in place (corruption)"),
        "{repaired}"
    );
    assert_eq!(ctl(dir.path(), &["verify"]).status.code(), Some(1));
}

#[test]
fn torn_tail_dry_run_repair_then_verify() {
    let dir = populated();
    as_after_a_crash(dir.path());
    let (file, offset) = damage(dir.path(), b"order-019", &[0xa5; 9]);
    let output = ctl(dir.path(), &["verify"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.starts_with("repairable: "))
        .unwrap();
    assert!(line.contains("torn tail"), "{line}");
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset {offset}")), "{line}");

    // A dry run changes no byte.
    let before = snapshot(dir.path());
    let text = ok(dir.path(), &["repair", "--truncate-torn-tail", "--dry-run"]);
    assert!(text.contains("would cut: torn tail"), "{text}");
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(ctl(dir.path(), &["verify"]).status.code(), Some(1));

    let text = ok(dir.path(), &["repair", "--truncate-torn-tail"]);
    assert!(text.contains("cut: torn tail"), "{text}");
    assert!(text.contains(&format!("offset {offset}")), "{text}");
    assert!(text.contains("repaired: 1 cut"), "{text}");
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
    // The damaged entry is gone for good, the rest is intact.
    let dumped = ok(dir.path(), &["dump", "--topic", "orders"]);
    assert_eq!(dumped.lines().count(), 19);
    assert!(dumped.ends_with("18\t9\torder-018\n"));
    let text = ok(dir.path(), &["repair", "--truncate-torn-tail"]);
    assert!(text.contains("nothing to cut"), "{text}");
}

#[test]
fn damaged_tail_after_a_clean_close_is_corruption_and_repair_cuts_it() {
    let dir = populated();
    let (file, offset) = damage(dir.path(), b"order-019", &[0xa5; 9]);
    let output = ctl(dir.path(), &["verify", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "damaged_tail", "{json}");
    assert_eq!(finding["corruption"], true);
    assert_eq!(finding["offset"], offset);
    assert_eq!(finding["file"], file.display().to_string());

    let text = ok(dir.path(), &["repair", "--truncate-torn-tail"]);
    assert!(text.contains("cut: damaged tail"), "{text}");
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
    let dumped = ok(dir.path(), &["dump", "--topic", "orders"]);
    assert_eq!(dumped.lines().count(), 19);
}

#[test]
fn a_torn_batch_is_cut_whole() {
    let dir = populated();
    {
        let wal = open(builder(dir.path()));
        wal.batch_append_for_topic("orders", &[b"batch-a".as_slice(), b"batch-b", b"batch-c"])
            .unwrap();
    }
    // The batch's last entry torn: the two before it are a partial batch.
    as_after_a_crash(dir.path());
    damage(dir.path(), b"batch-c", b"\xff\xff\xff\xff\xff\xff\xff");
    let output = ctl(dir.path(), &["verify", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let kinds: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"torn_tail"), "{kinds:?}");
    assert!(kinds.contains(&"partial_batch"), "{kinds:?}");
    assert_eq!(
        ok(dir.path(), &["dump", "--topic", "orders"])
            .lines()
            .count(),
        20
    );

    let text = ok(dir.path(), &["repair", "--truncate-torn-tail"]);
    assert!(text.contains("cut: partial batch"), "{text}");
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
    let dumped = ok(dir.path(), &["dump", "--topic", "orders"]);
    assert_eq!(dumped.lines().count(), 20);
    assert!(!dumped.contains("batch-"));
}

#[test]
fn repair_needs_its_flag() {
    let dir = populated();
    let output = ctl(dir.path(), &["repair"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--truncate-torn-tail"));
}

#[test]
fn cursor_set_is_honoured_by_the_library() {
    let dir = populated();
    let text = ok(
        dir.path(),
        &["cursor", "set", "--topic", "orders", "--to", "5"],
    );
    assert_eq!(text, "cursor of topic \"orders\" moved from 3 to 5\n");
    let text = ok(dir.path(), &["cursor", "get", "--topic", "orders"]);
    assert!(text.contains("cursor     5"), "{text}");
    assert!(text.contains("persisted  5"), "{text}");
    assert!(text.contains("lag        15"), "{text}");
    {
        let wal = open(builder(dir.path()));
        let entry = wal.read_next("orders", true).unwrap().unwrap();
        assert_eq!(entry.data, b"order-005");
    }
    // The read above moved the cursor to 6 and persisted it.
    let json = ok_json(
        dir.path(),
        &["cursor", "get", "--topic", "orders", "--json"],
    );
    assert_eq!(json["topic"], "orders");
    assert_eq!(json["cursor"], 6);
    assert_eq!(json["persisted_cursor"], 6);
    assert_eq!(json["first_seq"], 0);
    assert_eq!(json["next_seq"], 20);
    assert_eq!(json["lag"], 14);

    let text = ok(dir.path(), &["cursor", "reset", "--topic", "orders"]);
    assert_eq!(text, "cursor of topic \"orders\" moved from 6 to 0\n");
    {
        let wal = open(builder(dir.path()));
        let entry = wal.read_next("orders", true).unwrap().unwrap();
        assert_eq!(entry.data, b"order-000");
    }
    let text = ok(
        dir.path(),
        &["cursor", "set", "--topic", "events", "--to", "latest"],
    );
    assert_eq!(text, "cursor of topic \"events\" moved from 0 to 5\n");
    let text = ok(
        dir.path(),
        &["cursor", "set", "--topic", "events", "--to", "99"],
    );
    assert!(text.contains("position 99 is past the end"), "{text}");
    {
        let wal = open(builder(dir.path()));
        assert!(wal.read_next("events", true).unwrap().is_none());
    }

    let output = ctl(
        dir.path(),
        &["cursor", "set", "--topic", "orders", "--to", "first"],
    );
    assert_eq!(output.status.code(), Some(2));
}

/// A directory where the first segment file's blocks are all behind the cursor but the file
/// is still on disk: the reader stopped exactly at the end of the file's last block, and a
/// reader lets a block go only when it reads past it.
fn with_a_consumed_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(builder(dir.path()));
    for i in 0..200 {
        wal.append_for_topic(
            "bulk",
            format!("entry-{i:04}-{}", "x".repeat(80)).as_bytes(),
        )
        .unwrap();
    }
    let first = wal.files()[0].name.clone();
    let consumed = |wal: &Held| {
        wal.files()
            .iter()
            .find(|f| f.name == first)
            .map_or(0, |f| f.consumed)
    };
    // Reading the first entry of the second block lets the first block go: that tells how
    // many entries a block holds.
    let mut per_block = 0;
    while consumed(&wal) == 0 {
        wal.read_next("bulk", true).unwrap().unwrap();
        per_block += 1;
    }
    per_block -= 1;
    // The file holds two blocks: stop after the last entry of the second.
    for _ in per_block + 1..2 * per_block {
        wal.read_next("bulk", true).unwrap().unwrap();
    }
    drop(wal);
    assert!(dir.path().join(&first).exists());
    dir
}

#[test]
fn reclaimable_files_and_purge() {
    let dir = with_a_consumed_file();
    let files_before = wal_files(dir.path());
    let info = ok_json(dir.path(), &["info", "--json"]);
    let first = &info["files"][0];
    assert_eq!(first["name"], "00000000000000000001.wal");
    assert_eq!(first["live"], false);
    assert_eq!(first["extents"], Value::Null);
    let reclaimable = info["reclaimable_bytes"].as_u64().unwrap();
    assert_eq!(reclaimable, first["bytes"].as_u64().unwrap());
    assert_eq!(
        info["live_bytes"].as_u64().unwrap() + reclaimable,
        info["bytes"].as_u64().unwrap()
    );
    let text = ok(dir.path(), &["info"]);
    let row = text
        .lines()
        .find(|l| l.contains("00000000000000000001.wal"))
        .unwrap();
    assert!(row.contains("reclaimable"), "{text}");
    // Read-only commands leave the file alone.
    assert_eq!(wal_files(dir.path()), files_before);
    let dry = ok(dir.path(), &["repair", "--truncate-torn-tail", "--dry-run"]);
    assert!(
        dry.contains("would delete: 00000000000000000001.wal"),
        "{dry}"
    );

    let text = ok(dir.path(), &["purge"]);
    assert!(text.contains("deleted: 00000000000000000001.wal"), "{text}");
    assert!(text.contains("purged 1 segment file, "), "{text}");
    assert!(text.contains(&format!("({reclaimable} bytes)")), "{text}");
    assert!(!dir.path().join("00000000000000000001.wal").exists());
    let info = ok_json(dir.path(), &["info", "--json"]);
    assert_eq!(info["reclaimable_bytes"], 0);
    assert_eq!(info["file_count"], files_before.len() - 1);
    let text = ok(dir.path(), &["purge"]);
    assert!(text.contains("purged 0 segment files"), "{text}");
    // Nothing the cursor has not passed went away.
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
}

#[test]
fn a_missing_directory_is_one_line_and_is_not_created() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("nope");
    for args in [
        &["info"][..],
        &["verify"],
        &["purge"],
        &["cursor", "reset", "--topic", "t"],
    ] {
        let line = error_line(&missing, args);
        assert!(line.contains("does not exist"), "{line}");
        assert!(line.contains(&missing.display().to_string()), "{line}");
        assert!(!missing.exists());
    }
}

#[test]
fn keys_name_the_instance_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(builder(dir.path()).key("tenant-a"));
        wal.append_for_topic("t", b"hello").unwrap();
    }
    let text = ok(dir.path(), &["--key", "tenant-a", "dump", "--topic", "t"]);
    assert_eq!(text, "0\t5\thello\n");
    // `--key` may also follow the subcommand.
    let text = ok(dir.path(), &["dump", "--topic", "t", "--key", "tenant-a"]);
    assert_eq!(text, "0\t5\thello\n");
    let line = error_line(dir.path(), &["--key", "tenant-b", "topics"]);
    assert!(line.contains("does not exist"), "{line}");
    assert!(line.contains("tenant-b"), "{line}");
}

#[test]
fn an_unknown_topic_is_one_line() {
    let dir = populated();
    for args in [
        &["dump", "--topic", "nope"][..],
        &["cursor", "get", "--topic", "nope"],
        &["cursor", "set", "--topic", "nope", "--to", "1"],
        &["cursor", "reset", "--topic", "nope"],
    ] {
        let line = error_line(dir.path(), args);
        assert!(line.contains("unknown topic \"nope\""), "{line}");
        assert!(line.contains("events, orders"), "{line}");
    }
}

#[test]
fn a_directory_in_use_is_one_line() {
    let dir = populated();
    let held = open(builder(dir.path()));
    for args in [
        &["info"][..],
        &["verify"],
        &["dump", "--topic", "orders"],
        &["purge"],
    ] {
        let line = one_error_line(&spawn(dir.path(), args));
        assert!(line.contains("in use by another process"), "{line}");
        assert!(line.contains(&dir.path().display().to_string()), "{line}");
    }
    drop(held);
    ok(dir.path(), &["info"]);
}

#[test]
fn missing_dir_option_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_walrus-ctl"))
        .arg("topics")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--dir"));
}
