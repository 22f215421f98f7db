//! The HPA law ([`rlscale_baselines::Hpa`]) against Kubernetes' own test tables: cases of
//! `pkg/controller/podautoscaler/replica_calculator_test.go` and `horizontal_test.go`, each named after
//! the upstream test it comes from, with upstream's expected replica counts. The numbers are
//! upstream's; the code is ours.
//!
//! # How an upstream case becomes a snapshot
//! * A **Resource cpu** metric with a Utilization target reads the snapshot's `gpu_utilization` (each
//!   pod's usage/request). Upstream levels are milli-cores on requests of 1.0 (or requests that sum to
//!   one core per pod), so the fleet total is `Σ levels / 1000`, written below as `cpu(&[..])`.
//! * A **Pods** metric (AverageValue) reads `queue_depth` as the fleet total: `Σ levels / 1000`.
//! * An **External** metric (Value or AverageValue) reads `running`: the level / 1000.
//! * A metric that cannot be read (upstream's `"CheddarCheese"` type, or a metrics client that errs) is
//!   an External metric on `arrival_rate_1m`, which is NaN.
//! * **Pods**: ready pods are `ready_replicas`. Pods upstream counts as unready for CPU (not Ready, or
//!   in their initialization period: "hot CPU", or Pending) are `starting_replicas`: they report no
//!   sample here, and upstream drops theirs. Failed pods and pods being deleted are not in a snapshot at
//!   all, as the HPA ignores them.
//! * `recommendations: []timestampedRecommendation{}` upstream (an empty history, so no initial
//!   recommendation holds a scale-down) is a first sync ten minutes earlier whose metrics all fail: it
//!   seeds the history with the current count and stores nothing else, and by the sync under test that
//!   seed is older than every window. Without it (`nil` upstream) the sync under test seeds it.
//!
//! # Not ported
//! Object metrics (not modelled); ContainerResource metrics; a ready CPU pod without a sample
//! (`TestReplicaCalcMissingMetrics*`, `TestReplicaCalcDuringRollingUpdateWithMaxSurge`: a snapshot's
//! ready pods all report); requests that differ per pod unless they sum to a core per pod; selector and
//! status-update tests; `scaleUpLimitFactor`-dependent rows (upstream's tests raise it from 2 to 8:
//! `TestConvertDesiredReplicasWithRules`' last row); `TestScalingWithRules` rows with injected
//! scale events (the law's history can only be built by its own syncs, which the rows' own rate limits
//! would limit).

use rlscale_baselines::hpa::{
    Behavior, HpaMetric, MetricKind, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy,
};
use rlscale_baselines::{Bounds, Hpa, HpaConfig, Signal};
use rlscale_core::{MetricsSnapshot, SimTime};

/// The sync under test runs at this Unix time.
const T0: f64 = 1_700_000_000.0;

/// One `spec.metrics[]` entry of an upstream case.
#[derive(Debug, Clone, Copy)]
enum M {
    /// Resource cpu, `averageUtilization` in percent.
    Cpu(f64),
    /// Pods metric, AverageValue per pod.
    Pods(f64),
    /// External metric, Value.
    Ext(f64),
    /// External metric, AverageValue.
    ExtAvg(f64),
    /// A metric that cannot be read.
    Broken,
}

impl M {
    fn spec(self) -> HpaMetric {
        let (kind, signal, target) = match self {
            M::Cpu(t) => (MetricKind::Utilization, Signal::GpuUtilization, t),
            M::Pods(t) => (MetricKind::PodsAverageValue, Signal::QueueDepth, t),
            M::Ext(t) => (MetricKind::ExternalValue, Signal::Running, t),
            M::ExtAvg(t) => (MetricKind::ExternalAverageValue, Signal::Running, t),
            M::Broken => (MetricKind::ExternalValue, Signal::ArrivalRate, 1.0),
        };
        HpaMetric {
            kind,
            signal,
            target,
        }
    }
}

/// What the metrics read: fleet totals (NaN: the metric fails).
#[derive(Debug, Clone, Copy)]
struct Load {
    cpu: f64,
    pods: f64,
    ext: f64,
}

const NONE: Load = Load {
    cpu: f64::NAN,
    pods: f64::NAN,
    ext: f64::NAN,
};

/// Usage/request summed over the ready pods, from milli-core levels on one-core requests.
fn cpu(levels: &[u64]) -> Load {
    Load {
        cpu: levels.iter().sum::<u64>() as f64 / 1000.0,
        ..NONE
    }
}

