//! `rlscale train`'s configuration file and the pieces of a run that are not the algorithm: the run
//! folder's name, the metrics line, and the export of the model file.

use std::path::{Path, PathBuf};

use rlscale_core::{ActionTable, FEATURE_NAMES, OBS_SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

use crate::env::TrainEnv;
use crate::ppo::{IterStats, Ppo, PpoConfig};
use crate::simenv::MixEntry;
use rlscale_runtime::model::{FORMAT, FORMAT_VERSION, ModelFile, ObsNorm};

/// The most other futures a causal label may hedge against (`teacher_futures`).
pub const MAX_TEACHER_FUTURES: usize = 8;

/// `configs/ppo.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Experiment name: part of the run folder's name and the exported model's default name.
    #[serde(default = "default_exp")]
    pub exp_name: String,
    /// Write a checkpoint every this many iterations (and always at the end or on Ctrl-C).
    #[serde(default = "default_every")]
    pub checkpoint_every: u64,
    /// Checkpoints kept.
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// The action table (`rlscale_core::ActionTable`): `deltas` (replica deltas −4…+8, the default),
    /// `utilization` (provision the 1-minute arrival rate at a target utilization of 0.95…0.4, or
    /// hold), or `table` (the eight entries of `table`). The exported model records it.
    #[serde(default = "default_actions")]
    pub actions: String,
    /// With `actions = "utilization"`: the seven target utilizations, in (0.05, 1], replacing the
    /// default `[0.95, 0.9, 0.85, 0.75, 0.65, 0.55, 0.4]` (hold stays action 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilizations: Option<Vec<f64>>,
    /// With `actions = "table"`: the eight actions, each `{ delta = n }` or
    /// `{ target_utilization = u }`, hold (`{ delta = 0 }`) at index 3; kinds may be mixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Vec<rlscale_core::ActionSpec>>,
    /// Start from this exported model (fine-tuning, `rlscale train --init`): its weights and observation
    /// normalisation. Its feature schema and action table must be this configuration's. Absent: a
    /// fresh network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
    /// The feature schema the network reads (`rlscale_core::features`): 1 (22 features, the shipped
    /// model's) or 2 (schema 1 plus the 15-minute and hourly peaks and the hourly mean of the arrival
    /// rate). The exported model records it; the runtime feeds it that schema's features.
    #[serde(default = "default_obs_schema")]
    pub obs_schema: u32,
    /// The teacher whose actions the imitation term (`ppo.bc_coef`) learns: `oracle` or `planner`
    /// (`crate::simenv::Teacher`). Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<crate::simenv::Teacher>,
    /// Causal labels: hedge the teacher's plan against this many other futures of the same variant
    /// (`crate::simenv::SimTrainEnv::with_teacher_futures`). 0 (the default): the episode's own
    /// hindsight plan.
    #[serde(default)]
    pub teacher_futures: usize,
    /// PPO hyperparameters (cleanrl's names).
    #[serde(default)]
    pub ppo: PpoConfig,
    /// The training mixture; scenario paths are relative to this file's folder.
    pub mix: Vec<MixEntry>,
    /// Evaluation during training on held-out scenarios and seeds.
    #[serde(default)]
    pub validation: Option<ValidationConfig>,
    /// The runtime's guardrails, applied to every action in training as the runtime applies them in
    /// a cluster (`[guardrails]`, the fields of `rlscale_runtime::Guardrails`). Absent: none.
    #[serde(default)]
    pub guardrails: Option<rlscale_runtime::Guardrails>,
}

/// `[validation]`: every `every` iterations the current network is exported and played greedily on
/// these scenarios and seeds (never used in training); the best by mean objective is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// Iterations between validations.
    pub every: u64,
    /// Scenario files (relative to the config file's folder).
    pub scenarios: Vec<PathBuf>,
    /// Control steps per validation episode.
    pub steps: u64,
    /// Episode seeds.
    pub seeds: Vec<u64>,
    /// Seconds into each scenario's workload the episodes start (default 0): a fine-tuning run
    /// validates on the end of its history's fitting window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset_s: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn default_exp() -> String {
    "ppo".into()
}

fn default_every() -> u64 {
    10
}

