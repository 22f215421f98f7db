//! The autoscalers users run today, as [`Policy`] implementations on rlscale's [`MetricsSnapshot`].
//!
//! One file per control law (mini-redis `src/cmd/mod.rs` layout) and one enum, [`Baseline`], that
//! delegates `decide`. Each law follows `docs/peers.md` (the upstream algorithms of the Kubernetes
//! HPA, KEDA, Knative KPA, Ray Serve and AIBrix, with their public sources), with the defaults
//! stated there:
//!
//! | law | file | section of `docs/peers.md` |
//! |---|---|---|
//! | Kubernetes HPA autoscaling/v2 | [`hpa`] | §1 |
//! | KEDA ScaledObject + Prometheus trigger | [`keda`] | §2 |
//! | Knative KPA | [`kpa`] | §3 |
//! | Ray Serve default policy | [`ray`] | §4 |
//! | AIBrix APA | [`apa`] | §5 |
//! | static N | [`fixed`] | — |
//! | seasonal predictive rule | [`predictive`] | — |
//!
//! # How a law sees the cluster
//! * **Time** is the `now` argument; no law reads a clock. Each law keeps its own period (HPA 15 s,
//!   KEDA polling 30 s, KPA tick 2 s, Ray loop 0.1 s, AIBrix 10 s) and, when called more often than
//!   that, repeats its last decision. When called less often (the simulator decides every
//!   `control_interval_s`, 15 s), it acts once per call; window averages are then taken over the
//!   samples it was given. This is the one systematic departure from the peers, stated in each file.
//! * **"Current" replicas** (`scale.spec.replicas`) is the law's own last decision once it has made one:
//!   a controller knows what it wrote. Before that, it is the snapshot's ready + starting replicas.
//! * **Ready and starting pods** come from the snapshot: `ready_replicas` are Running and Ready;
//!   `starting_replicas` are Pending or Running-not-Ready (node provisioning, image pull, model load) and
//!   report no metrics, as new vLLM pods do.
//! * **Metrics** are read through [`Signal`], which names the Prometheus series a real deployment would
//!   query for the same quantity.
#![warn(missing_docs)]

pub mod apa;
pub mod fixed;
pub mod hpa;
pub mod keda;
pub mod kpa;
pub mod predictive;
pub mod ray;

use std::fmt;

use rlscale_core::{Decision, MetricsSnapshot, Policy, Reason, SimTime, Source};
use serde::{Deserialize, Serialize};

pub use apa::{Apa, ApaConfig};
pub use fixed::{Static, StaticConfig};
pub use hpa::{Hpa, HpaConfig};
pub use keda::{Keda, KedaConfig};
pub use kpa::{Kpa, KpaConfig};
pub use predictive::{Predictive, PredictiveConfig};
pub use ray::{Ray, RayConfig};

/// The replica bounds a law is clamped to (`minReplicas`, `maxReplicas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
}

impl Bounds {
    /// Clamp `n` into `[min, max]`.
    pub fn clamp(&self, n: u32) -> u32 {
        n.clamp(self.min, self.max.max(self.min))
    }
}

/// A bad baseline configuration: which field, which value, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {message}")]
pub struct ConfigError {
    /// Dotted field path, e.g. `hpa.metrics[0].target`.
    pub field: String,
    /// The offending value, as written.
    pub value: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// A new error.
    pub fn new(
        field: impl Into<String>,
        value: impl fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}

/// A sync or polling period counts as elapsed this close to its end: Unix-second clocks near 1.7e9
/// carry rounding of about 1e-7 s, which must not skip a sync.
pub(crate) const PERIOD_SLACK_S: f64 = 1e-6;

/// Check that `v` is finite and `> 0`.
pub(crate) fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, v, "must be a finite number > 0"))
    }
}

/// Check that `v` is finite and `>= 0`.
pub(crate) fn non_negative(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, v, "must be a finite number >= 0"))
    }
}

