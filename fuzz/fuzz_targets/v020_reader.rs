//! Fuzz target: arbitrary bytes as a walrus-rust 0.2.0 directory, read in full by the
//! `walrus_v020` reader that the import on open uses (docs/FORMAT.md, "walrus-rust 0.2.0").
//!
//! The input is a `walrus_fuzz::v020::V020Image`: the leading lengths split it into the cursor
//! index (`read_offset_idx_index.db`), a user `WalIndex` file and up to four sparse data files
//! (13-digit names like 0.2.0's, up to two 10 MiB block slots each, chunks near a slot's
//! start or end); flag bit 0 recomputes the FNV-1a checksum of every entry-looking header so
//! that mutated lengths and topics get past it, bit 1 leaves the cursor index out. The files
//! are written to a directory of this process on tmpfs (the reader reads files only), then
//! `LegacyDir::open` and every topic's pending entries through `next_block`, and
//! `decode_index` / `read_index_file` on both index files. The seeds are real 0.2.0
//! directories (`fuzz/corpus/v020_reader`, written by the 0.2.0 crate).
//!
//! Checks (`walrus_fuzz::v020::check_image`): no panic and no I/O error (the reader never
//! reads past a file); every returned entry lies within its data file, is the file's bytes
//! there, does not overlap the previous one, and its header (read as the format says, not
//! through rkyv) gives its length and its FNV-1a checksum; no more blocks than slots, no more
//! entries than headers fit; the persisted cursors are those `decode_index` gives; index
//! decoding is deterministic and sorted. Allocations are bounded by the input: `cargo xtask
//! fuzz` runs this target with a `-malloc_limit_mb` well under its RSS limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walrus_fuzz::v020::{V020Image, check_image};

fuzz_target!(|data: &[u8]| {
    check_image(&V020Image::parse(data).into_applied());
});