fn default_keep() -> usize {
    3
}

fn default_obs_schema() -> u32 {
    1
}

fn default_actions() -> String {
    "deltas".into()
}

impl TrainConfig {
    /// Read and check `path`; errors name the file and the field.
    pub fn load(path: &Path) -> Result<TrainConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for m in &mut cfg.mix {
            if m.scenario.is_relative() {
                m.scenario = dir.join(&m.scenario);
            }
            // Absolute, so the run folder's copy of the config resumes from anywhere.
            if let Ok(abs) = std::fs::canonicalize(&m.scenario) {
                m.scenario = abs;
            }
        }
        if let Some(v) = &mut cfg.validation {
            for sc in &mut v.scenarios {
                if sc.is_relative() {
                    *sc = dir.join(&*sc);
                }
                if let Ok(abs) = std::fs::canonicalize(&*sc) {
                    *sc = abs;
                }
            }
        }
        cfg.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Check the fields that are not PPO's.
    pub fn validate(&self) -> Result<(), String> {
        self.ppo.validate().map_err(|e| format!("ppo.{e}"))?;
        if let Some(v) = &self.validation
            && !(v.offset_s.is_finite() && v.offset_s >= 0.0)
        {
            return Err(format!(
                "validation.offset_s = {}: must be a number of seconds >= 0",
                v.offset_s
            ));
        }
        if rlscale_core::n_features(self.obs_schema).is_none() {
            return Err(format!(
                "obs_schema = {}: this build computes feature schemas 1 and {}",
                self.obs_schema,
                rlscale_core::OBS_SCHEMA_VERSION
            ));
        }
        if self.exp_name.is_empty()
            || !self
                .exp_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "exp_name = {:?}: use letters, digits, - and _",
                self.exp_name
            ));
        }
        match (self.teacher, self.ppo.bc_coef > 0.0) {
            (Some(_), false) => {
                return Err("teacher: needs ppo.bc_coef > 0 (the imitation term's weight)".into());
            }
            (None, true) => {
                return Err(format!(
                    "ppo.bc_coef = {}: needs a teacher (teacher = \"oracle\" or \"planner\")",
                    self.ppo.bc_coef
                ));
            }
            _ => {}
        }
        if self.teacher_futures > 0 && self.teacher.is_none() {
            return Err(format!(
                "teacher_futures = {}: needs a teacher (teacher = \"oracle\" or \"planner\")",
                self.teacher_futures
            ));
        }
        if self.teacher_futures > MAX_TEACHER_FUTURES {
            return Err(format!(
                "teacher_futures = {}: at most {MAX_TEACHER_FUTURES} (each is a plan of the episode at every reset)",
                self.teacher_futures
            ));
        }
        match (self.actions.as_str(), &self.table) {
            ("table", None) => {
                return Err("actions = \"table\": give the eight actions in `table`".into());
            }
            ("table", Some(t)) => {
                ActionTable::from_entries(t).map_err(|e| {
                    if e.index < t.len() {
                        format!("table[{}]: {}", e.index, e.message)
                    } else {
                        format!("table: {}", e.message)
                    }
                })?;
            }
            (other, Some(_)) => {
                return Err(format!(
                    "table: only with actions = \"table\" (actions = {other:?})"
                ));
            }
            (other, None) if ActionTable::by_name(other).is_none() => {
                return Err(format!(
                    "actions = {other:?}: use \"deltas\", \"utilization\" or \"table\""
                ));
            }
            _ => {}
        }
        if let Some(u) = &self.utilizations {
            if self.actions != "utilization" {
                return Err(format!(
                    "utilizations: only with actions = \"utilization\" (actions = {:?})",
                    self.actions
                ));
            }
            if u.len() != rlscale_core::N_ACTIONS - 1 {
                return Err(format!(
                    "utilizations = {u:?}: give {} values (action 3 holds)",
                    rlscale_core::N_ACTIONS - 1
                ));
            }
            ActionTable::from_entries(&self.action_table().0)
                .map_err(|e| format!("utilizations = {u:?}: {e}"))?;
        }
        if self.checkpoint_every == 0 {
            return Err("checkpoint_every = 0: must be at least 1".into());
        }
        if let Some(v) = &self.validation {
            if v.every == 0 || v.steps == 0 || v.scenarios.is_empty() || v.seeds.is_empty() {
                return Err(
                    "validation: needs every >= 1, steps >= 1, and at least one scenario and seed"
                        .into(),
                );
            }
            for (i, sc) in v.scenarios.iter().enumerate() {
                rlscale_sim::Scenario::load(sc, &rlscale_sim::Overrides::default())
                    .map_err(|e| format!("validation.scenarios[{i}]: {e}"))?;
            }
        }
        if let Some(g) = self.guardrails {
            g.validate().map_err(|e| e.to_string())?;
        }
        crate::simenv::check_mix(&self.mix)
    }

    /// The action table named by `actions`, with `utilizations` when given, or `table` (validated by
    /// [`TrainConfig::validate`]; the delta table otherwise).
    pub fn action_table(&self) -> ActionTable {
        if let Some(t) = self.table.as_deref().filter(|_| self.actions == "table") {
            return ActionTable::from_entries(t).unwrap_or_else(|_| ActionTable::deltas());
        }
        let mut table = ActionTable::by_name(&self.actions).unwrap_or_else(ActionTable::deltas);
        if let Some(u) = self
            .utilizations
            .as_deref()
            .filter(|u| u.len() == rlscale_core::N_ACTIONS - 1)
        {
            let others = (0..rlscale_core::N_ACTIONS).filter(|&i| i != rlscale_core::action::HOLD);
            for (i, &v) in others.zip(u) {
                table.0[i] = rlscale_core::ActionSpec::TargetUtilization(v);
            }
        }
        table
    }

    /// The mixture's short name: the scenario id when there is one, else `mixN`.
    pub fn mix_name(&self) -> String {
        match self.mix.as_slice() {
            [one] => one
                .scenario
                .file_stem()
                .map_or("mix1".into(), |s| s.to_string_lossy().into_owned()),
            many => format!("mix{}", many.len()),
        }
    }

    /// `runs/{mix}__{exp}__{seed}__{unix time}`.
    pub fn run_dir(&self, runs: &Path, unix_s: u64) -> PathBuf {
        runs.join(format!(
            "{}__{}__{}__{}",
            self.mix_name(),
            self.exp_name,
            self.ppo.seed,
            unix_s
        ))
    }
}

