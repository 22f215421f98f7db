//! The counterfactual replay: the arrival rates the controller observed, replayed in the simulator
//! under our policy and under the default HPA.
//!
//! # How the replay is built from the log (and what it assumes)
//!
//! - **Workload**: a trace (`t_s,rps`, the format of `envs/traces/`) on a grid of the object's
//!   control interval from its first decision. Each logged `snapshot.arrival_rate_1m` is the mean
//!   rate over the minute before the decision, so it is placed at the middle of that minute (30 s
//!   earlier) and held until the next one; a failed query (NaN) is skipped, and a silence longer than
//!   `max(3 intervals, 60 s)` is held at the last rate and reported. The simulator draws Poisson
//!   arrivals from it, per seed.
//! - **Service profile**: the log carries the operator's declared `snapshot.profile` (cold start,
//!   capacity, GPUs per replica, price, SLO latency), not a full simulator profile. The replay starts
//!   from the shipped profile in `envs/profiles/` with the same GPUs per replica and the nearest
//!   capacity and cold start (on a log scale), and scales it to the logged values
//!   ([`rlscale_sim::ProfileScale`]): every cold-start phase by `cold_start_s / base mean` (so the
//!   base profile's split into node provisioning, image pull and model load, and its spread, are
//!   kept), every point of the throughput curve by `capacity_rps / base capacity` (the knee's shape
//!   and `max_concurrency` are kept); GPUs per replica, price and SLO latency are set to the logged
//!   values. The SLO's kind (TTFT or end-to-end), target, client timeout and penalty, and the request
//!   size distribution are the base profile's.
//! - **Scenario**: the object's bounds, `initial` = the first decision's `current_replicas` (all
//!   ready at the start), no GPU limit, no stockouts, no metric noise or staleness, decisions every
//!   `interval_s` (Prometheus scrapes every `interval_s`, or a divisor of it ≤ 15 s).
//! - **Policies**: ours is [`rlscale_runtime::Runtime`] with the model and the runtime configuration
//!   of the log's `config` line (checks, OOD fallback, guardrails: what the controller ran); the HPA is
//!   rlscale's HPA law with its defaults and the same bounds, the law the controller uses for
//!   `hpa_recomputed_replicas`.
//!
//! The scenario is written to disk (scenario TOML, profile TOML, `workload.csv`) and loaded back
//! with [`Scenario::load`], so the report's folder holds exactly what was replayed:
//! `rlscale simulate --scenario <that file> --policy hpa --seed S` gives the HPA's numbers again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rlscale_baselines::{BaselineConfig, Bounds};
use rlscale_core::{Policy, ServiceProfile, SimTime};
use rlscale_runtime::{ModelFile, Runtime, RuntimeConfig};
use rlscale_sim::config::{
    ArrivalSpec, ClusterSpec, MetricsSpec, ReplicasSpec, ScenarioFile, list_scenario_files,
};
use rlscale_sim::{Overrides, Profile, ProfileScale, Scenario, SimEnv, run_episode};
use serde::Serialize;

use super::ShadowError;
use super::log::DecisionRecord;
use crate::matrix::{RunResult, objective};
use crate::oracle::{self, OracleConfig};
use crate::plot::ReplicaSeries;
use crate::report::{self, Row};

/// Seconds a 1-minute rate is moved back: the middle of its window.
pub const RATE_CENTRE_S: f64 = 30.0;

/// The scenario built from one object's decisions.
#[derive(Debug, Clone)]
pub struct ReplayScenario {
    /// The loaded scenario.
    pub scenario: Arc<Scenario>,
    /// The scenario file written.
    pub path: PathBuf,
    /// The shipped profile it was built from (its name).
    pub base_profile: String,
    /// Cold-start multiplier applied to the base profile.
    pub cold_start_scale: f64,
    /// Capacity multiplier applied to the base profile.
    pub capacity_scale: f64,
    /// The logged profile it was scaled to.
    pub logged_profile: ServiceProfile,
    /// Workload: row start times, hours since the first decision, and rates, req/s.
    pub demand: (Vec<f64>, Vec<f64>),
    /// What was assumed or adjusted, in words.
    pub assumptions: Vec<String>,
}

