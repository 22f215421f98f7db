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
//!   "action_deltas": [-4, -2, -1, 0, 1, 2, 4, 8],  // the delta table, or instead:
//!   "actions": [{"target_utilization": 0.95}, ..., {"delta": 0}, ...],  // any other table
//!   "provenance": { "config": {...}, "seed": 1, "git_revision": "...", "scenario_mix": [...],
//!                   "global_step": 123, "validation": {...} }
//! }
//! ```
//!
//! The policy is `argmax(actor(clip((x − mean) / sqrt(var + epsilon), −clip, clip)))` over the actions
//! the mask allows; `weight` is row-major `[d_in][d_out]` (`y = x · W + b`). The chosen action is applied
//! through the file's action table ([`ModelFile::action_table`]): `action_deltas` for the replica-delta
//! table (every file before the demand-relative table existed), `actions` for any other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlscale_core::{
    ACTION_DELTAS, ActionSpec, ActionTable, FEATURE_NAMES, N_ACTIONS, N_FEATURES,
    OBS_SCHEMA_VERSION, n_features,
};
use serde::{Deserialize, Serialize};

/// One dense layer as plain numbers: `y = x · weight + bias`, `weight[i][o]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    /// Input size.
    pub d_in: usize,
    /// Output size.
    pub d_out: usize,
    /// Row-major `[d_in][d_out]`.
    pub weight: Vec<f32>,
    /// `[d_out]`.
    pub bias: Vec<f32>,
}

/// The `format` tag.
pub const FORMAT: &str = "rlscale-model";
/// The file format's version.
pub const FORMAT_VERSION: u32 = 1;

/// Frozen observation normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Per-feature range of the raw features seen in training (for out-of-distribution checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Replica delta of each action, when the table is [`ActionTable::deltas`] (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action_deltas: Vec<i32>,
    /// Any other action table, entry by entry (empty for the delta table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionSpec>,
    /// Where the model came from.
    pub provenance: serde_json::Value,
}

/// Why a model file was refused. Each failure is its own variant, and names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{path}: cannot read the model file: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// Not JSON of the model-file shape.
    #[error("{path}: not an rlscale model file: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Another format, or another version of ours.
    #[error(
        "{path}: format `{format}` version {version}; this build reads `{FORMAT}` version {FORMAT_VERSION}"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// Its `format`.
        format: String,
        /// Its `format_version`.
        version: u32,
    },
    /// Trained on another feature schema: refused, never silently misread.
    #[error(
        "{path}: trained on feature schema {found}; this build computes schemas 1 and {OBS_SCHEMA_VERSION} ({detail}). Migration: a model of another schema cannot be converted; retrain it with `rlscale train` (its `obs_schema` setting)"
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its `obs_schema_version`.
        found: u32,
        /// What differs.
        detail: String,
    },
    /// Layer or vector sizes that do not chain.
    #[error("{path}: {field}: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The field, e.g. `actor[1].weight`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// NaN or infinite numbers.
    #[error("{path}: {field}[{index}] is {value}, not a finite number")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// The first bad index.
        index: usize,
        /// The value.
        value: f64,
    },
}

