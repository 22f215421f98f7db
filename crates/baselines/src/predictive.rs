//! The seasonal predictive rule: provision for the arrival rate seen at the same time one period ago
//! (yesterday, or last week), one cold start ahead, plus headroom.
//!
//! It is the "simple predictive scaler" users ask for (kedacore/keda #2401, vllm-project/aibrix #1418):
//!
//! ```text
//! seasonal = max of the 1-min arrival rates recorded in [now − period, now − period + lead + bucket]
//! rate     = max(seasonal, current 1-min rate)   if reactive (the default), else seasonal
//! replicas = ceil(rate · (1 + headroom) / (capacity_rps · target_utilization))
//! ```
//!
//! `lead` defaults to the profile's cold start, so replicas for yesterday's ramp are requested before
//! the ramp. Until one period of history exists, the rule is purely reactive. The history is one value
//! per bucket (the max rate seen in it), pruned beyond one period, so memory is O(period / bucket).

use std::collections::VecDeque;

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, decision, non_negative, positive};

/// The rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictiveConfig {
    /// The season, seconds: 86 400 (yesterday, the default) or 604 800 (last week).
    pub period_s: f64,
    /// Extra capacity over the predicted rate (0.2 = 20 %).
    pub headroom: f64,
    /// The share of a replica's saturation throughput (`capacity_rps`) to plan for (0.8).
    pub target_utilization: f64,
    /// How far ahead to look, seconds; unset = the profile's cold start.
    pub lead_s: Option<f64>,
    /// History resolution, seconds (60).
    pub bucket_s: f64,
    /// Never plan below the current rate (true).
    pub reactive: bool,
}

impl Default for PredictiveConfig {
    fn default() -> Self {
        PredictiveConfig {
            period_s: 86_400.0,
            headroom: 0.2,
            target_utilization: 0.8,
            lead_s: None,
            bucket_s: 60.0,
            reactive: true,
        }
    }
}

impl PredictiveConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("predictive.period_s", self.period_s)?;
        non_negative("predictive.headroom", self.headroom)?;
        positive("predictive.target_utilization", self.target_utilization)?;
        if self.target_utilization > 1.0 {
            return Err(ConfigError::new(
                "predictive.target_utilization",
                self.target_utilization,
                "must be within (0, 1]: a replica cannot run beyond its saturation throughput",
            ));
        }
        if let Some(l) = self.lead_s {
            non_negative("predictive.lead_s", l)?;
        }
        positive("predictive.bucket_s", self.bucket_s)?;
        if self.bucket_s > self.period_s {
            return Err(ConfigError::new(
                "predictive.bucket_s",
                self.bucket_s,
                format!("must not exceed period_s ({})", self.period_s),
            ));
        }
        Ok(())
    }
}

/// The seasonal rule for one target.
#[derive(Debug, Clone)]
pub struct Predictive {
    cfg: PredictiveConfig,
    bounds: Bounds,
    /// (bucket index, max 1-min rate seen in it), oldest first.
    history: VecDeque<(i64, f64)>,
    last: Option<u32>,
}

impl Predictive {
    /// A new rule with no history.
    pub fn new(cfg: PredictiveConfig, bounds: Bounds) -> Self {
        Predictive {
            cfg,
            bounds,
            history: VecDeque::new(),
            last: None,
        }
    }

    fn bucket(&self, t: f64) -> i64 {
        (t / self.cfg.bucket_s).floor() as i64
    }

    fn record(&mut self, t: f64, rate: f64) {
        let b = self.bucket(t);
        match self.history.back_mut() {
            Some((last, v)) if *last == b => *v = v.max(rate),
            Some((last, _)) if *last > b => {} // time went backwards: ignore the sample
            _ => self.history.push_back((b, rate)),
        }
        let oldest = self.bucket(t - self.cfg.period_s).saturating_sub(1);
        while self.history.front().is_some_and(|(k, _)| *k < oldest) {
            self.history.pop_front();
        }
    }

    /// The max rate recorded in the buckets covering `[from, to]`, if any.
    fn seasonal(&self, from: f64, to: f64) -> Option<f64> {
        let (a, b) = (self.bucket(from), self.bucket(to));
        self.history
            .iter()
            .filter(|(k, _)| (a..=b).contains(k))
            .map(|(_, v)| *v)
            .reduce(f64::max)
    }
}

