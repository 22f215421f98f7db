//! AIBrix's APA PodAutoscaler strategy (`docs/peers.md` §5.2, `APA` and `cooldown`), with the
//! defaults of §5.1.
//!
//! One call of [`Apa::decide`] is one controller resync:
//! * `cur` is the law's last decision (`scale.spec.replicas`), initially the snapshot's ready + starting
//!   replicas; if it lies outside the [`Bounds`] the step returns the nearer bound;
//! * `x` is the signal's **per-pod mean** over the ready pods ([`Signal::per_pod_mean`]; §10), and
//!   `stable` its average over `stable_window_s` (180 s);
//! * `r = stable / target_value`; above `1 + scale_up_tolerance` the recommendation is
//!   `min(ceil(cur · r), ceil(max_scale_up_rate · cur))`; below `1 − scale_down_tolerance` it is
//!   `max(ceil(cur · r), floor(cur / max_scale_down_rate))`; otherwise `cur`; clamped to the bounds;
//! * the cooldown keeps the raw recommendations of the last `max(up, down)` cooldown windows: a scale-up
//!   takes the **max** of those within `scale_up_cooldown_s` (0 s: the recommendation itself), a
//!   scale-down the **min** of those within `scale_down_cooldown_s` (300 s), and equality keeps `cur`;
//! * the result is clamped to the bounds.
//!
//! # Departures from AIBrix
//! * **Sampling.** AIBrix resyncs every 10 s over 1-s metric buckets; the simulator calls `decide` every
//!   15 s with one snapshot. Each call records one sample (`x` at `now`), and `stable` is the mean of the
//!   samples whose time lies in `(now − stable_window_s, now]`; if that window holds no sample, the latest
//!   sample is used. A call sooner than `resync_s` after the last acting call returns the last decision
//!   unchanged and records nothing.
//! * With no ready pod, or a failed metric ([`Signal::per_pod_mean`] is `None`), the count is held and
//!   nothing is recorded (AIBrix counts a failed pod fetch as 0.0).
//! * With `cur == 0` and `min > 0` AIBrix leaves the target alone ("scaling disabled"); here the result
//!   must stay within the bounds, so it is `min`, as for any `cur < min`.
//! * One metric source: the max over several sources is the one recommendation.

use std::collections::VecDeque;

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive, window_mean};

/// A PodAutoscaler with `scalingStrategy: APA` and its annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApaConfig {
    /// `targetMetric`, read as a per-pod mean (default `kv_cache_usage`: `vllm:kv_cache_usage_perc`).
    pub signal: Signal,
    /// `targetValue` (0.5, as AIBrix's shipped samples set for `gpu_cache_usage_perc`).
    pub target_value: f64,
    /// `observeWindowSeconds` (180 s).
    pub stable_window_s: f64,
    /// `max-scale-up-rate` (2).
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (2).
    pub max_scale_down_rate: f64,
    /// `scale-up-tolerance` (0.1).
    pub scale_up_tolerance: f64,
    /// `scale-down-tolerance` (0.1).
    pub scale_down_tolerance: f64,
    /// `scale-up-cooldown-window` (0 s).
    pub scale_up_cooldown_s: f64,
    /// `scale-down-cooldown-window` (300 s).
    pub scale_down_cooldown_s: f64,
    /// The controller's resync (10 s).
    pub resync_s: f64,
}

impl Default for ApaConfig {
    fn default() -> Self {
        ApaConfig {
            signal: Signal::KvCacheUsage,
            target_value: 0.5,
            stable_window_s: 180.0,
            max_scale_up_rate: 2.0,
            max_scale_down_rate: 2.0,
            scale_up_tolerance: 0.1,
            scale_down_tolerance: 0.1,
            scale_up_cooldown_s: 0.0,
            scale_down_cooldown_s: 300.0,
            resync_s: 10.0,
        }
    }
}

impl ApaConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("apa.target_value", self.target_value)?;
        if !(1.0..=3600.0).contains(&self.stable_window_s) {
            return Err(ConfigError::new(
                "apa.stable_window_s",
                self.stable_window_s,
                "must be within 1 .. 3600 s",
            ));
        }
        positive("apa.max_scale_up_rate", self.max_scale_up_rate)?;
        positive("apa.max_scale_down_rate", self.max_scale_down_rate)?;
        non_negative("apa.scale_up_tolerance", self.scale_up_tolerance)?;
        non_negative("apa.scale_down_tolerance", self.scale_down_tolerance)?;
        non_negative("apa.scale_up_cooldown_s", self.scale_up_cooldown_s)?;
        non_negative("apa.scale_down_cooldown_s", self.scale_down_cooldown_s)?;
        positive("apa.resync_s", self.resync_s)?;
        Ok(())
    }
}

