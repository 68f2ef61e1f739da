//! Writes the seed corpus of every fuzz target under the directory given as the only
//! argument (`cargo xtask fuzz --seed-corpus` passes `fuzz/corpus`): a few valid frames and
//! scans, real WAL directories as dir images, real cursor files, and real walrus-rust 0.2.0
//! directories as 0.2.0 images. Deterministic, so rerunning it rewrites the same files.
//!
//! 0.2.0 finds its directory only through `WALRUS_DATA_DIR`, read when an instance is made,
//! and setting a variable in this process would need `unsafe`: this binary runs itself as a
//! child (`seed_corpus --v020-child SCENARIO`) with the variable set to a fresh directory.

use std::{
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    process::Command,
};

use walrus_fuzz::v020::{
    FLAG_NO_CURSOR_INDEX, FLAG_REFRESH_CHECKSUMS as V020_FLAG_REFRESH, SLOTS, SparseFile,
    V020Image, WAL_INDEX_FILE, data_file_name,
};
use walrus_fuzz::{
    CLEAN_MARKER, CURSOR_FILE_NAME, DirImage, FLAG_REFRESH_CHECKSUMS, Files, TOPICS, build_wal,
    build_wal_with_blocks,
};
use walrus_storage::{FrameHeader, encode_frame};
use walrus_v020::format::{BLOCK_BYTES, CURSOR_INDEX_FILE, is_data_file_name};
use walrus_v020_orig::{ReadConsistency, WalIndex, Walrus};

/// Must match `WAL_ENTRIES` of `fuzz_targets/cursor_file.rs`, whose WAL the cursor seeds
/// come from.
const CURSOR_WAL_ENTRIES: usize = 24;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    fs::write(dir.join(name), bytes).expect("write a seed");
}

fn frame(kind: u8, seq: u64, aux: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = FrameHeader {
        kind,
        flags: 0,
        aux,
        seq,
    };
    encode_frame(&mut out, &header, payload);
    out
}

fn frame_seeds(dir: &Path) {
    let entry = frame(0x11, 7, 1, b"an entry payload");
    write(dir, "frame_decode", "entry", &entry);
    write(
        dir,
        "frame_decode",
        "block_header",
        &frame(0x10, 0, 1, b"alpha"),
    );
    write(
        dir,
        "frame_decode",
        "empty_payload",
        &frame(0x11, 0, 0, b""),
    );
    // Three entries, the middle one damaged, then zeros: a scan with a resync.
    let mut scan = frame(0x11, 1, 1, b"first");
    let damaged_at = scan.len() + 40;
    scan.extend(frame(0x11, 2, 1, b"second, to be damaged"));
    scan[damaged_at] ^= 0x40;
    scan.extend(frame(0x11, 3, 1, b"third"));
    scan.extend([0u8; 64]);
    write(dir, "frame_decode", "scan_with_damage", &scan);
    // A torn tail: the last frame cut short.
    let mut torn = entry.clone();
    torn.extend(&frame(0x11, 8, 1, b"cut off")[..20]);
    write(dir, "frame_decode", "torn_tail", &torn);
}

fn image(files: &Files, flags: u8) -> Vec<u8> {
    DirImage {
        flags,
        files: files.clone(),
    }
    .encode()
}

fn dir_seeds(dir: &Path) {
    let small = build_wal(12, true);
    let larger = build_wal(40, true);
    let mut crashed = larger.clone();
    crashed.remove(CLEAN_MARKER);
    write(dir, "wal_dir_open", "small", &image(&small, 0));
    write(
        dir,
        "wal_dir_open",
        "small_refresh",
        &image(&small, FLAG_REFRESH_CHECKSUMS),
    );
    write(dir, "wal_dir_open", "larger", &image(&larger, 0));
    write(
        dir,
        "wal_dir_open",
        "crashed_refresh",
        &image(&crashed, FLAG_REFRESH_CHECKSUMS),
    );
    write(dir, "wal_dir_open", "empty", &[]);
    // Blocks of a size that is not a multiple of 8 (a valid configuration): frames stay
    // aligned to their block's start, not to the file.
    let odd = build_wal_with_blocks(30, true, 1001);
    write(
        dir,
        "wal_dir_open",
        "odd_blocks_refresh",
        &image(&odd, FLAG_REFRESH_CHECKSUMS),
    );
}

