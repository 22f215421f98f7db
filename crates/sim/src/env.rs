//! The simulator environment: a request-level discrete-event simulation behind the [`Env`] trait.
//!
//! # One control step
//! 1. The action sets the target replica count (clamped to `[min, max]`). Scale-up creates replicas
//!    (Pending when no GPU can be had, else Provisioning, or Loading straight away on a warm-pool node).
//!    Scale-down removes, in this order: Pending replicas, then starting ones (newest first), then Ready
//!    ones with the fewest requests in flight, which drain gracefully.
//! 2. Events run in time order until the step's end, scraping metrics at every scrape interval: arrivals,
//!    departures (processor sharing per replica), queue timeouts, and phase changes.
//! 3. Billing is brought up to the step's end, and the observation is built by [`features()`] from the
//!    snapshot a controller would see (the last scrape at or before `now − staleness`).
//!
//! # Routing
//! One FIFO queue in front of all replicas (an ideal least-request gateway). An arriving request goes to
//! the Ready replica with the fewest requests in flight that has a free batch slot (ties: the lowest
//! slot); when none has one, it waits. A freed slot takes the head of the queue. Hence: the queue is
//! non-empty only while every Ready slot is busy, and with concurrency-1 replicas the system is exactly
//! M/G/c. A request that has waited `slo.timeout_s` is dropped (a client timeout).
//!
//! # Randomness
//! Five ChaCha8 streams derived from the episode seed: arrivals, request sizes, cold starts, metric noise,
//! and episode randomization. Arrivals and sizes never depend on the system's state, so every policy
//! sees the same requests for the same seed.
//!
//! # Memory
//! O(requests in flight): the queue, the per-replica heaps, and fixed-size metric windows.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rlscale_core::{
    Action, ActionSpace, Env, EnvError, MetricsSnapshot, ObsSpace, Observation, ServiceProfile,
    SimTime, Step, StepInfo, features,
};

use crate::arrivals::ArrivalStream;
use crate::config::{Scenario, SloKind};
use crate::metrics::{E2E_BUCKETS, LogHistogram, PromHistogram, TTFT_BUCKETS};
use crate::mintree::MinTree;
use crate::replica::{Phase, Replica};

/// Cumulative counters of an episode, for summaries and the validation tests.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests admitted to a batch slot.
    pub admitted: u64,
    /// Admitted requests that had to wait in the queue (wait > 0).
    pub waited: u64,
    /// Σ queue wait of admitted requests, seconds.
    pub wait_sum_s: f64,
    /// Requests completed.
    pub completed: u64,
    /// Σ end-to-end latency of completed requests, seconds.
    pub sojourn_sum_s: f64,
    /// Requests dropped by the queue timeout.
    pub dropped: u64,
    /// Completed late or dropped.
    pub slo_violations: u64,
    /// GPU-seconds billed.
    pub gpu_seconds: f64,
    /// Dollars billed.
    pub cost_usd: f64,
    /// Replicas that finished a cold start.
    pub cold_starts: u64,
    /// Steps whose action changed the target.
    pub scale_events: u64,
    /// Σ over steps of the target replica count (for the mean).
    pub target_sum: u64,
    /// Largest target replica count.
    pub target_max: u32,
    /// Σ reward.
    pub reward_sum: f64,
    /// The SLO latency of completed requests (the summary's p50/p95/p99).
    pub latency: LogHistogram,
}

/// Counters of the current step.
#[derive(Debug, Clone, Copy, Default)]
struct StepCounters {
    arrivals: u64,
    completed: u64,
    dropped: u64,
    violations: u64,
    cold_starts: u32,
    gpu_seconds: f64,
}

/// One request of an episode, as [`SimEnv::demand`] regenerates it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// Arrival, seconds after the episode start.
    pub arrival_s: f64,
    /// Work, in units of a mean-sized request (one unit takes `1 / speed[n]` seconds at concurrency n).
    pub work: f64,
    /// The prefill share of the work (what the time to first token waits for).
    pub prefill: f64,
}

/// The requests of an episode per control interval ([`SimEnv::demand_each`] also hands over each
/// request, without keeping them: a week of traffic is tens of millions of requests).
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The control interval, seconds.
    pub interval_s: f64,
    /// The episode's start, Unix seconds.
    pub start_unix_s: f64,
    /// Requests arriving in each control interval.
    pub arrivals: Vec<u32>,
    /// Work arriving in each control interval.
    pub work: Vec<f64>,
}

/// A request waiting for a slot.
#[derive(Debug, Clone, Copy)]
struct Queued {
    arrival: f64,
    work: f64,
    prefill: f64,
}

