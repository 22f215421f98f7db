//! Running a policy through one episode: the summary users read, and the per-step timeline.
//!
//! Every policy, rule-based or learned, runs through [`run_episode`]: it sees the snapshot a controller
//! would see and the time as an argument, and its decision is applied as an absolute replica count.

use rlscale_core::{Action, Decision, Env, Policy, StepInfo};
use serde::{Deserialize, Serialize};

use crate::env::SimEnv;

/// What one episode cost and how well it served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario id.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Episode seed.
    pub seed: u64,
    /// Control steps run.
    pub steps: u64,
    /// Simulated time, hours.
    pub sim_hours: f64,
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests dropped by the queue timeout.
    pub dropped: u64,
    /// Requests completed late or dropped.
    pub slo_violations: u64,
    /// Share of finished requests (completed + dropped) within the SLO, percent.
    pub slo_attainment_pct: f64,
    /// The scenario's SLO target, percent.
    pub slo_target_pct: f64,
    /// The SLO latency limit, seconds.
    pub slo_latency_s: f64,
    /// Median latency (of the SLO's kind) of completed requests, seconds.
    pub latency_p50_s: Option<f64>,
    /// 95th percentile latency, seconds.
    pub latency_p95_s: Option<f64>,
    /// 99th percentile latency, seconds.
    pub latency_p99_s: Option<f64>,
    /// Mean queue wait of admitted requests, seconds.
    pub mean_wait_s: f64,
    /// Share of admitted requests that waited, 0–1.
    pub p_wait: f64,
    /// GPU-hours billed.
    pub gpu_hours: f64,
    /// Dollars billed.
    pub cost_usd: f64,
    /// Steps whose decision changed the replica target.
    pub scale_events: u64,
    /// Replicas that completed a cold start.
    pub cold_starts: u64,
    /// Mean target replica count over steps.
    pub mean_replicas: f64,
    /// Largest target replica count.
    pub max_replicas: u32,
    /// Σ reward.
    pub total_reward: f64,
}

/// One row of the per-step timeline (`timeline.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Step number (1-based).
    pub step: u64,
    /// Seconds since the episode start at the end of the step.
    pub t_s: f64,
    /// Unix time at the end of the step.
    pub time_unix_s: f64,
    /// Replicas the policy asked for.
    pub target_replicas: u32,
    /// Ready replicas at the end.
    pub ready: u32,
    /// Starting replicas at the end.
    pub starting: u32,
    /// Draining replicas at the end.
    pub draining: u32,
    /// Arrivals in the step.
    pub arrivals: u64,
    /// Completions in the step.
    pub completed: u64,
    /// Drops in the step.
    pub dropped: u64,
    /// SLO violations in the step.
    pub slo_violations: u64,
    /// Queue length at the end.
    pub queue_len: u64,
    /// Requests in service at the end.
    pub running: u64,
    /// Cold starts completed in the step.
    pub cold_starts: u32,
    /// GPU utilization the snapshot reports.
    pub gpu_utilization: f64,
    /// Arrival rate over 1 m the snapshot reports, requests/s.
    pub arrival_rate_1m: f64,
    /// p95 latency over 1 m the snapshot reports, seconds (empty when none).
    pub latency_p95_s: Option<f64>,
    /// Dollars billed in the step.
    pub cost_usd: f64,
    /// Reward of the step.
    pub reward: f64,
    /// Who decided.
    pub source: String,
    /// Why.
    pub reason: String,
}

impl TimelineRow {
    /// CSV header matching [`TimelineRow::csv`].
    pub const HEADER: &'static str = "step,t_s,time_unix_s,target_replicas,ready,starting,draining,arrivals,completed,dropped,slo_violations,queue_len,running,cold_starts,gpu_utilization,arrival_rate_1m,latency_p95_s,cost_usd,reward,source,reason";

