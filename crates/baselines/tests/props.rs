//! Property tests over every law (proptest; scale with `PROPTEST_CASES`): whatever the snapshots,
//! garbage included, decisions stay within [min, max], and the same inputs give the same decisions after
//! a reset.

use proptest::prelude::*;
use rlscale_baselines::{BaselineConfig, Bounds};
use rlscale_core::{MetricsSnapshot, Policy, ServiceProfile, SimTime};

fn profile() -> ServiceProfile {
    ServiceProfile {
        cold_start_s: 135.0,
        capacity_rps: 3.0,
        gpus_per_replica: 1,
        usd_per_gpu_hour: 0.8,
        slo_latency_s: 10.0,
    }
}

/// A float that is usually sane and sometimes garbage.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..500.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1.0),
        1 => Just(1e12),
    ]
}

fn unit() -> impl Strategy<Value = f64> {
    prop_oneof![8 => 0.0..1.0f64, 1 => Just(f64::NAN), 1 => Just(2.0)]
}

#[derive(Debug, Clone)]
struct Obs {
    dt: f64,
    rate: f64,
    queue: f64,
    running: f64,
    ready: u32,
    starting: u32,
    gpu: f64,
    kv: f64,
}

fn obs() -> impl Strategy<Value = Obs> {
    (
        prop_oneof![6 => Just(15.0), 1 => 0.0..60.0f64, 1 => Just(600.0)],
        value(),
        value(),
        value(),
        0u32..60,
        0u32..10,
        unit(),
        unit(),
    )
        .prop_map(|(dt, rate, queue, running, ready, starting, gpu, kv)| Obs {
            dt,
            rate,
            queue,
            running,
            ready,
            starting,
            gpu,
            kv,
        })
}

fn snapshot(t: f64, o: &Obs) -> MetricsSnapshot {
    let mut s = MetricsSnapshot::idle(SimTime(t), o.ready, profile());
    s.arrival_rate_1m = o.rate;
    s.arrival_rate_5m = o.rate;
    s.queue_depth = o.queue;
    s.running = o.running;
    s.starting_replicas = o.starting;
    s.gpu_utilization = o.gpu;
    s.kv_cache_usage = o.kv;
    s
}

fn law() -> impl Strategy<Value = BaselineConfig> {
    (0usize..BaselineConfig::LAWS.len(), 0.0..1.0f64).prop_map(|(i, u)| {
        let base = BaselineConfig::default_for(BaselineConfig::LAWS[i]).unwrap();
        // Move the main knob over a wide valid range around its default.
        let k = base.knob().value.max(1.0);
        let v = k * (0.05 + 4.0 * u);
        // APA's target is a 0–1 usage, predictive's headroom any value ≥ 0: both are fine here.
        base.with_knob(v)
    })
}

proptest! {
    #[test]
    fn decisions_stay_in_bounds_and_are_reproducible(
        cfg in law(),
        min in 0u32..5,
        span in 0u32..60,
        seq in prop::collection::vec(obs(), 1..80),
    ) {
        let bounds = Bounds { min, max: min + span };
        let mut p = cfg.build(bounds, min + span / 2).unwrap();
        let run = |p: &mut dyn Policy| {
            let mut t = 1.7e9;
            seq.iter()
                .map(|o| {
                    t += o.dt;
                    p.decide(&snapshot(t, o), SimTime(t)).replicas
                })
                .collect::<Vec<u32>>()
        };
        let first = run(&mut p);
        for (i, n) in first.iter().enumerate() {
            prop_assert!(*n >= bounds.min && *n <= bounds.max,
                "{}: step {i}: {n} outside [{}, {}]", cfg.law(), bounds.min, bounds.max);
        }
        p.reset();
        prop_assert_eq!(first, run(&mut p));
    }
}