/// The mean of the samples `(time, value)` whose time lies in `(now − window, now]`; `None` if there is
/// none. The window averages of KPA, Ray Serve and AIBrix, over the samples a law was given.
pub(crate) fn window_mean(
    samples: &std::collections::VecDeque<(f64, f64)>,
    now: f64,
    window: f64,
) -> Option<f64> {
    let (sum, n) = samples
        .iter()
        .filter(|&&(t, _)| t > now - window && t <= now)
        .fold((0.0, 0u32), |(s, n), &(_, v)| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// A quantity a law scales on, and the Prometheus series a real deployment reads it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Requests waiting for a batch slot (`vllm:num_requests_waiting`).
    QueueDepth,
    /// Requests in a batch (`vllm:num_requests_running`).
    Running,
    /// Waiting + running: the concurrency Knative's queue-proxy and Ray Serve count.
    InFlight,
    /// Request arrival rate over 1 min, req/s (`rate(vllm:request_success_total[1m])` or the gateway's).
    ArrivalRate,
    /// GPU busy fraction of ready replicas, 0–1 (`DCGM_FI_DEV_GPU_UTIL / 100`).
    GpuUtilization,
    /// KV-cache usage of ready replicas, 0–1 (`vllm:kv_cache_usage_perc`).
    KvCacheUsage,
}

impl Signal {
    /// The fleet-wide total (what `sum(...)` over the pods returns). For the 0–1 per-pod gauges this is
    /// the per-pod mean times the ready replicas. `None` when the snapshot holds a NaN, an infinity or a
    /// negative value there (a failed metric).
    pub fn total(self, s: &MetricsSnapshot) -> Option<f64> {
        let v = match self {
            Signal::QueueDepth => s.queue_depth,
            Signal::Running => s.running,
            Signal::InFlight => s.queue_depth + s.running,
            Signal::ArrivalRate => s.arrival_rate_1m,
            Signal::GpuUtilization => s.gpu_utilization * f64::from(s.ready_replicas),
            Signal::KvCacheUsage => s.kv_cache_usage * f64::from(s.ready_replicas),
        };
        (v.is_finite() && v >= 0.0).then_some(v)
    }

    /// The mean over the ready pods that report it; `None` with no ready pod or a failed metric.
    pub fn per_pod_mean(self, s: &MetricsSnapshot) -> Option<f64> {
        if s.ready_replicas == 0 {
            return None;
        }
        self.total(s).map(|t| t / f64::from(s.ready_replicas))
    }

    /// The PromQL a real deployment uses for the fleet total of this signal.
    pub fn promql(self) -> &'static str {
        match self {
            Signal::QueueDepth => "sum(vllm:num_requests_waiting)",
            Signal::Running => "sum(vllm:num_requests_running)",
            Signal::InFlight => "sum(vllm:num_requests_waiting) + sum(vllm:num_requests_running)",
            Signal::ArrivalRate => "sum(rate(vllm:request_success_total[1m]))",
            Signal::GpuUtilization => "sum(DCGM_FI_DEV_GPU_UTIL) / 100",
            Signal::KvCacheUsage => "sum(vllm:kv_cache_usage_perc)",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Signal::QueueDepth => "queue_depth",
            Signal::Running => "running",
            Signal::InFlight => "in_flight",
            Signal::ArrivalRate => "arrival_rate",
            Signal::GpuUtilization => "gpu_utilization",
            Signal::KvCacheUsage => "kv_cache_usage",
        };
        f.write_str(s)
    }
}

/// A [`Decision`] by a baseline moving from `current` to `replicas`, with the matching reason.
pub fn decision(current: u32, replicas: u32) -> Decision {
    let reason = match replicas.cmp(&current) {
        std::cmp::Ordering::Greater => Reason::ScaleUp,
        std::cmp::Ordering::Less => Reason::ScaleDown,
        std::cmp::Ordering::Equal => Reason::Hold,
    };
    Decision {
        replicas,
        source: Source::Baseline,
        reason,
    }
}

/// The main knob `rlscale tune` grid-searches, with its name and value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Knob {
    /// Dotted config path, e.g. `hpa.metrics[0].target`.
    pub name: &'static str,
    /// Its value.
    pub value: f64,
}

/// A baseline's settings, as written in `configs/baselines/*.toml` (`law = "hpa"` plus that law's table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "law", rename_all = "snake_case")]
pub enum BaselineConfig {
    /// A fixed replica count.
    Static(StaticConfig),
    /// Kubernetes HPA autoscaling/v2.
    Hpa(HpaConfig),
    /// KEDA ScaledObject with a Prometheus trigger (and the HPA it generates).
    Keda(KedaConfig),
    /// Knative KPA.
    Kpa(KpaConfig),
    /// Ray Serve's default autoscaling policy.
    Ray(RayConfig),
    /// AIBrix APA.
    Apa(ApaConfig),
    /// Same time yesterday (or last week) plus headroom.
    Predictive(PredictiveConfig),
}

