//! `rlscale history`: a workload's request-rate history as a trace CSV (`t_s,rps`, the format of
//! `envs/traces/`), from Prometheus or from the controller's decision log.
//!
//! - **Prometheus**: `GET /api/v1/query_range` on a grid of `--step` from `--start` (or `--end −
//!   --since`) to `--end` (or now), in requests of at most [`MAX_RANGE_POINTS`] points (Prometheus
//!   refuses more than 11,000 per series). The query is the controller's own `arrivalRate1m` for
//!   `--object NS/NAME` ([`Queries::resolved`], one definition for both), evaluated 30 s after each
//!   row's time (a 1-minute rate belongs to its window's middle), or `--query PROMQL`, evaluated at
//!   the row's time. Counter resets are `rate()`'s business.
//! - **Decision log** (`--decision-log`): each decision's `snapshot.arrival_rate_1m`, the mean over
//!   the minute before the decision, placed at the middle of that minute as the shadow report's
//!   replay places it, and averaged per row.
//!
//! A row without data is a gap: its `rps` is left empty, never written as 0 (which would read as "no
//! traffic"); the simulator bridges gaps by interpolation and counts them (`rlscale_sim::Trace`).
//! Gaps before the first and after the last sample are cut, so `t_s = 0` is the first sample. The
//! file is written atomically; nothing is written when there is no data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rlscale_controller::cli::parse_duration;
use rlscale_controller::crd::{Field, Queries};
use rlscale_controller::prom::{MAX_RANGE_POINTS, PromError, Prometheus};
use rlscale_core::SimTime;
use rlscale_eval::shadow::{self, DecisionLog};

use crate::BadInput;
use crate::fsutil::AtomicFile;
use crate::shadow_report::time_flag;
use rlscale_eval::shadow::replay::RATE_CENTRE_S;

/// Rows a history may have at most (a year of 1-second steps): a typo in `--step` fails at once.
const MAX_ROWS: f64 = 31_622_400.0;

/// Pull a workload's request-rate history into a trace CSV (`t_s,rps`) for `rlscale simulate`,
/// `tune` and `train`.
///
/// Examples:
///
///   rlscale history --prometheus http://prometheus.monitoring:9090 --object llm/vllm-8b --since 14d --out vllm-8b.csv
///
///   rlscale history --decision-log /var/log/rlscale/decisions.jsonl --object llm/vllm-8b --out vllm-8b.csv
///
/// Intervals without data are gaps: their rps is left empty (never 0), and the simulator bridges
/// them by interpolation.
#[derive(Debug, Parser)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.
    #[arg(long, value_name = "URL", required_unless_present = "decision_log")]
    pub prometheus: Option<String>,
    /// The workload, NAMESPACE/NAME (a Deployment or StatefulSet): with --prometheus, its pods'
    /// arrival rate by the controller's default `arrivalRate1m` query (the rate of
    /// `vllm:request_success_total`: completions, which lag arrivals while a queue builds; if your
    /// RLAutoscaler overrides `arrivalRate1m`, pass that query with --query); with --decision-log,
    /// which object's decisions to read.
    #[arg(long, value_name = "NS/NAME")]
    pub object: Option<String>,
    /// A PromQL query of the arrival rate (req/s) instead of --object's: it must give one series
    /// (aggregate with sum). Each row is the query evaluated at the row's time.
    #[arg(long, value_name = "PROMQL", conflicts_with_all = ["object", "decision_log"])]
    pub query: Option<String>,
    /// Read the controller's decision log (JSON lines, `rlscale controller --decision-log`) instead
    /// of Prometheus: the arrival rates it recorded.
    #[arg(long, value_name = "FILE", conflicts_with = "prometheus")]
    pub decision_log: Option<PathBuf>,
    /// How far back from --end to start, e.g. 14d, 36h, 90m [default: 14d from Prometheus; the
    /// whole decision log].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", conflicts_with = "start")]
    pub since: Option<Duration>,
    /// Start: Unix seconds or RFC 3339 (2026-11-23T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// End: Unix seconds or RFC 3339 [default: now; the decision log's last decision].
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Interval of the trace's rows (the controller's control interval is 15 s).
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub step: Duration,
    /// Timeout of one Prometheus request.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Points per Prometheus request (Prometheus refuses more than 11,000 per series; a proxy may
    /// allow fewer).
    #[arg(long, default_value_t = MAX_RANGE_POINTS as u64, value_parser = clap::value_parser!(u64).range(1..=11_000), value_name = "N")]
    pub points_per_request: u64,
    /// The trace file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
}