fn cursor_seeds(dir: &Path) {
    let wal = build_wal(CURSOR_WAL_ENTRIES, true);
    let cursor = &wal[CURSOR_FILE_NAME];
    // The slots in use: one pair per topic, 512 bytes each.
    let used = &cursor[..TOPICS.len() * 512];
    for (name, flags) in [
        ("as_is", 0u8),
        ("refresh", 1),
        ("short_refresh", 3),
        ("crashed", 5),
    ] {
        let mut seed = vec![flags];
        seed.extend_from_slice(used);
        write(dir, "cursor_file", name, &seed);
    }
}

/// The op_sequence target decodes its input with `arbitrary`: any bytes are a valid input,
/// so its seeds are a few deterministic pseudo-random byte strings of different lengths.
fn op_seeds(dir: &Path) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in [64usize, 256, 1024] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        write(dir, "op_sequence", &format!("random_{len}"), &bytes);
    }
}

/// The 0.2.0 directories the v020_reader seeds are made from, each written by the real
/// 0.2.0 crate in a child process (see [`v020_child`]).
const V020_SCENARIOS: &[&str] = &["one_topic", "two_topics", "restart", "long_topic_batch"];

/// Payload `k` of `topic`: deterministic bytes of 16 to 195 bytes.
fn v020_payload(topic: &str, k: usize) -> Vec<u8> {
    let len = 16 + (k * 53) % 180;
    let mut data = format!("{topic}#{k}:").into_bytes();
    data.extend((0..len).map(|i| (i * 7 + k) as u8));
    data.truncate(len);
    data
}

fn v020_open(mode: ReadConsistency) -> Walrus {
    Walrus::with_consistency(mode).expect("0.2.0 open")
}

fn v020_append(wal: &Walrus, topic: &str, range: std::ops::Range<usize>) {
    for k in range {
        wal.append_for_topic(topic, &v020_payload(topic, k))
            .expect("0.2.0 append");
    }
}

fn v020_read(wal: &Walrus, topic: &str, n: usize) {
    for _ in 0..n {
        wal.read_next(topic, true).expect("0.2.0 read");
    }
}

