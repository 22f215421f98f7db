//! Scenario and service-profile files (`envs/*.toml`, `envs/profiles/*.toml`).
//!
//! Two layers, as in ripgrep's `lowargs`/`hiargs`: the `*File` structs are exactly what a file may hold
//! (`deny_unknown_fields`: an unknown field is an error), and [`Scenario`]/[`Profile`] are the validated
//! forms with derived values (the throughput table, the capacity, the mean cold start). Every validation
//! error names the file, the field and the value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlscale_core::ServiceProfile;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, DistSpec};
use crate::error::{Error, Result};
use crate::trace::Trace;

// ----------------------------------------------------------------------------------------------------------
// Raw files
// ----------------------------------------------------------------------------------------------------------

/// A service profile file: one model on one kind of GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Profile name, equal to the file stem (`llm-8b-l4`).
    pub name: String,
    /// One line on what is served where.
    pub description: String,
    /// GPUs one replica occupies.
    pub gpus_per_replica: u32,
    /// Price of one GPU-hour, US dollars.
    pub usd_per_gpu_hour: f64,
    /// Batch slots per replica: requests served at once; more wait in the queue.
    pub max_concurrency: u32,
    /// Replica throughput (requests/s of a mean-sized request) at a given concurrency, as
    /// `[[concurrency, rps], ...]` with increasing concurrency, linearly interpolated, constant past the
    /// last point and proportional below the first. This is the knee curve a vLLM benchmark gives.
    pub throughput_curve: Vec<[f64; 2]>,
    /// Cold-start phases of a new replica.
    pub cold_start: ColdStartSpec,
    /// Request sizes.
    pub requests: RequestSpec,
    /// The latency SLO.
    pub slo: SloSpec,
}

/// The three phases of a cold start, each a distribution in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdStartSpec {
    /// Node provisioning (skipped when a warm-pool node is free), seconds.
    pub provision_s: DistSpec,
    /// Container image pull, seconds.
    pub image_pull_s: DistSpec,
    /// Model load into GPU memory until the readiness probe passes, seconds.
    pub model_load_s: DistSpec,
}

/// How big requests are, in units of work where 1 is the mean request the throughput curve was measured
/// with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Work of a request when the trace has no token columns (mean 1 keeps the throughput curve's meaning).
    pub work: DistSpec,
    /// Share of a request's work that is prefill, for TTFT when the size comes from `work` (default 0.1).
    #[serde(default = "default_prefill_fraction")]
    pub prefill_fraction: f64,
    /// Token-based sizing, used when the trace has `mean_input_tokens` and `mean_output_tokens`.
    #[serde(default)]
    pub tokens: Option<TokenSpec>,
}

fn default_prefill_fraction() -> f64 {
    0.1
}

/// Token-based request sizing: work = (w·input + output) / (w·ref_input + ref_output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Input tokens of the reference (mean) request of the throughput curve.
    pub ref_input_tokens: f64,
    /// Output tokens of the reference request.
    pub ref_output_tokens: f64,
    /// Cost of one input (prefill) token relative to one output (decode) token.
    pub prefill_token_weight: f64,
    /// Coefficient of variation of a request's token counts around the interval's means (log-normal).
    #[serde(default = "default_token_cv")]
    pub token_cv: f64,
}

fn default_token_cv() -> f64 {
    1.0
}

/// Which latency the SLO limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloKind {
    /// Arrival to completion.
    E2e,
    /// Arrival to first token: queue wait plus the prefill share of the work at admission speed.
    Ttft,
}

/// The latency SLO and the client timeout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Which latency is limited.
    pub kind: SloKind,
    /// The per-request latency limit, seconds.
    pub latency_s: f64,
    /// Requests waiting in the queue longer than this are dropped (client timeout), seconds.
    pub timeout_s: f64,
    /// Target share of requests within the SLO (default 0.99).
    #[serde(default = "default_slo_target")]
    pub target: f64,
    /// Penalty of one violation (late or dropped request) in the reward, US dollars.
    pub penalty_usd: f64,
}

fn default_slo_target() -> f64 {
    0.99
}

/// A scenario file: an `EnvSpec` in Gymnasium's sense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Versioned id, `<name>-v<N>`; bump N when dynamics change and keep the old file.
    pub id: String,
    /// What the scenario exercises.
    pub description: String,
    /// Service profile name, read from `profiles/<name>.toml` beside the scenario file.
    pub profile: String,
    /// Steps after which an episode is truncated.
    pub max_episode_steps: u64,
    /// Seconds between control decisions (default 15, the HPA sync period).
    #[serde(default = "default_interval")]
    pub control_interval_s: f64,
    /// Wall-clock start of the episode, `YYYY-MM-DDTHH:MM:SSZ` (UTC). Sets time of day and day of week.
    pub start_time: String,
    /// Same dynamics for the same seed; always false here (Gymnasium's `nondeterministic`).
    #[serde(default)]
    pub nondeterministic: bool,
    /// Replica bounds and start.
    pub replicas: ReplicasSpec,
    /// Arrival process.
    pub arrivals: ArrivalSpec,
    /// Overrides the profile's request sizes.
    #[serde(default)]
    pub requests: Option<RequestSpec>,
    /// Overrides the profile's SLO.
    #[serde(default)]
    pub slo: Option<SloSpec>,
    /// How the cluster's metrics are observed.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// GPU capacity of the cluster.
    #[serde(default)]
    pub cluster: ClusterSpec,
}

