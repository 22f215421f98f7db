//! `rlscale train`: PPO on a scenario mixture, into a tidy run folder that can be resumed.
//!
//! ```text
//! runs/{mix}__{exp}__{seed}__{unix time}/
//!   config.toml      the resolved configuration (what --resume reads back)
//!   metrics.jsonl    one line per iteration, cleanrl's metric names
//!   events.out.tfevents.*  the same scalars for TensorBoard (`tensorboard --logdir runs`)
//!   checkpoints/     ckpt-NNNNNN/ folders and `latest` (atomic; see rlscale_trainer::checkpoint)
//!   model.json       the exported model (rlscale_runtime::model), at the end or on Ctrl-C
//!   best/            the best network on validation so far: model.json, best.json, its checkpoint
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rlscale_eval::matrix::run_one;
use rlscale_eval::oracle::{self, OracleConfig};
use rlscale_eval::policies::PolicyChoice;
use rlscale_trainer::checkpoint;
use rlscale_trainer::ppo::Ppo;
use rlscale_trainer::run::{TrainConfig, export, metrics_line};
use rlscale_trainer::simenv::SimTrainEnv;

use crate::BadInput;

/// How many samples a fine-tuned run's observation statistics count the initial model's as: about
/// 50 iterations of the default 2,048-sample batches, so that a new workload's observations move them
/// within the first tenth of a 1M-step fine-tune, not at once (the network's inputs would jump).
const INIT_OBS_COUNT: f64 = 100_000.0;

/// The model `--init` names, checked against `cfg`: loadable, with the config's feature schema and
/// action table (a network trained on other features or actions cannot be fine-tuned into this run).
pub(crate) fn init_model(
    path: &std::path::Path,
    cfg: &TrainConfig,
) -> Result<rlscale_runtime::ModelFile> {
    let m = rlscale_runtime::ModelFile::load(path).map_err(|e| BadInput(format!("--init: {e}")))?;
    if m.obs_schema_version != cfg.obs_schema {
        return Err(BadInput(format!(
            "--init {}: the model reads feature schema {}, the config sets obs_schema = {}",
            path.display(),
            m.obs_schema_version,
            cfg.obs_schema
        ))
        .into());
    }
    if m.action_table() != cfg.action_table() {
        return Err(BadInput(format!(
            "--init {}: the model's action table is {:?}, the config's is {:?}",
            path.display(),
            m.action_table().0,
            cfg.action_table().0
        ))
        .into());
    }
    Ok(m)
}

/// Arguments of `rlscale train`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Training configuration (TOML: PPO hyperparameters with cleanrl's names, and the scenario mix).
    #[arg(long, value_name = "FILE", default_value = "configs/ppo.toml")]
    pub config: PathBuf,
    /// Resume the run in this folder from its latest checkpoint (its config.toml is used).
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// Override `ppo.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override `ppo.total_timesteps` (also extends a resumed run).
    #[arg(long, value_name = "N")]
    pub total_timesteps: Option<u64>,
    /// Folder of runs.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs: PathBuf,
    /// Fine-tune: start from this exported model's network (weights and observation normalisation)
    /// instead of a fresh one. Its feature schema and action table must be the config's; the reward
    /// scale and the optimizer start fresh. Recorded as `init` in the run's config.toml.
    #[arg(long, value_name = "MODEL.json")]
    pub init: Option<PathBuf>,
    /// Also copy the exported model here (e.g. models/default.json).
    #[arg(long, value_name = "PATH")]
    pub export: Option<PathBuf>,
    /// Train on this one workload (scenario id or path) instead of the config's mixture: episodes
    /// inside the fitting window of `rlscale tune`'s protocol (the whole days before the last, or the
    /// first half of a shorter history), with the config's first entry's randomisation; validation
    /// plays the end of that window on seeds 2001 and 2002. The scoring window is never played.
    /// Mostly with --init (fine-tuning).
    #[arg(long, value_name = "ID", conflicts_with = "trace")]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub workload: crate::workload::WorkloadArgs,
    /// Stop at this instant, as on Ctrl-C but without exiting: the run saves a checkpoint and its
    /// model file (`rlscale fit`'s budget).
    #[arg(skip)]
    pub deadline: Option<std::time::Instant>,
    /// Validate every this many iterations instead of the config's `validation.every`.
    #[arg(skip)]
    pub validate_every: Option<u64>,
}