/// A Pods metric's fleet total from per-pod milli-levels.
fn pods(levels: &[u64]) -> Load {
    Load {
        pods: levels.iter().sum::<u64>() as f64 / 1000.0,
        ..NONE
    }
}

/// An External metric's value from its milli-level.
fn ext(level: u64) -> Load {
    Load {
        ext: level as f64 / 1000.0,
        ..NONE
    }
}

fn snapshot(t: f64, ready: u32, starting: u32, load: Load) -> MetricsSnapshot {
    let profile = super::peer_profile();
    let mut s = MetricsSnapshot::idle(SimTime(t), ready, profile);
    s.starting_replicas = starting;
    s.gpu_utilization = load.cpu / f64::from(ready.max(1));
    s.queue_depth = load.pods;
    s.running = load.ext;
    s.arrival_rate_1m = f64::NAN;
    s
}

/// One `reconcileAutoscaler` of an upstream `testCase`.
#[derive(Debug, Clone)]
struct Case {
    /// The upstream test.
    name: &'static str,
    metrics: &'static [M],
    min: u32,
    max: u32,
    /// `specReplicas`.
    spec: u32,
    ready: u32,
    starting: u32,
    load: Load,
    behavior: Option<Behavior>,
    /// `recommendations: []timestampedRecommendation{}` upstream.
    empty_history: bool,
    /// `expectedDesiredReplicas`.
    want: u32,
}

#[allow(clippy::too_many_arguments)]
fn sync(
    name: &'static str,
    metrics: &'static [M],
    (min, max): (u32, u32),
    spec: u32,
    (ready, starting): (u32, u32),
    load: Load,
    empty_history: bool,
    want: u32,
) -> Case {
    Case {
        name,
        metrics,
        min,
        max,
        spec,
        ready,
        starting,
        load,
        behavior: None,
        empty_history,
        want,
    }
}

fn run(c: &Case) -> u32 {
    let cfg = HpaConfig {
        metrics: c.metrics.iter().map(|m| m.spec()).collect(),
        behavior: c.behavior.clone(),
        ..HpaConfig::default()
    };
    let mut hpa = Hpa::new(
        cfg,
        Bounds {
            min: c.min,
            max: c.max,
        },
    );
    if c.empty_history {
        let t = T0 - 600.0;
        hpa.reconcile(c.spec, &snapshot(t, c.ready, c.starting, NONE), SimTime(t));
    }
    hpa.reconcile(
        c.spec,
        &snapshot(T0, c.ready, c.starting, c.load),
        SimTime(T0),
    )
}

fn check(cases: &[Case]) {
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = run(c);
            (got != c.want).then(|| format!("{}: got {got}, upstream {}", c.name, c.want))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `generateScalingRules(pods, podsPeriod, percent, percentPeriod, stabilizationWindow)`.
fn rules(pods: u32, pods_s: f64, percent: u32, percent_s: f64, window_s: f64) -> ScalingRules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(ScalingPolicy {
            kind: PolicyKind::Pods,
            value: pods,
            period_s: pods_s,
        });
    }
    if percent != 0 {
        policies.push(ScalingPolicy {
            kind: PolicyKind::Percent,
            value: percent,
            period_s: percent_s,
        });
    }
    ScalingRules {
        stabilization_window_s: Some(window_s),
        policies: Some(policies),
        select_policy: Some(SelectPolicy::Max),
        tolerance: None,
    }
}

fn behavior(up: Option<ScalingRules>, down: Option<ScalingRules>) -> Option<Behavior> {
    Some(Behavior {
        scale_up: up.unwrap_or_default(),
        scale_down: down.unwrap_or_default(),
    })
}

