//! The autoscaling simulator as the learner sees it: one [`TrainEnv`] over a mixture of scenarios.
//!
//! Each episode draws one entry of the mixture, a window offset and a rate scale from the episode seed,
//! loads that variant of the scenario, and runs it for the entry's episode length. Observations are
//! `rlscale_core::features` of the simulator's snapshot (the ONE feature function the controller also
//! uses), actions index the run's action table (`rlscale_core::ActionTable`: replica deltas by default,
//! or target utilizations of the arrival rate), masked at the replica bounds.

use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlscale_core::{Action, ActionSpace, ActionTable, Env, MetricsSnapshot, N_ACTIONS, N_FEATURES};
use rlscale_runtime::{Guard, Guardrails};
use rlscale_sim::{Overrides, ProfileScale, Scenario, SimEnv};
use serde::{Deserialize, Serialize};

use crate::env::{TrainEnv, Transition};

/// One entry of the training mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// Scenario file.
    pub scenario: PathBuf,
    /// Relative weight when drawing an episode's scenario.
    #[serde(default = "one")]
    pub weight: f64,
    /// Control steps per episode.
    pub steps: u64,
    /// Episodes start at a uniform offset in `[min_offset_s, max_offset_s]` on the workload's
    /// timeline.
    #[serde(default)]
    pub max_offset_s: f64,
    /// See `max_offset_s` (default 0). A fine-tuning mixture (`rlscale train --scenario`) keeps its
    /// episodes inside the history's fitting window with it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_offset_s: f64,
    /// Arrival rates are multiplied by a log-uniform factor in `[rate_scale[0], rate_scale[1]]`.
    #[serde(default = "unit_range")]
    pub rate_scale: [f64; 2],
    /// The service profile's cold-start durations are multiplied by a log-uniform factor in this range.
    #[serde(default = "unit_range")]
    pub cold_start_scale: [f64; 2],
    /// Its throughput curve (capacity per replica), likewise.
    #[serde(default = "unit_range")]
    pub capacity_scale: [f64; 2],
    /// Its GPU price, likewise.
    #[serde(default = "unit_range")]
    pub price_scale: [f64; 2],
    /// The scenario's `replicas.max` is multiplied by a log-uniform factor in this range (rounded, and
    /// kept above `replicas.min` and `replicas.initial`). A fixed ceiling is an attractor: a policy can
    /// learn to ride it when the ceiling is a safe over-provision; a ceiling that moves cannot be ridden.
    #[serde(default = "unit_range")]
    pub max_replicas_scale: [f64; 2],
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl MixEntry {
    /// `steps`-step episodes of `scenario`, weight 1, no randomization.
    pub fn new(scenario: impl Into<PathBuf>, steps: u64) -> Self {
        MixEntry {
            scenario: scenario.into(),
            weight: 1.0,
            steps,
            max_offset_s: 0.0,
            min_offset_s: 0.0,
            rate_scale: unit_range(),
            cold_start_scale: unit_range(),
            capacity_scale: unit_range(),
            price_scale: unit_range(),
            max_replicas_scale: unit_range(),
        }
    }
}

fn one() -> f64 {
    1.0
}

fn unit_range() -> [f64; 2] {
    [1.0, 1.0]
}

/// Who labels the states a learner visits with an action to imitate (`teacher` in a train config):
/// a hindsight plan of the episode being played, made at its reset from the episode's own seed and
/// variant. The label at step `k` is the table action whose target comes closest to the plan's
/// target for step `k`, from where the learner is: the plan is open-loop, so relabelling the
/// learner's own states (DAgger) costs nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Teacher {
    /// The heuristic hindsight plan (`rlscale_eval::oracle::plan`): one pass over the episode's
    /// requests, no simulation.
    Oracle,
    /// The hindsight planner (`rlscale_eval::planner::plan`, one pass of its local search): about
    /// twenty simulations of the episode per reset.
    Planner,
}

/// A scenario variant an episode ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Index in the mixture.
    pub entry: usize,
    /// Window offset, seconds.
    pub offset_s: f64,
    /// Rate scale.
    pub rate_scale: f64,
    /// Service-profile multipliers.
    pub profile: ProfileScale,
    /// Multiplier of `replicas.max`.
    pub max_replicas_scale: f64,
}