/// The APA for one target.
#[derive(Debug, Clone)]
pub struct Apa {
    cfg: ApaConfig,
    bounds: Bounds,
    /// The last decision (`scale.spec.replicas` as this law wrote it).
    last: Option<u32>,
    /// Time of the last call that acted.
    last_tick: Option<f64>,
    /// `(time, per-pod mean)` samples within the stable window.
    samples: VecDeque<(f64, f64)>,
    /// `(time, raw recommendation)` within the longer cooldown window.
    recs: VecDeque<(f64, u32)>,
}

impl Apa {
    /// A new PodAutoscaler with no history.
    pub fn new(cfg: ApaConfig, bounds: Bounds) -> Self {
        Apa {
            cfg,
            bounds,
            last: None,
            last_tick: None,
            samples: VecDeque::new(),
            recs: VecDeque::new(),
        }
    }

    /// `APA(cur, stable, target)` of §5.2: the recommendation before bounds and cooldown.
    fn recommend(&self, cur: u32, stable: f64) -> u32 {
        let c = f64::from(cur);
        let r = stable / self.cfg.target_value;
        let n = if r > 1.0 + self.cfg.scale_up_tolerance {
            (c * r).ceil().min((self.cfg.max_scale_up_rate * c).ceil())
        } else if r < 1.0 - self.cfg.scale_down_tolerance {
            (c * r)
                .ceil()
                .max((c / self.cfg.max_scale_down_rate).floor())
        } else {
            c
        };
        // `as` saturates and maps NaN (0 · ∞) to 0.
        n as u32
    }

    /// `cooldown(rec, cur, now)` of §5.2 (`stabilizeRecommendation`).
    fn cooldown(&mut self, rec: u32, cur: u32, now: f64) -> u32 {
        let (up, down) = (self.cfg.scale_up_cooldown_s, self.cfg.scale_down_cooldown_s);
        self.recs.push_back((now, rec));
        let keep = up.max(down);
        while self.recs.front().is_some_and(|&(t, _)| t <= now - keep) {
            self.recs.pop_front();
        }
        let within = |w: f64| {
            self.recs
                .iter()
                .filter(move |&&(t, _)| t > now - w)
                .map(|&(_, n)| n)
        };
        match rec.cmp(&cur) {
            std::cmp::Ordering::Greater => within(up).max().unwrap_or(rec),
            std::cmp::Ordering::Less => within(down).min().unwrap_or(rec),
            std::cmp::Ordering::Equal => cur,
        }
    }
}

impl Policy for Apa {
    fn name(&self) -> String {
        "apa".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let now = now.0;
        if !now.is_finite() {
            return decision(cur, self.bounds.clamp(cur));
        }
        if let Some(t) = self.last_tick
            && now - t < self.cfg.resync_s - crate::PERIOD_SLACK_S
        {
            return decision(cur, self.bounds.clamp(cur));
        }
        self.last_tick = Some(now);
        let n = self.step(snapshot, cur, now);
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        *self = Apa::new(self.cfg.clone(), self.bounds);
    }
}

impl Apa {
    /// `step_aibrix` of §5.2 with one metric source.
    fn step(&mut self, snapshot: &MetricsSnapshot, cur: u32, now: f64) -> u32 {
        let b = self.bounds;
        if cur != b.clamp(cur) {
            return b.clamp(cur);
        }
        let Some(x) = self.cfg.signal.per_pod_mean(snapshot) else {
            return cur;
        };
        self.samples.push_back((now, x));
        let window = self.cfg.stable_window_s;
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| t <= now - window)
        {
            self.samples.pop_front();
        }
        // The window always holds the sample just taken.
        let stable = window_mean(&self.samples, now, window).unwrap_or(x);
        let rec = b.clamp(self.recommend(cur, stable));
        b.clamp(self.cooldown(rec, cur, now))
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

