//! The autoscaling simulator as the learner sees it: one [`TrainEnv`] over a mixture of scenarios.
//!
//! Each episode draws one entry of the mixture, a window offset and a rate scale from the episode seed,
//! loads that variant of the scenario, and runs it for the entry's episode length. Observations are
//! `rlscale_core::features` of the simulator's snapshot (the ONE feature function the controller also
//! uses), actions index `ACTION_DELTAS`, masked at the replica bounds.

use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlscale_core::{Action, ActionSpace, Env, N_ACTIONS, N_FEATURES};
use rlscale_sim::{Overrides, Scenario, SimEnv};
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
    /// Episodes start at a uniform offset in `[0, max_offset_s]` on the workload's timeline.
    #[serde(default)]
    pub max_offset_s: f64,
    /// Arrival rates are multiplied by a log-uniform factor in `[rate_scale[0], rate_scale[1]]`.
    #[serde(default = "unit_range")]
    pub rate_scale: [f64; 2],
}

fn one() -> f64 {
    1.0
}

fn unit_range() -> [f64; 2] {
    [1.0, 1.0]
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
}

/// The simulator over a scenario mixture.
pub struct SimTrainEnv {
    mix: Arc<[MixEntry]>,
    env: Option<SimEnv>,
    space: ActionSpace,
    target: u32,
    variant: Option<Variant>,
}

impl SimTrainEnv {
    /// An env over `mix`; every entry must load (see [`check_mix`]).
    pub fn new(mix: Arc<[MixEntry]>) -> Self {
        SimTrainEnv {
            mix,
            env: None,
            space: ActionSpace::new(0, 0),
            target: 0,
            variant: None,
        }
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
        let offset_s = if e.max_offset_s > 0.0 {
            // Whole control intervals, so the clock stays on the 15 s grid.
            (rng.random::<f64>() * e.max_offset_s / 15.0).floor() * 15.0
        } else {
            0.0
        };
        let [lo, hi] = e.rate_scale;
        let rate_scale = (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp();
        Variant {
            entry,
            offset_s,
            rate_scale,
        }
    }
}

/// Load the variant `v` of `mix`.
pub fn load_variant(mix: &[MixEntry], v: &Variant) -> Result<Scenario, rlscale_sim::Error> {
    let e = &mix[v.entry];
    Scenario::load(
        &e.scenario,
        &Overrides {
            max_episode_steps: Some(e.steps),
            window_offset_s: Some(v.offset_s),
            rate_scale: Some(v.rate_scale),
            ..Overrides::default()
        },
    )
}

/// Check that every entry of `mix` loads at its extremes, so that training never meets a bad file.
pub fn check_mix(mix: &[MixEntry]) -> Result<(), String> {
    if mix.is_empty() {
        return Err("the scenario mixture is empty".into());
    }
    for (i, e) in mix.iter().enumerate() {
        let [lo, hi] = e.rate_scale;
        if !(e.weight.is_finite() && e.weight > 0.0) {
            return Err(format!("mix[{i}].weight = {}: must be > 0", e.weight));
        }
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(format!(
                "mix[{i}].rate_scale = [{lo}, {hi}]: needs 0 < lo <= hi"
            ));
        }
        if e.steps == 0 {
            return Err(format!("mix[{i}].steps = 0: needs at least one step"));
        }
        for (offset_s, rate_scale) in [(0.0, lo), (e.max_offset_s, hi)] {
            let v = Variant {
                entry: i,
                offset_s,
                rate_scale,
            };
            load_variant(mix, &v).map_err(|err| format!("mix[{i}]: {err}"))?;
        }
    }
    Ok(())
}

impl TrainEnv for SimTrainEnv {
    fn obs_dim(&self) -> usize {
        N_FEATURES
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
        let r = sc.file.replicas;
        self.space = ActionSpace::new(r.min, r.max);
        self.target = r.initial;
        let mut env = SimEnv::new(Arc::new(sc));
        let (obs, info) = env.reset(Some(rng.random()));
        self.target = info.target_replicas;
        self.env = Some(env);
        self.variant = Some(v);
        obs.0.to_vec()
    }

    fn step(&mut self, action: usize) -> Transition {
        let env = self.env.as_mut().expect("reset before step");
        let s = env
            .step(&Action::Index(action))
            .expect("the vector env resets ended episodes");
        self.target = s.info.target_replicas;
        Transition {
            obs: s.obs.0.to_vec(),
            reward: s.reward as f32,
            terminated: s.terminated,
            truncated: s.truncated,
        }
    }

    fn action_mask(&self) -> Vec<bool> {
        self.space.mask(self.target).to_vec()
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
            ("slo_violations", t.slo_violations as f64),
            (
                "scenario",
                self.variant.as_ref().map_or(0.0, |v| v.entry as f64),
            ),
        ]
    }
}