fn default_interval() -> f64 {
    15.0
}

/// Replica bounds and the starting count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicasSpec {
    /// Fewest replicas (0 allows scale to zero).
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Replicas ready at the start of an episode.
    pub initial: u32,
}

/// How metrics are scraped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Prometheus scrape interval, seconds (default 15). The control interval must be a multiple of it.
    #[serde(default = "default_interval")]
    pub scrape_interval_s: f64,
    /// Multiplicative Gaussian noise on scraped rates, gauges and utilization (std / value; default 0).
    #[serde(default)]
    pub noise_cv: f64,
    /// Age of the data a decision sees, seconds (default 0): the snapshot is the last scrape at or before
    /// `now - staleness_s`.
    #[serde(default)]
    pub staleness_s: f64,
    /// Seconds simulated before the first decision (default 300, the longest rate window), so that
    /// the first snapshot already has full 1m/5m rate windows and a latency histogram, as a cluster's
    /// Prometheus has when a controller starts. Arrivals during the warm-up come at the workload's
    /// rate at the episode start, from streams of their own (the episode's requests are unchanged),
    /// and nothing of it is billed or counted. 0 turns it off.
    #[serde(default = "default_warmup")]
    pub warmup_s: f64,
}

fn default_warmup() -> f64 {
    300.0
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            scrape_interval_s: default_interval(),
            noise_cv: 0.0,
            staleness_s: 0.0,
            warmup_s: default_warmup(),
        }
    }
}

/// GPU capacity available to the service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Most GPUs the service may hold at once; new replicas beyond it stay Pending (default: no limit).
    #[serde(default)]
    pub gpu_limit: Option<u32>,
    /// Pre-provisioned nodes: a new replica that finds one skips node provisioning (default 0). A node is
    /// returned to the pool when its replica is gone. Idle pool nodes are billed to the cluster, not to
    /// this service.
    #[serde(default)]
    pub warm_pool: u32,
    /// Periods when no new GPU can be had (a stockout): new replicas stay Pending.
    #[serde(default)]
    pub stockouts: Vec<Period>,
}

/// A time period relative to the episode start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Start, seconds after the episode start.
    pub start_s: f64,
    /// End, seconds after the episode start.
    pub end_s: f64,
}

/// The arrival process, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalSpec {
    /// Homogeneous Poisson.
    Poisson {
        /// Rate, requests/s.
        rps: f64,
    },
    /// Daily sinusoid times a weekly sinusoid:
    /// `mean · (1 + daily_amplitude·cos(2π(h − peak_hour)/24)) · (1 + weekly_amplitude·cos(2π(d − peak_day)/7))`
    /// with `h` the UTC hour of day and `d` the day of week (0 = Monday, fractional).
    Diurnal {
        /// Mean rate, requests/s.
        mean_rps: f64,
        /// Relative daily swing, 0–1.
        daily_amplitude: f64,
        /// UTC hour of the daily peak.
        peak_hour: f64,
        /// Relative weekly swing, 0–1 (default 0).
        #[serde(default)]
        weekly_amplitude: f64,
        /// Day of the weekly peak, 0 = Monday (default 2.5: mid-week).
        #[serde(default = "default_peak_day")]
        peak_day: f64,
    },
    /// Markov-modulated Poisson process: the rate is that of the current state; after an exponential
    /// holding time the process jumps to another state chosen uniformly.
    Mmpp {
        /// The states.
        states: Vec<MmppState>,
    },
    /// A flash crowd: `base_rps`, then a linear ramp to `peak_rps` over `ramp_s` starting at `start_s`, a
    /// hold of `hold_s`, then exponential decay back to the base with time constant `decay_s`.
    FlashCrowd {
        /// Background rate, requests/s.
        base_rps: f64,
        /// Peak rate, requests/s.
        peak_rps: f64,
        /// Start of the ramp, seconds after the episode start.
        start_s: f64,
        /// Ramp duration, seconds.
        ramp_s: f64,
        /// Time at the peak, seconds.
        hold_s: f64,
        /// Decay time constant, seconds.
        decay_s: f64,
    },
    /// Steps and ramps through `points = [[t_s, rps], ...]` (increasing `t_s`, the first at 0):
    /// `interpolation = "step"` holds each rate until the next point, `"linear"` ramps between points.
    /// The last rate holds forever, unless `repeat_s` is set, which repeats the pattern with that period.
    Piecewise {
        /// `[t_s, rps]` points.
        points: Vec<[f64; 2]>,
        /// `step` or `linear`.
        interpolation: Interpolation,
        /// Period of repetition, seconds (default: none).
        #[serde(default)]
        repeat_s: Option<f64>,
    },
    /// Sparse on/off traffic: Poisson at `on_rps` during on periods, nothing during off periods; both
    /// durations exponential. Where scale-to-zero matters.
    OnOff {
        /// Rate while on, requests/s.
        on_rps: f64,
        /// Mean on-period, seconds.
        mean_on_s: f64,
        /// Mean off-period, seconds.
        mean_off_s: f64,
    },
    /// Replay of a CSV trace as a non-homogeneous Poisson process, piecewise constant per row.
    Trace {
        /// Path of the CSV, relative to the scenario file. Absent for traces that may not be shipped: the
        /// user passes `--trace PATH`.
        #[serde(default)]
        file: Option<String>,
        /// For an unshipped trace: where to get it.
        #[serde(default)]
        obtain: Option<String>,
        /// For an unshipped trace: why it is not shipped.
        #[serde(default)]
        not_shipped_because: Option<String>,
        /// Multiply every rate by this (default 1).
        #[serde(default = "one")]
        rate_scale: f64,
        /// Start this many seconds into the trace (default 0).
        #[serde(default)]
        offset_s: f64,
        /// Start at a uniformly random offset drawn at reset from the episode seed (default false).
        #[serde(default)]
        random_offset: bool,
        /// Wrap around at the end of the trace (default true); otherwise the rate is 0 past the end.
        #[serde(default = "yes")]
        r#loop: bool,
    },
}