/// Seeds of a one-workload run's validation episodes (never drawn by training episodes).
const ONE_WORKLOAD_VALIDATION_SEEDS: [u64; 2] = [2001, 2002];

/// Validation episodes are at most a day long.
const ONE_WORKLOAD_VALIDATION_STEPS: u64 = 5_760;

/// `--scenario`: make `cfg` train on `sc` alone, inside its fitting window. Returns what was done, in
/// words.
fn one_workload(cfg: &mut TrainConfig, sc: &rlscale_sim::Scenario) -> Result<String> {
    let template = cfg.mix.first().cloned().ok_or_else(|| {
        BadInput("the config has no [[mix]] entry to take the randomisation from".into())
    })?;
    let dt = sc.file.control_interval_s;
    let plan = rlscale_eval::tune::windows(sc.file.max_episode_steps, dt, None);
    let (fit_start, fit_steps) = plan.fit;
    let steps = template.steps.min(fit_steps).max(1);
    let fit_end = fit_start + fit_steps as f64 * dt;
    let path = std::fs::canonicalize(&sc.path).unwrap_or_else(|_| sc.path.clone());
    cfg.mix = vec![rlscale_trainer::simenv::MixEntry {
        scenario: path.clone(),
        weight: 1.0,
        steps,
        min_offset_s: fit_start,
        max_offset_s: (fit_end - steps as f64 * dt).max(fit_start),
        ..template
    }];
    let vsteps = fit_steps.min(ONE_WORKLOAD_VALIDATION_STEPS);
    cfg.validation = Some(rlscale_trainer::run::ValidationConfig {
        every: cfg.validation.as_ref().map_or(10, |v| v.every),
        scenarios: vec![path],
        steps: vsteps,
        seeds: ONE_WORKLOAD_VALIDATION_SEEDS.to_vec(),
        offset_s: fit_end - vsteps as f64 * dt,
    });
    let h = |s: f64| s / 3600.0;
    Ok(format!(
        "one workload, {}: episodes of {steps} steps inside the fitting window (hours {:.1}-{:.1}); validation on hours {:.1}-{:.1}, seeds {:?}; the scoring window (hours {:.1}-{:.1}) is never played",
        sc.id(),
        h(fit_start),
        h(fit_end),
        h(fit_end - vsteps as f64 * dt),
        h(fit_end),
        ONE_WORKLOAD_VALIDATION_SEEDS,
        h(plan.score.0),
        h(plan.score.0 + plan.score.1 as f64 * dt),
    ))
}

/// The held-out episodes, loaded once, with each one's oracle bound.
struct Validation {
    every: u64,
    episodes: Vec<(Arc<rlscale_sim::Scenario>, u64, rlscale_eval::oracle::Bound)>,
}

/// Mean objective $, SLO attainment % and GPU $ of `policy` over the validation episodes, and each
/// episode's objective.
#[allow(clippy::type_complexity)]
fn validate(
    v: &Validation,
    policy: &PolicyChoice,
) -> Result<((f64, f64, f64), Vec<f64>, Vec<bool>)> {
    use rayon::prelude::*;
    let runs: Vec<_> = v
        .episodes
        .par_iter()
        .map(|(sc, seed, bound)| run_one(sc, policy, *seed, *bound, false))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("validation: {e}"))?;
    let n = runs.len().max(1) as f64;
    Ok((
        (
            runs.iter().map(|r| r.objective_usd).sum::<f64>() / n,
            runs.iter()
                .map(|r| r.summary.slo_attainment_pct)
                .sum::<f64>()
                / n,
            runs.iter().map(|r| r.summary.cost_usd).sum::<f64>() / n,
        ),
        runs.iter().map(|r| r.objective_usd).collect(),
        runs.iter()
            .map(|r| r.summary.slo_attainment_pct < r.summary.slo_target_pct)
            .collect(),
    ))
}

