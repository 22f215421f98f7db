//! Ray Serve's default autoscaling policy (`docs/peers.md` §4):
//! `replica_queue_length_autoscaling_policy` wrapped by `_apply_autoscaling_config` (§4.2), with the
//! defaults of §4.1.
//!
//! One call of [`Ray::decide`] is one control-loop step:
//! * `cur` is the number of running replicas (the snapshot's ready replicas) and `tgt` the current target,
//!   the law's previous output (initially the snapshot's ready + starting replicas);
//! * `T` is the total of ongoing plus queued requests ([`Signal::InFlight`], a fleet total), averaged
//!   over `look_back_period_s`;
//! * cold start: with `cur == 0` and `T > 0` the target becomes `max(ceil(upscaling_factor), tgt)`
//!   at once, without delay;
//! * otherwise `desired = cur · T / (target_ongoing_requests · cur)` (= `T / target_ongoing_requests`),
//!   the smoothing factor moves `cur` by `factor · (desired − cur)`, rounded up, and a downscale that the
//!   factor would leave stuck at `cur` moves by one ("guarantee progress downward");
//! * the target moves to that count only once the policy has wanted to move in the same direction
//!   **continuously** for `upscale_delay_s` (30 s) or `downscale_delay_s` (600 s), measured on the wall
//!   clock; a call at equality or in the other direction restarts the count. Zero is reachable only from
//!   one replica, after `downscale_to_zero_delay_s` (default `downscale_delay_s`);
//! * the result is clipped to the [`Bounds`] (`min_replicas`, `max_replicas`).
//!
//! # Departures from Ray Serve
//! * **Sampling.** Ray's controller loops every 0.1 s on metrics the replicas and handles push every 10 s;
//!   the simulator calls `decide` every 15 s with one snapshot. Each call records one sample (`T` at
//!   `now`), and `T` is the mean of the samples whose time lies in `(now − look_back_period_s, now]`
//!   (with 15-s calls and the 30-s default, the current and the previous sample); if that window holds no
//!   sample, the latest sample is used. A call sooner than `control_loop_interval_s` after the last acting
//!   call returns the last decision unchanged and records nothing.
//! * The delays are wall-clock durations as §4.2 states (older Ray counted loop iterations), so with 15-s
//!   calls an upscale lands on the third consecutive call wanting it (0, 15, 30 s).
//! * A failed metric ([`Signal::total`] is `None`) records no sample; with no sample at all the target
//!   is held.
//! * With `cur == 0` and `T == 0` the policy wants `tgt` (§4.2), which counts as equality and restarts the
//!   delay count (Ray's wrapper returns early there without touching its counter).
//! * `target_capacity` is not modelled: the bounds are the configured ones.

use std::collections::VecDeque;

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive, window_mean};

/// `autoscaling_config` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RayConfig {
    /// `target_ongoing_requests` (2).
    pub target_ongoing_requests: f64,
    /// `look_back_period_s` (30 s).
    pub look_back_period_s: f64,
    /// `upscaling_factor` → `upscale_smoothing_factor` → `smoothing_factor` (1.0).
    pub upscaling_factor: f64,
    /// `downscaling_factor` (1.0).
    pub downscaling_factor: f64,
    /// `upscale_delay_s` (30 s).
    pub upscale_delay_s: f64,
    /// `downscale_delay_s` (600 s).
    pub downscale_delay_s: f64,
    /// `downscale_to_zero_delay_s` (unset: `downscale_delay_s`).
    pub downscale_to_zero_delay_s: Option<f64>,
    /// `RAY_SERVE_CONTROL_LOOP_INTERVAL_S` (0.1 s).
    pub control_loop_interval_s: f64,
}

impl Default for RayConfig {
    fn default() -> Self {
        RayConfig {
            target_ongoing_requests: 2.0,
            look_back_period_s: 30.0,
            upscaling_factor: 1.0,
            downscaling_factor: 1.0,
            upscale_delay_s: 30.0,
            downscale_delay_s: 600.0,
            downscale_to_zero_delay_s: None,
            control_loop_interval_s: 0.1,
        }
    }
}

impl RayConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("ray.target_ongoing_requests", self.target_ongoing_requests)?;
        positive("ray.look_back_period_s", self.look_back_period_s)?;
        positive("ray.upscaling_factor", self.upscaling_factor)?;
        positive("ray.downscaling_factor", self.downscaling_factor)?;
        non_negative("ray.upscale_delay_s", self.upscale_delay_s)?;
        non_negative("ray.downscale_delay_s", self.downscale_delay_s)?;
        if let Some(d) = self.downscale_to_zero_delay_s {
            non_negative("ray.downscale_to_zero_delay_s", d)?;
        }
        positive("ray.control_loop_interval_s", self.control_loop_interval_s)?;
        Ok(())
    }
}

