//! Every on-disk constant owned by the topic layer: frame kinds and flags, the block header,
//! the cursor slot, and the limits users see. docs/FORMAT.md draws the same tables.

use walrus_storage::{FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, frame_len};

/// Frame kind of a block header: `seq` = the topic sequence number of the block's first
/// entry, payload = the topic name.
pub(crate) const BLOCK_HEADER_KIND: u8 = 0x10;
/// Block header flag: a truncation removed the block (`log/truncate.rs`). Recovery skips the
/// whole extent and gives it up; the flag marks the extent, so a block of a multi-block
/// extent is never probed for a header of its own.
pub(crate) const BLOCK_FLAG_REMOVED: u16 = 1 << 0;
/// Frame kind of an entry: `seq` = its topic sequence number, payload = the user's bytes.
pub(crate) const ENTRY_KIND: u8 = 0x11;
/// Encodes an entry's durability claim into its `aux` field: every entry of the topic before
/// `durable_end` was durable when entry `seq` was written. Recovery uses the claim to tell
/// damage (a hole in data known durable: reported, later entries kept) from a crash hole
/// (unsynced data lost: later entries dropped). `aux` = 1 + the entries between the claim and
/// the entry; 0 claims nothing, which is also what a lag too large for 32 bits becomes.
pub(crate) fn encode_claim(seq: u64, durable_end: u64) -> u32 {
    seq.checked_sub(durable_end)
        .and_then(|lag| u32::try_from(lag).ok())
        .and_then(|lag| lag.checked_add(1))
        .unwrap_or(0)
}

/// The `durable_end` an entry's `aux` claims (see [`encode_claim`]); 0 when it claims nothing.
pub(crate) fn decode_claim(seq: u64, aux: u32) -> u64 {
    match aux {
        0 => 0,
        lag_plus_one => seq.saturating_sub(u64::from(lag_plus_one) - 1),
    }
}

/// Frame kind of a cursor slot: `seq` = the slot's generation, `aux` = the slot number.
pub(crate) const CURSOR_KIND: u8 = 0x20;

/// Frame kind of a block's seal record, in the last [`SEAL_BYTES`] of its extent (`seal.rs`):
/// header `seq` = the sequence number after the block's last entry, `flags` = the topic tag,
/// `aux` bit 0 = the block holds a complete entry; payload: the `SEAL_*_OFFSET` fields.
pub(crate) const SEAL_KIND: u8 = 0x12;
pub(crate) const SEAL_FIRST_SEQ_OFFSET: usize = 0;
pub(crate) const SEAL_END_OFFSET: usize = 8;
pub(crate) const SEAL_COMPLETE_END_OFFSET: usize = 16;
pub(crate) const SEAL_COMPLETE_NEXT_SEQ_OFFSET: usize = 24;
pub(crate) const SEAL_MAX_CLAIM_OFFSET: usize = 32;
pub(crate) const SEAL_PAYLOAD_BYTES: usize = SEAL_MAX_CLAIM_OFFSET + 8;
/// Bytes reserved at the end of every extent for its seal record.
pub const SEAL_BYTES: u64 = frame_len(SEAL_PAYLOAD_BYTES) as u64;

/// Frame kind of a topic record (`topic_record.rs`): `seq` = the slot's generation, `aux` =
/// the slot number, `flags` = the `RECORD_*` bits; payload: the `RECORD_*_OFFSET` fields, the
/// metadata bytes, then the topic name.
pub(crate) const RECORD_KIND: u8 = 0x21;
/// Record flag: the record holds metadata (`TopicLog::set_meta`), possibly empty.
pub(crate) const RECORD_HAS_META: u16 = 1 << 0;
/// Record flag: the topic was truncated at `RECORD_CUT_SEQ_OFFSET`.
pub(crate) const RECORD_HAS_CUT: u16 = 1 << 1;
/// Record flag: that truncation may not be complete on disk; recovery finishes it.
pub(crate) const RECORD_CUT_PENDING: u16 = 1 << 2;
/// Record payload: the truncation point (entries at and after it were removed), where the
/// entry before it lies when truncation closed its batch (file sequence number, file offset;
/// `u64::MAX` if none), the metadata length (u32), the name length (u32).
pub(crate) const RECORD_CUT_SEQ_OFFSET: usize = 0;
pub(crate) const RECORD_CLOSE_FILE_OFFSET: usize = 8;
pub(crate) const RECORD_CLOSE_AT_OFFSET: usize = 16;
pub(crate) const RECORD_META_LEN_OFFSET: usize = 24;
pub(crate) const RECORD_NAME_LEN_OFFSET: usize = 28;
pub(crate) const RECORD_FIXED_BYTES: usize = 32;
/// Bytes of one topic record slot; each topic that has a record has two, written in turn.
pub(crate) const RECORD_SLOT_BYTES: u64 = 1024;
/// Topics per record file.
pub(crate) const RECORD_TOPICS_PER_FILE: u32 = 256;
/// Bytes of one record file.
pub(crate) const RECORD_FILE_BYTES: u64 = RECORD_SLOT_BYTES * 2 * RECORD_TOPICS_PER_FILE as u64;

