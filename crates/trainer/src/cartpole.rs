//! CartPole-v1, reimplemented to Gymnasium's spec (`gymnasium/envs/classic_control/cartpole.py`), to
//! prove the learner independently of the autoscaling simulator.
//!
//! * State `(x, ẋ, θ, θ̇)`, each reset uniformly in `[-0.05, 0.05]`.
//! * Actions: 0 pushes left, 1 pushes right, with a force of 10 N.
//! * Euler integration with `τ = 0.02 s`; gravity 9.8, cart 1.0 kg, pole 0.1 kg, half-length 0.5 m.
//! * Reward 1 on every step, the terminating one included.
//! * Terminated when `|x| > 2.4` or `|θ| > 12°`; truncated at 500 steps (`TimeLimit`, v1).
//!
//! Gymnasium computes in f64 and returns f32 observations; so does this.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{TrainEnv, Transition};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
/// CartPole-v1's `max_episode_steps`.
pub const MAX_EPISODE_STEPS: u64 = 500;

/// The CartPole-v1 environment.
#[derive(Debug, Clone)]
pub struct CartPole {
    state: [f64; 4],
    steps: u64,
    rng: ChaCha8Rng,
}

impl Default for CartPole {
    fn default() -> Self {
        CartPole {
            state: [0.0; 4],
            steps: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }
}

impl CartPole {
    fn obs(&self) -> Vec<f32> {
        self.state.iter().map(|&v| v as f32).collect()
    }

    /// The physical state `(x, ẋ, θ, θ̇)`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Set the physical state (for tests against reference trajectories).
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.steps = 0;
    }
}

impl TrainEnv for CartPole {
    fn obs_dim(&self) -> usize {
        4
    }

    fn n_actions(&self) -> usize {
        2
    }

    fn reset(&mut self, seed: u64) -> Vec<f32> {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        for v in &mut self.state {
            *v = self.rng.random_range(-0.05..0.05);
        }
        self.steps = 0;
        self.obs()
    }

    fn step(&mut self, action: usize) -> Transition {
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        let (sin, cos) = theta.sin_cos();
        let temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        // Euler, in Gymnasium's order: positions from the old velocities.
        self.state = [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ];
        self.steps += 1;
        let [x, _, theta, _] = self.state;
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        Transition {
            obs: self.obs(),
            reward: 1.0,
            cost: None,
            terminated,
            truncated: !terminated && self.steps >= MAX_EPISODE_STEPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_matches_gymnasium() {
        // Gymnasium 1.4.0, run once (pip install gymnasium):
        //   env = gym.make("CartPole-v1"); env.reset(seed=0)
        //   env.unwrapped.state = np.array([0.01, 0.02, 0.03, 0.04]); env.step(1)
        //   env.unwrapped.state.tolist()
        let want = [
            0.0104,
            0.21467919574755523,
            0.030799999999999998,
            -0.2430687179600081,
        ];
        let mut env = CartPole::default();
        env.set_state([0.01, 0.02, 0.03, 0.04]);
        let t = env.step(1);
        for (got, want) in env.state().iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        assert_eq!(t.reward, 1.0);
        assert!(!t.terminated && !t.truncated);
    }

    #[test]
    fn terminates_past_the_thresholds_and_truncates_at_500() {
        let mut env = CartPole::default();
        env.set_state([2.399, 1.0, 0.0, 0.0]);
        assert!(env.step(1).terminated);
        env.set_state([0.0, 0.0, 0.2094, 0.5]);
        assert!(env.step(0).terminated);
        // Balanced by a hand-made controller: push toward the pole's lean.
        let mut env = CartPole::default();
        let mut obs = env.reset(7);
        for k in 1..=MAX_EPISODE_STEPS {
            let a = usize::from(obs[2] + 0.5 * obs[3] > 0.0);
            let t = env.step(a);
            assert!(!t.terminated, "fell at step {k}");
            assert_eq!(t.truncated, k == MAX_EPISODE_STEPS);
            obs = t.obs;
        }
    }

    #[test]
    fn same_seed_same_start() {
        let (mut a, mut b) = (CartPole::default(), CartPole::default());
        assert_eq!(a.reset(3), b.reset(3));
        assert_ne!(a.reset(3), b.reset(4));
        assert!(a.reset(9).iter().all(|v| v.abs() <= 0.05));
    }
}
