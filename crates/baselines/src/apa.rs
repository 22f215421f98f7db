//! AIBrix's APA PodAutoscaler strategy (`../shared/peers/AUTOSCALERS.md` §5).
//!
//! TODO(helper): implement per the spec. Config structs are fixed; keep their field names.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, Signal, decision, non_negative, positive};

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
    last: Option<u32>,
}

impl Apa {
    /// A new PodAutoscaler with no history.
    pub fn new(cfg: ApaConfig, bounds: Bounds) -> Self {
        Apa {
            cfg,
            bounds,
            last: None,
        }
    }
}

impl Policy for Apa {
    fn name(&self) -> String {
        "apa".into()
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