/// The workload trace: one rate per row of `dt` seconds from `t0`, from the logged 1-minute rates
/// at `times` (non-finite or negative rates skipped). Returns the rates and the seconds that were
/// held across a silence longer than `max(3 dt, 60 s)`, or `None` when no rate is usable.
pub fn workload(
    times: &[f64],
    rates: &[f64],
    t0: f64,
    dt: f64,
    rows: usize,
) -> Option<(Vec<f64>, f64)> {
    let pts: Vec<(f64, f64)> = times
        .iter()
        .zip(rates)
        .filter(|(t, r)| t.is_finite() && r.is_finite() && **r >= 0.0)
        .map(|(t, r)| (t - RATE_CENTRE_S, *r))
        .collect();
    if pts.is_empty() {
        return None;
    }
    let silence = (3.0 * dt).max(60.0);
    let mut held = 0.0;
    let mut j = 0;
    let out = (0..rows)
        .map(|k| {
            let c = t0 + (k as f64 + 0.5) * dt;
            while j + 1 < pts.len() && pts[j + 1].0 <= c {
                j += 1;
            }
            let (tp, r) = pts[j];
            if c - tp > silence + RATE_CENTRE_S {
                held += dt;
            }
            r
        })
        .collect();
    Some((out, held))
}

/// The shipped profile nearest to `want`: same GPUs per replica first, then the smallest
/// `|ln(capacity ratio)| + |ln(cold start ratio)|`.
pub fn closest_profile(envs: &Path, want: &ServiceProfile) -> Result<Profile, ShadowError> {
    let dir = envs.join("profiles");
    let files = list_scenario_files(&dir).map_err(ShadowError::Sim)?;
    let mut best: Option<(f64, Profile)> = None;
    for f in files {
        let p = Profile::load(&f).map_err(ShadowError::Sim)?;
        let gpus = if p.file.gpus_per_replica == want.gpus_per_replica {
            0.0
        } else {
            100.0
        };
        let d = gpus
            + (want.capacity_rps / p.capacity_rps()).ln().abs()
            + (want.cold_start_s / p.mean_cold_start_s()).ln().abs();
        if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, p));
        }
    }
    best.map(|(_, p)| p).ok_or(ShadowError::NoProfiles { dir })
}

/// A file-system and scenario-id safe form of `namespace/name`.
pub fn slug(namespace: &str, name: &str) -> String {
    dns_label(&format!("{namespace}-{name}"))
}