/// Request sizing, derived once per episode.
#[derive(Debug, Clone, Copy)]
struct Sizing {
    /// Token mode: (prefill weight, reference work, log-normal mu, sigma) of the per-request factor.
    tokens: Option<(f64, f64, f64, f64)>,
    prefill_fraction: f64,
}

/// What the metric windows remember, one entry per scrape.
#[derive(Debug, Clone)]
struct Scrapes {
    /// Arrivals counted in each of the last scrapes (newest last).
    arrivals: VecDeque<u64>,
    /// Latency histograms of each of the last scrapes (newest last).
    latency: VecDeque<PromHistogram>,
    /// The histogram being filled for the current scrape interval.
    current: PromHistogram,
    /// Arrivals since the last scrape.
    current_arrivals: u64,
    /// Recent snapshots (newest last), for staleness.
    snapshots: VecDeque<MetricsSnapshot>,
    /// The 1-minute rate each of the last hour's scrapes reported (newest last): the hour-scale
    /// windows are over it, as `max_over_time`/`avg_over_time` subqueries over the 1-minute rate are.
    rates_1m: VecDeque<f64>,
}

#[derive(Clone)]
struct State {
    t: f64,
    step: u64,
    done: bool,
    rng_arrivals: ChaCha8Rng,
    rng_sizes: ChaCha8Rng,
    rng_life: ChaCha8Rng,
    rng_noise: ChaCha8Rng,
    stream: ArrivalStream,
    next_arrival: f64,
    queue: VecDeque<Queued>,
    replicas: Vec<Replica>,
    /// Slot `i` = `replicas[i].next_event()`: the next replica event in O(1).
    ev: MinTree<f64>,
    /// Slot `i` = requests in flight of `replicas[i]` if it is Ready with a free slot, else `u32::MAX`:
    /// the routing target in O(1).
    load: MinTree<u32>,
    target: u32,
    next_id: u64,
    gpus_in_use: u32,
    warm_free: u32,
    step_c: StepCounters,
    scrapes: Scrapes,
    totals: Totals,
    last_info: StepInfo,
}

/// The simulator, as a Gymnasium-like environment. A clone is a snapshot of the whole episode state
/// (replicas, queue, random streams): stepping the clone and the original with the same actions
/// gives the same numbers, which is what a hindsight planner's local search branches from.
#[derive(Clone)]
pub struct SimEnv {
    scenario: Arc<Scenario>,
    obs_space: ObsSpace,
    action_space: ActionSpace,
    max_steps: u64,
    speed: Arc<[f64]>,
    max_conc: usize,
    sizing: Sizing,
    /// The service profile as snapshots carry it (derived once).
    profile: ServiceProfile,
    episode_rng: ChaCha8Rng,
    state: Option<State>,
}

/// Stream ids of the per-episode random streams.
const STREAM_ARRIVALS: u64 = 1;
const STREAM_SIZES: u64 = 2;
const STREAM_LIFE: u64 = 3;
const STREAM_NOISE: u64 = 4;
const STREAM_EPISODE: u64 = 5;
const STREAM_WARMUP_ARRIVALS: u64 = 6;
const STREAM_WARMUP_SIZES: u64 = 7;
const STREAM_WARMUP_NOISE: u64 = 8;

fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(id);
    r
}

impl SimEnv {
    /// An environment over `scenario`. Call [`Env::reset`] before stepping.
    pub fn new(scenario: Arc<Scenario>) -> Self {
        let r = scenario.file.replicas;
        let profile = &scenario.profile;
        let sizing = Sizing {
            tokens: scenario.requests.tokens.as_ref().map(|t| {
                let s2 = (1.0 + t.token_cv * t.token_cv).ln();
                (
                    t.prefill_token_weight,
                    t.prefill_token_weight * t.ref_input_tokens + t.ref_output_tokens,
                    -0.5 * s2,
                    s2.sqrt(),
                )
            }),
            prefill_fraction: scenario.requests.prefill_fraction,
        };
        SimEnv {
            obs_space: ObsSpace::standard(),
            action_space: ActionSpace::new(r.min, r.max),
            max_steps: scenario.file.max_episode_steps,
            speed: profile.speed.clone().into(),
            max_conc: profile.file.max_concurrency as usize,
            sizing,
            profile: scenario.service_profile(),
            episode_rng: stream(0, STREAM_EPISODE),
            scenario,
            state: None,
        }
    }

