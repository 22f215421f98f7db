//! Tables, CSV, JSON and plots of an evaluation matrix.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::matrix::{MatrixResult, RunResult};
use crate::plot::{self, ReplicaSeries, ScatterPoint, TimelinePlot};

/// Mean and spread (sample standard deviation; 0 with one seed) over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
}

impl Stat {
    /// Over the finite values of `xs` (NaN when none).
    pub fn of(xs: impl IntoIterator<Item = f64>) -> Stat {
        let v: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat {
                mean: f64::NAN,
                sd: f64::NAN,
            };
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat { mean, sd }
    }
}

/// One scenario × policy, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Scenario id.
    pub scenario: String,
    /// Policy label.
    pub policy: String,
    /// Seeds run.
    pub seeds: usize,
    /// GPU-hours billed.
    pub gpu_hours: Stat,
    /// Dollars billed.
    pub cost_usd: Stat,
    /// SLO attainment, percent.
    pub slo_attainment_pct: Stat,
    /// The scenario's target, percent.
    pub slo_target_pct: f64,
    /// Late or dropped requests.
    pub slo_violations: Stat,
    /// p99 latency of the SLO's kind, seconds.
    pub latency_p99_s: Stat,
    /// Requests dropped by the queue timeout.
    pub dropped: Stat,
    /// Steps that changed the replica target.
    pub scale_events: Stat,
    /// Replicas that finished a cold start.
    pub cold_starts: Stat,
    /// Cost + penalty × violations, dollars.
    pub objective_usd: Stat,
    /// Gap of the objective to the oracle's lower bound, percent.
    pub gap_pct: Stat,
    /// The oracle's lower bound on the objective (mean over seeds), dollars.
    pub bound_usd: f64,
}

/// Aggregate runs by scenario × policy, in the order they first appear.
pub fn aggregate(runs: &[RunResult]) -> Vec<Row> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        let key = (r.summary.scenario.clone(), r.summary.policy.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let st = |f: &dyn Fn(&RunResult) -> f64| Stat::of(g.iter().map(|r| f(r)));
            Row {
                scenario: key.0.clone(),
                policy: key.1.clone(),
                seeds: g.len(),
                gpu_hours: st(&|r| r.summary.gpu_hours),
                cost_usd: st(&|r| r.summary.cost_usd),
                slo_attainment_pct: st(&|r| r.summary.slo_attainment_pct),
                slo_target_pct: g[0].summary.slo_target_pct,
                slo_violations: st(&|r| r.summary.slo_violations as f64),
                latency_p99_s: st(&|r| r.summary.latency_p99_s.unwrap_or(f64::NAN)),
                dropped: st(&|r| r.summary.dropped as f64),
                scale_events: st(&|r| r.summary.scale_events as f64),
                cold_starts: st(&|r| r.summary.cold_starts as f64),
                objective_usd: st(&|r| r.objective_usd),
                gap_pct: st(&|r| r.gap_pct),
                bound_usd: Stat::of(g.iter().map(|r| r.bound.objective_usd)).mean,
            }
        })
        .collect()
}

fn pm(s: Stat, digits: usize) -> String {
    if !s.mean.is_finite() {
        return "–".into();
    }
    if s.sd > 0.0 {
        format!("{:.*} ± {:.*}", digits, s.mean, digits, s.sd)
    } else {
        format!("{:.*}", digits, s.mean)
    }
}

/// The Markdown table: one row per scenario × policy, mean ± spread over seeds. A policy that misses
/// its SLO target is marked with ✗ beside its attainment.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | policy | GPU-h | $ | SLO % | violations | p99 s | dropped | scale events | cold starts | objective $ | gap to oracle bound % |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let miss = if r.slo_attainment_pct.mean < r.slo_target_pct {
            " ✗"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.policy,
            pm(r.gpu_hours, 1),
            pm(r.cost_usd, 2),
            pm(r.slo_attainment_pct, 2),
            miss,
            pm(r.slo_violations, 0),
            pm(r.latency_p99_s, 2),
            pm(r.dropped, 0),
            pm(r.scale_events, 0),
            pm(r.cold_starts, 0),
            pm(r.objective_usd, 2),
            pm(r.gap_pct, 1),
        );
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

/// One CSV line per episode.
pub fn runs_csv(runs: &[RunResult]) -> String {
    let mut out = String::from(
        "scenario,policy,seed,steps,gpu_hours,cost_usd,slo_attainment_pct,slo_violations,latency_p99_s,dropped,scale_events,cold_starts,objective_usd,bound_usd,gap_pct\n",
    );
    for r in runs {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.scenario),
            csv_field(&s.policy),
            s.seed,
            s.steps,
            num(s.gpu_hours),
            num(s.cost_usd),
            num(s.slo_attainment_pct),
            s.slo_violations,
            s.latency_p99_s.map(num).unwrap_or_default(),
            s.dropped,
            s.scale_events,
            s.cold_starts,
            num(r.objective_usd),
            num(r.bound.objective_usd),
            num(r.gap_pct),
        );
    }
    out
}