impl ModelFile {
    /// A model whose actor is one layer, `logits = weight·x + bias` (`weight` row-major, features ×
    /// actions), with identity normalisation (mean 0, variance 1), training ranges of ±100 on every
    /// feature, a zero critic, and empty provenance. For tests, examples and fuzzing: a policy whose
    /// choice is easy to predict. Adjust the public fields for other normalisations or ranges.
    pub fn one_layer(weight: Vec<f32>, bias: Vec<f32>) -> ModelFile {
        ModelFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            obs_schema_version: OBS_SCHEMA_VERSION,
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            obs_norm: ObsNorm {
                mean: vec![0.0; N_FEATURES],
                var: vec![1.0; N_FEATURES],
                epsilon: 1e-8,
                clip: 10.0,
            },
            feature_ranges: FeatureRanges {
                min: vec![-100.0; N_FEATURES],
                max: vec![100.0; N_FEATURES],
            },
            actor: vec![Dense {
                d_in: N_FEATURES,
                d_out: N_ACTIONS,
                weight,
                bias,
            }],
            critic: vec![Dense {
                d_in: N_FEATURES,
                d_out: 1,
                weight: vec![0.0; N_FEATURES],
                bias: vec![0.0],
            }],
            activation: "tanh".into(),
            action_deltas: ACTION_DELTAS.to_vec(),
            actions: Vec::new(),
            provenance: serde_json::json!({}),
        }
    }

    /// How many features (a prefix of `rlscale_core::FEATURE_NAMES`) the model reads: its schema's.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// The action table this model's outputs index. Valid after [`ModelFile::validate`]; a file that
    /// was not validated and holds no usable table gets the delta table.
    pub fn action_table(&self) -> ActionTable {
        if self.actions.is_empty() {
            ActionTable::deltas()
        } else {
            ActionTable::from_entries(&self.actions).unwrap_or_else(|_| ActionTable::deltas())
        }
    }

    /// Record `table` as this model's action table: `action_deltas` for the delta table (so such files
    /// are unchanged), `actions` for any other.
    pub fn set_action_table(&mut self, table: &ActionTable) {
        if *table == ActionTable::deltas() {
            self.action_deltas = ACTION_DELTAS.to_vec();
            self.actions.clear();
        } else {
            self.action_deltas.clear();
            self.actions = table.0.to_vec();
        }
    }

    /// A one-layer model that always prefers action `index` (see [`ModelFile::one_layer`]).
    pub fn always(index: usize) -> ModelFile {
        let mut bias = vec![0.0; N_ACTIONS];
        if let Some(b) = bias.get_mut(index) {
            *b = 1.0;
        }
        ModelFile::one_layer(vec![0.0; N_FEATURES * N_ACTIONS], bias)
    }

    /// Write atomically: a temporary file beside `path`, synced, then renamed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        crate::atomic_write(path, text.as_bytes())
    }

    /// Read and validate `path` (see [`ModelFile::validate`]).
    pub fn load(path: &Path) -> Result<ModelFile, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_json(&text, path)
    }

    /// Parse and validate a model file's text; `path` is used in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<ModelFile, LoadError> {
        // Check the format tag first, so another file type gets the clearer error.
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            format_version: Option<u32>,
        }
        let parse = |e: serde_json::Error| LoadError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let head: Head = serde_json::from_str(text).map_err(parse)?;
        let (format, version) = (
            head.format.unwrap_or_default(),
            head.format_version.unwrap_or(0),
        );
        if format != FORMAT || version != FORMAT_VERSION {
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                format,
                version,
            });
        }
        let m: ModelFile = serde_json::from_str(text).map_err(parse)?;
        m.validate(path)?;
        Ok(m)
    }

    /// Check the schema (version, and names in order, equal to `rlscale_core`'s), the layer shapes and
    /// that every number is finite.
    pub fn validate(&self, path: &Path) -> Result<(), LoadError> {
        let p = || path.to_path_buf();
        let Some(n_in) = n_features(self.obs_schema_version) else {
            return Err(LoadError::Schema {
                path: p(),
                found: self.obs_schema_version,
                detail: "feature schema version unknown to this build, which reads schemas 1 and 2"
                    .into(),
            });
        };
        if self.feature_names.len() != n_in
            || self
                .feature_names
                .iter()
                .zip(FEATURE_NAMES)
                .any(|(a, b)| a.as_str() != b)
        {
            let first = (0..n_in.max(self.feature_names.len())).find(|&i| {
                self.feature_names.get(i).map(String::as_str)
                    != FEATURE_NAMES[..n_in].get(i).copied()
            });
            return Err(LoadError::Schema {
                path: p(),
                found: self.obs_schema_version,
                detail: match first {
                    Some(i) => format!(
                        "feature {i} is {:?}, expected {:?}",
                        self.feature_names.get(i),
                        FEATURE_NAMES[..n_in].get(i)
                    ),
                    None => "feature names differ".into(),
                },
            });
        }
        let shape = |field: String, message: String| LoadError::Shape {
            path: p(),
            field,
            message,
        };
        match (self.action_deltas.is_empty(), self.actions.is_empty()) {
            (false, false) => {
                return Err(shape(
                    "actions".into(),
                    "both `action_deltas` and `actions` are given; a model has one table".into(),
                ));
            }
            (true, true) => {
                return Err(shape(
                    "action_deltas".into(),
                    "missing: give `action_deltas` (the delta table) or `actions`".into(),
                ));
            }
            (false, true) if self.action_deltas != ACTION_DELTAS => {
                return Err(shape(
                    "action_deltas".into(),
                    format!("{:?}, expected {ACTION_DELTAS:?}", self.action_deltas),
                ));
            }
            (true, false) => {
                if let Err(e) = ActionTable::from_entries(&self.actions) {
                    return Err(shape(format!("actions[{}]", e.index), e.message));
                }
            }
            _ => {}
        }
        if self.activation != "tanh" {
            return Err(shape(
                "activation".into(),
                format!("`{}`, only `tanh` is supported", self.activation),
            ));
        }
        let finite = |field: &str, xs: &mut dyn Iterator<Item = f64>| -> Result<(), LoadError> {
            for (index, value) in xs.enumerate() {
                if !value.is_finite() {
                    return Err(LoadError::NonFinite {
                        path: p(),
                        field: field.to_string(),
                        index,
                        value,
                    });
                }
            }
            Ok(())
        };
        let n = &self.obs_norm;
        for (field, len) in [
            ("obs_norm.mean", n.mean.len()),
            ("obs_norm.var", n.var.len()),
            ("feature_ranges.min", self.feature_ranges.min.len()),
            ("feature_ranges.max", self.feature_ranges.max.len()),
        ] {
            if len != n_in {
                return Err(shape(
                    field.into(),
                    format!("{len} values, expected {n_in}"),
                ));
            }
        }
        finite("obs_norm.mean", &mut n.mean.iter().copied())?;
        finite("obs_norm.var", &mut n.var.iter().copied())?;
        // var + epsilon is a divisor under a square root: it must be positive for every feature.
        if !(n.epsilon.is_finite() && n.epsilon >= 0.0 && n.clip.is_finite() && n.clip > 0.0) {
            return Err(shape(
                "obs_norm".into(),
                format!(
                    "epsilon = {}, clip = {}: need epsilon >= 0 and 0 < clip < inf",
                    n.epsilon, n.clip
                ),
            ));
        }
        if let Some((i, v)) = n
            .var
            .iter()
            .enumerate()
            .find(|(_, v)| !(**v >= 0.0 && **v + n.epsilon > 0.0))
        {
            return Err(shape(
                format!("obs_norm.var[{i}]"),
                format!(
                    "{v} with epsilon {}: var must be >= 0 and var + epsilon > 0",
                    n.epsilon
                ),
            ));
        }
        for (name, layers, out) in [
            ("actor", &self.actor, N_ACTIONS),
            ("critic", &self.critic, 1),
        ] {
            if layers.is_empty() {
                return Err(shape(name.into(), "no layers".into()));
            }
            let mut d = n_in;
            for (i, l) in layers.iter().enumerate() {
                let f = format!("{name}[{i}]");
                if l.d_in != d {
                    return Err(shape(f, format!("d_in {} but the input has {d}", l.d_in)));
                }
                if l.weight.len() != l.d_in * l.d_out || l.bias.len() != l.d_out {
                    return Err(shape(
                        f,
                        format!(
                            "weight has {} values and bias {}, expected {} × {} and {}",
                            l.weight.len(),
                            l.bias.len(),
                            l.d_in,
                            l.d_out,
                            l.d_out
                        ),
                    ));
                }
                finite(
                    &format!("{f}.weight"),
                    &mut l.weight.iter().map(|&x| f64::from(x)),
                )?;
                finite(
                    &format!("{f}.bias"),
                    &mut l.bias.iter().map(|&x| f64::from(x)),
                )?;
                d = l.d_out;
            }
            if d != out {
                return Err(shape(
                    format!("{name}[{}].d_out", layers.len() - 1),
                    format!("{d}, expected {out}"),
                ));
            }
        }
        Ok(())
    }

    /// Normalise one raw observation as in training.
    pub fn normalize(&self, x: &[f32]) -> Vec<f32> {
        let n = &self.obs_norm;
        x.iter()
            .zip(&n.mean)
            .zip(&n.var)
            .map(|((&v, &m), &s)| {
                ((f64::from(v) - m) / (s + n.epsilon).sqrt()).clamp(-n.clip, n.clip) as f32
            })
            .collect()
    }

    /// The policy's logits for one raw observation.
    pub fn logits(&self, raw: &[f32]) -> Vec<f32> {
        mlp(&self.actor, self.normalize(raw))
    }

    /// The value estimate for one raw observation.
    pub fn value(&self, raw: &[f32]) -> f32 {
        mlp(&self.critic, self.normalize(raw))[0]
    }
}