fn default_peak_day() -> f64 {
    2.5
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// One MMPP state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmppState {
    /// Rate in this state, requests/s.
    pub rps: f64,
    /// Mean time in this state, seconds.
    pub mean_holding_s: f64,
}

/// Interpolation between piecewise points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Hold each rate until the next point.
    Step,
    /// Ramp linearly between points.
    Linear,
}

// ----------------------------------------------------------------------------------------------------------
// Validated forms
// ----------------------------------------------------------------------------------------------------------

/// A validated service profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file as written.
    pub file: ProfileFile,
    /// Where it was read from.
    pub path: PathBuf,
    /// `speed[n]`: work units per second each request receives at concurrency `n` (index 0 unused):
    /// `throughput(n) / n`.
    pub speed: Vec<f64>,
    /// Sampler of provisioning time.
    pub provision: Dist,
    /// Sampler of image pull time.
    pub image_pull: Dist,
    /// Sampler of model load time.
    pub model_load: Dist,
}

impl Profile {
    /// Throughput at saturation, requests/s.
    pub fn capacity_rps(&self) -> f64 {
        let n = self.file.max_concurrency as usize;
        self.speed[n] * n as f64
    }

    /// Mean cold start (provision + pull + load), seconds.
    pub fn mean_cold_start_s(&self) -> f64 {
        let c = &self.file.cold_start;
        c.provision_s.mean() + c.image_pull_s.mean() + c.model_load_s.mean()
    }

    /// Read and validate a profile file.
    pub fn load(path: &Path) -> Result<Profile> {
        let file: ProfileFile = read_toml(path)?;
        Self::from_file(file, path)
    }

    /// Validate a parsed profile; `path` is used in errors.
    pub fn from_file(file: ProfileFile, path: &Path) -> Result<Profile> {
        let finite_pos = |field: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    path,
                    field,
                    v,
                    "must be a finite number > 0",
                ))
            }
        };
        if file.gpus_per_replica == 0 {
            return Err(Error::invalid(path, "gpus_per_replica", 0, "must be >= 1"));
        }
        finite_pos("usd_per_gpu_hour", file.usd_per_gpu_hour)?;
        if file.max_concurrency == 0 || file.max_concurrency > 1_000_000 {
            return Err(Error::invalid(
                path,
                "max_concurrency",
                file.max_concurrency,
                "must be in 1..=1000000",
            ));
        }
        let curve = &file.throughput_curve;
        if curve.is_empty() {
            return Err(Error::invalid(
                path,
                "throughput_curve",
                "[]",
                "needs at least one [concurrency, rps] point",
            ));
        }
        for (i, [c, r]) in curve.iter().enumerate() {
            let field = format!("throughput_curve[{i}]");
            if !(c.is_finite() && *c >= 1.0) {
                return Err(Error::invalid(
                    path,
                    &field,
                    format!("[{c}, {r}]"),
                    "concurrency must be >= 1",
                ));
            }
            if !(r.is_finite() && *r > 0.0) {
                return Err(Error::invalid(
                    path,
                    &field,
                    format!("[{c}, {r}]"),
                    "throughput must be > 0",
                ));
            }
            if i > 0 && *c <= curve[i - 1][0] {
                return Err(Error::invalid(
                    path,
                    &field,
                    format!("[{c}, {r}]"),
                    "concurrency must increase",
                ));
            }
        }
        let n_max = file.max_concurrency as usize;
        let mut speed = vec![0.0; n_max + 1];
        for (n, s) in speed.iter_mut().enumerate().skip(1) {
            *s = interpolate_curve(curve, n as f64) / n as f64;
        }
        let c = &file.cold_start;
        let provision = c.provision_s.build(path, "cold_start.provision_s")?;
        let image_pull = c.image_pull_s.build(path, "cold_start.image_pull_s")?;
        let model_load = c.model_load_s.build(path, "cold_start.model_load_s")?;
        validate_requests(&file.requests, path, "requests")?;
        validate_slo(&file.slo, path, "slo")?;
        Ok(Profile {
            file,
            path: path.to_path_buf(),
            speed,
            provision,
            image_pull,
            model_load,
        })
    }
}