/// The direction the policy has continuously wanted to move in, and since when.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    /// Wanting more replicas than the target since `since`.
    Up { since: f64 },
    /// Wanting fewer replicas than the target since `since`.
    Down { since: f64 },
}

/// Ray Serve's autoscaling state for one deployment.
#[derive(Debug, Clone)]
pub struct Ray {
    cfg: RayConfig,
    bounds: Bounds,
    /// The target (`target_num_replicas`): the last decision.
    last: Option<u32>,
    /// Time of the last call that acted.
    last_tick: Option<f64>,
    /// `(time, total requests)` samples within the look-back period.
    samples: VecDeque<(f64, f64)>,
    /// The delay state.
    pending: Option<Pending>,
}

impl Ray {
    /// A new deployment state with no history.
    pub fn new(cfg: RayConfig, bounds: Bounds) -> Self {
        Ray {
            cfg,
            bounds,
            last: None,
            last_tick: None,
            samples: VecDeque::new(),
            pending: None,
        }
    }

    /// The count the policy wants before the delays (`_core_replica_queue_length_policy` and
    /// `_apply_scaling_factors`), for `cur > 0` running replicas and `total` requests.
    fn wanted(&self, cur: u32, total: f64) -> u32 {
        let c = f64::from(cur);
        let desired = c * (total / (self.cfg.target_ongoing_requests * c));
        let delta = desired - c;
        let factor = if delta > 0.0 {
            self.cfg.upscaling_factor
        } else {
            self.cfg.downscaling_factor
        };
        // `as` saturates (a negative count becomes 0, i.e. `max(0, n)`) and maps NaN to 0.
        let n = (c + factor * delta).ceil() as u32;
        if desired.ceil() < c && n == cur {
            cur - 1
        } else {
            n
        }
    }

    /// One step of §4.2 from target `tgt`: the new (unclipped) target.
    fn step(&mut self, cur: u32, tgt: u32, total: f64, now: f64) -> u32 {
        if cur == 0 && total > 0.0 {
            // Cold-start fast path, no delay.
            return ((self.cfg.upscaling_factor).ceil() as u32).max(tgt);
        }
        let n = if cur == 0 {
            tgt
        } else {
            self.wanted(cur, total)
        };
        if n > tgt {
            let since = match self.pending {
                Some(Pending::Up { since }) => since,
                _ => now,
            };
            self.pending = Some(Pending::Up { since });
            if now - since >= self.cfg.upscale_delay_s {
                self.pending = None;
                return n;
            }
        } else if n < tgt {
            let since = match self.pending {
                Some(Pending::Down { since }) => since,
                _ => now,
            };
            self.pending = Some(Pending::Down { since });
            let (delay, n) = if tgt == 1 {
                let d = self
                    .cfg
                    .downscale_to_zero_delay_s
                    .unwrap_or(self.cfg.downscale_delay_s);
                (d, n)
            } else {
                // Zero is reachable only from one replica.
                (self.cfg.downscale_delay_s, n.max(1))
            };
            if now - since >= delay {
                self.pending = None;
                return n;
            }
        } else {
            self.pending = None;
        }
        tgt
    }
}

