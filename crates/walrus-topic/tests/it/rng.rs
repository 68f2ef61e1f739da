//! Seeds and a small deterministic generator for randomized tests, shared by the test suites
//! of walrus-topic and walrus-rust (the latter includes this file by path).

#![allow(dead_code, reason = "each test binary uses a part")]

/// Small deterministic generator (SplitMix64), so a seed replays exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The seed of a randomized test: `SEED=<n>` replays one, otherwise one from the clock.
pub(crate) fn seed_from_env() -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Whether the environment variable `name` is set to something other than `0` or empty.
pub(crate) fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}
