//! The split critic (`ppo.split_critic`): the reward's GPU-cost and SLO-violation parts, each learnt
//! by its own value head on its own return scale, and exported as one value.

use std::path::PathBuf;
use std::sync::Arc;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlscale_core::N_FEATURES;
use rlscale_runtime::ModelFile;
use rlscale_trainer::env::TrainEnv;
use rlscale_trainer::ppo::{Ppo, PpoConfig};
use rlscale_trainer::run::export;
use rlscale_trainer::simenv::{MixEntry, SimTrainEnv};

fn mix(file: &str, steps: u64) -> Arc<[MixEntry]> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../envs")
        .join(file);
    vec![MixEntry {
        max_offset_s: 40_000.0,
        min_offset_s: 0.0,
        ..MixEntry::new(path, steps)
    }]
    .into()
}

fn stat(stats: &[(&'static str, f64)], k: &str) -> f64 {
    stats.iter().find(|(n, _)| *n == k).expect(k).1
}

/// The cost part is the fleet's bill in replica-intervals, and what is left of the reward is the
/// penalty of the episode's violations: on steady-8b ($0.80 per replica-hour, $0.01 a violation,
/// 15 s steps) each violation is −3.0. Scaling down to one replica makes violations happen.
#[test]
fn the_parts_add_up_to_the_reward_and_the_rest_is_the_violations() {
    let mut env = SimTrainEnv::new(mix("steady-8b-l4-v1.toml", 200));
    env.reset(7);
    let (mut cost, mut rest, mut violated_steps) = (0.0f64, 0.0f64, 0);
    loop {
        // Action 0 is the largest step down (−4): the fleet falls to its minimum and queues grow.
        let t = env.step(0);
        let c = f64::from(t.cost.expect("the simulator splits its reward"));
        assert!(c < 0.0, "a billed fleet costs: {c}");
        let r = f64::from(t.reward) - c;
        assert!(r <= 1e-3, "the rest is a penalty, never a gain: {r}");
        violated_steps += usize::from(r < -1e-3);
        cost += c;
        rest += r;
        if t.truncated {
            break;
        }
    }
    let stats = env.episode_stats();
    let violations = stat(&stats, "slo_violations");
    assert!(violations > 100.0 && violated_steps > 10, "{violations}");
    assert!(
        (rest + 3.0 * violations).abs() < 1e-3 * violations,
        "rest {rest} against {violations} violations"
    );
    let unit = 0.8 * 15.0 / 3600.0;
    assert!((-cost * unit - stat(&stats, "cost_usd")).abs() < 1e-3 * stat(&stats, "cost_usd"));
    assert_eq!(stat(&stats, "slo_target_pct"), 99.0);
}

fn split_cfg() -> PpoConfig {
    PpoConfig {
        seed: 5,
        num_envs: 2,
        num_steps: 64,
        num_minibatches: 2,
        total_timesteps: 6 * 128,
        norm_obs: true,
        norm_reward: true,
        split_critic: true,
        adv_clip: Some(5.0),
        lagrange_kp: 10.0,
        lagrange_ki: 1.0,
        ..PpoConfig::default()
    }
}

/// Two value heads train, the multipliers follow the episodes' SLO, and the exported model has the
/// one critic output the runtime reads: the heads times their return scales, summed, equal to burn's
/// forward pass within 1e-4 (relative).
#[test]
fn a_split_critic_trains_two_heads_and_exports_one_value() {
    // Short bursty episodes: some end below their SLO target, which raises their multiplier.
    let envs = (0..2)
        .map(|_| SimTrainEnv::new(mix("bursty-8b-l4-v1.toml", 64)).with_obs_schema(2))
        .collect();
    let mut ppo = Ppo::new(split_cfg(), envs).unwrap();
    let mut saw_viol_head = false;
    while !ppo.finished() {
        let s = ppo.iterate();
        assert!(
            s.lagrange_max >= 1.0,
            "λ is floored at the price: {}",
            s.lagrange_max
        );
        saw_viol_head |= s.explained_variance_viol.is_finite();
    }
    assert!(
        saw_viol_head,
        "the violation head's returns varied in some rollout"
    );
    assert_eq!(ppo.model.critic.to_dense().last().unwrap().d_out, 2);
    assert!(
        !ppo.lagrange.multiplier.is_empty(),
        "episodes ended and updated λ"
    );
    let scales = ppo.value_scales();
    assert_eq!(scales.len(), 2);
    assert!(
        scales.iter().all(|s| s.is_finite() && *s > 0.0),
        "{scales:?}"
    );

    let file = export(
        &ppo,
        &rlscale_core::ActionTable::deltas(),
        serde_json::json!({"test": true}),
    );
    assert_eq!(file.critic.last().unwrap().d_out, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    file.save(&path).unwrap();
    let loaded = ModelFile::load(&path).expect("the runtime accepts the exported critic");

    let net = ppo.model.valid();
    let dev = Device::default();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..20 {
        let raw: Vec<f32> = (0..N_FEATURES)
            .map(|_| rng.random_range(-1.0..4.0))
            .collect();
        let x = Tensor::<2>::from_data(
            TensorData::new(loaded.normalize(&raw), [1, N_FEATURES]),
            &dev,
        );
        let heads = net.values(x).into_data().try_to_vec::<f32>().unwrap();
        let want = f64::from(heads[0]) * scales[0] + f64::from(heads[1]) * scales[1];
        let got = f64::from(loaded.value(&raw));
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{got} against {want}"
        );
    }
}

/// A checkpoint keeps the violation scale and the multipliers: the resumed learner has them.
#[test]
fn a_checkpoint_keeps_the_split_critics_state() {
    let make = || {
        (0..2)
            .map(|_| SimTrainEnv::new(mix("bursty-8b-l4-v1.toml", 64)))
            .collect::<Vec<_>>()
    };
    let mut ppo = Ppo::new(split_cfg(), make()).unwrap();
    for _ in 0..3 {
        ppo.iterate();
    }
    let dir = tempfile::tempdir().unwrap();
    let ckpt = ppo.save_checkpoint(dir.path(), 2).unwrap();
    let back = Ppo::resume(split_cfg(), make(), &ckpt).unwrap();
    assert_eq!(back.lagrange, ppo.lagrange);
    assert_eq!(back.value_scales(), ppo.value_scales());
    assert_eq!(
        back.model.critic.to_dense(),
        ppo.model.critic.to_dense(),
        "both heads restored"
    );
}

/// The options name their field when they cannot apply.
#[test]
fn split_critic_options_are_checked() {
    let bad = |cfg: PpoConfig, field: &str| {
        let e = cfg.validate().unwrap_err();
        assert!(e.starts_with(field), "{e}");
    };
    bad(
        PpoConfig {
            norm_reward: false,
            ..split_cfg()
        },
        "split_critic",
    );
    bad(
        PpoConfig {
            split_critic: false,
            lagrange_kp: 0.0,
            lagrange_ki: 0.0,
            ..split_cfg()
        },
        "adv_clip",
    );
    bad(
        PpoConfig {
            lagrange_ki: -1.0,
            ..split_cfg()
        },
        "lagrange_ki",
    );
    bad(
        PpoConfig {
            split_critic: false,
            adv_clip: None,
            ..split_cfg()
        },
        "lagrange_kp",
    );
    // An env without a cost part cannot feed a split critic.
    let cart = (0..2)
        .map(|_| rlscale_trainer::cartpole::CartPole::default())
        .collect();
    let e = Ppo::new(split_cfg(), cart).err().unwrap();
    assert!(e.contains("split_critic"), "{e}");
}
