//! Fuzz target: arbitrary bytes as a WAL directory, opened and read in full (RELIABILITY.md
//! T8, target 2; invariant I8).
//!
//! The input is a dir image (`walrus_fuzz::DirImage`: segment files under any number, cursor
//! files, markers, each as chunks over zeros; flag bit 0 recomputes frame checksums so that
//! mutated header fields reach recovery). The seeds are real WALs (`fuzz/corpus/wal_dir_open`).
//! `walrus_fuzz::check_dir` then opens the directory read-only and normally, reads every
//! topic with `read_from`, `read_next` and `batch_read`, appends and reopens: nothing may
//! panic, hang or read out of bounds, a read-only open must not write, a second recovery must
//! find what the first did, reads come back in order, and an append reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walrus_fuzz::{DirImage, check_dir};

fuzz_target!(|data: &[u8]| {
    check_dir(&DirImage::parse(data).into_files());
});