    /// The arrival rate (requests/s, rate scale applied) at the start of the episode `seed` would
    /// play: what a sizing of the initial fleet to the workload at its window offset reads. Draws
    /// from a copy of the episode's arrival stream; the episode itself is unchanged.
    pub fn initial_rate(&self, seed: u64) -> f64 {
        let mut rng = stream(seed, STREAM_ARRIVALS);
        self.arrival_stream(&mut rng).current_rate()
    }

    /// The scenario.
    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.scenario
    }

    /// Cumulative counters of the current episode (None before reset).
    pub fn totals(&self) -> Option<&Totals> {
        self.state.as_ref().map(|s| &s.totals)
    }

    /// The reward's unit, US dollars: one replica billed for one control interval. A step's reward
    /// is `−(GPU $ + penalty × violations) / unit`.
    pub fn reward_unit_usd(&self) -> f64 {
        self.profile.usd_per_replica_hour() * self.scenario.file.control_interval_s / 3600.0
    }

    /// The time now (episode start + simulated seconds), None before reset.
    pub fn now(&self) -> Option<SimTime> {
        self.state
            .as_ref()
            .map(|s| SimTime(self.scenario.start_unix_s + s.t))
    }

    /// The info of the last reset or step (None before reset).
    pub fn last_info(&self) -> Option<&StepInfo> {
        self.state.as_ref().map(|s| &s.last_info)
    }

    fn gpus_per_replica(&self) -> u32 {
        self.scenario.profile.file.gpus_per_replica
    }
}

impl State {
    fn in_stockout(&self, scenario: &Scenario) -> bool {
        scenario
            .file
            .cluster
            .stockouts
            .iter()
            .any(|p| self.t >= p.start_s && self.t < p.end_s)
    }
}

impl SimEnv {
    /// Try to give `replicas[i]` (Pending) a GPU: from the warm pool (skip provisioning) or a new node.
    fn try_start(&self, st: &mut State, i: usize) -> bool {
        let g = self.gpus_per_replica();
        let cluster = &self.scenario.file.cluster;
        if cluster.gpu_limit.is_some_and(|l| st.gpus_in_use + g > l) {
            return false;
        }
        let warm = st.warm_free > 0;
        if !warm && st.in_stockout(&self.scenario) {
            return false;
        }
        let p = &self.scenario.profile;
        let t = st.t;
        let provision = if warm {
            st.warm_free -= 1;
            0.0
        } else {
            p.provision.sample(&mut st.rng_life)
        };
        let load = p.image_pull.sample(&mut st.rng_life) + p.model_load.sample(&mut st.rng_life);
        let r = &mut st.replicas[i];
        r.billed_until = Some(t);
        r.load_s = load;
        if warm {
            r.phase = Phase::Loading;
            r.phase_until = t + load;
        } else {
            r.phase = Phase::Provisioning;
            r.phase_until = t + provision;
        }
        st.gpus_in_use += g;
        self.sync(st, i);
        true
    }

    /// Start Pending replicas, oldest first, while GPUs can be had.
    fn start_pending(&self, st: &mut State) {
        for i in 0..st.replicas.len() {
            if st.replicas[i].phase == Phase::Pending && !self.try_start(st, i) {
                break;
            }
        }
    }

    /// Remove `replicas[i]` at time `t`: final billing, GPU and warm node returned.
    fn remove(&self, st: &mut State, i: usize) {
        let g = self.gpus_per_replica();
        let r = st.replicas.swap_remove(i);
        st.ev.pop();
        st.load.pop();
        if i < st.replicas.len() {
            self.sync(st, i);
        }
        if let Some(b) = r.billed_until {
            let gs = (st.t - b) * f64::from(g);
            st.step_c.gpu_seconds += gs;
            st.gpus_in_use -= g;
            st.warm_free = (st.warm_free + 1).min(self.scenario.file.cluster.warm_pool);
        }
    }

    /// Replicas counted against the target: everything but Draining.
    fn active_count(st: &State) -> u32 {
        st.replicas
            .iter()
            .filter(|r| r.phase != Phase::Draining)
            .count() as u32
    }

