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

/// Run `cfg` over `seq` at a fixed 15 s spacing (every law syncs on every call), returning the
/// decisions and the snapshots' ready counts.
fn run_every_15s(cfg: &BaselineConfig, bounds: Bounds, seq: &[Obs]) -> Vec<(u32, u32)> {
    let mut p = cfg.build(bounds, bounds.min).unwrap();
    let mut t = 1.7e9;
    seq.iter()
        .map(|o| {
            t += 15.0;
            (p.decide(&snapshot(t, o), SimTime(t)).replicas, o.ready)
        })
        .collect()
}

fn bounds() -> impl Strategy<Value = Bounds> {
    (1u32..4, 0u32..80).prop_map(|(min, span)| Bounds {
        min,
        max: min + span,
    })
}

proptest! {
    /// HPA without `behavior` (and the HPA KEDA generates): one sync never goes beyond
    /// `max(2 · cur, 4)` (§1.4 legacy cap).
    #[test]
    fn legacy_hpa_and_keda_scale_up_at_most_max_2cur_4(
        law in prop_oneof![Just("hpa"), Just("keda")],
        knob in 0.5..100.0f64,
        b in bounds(),
        seq in prop::collection::vec(obs(), 2..60),
    ) {
        let cfg = BaselineConfig::default_for(law).unwrap().with_knob(knob);
        let d = run_every_15s(&cfg, b, &seq);
        for w in d.windows(2) {
            let (prev, next) = (w[0].0, w[1].0);
            prop_assert!(next <= (2 * prev).max(4).max(b.min), "{law}: {prev} -> {next}");
        }
    }

    /// HPA with the default `behavior`: one 15 s period adds at most max(4 pods, 100 %) (§1.4).
    #[test]
    fn behavior_hpa_scale_up_at_most_4_pods_or_double_per_15s(
        knob in 0.5..100.0f64,
        b in bounds(),
        seq in prop::collection::vec(obs(), 2..60),
    ) {
        let BaselineConfig::Hpa(mut c) = BaselineConfig::default_for("hpa").unwrap().with_knob(knob) else {
            unreachable!()
        };
        c.behavior = Some(Default::default());
        let cfg = BaselineConfig::Hpa(c);
        let d = run_every_15s(&cfg, b, &seq);
        for w in d.windows(2) {
            let (prev, next) = (w[0].0, w[1].0);
            prop_assert!(next <= (prev + 4).max(2 * prev).max(b.min), "{prev} -> {next}");
        }
    }

    /// AIBrix APA: one step at most doubles (`max-scale-up-rate` 2, §5.2).
    #[test]
    fn apa_scale_up_at_most_doubles(
        knob in 0.05..1.0f64,
        b in bounds(),
        seq in prop::collection::vec(obs(), 2..60),
    ) {
        let cfg = BaselineConfig::default_for("apa").unwrap().with_knob(knob);
        let d = run_every_15s(&cfg, b, &seq);
        for w in d.windows(2) {
            let (prev, next) = (w[0].0, w[1].0);
            prop_assert!(next <= (2 * prev).max(b.min), "{prev} -> {next}");
        }
    }

    /// Knative KPA: a scale-down never goes below half the ready pods (`max-scale-down-rate` 2, §3.3),
    /// within the bounds.
    #[test]
    fn kpa_scale_down_at_most_halves_the_ready_pods(
        knob in 1.0..200.0f64,
        b in bounds(),
        seq in prop::collection::vec(obs(), 2..60),
    ) {
        let cfg = BaselineConfig::default_for("kpa").unwrap().with_knob(knob);
        let d = run_every_15s(&cfg, b, &seq);
        for w in d.windows(2) {
            let (prev, (next, ready)) = (w[0].0, w[1]);
            if next < prev {
                let floor = (ready.max(1) / 2).max(b.min).min(b.max);
                prop_assert!(next >= floor, "{prev} -> {next} with {ready} ready");
            }
        }
    }
}