/// One JSONL line of metrics with cleanrl's names.
pub fn metrics_line(s: &IterStats) -> serde_json::Value {
    let mean = |f: &dyn Fn(&crate::env::EpisodeEnd) -> f64| {
        if s.episodes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(s.episodes.iter().map(f).sum::<f64>() / s.episodes.len() as f64)
        }
    };
    let stat = |k: &'static str| {
        move |e: &crate::env::EpisodeEnd| e.stats.iter().find(|(n, _)| *n == k).map_or(0.0, |x| x.1)
    };
    let num = |x: f64| {
        if x.is_finite() {
            serde_json::json!(x)
        } else {
            serde_json::Value::Null
        }
    };
    let mut line = serde_json::json!({
        "global_step": s.global_step,
        "iteration": s.iteration,
        "charts/episodic_return": mean(&|e| e.ret),
        "charts/episodic_length": mean(&|e| e.len as f64),
        "charts/episodes": s.episodes.len(),
        "charts/episodic_cost_usd": mean(&stat("cost_usd")),
        "charts/episodic_slo_attainment_pct": mean(&stat("slo_attainment_pct")),
        "charts/learning_rate": num(s.learning_rate),
        "charts/SPS": num(s.sps),
        "perf/update_s": num(s.update_s),
        "losses/value_loss": num(s.value_loss),
        "losses/policy_loss": num(s.policy_loss),
        "losses/entropy": num(s.entropy),
        "losses/old_approx_kl": num(s.old_approx_kl),
        "losses/approx_kl": num(s.approx_kl),
        "losses/clipfrac": num(s.clipfrac),
        "losses/explained_variance": num(s.explained_variance),
    });
    // The imitation term's figures, only in runs that have one.
    if s.bc_coef > 0.0 {
        line["charts/bc_coef"] = num(s.bc_coef);
        line["losses/bc_loss"] = num(s.bc_loss);
        line["charts/bc_agreement"] = num(s.bc_agreement);
    }
    // The temperature, only in runs that anneal it.
    if s.temperature != 1.0 {
        line["charts/temperature"] = num(s.temperature);
        line["losses/acting_entropy"] = num(s.acting_entropy);
    }
    // The split critic's figures, only in runs that have one.
    if s.lagrange_max.is_finite() {
        line["losses/explained_variance_viol"] = num(s.explained_variance_viol);
        line["charts/lagrange_max"] = num(s.lagrange_max);
    }
    line
}