/// Throughput at concurrency `n`: linear between points, proportional below the first, flat past the last.
fn interpolate_curve(curve: &[[f64; 2]], n: f64) -> f64 {
    let [c0, r0] = curve[0];
    if n <= c0 {
        return r0 * n / c0;
    }
    for w in curve.windows(2) {
        let ([ca, ra], [cb, rb]) = (w[0], w[1]);
        if n <= cb {
            return ra + (rb - ra) * (n - ca) / (cb - ca);
        }
    }
    curve[curve.len() - 1][1]
}

fn validate_requests(r: &RequestSpec, path: &Path, field: &str) -> Result<()> {
    r.work.build(path, &format!("{field}.work"))?;
    if !(0.0..=1.0).contains(&r.prefill_fraction) {
        return Err(Error::invalid(
            path,
            format!("{field}.prefill_fraction"),
            r.prefill_fraction,
            "must be in [0, 1]",
        ));
    }
    if let Some(t) = &r.tokens {
        for (name, v) in [
            ("ref_input_tokens", t.ref_input_tokens),
            ("ref_output_tokens", t.ref_output_tokens),
            ("prefill_token_weight", t.prefill_token_weight),
            ("token_cv", t.token_cv),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    path,
                    format!("{field}.tokens.{name}"),
                    v,
                    "must be a finite number >= 0",
                ));
            }
        }
        if t.prefill_token_weight * t.ref_input_tokens + t.ref_output_tokens <= 0.0 {
            return Err(Error::invalid(
                path,
                format!("{field}.tokens"),
                "0",
                "the reference request has no work",
            ));
        }
    }
    Ok(())
}

fn validate_slo(s: &SloSpec, path: &Path, field: &str) -> Result<()> {
    for (name, v) in [("latency_s", s.latency_s), ("timeout_s", s.timeout_s)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::invalid(
                path,
                format!("{field}.{name}"),
                v,
                "must be a finite number > 0",
            ));
        }
    }
    if !(s.target > 0.0 && s.target <= 1.0) {
        return Err(Error::invalid(
            path,
            format!("{field}.target"),
            s.target,
            "must be in (0, 1]",
        ));
    }
    if !(s.penalty_usd.is_finite() && s.penalty_usd >= 0.0) {
        return Err(Error::invalid(
            path,
            format!("{field}.penalty_usd"),
            s.penalty_usd,
            "must be >= 0",
        ));
    }
    Ok(())
}

/// A validated arrival process: a synthetic generator as written, or a trace with its file loaded.
#[derive(Debug, Clone)]
pub enum Arrivals {
    /// A validated generator (never [`ArrivalSpec::Trace`]).
    Generator(ArrivalSpec),
    /// See [`ArrivalSpec::Trace`].
    Trace {
        /// The loaded trace, shared between environments.
        trace: Arc<Trace>,
        /// Rate multiplier.
        rate_scale: f64,
        /// Fixed offset, seconds.
        offset_s: f64,
        /// Random offset at reset.
        random_offset: bool,
        /// Wrap around.
        looping: bool,
    },
}

/// The highest arrival rate a scenario may reach after every multiplier, requests/s. The simulator keeps
/// every waiting request in memory, so the work a run may create is bounded here, before anything is
/// allocated: a day at this rate is under a billion requests, and a queue that never drains holds at
/// most about this rate times the client timeout (a few hundred MB at the profiles' timeouts).
pub const MAX_ARRIVAL_RPS: f64 = 10_000.0;

/// The longest episode a scenario or `--steps` may ask for, control steps: a year of 15-second steps.
/// With [`MAX_ARRIVAL_RPS`] this bounds the work one run may create; a longer run is refused at load
/// (`--steps 18446744073709551615` used to start a run that would never end).
pub const MAX_EPISODE_STEPS: u64 = 365 * 24 * 240;

impl Arrivals {
    /// The highest rate the process can reach, requests/s, before the scenario's `--rate-scale`.
    pub fn peak_rps(&self) -> f64 {
        match self {
            Arrivals::Trace {
                trace, rate_scale, ..
            } => trace.rps.iter().fold(0.0f64, |m, &r| m.max(r)) * rate_scale,
            Arrivals::Generator(g) => match g {
                ArrivalSpec::Poisson { rps } => *rps,
                ArrivalSpec::Diurnal {
                    mean_rps,
                    daily_amplitude,
                    weekly_amplitude,
                    ..
                } => mean_rps * (1.0 + daily_amplitude.abs()) * (1.0 + weekly_amplitude.abs()),
                ArrivalSpec::Mmpp { states } => states.iter().fold(0.0f64, |m, s| m.max(s.rps)),
                ArrivalSpec::FlashCrowd {
                    base_rps, peak_rps, ..
                } => base_rps.max(*peak_rps),
                ArrivalSpec::Piecewise { points, .. } => {
                    points.iter().fold(0.0f64, |m, p| m.max(p[1]))
                }
                ArrivalSpec::OnOff { on_rps, .. } => *on_rps,
                ArrivalSpec::Trace { .. } => 0.0,
            },
        }
    }
}

