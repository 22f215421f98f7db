//! KEDA ScaledObject with one Prometheus trigger, and the HPA it generates (`AUTOSCALERS.md` §2).
//!
//! TODO(helper): implement per the spec. Config structs are fixed; keep their field names.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::hpa::Behavior;
use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive};

/// The trigger's `metricType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KedaMetricType {
    /// The default: the HPA divides the value by the replica count (§1.2 D).
    AverageValue,
    /// The HPA compares the value itself (§1.2 C).
    Value,
}

/// A Prometheus trigger (`triggers[].metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusTrigger {
    /// The quantity the trigger's `query` returns (the fleet total, as `sum(...)`).
    pub signal: Signal,
    /// `threshold`: the HPA target.
    pub threshold: f64,
    /// `activationThreshold` (0): active iff value > this.
    pub activation_threshold: f64,
    /// `metricType` (AverageValue).
    pub metric_type: KedaMetricType,
}

/// A ScaledObject's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KedaConfig {
    /// The one Prometheus trigger. Default: `sum(vllm:num_requests_waiting)` at a threshold of 5, the
    /// shape of the vLLM production-stack KEDA tutorial.
    pub trigger: PrometheusTrigger,
    /// `pollingInterval` (30 s): the activation loop's period.
    pub polling_interval_s: f64,
    /// `cooldownPeriod` (300 s) before scaling to 0 (or idle).
    pub cooldown_period_s: f64,
    /// `initialCooldownPeriod` (0 s).
    pub initial_cooldown_period_s: f64,
    /// `idleReplicaCount` (unset).
    pub idle_replica_count: Option<u32>,
    /// `advanced.horizontalPodAutoscalerConfig.behavior` (unset: the HPA's legacy path).
    pub behavior: Option<Behavior>,
    /// The generated HPA's sync period (15 s).
    pub hpa_sync_period_s: f64,
}

impl Default for KedaConfig {
    fn default() -> Self {
        KedaConfig {
            trigger: PrometheusTrigger {
                signal: Signal::QueueDepth,
                threshold: 5.0,
                activation_threshold: 0.0,
                metric_type: KedaMetricType::AverageValue,
            },
            polling_interval_s: 30.0,
            cooldown_period_s: 300.0,
            initial_cooldown_period_s: 0.0,
            idle_replica_count: None,
            behavior: None,
            hpa_sync_period_s: 15.0,
        }
    }
}

impl KedaConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("keda.trigger.threshold", self.trigger.threshold)?;
        non_negative(
            "keda.trigger.activation_threshold",
            self.trigger.activation_threshold,
        )?;
        positive("keda.polling_interval_s", self.polling_interval_s)?;
        non_negative("keda.cooldown_period_s", self.cooldown_period_s)?;
        non_negative(
            "keda.initial_cooldown_period_s",
            self.initial_cooldown_period_s,
        )?;
        positive("keda.hpa_sync_period_s", self.hpa_sync_period_s)?;
        Ok(())
    }
}

/// KEDA's activation loop plus the HPA it generates, for one target.
#[derive(Debug, Clone)]
pub struct Keda {
    cfg: KedaConfig,
    bounds: Bounds,
    last: Option<u32>,
}

impl Keda {
    /// A new ScaledObject with empty history. `bounds.min` is `minReplicaCount`, `bounds.max`
    /// `maxReplicaCount`.
    pub fn new(cfg: KedaConfig, bounds: Bounds) -> Self {
        Keda {
            cfg,
            bounds,
            last: None,
        }
    }
}

impl Policy for Keda {
    fn name(&self) -> String {
        "keda".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, _now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let n = self.bounds.clamp(cur);
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        self.last = None;
    }
}