/// The actor prepared for repeated decisions: the normalisation's standard deviations computed once,
/// and scratch buffers reused, so a forward pass allocates nothing. It computes exactly what
/// [`ModelFile::logits`] does (same operations in the same order; tested bit for bit).
///
/// The weights are not copied: every `PreparedActor` of one model shares its [`ModelFile`] through an
/// `Arc`, and owns only its standard deviations and two scratch vectors (a few hundred bytes). A
/// controller running 1000 objects on one model keeps one copy of the weights, not 1000 (24.6 KB each
/// for the shipped model).
#[derive(Debug, Clone)]
pub struct PreparedActor {
    model: Arc<ModelFile>,
    std: Vec<f64>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl PreparedActor {
    /// Prepare `m`'s actor (sharing `m`).
    pub fn new(m: Arc<ModelFile>) -> Self {
        let n = &m.obs_norm;
        let width = m
            .actor
            .iter()
            .map(|l| l.d_out.max(l.d_in))
            .max()
            .unwrap_or(0);
        PreparedActor {
            std: n.var.iter().map(|v| (v + n.epsilon).sqrt()).collect(),
            a: Vec::with_capacity(width),
            b: Vec::with_capacity(width),
            model: m,
        }
    }

    /// The model this actor runs.
    pub fn model(&self) -> &Arc<ModelFile> {
        &self.model
    }

    /// The logits for one raw observation.
    pub fn logits(&mut self, raw: &[f32]) -> &[f32] {
        let m = &*self.model;
        let clip = m.obs_norm.clip;
        self.a.clear();
        self.a.extend(
            raw.iter()
                .zip(&m.obs_norm.mean)
                .zip(&self.std)
                .map(|((&v, &mu), &s)| ((f64::from(v) - mu) / s).clamp(-clip, clip) as f32),
        );
        let last = m.actor.len().saturating_sub(1);
        for (k, l) in m.actor.iter().enumerate() {
            self.b.clear();
            self.b.extend_from_slice(&l.bias);
            for (i, &xi) in self.a.iter().enumerate() {
                let row = &l.weight[i * l.d_out..(i + 1) * l.d_out];
                for (yo, &w) in self.b.iter_mut().zip(row) {
                    *yo += xi * w;
                }
            }
            if k < last {
                self.b.iter_mut().for_each(|v| *v = tanh_approx(*v));
            }
            std::mem::swap(&mut self.a, &mut self.b);
        }
        &self.a
    }
}

/// `tanh` as a rational function (the [-7.9, 7.9]-clamped 13/6 minimax approximation Eigen uses for
/// float tanh): max absolute error 4e-7 against the exact value (f32's own `tanh` is within 1e-7),
/// branch-free so a layer's activations vectorise, and about 3× faster than `f32::tanh`, which
/// dominated the forward pass. The equivalence test against burn's exact tanh holds within 1e-5.
#[inline]
pub fn tanh_approx(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_188e-13;
    p = p * x2 - 8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619e-4;
    p = p * x2 + 4.893_524_6e-3;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    x * p / q
}

/// A tanh MLP over plain vectors: tanh after every layer but the last.
pub fn mlp(layers: &[Dense], mut x: Vec<f32>) -> Vec<f32> {
    let last = layers.len().saturating_sub(1);
    for (k, l) in layers.iter().enumerate() {
        let mut y = l.bias.clone();
        for (i, &xi) in x.iter().enumerate() {
            let row = &l.weight[i * l.d_out..(i + 1) * l.d_out];
            for (yo, &w) in y.iter_mut().zip(row) {
                *yo += xi * w;
            }
        }
        if k < last {
            y.iter_mut().for_each(|v| *v = tanh_approx(*v));
        }
        x = y;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid model file: 22 → 4 → 8 actor, 22 → 1 critic, identity normalisation.
    fn good() -> ModelFile {
        let layer = |d_in: usize, d_out: usize| Dense {
            d_in,
            d_out,
            weight: (0..d_in * d_out)
                .map(|i| (i % 7) as f32 * 0.01 - 0.03)
                .collect(),
            bias: vec![0.0; d_out],
        };
        ModelFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            obs_schema_version: OBS_SCHEMA_VERSION,
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            obs_norm: ObsNorm {
                mean: vec![0.0; N_FEATURES],
                var: vec![1.0; N_FEATURES],
                epsilon: 1e-8,
                clip: 10.0,
            },
            feature_ranges: FeatureRanges {
                min: vec![0.0; N_FEATURES],
                max: vec![1.0; N_FEATURES],
            },
            actor: vec![layer(N_FEATURES, 4), layer(4, N_ACTIONS)],
            critic: vec![layer(N_FEATURES, 1)],
            activation: "tanh".into(),
            action_deltas: ACTION_DELTAS.to_vec(),
            actions: Vec::new(),
            provenance: serde_json::json!({}),
        }
    }

    fn load_text(m: &serde_json::Value) -> Result<ModelFile, LoadError> {
        ModelFile::from_json(&m.to_string(), Path::new("m.json"))
    }

    #[test]
    fn each_failure_is_its_own_clear_error() {
        let ok = serde_json::to_value(good()).unwrap();
        assert!(load_text(&ok).is_ok());
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = ok.clone();
            f(&mut v);
            load_text(&v).unwrap_err()
        };
        let e = ModelFile::from_json("{not json", Path::new("m.json")).unwrap_err();
        assert!(matches!(e, LoadError::Parse { .. }), "{e}");
        let e = with(&|v| v["format"] = "onnx".into());
        assert!(
            matches!(e, LoadError::Format { .. }) && e.to_string().contains("`onnx`"),
            "{e}"
        );
        let e = with(&|v| v["format_version"] = 2.into());
        assert!(matches!(e, LoadError::Format { version: 2, .. }), "{e}");
        let e = with(&|v| v["obs_schema_version"] = 0.into());
        assert!(matches!(e, LoadError::Schema { found: 0, .. }), "{e}");
        assert!(
            e.to_string().contains("retrain it with `rlscale train`"),
            "{e}"
        );
        // Schema 1 with schema 2's feature list (or the reverse) is refused: the count is the schema's.
        let e = with(&|v| v["obs_schema_version"] = 1.into());
        assert!(
            matches!(e, LoadError::Schema { found: 1, .. }) && e.to_string().contains("feature 22"),
            "{e}"
        );
        let e = with(&|v| v["feature_names"][3] = "queue".into());
        assert!(
            matches!(e, LoadError::Schema { .. }) && e.to_string().contains("feature 3"),
            "{e}"
        );
        let e = with(&|v| v["actor"][1]["d_in"] = 5.into());
        assert!(
            matches!(e, LoadError::Shape { .. }) && e.to_string().contains("actor[1]"),
            "{e}"
        );
        let e = with(&|v| {
            v["critic"][0]["bias"] = serde_json::json!([0.0, 0.0]);
        });
        assert!(matches!(e, LoadError::Shape { .. }), "{e}");
        // A zero variance with a zero epsilon would divide by zero.
        let e = with(&|v| {
            v["obs_norm"]["var"][4] = 0.0.into();
            v["obs_norm"]["epsilon"] = 0.0.into();
        });
        assert!(
            matches!(e, LoadError::Shape { .. }) && e.to_string().contains("obs_norm.var[4]"),
            "{e}"
        );
        let e = with(&|v| v["obs_norm"]["clip"] = 0.0.into());
        assert!(e.to_string().contains("clip = 0"), "{e}");
        // JSON has no NaN or infinity: an out-of-range number is a parse error naming the column...
        let e = with(&|v| v["actor"][0]["weight"][5] = serde_json::json!(1e300));
        assert!(
            matches!(e, LoadError::Parse { .. }) && e.to_string().contains("column"),
            "{e}"
        );
        // ...and a model built in memory (the trainer's export) is checked for NaN before use.
        let mut m = good();
        m.actor[0].weight[5] = f32::NAN;
        let e = m.validate(Path::new("m.json")).unwrap_err();
        assert!(
            matches!(e, LoadError::NonFinite { index: 5, .. })
                && e.to_string().contains("actor[0].weight[5]"),
            "{e}"
        );
        // The action table: the delta one, exactly, or one valid `actions` table, never both.
        let e = with(&|v| v["action_deltas"][0] = (-3).into());
        assert!(e.to_string().contains("action_deltas"), "{e}");
        let e = with(&|v| v["actions"] = serde_json::to_value(ActionTable::utilization()).unwrap());
        assert!(e.to_string().contains("both"), "{e}");
        let e = with(&|v| {
            v.as_object_mut().unwrap().remove("action_deltas");
        });
        assert!(e.to_string().contains("missing"), "{e}");
        let e = with(&|v| {
            v.as_object_mut().unwrap().remove("action_deltas");
            v["actions"] = serde_json::to_value(ActionTable::utilization()).unwrap();
            v["actions"][6]["target_utilization"] = 0.0.into();
        });
        assert!(
            matches!(e, LoadError::Shape { .. }) && e.to_string().contains("actions[6]"),
            "{e}"
        );
        let e = ModelFile::load(Path::new("/nonexistent/model.json")).unwrap_err();
        assert!(
            matches!(e, LoadError::Io { .. }) && e.to_string().contains("/nonexistent/model.json"),
            "{e}"
        );
    }