/// A validated scenario, ready to build environments from.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as written.
    pub file: ScenarioFile,
    /// Where it was read from.
    pub path: PathBuf,
    /// The service profile.
    pub profile: Arc<Profile>,
    /// The arrival process.
    pub arrivals: Arrivals,
    /// Effective request sizes (scenario override or profile).
    pub requests: RequestSpec,
    /// Sampler of request work.
    pub work: Dist,
    /// Effective SLO (scenario override or profile).
    pub slo: SloSpec,
    /// Episode start, Unix seconds.
    pub start_unix_s: f64,
    /// How far into the workload's timeline episodes start, seconds (`Overrides::window_offset_s`).
    pub window_offset_s: f64,
    /// Multiplier of every arrival rate (from [`Overrides::rate_scale`], default 1).
    pub rate_multiplier: f64,
}

/// Options that override a scenario file at load time (from the command line).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Path of a trace to replay instead of (or, for unshipped traces, as) the scenario's file.
    pub trace: Option<PathBuf>,
    /// Truncate episodes after this many steps instead.
    pub max_episode_steps: Option<u64>,
    /// Multiply every arrival rate by this.
    pub rate_scale: Option<f64>,
    /// Start episodes this many seconds later on the workload's timeline (a later window of the same
    /// generator or trace; the clock the policies see and the stockout periods move with it).
    pub window_offset_s: Option<f64>,
    /// Scale the service profile (a variant of the same service: slower or faster cold starts, more or
    /// less capacity per replica, another price).
    pub profile_scale: Option<ProfileScale>,
}

/// Multipliers of a service profile's cold start, capacity and price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileScale {
    /// Every cold-start phase's duration.
    pub cold_start: f64,
    /// Every throughput-curve rate (and so `capacity_rps`).
    pub capacity: f64,
    /// `usd_per_gpu_hour`.
    pub price: f64,
}

impl Default for ProfileScale {
    fn default() -> Self {
        ProfileScale {
            cold_start: 1.0,
            capacity: 1.0,
            price: 1.0,
        }
    }
}

impl ProfileScale {
    /// `file` with the multipliers applied (validated again by [`Profile::from_file`]).
    pub fn apply(&self, file: &ProfileFile) -> ProfileFile {
        let mut f = file.clone();
        let c = &mut f.cold_start;
        for d in [&mut c.provision_s, &mut c.image_pull_s, &mut c.model_load_s] {
            *d = d.scaled(self.cold_start);
        }
        for p in &mut f.throughput_curve {
            p[1] *= self.capacity;
        }
        f.usd_per_gpu_hour *= self.price;
        f
    }
}

impl Scenario {
    /// The scenario's id.
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// Episode length, seconds.
    pub fn episode_s(&self) -> f64 {
        self.file.max_episode_steps as f64 * self.file.control_interval_s
    }

    /// The service profile as the snapshot carries it.
    pub fn service_profile(&self) -> ServiceProfile {
        ServiceProfile {
            cold_start_s: self.profile.mean_cold_start_s(),
            capacity_rps: self.profile.capacity_rps(),
            gpus_per_replica: self.profile.file.gpus_per_replica,
            usd_per_gpu_hour: self.profile.file.usd_per_gpu_hour,
            slo_latency_s: self.slo.latency_s,
        }
    }

