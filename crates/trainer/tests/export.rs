//! The exported model file is the network: the runtime's plain-Rust forward pass (no burn) gives the
//! same logits and values as burn's on fixed inputs, within 1e-5, on both feature schemas.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlscale_runtime::ModelFile;
use rlscale_trainer::ppo::{Ppo, PpoConfig};
use rlscale_trainer::run::export;
use rlscale_trainer::simenv::{MixEntry, SimTrainEnv};

#[test]
fn runtime_forward_equals_burn_forward() {
    for schema in [1, 2] {
        forward_equals(schema);
    }
}

fn forward_equals(schema: u32) {
    let n = rlscale_core::n_features(schema).unwrap();
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/bursty-8b-l4-v1.toml");
    let mix: std::sync::Arc<[MixEntry]> = vec![MixEntry {
        cold_start_scale: [0.5, 2.0],
        capacity_scale: [0.5, 2.0],
        price_scale: [0.5, 2.0],
        ..MixEntry::new(scenario, 64)
    }]
    .into();
    let cfg = PpoConfig {
        num_envs: 2,
        num_steps: 64,
        num_minibatches: 2,
        total_timesteps: 256,
        norm_obs: true,
        norm_reward: true,
        ..PpoConfig::default()
    };
    let envs = (0..2)
        .map(|_| SimTrainEnv::new(mix.clone()).with_obs_schema(schema))
        .collect();
    let mut ppo = Ppo::new(cfg, envs).unwrap();
    // Two updates move the weights and the normalisation away from their initial values.
    ppo.iterate();
    ppo.iterate();
    let file = export(
        &ppo,
        &rlscale_core::ActionTable::deltas(),
        serde_json::json!({"test": true}),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    file.save(&path).unwrap();
    let loaded = ModelFile::load(&path).unwrap();
    assert!(loaded == file, "the file round-trips exactly");
    assert_eq!(loaded.obs_schema_version, schema);
    assert_eq!(loaded.n_features(), n);
    assert_eq!(loaded.feature_names[..], rlscale_core::FEATURE_NAMES[..n]);

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let dev = Device::default();
    let net = ppo.model.valid();
    let mut worst = 0.0f32;
    for _ in 0..50 {
        let raw: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..6.0)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(loaded.normalize(&raw), [1, n]), &dev);
        let burn_logits = net
            .logits(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let burn_value = net.value(x).into_data().try_to_vec::<f32>().unwrap()[0];
        let rt_logits = loaded.logits(&raw);
        for (a, b) in burn_logits.iter().zip(&rt_logits) {
            worst = worst.max((a - b).abs());
        }
        worst = worst.max((burn_value - loaded.value(&raw)).abs());
    }
    assert!(worst < 1e-5, "schema {schema}: largest difference {worst}");
}

/// Fine-tuning starts from the exported network exactly: after `init_from`, the learner's actor and
/// critic are the file's layers, number for number, and its observation statistics start at the
/// file's; a model of another architecture is refused naming both sides.
#[test]
fn init_from_loads_the_exported_network() {
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/bursty-8b-l4-v1.toml");
    let mix: std::sync::Arc<[MixEntry]> = vec![MixEntry::new(scenario, 64)].into();
    let cfg = |seed: u64, hidden: Vec<usize>| PpoConfig {
        num_envs: 2,
        num_steps: 64,
        num_minibatches: 2,
        total_timesteps: 256,
        norm_obs: true,
        seed,
        hidden,
        ..PpoConfig::default()
    };
    let envs = || (0..2).map(|_| SimTrainEnv::new(mix.clone())).collect();
    let mut a = Ppo::new(cfg(1, vec![16, 16]), envs()).unwrap();
    a.iterate();
    let file = export(
        &a,
        &rlscale_core::ActionTable::deltas(),
        serde_json::json!({}),
    );
    let mut b = Ppo::new(cfg(2, vec![16, 16]), envs()).unwrap();
    assert_ne!(
        b.model.actor.to_dense(),
        file.actor,
        "another seed, another network"
    );
    b.init_from(&file, 1e5).unwrap();
    assert_eq!(b.model.actor.to_dense(), file.actor);
    assert_eq!(b.model.critic.to_dense(), file.critic);
    for (m, f) in b.obs_rms.mean.iter().zip(&file.obs_norm.mean) {
        assert!((m - f).abs() < 1e-2 * (1.0 + f.abs()), "{m} vs {f}");
    }
    // It trains on from there.
    b.iterate();
    assert_ne!(b.model.actor.to_dense(), file.actor);

    let mut c = Ppo::new(cfg(3, vec![32]), envs()).unwrap();
    let e = c.init_from(&file, 1e5).unwrap_err();
    assert!(e.contains("[16, 16]") && e.contains("[32]"), "{e}");
}
