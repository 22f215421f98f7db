//! `rlscale scenarios`: list the scenarios and their profiles.

use std::path::Path;

use anyhow::Result;
use rlscale_sim::config::{ArrivalSpec, ScenarioFile, list_scenario_files, read_toml};

/// Arguments of `rlscale scenarios`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON lines (one object per scenario) instead of a table.
    #[arg(long)]
    json: bool,
}

fn kind(a: &ArrivalSpec) -> &'static str {
    match a {
        ArrivalSpec::Poisson { .. } => "poisson",
        ArrivalSpec::Diurnal { .. } => "diurnal",
        ArrivalSpec::Mmpp { .. } => "mmpp",
        ArrivalSpec::FlashCrowd { .. } => "flash_crowd",
        ArrivalSpec::Piecewise { .. } => "piecewise",
        ArrivalSpec::OnOff { .. } => "on_off",
        ArrivalSpec::Trace { file: None, .. } => "trace (bring your own)",
        ArrivalSpec::Trace { .. } => "trace",
    }
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let files = list_scenario_files(envs)?;
    if files.is_empty() {
        return Err(
            crate::BadInput(format!("no scenario files (*.toml) in {}", envs.display())).into(),
        );
    }
    if !args.json {
        println!(
            "{:<36} {:<16} {:<24} {:>8}  description",
            "id", "profile", "arrivals", "hours"
        );
    }
    for path in files {
        let f: ScenarioFile = read_toml(&path)?;
        let hours = f.max_episode_steps as f64 * f.control_interval_s / 3600.0;
        if args.json {
            let v = serde_json::json!({
                "id": f.id, "profile": f.profile, "arrivals": kind(&f.arrivals), "episode_hours": hours,
                "description": f.description, "path": path.display().to_string(),
            });
            println!("{v}");
        } else {
            println!(
                "{:<36} {:<16} {:<24} {:>8.1}  {}",
                f.id,
                f.profile,
                kind(&f.arrivals),
                hours,
                f.description
            );
        }
    }
    Ok(())
}
