//! `rlscale tune`: fair tuning of one baseline's main knob per scenario, written to
//! `configs/baselines/<law>-tuned.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rlscale_baselines::BaselineConfig;
use rlscale_eval::policies::NamedBaseline;
use rlscale_eval::tune::{Window, default_grid, tune, windows};
use rlscale_sim::{Overrides, Scenario};

use crate::fsutil::write_atomic;
use crate::{BadInput, policy_spec, select};

/// Arguments of `rlscale tune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The law: hpa, keda, kpa, ray, apa, static or predictive.
    #[arg(long, value_name = "LAW")]
    pub baseline: String,

    /// Comma-separated scenario ids, paths or globs (`--scenario` is accepted too).
    #[arg(long = "scenarios", alias = "scenario", value_name = "LIST")]
    pub scenario: String,

    /// Knob values to try, comma-separated [default: the law's grid; static bisects every N].
    #[arg(long, value_name = "LIST")]
    pub grid: Option<String>,

    /// Window length in control steps: fit on the first N steps, score on N steps half an episode
    /// later [default: a history of two whole days or more is fitted on up to four whole days and
    /// scored on its last whole day; a shorter one on its halves].
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,

    /// Seeds of the training window.
    #[arg(long, default_value = "101", value_name = "LIST")]
    pub train_seeds: String,

    /// Seeds of the scoring window (later on the same workload).
    #[arg(long, default_value = "201,202", value_name = "LIST")]
    pub score_seeds: String,

    /// Name of the written baseline [default: <law>-tuned].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Folder of named baseline files [default: ./configs/baselines, else the one shipped with the
    /// source].
    #[arg(long, value_name = "DIR")]
    pub configs: Option<PathBuf>,

    /// A trace CSV (`t_s,rps[,...]`) for the scenarios whose trace cannot be shipped (nasa-http-*,
    /// alibaba-lora-*); other scenarios keep their own.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,

    /// Worker threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>, BadInput> {
    let v: Result<Vec<T>, _> = s.split(',').map(|x| x.trim().parse::<T>()).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(BadInput(format!(
            "{flag} `{s}`: expected a comma-separated list of numbers"
        ))),
    }
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let base = BaselineConfig::default_for(&args.baseline).ok_or_else(|| {
        BadInput(format!(
            "--baseline `{}`: not one of {}",
            args.baseline,
            BaselineConfig::LAWS.join(", ")
        ))
    })?;
    let grid: Vec<f64> = match &args.grid {
        Some(g) => parse_list("--grid", g)?,
        None => default_grid(&args.baseline),
    };
    let train_seeds: Vec<u64> = parse_list("--train-seeds", &args.train_seeds)?;
    let score_seeds: Vec<u64> = parse_list("--score-seeds", &args.score_seeds)?;
    if args.steps == Some(0) {
        return Err(BadInput("--steps must be at least 1".into()).into());
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-tuned", args.baseline));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || BaselineConfig::default_for(&name).is_some()
    {
        return Err(BadInput(format!(
            "--name `{name}`: use letters, digits, - and _, and not a law's own name"
        ))
        .into());
    }
    let configs = policy_spec::configs_dir(&args.configs);
    let path = configs.join(format!("{name}.toml"));
    let mut file = if path.is_file() {
        let f = NamedBaseline::read(&path).map_err(|e| BadInput(e.to_string()))?;
        if f.base.law() != base.law() {
            return Err(BadInput(format!(
                "{} holds a {} baseline, not {}; pick another --name",
                path.display(),
                f.base.law(),
                base.law()
            ))
            .into());
        }
        f
    } else {
        NamedBaseline {
            name: name.clone(),
            base: base.clone(),
            knob: None,
            scenarios: Default::default(),
        }
    };
    // Tune around the file's own base (a user may have edited it), not the peers' defaults.
    let base = file.base.clone();
    for v in &grid {
        base.with_knob(*v).validate().map_err(|e| {
            BadInput(format!(
                "--grid value {v} with the base in {}: {e}",
                path.display()
            ))
        })?;
    }
    file.knob = Some(base.knob().name.to_string());

    let (scenarios, skipped) = select::scenarios(
        envs,
        &args.scenario,
        &Overrides::default(),
        args.trace.as_deref(),
    )?;
    for s in &skipped {
        eprintln!("skipped {}: {}", s.id, s.reason);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let per = if matches!(base, BaselineConfig::Static(_)) {
        8
    } else {
        grid.len()
    };
    let pb = ProgressBar::new((scenarios.len() * (per + 1)) as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} grid points  ETA {eta}  {msg}",
        )
        .expect("a valid template"),
    );
    std::fs::create_dir_all(&configs)
        .with_context(|| format!("cannot create {}", configs.display()))?;
    for sc in &scenarios {
        let dt = sc.file.control_interval_s;
        let plan = windows(sc.file.max_episode_steps, dt, args.steps);
        // The user's trace stood in for an unshipped one: keep it.
        let trace = match (&sc.arrivals, &args.trace) {
            (rlscale_sim::config::Arrivals::Trace { trace, .. }, Some(t)) if trace.path == *t => {
                Some(t.clone())
            }
            _ => None,
        };
        let load = |w| window_scenario(sc, w, trace.clone());
        let (train_sc, score_sc) = (load(plan.fit)?, load(plan.score)?);
        let train_w = Window::at(plan.fit, &train_seeds);
        let score_w = Window::at(plan.score, &score_seeds);
        pb.set_message(sc.id().to_string());
        let entry = pool
            .install(|| {
                tune(
                    &base,
                    (&train_sc, &train_w),
                    (&score_sc, &score_w),
                    &grid,
                    |_| pb.inc(1),
                )
            })
            .map_err(|e| BadInput(e.to_string()))?;
        pb.inc(1);
        let mut line = format!(
            "{:<34} {} = {:<6} train ({}): ${:.2} at {:.2} % SLO   score ({}): ${:.2} at {:.2} % SLO",
            sc.id(),
            base.knob().name,
            entry.value,
            window_words(&train_w, dt),
            entry.train.cost_usd,
            entry.train.slo_attainment_pct,
            window_words(&score_w, dt),
            entry.score.cost_usd,
            entry.score.slo_attainment_pct,
        );
        if !entry.feasible {
            line.push_str(&format!(
                "\n  warning: no value of {} met the SLO target on the training window; {} (the highest attainment there) is kept with feasible = false, and evaluate marks it †",
                base.knob().name,
                entry.value
            ));
        }
        if let Some(note) = &entry.note {
            line.push_str(&format!(
                "\n  note: {note}{}",
                if plan.whole_days || args.steps.is_some() {
                    ""
                } else {
                    " (a history under two days is split in halves)"
                }
            ));
        }
        if pb.is_hidden() {
            eprintln!("{line}");
        } else {
            pb.println(line);
        }
        file.scenarios.insert(sc.id().to_string(), entry);
        // Save after every scenario: an interrupted run keeps what it finished.
        save(&path, &file)?;
    }
    pb.finish_and_clear();
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `sc` cut to one window, `(offset seconds, steps)`, as tuning and `rlscale fit` play it; `trace`
/// stands in for an unshipped trace.
pub(crate) fn window_scenario(
    sc: &Scenario,
    (offset, steps): (f64, u64),
    trace: Option<PathBuf>,
) -> Result<std::sync::Arc<Scenario>> {
    let o = Overrides {
        max_episode_steps: Some(steps),
        window_offset_s: Some(offset),
        trace,
        ..Overrides::default()
    };
    Ok(std::sync::Arc::new(Scenario::load(&sc.path, &o)?))
}

/// `day 2 00:00 + 4 d` style: where a window starts and how long it is.
pub(crate) fn window_words(w: &Window, dt: f64) -> String {
    let minutes = (w.offset_s / 60.0).round() as u64;
    let (day, hh, mm) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let len_h = w.steps as f64 * dt / 3600.0;
    let len = if len_h >= 24.0 && (len_h / 24.0).fract() == 0.0 {
        format!("{} d", len_h / 24.0)
    } else {
        format!("{len_h:.1} h")
    };
    format!("day {day} {hh:02}:{mm:02} + {len}")
}

fn save(path: &Path, file: &NamedBaseline) -> Result<()> {
    let body = toml::to_string(file).context("cannot serialize the tuned baseline")?;
    let text = format!(
        "# Written by `rlscale tune --baseline {law}`: the base settings (the peers' defaults) and, per\n\
         # scenario, the value of `{knob}` with the least GPU cost at SLO attainment >= the target on the\n\
         # training window, and its score on a separate window. Edit `base` by hand if you like; re-run\n\
         # `rlscale tune` to refresh the values.\n\n{body}",
        law = file.base.law(),
        knob = file.knob.as_deref().unwrap_or("?"),
    );
    write_atomic(path, &text)
}