#[test]
fn horizontal_test_go() {
    use M::*;
    let fresh = true;
    let seeded = false;
    #[rustfmt::skip]
    let mut cases = vec![
        sync("TestScaleUp", &[Cpu(30.0)], (2, 6), 3, (3, 0), cpu(&[300, 500, 700]), seeded, 5),
        sync("TestScaleUpDeployment", &[Cpu(30.0)], (2, 6), 3, (3, 0), cpu(&[300, 500, 700]), seeded, 5),
        sync("TestScaleUpReplicaSet", &[Cpu(30.0)], (2, 6), 3, (3, 0), cpu(&[300, 500, 700]), seeded, 5),
        // Pod 0 not Ready (or in its CPU initialization period): its 300 is dropped.
        sync("TestScaleUpUnreadyLessScale", &[Cpu(30.0)], (2, 6), 3, (2, 1), cpu(&[500, 700]), seeded, 4),
        sync("TestScaleUpHotCpuLessScale", &[Cpu(30.0)], (2, 6), 3, (2, 1), cpu(&[500, 700]), seeded, 4),
        sync("TestScaleUpUnreadyNoScale", &[Cpu(30.0)], (2, 6), 3, (1, 2), cpu(&[400]), seeded, 3),
        sync("TestScaleUpHotCpuNoScale", &[Cpu(30.0)], (2, 6), 3, (1, 2), cpu(&[400]), seeded, 3),
        // Two Failed (or deleted) pods out of four: not in the snapshot.
        sync("TestScaleUpIgnoresFailedPods", &[Cpu(30.0)], (2, 6), 2, (2, 0), cpu(&[500, 700]), seeded, 4),
        sync("TestScaleUpIgnoresDeletionPods", &[Cpu(30.0)], (2, 6), 2, (2, 0), cpu(&[500, 700]), seeded, 4),
        sync("TestScaleUpCM", &[Pods(15.0)], (2, 6), 3, (3, 0), pods(&[20000, 10000, 30000]), seeded, 4),
        // A Pods metric counts not-Ready pods that report: all three samples.
        sync("TestScaleUpCMUnreadyAndHotCpuNoLessScale", &[Pods(15.0)], (2, 6), 3, (3, 0), pods(&[50000, 10000, 30000]), seeded, 6),
        sync("TestScaleUpCMUnreadyandCpuHot", &[Pods(15.0)], (2, 6), 3, (3, 0), pods(&[50000, 15000, 30000]), seeded, 6),
        sync("TestScaleUpHotCpuNoScaleWouldScaleDown", &[Pods(15.0)], (2, 6), 3, (3, 0), pods(&[50000, 15000, 30000]), seeded, 6),
        sync("TestScaleUpCMExternal", &[Ext(6.666)], (2, 6), 3, (3, 0), ext(8600), seeded, 4),
        sync("TestScaleUpPerPodCMExternal", &[ExtAvg(2.222)], (2, 6), 3, (3, 0), ext(8600), seeded, 4),
        sync("TestScaleDown", &[Cpu(50.0)], (2, 6), 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), fresh, 3),
        sync("TestScaleDownCM", &[Pods(20.0)], (2, 6), 5, (5, 0), pods(&[12000; 5]), fresh, 3),
        sync("TestScaleDownCMExternal", &[Ext(14.4)], (2, 6), 5, (5, 0), ext(8600), fresh, 3),
        sync("TestScaleDownToZeroCMExternal", &[Ext(14.4)], (0, 6), 5, (5, 0), ext(0), fresh, 0),
        sync("TestScaleDownPerPodCMExternal", &[ExtAvg(3.0)], (2, 6), 5, (5, 0), ext(8600), fresh, 3),
        sync("TestScaleDownIncludeUnreadyPods", &[Cpu(50.0)], (2, 6), 5, (3, 2), cpu(&[100, 300, 500]), fresh, 2),
        sync("TestScaleDownIgnoreHotCpuPods", &[Cpu(50.0)], (2, 6), 5, (3, 2), cpu(&[100, 300, 500]), fresh, 2),
        sync("TestScaleDownIgnoresFailedPods", &[Cpu(50.0)], (2, 6), 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), fresh, 3),
        sync("TestScaleDownIgnoresDeletionPods", &[Cpu(50.0)], (2, 6), 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), fresh, 3),
        // The initial recommendation (5) holds the scale-down for the window.
        sync("TestScaleDownStabilizeInitialSize", &[Cpu(50.0)], (2, 6), 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), seeded, 5),
        sync("TestScaleUpOneMetricInvalid", &[Cpu(30.0), Broken], (2, 6), 3, (3, 0), cpu(&[300, 400, 500]), seeded, 4),
        sync("TestScaleUpBothMetricsEmpty", &[Broken], (2, 6), 3, (3, 0), NONE, seeded, 3),
        // Upstream's second metric is of the invalid type "CheddarCheese", and the API server would not
        // admit minReplicas 0 beside a cpu metric alone. An External metric that cannot be read keeps
        // the case's meaning (one metric fails) and makes the spec admissible: the cpu metric alone
        // scales up from zero, ceil(40 % / 30 % · 3) = 4.
        sync("TestScaleUpFromZeroOneMetricInvalid", &[Cpu(30.0), Broken], (0, 6), 0, (3, 0), cpu(&[300, 400, 500]), fresh, 4),
        // Requests 0.9, 1.0 and 1.1 sum to one core per pod: utilization 102 % of 100 %.
        sync("TestTolerance", &[Cpu(100.0)], (1, 5), 3, (3, 0), cpu(&[1010, 1030, 1020]), seeded, 3),
        sync("TestToleranceCM", &[Pods(20.0)], (1, 5), 3, (3, 0), pods(&[20000, 20001, 21000]), seeded, 3),
        sync("TestToleranceCMExternal", &[Ext(8.888)], (1, 5), 3, (3, 0), ext(8600), seeded, 3),
        sync("TestTolerancePerPodCMExternal", &[ExtAvg(2.9)], (1, 5), 3, (3, 0), ext(8600), seeded, 3),
        sync("TestMinReplicas", &[Cpu(90.0)], (2, 5), 3, (3, 0), cpu(&[10, 95, 10]), fresh, 2),
        // Upstream: a cpu metric alone with minReplicas 0, which the controller honours but the API
        // server would not admit; with an External metric reading 0 beside it, it is admissible and
        // both propose 0.
        sync("TestZeroMinReplicasDesiredZero", &[Cpu(90.0), Ext(1.0)], (0, 5), 3, (3, 0), Load { ext: 0.0, ..cpu(&[0, 0, 0]) }, fresh, 0),
        sync("TestMinReplicasDesiredZero", &[Cpu(90.0)], (2, 5), 3, (3, 0), cpu(&[0, 0, 0]), fresh, 2),
        // ScalingDisabled: a target at zero with minReplicas > 0 is left alone.
        sync("TestZeroReplicas", &[Cpu(90.0)], (3, 5), 0, (0, 0), NONE, seeded, 0),
        sync("TestTooFewReplicas", &[Cpu(90.0)], (3, 5), 2, (2, 0), NONE, seeded, 3),
        sync("TestTooManyReplicas", &[Cpu(90.0)], (3, 5), 10, (10, 0), NONE, seeded, 5),
        sync("TestMaxReplicas", &[Cpu(90.0)], (2, 5), 3, (3, 0), cpu(&[8000, 9500, 1000]), seeded, 5),
        // Metrics for six pods, four pods: the two extra samples are not the target's.
        sync("TestSuperfluousMetrics", &[Cpu(100.0)], (2, 6), 4, (4, 0), cpu(&[4000, 9500, 3000, 7000]), seeded, 6),
        sync("TestEmptyMetrics", &[Cpu(100.0)], (2, 6), 4, (4, 0), NONE, seeded, 4),
        // 200m on 0.2-core requests: 1000 per core.
        sync("TestEventCreated", &[Cpu(50.0)], (1, 5), 1, (1, 0), cpu(&[1000]), seeded, 2),
        sync("TestEventNotCreated", &[Cpu(50.0)], (1, 5), 2, (2, 0), cpu(&[500, 500]), seeded, 2),
        sync("TestMissingReports", &[Cpu(50.0)], (1, 5), 4, (1, 0), cpu(&[1000]), fresh, 2),
        // Five pods during a surge, spec 4: utilization on target, spec kept.
        sync("TestMoreReplicasThanSpecNoScale", &[Cpu(50.0)], (1, 8), 4, (5, 0), cpu(&[500; 5]), seeded, 4),
        sync("TestConditionFailedGetMetrics FailedGetResourceMetric", &[Cpu(10.0)], (1, 100), 3, (3, 0), NONE, seeded, 3),
        sync("TestConditionFailedGetMetrics FailedGetPodsMetric", &[Pods(15.0)], (1, 100), 3, (3, 0), NONE, seeded, 3),
        sync("TestConditionFailedGetMetrics FailedGetExternalMetric", &[Ext(0.3)], (1, 100), 3, (3, 0), NONE, seeded, 3),
    ];
    // 100m, 200m, 300m on 0.1-core requests: 1, 2 and 3 cores' worth; 700 % per 60 s.
    #[rustfmt::skip]
    cases.extend([
        Case { behavior: behavior(Some(rules(0, 0.0, 700, 60.0, 0.0)), None), ..sync("TestUpscaleCap", &[Cpu(10.0)], (1, 100), 3, (3, 0), cpu(&[1000, 2000, 3000]), seeded, 24) },
        Case { behavior: behavior(Some(rules(0, 0.0, 700, 60.0, 0.0)), None), ..sync("TestUpscaleCapGreaterThanMaxReplicas", &[Cpu(10.0)], (1, 20), 3, (3, 0), cpu(&[1000, 2000, 3000]), seeded, 20) },
        Case { behavior: behavior(Some(rules(0, 0.0, 100, 15.0, 30.0)), None), ..sync("TestScaleDownWithScalingRules", &[Cpu(50.0)], (2, 6), 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), fresh, 3) },
    ]);
    check(&cases);
}

