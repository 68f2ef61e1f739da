//! The frame checksum: XXH3-64 over the header's first 24 bytes, then the payload.
//!
//! Chosen by measurement against FNV-1a 64 and hardware CRC32C (benches/storage.rs,
//! `checksum/*`); docs/FORMAT.md records the figures.

//!
//! The implementation is twox-hash's, which picks AVX2 (or NEON) at run time: the same
//! XXH3 values as the portable code, about twice as fast on long payloads on CPUs that have
//! it (a crate built for generic x86-64 otherwise gets SSE2 only).

use twox_hash::XxHash3_64;

/// Checksum of a frame: the hash of the checked header bytes seeds the hash of the payload, so
/// one flipped bit anywhere in either changes the result.
pub fn frame_checksum(header: &[u8], payload: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(XxHash3_64::oneshot(header), payload)
}
