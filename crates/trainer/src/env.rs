//! What the trainer steps: a small discrete-action environment interface, and N of them stepped in
//! parallel with automatic reset.
//!
//! The simulator's [`rlscale_core::Env`] speaks snapshots and typed infos; the learner only needs a flat
//! observation, a reward, the two end flags and the valid actions. [`TrainEnv`] is that narrow view, so
//! the same PPO code trains CartPole (to prove the learner) and the autoscaler.
//!
//! [`VecEnv`] follows Gymnasium's `SyncVectorEnv` in "same-step" autoreset mode (as cleanrl's gym 0.23
//! vector envs do): when an episode ends, the env is reset at once, the returned observation is the new
//! episode's first one, and the last observation of the finished episode is handed back separately so
//! that a truncated episode can be bootstrapped from its value.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// One step's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The observation after the step.
    pub obs: Vec<f32>,
    /// The reward of the step.
    pub reward: f32,
    /// The part of `reward` that is GPU cost, for a split critic (the rest is the SLO-violation
    /// penalty); `None` where the env's reward has no such parts.
    pub cost: Option<f32>,
    /// A terminal state of the task: no bootstrapping.
    pub terminated: bool,
    /// Cut by a time limit: bootstrap from the value of `obs`.
    pub truncated: bool,
}