impl Policy for Predictive {
    fn name(&self) -> String {
        "predictive".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let t = now.unix_s();
        let rate = snapshot.arrival_rate_1m;
        let current = (rate.is_finite() && rate >= 0.0).then_some(rate);
        let lead = self
            .cfg
            .lead_s
            .unwrap_or(snapshot.profile.cold_start_s)
            .max(0.0);
        let season = self.seasonal(
            t - self.cfg.period_s,
            t - self.cfg.period_s + lead + self.cfg.bucket_s,
        );
        if let Some(r) = current {
            self.record(t, r);
        }
        let planned = match (season, current) {
            (Some(s), Some(c)) if self.cfg.reactive => Some(s.max(c)),
            (Some(s), _) => Some(s),
            (None, c) => c,
        };
        let per_replica = snapshot.profile.capacity_rps * self.cfg.target_utilization;
        let n = match planned {
            Some(r) if per_replica.is_finite() && per_replica > 0.0 => {
                let want = (r * (1.0 + self.cfg.headroom) / per_replica).ceil();
                self.bounds.clamp(want.min(f64::from(u32::MAX)) as u32)
            }
            // No usable rate and no history: hold.
            _ => self.bounds.clamp(cur),
        };
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        self.history.clear();
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::snap;
    use rlscale_core::Reason;

    fn at(t: f64, rate: f64) -> MetricsSnapshot {
        let mut s = snap(t, 4, 0);
        s.arrival_rate_1m = rate;
        s
    }

    const B: Bounds = Bounds { min: 1, max: 100 };

    #[test]
    fn reactive_until_a_period_of_history() {
        // capacity 3.0 × 0.8 = 2.4 req/s per replica; 24 req/s × 1.2 = 28.8 → 12 replicas.
        let mut p = Predictive::new(PredictiveConfig::default(), B);
        let d = p.decide(&at(0.0, 24.0), SimTime(0.0));
        assert_eq!((d.replicas, d.reason), (12, Reason::ScaleUp));
        let d = p.decide(&at(15.0, 2.4), SimTime(15.0));
        assert_eq!((d.replicas, d.reason), (2, Reason::ScaleDown));
    }

    #[test]
    fn anticipates_yesterdays_ramp_one_cold_start_ahead() {
        let cfg = PredictiveConfig {
            headroom: 0.0,
            target_utilization: 1.0,
            ..Default::default()
        };
        let mut p = Predictive::new(cfg, B);
        // Day 1: 3 req/s all day except 30 req/s from 12:00 for an hour.
        let mut t = 0.0;
        while t < 86_400.0 {
            let r = if (43_200.0..46_800.0).contains(&t) {
                30.0
            } else {
                3.0
            };
            p.decide(&at(t, r), SimTime(t));
            t += 15.0;
        }
        // Day 2 at 11:55:40: yesterday's ramp is beyond the lead (135 s cold start + one 60 s bucket).
        let t = 86_400.0 + 43_200.0 - 260.0;
        assert_eq!(p.decide(&at(t, 3.0), SimTime(t)).replicas, 1);
        // At 11:58 it is within: still 3 req/s now, but it asks for 10 replicas already.
        let t = 86_400.0 + 43_200.0 - 120.0;
        assert_eq!(p.decide(&at(t, 3.0), SimTime(t)).replicas, 10);
        // Today's rate above yesterday's wins (reactive floor).
        let t = 86_400.0 + 20_000.0;
        assert_eq!(p.decide(&at(t, 9.0), SimTime(t)).replicas, 3);
        // History stays bounded by one period.
        assert!(p.history.len() <= 86_400 / 60 + 3, "{}", p.history.len());
    }

    #[test]
    fn garbage_rate_holds() {
        let mut p = Predictive::new(PredictiveConfig::default(), Bounds { min: 2, max: 8 });
        let d = p.decide(&at(0.0, f64::NAN), SimTime(0.0));
        assert_eq!(d.replicas, 4);
        let d = p.decide(&at(15.0, 1e300), SimTime(15.0));
        assert_eq!(d.replicas, 8);
    }
}