/// The simulator over a scenario mixture.
pub struct SimTrainEnv {
    mix: Arc<[MixEntry]>,
    env: Option<SimEnv>,
    table: ActionTable,
    space: ActionSpace,
    target: u32,
    variant: Option<Variant>,
    rails: Option<Guardrails>,
    guard: Option<Guard>,
    /// The last snapshot (what the guardrails read, as a runtime would).
    last: Option<MetricsSnapshot>,
    notes: Vec<rlscale_runtime::Note>,
    teacher: Option<Teacher>,
    /// Other futures the causal labels hedge against ([`SimTrainEnv::with_teacher_futures`]); 0:
    /// the plan of the episode itself (hindsight labels).
    futures: usize,
    /// Features the policy reads: a prefix of `rlscale_core::FEATURE_NAMES` (its schema's).
    n_obs: usize,
    /// The teacher's plan of the current episode: a target per step.
    plan: Vec<u32>,
    /// Steps taken in the current episode.
    steps: usize,
    /// The episode's SLO attainment target, percent.
    slo_target_pct: f64,
}

impl SimTrainEnv {
    /// An env over `mix`; every entry must load (see [`check_mix`]).
    pub fn new(mix: Arc<[MixEntry]>) -> Self {
        SimTrainEnv {
            mix,
            env: None,
            table: ActionTable::deltas(),
            space: ActionSpace::new(0, 0),
            target: 0,
            variant: None,
            rails: None,
            guard: None,
            last: None,
            notes: Vec::new(),
            teacher: None,
            futures: 0,
            n_obs: rlscale_core::N_FEATURES_V1,
            plan: Vec::new(),
            steps: 0,
            slo_target_pct: 99.0,
        }
    }

    /// Label every state with `teacher`'s action ([`TrainEnv::teacher_action`]).
    pub fn with_teacher(mut self, teacher: Option<Teacher>) -> Self {
        self.teacher = teacher;
        self
    }

    /// Causal labels: instead of the episode's own hindsight plan, label step `k` with the larger of
    ///
    /// - the own plan *without its lead*: its lowest target over the last `H` steps, `H` the
    ///   teacher's cold-start lead (1.25 mean cold starts). A plan scales up `H` steps before a
    ///   burst it knows is coming; a causal policy can only react once the burst shows, which is
    ///   when this label rises. It still scales down when the plan does.
    /// - the highest target, at step `k`, of the teacher's plans of `futures` other episodes of the
    ///   same variant (same offset, rate scale and profile; other seeds). Where bursts come at random,
    ///   this is the headroom a plan keeps in at least one of the futures the state cannot tell
    ///   apart; where the traffic is predictable (diurnal, a trace's known shape), the futures agree
    ///   and the label keeps the plan's pre-scaling.
    ///
    /// The other futures are planned by the heuristic hindsight plan (`rlscale_eval::oracle::plan`:
    /// one pass over the requests, no simulation), whatever the teacher, so that they cost little
    /// beside the episode's own plan. 0 (the default): the hindsight labels of the episode's own plan.
    pub fn with_teacher_futures(mut self, futures: usize) -> Self {
        self.futures = futures;
        self
    }

    /// Observe feature schema `schema` (1 or 2; `TrainConfig::validate` checked it): the policy reads
    /// that schema's prefix of `rlscale_core::features`, as the runtime feeds a model of that schema.
    pub fn with_obs_schema(mut self, schema: u32) -> Self {
        self.n_obs = rlscale_core::n_features(schema).unwrap_or(N_FEATURES);
        self
    }

    /// The current target replica count.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// The teacher's plan of the current episode (empty without a teacher).
    pub fn plan(&self) -> &[u32] {
        &self.plan
    }

    /// Index `table` with the policy's actions instead of the delta table.
    pub fn with_actions(mut self, table: ActionTable) -> Self {
        self.table = table;
        self
    }

    /// Apply the runtime's guardrails to every action (scale-down stabilization, anti-cascade, step
    /// limits), exactly as `rlscale_runtime::Runtime` applies them in a cluster, so the policy learns
    /// under the rules it will run under.
    pub fn with_guardrails(mut self, rails: Option<Guardrails>) -> Self {
        self.rails = rails;
        self
    }

