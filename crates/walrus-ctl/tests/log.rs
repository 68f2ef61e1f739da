//! End-to-end tests of the commands on positions: `dump --from/--to` (read by position) and
//! `truncate --after`. Directories are written with the library, then `walrus-ctl` runs on
//! them as a separate process, as a user would.

mod support;

use std::{fs, path::Path};

use serde_json::Value;
use support::*;

/// `orders`: 20 entries `order-000`.. (9 bytes each), never read; `events`: 5 entries.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(builder(dir.path()));
    append_orders_and_events(&wal);
    dir
}

/// The `orders` lines `order-NNN` of positions `range`, as plain `dump` prints them.
fn order_lines(range: std::ops::RangeInclusive<u64>) -> String {
    range.map(|i| format!("{i}\t9\torder-{i:03}\n")).collect()
}

#[test]
fn dump_prints_only_the_range_in_order() {
    let dir = populated();
    let dump = |args: &[&str]| {
        let mut all = vec!["dump", "--topic", "orders"];
        all.extend_from_slice(args);
        ok(dir.path(), &all)
    };
    // Both ends included.
    assert_eq!(dump(&["--from", "5", "--to", "8"]), order_lines(5..=8));
    assert_eq!(dump(&["--from", "7", "--to", "7"]), order_lines(7..=7));
    // One end only: from the first position, or to the last.
    assert_eq!(dump(&["--to", "2"]), order_lines(0..=2));
    assert_eq!(dump(&["--from", "17"]), order_lines(17..=19));
    // Past the end: clamped, or nothing at all (not an error).
    assert_eq!(dump(&["--from", "18", "--to", "99"]), order_lines(18..=19));
    assert_eq!(dump(&["--from", "50", "--to", "60"]), "");
    // --limit still caps the count.
    assert_eq!(
        dump(&["--from", "3", "--to", "15", "--limit", "2"]),
        order_lines(3..=4)
    );
    // The output formats are those of plain dump.
    assert_eq!(
        dump(&["--from", "1", "--to", "1", "--hex"]),
        "1\t9\t6f726465722d303031\n"
    );
    let entries: Vec<Value> = dump(&["--from", "10", "--to", "12", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [10, 11, 12]);
    assert_eq!(entries[0]["len"], 9);
    assert_eq!(entries[0]["utf8"], "order-010");
    assert_eq!(entries[0]["hex"], "6f726465722d303130");
    // Without --from/--to: every entry, as before.
    assert_eq!(dump(&[]), order_lines(0..=19));
    // A range read moves no cursor.
    let cursor: Value = serde_json::from_str(&ok(
        dir.path(),
        &["cursor", "get", "--topic", "orders", "--json"],
    ))
    .unwrap();
    assert_eq!(cursor["cursor"], 0);
    assert_eq!(cursor["persisted_cursor"], Value::Null);

    // An empty range is a usage mistake, said in one line.
    let line = error_line(
        dir.path(),
        &["dump", "--topic", "orders", "--from", "9", "--to", "8"],
    );
    assert!(line.contains("--to 8 is before --from 9"), "{line}");
    let line = error_line(dir.path(), &["dump", "--topic", "nope", "--from", "1"]);
    assert!(line.contains("unknown topic \"nope\""), "{line}");
    let help = ok(dir.path(), &["dump", "--help"]);
    assert!(help.contains("both included"), "{help}");
}

#[test]
fn dump_a_range_across_many_blocks_and_below_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(builder(dir.path()));
        for i in 0..600u32 {
            wal.append_for_topic("long", format!("entry-{i:04}").as_bytes())
                .unwrap();
        }
        wal.topic_log("long").unwrap().purge_before(100).unwrap();
    }
    let out = ok(
        dir.path(),
        &["dump", "--topic", "long", "--from", "250", "--to", "549"],
    );
    let expected: String = (250..=549)
        .map(|i| format!("{i}\t10\tentry-{i:04}\n"))
        .collect();
    assert_eq!(out, expected);
    // Positions below the purge floor are not readable: the range starts at the floor, and
    // stderr says why.
    let output = ctl(
        dir.path(),
        &["dump", "--topic", "long", "--from", "90", "--to", "102"],
    );
    assert_eq!(output.status.code(), Some(0));
    let out = text(&output.stdout);
    let firsts: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(firsts, ["100", "101", "102"]);
    let note = text(&output.stderr);
    assert!(note.contains("positions before 100"), "{note}");
}

