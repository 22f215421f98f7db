//! Shared by the targets: a small valid model and a snapshot.

use std::sync::Arc;

use rlscale_core::{
    ACTION_DELTAS, FEATURE_NAMES, MetricsSnapshot, N_ACTIONS, N_FEATURES, OBS_SCHEMA_VERSION,
    ServiceProfile, SimTime,
};
use rlscale_runtime::ModelFile;
use rlscale_runtime::model::{Dense, FORMAT, FORMAT_VERSION, FeatureRanges, ObsNorm};

/// A one-layer model with varied weights and wide training ranges.
pub fn model() -> Arc<ModelFile> {
    Arc::new(ModelFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        obs_schema_version: OBS_SCHEMA_VERSION,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        obs_norm: ObsNorm {
            mean: vec![0.5; N_FEATURES],
            var: vec![4.0; N_FEATURES],
            epsilon: 1e-8,
            clip: 10.0,
        },
        feature_ranges: FeatureRanges {
            min: vec![-20.0; N_FEATURES],
            max: vec![20.0; N_FEATURES],
        },
        actor: vec![Dense {
            d_in: N_FEATURES,
            d_out: N_ACTIONS,
            weight: (0..N_FEATURES * N_ACTIONS)
                .map(|i| ((i * 37) % 19) as f32 * 0.1 - 0.9)
                .collect(),
            bias: vec![0.0; N_ACTIONS],
        }],
        critic: vec![Dense {
            d_in: N_FEATURES,
            d_out: 1,
            weight: vec![0.01; N_FEATURES],
            bias: vec![0.0],
        }],
        activation: "tanh".into(),
        action_deltas: ACTION_DELTAS.to_vec(),
        provenance: serde_json::json!({}),
    })
}

/// A busy, valid snapshot at `t`.
#[allow(dead_code)]
pub fn snapshot(t: f64) -> MetricsSnapshot {
    let mut s = MetricsSnapshot::idle(
        SimTime(t),
        4,
        ServiceProfile {
            cold_start_s: 135.0,
            capacity_rps: 3.0,
            gpus_per_replica: 1,
            usd_per_gpu_hour: 0.8,
            slo_latency_s: 10.0,
        },
    );
    s.arrival_rate_1m = 12.0;
    s.arrival_rate_5m = 10.0;
    s.queue_depth = 30.0;
    s.running = 100.0;
    s.starting_replicas = 2;
    s.gpu_utilization = 0.9;
    s.latency_p99_s = Some(8.0);
    s
}
