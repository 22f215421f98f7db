//! `rlscale train`: PPO on a scenario mixture, into a tidy run folder that can be resumed.
//!
//! ```text
//! runs/{mix}__{exp}__{seed}__{unix time}/
//!   config.toml      the resolved configuration (what --resume reads back)
//!   metrics.jsonl    one line per iteration, cleanrl's metric names
//!   events.out.tfevents.*  the same scalars for TensorBoard (`tensorboard --logdir runs`)
//!   checkpoints/     ckpt-NNNNNN/ folders and `latest` (atomic; see rlscale_trainer::checkpoint)
//!   model.json       the exported model (rlscale_trainer::export), at the end or on Ctrl-C
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
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
        let line = metrics_line(&s);
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
        let msg = format!(
            "SPS {:.0}  episode ${}  SLO {}",
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
        "validation": serde_json::Value::Null,
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
