//! Every on-disk constant owned by the topic layer: frame kinds and flags, the block header,
//! the cursor slot, and the limits users see. docs/FORMAT.md draws the same tables.

use walrus_storage::{FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, frame_len};

/// Frame kind of a block header: `seq` = the topic sequence number of the block's first
/// entry, payload = the topic name.
pub(crate) const BLOCK_HEADER_KIND: u8 = 0x10;
/// Frame kind of an entry: `seq` = its topic sequence number, payload = the user's bytes.
pub(crate) const ENTRY_KIND: u8 = 0x11;
/// Frame kind of a cursor slot: `seq` = the slot's generation, `aux` = the slot number.
pub(crate) const CURSOR_KIND: u8 = 0x20;

/// Entry flag: the entry belongs to a batch.
pub(crate) const FLAG_BATCH: u16 = 1 << 0;
/// Entry flag: the entry is the last of its batch. Recovery drops a batch that has entries on
/// disk but no entry with this flag, so a batch survives a crash whole or not at all.
pub(crate) const FLAG_BATCH_END: u16 = 1 << 1;

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
/// Cursor payload: next seq, file seq, extent offset, offset in extent, then the topic name.
pub(crate) const CURSOR_FIXED_BYTES: usize = 32;

const _: () = assert!(
    frame_len(CURSOR_FIXED_BYTES + TOPIC_NAME_BYTES_MAX) as u64 <= CURSOR_SLOT_BYTES,
    "a cursor slot must hold the longest topic name"
);
const _: () = assert!(FRAME_HEADER_BYTES == 32);

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

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}
