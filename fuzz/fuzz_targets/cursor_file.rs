//! Fuzz target: arbitrary bytes as the cursor file `cursors-0000.idx` next to a valid WAL
//! (RELIABILITY.md T8, target 3; invariants I4 and I8).
//!
//! Input: one flags byte, then the start of the cursor file (the rest is zeros). Flag bit 0
//! recomputes the checksum of every slot-looking frame, so mutated generations, slot numbers,
//! positions and topic names get past the checksum; bit 1 makes the file exactly as long as
//! the input (a short cursor file) instead of its full size; bit 2 drops the clean-close
//! marker, so recovery treats holes as a crash's. The WAL is `walrus_fuzz::build_wal`, built
//! once. Checks are those of `walrus_fuzz::check_dir`, among them: no panic, and every
//! topic's cursor lies within its recovered data.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use walrus_fuzz::{
    CLEAN_MARKER, CURSOR_FILE_BYTES, CURSOR_FILE_NAME, Files, build_wal, check_dir,
    refresh_checksums,
};

/// Entries of the WAL the cursor file sits next to.
const WAL_ENTRIES: usize = 24;

fn wal() -> &'static Files {
    static WAL: OnceLock<Files> = OnceLock::new();
    WAL.get_or_init(|| build_wal(WAL_ENTRIES, true))
}

fuzz_target!(|data: &[u8]| {
    let (flags, content) = data.split_first().unwrap_or((&0, &[]));
    let mut files = wal().clone();
    let mut cursor = content.to_vec();
    cursor.truncate(CURSOR_FILE_BYTES as usize);
    if flags & 2 == 0 {
        cursor.resize(CURSOR_FILE_BYTES as usize, 0);
    }
    if flags & 1 != 0 {
        refresh_checksums(&mut cursor);
    }
    files.insert(CURSOR_FILE_NAME.to_owned(), cursor);
    if flags & 4 != 0 {
        files.remove(CLEAN_MARKER);
    }
    check_dir(&files);
});
