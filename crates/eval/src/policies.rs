//! Policy names as users write them (`hpa`, `hpa-tuned`, `static:8`, `oracle`, `model:PATH`), and
//! building each for a scenario.
//!
//! * A law name (`hpa`, `keda`, `kpa`, `ray`, `apa`, `static`, `predictive`) is that law with the
//!   peers' documented defaults.
//! * `static:N` holds N replicas.
//! * Any other name is a named baseline file `configs/baselines/<name>.toml`, such as the `*-tuned`
//!   files `rlscale tune` writes: a base config and one tuned knob value per scenario.
//! * `oracle` plays the hindsight schedule of [`crate::oracle`].
//! * `model:PATH` is a trained model file, played by the whole runtime (`rlscale_runtime::Runtime`:
//!   input checks, out-of-distribution checks, the model, guardrails and the fallback law, all at
//!   their defaults with the scenario's replica bounds), so the numbers are those of the real path.
//! * `model-only:PATH` is the bare network (`rlscale_runtime::ModelPolicy`: masked argmax, no checks,
//!   guardrails or fallback), to see what the runtime's safety layer adds. Never what a cluster runs.
//! * `model-sampled:PATH` is the bare network acting as it does in training: an action drawn from the
//!   masked softmax of its logits ([`SampledModelPolicy`], seeded by the episode's seed). Beside
//!   `model-only:PATH` it measures what the exploration noise PPO learns under costs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlscale_baselines::{BaselineConfig, Bounds, StaticConfig};
use rlscale_core::Policy;
use rlscale_sim::Scenario;
use serde::{Deserialize, Serialize};

use crate::oracle::{self, OracleConfig, OraclePolicy};
use crate::planner::{self, PlannerConfig};
use crate::tune::TunedEntry;

/// Errors naming what the user wrote.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A name that is neither a law, nor `static:N`, nor `oracle`, nor a file in the configs folder.
    #[error(
        "unknown policy `{name}`: not one of {laws}, static:N, oracle, model:PATH, and {path} does not exist"
    )]
    Unknown {
        /// What was written.
        name: String,
        /// The laws.
        laws: String,
        /// Where a named baseline file was looked for.
        path: PathBuf,
    },
    /// The same policy twice in one list.
    #[error("policy `{0}` is listed twice")]
    Duplicate(String),
    /// `static:x`.
    #[error("policy `{0}`: static:N needs a whole number of replicas")]
    BadStatic(String),
    /// `model:PATH` whose file cannot be loaded.
    #[error("policy `{policy}`: {source}")]
    Model {
        /// What was written.
        policy: String,
        /// Why the model file was refused.
        source: rlscale_runtime::LoadError,
    },
    /// A named baseline file that cannot be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the field when known.
        message: String,
    },
    /// `static:N` outside the scenario's replica bounds.
    #[error(
        "policy `{policy}` is outside scenario {scenario}'s replica bounds [{min}, {max}] ({path})"
    )]
    OutOfBounds {
        /// What was written.
        policy: String,
        /// The scenario id.
        scenario: String,
        /// Its bounds.
        min: u32,
        /// Its bounds.
        max: u32,
        /// The scenario file.
        path: PathBuf,
    },
    /// A tuned file without an entry for this scenario.
    #[error(
        "{path} has no tuned setting for scenario {scenario}; run `rlscale tune --baseline {law} --scenarios {scenario}`"
    )]
    NotTuned {
        /// The file.
        path: PathBuf,
        /// The scenario.
        scenario: String,
        /// Its law.
        law: String,
    },
}

/// A named baseline file (`configs/baselines/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedBaseline {
    /// The name (the file stem).
    pub name: String,
    /// The settings every scenario starts from.
    pub base: BaselineConfig,
    /// The tuned knob's dotted path, when tuned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
    /// Tuned knob values by scenario id.
    #[serde(default)]
    pub scenarios: BTreeMap<String, TunedEntry>,
}

impl NamedBaseline {
    /// Read and validate `path`.
    pub fn read(path: &Path) -> Result<NamedBaseline, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let nb: NamedBaseline = toml::from_str(&text).map_err(|e| PolicyError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        nb.base.validate().map_err(|e| PolicyError::File {
            path: path.to_path_buf(),
            message: format!("base: {e}"),
        })?;
        for (id, entry) in &nb.scenarios {
            nb.base
                .with_knob(entry.value)
                .validate()
                .map_err(|e| PolicyError::File {
                    path: path.to_path_buf(),
                    message: format!("scenarios.{id}.value: {e}"),
                })?;
        }
        Ok(nb)
    }
}