    /// Load a scenario by id from `envs_dir` (`<envs_dir>/<id>.toml`), or by path when `id_or_path` ends in
    /// `.toml` or names an existing file.
    pub fn resolve(envs_dir: &Path, id_or_path: &str, overrides: &Overrides) -> Result<Scenario> {
        let as_path = Path::new(id_or_path);
        if id_or_path.ends_with(".toml") || as_path.is_file() {
            return Scenario::load(as_path, overrides);
        }
        let path = envs_dir.join(format!("{id_or_path}.toml"));
        if !path.is_file() {
            let ids = list_scenario_files(envs_dir)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect::<Vec<_>>();
            let hint = if ids.is_empty() {
                "the folder holds no scenarios (pass --envs DIR)".to_string()
            } else {
                let close: Vec<&String> = ids.iter().filter(|i| similar(i, id_or_path)).collect();
                if close.is_empty() {
                    "run `rlscale scenarios` to list them".to_string()
                } else {
                    format!(
                        "did you mean {}?",
                        close
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            };
            return Err(Error::NotFound {
                kind: "scenario",
                name: id_or_path.to_string(),
                dir: envs_dir.to_path_buf(),
                hint,
            });
        }
        Scenario::load(&path, overrides)
    }

    /// Read and validate a scenario file, its profile and its trace.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario> {
        let file: ScenarioFile = read_toml(path)?;
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && stem != file.id
        {
            return Err(Error::invalid(
                path,
                "id",
                &file.id,
                format!("must equal the file name `{stem}`"),
            ));
        }
        Self::from_file(file, path, overrides)
    }

    /// Validate a parsed scenario; `path` locates the profile and trace and is used in errors.
    pub fn from_file(file: ScenarioFile, path: &Path, overrides: &Overrides) -> Result<Scenario> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let profile_path = dir.join("profiles").join(format!("{}.toml", file.profile));
        if !profile_path.is_file() {
            let names = std::fs::read_dir(dir.join("profiles"))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| {
                            e.path()
                                .file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            return Err(Error::invalid(
                path,
                "profile",
                &file.profile,
                format!(
                    "no {} (profiles there: {})",
                    profile_path.display(),
                    names.join(", ")
                ),
            ));
        }
        let mut profile = Profile::load(&profile_path)?;
        if let Some(k) = overrides.profile_scale
            && k != ProfileScale::default()
        {
            profile = Profile::from_file(k.apply(&profile.file), &profile_path)?;
        }
        Self::build(file, Arc::new(profile), path, overrides)
    }

    /// Validate a parsed scenario with an already loaded profile; `path` locates a relative trace file and
    /// is used in errors.
    pub fn build(
        mut file: ScenarioFile,
        profile: Arc<Profile>,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Scenario> {
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(n) = overrides.max_episode_steps {
            file.max_episode_steps = n;
        }
        validate_id(&file.id, path)?;
        if file.nondeterministic {
            return Err(Error::invalid(
                path,
                "nondeterministic",
                true,
                "the simulator is deterministic per seed",
            ));
        }
        let steps_field = if overrides.max_episode_steps.is_some() {
            "--steps"
        } else {
            "max_episode_steps"
        };
        if file.max_episode_steps == 0 {
            return Err(Error::invalid(path, steps_field, 0, "must be >= 1"));
        }
        if file.max_episode_steps > MAX_EPISODE_STEPS {
            return Err(Error::invalid(
                path,
                steps_field,
                file.max_episode_steps,
                format!("must be at most {MAX_EPISODE_STEPS} (a year of 15-second steps)"),
            ));
        }
        let ci = file.control_interval_s;
        if !(ci.is_finite() && ci > 0.0) {
            return Err(Error::invalid(
                path,
                "control_interval_s",
                ci,
                "must be > 0",
            ));
        }
        let m = file.metrics;
        if !(m.scrape_interval_s.is_finite() && m.scrape_interval_s > 0.0) {
            return Err(Error::invalid(
                path,
                "metrics.scrape_interval_s",
                m.scrape_interval_s,
                "must be > 0",
            ));
        }
        let ratio = ci / m.scrape_interval_s;
        if (ratio - ratio.round()).abs() > 1e-9 || ratio.round() < 1.0 {
            return Err(Error::invalid(
                path,
                "metrics.scrape_interval_s",
                m.scrape_interval_s,
                format!("the control interval ({ci} s) must be a whole multiple of it"),
            ));
        }
        if !(m.noise_cv.is_finite() && (0.0..=1.0).contains(&m.noise_cv)) {
            return Err(Error::invalid(
                path,
                "metrics.noise_cv",
                m.noise_cv,
                "must be in [0, 1]",
            ));
        }
        if !(m.staleness_s.is_finite() && m.staleness_s >= 0.0 && m.staleness_s <= 3600.0) {
            return Err(Error::invalid(
                path,
                "metrics.staleness_s",
                m.staleness_s,
                "must be in [0, 3600]",
            ));
        }
        if !(m.warmup_s.is_finite() && m.warmup_s >= 0.0 && m.warmup_s <= 3600.0) {
            return Err(Error::invalid(
                path,
                "metrics.warmup_s",
                m.warmup_s,
                "must be in [0, 3600]",
            ));
        }
        let r = file.replicas;
        if r.min > r.max {
            return Err(Error::invalid(
                path,
                "replicas.min",
                r.min,
                format!("must be <= replicas.max ({})", r.max),
            ));
        }
        if r.max == 0 || r.max > 10_000 {
            return Err(Error::invalid(
                path,
                "replicas.max",
                r.max,
                "must be in 1..=10000",
            ));
        }
        if r.initial < r.min || r.initial > r.max {
            return Err(Error::invalid(
                path,
                "replicas.initial",
                r.initial,
                format!(
                    "must be within [replicas.min, replicas.max] = [{}, {}]",
                    r.min, r.max
                ),
            ));
        }
        for (i, p) in file.cluster.stockouts.iter().enumerate() {
            if !(p.start_s.is_finite()
                && p.end_s.is_finite()
                && p.start_s >= 0.0
                && p.end_s > p.start_s)
            {
                return Err(Error::invalid(
                    path,
                    format!("cluster.stockouts[{i}]"),
                    format!("{{start_s = {}, end_s = {}}}", p.start_s, p.end_s),
                    "needs 0 <= start_s < end_s",
                ));
            }
        }
        let start_unix_s = parse_utc(&file.start_time).ok_or_else(|| {
            Error::invalid(
                path,
                "start_time",
                &file.start_time,
                "expected YYYY-MM-DDTHH:MM:SSZ (UTC)",
            )
        })?;

        let requests = match &file.requests {
            Some(r) => {
                validate_requests(r, path, "requests")?;
                r.clone()
            }
            None => profile.file.requests.clone(),
        };
        let work_field = if file.requests.is_some() {
            "requests.work"
        } else {
            "profile requests.work"
        };
        let work = requests.work.build(path, work_field)?;
        let slo = match &file.slo {
            Some(s) => {
                validate_slo(s, path, "slo")?;
                *s
            }
            None => profile.file.slo,
        };
        let arrivals = build_arrivals(&file, path, dir, overrides)?;
        let rate_multiplier = overrides.rate_scale.unwrap_or(1.0);
        if !(rate_multiplier.is_finite() && rate_multiplier >= 0.0) {
            return Err(Error::invalid(
                path,
                "--rate-scale",
                rate_multiplier,
                "must be a finite number >= 0",
            ));
        }
        let peak = arrivals.peak_rps() * rate_multiplier;
        if peak.is_nan() || peak > MAX_ARRIVAL_RPS {
            return Err(Error::invalid(
                path,
                if overrides.rate_scale.is_some() {
                    "--rate-scale"
                } else {
                    "arrivals"
                },
                format!(
                    "{} (a peak of {peak:.3e} req/s)",
                    if overrides.rate_scale.is_some() {
                        rate_multiplier.to_string()
                    } else {
                        format!("{:.3e} req/s", arrivals.peak_rps())
                    }
                ),
                format!(
                    "the peak arrival rate may be at most {MAX_ARRIVAL_RPS} req/s (the simulator holds every waiting request in memory)"
                ),
            ));
        }
        let window_offset_s = overrides.window_offset_s.unwrap_or(0.0);
        if !(window_offset_s.is_finite() && window_offset_s >= 0.0) {
            return Err(Error::invalid(
                path,
                "window offset",
                window_offset_s,
                "must be a finite number of seconds >= 0",
            ));
        }
        // Stockouts sit on the workload's timeline too: a later window sees them earlier, cut at
        // its start.
        let mut file = file;
        if window_offset_s > 0.0 {
            file.cluster.stockouts = file
                .cluster
                .stockouts
                .iter()
                .filter(|p| p.end_s > window_offset_s)
                .map(|p| Period {
                    start_s: (p.start_s - window_offset_s).max(0.0),
                    end_s: p.end_s - window_offset_s,
                })
                .collect();
        }
        Ok(Scenario {
            file,
            path: path.to_path_buf(),
            profile,
            arrivals,
            requests,
            work,
            slo,
            start_unix_s: start_unix_s + window_offset_s,
            window_offset_s,
            rate_multiplier,
        })
    }
}

fn validate_id(id: &str, path: &Path) -> Result<()> {
    let ok = id.rsplit_once("-v").is_some_and(|(name, v)| {
        !name.is_empty() && !v.is_empty() && v.chars().all(|c| c.is_ascii_digit())
    }) && id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            path,
            "id",
            id,
            "must look like `name-v1` (lowercase letters, digits, dashes, a version)",
        ))
    }
}

