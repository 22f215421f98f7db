//! The shadow report: the controller's shadow-mode decision log turned into the evidence an SRE takes
//! to a go/no-go meeting (`rlscale shadow-report`).
//!
//! # Layout
//! - [`log`]: reading the JSONL decision log (config and decision lines), with errors that name the
//!   file, the line and the field; `--since`/`--until` times.
//! - [`analysis`]: what the log says on its own: divergence between our recommendation and the
//!   HPA's (actual and recomputed), whether we would have scaled earlier or later, replica-hours.
//! - [`replay`]: the counterfactual replay of the observed arrival rates in the simulator, under
//!   our policy and the default HPA, over several seeds (its assumptions are listed there).
//! - [`render`]: the Markdown and HTML report.
//!
//! Data flow: [`DecisionLog::read`] → [`generate`] (select shadow decisions per object → analysis →
//! replay → plots → `report.md`, `report.html`, `report.json`, written to a staging folder inside
//! `--out` and renamed into place file by file, so a reader never sees half a file).
//!
//! The model named in the log may not exist on the machine making the report (a path inside the
//! controller's pod). Then the report refuses to guess: [`ShadowError::ModelMissing`] asks for
//! `--model PATH` (the same file), or [`Options::replay`] = false to skip the replay.

pub mod analysis;
pub mod log;
pub mod render;
pub mod replay;
pub mod verdict;

#[cfg(test)]
pub(crate) mod fixtures;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlscale_runtime::{ModelFile, RuntimeConfig};
use serde::Serialize;

pub use analysis::{Direction, Divergence, ReplicaHours, Timing};
pub use log::{ConfigRecord, DecisionLog, DecisionRecord, parse_time};
pub use replay::{PairedDiff, Replay};
pub use verdict::{Outcome, Thresholds, Verdict};

use crate::plot::{self, PlotError, ReplicaSeries, ScatterPoint, TimelinePlot};

/// Everything that can stop a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowError {
    /// The log (or another input file) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A malformed line.
    #[error("{}:{line}: {}{message}", path.display(), field_prefix(field))]
    Line {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Dotted path of the field, or `(the line)`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Nothing to report on.
    #[error("{}: {message}", path.display())]
    Nothing {
        /// The log.
        path: PathBuf,
        /// Why, and what the log does hold.
        message: String,
    },
    /// The model named in the log is not on this machine.
    #[error(
        "{object}: the model file {} named in the log (line {line}) does not exist on this machine; pass --model PATH with the file the controller loaded, or --no-replay to skip the counterfactual replay",
        model.display()
    )]
    ModelMissing {
        /// `namespace/name`.
        object: String,
        /// The path in the log.
        model: PathBuf,
        /// The config (or decision) line naming it.
        line: usize,
    },
    /// A model file that cannot be loaded.
    #[error("model {}: {message}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// The loader's reason.
        message: String,
    },
    /// No shipped service profile to build the replay from.
    #[error("no service profiles in {} to build the replay from (pass --envs DIR)", dir.display())]
    NoProfiles {
        /// Where they were looked for.
        dir: PathBuf,
    },
    /// The simulator refused the replay scenario or a profile.
    #[error("replay scenario: {0}")]
    Sim(#[source] rlscale_sim::Error),
    /// The logged runtime configuration cannot be built.
    #[error("the logged runtime configuration: {0}")]
    Runtime(String),
    /// A command-line value.
    #[error("{0}")]
    Argument(String),
    /// A plot could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `field `x`: ` before a message about a field; nothing when it is about the whole line.
fn field_prefix(field: &str) -> String {
    if field == log::WHOLE_LINE {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

impl ShadowError {
    /// Whether the user's input caused it (exit code 2 in the CLI), not a failure while working.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            ShadowError::Plot(_) | ShadowError::Write { .. } | ShadowError::Internal(_)
        )
    }
}

/// What to report on and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Decisions at or after this time, Unix seconds.
    pub since: Option<f64>,
    /// Decisions at or before this time, Unix seconds.
    pub until: Option<f64>,
    /// Only this object, `namespace/name`.
    pub object: Option<String>,
    /// The model file to replay for every object instead of the one named in the log.
    pub model: Option<PathBuf>,
    /// Simulator seeds of the replay (0, 1, …, seeds − 1).
    pub seeds: u64,
    /// Run the counterfactual replay.
    pub replay: bool,
    /// The scenario folder whose `profiles/` the replay's service profile is built from.
    pub envs: PathBuf,
    /// The verdict's thresholds and the divergence's tolerance band.
    pub thresholds: Thresholds,
}

