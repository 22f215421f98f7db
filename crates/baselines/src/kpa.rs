//! Knative Serving's KPA (`docs/peers.md` §3): the decider step of §3.3 and the scaler of §3.4
//! (bounds, scale to zero), with the defaults of §3.1.
//!
//! One call of [`Kpa::decide`] is one decider tick followed by one scaler pass:
//! * the signal ([`KpaConfig::signal`], in-flight requests by default) is read as a revision **total**
//!   ([`Signal::total`]), as the queue-proxies report it (§10);
//! * `TargetValue = max(0.01, total · target_utilization)` with `total = target`, or
//!   `min(target, container_concurrency)` when `container_concurrency > 0` ([`KpaConfig::target_value`]);
//! * `dspc = ceil(stable / TargetValue)`, `dppc = ceil(panic / TargetValue)`, each clamped to
//!   `[floor(ready / max_scale_down_rate), ceil(max_scale_up_rate · ready)]` with `ready = max(1, ready pods)`;
//!   `activation_scale` raises a non-zero count to at least that scale;
//! * panic mode starts (or is extended) when `dppc / ready >= panic_threshold_percentage / 100`, and ends
//!   once no tick has been over the threshold for a whole stable window; in panic the count is the
//!   maximum seen since panic began (never down in panic);
//! * the decider starts in panic, holding the ready count, when it first sees more than one ready pod;
//! * with `scale_down_delay_s > 0` the count is the maximum over the last `scale_down_delay_s`;
//! * the result is clamped to the [`Bounds`]. Zero is applied only when `bounds.min == 0` and
//!   `enable_scale_to_zero`: the revision must first have been Active for a stable window (until then the
//!   scaler holds 1), is then marked Inactive (count unchanged), and goes to 0 once it has been Inactive
//!   for `scale_to_zero_grace_period_s`. With scale to zero disabled the result is at least 1.
//! * With no data (no valid sample within the stable window: Knative's `ErrNoData`), the count is held.
//!
//! # Departures from Knative
//! * **Sampling.** Knative scrapes every 1 s into 1-s buckets and ticks every 2 s; the simulator calls
//!   `decide` every 15 s with one snapshot. Each call records one sample (the signal at `now`); the stable
//!   (60 s) and panic (6 s) averages are the means of the samples whose time lies in `(now − window, now]`.
//!   A panic window that holds no sample uses the latest sample: with 15-s calls, `observedPanic` is the
//!   current value. A failed metric ([`Signal::total`] is `None`) records no sample (Knative would record
//!   nothing either, but its linear average counts the gap as 0). A call sooner than `tick_s` after the
//!   last acting call returns the last decision unchanged and records nothing.
//! * **Scale to zero.** The activator probe is taken to succeed and the SKS "in proxy mode for the grace
//!   period" fast path is not modelled (there is no target-burst-capacity here), so the full grace period
//!   is always waited. A revision stuck activating with nothing to serve goes to 0 after
//!   `progressDeadline` 600 s + 30 s, as §3.4 states.
//! * `initial-scale` is not modelled (the target starts at the snapshot's replica count), the revision is
//!   always reachable, and the excess burst capacity (which routes traffic, not replicas) is not computed.
//! * With no data the count is held even while activating.

use std::collections::VecDeque;

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive, window_mean};