fn build_arrivals(
    file: &ScenarioFile,
    path: &Path,
    dir: &Path,
    overrides: &Overrides,
) -> Result<Arrivals> {
    let rate = |field: &str, v: f64| -> Result<f64> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(Error::invalid(
                path,
                format!("arrivals.{field}"),
                v,
                "must be a finite rate >= 0",
            ))
        }
    };
    let positive = |field: &str, v: f64| -> Result<f64> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(Error::invalid(
                path,
                format!("arrivals.{field}"),
                v,
                "must be a finite number > 0",
            ))
        }
    };
    let unit = |field: &str, v: f64| -> Result<f64> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(Error::invalid(
                path,
                format!("arrivals.{field}"),
                v,
                "must be in [0, 1]",
            ))
        }
    };
    let in_range = |field: &str, v: f64, lo: f64, hi: f64| -> Result<()> {
        if v >= lo && v < hi {
            Ok(())
        } else {
            Err(Error::invalid(
                path,
                format!("arrivals.{field}"),
                v,
                format!("must be in [{lo}, {hi})"),
            ))
        }
    };
    match &file.arrivals {
        ArrivalSpec::Poisson { rps } => {
            rate("rps", *rps)?;
        }
        ArrivalSpec::Diurnal {
            mean_rps,
            daily_amplitude,
            peak_hour,
            weekly_amplitude,
            peak_day,
        } => {
            rate("mean_rps", *mean_rps)?;
            unit("daily_amplitude", *daily_amplitude)?;
            in_range("peak_hour", *peak_hour, 0.0, 24.0)?;
            unit("weekly_amplitude", *weekly_amplitude)?;
            in_range("peak_day", *peak_day, 0.0, 7.0)?;
        }
        ArrivalSpec::Mmpp { states } => {
            if states.len() < 2 {
                return Err(Error::invalid(
                    path,
                    "arrivals.states",
                    states.len(),
                    "an MMPP needs at least 2 states",
                ));
            }
            for (i, s) in states.iter().enumerate() {
                rate(&format!("states[{i}].rps"), s.rps)?;
                positive(&format!("states[{i}].mean_holding_s"), s.mean_holding_s)?;
            }
        }
        ArrivalSpec::FlashCrowd {
            base_rps,
            peak_rps,
            start_s,
            ramp_s,
            hold_s,
            decay_s,
        } => {
            rate("base_rps", *base_rps)?;
            rate("peak_rps", *peak_rps)?;
            rate("start_s", *start_s)?;
            rate("ramp_s", *ramp_s)?;
            rate("hold_s", *hold_s)?;
            positive("decay_s", *decay_s)?;
        }
        ArrivalSpec::Piecewise {
            points, repeat_s, ..
        } => {
            if points.is_empty() || points[0][0] != 0.0 {
                return Err(Error::invalid(
                    path,
                    "arrivals.points",
                    format!("{points:?}"),
                    "needs a first point at t_s = 0",
                ));
            }
            for (i, [t, r]) in points.iter().enumerate() {
                rate(&format!("points[{i}] rps"), *r)?;
                if i > 0 && !(t.is_finite() && *t > points[i - 1][0]) {
                    return Err(Error::invalid(
                        path,
                        format!("arrivals.points[{i}]"),
                        t,
                        "t_s must increase",
                    ));
                }
            }
            if let Some(rep) = repeat_s {
                let last = points[points.len() - 1][0];
                if !(rep.is_finite() && *rep > last) {
                    return Err(Error::invalid(
                        path,
                        "arrivals.repeat_s",
                        rep,
                        format!("must exceed the last point's t_s ({last})"),
                    ));
                }
            }
        }
        ArrivalSpec::OnOff {
            on_rps,
            mean_on_s,
            mean_off_s,
        } => {
            rate("on_rps", *on_rps)?;
            positive("mean_on_s", *mean_on_s)?;
            positive("mean_off_s", *mean_off_s)?;
        }
        ArrivalSpec::Trace {
            file: trace_file,
            obtain,
            not_shipped_because,
            rate_scale,
            offset_s,
            random_offset,
            r#loop,
        } => {
            let trace_path = match (&overrides.trace, trace_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => dir.join(f),
                (None, None) => {
                    return Err(Error::TraceNotSupplied {
                        scenario: file.id.clone(),
                        why: not_shipped_because
                            .clone()
                            .unwrap_or_else(|| "its licence does not allow it".into()),
                        obtain: obtain.clone().unwrap_or_else(|| "its publisher".into()),
                    });
                }
            };
            let trace = Trace::load(&trace_path)?;
            if trace.expected_arrivals() <= 0.0 {
                return Err(Error::invalid(
                    path,
                    "arrivals.file",
                    trace_path.display(),
                    "the trace has no arrivals",
                ));
            }
            return Ok(Arrivals::Trace {
                trace: Arc::new(trace),
                rate_scale: rate("rate_scale", *rate_scale)?,
                offset_s: rate("offset_s", *offset_s)?,
                random_offset: *random_offset,
                looping: *r#loop,
            });
        }
    }
    Ok(Arrivals::Generator(file.arrivals.clone()))
}