/// A critic with one output: a split critic's heads, each times its return scale, summed (the
/// value in the reward's units); a one-head critic as it is.
fn one_value_head(
    mut layers: Vec<rlscale_runtime::Dense>,
    scales: &[f64],
) -> Vec<rlscale_runtime::Dense> {
    let Some(last) = layers.last_mut() else {
        return layers;
    };
    if last.d_out <= 1 || last.d_out != scales.len() {
        return layers;
    }
    let k = last.d_out;
    let weight = (0..last.d_in)
        .map(|i| {
            (0..k)
                .map(|h| f64::from(last.weight[i * k + h]) * scales[h])
                .sum::<f64>() as f32
        })
        .collect();
    let bias = vec![
        (0..k)
            .map(|h| f64::from(last.bias[h]) * scales[h])
            .sum::<f64>() as f32,
    ];
    *last = rlscale_runtime::Dense {
        d_in: last.d_in,
        d_out: 1,
        weight,
        bias,
    };
    layers
}

/// The model file of the learner's current network, with the action table its outputs index and
/// `provenance`.
pub fn export<E: TrainEnv>(
    ppo: &Ppo<E>,
    actions: &ActionTable,
    provenance: serde_json::Value,
) -> ModelFile {
    // The schema whose feature count is the network's input width (schema 1's 22 are a prefix of the
    // current one's).
    let schema = (1..=OBS_SCHEMA_VERSION)
        .find(|&v| rlscale_core::n_features(v) == Some(ppo.obs_dim))
        .unwrap_or(OBS_SCHEMA_VERSION);
    let n_in = ppo.obs_dim.min(FEATURE_NAMES.len());
    let mut m = ModelFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        obs_schema_version: schema,
        feature_names: FEATURE_NAMES[..n_in]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        obs_norm: if ppo.cfg.norm_obs {
            ObsNorm {
                mean: ppo.obs_rms.mean.clone(),
                var: ppo.obs_rms.var.clone(),
                epsilon: crate::norm::EPSILON,
                clip: crate::norm::CLIP,
            }
        } else {
            // The network saw raw observations: an exact identity.
            ObsNorm {
                mean: vec![0.0; ppo.obs_rms.mean.len()],
                var: vec![1.0; ppo.obs_rms.mean.len()],
                epsilon: 0.0,
                clip: f64::from(f32::MAX),
            }
        },
        feature_ranges: ppo.feature_ranges.clone(),
        actor: ppo.model.actor.to_dense(),
        critic: one_value_head(ppo.model.critic.to_dense(), &ppo.value_scales()),
        activation: "tanh".into(),
        action_deltas: Vec::new(),
        actions: Vec::new(),
        provenance,
    };
    m.set_action_table(actions);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped recipe loads and validates (its scenarios exist, its teacher settings agree), so
    /// that `rlscale train --config configs/<any>.toml` starts.
    #[test]
    fn every_shipped_recipe_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let cfg = TrainConfig::load(&p).unwrap_or_else(|e| panic!("{e}"));
                crate::simenv::check_mix(&cfg.mix)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 20, "{n} recipes in {}", dir.display());
        let causal = TrainConfig::load(&dir.join("ppo-planner-causal.toml")).unwrap();
        assert_eq!(causal.teacher_futures, 2);
        let mut bad = causal.clone();
        bad.teacher = None;
        bad.ppo.bc_coef = 0.0;
        bad.ppo.bc_only_iterations = 0;
        let e = bad.validate().unwrap_err();
        assert!(e.contains("teacher_futures = 2: needs a teacher"), "{e}");
    }
}