    fn set_target(&self, st: &mut State, target: u32) {
        let current = Self::active_count(st);
        if target > current {
            for _ in current..target {
                let r = Replica::new(st.next_id, Phase::Pending, st.t);
                st.next_id += 1;
                st.replicas.push(r);
                st.ev.push(f64::INFINITY);
                st.load.push(u32::MAX);
                let i = st.replicas.len() - 1;
                self.try_start(st, i);
            }
        } else {
            for _ in target..current {
                // Pending first, then starting (newest first), then the least busy Ready (newest on ties).
                let rank = |r: &Replica| -> Option<(u8, usize, u64)> {
                    match r.phase {
                        Phase::Pending => Some((0, 0, u64::MAX - r.id)),
                        Phase::Provisioning | Phase::Loading => Some((1, 0, u64::MAX - r.id)),
                        Phase::Ready => Some((2, r.n(), u64::MAX - r.id)),
                        Phase::Draining => None,
                    }
                };
                let Some(i) = (0..st.replicas.len())
                    .filter_map(|i| rank(&st.replicas[i]).map(|k| (k, i)))
                    .min_by_key(|(k, _)| *k)
                    .map(|(_, i)| i)
                else {
                    break;
                };
                let t = st.t;
                let r = &mut st.replicas[i];
                if r.phase == Phase::Ready && r.n() > 0 {
                    r.advance(t, &self.speed);
                    r.phase = Phase::Draining;
                    self.sync(st, i);
                } else {
                    self.remove(st, i);
                }
            }
        }
        st.target = target;
    }

    fn sample_size(&self, st: &mut State) -> (f64, f64) {
        let tokens = st.stream.tokens();
        self.draw_size(&mut st.rng_sizes, tokens)
    }

    /// One request's (work, prefill work), drawn from the sizes stream.
    fn draw_size(&self, rng: &mut ChaCha8Rng, trace_tokens: Option<(f64, f64)>) -> (f64, f64) {
        match (self.sizing.tokens, trace_tokens) {
            (Some((w, reference, mu, sigma)), Some((mean_in, mean_out))) => {
                let z1: f64 = StandardNormal.sample(rng);
                let z2: f64 = StandardNormal.sample(rng);
                let tin = mean_in * (mu + sigma * z1).exp();
                let tout = mean_out * (mu + sigma * z2).exp();
                ((w * tin + tout) / reference, w * tin / reference)
            }
            _ => {
                let work = self.scenario.work.sample(rng);
                (work, work * self.sizing.prefill_fraction)
            }
        }
    }

    /// The requests an episode from `seed` will see in its first `steps` control steps, regenerated
    /// from the same random streams as [`Env::reset`] uses, without simulating any replica: what a
    /// hindsight oracle is given. Every policy sees exactly these requests for this seed.
    pub fn demand(&self, seed: u64, steps: u64) -> Demand {
        self.demand_each(seed, steps, |_| {})
    }

    /// [`SimEnv::demand`], calling `each` with every request in arrival order as it is drawn.
    pub fn demand_each(&self, seed: u64, steps: u64, mut each: impl FnMut(&Request)) -> Demand {
        let dt = self.scenario.file.control_interval_s;
        let horizon = steps as f64 * dt;
        let mut rng_arrivals = stream(seed, STREAM_ARRIVALS);
        let mut rng_sizes = stream(seed, STREAM_SIZES);
        let mut arrivals = self.arrival_stream(&mut rng_arrivals);
        let n = steps as usize;
        let mut d = Demand {
            interval_s: dt,
            start_unix_s: self.scenario.start_unix_s,
            arrivals: vec![0; n],
            work: vec![0.0; n],
        };
        if n == 0 {
            return d;
        }
        loop {
            let t = arrivals.next_arrival(&mut rng_arrivals);
            if t >= horizon {
                break;
            }
            let (work, prefill) = self.draw_size(&mut rng_sizes, arrivals.tokens());
            let k = ((t / dt) as usize).min(n - 1);
            d.arrivals[k] += 1;
            d.work[k] += work;
            each(&Request {
                arrival_s: t,
                work,
                prefill,
            });
        }
        d
    }

    fn arrival_stream(&self, rng: &mut ChaCha8Rng) -> ArrivalStream {
        let sc = &self.scenario;
        ArrivalStream::starting_at(
            &sc.arrivals,
            sc.start_unix_s - sc.window_offset_s,
            sc.window_offset_s,
            sc.rate_multiplier,
            rng,
        )
    }

    /// `speed[n]`: the work units per second each of `n` requests in flight on one replica receives.
    pub fn speed(&self) -> &[f64] {
        &self.speed
    }

    /// Refresh the two trees' keys of `replicas[i]` after it changed.
    #[inline]
    fn sync(&self, st: &mut State, i: usize) {
        let r = &st.replicas[i];
        st.ev.set(i, r.next_event(&self.speed));
        let free = r.phase == Phase::Ready && r.n() < self.max_conc;
        st.load.set(i, if free { r.n() as u32 } else { u32::MAX });
    }