/// A case whose metric proposes exactly `desired` (an External AverageValue metric of target 1 reading
/// `desired`, far outside the tolerance), so that the normalization alone is under test, as upstream's
/// `convertDesiredReplicasWithRules` and `normalizeDesiredReplicasWithBehaviors` tests call it.
fn prenormalized(
    name: &'static str,
    (min, max): (u32, u32),
    cur: u32,
    desired: u32,
    want: u32,
) -> Case {
    Case {
        load: Load {
            ext: f64::from(desired),
            ..NONE
        },
        ..sync(
            name,
            &[M::ExtAvg(1.0)],
            (min, max),
            cur,
            (cur, 0),
            NONE,
            true,
            want,
        )
    }
}

#[test]
fn convert_desired_replicas_with_rules() {
    // TestConvertDesiredReplicasWithRules (the legacy path: no behavior).
    #[rustfmt::skip]
    let cases = [
        prenormalized("prenormalized desired replicas within range", (3, 8), 5, 7, 7),
        prenormalized("prenormalized desired replicas < minReplicas", (2, 8), 3, 1, 2),
        prenormalized("prenormalized desired zeroed replicas within range", (0, 10), 1, 0, 0),
        prenormalized("maxReplicas is the limit because maxReplicas < scaleUpLimit", (1, 10), 20, 1000, 10),
    ];
    check(&cases);
}

