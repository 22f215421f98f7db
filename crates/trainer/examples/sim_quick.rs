//! A quick PPO run on one scenario, to see the learner move on the autoscaling task.
//!
//! `cargo run --release -p rlscale-trainer --example sim_quick -- SCENARIO.toml [STEPS_PER_EPISODE] [TOTAL]`

use std::sync::Arc;

use rlscale_trainer::ppo::{Ppo, PpoConfig};
use rlscale_trainer::simenv::{MixEntry, SimTrainEnv, check_mix};

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().expect("SCENARIO.toml");
    let steps: u64 = args.next().map_or(960, |s| s.parse().unwrap());
    let total: u64 = args.next().map_or(400_000, |s| s.parse().unwrap());
    let mix: Arc<[MixEntry]> = vec![MixEntry {
        max_offset_s: 86_400.0,
        min_offset_s: 0.0,
        rate_scale: [0.7, 1.4],
        ..MixEntry::new(scenario, steps)
    }]
    .into();
    check_mix(&mix).expect("mixture loads");
    let cfg = PpoConfig {
        total_timesteps: total,
        num_envs: 8,
        num_steps: 256,
        num_minibatches: 8,
        update_epochs: 4,
        learning_rate: 3e-4,
        gamma: 0.99,
        ent_coef: 0.01,
        norm_obs: true,
        norm_reward: true,
        ..PpoConfig::default()
    };
    let envs = (0..cfg.num_envs)
        .map(|_| SimTrainEnv::new(mix.clone()))
        .collect();
    let mut ppo = Ppo::new(cfg, envs).expect("config");
    let mut eps = Vec::new();
    while !ppo.finished() {
        let s = ppo.iterate();
        eps.extend(s.episodes);
        if s.iteration % 10 == 0 && !eps.is_empty() {
            let n = eps.len() as f64;
            let stat = |k: &str| {
                eps.iter()
                    .map(|e| e.stats.iter().find(|(n, _)| *n == k).map_or(0.0, |x| x.1))
                    .sum::<f64>()
                    / n
            };
            println!(
                "iter {:4} step {:8} eps {:3} return {:9.1} cost ${:7.2} SLO {:6.2} %  SPS {:5.0} upd {:.2}s kl {:.4} ent {:.3} ev {:.2}",
                s.iteration,
                s.global_step,
                eps.len(),
                eps.iter().map(|e| e.ret).sum::<f64>() / n,
                stat("cost_usd"),
                stat("slo_attainment_pct"),
                s.sps,
                s.update_s,
                s.approx_kl,
                s.entropy,
                s.explained_variance
            );
            eps.clear();
        }
    }
}