    #[inline]
    fn admit(&self, st: &mut State, i: usize, q: Queued) {
        let t = st.t;
        let r = &mut st.replicas[i];
        r.advance(t, &self.speed);
        r.admit(q.arrival, q.work, q.prefill, t, &self.speed);
        self.sync(st, i);
        let wait = t - q.arrival;
        st.totals.admitted += 1;
        if wait > 0.0 {
            st.totals.waited += 1;
            st.totals.wait_sum_s += wait;
        }
    }

    /// Run events until `t_end`.
    fn advance(&self, st: &mut State, t_end: f64) {
        let timeout = self.scenario.slo.timeout_s;
        let slo = self.scenario.slo.latency_s;
        let ttft = self.scenario.slo.kind == SloKind::Ttft;
        loop {
            // The earliest event: 0 = end, 1 = arrival, 2 = timeout, 3 + i = replica i.
            let mut te = t_end;
            let mut kind = 0usize;
            if st.next_arrival < te {
                te = st.next_arrival;
                kind = 1;
            }
            if let Some(q) = st.queue.front() {
                let d = q.arrival + timeout;
                if d < te {
                    te = d;
                    kind = 2;
                }
            }
            let (x, i) = st.ev.min();
            if x < te {
                te = x;
                kind = 3 + i;
            }
            st.t = te;
            match kind {
                0 => return,
                1 => {
                    st.step_c.arrivals += 1;
                    st.scrapes.current_arrivals += 1;
                    let (work, prefill) = self.sample_size(st);
                    let q = Queued {
                        arrival: te,
                        work,
                        prefill,
                    };
                    // Least-loaded Ready replica with a free slot; ties go to the lowest slot.
                    let (n, best) = st.load.min();
                    if n != u32::MAX {
                        self.admit(st, best, q);
                    } else {
                        st.queue.push_back(q);
                    }
                    st.next_arrival = st.stream.next_arrival(&mut st.rng_arrivals);
                }
                2 => {
                    st.queue.pop_front();
                    st.step_c.dropped += 1;
                    st.step_c.violations += 1;
                }
                _ => {
                    let i = kind - 3;
                    match st.replicas[i].phase {
                        Phase::Provisioning => {
                            let r = &mut st.replicas[i];
                            r.phase = Phase::Loading;
                            r.phase_until = te + r.load_s;
                            self.sync(st, i);
                        }
                        Phase::Loading => {
                            let r = &mut st.replicas[i];
                            r.advance(te, &self.speed);
                            r.phase = Phase::Ready;
                            r.phase_until = f64::INFINITY;
                            st.step_c.cold_starts += 1;
                            self.sync(st, i);
                            while st.replicas[i].n() < self.max_conc {
                                let Some(q) = st.queue.pop_front() else { break };
                                self.admit(st, i, q);
                            }
                        }
                        Phase::Ready | Phase::Draining => {
                            let (job, phase, left) = {
                                let r = &mut st.replicas[i];
                                r.advance(te, &self.speed);
                                let job = r.depart().expect("a departure event has a job");
                                (job, r.phase, r.n())
                            };
                            let e2e = te - job.arrival;
                            let latency = if ttft { job.ttft } else { e2e };
                            st.step_c.completed += 1;
                            st.totals.sojourn_sum_s += e2e;
                            st.totals.latency.observe(latency);
                            st.scrapes.current.observe(latency);
                            if latency > slo {
                                st.step_c.violations += 1;
                            }
                            if phase == Phase::Ready {
                                if let Some(q) = st.queue.pop_front() {
                                    self.admit(st, i, q);
                                } else {
                                    self.sync(st, i);
                                }
                            } else if left == 0 {
                                self.remove(st, i);
                                self.start_pending(st);
                            } else {
                                self.sync(st, i);
                            }
                        }
                        Phase::Pending => unreachable!("pending replicas have no events"),
                    }
                }
            }
        }
    }

    /// When the warm-up starts: `-metrics.warmup_s`, rounded up to whole scrape intervals (0 without
    /// a warm-up).
    fn warmup_start(&self) -> f64 {
        let m = &self.scenario.file.metrics;
        -(m.warmup_s / m.scrape_interval_s).ceil() * m.scrape_interval_s
    }