/// A policy to evaluate.
#[derive(Debug, Clone)]
pub enum PolicyChoice {
    /// A law with a fixed config.
    Baseline {
        /// Label in tables.
        label: String,
        /// The config.
        config: BaselineConfig,
    },
    /// A named baseline file.
    Named {
        /// Label in tables: the name asked for (the file stem), whatever the file's `name` says.
        label: String,
        /// The file's content.
        file: Arc<NamedBaseline>,
        /// Where it came from.
        path: PathBuf,
    },
    /// The hindsight schedule.
    Oracle(OracleConfig),
    /// The hindsight planner's schedule (`planner`), searched against the simulator from the
    /// heuristic plans and the schedules the rules play on the same episode: default HPA and every
    /// tuned rule of `configs_dir` that covers the scenario.
    Planner {
        /// The search's knobs.
        cfg: PlannerConfig,
        /// Where the tuned rules' files are.
        configs_dir: PathBuf,
    },
    /// A trained model file (`model:PATH`), played by the runtime's model policy.
    Model {
        /// Label in tables (`model:PATH` as written).
        label: String,
        /// The validated model.
        model: Arc<rlscale_runtime::ModelFile>,
        /// `model-only:`: the bare network, without the runtime's checks, guardrails and fallback.
        bare: bool,
        /// The runtime's guardrails (`model:` only; the runtime's defaults unless
        /// [`PolicyChoice::with_guardrails`] sets others).
        guardrails: rlscale_runtime::Guardrails,
    },
    /// `model-sampled:PATH`: the bare network sampling its actions, as in training.
    SampledModel {
        /// Label in tables (`model-sampled:PATH` as written).
        label: String,
        /// The validated model.
        model: Arc<rlscale_runtime::ModelFile>,
    },
}

/// A model acting as PPO's rollouts do: the runtime's bare [`rlscale_runtime::ModelPolicy`], with the
/// action drawn from the softmax of the logits over the valid actions instead of their argmax. Its
/// random stream is its own (seeded from the episode's seed), so the simulator's arrivals are the same
/// as every other policy's.
#[derive(Debug, Clone)]
pub struct SampledModelPolicy {
    inner: rlscale_runtime::ModelPolicy,
    rng: rand_chacha::ChaCha8Rng,
}

impl SampledModelPolicy {
    /// A policy from `model` for a target bounded by `[min, max]`, drawing from `seed`'s stream.
    pub fn new(
        model: Arc<rlscale_runtime::ModelFile>,
        min: u32,
        max: u32,
        name: String,
        seed: u64,
    ) -> Self {
        use rand::SeedableRng;
        SampledModelPolicy {
            inner: rlscale_runtime::ModelPolicy::new(model, min, max, name),
            // A stream apart from the simulator's, which draws from `seed` itself.
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5A3D_1E55_0F0C_A11D),
        }
    }
}