/// Name of record file number `index`.
pub(crate) fn record_file_name(index: u32) -> String {
    format!("records-{index:04}.idx")
}

/// Number of a record file, from its name.
pub(crate) fn parse_record_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("records-")?.strip_suffix(".idx")?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

/// Frame kind of one `WalIndex` record (file `<name>_index.db`): payload
/// `0..8 cur_block_idx u64 | 8..16 cur_block_offset u64 | 16.. key (UTF-8)`.
pub(crate) const INDEX_ENTRY_KIND: u8 = 0x30;

/// Frame kind of the 0.2.0 import journal ([`IMPORT_JOURNAL_NAME`]); its payload is UTF-8
/// lines (docs/FORMAT.md).
pub(crate) const IMPORT_JOURNAL_KIND: u8 = 0x40;

/// The journal of an import of walrus-rust 0.2.0 files in progress.
pub(crate) const IMPORT_JOURNAL_NAME: &str = "IMPORT-0.2.0";

/// Where imported 0.2.0 files are moved (with `.2`, `.3`, ... if it exists already).
pub const LEGACY_DIR_NAME: &str = "legacy-0.2.0";

/// Entry flag: the entry belongs to a batch.
pub(crate) const FLAG_BATCH: u16 = 1 << 0;
/// Entry flag: the entry is the last of its batch. Recovery drops a batch that has entries on
/// disk but no entry with this flag, so a batch survives a crash whole or not at all.
pub(crate) const FLAG_BATCH_END: u16 = 1 << 1;

/// Entry flag bits 2..16: the tag of the entry's topic ([`topic_tag`]). Entries carry no
/// topic name, so without it an entry of one topic written into another topic's block (a
/// misdirected write) would read as that topic's entry.
pub(crate) const FLAG_TOPIC_TAG: u16 = !(FLAG_BATCH | FLAG_BATCH_END);

/// The tag of topic `name` in its entries' flags: 14 bits of its FNV-1a hash. An entry whose
/// tag differs from its block's topic is not read (a foreign frame passes with odds of
/// 1 in 16,384, and only where it also continues the block's sequence numbers).
pub(crate) fn topic_tag(name: &str) -> u16 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(name.as_bytes());
    let hash = hasher.finish();
    ((hash ^ (hash >> 32)) as u16) & FLAG_TOPIC_TAG
}

/// Whether an entry frame's `flags` carry the tag `tag` of the block's topic.
pub(crate) fn tag_matches(flags: u16, tag: u16) -> bool {
    flags & FLAG_TOPIC_TAG == tag
}

/// Largest metadata record of a topic (`TopicLog::set_meta`), in bytes.
pub const META_BYTES_MAX: usize = 512;

/// Longest topic name, in bytes of UTF-8.
pub const TOPIC_NAME_BYTES_MAX: usize = 128;

/// Largest entry payload: 1 GiB less room for the frame and block headers.
pub const ENTRY_BYTES_MAX: usize = FRAME_PAYLOAD_BYTES_MAX as usize - 4096;

/// Most entries in one batch append or batch read (as in walrus-rust 0.2.0).
pub const BATCH_ENTRIES_MAX: usize = 2000;

/// Most bytes (payloads plus frame headers) in one batch append (as in walrus-rust 0.2.0).
pub const BATCH_BYTES_MAX: u64 = 10 * 1024 * 1024 * 1024;