    /// Run the warm-up, from [`SimEnv::warmup_start`] to 0: the initial replicas serve Poisson
    /// arrivals at the workload's rate at the episode start, and Prometheus scrapes them, so that the
    /// first decision sees full rate windows and latencies instead of an idle service. The warm-up
    /// draws from random streams of its own (`seed`'s streams 6–8), so the episode's requests, sizes
    /// and noise are those of a run without it ([`SimEnv::demand`] is unchanged), and its counters
    /// are cleared at 0: requests still in flight then finish inside the episode and count there.
    fn warm_up(&self, st: &mut State, seed: u64) {
        let start = st.t;
        if start >= 0.0 {
            return;
        }
        let mut arrivals =
            ArrivalStream::warm_up(st.stream.current_rate(), st.stream.tokens(), -start);
        let mut rngs = [
            stream(seed, STREAM_WARMUP_ARRIVALS),
            stream(seed, STREAM_WARMUP_SIZES),
            stream(seed, STREAM_WARMUP_NOISE),
        ];
        let swap = |st: &mut State, a: &mut ArrivalStream, r: &mut [ChaCha8Rng; 3]| {
            std::mem::swap(&mut st.stream, a);
            std::mem::swap(&mut st.rng_arrivals, &mut r[0]);
            std::mem::swap(&mut st.rng_sizes, &mut r[1]);
            std::mem::swap(&mut st.rng_noise, &mut r[2]);
        };
        swap(st, &mut arrivals, &mut rngs);
        let first = st.next_arrival;
        st.next_arrival = st.stream.next_arrival(&mut st.rng_arrivals);
        let dt = self.scenario.file.metrics.scrape_interval_s;
        let scrapes = (-start / dt).round() as u64;
        for k in 1..scrapes {
            self.advance(st, start + k as f64 * dt);
            self.scrape(st);
        }
        self.advance(st, 0.0);
        st.t = 0.0;
        swap(st, &mut arrivals, &mut rngs);
        st.next_arrival = first;
        st.step_c = StepCounters::default();
        st.totals = Totals::default();
    }

    /// Record a scrape at the current time and return its snapshot.
    fn scrape(&self, st: &mut State) -> MetricsSnapshot {
        let spec = &self.scenario.file.metrics;
        let k1 = ((60.0 / spec.scrape_interval_s).round() as usize).max(1);
        let k5 = ((300.0 / spec.scrape_interval_s).round() as usize).max(1);
        let sc = &mut st.scrapes;
        sc.arrivals.push_back(sc.current_arrivals);
        sc.current_arrivals = 0;
        if sc.arrivals.len() > k5 {
            sc.arrivals.pop_front();
        }
        let bounds = sc.current.bounds();
        let full = std::mem::replace(&mut sc.current, PromHistogram::new(bounds));
        sc.latency.push_back(full);
        if sc.latency.len() > k1 {
            sc.latency.pop_front();
        }
        let rate = |k: usize| -> f64 {
            let n = sc.arrivals.len().min(k);
            let sum: u64 = sc.arrivals.iter().rev().take(n).sum();
            sum as f64 / (n as f64 * spec.scrape_interval_s)
        };
        let (rate_1m, rate_5m) = (rate(k1), rate(k5));
        let mut window = PromHistogram::new(bounds);
        for h in &sc.latency {
            window.add(h);
        }

        let (mut busy, mut conc, mut serving) = (0.0, 0.0, 0.0);
        let (mut ready, mut starting, mut running) = (0u32, 0u32, 0usize);
        let t = st.t;
        for r in st.replicas.iter_mut() {
            r.advance(t, &self.speed);
            busy += r.busy_s;
            conc += r.conc_s;
            serving += r.serving_s;
            r.busy_s = 0.0;
            r.conc_s = 0.0;
            r.serving_s = 0.0;
            match r.phase {
                Phase::Ready => ready += 1,
                Phase::Pending | Phase::Provisioning | Phase::Loading => starting += 1,
                Phase::Draining => {}
            }
            if matches!(r.phase, Phase::Ready | Phase::Draining) {
                running += r.n();
            }
        }
        let (util, kv) = if serving > 0.0 {
            (
                (busy / serving).min(1.0),
                (conc / (serving * self.max_conc as f64)).min(1.0),
            )
        } else {
            (0.0, 0.0)
        };
        let cv = spec.noise_cv;
        let mut noisy = |x: f64| -> f64 {
            if cv > 0.0 {
                let z: f64 = StandardNormal.sample(&mut st.rng_noise);
                (x * (1.0 + cv * z)).max(0.0)
            } else {
                x
            }
        };
        let (rate_1m, rate_5m) = (noisy(rate_1m), noisy(rate_5m));
        // Hour-scale windows over the reported 1-minute rates: what `max_over_time` and
        // `avg_over_time` subqueries over the same series return (no extra noise draws, so every
        // other field's noise is what it was before schema 2).
        let k15 = ((900.0 / spec.scrape_interval_s).round() as usize).max(1);
        let k60 = ((3600.0 / spec.scrape_interval_s).round() as usize).max(1);
        let h = &mut st.scrapes.rates_1m;
        h.push_back(rate_1m);
        while h.len() > k60 {
            h.pop_front();
        }
        let peak = |k: usize| h.iter().rev().take(k).fold(0.0f64, |m, &r| m.max(r));
        let (peak_15m, peak_1h) = (peak(k15), peak(k60));
        let rate_1h = h.iter().sum::<f64>() / h.len() as f64;
        let snap = MetricsSnapshot {
            time: SimTime(self.scenario.start_unix_s + t),
            arrival_rate_1m: rate_1m,
            arrival_rate_5m: rate_5m,
            arrival_rate_peak_15m: Some(peak_15m),
            arrival_rate_peak_1h: Some(peak_1h),
            arrival_rate_1h: Some(rate_1h),
            queue_depth: noisy(st.queue.len() as f64),
            running: noisy(running as f64),
            ready_replicas: ready,
            starting_replicas: starting,
            gpu_utilization: noisy(util).min(1.0),
            kv_cache_usage: noisy(kv).min(1.0),
            latency_p50_s: window.quantile(0.5),
            latency_p95_s: window.quantile(0.95),
            latency_p99_s: window.quantile(0.99),
            profile: self.profile,
        };
        let keep = (spec.staleness_s / spec.scrape_interval_s).ceil() as usize + 1;
        st.scrapes.snapshots.push_back(snap);
        while st.scrapes.snapshots.len() > keep {
            st.scrapes.snapshots.pop_front();
        }
        snap
    }

