//! The metrics snapshot: what a cluster's Prometheus can tell at one instant.
//!
//! The simulator fills it from its own scrapes (at the scrape interval, with rate windows, optional noise
//! and staleness). The controller fills it from PromQL instant queries against metrics real serving stacks
//! expose (`vllm:num_requests_waiting`, `vllm:num_requests_running`, `DCGM_FI_DEV_GPU_UTIL`,
//! `vllm:kv_cache_usage_perc`, `vllm:e2e_request_latency_seconds_bucket`, a request counter). Both feed the
//! same [`crate::features()`] function.

use serde::{Deserialize, Serialize};

use crate::time::SimTime;

/// What the operator states about the served model, carried in every snapshot so that one policy can
/// serve many services (the profile is part of the observation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProfile {
    /// Estimated cold start of one new replica (node provisioning + image pull + model load), seconds.
    pub cold_start_s: f64,
    /// Throughput of one replica at saturation, requests/s (of a mean-sized request).
    pub capacity_rps: f64,
    /// GPUs one replica occupies.
    pub gpus_per_replica: u32,
    /// Price of one GPU-hour, US dollars.
    pub usd_per_gpu_hour: f64,
    /// The per-request latency limit of the SLO, seconds (end-to-end or TTFT, as the service defines it).
    pub slo_latency_s: f64,
}

impl ServiceProfile {
    /// Dollars per replica-hour: `usd_per_gpu_hour × gpus_per_replica`.
    pub fn usd_per_replica_hour(&self) -> f64 {
        self.usd_per_gpu_hour * f64::from(self.gpus_per_replica)
    }
}

/// Everything a cluster's Prometheus can tell at one instant about one served model.
///
/// Counts of requests are `f64` because Prometheus returns floats (sums over pods); replica counts come
/// from the Kubernetes API and are integers. Latency quantiles are `None` when no request completed in
/// the window (PromQL's `histogram_quantile` returns NaN there).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSnapshot {
    /// Wall-clock time of the scrape this snapshot describes, Unix seconds (UTC).
    pub time: SimTime,
    /// Arrival rate over the last minute, requests/s (`rate(requests_total[1m])`).
    pub arrival_rate_1m: f64,
    /// Arrival rate over the last five minutes, requests/s.
    pub arrival_rate_5m: f64,
    /// Highest 1-minute arrival rate of the last 15 minutes, requests/s
    /// (`max_over_time(<arrival_rate_1m query>[15m:15s])`). Feature schema 2 reads it; `None` when the
    /// source cannot tell (an older decision log, a failed query), and a schema-2 model then falls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_peak_15m: Option<f64>,
    /// Highest 1-minute arrival rate of the last hour, requests/s (`max_over_time(...[1h:15s])`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_peak_1h: Option<f64>,
    /// Mean arrival rate over the last hour, requests/s (`avg_over_time(<arrival_rate_1m query>[1h:15s])`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_1h: Option<f64>,
    /// Requests waiting for a batch slot, summed over replicas (`vllm:num_requests_waiting`).
    pub queue_depth: f64,
    /// Requests being served, summed over replicas (`vllm:num_requests_running`).
    pub running: f64,
    /// Replicas ready to serve (not draining).
    pub ready_replicas: u32,
    /// Replicas requested but not ready yet: pending a GPU, provisioning a node, pulling, loading the model.
    pub starting_replicas: u32,
    /// Mean GPU utilization of ready replicas over the last scrape interval, 0–1 (busy fraction).
    pub gpu_utilization: f64,
    /// Mean KV-cache usage proxy of ready replicas, 0–1 (`vllm:kv_cache_usage_perc`).
    pub kv_cache_usage: f64,
    /// Median request latency over the last minute, seconds.
    pub latency_p50_s: Option<f64>,
    /// 95th percentile request latency over the last minute, seconds.
    pub latency_p95_s: Option<f64>,
    /// 99th percentile request latency over the last minute, seconds.
    pub latency_p99_s: Option<f64>,
    /// The service profile the operator declared.
    pub profile: ServiceProfile,
}

impl MetricsSnapshot {
    /// Replicas the target currently asks for: ready plus starting.
    pub fn current_replicas(&self) -> u32 {
        self.ready_replicas.saturating_add(self.starting_replicas)
    }

