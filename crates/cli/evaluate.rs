//! `rlscale evaluate`: every policy on every scenario and seed, in parallel; a Markdown table on stdout,
//! CSV, JSON and plots in `--out`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rlscale_eval::matrix::{RunResult, run_matrix};
use rlscale_eval::report;
use std::sync::Arc;

use rlscale_eval::policies::PolicyChoice;
use rlscale_sim::{Overrides, Scenario};

use crate::fsutil::write_atomic;
use crate::{BadInput, policy_spec, select};

/// The default policy list: every baseline, the tuned ones, and the oracle.
pub const DEFAULT_POLICIES: &str = "hpa,hpa-tuned,keda,keda-tuned,kpa,kpa-tuned,ray,ray-tuned,apa,apa-tuned,static,static-tuned,predictive,predictive-tuned,oracle";

/// Arguments of `rlscale evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Comma-separated policies: hpa, keda, kpa, ray, apa, static, predictive (the peers' defaults),
    /// static:N, oracle (the hindsight schedule), NAME for configs/baselines/NAME.toml (the
    /// `*-tuned` files `rlscale tune` writes), model:PATH (a trained model through the runtime:
    /// checks, guardrails, fallback), model-only:PATH (the bare network, for diagnosis) or
    /// model-sampled:PATH (the bare network drawing its actions as in training, seeded).
    #[arg(long, default_value = DEFAULT_POLICIES, value_name = "LIST")]
    pub policies: String,

    /// Comma-separated scenario ids, paths or globs (`*-8b-l4-v1`). Globs skip scenarios whose trace
    /// you must supply.
    #[arg(long, default_value = "*", value_name = "LIST")]
    pub scenarios: String,

    /// Seeds per scenario × policy (seeds `seed-base`, `seed-base + 1`, …).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub seeds: u64,

    /// The first seed.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed_base: u64,

    /// Stop every episode after this many control steps instead of the scenario's length.
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,

    /// Output folder for summary.md, summary.csv, runs.csv, results.json and plots/
    /// [default: runs/evaluate-<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Folder of named baseline files [default: ./configs/baselines, else the one shipped with the
    /// source].
    #[arg(long, value_name = "DIR")]
    pub configs: Option<PathBuf>,

    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,

    /// A trace CSV (`t_s,rps[,...]`) for the scenarios whose trace cannot be shipped (nasa-http-*,
    /// alibaba-lora-*); other scenarios keep their own.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,

    /// Worker threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// A TOML file of the runtime's guardrails for the `model:` policies, as in a runtime config's
    /// `[guardrails]` table (max_step_up, max_step_down, scale_down_stabilization_s, anti_cascade,
    /// cascade_drain_s, cascade_headroom; a field left out keeps the runtime's default), to score
    /// a model under the guardrails your controller runs with [default: the runtime's].
    #[arg(long, value_name = "TOML")]
    pub guardrails: Option<PathBuf>,
}

/// The guardrails in `path` (a TOML table of [`rlscale_runtime::Guardrails`]' fields).
fn read_guardrails(path: &Path) -> Result<rlscale_runtime::Guardrails> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadInput(format!("--guardrails {}: {e}", path.display())))?;
    let g: rlscale_runtime::Guardrails =
        toml::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    g.validate()
        .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    Ok(g)
}