    /// The variant of the current episode.
    pub fn variant(&self) -> Option<&Variant> {
        self.variant.as_ref()
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> Variant {
        let total: f64 = self.mix.iter().map(|e| e.weight).sum();
        let mut u = rng.random::<f64>() * total;
        let mut entry = self.mix.len() - 1;
        for (i, e) in self.mix.iter().enumerate() {
            if u < e.weight {
                entry = i;
                break;
            }
            u -= e.weight;
        }
        let e = &self.mix[entry];
        let offset_s = if e.max_offset_s > e.min_offset_s {
            // Whole control intervals, so the clock stays on the 15 s grid.
            e.min_offset_s
                + (rng.random::<f64>() * (e.max_offset_s - e.min_offset_s) / 15.0).floor() * 15.0
        } else {
            e.min_offset_s
        };
        let mut log_uniform = |[lo, hi]: [f64; 2]| {
            let u = rng.random::<f64>();
            if lo == hi {
                lo
            } else {
                (lo.ln() + u * (hi.ln() - lo.ln())).exp()
            }
        };
        let rate_scale = log_uniform(e.rate_scale);
        let profile = ProfileScale {
            cold_start: log_uniform(e.cold_start_scale),
            capacity: log_uniform(e.capacity_scale),
            price: log_uniform(e.price_scale),
        };
        // Drawn only when it varies, so that mixtures without it keep their random streams.
        let [lo, hi] = e.max_replicas_scale;
        let max_replicas_scale = if lo == hi { lo } else { log_uniform([lo, hi]) };
        Variant {
            entry,
            offset_s,
            rate_scale,
            profile,
            max_replicas_scale,
        }
    }
}

/// Load the variant `v` of `mix`.
pub fn load_variant(mix: &[MixEntry], v: &Variant) -> Result<Scenario, rlscale_sim::Error> {
    let e = &mix[v.entry];
    let mut sc = Scenario::load(
        &e.scenario,
        &Overrides {
            max_episode_steps: Some(e.steps),
            window_offset_s: Some(v.offset_s),
            rate_scale: Some(v.rate_scale),
            profile_scale: Some(v.profile),
            ..Overrides::default()
        },
    )?;
    if v.max_replicas_scale != 1.0 {
        let r = &mut sc.file.replicas;
        let scaled = (f64::from(r.max) * v.max_replicas_scale).round();
        r.max = (scaled.min(f64::from(u32::MAX)) as u32)
            .max(r.min.saturating_add(1))
            .max(r.initial);
    }
    Ok(sc)
}

/// Utilization of the replicas' capacity at which a training episode's initial fleet is sized.
pub const START_UTILIZATION: f64 = 0.7;

/// `sc` with its initial fleet sized to the workload where the episode starts (its window offset and
/// rate scale): `ceil(rate / (capacity × START_UTILIZATION))` replicas, within the bounds. A file's
/// `replicas.initial` is written for the start of its own timeline; an episode that starts at a peak
/// with the trough's fleet opens with violations no policy could avoid, which only adds variance to
/// the returns.
pub fn start_near_need(mut sc: Scenario, sim_seed: u64) -> Scenario {
    let rate = SimEnv::new(Arc::new(sc.clone())).initial_rate(sim_seed);
    let cap = sc.service_profile().capacity_rps * START_UTILIZATION;
    let r = &mut sc.file.replicas;
    if rate.is_finite() && cap > 0.0 {
        let need = (rate / cap).ceil().min(f64::from(r.max));
        r.initial = (need as u32).clamp(r.min, r.max);
    }
    sc
}

/// The teacher's target schedule of the episode of `sc` from `seed`: the heuristic plan, or one pass
/// of the planner's local search.
fn teacher_plan(teacher: Teacher, sc: &Arc<Scenario>, seed: u64, steps: u64) -> Vec<u32> {
    match teacher {
        Teacher::Oracle => rlscale_eval::oracle::plan(sc, seed, steps, Default::default()).schedule,
        Teacher::Planner => {
            let cfg = rlscale_eval::planner::PlannerConfig {
                passes: 1,
                ..Default::default()
            };
            rlscale_eval::planner::plan(sc, seed, steps, cfg, &[]).schedule
        }
    }
}

/// How many steps ahead of a burst the teacher's plans start replicas: the heuristic plan's lead
/// (`OracleConfig::lead_factor` mean cold starts), in whole control intervals.
fn teacher_lead_steps(sc: &Scenario) -> usize {
    let lead_s =
        rlscale_eval::oracle::OracleConfig::default().lead_factor * sc.profile.mean_cold_start_s();
    (lead_s / sc.file.control_interval_s).ceil().max(0.0) as usize
}

/// The causal labels of [`SimTrainEnv::with_teacher_futures`]: at step `k`, the larger of `own`'s
/// lowest target over steps `k − lead ..= k` and the highest of `others`' targets at `k`.
pub fn causal_labels(own: &[u32], others: &[Vec<u32>], lead: usize) -> Vec<u32> {
    (0..own.len())
        .map(|k| {
            let reactive = own[k.saturating_sub(lead)..=k]
                .iter()
                .copied()
                .min()
                .unwrap_or(0);
            let hedge = others
                .iter()
                .filter_map(|o| o.get(k).copied())
                .max()
                .unwrap_or(0);
            reactive.max(hedge)
        })
        .collect()
}

/// Check that every entry of `mix` loads at its extremes, so that training never meets a bad file.
pub fn check_mix(mix: &[MixEntry]) -> Result<(), String> {
    if mix.is_empty() {
        return Err("the scenario mixture is empty".into());
    }
    for (i, e) in mix.iter().enumerate() {
        if !(e.weight.is_finite() && e.weight > 0.0) {
            return Err(format!("mix[{i}].weight = {}: must be > 0", e.weight));
        }
        for (field, [lo, hi]) in [
            ("rate_scale", e.rate_scale),
            ("cold_start_scale", e.cold_start_scale),
            ("capacity_scale", e.capacity_scale),
            ("price_scale", e.price_scale),
            ("max_replicas_scale", e.max_replicas_scale),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return Err(format!(
                    "mix[{i}].{field} = [{lo}, {hi}]: needs 0 < lo <= hi"
                ));
            }
        }
        let [lo, hi] = e.rate_scale;
        let at = |j: usize| ProfileScale {
            cold_start: e.cold_start_scale[j],
            capacity: e.capacity_scale[j],
            price: e.price_scale[j],
        };
        if e.steps == 0 {
            return Err(format!("mix[{i}].steps = 0: needs at least one step"));
        }
        if !(e.min_offset_s.is_finite()
            && e.min_offset_s >= 0.0
            && e.min_offset_s <= e.max_offset_s.max(0.0))
        {
            return Err(format!(
                "mix[{i}].min_offset_s = {}: needs 0 <= min_offset_s <= max_offset_s ({})",
                e.min_offset_s, e.max_offset_s
            ));
        }
        for (offset_s, rate_scale, profile, max_replicas_scale) in [
            (e.min_offset_s, lo, at(0), e.max_replicas_scale[0]),
            (e.max_offset_s, hi, at(1), e.max_replicas_scale[1]),
        ] {
            let v = Variant {
                entry: i,
                offset_s,
                rate_scale,
                profile,
                max_replicas_scale,
            };
            load_variant(mix, &v).map_err(|err| format!("mix[{i}]: {err}"))?;
        }
    }
    Ok(())
}