    /// A model carries its action table: the delta table writes `action_deltas` as every earlier
    /// file did; another table writes `actions`, and both load back to the same table.
    #[test]
    fn the_action_table_round_trips_through_the_file() {
        let mut m = good();
        assert_eq!(m.action_table(), ActionTable::deltas());
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"action_deltas\"") && !text.contains("\"actions\""));
        m.set_action_table(&ActionTable::utilization());
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("action_deltas") && text.contains("target_utilization"));
        let back = ModelFile::from_json(&text, Path::new("m.json")).unwrap();
        assert_eq!(back.action_table(), ActionTable::utilization());
        m.set_action_table(&ActionTable::deltas());
        assert_eq!(m, good());
    }

    #[test]
    fn tanh_approx_is_within_4e_7_everywhere() {
        let mut worst = 0.0f64;
        for i in 0..=400_000 {
            let x = -12.0 + 24.0 * f64::from(i) / 400_000.0;
            let xf = x as f32;
            let e = (f64::from(tanh_approx(xf)) - f64::from(xf).tanh()).abs();
            worst = worst.max(e);
        }
        assert!(worst < 4.5e-7, "max error {worst:e}");
        assert_eq!(tanh_approx(0.0), 0.0);
        assert!((tanh_approx(1e-6) - 1e-6).abs() < 1e-12);
        assert!((tanh_approx(f32::MAX) - 1.0).abs() < 1e-6);
        assert!((tanh_approx(f32::NEG_INFINITY) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_prepared_actor_computes_the_same_logits_bit_for_bit() {
        let mut m = good();
        m.obs_norm.mean = (0..N_FEATURES).map(|i| i as f64 * 0.1).collect();
        m.obs_norm.var = (0..N_FEATURES).map(|i| 0.5 + i as f64).collect();
        let mut p = PreparedActor::new(Arc::new(m.clone()));
        for k in 0..50 {
            let x: Vec<f32> = (0..N_FEATURES)
                .map(|i| ((i * 7 + k * 13) % 17) as f32 * 0.7 - 4.0)
                .collect();
            let want = m.logits(&x);
            let got = p.logits(&x);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn forward_pass_by_hand() {
        let mut m = good();
        // One layer per head, so the output is x·W + b with no activation.
        m.actor = vec![Dense {
            d_in: N_FEATURES,
            d_out: N_ACTIONS,
            weight: (0..N_FEATURES * N_ACTIONS)
                .map(|i| {
                    if i % N_ACTIONS == i / N_ACTIONS % N_ACTIONS {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
            bias: (0..N_ACTIONS).map(|o| o as f32).collect(),
        }];
        let mut x = vec![0.0f32; N_FEATURES];
        x[2] = 0.5; // feeds output 2
        let l = m.logits(&x);
        assert!((l[2] - (2.0 + 0.5)).abs() < 1e-6, "{l:?}");
        assert!((l[3] - 3.0).abs() < 1e-6);
        // Normalisation clips.
        m.obs_norm.mean[2] = 0.0;
        m.obs_norm.var[2] = 1e-6;
        x[2] = 1.0;
        assert_eq!(m.normalize(&x)[2], 10.0);
    }
}
