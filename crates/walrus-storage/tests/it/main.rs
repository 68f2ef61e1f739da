//! Integration tests of walrus-storage: one contract suite run against every backend, real
//! `ENOSPC` on a small tmpfs, framing and scanning under damage, the fault-injecting backend,
//! and the io_uring fallback.

mod contract;
mod enospc;
mod faulty;
mod framing;
mod permissions;
mod uring;

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce without a seed log.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
