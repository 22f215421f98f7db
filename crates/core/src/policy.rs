//! The `Policy` trait: a control law from a metrics snapshot and the time to a replica decision.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::snapshot::MetricsSnapshot;
use crate::time::SimTime;

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// A learned model.
    Model,
    /// A rule-based law (static, HPA, KEDA, Knative, Ray Serve, …) acting as the policy.
    Baseline,
    /// The fallback law, because the model or its inputs could not be trusted.
    Fallback,
    /// A guardrail that clipped another source's decision.
    Guardrail,
    /// A hindsight schedule played back.
    Oracle,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Source::Model => "model",
            Source::Baseline => "baseline",
            Source::Fallback => "fallback",
            Source::Guardrail => "guardrail",
            Source::Oracle => "oracle",
        };
        f.write_str(s)
    }
}

/// Why a decision is what it is. A low-cardinality code, usable as a Prometheus label.
///
/// "No valid decision" is a value here, not an error (Knative's `ScaleResult.ScaleValid`, HPA's
/// `(replicas, reason, message)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A fixed replica count.
    Static,
    /// The policy chose to keep the current count.
    Hold,
    /// The policy chose to add replicas.
    ScaleUp,
    /// The policy chose to remove replicas.
    ScaleDown,
    /// A precomputed schedule.
    Schedule,
    /// Fallback: no model is loaded (missing or refused at load).
    NoModel,
    /// Fallback: the snapshot is older than the staleness limit (or from the future).
    StaleMetrics,
    /// Fallback: a snapshot field is NaN, infinite or a negative count.
    InvalidInput,
    /// Fallback: a feature lies outside the model's training distribution.
    OutOfDistribution,
    /// Guardrail: raised to `minReplicas`.
    MinReplicas,
    /// Guardrail: lowered to `maxReplicas`.
    MaxReplicas,
    /// Guardrail: the scale-up exceeded the maximum step per interval.
    MaxStepUp,
    /// Guardrail: the scale-down exceeded the maximum step per interval.
    MaxStepDown,
    /// Guardrail: a scale-down held back by the stabilization window.
    ScaleDownStabilization,
    /// Guardrail: no further scale-up while replicas are still starting, beyond what the queue justifies.
    AntiCascade,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Reason::Static => "static",
            Reason::Hold => "hold",
            Reason::ScaleUp => "scale_up",
            Reason::ScaleDown => "scale_down",
            Reason::Schedule => "schedule",
            Reason::NoModel => "no_model",
            Reason::StaleMetrics => "stale_metrics",
            Reason::InvalidInput => "invalid_input",
            Reason::OutOfDistribution => "out_of_distribution",
            Reason::MinReplicas => "min_replicas",
            Reason::MaxReplicas => "max_replicas",
            Reason::MaxStepUp => "max_step_up",
            Reason::MaxStepDown => "max_step_down",
            Reason::ScaleDownStabilization => "scale_down_stabilization",
            Reason::AntiCascade => "anti_cascade",
        };
        f.write_str(s)
    }
}

/// A replica decision with its provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Replicas wanted.
    pub replicas: u32,
    /// Who decided.
    pub source: Source,
    /// Why.
    pub reason: Reason,
}

/// A control law. It gets the time as an argument and never reads a clock, so every law can be tested on
/// a simulated timeline.
pub trait Policy {
    /// A short name for logs and tables (`static:4`, `hpa`, `model:models/x.json`).
    fn name(&self) -> String;

    /// Decide the replica count from what the cluster's metrics say at `now`.
    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision;

    /// Forget any history (stabilization windows, smoothing), as at the start of an episode.
    fn reset(&mut self) {}
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        (**self).decide(snapshot, now)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}