/// `text` as lower-case letters, digits and single inner dashes: a file name, a scenario id and a
/// Kubernetes object name alike.
pub fn dns_label(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

/// Build, write to `dir` and load the replay scenario for one object's `decisions` (time order, at
/// least one). `runtime` gives the bounds; `envs` holds the shipped profiles. `Ok(None)` when the
/// log has no usable arrival rate (nothing to replay), with the reason.
pub fn build_scenario(
    dir: &Path,
    envs: &Path,
    slug: &str,
    decisions: &[&DecisionRecord],
    runtime: &RuntimeConfig,
) -> Result<Result<ReplayScenario, String>, ShadowError> {
    let first = decisions[0];
    let last = decisions[decisions.len() - 1];
    let object = first.object();
    let mut assumptions = Vec::new();

    // The profile: the last one logged.
    let want = last.snapshot.profile;
    let changed = decisions
        .windows(2)
        .filter(|w| w[0].snapshot.profile != w[1].snapshot.profile)
        .count();
    if changed > 0 {
        assumptions.push(format!(
            "The logged service profile changed {changed} time(s) in the window; the replay uses the last one (line {}).",
            last.line
        ));
    }
    let bad_profile = |field: &str, v: String| ShadowError::Line {
        path: PathBuf::from("(log)"),
        line: last.line,
        field: format!("snapshot.profile.{field}"),
        message: format!("{v}: the replay needs a positive, finite value"),
    };
    for (f, v) in [
        ("capacity_rps", want.capacity_rps),
        ("usd_per_gpu_hour", want.usd_per_gpu_hour),
        ("slo_latency_s", want.slo_latency_s),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad_profile(f, v.to_string()));
        }
    }
    if want.gpus_per_replica == 0 {
        return Err(bad_profile("gpus_per_replica", "0".into()));
    }
    let base = closest_profile(envs, &want)?;
    let mut cold = want.cold_start_s;
    if !(cold.is_finite() && cold >= 1.0) {
        assumptions.push(format!(
            "The logged cold start ({cold} s) is below 1 s; the replay uses 1 s."
        ));
        cold = 1.0;
    }
    let scale = ProfileScale {
        cold_start: cold / base.mean_cold_start_s(),
        capacity: want.capacity_rps / base.capacity_rps(),
        price: 1.0,
    };
    let mut pf = scale.apply(&base.file);
    let pname = format!("shadow-{slug}");
    pf.name.clone_from(&pname);
    pf.description = format!(
        "{} scaled to the service profile logged for {object}: cold start x{:.3}, capacity x{:.3}; GPUs per replica, price and SLO latency as logged",
        base.file.name, scale.cold_start, scale.capacity
    );
    pf.gpus_per_replica = want.gpus_per_replica;
    pf.usd_per_gpu_hour = want.usd_per_gpu_hour;
    pf.slo.latency_s = want.slo_latency_s;
    if pf.slo.timeout_s < want.slo_latency_s {
        assumptions.push(format!(
            "The base profile's client timeout ({} s) is below the logged SLO latency; the replay uses twice the SLO latency.",
            pf.slo.timeout_s
        ));
        pf.slo.timeout_s = 2.0 * want.slo_latency_s;
    }
    let c = &base.file.cold_start;
    let split = [
        c.provision_s.mean(),
        c.image_pull_s.mean(),
        c.model_load_s.mean(),
    ];
    let total: f64 = split.iter().sum();
    assumptions.push(format!(
        "Service profile: `{}` (nearest shipped profile) scaled to the logged one: cold start {:.0} s split as {:.0} % node provisioning, {:.0} % image pull, {:.0} % model load (the base profile's split and spread), capacity {:.2} req/s per replica with `{}`'s throughput knee and {} batch slots, {} GPU(s) per replica at ${:.2}/GPU-hour, SLO: {} within {} s for {} % of requests, client timeout {} s, request sizes from `{}`.",
        base.file.name,
        cold,
        100.0 * split[0] / total,
        100.0 * split[1] / total,
        100.0 * split[2] / total,
        want.capacity_rps,
        base.file.name,
        pf.max_concurrency,
        pf.gpus_per_replica,
        pf.usd_per_gpu_hour,
        match pf.slo.kind {
            rlscale_sim::config::SloKind::Ttft => "time to first token",
            rlscale_sim::config::SloKind::E2e => "end-to-end latency",
        },
        want.slo_latency_s,
        100.0 * pf.slo.target,
        pf.slo.timeout_s,
        base.file.name,
    ));

    // The grid and the workload.
    let ci = f64::from(last.interval_s);
    if decisions.iter().any(|d| d.interval_s != last.interval_s) {
        assumptions.push(format!(
            "The object's interval changed in the window; the replay decides every {ci} s (the last one)."
        ));
    }
    let t0 = first.time.floor();
    let steps = (((last.time - t0) / ci).floor() as u64 + 1).max(1);
    let rows = steps as usize + 1;
    let times: Vec<f64> = decisions.iter().map(|d| d.time).collect();
    let rates: Vec<f64> = decisions
        .iter()
        .map(|d| d.snapshot.arrival_rate_1m)
        .collect();
    let Some((rps, held)) = workload(&times, &rates, t0, ci, rows) else {
        return Ok(Err(
            "no decision has a usable arrival rate (every `arrival_rate_1m` query failed)".into(),
        ));
    };
    if rps.iter().all(|&r| r <= 0.0) {
        return Ok(Err(
            "the observed arrival rate is 0 throughout: there is nothing to replay".into(),
        ));
    }
    let missing = rates.iter().filter(|r| !r.is_finite()).count();
    if missing > 0 {
        assumptions.push(format!(
            "{missing} decision(s) had no arrival rate (a failed query); the rate before them is held."
        ));
    }
    if held > 0.0 {
        assumptions.push(format!(
            "The log is silent for {held:.0} s in total (gaps longer than max(3 intervals, 60 s)); the replay holds the last rate through them."
        ));
    }

    // Bounds and the start.
    let (min, max) = (runtime.min_replicas, runtime.max_replicas);
    let initial = first.current_replicas.clamp(min, max);
    if (last.min_replicas, last.max_replicas) != (min, max) {
        assumptions.push(format!(
            "The runtime configuration's bounds [{min}, {max}] differ from the decisions' [{}, {}]; the replay uses the runtime's.",
            last.min_replicas, last.max_replicas
        ));
    }
    let scrape = ci / (ci / 15.0).ceil();
    let id = format!("shadow-{slug}-v1");
    let file = ScenarioFile {
        id: id.clone(),
        description: format!(
            "Counterfactual replay of {object}'s shadow log: the observed 1-minute arrival rates from {} for {:.2} h",
            SimTime(t0).rfc3339(),
            steps as f64 * ci / 3600.0
        ),
        profile: pname.clone(),
        max_episode_steps: steps,
        control_interval_s: ci,
        start_time: SimTime(t0).rfc3339(),
        nondeterministic: false,
        replicas: ReplicasSpec { min, max, initial },
        arrivals: ArrivalSpec::Trace {
            file: Some("workload.csv".into()),
            obtain: None,
            not_shipped_because: None,
            rate_scale: 1.0,
            offset_s: 0.0,
            random_offset: false,
            r#loop: false,
        },
        requests: None,
        slo: None,
        metrics: MetricsSpec {
            scrape_interval_s: scrape,
            noise_cv: 0.0,
            staleness_s: 0.0,
            ..MetricsSpec::default()
        },
        cluster: ClusterSpec::default(),
    };
    assumptions.push(format!(
        "Scenario: {steps} decisions every {ci} s from {} ({:.2} h), bounds [{min}, {max}], starting with {initial} ready replica(s) (the first decision's current replicas), no GPU limit or stockout, Prometheus scraping every {scrape} s without noise or staleness, its rate windows warmed up for 5 min at the first rate before the first decision.",
        SimTime(t0).rfc3339(),
        steps as f64 * ci / 3600.0
    ));

    let pdir = dir.join("profiles");
    std::fs::create_dir_all(&pdir).map_err(|source| ShadowError::Write {
        path: pdir.clone(),
        source,
    })?;
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|source| ShadowError::Write { path, source })
    };
    let toml_err = |what: &str, e: toml::ser::Error| ShadowError::Internal(format!("{what}: {e}"));
    write(
        pdir.join(format!("{pname}.toml")),
        format!(
            "# Built by rlscale shadow-report from {}\n{}",
            base.path.display(),
            toml::to_string(&pf).map_err(|e| toml_err("profile", e))?
        ),
    )?;
    let mut csv = String::with_capacity(rows * 16);
    csv.push_str("t_s,rps\n");
    for (k, r) in rps.iter().enumerate() {
        csv.push_str(&format!("{},{r}\n", k as f64 * ci));
    }
    write(dir.join("workload.csv"), csv)?;
    let path = dir.join(format!("{id}.toml"));
    write(
        path.clone(),
        format!(
            "# Built by rlscale shadow-report; replay with: rlscale simulate --scenario {id}.toml --policy hpa --seed 0\n{}",
            toml::to_string(&file).map_err(|e| toml_err("scenario", e))?
        ),
    )?;
    write(
        dir.join("runtime.toml"),
        format!(
            "# The runtime configuration the replay played for {object} (from the log's config line)\n{}",
            toml::to_string(runtime).map_err(|e| toml_err("runtime", e))?
        ),
    )?;
    let scenario = Scenario::load(&path, &Overrides::default()).map_err(ShadowError::Sim)?;
    let t_h = (0..rows).map(|k| k as f64 * ci / 3600.0).collect();
    Ok(Ok(ReplayScenario {
        scenario: Arc::new(scenario),
        path,
        base_profile: base.file.name.clone(),
        cold_start_scale: scale.cold_start,
        capacity_scale: scale.capacity,
        logged_profile: want,
        demand: (t_h, rps),
        assumptions,
    }))
}

