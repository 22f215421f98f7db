//! The ONE feature function.
//!
//! [`features()`] is the only place where a [`MetricsSnapshot`] becomes what a policy sees. The simulator and
//! the controller both call it, and the runtime checks a model's recorded `FEATURE_NAMES` and
//! `OBS_SCHEMA_VERSION` against these constants before it trusts the model.
//!
//! Design: every feature is scale-free, so one model serves services of any size. Loads and queues are
//! expressed in replicas' worth of capacity (`x / capacity_rps`), heavy-tailed quantities go through
//! `ln(1 + x)`, latencies are relative to the SLO, and the calendar is encoded as sin/cos pairs. Every value is
//! clipped into the declared bounds ([`ObsSpace::bounds`]), and non-finite inputs map to the lower bound,
//! so the function is total: it never panics and never returns NaN.
//!
//! Changing the order, a name, a transform or a bound is a schema change: bump [`OBS_SCHEMA_VERSION`].
//!
//! Schema 2 appends three hour-scale rate features to schema 1's 22, so that steady traffic and the calm
//! phase of a bursty one no longer look alike. Schema 1 is schema 2's first 22 features, unchanged: a
//! schema-1 model reads that prefix ([`n_features`]), and one function still computes both.

use serde::{Deserialize, Serialize};

use crate::snapshot::MetricsSnapshot;

/// Version of the feature schema. Models record it; the runtime refuses a model built for another version.
pub const OBS_SCHEMA_VERSION: u32 = 2;

/// Number of features of the current schema.
pub const N_FEATURES: usize = 25;

/// Number of features of schema 1 (the first 22 of schema 2, unchanged).
pub const N_FEATURES_V1: usize = 22;

/// How many of [`FEATURE_NAMES`] (a prefix) feature schema `schema` reads, or `None` for a schema this
/// build does not compute.
pub fn n_features(schema: u32) -> Option<usize> {
    match schema {
        1 => Some(N_FEATURES_V1),
        2 => Some(N_FEATURES),
        _ => None,
    }
}

/// Feature names, in observation order, with their declared `[low, high]` bounds.
///
/// | # | name | meaning | unit |
/// |---|---|---|---|
/// | 0 | `log_load_1m` | `ln(1 + arrival_rate_1m / capacity_rps)` | ln(replicas of load) |
/// | 1 | `log_load_5m` | `ln(1 + arrival_rate_5m / capacity_rps)` | ln(replicas of load) |
/// | 2 | `load_per_ready` | `arrival_rate_1m / (capacity_rps · max(ready, 1))` | ratio |
/// | 3 | `log_queue` | `ln(1 + queue_depth / capacity_rps)` | ln(seconds of one replica's work) |
/// | 4 | `log_running` | `ln(1 + running / capacity_rps)` | ln(seconds of one replica's work) |
/// | 5 | `queue_per_ready` | `queue_depth / (capacity_rps · max(ready, 1))` | seconds to drain |
/// | 6 | `log_ready` | `ln(1 + ready_replicas)` | ln(replicas) |
/// | 7 | `log_starting` | `ln(1 + starting_replicas)` | ln(replicas) |
/// | 8 | `starting_frac` | `starting / max(ready + starting, 1)` | ratio |
/// | 9 | `gpu_utilization` | busy fraction of ready GPUs | 0–1 |
/// | 10 | `kv_cache_usage` | KV-cache usage proxy | 0–1 |
/// | 11 | `log_p50_over_slo` | `ln(1 + p50 / slo)`, 0 when missing | ln(ratio) |
/// | 12 | `log_p95_over_slo` | `ln(1 + p95 / slo)`, 0 when missing | ln(ratio) |
/// | 13 | `log_p99_over_slo` | `ln(1 + p99 / slo)`, 0 when missing | ln(ratio) |
/// | 14 | `latency_missing` | 1 when no latency was observed in the last minute | 0/1 |
/// | 15 | `tod_sin` | `sin(2π · second_of_day / 86400)` | – |
/// | 16 | `tod_cos` | `cos(2π · second_of_day / 86400)` | – |
/// | 17 | `dow_sin` | `sin(2π · second_of_week / 604800)`, Monday 00:00 = 0 | – |
/// | 18 | `dow_cos` | `cos(2π · second_of_week / 604800)` | – |
/// | 19 | `log_cold_start_min` | `ln(1 + cold_start_s / 60)` | ln(minutes) |
/// | 20 | `log_capacity` | `ln(1 + capacity_rps)` | ln(req/s) |
/// | 21 | `log_usd_per_replica_hour` | `ln(1 + usd_per_gpu_hour · gpus_per_replica)` | ln($/h) |
/// | 22 | `log_load_peak_15m` | `ln(1 + arrival_rate_peak_15m / capacity_rps)` (schema 2) | ln(replicas of load) |
/// | 23 | `log_load_peak_1h` | `ln(1 + arrival_rate_peak_1h / capacity_rps)` (schema 2) | ln(replicas of load) |
/// | 24 | `log_load_1h` | `ln(1 + arrival_rate_1h / capacity_rps)` (schema 2) | ln(replicas of load) |
///
/// A missing hour-scale rate (`None`) maps to 0; the runtime never feeds such a snapshot to a schema-2
/// model ([`MetricsSnapshot::missing_for_schema`]).
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "log_load_1m",
    "log_load_5m",
    "load_per_ready",
    "log_queue",
    "log_running",
    "queue_per_ready",
    "log_ready",
    "log_starting",
    "starting_frac",
    "gpu_utilization",
    "kv_cache_usage",
    "log_p50_over_slo",
    "log_p95_over_slo",
    "log_p99_over_slo",
    "latency_missing",
    "tod_sin",
    "tod_cos",
    "dow_sin",
    "dow_cos",
    "log_cold_start_min",
    "log_capacity",
    "log_usd_per_replica_hour",
    "log_load_peak_15m",
    "log_load_peak_1h",
    "log_load_1h",
];