/// `config-autoscaler` keys and revision annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpaConfig {
    /// The revision-total quantity (concurrency: in-flight requests, as the queue-proxy counts them).
    pub signal: Signal,
    /// `containerConcurrency` (0 = unlimited).
    pub container_concurrency: u32,
    /// `target` / `container-concurrency-target-default` (100).
    pub target: f64,
    /// `container-concurrency-target-percentage` (0.7).
    pub target_utilization: f64,
    /// `stable-window` (60 s).
    pub stable_window_s: f64,
    /// `panic-window-percentage` (10).
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage` (200).
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate` (1000).
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (2).
    pub max_scale_down_rate: f64,
    /// `enable-scale-to-zero` (true; only matters when min is 0).
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period` (30 s).
    pub scale_to_zero_grace_period_s: f64,
    /// `scale-down-delay` (0 s).
    pub scale_down_delay_s: f64,
    /// `activation-scale` (1).
    pub activation_scale: u32,
    /// The decider's tick (2 s).
    pub tick_s: f64,
}

impl Default for KpaConfig {
    fn default() -> Self {
        KpaConfig {
            signal: Signal::InFlight,
            container_concurrency: 0,
            target: 100.0,
            target_utilization: 0.7,
            stable_window_s: 60.0,
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            enable_scale_to_zero: true,
            scale_to_zero_grace_period_s: 30.0,
            scale_down_delay_s: 0.0,
            activation_scale: 1,
            tick_s: 2.0,
        }
    }
}

impl KpaConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("kpa.target", self.target)?;
        positive("kpa.target_utilization", self.target_utilization)?;
        if !(6.0..=3600.0).contains(&self.stable_window_s) {
            return Err(ConfigError::new(
                "kpa.stable_window_s",
                self.stable_window_s,
                "must be within 6 s .. 1 h",
            ));
        }
        if !(1.0..=100.0).contains(&self.panic_window_percentage) {
            return Err(ConfigError::new(
                "kpa.panic_window_percentage",
                self.panic_window_percentage,
                "must be within 1 .. 100",
            ));
        }
        positive(
            "kpa.panic_threshold_percentage",
            self.panic_threshold_percentage,
        )?;
        positive("kpa.max_scale_up_rate", self.max_scale_up_rate)?;
        positive("kpa.max_scale_down_rate", self.max_scale_down_rate)?;
        non_negative(
            "kpa.scale_to_zero_grace_period_s",
            self.scale_to_zero_grace_period_s,
        )?;
        non_negative("kpa.scale_down_delay_s", self.scale_down_delay_s)?;
        positive("kpa.tick_s", self.tick_s)?;
        Ok(())
    }
}

impl KpaConfig {
    /// The per-pod target, `TargetValue = max(0.01, total · target_utilization)`, where `total` is
    /// `target`, or `min(target, container_concurrency)` when `container_concurrency > 0` (§3.1).
    pub fn target_value(&self) -> f64 {
        let total = if self.container_concurrency > 0 {
            self.target.min(f64::from(self.container_concurrency))
        } else {
            self.target
        };
        (total * self.target_utilization).max(0.01)
    }

    /// The panic window, `round(stable_window_s · panic_window_percentage / 100)` whole seconds, at least 1 s.
    pub fn panic_window_s(&self) -> f64 {
        (self.stable_window_s * self.panic_window_percentage / 100.0)
            .round()
            .max(1.0)
    }

    /// The panic threshold as a ratio of desired to ready pods (2.0 by default).
    pub fn panic_threshold(&self) -> f64 {
        self.panic_threshold_percentage / 100.0
    }
}

/// `progressDeadline` (600 s) + 30 s: how long a revision may stay Activating before the scaler gives up
/// and applies 0 (§3.4).
const ACTIVATION_TIMEOUT_S: f64 = 630.0;

/// The PodAutoscaler's `Active` condition, with the time of its last transition.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PaState {
    /// Active=True: ready pods serve the revision.
    Active { since: f64 },
    /// Active=False: marked idle; the activator is in the path.
    Inactive { since: f64 },
    /// Active=Unknown: pods wanted, none ready yet.
    Activating { since: f64 },
}

/// The KPA decider and scaler for one revision.
#[derive(Debug, Clone)]
pub struct Kpa {
    cfg: KpaConfig,
    bounds: Bounds,
    /// The last decision (`scale.spec.replicas` as this law wrote it).
    last: Option<u32>,
    /// Time of the last call that acted (not skipped for coming sooner than `tick_s`).
    last_tick: Option<f64>,
    /// `(time, revision total)` samples within the stable window.
    samples: VecDeque<(f64, f64)>,
    /// When panic mode was entered or last extended.
    panic_time: Option<f64>,
    /// The highest count wanted since panic began.
    max_panic_pods: u32,
    /// `(time, wanted count)` within the scale-down delay window.
    delay: VecDeque<(f64, u32)>,
    /// The PA's activity, `None` until the first call.
    pa: Option<PaState>,
}

impl Kpa {
    /// A new decider with no data.
    pub fn new(cfg: KpaConfig, bounds: Bounds) -> Self {
        Kpa {
            cfg,
            bounds,
            last: None,
            last_tick: None,
            samples: VecDeque::new(),
            panic_time: None,
            max_panic_pods: 0,
            delay: VecDeque::new(),
            pa: None,
        }
    }

    /// The decider (`autoscaler.Scale`, §3.3): the wanted count, or `None` with no data.
    fn scale(&mut self, ready_count: u32, now: f64) -> Option<u32> {
        let stable_window = self.cfg.stable_window_s;
        let observed_stable = window_mean(&self.samples, now, stable_window)?;
        let latest = self.samples.back().map_or(observed_stable, |&(_, v)| v);
        let observed_panic =
            window_mean(&self.samples, now, self.cfg.panic_window_s()).unwrap_or(latest);

        let ready = f64::from(ready_count.max(1));
        let max_up = (self.cfg.max_scale_up_rate * ready).ceil();
        let max_down = (ready / self.cfg.max_scale_down_rate).floor();
        let target = self.cfg.target_value();
        let dspc = (observed_stable / target).ceil();
        let dppc = (observed_panic / target).ceil();
        let mut stable_pods = to_count(dspc.max(max_down).min(max_up));
        let mut panic_pods = to_count(dppc.max(max_down).min(max_up));
        let activation = self.cfg.activation_scale;
        if activation > 1 {
            if dspc > 0.0 {
                stable_pods = stable_pods.max(activation);
            }
            if dppc > 0.0 {
                panic_pods = panic_pods.max(activation);
            }
        }

        let over = dppc / ready >= self.cfg.panic_threshold();
        match self.panic_time {
            _ if over => self.panic_time = Some(now),
            Some(t) if t + stable_window < now => {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
            _ => {}
        }

        let mut want = stable_pods;
        if self.panic_time.is_some() {
            want = want.max(panic_pods);
            self.max_panic_pods = self.max_panic_pods.max(want);
            want = self.max_panic_pods;
        }

        let delay = self.cfg.scale_down_delay_s;
        if delay > 0.0 {
            self.delay.push_back((now, want));
            while self.delay.front().is_some_and(|&(t, _)| t <= now - delay) {
                self.delay.pop_front();
            }
            want = self.delay.iter().map(|&(_, w)| w).fold(want, u32::max);
        }
        Some(want)
    }

    /// The scaler (`kpa/scaler.go` `Scale`, `handleScaleToZero`, §3.4): the count to apply given the
    /// decider's `want`, holding `cur` when nothing is applied. Updates the PA's activity.
    fn apply(&mut self, want: Option<u32>, ready_count: u32, now: f64, cur: u32) -> u32 {
        let hold = self.bounds.clamp(cur);
        let Some(want) = want else {
            self.update_pa(None, ready_count, now);
            return hold;
        };
        let want = self.bounds.clamp(want);
        // (count applied, the scaler's reported want: None = unknown)
        let (out, reported) = if want != 0 {
            (want, Some(want))
        } else if !self.cfg.enable_scale_to_zero {
            (1, Some(1))
        } else {
            match self.pa.unwrap_or(PaState::Active { since: now }) {
                PaState::Activating { since } if now - since >= ACTIVATION_TIMEOUT_S => {
                    (0, Some(0))
                }
                PaState::Activating { .. } => (hold, None),
                // Active for a stable window: mark Inactive, do not apply 0 yet.
                PaState::Active { since } if now - since >= self.cfg.stable_window_s => {
                    (hold, Some(0))
                }
                PaState::Active { .. } => (1, Some(1)),
                PaState::Inactive { since }
                    if now - since >= self.cfg.scale_to_zero_grace_period_s =>
                {
                    (0, Some(0))
                }
                PaState::Inactive { .. } => (hold, Some(0)),
            }
        };
        self.update_pa(reported, ready_count, now);
        self.bounds.clamp(out)
    }

    /// `computeActiveCondition` (`kpa.go`), with one ready pod as the activity threshold.
    fn update_pa(&mut self, want: Option<u32>, ready_count: u32, now: f64) {
        let state = self.pa.unwrap_or(PaState::Inactive { since: now });
        let inactive = matches!(state, PaState::Inactive { .. });
        let wants_pods = want.is_some_and(|w| w > 0);
        self.pa = Some(match (want, state) {
            (Some(0), PaState::Inactive { .. }) => state,
            (Some(0), _) => PaState::Inactive { since: now },
            _ if !wants_pods && inactive => state,
            (_, PaState::Activating { .. }) if ready_count == 0 => state,
            _ if ready_count == 0 => PaState::Activating { since: now },
            (_, PaState::Active { .. }) => state,
            _ => PaState::Active { since: now },
        });
    }
}

/// A non-negative float count as `u32` (NaN → 0, saturating).
fn to_count(x: f64) -> u32 {
    // `as` saturates and maps NaN to 0.
    x as u32
}

impl Policy for Kpa {
    fn name(&self) -> String {
        "kpa".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let now = now.0;
        if !now.is_finite() {
            return decision(cur, self.bounds.clamp(cur));
        }
        if let Some(t) = self.last_tick
            && now - t < self.cfg.tick_s - crate::PERIOD_SLACK_S
        {
            return decision(cur, self.bounds.clamp(cur));
        }
        self.last_tick = Some(now);
        let ready_count = snapshot.ready_replicas;
        if self.pa.is_none() {
            // A new decider starts in panic when the revision already has more than one ready pod.
            if ready_count > 1 {
                self.panic_time = Some(now);
            }
            self.max_panic_pods = ready_count;
            self.pa = Some(if ready_count > 0 {
                PaState::Active { since: now }
            } else if snapshot.current_replicas() > 0 {
                PaState::Activating { since: now }
            } else {
                PaState::Inactive { since: now }
            });
        }
        if let Some(v) = self.cfg.signal.total(snapshot) {
            self.samples.push_back((now, v));
        }
        let window = self.cfg.stable_window_s;
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| t <= now - window)
        {
            self.samples.pop_front();
        }
        let want = self.scale(ready_count, now);
        let n = self.apply(want, ready_count, now, cur);
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        *self = Kpa::new(self.cfg.clone(), self.bounds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::snap;
    use proptest::prelude::*;
    use rlscale_core::Reason;

    /// A Unix time to start timelines at.
    const T0: f64 = 1_700_000_000.0;

    /// A snapshot at `t` with `ready` ready pods and `in_flight` requests in the revision.
    fn obs(t: f64, ready: u32, in_flight: f64) -> MetricsSnapshot {
        let mut s = snap(t, ready, 0);
        s.queue_depth = in_flight;
        s
    }

    fn kpa(cfg: KpaConfig, min: u32, max: u32) -> Kpa {
        Kpa::new(cfg, Bounds { min, max })
    }

    /// Runs `(ready, in_flight)` steps at `T0 + k·15 s` and returns the decisions.
    fn run(p: &mut Kpa, steps: &[(u32, f64)]) -> Vec<u32> {
        steps
            .iter()
            .enumerate()
            .map(|(k, &(ready, v))| {
                let t = T0 + 15.0 * k as f64;
                p.decide(&obs(t, ready, v), SimTime(t)).replicas
            })
            .collect()
    }

    #[test]
    fn target_value_from_target_concurrency_and_utilization() {
        let tv = |cc: u32, target: f64, util: f64| {
            KpaConfig {
                container_concurrency: cc,
                target,
                target_utilization: util,
                ..KpaConfig::default()
            }
            .target_value()
        };
        assert_eq!(tv(0, 100.0, 0.7), 70.0);
        assert_eq!(tv(1, 100.0, 0.7), 0.7);
        assert_eq!(tv(10, 100.0, 0.5), 5.0);
        assert_eq!(tv(200, 100.0, 0.5), 50.0); // target below containerConcurrency wins
        assert_eq!(tv(0, 0.001, 0.7), 0.01); // floor of 0.01
        let d = KpaConfig::default();
        assert_eq!((d.panic_window_s(), d.panic_threshold()), (6.0, 2.0));
        let odd = KpaConfig {
            stable_window_s: 7.0,
            panic_window_percentage: 1.0,
            ..KpaConfig::default()
        };
        assert_eq!(odd.panic_window_s(), 1.0);
    }

    #[test]
    fn desired_is_ceil_of_observed_over_target() {
        // One ready pod, a fresh decider: stable = panic = the one sample.
        for (cc, in_flight, want) in [
            (0, 0.0, 1), // 0 wanted, min 1
            (0, 1.0, 1),
            (0, 70.0, 1),
            (0, 70.5, 2),
            (0, 700.0, 10),
            (0, 7000.0, 100),
            (1, 0.7, 1),
            (1, 1.0, 2),
            (1, 3.5, 5),
            (1, 7.0, 10),
        ] {
            let cfg = KpaConfig {
                container_concurrency: cc,
                ..KpaConfig::default()
            };
            let mut p = kpa(cfg, 1, 1000);
            let d = p.decide(&obs(T0, 1, in_flight), SimTime(T0));
            assert_eq!(d.replicas, want, "cc={cc} in_flight={in_flight}");
        }
    }

    #[test]
    fn scale_down_is_limited_to_floor_of_ready_over_rate() {
        for (rate, ready, want) in [
            (2.0, 10, 5),
            (2.0, 11, 5),
            (2.0, 3, 1),
            (2.0, 2, 1),
            (4.0, 10, 2),
        ] {
            let cfg = KpaConfig {
                max_scale_down_rate: rate,
                ..KpaConfig::default()
            };
            let mut p = kpa(cfg, 1, 100);
            // First seen with one ready pod (no initial panic), then idle with `ready` pods.
            assert_eq!(
                run(&mut p, &[(1, 0.0), (ready, 0.0)]),
                vec![1, want],
                "rate={rate} ready={ready}"
            );
        }
    }

    #[test]
    fn scale_up_is_limited_to_ceil_of_rate_times_ready() {
        let cfg = KpaConfig {
            max_scale_up_rate: 1.5,
            ..KpaConfig::default()
        };
        let mut p = kpa(cfg, 1, 100);
        // 3 ready: max up ceil(4.5) = 5 although 7000/70 = 100 pods are wanted.
        assert_eq!(run(&mut p, &[(1, 0.0)]), vec![1]);
        let d = p.decide(&obs(T0 + 15.0, 3, 7000.0), SimTime(T0 + 15.0));
        assert_eq!((d.replicas, d.reason), (5, Reason::ScaleUp));
    }

    #[test]
    fn panic_threshold_is_inclusive_at_two() {
        // ready 5 after a first idle tick at 1 pod; dppc = ceil(obs / 70).
        for (in_flight, want, panics) in [(630.0, 5, false), (700.0, 10, true)] {
            let mut p = kpa(KpaConfig::default(), 1, 100);
            assert_eq!(run(&mut p, &[(1, 0.0), (5, in_flight)]), vec![1, want]);
            // 630: stable (0+630)/2 → 5, dppc 9, 9/5 = 1.8 < 2. 700: dppc 10, 10/5 = 2.0 → panic, max(5, 10).
            assert_eq!(p.panic_time.is_some(), panics, "in_flight={in_flight}");
        }
    }

    #[test]
    fn panics_on_a_spike_never_scales_down_in_panic_and_leaves_after_the_stable_window() {
        let mut p = kpa(KpaConfig::default(), 1, 100);
        let got = run(
            &mut p,
            &[
                (1, 50.0),   // t0: 1
                (1, 700.0),  // t15: stable 375 → 6, panic 700 → 10, 10/1 ≥ 2: panic → 10
                (3, 350.0),  // t30: dppc 5, 5/3 < 2; stable → 6; held at 10
                (10, 140.0), // t45: stable 310 → 5, panic 2: held at 10
                (10, 140.0), // t60
                (10, 140.0), // t75: panic began at 15, 15 + 60 < 75 is false: still panic
                (10, 140.0), // t90: panic over; stable 140 → 2, clamped to floor(10/2) = 5
                (5, 140.0),  // t105: 2, floor(5/2) = 2
            ],
        );
        assert_eq!(got, vec![1, 10, 10, 10, 10, 10, 5, 2]);
        assert!(p.panic_time.is_none());
    }

    #[test]
    fn a_new_spike_in_panic_extends_it_and_ratchets_up() {
        let mut p = kpa(KpaConfig::default(), 1, 100);
        let got = run(
            &mut p,
            &[
                (1, 0.0),
                (1, 280.0), // t15: stable 140 → 2, dppc 4, 4/1 ≥ 2: panic → 4
                (4, 0.0),   // t30: held 4
                (4, 700.0), // t45: dppc 10, 10/4 ≥ 2: extend to 45; stable 245 → 4; max(4, 10) = 10
                (10, 0.0),  // t60 .. t105: 45 + 60 < now only from t120
                (10, 0.0),
                (10, 0.0),
                (10, 0.0),
                (10, 0.0), // t120: out of panic; stable 0 → floor(10/2) = 5
            ],
        );
        assert_eq!(got, vec![1, 4, 4, 10, 10, 10, 10, 10, 5]);
    }

    #[test]
    fn starts_in_panic_holding_the_ready_pods_when_first_seen_with_more_than_one() {
        let mut p = kpa(KpaConfig::default(), 1, 100);
        // Idle with 4 ready pods: held at 4 for a stable window after creation, then floor(4/2) = 2.
        let got = run(
            &mut p,
            &[
                (4, 0.0),
                (4, 0.0),
                (4, 0.0),
                (4, 0.0),
                (4, 0.0),
                (4, 0.0),
                (2, 0.0),
            ],
        );
        assert_eq!(got, vec![4, 4, 4, 4, 4, 2, 1]);

        // One ready pod: no initial panic, straight down to the floor.
        let mut p = kpa(KpaConfig::default(), 1, 100);
        let mut s = obs(T0, 1, 0.0);
        s.starting_replicas = 3;
        assert_eq!(p.decide(&s, SimTime(T0)).replicas, 1);
    }

    #[test]
    fn scale_down_delay_takes_the_max_over_the_delay_window() {
        let steps = [
            (1, 700.0),
            (10, 140.0),
            (10, 140.0),
            (10, 140.0),
            (10, 140.0),
            (10, 140.0),
        ];
        let no_panic = KpaConfig {
            panic_threshold_percentage: 100_000.0,
            ..KpaConfig::default()
        };
        // Without delay: 10, stable 420 → 6, 326.7 → 5, 280 → 4 (floor 5), 140 → 2 (floor 5), 5.
        let mut p = kpa(no_panic.clone(), 1, 100);
        assert_eq!(run(&mut p, &steps), vec![10, 6, 5, 5, 5, 5]);
        // 60-s delay: the max of the wants in (now − 60, now].
        let delayed = KpaConfig {
            scale_down_delay_s: 60.0,
            ..no_panic
        };
        let mut p = kpa(delayed, 1, 100);
        assert_eq!(run(&mut p, &steps), vec![10, 10, 10, 10, 6, 5]);
    }

    #[test]
    fn activation_scale_raises_a_nonzero_count() {
        let cfg = KpaConfig {
            activation_scale: 3,
            ..KpaConfig::default()
        };
        let mut p = kpa(cfg.clone(), 0, 100);
        assert_eq!(run(&mut p, &[(1, 10.0)]), vec![3]);
        let mut p = kpa(cfg, 1, 100);
        assert_eq!(run(&mut p, &[(1, 0.0)]), vec![1]);
    }

    #[test]
    fn scales_to_zero_after_a_stable_window_active_and_the_grace_period() {
        let mut p = kpa(KpaConfig::default(), 0, 10);
        let got = run(
            &mut p,
            &[
                (1, 0.0), // t0: Active since 0; want 0 → hold 1
                (1, 0.0),
                (1, 0.0),
                (1, 0.0),
                (1, 0.0), // t60: active for 60 s → marked Inactive, count unchanged
                (1, 0.0), // t75: inactive 15 s < 30 s
                (1, 0.0), // t90: inactive 30 s → 0
                (0, 0.0), // t105: stays at 0
                (0, 3.0), // t120: a request at the activator: ceil(3/70) = 1 with ready = max(1, 0)
            ],
        );
        assert_eq!(got, vec![1, 1, 1, 1, 1, 1, 0, 0, 1]);
        assert!(matches!(p.pa, Some(PaState::Activating { .. })));
    }

    #[test]
    fn no_scale_to_zero_when_disabled_or_min_is_positive() {
        let disabled = KpaConfig {
            enable_scale_to_zero: false,
            ..KpaConfig::default()
        };
        let idle = [(1, 0.0); 10];
        let mut p = kpa(disabled, 0, 10);
        assert_eq!(run(&mut p, &idle), vec![1; 10]);
        let mut p = kpa(KpaConfig::default(), 2, 10);
        assert_eq!(run(&mut p, &idle), vec![2; 10]);
    }

    #[test]
    fn no_data_holds_and_calls_inside_a_tick_repeat_the_last_decision() {
        let mut p = kpa(KpaConfig::default(), 1, 10);
        let mut s = obs(T0, 2, 0.0);
        s.starting_replicas = 1;
        s.queue_depth = f64::NAN;
        let d = p.decide(&s, SimTime(T0));
        assert_eq!((d.replicas, d.reason), (3, Reason::Hold));
        // A spike one second later is inside the 2-s tick: unchanged.
        let d = p.decide(&obs(T0 + 1.0, 2, 7000.0), SimTime(T0 + 1.0));
        assert_eq!(d.replicas, 3);
        // At the next tick the spike counts: 7000 / 70 = 100, capped to max 10.
        let d = p.decide(&obs(T0 + 2.0, 2, 7000.0), SimTime(T0 + 2.0));
        assert_eq!((d.replicas, d.reason), (10, Reason::ScaleUp));
        // The metric fails for longer than the stable window: no data, hold.
        for k in 1..=5 {
            let t = T0 + 2.0 + 15.0 * f64::from(k);
            let mut s = obs(t, 10, 0.0);
            s.running = f64::INFINITY;
            assert_eq!(p.decide(&s, SimTime(t)).replicas, 10, "k={k}");
        }
    }

    #[test]
    fn reset_forgets_everything() {
        let mut p = kpa(KpaConfig::default(), 1, 100);
        run(&mut p, &[(1, 0.0), (1, 700.0)]);
        p.reset();
        assert_eq!(run(&mut p, &[(1, 0.0)]), vec![1]);
        assert!(p.panic_time.is_none());
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0..1e4,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            Just(1e300),
            Just(f64::MAX),
        ]
    }

    proptest! {
        #[test]
        fn kpa_decisions_stay_within_bounds(
            min in 0u32..4,
            span in 0u32..50,
            zero in any::<bool>(),
            steps in prop::collection::vec((0u32..1000, 0u32..5, arb_value(), arb_value(), 0.0f64..40.0), 1..40),
        ) {
            let cfg = KpaConfig { enable_scale_to_zero: zero, ..KpaConfig::default() };
            let bounds = Bounds { min, max: min + span };
            let mut p = Kpa::new(cfg, bounds);
            let mut t = T0;
            for (ready, starting, q, r, dt) in steps {
                t += dt;
                let mut s = snap(t, ready, starting);
                s.queue_depth = q;
                s.running = r;
                let d = p.decide(&s, SimTime(t));
                prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
            }
            let d = p.decide(&snap(t, 1, 0), SimTime(f64::NAN));
            prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
        }
    }
}
