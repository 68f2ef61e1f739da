//! On-disk constants owned by the allocator: segment file names and the file header.
//!
//! ```text
//! file "<seq as 20 decimal digits>.wal"
//! 0..FILE_HEADER_BYTES     a frame of kind FILE_HEADER_KIND, then zeros
//!   payload: 0..8 file seq u64 | 8..16 block bytes u64 | 16..20 block count u32 | 20..24 0
//! FILE_HEADER_BYTES..      block 0, block 1, ... each `block bytes` long
//! ```

/// Frame kind of the file header (frame kinds below 0x10 belong to this crate).
pub const FILE_HEADER_KIND: u8 = 0x01;

/// Bytes reserved for the file header; blocks start here, page-aligned.
pub const FILE_HEADER_BYTES: u64 = 4096;

/// Suffix of segment file names.
pub const FILE_NAME_SUFFIX: &str = ".wal";

pub(crate) const HEADER_PAYLOAD_BYTES: usize = 24;
pub(crate) const SEQ_OFFSET: usize = 0;
pub(crate) const BLOCK_BYTES_OFFSET: usize = 8;
pub(crate) const BLOCK_COUNT_OFFSET: usize = 16;

const _: () = assert!(BLOCK_COUNT_OFFSET + 4 <= HEADER_PAYLOAD_BYTES);
const _: () = assert!(walrus_storage::frame_len(HEADER_PAYLOAD_BYTES) as u64 <= FILE_HEADER_BYTES);

/// The name of segment file number `seq`. Zero-padded so names sort like numbers.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}{FILE_NAME_SUFFIX}")
}

/// The sequence number in a segment file name, or `None` for any other file.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(FILE_NAME_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_header(seq: u64, block_bytes: u64, block_count: u32) -> Vec<u8> {
    let mut payload = [0u8; HEADER_PAYLOAD_BYTES];
    payload[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&seq.to_le_bytes());
    payload[BLOCK_BYTES_OFFSET..BLOCK_BYTES_OFFSET + 8].copy_from_slice(&block_bytes.to_le_bytes());
    payload[BLOCK_COUNT_OFFSET..BLOCK_COUNT_OFFSET + 4].copy_from_slice(&block_count.to_le_bytes());
    let mut out = Vec::new();
    let header = walrus_storage::FrameHeader {
        kind: FILE_HEADER_KIND,
        ..Default::default()
    };
    walrus_storage::encode_frame(&mut out, &header, &payload);
    out
}

/// `(seq, block bytes, block count)` from the first bytes of a file.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<(u64, u64, u32), String> {
    let frame = match walrus_storage::decode_frame(bytes) {
        walrus_storage::Decoded::Frame(frame) => frame,
        walrus_storage::Decoded::Zeroed => return Err("header is zeroed".into()),
        walrus_storage::Decoded::Invalid(err) => return Err(err.to_string()),
    };
    if frame.header.kind != FILE_HEADER_KIND || frame.payload.len() != HEADER_PAYLOAD_BYTES {
        return Err(format!("unexpected frame kind {:#x}", frame.header.kind));
    }
    let p = frame.payload;
    let u64_at = |at: usize| walrus_storage::read_u64(p, at);
    let count = walrus_storage::read_u32(p, BLOCK_COUNT_OFFSET);
    let block_bytes = u64_at(BLOCK_BYTES_OFFSET);
    if block_bytes == 0 {
        return Err("block size is zero".into());
    }
    Ok((u64_at(SEQ_OFFSET), block_bytes, count))
}