    /// Queue depth per pod against a target of 1 per pod, so that `r` is the per-pod value.
    fn per_pod_queue() -> ApaConfig {
        ApaConfig {
            signal: Signal::QueueDepth,
            target_value: 1.0,
            ..ApaConfig::default()
        }
    }

    /// A snapshot at `t` with `ready` ready pods whose per-pod queue is `x`.
    fn obs(t: f64, ready: u32, x: f64) -> MetricsSnapshot {
        let mut s = snap(t, ready, 0);
        s.queue_depth = x * f64::from(ready);
        s
    }

    /// Runs per-pod values at `T0 + k·15 s`, with as many ready pods as the last decision.
    fn run(p: &mut Apa, start: u32, xs: &[f64]) -> Vec<u32> {
        let mut ready = start;
        xs.iter()
            .enumerate()
            .map(|(k, &x)| {
                let t = T0 + 15.0 * k as f64;
                ready = p.decide(&obs(t, ready, x), SimTime(t)).replicas;
                ready
            })
            .collect()
    }

    #[test]
    fn ratio_with_tolerances_and_rate_caps() {
        // (cur, per-pod value = r, max_scale_up_rate, expected)
        for (cur, r, up_rate, want) in [
            (10, 1.1, 2.0, 10),  // at 1 + 0.1: hold
            (10, 1.11, 2.0, 12), // ceil(11.1)
            (10, 0.9, 2.0, 10),  // at 1 − 0.1: hold
            (10, 0.89, 2.0, 9),  // ceil(8.9)
            (10, 5.0, 2.0, 20),  // capped at ceil(2 · 10)
            (10, 5.0, 3.0, 30),  // capped at ceil(3 · 10)
            (10, 0.1, 2.0, 5),   // capped at floor(10 / 2)
            (3, 5.0, 2.0, 6),
            (3, 0.1, 2.0, 1), // max(ceil(0.3), floor(1.5))
            (10, 1.0, 2.0, 10),
        ] {
            let cfg = ApaConfig {
                max_scale_up_rate: up_rate,
                ..per_pod_queue()
            };
            let mut p = Apa::new(cfg, Bounds { min: 1, max: 100 });
            assert_eq!(
                run(&mut p, cur, &[r]),
                vec![want],
                "cur={cur} r={r} up_rate={up_rate}"
            );
        }
        // The defaults: KV-cache usage against 0.5. 4 pods at 0.9: r = 1.8 → min(ceil(7.2), 8) = 8.
        let mut p = Apa::new(ApaConfig::default(), Bounds { min: 1, max: 100 });
        let mut s = snap(T0, 4, 0);
        s.kv_cache_usage = 0.9;
        let d = p.decide(&s, SimTime(T0));
        assert_eq!((d.replicas, d.reason), (8, Reason::ScaleUp));
    }

    #[test]
    fn the_ratio_uses_the_stable_window_average() {
        let mut p = Apa::new(per_pod_queue(), Bounds { min: 1, max: 100 });
        // t0: 1.0 → hold 10. t15: mean(1.0, 1.6) = 1.3 → 13. t30: mean(1.0, 1.6, 1.0) = 1.2 → ceil(15.6) = 16.
        assert_eq!(run(&mut p, 10, &[1.0, 1.6, 1.0]), vec![10, 13, 16]);
        // A 30-s window forgets t0 at t30: mean(1.6, 1.0) = 1.3 → ceil(16.9) = 17.
        let cfg = ApaConfig {
            stable_window_s: 30.0,
            ..per_pod_queue()
        };
        let mut p = Apa::new(cfg, Bounds { min: 1, max: 100 });
        assert_eq!(run(&mut p, 10, &[1.0, 1.6, 1.0]), vec![10, 13, 17]);
    }

    /// A 1-s stable window: `stable` is the current per-pod value.
    fn instant() -> ApaConfig {
        ApaConfig {
            stable_window_s: 1.0,
            ..per_pod_queue()
        }
    }

