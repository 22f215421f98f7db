//! Running normalisation, as Gymnasium's `NormalizeObservation` and `NormalizeReward` wrappers (which
//! cleanrl's continuous-action PPO uses): Chan et al.'s parallel mean/variance update.
//!
//! Observations: `clip((x − mean) / sqrt(var + 1e-8), −10, 10)`, with the statistics updated from every
//! observation the rollout sees and frozen at export (the model file ships them).
//!
//! Rewards: divided by the standard deviation of the running discounted return (not centred), then
//! clipped to ±10. The autoscaling reward is a cost in dollars whose scale varies by a factor of
//! hundreds across services; scaling keeps the value targets near unit size whatever the service.

use serde::{Deserialize, Serialize};

/// `clip` bound of normalised observations and rewards.
pub const CLIP: f64 = 10.0;
/// Added to the variance before the square root.
pub const EPSILON: f64 = 1e-8;

/// Running mean and variance of vectors of a fixed length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Per-component mean.
    pub mean: Vec<f64>,
    /// Per-component (population) variance.
    pub var: Vec<f64>,
    /// Samples seen (starts at 1e-4 as Gymnasium's does, so the first update dominates).
    pub count: f64,
}

impl RunningMeanStd {
    /// Zero mean, unit variance, for vectors of length `n`.
    pub fn new(n: usize) -> Self {
        RunningMeanStd {
            mean: vec![0.0; n],
            var: vec![1.0; n],
            count: 1e-4,
        }
    }

    /// Fold a batch of vectors in.
    pub fn update(&mut self, batch: &[Vec<f32>]) {
        if batch.is_empty() {
            return;
        }
        let n = self.mean.len();
        let b = batch.len() as f64;
        let mut bmean = vec![0.0; n];
        for x in batch {
            for (m, &v) in bmean.iter_mut().zip(x) {
                *m += f64::from(v) / b;
            }
        }
        let mut bvar = vec![0.0; n];
        for x in batch {
            for ((s, &v), &m) in bvar.iter_mut().zip(x).zip(&bmean) {
                let d = f64::from(v) - m;
                *s += d * d / b;
            }
        }
        let tot = self.count + b;
        for i in 0..n {
            let delta = bmean[i] - self.mean[i];
            let m2 = self.var[i] * self.count + bvar[i] * b + delta * delta * self.count * b / tot;
            self.mean[i] += delta * b / tot;
            self.var[i] = m2 / tot;
        }
        self.count = tot;
    }

    /// Normalise one vector.
    pub fn normalize(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.var)
            .map(|((&v, &m), &s)| {
                ((f64::from(v) - m) / (s + EPSILON).sqrt()).clamp(-CLIP, CLIP) as f32
            })
            .collect()
    }
}

/// Gymnasium's `NormalizeReward`: scale each env's rewards by the std of its discounted return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    /// Running statistics of the discounted return.
    pub stats: RunningMeanStd,
    /// Each env's discounted return so far.
    pub returns: Vec<f64>,
    /// The discount.
    pub gamma: f64,
    /// Per-task statistics of the discounted return ([`RewardScaler::scale_per_task`]), grown on
    /// demand.
    #[serde(default)]
    pub task_stats: Vec<RunningMeanStd>,
    /// Most samples the statistics weigh ([`RewardScaler::with_horizon`]); None: all.
    #[serde(default)]
    pub horizon: Option<u64>,
}

impl RewardScaler {
    /// For `n_envs` envs.
    pub fn new(n_envs: usize, gamma: f64) -> Self {
        RewardScaler {
            stats: RunningMeanStd::new(1),
            returns: vec![0.0; n_envs],
            gamma,
            task_stats: Vec::new(),
            horizon: None,
        }
    }

    /// Weigh at most `horizon` samples: before each update the statistics' count is capped there, so
    /// a sample's weight decays by `h / (h + b)` with every batch of `b` after it, an exponential
    /// moving average with a time constant of about `h` samples. The scale then follows the
    /// policy's current returns instead of remembering the untrained policy's forever.
    pub fn with_horizon(mut self, horizon: Option<u64>) -> Self {
        self.horizon = horizon;
        self
    }

    fn forget(&self, stats: &mut RunningMeanStd) {
        if let Some(h) = self.horizon {
            stats.count = stats.count.min(h as f64);
        }
    }

    /// As [`RewardScaler::scale`], but each env's reward is divided by the return std of its own
    /// task (`tasks[i]`, the mixture entry of env `i`'s episode), so that a task whose returns are a
    /// thousand times larger does not shrink every other task's rewards to nothing.
    pub fn scale_per_task(&mut self, rewards: &mut [f32], done: &[bool], tasks: &[usize]) {
        for (i, (g, r)) in self.returns.iter_mut().zip(rewards.iter_mut()).enumerate() {
            *g = *g * self.gamma + f64::from(*r);
            let t = tasks.get(i).copied().unwrap_or(0);
            if self.task_stats.len() <= t {
                self.task_stats.resize(t + 1, RunningMeanStd::new(1));
            }
            if let Some(h) = self.horizon {
                let c = &mut self.task_stats[t].count;
                *c = c.min(h as f64);
            }
            let st = &mut self.task_stats[t];
            st.update(&[vec![*g as f32]]);
            let sd = (st.var[0] + EPSILON).sqrt();
            *r = (f64::from(*r) / sd).clamp(-CLIP, CLIP) as f32;
        }
        for (g, &d) in self.returns.iter_mut().zip(done) {
            if d {
                *g = 0.0;
            }
        }
    }

