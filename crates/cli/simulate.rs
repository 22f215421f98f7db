//! `rlscale simulate`: one policy, one scenario, one seed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rlscale_sim::episode::TimelineRow;
use rlscale_sim::{Overrides, Scenario, SimEnv, Summary, run_episode};

use crate::fsutil::{AtomicFile, write_atomic};
use crate::policy_spec;

/// Arguments of `rlscale simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario id (see `rlscale scenarios`) or path to a scenario TOML file.
    #[arg(long, value_name = "ID|PATH")]
    pub scenario: String,

    /// Policy: hpa, keda, kpa, ray, apa, static (the scenario's initial replicas), predictive,
    /// static:N, oracle, NAME for configs/baselines/NAME.toml (e.g. hpa-tuned), model:PATH (a trained
    /// model through the runtime) or model-only:PATH (the bare network).
    #[arg(long, default_value = "static", value_name = "SPEC")]
    pub policy: String,

    /// Folder of named baseline files [default: ./configs/baselines, else the one shipped with the
    /// source].
    #[arg(long, value_name = "DIR")]
    pub configs: Option<PathBuf>,

    /// Episode seed: the same seed gives the same numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Write `timeline.csv` (one row per control step) and `summary.json` into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Replay this trace CSV (`t_s,rps[,...]`) instead of the scenario's; required by scenarios whose
    /// trace cannot be shipped.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,

    /// Stop after this many control steps instead of the scenario's episode length.
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,

    /// Multiply every arrival rate by this factor.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub rate_scale: Option<f64>,

    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The scenario with this run's overrides.
    pub fn load_scenario(&self, envs: &Path) -> Result<Arc<Scenario>> {
        let overrides = Overrides {
            trace: self.trace.clone(),
            max_episode_steps: self.steps,
            rate_scale: self.rate_scale,
            window_offset_s: None,
            profile_scale: None,
        };
        if self.steps == Some(0) {
            return Err(crate::BadInput("--steps must be at least 1".into()).into());
        }
        Ok(Arc::new(Scenario::resolve(
            envs,
            &self.scenario,
            &overrides,
        )?))
    }
}

fn progress(steps: u64) -> ProgressBar {
    let pb = ProgressBar::new(steps);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps ({per_sec}, ETA {eta})",
        )
        .expect("the template is valid"),
    );
    pb
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let scenario = args.load_scenario(envs)?;
    if let Some(note) = args
        .trace
        .as_deref()
        .and_then(|t| crate::select::trace_scale_note(&scenario, t))
    {
        eprintln!("{note}");
    }
    let choice = policy_spec::parse(&args.policy, &policy_spec::configs_dir(&args.configs))?;
    let mut policy = policy_spec::build(
        &choice,
        &scenario,
        args.seed,
        scenario.file.max_episode_steps,
    )?;
    let mut env = SimEnv::new(scenario.clone());
    let pb = progress(scenario.file.max_episode_steps);

    let mut timeline = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create output folder {}", dir.display()))?;
            let mut f = AtomicFile::create(&dir.join("timeline.csv"))?;
            f.line(TimelineRow::HEADER)?;
            Some(f)
        }
        None => None,
    };
    let mut write_err = None;
    let summary = run_episode(&mut env, policy.as_mut(), args.seed, |row| {
        pb.inc(1);
        if let Some(f) = timeline.as_mut()
            && write_err.is_none()
            && let Err(e) = f.line(&row.csv())
        {
            write_err = Some(e);
        }
    });
    pb.finish_and_clear();
    if let Some(e) = write_err {
        return Err(e);
    }
    // The summary with the objective the evaluation ranks policies by.
    let objective = rlscale_eval::matrix::objective(&scenario, &summary);
    let mut json = serde_json::to_value(&summary).context("cannot serialize the summary")?;
    if let Some(m) = json.as_object_mut() {
        m.insert("objective_usd".into(), objective.into());
        m.insert(
            "penalty_usd_per_violation".into(),
            scenario.slo.penalty_usd.into(),
        );
    }
    let json = serde_json::to_string_pretty(&json).context("cannot serialize the summary")?;
    if let (Some(dir), Some(f)) = (&args.out, timeline) {
        f.commit()?;
        write_atomic(&dir.join("summary.json"), &format!("{json}\n"))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_summary(&summary);
        println!(
            "objective       ${objective:.2} (cost + ${} × {} violations)",
            scenario.slo.penalty_usd, summary.slo_violations
        );
        if let Some(dir) = &args.out {
            println!(
                "wrote {}/timeline.csv and {}/summary.json",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn fmt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2} s"))
}

/// Print a summary as a two-column table.
pub fn print_summary(s: &Summary) {
    let ok = if s.slo_attainment_pct >= s.slo_target_pct {
        "meets"
    } else {
        "MISSES"
    };
    println!("scenario        {}", s.scenario);
    println!("policy          {}", s.policy);
    println!("seed            {}", s.seed);
    println!("simulated       {:.1} h ({} steps)", s.sim_hours, s.steps);
    println!("GPU-hours       {:.2}", s.gpu_hours);
    println!("cost            ${:.2}", s.cost_usd);
    println!(
        "SLO attainment  {:.3} % ({ok} the {:.1} % target; limit {} s)",
        s.slo_attainment_pct, s.slo_target_pct, s.slo_latency_s
    );
    println!(
        "latency         p50 {}  p95 {}  p99 {}",
        fmt_s(s.latency_p50_s),
        fmt_s(s.latency_p95_s),
        fmt_s(s.latency_p99_s)
    );
    println!(
        "requests        {} arrived, {} completed, {} dropped",
        s.arrivals, s.completed, s.dropped
    );
    println!(
        "queue wait      mean {:.3} s, {:.1} % of requests waited",
        s.mean_wait_s,
        100.0 * s.p_wait
    );
    println!(
        "replicas        mean {:.1}, max {}; {} scale events, {} cold starts",
        s.mean_replicas, s.max_replicas, s.scale_events, s.cold_starts
    );
    println!("reward          {:.1}", s.total_reward);
}
