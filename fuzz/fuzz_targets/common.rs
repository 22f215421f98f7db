//! Shared by the targets: a small valid model and a snapshot.

use std::sync::Arc;

use rlscale_core::{MetricsSnapshot, N_ACTIONS, N_FEATURES, ServiceProfile, SimTime};
use rlscale_runtime::ModelFile;

/// A one-layer model with varied weights.
#[allow(dead_code)]
pub fn model() -> Arc<ModelFile> {
    let weight = (0..N_FEATURES * N_ACTIONS)
        .map(|i| ((i * 37) % 19) as f32 * 0.1 - 0.9)
        .collect();
    let mut m = ModelFile::one_layer(weight, vec![0.0; N_ACTIONS]);
    m.obs_norm.mean = vec![0.5; N_FEATURES];
    m.obs_norm.var = vec![4.0; N_FEATURES];
    Arc::new(m)
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