impl Policy for Ray {
    fn name(&self) -> String {
        "ray".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let tgt = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let now = now.0;
        if !now.is_finite() {
            return decision(tgt, self.bounds.clamp(tgt));
        }
        if let Some(t) = self.last_tick
            && now - t < self.cfg.control_loop_interval_s - crate::PERIOD_SLACK_S
        {
            return decision(tgt, self.bounds.clamp(tgt));
        }
        self.last_tick = Some(now);
        if let Some(v) = Signal::InFlight.total(snapshot) {
            self.samples.push_back((now, v));
        }
        // Keep the samples within the look-back period, and always the latest one.
        let window = self.cfg.look_back_period_s;
        while self.samples.len() > 1
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| t <= now - window)
        {
            self.samples.pop_front();
        }
        let latest = self.samples.back().map(|&(_, v)| v);
        let n = match window_mean(&self.samples, now, window).or(latest) {
            Some(total) => self.step(snapshot.ready_replicas, tgt, total, now),
            None => tgt,
        };
        let n = self.bounds.clamp(n);
        self.last = Some(n);
        decision(tgt, n)
    }

    fn reset(&mut self) {
        *self = Ray::new(self.cfg.clone(), self.bounds);
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

    /// A snapshot at `t` with `ready` running replicas, `starting` more, and `total` ongoing + queued requests.
    fn obs(t: f64, ready: u32, starting: u32, total: f64) -> MetricsSnapshot {
        let mut s = snap(t, ready, starting);
        s.running = total;
        s
    }

    /// No delays, 15-s look-back (the current sample only).
    fn instant() -> RayConfig {
        RayConfig {
            upscale_delay_s: 0.0,
            downscale_delay_s: 0.0,
            look_back_period_s: 15.0,
            ..RayConfig::default()
        }
    }

    /// Runs `(ready, total)` steps at `T0 + k·15 s`, from a target of `start` replicas.
    fn run(p: &mut Ray, start: u32, steps: &[(u32, f64)]) -> Vec<u32> {
        steps
            .iter()
            .enumerate()
            .map(|(k, &(ready, total))| {
                let t = T0 + 15.0 * k as f64;
                let starting = if k == 0 {
                    start.saturating_sub(ready)
                } else {
                    0
                };
                p.decide(&obs(t, ready, starting, total), SimTime(t))
                    .replicas
            })
            .collect()
    }

    #[test]
    fn desired_is_total_over_target_with_the_smoothing_factors() {
        // (cur, T, upscaling_factor, downscaling_factor, expected)
        for (cur, total, up, down, want) in [
            (4, 20.0, 1.0, 1.0, 10),    // 20 / 2
            (4, 19.0, 1.0, 1.0, 10),    // ceil(9.5)
            (4, 8.0, 1.0, 1.0, 4),      // at target: hold
            (4, 20.0, 0.5, 1.0, 7),     // 4 + 0.5 · 6
            (10, 8.0, 1.0, 0.5, 7),     // 10 + 0.5 · (4 − 10)
            (4, 6.0, 1.0, 0.1, 3),      // ceil(3.9) = 4 = cur, ceil(3) < 4: progress downward → 3
            (4, 7.0, 1.0, 0.1, 4),      // ceil(3.95) = 4, but ceil(3.5) = 4 is not < 4: stays
            (4, 0.0, 1.0, 1.0, 1),      // 0 wanted, but 0 only from 1: 1
            (10, 0.0, 1.0, 2.0, 1),     // 10 + 2 · (−10) < 0 → max(0, ·), then 1
            (4, 1000.0, 1.0, 1.0, 100), // clipped to max
        ] {
            let cfg = RayConfig {
                upscaling_factor: up,
                downscaling_factor: down,
                ..instant()
            };
            let mut p = Ray::new(cfg, Bounds { min: 0, max: 100 });
            assert_eq!(
                run(&mut p, cur, &[(cur, total)]),
                vec![want],
                "cur={cur} T={total} up={up} down={down}"
            );
        }
    }

    #[test]
    fn total_is_averaged_over_the_look_back_period() {
        let cfg = RayConfig {
            upscale_delay_s: 0.0,
            ..RayConfig::default()
        };
        let mut p = Ray::new(cfg, Bounds { min: 1, max: 100 });
        // t0: T 4 → 2. t15: (4 + 16) / 2 = 10 → 5. t30: (16 + 16) / 2 → 8 (the t0 sample left the 30-s window).
        assert_eq!(
            run(&mut p, 2, &[(2, 4.0), (2, 16.0), (2, 16.0)]),
            vec![2, 5, 8]
        );
    }

    #[test]
    fn upscale_waits_thirty_seconds_of_continuous_wanting() {
        let cfg = RayConfig {
            look_back_period_s: 10.0,
            ..RayConfig::default()
        };
        let mut p = Ray::new(cfg.clone(), Bounds { min: 1, max: 100 });
        // Wants 8 from t15: 15 s at t30, 30 s at t45.
        let got = run(
            &mut p,
            2,
            &[(2, 4.0), (2, 16.0), (2, 16.0), (2, 16.0), (8, 16.0)],
        );
        assert_eq!(got, vec![2, 2, 2, 8, 8]);

        // One call at equality (t30) restarts the count: up at t45 + 30 = t75.
        let mut p = Ray::new(cfg.clone(), Bounds { min: 1, max: 100 });
        let got = run(
            &mut p,
            2,
            &[
                (2, 4.0),
                (2, 16.0),
                (2, 4.0),
                (2, 16.0),
                (2, 16.0),
                (2, 16.0),
            ],
        );
        assert_eq!(got, vec![2, 2, 2, 2, 2, 8]);

        // So does one call in the other direction (t30 wants 1).
        let mut p = Ray::new(cfg, Bounds { min: 1, max: 100 });
        let got = run(
            &mut p,
            2,
            &[
                (2, 4.0),
                (2, 16.0),
                (2, 2.0),
                (2, 16.0),
                (2, 16.0),
                (2, 16.0),
            ],
        );
        assert_eq!(got, vec![2, 2, 2, 2, 2, 8]);
        assert_eq!(p.pending, None);
    }

    #[test]
    fn downscale_waits_six_hundred_seconds_and_resets_on_a_direction_change() {
        let cfg = RayConfig {
            look_back_period_s: 10.0,
            ..RayConfig::default()
        };
        let b = Bounds { min: 1, max: 100 };
        // 8 running, T 4 → wants 2 from t0; 600 s later (the 41st call) the target drops.
        let mut p = Ray::new(cfg.clone(), b);
        let got = run(&mut p, 8, &[(8, 4.0); 42]);
        assert_eq!(got[..40], [8; 40]);
        assert_eq!(got[40..], [2, 2]);

        // A single call wanting more at t300 restarts the count: down at t315 + 600 = t915.
        let mut p = Ray::new(cfg, b);
        let mut steps = vec![(8, 4.0); 63];
        steps[20] = (8, 32.0);
        let got = run(&mut p, 8, &steps);
        assert_eq!(got[..61], [8; 61]);
        assert_eq!(got[61..], [2, 2]);
    }

    #[test]
    fn zero_only_from_one_after_the_to_zero_delay() {
        let cfg = RayConfig {
            look_back_period_s: 10.0,
            downscale_to_zero_delay_s: Some(120.0),
            ..RayConfig::default()
        };
        let mut p = Ray::new(cfg, Bounds { min: 0, max: 10 });
        // Idle at 2: 2 → 1 after 600 s (not 0), then 1 → 0 after 120 more continuous seconds.
        let mut steps = vec![(2, 0.0); 41];
        steps.extend([(1, 0.0); 10]);
        let got = run(&mut p, 2, &steps);
        assert_eq!(got[..40], [2; 40]);
        assert_eq!(got[40..49], [1; 9]); // t600 .. t720: down to 0 wanted since t615
        assert_eq!(got[49..], [0, 0]); // t735 = t615 + 120
    }

    #[test]
    fn cold_start_scales_up_from_zero_at_once() {
        let b = Bounds { min: 0, max: 10 };
        let mut p = Ray::new(RayConfig::default(), b);
        // Target 0, no replica running, a request arrives: 1 immediately despite the 30-s delay.
        assert_eq!(
            run(&mut p, 0, &[(0, 0.0), (0, 3.0), (0, 3.0)]),
            vec![0, 1, 1]
        );
        let d = p.decide(&obs(T0 + 45.0, 0, 1, 3.0), SimTime(T0 + 45.0));
        assert_eq!((d.replicas, d.reason), (1, Reason::Hold));
        // The upscaling factor scales the first step: ceil(2.5) = 3.
        let cfg = RayConfig {
            upscaling_factor: 2.5,
            ..RayConfig::default()
        };
        let mut p = Ray::new(cfg, b);
        assert_eq!(run(&mut p, 0, &[(0, 3.0)]), vec![3]);
        // A higher target already set is kept.
        let mut p = Ray::new(RayConfig::default(), b);
        assert_eq!(run(&mut p, 4, &[(0, 3.0)]), vec![4]);
    }

    #[test]
    fn failed_metric_holds_and_calls_inside_the_loop_interval_repeat() {
        let mut p = Ray::new(instant(), Bounds { min: 1, max: 100 });
        let mut s = obs(T0, 3, 0, 0.0);
        s.queue_depth = f64::NAN;
        assert_eq!(p.decide(&s, SimTime(T0)).replicas, 3);
        let d = p.decide(&obs(T0 + 0.05, 3, 0, 100.0), SimTime(T0 + 0.05));
        assert_eq!(d.replicas, 3);
        let d = p.decide(&obs(T0 + 0.1, 3, 0, 100.0), SimTime(T0 + 0.1));
        assert_eq!((d.replicas, d.reason), (50, Reason::ScaleUp));
        // The metric fails later: the latest sample (100) still counts.
        let mut s = obs(T0 + 60.0, 50, 0, 0.0);
        s.running = -1.0;
        assert_eq!(p.decide(&s, SimTime(T0 + 60.0)).replicas, 50);
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
        fn ray_decisions_stay_within_bounds(
            min in 0u32..4,
            span in 0u32..50,
            up in 0.01f64..5.0,
            down in 0.01f64..5.0,
            steps in prop::collection::vec((0u32..1000, 0u32..5, arb_value(), arb_value(), 0.0f64..700.0), 1..40),
        ) {
            let cfg = RayConfig { upscaling_factor: up, downscaling_factor: down, ..RayConfig::default() };
            let bounds = Bounds { min, max: min + span };
            let mut p = Ray::new(cfg, bounds);
            let mut t = T0;
            for (ready, starting, q, r, dt) in steps {
                t += dt;
                let mut s = snap(t, ready, starting);
                s.queue_depth = q;
                s.running = r;
                let d = p.decide(&s, SimTime(t));
                prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
            }
            let d = p.decide(&snap(t, 1, 0), SimTime(f64::INFINITY));
            prop_assert!(d.replicas >= bounds.min && d.replicas <= bounds.max);
        }
    }
}