/// Declared `[low, high]` bounds of each feature, in [`FEATURE_NAMES`] order.
const BOUNDS: [(f32, f32); N_FEATURES] = [
    (0.0, 12.0),  // log_load_1m
    (0.0, 12.0),  // log_load_5m
    (0.0, 100.0), // load_per_ready
    (0.0, 16.0),  // log_queue
    (0.0, 16.0),  // log_running
    (0.0, 1.0e4), // queue_per_ready
    (0.0, 10.0),  // log_ready
    (0.0, 10.0),  // log_starting
    (0.0, 1.0),   // starting_frac
    (0.0, 1.0),   // gpu_utilization
    (0.0, 1.0),   // kv_cache_usage
    (0.0, 12.0),  // log_p50_over_slo
    (0.0, 12.0),  // log_p95_over_slo
    (0.0, 12.0),  // log_p99_over_slo
    (0.0, 1.0),   // latency_missing
    (-1.0, 1.0),  // tod_sin
    (-1.0, 1.0),  // tod_cos
    (-1.0, 1.0),  // dow_sin
    (-1.0, 1.0),  // dow_cos
    (0.0, 10.0),  // log_cold_start_min
    (0.0, 16.0),  // log_capacity
    (0.0, 12.0),  // log_usd_per_replica_hour
    (0.0, 12.0),  // log_load_peak_15m
    (0.0, 12.0),  // log_load_peak_1h
    (0.0, 12.0),  // log_load_1h
];

/// One observation: the features of one snapshot, in [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Observation(pub [f32; N_FEATURES]);

impl Observation {
    /// The value of the feature called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<f32> {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
    }
}

/// The observation space: feature names and box bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsSpace {
    /// Feature names, in order.
    pub names: &'static [&'static str],
    /// `[low, high]` of each feature.
    pub bounds: &'static [(f32, f32)],
    /// Schema version of the feature function.
    pub schema_version: u32,
}

impl ObsSpace {
    /// The space [`features()`] maps into.
    pub fn standard() -> Self {
        ObsSpace {
            names: &FEATURE_NAMES,
            bounds: &BOUNDS,
            schema_version: OBS_SCHEMA_VERSION,
        }
    }

