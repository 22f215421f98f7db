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
    },
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
        let model_path = name
            .strip_prefix("model:")
            .map(|p| (p, false))
            .or_else(|| name.strip_prefix("model-only:").map(|p| (p, true)));
        if let Some((path, bare)) = model_path {
            let model = rlscale_runtime::ModelFile::load(Path::new(path)).map_err(|source| {
                PolicyError::Model {
                    policy: name.to_string(),
                    source,
                }
            })?;
            return Ok(PolicyChoice::Model {
                label: name.to_string(),
                model: Arc::new(model),
                bare,
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
            PolicyChoice::Oracle(_) | PolicyChoice::Planner { .. } | PolicyChoice::Model { .. } => {
                None
            }
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
        if let PolicyChoice::Model { label, model, bare } = self {
            let r = scenario.file.replicas;
            if *bare {
                return Ok(Box::new(rlscale_runtime::ModelPolicy::new(
                    model.clone(),
                    r.min,
                    r.max,
                    label.clone(),
                )));
            }
            let cfg = rlscale_runtime::RuntimeConfig::new(r.min, r.max);
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