/// A discrete-action environment as the learner sees it.
pub trait TrainEnv: Send {
    /// Length of an observation.
    fn obs_dim(&self) -> usize;
    /// Number of discrete actions.
    fn n_actions(&self) -> usize;
    /// Start an episode from `seed`; returns the first observation.
    fn reset(&mut self, seed: u64) -> Vec<f32>;
    /// Take `action` (an index below [`TrainEnv::n_actions`] that the mask allows).
    fn step(&mut self, action: usize) -> Transition;
    /// Which actions are valid now (all of them unless overridden).
    fn action_mask(&self) -> Vec<bool> {
        vec![true; self.n_actions()]
    }
    /// Extra per-episode figures reported when an episode ends (name, value), e.g. GPU cost.
    fn episode_stats(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Which task of a mixture the current episode belongs to (for per-task reward scaling).
    fn task(&self) -> usize {
        0
    }
    /// A teacher's action for the current state, when the env has one (the imitation term of
    /// `bc_coef` learns it). None: no label here.
    fn teacher_action(&self) -> Option<usize> {
        None
    }
    /// Stop labelling: no teacher from the next episode on (the imitation term has annealed to 0,
    /// so its plans would be made for nothing).
    fn drop_teacher(&mut self) {}
    /// Whether [`Transition::cost`] is given, so that a split critic can learn each part.
    fn splits_reward(&self) -> bool {
        false
    }
}

/// A finished episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeEnd {
    /// Which env.
    pub env: usize,
    /// Undiscounted return.
    pub ret: f64,
    /// Steps.
    pub len: u64,
    /// The env's own figures ([`TrainEnv::episode_stats`]).
    pub stats: Vec<(&'static str, f64)>,
}

/// What one vector step returns, per env.
#[derive(Debug, Clone)]
pub struct VecStep {
    /// Next observation (the new episode's first after a reset).
    pub obs: Vec<Vec<f32>>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// The GPU-cost part of each reward ([`Transition::cost`]; 0 where the env gives none).
    pub costs: Vec<f32>,
    /// Terminated flags.
    pub terminated: Vec<bool>,
    /// Truncated flags.
    pub truncated: Vec<bool>,
    /// The final observation of an episode that ended at this step.
    pub final_obs: Vec<Option<Vec<f32>>>,
    /// Episodes that ended at this step.
    pub ended: Vec<EpisodeEnd>,
}

struct Slot<E> {
    env: E,
    /// Draws each episode's seed: env `i` of a run seeded `s` always sees the same episodes.
    rng: ChaCha8Rng,
    ret: f64,
    len: u64,
}

/// N environments stepped in parallel on rayon's pool, reset automatically.
pub struct VecEnv<E> {
    slots: Vec<Slot<E>>,
}

impl<E: TrainEnv> VecEnv<E> {
    /// Wrap `envs`; env `i` draws its episode seeds from `ChaCha8Rng(seed, stream i)`.
    pub fn new(envs: Vec<E>, seed: u64) -> Self {
        let slots = envs
            .into_iter()
            .enumerate()
            .map(|(i, env)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64 + 1);
                Slot {
                    env,
                    rng,
                    ret: 0.0,
                    len: 0,
                }
            })
            .collect();
        VecEnv { slots }
    }

    /// Number of envs.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no env.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The envs, e.g. to read their state.
    pub fn envs(&self) -> impl Iterator<Item = &E> {
        self.slots.iter().map(|s| &s.env)
    }

    /// Reset every env; returns the first observations.
    pub fn reset(&mut self) -> Vec<Vec<f32>> {
        self.slots
            .par_iter_mut()
            .map(|s| {
                s.ret = 0.0;
                s.len = 0;
                let seed = s.rng.random();
                s.env.reset(seed)
            })
            .collect()
    }

    /// Each env's episode-seed generator (for checkpoints).
    pub fn rngs(&self) -> Vec<ChaCha8Rng> {
        self.slots.iter().map(|s| s.rng.clone()).collect()
    }

    /// Restore the episode-seed generators and start new episodes from them (after a resume).
    pub fn restore(&mut self, rngs: Vec<ChaCha8Rng>) -> Vec<Vec<f32>> {
        for (s, r) in self.slots.iter_mut().zip(rngs) {
            s.rng = r;
        }
        self.reset()
    }

    /// The task of every env's current episode.
    pub fn tasks(&self) -> Vec<usize> {
        self.slots.iter().map(|s| s.env.task()).collect()
    }

    /// The teacher's action for every env's current state (see [`TrainEnv::teacher_action`]).
    pub fn teacher_actions(&self) -> Vec<Option<usize>> {
        self.slots.iter().map(|s| s.env.teacher_action()).collect()
    }

    /// Stop every env's teacher (see [`TrainEnv::drop_teacher`]).
    pub fn drop_teacher(&mut self) {
        for s in &mut self.slots {
            s.env.drop_teacher();
        }
    }

    /// The action masks of every env.
    pub fn masks(&self) -> Vec<Vec<bool>> {
        self.slots.iter().map(|s| s.env.action_mask()).collect()
    }

    /// Step every env with its action, resetting those whose episode ended.
    pub fn step(&mut self, actions: &[usize]) -> VecStep {
        assert_eq!(actions.len(), self.slots.len(), "one action per env");
        type Out = (Transition, Option<Vec<f32>>, Option<EpisodeEnd>);
        let outs: Vec<Out> = self
            .slots
            .par_iter_mut()
            .zip(actions.par_iter())
            .enumerate()
            .map(|(i, (s, &a))| {
                let mut t = s.env.step(a);
                s.ret += f64::from(t.reward);
                s.len += 1;
                if t.terminated || t.truncated {
                    let end = EpisodeEnd {
                        env: i,
                        ret: s.ret,
                        len: s.len,
                        stats: s.env.episode_stats(),
                    };
                    s.ret = 0.0;
                    s.len = 0;
                    let seed = s.rng.random();
                    let first = s.env.reset(seed);
                    let last = std::mem::replace(&mut t.obs, first);
                    (t, Some(last), Some(end))
                } else {
                    (t, None, None)
                }
            })
            .collect();
        let mut v = VecStep {
            obs: Vec::with_capacity(outs.len()),
            rewards: Vec::with_capacity(outs.len()),
            costs: Vec::with_capacity(outs.len()),
            terminated: Vec::with_capacity(outs.len()),
            truncated: Vec::with_capacity(outs.len()),
            final_obs: Vec::with_capacity(outs.len()),
            ended: Vec::new(),
        };
        for (t, last, end) in outs {
            v.obs.push(t.obs);
            v.rewards.push(t.reward);
            v.costs.push(t.cost.unwrap_or(0.0));
            v.terminated.push(t.terminated);
            v.truncated.push(t.truncated);
            v.final_obs.push(last);
            v.ended.extend(end);
        }
        v
    }
}