/// The child side: runs `scenario` with 0.2.0 in `WALRUS_DATA_DIR`.
fn v020_child(scenario: &str) {
    let strict = ReadConsistency::StrictlyAtOnce;
    match scenario {
        // One topic, a cursor persisted inside the writer's active block (a tail position),
        // and a user WalIndex.
        "one_topic" => {
            let wal = v020_open(strict);
            v020_append(&wal, "orders", 0..24);
            v020_read(&wal, "orders", 5);
            let mut index = WalIndex::new("fuzz").expect("0.2.0 WalIndex");
            index.set("a".into(), 1, 64).expect("WalIndex set");
            index
                .set("a_longer_key_than_eight".into(), 7, 4096)
                .expect("WalIndex set");
        }
        // Two topics in the blocks of slots 0 and 1, interleaved; one read to its end.
        "two_topics" => {
            let wal = v020_open(strict);
            for k in 0..12 {
                for topic in ["a", "b"] {
                    v020_append(&wal, topic, k..k + 1);
                }
            }
            v020_read(&wal, "a", 3);
            v020_read(&wal, "b", 13);
        }
        // Two runs, so two data files; the second run reads from the recovered chain (a chain
        // position), with AtLeastOnce persisting every second read.
        "restart" => {
            let mode = ReadConsistency::AtLeastOnce { persist_every: 2 };
            let wal = v020_open(mode);
            v020_append(&wal, "events", 0..15);
            v020_read(&wal, "events", 5);
            drop(wal);
            // 0.2.0 names a new data file after the current millisecond.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let wal = v020_open(mode);
            v020_append(&wal, "events", 15..21);
            v020_read(&wal, "events", 5);
        }
        // The longest topic name 0.2.0 takes (24 bytes: the name is stored out of line in the
        // archive), written with a batch (io_uring) and single appends.
        "long_topic_batch" => {
            let wal = v020_open(strict);
            let topic = "a_topic_name_of_24_bytes";
            let batch: Vec<Vec<u8>> = (0..40).map(|k| v020_payload(topic, k)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            wal.batch_append_for_topic(topic, &refs)
                .expect("0.2.0 batch");
            v020_append(&wal, topic, 40..43);
            v020_read(&wal, topic, 2);
        }
        other => panic!("unknown 0.2.0 scenario {other:?}"),
    }
}

/// A data file 0.2.0 wrote (1,000 MiB, sparse) as a sparse file of its used prefix.
fn v020_data_file(path: &Path) -> SparseFile {
    let file = fs::File::open(path).expect("open a 0.2.0 data file");
    let len = file.metadata().expect("stat a 0.2.0 data file").len();
    let mut slot = SLOTS * BLOCK_BYTES;
    while slot < len {
        let mut header = [0u8; 64];
        file.read_exact_at(&mut header, slot)
            .expect("read a 0.2.0 slot header");
        assert!(
            header.iter().all(|b| *b == 0),
            "{}: a block past slot {SLOTS}: make the scenario smaller",
            path.display()
        );
        slot += BLOCK_BYTES;
    }
    let mut bytes = vec![0u8; len.min(SLOTS * BLOCK_BYTES) as usize];
    file.read_exact_at(&mut bytes, 0)
        .expect("read a 0.2.0 data file");
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    SparseFile {
        len: used as u64,
        chunks: walrus_fuzz::nonzero_stretches(&bytes[..used])
            .into_iter()
            .map(|(start, end)| (start as u64, bytes[start..end].to_vec()))
            .collect(),
    }
}

/// Runs `scenario` with 0.2.0 in a fresh directory and reads what it wrote back as an image.
fn v020_image(scenario: &str) -> V020Image {
    let dir = std::env::temp_dir().join(format!(
        "walrus-seed-v020-{}-{scenario}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a 0.2.0 directory");
    let exe = std::env::current_exe().expect("this binary");
    let output = Command::new(exe)
        .args(["--v020-child", scenario])
        .env("WALRUS_DATA_DIR", &dir)
        .env("WALRUS_QUIET", "1")
        .env_remove("WALRUS_INSTANCE_KEY")
        // 0.2.0 keeps its background threads and their memory to the end.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .expect("start the 0.2.0 child");
    assert!(
        output.status.success(),
        "0.2.0 scenario {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("list the 0.2.0 directory")
        .map(|e| e.expect("a directory entry").file_name())
        .filter_map(|n| n.to_str().map(str::to_owned))
        .collect();
    names.sort();
    let data_paths: Vec<PathBuf> = names
        .iter()
        .filter(|n| is_data_file_name(n))
        .map(|n| dir.join(n))
        .collect();
    let read = |name: &str| fs::read(dir.join(name)).unwrap_or_default();
    let image = V020Image {
        flags: 0,
        cursor_index: read(CURSOR_INDEX_FILE),
        wal_index: read(WAL_INDEX_FILE),
        // Sorted timestamps become numbers 0, 1, ...: the same order.
        data: data_paths
            .iter()
            .enumerate()
            .map(|(i, p)| (data_file_name(i as u8), v020_data_file(p)))
            .collect(),
    };
    fs::remove_dir_all(&dir).expect("remove the 0.2.0 directory");
    image
}

fn v020_seeds(dir: &Path) {
    for scenario in V020_SCENARIOS {
        let image = v020_image(scenario);
        // The image must read back as written, or the seed is not the 0.2.0 directory.
        let encoded = image.encode();
        assert!(
            V020Image::parse(&encoded) == image,
            "{scenario}: the image does not round-trip"
        );
        write(dir, "v020_reader", scenario, &encoded);
        let variants = [
            ("refresh", V020_FLAG_REFRESH),
            ("no_cursor_index", FLAG_NO_CURSOR_INDEX),
        ];
        if *scenario == "one_topic" {
            for (suffix, flags) in variants {
                let seed = V020Image {
                    flags,
                    ..image.clone()
                };
                write(
                    dir,
                    "v020_reader",
                    &format!("{scenario}_{suffix}"),
                    &seed.encode(),
                );
            }
        }
    }
    write(dir, "v020_reader", "empty", &[]);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, scenario] = args.as_slice()
        && flag == "--v020-child"
    {
        v020_child(scenario);
        return;
    }
    let dir = args.get(1).expect("usage: seed_corpus <corpus directory>");
    let dir = Path::new(dir);
    frame_seeds(dir);
    dir_seeds(dir);
    cursor_seeds(dir);
    op_seeds(dir);
    v020_seeds(dir);
    println!("seed corpus written under {}", dir.display());
}