/// Mean, spread and 95 % confidence interval of the per-seed difference `ours − HPA` (the same
/// seed gives both policies the same requests, so the difference is paired).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDiff {
    /// What is compared.
    pub metric: String,
    /// Seeds.
    pub n: usize,
    /// Ours, mean over seeds.
    pub ours_mean: f64,
    /// The HPA, mean over seeds.
    pub hpa_mean: f64,
    /// Mean of `ours − HPA`.
    pub mean: f64,
    /// Sample standard deviation of `ours − HPA`.
    pub sd: f64,
    /// 95 % confidence interval of the mean difference (Student's t; NaN with one seed).
    pub ci95: (f64, f64),
}

/// Student's t 0.975 quantile for `df` degrees of freedom (1.96 past 30).
fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        d if d <= 30 => T[d - 1],
        _ => 1.96,
    }
}

/// The paired difference of `f` over runs of ours and of the HPA with the same seeds.
pub fn paired(metric: &str, ours: &[f64], hpa: &[f64]) -> PairedDiff {
    let d: Vec<f64> = ours.iter().zip(hpa).map(|(a, b)| a - b).collect();
    let s = report::Stat::of(d.iter().copied());
    let n = d.len();
    let half = t975(n.saturating_sub(1)) * s.sd / (n as f64).sqrt();
    PairedDiff {
        metric: metric.to_string(),
        n,
        ours_mean: report::Stat::of(ours.iter().copied()).mean,
        hpa_mean: report::Stat::of(hpa.iter().copied()).mean,
        mean: s.mean,
        sd: s.sd,
        ci95: (s.mean - half, s.mean + half),
    }
}

