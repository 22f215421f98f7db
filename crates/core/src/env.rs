//! A Gymnasium-like environment interface, and its conformance check.
//!
//! Shapes follow Gymnasium's `Env.reset`/`Env.step`: `reset(seed)` reseeds when given a seed and continues
//! the environment's own RNG otherwise; `step` reports `terminated` and `truncated` separately. Autoscaling
//! episodes end on a time limit, which is a truncation: a trainer must bootstrap from the value estimate
//! there (cleanrl's `ppo.py` merges the two flags; we do not).

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionSpace};
use crate::features::{ObsSpace, Observation};
use crate::snapshot::MetricsSnapshot;
use crate::time::SimTime;

/// Errors an environment returns instead of a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// `step` was called before the first `reset` (Gymnasium's `OrderEnforcing`).
    #[error("step() called before reset(): call reset(seed) first")]
    ResetNeeded,
    /// `step` was called after the episode ended.
    #[error("step() called after the episode ended at step {0}: call reset() to start a new one")]
    EpisodeOver(u64),
}

/// What happened during one control step, typed (not a map) so that metrics and goldens can read it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Steps taken in this episode so far (0 after reset).
    pub step: u64,
    /// Time at the end of the step.
    pub time: SimTime,
    /// Replica count the action asked for (after clamping to `[min, max]`).
    pub target_replicas: u32,
    /// Whether this step's action changed the target replica count (a scale event).
    pub scaled: bool,
    /// Ready replicas at the end of the step.
    pub ready: u32,
    /// Starting replicas (pending, provisioning, loading) at the end of the step.
    pub starting: u32,
    /// Replicas draining their in-flight requests at the end of the step.
    pub draining: u32,
    /// Requests that arrived during the step.
    pub arrivals: u64,
    /// Requests that completed during the step.
    pub completed: u64,
    /// Requests dropped (timed out in the queue) during the step.
    pub dropped: u64,
    /// SLO violations during the step: completed late, or dropped.
    pub slo_violations: u64,
    /// Requests waiting at the end of the step.
    pub queue_len: u64,
    /// Requests being served at the end of the step.
    pub running: u64,
    /// Replicas that finished a cold start (became ready) during the step.
    pub cold_starts: u32,
    /// GPU-seconds billed during the step.
    pub gpu_seconds: f64,
    /// Dollars billed during the step.
    pub cost_usd: f64,
    /// What the cluster's metrics say at the end of the step: the input of rule-based policies, and the
    /// source of the observation.
    pub snapshot: MetricsSnapshot,
}

/// The result of one `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<O> {
    /// Observation after the step.
    pub obs: O,
    /// Reward of the step.
    pub reward: f64,
    /// The episode reached a terminal state of the task (never, for autoscaling).
    pub terminated: bool,
    /// The episode was cut by its time limit.
    pub truncated: bool,
    /// What happened.
    pub info: StepInfo,
}

/// A Gymnasium-like environment.
pub trait Env {
    /// What the agent observes.
    type Obs;
    /// What the agent does.
    type Action;

    /// Start a new episode. `Some(seed)` reseeds every random stream; `None` continues the env's own RNG
    /// (drawing the next episode's seed from it).
    fn reset(&mut self, seed: Option<u64>) -> (Self::Obs, StepInfo);

    /// Advance one control interval.
    ///
    /// # Errors
    /// [`EnvError::ResetNeeded`] before the first reset, [`EnvError::EpisodeOver`] after the episode ended.
    fn step(&mut self, action: &Self::Action) -> Result<Step<Self::Obs>, EnvError>;

    /// The observation space.
    fn observation_space(&self) -> &ObsSpace;

    /// The action space.
    fn action_space(&self) -> &ActionSpace;

    /// Steps after which an episode is truncated.
    fn max_episode_steps(&self) -> u64;
}

