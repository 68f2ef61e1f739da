//! Every constant of the entry framing: magic, version, sizes and field offsets.
//!
//! No other module writes a literal offset; docs/FORMAT.md draws the same table.

/// First four bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"WLRE";

/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = CHECKSUM_OFFSET + 8;

/// Frames start at multiples of this many bytes, which lets a reader resynchronise after
/// corruption by probing aligned offsets only.
pub const FRAME_ALIGN: usize = 8;

/// Largest payload a frame may carry (1 GiB).
pub const FRAME_PAYLOAD_BYTES_MAX: u32 = 1 << 30;

pub(crate) const MAGIC_OFFSET: usize = 0;
pub(crate) const VERSION_OFFSET: usize = MAGIC_OFFSET + FRAME_MAGIC.len();
pub(crate) const KIND_OFFSET: usize = VERSION_OFFSET + 1;
pub(crate) const FLAGS_OFFSET: usize = KIND_OFFSET + 1;
pub(crate) const LEN_OFFSET: usize = FLAGS_OFFSET + 2;
pub(crate) const AUX_OFFSET: usize = LEN_OFFSET + 4;
pub(crate) const SEQ_OFFSET: usize = AUX_OFFSET + 4;
pub(crate) const CHECKSUM_OFFSET: usize = SEQ_OFFSET + 8;
/// The header bytes the checksum covers (everything before the checksum itself).
pub(crate) const CHECKED_HEADER_BYTES: usize = CHECKSUM_OFFSET;

const _: () = assert!(FRAME_HEADER_BYTES == 32);
const _: () = assert!(FRAME_HEADER_BYTES.is_multiple_of(FRAME_ALIGN));

/// Versions of the frame format this build can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatVersion {
    /// The first version, described in docs/FORMAT.md.
    V1 = 1,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: Self = Self::V1;
}

impl TryFrom<u8> for FormatVersion {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        match value {
            1 => Ok(Self::V1),
            other => Err(other),
        }
    }
}
