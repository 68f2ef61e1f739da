//! Writes the seed corpus of every fuzz target under the directory given as the only
//! argument (`cargo xtask fuzz --seed-corpus` passes `fuzz/corpus`): a few valid frames and
//! scans, real WAL directories as dir images, and real cursor files. Deterministic, so
//! rerunning it rewrites the same files.

use std::{fs, path::Path};

use walrus_fuzz::{
    CLEAN_MARKER, CURSOR_FILE_NAME, DirImage, FLAG_REFRESH_CHECKSUMS, Files, TOPICS, build_wal,
    build_wal_with_blocks,
};
use walrus_storage::{FrameHeader, encode_frame};

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

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: seed_corpus <corpus directory>");
    let dir = Path::new(&dir);
    frame_seeds(dir);
    dir_seeds(dir);
    cursor_seeds(dir);
    op_seeds(dir);
    println!("seed corpus written under {}", dir.display());
}
