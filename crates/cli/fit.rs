//! `rlscale fit`: for one workload, which autoscaler is cheapest at its SLO, by how much, and can it
//! be trusted? One command, one folder:
//!
//! ```text
//! <out>/
//!   report.md, report.html   the comparison, plots inlined in the HTML (self-contained)
//!   results.json             every contender's figures, the windows, the winner
//!   model.json               the fine-tuned model
//!   rlautoscaler.yaml        an RLAutoscaler (Shadow mode) for the winner
//!   baselines/<law>-tuned.toml  each tuned rule, as `rlscale tune` writes it (--configs <out>/baselines)
//!   plots/                   cost vs SLO, and every contender's replicas at the worst hour (PNG, SVG)
//!   train/                   the fine-tuning run (`rlscale train` folder: resumable, best/)
//!   workload/                with --trace: the scenario built from it
//!   .fit/                    finished stages, so that a second run with the same arguments resumes
//! ```
//!
//! Protocol: the windows and seeds of `rlscale tune` ([`rlscale_eval::tune::windows`]). Every knob is
//! fitted, and the model fine-tuned, on the fitting window (seeds `--fit-seeds`; training draws its own
//! seeds inside the window and validates on its end); every contender is scored on the later scoring
//! window with other seeds (`--score-seeds`), which nothing fitted on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rlscale_baselines::BaselineConfig;
use rlscale_controller::cli::parse_duration;
use rlscale_eval::matrix::{MatrixResult, run_matrix};
use rlscale_eval::plot::{self, ReplicaSeries, ScatterPoint, TimelinePlot};
use rlscale_eval::policies::{NamedBaseline, PolicyChoice};
use rlscale_eval::report::{self, Row};
use rlscale_eval::tune::{TunedEntry, Window, WindowPlan, default_grid, tune, windows};
use rlscale_sim::{Overrides, Scenario, SimEnv, Trace, run_episode};
use serde::{Deserialize, Serialize};

use crate::BadInput;
use crate::fsutil::write_atomic;

/// Each window must hold at least this much traffic, seconds.
pub const MIN_WINDOW_S: f64 = 3600.0;

/// The shortest budget: tuning, a few fine-tuning iterations and the scoring need about this.
const MIN_BUDGET: Duration = Duration::from_secs(60);

/// Fine-tuning steps per second of budget, for the run's length (its learning rate anneals over it):
/// about what `configs/ppo.toml`'s eight envs sustained on one core (1,650 steps/s measured).
const FINE_TUNE_SPS: f64 = 1500.0;

/// Arguments of `rlscale fit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scenario id or path: its own arrivals and service profile.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "trace",
        required_unless_present = "trace"
    )]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub workload: crate::workload::WorkloadArgs,
    /// Output folder. Run the same command again to resume an interrupted fit.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Wall-clock budget of the whole fit; fine-tuning gets what tuning and scoring leave.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub budget: Duration,
    /// The generic model, fine-tuned and compared [default: models/default.json].
    #[arg(long, value_name = "MODEL.json")]
    pub model: Option<PathBuf>,
    /// The fine-tuning recipe (its PPO settings and first [[mix]] entry's randomisation)
    /// [default: configs/ppo.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The rules whose main knob is tuned (each also `--policies` in evaluate as <law>-tuned).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "hpa,keda,kpa,ray,apa,static,predictive"
    )]
    pub laws: String,
    /// Seeds of the fitting window (tuning).
    #[arg(long, default_value = "101", value_name = "LIST")]
    pub fit_seeds: String,
    /// Seeds of the scoring window (every contender).
    #[arg(long, default_value = "201,202", value_name = "LIST")]
    pub score_seeds: String,
    /// Fine-tuning steps [default: what the budget leaves, at about 1,500 steps/s; a deadline stops it when the budget runs out].
    #[arg(long, value_name = "N")]
    pub fine_tune_steps: Option<u64>,
    /// Worker threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// A file shipped with the source, found from the working directory first.
fn shipped(flag: &Option<PathBuf>, rel: &str) -> PathBuf {
    if let Some(p) = flag {
        return p.clone();
    }
    let local = PathBuf::from(rel);
    if local.is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn parse_seeds(flag: &str, s: &str) -> Result<Vec<u64>, BadInput> {
    let v: Result<Vec<u64>, _> = s.split(',').map(|x| x.trim().parse::<u64>()).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(BadInput(format!(
            "{flag} `{s}`: expected a comma-separated list of seeds"
        ))),
    }
}

/// What a fit was asked: a second run in the same folder must ask the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inputs {
    scenario: Option<String>,
    trace: Option<String>,
    profile: Option<String>,
    min_replicas: Option<u32>,
    max_replicas: Option<u32>,
    trace_start: Option<String>,
    model: String,
    config: String,
    laws: Vec<String>,
    fit_seeds: Vec<u64>,
    score_seeds: Vec<u64>,
}

/// The finished fine-tuning stage (`.fit/train.json`, written when it ends).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    run: PathBuf,
    /// Seconds of the invocation that finished it.
    seconds: f64,
}