/// `YYYYmmdd-HHMMSS` (UTC) of now.
fn stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let (y, m, d, hh, mm, ss) = rlscale_core::SimTime(secs).civil();
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    if args.seeds == 0 {
        return Err(BadInput("--seeds must be at least 1".into()).into());
    }
    if args.steps == Some(0) {
        return Err(BadInput("--steps must be at least 1".into()).into());
    }
    if args.seed_base.checked_add(args.seeds - 1).is_none() {
        return Err(BadInput(format!(
            "--seed-base {} with --seeds {}: the last seed would pass {}",
            args.seed_base,
            args.seeds,
            u64::MAX
        ))
        .into());
    }
    let configs = policy_spec::configs_dir(&args.configs);
    let mut policies = policy_spec::parse_list(&args.policies, &configs)?;
    if let Some(path) = &args.guardrails {
        let g = read_guardrails(path)?;
        policies = policies.into_iter().map(|p| p.with_guardrails(g)).collect();
    }
    let overrides = Overrides {
        max_episode_steps: args.steps,
        ..Overrides::default()
    };
    let (scenarios, skipped) =
        select::scenarios(envs, &args.scenarios, &overrides, args.trace.as_deref())?;
    for s in &skipped {
        eprintln!("skipped {}: {}", s.id, s.reason);
    }
    let infeasible = infeasible_fits(&policies, &scenarios);
    for (policy, scenario, value, path) in &infeasible {
        eprintln!(
            "warning: {policy} on {scenario}: its tuned value {value} missed the SLO target on the window it was fitted on (feasible = false in {}); it is played anyway and marked † in summary.md",
            path.display()
        );
    }
    let seeds: Vec<u64> = (0..args.seeds).map(|k| args.seed_base + k).collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/evaluate-{}", stamp())));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;

    let total = (scenarios.len() * policies.len() * seeds.len()) as u64;
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} episodes  ETA {eta}  {msg}",
        )
        .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let result = pool.install(|| {
        run_matrix(&scenarios, &policies, &seeds, |r: &RunResult| {
            pb.set_message(format!("{} / {}", r.summary.scenario, r.summary.policy));
            pb.inc(1);
        })
    });
    pb.finish_and_clear();
    let m = result.map_err(|e| BadInput(e.to_string()))?;
    let wall = started.elapsed().as_secs_f64();

    let rows = report::aggregate(&m.runs);
    let table = mark_infeasible(&report::markdown(&rows), &infeasible);
    print!("{table}");
    write_atomic(&out.join("summary.md"), &table)?;
    write_atomic(&out.join("summary.csv"), &report::rows_csv(&rows))?;
    write_atomic(&out.join("runs.csv"), &report::runs_csv(&m.runs))?;
    let lean: Vec<RunResult> = m
        .runs
        .iter()
        .map(|r| RunResult {
            timeline: Vec::new(),
            ..r.clone()
        })
        .collect();
    let json = serde_json::json!({
        "policies": policies.iter().map(|p| p.label()).collect::<Vec<_>>(),
        "scenarios": scenarios.iter().map(|s| s.id()).collect::<Vec<_>>(),
        "skipped": skipped.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        "infeasible_fits": infeasible
            .iter()
            .map(|(p, s, v, _)| serde_json::json!({"policy": p, "scenario": s, "value": v}))
            .collect::<Vec<_>>(),
        "seeds": seeds,
        "wall_s": wall,
        "rows": rows,
        "runs": lean,
    });
    write_atomic(
        &out.join("results.json"),
        &serde_json::to_string_pretty(&json)?,
    )?;
    let mut plots = 0;
    if !args.no_plots {
        let dir = out.join("plots");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create plot folder {}", dir.display()))?;
        plots = report::plots(&m, &rows, &dir)?.len();
    }
    eprintln!(
        "{} episodes ({} scenarios × {} policies × {} seeds) in {:.1} s; wrote {} (summary.md, summary.csv, runs.csv, results.json, {} plot files)",
        m.runs.len(),
        scenarios.len(),
        policies.len(),
        seeds.len(),
        wall,
        out.display(),
        plots
    );
    let broken = report::bound_violations(&m.runs);
    if !broken.is_empty() {
        anyhow::bail!(
            "the oracle's lower bound was beaten, so the bound or the simulator is wrong:\n{}",
            broken.join("\n")
        );
    }
    Ok(())
}

/// `(policy, scenario, value, file)` for each tuned entry in play whose fit missed the SLO target.
fn infeasible_fits(
    policies: &[PolicyChoice],
    scenarios: &[Arc<Scenario>],
) -> Vec<(String, String, f64, PathBuf)> {
    let mut out = Vec::new();
    for p in policies {
        let PolicyChoice::Named { label, file, path } = p else {
            continue;
        };
        for sc in scenarios {
            if let Some(e) = file.scenarios.get(sc.id())
                && !e.feasible
            {
                out.push((label.clone(), sc.id().to_string(), e.value, path.clone()));
            }
        }
    }
    out
}

/// The Markdown table with `policy †` on the rows played with an infeasible fit, and a footnote.
fn mark_infeasible(table: &str, infeasible: &[(String, String, f64, PathBuf)]) -> String {
    if infeasible.is_empty() {
        return table.to_string();
    }
    let mut out = String::new();
    for line in table.lines() {
        let hit = infeasible
            .iter()
            .find(|(p, s, _, _)| line.starts_with(&format!("| {s} | {p} |")));
        match hit {
            Some((p, s, _, _)) => {
                out.push_str(&line.replacen(
                    &format!("| {s} | {p} |"),
                    &format!("| {s} | {p} † |"),
                    1,
                ));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.push_str("\n† tuned on a window where no value of the knob met the SLO target (`feasible = false` in its file): the value with the highest attainment there is played.\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn infeasible_fits_are_marked() {
        let table = "| scenario | policy | GPU-h |\n|---|---|---:|\n| a | hpa-tuned | 1 |\n| a | hpa | 2 |\n| b | hpa-tuned | 3 |\n";
        let m = super::mark_infeasible(
            table,
            &[("hpa-tuned".into(), "a".into(), 128.0, "x.toml".into())],
        );
        assert!(m.contains("| a | hpa-tuned † | 1 |"), "{m}");
        assert!(
            m.contains("| a | hpa | 2 |") && m.contains("| b | hpa-tuned | 3 |"),
            "{m}"
        );
        assert!(m.contains("† tuned on a window where"), "{m}");
        assert_eq!(super::mark_infeasible(table, &[]), table);
    }

    #[test]
    fn stamp_is_a_utc_timestamp() {
        let s = super::stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("20") && s.as_bytes()[8] == b'-', "{s}");
    }
}