/// The replay's results.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// The scenario id.
    pub scenario: String,
    /// The scenario file, relative to the report folder.
    pub scenario_file: PathBuf,
    /// The shipped profile it was built from.
    pub base_profile: String,
    /// Cold-start multiplier of the base profile.
    pub cold_start_scale: f64,
    /// Capacity multiplier of the base profile.
    pub capacity_scale: f64,
    /// Control steps per episode.
    pub steps: u64,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Our policy's label.
    pub ours: String,
    /// The HPA's label.
    pub hpa: String,
    /// The model file played, if any.
    pub model: Option<PathBuf>,
    /// One row per policy, mean ± sd over seeds (the evaluation matrix's rows).
    pub rows: Vec<Row>,
    /// Every episode (timelines dropped).
    pub runs: Vec<RunResult>,
    /// `ours − HPA` per metric.
    pub diffs: Vec<PairedDiff>,
    /// What was assumed, in words.
    pub assumptions: Vec<String>,
    /// First seed's replica targets, for the plot: ours, then the HPA.
    #[serde(skip)]
    pub timelines: Vec<ReplicaSeries>,
    /// The workload, for the plot: hours since the start and req/s.
    #[serde(skip)]
    pub demand: (Vec<f64>, Vec<f64>),
    /// Throughput of one replica at saturation in the replay, req/s.
    pub capacity_rps: f64,
}

/// A metric of a run, by name.
type Metric<'a> = (&'a str, &'a dyn Fn(&RunResult) -> f64);

/// Our policy for the replay: the runtime with `model` (or the reason there is none).
pub struct Ours {
    /// Label in tables.
    pub label: String,
    /// The model, or why there is none (the fallback law then decides, as in the controller).
    pub model: Result<Arc<ModelFile>, String>,
    /// The model file's path.
    pub path: Option<PathBuf>,
    /// The runtime configuration.
    pub runtime: RuntimeConfig,
}