#[test]
fn truncate_dry_run_changes_nothing() {
    let dir = populated();
    let before = snapshot(dir.path());
    let out = ok(
        dir.path(),
        &[
            "truncate",
            "--topic",
            "orders",
            "--after",
            "11",
            "--dry-run",
        ],
    );
    assert_eq!(
        out,
        "would remove 8 entries of topic \"orders\", positions 12 to 19, \
         72 B of payload (72 bytes)\n\
         dry run: nothing was changed\n"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(
        ok(dir.path(), &["dump", "--topic", "orders"]),
        order_lines(0..=19)
    );
    // Nothing after the last position.
    let out = ok(
        dir.path(),
        &[
            "truncate",
            "--topic",
            "orders",
            "--after",
            "19",
            "--dry-run",
        ],
    );
    assert_eq!(
        out,
        "nothing to remove: the last position of topic \"orders\" is 19\n\
         dry run: nothing was changed\n"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn truncate_removes_the_suffix() {
    let dir = populated();
    {
        // A persisted cursor (the purge floor) before the cut stays.
        let wal = open(builder(dir.path()));
        for _ in 0..5 {
            wal.read_next("orders", true).unwrap().unwrap();
        }
    }
    let out = ok(
        dir.path(),
        &["truncate", "--topic", "orders", "--after", "11"],
    );
    assert_eq!(
        out,
        "removed 8 entries of topic \"orders\", positions 12 to 19, 72 B of payload (72 bytes)\n\
         topic \"orders\" now ends at position 11; the next append gets 12\n"
    );
    {
        // Reopened by the library: the suffix is gone on disk, the rest is intact.
        let wal = open(builder(dir.path()));
        let log = wal.topic_log("orders").unwrap();
        assert_eq!(log.last(), Some(11));
        assert_eq!(log.next_position(), 12);
        assert_eq!(log.read_at(11).unwrap().unwrap(), b"order-011");
        assert_eq!(log.read_at(12).unwrap(), None);
        // Readable from the floor (5) on.
        let kept = log.read_range(0.., usize::MAX).unwrap();
        assert_eq!(kept.len(), 7);
        assert_eq!(kept[0], (5, b"order-005".to_vec()));
        assert_eq!(log.append(b"order-new").unwrap(), 12);
        let events = wal.topic_log("events").unwrap();
        assert_eq!(events.last(), Some(4));
    }
    let cursor: Value = serde_json::from_str(&ok(
        dir.path(),
        &["cursor", "get", "--topic", "orders", "--json"],
    ))
    .unwrap();
    assert_eq!(cursor["persisted_cursor"], 5);
    let expected = order_lines(0..=11) + "12\t9\torder-new\n";
    assert_eq!(ok(dir.path(), &["dump", "--topic", "orders"]), expected);
    assert_eq!(
        ok(
            dir.path(),
            &["dump", "--topic", "orders", "--from", "10", "--to", "12"]
        ),
        "10\t9\torder-010\n11\t9\torder-011\n12\t9\torder-new\n"
    );
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
    let out = ok(
        dir.path(),
        &["truncate", "--topic", "orders", "--after", "40"],
    );
    assert_eq!(
        out,
        "nothing to remove: the last position of topic \"orders\" is 12\n"
    );
}

#[test]
fn truncate_below_the_floor_fails() {
    let dir = populated();
    {
        let wal = open(builder(dir.path()));
        wal.topic_log("orders").unwrap().purge_before(10).unwrap();
    }
    let before = snapshot(dir.path());
    for dry_run in [false, true] {
        let mut args = vec!["truncate", "--topic", "orders", "--after", "5"];
        if dry_run {
            args.push("--dry-run");
        }
        let line = error_line(dir.path(), &args);
        assert!(
            line.contains("cannot truncate topic \"orders\" after position 5"),
            "{line}"
        );
        assert!(line.contains("the purge floor is 10"), "{line}");
        assert!(line.contains("--after must be at least 9"), "{line}");
    }
    assert_eq!(snapshot(dir.path()), before);
    // Just below the floor is allowed: every readable entry goes.
    let out = ok(
        dir.path(),
        &["truncate", "--topic", "orders", "--after", "9"],
    );
    assert!(
        out.starts_with("removed 10 entries of topic \"orders\", positions 10 to 19, "),
        "{out}"
    );
    let wal = open(builder(dir.path()));
    let log = wal.topic_log("orders").unwrap();
    assert_eq!(log.first(), None);
    assert_eq!(log.next_position(), 10);
}

#[test]
fn truncate_errors_are_one_line() {
    let dir = populated();
    for dry_run in [false, true] {
        let mut args = vec!["truncate", "--topic", "nope", "--after", "1"];
        if dry_run {
            args.push("--dry-run");
        }
        let line = error_line(dir.path(), &args);
        assert!(line.contains("unknown topic \"nope\""), "{line}");
        assert!(line.contains("events, orders"), "{line}");
    }
    let missing = dir.path().join("nope");
    let line = error_line(&missing, &["truncate", "--topic", "orders", "--after", "1"]);
    assert!(line.contains("does not exist"), "{line}");
    assert!(!missing.exists());
    // --after is required.
    let output = ctl(dir.path(), &["truncate", "--topic", "orders"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--after"));

    let held = open(builder(dir.path()));
    for dry_run in [false, true] {
        let mut args = vec!["truncate", "--topic", "orders", "--after", "1"];
        if dry_run {
            args.push("--dry-run");
        }
        let line = one_error_line(&spawn(dir.path(), &args));
        assert!(line.contains("in use by another process"), "{line}");
    }
    drop(held);
    assert_eq!(
        ok(dir.path(), &["dump", "--topic", "orders"]),
        order_lines(0..=19)
    );
}

/// Overwrites the payload `payload` (which must occur once in the directory's segment
/// files) with `with`, of the same length.
fn damage(dir: &Path, payload: &[u8], with: &[u8]) {
    assert_eq!(payload.len(), with.len());
    let mut found = 0;
    for (path, mut bytes) in snapshot(dir) {
        if path.extension().is_none_or(|e| e != "wal") {
            continue;
        }
        let Some(at) = bytes.windows(payload.len()).position(|w| w == payload) else {
            continue;
        };
        bytes[at..at + with.len()].copy_from_slice(with);
        fs::write(&path, bytes).unwrap();
        found += 1;
    }
    assert_eq!(found, 1, "{payload:?} should occur once");
}

#[test]
fn truncate_cuts_off_a_damaged_entry() {
    let dir = populated();
    damage(dir.path(), b"order-017", b"order-X17");
    // A range read does not skip the damaged entry: it is an error naming the file.
    let line = error_line(
        dir.path(),
        &["dump", "--topic", "orders", "--from", "12", "--to", "17"],
    );
    assert!(line.contains("positions 12 to 17"), "{line}");
    assert!(line.contains(".wal"), "{line}");
    assert_eq!(ctl(dir.path(), &["verify"]).status.code(), Some(1));

    // The bytes cannot be counted, but the entries can, and the truncation goes on.
    let output = ctl(
        dir.path(),
        &[
            "truncate",
            "--topic",
            "orders",
            "--after",
            "14",
            "--dry-run",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        "would remove 5 entries of topic \"orders\", positions 15 to 19, \
         payload bytes unknown\n\
         dry run: nothing was changed\n"
    );
    let note = text(&output.stderr);
    assert!(note.contains("cannot count the payload bytes"), "{note}");
    let out = ok(
        dir.path(),
        &["truncate", "--topic", "orders", "--after", "14"],
    );
    assert!(out.starts_with("removed 5 entries"), "{out}");
    assert!(ok(dir.path(), &["verify"]).starts_with("clean: "));
    assert_eq!(
        ok(dir.path(), &["dump", "--topic", "orders", "--from", "12"]),
        order_lines(12..=14)
    );
}
