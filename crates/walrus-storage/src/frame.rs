//! Encoding and decoding of one frame: a checksummed, versioned record around a payload.
//!
//! ```text
//! 0..4   magic "WLRE"        4      version (1)       5   kind (never 0)
//! 6..8   flags  u16          8..12  payload length    12..16 aux u32
//! 16..24 seq    u64          24..32 checksum u64 (XXH3 of bytes 0..24, then the payload)
//! 32..   payload, then zero padding to a multiple of 8 bytes
//! ```
//! All integers are little-endian. `kind`, `flags`, `aux` and `seq` belong to the layer above;
//! the decoder only insists that `kind` is not zero, so a zeroed region never decodes.

use crate::{
    checksum::frame_checksum,
    format::{
        AUX_OFFSET, CHECKED_HEADER_BYTES, CHECKSUM_OFFSET, FLAGS_OFFSET, FRAME_ALIGN,
        FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_PAYLOAD_BYTES_MAX, FormatVersion, KIND_OFFSET,
        LEN_OFFSET, MAGIC_OFFSET, SEQ_OFFSET, VERSION_OFFSET,
    },
};

/// The caller-owned fields of a frame header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Record type of the layer above; must not be zero.
    pub kind: u8,
    /// Free bits for the layer above.
    pub flags: u16,
    /// A free 32-bit field for the layer above.
    pub aux: u32,
    /// A free 64-bit field for the layer above (Walrus stores a per-topic sequence number).
    pub seq: u64,
}

/// A frame decoded from a buffer, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The caller-owned header fields.
    pub header: FrameHeader,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// Bytes the frame occupies, padding included: the next frame starts this far on.
    pub frame_len: usize,
}

/// Why bytes are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first four bytes are not the frame magic.
    #[error("bad frame magic")]
    BadMagic,
    /// The version byte names a version this build cannot read.
    #[error("unsupported frame version {0}")]
    UnsupportedVersion(u8),
    /// The kind byte is zero, which is reserved so zeroed bytes never decode.
    #[error("frame kind is zero")]
    ZeroKind,
    /// The length field exceeds [`FRAME_PAYLOAD_BYTES_MAX`].
    #[error("frame length {0} exceeds the 1 GiB limit")]
    LengthTooLarge(u32),
    /// The buffer ends before the frame does.
    #[error("frame needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Bytes the frame would occupy.
        needed: usize,
        /// Bytes the buffer had from the frame's start.
        available: usize,
    },
    /// The stored checksum does not match the header and payload.
    #[error("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    ChecksumMismatch {
        /// The checksum found in the header.
        stored: u64,
        /// The checksum of the bytes as read.
        computed: u64,
    },
}

/// What lies at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame.
    Frame(Frame<'a>),
    /// A zeroed header: the end of written data in a pre-sized file.
    Zeroed,
    /// Something that is neither a valid frame nor zeros.
    Invalid(FrameError),
}

/// Bytes a frame with a payload of `payload_len` bytes occupies, padding included.
pub const fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_BYTES + payload_len).next_multiple_of(FRAME_ALIGN)
}

fn checked_header(header: &FrameHeader, payload_len: u32) -> [u8; FRAME_HEADER_BYTES] {
    let mut bytes = [0u8; FRAME_HEADER_BYTES];
    bytes[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&FRAME_MAGIC);
    bytes[VERSION_OFFSET] = FormatVersion::CURRENT as u8;
    bytes[KIND_OFFSET] = header.kind;
    bytes[FLAGS_OFFSET..LEN_OFFSET].copy_from_slice(&header.flags.to_le_bytes());
    bytes[LEN_OFFSET..AUX_OFFSET].copy_from_slice(&payload_len.to_le_bytes());
    bytes[AUX_OFFSET..SEQ_OFFSET].copy_from_slice(&header.aux.to_le_bytes());
    bytes[SEQ_OFFSET..CHECKSUM_OFFSET].copy_from_slice(&header.seq.to_le_bytes());
    bytes
}

/// Appends one frame (header, payload, padding) to `out`.
///
/// # Panics
///
/// If `header.kind` is zero or the payload is larger than [`FRAME_PAYLOAD_BYTES_MAX`]: both
/// are programming errors the layer above must rule out before encoding.
pub fn encode_frame(out: &mut Vec<u8>, header: &FrameHeader, payload: &[u8]) {
    assert!(header.kind != 0, "frame kind 0 is reserved");
    let payload_len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= FRAME_PAYLOAD_BYTES_MAX)
        .expect("payload larger than FRAME_PAYLOAD_BYTES_MAX");
    let mut bytes = checked_header(header, payload_len);
    let checksum = frame_checksum(&bytes[..CHECKED_HEADER_BYTES], payload);
    bytes[CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    let start = out.len();
    out.extend_from_slice(&bytes);
    out.extend_from_slice(payload);
    out.resize(start + frame_len(payload.len()), 0);
}