    /// The snapshot a decision at the current time sees: the last scrape at or before `now − staleness`.
    fn visible_snapshot(&self, st: &State) -> MetricsSnapshot {
        let cutoff =
            self.scenario.start_unix_s + st.t - self.scenario.file.metrics.staleness_s + 1e-9;
        st.scrapes
            .snapshots
            .iter()
            .rev()
            .find(|s| s.time.0 <= cutoff)
            .or(st.scrapes.snapshots.front())
            .copied()
            .expect("a scrape happens at reset")
    }

    /// Bring billing up to the current time.
    fn bill(&self, st: &mut State) {
        let g = f64::from(self.gpus_per_replica());
        let t = st.t;
        for r in st.replicas.iter_mut() {
            if let Some(b) = r.billed_until {
                st.step_c.gpu_seconds += (t - b) * g;
                r.billed_until = Some(t);
            }
        }
    }

    fn info(&self, st: &State, snapshot: MetricsSnapshot, scaled: bool) -> StepInfo {
        let c = st.step_c;
        let (mut ready, mut starting, mut draining, mut running) = (0, 0, 0, 0u64);
        for r in &st.replicas {
            match r.phase {
                Phase::Ready => ready += 1,
                Phase::Draining => draining += 1,
                _ => starting += 1,
            }
            running += r.n() as u64;
        }
        StepInfo {
            step: st.step,
            time: SimTime(self.scenario.start_unix_s + st.t),
            target_replicas: st.target,
            scaled,
            ready,
            starting,
            draining,
            arrivals: c.arrivals,
            completed: c.completed,
            dropped: c.dropped,
            slo_violations: c.violations,
            queue_len: st.queue.len() as u64,
            running,
            cold_starts: c.cold_starts,
            gpu_seconds: c.gpu_seconds,
            cost_usd: c.gpu_seconds / 3600.0 * self.scenario.profile.file.usd_per_gpu_hour,
            snapshot,
        }
    }
}

impl Env for SimEnv {
    type Obs = Observation;
    type Action = Action;