    /// The current return std the rewards are divided by (of the shared statistics).
    pub fn std(&self) -> f64 {
        (self.stats.var[0] + EPSILON).sqrt()
    }

    /// Scale one vector step's rewards in place; `done[i]` restarts env `i`'s return.
    pub fn scale(&mut self, rewards: &mut [f32], done: &[bool]) {
        for (g, &r) in self.returns.iter_mut().zip(rewards.iter()) {
            *g = *g * self.gamma + f64::from(r);
        }
        let batch: Vec<Vec<f32>> = self.returns.iter().map(|&g| vec![g as f32]).collect();
        let mut stats = std::mem::replace(&mut self.stats, RunningMeanStd::new(1));
        self.forget(&mut stats);
        stats.update(&batch);
        self.stats = stats;
        let sd = self.std();
        for r in rewards.iter_mut() {
            *r = (f64::from(*r) / sd).clamp(-CLIP, CLIP) as f32;
        }
        for (g, &d) in self.returns.iter_mut().zip(done) {
            if d {
                *g = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tasks whose rewards differ by 1000×: one shared scale leaves the small task's rewards
    /// ~1000× smaller than the large one's; per-task scales bring both to the same order.
    #[test]
    fn per_task_scaling_evens_out_tasks_of_different_magnitude() {
        let run = |per_task: bool| {
            let mut s = RewardScaler::new(2, 0.9);
            let mut last = [0.0f64; 2];
            for k in 0..2000 {
                let wobble = if k % 2 == 0 { 1.0 } else { 3.0 };
                let mut r = [-wobble as f32, -1000.0 * wobble as f32];
                let done = [k % 50 == 49; 2];
                if per_task {
                    s.scale_per_task(&mut r, &done, &[0, 1]);
                } else {
                    s.scale(&mut r, &done);
                }
                last = [f64::from(r[0]), f64::from(r[1])];
            }
            (last, s)
        };
        let (shared, _) = run(false);
        assert!(shared[1] / shared[0] > 500.0, "{shared:?}");
        let (per, s) = run(true);
        let ratio = per[1] / per[0];
        assert!((0.5..2.0).contains(&ratio), "{per:?}");
        assert_eq!(s.task_stats.len(), 2);
    }

    #[test]
    fn batched_updates_equal_the_direct_mean_and_variance() {
        let xs: Vec<Vec<f32>> = (0..100)
            .map(|i| vec![i as f32, (i * i) as f32 * 0.01])
            .collect();
        let mut rms = RunningMeanStd::new(2);
        for chunk in xs.chunks(7) {
            rms.update(chunk);
        }
        for k in 0..2 {
            let n = xs.len() as f64;
            let mean = xs.iter().map(|x| f64::from(x[k])).sum::<f64>() / n;
            let var = xs
                .iter()
                .map(|x| (f64::from(x[k]) - mean).powi(2))
                .sum::<f64>()
                / n;
            // The 1e-4 prior count moves the figures by about 1e-6 relative.
            assert!(
                (rms.mean[k] - mean).abs() < 1e-4 * mean.abs().max(1.0),
                "{k}"
            );
            assert!((rms.var[k] - var).abs() < 1e-4 * var, "{k}");
        }
        let z = rms.normalize(&[49.5, 1e9]);
        assert!(z[0].abs() < 1e-3);
        assert_eq!(z[1], CLIP as f32);
    }

    /// With a horizon the scale forgets: after 1000 rewards of ±100 and 4000 of ±1, the cumulative
    /// scale still remembers the ±100 era (std ≈ 45); a 200-sample horizon has forgotten it.
    #[test]
    fn a_horizon_forgets_early_returns() {
        let run = |horizon: Option<u64>| {
            let mut s = RewardScaler::new(1, 0.0).with_horizon(horizon);
            let mut last = 0.0;
            for k in 0..5000 {
                let a = if k < 1000 { 100.0 } else { 1.0 };
                let mut r = [if k % 2 == 0 { a } else { -a }];
                s.scale(&mut r, &[false]);
                last = r[0];
            }
            last.abs()
        };
        let cumulative = run(None);
        assert!(cumulative < 0.05, "{cumulative}");
        let windowed = run(Some(200));
        assert!((windowed - 1.0).abs() < 0.05, "{windowed}");
        let per_task = {
            let mut s = RewardScaler::new(1, 0.0).with_horizon(Some(200));
            let mut last = 0.0;
            for k in 0..5000 {
                let a = if k < 1000 { 100.0 } else { 1.0 };
                let mut r = [if k % 2 == 0 { a } else { -a }];
                s.scale_per_task(&mut r, &[false], &[0]);
                last = r[0];
            }
            last.abs()
        };
        assert!((per_task - 1.0).abs() < 0.05, "{per_task}");
    }

    #[test]
    fn rewards_are_scaled_by_the_return_std() {
        let mut s = RewardScaler::new(1, 0.0);
        // With gamma 0 the "return" is the reward itself: ±5 alternating has std 5.
        let mut last = 0.0;
        for k in 0..1000 {
            let mut r = [if k % 2 == 0 { 5.0 } else { -5.0 }];
            s.scale(&mut r, &[false]);
            last = r[0];
        }
        assert!((last.abs() - 1.0).abs() < 0.01, "{last}");
    }
}