/// The mean over episodes of `objective / default HPA's objective` on the same episode, so that every
/// episode counts alike (a 70B scenario's dollars would drown an 8B one's).
fn ratio_to(episodes: &[f64], reference: &[f64]) -> f64 {
    let n = episodes.len().max(1) as f64;
    episodes
        .iter()
        .zip(reference)
        .map(|(o, h)| o / h.max(1e-9))
        .sum::<f64>()
        / n
}

/// Episodes where the network's objective is above default HPA's on the same episode: the bar's
/// criterion (b) counts scenarios where a model loses to default HPA.
fn losses_to(episodes: &[f64], reference: &[f64]) -> usize {
    episodes
        .iter()
        .zip(reference)
        .filter(|(o, h)| o > h)
        .count()
}

/// How [`selection_score`] ranks checkpoints, recorded in `best/best.json`: a best network chosen by
/// another rule (an older run's, resumed) is not compared with this one's scores, and the first
/// validation replaces it.
const SELECTION_RULE: &str =
    "(1 + losses, an episode lost when above HPA's objective or below its SLO target) * mean_ratio";

/// The checkpoint selection score, lower is better: `(1 + episodes lost to default HPA) × the mean
/// ratio to its objective`. Both of the bar's criteria weigh in: a loss costs as much as the whole
/// ratio once more, so a network that loses nowhere beats one that wins big on average and loses
/// somewhere, but a network far worse in total (1.7× against 0.95×) no longer wins by one loss fewer,
/// as the lexicographic rule let it (issue #19, run I).
///
/// An episode below its SLO target counts as lost too (the bar's criterion (a)), whatever default
/// HPA's objective there: every best checkpoint kept without this missed the bursty family's target,
/// because HPA collapses there and a network that undershoots a burst still "won" (issue #19,
/// docs/model/bar.md, "Where this round leaves issue #19").
fn selection_score(episodes: &[f64], reference: &[f64], slo_misses: &[bool]) -> f64 {
    (1.0 + lost(episodes, reference, slo_misses) as f64) * ratio_to(episodes, reference)
}

/// Episodes above default HPA's objective or below their SLO target.
fn lost(episodes: &[f64], reference: &[f64], slo_misses: &[bool]) -> usize {
    episodes
        .iter()
        .zip(reference)
        .zip(slo_misses)
        .filter(|((o, h), miss)| o > h || **miss)
        .count()
}

/// What validation compares against, computed once per run: default HPA's (objective $, SLO %,
/// GPU $) and each episode's oracle bound.
#[derive(serde::Serialize, serde::Deserialize)]
struct Reference {
    hpa: (f64, f64, f64),
    /// Default HPA's objective on each episode.
    #[serde(default)]
    hpa_episodes: Vec<f64>,
    bounds: Vec<rlscale_eval::oracle::Bound>,
    /// The network before any training (iteration 0), the starting point learning is measured from.
    #[serde(default)]
    untrained: Option<(f64, f64, f64)>,
}

/// What the selection score is measured against.
struct HpaScore {
    mean: (f64, f64, f64),
    episodes: Vec<f64>,
}