    fn reset(&mut self, seed: Option<u64>) -> (Observation, StepInfo) {
        let seed = match seed {
            Some(s) => {
                self.episode_rng = stream(s, STREAM_EPISODE);
                s
            }
            None => self.episode_rng.random(),
        };
        let mut rng_arrivals = stream(seed, STREAM_ARRIVALS);
        let stream_ = self.arrival_stream(&mut rng_arrivals);
        let bounds = match self.scenario.slo.kind {
            SloKind::E2e => &E2E_BUCKETS[..],
            SloKind::Ttft => &TTFT_BUCKETS[..],
        };
        let mut st = State {
            t: 0.0,
            step: 0,
            done: false,
            rng_arrivals,
            rng_sizes: stream(seed, STREAM_SIZES),
            rng_life: stream(seed, STREAM_LIFE),
            rng_noise: stream(seed, STREAM_NOISE),
            stream: stream_,
            next_arrival: 0.0,
            queue: VecDeque::new(),
            replicas: Vec::new(),
            ev: MinTree::new(f64::INFINITY),
            load: MinTree::new(u32::MAX),
            target: 0,
            next_id: 0,
            gpus_in_use: 0,
            warm_free: self.scenario.file.cluster.warm_pool,
            step_c: StepCounters::default(),
            scrapes: Scrapes {
                arrivals: VecDeque::new(),
                latency: VecDeque::new(),
                current: PromHistogram::new(bounds),
                current_arrivals: 0,
                snapshots: VecDeque::new(),
                rates_1m: VecDeque::new(),
            },
            totals: Totals::default(),
            last_info: StepInfo {
                step: 0,
                time: SimTime(self.scenario.start_unix_s),
                target_replicas: 0,
                scaled: false,
                ready: 0,
                starting: 0,
                draining: 0,
                arrivals: 0,
                completed: 0,
                dropped: 0,
                slo_violations: 0,
                queue_len: 0,
                running: 0,
                cold_starts: 0,
                gpu_seconds: 0.0,
                cost_usd: 0.0,
                snapshot: MetricsSnapshot::idle(
                    SimTime(self.scenario.start_unix_s),
                    0,
                    self.profile,
                ),
            },
        };
        st.next_arrival = st.stream.next_arrival(&mut st.rng_arrivals);
        // The episode starts with `initial` replicas already Ready (and billed from t = 0), serving
        // the warm-up's requests from its start.
        let warmup = self.warmup_start();
        st.t = warmup;
        let g = self.gpus_per_replica();
        for _ in 0..self.scenario.file.replicas.initial {
            let mut r = Replica::new(st.next_id, Phase::Ready, warmup);
            r.billed_until = Some(0.0);
            st.next_id += 1;
            st.gpus_in_use += g;
            st.replicas.push(r);
            st.ev.push(f64::INFINITY);
            st.load.push(u32::MAX);
            let i = st.replicas.len() - 1;
            self.sync(&mut st, i);
        }
        st.target = self.scenario.file.replicas.initial;
        self.warm_up(&mut st, seed);
        self.scrape(&mut st);
        let snap = self.visible_snapshot(&st);
        let info = self.info(&st, snap, false);
        st.last_info = info;
        let obs = features(&snap);
        self.state = Some(st);
        (obs, info)
    }

    fn step(&mut self, action: &Action) -> Result<Step<Observation>, EnvError> {
        let mut st = self.state.take().ok_or(EnvError::ResetNeeded)?;
        if st.done {
            let n = st.step;
            self.state = Some(st);
            return Err(EnvError::EpisodeOver(n));
        }
        st.step_c = StepCounters::default();
        let target = self.action_space.apply(st.target, *action);
        let scaled = target != st.target;
        self.start_pending(&mut st);
        self.set_target(&mut st, target);
        let spec = &self.scenario.file;
        let scrapes = (spec.control_interval_s / spec.metrics.scrape_interval_s).round() as u64;
        let t0 = st.t;
        for k in 1..=scrapes {
            let t_scrape = t0 + k as f64 * spec.metrics.scrape_interval_s;
            self.advance(&mut st, t_scrape);
            self.scrape(&mut st);
            if k < scrapes {
                self.start_pending(&mut st);
            }
        }
        self.bill(&mut st);
        st.step += 1;
        let snap = self.visible_snapshot(&st);
        let info = self.info(&st, snap, scaled);
        let unit = self.reward_unit_usd();
        let reward =
            -(info.cost_usd + self.scenario.slo.penalty_usd * info.slo_violations as f64) / unit;
        let tt = &mut st.totals;
        tt.arrivals += info.arrivals;
        tt.completed += info.completed;
        tt.dropped += info.dropped;
        tt.slo_violations += info.slo_violations;
        tt.gpu_seconds += info.gpu_seconds;
        tt.cost_usd += info.cost_usd;
        tt.cold_starts += u64::from(info.cold_starts);
        tt.scale_events += u64::from(scaled);
        tt.target_sum += u64::from(target);
        tt.target_max = tt.target_max.max(target);
        tt.reward_sum += reward;
        let truncated = st.step >= self.max_steps;
        st.done = truncated;
        st.last_info = info;
        self.state = Some(st);
        Ok(Step {
            obs: features(&snap),
            reward,
            terminated: false,
            truncated,
            info,
        })
    }

    fn observation_space(&self) -> &ObsSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &ActionSpace {
        &self.action_space
    }

    fn max_episode_steps(&self) -> u64 {
        self.max_steps
    }
}
