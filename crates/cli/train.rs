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
    /// Also copy the exported model here (e.g. models/default.json).
    #[arg(long, value_name = "PATH")]
    pub export: Option<PathBuf>,
}

/// The held-out episodes, loaded once, with each one's oracle bound.
struct Validation {
    every: u64,
    episodes: Vec<(Arc<rlscale_sim::Scenario>, u64, rlscale_eval::oracle::Bound)>,
}

/// Mean objective $, SLO attainment % and GPU $ of `policy` over the validation episodes.
fn validate(v: &Validation, policy: &PolicyChoice) -> Result<(f64, f64, f64)> {
    use rayon::prelude::*;
    let runs: Vec<_> = v
        .episodes
        .par_iter()
        .map(|(sc, seed, bound)| run_one(sc, policy, *seed, *bound, false))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("validation: {e}"))?;
    let n = runs.len().max(1) as f64;
    Ok((
        runs.iter().map(|r| r.objective_usd).sum::<f64>() / n,
        runs.iter()
            .map(|r| r.summary.slo_attainment_pct)
            .sum::<f64>()
            / n,
        runs.iter().map(|r| r.summary.cost_usd).sum::<f64>() / n,
    ))
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
pub fn run(args: Args) -> Result<()> {
    let (cfg, dir) = match &args.resume {
        Some(run) => {
            let path = run.join("config.toml");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| BadInput(format!("--resume {}: {e}", path.display())))?;
            let mut cfg: TrainConfig =
                toml::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
            if let Some(t) = args.total_timesteps {
                cfg.ppo.total_timesteps = t;
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
            (cfg, run.clone())
        }
        None => {
            let mut cfg = TrainConfig::load(&args.config).map_err(BadInput)?;
            if let Some(s) = args.seed {
                cfg.ppo.seed = s;
            }
            if let Some(t) = args.total_timesteps {
                cfg.ppo.total_timesteps = t;
            }
            cfg.validate()
                .map_err(|e| BadInput(format!("{}: {e}", args.config.display())))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let dir = cfg.run_dir(&args.runs, now);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let text = toml::to_string(&cfg).context("cannot serialize the configuration")?;
            rlscale_trainer::atomic_write(&dir.join("config.toml"), text.as_bytes())
                .with_context(|| format!("cannot write {}/config.toml", dir.display()))?;
            (cfg, dir)
        }
    };
    let ckpts = dir.join("checkpoints");
    let mix: Arc<[_]> = cfg.mix.clone().into();
    let envs = (0..cfg.ppo.num_envs)
        .map(|_| SimTrainEnv::new(mix.clone()))
        .collect();
    let mut ppo = match checkpoint::latest(&ckpts)? {
        Some(ck) if args.resume.is_some() => {
            eprintln!("resuming {} from {}", dir.display(), ck.display());
            Ppo::resume(cfg.ppo.clone(), envs, &ck)?
        }
        _ => Ppo::new(cfg.ppo.clone(), envs).map_err(BadInput)?,
    };

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

    // Validation: the held-out episodes, and default HPA's score on them for reference.
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
                        ..Default::default()
                    },
                )?);
                for &seed in &vc.seeds {
                    let bound = oracle::plan(&sc, seed, steps, OracleConfig::default()).bound;
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
        Some(v) => {
            let hpa = PolicyChoice::parse("hpa", std::path::Path::new("."))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(validate(v, &hpa)?)
        }
        None => None,
    };
    let best_path = dir.join("best").join("best.json");
    let mut best: Option<serde_json::Value> = std::fs::read_to_string(&best_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());

    let metrics_path = dir.join("metrics.jsonl");
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
    while !ppo.finished() && !stop.load(Ordering::SeqCst) {
        let s = ppo.iterate();
        let mut line = metrics_line(&s);
        if let (Some(v), Some(hpa)) = (&validation, hpa_score)
            && s.iteration % v.every == 0
        {
            let model = export(
                &ppo,
                serde_json::json!({"validation_of_iteration": s.iteration}),
            );
            if model.validate(&dir).is_ok() {
                let label = format!("model:iteration-{}", s.iteration);
                let choice = PolicyChoice::Model {
                    label,
                    model: Arc::new(model.clone()),
                };
                let (obj, slo, cost) = validate(v, &choice)?;
                line["charts/validation_objective_usd"] = serde_json::json!(obj);
                line["charts/validation_slo_attainment_pct"] = serde_json::json!(slo);
                line["charts/validation_cost_usd"] = serde_json::json!(cost);
                line["charts/validation_objective_vs_hpa"] = serde_json::json!(obj / hpa.0);
                let better = best
                    .as_ref()
                    .and_then(|b| b["objective_usd"].as_f64())
                    .is_none_or(|b| obj < b);
                if better {
                    let info = serde_json::json!({
                        "iteration": s.iteration,
                        "global_step": s.global_step,
                        "objective_usd": obj,
                        "slo_attainment_pct": slo,
                        "cost_usd": cost,
                        "hpa": {"objective_usd": hpa.0, "slo_attainment_pct": hpa.1, "cost_usd": hpa.2},
                    });
                    let bdir = dir.join("best");
                    ppo.save_checkpoint(&bdir, 1)?;
                    let mut m = model;
                    m.provenance = serde_json::json!({"validation": info.clone()});
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
        let cost = line["charts/episodic_cost_usd"].as_f64();
        let slo = line["charts/episodic_slo_attainment_pct"].as_f64();
        let val = best
            .as_ref()
            .and_then(|b| b["objective_usd"].as_f64())
            .zip(hpa_score)
            .map_or(String::new(), |(b, h)| {
                format!("  best validation ${b:.0} (default HPA ${:.0})", h.0)
            });
        let msg = format!(
            "SPS {:.0}  episode ${}  SLO {}{val}",
            s.sps,
            cost.map_or("–".into(), |c| format!("{c:.2}")),
            slo.map_or("–".into(), |c| format!("{c:.2} %")),
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
    let provenance = serde_json::json!({
        "config": cfg,
        "seed": cfg.ppo.seed,
        "git_revision": git_revision(),
        "scenario_mix": cfg.mix.iter().map(|m| m.scenario.display().to_string()).collect::<Vec<_>>(),
        "global_step": ppo.global_step,
        "iteration": ppo.iteration,
        "run": dir.display().to_string(),
        "validation": {"best": best, "hpa_objective_usd": hpa_score.map(|h| h.0)},
    });
    let model = export(&ppo, provenance);
    let out = dir.join("model.json");
    // A diverged run (NaN weights) must not overwrite a good model file.
    model
        .validate(&out)
        .context("the trained network cannot be exported")?;
    model
        .save(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(p) = &args.export {
        model
            .save(p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("exported {}", p.display());
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted at iteration {}: saved {} and {}; continue with `rlscale train --resume {}`",
            ppo.iteration,
            ck.display(),
            out.display(),
            dir.display()
        );
    } else {
        eprintln!(
            "done: {} steps, {} iterations; model {}",
            ppo.global_step,
            ppo.iteration,
            out.display()
        );
    }
    Ok(())
}