#[test]
fn scaling_with_rules() {
    // TestScalingWithRules, the rows without injected scale events.
    let up = |r: ScalingRules, c: Case| Case {
        behavior: behavior(Some(r), None),
        ..c
    };
    let down = |r: ScalingRules, c: Case| Case {
        behavior: behavior(None, Some(r)),
        ..c
    };
    let default = |c: Case| Case {
        behavior: behavior(None, None),
        ..c
    };
    let p = prenormalized;
    #[rustfmt::skip]
    let cases = [
        default(p("prenormalized desired replicas within range", (3, 8), 5, 7, 7)),
        default(p("prenormalized desired replicas < minReplicas", (2, 8), 3, 1, 2)),
        default(p("prenormalized desired replicas within range when minReplicas is 0", (0, 10), 1, 0, 0)),
        default(p("maxReplicas is the limit because maxReplicas < scaleUpLimit", (1, 10), 20, 1000, 10)),
        default(p("desired replica count is more than the maximum replica count", (100, 150), 100, 1000, 150)),
        up(rules(0, 0.0, 1, 60.0, 0.0), p("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", (1, 2000), 3, 1000, 4)),
        down(rules(20, 60.0, 0, 0.0, 0.0), p("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", (3, 2000), 1000, 3, 980)),
        default(p("scaleUp with default behavior", (1, 1000), 10, 50, 20)),
        up(rules(100, 60.0, 100, 60.0, 0.0), p("scaleUp with pods policy larger than percent policy", (1, 1000), 10, 500, 110)),
        up(rules(2, 60.0, 100, 60.0, 0.0), p("scaleUp with percent policy larger than pods policy", (1, 1000), 10, 500, 20)),
        up(rules(100, 60.0, 0, 0.0, 0.0), p("scaleUp with spec MaxReplicas limitation with large pod policy", (1, 1000), 10, 50, 50)),
        up(rules(10000, 60.0, 0, 0.0, 0.0), p("scaleUp with spec MaxReplicas limitation with large percent policy", (1, 1000), 10, 50, 50)),
        up(rules(30, 60.0, 0, 0.0, 0.0), p("scaleUp with pod policy limitation", (1, 1000), 10, 50, 40)),
        up(rules(0, 0.0, 200, 60.0, 0.0), p("scaleUp with percent policy limitation", (1, 1000), 10, 50, 30)),
        down(rules(20, 60.0, 1, 60.0, 300.0), p("scaleDown with percent policy larger than pod policy", (1, 1000), 100, 2, 80)),
        down(rules(2, 60.0, 1, 60.0, 300.0), p("scaleDown with pod policy larger than percent policy", (1, 1000), 100, 2, 98)),
        down(rules(100, 60.0, 0, 0.0, 300.0), p("scaleDown with spec MinReplicas=nil limitation with large pod policy", (1, 1000), 10, 0, 1)),
        down(rules(100, 60.0, 0, 0.0, 300.0), p("scaleDown with spec MinReplicas limitation with large pod policy", (1, 1000), 10, 0, 1)),
        down(rules(0, 0.0, 100, 60.0, 300.0), p("scaleDown with spec MinReplicas limitation with large percent policy", (5, 1000), 10, 2, 5)),
        down(rules(5, 60.0, 0, 0.0, 300.0), p("scaleDown with pod policy limitation", (1, 1000), 10, 2, 5)),
        down(rules(0, 0.0, 50, 60.0, 300.0), p("scaleDown with percent policy limitation", (1, 1000), 10, 5, 5)),
    ];
    check(&cases);
}

