//! KEDA ScaledObject with one Prometheus trigger, and the HPA it generates (`docs/peers.md` §2).
//!
//! Two controllers write the target's `spec.replicas`, and this law runs both (§2.1, §10):
//!
//! * **KEDA's activation loop**, every `polling_interval_s` (§2.4): the trigger is active iff its value
//!   is strictly above `activation_threshold`. Active at 0 (or at idle, below min) → scale to
//!   `max(min, 1)`; active → `lastActiveTime = now`. Inactive with replicas above idle (idle set) or
//!   above 0 (`min = 0`) → scale to idle (or min) once `lastActiveTime + cooldownPeriod < now`, or, never
//!   active, once `creation + initialCooldownPeriod < now`. Inactive below min (idle unset) → min.
//!   `bounds.min` plays `minReplicaCount`, so with `min ≥ 1` this loop never goes to 0.
//! * **The generated HPA** ([`KedaConfig::generated_hpa`]), every `hpa_sync_period_s`: the
//!   [`crate::hpa`] law with `minReplicas = max(1, min)`, `maxReplicas = max`, one External metric with
//!   target type AverageValue (or Value, from `metric_type`) at `threshold`, and the copied behavior
//!   (`None` → the legacy path). It reads the trigger live (no `useCachedMetrics`). With `cur = 0` and
//!   `minReplicas ≥ 1` it does nothing (`ScalingDisabled`); KEDA's loop owns 0 ↔ 1.
//!
//! When both are due in the same call, KEDA's loop runs first and the HPA reconciles the count KEDA
//! left. Calls between the two periods hold the last decision (`Hold`).
//!
//! Mapping choices:
//! * "Current" (`spec.replicas`) is the law's last decision, else `snapshot.current_replicas()`; the
//!   ScaledObject's creation time is the first call's `now`.
//! * `ignoreNullValues` is true (the default): a failed metric ([`Signal::total`] is `None`) reads as 0
//!   for both the activation test and the HPA, so it never counts as a scaler error; fallback is not
//!   modelled (nothing triggers it).
//! * The decision is capped at `max(bounds.max, bounds.min)`; a count below `bounds.min` comes only
//!   from `idle_replica_count`, as in KEDA.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::hpa::{Behavior, Hpa, HpaConfig, HpaMetric, MetricKind};
use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive};

/// The trigger's `metricType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KedaMetricType {
    /// The default: the HPA divides the value by the replica count (§1.2 D).
    AverageValue,
    /// The HPA compares the value itself (§1.2 C).
    Value,
}

/// A Prometheus trigger (`triggers[].metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusTrigger {
    /// The quantity the trigger's `query` returns (the fleet total, as `sum(...)`).
    pub signal: Signal,
    /// `threshold`: the HPA target.
    pub threshold: f64,
    /// `activationThreshold` (0): active iff value > this.
    pub activation_threshold: f64,
    /// `metricType` (AverageValue).
    pub metric_type: KedaMetricType,
}

/// A ScaledObject's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KedaConfig {
    /// The one Prometheus trigger. Default: `sum(vllm:num_requests_waiting)` at a threshold of 5, the
    /// shape of the vLLM production-stack KEDA tutorial.
    pub trigger: PrometheusTrigger,
    /// `pollingInterval` (30 s): the activation loop's period.
    pub polling_interval_s: f64,
    /// `cooldownPeriod` (300 s) before scaling to 0 (or idle).
    pub cooldown_period_s: f64,
    /// `initialCooldownPeriod` (0 s).
    pub initial_cooldown_period_s: f64,
    /// `idleReplicaCount` (unset).
    pub idle_replica_count: Option<u32>,
    /// `advanced.horizontalPodAutoscalerConfig.behavior` (unset: the HPA's legacy path).
    pub behavior: Option<Behavior>,
    /// The generated HPA's sync period (15 s).
    pub hpa_sync_period_s: f64,
}

