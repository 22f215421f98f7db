//! `rlscale model inspect` and `rlscale decide`: look inside a model file, and replay snapshots
//! through the runtime's decision pipeline with its reason chain, for debugging.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rlscale_core::{MetricsSnapshot, SimTime};
use rlscale_runtime::{ModelFile, Runtime, RuntimeConfig};

use crate::BadInput;

/// Arguments of `rlscale model`.
#[derive(Debug, Parser)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Show a model file's format, feature schema, layer sizes, provenance and validation scores
    /// (after validating it exactly as the runtime does).
    Inspect {
        /// The model file (models/<name>.json).
        path: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `rlscale decide`.
#[derive(Debug, Parser)]
pub struct DecideArgs {
    /// The model file. Without it (or when it does not load) the fallback law decides, with the reason.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// A snapshot as JSON (rlscale_core::MetricsSnapshot), or JSON Lines of snapshots played in order
    /// through one runtime (its guardrails keep state between them).
    #[arg(long, value_name = "FILE")]
    pub snapshot: PathBuf,
    /// Runtime configuration (TOML: min_replicas, max_replicas, max_staleness_s, [ood], [guardrails],
    /// [fallback]). Default: 1..=64 replicas with the default guardrails and HPA fallback.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The decision time, Unix seconds (default: each snapshot's own time, i.e. fresh metrics).
    #[arg(long, value_name = "UNIX_S")]
    pub now: Option<f64>,
    /// The target the first decision starts from (default: the snapshot's ready + starting).
    #[arg(long, value_name = "N")]
    pub current: Option<u32>,
    /// Print one JSON object per decision instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `rlscale model ...`.
pub fn run_model(args: ModelArgs) -> Result<()> {
    match args.command {
        ModelCommand::Inspect { path, json } => inspect(&path, json),
    }
}

fn inspect(path: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let m = ModelFile::load(path).map_err(|e| BadInput(e.to_string()))?;
    let sizes = |layers: &[rlscale_runtime::Dense]| {
        let mut v = vec![layers.first().map_or(0, |l| l.d_in)];
        v.extend(layers.iter().map(|l| l.d_out));
        v
    };
    let params = |layers: &[rlscale_runtime::Dense]| {
        layers
            .iter()
            .map(|l| l.weight.len() + l.bias.len())
            .sum::<usize>()
    };
    let p = &m.provenance;
    let validation = &p["validation"];
    let table = m.action_table();
    let summary = serde_json::json!({
        "path": path.display().to_string(),
        "bytes": bytes,
        "format": m.format,
        "format_version": m.format_version,
        "obs_schema_version": m.obs_schema_version,
        "features": m.feature_names,
        "actor": sizes(&m.actor),
        "critic": sizes(&m.critic),
        "parameters": params(&m.actor) + params(&m.critic),
        "activation": m.activation,
        "action_table": table.name(),
        "actions": table,
        "obs_norm": {"epsilon": m.obs_norm.epsilon, "clip": m.obs_norm.clip},
        "provenance": {
            "git_revision": p["git_revision"],
            "seed": p["seed"],
            "global_step": p["global_step"],
            "iteration": p["iteration"],
            "run": p["run"],
            "scenario_mix": p["scenario_mix"],
        },
        "validation": validation,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let dims = |v: &[usize]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" → ")
    };
    println!("{}  ({bytes} bytes, valid)", path.display());
    println!(
        "format         {} v{}, feature schema v{} ({} features)",
        m.format,
        m.format_version,
        m.obs_schema_version,
        m.feature_names.len()
    );
    println!(
        "actor          {} ({}), critic {}; {} parameters",
        dims(&sizes(&m.actor)),
        m.activation,
        dims(&sizes(&m.critic)),
        params(&m.actor) + params(&m.critic)
    );
    println!(
        "actions        {} table: {}",
        table.name().unwrap_or("mixed"),
        table
            .0
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("features       {}", m.feature_names.join(", "));
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "–".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    println!(
        "provenance     git {}, seed {}, {} steps ({} iterations), run {}",
        s(&p["git_revision"]),
        s(&p["seed"]),
        s(&p["global_step"]),
        s(&p["iteration"]),
        s(&p["run"])
    );
    if let Some(mix) = p["scenario_mix"].as_array() {
        println!("scenario mix   {} entries", mix.len());
    }
    let best = &validation["best"];
    if best.is_object() {
        println!(
            "validation     best at iteration {}: {:.3}× default HPA's objective; objective ${:.2}, SLO {:.2} %, GPU ${:.2}; default HPA ${:.2}",
            s(&best["iteration"]),
            best["objective_vs_hpa"].as_f64().unwrap_or(f64::NAN),
            best["objective_usd"].as_f64().unwrap_or(f64::NAN),
            best["slo_attainment_pct"].as_f64().unwrap_or(f64::NAN),
            best["cost_usd"].as_f64().unwrap_or(f64::NAN),
            best["hpa"]["objective_usd"].as_f64().unwrap_or(f64::NAN),
        );
    } else if let Some(why) = validation["none_because"].as_str() {
        println!("validation     none: {why}");
    } else {
        println!("validation     –");
    }
    Ok(())
}

/// Run `rlscale decide`.
pub fn run_decide(args: DecideArgs) -> Result<()> {
    let cfg = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| BadInput(format!("--config {}: {e}", p.display())))?;
            let cfg: RuntimeConfig =
                toml::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", p.display())))?;
            cfg.validate()
                .map_err(|e| BadInput(format!("{}: {e}", p.display())))?;
            cfg
        }
        None => RuntimeConfig::new(1, 64),
    };
    // A model that does not load is not an error here: the runtime falls back and says why.
    let model = match &args.model {
        Some(p) => ModelFile::load(p).map(Arc::new).map_err(|e| e.to_string()),
        None => Err("no --model given".to_string()),
    };
    let mut rt = Runtime::new(model, cfg, "decide")
        .map_err(|e| BadInput(format!("runtime configuration: {e}")))?;
    let text = std::fs::read_to_string(&args.snapshot)
        .map_err(|e| BadInput(format!("--snapshot {}: {e}", args.snapshot.display())))?;
    let snapshots = parse_snapshots(&text, &args.snapshot)?;
    if let Some(n) = args.current {
        rt.set_target(n);
    }
    for s in &snapshots {
        let now = SimTime(args.now.unwrap_or(s.time.0));
        let o = rt.decide_explained(s, now);
        if args.json {
            println!("{}", serde_json::to_string(&o).context("serialize")?);
        } else {
            println!(
                "{} → {} replicas  [{} / {}]",
                o.from, o.decision.replicas, o.decision.source, o.decision.reason
            );
            for (i, n) in o.chain.iter().enumerate() {
                println!("  {}. {n}", i + 1);
            }
        }
    }
    Ok(())
}