/// Index drawn from the softmax of `logits` over the entries where `mask` is true, with the uniform
/// draw `u` in [0, 1). `None` when nothing is valid.
pub fn sample_masked(logits: &[f32], mask: &[bool], u: f64) -> Option<usize> {
    let max = logits
        .iter()
        .zip(mask)
        .filter(|(_, ok)| **ok)
        .map(|(l, _)| f64::from(*l))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    let w: Vec<f64> = logits
        .iter()
        .zip(mask)
        .map(|(l, ok)| {
            if *ok {
                (f64::from(*l) - max).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    let mut last = None;
    for (a, x) in w.iter().enumerate() {
        if *x > 0.0 {
            acc += x / total;
            last = Some(a);
            if u < acc {
                return Some(a);
            }
        }
    }
    last
}

impl Policy for SampledModelPolicy {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn decide(
        &mut self,
        snapshot: &rlscale_core::MetricsSnapshot,
        _now: rlscale_core::SimTime,
    ) -> rlscale_core::Decision {
        use rand::Rng;
        let u = self.rng.random::<f64>();
        self.inner
            .decide_with(snapshot, |logits, mask| sample_masked(logits, mask, u))
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// The rules whose schedules the planner starts from (those whose files exist).
const PLANNER_SEED_RULES: [&str; 8] = [
    "hpa",
    "hpa-tuned",
    "keda-tuned",
    "kpa-tuned",
    "ray-tuned",
    "apa-tuned",
    "static-tuned",
    "predictive-tuned",
];

impl PolicyChoice {
    /// This choice with the runtime's guardrails `g` if it is a `model:` policy (through the
    /// runtime); any other choice as it is.
    pub fn with_guardrails(mut self, g: rlscale_runtime::Guardrails) -> Self {
        if let PolicyChoice::Model {
            bare: false,
            guardrails,
            ..
        } = &mut self
        {
            *guardrails = g;
        }
        self
    }

    /// Parse one name; named baseline files are looked up in `configs_dir`.
    pub fn parse(name: &str, configs_dir: &Path) -> Result<PolicyChoice, PolicyError> {
        let name = name.trim();
        if name == "oracle" {
            return Ok(PolicyChoice::Oracle(OracleConfig::default()));
        }
        if name == "planner" {
            return Ok(PolicyChoice::Planner {
                cfg: PlannerConfig::default(),
                configs_dir: configs_dir.to_path_buf(),
            });
        }
        let model_path = [
            ("model:", "model"),
            ("model-only:", "bare"),
            ("model-sampled:", "sampled"),
        ]
        .into_iter()
        .find_map(|(prefix, how)| Some((name.strip_prefix(prefix)?, how)));
        if let Some((path, how)) = model_path {
            let model = rlscale_runtime::ModelFile::load(Path::new(path)).map_err(|source| {
                PolicyError::Model {
                    policy: name.to_string(),
                    source,
                }
            })?;
            let (label, model) = (name.to_string(), Arc::new(model));
            return Ok(match how {
                "sampled" => PolicyChoice::SampledModel { label, model },
                _ => PolicyChoice::Model {
                    label,
                    model,
                    bare: how == "bare",
                    guardrails: rlscale_runtime::Guardrails::default(),
                },
            });
        }
        if let Some(n) = name.strip_prefix("static:") {
            let n: u32 = n
                .parse()
                .map_err(|_| PolicyError::BadStatic(name.to_string()))?;
            return Ok(PolicyChoice::Baseline {
                label: name.to_string(),
                config: BaselineConfig::Static(StaticConfig { replicas: Some(n) }),
            });
        }
        if let Some(config) = BaselineConfig::default_for(name) {
            return Ok(PolicyChoice::Baseline {
                label: name.to_string(),
                config,
            });
        }
        let path = configs_dir.join(format!("{name}.toml"));
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && path.is_file()
        {
            let file = NamedBaseline::read(&path)?;
            return Ok(PolicyChoice::Named {
                label: name.to_string(),
                file: Arc::new(file),
                path,
            });
        }
        Err(PolicyError::Unknown {
            name: name.to_string(),
            laws: BaselineConfig::LAWS.join(", "),
            path,
        })
    }

    /// Parse a comma-separated list; a policy named twice is an error (its rows would merge).
    pub fn parse_list(list: &str, configs_dir: &Path) -> Result<Vec<PolicyChoice>, PolicyError> {
        let v: Vec<PolicyChoice> = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| Self::parse(s, configs_dir))
            .collect::<Result<_, _>>()?;
        let mut seen = std::collections::BTreeSet::new();
        for p in &v {
            if !seen.insert(p.label()) {
                return Err(PolicyError::Duplicate(p.label()));
            }
        }
        Ok(v)
    }

    /// The label in tables and plots.
    pub fn label(&self) -> String {
        match self {
            PolicyChoice::Baseline { label, .. } => label.clone(),
            PolicyChoice::Named { label, .. } => label.clone(),
            PolicyChoice::Oracle(_) => "oracle".into(),
            PolicyChoice::Planner { .. } => "planner".into(),
            PolicyChoice::Model { label, .. } => label.clone(),
            PolicyChoice::SampledModel { label, .. } => label.clone(),
        }
    }

    /// The config used on `scenario` (None for the oracle).
    pub fn config_for(&self, scenario: &Scenario) -> Result<Option<BaselineConfig>, PolicyError> {
        Ok(match self {
            PolicyChoice::Baseline { config, .. } => Some(config.clone()),
            PolicyChoice::Named { file, path, .. } => {
                if file.knob.is_none() {
                    Some(file.base.clone())
                } else {
                    let entry =
                        file.scenarios
                            .get(scenario.id())
                            .ok_or_else(|| PolicyError::NotTuned {
                                path: path.clone(),
                                scenario: scenario.id().to_string(),
                                law: file.base.law().to_string(),
                            })?;
                    Some(file.base.with_knob(entry.value))
                }
            }
            PolicyChoice::Oracle(_)
            | PolicyChoice::Planner { .. }
            | PolicyChoice::Model { .. }
            | PolicyChoice::SampledModel { .. } => None,
        })
    }

    /// Build the policy for one episode of `scenario` (`seed` and `steps` matter to the oracle only).
    pub fn build(
        &self,
        scenario: &Arc<Scenario>,
        seed: u64,
        steps: u64,
    ) -> Result<Box<dyn Policy + Send>, PolicyError> {
        if let PolicyChoice::Oracle(cfg) = self {
            let plan = oracle::plan(scenario, seed, steps, *cfg);
            return Ok(Box::new(OraclePolicy::new(
                &plan,
                scenario.start_unix_s,
                scenario.file.control_interval_s,
            )));
        }
        if let PolicyChoice::Planner { cfg, configs_dir } = self {
            // The rules' schedules on this episode: default HPA's always, a tuned rule's when its
            // file is there and covers the scenario.
            let mut seeds = Vec::new();
            for rule in PLANNER_SEED_RULES {
                let Ok(mut p) = PolicyChoice::parse(rule, configs_dir)
                    .and_then(|c| c.build(scenario, seed, steps))
                else {
                    continue;
                };
                let (schedule, _) = planner::realized_schedule(scenario, &mut *p, seed, steps);
                seeds.push((rule.to_string(), schedule));
            }
            let planned = planner::plan(scenario, seed, steps, *cfg, &seeds);
            return Ok(Box::new(OraclePolicy::from_schedule(
                &planned.schedule,
                scenario.start_unix_s,
                scenario.file.control_interval_s,
            )));
        }
        if let PolicyChoice::SampledModel { label, model } = self {
            let r = scenario.file.replicas;
            return Ok(Box::new(SampledModelPolicy::new(
                model.clone(),
                r.min,
                r.max,
                label.clone(),
                seed,
            )));
        }
        if let PolicyChoice::Model {
            label,
            model,
            bare,
            guardrails,
        } = self
        {
            let r = scenario.file.replicas;
            if *bare {
                return Ok(Box::new(rlscale_runtime::ModelPolicy::new(
                    model.clone(),
                    r.min,
                    r.max,
                    label.clone(),
                )));
            }
            let mut cfg = rlscale_runtime::RuntimeConfig::new(r.min, r.max);
            cfg.guardrails = *guardrails;
            let runtime = rlscale_runtime::Runtime::new(Ok(model.clone()), cfg, label.clone())
                .map_err(|e| PolicyError::File {
                    path: scenario.path.clone(),
                    message: format!("runtime for {label}: {e}"),
                })?;
            return Ok(Box::new(runtime));
        }
        let config = self
            .config_for(scenario)?
            .expect("not the oracle or a model");
        let r = scenario.file.replicas;
        if let BaselineConfig::Static(StaticConfig { replicas: Some(n) }) = &config
            && (*n < r.min || *n > r.max)
        {
            return Err(PolicyError::OutOfBounds {
                policy: self.label(),
                scenario: scenario.id().to_string(),
                min: r.min,
                max: r.max,
                path: scenario.path.clone(),
            });
        }
        let bounds = Bounds {
            min: r.min,
            max: r.max,
        };
        let built = config
            .build(bounds, r.initial)
            .map_err(|e| PolicyError::File {
                path: match self {
                    PolicyChoice::Named { path, .. } => path.clone(),
                    _ => PathBuf::from(self.label()),
                },
                message: e.to_string(),
            })?;
        Ok(Box::new(built))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sampled actions follow the softmax of the valid logits and never pick a masked action.
    #[test]
    fn sampled_actions_follow_the_masked_softmax() {
        use rand::{Rng, SeedableRng};
        let logits = [0.0_f32, 1.0, 2.0, 5.0];
        let mask = [true, true, true, false];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut n = [0usize; 4];
        let draws = 100_000;
        for _ in 0..draws {
            n[sample_masked(&logits, &mask, rng.random::<f64>()).unwrap()] += 1;
        }
        assert_eq!(n[3], 0, "a masked action was drawn");
        let z: f64 = [0.0_f64, 1.0, 2.0].iter().map(|l| l.exp()).sum();
        for (a, l) in [0.0_f64, 1.0, 2.0].iter().enumerate() {
            let p = l.exp() / z;
            let f = n[a] as f64 / draws as f64;
            assert!((f - p).abs() < 0.01, "action {a}: {f} drawn against {p}");
        }
        assert_eq!(sample_masked(&logits, &[false; 4], 0.5), None);
        // The last valid action takes what rounding leaves at u close to 1.
        assert_eq!(sample_masked(&logits, &mask, 0.999_999_999), Some(2));
    }

    /// `model-sampled:` plays the same episode twice alike (its stream is seeded), and differs from
    /// the greedy network.
    #[test]
    fn a_sampled_model_is_seeded() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let model = repo.join("models/default.json").display().to_string();
        let sc = Arc::new(
            Scenario::resolve(
                &repo.join("envs"),
                "steady-8b-l4-v1",
                &rlscale_sim::Overrides {
                    max_episode_steps: Some(120),
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let play = |name: &str| {
            let p = PolicyChoice::parse(&format!("{name}:{model}"), Path::new(".")).unwrap();
            let zero = oracle::Bound {
                objective_usd: 0.0,
                cost_usd: 0.0,
                forced_violations: 0,
                settled_requests: 0,
                floor_applied: false,
            };
            crate::matrix::run_one(&sc, &p, 3, zero, true)
                .unwrap()
                .timeline
        };
        let a = play("model-sampled");
        assert_eq!(a, play("model-sampled"));
        assert_ne!(a, play("model-only"));
    }
}
