//! The evaluation matrix: every scenario × policy × seed, run in parallel (rayon), with the oracle's
//! bound computed once per scenario × seed.

use std::sync::Arc;

use rayon::prelude::*;
use rlscale_sim::{Scenario, SimEnv, Summary, run_episode};
use serde::{Deserialize, Serialize};

use crate::oracle::{self, Bound, OracleConfig};
use crate::policies::{PolicyChoice, PolicyError};

/// At most this many points per timeline are kept for plots.
pub const TIMELINE_POINTS: usize = 2000;

/// One episode's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The simulator's summary.
    pub summary: Summary,
    /// `cost_usd + penalty × slo_violations`, US dollars.
    pub objective_usd: f64,
    /// The oracle's lower bound on the objective for this scenario and seed.
    pub bound: Bound,
    /// `(objective − bound) / bound`, percent.
    pub gap_pct: f64,
    /// Replica target over time, decimated to at most [`TIMELINE_POINTS`] points (max per bucket):
    /// `(hours since start, replicas)`. Kept for the first seed only.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub timeline: Vec<(f64, f64)>,
}

/// Demand over time for the plots: `(hours since start, arrival req/s)`, decimated (mean per bucket).
pub type DemandSeries = Vec<(f64, f64)>;

/// Everything the matrix produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixResult {
    /// One per scenario × policy × seed, grouped by scenario, then policy, then seed.
    pub runs: Vec<RunResult>,
    /// Per scenario id: the first seed's demand series, and the profile's capacity (work units/s per
    /// replica at saturation) to draw "needed replicas".
    pub demand: Vec<(String, DemandSeries, f64)>,
}

/// The objective of a summary under `scenario`'s penalty.
pub fn objective(scenario: &Scenario, s: &Summary) -> f64 {
    s.cost_usd + scenario.slo.penalty_usd * s.slo_violations as f64
}

/// Run one episode of `policy` on `scenario` from `seed`, for the scenario's episode length.
pub fn run_one(
    scenario: &Arc<Scenario>,
    policy: &PolicyChoice,
    seed: u64,
    bound: Bound,
    keep_timeline: bool,
) -> Result<RunResult, PolicyError> {
    let steps = scenario.file.max_episode_steps;
    let mut p = policy.build(scenario, seed, steps)?;
    let mut env = SimEnv::new(scenario.clone());
    let bucket = (steps as usize).div_ceil(TIMELINE_POINTS).max(1);
    let mut timeline = Vec::new();
    let mut acc: Option<(f64, u32)> = None;
    let mut n_in = 0usize;
    let mut summary = run_episode(&mut env, &mut *p, seed, |row| {
        if !keep_timeline {
            return;
        }
        let t_h = (row.t_s - scenario.file.control_interval_s) / 3600.0;
        acc = Some(match acc {
            None => (t_h, row.target_replicas),
            Some((t0, m)) => (t0, m.max(row.target_replicas)),
        });
        n_in += 1;
        if n_in == bucket {
            let (t0, m) = acc.take().expect("set above");
            timeline.push((t0, f64::from(m)));
            n_in = 0;
        }
    });
    if let Some((t0, m)) = acc {
        timeline.push((t0, f64::from(m)));
    }
    summary.policy = policy.label();
    let objective_usd = objective(scenario, &summary);
    // A zero bound (no settled work, no floor) leaves the gap undefined unless the policy spent
    // nothing either: NaN, shown as "–" in the table and empty in the CSV.
    let gap_pct = if bound.objective_usd > 0.0 {
        100.0 * (objective_usd - bound.objective_usd) / bound.objective_usd
    } else if objective_usd == 0.0 {
        0.0
    } else {
        f64::NAN
    };
    Ok(RunResult {
        summary,
        objective_usd,
        bound,
        gap_pct,
        timeline,
    })
}

/// The demand series of `scenario` for `seed`, decimated for plots.
fn demand_series(scenario: &Arc<Scenario>, seed: u64) -> DemandSeries {
    let steps = scenario.file.max_episode_steps;
    let env = SimEnv::new(scenario.clone());
    let d = env.demand(seed, steps);
    let dt = d.interval_s;
    let bucket = d.arrivals.len().div_ceil(TIMELINE_POINTS).max(1);
    d.arrivals
        .chunks(bucket)
        .enumerate()
        .map(|(i, c)| {
            let n: u64 = c.iter().map(|&a| u64::from(a)).sum();
            (
                (i * bucket) as f64 * dt / 3600.0,
                n as f64 / (c.len() as f64 * dt),
            )
        })
        .collect()
}

/// Run every scenario × policy × seed in parallel on rayon's pool, calling `on_done` after each
/// episode (for a progress bar). Results come back in a fixed order whatever the scheduling.
pub fn run_matrix(
    scenarios: &[Arc<Scenario>],
    policies: &[PolicyChoice],
    seeds: &[u64],
    on_done: impl Fn(&RunResult) + Sync,
) -> Result<MatrixResult, PolicyError> {
    // Check every policy builds on every scenario before spending hours.
    for sc in scenarios {
        for p in policies {
            p.config_for(sc)?;
        }
    }
    let bounds: Vec<Vec<Bound>> = scenarios
        .par_iter()
        .map(|sc| {
            seeds
                .iter()
                .map(|&seed| {
                    oracle::plan(sc, seed, sc.file.max_episode_steps, OracleConfig::default()).bound
                })
                .collect()
        })
        .collect();
    let jobs: Vec<(usize, usize, usize)> = (0..scenarios.len())
        .flat_map(|s| {
            (0..policies.len()).flat_map(move |p| (0..seeds.len()).map(move |k| (s, p, k)))
        })
        .collect();
    let runs: Result<Vec<RunResult>, PolicyError> = jobs
        .par_iter()
        .map(|&(s, p, k)| {
            let r = run_one(&scenarios[s], &policies[p], seeds[k], bounds[s][k], k == 0)?;
            on_done(&r);
            Ok(r)
        })
        .collect();
    let demand = scenarios
        .par_iter()
        .map(|sc| {
            (
                sc.id().to_string(),
                demand_series(sc, seeds.first().copied().unwrap_or(0)),
                sc.profile.capacity_rps(),
            )
        })
        .collect();
    Ok(MatrixResult {
        runs: runs?,
        demand,
    })
}
