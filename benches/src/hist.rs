//! A log-linear latency histogram (about 3% resolution, nanoseconds up to hours), cheap enough
//! to record every operation of a million-ops-per-second loop.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values below this are stored exactly.
const EXACT: u64 = 2 * SUB as u64;
const BUCKETS: usize = EXACT as usize + (64 - SUB_BITS as usize - 1) * SUB;

/// The quantiles reported as a latency CDF.
pub const CDF_QUANTILES: &[f64] = &[
    0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999,
    0.9995, 0.9999, 1.0,
];

/// Counts of latencies in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    EXACT as usize + (e - SUB_BITS - 1) as usize * SUB + sub
}

/// The middle of bucket `b`, used as its value.
fn value_of(b: usize) -> u64 {
    if b < EXACT as usize {
        return b as u64;
    }
    let rest = b - EXACT as usize;
    let e = (rest / SUB) as u32 + SUB_BITS + 1;
    let sub = (rest % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    ((SUB as u64 + sub) << (e - SUB_BITS)) + width / 2
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Records one latency of `nanos`.
    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1) in nanoseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        if q >= 1.0 {
            return self.max;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(b).min(self.max);
            }
        }
        self.max
    }

    /// `q:nanos` pairs at [`CDF_QUANTILES`], bar separated (the harness's wire format).
    pub fn cdf_string(&self) -> String {
        CDF_QUANTILES
            .iter()
            .map(|&q| format!("{q}:{}", self.quantile(q)))
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// Parses [`Histogram::cdf_string`] back into `(quantile, nanos)` points.
pub fn parse_cdf(s: &str) -> Vec<(f64, u64)> {
    s.split('|')
        .filter_map(|p| {
            let (q, v) = p.split_once(':')?;
            Some((q.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= last);
            last = b;
            let back = value_of(b) as f64;
            assert!(
                (back - v as f64).abs() <= v as f64 * 0.04 + 1.0,
                "{v} -> {back}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() < 20_000.0, "{p50}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        let points = parse_cdf(&h.cdf_string());
        assert_eq!(points.len(), CDF_QUANTILES.len());
    }
}