/// One contender's figures on the scoring window (means over its seeds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contender {
    /// Its name in the report.
    pub name: String,
    /// `default`, `tuned rule`, `generic model`, `fine-tuned model` or `hindsight`.
    pub kind: String,
    /// GPU cost plus the SLO penalty, US dollars.
    pub objective_usd: f64,
    /// GPU cost, US dollars.
    pub cost_usd: f64,
    /// GPU-hours.
    pub gpu_hours: f64,
    /// SLO attainment, percent.
    pub slo_attainment_pct: f64,
    /// Attainment ≥ the scenario's target.
    pub meets_slo: bool,
    /// For a tuned rule: the knob and its value, and whether it met the target where it was fitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knob: Option<(String, f64, bool)>,
}

/// `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitResults {
    /// The scenario played (its id).
    pub scenario: String,
    /// Its service profile.
    pub profile: String,
    /// The SLO attainment target, percent.
    pub slo_target_pct: f64,
    /// Fitting window.
    pub fit_window: Window,
    /// Scoring window.
    pub score_window: Window,
    /// Both windows are whole days.
    pub whole_days: bool,
    /// How the windows' traffic differs, when it does.
    pub windows_note: Option<String>,
    /// Every contender, cheapest objective first.
    pub contenders: Vec<Contender>,
    /// The deployable contender with the lowest objective among those meeting the SLO (else the
    /// highest attainment).
    pub winner: String,
    /// The one-line recommendation.
    pub recommendation: String,
    /// The fine-tuning run's folder, steps and seconds.
    pub fine_tune: serde_json::Value,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let started = Instant::now();
    if args.budget < MIN_BUDGET {
        return Err(BadInput(format!(
            "--budget {:?}: at least {} s (tuning, fine-tuning and scoring)",
            args.budget,
            MIN_BUDGET.as_secs()
        ))
        .into());
    }
    let laws: Vec<String> = args
        .laws
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for law in &laws {
        if BaselineConfig::default_for(law).is_none() {
            return Err(BadInput(format!(
                "--laws: `{law}` is not one of {}",
                BaselineConfig::LAWS.join(", ")
            ))
            .into());
        }
    }
    if laws.is_empty() {
        return Err(BadInput("--laws names no rule".into()).into());
    }
    let fit_seeds = parse_seeds("--fit-seeds", &args.fit_seeds)?;
    let score_seeds = parse_seeds("--score-seeds", &args.score_seeds)?;
    if let Some(s) = score_seeds.iter().find(|s| fit_seeds.contains(s)) {
        return Err(BadInput(format!(
            "--score-seeds: seed {s} is also a fitting seed; scoring needs other seeds"
        ))
        .into());
    }
    let model_path = shipped(&args.model, "models/default.json");
    let config_path = shipped(&args.config, "configs/ppo.toml");
    let generic = rlscale_runtime::ModelFile::load(&model_path)
        .map_err(|e| BadInput(format!("--model: {e}")))?;
    let cfg = rlscale_trainer::run::TrainConfig::load(&config_path)
        .map_err(|e| BadInput(format!("--config: {e}")))?;
    crate::train::init_model(&model_path, &cfg)?;

    let inputs = Inputs {
        scenario: args.scenario.clone(),
        trace: args.workload.trace.as_ref().map(|p| absolute(p)),
        profile: args.workload.profile.clone(),
        min_replicas: args.workload.min_replicas,
        max_replicas: args.workload.max_replicas,
        trace_start: args
            .workload
            .trace
            .as_ref()
            .map(|_| args.workload.trace_start.clone()),
        model: absolute(&model_path),
        config: absolute(&config_path),
        laws: laws.clone(),
        fit_seeds: fit_seeds.clone(),
        score_seeds: score_seeds.clone(),
    };
    let out = &args.out;
    let state = out.join(".fit");
    let inputs_path = state.join("inputs.json");
    let fresh = !out.exists();
    if !fresh {
        match std::fs::read_to_string(&inputs_path) {
            Ok(text) => {
                let before: Inputs = serde_json::from_str(&text)
                    .map_err(|e| BadInput(format!("{}: {e}", inputs_path.display())))?;
                if before != inputs {
                    return Err(BadInput(format!(
                        "--out {}: holds a fit with other arguments ({}); give another --out, or delete it",
                        out.display(),
                        text.trim()
                    ))
                    .into());
                }
                eprintln!("resuming the fit in {}", out.display());
            }
            Err(_) if dir_is_empty(out) => {}
            Err(_) => {
                return Err(BadInput(format!(
                    "--out {}: exists and is not a fit folder (no .fit/inputs.json); give a new folder",
                    out.display()
                ))
                .into());
            }
        }
    }

    // The workload, and its windows, before anything is written.
    let scenario = match (&args.scenario, args.workload.spec()) {
        (Some(id), _) => Scenario::resolve(envs, id, &Overrides::default())?,
        (None, Some(spec)) => {
            let t = Trace::load(&spec.trace)?;
            let steps = (t.duration_s() / 15.0).floor() as u64;
            check_windows(
                &windows(steps, 15.0, None),
                15.0,
                &spec.trace.display().to_string(),
            )?;
            // Checks the profile, the start time and the bounds before it writes.
            let built = crate::workload::build(envs, &out.join("workload"), &spec);
            if built.is_err() && fresh {
                let _ = std::fs::remove_dir_all(out);
            }
            built?
        }
        _ => {
            return Err(
                BadInput("give --scenario ID, or --trace CSV --profile NAME".into()).into(),
            );
        }
    };
    let dt = scenario.file.control_interval_s;
    let plan = windows(scenario.file.max_episode_steps, dt, None);
    if let Err(e) = check_windows(&plan, dt, scenario.id()) {
        if fresh {
            let _ = std::fs::remove_dir_all(out);
        }
        return Err(e.into());
    }
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create {}", state.display()))?;
    write_atomic(&inputs_path, &serde_json::to_string_pretty(&inputs)?)?;

    let load = |w| crate::tune::window_scenario(&scenario, w, None);
    let (fit_sc, score_sc) = (load(plan.fit)?, load(plan.score)?);
    let fit_w = Window::at(plan.fit, &fit_seeds);
    let score_w = Window::at(plan.score, &score_seeds);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    eprintln!(
        "fit {}: fitting window {}, scoring window {} (seeds {:?})",
        scenario.id(),
        window_words(&fit_w, dt),
        window_words(&score_w, dt),
        score_seeds
    );

    // 1. Tune each rule's main knob on the fitting window.
    let tuned = tune_rules(
        &pool,
        &laws,
        &state,
        &out.join("baselines"),
        scenario.id(),
        (&fit_sc, &fit_w),
        (&score_sc, &score_w),
    )?;

    // 2. Fine-tune the generic model on the fitting window, in what the budget leaves.
    let reserve = Duration::from_secs_f64((args.budget.as_secs_f64() * 0.2).max(45.0));
    let deadline = started + args.budget.saturating_sub(reserve);
    let train_state = fine_tune(
        envs,
        &args,
        &state,
        &config_path,
        &model_path,
        &scenario.path,
        deadline,
        started,
    )?;
    let tuned_model_path = {
        let best = train_state.run.join("best").join("model.json");
        if best.is_file() {
            best
        } else {
            train_state.run.join("model.json")
        }
    };
    let fine = rlscale_runtime::ModelFile::load(&tuned_model_path)
        .map_err(|e| anyhow::anyhow!("the fine-tuned model: {e}"))?;

    // 3. Score every contender on the scoring window.
    let mut policies = vec![PolicyChoice::parse("hpa", Path::new("."))?];
    for (law, file) in &tuned {
        policies.push(PolicyChoice::Named {
            label: format!("{law}-tuned"),
            file: Arc::new(file.clone()),
            path: out.join("baselines").join(format!("{law}-tuned.toml")),
        });
    }
    policies.push(PolicyChoice::Model {
        label: "model:generic".into(),
        model: Arc::new(generic),
        bare: false,
        guardrails: Default::default(),
    });
    policies.push(PolicyChoice::Model {
        label: "model:fine-tuned".into(),
        model: Arc::new(fine.clone()),
        bare: false,
        guardrails: Default::default(),
    });
    policies.push(PolicyChoice::parse("oracle", Path::new("."))?);
    let eval_path = state.join("scores.json");
    let matrix: MatrixResult = match std::fs::read_to_string(&eval_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(m) => m,
        None => {
            let pb = bar(
                (policies.len() * score_seeds.len()) as u64,
                "episodes on the scoring window",
            );
            let m = pool.install(|| {
                run_matrix(
                    std::slice::from_ref(&score_sc),
                    &policies,
                    &score_seeds,
                    |r| {
                        pb.set_message(r.summary.policy.clone());
                        pb.inc(1);
                    },
                )
            })?;
            pb.finish_and_clear();
            write_atomic(&eval_path, &serde_json::to_string(&m)?)?;
            m
        }
    };

    // 4. Report.
    let rows = report::aggregate(&matrix.runs);
    let contenders = contenders(&rows, &tuned, scenario.id());
    let target = 100.0 * score_sc.slo.target;
    let winner = pick_winner(&contenders).context("no contender was scored")?;
    let hpa = contenders
        .iter()
        .find(|c| c.name == "hpa")
        .context("default HPA was not scored")?;
    let recommendation = recommend(winner, hpa, target, &score_w, dt, &scenario);
    std::fs::create_dir_all(out.join("plots"))?;
    let figures = figures(
        &out.join("plots"),
        &score_sc,
        score_seeds[0],
        &policies,
        &rows,
        target,
        winner,
    )?;
    fine.save(&out.join("model.json"))
        .with_context(|| format!("cannot write {}/model.json", out.display()))?;
    let manifest = manifest(&scenario, winner, &tuned);
    write_atomic(&out.join("rlautoscaler.yaml"), &manifest)?;
    let fit_traffic =
        rlscale_eval::tune::WindowTraffic::measure(&fit_sc, fit_seeds[0], fit_w.steps);
    let score_traffic =
        rlscale_eval::tune::WindowTraffic::measure(&score_sc, score_seeds[0], score_w.steps);
    let results = FitResults {
        scenario: scenario.id().to_string(),
        profile: scenario.file.profile.clone(),
        slo_target_pct: target,
        fit_window: fit_w.clone(),
        score_window: score_w.clone(),
        whole_days: plan.whole_days,
        windows_note: rlscale_eval::tune::traffic_note(fit_traffic, score_traffic),
        contenders: contenders.clone(),
        winner: winner.name.clone(),
        recommendation: recommendation.clone(),
        fine_tune: serde_json::json!({
            "run": train_state.run,
            "model": tuned_model_path,
            "seconds": train_state.seconds,
            "provenance_iteration": fine.provenance.get("iteration"),
            "provenance_global_step": fine.provenance.get("global_step"),
        }),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_atomic(
        &out.join("results.json"),
        &serde_json::to_string_pretty(&results)?,
    )?;
    let md = markdown(&results, &figures, dt);
    write_atomic(&out.join("report.md"), &md)?;
    write_atomic(&out.join("report.html"), &html(&results, &figures, dt))?;
    println!("{}", table(&results));
    println!("{recommendation}");
    eprintln!(
        "wrote {} (report.md, report.html, results.json, model.json, rlautoscaler.yaml) in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// Both windows hold at least [`MIN_WINDOW_S`] of traffic.
fn check_windows(plan: &WindowPlan, dt: f64, what: &str) -> Result<(), BadInput> {
    let short = plan.fit.1.min(plan.score.1) as f64 * dt;
    if short < MIN_WINDOW_S {
        return Err(BadInput(format!(
            "{what}: {:.1} h of traffic; a fit needs a fitting and a scoring window of at least {:.0} h each ({:.0} h in all)",
            (plan.fit.1 + plan.score.1) as f64 * dt / 3600.0,
            MIN_WINDOW_S / 3600.0,
            2.0 * MIN_WINDOW_S / 3600.0
        )));
    }
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}  ETA {{eta}}  {{msg}}"
        ))
        .expect("a valid template"),
    );
    pb
}