    /// Index and name of the first feature outside its bounds (or NaN), if any.
    pub fn violation(&self, obs: &Observation) -> Option<(usize, &'static str)> {
        obs.0
            .iter()
            .zip(self.bounds)
            .position(|(v, (lo, hi))| !(v >= lo && v <= hi))
            .map(|i| (i, self.names[i]))
    }

    /// Whether every feature is inside its bounds.
    pub fn contains(&self, obs: &Observation) -> bool {
        self.violation(obs).is_none()
    }
}

/// `x` clipped into the bounds of feature `i`; a non-finite `x` maps to the lower bound
/// (`+inf` to the upper bound).
fn clip(i: usize, x: f64) -> f32 {
    let (lo, hi) = BOUNDS[i];
    if x.is_nan() {
        return lo;
    }
    (x as f32).clamp(lo, hi)
}

/// `ln(1 + max(x, 0))`, treating NaN as 0.
fn ln1p_pos(x: f64) -> f64 {
    if x > 0.0 { x.ln_1p() } else { 0.0 }
}

/// The ONE feature function: snapshot → observation. See [`FEATURE_NAMES`] for the table.
pub fn features(s: &MetricsSnapshot) -> Observation {
    use std::f64::consts::TAU;
    let p = &s.profile;
    // Guard the divisors: a zero or invalid capacity/SLO must not produce NaN.
    let cap = if p.capacity_rps.is_finite() && p.capacity_rps > 1e-9 {
        p.capacity_rps
    } else {
        1e-9
    };
    let slo = if p.slo_latency_s.is_finite() && p.slo_latency_s > 1e-9 {
        p.slo_latency_s
    } else {
        1e-9
    };
    let ready = f64::from(s.ready_replicas);
    let starting = f64::from(s.starting_replicas);
    let ready1 = ready.max(1.0);
    let lat = |q: Option<f64>| q.map_or(0.0, |v| ln1p_pos(v / slo));
    let missing =
        s.latency_p50_s.is_none() && s.latency_p95_s.is_none() && s.latency_p99_s.is_none();
    let t = if s.time.0.is_finite() {
        s.time
    } else {
        crate::SimTime(0.0)
    };
    let day = TAU * t.second_of_day() / 86_400.0;
    let week = TAU * t.second_of_week() / 604_800.0;

    let raw: [f64; N_FEATURES] = [
        ln1p_pos(s.arrival_rate_1m / cap),
        ln1p_pos(s.arrival_rate_5m / cap),
        s.arrival_rate_1m / (cap * ready1),
        ln1p_pos(s.queue_depth / cap),
        ln1p_pos(s.running / cap),
        s.queue_depth / (cap * ready1),
        ready.ln_1p(),
        starting.ln_1p(),
        starting / (ready + starting).max(1.0),
        s.gpu_utilization,
        s.kv_cache_usage,
        lat(s.latency_p50_s),
        lat(s.latency_p95_s),
        lat(s.latency_p99_s),
        if missing { 1.0 } else { 0.0 },
        day.sin(),
        day.cos(),
        week.sin(),
        week.cos(),
        ln1p_pos(p.cold_start_s / 60.0),
        ln1p_pos(p.capacity_rps),
        ln1p_pos(p.usd_per_replica_hour()),
        s.arrival_rate_peak_15m.map_or(0.0, |r| ln1p_pos(r / cap)),
        s.arrival_rate_peak_1h.map_or(0.0, |r| ln1p_pos(r / cap)),
        s.arrival_rate_1h.map_or(0.0, |r| ln1p_pos(r / cap)),
    ];
    let mut out = [0.0f32; N_FEATURES];
    for (i, x) in raw.into_iter().enumerate() {
        out[i] = clip(i, x);
    }
    Observation(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServiceProfile, SimTime};

    fn snap() -> MetricsSnapshot {
        let profile = ServiceProfile {
            cold_start_s: 120.0,
            capacity_rps: 5.0,
            gpus_per_replica: 1,
            usd_per_gpu_hour: 0.8,
            slo_latency_s: 10.0,
        };
        let mut s = MetricsSnapshot::idle(SimTime(1_715_299_200.0 + 6.0 * 3600.0), 4, profile);
        s.arrival_rate_1m = 10.0;
        s.arrival_rate_5m = 5.0;
        s.queue_depth = 20.0;
        s.running = 8.0;
        s.starting_replicas = 1;
        s.gpu_utilization = 0.5;
        s.kv_cache_usage = 0.25;
        s.latency_p95_s = Some(10.0);
        s.arrival_rate_peak_15m = Some(20.0);
        s.arrival_rate_peak_1h = Some(45.0);
        s.arrival_rate_1h = Some(5.0);
        s
    }

    #[test]
    fn names_bounds_and_order_are_consistent() {
        assert_eq!(FEATURE_NAMES.len(), BOUNDS.len());
        let mut names = FEATURE_NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES, "feature names must be unique");
        for (lo, hi) in BOUNDS {
            assert!(lo < hi);
        }
    }

    #[test]
    fn known_snapshot_gives_known_features() {
        let o = features(&snap());
        let close = |name: &str, want: f64| {
            let got = f64::from(o.get(name).unwrap());
            assert!((got - want).abs() < 1e-6, "{name}: got {got}, want {want}");
        };
        close("log_load_1m", 3.0f64.ln());
        close("log_load_5m", 2.0f64.ln());
        close("load_per_ready", 0.5);
        close("log_queue", 5.0f64.ln());
        close("queue_per_ready", 1.0);
        close("log_ready", 5.0f64.ln());
        close("starting_frac", 0.2);
        close("log_p95_over_slo", 2.0f64.ln());
        close("log_p50_over_slo", 0.0);
        close("latency_missing", 0.0);
        // 06:00 on a Friday: a quarter of the day.
        close("tod_sin", 1.0);
        close("tod_cos", 0.0);
        let week = std::f64::consts::TAU * (4.0 * 86_400.0 + 6.0 * 3600.0) / 604_800.0;
        close("dow_sin", week.sin());
        close("dow_cos", week.cos());
        close("log_cold_start_min", 3.0f64.ln());
        close("log_usd_per_replica_hour", 1.8f64.ln());
        close("log_load_peak_15m", 5.0f64.ln());
        close("log_load_peak_1h", 10.0f64.ln());
        close("log_load_1h", 2.0f64.ln());
        assert!(ObsSpace::standard().contains(&o));
    }

    #[test]
    fn garbage_in_stays_in_bounds() {
        let mut s = snap();
        s.arrival_rate_1m = f64::NAN;
        s.arrival_rate_5m = f64::INFINITY;
        s.queue_depth = -5.0;
        s.running = 1e300;
        s.gpu_utilization = 7.0;
        s.kv_cache_usage = f64::NEG_INFINITY;
        s.latency_p99_s = Some(f64::NAN);
        s.time = SimTime(f64::NAN);
        s.profile.capacity_rps = 0.0;
        s.profile.slo_latency_s = f64::NAN;
        let o = features(&s);
        assert!(ObsSpace::standard().contains(&o), "{o:?}");
        assert!(o.0.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn schema_1_is_the_unchanged_prefix_of_schema_2() {
        assert_eq!(n_features(1), Some(N_FEATURES_V1));
        assert_eq!(n_features(OBS_SCHEMA_VERSION), Some(N_FEATURES));
        assert_eq!(n_features(3), None);
        assert_eq!(FEATURE_NAMES[N_FEATURES_V1 - 1], "log_usd_per_replica_hour");
        // The hour-scale rates move only the features after the prefix.
        let a = features(&snap());
        let mut s = snap();
        s.arrival_rate_peak_15m = None;
        s.arrival_rate_peak_1h = Some(1e9);
        s.arrival_rate_1h = Some(f64::NAN);
        let b = features(&s);
        assert_eq!(a.0[..N_FEATURES_V1], b.0[..N_FEATURES_V1]);
        assert_eq!(b.0[N_FEATURES_V1..], [0.0, 12.0, 0.0]);
    }

    #[test]
    fn out_of_bounds_is_reported_by_name() {
        let mut o = features(&snap());
        o.0[9] = 1.5;
        assert_eq!(
            ObsSpace::standard().violation(&o),
            Some((9, "gpu_utilization"))
        );
        o.0[9] = f32::NAN;
        assert!(!ObsSpace::standard().contains(&o));
    }
}
