//! The KPA law ([`rlscale_baselines::Kpa`]) against Knative Serving's
//! `pkg/autoscaler/scaling/autoscaler_test.go`: each case names the upstream test (or table row) and
//! checks upstream's `DesiredPodCount`. The numbers are upstream's; the code is ours.
//!
//! # How an upstream case becomes a timeline
//! Knative's tests hand the decider its stable and panic averages directly (a fake metric client);
//! this law averages the samples it is given, one per call, over `(now − window, now]`. So each case is
//! a timeline of calls whose samples make those averages:
//! * a **creation** call with one ready pod and no sample (`newTestAutoscaler` creates the decider at
//!   one ready pod; a NaN sample is "no data", so it only initializes the decider);
//! * **primer** calls whose samples, outside the 6-s panic window but inside the 60-s stable window,
//!   bring the stable average to upstream's while the last sample alone is the panic average (the
//!   stable average `S` with panic average `P` takes one primer of `2S − P`). A primer runs at 1,000
//!   ready pods when upstream is not panicking (so it cannot start a panic) and at one ready pod when
//!   upstream's `prepFunc` put the decider in panic;
//! * the **checked** calls. Upstream calls several steps at one instant (`time.Now()`); here steps are
//!   at least 6 s apart (so each panic window holds one sample), or 60 s apart where the stable
//!   averages must not mix, and within a stable window wherever upstream's panic carries over.
//!
//! `decide` includes the scaler, which applies a count of 0 only after a stable window Active and the
//! grace period: upstream's `DesiredPodCount: 0` steps are not checked. Not ported: `Reachable: false`,
//! the excess burst capacity (`ExcessBurstCapacity`: routing, not replicas), and the metrics tests.

use rlscale_baselines::{Bounds, Kpa, KpaConfig, Signal};
use rlscale_core::{MetricsSnapshot, Policy, SimTime};

const T0: f64 = 1_700_000_000.0;

/// `newTestAutoscaler(targetValue, …)`'s `DeciderSpec`: `TargetValue` (the per-pod target, utilization
/// already applied), `PanicThreshold` 2, `MaxScaleUpRate` and `MaxScaleDownRate` 10, `StableWindow` 60 s.
fn decider(target: f64) -> KpaConfig {
    KpaConfig {
        signal: Signal::InFlight,
        target,
        target_utilization: 1.0,
        max_scale_up_rate: 10.0,
        max_scale_down_rate: 10.0,
        panic_threshold_percentage: 200.0,
        stable_window_s: 60.0,
        panic_window_percentage: 10.0,
        ..KpaConfig::default()
    }
}

/// One call: at `T0 + t`, `ready` ready pods, a revision total of `value` (NaN: no sample); `want` is
/// upstream's count when the call is checked.
#[derive(Debug, Clone, Copy)]
struct Step {
    t: f64,
    ready: u32,
    value: f64,
    want: Option<u32>,
}

/// The decider's creation, 70 s before the first checked call: one ready pod, no data.
const CREATE: Step = Step {
    t: -70.0,
    ready: 1,
    value: f64::NAN,
    want: None,
};

fn prime(t: f64, ready: u32, value: f64) -> Step {
    Step {
        t,
        ready,
        value,
        want: None,
    }
}

fn expect(t: f64, ready: u32, value: f64, want: u32) -> Step {
    Step {
        t,
        ready,
        value,
        want: Some(want),
    }
}

/// Play `steps` on a new decider; the mismatches of the checked steps, as text.
fn play(name: &str, cfg: KpaConfig, steps: &[Step]) -> Vec<String> {
    let profile = super::peer_profile();
    let mut kpa = Kpa::new(
        cfg,
        Bounds {
            min: 1,
            max: 100_000,
        },
    );
    let mut failed = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let t = T0 + s.t;
        let mut snap = MetricsSnapshot::idle(SimTime(t), s.ready, profile);
        // In-flight requests (concurrency) and the request rate both read the case's value.
        snap.queue_depth = s.value;
        snap.arrival_rate_1m = s.value;
        let got = kpa.decide(&snap, SimTime(t)).replicas;
        if let Some(want) = s.want
            && got != want
        {
            failed.push(format!(
                "{name}, step {i} (t = {}): got {got}, upstream {want}",
                s.t
            ));
        }
    }
    failed
}

/// One `Scale` of a decider created at one ready pod, with stable average `stable`, panic average
/// `panic` and `ready` ready pods; `panicking`: upstream's `prepFunc` put it in panic beforehand.
fn one_scale(stable: f64, panic: f64, ready: u32, panicking: bool) -> [Step; 3] {
    let primer_ready = if panicking { 1 } else { 1000 };
    [
        CREATE,
        prime(-58.0, primer_ready, 2.0 * stable - panic),
        expect(0.0, ready, panic, 0),
    ]
}

