//! Kubernetes HorizontalPodAutoscaler autoscaling/v2 (`docs/peers.md` §1).
//!
//! [`Hpa::reconcile`] is one `reconcileAutoscaler` of kube-controller-manager for one HPA object:
//!
//! 1. seed the recommendation history with `cur` on the first sync (`recordInitialRecommendation`);
//! 2. boundary checks (§1.4): `cur = 0` with `min ≠ 0` → no change (`ScalingDisabled`); `cur > max` →
//!    `max`; `cur < min` → `min`;
//! 3. one proposal per metric (§1.2, `replica_calculator.go`), combined as §1.3: the max over valid
//!    proposals; no change when every metric failed, or when one failed and the max is below `cur`;
//! 4. normalization (§1.4): the legacy path when `behavior` is `None` (max of the recommendations of the
//!    last `downscale_stabilization_s`, then `cap = min(max, max(2·cur, 4))`), else the behavior path
//!    (API defaults for unset fields, stabilization `upRec`/`downRec`, per-policy rate limits over the
//!    scale-event history, `selectPolicy`);
//! 5. a scale event is recorded when the result differs from `cur` (only with `behavior`, as the
//!    controller does).
//!
//! [`Policy::decide`] runs one reconcile per `sync_period_s`; a call before the period has passed since
//! the last sync returns the last decision again, as a `Hold` (no sync happened, so nothing changed).
//!
//! # How the snapshot maps onto the HPA's inputs
//! * `cur` (`scale.spec.replicas`) is the law's own last decision, else `snapshot.current_replicas()`.
//! * `status.replicas` (path D) is `ready_replicas + starting_replicas`.
//! * The pods the selector matches are the ready pods (Running and Ready, each with a sample) and the
//!   starting pods (Pending or Running-not-Ready, no sample). How `groupPods` classifies the starting
//!   pods depends on the metric:
//!   * **A, Utilization**: starting pods are **unready**. This is the CPU rule (a pod that is not Ready
//!     yet, or Pending, is unready), applied to whatever signal is configured, because a utilization
//!     target is what the HPA's CPU path serves. Missing pods cannot arise from a snapshot (every ready
//!     pod reports), but the calculator handles them.
//!   * **B, Pods AverageValue**: starting pods are **missing** (Running-not-Ready pods count as ready
//!     for non-CPU metrics, and they report no sample). A Pending pod would be unready in Kubernetes;
//!     the snapshot does not split Pending from Running-not-Ready, and model loading dominates a GPU
//!     pod's start, so all starting pods take the missing-pod rules.
//!   * **C, External Value**: `readyPods` (`getReadyPodsCount`, Running and Ready) is `ready_replicas`;
//!     no pod at all (ready + starting = 0) is the "no pods returned by selector" error.
//!   * **D, External AverageValue**: readiness plays no part; only `status.replicas` does.
//! * A Utilization pod's request is one unit (1000 milli): the signal's per-pod value (0–1) is the
//!   usage/request ratio, so `util = floor(100 · Σ usage / (ready · 1))`.
//! * A metric whose [`Signal`] is `None` (NaN, infinite or negative in the snapshot) failed.
//! * The HPA works on int64 milli-units: totals and targets are converted with `round(x · 1000)`
//!   (saturating). Kubernetes' `Quantity.MilliValue` rounds up; rounding to nearest avoids turning float
//!   noise (`0.3 · 1000 = 300.00000000000006`) into an extra milli-unit. A target that rounds to 0 milli
//!   is taken as 1 milli.
//! * The history is in memory, as the controller's: [`Policy::reset`] forgets it, like a controller
//!   restart, and the next sync seeds it again with `cur`.
//!
//! NB: with `cur = 0` and `min ≠ 0`, [`Hpa::reconcile`] returns 0: the real controller leaves a target
//! at zero alone (`ScalingDisabled`), and KEDA's generated HPA relies on it. [`Policy::decide`] keeps the
//! crate's contract that a decision lies in `[min, max]` and returns `min` there instead (as if the
//! target had been created at the HPA's minimum); this can only happen on the first sync, when the
//! snapshot shows no pod at all. Every other path of `reconcile` already lands in `[min, max]`.

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
    /// `vllm:num_requests_running` (the batch size, which GKE's guide for LLM serving recommends for
    /// latency-sensitive services) at an AverageValue of 32 per pod, half of a vLLM batch of 64. The
    /// queue-size variant of the same guide is the `keda` default.
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
                signal: Signal::Running,
                target: 32.0,
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
            return Err(ConfigError::new(
                "hpa.metrics",
                "[]",
                "needs at least one metric",
            ));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            positive(&format!("hpa.metrics[{i}].target"), m.target)?;
        }
        non_negative("hpa.tolerance", self.tolerance)?;
        non_negative(
            "hpa.downscale_stabilization_s",
            self.downscale_stabilization_s,
        )?;
        positive("hpa.sync_period_s", self.sync_period_s)?;
        if let Some(b) = &self.behavior {
            for (dir, r) in [("scale_up", &b.scale_up), ("scale_down", &b.scale_down)] {
                if let Some(w) = r.stabilization_window_s {
                    non_negative(&format!("hpa.behavior.{dir}.stabilization_window_s"), w)?;
                }
                if let Some(t) = r.tolerance {
                    non_negative(&format!("hpa.behavior.{dir}.tolerance"), t)?;
                }
                if r.policies.as_ref().is_some_and(|p| p.is_empty()) {
                    // The API server: "must specify at least one Policy".
                    return Err(ConfigError::new(
                        format!("hpa.behavior.{dir}.policies"),
                        "[]",
                        "needs at least one policy (leave it out for the default)",
                    ));
                }
                for (i, p) in r.policies.iter().flatten().enumerate() {
                    positive(
                        &format!("hpa.behavior.{dir}.policies[{i}].period_s"),
                        p.period_s,
                    )?;
                    if p.value == 0 {
                        return Err(ConfigError::new(
                            format!("hpa.behavior.{dir}.policies[{i}].value"),
                            0,
                            "must be greater than zero",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `Tolerances` of `replica_calculator.go`: `inBand(r) = (1 − down) ≤ r ≤ (1 + up)`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tolerances {
    up: f64,
    down: f64,
}

impl Tolerances {
    fn is_within(self, r: f64) -> bool {
        1.0 - self.down <= r && r <= 1.0 + self.up
    }
}

/// The pods the selector matches, grouped as `groupPods` does for one metric (see the module doc for
/// how a snapshot's ready and starting pods map onto these groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PodGroups {
    /// Pods with a sample that count as ready (`readyPodCount`). For C: Running and Ready pods.
    ready: u32,
    /// Unready pods (Pending; for CPU also not-yet-Ready): their samples are dropped.
    unready: u32,
    /// Pods without a sample.
    missing: u32,
}

impl PodGroups {
    /// Every pod the selector matches (for D, `status.replicas`).
    fn total(self) -> u64 {
        u64::from(self.ready) + u64::from(self.unready) + u64::from(self.missing)
    }

    /// The groups of a snapshot's pods for a metric of `kind`.
    fn of(kind: MetricKind, s: &MetricsSnapshot) -> PodGroups {
        let (ready, starting) = (s.ready_replicas, s.starting_replicas);
        match kind {
            MetricKind::PodsAverageValue => PodGroups {
                ready,
                unready: 0,
                missing: starting,
            },
            MetricKind::Utilization
            | MetricKind::ExternalValue
            | MetricKind::ExternalAverageValue => PodGroups {
                ready,
                unready: starting,
                missing: 0,
            },
        }
    }
}

/// Why a metric gave no proposal (the controller's `FailedGet*Metric` conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricError {
    /// The metric could not be read.
    Failed,
    /// "no pods returned by selector while calculating replica count".
    NoPods,
    /// "did not receive metrics for targeted pods (pods might be unready)".
    NoSamples,
}

/// `x` in milli-units, rounded, saturating at the i64 range (NaN → 0).
fn milli(x: f64) -> i64 {
    (x * 1000.0).round() as i64
}

/// `ceil(x)` as a replica count (saturating; NaN → 0).
fn ceil_i64(x: f64) -> i64 {
    x.ceil() as i64
}

/// One pod's request for a Utilization metric, milli-units.
const REQUEST_MILLI: i128 = 1000;

/// The per-pod arithmetic of §1.2 A (Utilization) and B (AverageValue).
#[derive(Debug, Clone, Copy)]
enum PerPod {
    Utilization { target_pct: f64 },
    AverageValue { target_milli: i64 },
}

impl PerPod {
    /// The usage ratio over `n > 0` pods whose samples sum to `sum` milli-units
    /// (`GetResourceUtilizationRatio` / `GetMetricUsageRatio`, with their integer divisions).
    fn ratio(self, sum: i128, n: i128) -> f64 {
        match self {
            PerPod::Utilization { target_pct } => {
                let util = sum * 100 / (REQUEST_MILLI * n);
                util as f64 / target_pct
            }
            PerPod::AverageValue { target_milli } => (sum / n) as f64 / target_milli as f64,
        }
    }

    /// The sample assumed for a missing pod on a scale-down: `request · max(100, U*)/100` for A (`U*` an
    /// int32 percentage in the API), exactly the target for B.
    fn fill_below_target(self) -> i128 {
        match self {
            PerPod::Utilization { target_pct } => {
                let pct = target_pct.floor().clamp(100.0, f64::from(i32::MAX)) as i128;
                REQUEST_MILLI * pct / 100
            }
            PerPod::AverageValue { target_milli } => i128::from(target_milli),
        }
    }
}

/// §1.2 A and B (`GetResourceReplicas`, `calcPlainMetricReplicas`): `sum` is the total of the samples
/// of the ready pods, milli-units.
fn per_pod_replicas(
    law: PerPod,
    sum: i64,
    cur: u32,
    pods: PodGroups,
    tol: Tolerances,
) -> Result<i64, MetricError> {
    if pods.total() == 0 {
        return Err(MetricError::NoPods);
    }
    if pods.ready == 0 {
        return Err(MetricError::NoSamples);
    }
    let cur = i64::from(cur);
    let ready = i128::from(pods.ready);
    let r = law.ratio(i128::from(sum), ready);
    let scale_up_with_unready = pods.unready > 0 && r > 1.0;
    if !scale_up_with_unready && pods.missing == 0 {
        return Ok(if tol.is_within(r) {
            cur
        } else {
            ceil_i64(r * ready as f64)
        });
    }
    // Fill in assumed samples: missing pods at the target (A: max(100 %, U*)) on a scale-down and at 0 on
    // a scale-up; unready pods at 0 on a scale-up. At r = 1 exactly missing pods stay out of the set.
    let (mut sum2, mut n2) = (i128::from(sum), ready);
    let missing = i128::from(pods.missing);
    if r < 1.0 {
        sum2 += missing * law.fill_below_target();
        n2 += missing;
    } else if r > 1.0 {
        n2 += missing;
    }
    if scale_up_with_unready {
        n2 += i128::from(pods.unready);
    }
    let r2 = law.ratio(sum2, n2);
    if tol.is_within(r2) || (r < 1.0 && r2 > 1.0) || (r > 1.0 && r2 < 1.0) {
        return Ok(cur);
    }
    let n = ceil_i64(r2 * n2 as f64);
    if (r2 < 1.0 && n > cur) || (r2 > 1.0 && n < cur) {
        return Ok(cur);
    }
    Ok(n)
}

/// One metric's proposal (§1.2 A–D). `total` is the signal's fleet total (`None`: the metric failed).
fn metric_replicas(
    kind: MetricKind,
    target: f64,
    total: Option<f64>,
    cur: u32,
    pods: PodGroups,
    tol: Tolerances,
) -> Result<i64, MetricError> {
    let usage = milli(total.ok_or(MetricError::Failed)?);
    let target_milli = milli(target).max(1);
    match kind {
        MetricKind::Utilization => per_pod_replicas(
            PerPod::Utilization { target_pct: target },
            usage,
            cur,
            pods,
            tol,
        ),
        MetricKind::PodsAverageValue => {
            per_pod_replicas(PerPod::AverageValue { target_milli }, usage, cur, pods, tol)
        }
        // GetExternalMetricReplicas → getUsageRatioReplicaCount.
        MetricKind::ExternalValue => {
            let r = usage as f64 / target_milli as f64;
            if cur == 0 {
                // Scale from zero: no tolerance.
                return Ok(ceil_i64(r));
            }
            if tol.is_within(r) {
                return Ok(i64::from(cur));
            }
            if pods.total() == 0 {
                return Err(MetricError::NoPods);
            }
            Ok(ceil_i64(r * f64::from(pods.ready)))
        }
        // GetExternalPerPodMetricReplicas: statusReplicas = 0 gives r = inf (NaN for m = 0), never in band.
        MetricKind::ExternalAverageValue => {
            let status = pods.total();
            let r = usage as f64 / (target_milli as f64 * status as f64);
            Ok(if tol.is_within(r) {
                status as i64
            } else {
                ceil_i64(usage as f64 / target_milli as f64)
            })
        }
    }
}

/// `HPAScalingRules` with the API defaults filled in (§1.4).
#[derive(Debug, Clone, PartialEq)]
struct Rules {
    window_s: f64,
    policies: Vec<ScalingPolicy>,
    select: SelectPolicy,
}

impl Rules {
    /// `GenerateHPAScaleUpRules`: window 0, Pods 4 / 15 s and Percent 100 / 15 s, Max.
    fn scale_up(r: &ScalingRules) -> Rules {
        Rules {
            window_s: r.stabilization_window_s.unwrap_or(0.0),
            policies: r.policies.clone().unwrap_or_else(|| {
                vec![
                    ScalingPolicy {
                        kind: PolicyKind::Pods,
                        value: 4,
                        period_s: 15.0,
                    },
                    ScalingPolicy {
                        kind: PolicyKind::Percent,
                        value: 100,
                        period_s: 15.0,
                    },
                ]
            }),
            select: r.select_policy.unwrap_or(SelectPolicy::Max),
        }
    }

    /// `GenerateHPAScaleDownRules` + `maybeInitScaleDownStabilizationWindow`: window nil → the flag,
    /// Percent 100 / 15 s, Max.
    fn scale_down(r: &ScalingRules, flag_window_s: f64) -> Rules {
        Rules {
            window_s: r.stabilization_window_s.unwrap_or(flag_window_s),
            policies: r.policies.clone().unwrap_or_else(|| {
                vec![ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_s: 15.0,
                }]
            }),
            select: r.select_policy.unwrap_or(SelectPolicy::Max),
        }
    }

    /// `getLongestPolicyPeriod`.
    fn longest_period_s(&self) -> f64 {
        self.policies.iter().map(|p| p.period_s).fold(0.0, f64::max)
    }
}

/// The resolved behavior: both directions' rules.
#[derive(Debug, Clone, PartialEq)]
struct Resolved {
    up: Rules,
    down: Rules,
}

/// `timestampedRecommendation`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recommendation {
    t: f64,
    replicas: i64,
}

/// `timestampedScaleEvent`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScaleEvent {
    t: f64,
    change: i64,
    outdated: bool,
}

/// `getReplicasChangePerPeriod`: the replicas added (or removed) by events strictly after `now − period`.
fn change_in_period(events: &[ScaleEvent], period_s: f64, now: f64) -> i64 {
    let cutoff = now - period_s;
    events
        .iter()
        .filter(|e| e.t > cutoff)
        .map(|e| e.change)
        .sum()
}

/// The HPA controller for one target.
#[derive(Debug, Clone)]
pub struct Hpa {
    /// Boxed, as is `behavior`: it keeps the [`crate::Baseline`] enum small.
    cfg: Box<HpaConfig>,
    bounds: Bounds,
    /// The behavior with its defaults filled in; `None` takes the legacy path.
    behavior: Option<Box<Resolved>>,
    tol: Tolerances,
    /// A failed metric reads as 0 instead of failing (KEDA's metrics adapter with `ignoreNullValues`).
    null_as_zero: bool,
    /// The last decision (`scale.spec.replicas` as this controller wrote it).
    last: Option<u32>,
    /// When the last sync ran, Unix seconds.
    last_sync: Option<f64>,
    /// `recommendations[key]`; an expired slot is reused as the controller does.
    recommendations: Vec<Recommendation>,
    /// `scaleUpEvents[key]`, `scaleDownEvents[key]` (kept only with a behavior).
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl Hpa {
    /// The target's `spec.replicas` as observed, when something else writes it (the controller's
    /// shadow mode recomputes the HPA beside the real one): the next sync starts from it, as the HPA
    /// controller reads `scale.spec.replicas` each sync. The recommendation windows are kept.
    pub fn observe_current(&mut self, replicas: u32) {
        if self.last.is_some() {
            self.last = Some(self.bounds.clamp(replicas));
        }
    }

    /// A new HPA with empty history. `bounds.min` is `minReplicas`, `bounds.max` `maxReplicas`.
    ///
    /// `minReplicas: 0` needs the `HPAScaleToZero` gate and at least one External (or Object) metric
    /// in Kubernetes (`pkg/apis/autoscaling/validation`: "must specify at least one Object or External
    /// metric to support scaling to zero replicas"): with Resource or Pods metrics only, whose per-pod
    /// average does not exist at zero pods, such an HPA would stay at zero forever. So a scenario that
    /// allows zero replicas gets `minReplicas: 1` here unless some metric is External, as a user would
    /// have to write it. Beside an External metric, a Resource or Pods metric fails at zero pods and the
    /// External one alone scales the target back up (§1.3: the max over the valid proposals).
    pub fn new(cfg: HpaConfig, mut bounds: Bounds) -> Self {
        let has_external = cfg.metrics.iter().any(|m| {
            matches!(
                m.kind,
                MetricKind::ExternalValue | MetricKind::ExternalAverageValue
            )
        });
        // (A range of [0, 0] stays at zero: a real HPA cannot have maxReplicas 0 at all, and raising the
        // floor above the ceiling would leave the range.)
        if bounds.min == 0 && !has_external && bounds.max >= 1 {
            bounds.min = 1;
        }
        let behavior = cfg.behavior.as_ref().map(|b| {
            Box::new(Resolved {
                up: Rules::scale_up(&b.scale_up),
                down: Rules::scale_down(&b.scale_down, cfg.downscale_stabilization_s),
            })
        });
        // tolerancesForHpa: per-direction tolerances only come from a behavior block.
        let per_dir = |r: Option<f64>| r.unwrap_or(cfg.tolerance);
        let tol = match &cfg.behavior {
            Some(b) => Tolerances {
                up: per_dir(b.scale_up.tolerance),
                down: per_dir(b.scale_down.tolerance),
            },
            None => Tolerances {
                up: cfg.tolerance,
                down: cfg.tolerance,
            },
        };
        Hpa {
            cfg: Box::new(cfg),
            bounds,
            behavior,
            tol,
            null_as_zero: false,
            last: None,
            last_sync: None,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// Read a failed metric as 0, as the HPA KEDA generates sees a Prometheus trigger with
    /// `ignoreNullValues: true` through KEDA's metrics adapter.
    pub(crate) fn null_values_as_zero(mut self) -> Self {
        self.null_as_zero = true;
        self
    }

    /// The effective `maxReplicas` (never below `minReplicas`).
    fn max_replicas(&self) -> u32 {
        self.bounds.max.max(self.bounds.min)
    }

    /// One `reconcileAutoscaler` at `now` with `scale.spec.replicas = cur`, regardless of the sync
    /// period: returns the new `spec.replicas` (`cur` when nothing changes) and updates the
    /// recommendation and scale-event history. A non-finite `now` changes nothing.
    pub fn reconcile(&mut self, cur: u32, snapshot: &MetricsSnapshot, now: SimTime) -> u32 {
        let t = now.unix_s();
        if !t.is_finite() {
            return cur;
        }
        // recordInitialRecommendation.
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                t,
                replicas: i64::from(cur),
            });
        }
        let (min, max) = (i64::from(self.bounds.min), i64::from(self.max_replicas()));
        let c = i64::from(cur);
        let desired = if c == 0 && min != 0 {
            // ScalingDisabled: the target was scaled to zero by someone else (KEDA).
            return cur;
        } else if c > max {
            max
        } else if c < min {
            min
        } else {
            let Some(d) = self.metric_proposal(cur, snapshot) else {
                // FailedComputeMetricsReplicas: no rescale, and no recommendation stored.
                return cur;
            };
            if self.behavior.is_some() {
                self.normalize_with_behaviors(c, d, t)
            } else {
                self.normalize_legacy(c, d, t)
            }
        };
        if desired != c {
            self.store_scale_event(c, desired, t);
        }
        // Every path above lands in [min, max]; the clamp only guards the conversion.
        u32::try_from(desired.clamp(min, max)).unwrap_or(cur)
    }

    /// `computeReplicasForMetrics` (§1.3): the max over valid proposals, or `None` (no change) when
    /// every metric failed or when one failed and the max is below `cur`.
    fn metric_proposal(&self, cur: u32, snapshot: &MetricsSnapshot) -> Option<i64> {
        let mut replicas = 0i64;
        let mut invalid = 0usize;
        for m in &self.cfg.metrics {
            let total =
                m.signal
                    .total(snapshot)
                    .or(if self.null_as_zero { Some(0.0) } else { None });
            let pods = PodGroups::of(m.kind, snapshot);
            match metric_replicas(m.kind, m.target, total, cur, pods, self.tol) {
                Ok(p) => {
                    if replicas == 0 || p > replicas {
                        replicas = p;
                    }
                }
                Err(_) => invalid += 1,
            }
        }
        if invalid >= self.cfg.metrics.len() || (invalid > 0 && replicas < i64::from(cur)) {
            return None;
        }
        Some(replicas)
    }

    /// Store `rec` in the history, reusing the slot `old` of an expired entry if there is one.
    fn store_recommendation(&mut self, old: Option<usize>, rec: Recommendation) {
        match old {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
    }

    /// `normalizeDesiredReplicas`: `stabilizeRecommendation` (the max over the recommendations not
    /// older than the window; one at exactly `now − window` still counts) and
    /// `convertDesiredReplicasWithRules`.
    fn normalize_legacy(&mut self, cur: i64, desired: i64, now: f64) -> i64 {
        let cutoff = now - self.cfg.downscale_stabilization_s;
        let mut stabilized = desired;
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.t < cutoff {
                old = Some(i);
            } else if r.replicas > stabilized {
                stabilized = r.replicas;
            }
        }
        self.store_recommendation(
            old,
            Recommendation {
                t: now,
                replicas: desired,
            },
        );
        let min = i64::from(self.bounds.min);
        let cap = i64::from(self.max_replicas()).min((2 * cur).max(4));
        if stabilized < min {
            min
        } else if stabilized > cap {
            cap
        } else {
            stabilized
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`: `stabilizeRecommendationWithBehaviors` (recommendations
    /// strictly younger than each window) then `convertDesiredReplicasWithBehaviorRate`.
    fn normalize_with_behaviors(&mut self, cur: i64, desired: i64, now: f64) -> i64 {
        let Some(b) = self.behavior.as_ref() else {
            return self.normalize_legacy(cur, desired, now);
        };
        let up_cutoff = now - b.up.window_s;
        let down_cutoff = now - b.down.window_s;
        let (mut up_rec, mut down_rec) = (desired, desired);
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.t > up_cutoff {
                up_rec = up_rec.min(r.replicas);
            }
            if r.t > down_cutoff {
                down_rec = down_rec.max(r.replicas);
            }
            if r.t < up_cutoff && r.t < down_cutoff {
                old = Some(i);
            }
        }
        let mut s = cur;
        if s < up_rec {
            s = up_rec;
        }
        if s > down_rec {
            s = down_rec;
        }
        self.store_recommendation(
            old,
            Recommendation {
                t: now,
                replicas: desired,
            },
        );

        let (min, max) = (i64::from(self.bounds.min), i64::from(self.max_replicas()));
        if s > cur {
            let limit = self.scale_up_limit(cur, now).max(cur);
            let allowed = max.min(limit);
            if s > allowed {
                return allowed;
            }
        } else if s < cur {
            let limit = self.scale_down_limit(cur, now).min(cur);
            let allowed = min.max(limit);
            if s < allowed {
                return allowed;
            }
        }
        s
    }

    /// The replica count at the start of a policy's period: `cur − added + removed` within it.
    fn period_start(&self, cur: i64, period_s: f64, now: f64) -> i64 {
        cur - change_in_period(&self.scale_up_events, period_s, now)
            + change_in_period(&self.scale_down_events, period_s, now)
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit(&self, cur: i64, now: f64) -> i64 {
        let Some(b) = self.behavior.as_ref() else {
            return cur;
        };
        let pick: fn(i64, i64) -> i64 = match b.up.select {
            SelectPolicy::Disabled => return cur,
            SelectPolicy::Min => i64::min,
            SelectPolicy::Max => i64::max,
        };
        let mut result = if b.up.select == SelectPolicy::Min {
            i64::MAX
        } else {
            i64::MIN
        };
        for p in &b.up.policies {
            let base = self.period_start(cur, p.period_s, now);
            let proposed = match p.kind {
                PolicyKind::Pods => base.saturating_add(i64::from(p.value)),
                PolicyKind::Percent => ceil_i64(base as f64 * (1.0 + f64::from(p.value) / 100.0)),
            };
            result = pick(result, proposed);
        }
        result
    }

    /// `calculateScaleDownLimitWithBehaviors`: selectPolicy Max takes the smallest proposal (the
    /// biggest change), Min the largest.
    fn scale_down_limit(&self, cur: i64, now: f64) -> i64 {
        let Some(b) = self.behavior.as_ref() else {
            return cur;
        };
        let pick: fn(i64, i64) -> i64 = match b.down.select {
            SelectPolicy::Disabled => return cur,
            SelectPolicy::Min => i64::max,
            SelectPolicy::Max => i64::min,
        };
        let mut result = if b.down.select == SelectPolicy::Min {
            i64::MIN
        } else {
            i64::MAX
        };
        for p in &b.down.policies {
            let base = self.period_start(cur, p.period_s, now);
            let proposed = match p.kind {
                PolicyKind::Pods => base.saturating_sub(i64::from(p.value)),
                // int32(float64(base) · (1 − v/100)): truncation toward zero.
                PolicyKind::Percent => (base as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            };
            result = pick(result, proposed);
        }
        result
    }

    /// `storeScaleEvent`: only with a behavior; events older than the direction's longest policy period
    /// are marked outdated and the last outdated slot is reused.
    fn store_scale_event(&mut self, prev: i64, new: i64, now: f64) {
        let Some(b) = self.behavior.as_ref() else {
            return;
        };
        let (longest, events, change) = if new > prev {
            (
                b.up.longest_period_s(),
                &mut self.scale_up_events,
                new - prev,
            )
        } else {
            (
                b.down.longest_period_s(),
                &mut self.scale_down_events,
                prev - new,
            )
        };
        let cutoff = now - longest;
        for e in events.iter_mut() {
            if e.t < cutoff {
                e.outdated = true;
            }
        }
        let event = ScaleEvent {
            t: now,
            change,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

impl Policy for Hpa {
    fn name(&self) -> String {
        "hpa".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let t = now.unix_s();
        if let (Some(last), Some(synced)) = (self.last, self.last_sync)
            && (!t.is_finite()
                || (0.0..self.cfg.sync_period_s - crate::PERIOD_SLACK_S).contains(&(t - synced)))
        {
            return decision(last, last);
        }
        if !t.is_finite() {
            // No usable clock before the first sync: hold, within bounds, and do not start the history.
            return decision(cur, self.bounds.clamp(cur));
        }
        // Only ScalingDisabled (cur = 0, min ≠ 0) leaves [min, max]: see the module doc.
        let n = self.reconcile(cur, snapshot, now);
        let n = self.bounds.clamp(n);
        self.last = Some(n);
        self.last_sync = Some(t);
        decision(cur, n)
    }

    fn reset(&mut self) {
        self.last = None;
        self.last_sync = None;
        self.recommendations.clear();
        self.scale_up_events.clear();
        self.scale_down_events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::snap;
    use rlscale_core::Reason;

    /// A realistic epoch, so that window arithmetic runs on large timestamps.
    const T0: f64 = 1_700_000_000.0;
    const TOL: Tolerances = Tolerances { up: 0.1, down: 0.1 };

    fn pods(ready: u32, unready: u32, missing: u32) -> PodGroups {
        PodGroups {
            ready,
            unready,
            missing,
        }
    }

    /// A snapshot at `T0 + t` with `ready` + `starting` pods and a queue of `queue` requests.
    fn at(t: f64, ready: u32, starting: u32, queue: f64) -> MetricsSnapshot {
        let mut s = snap(T0 + t, ready, starting);
        s.queue_depth = queue;
        s
    }

    fn metric(kind: MetricKind, signal: Signal, target: f64) -> HpaMetric {
        HpaMetric {
            kind,
            signal,
            target,
        }
    }

    /// An HPA on the Pods metric queue depth at an AverageValue of 10 (the tests' workhorse).
    fn queue_hpa(behavior: Option<Behavior>) -> HpaConfig {
        HpaConfig {
            metrics: vec![metric(
                MetricKind::PodsAverageValue,
                Signal::QueueDepth,
                10.0,
            )],
            behavior,
            ..HpaConfig::default()
        }
    }

    fn policy(kind: PolicyKind, value: u32) -> ScalingPolicy {
        ScalingPolicy {
            kind,
            value,
            period_s: 15.0,
        }
    }

    /// A behavior whose scale-down has no stabilization window and the given policies and selectPolicy.
    fn down_rules(policies: Vec<ScalingPolicy>, select: SelectPolicy) -> Option<Behavior> {
        Some(Behavior {
            scale_up: ScalingRules::default(),
            scale_down: ScalingRules {
                stabilization_window_s: Some(0.0),
                policies: Some(policies),
                select_policy: Some(select),
                tolerance: None,
            },
        })
    }

    fn up_select(select: SelectPolicy) -> Option<Behavior> {
        Some(Behavior {
            scale_up: ScalingRules {
                select_policy: Some(select),
                ..ScalingRules::default()
            },
            scale_down: ScalingRules::default(),
        })
    }

    /// Drive `p` every `step` seconds from `T0`; pods start instantly (ready = the last decision, the
    /// first snapshot has `first_ready`), the queue at the k-th call is `queue[k]`.
    fn run_seq(p: &mut impl Policy, first_ready: u32, step: f64, queue: &[f64]) -> Vec<u32> {
        let mut ready = first_ready;
        let mut out = Vec::new();
        for (k, &q) in queue.iter().enumerate() {
            let t = k as f64 * step;
            let d = p.decide(&at(t, ready, 0, q), SimTime(T0 + t));
            ready = d.replicas;
            out.push(d.replicas);
        }
        out
    }

    // ---- Table-driven per-metric cases, in the style of replica_calculator_test.go ----

    struct CalcCase {
        name: &'static str,
        kind: MetricKind,
        target: f64,
        cur: u32,
        pods: PodGroups,
        /// The signal's total over the pods with samples; `None`: the metric failed.
        total: Option<f64>,
        tol: Tolerances,
        want: Result<i64, MetricError>,
    }

    fn run_calc(c: &CalcCase) {
        let got = metric_replicas(c.kind, c.target, c.total, c.cur, c.pods, c.tol);
        assert_eq!(got, c.want, "{}", c.name);
    }

    #[test]
    fn replica_calculator_table() {
        use MetricKind::*;
        let case = |name, kind, target, cur, pods, total, want| CalcCase {
            name,
            kind,
            target,
            cur,
            pods,
            total,
            tol: TOL,
            want,
        };
        #[rustfmt::skip]
        let cases = [
            // B: Pods AverageValue, target 10 per pod.
            case("B r=0.9 lower edge holds", PodsAverageValue, 10.0, 4, pods(4, 0, 0), Some(36.0), Ok(4)),
            case("B r=1.1 upper edge holds", PodsAverageValue, 10.0, 4, pods(4, 0, 0), Some(44.0), Ok(4)),
            case("B r=1.11 scales: ceil(4.44)", PodsAverageValue, 10.0, 4, pods(4, 0, 0), Some(44.4), Ok(5)),
            case("B r=0.89 scales down: ceil(8.9)", PodsAverageValue, 10.0, 10, pods(10, 0, 0), Some(89.0), Ok(9)),
            // avg = floor(100000 / 3) = 33333 milli → r = 3.3333 → ceil(9.9999).
            case("B ceil(r·ready) on milli avg", PodsAverageValue, 10.0, 3, pods(3, 0, 0), Some(100.0), Ok(10)),
            // r = 0.5; the 2 missing pods count at the target: 30/4 = 7.5 → r' = 0.75 → ceil(3).
            case("B missing at target on scale-down", PodsAverageValue, 10.0, 4, pods(2, 0, 2), Some(10.0), Ok(3)),
            // r = 2.1; the missing pods count at 0: 42/4 = 10.5 → r' = 1.05 in band → cur (not ceil(4.2)).
            case("B missing at 0 on scale-up, into band", PodsAverageValue, 10.0, 4, pods(2, 0, 2), Some(42.0), Ok(4)),
            // r' = 0.75 → n' = 3 > cur = 2: against the direction → cur.
            case("B n' against the direction holds", PodsAverageValue, 10.0, 2, pods(2, 0, 2), Some(10.0), Ok(2)),
            case("B no sample at all", PodsAverageValue, 10.0, 3, pods(0, 0, 3), Some(0.0), Err(MetricError::NoSamples)),
            case("B no pods", PodsAverageValue, 10.0, 3, pods(0, 0, 0), Some(0.0), Err(MetricError::NoPods)),
            case("failed metric", PodsAverageValue, 10.0, 3, pods(3, 0, 0), None, Err(MetricError::Failed)),
            // A: Utilization, target 50 %; each pod's request is one unit.
            case("A ceil(r·ready)", Utilization, 50.0, 4, pods(4, 0, 0), Some(2.4), Ok(5)),
            // util = floor(55.9) = 55 → r = 1.1 in band (untruncated 1.118 would scale).
            case("A util truncates into band", Utilization, 50.0, 10, pods(10, 0, 0), Some(5.59), Ok(10)),
            // r = 0.6 < 1: unready pods are left out, fast path ceil(0.6 · 4).
            case("A unready ignored on scale-down", Utilization, 50.0, 6, pods(4, 2, 0), Some(1.2), Ok(3)),
            // r = 2.2; 2 unready at 0 → util' = floor(2200·100/4000) = 55 → r' = 1.1 in band → cur.
            case("A unready at 0 on scale-up, into band", Utilization, 50.0, 4, pods(2, 2, 0), Some(2.2), Ok(4)),
            // r = 1.6; unready at 0 → util' = 40 → r' = 0.8 < 1: the direction flips → cur (#79158).
            case("A unready flips the direction", Utilization, 50.0, 4, pods(2, 2, 0), Some(1.6), Ok(4)),
            // r = 3; unready at 0 → util' = 75 → r' = 1.5 → ceil(1.5 · 4).
            case("A unready at 0, still scales up", Utilization, 50.0, 4, pods(2, 2, 0), Some(3.0), Ok(6)),
            // r = 0.2; the missing pod at max(100, 50) % → util' = floor(1200·100/3000) = 40 → ceil(0.8·3).
            case("A missing at 100 % on scale-down", Utilization, 50.0, 3, pods(2, 0, 1), Some(0.2), Ok(3)),
            // r = 0.8; the missing pod at 100 % → util' = 70 → r' = 1.4 > 1: flips → cur.
            case("A missing flips the direction", Utilization, 50.0, 2, pods(1, 0, 1), Some(0.4), Ok(2)),
            // U* = 150 > 100: the missing pod at 150 % → util' = floor(2100·100/2000) = 105 → r' = 0.7 → ceil(1.4).
            case("A missing at U* above 100 %", Utilization, 150.0, 3, pods(1, 0, 1), Some(0.6), Ok(2)),
            // C: External Value, target 10.
            case("C ceil(r·readyPods), starting not counted", ExternalValue, 10.0, 4, pods(3, 1, 0), Some(45.0), Ok(14)),
            case("C in band", ExternalValue, 10.0, 4, pods(3, 1, 0), Some(10.5), Ok(4)),
            case("C cur=0: ceil(r), no tolerance", ExternalValue, 10.0, 0, pods(0, 0, 0), Some(10.5), Ok(2)),
            case("C cur=0: ceil(4.5)", ExternalValue, 10.0, 0, pods(0, 0, 0), Some(45.0), Ok(5)),
            case("C no pods", ExternalValue, 10.0, 2, pods(0, 0, 0), Some(45.0), Err(MetricError::NoPods)),
            case("C only starting pods: ceil(r·0)", ExternalValue, 10.0, 2, pods(0, 2, 0), Some(45.0), Ok(0)),
            // D: External AverageValue, target 5; statusReplicas = every pod.
            case("D in band returns statusReplicas", ExternalAverageValue, 5.0, 3, pods(2, 2, 0), Some(21.0), Ok(4)),
            case("D ceil(m/t)", ExternalAverageValue, 5.0, 3, pods(2, 2, 0), Some(30.0), Ok(6)),
            case("D readiness plays no part", ExternalAverageValue, 5.0, 3, pods(0, 3, 0), Some(15.0), Ok(3)),
            case("D statusReplicas=0: ceil(m/t)", ExternalAverageValue, 5.0, 1, pods(0, 0, 0), Some(7.0), Ok(2)),
            case("D statusReplicas=0, m=0", ExternalAverageValue, 5.0, 1, pods(0, 0, 0), Some(0.0), Ok(0)),
        ];
        for c in &cases {
            run_calc(c);
        }
    }

    #[test]
    fn per_direction_tolerance() {
        let tol = Tolerances { up: 0.5, down: 0.1 };
        #[rustfmt::skip]
        let cases = [
            (4, 56.0, 4),  // r = 1.4 ≤ 1.5: holds
            (4, 64.0, 7),  // r = 1.6: ceil(6.4)
            (10, 90.0, 10), // r = 0.9: holds
            (10, 89.0, 9), // r = 0.89: ceil(8.9)
        ];
        for (ready, total, want) in cases {
            let c = CalcCase {
                name: "per-direction tolerance",
                kind: MetricKind::PodsAverageValue,
                target: 10.0,
                cur: ready,
                pods: pods(ready, 0, 0),
                total: Some(total),
                tol,
                want: Ok(want),
            };
            run_calc(&c);
        }
        // Set through behavior: scale-up tolerance 0.5, scale-down from the flag.
        let mut b = Behavior::default();
        b.scale_up.tolerance = Some(0.5);
        let hpa = Hpa::new(queue_hpa(Some(b)), Bounds { min: 1, max: 10 });
        assert_eq!(hpa.tol, tol);
        // Without behavior the flag applies both ways.
        let hpa = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 10 });
        assert_eq!(hpa.tol, TOL);
    }

    // ---- Table-driven reconcile cases (one sync from empty history) ----

    struct SyncCase {
        name: &'static str,
        cfg: HpaConfig,
        bounds: Bounds,
        /// `scale.spec.replicas`.
        cur: u32,
        ready: u32,
        starting: u32,
        queue: f64,
        running: f64,
        gpu: f64,
        want: u32,
    }

    fn run_sync(c: &SyncCase) {
        let mut s = at(0.0, c.ready, c.starting, c.queue);
        s.running = c.running;
        s.gpu_utilization = c.gpu;
        let mut hpa = Hpa::new(c.cfg.clone(), c.bounds);
        assert_eq!(hpa.reconcile(c.cur, &s, SimTime(T0)), c.want, "{}", c.name);
    }

    #[test]
    fn reconcile_table() {
        use MetricKind::*;
        let b100 = Bounds { min: 1, max: 100 };
        let two = |m1: HpaMetric, m2: HpaMetric, behavior| HpaConfig {
            metrics: vec![m1, m2],
            behavior,
            ..HpaConfig::default()
        };
        let q10 = metric(PodsAverageValue, Signal::QueueDepth, 10.0);
        let r10 = metric(PodsAverageValue, Signal::Running, 10.0);
        let no_down_window = down_rules(vec![policy(PolicyKind::Percent, 100)], SelectPolicy::Max);
        let one = |m: HpaMetric| HpaConfig {
            metrics: vec![m],
            ..HpaConfig::default()
        };
        let case = |name, cfg, bounds, cur, ready, starting, queue, want| SyncCase {
            name,
            cfg,
            bounds,
            cur,
            ready,
            starting,
            queue,
            running: 0.0,
            gpu: 0.0,
            want,
        };
        #[rustfmt::skip]
        let mut cases = vec![
            // Desired 10 from cur = 1: legacy cap max(2·1, 4) = 4; behavior max(1 + 4, 2·1) = 5.
            case("legacy cap at cur=1", queue_hpa(None), b100, 1, 1, 0, 100.0, 4),
            case("behavior cap at cur=1", queue_hpa(Some(Behavior::default())), b100, 1, 1, 0, 100.0, 5),
            case("legacy cap 2·cur", queue_hpa(None), b100, 6, 6, 0, 1000.0, 12),
            case("behavior cap: Percent 100 wins at cur=6", queue_hpa(Some(Behavior::default())), b100, 6, 6, 0, 1000.0, 12),
            case("behavior cap then max", queue_hpa(Some(Behavior::default())), Bounds { min: 1, max: 10 }, 6, 6, 0, 1000.0, 10),
            case("scaleUp selectPolicy Min: min(1+4, 2)", queue_hpa(up_select(SelectPolicy::Min)), b100, 1, 1, 0, 100.0, 2),
            case("scaleUp selectPolicy Disabled", queue_hpa(up_select(SelectPolicy::Disabled)), b100, 1, 1, 0, 100.0, 1),
            // Desired 0 from 5: Percent 50 → trunc(2.5) = 2; from 3: trunc(1.5) = 1.
            case("Percent down truncates (5)", queue_hpa(down_rules(vec![policy(PolicyKind::Percent, 50)], SelectPolicy::Max)), b100, 5, 5, 0, 0.0, 2),
            case("Percent down truncates (3)", queue_hpa(down_rules(vec![policy(PolicyKind::Percent, 50)], SelectPolicy::Max)), b100, 3, 3, 0, 0.0, 1),
            // Pods 1 → 4, Percent 50 → 2: Max takes the biggest change, Min the smallest.
            case("scaleDown selectPolicy Max", queue_hpa(down_rules(vec![policy(PolicyKind::Pods, 1), policy(PolicyKind::Percent, 50)], SelectPolicy::Max)), b100, 5, 5, 0, 0.0, 2),
            case("scaleDown selectPolicy Min", queue_hpa(down_rules(vec![policy(PolicyKind::Pods, 1), policy(PolicyKind::Percent, 50)], SelectPolicy::Min)), b100, 5, 5, 0, 0.0, 4),
            case("scaleDown selectPolicy Disabled", queue_hpa(down_rules(vec![policy(PolicyKind::Pods, 1)], SelectPolicy::Disabled)), b100, 5, 5, 0, 0.0, 5),
            // Boundary checks, before any metric.
            case("cur=0, min≠0: ScalingDisabled", queue_hpa(None), b100, 0, 0, 0, 100.0, 0),
            case("cur > max → max", queue_hpa(None), Bounds { min: 1, max: 5 }, 8, 8, 0, 1000.0, 5),
            case("cur < min → min", queue_hpa(None), Bounds { min: 3, max: 10 }, 1, 1, 0, 0.0, 3),
            // Several metrics: queue → ceil(0.5·4) = 2, running → ceil(1.5·4) = 6; max 6 (cap 8).
            SyncCase { running: 60.0, ..case("max over metrics", two(q10, r10, None), b100, 4, 4, 0, 20.0, 6) },
            // Running proposes ceil(0.2·4) = 1 < cur while queue failed: no scale-down.
            SyncCase { running: 8.0, ..case("one failed, max below cur: hold", two(q10, r10, no_down_window.clone()), b100, 4, 4, 0, f64::NAN, 4) },
            // The same with the queue valid (0 → proposal 0): scales down to 1.
            SyncCase { running: 8.0, ..case("control: none failed, scales down", two(q10, r10, no_down_window.clone()), b100, 4, 4, 0, 0.0, 1) },
            SyncCase { running: 60.0, ..case("one failed, max above cur: scales", two(q10, r10, None), b100, 4, 4, 0, f64::NAN, 6) },
            SyncCase { running: f64::NAN, ..case("all failed: hold", two(q10, r10, no_down_window), b100, 4, 4, 0, -1.0, 4) },
            // Scale from zero with min 0 (HPAScaleToZero) on an External Value metric: ceil(25/10) = 3.
            case("C from zero", one(metric(ExternalValue, Signal::QueueDepth, 10.0)), Bounds { min: 0, max: 10 }, 0, 0, 0, 25.0, 3),
            // D: cur 3 but 4 pods exist; r = 21/(5·4) in band → statusReplicas 4.
            case("D takes statusReplicas", one(metric(ExternalAverageValue, Signal::QueueDepth, 5.0)), b100, 3, 2, 2, 21.0, 4),
            // B with 2 starting pods as missing: r = 2.1 → r' = 1.05 in band → hold.
            case("B starting pods are missing", queue_hpa(None), b100, 4, 2, 2, 42.0, 4),
            // Without the starting pods: r = 2.1 on 2 pods → ceil(4.2) = 5 (behavior cap 6).
            case("B without starting pods", queue_hpa(Some(Behavior::default())), b100, 2, 2, 0, 42.0, 5),
        ];
        // A with 2 starting pods as unready: 80 % on 2 ready pods, target 50 → flip → hold.
        let gpu50 = one(metric(Utilization, Signal::GpuUtilization, 50.0));
        #[rustfmt::skip]
        cases.extend([
            SyncCase { gpu: 0.8, ..case("A starting pods are unready (flip)", gpu50.clone(), b100, 4, 2, 2, 0.0, 4) },
            SyncCase { gpu: 0.8, ..case("A without starting pods", gpu50, b100, 2, 2, 0, 0.0, 4) },
        ]);
        for c in &cases {
            run_sync(c);
        }
    }

    // ---- Time sequences, in the style of knative's autoscaler_test.go ----

    #[test]
    fn legacy_spike_then_drop_holds_the_max_for_300s() {
        let mut hpa = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 20 });
        // 100 queued at t = 0, 15, 30; then 10 from t = 45 to t = 345.
        let mut queue = vec![100.0; 3];
        queue.extend([10.0; 21]);
        let got = run_seq(&mut hpa, 2, 15.0, &queue);
        // Desired 10 each time, capped at max(2·cur, 4): 4, 8, 10.
        let mut want = vec![4, 8, 10];
        // Desired 1 from t = 45, but the recommendation of 10 stored at t = 30 counts through t = 330
        // (a recommendation at exactly now − 300 s is still in the window on the legacy path).
        want.extend([10; 20]);
        want.push(1);
        assert_eq!(got, want);
    }

    #[test]
    fn behavior_spike_then_drop_stabilizes_then_drops_at_once() {
        let mut hpa = Hpa::new(
            queue_hpa(Some(Behavior::default())),
            Bounds { min: 1, max: 20 },
        );
        let mut queue = vec![100.0; 3];
        queue.extend([10.0; 20]);
        let got = run_seq(&mut hpa, 2, 15.0, &queue);
        // Up: max(2 + 4, 2·2) = 6, then max(6 + 4, 2·6) = 12 limits desired 10 → 10; at t = 30 r = 1.0.
        let mut want = vec![6, 10, 10];
        // Down window 300 s (the flag); recommendations strictly younger than now − 300 s count, so the
        // 10 stored at t = 30 stops counting at t = 330, 15 s earlier than on the legacy path; then
        // Percent 100 / 15 s lets it drop to the desired 1 in one step.
        want.extend([10; 19]);
        want.push(1);
        assert_eq!(got, want);
    }

    #[test]
    fn behavior_scale_up_rate_is_per_15s_whatever_the_sync_period() {
        let cfg = HpaConfig {
            sync_period_s: 5.0,
            ..queue_hpa(Some(Behavior::default()))
        };
        let mut hpa = Hpa::new(cfg, Bounds { min: 1, max: 50 });
        // 1000 queued: desired 100 throughout.
        let got = run_seq(&mut hpa, 1, 5.0, &[1000.0; 13]);
        // max(+4, +100 %) from the count at the start of each 15-s period; an event at exactly now − 15 s
        // is outside the period.
        assert_eq!(got, vec![5, 5, 5, 10, 10, 10, 20, 20, 20, 40, 40, 40, 50]);
        // The legacy path recomputes max(2·cur, 4) at every 15-s sync.
        let mut legacy = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 50 });
        assert_eq!(
            run_seq(&mut legacy, 1, 15.0, &[1000.0; 5]),
            vec![4, 8, 16, 32, 50]
        );
    }

    #[test]
    fn scale_events_within_the_period_set_the_base() {
        // Up: Pods 4 per 60 s; down: Pods 2 per 60 s; no stabilization either way.
        let rules = |value| ScalingRules {
            stabilization_window_s: Some(0.0),
            policies: Some(vec![ScalingPolicy {
                kind: PolicyKind::Pods,
                value,
                period_s: 60.0,
            }]),
            select_policy: None,
            tolerance: None,
        };
        let b = Behavior {
            scale_up: rules(4),
            scale_down: rules(2),
        };
        let mut hpa = Hpa::new(queue_hpa(Some(b)), Bounds { min: 1, max: 20 });
        let got = run_seq(&mut hpa, 2, 15.0, &[100.0, 0.0, 100.0, 100.0, 100.0]);
        // t=0: desired 10, base 2 → 6 (+4).
        // t=15: desired 1; base = 6 − 4 = 2 → 2 − 2 = 0, floored at min → 1 (−5). Without the +4 in the
        //       period the base would be 6 and the limit 4.
        // t=30: desired 10; base = 1 − 4 + 5 = 2 → 6 (+5).
        // t=45: base = 6 − 9 + 5 = 2 → still 6.
        // t=60: the +4 of t=0 is at exactly now − 60 s, outside the period: base = 6 − 5 + 5 = 6 → 10.
        assert_eq!(got, vec![6, 1, 6, 6, 10]);
        assert_eq!(hpa.scale_up_events.len(), 3);
        assert_eq!(hpa.scale_down_events.len(), 1);
        // Legacy keeps no scale events.
        let mut legacy = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 20 });
        run_seq(&mut legacy, 2, 15.0, &[100.0, 0.0]);
        assert!(legacy.scale_up_events.is_empty() && legacy.scale_down_events.is_empty());
    }

    #[test]
    fn sync_period_holds_the_last_decision() {
        let mut hpa = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 20 });
        let d = hpa.decide(&at(0.0, 1, 0, 100.0), SimTime(T0));
        assert_eq!((d.replicas, d.reason), (4, Reason::ScaleUp));
        for t in [5.0, 14.9] {
            let d = hpa.decide(&at(t, 4, 0, 1000.0), SimTime(T0 + t));
            assert_eq!((d.replicas, d.reason), (4, Reason::Hold), "t = {t}");
        }
        // 15 s after the last sync: 1000 queued on 4 pods → desired 100, cap 8.
        let d = hpa.decide(&at(15.0, 4, 0, 1000.0), SimTime(T0 + 15.0));
        assert_eq!((d.replicas, d.reason), (8, Reason::ScaleUp));
        // reset forgets the last decision and sync: the next call syncs on the snapshot's count.
        hpa.reset();
        let d = hpa.decide(&at(16.0, 3, 0, 30.0), SimTime(T0 + 16.0));
        assert_eq!((d.replicas, d.reason), (3, Reason::Hold));
        let d = hpa.decide(&at(20.0, 3, 0, 90.0), SimTime(T0 + 20.0));
        assert_eq!((d.replicas, d.reason), (3, Reason::Hold));
        let d = hpa.decide(&at(31.0, 3, 0, 90.0), SimTime(T0 + 31.0));
        assert_eq!((d.replicas, d.reason), (6, Reason::ScaleUp));
    }

    #[test]
    fn decide_starts_a_target_at_zero_at_min() {
        // reconcile is ScalingDisabled at 0 (reconcile_table); the law itself stays within bounds.
        let mut hpa = Hpa::new(queue_hpa(None), Bounds { min: 2, max: 20 });
        let d = hpa.decide(&at(0.0, 0, 0, 100.0), SimTime(T0));
        assert_eq!((d.replicas, d.reason), (2, Reason::ScaleUp));
        // Then it is an ordinary HPA: 100 queued on 2 pods → desired 10, cap max(2·2, 4) = 4.
        let d = hpa.decide(&at(15.0, 2, 0, 100.0), SimTime(T0 + 15.0));
        assert_eq!((d.replicas, d.reason), (4, Reason::ScaleUp));
    }

    #[test]
    fn min_zero_needs_external_metrics() {
        // A Pods metric has no per-pod average at zero pods: such an HPA is held at one replica.
        let mut pods = Hpa::new(queue_hpa(None), Bounds { min: 0, max: 20 });
        let d = pods.decide(&at(0.0, 0, 0, 100.0), SimTime(T0));
        assert_eq!(d.replicas, 1);
        assert_eq!(run_seq(&mut pods, 1, 15.0, &[0.0; 40]).last(), Some(&1));
        // External metrics keep minReplicas 0 (HPAScaleToZero) and scale back from zero.
        let ext = HpaConfig {
            metrics: vec![metric(MetricKind::ExternalValue, Signal::QueueDepth, 10.0)],
            ..HpaConfig::default()
        };
        let mut ext = Hpa::new(ext, Bounds { min: 0, max: 20 });
        assert_eq!(ext.reconcile(0, &at(0.0, 0, 0, 0.0), SimTime(T0)), 0);
        assert_eq!(
            ext.reconcile(0, &at(15.0, 0, 0, 25.0), SimTime(T0 + 15.0)),
            3
        );
        // One External metric is enough (Kubernetes' validation asks for at least one): beside a Pods
        // metric, which fails at zero pods, the External one scales back from zero on its own.
        let mixed = HpaConfig {
            metrics: vec![
                metric(MetricKind::PodsAverageValue, Signal::QueueDepth, 10.0),
                metric(MetricKind::ExternalValue, Signal::Running, 10.0),
            ],
            ..HpaConfig::default()
        };
        let mut mixed = Hpa::new(mixed, Bounds { min: 0, max: 20 });
        let mut idle = at(0.0, 2, 0, 0.0);
        idle.running = 0.0;
        // At zero load both propose 0; the initial recommendation (2) holds it for the 300-s window.
        assert_eq!(mixed.reconcile(2, &idle, SimTime(T0)), 2);
        let later = at(301.0, 2, 0, 0.0);
        assert_eq!(mixed.reconcile(2, &later, SimTime(T0 + 301.0)), 0);
        let mut load = at(316.0, 0, 0, 0.0);
        load.running = 25.0;
        assert_eq!(mixed.reconcile(0, &load, SimTime(T0 + 316.0)), 3);
    }

    #[test]
    fn the_initial_recommendation_holds_a_scale_down_for_300s() {
        // recordInitialRecommendation seeds the history with cur = 6: no scale-down before t = 315.
        let mut hpa = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 20 });
        let got = run_seq(&mut hpa, 6, 15.0, &[0.0; 22]);
        let mut want = vec![6; 21];
        want.push(1);
        assert_eq!(got, want);
    }

    #[test]
    fn failed_metrics_hold_forever() {
        let mut hpa = Hpa::new(queue_hpa(None), Bounds { min: 1, max: 20 });
        assert_eq!(run_seq(&mut hpa, 5, 15.0, &[f64::NAN; 40]), vec![5; 40]);
        assert_eq!(
            hpa.recommendations.len(),
            1,
            "only the seed: failures store nothing"
        );
    }

    #[test]
    fn never_panics_and_stays_in_bounds() {
        let bounds = Bounds { min: 2, max: 9 };
        let kinds = [
            MetricKind::Utilization,
            MetricKind::PodsAverageValue,
            MetricKind::ExternalValue,
            MetricKind::ExternalAverageValue,
        ];
        let values = [
            0.0,
            1e-9,
            0.5,
            7.0,
            1e300,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            -3.0,
        ];
        let counts = [
            (0, 1),
            (0, 7),
            (1, 0),
            (3, 2),
            (50, 0),
            (u32::MAX, u32::MAX),
        ];
        for kind in kinds {
            for behavior in [None, Some(Behavior::default())] {
                let cfg = HpaConfig {
                    metrics: vec![
                        metric(kind, Signal::GpuUtilization, 1e-9),
                        metric(kind, Signal::QueueDepth, 3.0),
                    ],
                    behavior,
                    ..HpaConfig::default()
                };
                let mut hpa = Hpa::new(cfg, bounds);
                let mut t = 0.0;
                for &(ready, starting) in &counts {
                    for &v in &values {
                        let mut s = at(t, ready, starting, v);
                        s.gpu_utilization = v;
                        let d = hpa.decide(&s, SimTime(T0 + t));
                        assert!(
                            (2..=9).contains(&d.replicas),
                            "{kind:?} {v} {ready}/{starting}: {d:?}"
                        );
                        t += 15.0;
                    }
                }
                // A non-finite clock holds.
                let last = hpa.last.unwrap_or_default();
                let d = hpa.decide(&at(t, 3, 0, 100.0), SimTime(f64::NAN));
                assert_eq!(d.replicas, last);
            }
        }
    }
}