    /// The row as CSV (no trailing newline).
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.4},{:.4},{},{:.6},{:.6},{},{}",
            self.step,
            self.t_s,
            self.time_unix_s,
            self.target_replicas,
            self.ready,
            self.starting,
            self.draining,
            self.arrivals,
            self.completed,
            self.dropped,
            self.slo_violations,
            self.queue_len,
            self.running,
            self.cold_starts,
            self.gpu_utilization,
            self.arrival_rate_1m,
            self.latency_p95_s
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default(),
            self.cost_usd,
            self.reward,
            self.source,
            self.reason
        )
    }

    fn new(info: &StepInfo, start_unix_s: f64, decision: &Decision, reward: f64) -> Self {
        TimelineRow {
            step: info.step,
            t_s: info.time.0 - start_unix_s,
            time_unix_s: info.time.0,
            target_replicas: info.target_replicas,
            ready: info.ready,
            starting: info.starting,
            draining: info.draining,
            arrivals: info.arrivals,
            completed: info.completed,
            dropped: info.dropped,
            slo_violations: info.slo_violations,
            queue_len: info.queue_len,
            running: info.running,
            cold_starts: info.cold_starts,
            gpu_utilization: info.snapshot.gpu_utilization,
            arrival_rate_1m: info.snapshot.arrival_rate_1m,
            latency_p95_s: info.snapshot.latency_p95_s,
            cost_usd: info.cost_usd,
            reward,
            source: decision.source.to_string(),
            reason: decision.reason.to_string(),
        }
    }
}

/// Run `policy` through one episode of `env` from `seed`, calling `on_step` after every step with its
/// timeline row. The policy decides at the start of each step from the snapshot visible then.
pub fn run_episode(
    env: &mut SimEnv,
    policy: &mut dyn Policy,
    seed: u64,
    mut on_step: impl FnMut(&TimelineRow),
) -> Summary {
    policy.reset();
    let (_, mut info) = env.reset(Some(seed));
    let start = env.scenario().start_unix_s;
    loop {
        let now = env.now().expect("reset was called");
        let decision = policy.decide(&info.snapshot, now);
        let step = env
            .step(&Action::Replicas(decision.replicas))
            .expect("the episode is running");
        on_step(&TimelineRow::new(&step.info, start, &decision, step.reward));
        info = step.info;
        if step.truncated || step.terminated {
            break;
        }
    }
    summarize(env, &policy.name(), seed)
}

/// The summary of the episode `env` just ran.
pub fn summarize(env: &SimEnv, policy: &str, seed: u64) -> Summary {
    let sc = env.scenario();
    let t = env.totals().expect("reset was called");
    let steps = env.last_info().map_or(0, |i| i.step);
    let finished = t.completed + t.dropped;
    Summary {
        scenario: sc.id().to_string(),
        policy: policy.to_string(),
        seed,
        steps,
        sim_hours: steps as f64 * sc.file.control_interval_s / 3600.0,
        arrivals: t.arrivals,
        completed: t.completed,
        dropped: t.dropped,
        slo_violations: t.slo_violations,
        slo_attainment_pct: if finished == 0 {
            100.0
        } else {
            100.0 * (1.0 - t.slo_violations as f64 / finished as f64)
        },
        slo_target_pct: 100.0 * sc.slo.target,
        slo_latency_s: sc.slo.latency_s,
        latency_p50_s: t.latency.quantile(0.5),
        latency_p95_s: t.latency.quantile(0.95),
        latency_p99_s: t.latency.quantile(0.99),
        mean_wait_s: ratio(t.wait_sum_s, t.admitted),
        p_wait: ratio(t.waited as f64, t.admitted),
        gpu_hours: t.gpu_seconds / 3600.0,
        cost_usd: t.cost_usd,
        scale_events: t.scale_events,
        cold_starts: t.cold_starts,
        mean_replicas: ratio(t.target_sum as f64, steps),
        max_replicas: t.target_max,
        total_reward: t.reward_sum,
    }
}

/// `num / den`, or 0 when `den` is 0.
fn ratio(num: f64, den: u64) -> f64 {
    if den == 0 { 0.0 } else { num / den as f64 }
}