    /// The first field feature schema `schema` needs that this snapshot lacks (`None` for a rate window
    /// the source could not fill), if any.
    pub fn missing_for_schema(&self, schema: u32) -> Option<&'static str> {
        if schema < 2 {
            return None;
        }
        [
            ("arrival_rate_peak_15m", self.arrival_rate_peak_15m),
            ("arrival_rate_peak_1h", self.arrival_rate_peak_1h),
            ("arrival_rate_1h", self.arrival_rate_1h),
        ]
        .into_iter()
        .find(|(_, v)| v.is_none())
        .map(|(name, _)| name)
    }

    /// Names of the fields that hold a NaN or infinite value, or a negative count.
    ///
    /// The runtime refuses such a snapshot before computing features; [`crate::features()`] itself stays
    /// total (it maps them to bounded values) so that it can never panic.
    pub fn invalid_fields(&self) -> Vec<&'static str> {
        let mut bad = Vec::new();
        let mut check = |name: &'static str, v: f64| {
            if !v.is_finite() || v < 0.0 {
                bad.push(name);
            }
        };
        check("time", self.time.0.abs());
        check("arrival_rate_1m", self.arrival_rate_1m);
        check("arrival_rate_5m", self.arrival_rate_5m);
        for (name, v) in [
            ("arrival_rate_peak_15m", self.arrival_rate_peak_15m),
            ("arrival_rate_peak_1h", self.arrival_rate_peak_1h),
            ("arrival_rate_1h", self.arrival_rate_1h),
        ] {
            if let Some(v) = v {
                check(name, v);
            }
        }
        check("queue_depth", self.queue_depth);
        check("running", self.running);
        check("gpu_utilization", self.gpu_utilization);
        check("kv_cache_usage", self.kv_cache_usage);
        for (name, q) in [
            ("latency_p50_s", self.latency_p50_s),
            ("latency_p95_s", self.latency_p95_s),
            ("latency_p99_s", self.latency_p99_s),
        ] {
            if let Some(v) = q {
                check(name, v);
            }
        }
        check("profile.cold_start_s", self.profile.cold_start_s);
        check("profile.capacity_rps", self.profile.capacity_rps);
        check("profile.usd_per_gpu_hour", self.profile.usd_per_gpu_hour);
        check("profile.slo_latency_s", self.profile.slo_latency_s);
        bad
    }

    /// A quiet snapshot for tests and examples: `ready` replicas, no load.
    pub fn idle(time: SimTime, ready: u32, profile: ServiceProfile) -> Self {
        MetricsSnapshot {
            time,
            arrival_rate_1m: 0.0,
            arrival_rate_5m: 0.0,
            arrival_rate_peak_15m: Some(0.0),
            arrival_rate_peak_1h: Some(0.0),
            arrival_rate_1h: Some(0.0),
            queue_depth: 0.0,
            running: 0.0,
            ready_replicas: ready,
            starting_replicas: 0,
            gpu_utilization: 0.0,
            kv_cache_usage: 0.0,
            latency_p50_s: None,
            latency_p95_s: None,
            latency_p99_s: None,
            profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> ServiceProfile {
        ServiceProfile {
            cold_start_s: 150.0,
            capacity_rps: 6.0,
            gpus_per_replica: 2,
            usd_per_gpu_hour: 3.5,
            slo_latency_s: 20.0,
        }
    }

    #[test]
    fn json_roundtrip_and_unknown_fields_refused() {
        let mut s = MetricsSnapshot::idle(SimTime(1.7e9), 3, profile());
        s.latency_p95_s = Some(2.5);
        let text = serde_json::to_string(&s).unwrap();
        let back: MetricsSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let bad = text.replacen("\"running\"", "\"runing\"", 1);
        let err = serde_json::from_str::<MetricsSnapshot>(&bad).unwrap_err();
        assert!(err.to_string().contains("runing"), "{err}");
        // A snapshot written before schema 2 (no hour-scale rates) still reads, and says what it lacks.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        for k in [
            "arrival_rate_peak_15m",
            "arrival_rate_peak_1h",
            "arrival_rate_1h",
        ] {
            old.as_object_mut().unwrap().remove(k).unwrap();
        }
        let old: MetricsSnapshot = serde_json::from_value(old).unwrap();
        assert_eq!(old.missing_for_schema(1), None);
        assert_eq!(old.missing_for_schema(2), Some("arrival_rate_peak_15m"));
        assert_eq!(s.missing_for_schema(2), None);
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut s = MetricsSnapshot::idle(SimTime(1.7e9), 3, profile());
        assert!(s.invalid_fields().is_empty());
        s.queue_depth = f64::NAN;
        s.arrival_rate_1m = -1.0;
        s.latency_p99_s = Some(f64::INFINITY);
        assert_eq!(
            s.invalid_fields(),
            vec!["arrival_rate_1m", "queue_depth", "latency_p99_s"]
        );
        assert_eq!(s.current_replicas(), 3);
        s.arrival_rate_peak_1h = Some(f64::NAN);
        assert_eq!(
            s.invalid_fields(),
            vec![
                "arrival_rate_1m",
                "arrival_rate_peak_1h",
                "queue_depth",
                "latency_p99_s"
            ]
        );
        assert_eq!(profile().usd_per_replica_hour(), 7.0);
    }
}
