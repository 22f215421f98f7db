//! PPO on CartPole-v1 with cleanrl's `ppo.py` defaults: the learner's sanity check.
//!
//! `cargo run --release -p rlscale-trainer --example cartpole [-- SEED [TOTAL_TIMESTEPS]]`
//!
//! Prints the mean episodic return every 10 iterations, then evaluates the greedy policy on 100 fresh
//! episodes (seeds never used in training). Gymnasium's "solved" threshold for v1 is 475.

use rlscale_trainer::cartpole::CartPole;
use rlscale_trainer::env::TrainEnv;
use rlscale_trainer::ppo::{Ppo, PpoConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args
        .next()
        .map_or(1, |s| s.parse().expect("SEED is a number"));
    let total: u64 = args
        .next()
        .map_or(500_000, |s| s.parse().expect("TOTAL_TIMESTEPS is a number"));
    let cfg = PpoConfig {
        seed,
        total_timesteps: total,
        ..PpoConfig::default()
    };
    let envs = (0..cfg.num_envs).map(|_| CartPole::default()).collect();
    let mut ppo = Ppo::new(cfg, envs).expect("valid config");
    let started = std::time::Instant::now();
    let mut recent: Vec<f64> = Vec::new();
    let mut update_s = 0.0;
    while !ppo.finished() {
        let s = ppo.iterate();
        update_s += s.update_s;
        recent.extend(s.episodes.iter().map(|e| e.ret));
        if s.iteration % 10 == 0 {
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            println!(
                "iter {:4}  step {:7}  episodic_return {:6.1} ({} episodes)  SPS {:6.0}  approx_kl {:.4}  ev {:.3}",
                s.iteration,
                s.global_step,
                mean,
                recent.len(),
                s.sps,
                s.approx_kl,
                s.explained_variance
            );
            recent.clear();
        }
    }
    let train_s = started.elapsed().as_secs_f64();
    // Greedy evaluation on 100 episodes with seeds far from the training streams.
    let mut returns = Vec::new();
    for k in 0..100u64 {
        let mut env = CartPole::default();
        let mut obs = env.reset(1_000_000 + k);
        let mut ret = 0.0;
        loop {
            let a = ppo.act_greedy(std::slice::from_ref(&obs), &[vec![true, true]])[0];
            let t = env.step(a);
            ret += f64::from(t.reward);
            obs = t.obs;
            if t.terminated || t.truncated {
                break;
            }
        }
        returns.push(ret);
    }
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let min = returns.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "seed {seed}: {total} steps in {train_s:.1} s ({:.0} SPS, {update_s:.1} s in updates); greedy mean return over 100 episodes {mean:.1} (min {min})",
        total as f64 / train_s
    );
}