/// One CSV line per scenario × policy (`_mean` and `_sd` columns).
pub fn rows_csv(rows: &[Row]) -> String {
    let names = [
        "gpu_hours",
        "cost_usd",
        "slo_attainment_pct",
        "slo_violations",
        "latency_p99_s",
        "dropped",
        "scale_events",
        "cold_starts",
        "objective_usd",
        "gap_pct",
    ];
    let mut out = String::from("scenario,policy,seeds,slo_target_pct,bound_usd");
    for n in names {
        let _ = write!(out, ",{n}_mean,{n}_sd");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{},{}",
            csv_field(&r.scenario),
            csv_field(&r.policy),
            r.seeds,
            num(r.slo_target_pct),
            num(r.bound_usd)
        );
        for s in [
            r.gpu_hours,
            r.cost_usd,
            r.slo_attainment_pct,
            r.slo_violations,
            r.latency_p99_s,
            r.dropped,
            r.scale_events,
            r.cold_starts,
            r.objective_usd,
            r.gap_pct,
        ] {
            let _ = write!(out, ",{},{}", num(s.mean), num(s.sd));
        }
        out.push('\n');
    }
    out
}

/// Runs whose objective is below the oracle's bound: each one means the bound or the simulator is wrong.
pub fn bound_violations(runs: &[RunResult]) -> Vec<String> {
    runs.iter()
        .filter(|r| r.objective_usd + 1e-9 * r.objective_usd.abs().max(1.0) < r.bound.objective_usd)
        .map(|r| {
            format!(
                "{} / {} / seed {}: objective ${:.4} < oracle bound ${:.4}",
                r.summary.scenario,
                r.summary.policy,
                r.summary.seed,
                r.objective_usd,
                r.bound.objective_usd
            )
        })
        .collect()
}

/// A row's point of the cost vs SLO scatter: the means, with the standard deviations as error bars.
pub fn scatter_point(r: &Row) -> ScatterPoint {
    ScatterPoint {
        policy: r.policy.clone(),
        scenario: r.scenario.clone(),
        cost_usd: r.cost_usd.mean,
        slo_attainment: r.slo_attainment_pct.mean,
        spread: Some((r.cost_usd.sd, r.slo_attainment_pct.sd)),
    }
}

/// Draw, for each scenario, the demand and every policy's replicas, and the cost vs SLO scatter; and
/// one scatter over all scenarios. Returns the files written.
pub fn plots(m: &MatrixResult, rows: &[Row], dir: &Path) -> Result<Vec<PathBuf>, plot::PlotError> {
    let mut written = Vec::new();
    for (scenario, demand, capacity) in &m.demand {
        let series: Vec<ReplicaSeries> = m
            .runs
            .iter()
            .filter(|r| &r.summary.scenario == scenario && !r.timeline.is_empty())
            .map(|r| ReplicaSeries {
                policy: r.summary.policy.clone(),
                t_h: r.timeline.iter().map(|p| p.0).collect(),
                replicas: r.timeline.iter().map(|p| p.1).collect(),
            })
            .collect();
        let t_h: Vec<f64> = demand.iter().map(|p| p.0).collect();
        let rps: Vec<f64> = demand.iter().map(|p| p.1).collect();
        let needed: Vec<f64> = rps
            .iter()
            .map(|r| {
                if *capacity > 0.0 {
                    r / capacity
                } else {
                    f64::NAN
                }
            })
            .collect();
        let title = format!("{scenario}: demand and replicas (seed {})", first_seed(m));
        written.extend(plot::timeline(
            &dir.join(format!("{scenario}-timeline")),
            &TimelinePlot {
                title: &title,
                t_h: &t_h,
                arrival_rps: &rps,
                needed_replicas: &needed,
                series: &series,
            },
        )?);
        let points: Vec<ScatterPoint> = rows
            .iter()
            .filter(|r| &r.scenario == scenario)
            .map(scatter_point)
            .collect();
        let target = rows
            .iter()
            .find(|r| &r.scenario == scenario)
            .map_or(99.0, |r| r.slo_target_pct);
        written.extend(plot::cost_vs_slo(
            &dir.join(format!("{scenario}-cost-vs-slo")),
            &format!("{scenario}: GPU cost vs SLO attainment (mean ± sd over seeds)"),
            &points,
            target,
        )?);
    }
    Ok(written)
}

fn first_seed(m: &MatrixResult) -> u64 {
    m.runs
        .iter()
        .find(|r| !r.timeline.is_empty())
        .map_or(0, |r| r.summary.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_mean_and_sample_sd_over_finite_values() {
        let s = Stat::of([1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!(s.mean, 2.0);
        assert!((s.sd - 1.0).abs() < 1e-12);
        assert_eq!(Stat::of([5.0]).sd, 0.0);
        assert!(Stat::of([]).mean.is_nan());
        assert_eq!(pm(Stat::of([1.0, 3.0]), 1), "2.0 ± 1.4");
        assert_eq!(pm(Stat::of([f64::NAN]), 1), "–");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("x\"y"), "\"x\"\"y\"");
        assert_eq!(csv_field("hpa-tuned"), "hpa-tuned");
    }
}