fn check(failed: Vec<String>) {
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn autoscaler_scale_table() {
    // TestAutoscalerScale: (row, TargetValue, stable, panic, baseScale ready pods, in panic, want).
    let slow_up = |t| KpaConfig {
        max_scale_up_rate: 1.1,
        ..decider(t)
    };
    let slow_down = |t| KpaConfig {
        max_scale_down_rate: 1.1,
        ..decider(t)
    };
    #[rustfmt::skip]
    let rows = [
        ("TestAutoscalerScale/AutoscalerStableModeUnlimitedTBC", decider(181.0), 21.0, 26.0, 1, false, 1),
        ("TestAutoscalerScale/Autoscaler0TBC", decider(10.0), 50.0, 49.0, 1, false, 5),
        ("TestAutoscalerScale/AutoscalerStableModeNoChange", decider(10.0), 50.0, 50.0, 1, false, 5),
        // prepFunc: in panic since 5 s with maxPanicPods 5 (here: since a primer 58 s ago at one ready
        // pod, with maxPanicPods 10; the result is above either).
        ("TestAutoscalerScale/AutoscalerPanicStableLargerThanPanic", decider(1.0), 50.0, 30.0, 5, true, 50),
        ("TestAutoscalerScale/AutoscalerPanicStableLessThanPanic", decider(1.0), 20.0, 30.0, 5, true, 30),
        ("TestAutoscalerScale/AutoscalerStableModeNoChangeAlreadyScaled", decider(10.0), 50.0, 50.0, 5, false, 5),
        ("TestAutoscalerScale/AutoscalerStableModeIncreaseWithSmallScaleUpRate", slow_up(1.0), 3.0, 3.1, 2, false, 3),
        ("TestAutoscalerScale/AutoscalerStableModeDecreaseWithSmallScaleDownRate", slow_down(10.0), 1.0, 1.0, 100, false, 90),
        ("TestAutoscalerScale/AutoscalerPanicModeDoublePodCount", decider(10.0), 50.0, 100.0, 1, false, 10),
    ];
    let mut failed = Vec::new();
    for (name, cfg, stable, panic, ready, panicking, want) in rows {
        let mut steps = one_scale(stable, panic, ready, panicking);
        steps[2].want = Some(want);
        failed.extend(play(name, cfg, &steps));
    }
    check(failed);
}

#[test]
fn autoscaler_single_scales() {
    let mut failed = Vec::new();
    let mut one = |name, cfg: KpaConfig, stable, panic, ready, want| {
        let mut steps = one_scale(stable, panic, ready, false);
        steps[2].want = Some(want);
        failed.extend(play(name, cfg, &steps));
    };
    // No ready pod: the rate limit counts one (ceil(10 · 1) = 10, not 0).
    one(
        "TestAutoscalerUseOnePodAsMinimumIfEndpointsNotFound",
        decider(10.0),
        1000.0,
        888.0,
        0,
        10,
    );
    one(
        "TestAutoscalerMetricsWithRPS",
        KpaConfig {
            signal: Signal::ArrivalRate,
            ..decider(10.0)
        },
        100.0,
        99.0,
        1,
        10,
    );
    // Its second step: stable 1 → ceil(0.1) = 1, raised to the activation scale.
    one(
        "TestAutoscalerActivationScale",
        KpaConfig {
            activation_scale: 2,
            ..decider(10.0)
        },
        1.0,
        0.0,
        1,
        2,
    );
    check(failed);
}

#[test]
fn autoscaler_rate_limits() {
    let mut failed = play(
        "TestAutoscalerRateLimitScaleUp",
        decider(10.0),
        &[
            CREATE,
            prime(-58.0, 1000, 999.0),
            // 100 pods wanted, ×10 from one ready pod.
            expect(0.0, 1, 1001.0, 10),
            // ×10 again.
            expect(2.0, 10, 1001.0, 100),
        ],
    );
    failed.extend(play(
        "TestAutoscalerRateLimitScaleDown",
        decider(10.0),
        &[
            CREATE,
            prime(-58.0, 1000, 1.0),
            // One pod wanted, ÷10 from 100 ready.
            expect(0.0, 100, 1.0, 10),
            expect(2.0, 10, 1.0, 1),
        ],
    ));
    check(failed);
}

#[test]
fn autoscaler_stable_mode() {
    let mut failed = play(
        "TestAutoscalerStableModeDecrease",
        decider(10.0),
        &[
            CREATE,
            prime(-58.0, 1000, 100.0),
            expect(0.0, 8, 100.0, 10),
            expect(60.0, 8, 50.0, 5),
        ],
    );
    // Stable 50, panic 10 → 5; then stable 100, panic 10 → 10.
    failed.extend(play(
        "TestAutoscalerStableModeIncreaseWithConcurrencyDefault",
        decider(10.0),
        &[
            CREATE,
            prime(-58.0, 1000, 90.0),
            expect(0.0, 1, 10.0, 5),
            prime(62.0, 1000, 190.0),
            expect(120.0, 1, 10.0, 10),
        ],
    ));
    // Created with no ready pod, PanicThreshold 100 (never panics), ScaleDownDelay 0.
    let calm = KpaConfig {
        panic_threshold_percentage: 10_000.0,
        ..decider(10.0)
    };
    failed.extend(play(
        "TestAutoscalerScaleDownDelayZero",
        calm,
        &[
            Step { ready: 0, ..CREATE },
            expect(0.0, 0, 40.0, 4),
            expect(60.0, 0, 20.0, 2),
        ],
    ));
    check(failed);
}

#[test]
fn autoscaler_panic_mode() {
    // Each scaling brings concurrency back to the target (1) and traffic grows again ×6, up to 1296.
    let mut failed = play(
        "TestAutoscalerPanicModeExponentialTrackAndStabilize",
        decider(1.0),
        &[
            CREATE,
            prime(-58.0, 1000, 6.0),
            expect(0.0, 1, 6.0, 6),
            expect(6.0, 6, 36.0, 36),
            expect(12.0, 36, 216.0, 216),
            expect(18.0, 216, 1296.0, 1296),
            expect(24.0, 1296, 1296.0, 1296),
        ],
    );
    // Panic at 1000 (stable 100) from 10 ready pods; traffic drops to 1: held in panic 30 s later; one
    // stable window and a second after the panic began, down to 1. (At the second step the stable
    // average here is 550, not 100: the panic count, 100, dominates either way.)
    failed.extend(play(
        "TestAutoscalerPanicThenUnPanicScaleDown",
        decider(10.0),
        &[
            CREATE,
            prime(-58.0, 1000, 100.0),
            expect(0.0, 1, 100.0, 10),
            expect(6.0, 10, 1000.0, 100),
            expect(36.0, 10, 1.0, 100),
            expect(67.0, 10, 1.0, 1),
        ],
    ));
    // From 10 ready pods, stable 11 and panic 25 → 25 (panic). Half a stable window later, 40 ready,
    // stable 30, panic 41: 41, the panic not extended (41/40 < 2). A stable window and a tick after the
    // panic began, 55 ready, stable 50, panic 56: out of panic, 50. The primers at 20 s and 45 s (13 and
    // 40 ready pods, under the threshold) make the stable averages.
    failed.extend(play(
        "TestAutoscalerUnpanicAfterSlowIncrease",
        decider(1.0),
        &[
            CREATE,
            prime(-58.0, 1000, 4.0),
            prime(-56.0, 1000, 4.0),
            expect(0.0, 10, 25.0, 25),
            prime(20.0, 13, 24.0),
            expect(30.0, 40, 41.0, 41),
            prime(45.0, 40, 79.0),
            expect(62.0, 55, 56.0, 50),
        ],
    ));
    // As above, but still surging half a window later: stable 30, panic 80 from 40 ready → 80.
    failed.extend(play(
        "TestAutoscalerExtendPanicWindow",
        decider(1.0),
        &[
            CREATE,
            prime(-58.0, 1000, 4.0),
            prime(-56.0, 1000, 4.0),
            expect(0.0, 10, 25.0, 25),
            prime(15.0, 13, 7.5),
            prime(20.0, 13, 7.5),
            expect(30.0, 40, 80.0, 80),
        ],
    ));
    check(failed);
}

#[test]
fn autoscaler_scale_down_delay() {
    // TestAutoscalerScaleDownDelay: TargetValue 10, PanicThreshold 100, ScaleDownDelay 5 min, no ready
    // pod. The steps at 5 min 2 s and 15 min (upstream: 0) are played, not checked.
    let cfg = KpaConfig {
        panic_threshold_percentage: 10_000.0,
        scale_down_delay_s: 300.0,
        ..decider(10.0)
    };
    let none = |t, v| prime(t, 0, v);
    check(play(
        "TestAutoscalerScaleDownDelay",
        cfg,
        &[
            Step { ready: 0, ..CREATE },
            // simple
            expect(2.0, 0, 40.0, 4),
            expect(300.0, 0, 0.0, 4),
            none(302.0, 0.0),
            // gradual
            expect(540.0, 0, 40.0, 4),
            expect(600.0, 0, 30.0, 4),
            expect(660.0, 0, 0.0, 4),
            expect(840.0, 0, 0.0, 3),
            none(900.0, 0.0),
        ],
    ));
}