/// A tiny deterministic generator for the conformance check, so that `core` needs no RNG crate.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Gymnasium-style conformance check (`gymnasium/utils/env_checker.py`), run on two envs from `make`:
///
/// 1. `step` before `reset` is refused with [`EnvError::ResetNeeded`];
/// 2. the same seed gives the same first observation, and the same actions give the same trajectory
///    (observations, rewards, flags, infos) step by step;
/// 3. every observation stays inside [`Env::observation_space`];
/// 4. truncation happens exactly at [`Env::max_episode_steps`], never `terminated` before it, and stepping
///    after the end is refused.
///
/// Actions are drawn from the valid (masked) actions with a fixed generator seeded by `seed`.
///
/// # Errors
/// A description of the first failed check.
pub fn check_env<E, F>(make: F, seed: u64) -> Result<(), String>
where
    E: Env<Obs = Observation, Action = Action>,
    F: Fn() -> E,
{
    let mut a = make();
    let mut b = make();
    match a.step(&Action::Hold) {
        Err(EnvError::ResetNeeded) => {}
        other => {
            return Err(format!(
                "step before reset must fail with ResetNeeded, got {other:?}"
            ));
        }
    }
    let space = a.observation_space().clone();
    let (oa, info) = a.reset(Some(seed));
    let (ob, _) = b.reset(Some(seed));
    if oa != ob {
        return Err(format!(
            "same seed {seed} gave different first observations:\n{oa:?}\n{ob:?}"
        ));
    }
    if let Some((i, name)) = space.violation(&oa) {
        return Err(format!(
            "first observation out of space at feature {i} ({name}): {oa:?}"
        ));
    }
    let max = a.max_episode_steps();
    let mut picker = SplitMix(seed);
    let mut current = info.target_replicas;
    for step in 1..=max {
        // Hold, or a random count within the bounds (and now and then one outside, clamped).
        let bounds = *a.action_space();
        let span = u64::from(bounds.max_replicas - bounds.min_replicas) + 3;
        let action = match picker.next() % (span + 1) {
            0 => Action::Hold,
            k => Action::Replicas((u64::from(bounds.min_replicas) + k - 1) as u32),
        };
        let sa = a.step(&action).map_err(|e| format!("step {step}: {e}"))?;
        let sb = b.step(&action).map_err(|e| format!("step {step}: {e}"))?;
        let want = bounds.apply(current, action);
        if sa.info.target_replicas != want {
            return Err(format!(
                "step {step}: {action:?} from {current} gave target {}, expected {want} (clamped to [{}, {}])",
                sa.info.target_replicas, bounds.min_replicas, bounds.max_replicas
            ));
        }
        current = sa.info.target_replicas;
        if sa.obs != sb.obs || sa.reward.to_bits() != sb.reward.to_bits() || sa.info != sb.info {
            return Err(format!("same seed and actions diverged at step {step}"));
        }
        if sa.terminated != sb.terminated || sa.truncated != sb.truncated {
            return Err(format!("episode flags diverged at step {step}"));
        }
        if let Some((i, name)) = space.violation(&sa.obs) {
            return Err(format!(
                "observation out of space at step {step}, feature {i} ({name}): {:?}",
                sa.obs
            ));
        }
        if !sa.reward.is_finite() {
            return Err(format!("non-finite reward {} at step {step}", sa.reward));
        }
        if sa.terminated {
            return Err(format!(
                "autoscaling episodes end by truncation, but step {step} terminated"
            ));
        }
        if sa.truncated != (step == max) {
            return Err(format!(
                "truncated = {} at step {step} of {max}",
                sa.truncated
            ));
        }
        if sa.info.step != step {
            return Err(format!("info.step = {} at step {step}", sa.info.step));
        }
    }
    match a.step(&Action::Hold) {
        Err(EnvError::EpisodeOver(_)) => {}
        other => {
            return Err(format!(
                "step after truncation must fail with EpisodeOver, got {other:?}"
            ));
        }
    }
    // reset(None) continues the env's RNG: two envs with the same history stay equal.
    let (na, _) = a.reset(None);
    let (nb, _) = b.reset(None);
    if na != nb {
        return Err("reset(None) after the same history gave different observations".into());
    }
    Ok(())
}
