//! The portable model file (`models/<name>.json`): everything the runtime needs to act, without burn.
//!
//! ```text
//! {
//!   "format": "rlscale-model",
//!   "format_version": 1,
//!   "obs_schema_version": 1,                 // rlscale_core::OBS_SCHEMA_VERSION
//!   "feature_names": ["log_load_1m", ...],   // rlscale_core::FEATURE_NAMES, in input order
//!   "obs_norm": { "mean": [...], "var": [...], "epsilon": 1e-8, "clip": 10.0 },  // frozen at export
//!   "feature_ranges": { "min": [...], "max": [...] },  // raw features seen in training
//!   "actor": [ { "d_in": 22, "d_out": 64, "weight": [...], "bias": [...] }, ... ],  // tanh between
//!   "critic": [ ... ],                       // same shape, one output (kept for diagnostics)
//!   "activation": "tanh",
//!   "action_deltas": [-4, -2, -1, 0, 1, 2, 4, 8],
//!   "provenance": { "config": {...}, "seed": 1, "git_revision": "...", "scenario_mix": [...],
//!                   "global_step": 123, "validation": {...} }
//! }
//! ```
//!
//! The policy is `argmax(actor(clip((x − mean) / sqrt(var + epsilon), −clip, clip)))` over the actions
//! the mask allows; `weight` is row-major `[d_in][d_out]` (`y = x · W + b`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::net::Dense;
use crate::norm::{CLIP, EPSILON, RunningMeanStd};

/// The `format` tag.
pub const FORMAT: &str = "rlscale-model";
/// The file format's version.
pub const FORMAT_VERSION: u32 = 1;

/// Frozen observation normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsNorm {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature variance.
    pub var: Vec<f64>,
    /// Added to the variance.
    pub epsilon: f64,
    /// Normalised values are clipped to ±clip.
    pub clip: f64,
}

impl ObsNorm {
    /// Freeze running statistics.
    pub fn from_rms(r: &RunningMeanStd) -> Self {
        ObsNorm {
            mean: r.mean.clone(),
            var: r.var.clone(),
            epsilon: EPSILON,
            clip: CLIP,
        }
    }
}

/// Per-feature range of the raw features seen in training (for out-of-distribution checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRanges {
    /// Smallest value seen.
    pub min: Vec<f32>,
    /// Largest value seen.
    pub max: Vec<f32>,
}

impl FeatureRanges {
    /// Empty ranges for `n` features.
    pub fn new(n: usize) -> Self {
        FeatureRanges {
            min: vec![f32::INFINITY; n],
            max: vec![f32::NEG_INFINITY; n],
        }
    }

    /// Widen by one raw observation.
    pub fn observe(&mut self, x: &[f32]) {
        for ((lo, hi), &v) in self.min.iter_mut().zip(self.max.iter_mut()).zip(x) {
            if v.is_finite() {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        }
    }
}

/// The model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The feature schema the model was trained on.
    pub obs_schema_version: u32,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Frozen observation normalisation.
    pub obs_norm: ObsNorm,
    /// Raw feature ranges seen in training.
    pub feature_ranges: FeatureRanges,
    /// Policy layers, tanh between them.
    pub actor: Vec<Dense>,
    /// Value layers, tanh between them.
    pub critic: Vec<Dense>,
    /// Hidden activation.
    pub activation: String,
    /// Replica delta of each action.
    pub action_deltas: Vec<i32>,
    /// Where the model came from.
    pub provenance: serde_json::Value,
}

impl ModelFile {
    /// Write atomically: a temporary file beside `path`, then a rename.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        crate::atomic_write(path, text.as_bytes())
    }
}