/// One object's section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// File-name form of `namespace/name`.
    pub slug: String,
    /// Shadow decisions in the window.
    pub decisions: usize,
    /// Line of the first and of the last.
    pub lines: (usize, usize),
    /// Unix seconds of the first and the last decision.
    pub window: (f64, f64),
    /// Control interval, seconds (the last decision's).
    pub interval_s: u32,
    /// Replica bounds (the last decision's).
    pub bounds: (u32, u32),
    /// The model named by the log (config line, else the last decision).
    pub model: Option<String>,
    /// The config line in force at the end of the window.
    pub config_line: Option<usize>,
    /// Decisions by source (`model`, `fallback`, `guardrail`).
    pub sources: BTreeMap<String, usize>,
    /// Decisions by reason.
    pub reasons: BTreeMap<String, usize>,
    /// Decisions whose snapshot had a failed query.
    pub missing_metrics: usize,
    /// Ours vs the actual HPA.
    pub vs_hpa: Divergence,
    /// Ours vs the recomputed HPA.
    pub vs_recomputed: Divergence,
    /// Up and down moves of the actual HPA.
    pub timing_hpa: [Timing; 2],
    /// Up and down moves of the recomputed HPA.
    pub timing_recomputed: [Timing; 2],
    /// Replica-hours over the decisions where the actual HPA is known.
    pub hours_vs_hpa: ReplicaHours,
    /// Replica-hours over the decisions where the recomputed HPA is known.
    pub hours_vs_recomputed: ReplicaHours,
    /// Silences in the log longer than 3 intervals (not counted in the hours).
    pub gaps: usize,
    /// The replay, when run.
    pub replay: Option<Replay>,
    /// Why there is no replay.
    pub replay_skipped: Option<String>,
    /// Plot files, relative to the report folder (PNG and SVG of each).
    pub plots: Vec<PathBuf>,
    /// Remarks on the data.
    pub notes: Vec<String>,
    /// May it switch to Active (set once the replay has run).
    pub verdict: Option<Verdict>,
    /// The series, for plots.
    #[serde(skip)]
    pub series: Series,
}

/// One object's series at its decision times.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Hours since the first decision.
    pub t_h: Vec<f64>,
    /// Ours.
    pub ours: Vec<f64>,
    /// The actual HPA (NaN where unknown).
    pub hpa: Vec<f64>,
    /// The recomputed HPA (NaN where unknown).
    pub recomputed: Vec<f64>,
    /// Arrival rate over 1 minute, req/s (NaN where the query failed).
    pub arrival: Vec<f64>,
    /// Arrival rate / capacity per replica.
    pub needed: Vec<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// The log.
    pub log: PathBuf,
    /// Lines read.
    pub lines: usize,
    /// The requested window, Unix seconds.
    pub since: Option<f64>,
    /// The requested window, Unix seconds.
    pub until: Option<f64>,
    /// One section per object, by namespace and name.
    pub objects: Vec<ObjectReport>,
    /// Remarks on the whole log.
    pub notes: Vec<String>,
}

/// What [`generate`] wrote.
#[derive(Debug)]
pub struct Generated {
    /// The report.
    pub report: ShadowReport,
    /// Every file written, final paths.
    pub files: Vec<PathBuf>,
}

/// A staging folder inside the output folder, removed unless committed.
struct Staging {
    dir: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    fn new(out: &Path) -> Result<Staging, ShadowError> {
        let dir = out.join(format!(".shadow-report.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| ShadowError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Staging {
            dir,
            out: out.to_path_buf(),
            committed: false,
        })
    }

