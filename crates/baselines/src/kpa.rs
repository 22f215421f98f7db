//! Knative Serving's KPA (`../shared/peers/AUTOSCALERS.md` §3).
//!
//! TODO(helper): implement per the spec. Config structs are fixed; keep their field names.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive};

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
        positive("kpa.panic_threshold_percentage", self.panic_threshold_percentage)?;
        positive("kpa.max_scale_up_rate", self.max_scale_up_rate)?;
        positive("kpa.max_scale_down_rate", self.max_scale_down_rate)?;
        non_negative("kpa.scale_to_zero_grace_period_s", self.scale_to_zero_grace_period_s)?;
        non_negative("kpa.scale_down_delay_s", self.scale_down_delay_s)?;
        positive("kpa.tick_s", self.tick_s)?;
        Ok(())
    }
}

/// The KPA decider and scaler for one revision.
#[derive(Debug, Clone)]
pub struct Kpa {
    cfg: KpaConfig,
    bounds: Bounds,
    last: Option<u32>,
}

impl Kpa {
    /// A new decider with no data.
    pub fn new(cfg: KpaConfig, bounds: Bounds) -> Self {
        Kpa {
            cfg,
            bounds,
            last: None,
        }
    }
}

impl Policy for Kpa {
    fn name(&self) -> String {
        "kpa".into()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, _now: SimTime) -> Decision {
        let cur = self.last.unwrap_or_else(|| snapshot.current_replicas());
        let n = self.bounds.clamp(cur);
        self.last = Some(n);
        decision(cur, n)
    }

    fn reset(&mut self) {
        self.last = None;
    }
}