/// Play `ours` and the default HPA on `sc` for every seed, in parallel; `on_done` after each episode.
pub fn run(
    sc: &ReplayScenario,
    ours: &Ours,
    seeds: &[u64],
    report_dir: &Path,
    on_done: &(dyn Fn() + Sync),
) -> Result<Replay, ShadowError> {
    let scenario = &sc.scenario;
    let steps = scenario.file.max_episode_steps;
    let hpa_label = "hpa (default)".to_string();
    let hpa_cfg = BaselineConfig::default_for("hpa").expect("hpa is a law");
    let r = scenario.file.replicas;
    let bounds = Bounds {
        min: r.min,
        max: r.max,
    };
    // Check both build before spending time.
    Runtime::new(ours.model.clone(), ours.runtime.clone(), ours.label.clone())
        .map_err(|e| ShadowError::Runtime(e.to_string()))?;
    hpa_cfg
        .build(bounds, r.initial)
        .map_err(|e| ShadowError::Runtime(e.to_string()))?;
    let bounds_per_seed: Vec<oracle::Bound> = seeds
        .par_iter()
        .map(|&s| oracle::plan(scenario, s, steps, OracleConfig::default()).bound)
        .collect();
    let jobs: Vec<(usize, usize)> = (0..2)
        .flat_map(|p| (0..seeds.len()).map(move |k| (p, k)))
        .collect();
    let results: Vec<(RunResult, Vec<(f64, f64)>)> = jobs
        .par_iter()
        .map(|&(p, k)| {
            let (label, mut policy): (&str, Box<dyn Policy + Send>) = if p == 0 {
                let rt = Runtime::new(ours.model.clone(), ours.runtime.clone(), ours.label.clone())
                    .expect("checked above");
                (&ours.label, Box::new(rt))
            } else {
                let b = hpa_cfg.build(bounds, r.initial).expect("checked above");
                (&hpa_label, Box::new(b))
            };
            let mut env = SimEnv::new(scenario.clone());
            let mut timeline = Vec::new();
            let mut summary = run_episode(&mut env, &mut *policy, seeds[k], |row| {
                if k == 0 {
                    let t = (row.t_s - scenario.file.control_interval_s) / 3600.0;
                    timeline.push((t, f64::from(row.target_replicas)));
                }
            });
            summary.policy = label.to_string();
            let objective_usd = objective(scenario, &summary);
            let bound = bounds_per_seed[k];
            // As in `matrix::run_one`.
            let gap_pct = if bound.objective_usd > 0.0 {
                100.0 * (objective_usd - bound.objective_usd) / bound.objective_usd
            } else if objective_usd == 0.0 {
                0.0
            } else {
                f64::NAN
            };
            on_done();
            (
                RunResult {
                    summary,
                    objective_usd,
                    bound,
                    gap_pct,
                    timeline: Vec::new(),
                },
                timeline,
            )
        })
        .collect();
    let runs: Vec<RunResult> = results.iter().map(|(r, _)| r.clone()).collect();
    let timelines = results
        .iter()
        .filter(|(r, _)| r.summary.seed == seeds[0])
        .map(|(r, tl)| ReplicaSeries {
            policy: r.summary.policy.clone(),
            t_h: tl.iter().map(|p| p.0).collect(),
            replicas: tl.iter().map(|p| p.1).collect(),
        })
        .collect();
    let rows = report::aggregate(&runs);
    let (o, h): (Vec<&RunResult>, Vec<&RunResult>) =
        runs.iter().partition(|r| r.summary.policy == ours.label);
    let col = |v: &[&RunResult], f: &dyn Fn(&RunResult) -> f64| {
        v.iter().map(|r| f(r)).collect::<Vec<f64>>()
    };
    let metrics: [Metric; 5] = [
        ("GPU-hours", &|r| r.summary.gpu_hours),
        ("cost $", &|r| r.summary.cost_usd),
        ("SLO attainment %", &|r| r.summary.slo_attainment_pct),
        ("SLO violations", &|r| r.summary.slo_violations as f64),
        ("objective $ (cost + penalty × violations)", &|r| {
            r.objective_usd
        }),
    ];
    let diffs = metrics
        .iter()
        .map(|(name, f)| paired(name, &col(&o, f), &col(&h, f)))
        .collect();
    Ok(Replay {
        scenario: scenario.id().to_string(),
        scenario_file: sc
            .path
            .strip_prefix(report_dir)
            .unwrap_or(&sc.path)
            .to_path_buf(),
        base_profile: sc.base_profile.clone(),
        cold_start_scale: sc.cold_start_scale,
        capacity_scale: sc.capacity_scale,
        steps,
        seeds: seeds.to_vec(),
        ours: ours.label.clone(),
        hpa: hpa_label,
        model: ours.path.clone(),
        rows,
        runs,
        diffs,
        assumptions: sc.assumptions.clone(),
        timelines,
        demand: sc.demand.clone(),
        capacity_rps: scenario.profile.capacity_rps(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_centres_the_minute_and_holds_across_gaps() {
        // Rates logged every 15 s; each describes the minute before it.
        let times = [100.0, 115.0, 130.0, 145.0];
        let rates = [1.0, 2.0, f64::NAN, 4.0];
        let (w, held) = workload(&times, &rates, 100.0, 15.0, 6).unwrap();
        // Row k's middle is 100 + 15k + 7.5; the point logged at t sits at t − 30.
        assert_eq!(w, vec![2.0, 4.0, 4.0, 4.0, 4.0, 4.0]);
        assert_eq!(held, 0.0);
        // A long silence is held and counted.
        let (w, held) = workload(&[0.0, 1000.0], &[1.0, 3.0], 0.0, 15.0, 70).unwrap();
        assert_eq!(w[0], 1.0);
        assert_eq!(w[69], 3.0);
        assert!(held > 800.0, "{held}");
        assert!(workload(&[0.0], &[f64::NAN], 0.0, 15.0, 3).is_none());
    }

    #[test]
    fn slugs_are_safe_ids() {
        assert_eq!(slug("default", "web"), "default-web");
        assert_eq!(slug("Serving", "llama-3.1_8b"), "serving-llama-3-1-8b");
        assert_eq!(slug("-a", "b-"), "a-b");
    }

    #[test]
    fn closest_profile_matches_gpus_then_capacity_and_cold_start() {
        let envs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs");
        let p = |cold, cap, gpus| ServiceProfile {
            cold_start_s: cold,
            capacity_rps: cap,
            gpus_per_replica: gpus,
            usd_per_gpu_hour: 1.0,
            slo_latency_s: 10.0,
        };
        assert_eq!(
            closest_profile(&envs, &p(135.0, 3.0, 1)).unwrap().file.name,
            "llm-8b-l4"
        );
        assert_eq!(
            closest_profile(&envs, &p(400.0, 9.0, 2)).unwrap().file.name,
            "llm-70b-h100x2"
        );
        // GPUs first: a 1-GPU replica as slow to start as the 70B one is still the 8B's kin.
        assert_eq!(
            closest_profile(&envs, &p(420.0, 9.0, 1)).unwrap().file.name,
            "llm-8b-l4"
        );
        let e = closest_profile(Path::new("/nonexistent"), &p(1.0, 1.0, 1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent"), "{e}");
    }

    #[test]
    fn paired_differences_have_a_t_interval() {
        let d = paired("x", &[10.0, 12.0, 14.0], &[9.0, 10.0, 11.0]);
        assert_eq!(d.n, 3);
        assert_eq!(d.mean, 2.0);
        assert_eq!(d.sd, 1.0);
        let half = 4.303 / 3f64.sqrt();
        assert!((d.ci95.0 - (2.0 - half)).abs() < 1e-12);
        assert!((d.ci95.1 - (2.0 + half)).abs() < 1e-12);
        assert_eq!((d.ours_mean, d.hpa_mean), (12.0, 10.0));
        assert!(paired("x", &[1.0], &[0.5]).ci95.0.is_nan());
        assert_eq!(t975(100), 1.96);
    }
}