/// Drop the rows of `metrics.jsonl` past `iteration`: a run resumed from its last checkpoint
/// redoes those iterations, and each iteration must appear once. Rewritten atomically.
fn drop_rows_after(path: &std::path::Path, iteration: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["iteration"].as_u64())
                .is_some_and(|i| i <= iteration)
        })
        .collect();
    if keep.len() != text.lines().count() {
        let mut out = keep.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        rlscale_trainer::atomic_write(path, out.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// What a model file records about where it came from.
fn provenance(
    cfg: &TrainConfig,
    (global_step, iteration): (u64, u64),
    dir: &std::path::Path,
    best: Option<&serde_json::Value>,
    hpa: Option<(f64, f64, f64)>,
) -> serde_json::Value {
    serde_json::json!({
        "config": cfg,
        "seed": cfg.ppo.seed,
        "git_revision": git_revision(),
        "scenario_mix": cfg.mix.iter().map(|m| m.scenario.display().to_string()).collect::<Vec<_>>(),
        "global_step": global_step,
        "iteration": iteration,
        "run": dir.display().to_string(),
        "validation": {
            "best": best,
            "hpa": hpa.map(|h| serde_json::json!({"objective_usd": h.0, "slo_attainment_pct": h.1, "cost_usd": h.2})),
            "none_because": best.is_none().then(|| no_validation_reason(cfg, iteration)),
        },
    })
}

/// Why a run has no validated network, in words for `rlscale model inspect`.
fn no_validation_reason(cfg: &TrainConfig, iteration: u64) -> String {
    match &cfg.validation {
        None => "the run's configuration has no [validation] section".into(),
        Some(v) if iteration < v.every => format!(
            "the run stopped at iteration {iteration}, before its first validation (validation.every = {} iterations)",
            v.every
        ),
        Some(_) => "no validation exported a network that passed the model file's checks".into(),
    }
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Run the subcommand.
pub fn run(envs: &std::path::Path, args: Args) -> Result<()> {
    run_dir(envs, args).map(|_| ())
}

/// Run the subcommand; the run's folder.
pub fn run_dir(envs: &std::path::Path, args: Args) -> Result<PathBuf> {
    let (cfg, dir, init, extended) = match &args.resume {
        Some(run) => {
            let path = run.join("config.toml");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| BadInput(format!("--resume {}: {e}", path.display())))?;
            let mut cfg: TrainConfig =
                toml::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
            let extended = args
                .total_timesteps
                .is_some_and(|t| t != cfg.ppo.total_timesteps);
            if let Some(t) = args.total_timesteps {
                cfg.ppo.total_timesteps = t;
            }
            if args.scenario.is_some() || args.workload.trace.is_some() {
                return Err(BadInput(format!(
                    "--scenario, --trace: a resumed run keeps its mixture ({})",
                    run.display()
                ))
                .into());
            }
            if args.init.is_some() {
                return Err(BadInput(format!(
                    "--init: a resumed run continues from its checkpoint ({}); --init starts a new run",
                    run.display()
                ))
                .into());
            }
            if args.seed.is_some_and(|s| s != cfg.ppo.seed) {
                return Err(BadInput(format!(
                    "--seed: a resumed run keeps its seed ({})",
                    cfg.ppo.seed
                ))
                .into());
            }
            cfg.validate()
                .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
            if checkpoint::latest(&run.join("checkpoints"))?.is_none() {
                return Err(BadInput(format!(
                    "--resume {}: no checkpoint in {}/checkpoints (the run stopped before its \
                     first one); start a new run instead",
                    run.display(),
                    run.display()
                ))
                .into());
            }
            (cfg, run.clone(), None, extended)
        }
        None => {
            let mut cfg = TrainConfig::load(&args.config).map_err(BadInput)?;
            if let Some(s) = args.seed {
                cfg.ppo.seed = s;
            }
            if let Some(t) = args.total_timesteps {
                cfg.ppo.total_timesteps = t;
            }
            if let Some(init) = &args.init {
                cfg.init = Some(init.clone());
            }
            if let Some(id) = &args.scenario {
                let sc = rlscale_sim::Scenario::resolve(envs, id, &Default::default())?;
                eprintln!("{}", one_workload(&mut cfg, &sc)?);
            }
            if let Some(spec) = args.workload.spec() {
                let sc = crate::workload::build(envs, &args.runs.join("workloads"), &spec)?;
                eprintln!("scenario {}", sc.path.display());
                eprintln!("{}", one_workload(&mut cfg, &sc)?);
            }
            if let (Some(every), Some(v)) = (args.validate_every, cfg.validation.as_mut()) {
                v.every = every.max(1);
            }
            cfg.validate()
                .map_err(|e| BadInput(format!("{}: {e}", args.config.display())))?;
            let init_model = cfg
                .init
                .as_deref()
                .map(|p| init_model(p, &cfg))
                .transpose()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let dir = cfg.run_dir(&args.runs, now);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let text = toml::to_string(&cfg).context("cannot serialize the configuration")?;
            rlscale_trainer::atomic_write(&dir.join("config.toml"), text.as_bytes())
                .with_context(|| format!("cannot write {}/config.toml", dir.display()))?;
            (cfg, dir, init_model, false)
        }
    };
    let ckpts = dir.join("checkpoints");
    let mix: Arc<[_]> = cfg.mix.clone().into();
    let table = cfg.action_table();
    let envs = (0..cfg.ppo.num_envs)
        .map(|_| {
            SimTrainEnv::new(mix.clone())
                .with_actions(table)
                .with_guardrails(cfg.guardrails)
                .with_teacher(cfg.teacher)
                .with_teacher_futures(cfg.teacher_futures)
                .with_obs_schema(cfg.obs_schema)
        })
        .collect();
    let mut ppo = match checkpoint::latest(&ckpts)? {
        Some(ck) if args.resume.is_some() => {
            eprintln!("resuming {} from {}", dir.display(), ck.display());
            Ppo::resume(cfg.ppo.clone(), envs, &ck)?
        }
        _ => {
            let mut ppo = Ppo::new(cfg.ppo.clone(), envs).map_err(BadInput)?;
            if let (Some(m), Some(path)) = (&init, &cfg.init) {
                ppo.init_from(m, INIT_OBS_COUNT)
                    .map_err(|e| BadInput(format!("--init {}: {e}", path.display())))?;
            }
            ppo
        }
    };
    if args.resume.is_some() && cfg.ppo.total_timesteps < ppo.global_step {
        return Err(BadInput(format!(
            "--total-timesteps {}: the run has already done {} steps (iteration {}); a resumed run can only go on. Its files are unchanged.",
            cfg.ppo.total_timesteps, ppo.global_step, ppo.iteration
        ))
        .into());
    }
    if extended {
        // The run's config.toml stays what the run is: the next --resume reads the new length.
        let path = dir.join("config.toml");
        let text = toml::to_string(&cfg).context("cannot serialize the configuration")?;
        rlscale_trainer::atomic_write(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let metrics_path = dir.join("metrics.jsonl");
    if args.resume.is_some() {
        drop_rows_after(&metrics_path, ppo.iteration)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while saving falls through to the default handler's exit.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }

    // Validation: the held-out episodes, and default HPA's score on them for reference. Both are
    // computed once per run and kept in validation_reference.json, so a resume starts at once.
    let reference_path = dir.join("validation_reference.json");
    let reference: Option<Reference> = std::fs::read_to_string(&reference_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let validation = match &cfg.validation {
        Some(vc) => {
            let mut episodes = Vec::new();
            for path in &vc.scenarios {
                let base = rlscale_sim::Scenario::load(path, &Default::default())?;
                let steps = vc.steps.min(base.file.max_episode_steps);
                let sc = Arc::new(rlscale_sim::Scenario::load(
                    path,
                    &rlscale_sim::Overrides {
                        max_episode_steps: Some(steps),
                        window_offset_s: (vc.offset_s > 0.0).then_some(vc.offset_s),
                        ..Default::default()
                    },
                )?);
                for &seed in &vc.seeds {
                    let cached = reference
                        .as_ref()
                        .and_then(|r| r.bounds.get(episodes.len()))
                        .copied();
                    let bound = cached.unwrap_or_else(|| {
                        oracle::plan(&sc, seed, steps, OracleConfig::default()).bound
                    });
                    episodes.push((sc.clone(), seed, bound));
                }
            }
            Some(Validation {
                every: vc.every,
                episodes,
            })
        }
        None => None,
    };
    let hpa_score = match &validation {
        Some(v) => match reference.as_ref().filter(|r| {
            r.bounds.len() == v.episodes.len() && r.hpa_episodes.len() == v.episodes.len()
        }) {
            Some(r) => Some(HpaScore {
                mean: r.hpa,
                episodes: r.hpa_episodes.clone(),
            }),
            None => {
                let hpa = PolicyChoice::parse("hpa", std::path::Path::new("."))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let (score, hpa_episodes, _) = validate(v, &hpa)?;
                let untrained = if ppo.iteration == 0 {
                    let model = export(&ppo, &table, serde_json::json!({"untrained": true}));
                    // The bare network: the runtime would hand an untrained model's
                    // out-of-distribution inputs to its fallback law, and score that law instead.
                    let choice = PolicyChoice::Model {
                        label: "model-only:untrained".into(),
                        model: Arc::new(model),
                        bare: true,
                        guardrails: Default::default(),
                    };
                    Some(validate(v, &choice)?.0)
                } else {
                    None
                };
                let r = Reference {
                    hpa: score,
                    hpa_episodes: hpa_episodes.clone(),
                    bounds: v.episodes.iter().map(|e| e.2).collect(),
                    untrained,
                };
                let text = serde_json::to_string_pretty(&r).context("serialize")?;
                rlscale_trainer::atomic_write(&reference_path, text.as_bytes())
                    .with_context(|| format!("cannot write {}", reference_path.display()))?;
                Some(HpaScore {
                    mean: score,
                    episodes: hpa_episodes,
                })
            }
        },
        None => None,
    };
    let hpa_mean = hpa_score.as_ref().map(|h| h.mean);
    if let Some(v) = &validation
        && cfg.ppo.num_iterations() < v.every
    {
        eprintln!(
            "note: this run has {} iteration(s), fewer than validation.every = {}: no validation will run, so best/ stays empty and the model file records why",
            cfg.ppo.num_iterations(),
            v.every
        );
    }
    let best_path = dir.join("best").join("best.json");
    let mut best: Option<serde_json::Value> = std::fs::read_to_string(&best_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());

    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;
    let total = cfg.ppo.num_iterations();
    let pb = ProgressBar::new(total);
    pb.set_position(ppo.iteration);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} iterations  ETA {eta}  {msg}",
        )
        .expect("a valid template"),
    );
    // TensorBoard event files beside the JSONL (a resumed run adds a second file; TensorBoard reads both).
    let mut tb = tensorboard_rs::summary_writer::SummaryWriter::new(&dir);
    eprintln!("run folder: {}", dir.display());
    let mut last_validation: Option<f64> = None;
    let mut last_episode: (Option<f64>, Option<f64>) = (None, None);
    let before_deadline = || args.deadline.is_none_or(|d| std::time::Instant::now() < d);
    while !ppo.finished() && !stop.load(Ordering::SeqCst) && before_deadline() {
        let s = ppo.iterate();
        let mut line = metrics_line(&s);
        line["time_unix_s"] = serde_json::json!(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        );
        if let (Some(v), Some(hpa)) = (&validation, &hpa_score)
            && s.iteration % v.every == 0
        {
            let model = export(
                &ppo,
                &table,
                serde_json::json!({"validation_of_iteration": s.iteration}),
            );
            if model.validate(&dir).is_ok() {
                let label = format!("model:iteration-{}", s.iteration);
                let choice = PolicyChoice::Model {
                    label,
                    model: Arc::new(model.clone()),
                    bare: false,
                    guardrails: Default::default(),
                };
                let ((obj, slo, cost), per_episode, misses) = validate(v, &choice)?;
                let ratio = ratio_to(&per_episode, &hpa.episodes);
                let losses = losses_to(&per_episode, &hpa.episodes);
                let slo_misses = misses.iter().filter(|m| **m).count();
                let score = selection_score(&per_episode, &hpa.episodes, &misses);
                line["charts/validation_slo_misses"] = serde_json::json!(slo_misses);
                line["charts/validation_objective_usd"] = serde_json::json!(obj);
                line["charts/validation_slo_attainment_pct"] = serde_json::json!(slo);
                line["charts/validation_cost_usd"] = serde_json::json!(cost);
                line["charts/validation_objective_vs_hpa"] = serde_json::json!(ratio);
                line["charts/validation_losses_to_hpa"] = serde_json::json!(losses);
                line["charts/validation_selection_score"] = serde_json::json!(score);
                // The best network by the selection score (lower is better). A best.json written
                // before the score existed has none: the first validation of a resumed run
                // replaces it.
                let better = best
                    .as_ref()
                    .filter(|b| b["selection_rule"] == SELECTION_RULE)
                    .and_then(|b| b["selection_score"].as_f64())
                    .is_none_or(|b| score < b);
                if better {
                    let h = hpa.mean;
                    let info = serde_json::json!({
                        "iteration": s.iteration,
                        "global_step": s.global_step,
                        "objective_vs_hpa": ratio,
                        "losses_to_hpa": losses,
                        "slo_misses": slo_misses,
                        "selection_score": score,
                        "selection_rule": SELECTION_RULE,
                        "objective_usd": obj,
                        "slo_attainment_pct": slo,
                        "cost_usd": cost,
                        "hpa": {"objective_usd": h.0, "slo_attainment_pct": h.1, "cost_usd": h.2},
                    });
                    let bdir = dir.join("best");
                    ppo.save_checkpoint(&bdir, 1)?;
                    let mut m = model;
                    m.provenance = provenance(
                        &cfg,
                        (ppo.global_step, ppo.iteration),
                        &dir,
                        Some(&info),
                        hpa_mean,
                    );
                    m.save(&bdir.join("model.json"))
                        .with_context(|| format!("cannot write {}/model.json", bdir.display()))?;
                    rlscale_trainer::atomic_write(&best_path, info.to_string().as_bytes())
                        .with_context(|| format!("cannot write {}", best_path.display()))?;
                    best = Some(info);
                }
            }
        }
        writeln!(metrics, "{line}")
            .with_context(|| format!("cannot write {}", metrics_path.display()))?;
        if let Some(fields) = line.as_object() {
            for (tag, v) in fields {
                if let (true, Some(x)) = (tag.contains('/'), v.as_f64()) {
                    tb.add_scalar(tag, x as f32, s.global_step as usize);
                }
            }
        }
        // The last finished episode's figures (not every iteration finishes one).
        if let Some(c) = line["charts/episodic_cost_usd"].as_f64() {
            last_episode.0 = Some(c);
        }
        if let Some(c) = line["charts/episodic_slo_attainment_pct"].as_f64() {
            last_episode.1 = Some(c);
        }
        let (cost, slo) = last_episode;
        if let Some(r) = line["charts/validation_objective_vs_hpa"].as_f64() {
            last_validation = Some(r);
        }
        let val = match (
            last_validation,
            best.as_ref().and_then(|b| b["objective_vs_hpa"].as_f64()),
        ) {
            (Some(l), Some(b)) => {
                format!("  validation {l:.3}× default HPA's objective (best {b:.3}×)")
            }
            (None, Some(b)) => format!("  best validation {b:.3}× default HPA's objective"),
            _ => String::new(),
        };
        let msg = format!(
            "SPS {:.0}  {}{val}",
            s.sps,
            match (cost, slo) {
                (Some(c), Some(a)) => format!("last episode ${c:.2}, SLO {a:.2} %"),
                _ => "no episode finished yet".into(),
            },
        );
        pb.set_position(s.iteration);
        pb.set_message(msg.clone());
        if pb.is_hidden() && s.iteration % 10 == 0 {
            eprintln!("iteration {}/{total}  {msg}", s.iteration);
        }
        if s.iteration % cfg.checkpoint_every == 0 {
            ppo.save_checkpoint(&ckpts, cfg.keep_checkpoints)?;
        }
    }
    pb.finish_and_clear();
    metrics.flush().ok();
    tb.flush();
    // Dropping the writer stops its thread after the last event is on disk.
    drop(tb);
    let ck = ppo.save_checkpoint(&ckpts, cfg.keep_checkpoints)?;
    let prov = provenance(
        &cfg,
        (ppo.global_step, ppo.iteration),
        &dir,
        best.as_ref(),
        hpa_mean,
    );
    let model = export(&ppo, &table, prov);
    let out = dir.join("model.json");
    // A diverged run (NaN weights) must not overwrite a good model file.
    model
        .validate(&out)
        .context("the trained network cannot be exported")?;
    model
        .save(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let interrupted = stop.load(Ordering::SeqCst);
    if let Some(p) = &args.export
        && interrupted
    {
        eprintln!(
            "not exporting to {}: the run was interrupted (resume it to finish)",
            p.display()
        );
    } else if let Some(p) = &args.export {
        model
            .save(p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("exported {}", p.display());
    }
    if interrupted {
        eprintln!(
            "interrupted at iteration {}: saved {} and {}; continue with `rlscale train --resume {}`",
            ppo.iteration,
            ck.display(),
            out.display(),
            dir.display()
        );
        // Everything is on disk; exit as an interrupted command does (128 + SIGINT).
        std::process::exit(130);
    } else if !ppo.finished() {
        eprintln!(
            "stopped at the deadline: {} steps, {} iterations; model {}",
            ppo.global_step,
            ppo.iteration,
            out.display()
        );
    } else {
        eprintln!(
            "done: {} steps, {} iterations; model {}",
            ppo.global_step,
            ppo.iteration,
            out.display()
        );
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--scenario` on a week: episodes only inside the fitting days (2-5), validation on the end of
    /// them, the scoring day (6) never played; a one-day scenario trains on its first half.
    #[test]
    fn one_workload_stays_inside_the_fitting_window() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cfg = TrainConfig::load(&repo.join("configs/ppo.toml")).unwrap();
        let template = cfg.mix[0].clone();
        let week = rlscale_sim::Scenario::resolve(
            &repo.join("envs"),
            "diurnal-8b-l4-v1",
            &Default::default(),
        )
        .unwrap();
        let said = one_workload(&mut cfg, &week).unwrap();
        assert!(
            said.contains("scoring window (hours 144.0-168.0) is never played"),
            "{said}"
        );
        let [e] = cfg.mix.as_slice() else {
            panic!("{:?}", cfg.mix)
        };
        assert_eq!(e.min_offset_s, 2.0 * 86_400.0);
        // The last episode ends where day 6 begins.
        assert_eq!(e.max_offset_s + e.steps as f64 * 15.0, 6.0 * 86_400.0);
        assert_eq!(e.rate_scale, template.rate_scale);
        assert_eq!(e.cold_start_scale, template.cold_start_scale);
        let v = cfg.validation.as_ref().unwrap();
        assert_eq!(v.offset_s + v.steps as f64 * 15.0, 6.0 * 86_400.0);
        assert_eq!(v.seeds, vec![2001, 2002]);
        cfg.validate().unwrap();

        let day = rlscale_sim::Scenario::resolve(
            &repo.join("envs"),
            "flash-crowd-8b-l4-v1",
            &Default::default(),
        )
        .unwrap();
        one_workload(&mut cfg, &day).unwrap();
        let e = &cfg.mix[0];
        assert_eq!(e.min_offset_s, 0.0);
        assert_eq!(e.max_offset_s + e.steps as f64 * 15.0, 43_200.0);
    }

    /// Fewer losses win at a like ratio; a far worse total does not win by one loss fewer; no loss at
    /// the HPA's level beats one loss at a big saving elsewhere.
    #[test]
    fn selection_weighs_losses_and_the_total() {
        let hpa = [100.0; 12];
        // `losses` episodes above HPA's, the others at a saving, with a mean ratio of `ratio`.
        let at = |ratio: f64, losses: usize| -> Vec<f64> {
            if losses == 0 {
                return vec![ratio * 100.0; 12];
            }
            let win = (ratio - 0.2).min(0.9);
            let lost = (12.0 * ratio - win * (12 - losses) as f64) / losses as f64;
            (0..12)
                .map(|i| 100.0 * if i < losses { lost } else { win })
                .collect()
        };
        let score = |r: f64, l: usize| {
            let e = at(r, l);
            assert_eq!(losses_to(&e, &hpa), l);
            assert!((ratio_to(&e, &hpa) - r).abs() < 1e-9);
            selection_score(&e, &hpa, &[false; 12])
        };
        // An episode below its SLO target is lost even where the objective beats HPA's (the bursty
        // family): the lean network that misses it no longer wins over a safe one.
        let e = at(0.8, 2);
        let mut misses = [false; 12];
        assert_eq!(lost(&e, &hpa, &misses), 2);
        misses[11] = true;
        assert_eq!(lost(&e, &hpa, &misses), 3);
        misses[0] = true; // already lost on the objective: counted once
        assert_eq!(lost(&e, &hpa, &misses), 3);
        misses[0] = false;
        assert!(
            selection_score(&at(0.9, 2), &hpa, &[false; 12]) < selection_score(&e, &hpa, &misses)
        );
        assert!(score(0.9, 2) < score(0.9, 3));
        assert!(score(0.95, 4) < score(1.7, 3), "run I's case");
        assert!(score(0.99, 0) < score(0.6, 1));
        assert!(
            score(0.45, 1) < score(0.99, 0),
            "one loss at under half the ratio"
        );
    }
}
