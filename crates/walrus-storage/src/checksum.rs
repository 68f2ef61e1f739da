//! The frame checksum: XXH3-64 over the header's first 24 bytes, then the payload.
//!
//! Chosen by measurement against FNV-1a 64 and hardware CRC32C (benches/storage.rs,
//! `checksum/*`); docs/FORMAT.md records the figures.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Checksum of a frame: the hash of the checked header bytes seeds the hash of the payload, so
/// one flipped bit anywhere in either changes the result.
pub fn frame_checksum(header: &[u8], payload: &[u8]) -> u64 {
    xxh3_64_with_seed(payload, xxh3_64(header))
}