impl BaselineConfig {
    /// The law's short name (`hpa`, `keda`, …).
    pub fn law(&self) -> &'static str {
        match self {
            BaselineConfig::Static(_) => "static",
            BaselineConfig::Hpa(_) => "hpa",
            BaselineConfig::Keda(_) => "keda",
            BaselineConfig::Kpa(_) => "kpa",
            BaselineConfig::Ray(_) => "ray",
            BaselineConfig::Apa(_) => "apa",
            BaselineConfig::Predictive(_) => "predictive",
        }
    }

    /// The defaults of the law named `law` (the peers' documented defaults), or `None` for an unknown name.
    pub fn default_for(law: &str) -> Option<BaselineConfig> {
        Some(match law {
            "static" => BaselineConfig::Static(StaticConfig::default()),
            "hpa" => BaselineConfig::Hpa(HpaConfig::default()),
            "keda" => BaselineConfig::Keda(KedaConfig::default()),
            "kpa" => BaselineConfig::Kpa(KpaConfig::default()),
            "ray" => BaselineConfig::Ray(RayConfig::default()),
            "apa" => BaselineConfig::Apa(ApaConfig::default()),
            "predictive" => BaselineConfig::Predictive(PredictiveConfig::default()),
            _ => return None,
        })
    }

    /// Every law name [`Self::default_for`] knows.
    pub const LAWS: [&'static str; 7] =
        ["hpa", "keda", "kpa", "ray", "apa", "static", "predictive"];

    /// Check every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BaselineConfig::Static(c) => c.validate(),
            BaselineConfig::Hpa(c) => c.validate(),
            BaselineConfig::Keda(c) => c.validate(),
            BaselineConfig::Kpa(c) => c.validate(),
            BaselineConfig::Ray(c) => c.validate(),
            BaselineConfig::Apa(c) => c.validate(),
            BaselineConfig::Predictive(c) => c.validate(),
        }
    }

    /// The main knob `rlscale tune` searches.
    pub fn knob(&self) -> Knob {
        let (name, value) = match self {
            BaselineConfig::Static(c) => ("static.replicas", f64::from(c.replicas.unwrap_or(0))),
            BaselineConfig::Hpa(c) => ("hpa.metrics[0].target", c.metrics[0].target),
            BaselineConfig::Keda(c) => ("keda.trigger.threshold", c.trigger.threshold),
            BaselineConfig::Kpa(c) => ("kpa.target", c.target),
            BaselineConfig::Ray(c) => ("ray.target_ongoing_requests", c.target_ongoing_requests),
            BaselineConfig::Apa(c) => ("apa.target_value", c.target_value),
            BaselineConfig::Predictive(c) => ("predictive.headroom", c.headroom),
        };
        Knob { name, value }
    }

    /// A copy with the main knob set to `value`.
    pub fn with_knob(&self, value: f64) -> BaselineConfig {
        let mut c = self.clone();
        match &mut c {
            BaselineConfig::Static(c) => c.replicas = Some(value.round().max(0.0) as u32),
            BaselineConfig::Hpa(c) => c.metrics[0].target = value,
            BaselineConfig::Keda(c) => c.trigger.threshold = value,
            BaselineConfig::Kpa(c) => c.target = value,
            BaselineConfig::Ray(c) => c.target_ongoing_requests = value,
            BaselineConfig::Apa(c) => c.target_value = value,
            BaselineConfig::Predictive(c) => c.headroom = value,
        }
        c
    }

    /// Build the law for a target with these bounds. `initial` is the replica count the target starts at
    /// (a static law without `replicas` holds it).
    pub fn build(&self, bounds: Bounds, initial: u32) -> Result<Baseline, ConfigError> {
        self.validate()?;
        if let BaselineConfig::Keda(c) = self
            && let Some(idle) = c.idle_replica_count
            && idle >= bounds.min
        {
            // KEDA's admission webhook: "IdleReplicaCount must be less than MinReplicaCount".
            return Err(ConfigError::new(
                "keda.idle_replica_count",
                idle,
                format!("must be less than the minimum replicas ({})", bounds.min),
            ));
        }
        Ok(match self {
            BaselineConfig::Static(c) => Baseline::Static(Static::new(c.clone(), bounds, initial)),
            BaselineConfig::Hpa(c) => Baseline::Hpa(Hpa::new(c.clone(), bounds)),
            BaselineConfig::Keda(c) => Baseline::Keda(Keda::new(c.clone(), bounds)),
            BaselineConfig::Kpa(c) => Baseline::Kpa(Kpa::new(c.clone(), bounds)),
            BaselineConfig::Ray(c) => Baseline::Ray(Ray::new(c.clone(), bounds)),
            BaselineConfig::Apa(c) => Baseline::Apa(Apa::new(c.clone(), bounds)),
            BaselineConfig::Predictive(c) => {
                Baseline::Predictive(Predictive::new(c.clone(), bounds))
            }
        })
    }
}