    /// Rename every staged file into the output folder; the reports last, so that they never point
    /// at a plot that is not there yet.
    fn commit(mut self) -> Result<Vec<PathBuf>, ShadowError> {
        let mut files = Vec::new();
        walk(&self.dir, &mut files).map_err(|source| ShadowError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let last = |p: &PathBuf| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            matches!(name, "report.md" | "report.html" | "report.json")
        };
        files.sort_by_key(|p| (last(p), p.clone()));
        let mut done = Vec::with_capacity(files.len());
        for f in files {
            let rel = f.strip_prefix(&self.dir).expect("walked from here");
            let to = self.out.join(rel);
            let parent = to.parent().unwrap_or(&self.out);
            std::fs::create_dir_all(parent).map_err(|source| ShadowError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
            std::fs::rename(&f, &to).map_err(|source| ShadowError::Write {
                path: to.clone(),
                source,
            })?;
            done.push(to);
        }
        self.committed = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(done)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Decisions by `(namespace, name)`.
type Groups<'a> = BTreeMap<(String, String), Vec<&'a DecisionRecord>>;

/// Select the shadow decisions per object, with notes on what was left out.
fn select<'a>(
    log: &'a DecisionLog,
    opts: &Options,
) -> Result<(Groups<'a>, Vec<String>), ShadowError> {
    let nothing = |message: String| ShadowError::Nothing {
        path: log.path.clone(),
        message,
    };
    if log.decisions.is_empty() {
        return Err(nothing(if log.lines == 0 {
            "the log is empty".into()
        } else {
            format!(
                "no decision lines ({} config line(s) only): the controller has not decided yet",
                log.configs.len()
            )
        }));
    }
    let wanted = match &opts.object {
        None => None,
        Some(o) => Some(o.split_once('/').ok_or_else(|| {
            ShadowError::Argument(format!("--object {o}: expected NAMESPACE/NAME"))
        })?),
    };
    let mut notes = Vec::new();
    let mut objects: BTreeMap<(String, String), (usize, usize, f64, f64)> = BTreeMap::new();
    let mut groups: Groups = BTreeMap::new();
    let (mut active, mut outside) = (0, 0);
    for d in &log.decisions {
        let key = (d.namespace.clone(), d.name.clone());
        let e = objects.entry(key.clone()).or_insert((0, 0, d.time, d.time));
        if d.is_shadow() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2 = e.2.min(d.time);
        e.3 = e.3.max(d.time);
        if wanted.is_some_and(|(ns, n)| (ns, n) != (d.namespace.as_str(), d.name.as_str())) {
            continue;
        }
        if opts.since.is_some_and(|s| d.time < s) || opts.until.is_some_and(|u| d.time > u) {
            outside += 1;
            continue;
        }
        if !d.is_shadow() {
            active += 1;
            continue;
        }
        groups.entry(key).or_default().push(d);
    }
    let inventory = || {
        objects
            .iter()
            .map(|((ns, n), (s, a, t0, t1))| {
                format!(
                    "{ns}/{n}: {s} shadow and {a} active decision(s) from {} to {}",
                    rlscale_core::SimTime(*t0).rfc3339(),
                    rlscale_core::SimTime(*t1).rfc3339()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some((ns, n)) = wanted
        && !objects.contains_key(&(ns.to_string(), n.to_string()))
    {
        return Err(ShadowError::Argument(format!(
            "--object {ns}/{n}: no such object in {}; it holds {}",
            log.path.display(),
            inventory()
        )));
    }
    if groups.is_empty() {
        let range = match (opts.since, opts.until) {
            (None, None) => String::new(),
            (s, u) => format!(
                " between {} and {}",
                s.map_or("the start".into(), |t| rlscale_core::SimTime(t).rfc3339()),
                u.map_or("the end".into(), |t| rlscale_core::SimTime(t).rfc3339())
            ),
        };
        return Err(nothing(format!(
            "no shadow-mode decisions{range}; the log holds {}",
            inventory()
        )));
    }
    for v in groups.values_mut() {
        v.sort_by(|a, b| a.time.total_cmp(&b.time));
    }
    if active > 0 {
        notes.push(format!(
            "{active} active-mode decision(s) in the window are left out: in active mode the HPA does not run beside us."
        ));
    }
    if outside > 0 {
        notes.push(format!(
            "{outside} decision(s) outside the requested window are left out."
        ));
    }
    Ok((groups, notes))
}

/// The config line in force at `end` for the object (the last one at or before it), else the first
/// one after it.
fn config_for<'a>(
    log: &'a DecisionLog,
    ns: &str,
    name: &str,
    end: f64,
) -> Option<&'a ConfigRecord> {
    let mine = log
        .configs
        .iter()
        .filter(|c| c.namespace == ns && c.name == name);
    let before = mine.clone().rev().find(|c| c.time <= end);
    before.or_else(|| mine.clone().next())
}

fn nan_or(v: Option<u32>) -> f64 {
    v.map_or(f64::NAN, f64::from)
}

/// The log-only part of one object's section.
fn analyse(
    log: &DecisionLog,
    ns: &str,
    name: &str,
    ds: &[&DecisionRecord],
    band: (u32, f64),
) -> ObjectReport {
    let first = ds[0];
    let last = ds[ds.len() - 1];
    let t: Vec<f64> = ds.iter().map(|d| d.time).collect();
    let ours: Vec<u32> = ds.iter().map(|d| d.desired_replicas).collect();
    let hpa: Vec<Option<u32>> = ds.iter().map(|d| d.hpa_desired_replicas).collect();
    let rec: Vec<Option<u32>> = ds.iter().map(|d| d.hpa_recomputed_replicas).collect();
    let interval = f64::from(last.interval_s);
    let (hold, gaps) = analysis::holds(&t, interval, 3.0 * interval);
    let price: Vec<(u32, f64)> = ds
        .iter()
        .map(|d| {
            (
                d.snapshot.profile.gpus_per_replica,
                d.snapshot.profile.usd_per_gpu_hour,
            )
        })
        .collect();
    let ch_hpa = analysis::changes(&t, &ours, &hpa);
    let ch_rec = analysis::changes(&t, &ours, &rec);
    let mut sources = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    for d in ds {
        *sources.entry(d.source.clone()).or_insert(0) += 1;
        *reasons.entry(d.reason.clone()).or_insert(0) += 1;
    }
    let config = config_for(log, ns, name, last.time);
    let mut notes = Vec::new();
    let hpa_known = hpa.iter().filter(|v| v.is_some()).count();
    if hpa_known == 0 {
        notes.push("The log has no HPA status for this object (no HPA targets the same workload, or it has not computed a recommendation): the comparisons with the actual HPA are empty; those with the recomputed HPA stand.".into());
    } else if hpa_known < ds.len() {
        notes.push(format!(
            "The actual HPA's recommendation is missing at {} of {} decisions; those are left out of its comparisons.",
            ds.len() - hpa_known,
            ds.len()
        ));
    }
    let zeros = ds
        .iter()
        .filter(|d| d.hpa_desired_replicas == Some(0) && d.current_replicas > 0)
        .count();
    if zeros > 0 {
        notes.push(format!(
            "The actual HPA reported 0 desired replicas at {zeros} decision(s) while the target ran some (an HPA that has not synced yet reports 0); they are compared as logged."
        ));
    }
    if gaps > 0 {
        notes.push(format!(
            "The log is silent {gaps} time(s) for more than 3 intervals (controller down or object paused); each silence counts one interval in the replica-hours."
        ));
    }
    if config.is_none() {
        notes.push("No config line for this object: the replay uses the runtime's default configuration with the logged bounds.".into());
    }
    let series = Series {
        t_h: t.iter().map(|x| (x - first.time) / 3600.0).collect(),
        ours: ours.iter().map(|&v| f64::from(v)).collect(),
        hpa: hpa.iter().map(|&v| nan_or(v)).collect(),
        recomputed: rec.iter().map(|&v| nan_or(v)).collect(),
        arrival: ds.iter().map(|d| d.snapshot.arrival_rate_1m).collect(),
        needed: ds
            .iter()
            .map(|d| {
                let c = d.snapshot.profile.capacity_rps;
                if c > 0.0 {
                    d.snapshot.arrival_rate_1m / c
                } else {
                    f64::NAN
                }
            })
            .collect(),
    };
    ObjectReport {
        namespace: ns.to_string(),
        name: name.to_string(),
        slug: replay::slug(ns, name),
        decisions: ds.len(),
        lines: (first.line, last.line),
        window: (first.time, last.time),
        interval_s: last.interval_s,
        bounds: (last.min_replicas, last.max_replicas),
        model: config
            .map(|c| c.model.clone())
            .unwrap_or_else(|| last.model.clone()),
        config_line: config.map(|c| c.line),
        sources,
        reasons,
        missing_metrics: ds.iter().filter(|d| !d.missing.is_empty()).count(),
        vs_hpa: analysis::divergence(&ours, &hpa, band.0, band.1),
        vs_recomputed: analysis::divergence(&ours, &rec, band.0, band.1),
        timing_hpa: [
            analysis::timing(&ch_hpa, Direction::Up),
            analysis::timing(&ch_hpa, Direction::Down),
        ],
        timing_recomputed: [
            analysis::timing(&ch_rec, Direction::Up),
            analysis::timing(&ch_rec, Direction::Down),
        ],
        hours_vs_hpa: analysis::replica_hours(&ours, &hpa, &hold, &price),
        hours_vs_recomputed: analysis::replica_hours(&ours, &rec, &hold, &price),
        gaps,
        replay: None,
        replay_skipped: None,
        plots: Vec::new(),
        notes,
        verdict: None,
        series,
    }
}

/// Load `path` once.
fn load_model(
    cache: &mut HashMap<PathBuf, Arc<ModelFile>>,
    path: &Path,
) -> Result<Arc<ModelFile>, ShadowError> {
    if let Some(m) = cache.get(path) {
        return Ok(m.clone());
    }
    let m = ModelFile::load(path).map_err(|e| ShadowError::Model {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let m = Arc::new(m);
    cache.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// Our policy for one object: the model (from `--model`, else the log) and the runtime
/// configuration of its config line.
fn ours_for(
    log: &DecisionLog,
    o: &ObjectReport,
    last: &DecisionRecord,
    opts: &Options,
    cache: &mut HashMap<PathBuf, Arc<ModelFile>>,
    notes: &mut Vec<String>,
) -> Result<replay::Ours, ShadowError> {
    let config = config_for(log, &o.namespace, &o.name, o.window.1);
    let runtime = match config {
        Some(c) => c.runtime.clone(),
        None => RuntimeConfig::new(o.bounds.0, o.bounds.1),
    };
    let name = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let (label, model, path) = match (&opts.model, &o.model) {
        (Some(p), Some(l)) => {
            if Path::new(l) != p.as_path() {
                notes.push(format!(
                    "The log names the model `{l}`; the replay plays `{}` (--model).",
                    p.display()
                ));
            }
            (
                format!("ours ({})", name(p)),
                Ok(load_model(cache, p)?),
                Some(p.clone()),
            )
        }
        (None, Some(l)) => {
            let p = PathBuf::from(l);
            if !p.is_file() {
                return Err(ShadowError::ModelMissing {
                    object: format!("{}/{}", o.namespace, o.name),
                    model: p,
                    line: o.config_line.unwrap_or(last.line),
                });
            }
            (
                format!("ours ({})", name(&p)),
                Ok(load_model(cache, &p)?),
                Some(p),
            )
        }
        (_, None) => {
            notes.push(format!(
                "The controller ran without a model: ours is the runtime's fallback law behind its guardrails, as in the cluster{}.",
                if opts.model.is_some() { " (--model is not applied to it)" } else { "" }
            ));
            (
                "ours (no model: fallback law)".to_string(),
                Err("no model configured (spec.model)".to_string()),
                None,
            )
        }
    };
    Ok(replay::Ours {
        label,
        model,
        path,
        runtime,
    })
}

/// Draw one object's plots into `dir` (`plots/` of the staging folder); returns paths relative to
/// the report folder.
fn draw(o: &ObjectReport, staging: &Path) -> Result<Vec<PathBuf>, ShadowError> {
    let pdir = staging.join("plots");
    std::fs::create_dir_all(&pdir).map_err(|source| ShadowError::Write {
        path: pdir.clone(),
        source,
    })?;
    let s = &o.series;
    let mk = |label: &str, v: &[f64]| ReplicaSeries {
        policy: label.to_string(),
        t_h: s.t_h.clone(),
        replicas: v.to_vec(),
    };
    let series = [
        mk("ours (desired_replicas)", &s.ours),
        mk("HPA (actual)", &s.hpa),
        mk("HPA (recomputed)", &s.recomputed),
    ];
    let title = format!(
        "{}/{}: recommendations from {}",
        o.namespace,
        o.name,
        rlscale_core::SimTime(o.window.0).rfc3339()
    );
    let mut files = Vec::new();
    let stem = |n: &str| pdir.join(format!("{}-{n}", o.slug));
    files.extend(plot::timeline(
        &stem("divergence"),
        &TimelinePlot {
            title: &title,
            t_h: &s.t_h,
            arrival_rps: &s.arrival,
            needed_replicas: &s.needed,
            series: &series,
        },
    )?);
    if let Some(r) = &o.replay {
        let needed: Vec<f64> = r.demand.1.iter().map(|x| x / r.capacity_rps).collect();
        let title = format!(
            "{}/{}: replay of the observed arrivals (seed {})",
            o.namespace, o.name, r.seeds[0]
        );
        files.extend(plot::timeline(
            &stem("replay"),
            &TimelinePlot {
                title: &title,
                t_h: &r.demand.0,
                arrival_rps: &r.demand.1,
                needed_replicas: &needed,
                series: &r.timelines,
            },
        )?);
        let points: Vec<ScatterPoint> = r
            .runs
            .iter()
            .map(|run| ScatterPoint {
                policy: run.summary.policy.clone(),
                scenario: r.scenario.clone(),
                cost_usd: run.summary.cost_usd,
                slo_attainment: run.summary.slo_attainment_pct,
                spread: None,
            })
            .collect();
        let target = r.rows.first().map_or(99.0, |row| row.slo_target_pct);
        files.extend(plot::cost_vs_slo(
            &stem("replay-cost-vs-slo"),
            &format!(
                "{}/{}: replay, GPU cost vs SLO attainment, one point per seed",
                o.namespace, o.name
            ),
            &points,
            target,
        )?);
    }
    Ok(files
        .into_iter()
        .map(|p| p.strip_prefix(staging).map(Path::to_path_buf).unwrap_or(p))
        .collect())
}

/// Make the report for `log` into `out`: `report.md`, `report.html`, `report.json`, `plots/` and
/// `replay/<object>/` (the replayed scenario). `progress(done, total)` is called after each replay
/// episode.
pub fn generate(
    log: &DecisionLog,
    opts: &Options,
    out: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Generated, ShadowError> {
    if opts.replay && opts.seeds == 0 {
        return Err(ShadowError::Argument("--seeds must be at least 1".into()));
    }
    if let (Some(s), Some(u)) = (opts.since, opts.until)
        && s > u
    {
        return Err(ShadowError::Argument(format!(
            "--since ({}) is after --until ({})",
            rlscale_core::SimTime(s).rfc3339(),
            rlscale_core::SimTime(u).rfc3339()
        )));
    }
    let (groups, mut notes) = select(log, opts)?;
    notes.extend(log.notes.iter().cloned());
    let staging = Staging::new(out)?;
    let mut objects: Vec<ObjectReport> = groups
        .iter()
        .map(|((ns, n), ds)| {
            let t = &opts.thresholds;
            analyse(log, ns, n, ds, (t.band_replicas, t.band_pct))
        })
        .collect();

    if opts.replay {
        // Every model first: a missing one stops the report before any work.
        let mut cache = HashMap::new();
        let mut ours = Vec::with_capacity(objects.len());
        for (o, ds) in objects.iter_mut().zip(groups.values()) {
            let last = ds[ds.len() - 1];
            let mut notes = Vec::new();
            ours.push(ours_for(log, o, last, opts, &mut cache, &mut notes)?);
            o.notes.extend(notes);
        }
        let seeds: Vec<u64> = (0..opts.seeds).collect();
        let total = objects.len() * seeds.len() * 2;
        let done = std::sync::atomic::AtomicUsize::new(0);
        let tick = || {
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(d, total);
        };
        for ((o, ds), our) in objects.iter_mut().zip(groups.values()).zip(&ours) {
            let dir = staging.dir.join("replay").join(&o.slug);
            std::fs::create_dir_all(&dir).map_err(|source| ShadowError::Write {
                path: dir.clone(),
                source,
            })?;
            match replay::build_scenario(&dir, &opts.envs, &o.slug, ds, &our.runtime)? {
                Ok(sc) => {
                    o.replay = Some(replay::run(&sc, our, &seeds, &staging.dir, &tick)?);
                }
                Err(why) => {
                    for _ in 0..seeds.len() * 2 {
                        tick();
                    }
                    o.replay_skipped = Some(why);
                }
            }
        }
    }

    for o in &mut objects {
        o.verdict = Some(verdict::decide(o, &opts.thresholds));
        o.plots = draw(o, &staging.dir)?;
    }
    let report = ShadowReport {
        log: log.path.clone(),
        lines: log.lines,
        since: opts.since,
        until: opts.until,
        objects,
        notes,
    };
    let write = |name: &str, text: &str| {
        let path = staging.dir.join(name);
        std::fs::write(&path, text).map_err(|source| ShadowError::Write { path, source })
    };
    write("report.md", &render::markdown(&report))?;
    write("report.html", &render::html(&report, &staging.dir))?;
    write(
        "report.json",
        &serde_json::to_string_pretty(&report)
            .map_err(|e| ShadowError::Internal(format!("report.json: {e}")))?,
    )?;
    let files = staging.commit()?;
    Ok(Generated { report, files })
}

#[cfg(test)]
mod tests {
    use super::fixtures::LogText;
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn tempdir(name: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "rlscale-shadow-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn opts() -> Options {
        Options {
            since: None,
            until: None,
            object: None,
            model: None,
            seeds: 2,
            replay: true,
            envs: repo().join("envs"),
            thresholds: Thresholds::default(),
        }
    }

    fn parse(text: &str) -> DecisionLog {
        DecisionLog::parse(Path::new("d.jsonl"), text).unwrap()
    }

    /// Two objects: `ns/a` with the shipped model, `ns/b` without a model; traffic that steps up.
    fn two_objects() -> String {
        let model = repo().join("models/default.json");
        let model = model.to_string_lossy();
        LogText::new("ns", "a")
            .config(1_000.0, Some(&model))
            .decisions(1_000.0, 40, |i| {
                let rate = if i < 20 { 6.0 } else { 15.0 };
                let ours = if i < 18 { 3 } else { 6 };
                let hpa = if i < 22 { 3 } else { 6 };
                (ours, (i >= 2).then_some(hpa), Some(hpa), rate)
            })
            .object("ns", "b")
            .config(1_000.0, None)
            .decisions(1_000.0, 20, |i| (2 + (i % 3) as u32, None, Some(2), 4.0))
            .active(1_400.0)
            .text
    }

    #[test]
    fn a_report_from_two_objects() {
        let log = parse(&two_objects());
        let out = tempdir("two");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let g = generate(&log, &opts(), &out, &|_, total| {
            assert_eq!(total, 2 * 2 * 2);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(calls.into_inner(), 8);
        let r = &g.report;
        assert_eq!(r.objects.len(), 2);
        let a = &r.objects[0];
        assert_eq!((a.namespace.as_str(), a.name.as_str()), ("ns", "a"));
        assert_eq!(a.decisions, 40);
        // Ours differs from the HPA at decisions 18..22 (4 of 38 with a known actual HPA).
        assert_eq!(a.vs_hpa.compared, 38);
        assert_eq!(a.vs_hpa.differ, 4);
        assert_eq!(a.vs_recomputed.compared, 40);
        // One HPA scale-up, which ours made 4 decisions (60 s) earlier.
        assert_eq!(a.timing_hpa[0].changes, 1);
        assert_eq!(a.timing_hpa[0].earlier, 1);
        assert_eq!(a.timing_hpa[0].lead_median_s, 60.0);
        let rp = a.replay.as_ref().unwrap();
        assert_eq!(rp.runs.len(), 4);
        for run in &rp.runs {
            assert!(run.summary.gpu_hours > 0.0 && run.summary.gpu_hours.is_finite());
            assert!(run.summary.slo_attainment_pct.is_finite());
        }
        assert_eq!(rp.ours, "ours (default.json)");
        let b = &r.objects[1];
        assert_eq!(b.decisions, 20, "the active decision is left out");
        assert!(r.notes.iter().any(|n| n.contains("1 active-mode decision")));
        assert_eq!(b.vs_hpa.compared, 0);
        assert!(b.notes.iter().any(|n| n.contains("no HPA status")));
        assert_eq!(
            b.replay.as_ref().unwrap().ours,
            "ours (no model: fallback law)"
        );

        for f in ["report.md", "report.html", "report.json"] {
            assert!(out.join(f).is_file(), "{f}");
        }
        for p in a.plots.iter().chain(&b.plots) {
            assert!(out.join(p).is_file(), "{}", p.display());
        }
        assert_eq!(a.plots.len(), 6);
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("| ns/a | 40 |"), "{md}");
        assert!(md.contains("| HPA (actual) | 38 | 10.5 |"), "{md}");
        assert!(md.contains("![") && md.contains("plots/ns-a-divergence.png"));
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(html.contains("<svg") && html.contains("</html>"));
        assert!(!html.contains("<img"), "self-contained");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["objects"][0]["decisions"], 40);
        // Nothing staged is left behind.
        assert!(
            std::fs::read_dir(&out).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
        );

        // The written scenario replays the HPA's numbers through the ordinary path.
        let sc = Arc::new(
            rlscale_sim::Scenario::load(&out.join(&rp.scenario_file), &Default::default()).unwrap(),
        );
        let hpa = crate::policies::PolicyChoice::parse("hpa", Path::new("/none")).unwrap();
        let bound = rp.runs[0].bound;
        let again = crate::matrix::run_one(&sc, &hpa, 0, bound, false).unwrap();
        let ours = rp
            .runs
            .iter()
            .find(|r| r.summary.policy == rp.hpa && r.summary.seed == 0)
            .unwrap();
        assert_eq!(again.summary.gpu_hours, ours.summary.gpu_hours);
        assert_eq!(again.summary.slo_violations, ours.summary.slo_violations);

        // Same seeds, same numbers.
        let out2 = tempdir("two-again");
        let g2 = generate(&log, &opts(), &out2, &|_, _| {}).unwrap();
        let runs = |g: &Generated| {
            g.report.objects[0]
                .replay
                .as_ref()
                .unwrap()
                .runs
                .iter()
                .map(|r| {
                    (
                        r.summary.gpu_hours,
                        r.summary.slo_violations,
                        r.summary.cost_usd,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(runs(&g), runs(&g2));
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&out2);
    }

    #[test]
    fn the_verdict_follows_its_checks() {
        let log = parse(&two_objects());
        let out = tempdir("verdict");
        let g = generate(&log, &opts(), &out, &|_, _| {}).unwrap();
        let a = g.report.objects[0].clone();
        // 40 decisions 15 s apart: 10 minutes, short of the default day.
        let v = a.verdict.as_ref().unwrap();
        assert_eq!(v.outcome, Outcome::NotEnoughData);
        assert!(
            v.headline
                .contains("the log covers 10.0 min (needs 24.0 h)"),
            "{}",
            v.headline
        );

        // Lenient thresholds, and a replay in which ours meets the target at the HPA's cost.
        let lenient = Thresholds {
            min_coverage_s: 60.0,
            min_traffic_range: 1.0,
            max_scale_events_per_hour: 100.0,
            ..Thresholds::default()
        };
        let mut good = a.clone();
        let rp = good.replay.as_mut().unwrap();
        let target = rp.rows[0].slo_target_pct;
        for row in &mut rp.rows {
            row.slo_attainment_pct.mean = target;
        }
        let cost = rp.diffs.iter_mut().find(|d| d.metric == "cost $").unwrap();
        cost.ci95 = (-0.5, -0.01);
        let v = verdict::decide(&good, &lenient);
        assert_eq!(v.outcome, Outcome::SwitchToActive, "{v:?}");
        assert!(v.warnings.is_empty());

        // Each failing check keeps it in Shadow, and the headline names it.
        let v = verdict::decide(
            &good,
            &Thresholds {
                max_scale_events_per_hour: 1.0,
                ..lenient
            },
        );
        assert_eq!(v.outcome, Outcome::StayInShadow);
        assert_eq!(v.headline, "stay in Shadow: flapping failed.");
        let mut dear = good.clone();
        let cost = dear.replay.as_mut().unwrap();
        let cost = cost
            .diffs
            .iter_mut()
            .find(|d| d.metric == "cost $")
            .unwrap();
        cost.ci95 = (-0.1, 0.2);
        let hpa_cost = cost.hpa_mean;
        let v = verdict::decide(&dear, &lenient);
        assert_eq!(v.headline, "stay in Shadow: cost against the HPA failed.");
        // ... unless the reader allows that much more cost.
        let allowed = 100.0 * 0.2 / hpa_cost + 0.1;
        let v = verdict::decide(
            &dear,
            &Thresholds {
                max_cost_increase_pct: allowed,
                ..lenient
            },
        );
        assert_eq!(v.outcome, Outcome::SwitchToActive, "{v:?}");

        // Both policies below the target: the replay is not credible.
        let mut both = good.clone();
        for row in &mut both.replay.as_mut().unwrap().rows {
            row.slo_attainment_pct.mean = target - 5.0;
        }
        let v = verdict::decide(&both, &lenient);
        assert_eq!(v.outcome, Outcome::Undecided);
        assert!(v.warnings[0].contains("not credible"), "{:?}", v.warnings);
        // Only ours below: a failed check, not an incredible replay.
        let mut ours_low = good.clone();
        let rp = ours_low.replay.as_mut().unwrap();
        let label = rp.ours.clone();
        for row in rp.rows.iter_mut().filter(|r| r.policy == label) {
            row.slo_attainment_pct.mean = target - 5.0;
        }
        let v = verdict::decide(&ours_low, &lenient);
        assert_eq!(v.headline, "stay in Shadow: SLO in the replay failed.");
        // No replay: undecided.
        let mut none = good.clone();
        none.replay = None;
        assert_eq!(verdict::decide(&none, &lenient).outcome, Outcome::Undecided);
        // Fallbacks: ns/b ran without a model but its decisions are logged as `model`; relabel.
        let mut fell = good;
        fell.sources = [("fallback".to_string(), 3), ("model".to_string(), 37)].into();
        let v = verdict::decide(&fell, &lenient);
        assert_eq!(v.headline, "stay in Shadow: fallbacks failed.");
        assert!(
            v.checks[5]
                .measured
                .starts_with("3 of 40 decisions (7.5 %)")
        );
    }

    #[test]
    fn selection_errors_say_what_the_log_holds() {
        let log = parse(&two_objects());
        let out = tempdir("sel");
        let err = |o: Options| generate(&log, &o, &out, &|_, _| {}).unwrap_err();
        let e = err(Options {
            object: Some("ns/zzz".into()),
            ..opts()
        });
        assert!(
            e.to_string().contains("no such object") && e.to_string().contains("ns/a: 40 shadow"),
            "{e}"
        );
        assert!(e.is_bad_input());
        let e = err(Options {
            since: Some(5_000.0),
            ..opts()
        });
        assert!(
            e.to_string()
                .contains("no shadow-mode decisions between 1970-01-01T01:23:20Z and the end"),
            "{e}"
        );
        let e = err(Options {
            object: Some("nonamespace".into()),
            ..opts()
        });
        assert!(e.to_string().contains("NAMESPACE/NAME"), "{e}");
        let e = err(Options {
            since: Some(10.0),
            until: Some(5.0),
            ..opts()
        });
        assert!(e.to_string().contains("is after --until"), "{e}");
        // Only active decisions.
        let active = parse(&LogText::new("ns", "a").active(1.0).text);
        let e = generate(&active, &opts(), &out, &|_, _| {}).unwrap_err();
        assert!(e.to_string().contains("no shadow-mode decisions"), "{e}");
        // Empty, or config lines only.
        let e = generate(&parse(""), &opts(), &out, &|_, _| {}).unwrap_err();
        assert!(e.to_string().contains("the log is empty"), "{e}");
        let cfg = parse(&LogText::new("ns", "a").config(1.0, None).text);
        let e = generate(&cfg, &opts(), &out, &|_, _| {}).unwrap_err();
        assert!(e.to_string().contains("no decision lines"), "{e}");
        // Nothing was written.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_window_and_one_object() {
        let log = parse(&two_objects());
        let out = tempdir("window");
        let g = generate(
            &log,
            &Options {
                object: Some("ns/a".into()),
                since: Some(1_000.0 + 15.0 * 10.0),
                until: Some(1_000.0 + 15.0 * 29.0),
                replay: false,
                ..opts()
            },
            &out,
            &|_, _| panic!("no replay"),
        )
        .unwrap();
        assert_eq!(g.report.objects.len(), 1);
        let a = &g.report.objects[0];
        assert_eq!(a.decisions, 20);
        assert!(a.replay.is_none());
        assert_eq!(a.plots.len(), 2, "the divergence plot only");
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("Not run: --no-replay was given."), "{md}");
        assert!(
            g.report
                .notes
                .iter()
                .any(|n| n.contains("outside the requested window"))
        );
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_model_that_is_not_here_is_asked_for() {
        let text = LogText::new("ns", "a")
            .config(1_000.0, Some("/models/nowhere.json"))
            .decisions(1_000.0, 5, |_| (3, Some(3), Some(3), 5.0))
            .text;
        let log = parse(&text);
        let out = tempdir("model");
        let e = generate(&log, &opts(), &out, &|_, _| {}).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains(
                "ns/a: the model file /models/nowhere.json named in the log (line 1) does not exist"
            ) && s.contains("--model PATH")
                && s.contains("--no-replay"),
            "{s}"
        );
        assert!(e.is_bad_input());
        // --model replaces it, with a note.
        let g = generate(
            &log,
            &Options {
                model: Some(repo().join("models/default.json")),
                seeds: 1,
                ..opts()
            },
            &out,
            &|_, _| {},
        )
        .unwrap();
        let a = &g.report.objects[0];
        assert!(
            a.notes
                .iter()
                .any(|n| n.contains("/models/nowhere.json`; the replay plays")),
            "{:?}",
            a.notes
        );
        let rp = a.replay.as_ref().unwrap();
        assert!(rp.diffs[0].ci95.0.is_nan(), "one seed: no interval");
        // A file that is not a model.
        let e = generate(
            &log,
            &Options {
                model: Some(repo().join("Cargo.toml")),
                ..opts()
            },
            &out,
            &|_, _| {},
        )
        .unwrap_err();
        assert!(matches!(e, ShadowError::Model { .. }), "{e}");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn no_usable_arrival_rate_skips_the_replay() {
        let mut t = LogText::new("ns", "a").config(1_000.0, None);
        for i in 0..4 {
            t = t.decision(fixtures::D {
                t: 1_000.0 + 15.0 * f64::from(i),
                ours: 2,
                hpa: None,
                recomputed: None,
                rate: None,
            });
        }
        let log = parse(&t.text);
        assert_eq!(log.decisions[0].missing, vec!["arrival_rate_1m"]);
        let out = tempdir("norate");
        let g = generate(&log, &opts(), &out, &|_, _| {}).unwrap();
        let a = &g.report.objects[0];
        assert!(a.replay.is_none());
        assert!(
            a.replay_skipped
                .as_deref()
                .unwrap()
                .contains("every `arrival_rate_1m` query failed")
        );
        assert_eq!(a.missing_metrics, 4);
        let _ = std::fs::remove_dir_all(&out);
    }
}
