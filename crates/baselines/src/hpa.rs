//! Kubernetes HorizontalPodAutoscaler autoscaling/v2 (`../shared/peers/AUTOSCALERS.md` §1).
//!
//! TODO(helper): implement per the spec. Config structs are fixed; keep their field names.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive};

/// How a metric's target is expressed (`spec.metrics[].<source>.target.type` and the source type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Resource metric, target type Utilization (§1.2 A): `target` is a percentage of the request; the
    /// signal's per-pod value (0–1) counts as the usage/request ratio.
    Utilization,
    /// Pods metric, target type AverageValue (§1.2 B): per-pod average against `target`.
    PodsAverageValue,
    /// External metric, target type Value (§1.2 C): the fleet total against `target`.
    ExternalValue,
    /// External metric, target type AverageValue (§1.2 D): the fleet total over `status.replicas`.
    ExternalAverageValue,
}

/// One entry of `spec.metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaMetric {
    /// Source and target type.
    pub kind: MetricKind,
    /// What is measured.
    pub signal: Signal,
    /// The target: a percentage for `utilization`, else a value in the signal's unit.
    pub target: f64,
}

/// `type` of a scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Change by at most `value` pods per period.
    Pods,
    /// Change by at most `value` percent per period.
    Percent,
}

/// One `behavior.scaleUp/scaleDown.policies[]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Pods or Percent.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// How many pods, or what percentage.
    pub value: u32,
    /// The period, seconds.
    pub period_s: f64,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The biggest change.
    Max,
    /// The smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `behavior.scaleUp` or `behavior.scaleDown`; unset fields take the API defaults of §1.4.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization_window_s: Option<f64>,
    /// `policies`.
    pub policies: Option<Vec<ScalingPolicy>>,
    /// `selectPolicy`.
    pub select_policy: Option<SelectPolicy>,
    /// Per-direction `tolerance` (v1.33+).
    pub tolerance: Option<f64>,
}

/// `spec.behavior`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// `scaleUp`.
    #[serde(default)]
    pub scale_up: ScalingRules,
    /// `scaleDown`.
    #[serde(default)]
    pub scale_down: ScalingRules,
}

/// An HPA's settings: its spec plus the kube-controller-manager flags that shape it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpaConfig {
    /// `spec.metrics`; the HPA scales on the max proposal (§1.3). Default: the Pods metric
    /// `vllm:num_requests_waiting` at an AverageValue of 10 per pod, as GKE's guide for LLM serving sets
    /// up.
    pub metrics: Vec<HpaMetric>,
    /// `spec.behavior`; `None` takes the legacy path (§1.4), what an HPA without a behavior block and
    /// most KEDA-generated HPAs get.
    pub behavior: Option<Behavior>,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (300 s).
    pub downscale_stabilization_s: f64,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period_s: f64,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            metrics: vec![HpaMetric {
                kind: MetricKind::PodsAverageValue,
                signal: Signal::QueueDepth,
                target: 10.0,
            }],
            behavior: None,
            tolerance: 0.1,
            downscale_stabilization_s: 300.0,
            sync_period_s: 15.0,
        }
    }
}

impl HpaConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metrics.is_empty() {
            return Err(ConfigError::new("hpa.metrics", "[]", "needs at least one metric"));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            positive(&format!("hpa.metrics[{i}].target"), m.target)?;
        }
        non_negative("hpa.tolerance", self.tolerance)?;
        non_negative("hpa.downscale_stabilization_s", self.downscale_stabilization_s)?;
        positive("hpa.sync_period_s", self.sync_period_s)?;
        if let Some(b) = &self.behavior {
            for (dir, r) in [("scale_up", &b.scale_up), ("scale_down", &b.scale_down)] {
                if let Some(w) = r.stabilization_window_s {
                    non_negative(&format!("hpa.behavior.{dir}.stabilization_window_s"), w)?;
                }
                if let Some(t) = r.tolerance {
                    non_negative(&format!("hpa.behavior.{dir}.tolerance"), t)?;
                }
                for (i, p) in r.policies.iter().flatten().enumerate() {
                    positive(&format!("hpa.behavior.{dir}.policies[{i}].period_s"), p.period_s)?;
                }
            }
        }
        Ok(())
    }
}

/// The HPA controller for one target.
#[derive(Debug, Clone)]
pub struct Hpa {
    cfg: HpaConfig,
    bounds: Bounds,
    last: Option<u32>,
}

impl Hpa {
    /// A new HPA with empty history.
    pub fn new(cfg: HpaConfig, bounds: Bounds) -> Self {
        Hpa {
            cfg,
            bounds,
            last: None,
        }
    }
}

impl Policy for Hpa {
    fn name(&self) -> String {
        "hpa".into()
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