impl TrainEnv for SimTrainEnv {
    fn obs_dim(&self) -> usize {
        self.n_obs
    }

    fn n_actions(&self) -> usize {
        N_ACTIONS
    }

    fn reset(&mut self, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v = self.draw(&mut rng);
        // check_mix loaded every entry at both extremes; a failure here is a file changed under us.
        let sc = load_variant(&self.mix, &v)
            .unwrap_or_else(|e| panic!("scenario changed on disk during training: {e}"));
        let sim_seed = rng.random();
        let sc = start_near_need(sc, sim_seed);
        let r = sc.file.replicas;
        self.space = ActionSpace::new(r.min, r.max);
        self.target = r.initial;
        let sc = Arc::new(sc);
        self.slo_target_pct = 100.0 * sc.slo.target;
        let steps = sc.file.max_episode_steps;
        self.plan = match self.teacher {
            None => Vec::new(),
            Some(teacher) => {
                let own = teacher_plan(teacher, &sc, sim_seed, steps);
                if self.futures == 0 {
                    own
                } else {
                    let others: Vec<Vec<u32>> = (0..self.futures)
                        .map(|_| teacher_plan(Teacher::Oracle, &sc, rng.random(), steps))
                        .collect();
                    causal_labels(&own, &others, teacher_lead_steps(&sc))
                }
            }
        };
        self.steps = 0;
        let mut env = SimEnv::new(sc);
        let (obs, info) = env.reset(Some(sim_seed));
        self.target = info.target_replicas;
        self.guard = self.rails.map(|g| Guard::new(g, r.min, r.max));
        self.last = Some(info.snapshot);
        self.env = Some(env);
        self.variant = Some(v);
        obs.0[..self.n_obs].to_vec()
    }

