//! The hindsight oracle: the best any policy could do, given the requests in advance.
//!
//! Two numbers come out of it, and they answer different questions.
//!
//! # 1. The bound (`oracle-bound`): a lower bound on every policy's objective, by construction
//! The objective of an episode is `J = GPU $ + penalty × SLO violations` (the reward's numerator). For
//! every request `i` of the episode ([`SimEnv::demand`] regenerates them exactly), with arrival `a`,
//! work `w` and prefill `p`:
//! * it is **forced** to violate if even alone on a replica its latency exceeds the SLO:
//!   `p / s_max > L` for a TTFT SLO (`w / s_max > L` for end-to-end), where `s_max = max_n speed[n]`
//!   is the fastest per-request speed of the throughput curve;
//! * it is **settled** if under any policy it must be over before the episode ends: dropped by the
//!   queue timeout or completed at the slowest speed, `a + timeout + w / s_min ≤ T`. Unsettled requests
//!   are left out (a policy could leave them in flight at the end, unbilled and unpunished).
//!
//! A replica serves at most `cap = max_n throughput(n)` work units per second, and is billed at least
//! while it serves (billing runs from provisioning start to the end of draining). So any policy pays at
//! least `c · W / cap` for the work `W` it completes (`c` = $ per replica-second), and `penalty` for each
//! settled request it does not complete in time. Completing a settled, unforced request with
//! `c · w / cap < penalty` is cheaper than letting it violate, hence
//!
//! ```text
//! J ≥ max(c · W_cheap / cap, floor) + penalty · forced
//! ```
//!
//! where `W_cheap` sums the work of settled, unforced requests with `c · w / cap < penalty`, and
//! `floor = c · min_replicas · T` when the scenario has no GPU limit and no stockout (then at least
//! `min` replicas are billed at every instant), else 0. The bound ignores cold starts, integer replicas,
//! queueing and the batch-size/latency trade-off: it is loose, never wrong. `rlscale evaluate` checks it
//! against every policy it runs.
//!
//! # 2. The schedule (`oracle`): a hindsight plan, played in the simulator
//! 1. **Per-replica operating point** from the processor-sharing model of a replica: at `n` requests in
//!    flight each gets `speed[n]` work units/s, so a request's TTFT is at least `p / speed[n]`. From the
//!    episode's own requests, `f(n)` = the share whose `p / speed[n]` exceeds the SLO. The operating
//!    point `n*` is the largest `n ≤ max_slot_share × max_concurrency` with `f(n) ≤ margin · (1 −
//!    target)`; one replica then serves `throughput(n*)` work units/s. The slot cap keeps the central
//!    queue, which forms only when every slot is busy, rare within an interval.
//! 2. **Need per interval**: `c_k = ceil(work arriving in interval k / Δ / throughput(n*))`, within the
//!    replica bounds. These are the actual arrivals (hindsight), not a forecast.
//! 3. **One cold start ahead**: replicas take `lead = lead_factor × mean cold start` to become ready, so
//!    the target at step `k` is `max(c_k … c_{k+lead})`.
//! 4. **Keep or release (ski rental)**: releasing a replica and starting it again later costs one cold
//!    start of billing, so a dip between two higher levels that lasts less than the mean cold start is
//!    kept: `T'_k = max over j ∈ [k−B, k] of min(T_j, max(T_k … T_{j+B}))`, with `B` the cold start in
//!    steps.
//!
//! The schedule is played as a policy ([`OraclePolicy`], source `oracle`); its simulated SLO attainment
//! shows how far the queue model is from the simulator, and its cost how tight the bound is.
//!
//! Assumptions, stated: requests are known in advance (hindsight); the routing is the simulator's ideal
//! least-loaded gateway; cold starts are random in the simulator but planned at their mean × lead
//! factor; the operating point is one `n*` for the whole episode (per-interval request mixes are not
//! exploited).

use std::sync::Arc;

use rlscale_core::{Decision, MetricsSnapshot, Policy, Reason, SimTime, Source};
use rlscale_sim::config::SloKind;
use rlscale_sim::{Request, Scenario, SimEnv};
use serde::{Deserialize, Serialize};

/// Knobs of the hindsight plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OracleConfig {
    /// Share of the SLO's violation budget `(1 − target)` the operating point may spend on requests
    /// that are slow even without queueing (0.8).
    pub margin: f64,
    /// Start replicas this many mean cold starts ahead (1.25: the cold start is random).
    pub lead_factor: f64,
    /// The operating point uses at most this share of a replica's batch slots (0.85), so that the
    /// central queue (which forms only when every slot is busy) stays rare within an interval.
    pub max_slot_share: f64,
}

impl Default for OracleConfig {
    fn default() -> Self {
        OracleConfig {
            margin: 0.8,
            lead_factor: 1.25,
            max_slot_share: 0.85,
        }
    }
}