/// A history on a fixed grid: row k covers `[t0 + k·step, t0 + (k+1)·step)`; `None` is a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Unix time of row 0.
    pub t0: f64,
    /// Row interval, seconds.
    pub step_s: f64,
    /// Rate of each row, req/s; `None` where there is no data.
    pub rps: Vec<Option<f64>>,
}

impl History {
    /// Cut the gaps before the first sample and after the last; `None` when there is no sample.
    fn trimmed(mut self) -> Option<History> {
        let first = self.rps.iter().position(Option::is_some)?;
        let last = self.rps.iter().rposition(Option::is_some)?;
        self.rps.truncate(last + 1);
        self.rps.drain(..first);
        self.t0 += first as f64 * self.step_s;
        Some(self)
    }

    /// The gaps: (first row, rows) of each run of `None`.
    pub fn gaps(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, r) in self.rps.iter().enumerate() {
            if r.is_none() {
                match out.last_mut() {
                    Some((s, n)) if *s + *n == i => *n += 1,
                    _ => out.push((i, 1)),
                }
            }
        }
        out
    }

    /// The CSV text: `t_s,rps`, an empty rps for a gap.
    pub fn csv(&self) -> Vec<String> {
        let mut lines = vec!["t_s,rps".to_string()];
        lines.extend(self.rps.iter().enumerate().map(|(k, r)| {
            let t = k as f64 * self.step_s;
            match r {
                Some(v) => format!("{t},{}", round6(*v)),
                None => format!("{t},"),
            }
        }));
        lines
    }
}

/// `v` to 6 decimals, without trailing zeros.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// `NS/NAME` → (namespace, name).
fn object(text: &str) -> Result<(String, String)> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(BadInput(format!(
            "--object {text:?}: expected NAMESPACE/NAME, e.g. llm/vllm-8b"
        ))
        .into()),
    }
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The grid `[start, end]` checked: the start before the end and not too many rows.
fn grid(start: f64, end: f64, step_s: f64) -> Result<usize> {
    if step_s.is_nan() || step_s <= 0.0 {
        return Err(BadInput("--step must be more than 0 s".into()).into());
    }
    if end.is_nan() || start.is_nan() || end <= start {
        return Err(BadInput(format!(
            "the start ({}) is not before the end ({})",
            SimTime(start).rfc3339(),
            SimTime(end).rfc3339()
        ))
        .into());
    }
    let rows = ((end - start) / step_s).floor() + 1.0;
    if rows > MAX_ROWS {
        return Err(BadInput(format!(
            "{rows} rows of --step {step_s} s from {} to {} (at most {MAX_ROWS}): use a longer --step or a shorter range",
            SimTime(start).rfc3339(),
            SimTime(end).rfc3339()
        ))
        .into());
    }
    Ok(rows as usize)
}

/// A progress bar on stderr that shows itself only once the work has taken a couple of seconds.
fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what}  ETA {{eta}}"
        ))
        .expect("a valid template"),
    );
    pb
}