/// Read a TOML file into `T`, with the file named in every error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The scenario files (`*.toml`) directly in `envs_dir`, sorted by name.
pub fn list_scenario_files(envs_dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(envs_dir).map_err(|source| Error::Io {
        path: envs_dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    Ok(out)
}

/// Two ids are "similar" when one contains the other's first dash-separated word.
fn similar(a: &str, b: &str) -> bool {
    let head = |s: &str| s.split('-').next().unwrap_or("").to_string();
    let (ha, hb) = (head(a), head(b));
    !hb.is_empty() && (ha == hb || a.contains(b) || b.contains(a))
}

/// Parse `YYYY-MM-DDTHH:MM:SSZ` (UTC) to Unix seconds.
pub fn parse_utc(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let mut t = time.split(':');
    let (h, mi, se): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..61).contains(&se)
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_profile_scales_cold_start_capacity_and_price() {
        let envs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/steady-8b-l4-v1.toml");
        let base = Scenario::load(&envs, &Overrides::default()).unwrap();
        let k = ProfileScale {
            cold_start: 2.0,
            capacity: 0.5,
            price: 3.0,
        };
        let o = Overrides {
            profile_scale: Some(k),
            ..Overrides::default()
        };
        let sc = Scenario::load(&envs, &o).unwrap();
        let (a, b) = (base.service_profile(), sc.service_profile());
        assert!((b.cold_start_s - 2.0 * a.cold_start_s).abs() < 1e-9);
        assert!((b.capacity_rps - 0.5 * a.capacity_rps).abs() < 1e-9);
        assert!((b.usd_per_gpu_hour - 3.0 * a.usd_per_gpu_hour).abs() < 1e-9);
        assert_eq!(b.gpus_per_replica, a.gpus_per_replica);
        // The scaled file is validated again: a zero price is refused, naming the field.
        let o = Overrides {
            profile_scale: Some(ProfileScale { price: 0.0, ..k }),
            ..Overrides::default()
        };
        let e = Scenario::load(&envs, &o).unwrap_err().to_string();
        assert!(e.contains("usd_per_gpu_hour"), "{e}");
    }

    #[test]
    fn utc_parsing() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_utc("2024-05-10T00:00:00Z"), Some(1_715_299_200.0));
        assert_eq!(parse_utc("2000-03-01T12:30:15Z"), Some(951_913_815.0));
        assert_eq!(parse_utc("2024-05-10 00:00:00"), None);
        assert_eq!(parse_utc("2024-13-10T00:00:00Z"), None);
    }

    #[test]
    fn curve_interpolation() {
        let c = [[2.0, 2.0], [4.0, 3.0], [8.0, 4.0]];
        assert_eq!(interpolate_curve(&c, 1.0), 1.0);
        assert_eq!(interpolate_curve(&c, 2.0), 2.0);
        assert_eq!(interpolate_curve(&c, 3.0), 2.5);
        assert_eq!(interpolate_curve(&c, 6.0), 3.5);
        assert_eq!(interpolate_curve(&c, 100.0), 4.0);
    }

    #[test]
    fn ids_are_versioned() {
        let p = Path::new("s.toml");
        assert!(validate_id("diurnal-8b-l4-v1", p).is_ok());
        assert!(validate_id("diurnal", p).is_err());
        assert!(validate_id("Diurnal-v1", p).is_err());
        assert!(validate_id("diurnal-vx", p).is_err());
    }
}
