//! Payloads for the benchmarks: random, incompressible bytes in random sizes, made up front so
//! that the measured loop does no allocation and no random-number work beyond an index.

use std::ops::Range;

/// A small, fast, seedable generator (xorshift64*): enough for sizes and filler bytes, and it
/// keeps the `rand` crate out of the dependency tree.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced, xorshift has no zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `range` (end exclusive); the slight modulo bias does not matter here.
    pub fn in_range(&mut self, range: Range<usize>) -> usize {
        let span = (range.end - range.start).max(1) as u64;
        range.start + (self.next_u64() % span) as usize
    }
}

/// Random bytes and a cycle of random sizes; `next()` hands out the next payload as a slice.
#[derive(Debug)]
pub struct Payloads {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    at: usize,
}

/// The entry sizes: 500 to 1000 bytes.
pub const ENTRY_SIZES: Range<usize> = 500..1001;

impl Payloads {
    /// Payloads with sizes drawn from `sizes`; `seed` makes threads differ.
    pub fn new(sizes: Range<usize>, seed: u64) -> Self {
        const POOL: usize = 4 << 20;
        const CYCLE: usize = 8192;
        let mut rng = Rng::new(seed);
        // Random bytes, so that a peer that compresses (raft-engine, RocksDB) gains nothing.
        let bytes: Vec<u8> = (0..POOL / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        let max = sizes.end.saturating_sub(1).max(1);
        let sizes: Vec<usize> = (0..CYCLE).map(|_| rng.in_range(sizes.clone())).collect();
        let offsets = (0..CYCLE)
            .map(|_| rng.in_range(0..POOL.saturating_sub(max).max(1)))
            .collect();
        Self {
            bytes,
            sizes,
            offsets,
            at: 0,
        }
    }

    /// Payloads of one fixed size.
    pub fn fixed(size: usize, seed: u64) -> Self {
        Self::new(size..size + 1, seed)
    }

    /// The next payload.
    pub fn one(&mut self) -> &[u8] {
        let i = self.at;
        self.at = (self.at + 1) % self.sizes.len();
        &self.bytes[self.offsets[i]..self.offsets[i] + self.sizes[i]]
    }

    /// The next `n` payloads (for a batch).
    pub fn batch(&mut self, n: usize) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.at;
            self.at = (self.at + 1) % self.sizes.len();
            out.push(&self.bytes[self.offsets[i]..self.offsets[i] + self.sizes[i]]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_range() {
        let mut p = Payloads::new(ENTRY_SIZES, 7);
        for _ in 0..20_000 {
            let n = p.one().len();
            assert!(ENTRY_SIZES.contains(&n), "{n}");
        }
        assert_eq!(p.batch(256).len(), 256);
        assert_eq!(Payloads::fixed(64, 1).one().len(), 64);
    }
}
