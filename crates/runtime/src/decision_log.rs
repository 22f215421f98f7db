//! The lines of the controller's JSONL decision log (`rlscale controller --decision-log FILE`): ONE
//! definition, written by the controller and read back by `rlscale shadow-report`
//! (`rlscale_eval::shadow::log`), so the writer and the reader cannot drift apart.
//!
//! Every line is a JSON object with `"kind"`: `"config"` ([`ConfigLine`], written whenever an object's
//! decision pipeline is (re)built) or `"decision"` ([`DecisionLine`], one per decision). Write a
//! [`LogLine`]; it adds the tag.
//!
//! NB: a failed Prometheus query is logged as NaN, which serde_json writes as `null`; the reader maps
//! those back (see `rlscale_eval::shadow::log`).

use rlscale_core::MetricsSnapshot;
use serde::{Deserialize, Serialize};

use crate::RuntimeConfig;

/// One line of the log, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LogLine {
    /// `"kind": "config"`.
    Config(ConfigLine),
    /// `"kind": "decision"`.
    Decision(DecisionLine),
}

/// Written whenever an object's decision pipeline is (re)built (first reconcile, a spec change, a
/// reloaded model): what a replay needs to play the same law.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigLine {
    /// Unix seconds.
    pub time: f64,
    /// Object namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The object's `metadata.generation`.
    #[serde(default)]
    pub generation: Option<i64>,
    /// The model file (`spec.model`), if any.
    #[serde(default)]
    pub model: Option<String>,
    /// The runtime's configuration: bounds, staleness, OOD limits, guardrails, fallback law.
    pub runtime: RuntimeConfig,
}

/// One decision: what the controller saw and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLine {
    /// Unix seconds.
    pub time: f64,
    /// Object namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// `Active` or `Shadow`.
    pub mode: String,
    /// The target's `spec.replicas` before the decision, replicas.
    pub current_replicas: u32,
    /// Our decision, replicas.
    pub desired_replicas: u32,
    /// Who decided (`model`, `fallback`, `guardrail`).
    pub source: String,
    /// Why.
    pub reason: String,
    /// Shadow: the HPA's `status.desiredReplicas` (absent when no HPA was found).
    pub hpa_desired_replicas: Option<u32>,
    /// Shadow: the HPA recomputed by rlscale's HPA law from the same metrics (absent when the
    /// snapshot was invalid).
    pub hpa_recomputed_replicas: Option<u32>,
    /// Whether the controller wrote the scale subresource.
    pub scaled: bool,
    /// The model file in use (`spec.model`), if any.
    #[serde(default)]
    pub model: Option<String>,
    /// `spec.minReplicas`.
    pub min_replicas: u32,
    /// `spec.maxReplicas`.
    pub max_replicas: u32,
    /// `spec.interval`, seconds.
    pub interval_s: u32,
    /// The snapshot the decision was made on.
    pub snapshot: MetricsSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tag is written beside the fields, and a line reads back as itself.
    #[test]
    fn lines_carry_their_kind_and_round_trip() {
        let config = LogLine::Config(ConfigLine {
            time: 1.5e9,
            namespace: "serving".into(),
            name: "llama".into(),
            generation: Some(3),
            model: Some("/models/default.json".into()),
            runtime: RuntimeConfig::new(1, 10),
        });
        let text = serde_json::to_string(&config).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"config","time":1500000000.0,"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<LogLine>(&text).unwrap(), config);

        let decision = LogLine::Decision(DecisionLine {
            time: 1.5e9 + 15.0,
            namespace: "serving".into(),
            name: "llama".into(),
            mode: "Shadow".into(),
            current_replicas: 4,
            desired_replicas: 6,
            source: "model".into(),
            reason: "model".into(),
            hpa_desired_replicas: Some(5),
            hpa_recomputed_replicas: None,
            scaled: false,
            model: None,
            min_replicas: 1,
            max_replicas: 10,
            interval_s: 15,
            snapshot: MetricsSnapshot::idle(
                rlscale_core::SimTime(1.5e9 + 15.0),
                4,
                rlscale_core::ServiceProfile {
                    cold_start_s: 135.0,
                    capacity_rps: 3.0,
                    gpus_per_replica: 1,
                    usd_per_gpu_hour: 0.8,
                    slo_latency_s: 10.0,
                },
            ),
        });
        let v: serde_json::Value = serde_json::to_value(&decision).unwrap();
        assert_eq!(v["kind"], "decision");
        assert_eq!(v["desired_replicas"], 6);
        assert_eq!(v["model"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<LogLine>(v).unwrap(), decision);
    }
}