/// The lower bound on the objective (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// Lower bound on `GPU $ + penalty × violations`, US dollars.
    pub objective_usd: f64,
    /// Its GPU-cost part, US dollars.
    pub cost_usd: f64,
    /// Requests no policy can serve within the SLO.
    pub forced_violations: u64,
    /// Requests every policy must finish or drop within the episode.
    pub settled_requests: u64,
    /// Whether the `min_replicas` floor applied (no GPU limit, no stockout).
    pub floor_applied: bool,
}

/// The hindsight plan of one episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Target replicas for each control step.
    pub schedule: Vec<u32>,
    /// Replicas needed in each interval (before lead and keep).
    pub needed: Vec<u32>,
    /// The per-replica operating point: requests in flight.
    pub n_star: usize,
    /// Work units/s one replica serves at the operating point.
    pub per_replica_work_rps: f64,
    /// Steps of lead (one cold start ahead).
    pub lead_steps: usize,
    /// Steps a dip must last before replicas are released.
    pub keep_steps: usize,
    /// GPU $ of the schedule under the plan's model (replica-steps plus one mean cold start of billing
    /// per replica started).
    pub planned_cost_usd: f64,
    /// The lower bound on any policy's objective.
    pub bound: Bound,
}

/// Plan the episode of `scenario` from `seed` over `steps` control steps.
///
/// The requests are streamed from [`SimEnv::demand_each`] into the few sums the bound and the operating
/// point need, never kept: a week of traffic is tens of millions of requests.
pub fn plan(scenario: &Arc<Scenario>, seed: u64, steps: u64, cfg: OracleConfig) -> Plan {
    let env = SimEnv::new(scenario.clone());
    let speed = env.speed();
    let n_max = speed.len().saturating_sub(1).max(1);
    let thr = |n: usize| speed.get(n).copied().unwrap_or(0.0) * n as f64;
    let s_max = (1..=n_max).map(|n| speed[n]).fold(0.0, f64::max);
    let s_min = (1..=n_max).map(|n| speed[n]).fold(f64::INFINITY, f64::min);
    let cap = (1..=n_max).map(thr).fold(0.0, f64::max);
    let slo = scenario.slo;
    let ttft = slo.kind == SloKind::Ttft;
    let latency_work = |r: &Request| if ttft { r.prefill } else { r.work };
    let bounds = scenario.file.replicas;
    let usd_per_replica_s = scenario.service_profile().usd_per_replica_hour() / 3600.0;
    let cold_mean = scenario.profile.mean_cold_start_s();
    let dt = scenario.file.control_interval_s;
    let horizon = steps as f64 * dt;

    // A request of latency work `x` is slow at `n` in flight when `x / speed[n] > L`, i.e. when `x`
    // exceeds `limit[n] = L · speed[n]`. Sort the limits once; each request then lands in one bucket
    // (how many limits it exceeds), and a suffix sum gives the slow count at every `n`.
    let mut limits: Vec<(f64, usize)> =
        (1..=n_max).map(|n| (slo.latency_s * speed[n], n)).collect();
    limits.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut exceeds = vec![0u64; n_max + 1];
    let mut total = 0u64;
    let mut forced = 0u64;
    let mut settled = 0u64;
    let mut w_cheap = 0.0;
    let demand = env.demand_each(seed, steps, |r| {
        let x = latency_work(r);
        total += 1;
        exceeds[limits.partition_point(|&(l, _)| l < x)] += 1;
        // The bound.
        if r.arrival_s + slo.timeout_s + r.work / s_min > horizon {
            return;
        }
        settled += 1;
        if x / s_max > slo.latency_s {
            forced += 1;
        } else if usd_per_replica_s * r.work / cap < slo.penalty_usd {
            w_cheap += r.work;
        }
    });
    // slow[n] = requests exceeding limit[n] = those exceeding at least (rank of limit[n] + 1) limits.
    let mut slow = vec![0u64; n_max + 1];
    let mut above = 0u64;
    for rank in (0..n_max).rev() {
        above += exceeds[rank + 1];
        slow[limits[rank].1] = above;
    }

    let cluster = &scenario.file.cluster;
    let floor_applied = cluster.gpu_limit.is_none() && cluster.stockouts.is_empty();
    let floor = if floor_applied {
        usd_per_replica_s * f64::from(bounds.min) * horizon
    } else {
        0.0
    };
    let bound_cost = (usd_per_replica_s * w_cheap / cap).max(floor);
    let bound = Bound {
        objective_usd: bound_cost + slo.penalty_usd * forced as f64,
        cost_usd: bound_cost,
        forced_violations: forced,
        settled_requests: settled,
        floor_applied,
    };

    // The operating point.
    let budget = cfg.margin * (1.0 - slo.target);
    let share_slow = |n: usize| {
        if total == 0 {
            0.0
        } else {
            slow[n] as f64 / total as f64
        }
    };
    let slot_cap = ((cfg.max_slot_share * n_max as f64).floor() as usize).clamp(1, n_max);
    let n_star = (1..=slot_cap)
        .rev()
        .find(|&n| share_slow(n) <= budget)
        .unwrap_or(1);
    let per_replica = thr(n_star).max(f64::MIN_POSITIVE);

    // Need, lead, keep.
    let needed: Vec<u32> = demand
        .work
        .iter()
        .map(|w| {
            let c = (w / dt / per_replica).ceil();
            (c.min(f64::from(bounds.max)) as u32).clamp(bounds.min, bounds.max)
        })
        .collect();
    let lead_steps = (cfg.lead_factor * cold_mean / dt).ceil() as usize;
    let keep_steps = (cold_mean / dt).ceil() as usize;
    let led = window_max_ahead(&needed, lead_steps);
    let schedule = keep_across_dips(&led, keep_steps);

    let mut planned = 0.0;
    let mut prev = scenario.file.replicas.initial;
    for &n in &schedule {
        planned += f64::from(n) * dt * usd_per_replica_s;
        planned += f64::from(n.saturating_sub(prev)) * cold_mean * usd_per_replica_s;
        prev = n;
    }
    Plan {
        schedule,
        needed,
        n_star,
        per_replica_work_rps: per_replica,
        lead_steps,
        keep_steps,
        planned_cost_usd: planned,
        bound,
    }
}