/// A built baseline law; `decide` delegates to the law.
#[derive(Debug, Clone)]
pub enum Baseline {
    /// See [`Static`].
    Static(Static),
    /// See [`Hpa`].
    Hpa(Hpa),
    /// See [`Keda`].
    Keda(Keda),
    /// See [`Kpa`].
    Kpa(Kpa),
    /// See [`Ray`].
    Ray(Ray),
    /// See [`Apa`].
    Apa(Apa),
    /// See [`Predictive`].
    Predictive(Predictive),
}

impl Baseline {
    /// The target's current `spec.replicas`, when another controller writes it (see
    /// [`Hpa::observe_current`]); laws without that notion ignore it.
    pub fn observe_current(&mut self, replicas: u32) {
        if let Baseline::Hpa(h) = self {
            h.observe_current(replicas);
        }
    }

    fn inner(&mut self) -> &mut dyn Policy {
        match self {
            Baseline::Static(p) => p,
            Baseline::Hpa(p) => p,
            Baseline::Keda(p) => p,
            Baseline::Kpa(p) => p,
            Baseline::Ray(p) => p,
            Baseline::Apa(p) => p,
            Baseline::Predictive(p) => p,
        }
    }
}

impl Policy for Baseline {
    fn name(&self) -> String {
        match self {
            Baseline::Static(p) => p.name(),
            Baseline::Hpa(p) => p.name(),
            Baseline::Keda(p) => p.name(),
            Baseline::Kpa(p) => p.name(),
            Baseline::Ray(p) => p.name(),
            Baseline::Apa(p) => p.name(),
            Baseline::Predictive(p) => p.name(),
        }
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        self.inner().decide(snapshot, now)
    }

    fn reset(&mut self) {
        self.inner().reset()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Snapshots for the laws' tests.
    use rlscale_core::{MetricsSnapshot, ServiceProfile, SimTime};

    /// The llm-8b-l4 profile.
    pub fn profile() -> ServiceProfile {
        ServiceProfile {
            cold_start_s: 135.0,
            capacity_rps: 3.0,
            gpus_per_replica: 1,
            usd_per_gpu_hour: 0.8,
            slo_latency_s: 10.0,
        }
    }

    /// `ready` ready replicas, `starting` starting, at time `t` seconds, with no load.
    pub fn snap(t: f64, ready: u32, starting: u32) -> MetricsSnapshot {
        let mut s = MetricsSnapshot::idle(SimTime(t), ready, profile());
        s.starting_replicas = starting;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BaselineConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn invalid_configs_name_the_field_and_value() {
        let cases = [
            ("law = \"hpa\"\nmetrics = []", "hpa.metrics", "[]"),
            (
                "law = \"hpa\"\n[[metrics]]\nkind = \"pods_average_value\"\nsignal = \"running\"\ntarget = -1.0",
                "hpa.metrics[0].target",
                "-1",
            ),
            (
                "law = \"hpa\"\n[[metrics]]\nkind = \"pods_average_value\"\nsignal = \"running\"\ntarget = 8.0\n[behavior.scale_up]\npolicies = []",
                "hpa.behavior.scale_up.policies",
                "[]",
            ),
            (
                "law = \"hpa\"\n[[metrics]]\nkind = \"pods_average_value\"\nsignal = \"running\"\ntarget = 8.0\n[behavior.scale_down]\npolicies = [{ type = \"Pods\", value = 0, period_s = 60.0 }]",
                "hpa.behavior.scale_down.policies[0].value",
                "0",
            ),
        ];
        for (text, field, value) in cases {
            let e = parse(text).validate().unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.value.as_str()),
                (field, value),
                "{text}"
            );
        }
    }

    #[test]
    fn keda_idle_must_be_below_min() {
        let cfg = parse("law = \"keda\"\nidle_replica_count = 1");
        let e = cfg.build(Bounds { min: 1, max: 10 }, 1).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.value.as_str()),
            ("keda.idle_replica_count", "1")
        );
        assert!(
            e.message.contains("less than the minimum replicas (1)"),
            "{e}"
        );
        assert!(cfg.build(Bounds { min: 2, max: 10 }, 2).is_ok());
    }
}