    fn step(&mut self, action: usize) -> Transition {
        let env = self.env.as_mut().expect("reset before step");
        // The action reads the snapshot the policy just saw, as the runtime's does.
        let proposed = match &self.last {
            Some(snap) => self.table.apply(&self.space, self.target, action, snap),
            None => self.target,
        };
        let act = match (&mut self.guard, &self.last, env.now()) {
            (Some(guard), Some(snap), Some(now)) => {
                // The decision time is the episode runner's (`SimEnv::now`), as in evaluation.
                self.notes.clear();
                let (to, _) = guard.apply(snap, now, self.target, proposed, &mut self.notes);
                Action::Replicas(to)
            }
            _ => Action::Replicas(proposed),
        };
        let unit = env.reward_unit_usd();
        let s = env
            .step(&act)
            .expect("the vector env resets ended episodes");
        self.target = s.info.target_replicas;
        self.last = Some(s.info.snapshot);
        self.steps += 1;
        Transition {
            obs: s.obs.0[..self.n_obs].to_vec(),
            reward: s.reward as f32,
            cost: Some((-s.info.cost_usd / unit) as f32),
            terminated: s.terminated,
            truncated: s.truncated,
        }
    }

    fn action_mask(&self) -> Vec<bool> {
        self.table.mask(&self.space, self.target).to_vec()
    }

    fn task(&self) -> usize {
        self.variant.as_ref().map_or(0, |v| v.entry)
    }

    fn splits_reward(&self) -> bool {
        true
    }

    fn teacher_action(&self) -> Option<usize> {
        // Never a label toward zero replicas: a hindsight plan may empty the fleet because it knows
        // that no request comes before its next scale-up, which no causal policy can know. Imitated,
        // those zeros emptied the fleet on sparse traffic (5-55 % SLO, docs/model/bar.md).
        let want = (*self.plan.get(self.steps)?).max(1);
        let snap = self.last.as_ref()?;
        let mask = self.table.mask(&self.space, self.target);
        // The valid action whose target is nearest the plan's; ties to the smallest move.
        (0..N_ACTIONS).filter(|&a| mask[a]).min_by_key(|&a| {
            let to = self.table.apply(&self.space, self.target, a, snap);
            (to.abs_diff(want), to.abs_diff(self.target))
        })
    }

    fn drop_teacher(&mut self) {
        self.teacher = None;
    }