/// Tune each law (or read it back from `state`), and write `<law>-tuned.toml` into `baselines`.
fn tune_rules(
    pool: &rayon::ThreadPool,
    laws: &[String],
    state: &Path,
    baselines: &Path,
    id: &str,
    fit: (&Arc<Scenario>, &Window),
    score: (&Arc<Scenario>, &Window),
) -> Result<Vec<(String, NamedBaseline)>> {
    let points: usize = laws
        .iter()
        .map(|l| if l == "static" { 8 } else { default_grid(l).len() } + 1)
        .sum();
    let pb = bar(points as u64, "knob values tuned");
    std::fs::create_dir_all(baselines)
        .with_context(|| format!("cannot create {}", baselines.display()))?;
    let mut out = Vec::new();
    for law in laws {
        let base = BaselineConfig::default_for(law).expect("checked in run");
        let path = state.join(format!("tuned-{law}.json"));
        let entry: TunedEntry = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(e) => e,
            None => {
                pb.set_message(law.clone());
                let e = pool
                    .install(|| tune(&base, fit, score, &default_grid(law), |_| pb.inc(1)))
                    .map_err(|e| anyhow::anyhow!("tuning {law}: {e}"))?;
                write_atomic(&path, &serde_json::to_string_pretty(&e)?)?;
                e
            }
        };
        pb.inc(1);
        let line = format!(
            "{law:<11} {} = {:<6} fitted: ${:.2} at {:.2} % SLO{}",
            base.knob().name,
            entry.value,
            entry.train.cost_usd,
            entry.train.slo_attainment_pct,
            if entry.feasible {
                String::new()
            } else {
                " (warning: no value met the SLO target on the fitting window; the highest attainment is kept, marked † in the report)".into()
            }
        );
        if pb.is_hidden() {
            eprintln!("{line}");
        } else {
            pb.println(line);
        }
        let file = NamedBaseline {
            name: format!("{law}-tuned"),
            base: base.clone(),
            knob: Some(base.knob().name.to_string()),
            scenarios: BTreeMap::from([(id.to_string(), entry)]),
        };
        let text = format!(
            "# Written by `rlscale fit`: {law}'s main knob tuned on {id}'s fitting window.\n\n{}",
            toml::to_string(&file).context("cannot serialize the tuned baseline")?
        );
        write_atomic(&baselines.join(format!("{law}-tuned.toml")), &text)?;
        out.push((law.clone(), file));
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Fine-tune the generic model on the fitting window (or resume, or read back the finished run).
#[allow(clippy::too_many_arguments)]
fn fine_tune(
    envs: &Path,
    args: &Args,
    state: &Path,
    config: &Path,
    model: &Path,
    scenario: &Path,
    deadline: Instant,
    started: Instant,
) -> Result<TrainState> {
    let path = state.join("train.json");
    let before: Option<TrainState> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(s) = before {
        eprintln!("fine-tuning: done before, {}", s.run.display());
        return Ok(s);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    let steps = args
        .fine_tune_steps
        .unwrap_or_else(|| ((left * FINE_TUNE_SPS) as u64).max(20_000));
    let t0 = Instant::now();
    let runs = args.out.join("train");
    // An interrupted fit left its run without train.json: the newest run folder under train/.
    let resume = newest_run(&runs).filter(|r| r.join("checkpoints").join("latest").exists());
    eprintln!(
        "fine-tuning {} on the fitting window: {} steps, until {:.0} s into the budget",
        model.display(),
        steps,
        deadline.saturating_duration_since(started).as_secs_f64()
    );
    let targs = crate::train::Args {
        config: config.to_path_buf(),
        resume: resume.clone(),
        seed: None,
        total_timesteps: resume.is_none().then_some(steps),
        runs: runs.clone(),
        init: resume.is_none().then(|| model.to_path_buf()),
        export: None,
        scenario: resume.is_none().then(|| scenario.display().to_string()),
        workload: Default::default(),
        deadline: Some(deadline),
        validate_every: Some(10),
    };
    let run = crate::train::run_dir(envs, targs)?;
    let s = TrainState {
        run,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_atomic(&path, &serde_json::to_string_pretty(&s)?)?;
    Ok(s)
}

/// The most recently created run folder under `runs`.
fn newest_run(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("config.toml").is_file())
        .max_by_key(|p| p.file_name().map(|n| n.to_os_string()))
}

/// The contenders' figures, cheapest objective first.
fn contenders(rows: &[Row], tuned: &[(String, NamedBaseline)], id: &str) -> Vec<Contender> {
    let mut v: Vec<Contender> = rows
        .iter()
        .map(|r| {
            let tuned_law = tuned
                .iter()
                .find(|(law, _)| r.policy == format!("{law}-tuned"));
            let kind = match r.policy.as_str() {
                "hpa" => "default",
                "oracle" => "hindsight",
                "model:generic" => "generic model",
                "model:fine-tuned" => "fine-tuned model",
                _ => "tuned rule",
            };
            Contender {
                name: r.policy.clone(),
                kind: kind.into(),
                objective_usd: r.objective_usd.mean,
                cost_usd: r.cost_usd.mean,
                gpu_hours: r.gpu_hours.mean,
                slo_attainment_pct: r.slo_attainment_pct.mean,
                meets_slo: r.slo_attainment_pct.mean >= r.slo_target_pct,
                knob: tuned_law.and_then(|(_, f)| {
                    let e = f.scenarios.get(id)?;
                    Some((f.knob.clone().unwrap_or_default(), e.value, e.feasible))
                }),
            }
        })
        .collect();
    v.sort_by(|a, b| a.objective_usd.total_cmp(&b.objective_usd));
    v
}

/// The deployable contender (not the hindsight schedule) with the lowest objective among those
/// meeting the SLO target; if none does, the one with the highest attainment.
fn pick_winner(c: &[Contender]) -> Option<&Contender> {
    let deployable = || c.iter().filter(|c| c.kind != "hindsight");
    deployable()
        .filter(|c| c.meets_slo)
        .min_by(|a, b| a.objective_usd.total_cmp(&b.objective_usd))
        .or_else(|| {
            deployable().max_by(|a, b| a.slo_attainment_pct.total_cmp(&b.slo_attainment_pct))
        })
}

/// `x` against `reference`, percent (+ is more).
fn pct_change(x: f64, reference: f64) -> f64 {
    if reference > 0.0 {
        100.0 * (x - reference) / reference
    } else {
        0.0
    }
}

fn recommend(
    w: &Contender,
    hpa: &Contender,
    target: f64,
    score: &Window,
    dt: f64,
    sc: &Scenario,
) -> String {
    let slo = if w.meets_slo {
        format!("{:.2} % SLO (target {target:.1} %)", w.slo_attainment_pct)
    } else {
        format!(
            "{:.2} % SLO, BELOW the {target:.1} % target (no contender reached it)",
            w.slo_attainment_pct
        )
    };
    format!(
        "Recommendation: {} ({}): objective ${:.2} against default HPA's ${:.2} ({:+.1} %), {:.1} GPU-h against {:.1} ({:+.1} %), at {slo}, on {} (seeds {:?}). Simulated on {} with its cold starts, capacity and prices: run it in Shadow mode beside your HPA (rlscale shadow-report) before Active.",
        w.name,
        w.kind,
        w.objective_usd,
        hpa.objective_usd,
        pct_change(w.objective_usd, hpa.objective_usd),
        w.gpu_hours,
        hpa.gpu_hours,
        pct_change(w.gpu_hours, hpa.gpu_hours),
        window_words(score, dt),
        score.seeds,
        sc.file.profile,
    )
}

/// `day 2 00:00 + 4 d` style: where a window starts and how long it is.
fn window_words(w: &Window, dt: f64) -> String {
    crate::tune::window_words(w, dt)
}

/// The plots: every contender's cost against SLO on the scoring window, and each one's replicas
/// over the worst hour of the first scoring seed (the hour with the most SLO violations summed over
/// the contenders; the busiest hour if none has any).
fn figures(
    dir: &Path,
    sc: &Arc<Scenario>,
    seed: u64,
    policies: &[PolicyChoice],
    rows: &[Row],
    target: f64,
    winner: &Contender,
) -> Result<Vec<(String, PathBuf)>> {
    let mut figs = Vec::new();
    let points: Vec<ScatterPoint> = rows.iter().map(report::scatter_point).collect();
    let [_, svg] = plot::cost_vs_slo(
        &dir.join("cost-vs-slo"),
        &format!(
            "{}: GPU cost vs SLO attainment on the scoring window",
            sc.id()
        ),
        &points,
        target,
    )?;
    figs.push((
        "GPU cost against SLO attainment, every contender (mean ± sd over the scoring seeds)"
            .into(),
        svg,
    ));
    // Per-step rows of each deployable contender on the first scoring seed.
    let dt = sc.file.control_interval_s;
    let per_hour = (3600.0 / dt).round().max(1.0) as usize;
    let mut played: Vec<(String, Vec<u32>, Vec<u64>)> = Vec::new();
    let mut arrivals: Vec<u64> = Vec::new();
    for p in policies {
        if matches!(p, PolicyChoice::Oracle(_)) {
            continue;
        }
        let mut pol = p.build(sc, seed, sc.file.max_episode_steps)?;
        let mut env = SimEnv::new(sc.clone());
        let (mut targets, mut viol, mut arr) = (Vec::new(), Vec::new(), Vec::new());
        run_episode(&mut env, &mut *pol, seed, |row| {
            targets.push(row.target_replicas);
            viol.push(row.slo_violations);
            arr.push(row.arrivals);
        });
        if arrivals.is_empty() {
            arrivals = arr;
        }
        played.push((p.label(), targets, viol));
    }
    let n = arrivals.len();
    if n == 0 {
        return Ok(figs);
    }
    let hours = n.div_ceil(per_hour);
    let hour_sum = |xs: &[u64], h: usize| -> u64 {
        xs[h * per_hour..((h + 1) * per_hour).min(xs.len())]
            .iter()
            .sum()
    };
    let violations = |h: usize| -> u64 { played.iter().map(|(_, _, v)| hour_sum(v, h)).sum() };
    let worst = (0..hours)
        .max_by_key(|&h| (violations(h), hour_sum(&arrivals, h)))
        .unwrap_or(0);
    // The hour with 15 minutes either side.
    let pad = per_hour / 4;
    let lo = (worst * per_hour).saturating_sub(pad);
    let hi = ((worst + 1) * per_hour + pad).min(n);
    let t_h: Vec<f64> = (lo..hi).map(|k| k as f64 * dt / 3600.0).collect();
    let rps: Vec<f64> = arrivals[lo..hi].iter().map(|&a| a as f64 / dt).collect();
    let capacity = sc.service_profile().capacity_rps;
    let needed: Vec<f64> = rps
        .iter()
        .map(|r| {
            if capacity > 0.0 {
                r / capacity
            } else {
                f64::NAN
            }
        })
        .collect();
    // The winner, default HPA, the best tuned rule and both models: the rest crowd the panel.
    let best_rule = rows
        .iter()
        .filter(|r| r.policy.ends_with("-tuned"))
        .min_by(|a, b| a.objective_usd.mean.total_cmp(&b.objective_usd.mean))
        .map(|r| r.policy.clone());
    let series: Vec<ReplicaSeries> = played
        .iter()
        .filter(|(name, _, _)| {
            name == "hpa"
                || name == &winner.name
                || name.starts_with("model:")
                || best_rule.as_ref() == Some(name)
        })
        .map(|(name, targets, _)| ReplicaSeries {
            policy: name.clone(),
            t_h: t_h.clone(),
            replicas: targets[lo..hi].iter().map(|&x| f64::from(x)).collect(),
        })
        .collect();
    let v = violations(worst);
    let title = format!(
        "{}: the worst hour of the scoring window (hour {worst}, seed {seed}, {v} SLO violations in all)",
        sc.id()
    );
    let [_, svg] = plot::timeline(
        &dir.join("worst-hour"),
        &TimelinePlot {
            title: &title,
            t_h: &t_h,
            arrival_rps: &rps,
            needed_replicas: &needed,
            series: &series,
        },
    )?;
    figs.push((
        format!(
            "Arrivals and replicas over the worst hour of the scoring window (hours since its start; hour {worst}, with 15 minutes either side), seed {seed}: {v} SLO violations summed over the contenders shown"
        ),
        svg,
    ));
    Ok(figs)
}

/// An RLAutoscaler for the winner, in Shadow mode: a rule winner runs as the fallback law without a
/// model; a model winner runs with the best tuned rule as its fallback.
fn manifest(sc: &Scenario, w: &Contender, tuned: &[(String, NamedBaseline)]) -> String {
    let rule = |name: &str| -> Option<serde_json::Value> {
        let (_, f) = tuned
            .iter()
            .find(|(law, _)| name == format!("{law}-tuned"))?;
        let e = f.scenarios.get(sc.id())?;
        serde_json::to_value(f.base.with_knob(e.value)).ok()
    };
    let best_rule = tuned
        .iter()
        .filter_map(|(law, f)| {
            let e = f.scenarios.get(sc.id())?;
            Some((e.score.objective_usd, format!("{law}-tuned")))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n);
    let (model, fallback, comment) = match w.kind.as_str() {
        "tuned rule" => (
            None,
            rule(&w.name),
            format!(
                "the winner is a tuned rule ({}): it runs as the fallback law, without a model",
                w.name
            ),
        ),
        "default" => (
            None,
            serde_json::to_value(BaselineConfig::default_for("hpa")).ok(),
            "the winner is default HPA: keep it; this object only records beside it".into(),
        ),
        kind => (
            Some(if kind == "fine-tuned model" {
                "/models/fit.json".to_string()
            } else {
                "/models/default.json".to_string()
            }),
            best_rule.as_deref().and_then(rule),
            format!(
                "the winner is the {kind}: mount this fit's model.json at /models/fit.json (a ConfigMap); the best tuned rule ({}) decides when the model cannot",
                best_rule.as_deref().unwrap_or("hpa")
            ),
        ),
    };
    let p = sc.service_profile();
    let name = rlscale_eval::shadow::replay::dns_label(sc.id().trim_end_matches("-v1"));
    let mut spec = serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": sc.file.replicas.min,
        "maxReplicas": sc.file.replicas.max,
        "mode": "Shadow",
        "interval": sc.file.control_interval_s.round() as u64,
        "prometheus": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090"},
        "serviceProfile": {
            "coldStartSeconds": p.cold_start_s,
            "capacityRps": p.capacity_rps,
            "gpusPerReplica": p.gpus_per_replica,
            "usdPerGpuHour": p.usd_per_gpu_hour,
            "sloLatencySeconds": p.slo_latency_s,
        },
    });
    if let Some(m) = model {
        spec["model"] = serde_json::json!(m);
    }
    if let Some(f) = fallback {
        spec["fallback"] = f;
    }
    let doc = serde_json::json!({
        "apiVersion": "rlscale.dev/v1alpha1",
        "kind": "RLAutoscaler",
        "metadata": {"name": name, "namespace": "serving"},
        "spec": spec,
    });
    format!(
        "# Written by `rlscale fit` for {}: {comment}.\n# Shadow mode: it records beside your HPA and never scales; switch `mode` to Active once\n# `rlscale shadow-report` says go. Set the namespace, the Deployment's name and Prometheus's address.\n{}",
        sc.id(),
        serde_yaml::to_string(&doc).unwrap_or_default()
    )
}

/// The columns of the contenders' table.
const COLUMNS: [&str; 8] = [
    "contender",
    "kind",
    "objective $",
    "vs default HPA",
    "GPU $",
    "GPU-h",
    "SLO %",
    "knob",
];

/// Each contender's cells, in [`COLUMNS`] order, and whether it is the winner.
fn cells(r: &FitResults) -> Vec<([String; 8], bool)> {
    let hpa = r
        .contenders
        .iter()
        .find(|c| c.name == "hpa")
        .map_or(f64::NAN, |c| c.objective_usd);
    r.contenders
        .iter()
        .map(|c| {
            let knob = c.knob.as_ref().map_or(String::new(), |(k, v, feasible)| {
                format!("{k} = {v}{}", if *feasible { "" } else { " †" })
            });
            (
                [
                    c.name.clone(),
                    c.kind.clone(),
                    format!("{:.2}", c.objective_usd),
                    format!("{:+.1} %", pct_change(c.objective_usd, hpa)),
                    format!("{:.2}", c.cost_usd),
                    format!("{:.1}", c.gpu_hours),
                    format!(
                        "{:.2}{}",
                        c.slo_attainment_pct,
                        if c.meets_slo { "" } else { " ✗" }
                    ),
                    knob,
                ],
                c.name == r.winner,
            )
        })
        .collect()
}

/// The contenders' table (Markdown), the winner in bold.
fn table(r: &FitResults) -> String {
    let mut s = format!(
        "| {} |\n|---|---|---:|---:|---:|---:|---:|---|\n",
        COLUMNS.join(" | ")
    );
    for (mut row, winner) in cells(r) {
        if winner {
            row[0] = format!("**{}**", row[0]);
        }
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    s
}

fn intro(r: &FitResults, dt: f64) -> Vec<String> {
    let mut v = vec![
        format!(
            "Workload `{}` on profile `{}`, SLO target {:.1} %.",
            r.scenario, r.profile, r.slo_target_pct
        ),
        format!(
            "Fitted on {} (seeds {:?}); every contender scored on {} with other seeds ({:?}). The fine-tuned model trained inside the fitting window only.",
            window_words(&r.fit_window, dt),
            r.fit_window.seeds,
            window_words(&r.score_window, dt),
            r.score_window.seeds
        ),
    ];
    if !r.whole_days {
        v.push(format!(
            "The history is under two days, so its halves are compared: their traffic {}.",
            r.windows_note.as_deref().map_or(
                "is alike (mean and 5-minute peak within 10 %)".into(),
                |n| format!("differs: {n}")
            )
        ));
    } else if let Some(n) = &r.windows_note {
        v.push(format!("The windows' traffic differs: {n}."));
    }
    v
}

const LEGEND: &str = "✗: SLO attainment below the target. †: the tuned value missed the target on the fitting window too. `oracle` is the hindsight schedule (it knows the future; a yardstick, never the winner).";

fn markdown(r: &FitResults, figures: &[(String, PathBuf)], dt: f64) -> String {
    let mut s = format!("# rlscale fit: {}\n\n", r.scenario);
    for line in intro(r, dt) {
        let _ = writeln!(s, "{line}\n");
    }
    let _ = writeln!(s, "{}\n{LEGEND}\n", table(r));
    for (caption, svg) in figures {
        let rel = svg
            .file_name()
            .map(|f| format!("plots/{}", f.to_string_lossy()))
            .unwrap_or_default();
        let png = rel.trim_end_matches(".svg").to_string() + ".png";
        let _ = writeln!(s, "![{caption}]({png})\n\n{caption} ([SVG]({rel}))\n");
    }
    let _ = writeln!(
        s,
        "Files: `results.json`, `model.json` (the fine-tuned model), `rlautoscaler.yaml` (the winner, Shadow mode), `baselines/` (the tuned rules: `rlscale evaluate --configs <out>/baselines`), `train/` (the fine-tuning run).\n"
    );
    let _ = writeln!(s, "**{}**", r.recommendation);
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The report as one HTML file: the table, the SVG plots inlined, the recommendation.
fn html(r: &FitResults, figures: &[(String, PathBuf)], dt: f64) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rlscale fit: {}</title>\n<style>\nbody{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\ntable{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .6em}}td:nth-child(n+3){{text-align:right}}\nfigure svg{{max-width:100%;height:auto}}\n.rec{{font-weight:bold;border-left:4px solid #2a7;padding-left:.8em}}\n</style>\n</head>\n<body>\n<h1>rlscale fit: {}</h1>\n",
        escape(&r.scenario),
        escape(&r.scenario)
    );
    for line in intro(r, dt) {
        let _ = writeln!(s, "<p>{}</p>", escape(&line));
    }
    let _ = writeln!(
        s,
        "<table>\n<tr>{}</tr>",
        COLUMNS.map(|c| format!("<th>{}</th>", escape(c))).concat()
    );
    for (row, winner) in cells(r) {
        let tds: String = row
            .iter()
            .enumerate()
            .map(|(i, x)| match (i, winner) {
                (0, true) => format!("<td><b>{}</b></td>", escape(x)),
                _ => format!("<td>{}</td>", escape(x)),
            })
            .collect();
        let _ = writeln!(s, "<tr>{tds}</tr>");
    }
    let _ = writeln!(s, "</table>\n<p>{}</p>", escape(LEGEND));
    for (caption, svg) in figures {
        match std::fs::read_to_string(svg) {
            Ok(text) => {
                let start = text.find("<svg").unwrap_or(0);
                let _ = writeln!(
                    s,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    &text[start..],
                    escape(caption)
                );
            }
            Err(_) => {
                let _ = writeln!(
                    s,
                    "<p>(plot {} missing)</p>",
                    escape(&svg.display().to_string())
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<p class=\"rec\">{}</p>\n</body>\n</html>",
        escape(&r.recommendation)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, kind: &str, objective: f64, slo: f64) -> Contender {
        Contender {
            name: name.into(),
            kind: kind.into(),
            objective_usd: objective,
            cost_usd: objective,
            gpu_hours: objective / 2.0,
            slo_attainment_pct: slo,
            meets_slo: slo >= 99.0,
            knob: None,
        }
    }

    /// The winner is the cheapest deployable contender at the SLO; the hindsight schedule never wins,
    /// and without any contender at the SLO the highest attainment does.
    #[test]
    fn the_winner_is_the_cheapest_deployable_contender_at_the_slo() {
        let v = [
            c("oracle", "hindsight", 10.0, 99.9),
            c("hpa-tuned", "tuned rule", 20.0, 98.0),
            c("model:fine-tuned", "fine-tuned model", 30.0, 99.5),
            c("hpa", "default", 40.0, 99.8),
        ];
        assert_eq!(pick_winner(&v).unwrap().name, "model:fine-tuned");
        let none = [
            c("oracle", "hindsight", 10.0, 99.9),
            c("hpa-tuned", "tuned rule", 20.0, 98.0),
            c("hpa", "default", 40.0, 97.0),
        ];
        assert_eq!(pick_winner(&none).unwrap().name, "hpa-tuned");
    }

    #[test]
    fn windows_shorter_than_an_hour_are_refused() {
        // Four hours at 15 s: halves of two hours.
        assert!(check_windows(&windows(960, 15.0, None), 15.0, "t").is_ok());
        // Ninety minutes: halves of 45.
        let e = check_windows(&windows(360, 15.0, None), 15.0, "t.csv").unwrap_err();
        assert!(e.0.contains("t.csv: 1.5 h of traffic"), "{}", e.0);
    }
}