    #[test]
    fn scale_down_takes_the_min_recommendation_of_the_cooldown_window() {
        let mut p = Apa::new(instant(), Bounds { min: 1, max: 100 });
        let got = run(
            &mut p,
            10,
            &[
                1.2,  // t0: ceil(12) → 12 (up: the recommendation itself)
                0.65, // t15: ceil(7.8) = 8 → min{12, 8} = 8
                0.85, // t30: ceil(6.8) = 7 → 7
                1.25, // t45: ceil(8.75) = 9 → 9
                0.85, // t60: ceil(7.65) = 8 < 9 → min{12, 8, 7, 9, 8} = 7, not 8
                1.0,  // t75: hold
            ],
        );
        assert_eq!(got, vec![12, 8, 7, 9, 7, 7]);
    }

    #[test]
    fn the_down_cooldown_window_is_three_hundred_seconds() {
        // t0: 0.5 → 5. t15: 2.0 → 10. Holds at 10 until `down_at`, where 0.85 recommends ceil(8.5) = 9.
        let run_until = |down_at: usize| {
            let mut xs = vec![0.5, 2.0];
            xs.resize(down_at, 1.0);
            xs.push(0.85);
            let mut p = Apa::new(instant(), Bounds { min: 1, max: 100 });
            *run(&mut p, 10, &xs).last().unwrap()
        };
        // At t285 the t0 recommendation (5) is within (t0 − 15 s, t285]: the min is 5.
        assert_eq!(run_until(19), 5);
        // At t300 it has left (t0, t300]: the min of {10, 10 (holds), 9} is 9.
        assert_eq!(run_until(20), 9);
    }

    #[test]
    fn an_up_cooldown_window_takes_the_max() {
        let cfg = ApaConfig {
            scale_up_cooldown_s: 60.0,
            scale_down_cooldown_s: 0.0,
            ..instant()
        };
        let mut p = Apa::new(cfg, Bounds { min: 1, max: 100 });
        // t0: 1.8 → 18. t15: 0.5 → 9 (down window 0 s: itself). t30: 1.2 → ceil(10.8) = 11 → max{18, 9, 11} = 18.
        assert_eq!(run(&mut p, 10, &[1.8, 0.5, 1.2]), vec![18, 9, 18]);
    }

    #[test]
    fn bounds_zero_ready_and_failed_metrics() {
        let b = Bounds { min: 2, max: 10 };
        // Outside the bounds: the nearer bound, before any metric.
        let mut p = Apa::new(per_pod_queue(), b);
        assert_eq!(p.decide(&obs(T0, 20, 1.0), SimTime(T0)).replicas, 10);
        let mut p = Apa::new(per_pod_queue(), b);
        assert_eq!(p.decide(&snap(T0, 0, 0), SimTime(T0)).replicas, 2);
        // No ready pod (3 starting): hold.
        let mut p = Apa::new(per_pod_queue(), b);
        let d = p.decide(&snap(T0, 0, 3), SimTime(T0));
        assert_eq!((d.replicas, d.reason), (3, Reason::Hold));
        // A failed metric: hold; then a call inside the 10-s resync repeats; then the metric counts.
        let mut s = obs(T0 + 15.0, 3, 0.0);
        s.queue_depth = f64::NAN;
        assert_eq!(p.decide(&s, SimTime(T0 + 15.0)).replicas, 3);
        assert_eq!(
            p.decide(&obs(T0 + 20.0, 3, 3.0), SimTime(T0 + 20.0))
                .replicas,
            3
        );
        assert_eq!(
            p.decide(&obs(T0 + 25.0, 3, 3.0), SimTime(T0 + 25.0))
                .replicas,
            6
        );
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0..10.0,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            Just(1e300),
            Just(f64::MAX),
        ]
    }

    proptest! {
        #[test]
        fn apa_decisions_stay_within_bounds(
            min in 0u32..4,
            span in 0u32..50,
            steps in prop::collection::vec((0u32..1000, 0u32..5, arb_value(), arb_value(), 0.0f64..400.0), 1..40),
        ) {
            let bounds = Bounds { min, max: min + span };
            let mut p = Apa::new(ApaConfig::default(), bounds);
            let mut q = Apa::new(per_pod_queue(), bounds);
            let mut t = T0;
            for (ready, starting, kv, queue, dt) in steps {
                t += dt;
                let mut s = snap(t, ready, starting);
                s.kv_cache_usage = kv;
                s.queue_depth = queue;
                for d in [p.decide(&s, SimTime(t)), q.decide(&s, SimTime(t))] {
                    prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
                }
            }
            let d = p.decide(&snap(t, 1, 0), SimTime(f64::NAN));
            prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
        }
    }
}