/// One JSON snapshot, or JSON Lines of them, or the controller's decision log (each decision line's
/// snapshot; config lines are skipped); errors name the file and line. A field the controller logged
/// as `null` (its query failed) is read as missing: the runtime then holds and says which.
fn parse_snapshots(text: &str, path: &Path) -> Result<Vec<MetricsSnapshot>> {
    let one = |v: serde_json::Value| -> Result<Option<MetricsSnapshot>, String> {
        let v = match v.get("kind").and_then(serde_json::Value::as_str) {
            Some("config") => return Ok(None),
            Some("decision") => match v.get("snapshot") {
                Some(s) => s.clone(),
                None => return Err("a decision line without `snapshot`".into()),
            },
            Some(other) => {
                return Err(format!(
                    "unknown kind \"{other}\" (a decision log has \"config\" and \"decision\" lines)"
                ));
            }
            None => v,
        };
        rlscale_eval::shadow::log::snapshot_from_json(v)
            .map(|(s, _)| Some(s))
            .map_err(|e| format!("not a metrics snapshot: {e}"))
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
        && let Ok(Some(s)) = one(v)
    {
        return Ok(vec![s]);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: String| BadInput(format!("{}: line {}: {e}", path.display(), i + 1));
        let v = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(s) = one(v).map_err(bad)? {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err(BadInput(format!("{}: no snapshot in the file", path.display())).into());
    }
    Ok(out)
}