impl Default for KedaConfig {
    fn default() -> Self {
        KedaConfig {
            trigger: PrometheusTrigger {
                signal: Signal::QueueDepth,
                threshold: 5.0,
                activation_threshold: 0.0,
                metric_type: KedaMetricType::AverageValue,
            },
            polling_interval_s: 30.0,
            cooldown_period_s: 300.0,
            initial_cooldown_period_s: 0.0,
            idle_replica_count: None,
            behavior: None,
            hpa_sync_period_s: 15.0,
        }
    }
}

impl KedaConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("keda.trigger.threshold", self.trigger.threshold)?;
        non_negative(
            "keda.trigger.activation_threshold",
            self.trigger.activation_threshold,
        )?;
        positive("keda.polling_interval_s", self.polling_interval_s)?;
        non_negative("keda.cooldown_period_s", self.cooldown_period_s)?;
        non_negative(
            "keda.initial_cooldown_period_s",
            self.initial_cooldown_period_s,
        )?;
        positive("keda.hpa_sync_period_s", self.hpa_sync_period_s)?;
        Ok(())
    }
}

impl KedaConfig {
    /// The HPA KEDA generates for this ScaledObject (`newHPAForScaledObject`) and its bounds:
    /// `minReplicas = max(1, min)`, `maxReplicas = max`, one External metric on the trigger with target
    /// type AverageValue (or Value) at `threshold`, the behavior copied verbatim, synced every
    /// `hpa_sync_period_s`. The flag-level settings (tolerance 0.1, downscale stabilization 300 s) are the
    /// kube-controller-manager defaults.
    pub fn generated_hpa(&self, bounds: Bounds) -> (HpaConfig, Bounds) {
        let kind = match self.trigger.metric_type {
            KedaMetricType::AverageValue => MetricKind::ExternalAverageValue,
            KedaMetricType::Value => MetricKind::ExternalValue,
        };
        let cfg = HpaConfig {
            metrics: vec![HpaMetric {
                kind,
                signal: self.trigger.signal,
                target: self.trigger.threshold,
            }],
            behavior: self.behavior.clone(),
            sync_period_s: self.hpa_sync_period_s,
            ..HpaConfig::default()
        };
        let hpa_bounds = Bounds {
            min: bounds.min.max(1),
            max: bounds.max,
        };
        (cfg, hpa_bounds)
    }
}

/// Whether a loop with period `period_s` that last ran at `last` runs at `t` (always on the first call,
/// and when time went backwards).
fn due(last: Option<f64>, t: f64, period_s: f64) -> bool {
    match last {
        None => true,
        Some(l) => !(0.0..period_s - crate::PERIOD_SLACK_S).contains(&(t - l)),
    }
}

/// KEDA's activation loop plus the HPA it generates, for one target.
#[derive(Debug, Clone)]
pub struct Keda {
    /// Boxed: it keeps the [`crate::Baseline`] enum small.
    cfg: Box<KedaConfig>,
    bounds: Bounds,
    /// The generated HPA, with its own history.
    hpa: Hpa,
    /// The last decision (`spec.replicas` as the two controllers left it).
    last: Option<u32>,
    /// The ScaledObject's creation time (the first call), Unix seconds.
    created: Option<f64>,
    /// `status.lastActiveTime`, Unix seconds.
    last_active: Option<f64>,
    /// When the activation loop and the HPA last ran, Unix seconds.
    last_poll: Option<f64>,
    last_hpa_sync: Option<f64>,
}

impl Keda {
    /// A new ScaledObject with empty history. `bounds.min` is `minReplicaCount`, `bounds.max`
    /// `maxReplicaCount`.
    pub fn new(cfg: KedaConfig, bounds: Bounds) -> Self {
        let (hpa_cfg, hpa_bounds) = cfg.generated_hpa(bounds);
        Keda {
            hpa: Hpa::new(hpa_cfg, hpa_bounds).null_values_as_zero(),
            cfg: Box::new(cfg),
            bounds,
            last: None,
            created: None,
            last_active: None,
            last_poll: None,
            last_hpa_sync: None,
        }
    }

