//! rlscale's decision runtime: loads a trained model file without burn and turns a
//! [`rlscale_core::MetricsSnapshot`] into a replica decision.
//!
//! - [`model`]: the model file, its format, a loader that refuses anything it cannot trust (another
//!   format or schema, bad shapes, non-finite numbers), and the plain-Rust forward pass;
//! - [`pipeline`]: the [`Runtime`], one function from a snapshot and the time to a decision: input
//!   checks, features, out-of-distribution checks, the masked policy, guardrails, and the fallback law
//!   whenever the model or its inputs cannot be trusted;
//! - [`ModelPolicy`]: the bare model as a policy, without checks or guardrails (what training sees);
//! - [`decision_log`]: the lines of the controller's decision log, one definition for its writer and
//!   its reader.
#![warn(missing_docs)]

pub mod decision_log;
pub mod model;
pub mod pipeline;

use std::sync::Arc;

use rlscale_core::{
    ActionSpace, Decision, MetricsSnapshot, Policy, Reason, SimTime, Source, features,
};

pub use model::{Dense, LoadError, ModelFile};
pub use pipeline::{Guard, Guardrails, Note, OodConfig, Outcome, Runtime, RuntimeConfig};

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed over
/// `path`, so a crash leaves either the old file or the new one, never half of one.
pub fn atomic_write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// A model as a policy: features of the snapshot, the masked argmax of the logits, applied through the
/// model's action table (a replica delta to the target it asked for last, the current replicas on the
/// first call; or a target utilization of the snapshot's arrival rate), within `[min, max]`.
#[derive(Debug, Clone)]
pub struct ModelPolicy {
    model: Arc<ModelFile>,
    table: rlscale_core::ActionTable,
    space: ActionSpace,
    name: String,
    target: Option<u32>,
}

impl ModelPolicy {
    /// A policy from `model` for a target bounded by `[min, max]`, named `name` in tables.
    pub fn new(model: Arc<ModelFile>, min: u32, max: u32, name: impl Into<String>) -> Self {
        ModelPolicy {
            table: model.action_table(),
            model,
            space: ActionSpace::new(min.min(max), max),
            name: name.into(),
            target: None,
        }
    }

    /// The action index the model picks for `snapshot` at replica count `current`: the masked argmax.
    pub fn action(&self, snapshot: &MetricsSnapshot, current: u32) -> usize {
        self.choose(snapshot, current, argmax_masked)
    }

    /// The action `pick` chooses from the logits of `snapshot` and the valid-action mask at replica
    /// count `current` (the hold action when it chooses none).
    fn choose(
        &self,
        snapshot: &MetricsSnapshot,
        current: u32,
        pick: impl FnOnce(&[f32], &[bool]) -> Option<usize>,
    ) -> usize {
        let obs = features(snapshot);
        let logits = self.model.logits(&obs.0[..self.model.n_features()]);
        let mask = self.table.mask(&self.space, current);
        pick(&logits, &mask).unwrap_or(rlscale_core::action::HOLD)
    }

    /// Decide as [`Policy::decide`] does, with the action chosen by `pick` from the logits and the
    /// valid-action mask instead of their argmax (e.g. a draw from their softmax, as in training).
    pub fn decide_with(
        &mut self,
        snapshot: &MetricsSnapshot,
        pick: impl FnOnce(&[f32], &[bool]) -> Option<usize>,
    ) -> Decision {
        let current = self
            .space
            .clamp(self.target.unwrap_or_else(|| snapshot.current_replicas()));
        let a = self.choose(snapshot, current, pick);
        let replicas = self.table.apply(&self.space, current, a, snapshot);
        self.target = Some(replicas);
        Decision {
            replicas,
            source: Source::Model,
            reason: match replicas.cmp(&current) {
                std::cmp::Ordering::Greater => Reason::ScaleUp,
                std::cmp::Ordering::Less => Reason::ScaleDown,
                std::cmp::Ordering::Equal => Reason::Hold,
            },
        }
    }
}

/// The valid action with the highest logit (the first on ties); `None` when no valid logit is above
/// minus infinity (NaN included).
fn argmax_masked(logits: &[f32], mask: &[bool]) -> Option<usize> {
    let mut best = None;
    let mut best_l = f32::NEG_INFINITY;
    for (a, (&l, &ok)) in logits.iter().zip(mask.iter()).enumerate() {
        if ok && l > best_l {
            best = Some(a);
            best_l = l;
        }
    }
    best
}

impl Policy for ModelPolicy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, _now: SimTime) -> Decision {
        self.decide_with(snapshot, argmax_masked)
    }

    fn reset(&mut self) {
        self.target = None;
    }
}
