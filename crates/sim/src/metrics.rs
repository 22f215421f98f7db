//! Latency histograms: the Prometheus view and the episode summary.
//!
//! [`PromHistogram`] holds the bucket counts vLLM exposes (`vllm:e2e_request_latency_seconds` and
//! `vllm:time_to_first_token_seconds` buckets) and computes quantiles exactly as PromQL's
//! `histogram_quantile` does, so the simulated snapshot's p50/p95/p99 have the resolution a controller
//! gets from a cluster. [`LogHistogram`] is a fine log-linear histogram (about 1.1 % relative resolution)
//! for the episode summary, in O(1) memory whatever the number of requests.

/// `vllm:e2e_request_latency_seconds` bucket upper bounds (vLLM `loggers.py`), seconds.
pub const E2E_BUCKETS: [f64; 21] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// `vllm:time_to_first_token_seconds` bucket upper bounds (vLLM `loggers.py`), seconds.
pub const TTFT_BUCKETS: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// Cumulative-free bucket counts over fixed upper bounds, plus the `+Inf` bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct PromHistogram {
    bounds: &'static [f64],
    /// `counts[i]` counts observations in `(bounds[i-1], bounds[i]]`; the last entry is `+Inf`.
    counts: Vec<u64>,
}

impl PromHistogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Self {
        PromHistogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
        }
    }

    /// The bucket upper bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Record one observation.
    #[inline]
    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
    }

    /// Total observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Add another histogram's counts (same bounds).
    pub fn add(&mut self, other: &PromHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Forget all observations.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// PromQL `histogram_quantile(q, ...)`: linear interpolation inside the bucket that holds the rank,
    /// the lower bound of the first bucket taken as 0, and the highest finite bound returned when the rank
    /// falls in `+Inf`. `None` when there are no observations (PromQL returns NaN).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut cum = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            let prev = cum;
            cum += c;
            if cum as f64 >= rank && *c > 0 {
                if i == self.bounds.len() {
                    return Some(self.bounds[self.bounds.len() - 1]);
                }
                let lo = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                let hi = self.bounds[i];
                let frac = (rank - prev as f64) / *c as f64;
                return Some(lo + (hi - lo) * frac.clamp(0.0, 1.0));
            }
        }
        Some(self.bounds[self.bounds.len() - 1])
    }
}

/// Sub-buckets per power of two in [`LogHistogram`].
const SUB_BITS: u32 = 6;
/// Smallest resolved value, seconds; smaller values share the first bucket.
const LOG_MIN: f64 = 1.0 / 1024.0;
/// Octaves covered above `LOG_MIN` (up to about 2^30 s).
const OCTAVES: u32 = 40;

/// A log-linear histogram: 64 buckets per power of two from about 1 ms, for summary quantiles.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            counts: vec![0; (OCTAVES << SUB_BITS) as usize + 1],
            total: 0,
        }
    }
}

impl LogHistogram {
    #[inline]
    fn index(v: f64) -> usize {
        let x = v / LOG_MIN;
        if x.is_nan() || x < 1.0 {
            return 0;
        }
        // Exponent and the top SUB_BITS mantissa bits of x: a log-linear bucket without a logarithm.
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as u32 - 1023;
        if exp >= OCTAVES {
            return (OCTAVES << SUB_BITS) as usize;
        }
        let sub = ((bits >> (52 - SUB_BITS)) & ((1 << SUB_BITS) - 1)) as u32;
        ((exp << SUB_BITS) | sub) as usize
    }

    /// The value at the middle of bucket `i`.
    fn value(i: usize) -> f64 {
        let exp = (i >> SUB_BITS) as i32;
        let sub = (i & ((1 << SUB_BITS) - 1)) as f64;
        let lo = 2f64.powi(exp) * (1.0 + sub / f64::from(1u32 << SUB_BITS));
        let hi = 2f64.powi(exp) * (1.0 + (sub + 1.0) / f64::from(1u32 << SUB_BITS));
        0.5 * (lo + hi) * LOG_MIN
    }

    /// Record one observation.
    #[inline]
    pub fn observe(&mut self, v: f64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    /// Total observations.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (nearest rank), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c;
            if cum >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantile_matches_promql() {
        // Buckets (0,1], (1,2], (2,5], +Inf. 10 obs: 4 in (0,1], 4 in (1,2], 2 in (2,5].
        static B: [f64; 3] = [1.0, 2.0, 5.0];
        let mut h = PromHistogram::new(&B);
        for v in [0.5, 0.5, 0.9, 1.0, 1.5, 1.5, 1.9, 2.0, 3.0, 4.0] {
            h.observe(v);
        }
        assert_eq!(h.count(), 10);
        // Rank 5 lies in (1,2] after 4: 1 + 1·(5−4)/4 = 1.25.
        assert!((h.quantile(0.5).unwrap() - 1.25).abs() < 1e-12);
        // Rank 9.5 lies in (2,5] after 8: 2 + 3·1.5/2 = 4.25.
        assert!((h.quantile(0.95).unwrap() - 4.25).abs() < 1e-12);
        h.observe(100.0);
        // Rank 10.89 lies in +Inf: the highest finite bound.
        assert_eq!(h.quantile(0.99), Some(5.0));
        h.clear();
        assert_eq!(h.quantile(0.5), None);
    }

    #[test]
    fn log_histogram_resolution() {
        let mut h = LogHistogram::default();
        for i in 1..=10_000 {
            h.observe(f64::from(i) * 0.01); // 0.01 .. 100 s uniform
        }
        for (q, want) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = h.quantile(q).unwrap();
            assert!((got / want - 1.0).abs() < 0.012, "q{q}: {got} vs {want}");
        }
        h.observe(0.0);
        h.observe(1e12);
        assert_eq!(h.count(), 10_002);
    }
}
