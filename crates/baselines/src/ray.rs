//! Ray Serve's default autoscaling policy (`../shared/peers/AUTOSCALERS.md` §4).
//!
//! TODO(helper): implement per the spec. Config structs are fixed; keep their field names.

use rlscale_core::{Decision, MetricsSnapshot, Policy, SimTime};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError, decision, non_negative, positive};

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

/// Ray Serve's autoscaling state for one deployment.
#[derive(Debug, Clone)]
pub struct Ray {
    cfg: RayConfig,
    bounds: Bounds,
    last: Option<u32>,
}

impl Ray {
    /// A new deployment state with no history.
    pub fn new(cfg: RayConfig, bounds: Bounds) -> Self {
        Ray {
            cfg,
            bounds,
            last: None,
        }
    }
}

impl Policy for Ray {
    fn name(&self) -> String {
        "ray".into()
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