    fn episode_stats(&self) -> Vec<(&'static str, f64)> {
        let Some(t) = self.env.as_ref().and_then(|e| e.totals()) else {
            return Vec::new();
        };
        let finished = t.completed + t.dropped;
        let attainment = if finished == 0 {
            100.0
        } else {
            100.0 * (1.0 - t.slo_violations as f64 / finished as f64)
        };
        vec![
            ("cost_usd", t.cost_usd),
            ("slo_attainment_pct", attainment),
            ("slo_target_pct", self.slo_target_pct),
            ("slo_violations", t.slo_violations as f64),
            (
                "scenario",
                self.variant.as_ref().map_or(0.0, |v| v.entry as f64),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlscale_core::FEATURE_NAMES;

    fn steady() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/steady-8b-l4-v1.toml")
    }

    /// `max_replicas_scale` moves the ceiling the action mask enforces, per episode, within its range.
    #[test]
    fn episodes_draw_a_replica_ceiling() {
        let mix: Arc<[MixEntry]> = vec![MixEntry {
            max_replicas_scale: [0.5, 3.0],
            ..MixEntry::new(steady(), 4)
        }]
        .into();
        check_mix(&mix).unwrap();
        let base = Scenario::load(&steady(), &Overrides::default())
            .unwrap()
            .file
            .replicas;
        let mut env = SimTrainEnv::new(mix);
        let mut ceilings = std::collections::BTreeSet::new();
        for seed in 0..12 {
            env.reset(seed);
            let k = env.variant().unwrap().max_replicas_scale;
            assert!((0.5..=3.0).contains(&k), "{k}");
            let max = env.space.max_replicas;
            assert_eq!(
                max,
                ((f64::from(base.max) * k).round() as u32)
                    .max(base.min + 1)
                    .max(base.initial)
            );
            // The mask enforces it: from the ceiling, no up-action is valid.
            let at_max = ActionTable::deltas().mask(&env.space, max);
            assert!(
                rlscale_core::ACTION_DELTAS
                    .iter()
                    .zip(at_max)
                    .all(|(d, ok)| *d <= 0 || !ok)
            );
            ceilings.insert(max);
        }
        assert!(ceilings.len() >= 6, "{ceilings:?}");
        // Without it, the stream and the ceiling are the scenario's.
        let mut plain = SimTrainEnv::new(vec![MixEntry::new(steady(), 4)].into());
        plain.reset(3);
        assert_eq!(plain.space.max_replicas, base.max);
    }

    /// Each episode draws its own service profile, and the observation shows it (features 19–21), so
    /// one policy can tell the services apart.
    #[test]
    fn episodes_draw_service_profiles_that_the_observation_shows() {
        let mix: Arc<[MixEntry]> = vec![MixEntry {
            cold_start_scale: [0.5, 2.0],
            capacity_scale: [0.5, 2.0],
            price_scale: [0.5, 3.0],
            ..MixEntry::new(steady(), 4)
        }]
        .into();
        check_mix(&mix).unwrap();
        let idx = |n: &str| FEATURE_NAMES.iter().position(|f| *f == n).unwrap();
        let cols = [
            idx("log_cold_start_min"),
            idx("log_capacity"),
            idx("log_usd_per_replica_hour"),
        ];
        let mut env = SimTrainEnv::new(mix.clone());
        let mut seen = Vec::new();
        for seed in 0..6 {
            let obs = env.reset(seed);
            let k = env.variant().unwrap().profile;
            for (lo_hi, x) in [
                (mix[0].cold_start_scale, k.cold_start),
                (mix[0].capacity_scale, k.capacity),
                (mix[0].price_scale, k.price),
            ] {
                assert!(x >= lo_hi[0] && x <= lo_hi[1], "{x} in {lo_hi:?}");
            }
            seen.push(cols.map(|c| obs[c]));
        }
        for c in 0..3 {
            let distinct = seen
                .iter()
                .map(|o| o[c].to_bits())
                .collect::<std::collections::BTreeSet<_>>();
            assert!(
                distinct.len() >= 5,
                "feature {} barely varies: {seen:?}",
                cols[c]
            );
        }
        // Same seed, same variant.
        let a = env.reset(3);
        assert_eq!(env.reset(3), a);
        // A bad range is refused, naming the field.
        let bad: Arc<[MixEntry]> = vec![MixEntry {
            price_scale: [2.0, 1.0],
            ..MixEntry::new(steady(), 4)
        }]
        .into();
        let e = check_mix(&bad).unwrap_err();
        assert!(e.contains("mix[0].price_scale = [2, 1]"), "{e}");
    }

    /// An episode's initial fleet is sized to the workload where it starts: diurnal-8b (mean 60
    /// req/s, ±60 % daily, peak at 18:00, 3 req/s per replica) opens with ~15 replicas at 06:00 and
    /// ~43 at 18:00, not the file's 20 at both, and the first snapshot shows them all ready.
    #[test]
    fn episodes_start_near_the_need_at_their_offset() {
        let diurnal =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/diurnal-8b-l4-v1.toml");
        let mix = vec![MixEntry::new(&diurnal, 8)];
        let at = |hour: f64, rate_scale: f64| {
            let v = Variant {
                entry: 0,
                offset_s: hour * 3600.0,
                rate_scale,
                profile: ProfileScale::default(),
                max_replicas_scale: 1.0,
            };
            let sc = load_variant(&mix, &v).unwrap();
            assert_eq!(sc.file.replicas.initial, 20, "the file's");
            let cap = sc.service_profile().capacity_rps;
            let rate = SimEnv::new(Arc::new(sc.clone())).initial_rate(5);
            let sized = start_near_need(sc, 5);
            let n = sized.file.replicas.initial;
            assert_eq!(
                n,
                (rate / (cap * START_UTILIZATION)).ceil() as u32,
                "{rate}"
            );
            (n, rate)
        };
        let (trough, r0) = at(6.0, 1.0);
        let (peak, r1) = at(18.0, 1.0);
        assert!(r1 > 2.0 * r0, "{r0} {r1}");
        assert!((10..=20).contains(&trough), "{trough}");
        assert!((35..=50).contains(&peak), "{peak}");
        // The rate scale counts too.
        let (scaled, _) = at(18.0, 1.4);
        assert!(scaled > peak, "{scaled} {peak}");
        // Through the env: the reset's snapshot shows a fleet sized to the rate it saw.
        let mut env = SimTrainEnv::new(
            vec![MixEntry {
                max_offset_s: 86_400.0,
                min_offset_s: 0.0,
                ..MixEntry::new(&diurnal, 8)
            }]
            .into(),
        );
        let mut fleets = std::collections::BTreeSet::new();
        for seed in 0..8 {
            env.reset(seed);
            let snap = env.last.unwrap();
            let need = snap.arrival_rate_1m / (snap.profile.capacity_rps * START_UTILIZATION);
            assert!(
                (f64::from(snap.ready_replicas) - need).abs() <= 0.25 * need + 2.0,
                "{snap:?}"
            );
            fleets.insert(snap.ready_replicas);
        }
        assert!(fleets.len() >= 4, "{fleets:?}");
    }

    /// With guardrails, the env applies them to the policy's actions as the runtime would.
    #[test]
    fn guardrails_apply_to_actions_in_training() {
        let mix: Arc<[MixEntry]> = vec![MixEntry::new(steady(), 8)].into();
        let rails = Guardrails {
            max_step_up: 1,
            anti_cascade: false,
            ..Guardrails::default()
        };
        let mut bare = SimTrainEnv::new(mix.clone());
        let mut guarded = SimTrainEnv::new(mix).with_guardrails(Some(rails));
        bare.reset(5);
        guarded.reset(5);
        let t0 = guarded.target;
        assert_eq!(bare.target, t0);
        let up8 = rlscale_core::ACTION_DELTAS
            .iter()
            .position(|&d| d == 8)
            .unwrap();
        bare.step(up8);
        guarded.step(up8);
        assert_eq!(bare.target, (t0 + 8).min(bare.space.max_replicas));
        assert_eq!(guarded.target, t0 + 1, "max_step_up = 1");
    }

    /// Causal labels drop the plan's lead (they rise when the plan has been up for `lead` steps) and
    /// keep the headroom the other futures' plans hold.
    #[test]
    fn causal_labels_drop_the_lead_and_keep_the_other_futures_headroom() {
        let own = [1, 1, 1, 5, 5, 5, 1, 1];
        let others = vec![vec![1; 8], vec![1, 1, 3, 3, 1, 1, 1, 1]];
        // The own plan rises at 3; with a lead of 2 its label rises at 5, and falls with it at 6.
        assert_eq!(causal_labels(&own, &[], 2), [1, 1, 1, 1, 1, 5, 1, 1]);
        assert_eq!(causal_labels(&own, &others, 2), [1, 1, 3, 3, 1, 5, 1, 1]);
        // No lead: the own plan itself.
        assert_eq!(causal_labels(&own, &[], 0), own);
    }

    /// With other futures, the labels of an episode are still a function of its seed, differ from the
    /// episode's own plan on random bursts, and never ask for more than the fleet's ceiling.
    #[test]
    fn causal_labels_are_seeded_and_hedge_random_bursts() {
        let bursty =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/bursty-8b-l4-v1.toml");
        let mix: Arc<[MixEntry]> = vec![MixEntry::new(bursty, 480)].into();
        let own = |seed| {
            let mut env = SimTrainEnv::new(mix.clone()).with_teacher(Some(Teacher::Oracle));
            env.reset(seed);
            env.plan().to_vec()
        };
        let causal = |seed| {
            let mut env = SimTrainEnv::new(mix.clone())
                .with_teacher(Some(Teacher::Oracle))
                .with_teacher_futures(2);
            env.reset(seed);
            (env.plan().to_vec(), env.space.max_replicas)
        };
        let (a, max) = causal(7);
        assert_eq!(a.len(), 480);
        assert_eq!(causal(7).0, a, "same seed, same labels");
        assert!(a.iter().all(|&n| n <= max));
        let hindsight = own(7);
        assert_ne!(a, hindsight);
        // The hedge holds more than the own plan somewhere: a burst of another future.
        assert!(a.iter().zip(&hindsight).any(|(c, h)| c > h));
    }
}