    /// One pass of the activation loop (§2.4) at `t` with `spec.replicas = cur` and the trigger's value.
    fn activation_step(&mut self, cur: u32, value: f64, t: f64, created: f64) -> u32 {
        let min = self.bounds.min;
        let idle = self.cfg.idle_replica_count;
        if value > self.cfg.trigger.activation_threshold {
            self.last_active = Some(t);
            // scaleFromZeroOrIdle; otherwise the HPA handles 1..N.
            return if cur == 0 || (idle.is_some() && cur < min) {
                min.max(1)
            } else {
                cur
            };
        }
        if idle.is_some_and(|i| cur > i) || (cur > 0 && min == 0) {
            // scaleToZeroOrIdle, after the cooldown.
            let cooled = match self.last_active {
                None => created + self.cfg.initial_cooldown_period_s < t,
                Some(a) => a + self.cfg.cooldown_period_s < t,
            };
            if cooled {
                return idle.unwrap_or(min);
            }
        } else if idle.is_none() && cur < min {
            return min;
        }
        cur
    }
}

impl Policy for Keda {
    fn name(&self) -> String {
        "keda".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let t = now.unix_s();
        let cap = self.bounds.max.max(self.bounds.min);
        if !t.is_finite() {
            // No usable clock: hold.
            let n = self.last.unwrap_or(cur.min(cap));
            return decision(cur, n);
        }
        let created = *self.created.get_or_insert(t);
        let mut n = cur;
        if due(self.last_poll, t, self.cfg.polling_interval_s) {
            self.last_poll = Some(t);
            // ignoreNullValues: an empty, NaN or Inf result is 0.
            let value = self.cfg.trigger.signal.total(snapshot).unwrap_or(0.0);
            n = self.activation_step(n, value, t, created);
        }
        if due(self.last_hpa_sync, t, self.cfg.hpa_sync_period_s) {
            self.last_hpa_sync = Some(t);
            n = self.hpa.reconcile(n, snapshot, now);
        }
        let n = n.min(cap);
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        self.hpa.reset();
        self.last = None;
        self.created = None;
        self.last_active = None;
        self.last_poll = None;
        self.last_hpa_sync = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::snap;
    use rlscale_core::Reason;

    const T0: f64 = 1_700_000_000.0;

    /// Drive `p` every 15 s from `T0`; pods start instantly (ready = the last decision, the first
    /// snapshot has `first_ready`), the trigger's value (the queue) at the k-th call is `queue[k]`.
    fn run_seq(p: &mut impl Policy, first_ready: u32, queue: &[f64]) -> Vec<u32> {
        let mut ready = first_ready;
        let mut out = Vec::new();
        for (k, &q) in queue.iter().enumerate() {
            let t = T0 + 15.0 * k as f64;
            let mut s = snap(t, ready, 0);
            s.queue_depth = q;
            ready = p.decide(&s, SimTime(t)).replicas;
            out.push(ready);
        }
        out
    }

    #[test]
    fn generated_hpa() {
        let cfg = KedaConfig::default();
        let (hpa, b) = cfg.generated_hpa(Bounds { min: 0, max: 7 });
        assert_eq!(b, Bounds { min: 1, max: 7 });
        assert_eq!(
            hpa.metrics,
            vec![HpaMetric {
                kind: MetricKind::ExternalAverageValue,
                signal: Signal::QueueDepth,
                target: 5.0,
            }]
        );
        assert_eq!(
            (hpa.behavior, hpa.sync_period_s, hpa.tolerance),
            (None, 15.0, 0.1)
        );
        let value = KedaConfig {
            trigger: PrometheusTrigger {
                metric_type: KedaMetricType::Value,
                ..cfg.trigger
            },
            behavior: Some(Behavior::default()),
            ..cfg
        };
        let (hpa, b) = value.generated_hpa(Bounds { min: 3, max: 7 });
        assert_eq!(b, Bounds { min: 3, max: 7 });
        assert_eq!(hpa.metrics[0].kind, MetricKind::ExternalValue);
        assert_eq!(hpa.behavior, Some(Behavior::default()));
    }

    #[test]
    fn activates_on_the_polling_interval_and_scales_to_zero_after_the_cooldown() {
        let mut keda = Keda::new(KedaConfig::default(), Bounds { min: 0, max: 10 });
        // t=0: idle at 0. t=15: 3 queued, but the next poll is at t=30. Queue empty from t=45 to t=405.
        let mut queue = vec![0.0, 3.0, 3.0];
        queue.extend([0.0; 25]);
        let got = run_seq(&mut keda, 0, &queue);
        // t=30: active (3 > 0) → 1; the HPA then sees statusReplicas 0 → ceil(3/5) = 1.
        // Inactive from the t=60 poll; lastActiveTime = 30, so the first poll with 30 + 300 < now is t=360.
        // Between, the HPA holds 1 (its minReplicas).
        let mut want = vec![0, 0, 1];
        want.extend([1; 21]); // t = 45 … 345
        want.extend([0; 4]); // t = 360 … 405: the HPA is ScalingDisabled at 0
        assert_eq!(got, want);
    }

    #[test]
    fn with_min_one_keda_is_the_hpa_on_average_value() {
        let bounds = Bounds { min: 1, max: 20 };
        let cfg = KedaConfig::default();
        let mut keda = Keda::new(cfg.clone(), bounds);
        let mut queue = vec![12.0, 15.0, 16.0, 17.0, 40.0];
        queue.extend([0.0; 60]); // t = 75 … 960
        let got = run_seq(&mut keda, 2, &queue);
        // ceil(Σ/5) outside [0.9, 1.1] of Σ/(5·statusReplicas):
        // 12/(5·2) = 1.2 → 3; 15/15 = 1.0 → 3; 16/15 = 1.07 → 3; 17/15 = 1.13 → 4; 40/20 = 2 → 8.
        let mut want = vec![3, 3, 3, 4, 8];
        // Then 0 queued: desired 0, the 8 of t=60 holds through t=360, then minReplicas 1 — never 0,
        // since minReplicaCount 1 keeps KEDA's loop out of it.
        want.extend([8; 20]); // t = 75 … 360
        want.extend([1; 40]); // t = 375 … 960
        assert_eq!(got, want);
        // The same decisions as the generated HPA on its own.
        let (hcfg, hb) = cfg.generated_hpa(bounds);
        let mut hpa = Hpa::new(hcfg, hb);
        assert_eq!(run_seq(&mut hpa, 2, &queue), want);
    }

    #[test]
    fn metric_type_value_compares_the_total() {
        let bounds = Bounds { min: 1, max: 20 };
        let mut s = snap(T0, 4, 0);
        s.queue_depth = 30.0;
        // AverageValue: 30/(5·4) = 1.5 → ceil(30/5) = 6.
        let mut avg = Keda::new(KedaConfig::default(), bounds);
        assert_eq!(avg.decide(&s, SimTime(T0)).replicas, 6);
        // Value: r = 30/5 = 6 → ceil(6 · 4 ready) = 24, capped at max(2·4, 4) = 8 (kedacore/keda #5781).
        let mut cfg = KedaConfig::default();
        cfg.trigger.metric_type = KedaMetricType::Value;
        let mut val = Keda::new(cfg, bounds);
        assert_eq!(val.decide(&s, SimTime(T0)).replicas, 8);
    }

    #[test]
    fn null_values_count_as_zero() {
        let bounds = Bounds { min: 1, max: 10 };
        let queue = [f64::NAN; 22];
        // KEDA: NaN → 0 for the HPA too: desired 0, held at the initial 2 for 300 s, then min 1.
        let mut keda = Keda::new(KedaConfig::default(), bounds);
        let mut want = vec![2; 21]; // t = 0 … 300
        want.push(1); // t = 315
        assert_eq!(run_seq(&mut keda, 2, &queue), want);
        // A plain HPA on the same metric sees a failed metric and never scales.
        let (hcfg, hb) = KedaConfig::default().generated_hpa(bounds);
        let mut hpa = Hpa::new(hcfg, hb);
        assert_eq!(run_seq(&mut hpa, 2, &queue), vec![2; 22]);
        // With min 0, a failed metric is an inactive trigger: to 0 at the first poll after creation.
        let mut keda = Keda::new(KedaConfig::default(), Bounds { min: 0, max: 10 });
        assert_eq!(run_seq(&mut keda, 2, &queue[..4]), vec![2, 2, 0, 0]);
    }

    #[test]
    fn initial_cooldown_and_strict_activation_threshold() {
        let mut cfg = KedaConfig {
            initial_cooldown_period_s: 120.0,
            ..KedaConfig::default()
        };
        cfg.trigger.activation_threshold = 2.0;
        let mut keda = Keda::new(cfg, Bounds { min: 0, max: 10 });
        // 2 queued is not above the activation threshold 2: never active.
        let mut queue = vec![2.0; 22]; // t = 0 … 315
        queue.extend([2.001, 2.001]); // t = 330, 345
        let got = run_seq(&mut keda, 2, &queue);
        // Never active: scaled to 0 at the first poll with creation + 120 < now, t = 150 (not t = 120).
        // The HPA holds 2 until then (its initial recommendation). At t = 330 (a poll) 2.001 activates.
        let mut want = vec![2; 10]; // t = 0 … 135
        want.extend([0; 12]); // t = 150 … 315
        want.extend([1, 1]);
        assert_eq!(got, want);
    }

    #[test]
    fn idle_replica_count() {
        let cfg = KedaConfig {
            idle_replica_count: Some(0),
            ..KedaConfig::default()
        };
        let mut keda = Keda::new(cfg, Bounds { min: 2, max: 10 });
        let got = run_seq(&mut keda, 2, &[0.0, 0.0, 0.0, 10.0, 10.0]);
        // Inactive and never active: to idle at the t=30 poll. 10 queued at t=45; the t=60 poll
        // activates it to max(min, 1) = 2.
        assert_eq!(got, vec![2, 2, 0, 0, 2]);
    }

    #[test]
    fn holds_between_periods_and_reset_forgets() {
        let mut keda = Keda::new(KedaConfig::default(), Bounds { min: 0, max: 10 });
        let mut s = snap(T0, 0, 0);
        s.queue_depth = 12.0;
        // First call: poll (active → 1) and HPA (statusReplicas 0 → ceil(12/5) = 3).
        let d = keda.decide(&s, SimTime(T0));
        assert_eq!((d.replicas, d.reason), (3, Reason::ScaleUp));
        s.queue_depth = 100.0;
        let d = keda.decide(&s, SimTime(T0 + 10.0));
        assert_eq!((d.replicas, d.reason), (3, Reason::Hold));
        keda.reset();
        s.queue_depth = 0.0;
        let d = keda.decide(&s, SimTime(T0 + 11.0));
        assert_eq!((d.replicas, d.reason), (0, Reason::Hold));
        // A non-finite clock holds.
        let d = keda.decide(&s, SimTime(f64::INFINITY));
        assert_eq!((d.replicas, d.reason), (0, Reason::Hold));
    }

    #[test]
    fn never_panics_and_stays_in_bounds() {
        let values = [0.0, 0.3, 7.0, 1e300, f64::INFINITY, f64::NAN, -3.0];
        let counts = [(0, 0), (0, 4), (1, 0), (3, 2), (u32::MAX, u32::MAX)];
        for (min, max) in [(0, 6), (2, 6)] {
            for metric_type in [KedaMetricType::AverageValue, KedaMetricType::Value] {
                let mut cfg = KedaConfig::default();
                cfg.trigger.metric_type = metric_type;
                let mut keda = Keda::new(cfg, Bounds { min, max });
                let mut t = T0;
                for &(ready, starting) in &counts {
                    for &v in &values {
                        let mut s = snap(t, ready, starting);
                        s.queue_depth = v;
                        let d = keda.decide(&s, SimTime(t));
                        assert!(
                            (min..=max).contains(&d.replicas),
                            "{v} {ready}/{starting}: {d:?}"
                        );
                        t += 15.0;
                    }
                }
            }
        }
    }
}
