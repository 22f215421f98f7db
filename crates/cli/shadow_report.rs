//! `rlscale shadow-report`: the controller's shadow-mode decision log as a report for a go/no-go
//! meeting (Markdown and HTML with plots, plus JSON), with a counterfactual replay in the simulator.
//! The work is done by `rlscale_eval::shadow`; this file parses the flags, shows progress and maps
//! errors to exit codes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rlscale_eval::shadow::{self, DecisionLog, Options, ShadowError};

use crate::BadInput;

/// Arguments of `rlscale shadow-report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The controller's decision log (JSONL, written by `rlscale controller --decision-log FILE`).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,

    /// Only decisions at or after TIME: RFC 3339 (2024-05-06T09:00:00Z, 2024-05-06T11:00:00+02:00)
    /// or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only decisions at or before TIME (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Only this RLAutoscaler [default: every object in the log].
    #[arg(long, value_name = "NS/NAME")]
    pub object: Option<String>,

    /// The model file to replay as ours, in place of the path the log names (a path inside the
    /// controller's container): pass the same file the controller loaded. Objects that ran without
    /// a model keep playing the fallback law.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// Simulator seeds of the replay (seeds 0 to N−1), for the spread and confidence intervals.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub seeds: u64,

    /// Skip the counterfactual replay (divergence and timing from the log only).
    #[arg(long)]
    pub no_replay: bool,

    /// Output folder: report.md, report.html, report.json, plots/ and replay/ (the replayed
    /// scenarios).
    #[arg(long, default_value = "runs/shadow-report", value_name = "DIR")]
    pub out: PathBuf,

    /// Worker threads for the replay [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Verdict: the log must cover at least this long (e.g. 24h, 90m) ...
    #[arg(long, default_value = "24h", value_parser = rlscale_controller::cli::parse_duration, value_name = "DURATION", help_heading = "Verdict thresholds")]
    pub min_coverage: std::time::Duration,

    /// ... and its 1-minute arrival rate must span at least this range (95th over 5th percentile).
    #[arg(
        long,
        default_value_t = 1.5,
        value_name = "X",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub min_traffic_range: f64,

    /// Verdict: ours may cost at most this much more than the HPA in the replay, percent of the
    /// HPA's GPU cost, at the upper end of the paired 95 % confidence interval (0: no more than the
    /// HPA; negative: a saving is required).
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub max_cost_increase_pct: f64,

    /// Verdict: our recommendation may change at most this often per hour (flapping).
    #[arg(
        long,
        default_value_t = 12.0,
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub max_scale_events_per_hour: f64,

    /// Verdict: at most this percentage of the decisions clipped by a guardrail.
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub max_guardrail_pct: f64,

    /// Verdict: at most this percentage of the decisions made by the fallback law.
    #[arg(
        long,
        default_value_t = 5.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub max_fallback_pct: f64,

    /// Divergence: a difference of at most this many replicas from the HPA is not counted ...
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Verdict thresholds"
    )]
    pub band_replicas: u32,

    /// ... nor one of at most this percentage of the HPA's recommendation (the wider band wins).
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        help_heading = "Verdict thresholds"
    )]
    pub band_pct: f64,
}

impl Args {
    /// The verdict's thresholds, each checked to be a finite number in its range.
    fn thresholds(&self) -> Result<shadow::Thresholds> {
        let check = |flag: &str, v: f64, min: f64| -> Result<f64> {
            if v.is_finite() && v >= min {
                Ok(v)
            } else {
                Err(BadInput(format!(
                    "{flag} {v}: expected a finite number of at least {min}"
                ))
                .into())
            }
        };
        Ok(shadow::Thresholds {
            min_coverage_s: self.min_coverage.as_secs_f64(),
            min_traffic_range: check("--min-traffic-range", self.min_traffic_range, 1.0)?,
            max_cost_increase_pct: check(
                "--max-cost-increase-pct",
                self.max_cost_increase_pct,
                -100.0,
            )?,
            max_scale_events_per_hour: check(
                "--max-scale-events-per-hour",
                self.max_scale_events_per_hour,
                0.0,
            )?,
            max_guardrail_pct: check("--max-guardrail-pct", self.max_guardrail_pct, 0.0)?,
            max_fallback_pct: check("--max-fallback-pct", self.max_fallback_pct, 0.0)?,
            band_replicas: self.band_replicas,
            band_pct: check("--band-pct", self.band_pct, 0.0)?,
        })
    }
}

pub(crate) fn time_flag(flag: &str, v: &Option<String>) -> Result<Option<f64>> {
    v.as_deref()
        .map(|s| shadow::parse_time(s).map_err(|e| BadInput(format!("{flag}: {e}"))))
        .transpose()
        .map_err(Into::into)
}

/// Bad input (exit code 2) or a failure (exit code 1).
fn classify(e: ShadowError) -> anyhow::Error {
    if e.is_bad_input() {
        BadInput(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let opts = Options {
        since: time_flag("--since", &args.since)?,
        until: time_flag("--until", &args.until)?,
        object: args.object.clone(),
        model: args.model.clone(),
        seeds: args.seeds,
        replay: !args.no_replay,
        envs: envs.to_path_buf(),
        thresholds: args.thresholds()?,
    };
    if let Some(m) = &opts.model
        && !m.is_file()
    {
        return Err(BadInput(format!("--model {}: no such file", m.display())).into());
    }
    let log = DecisionLog::read(&args.log).map_err(classify)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;

    // The bar shows itself only once the replay has run for a couple of seconds.
    let started = Instant::now();
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} replay episodes  ETA {eta}",
        )
        .expect("a valid template"),
    );
    let progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        if pb.is_hidden() && started.elapsed() > Duration::from_secs(2) && done < total {
            pb.set_draw_target(ProgressDrawTarget::stderr());
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let result = pool.install(|| shadow::generate(&log, &opts, &args.out, &progress));
    pb.finish_and_clear();
    let g = result.map_err(classify)?;

    print!("{}", shadow::render::summary_markdown(&g.report));
    eprintln!(
        "{} object(s), {} decisions in {:.1} s; wrote {} ({} files: report.md, report.html, report.json, plots, replayed scenarios)",
        g.report.objects.len(),
        g.report.objects.iter().map(|o| o.decisions).sum::<usize>(),
        started.elapsed().as_secs_f64(),
        args.out.join("report.md").display(),
        g.files.len(),
    );
    Ok(())
}