/// Pull `query` on the grid of `rows` rows from `start`, `per_request` points per request, with a
/// progress bar. Row k is the query evaluated at `start + k·step + lag_s`: a rate over the window
/// before its evaluation time belongs to the middle of that window.
pub fn pull(
    prom: &Prometheus,
    query: &str,
    (start, lag_s): (f64, f64),
    rows: usize,
    step_s: f64,
    per_request: usize,
) -> Result<History> {
    let per_request = per_request.clamp(1, MAX_RANGE_POINTS + 1_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the HTTP client's runtime")?;
    let chunks = rows.div_ceil(per_request);
    let pb = progress(chunks as u64, "requests");
    let began = Instant::now();
    let mut rps = vec![None; rows];
    for c in 0..chunks {
        let first = c * per_request;
        let last = (first + per_request).min(rows) - 1;
        let (a, b) = (
            start + lag_s + first as f64 * step_s,
            start + lag_s + last as f64 * step_s,
        );
        let samples = rt
            .block_on(prom.query_range(query, a, b, step_s))
            .map_err(|e| match e {
                PromError::Query { .. } | PromError::SeveralSeries { .. } => {
                    anyhow::Error::new(BadInput(e.to_string()))
                }
                other => anyhow::Error::new(other),
            })?;
        for (t, v) in samples {
            let k = ((t - lag_s - start) / step_s).round();
            if k >= 0.0 && (k as usize) < rows && v.is_finite() && v >= 0.0 {
                rps[k as usize] = Some(v);
            }
        }
        pb.set_position(c as u64 + 1);
        if pb.is_hidden() && began.elapsed() > Duration::from_secs(2) && c + 1 < chunks {
            pb.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
    pb.finish_and_clear();
    Ok(History {
        t0: start,
        step_s,
        rps,
    })
}

/// The decision log's arrival rates of one object on a grid of `step_s`: each logged 1-minute rate
/// at its window's middle, averaged per row; NaN (a failed query) is no data.
pub fn from_log(
    log: &DecisionLog,
    object: Option<&str>,
    start: Option<f64>,
    end: Option<f64>,
    step_s: f64,
) -> Result<History> {
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        return Err(BadInput(format!(
            "the start ({}) is not before the end ({})",
            SimTime(s).rfc3339(),
            SimTime(e).rfc3339()
        ))
        .into());
    }
    let objects: std::collections::BTreeSet<String> =
        log.decisions.iter().map(|d| d.object()).collect();
    if objects.is_empty() {
        return Err(BadInput(format!("{}: the log has no decisions", log.path.display())).into());
    }
    let want = match object {
        Some(o) => {
            if !objects.contains(o) {
                return Err(BadInput(format!(
                    "{}: no decisions of --object {o} (the log has {})",
                    log.path.display(),
                    list(&objects)
                ))
                .into());
            }
            o.to_string()
        }
        None if objects.len() == 1 => objects.iter().next().cloned().unwrap_or_default(),
        None => {
            return Err(BadInput(format!(
                "{}: decisions of {} objects; pick one with --object ({})",
                log.path.display(),
                objects.len(),
                list(&objects)
            ))
            .into());
        }
    };
    let pts: Vec<(f64, f64)> = log
        .decisions
        .iter()
        .filter(|d| d.object() == want)
        .map(|d| {
            (
                d.snapshot.time.0 - RATE_CENTRE_S,
                d.snapshot.arrival_rate_1m,
            )
        })
        .filter(|(t, r)| {
            t.is_finite()
                && r.is_finite()
                && *r >= 0.0
                && start.is_none_or(|s| *t >= s)
                && end.is_none_or(|e| *t <= e)
        })
        .collect();
    let (Some(lo), Some(hi)) = (
        pts.iter().map(|p| p.0).reduce(f64::min),
        pts.iter().map(|p| p.0).reduce(f64::max),
    ) else {
        return Err(BadInput(format!(
            "{}: no arrival rate recorded for {want} in the range (every arrival_rate_1m is null or outside it)",
            log.path.display()
        ))
        .into());
    };
    let t0 = start.unwrap_or(lo);
    let rows = grid(t0, end.unwrap_or(hi).max(t0 + step_s), step_s)?;
    let mut sum = vec![(0.0, 0usize); rows];
    for (t, r) in pts {
        // Nearest row: decisions come every control interval, each a little late by a varying
        // amount, and a floor would put two in one row and none in the next.
        let k = ((t - t0) / step_s).round();
        if k >= 0.0 && (k as usize) < rows {
            let cell = &mut sum[k as usize];
            cell.0 += r;
            cell.1 += 1;
        }
    }
    Ok(History {
        t0,
        step_s,
        rps: sum
            .into_iter()
            .map(|(s, n)| (n > 0).then(|| s / n as f64))
            .collect(),
    })
}

fn list(objects: &std::collections::BTreeSet<String>) -> String {
    objects.iter().cloned().collect::<Vec<_>>().join(", ")
}

pub fn run(args: Args) -> Result<()> {
    let step_s = args.step.as_secs_f64();
    if step_s <= 0.0 {
        return Err(BadInput("--step must be more than 0 s".into()).into());
    }
    let start = time_flag("--start", &args.start)?;
    let end = time_flag("--end", &args.end)?;
    let (history, source) = if let Some(path) = &args.decision_log {
        let log = DecisionLog::read(path).map_err(|e| {
            if e.is_bad_input() {
                anyhow::Error::new(BadInput(e.to_string()))
            } else {
                anyhow::Error::new(e)
            }
        })?;
        let start = match (start, args.since) {
            (Some(s), _) => Some(s),
            (None, Some(d)) => {
                let last = log
                    .decisions
                    .iter()
                    .map(|d| d.snapshot.time.0)
                    .fold(f64::NAN, f64::max);
                Some(end.unwrap_or(last) - d.as_secs_f64())
            }
            (None, None) => None,
        };
        let h = from_log(&log, args.object.as_deref(), start, end, step_s)?;
        (h, format!("the decision log {}", path.display()))
    } else {
        let Some(url) = &args.prometheus else {
            return Err(BadInput("give --prometheus URL or --decision-log FILE".into()).into());
        };
        let query = match (&args.query, &args.object) {
            (Some(q), _) => q.clone(),
            (None, Some(o)) => {
                let (ns, name) = object(o)?;
                Queries::default()
                    .resolved(&ns, &name)
                    .remove(&Field::ArrivalRate1m)
                    .unwrap_or_default()
            }
            (None, None) => {
                return Err(BadInput(
                    "give the workload: --object NAMESPACE/NAME (the controller's default query) or --query PROMQL"
                        .into(),
                )
                .into());
            }
        };
        let end = end.unwrap_or_else(now_s);
        let start = start.unwrap_or_else(|| {
            end - args
                .since
                .unwrap_or(Duration::from_secs(14 * 86_400))
                .as_secs_f64()
        });
        // The default query is a rate over the minute before its evaluation time: row t is
        // evaluated at t + 30 s, as the decision log's rates are placed. A --query's window is
        // unknown: its rows are its evaluation times.
        let lag_s = if args.query.is_some() {
            0.0
        } else {
            RATE_CENTRE_S
        };
        let rows = grid(start, end - lag_s, step_s)?;
        let http = reqwest::Client::new();
        let prom = Prometheus::new(http, url, args.timeout);
        let h = pull(
            &prom,
            &query,
            (start, lag_s),
            rows,
            step_s,
            args.points_per_request as usize,
        )?;
        (h, format!("{url}, query {query}"))
    };
    let Some(h) = history.trimmed() else {
        return Err(BadInput(format!(
            "no data from {source} in the range: nothing written to {}",
            args.out.display()
        ))
        .into());
    };
    if h.rps.len() < 2 {
        return Err(BadInput(format!(
            "only one row of data from {source} in the range (a trace needs two to define its interval): nothing written to {}",
            args.out.display()
        ))
        .into());
    }
    write(&args.out, &h)?;
    eprintln!("{}", summary(&h, &args.out, &source));
    Ok(())
}

/// Write the trace atomically.
fn write(path: &Path, h: &History) -> Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let mut f = AtomicFile::create(path)?;
    for line in h.csv() {
        f.line(&line)?;
    }
    f.commit()
}

/// What was written, in one paragraph: span, rows, rates and gaps.
fn summary(h: &History, out: &Path, source: &str) -> String {
    let known: Vec<f64> = h.rps.iter().flatten().copied().collect();
    let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
    let peak = known.iter().copied().fold(0.0, f64::max);
    let gaps = h.gaps();
    let gap_rows: usize = gaps.iter().map(|g| g.1).sum();
    let span = h.rps.len() as f64 * h.step_s;
    let mut s = format!(
        "wrote {}: {} rows of {} s ({}) from {}, from {source}; mean {mean:.3} req/s, peak {peak:.3} req/s",
        out.display(),
        h.rps.len(),
        h.step_s,
        shadow::verdict::human_duration(span),
        SimTime(h.t0).rfc3339(),
    );
    if gaps.is_empty() {
        s.push_str("; no gaps");
    } else {
        let longest = gaps.iter().max_by_key(|g| g.1).copied().unwrap_or((0, 0));
        s.push_str(&format!(
            "; {} gap(s) without data ({gap_rows} rows, {}; left empty, bridged by interpolation when played), the longest {} from {}",
            gaps.len(),
            shadow::verdict::human_duration(gap_rows as f64 * h.step_s),
            shadow::verdict::human_duration(longest.1 as f64 * h.step_s),
            SimTime(h.t0 + longest.0 as f64 * h.step_s).rfc3339(),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_cut_at_the_ends_and_left_empty_inside() {
        let h = History {
            t0: 100.0,
            step_s: 15.0,
            rps: vec![None, Some(1.0), None, None, Some(2.5), None],
        }
        .trimmed()
        .unwrap();
        assert_eq!(h.t0, 115.0);
        assert_eq!(h.gaps(), vec![(1, 2)]);
        assert_eq!(h.csv(), vec!["t_s,rps", "0,1", "15,", "30,", "45,2.5"]);
        let none = History {
            t0: 0.0,
            step_s: 1.0,
            rps: vec![None, None],
        };
        assert_eq!(none.trimmed(), None);
    }

    /// A decision line of `default/web` at `t` with `arrival_rate_1m` = `rate` (null: a failed query).
    fn decision(t: f64, rate: Option<f64>) -> String {
        let rate = rate.map_or("null".to_string(), |r| r.to_string());
        format!(
            r#"{{"kind":"decision","time":{t},"namespace":"default","name":"web","mode":"Shadow","current_replicas":3,"desired_replicas":3,"source":"model","reason":"hold","hpa_desired_replicas":3,"hpa_recomputed_replicas":3,"scaled":false,"model":null,"min_replicas":1,"max_replicas":10,"interval_s":15,"snapshot":{{"time":{t},"arrival_rate_1m":{rate},"arrival_rate_5m":6.0,"queue_depth":0.0,"running":12.0,"ready_replicas":3,"starting_replicas":0,"gpu_utilization":0.5,"kv_cache_usage":0.2,"latency_p50_s":1.0,"latency_p95_s":2.0,"latency_p99_s":null,"profile":{{"cold_start_s":135.0,"capacity_rps":3.0,"gpus_per_replica":1,"usd_per_gpu_hour":0.8,"slo_latency_s":10.0}}}}}}"#
        )
    }

    /// Decisions every 15 s, each a little late by a varying amount, fill one row each; a failed
    /// query is a gap, never a zero.
    #[test]
    fn decision_log_rates_land_one_per_row() {
        let times = [1000.0, 1015.4, 1029.9, 1045.2, 1060.0, 1075.1];
        let rates = [Some(1.0), Some(2.0), Some(3.0), None, Some(5.0), Some(6.0)];
        let text: String = times
            .iter()
            .zip(rates)
            .map(|(&t, r)| decision(t, r) + "\n")
            .collect();
        let log = DecisionLog::parse(Path::new("d.jsonl"), &text).unwrap();
        let h = from_log(&log, None, None, None, 15.0).unwrap();
        assert_eq!(h.t0, 970.0);
        assert_eq!(
            h.rps,
            vec![Some(1.0), Some(2.0), Some(3.0), None, Some(5.0), Some(6.0)]
        );
        let e = from_log(&log, Some("default/other"), None, None, 15.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no decisions of --object default/other"), "{e}");
        let e = from_log(&log, None, Some(2000.0), Some(1000.0), 15.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not before the end"), "{e}");
        let empty = DecisionLog::parse(Path::new("e.jsonl"), "").unwrap();
        let e = from_log(&empty, None, None, None, 15.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the log has no decisions"), "{e}");
    }

    #[test]
    fn the_grid_refuses_an_empty_or_huge_range() {
        assert_eq!(grid(0.0, 60.0, 15.0).unwrap(), 5);
        let e = grid(60.0, 60.0, 15.0).unwrap_err().to_string();
        assert!(e.contains("is not before the end"), "{e}");
        let e = grid(0.0, 1e9, 1.0).unwrap_err().to_string();
        assert!(e.contains("use a longer --step"), "{e}");
    }

    #[test]
    fn the_object_is_namespace_slash_name() {
        assert_eq!(
            object("llm/vllm-8b").unwrap(),
            ("llm".into(), "vllm-8b".into())
        );
        for bad in ["vllm", "/x", "x/", "a/b/c"] {
            assert!(object(bad).is_err(), "{bad}");
        }
    }
}