/// A frame header's fields as stored at the start of `buf`, with its payload length and its
/// stored checksum, checking nothing but the magic (and that `buf` holds a whole header):
/// for repairs that must read a header whose checksum may not match. Readers use
/// [`decode_frame`], which validates everything.
pub fn stored_header(buf: &[u8]) -> Option<(FrameHeader, u32, u64)> {
    let head = buf.get(..FRAME_HEADER_BYTES)?;
    if head[MAGIC_OFFSET..VERSION_OFFSET] != FRAME_MAGIC {
        return None;
    }
    let fields = FrameHeader {
        kind: head[KIND_OFFSET],
        flags: read_u16(head, FLAGS_OFFSET),
        aux: read_u32(head, AUX_OFFSET),
        seq: read_u64(head, SEQ_OFFSET),
    };
    Some((
        fields,
        read_u32(head, LEN_OFFSET),
        read_u64(head, CHECKSUM_OFFSET),
    ))
}

/// The little-endian `u16` at `buf[at..at + 2]` (panics if out of range).
pub fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

/// The little-endian `u32` at `buf[at..at + 4]` (panics if out of range). Every on-disk
/// integer of Walrus is little-endian and read through these three functions.
pub fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

/// The little-endian `u64` at `buf[at..at + 8]` (panics if out of range).
pub fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// The fields of the frame header `head` and its payload length, validated as far as a
/// header alone allows (magic, version, kind, length), for a reader that reads the payload
/// into a buffer of its own next and then checks it with [`verify_payload`]. A frame is valid
/// only once both have passed; `decode_frame` does both on bytes already in one buffer.
pub fn decode_header(head: &[u8; FRAME_HEADER_BYTES]) -> Result<(FrameHeader, usize), FrameError> {
    if head[MAGIC_OFFSET..VERSION_OFFSET] != FRAME_MAGIC {
        return Err(FrameError::BadMagic);
    }
    FormatVersion::try_from(head[VERSION_OFFSET]).map_err(FrameError::UnsupportedVersion)?;
    let kind = head[KIND_OFFSET];
    if kind == 0 {
        return Err(FrameError::ZeroKind);
    }
    let payload_len = read_u32(head, LEN_OFFSET);
    if payload_len > FRAME_PAYLOAD_BYTES_MAX {
        return Err(FrameError::LengthTooLarge(payload_len));
    }
    let header = FrameHeader {
        kind,
        flags: read_u16(head, FLAGS_OFFSET),
        aux: read_u32(head, AUX_OFFSET),
        seq: read_u64(head, SEQ_OFFSET),
    };
    Ok((header, payload_len as usize))
}

/// Checks the stored checksum of the header `head` (already through [`decode_header`])
/// against that header and `payload`, read apart from it.
pub fn verify_payload(head: &[u8; FRAME_HEADER_BYTES], payload: &[u8]) -> Result<(), FrameError> {
    let stored = read_u64(head, CHECKSUM_OFFSET);
    let computed = frame_checksum(&head[..CHECKED_HEADER_BYTES], payload);
    // Mutant checksum_not_verified: accepts any checksum.
    if stored != computed && !cfg!(walrus_mutant = "checksum_not_verified") {
        return Err(FrameError::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

/// Decodes the frame at the start of `buf`, validating every byte before use.
pub fn decode_frame(buf: &[u8]) -> Decoded<'_> {
    let head_len = buf.len().min(FRAME_HEADER_BYTES);
    if buf[..head_len].iter().all(|b| *b == 0) {
        return if head_len == FRAME_HEADER_BYTES || buf.is_empty() {
            Decoded::Zeroed
        } else {
            Decoded::Invalid(FrameError::Truncated {
                needed: FRAME_HEADER_BYTES,
                available: buf.len(),
            })
        };
    }
    match validate(buf) {
        Ok(frame) => Decoded::Frame(frame),
        Err(err) => Decoded::Invalid(err),
    }
}

fn validate(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    // A short buffer is checked as far as it goes: a damaged magic is reported as such even
    // when the header is cut.
    let magic_len = buf.len().min(FRAME_MAGIC.len());
    if buf[..magic_len] != FRAME_MAGIC[..magic_len] {
        return Err(FrameError::BadMagic);
    }
    let Some(head) = buf.first_chunk::<FRAME_HEADER_BYTES>() else {
        return Err(FrameError::Truncated {
            needed: FRAME_HEADER_BYTES,
            available: buf.len(),
        });
    };
    let (header, payload_len) = decode_header(head)?;
    let needed = FRAME_HEADER_BYTES + payload_len;
    if buf.len() < needed {
        return Err(FrameError::Truncated {
            needed,
            available: buf.len(),
        });
    }
    let payload = &buf[FRAME_HEADER_BYTES..needed];
    verify_payload(head, payload)?;
    Ok(Frame {
        header,
        payload,
        frame_len: frame_len(payload_len),
    })
}

#[cfg(test)]
mod tests;
