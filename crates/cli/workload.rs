//! One workload as a scenario: a trace CSV (`rlscale history`'s output, or any `t_s,rps` file) played
//! on a shipped service profile, for `rlscale train --trace T --profile P`.
//!
//! The scenario is written to a folder of its own (the scenario TOML, `profiles/<P>.toml` copied
//! from `envs/profiles/`, and the trace copied as `workload.csv`) and loaded back, so that the folder
//! holds exactly what is played and a resumed run finds it again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rlscale_sim::config::{ArrivalSpec, ClusterSpec, MetricsSpec, ReplicasSpec, ScenarioFile};
use rlscale_sim::{Overrides, Profile, Scenario, Trace};

use crate::BadInput;

/// What `--trace` and `--profile` ask for.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// The trace CSV.
    pub trace: PathBuf,
    /// A profile name in `envs/profiles/`.
    pub profile: String,
    /// Replica bounds; `None`: 1, and twice the trace's peak over the profile's capacity.
    pub min_replicas: Option<u32>,
    /// See `min_replicas`.
    pub max_replicas: Option<u32>,
    /// The wall-clock time of the trace's first row (the policy sees the hour and weekday).
    pub start_time: String,
}

/// `--trace CSV --profile NAME [--min-replicas N] [--max-replicas N] [--trace-start TIME]`: one
/// workload from a trace, for `rlscale train` and `rlscale fit`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkloadArgs {
    /// One workload given as a trace CSV (`t_s,rps`, e.g. `rlscale history`'s output) played on
    /// --profile, instead of --scenario. Its scenario is written beside the outputs (train:
    /// <runs>/workloads/, fit: <out>/workload/).
    #[arg(long, value_name = "CSV", requires = "profile")]
    pub trace: Option<PathBuf>,
    /// With --trace: a service profile in envs/profiles/ (llm-8b-l4, llm-70b-h100x2).
    #[arg(long, value_name = "NAME", requires = "trace")]
    pub profile: Option<String>,
    /// With --trace: the replica floor [default: 1].
    #[arg(long, value_name = "N", requires = "trace")]
    pub min_replicas: Option<u32>,
    /// With --trace: the replica ceiling [default: twice the trace's peak over the profile's
    /// capacity].
    #[arg(long, value_name = "N", requires = "trace")]
    pub max_replicas: Option<u32>,
    /// With --trace: the wall-clock time of its first row, Unix seconds or RFC 3339 (the policy sees
    /// the hour and the weekday).
    #[arg(
        long,
        value_name = "TIME",
        requires = "trace",
        default_value = "2024-05-06T00:00:00Z"
    )]
    pub trace_start: String,
}

impl WorkloadArgs {
    /// The workload asked for, when --trace is given.
    pub fn spec(&self) -> Option<WorkloadSpec> {
        Some(WorkloadSpec {
            trace: self.trace.clone()?,
            profile: self.profile.clone()?,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            start_time: self.trace_start.clone(),
        })
    }
}

/// The profiles shipped in `envs/profiles/`, by name.
fn profiles(envs: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(envs.join("profiles"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    if p.extension()? != "toml" {
                        return None;
                    }
                    Some(p.file_stem()?.to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Build `spec`'s scenario under `dir/<id>/` and load it.
pub fn build(envs: &Path, dir: &Path, spec: &WorkloadSpec) -> Result<Scenario> {
    let trace = Trace::load(&spec.trace)?;
    let ppath = envs.join("profiles").join(format!("{}.toml", spec.profile));
    if !ppath.is_file() {
        return Err(BadInput(format!(
            "--profile {:?}: not a profile in {} (there: {})",
            spec.profile,
            envs.join("profiles").display(),
            profiles(envs).join(", ")
        ))
        .into());
    }
    let profile = Profile::load(&ppath)?;
    rlscale_eval::shadow::parse_time(&spec.start_time)
        .map_err(|e| BadInput(format!("--trace-start: {e}")))?;
    let dt = 15.0;
    let steps = (trace.duration_s() / dt).floor() as u64;
    if steps < 2 {
        return Err(BadInput(format!(
            "--trace {}: {:.0} s of data, shorter than two 15 s control intervals",
            spec.trace.display(),
            trace.duration_s()
        ))
        .into());
    }
    let capacity = profile.capacity_rps().max(1e-9);
    let peak = trace.rps.iter().copied().fold(0.0, f64::max);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec
        .max_replicas
        .unwrap_or_else(|| ((2.0 * peak / capacity).ceil() as u32).max(min + 1));
    if min > max || max == 0 {
        return Err(BadInput(format!(
            "--min-replicas {min} and --max-replicas {max}: need min <= max and max >= 1"
        ))
        .into());
    }
    let initial = ((trace.rps[0] / capacity * 1.25).ceil() as u32).clamp(min, max);
    let stem = spec
        .trace
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    let id = format!(
        "workload-{}-v1",
        rlscale_eval::shadow::replay::slug(&stem, &spec.profile)
    );
    let out = dir.join(&id);
    std::fs::create_dir_all(out.join("profiles"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::copy(
        &ppath,
        out.join("profiles").join(format!("{}.toml", spec.profile)),
    )
    .with_context(|| format!("cannot copy {}", ppath.display()))?;
    std::fs::copy(&spec.trace, out.join("workload.csv"))
        .with_context(|| format!("cannot copy {}", spec.trace.display()))?;
    let file = ScenarioFile {
        id: id.clone(),
        description: format!(
            "{} on {}: {:.1} h of traffic, peak {peak:.1} req/s",
            spec.trace.display(),
            spec.profile,
            steps as f64 * dt / 3600.0
        ),
        profile: spec.profile.clone(),
        max_episode_steps: steps,
        control_interval_s: dt,
        start_time: spec.start_time.clone(),
        nondeterministic: false,
        replicas: ReplicasSpec { min, max, initial },
        arrivals: ArrivalSpec::Trace {
            file: Some("workload.csv".into()),
            obtain: None,
            not_shipped_because: None,
            rate_scale: 1.0,
            offset_s: 0.0,
            random_offset: false,
            r#loop: true,
        },
        requests: None,
        slo: None,
        metrics: MetricsSpec::default(),
        cluster: ClusterSpec::default(),
    };
    let path = out.join(format!("{id}.toml"));
    let text = format!(
        "# Built by rlscale train --trace {} --profile {}\n{}",
        spec.trace.display(),
        spec.profile,
        toml::to_string(&file).context("cannot serialize the scenario")?
    );
    crate::fsutil::write_atomic(&path, &text)?;
    Ok(Scenario::load(&path, &Overrides::default())?)
}