/// One `GetResourceReplicas` / `GetMetricReplicas` / `GetExternal*Replicas` of
/// `replica_calculator_test.go`: the proposal alone, so the sync runs with a behavior that neither
/// stabilizes nor limits (windows 0, a million pods up, 100 % down per 15 s).
fn calc(
    name: &'static str,
    metric: &'static [M],
    cur: u32,
    (ready, starting): (u32, u32),
    load: Load,
    want: u32,
) -> Case {
    let open = |policy| ScalingRules {
        stabilization_window_s: Some(0.0),
        policies: Some(vec![policy]),
        select_policy: Some(SelectPolicy::Max),
        tolerance: None,
    };
    Case {
        behavior: Some(Behavior {
            scale_up: open(ScalingPolicy {
                kind: PolicyKind::Pods,
                value: 1_000_000,
                period_s: 15.0,
            }),
            scale_down: open(ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period_s: 15.0,
            }),
        }),
        ..sync(
            name,
            metric,
            (1, 1000),
            cur,
            (ready, starting),
            load,
            false,
            want,
        )
    }
}

#[test]
fn replica_calculator_test_go() {
    use M::*;
    #[rustfmt::skip]
    let cases = [
        calc("TestReplicaCalcScaleUp", &[Cpu(30.0)], 3, (3, 0), cpu(&[300, 500, 700]), 5),
        calc("TestReplicaCalcScaleUpUnreadyLessScale", &[Cpu(30.0)], 3, (2, 1), cpu(&[500, 700]), 4),
        calc("TestReplicaCalcScaleUpHotCpuLessScale", &[Cpu(30.0)], 3, (2, 1), cpu(&[500, 700]), 4),
        calc("TestReplicaCalcScaleUpUnreadyNoScale", &[Cpu(30.0)], 3, (1, 2), cpu(&[400]), 3),
        calc("TestReplicaCalcScaleHotCpuNoScale", &[Cpu(30.0)], 3, (1, 2), cpu(&[400]), 3),
        calc("TestReplicaCalcScaleUpIgnoresFailedPods", &[Cpu(30.0)], 2, (2, 0), cpu(&[500, 700]), 4),
        calc("TestReplicaCalcScaleUpIgnoresDeletionPods", &[Cpu(30.0)], 2, (2, 0), cpu(&[500, 700]), 4),
        calc("TestReplicaCalcScaleUpCM", &[Pods(15.0)], 3, (3, 0), pods(&[20000, 10000, 30000]), 4),
        calc("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", &[Pods(15.0)], 3, (3, 0), pods(&[50000, 10000, 30000]), 6),
        // avg = floor(95000 / 3) = 31666 milli: r = 2.111, ceil(6.33).
        calc("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", &[Pods(15.0)], 3, (3, 0), pods(&[50000, 15000, 30000]), 7),
        // Upstream names it External but reads it as a Pods metric.
        calc("TestReplicaCalcScaleUpCMExternal", &[Pods(4.4)], 1, (1, 0), pods(&[8600]), 2),
        // One ready pod of three: ceil(8.6 / 4.4 · 1) = 2 ("would expect 6 if we didn't ignore unready pods").
        calc("TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", &[Ext(4.4)], 3, (1, 2), ext(8600), 2),
        calc("TestReplicaCalcScaleUpCMExternalNoLabels", &[Pods(4.4)], 1, (1, 0), pods(&[8600]), 2),
        calc("TestReplicaCalcScaleUpPerPodCMExternal", &[ExtAvg(2.15)], 3, (3, 0), ext(8600), 4),
        calc("TestReplicaCalcScaleDown", &[Cpu(50.0)], 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), 3),
        calc("TestReplicaCalcScaleDownCM", &[Pods(20.0)], 5, (5, 0), pods(&[12000; 5]), 3),
        calc("TestReplicaCalcScaleDownCMExternal", &[Ext(14.334)], 5, (5, 0), ext(8600), 3),
        calc("TestReplicaCalcScaleDownPerPodCMExternal", &[ExtAvg(2.867)], 5, (5, 0), ext(8600), 3),
        calc("TestReplicaCalcScaleDownIncludeUnreadyPods", &[Cpu(50.0)], 5, (3, 2), cpu(&[100, 300, 500]), 2),
        // Four Pending pods beside one Running: ceil(10 % / 50 % · 1) = 1.
        calc("TestReplicaCalcScaleDownExcludeUnscheduledPods", &[Cpu(50.0)], 5, (1, 4), cpu(&[100]), 1),
        calc("TestReplicaCalcScaleDownIgnoreHotCpuPods", &[Cpu(50.0)], 5, (3, 2), cpu(&[100, 300, 500]), 2),
        calc("TestReplicaCalcScaleDownIgnoresFailedPods", &[Cpu(50.0)], 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), 3),
        calc("TestReplicaCalcScaleDownIgnoresDeletionPods", &[Cpu(50.0)], 5, (5, 0), cpu(&[100, 300, 500, 250, 250]), 3),
        calc("TestReplicaCalcTolerance", &[Cpu(100.0)], 3, (3, 0), cpu(&[1010, 1030, 1020]), 3),
        calc("TestReplicaCalcToleranceCM", &[Pods(20.0)], 3, (3, 0), pods(&[20000, 21000, 21000]), 3),
        calc("TestReplicaCalcToleranceCMExternal", &[Ext(8.888)], 3, (3, 0), ext(8600), 3),
        calc("TestReplicaCalcTolerancePerPodCMExternal", &[ExtAvg(2.9)], 3, (3, 0), ext(8600), 3),
        calc("TestReplicaCalcSuperfluousMetrics", &[Cpu(100.0)], 4, (4, 0), cpu(&[4000, 9500, 3000, 7000]), 24),
        // 10 pods at 150m of 300m (requests vary by ±1..100m around 300m and sum to 3000m): 50 %. The
        // target int32((1/(2·0.9) + 0.01)·100) = 56 % scales to ceil(50/56 · 10) = 9; the target with
        // + 0.004 instead, 55 %, stays within the tolerance.
        calc("TestReplicaCalcComputedToleranceAlgImplementation", &[Cpu(56.0)], 10, (10, 0), Load { cpu: 5.0, ..NONE }, 9),
        calc("TestReplicaCalcComputedToleranceAlgImplementation (unscaling)", &[Cpu(55.0)], 10, (10, 0), Load { cpu: 5.0, ..NONE }, 10),
    ];
    check(&cases);
}

/// `minReplicas: 0` is admitted with at least one External (or Object) metric
/// (`pkg/apis/autoscaling/validation`, `validateMetrics`: "must specify at least one Object or External
/// metric to support scaling to zero replicas"). Without one, the law keeps one replica, as a user
/// would have had to write it.
#[test]
fn min_replicas_zero_needs_one_external_metric() {
    use M::*;
    let at_zero = |metrics: &'static [M]| {
        let c = sync(
            "",
            metrics,
            (0, 5),
            3,
            (3, 0),
            Load {
                ext: 0.0,
                ..cpu(&[0, 0, 0])
            },
            true,
            0,
        );
        run(&c)
    };
    assert_eq!(
        at_zero(&[Cpu(90.0)]),
        1,
        "cpu alone: minReplicas 0 is refused"
    );
    assert_eq!(at_zero(&[Ext(1.0)]), 0, "External alone");
    assert_eq!(at_zero(&[Cpu(90.0), Ext(1.0)]), 0, "cpu and External");
    assert_eq!(at_zero(&[Ext(1.0), Cpu(90.0)]), 0, "External and cpu");
}