/// `out[k] = max(xs[k ..= k + ahead])`.
fn window_max_ahead(xs: &[u32], ahead: usize) -> Vec<u32> {
    (0..xs.len())
        .map(|k| {
            let end = (k + ahead + 1).min(xs.len());
            xs[k..end].iter().copied().max().unwrap_or(0)
        })
        .collect()
}

/// Ski rental: keep a level across a dip when it is needed again within `keep` steps of when it was last
/// needed. `out[k] = max(xs[k], max over j ∈ [k − keep, k] of min(xs[j], max(xs[k ..= j + keep])))`.
fn keep_across_dips(xs: &[u32], keep: usize) -> Vec<u32> {
    (0..xs.len())
        .map(|k| {
            let mut v = xs[k];
            for j in k.saturating_sub(keep)..k {
                let end = (j + keep + 1).min(xs.len());
                let later = xs[k..end].iter().copied().max().unwrap_or(0);
                v = v.max(xs[j].min(later));
            }
            v
        })
        .collect()
}

/// A plan played back as a policy: at step `k` it asks for `schedule[k]`.
#[derive(Debug, Clone)]
pub struct OraclePolicy {
    schedule: Arc<[u32]>,
    start_unix_s: f64,
    interval_s: f64,
}

impl OraclePolicy {
    /// Play `plan` on an episode starting at `start_unix_s` with steps of `interval_s`.
    pub fn new(plan: &Plan, start_unix_s: f64, interval_s: f64) -> Self {
        Self::from_schedule(&plan.schedule, start_unix_s, interval_s)
    }

    /// Play `schedule` (one target per step) on an episode starting at `start_unix_s`.
    pub fn from_schedule(schedule: &[u32], start_unix_s: f64, interval_s: f64) -> Self {
        OraclePolicy {
            schedule: schedule.into(),
            start_unix_s,
            interval_s,
        }
    }
}

impl Policy for OraclePolicy {
    fn name(&self) -> String {
        "oracle".into()
    }

    fn decide(&mut self, _snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        let k = ((now.unix_s() - self.start_unix_s) / self.interval_s).round();
        let k = if k.is_finite() && k > 0.0 {
            k as usize
        } else {
            0
        };
        let replicas = self
            .schedule
            .get(k)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(1);
        Decision {
            replicas,
            source: Source::Oracle,
            reason: Reason::Schedule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_takes_the_max_ahead() {
        assert_eq!(
            window_max_ahead(&[1, 1, 1, 5, 1, 1, 2], 2),
            vec![1, 5, 5, 5, 2, 2, 2]
        );
        assert_eq!(window_max_ahead(&[3, 1], 0), vec![3, 1]);
    }

    #[test]
    fn short_dips_are_kept_and_long_ones_released() {
        // A 2-step dip with keep = 3 is kept; a 5-step dip is released; the tail is never raised.
        let xs = [4, 4, 1, 1, 4, 4, 1, 1, 1, 1, 1, 4, 1];
        assert_eq!(
            keep_across_dips(&xs, 3),
            vec![4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 4, 1]
        );
        // Nested levels: 6 → 3 → 6 within keep keeps 6; the 3-level shoulder stays.
        assert_eq!(
            keep_across_dips(&[6, 3, 6, 3, 3, 3, 3, 3, 1], 2),
            vec![6, 6, 6, 3, 3, 3, 3, 3, 1]
        );
    }
}