/// Bytes the block header of a topic named `name` occupies at the start of its extent.
pub(crate) fn block_header_len(name: &str) -> u64 {
    frame_len(name.len()) as u64
}

/// Bytes one cursor slot occupies; each topic has two and writes them in turn, so a torn
/// slot write always leaves the other one intact.
pub(crate) const CURSOR_SLOT_BYTES: u64 = 256;
/// Topics per cursor file.
pub(crate) const CURSOR_TOPICS_PER_FILE: u32 = 1024;
/// Bytes of one cursor file.
pub(crate) const CURSOR_FILE_BYTES: u64 = CURSOR_SLOT_BYTES * 2 * CURSOR_TOPICS_PER_FILE as u64;
/// Cursor payload: next seq, file seq, extent offset, offset in extent (u64 each, at these
/// offsets), then the topic name.
pub(crate) const CURSOR_NEXT_SEQ_OFFSET: usize = 0;
pub(crate) const CURSOR_FILE_SEQ_OFFSET: usize = 8;
pub(crate) const CURSOR_EXTENT_OFFSET_OFFSET: usize = 16;
pub(crate) const CURSOR_IN_EXTENT_OFFSET: usize = 24;
pub(crate) const CURSOR_FIXED_BYTES: usize = CURSOR_IN_EXTENT_OFFSET + 8;
const _: () = assert!(CURSOR_FIXED_BYTES == 32);

/// `WalIndex` record payload: block index and offset (u64 each), then the key.
pub(crate) const INDEX_BLOCK_IDX_OFFSET: usize = 0;
pub(crate) const INDEX_BLOCK_OFFSET_OFFSET: usize = 8;
pub(crate) const INDEX_FIXED_BYTES: usize = INDEX_BLOCK_OFFSET_OFFSET + 8;
/// Cursor slot generations start at 1 and grow by one per persist, so none reaches this in
/// practice (2^63 persists): a slot carrying a larger one is forged or damaged and ignored,
/// which keeps the next persist's `generation + 1` from overflowing.
pub(crate) const CURSOR_GENERATION_MAX: u64 = 1 << 63;

const _: () = assert!(
    frame_len(CURSOR_FIXED_BYTES + TOPIC_NAME_BYTES_MAX) as u64 <= CURSOR_SLOT_BYTES,
    "a cursor slot must hold the longest topic name"
);
const _: () = assert!(FRAME_HEADER_BYTES == 32);
const _: () = assert!(
    frame_len(RECORD_FIXED_BYTES + META_BYTES_MAX + TOPIC_NAME_BYTES_MAX) as u64
        <= RECORD_SLOT_BYTES,
    "a record slot must hold the largest metadata and the longest topic name"
);

/// File left in the directory when an instance is poisoned by a failed sync. Its presence at
/// open tells recovery that data it finds may exist only in the page cache (the kernel may
/// have given up writing it back), so the unclaimed tail of every topic is written again
/// before the open's sync; the file is removed once that sync succeeded.
pub(crate) const POISON_MARKER_NAME: &str = "POISONED";
/// Bytes of a marker file (its contents do not matter).
pub(crate) const MARKER_BYTES: u64 = 8;

/// File left in the directory by a clean close, after its final sync succeeded: everything in
/// the segment files was durable, so recovery takes any hole or damaged tail it finds for
/// corruption, never for a crash. The next open removes it (durably) before any append.
pub(crate) const CLEAN_MARKER_NAME: &str = "CLEAN";

/// Name of cursor file number `index`.
pub(crate) fn cursor_file_name(index: u32) -> String {
    format!("cursors-{index:04}.idx")
}

/// Number of a cursor file, from its name.
pub(crate) fn parse_cursor_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("cursors-")?.strip_suffix(".idx")?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

pub(crate) use walrus_storage::read_u64 as u64_at;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_and_degrade_to_nothing() {
        assert_eq!(decode_claim(10, encode_claim(10, 10)), 10);
        assert_eq!(decode_claim(10, encode_claim(10, 3)), 3);
        assert_eq!(decode_claim(10, encode_claim(10, 0)), 0);
        // A claim past the entry itself is never written (it would be a lie).
        assert_eq!(encode_claim(10, 11), 0);
        assert_eq!(encode_claim(u64::from(u32::MAX) + 5, 0), 0);
        assert_eq!(decode_claim(7, 0), 0);
    }
}
