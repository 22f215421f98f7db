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

/// The table: each column as wide as its widest cell (ids grow past any fixed width), hours
/// right-aligned, the description last and unpadded.
fn table(rows: &[[String; 5]]) -> String {
    let head = ["id", "profile", "arrivals", "hours", "description"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows.iter().cloned()) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    out
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let files = list_scenario_files(envs)?;
    if files.is_empty() {
        return Err(
            crate::BadInput(format!("no scenario files (*.toml) in {}", envs.display())).into(),
        );
    }
    let mut rows = Vec::with_capacity(files.len());
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
            rows.push([
                f.id,
                f.profile,
                kind(&f.arrivals).to_string(),
                format!("{hours:.1}"),
                f.description,
            ]);
        }
    }
    if !args.json {
        print!("{}", table(&rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_fit_the_longest_id() {
        let long = "a-scenario-id-longer-than-the-old-36-column-layout-v1".to_string();
        let rows = [
            [
                long.clone(),
                "70b-h100x2".into(),
                "trace".into(),
                "24.0".into(),
                "d1".into(),
            ],
            [
                "s".into(),
                "8b-l4".into(),
                "poisson".into(),
                "168.0".into(),
                "d2".into(),
            ],
        ];
        let t = super::table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        // The profile column starts at the same place on every line, after the longest id.
        let col = lines[1].find("70b-h100x2").unwrap();
        assert_eq!(col, long.len() + 2);
        assert_eq!(lines[0].find("profile"), Some(col));
        assert_eq!(lines[2].find("8b-l4"), Some(col));
        assert!(lines[1].ends_with("d1") && lines[2].ends_with("d2"));
    }
}
