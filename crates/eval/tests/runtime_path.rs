//! `model:PATH` is played through the whole runtime (checks, guardrails, fallback), not the bare
//! network: a model whose training ranges exclude the scenario hands every decision to the fallback
//! law, and the timeline says so.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_core::{ACTION_DELTAS, FEATURE_NAMES, N_ACTIONS, N_FEATURES, OBS_SCHEMA_VERSION};
use rlscale_eval::policies::PolicyChoice;
use rlscale_runtime::ModelFile;
use rlscale_runtime::model::{Dense, FORMAT, FORMAT_VERSION, FeatureRanges, ObsNorm};
use rlscale_sim::{Overrides, Scenario, SimEnv, run_episode};

fn model(tod_range: (f32, f32)) -> ModelFile {
    let tod = FEATURE_NAMES.iter().position(|f| *f == "tod_sin").unwrap();
    let mut min = vec![-1e3; N_FEATURES];
    let mut max = vec![1e3; N_FEATURES];
    (min[tod], max[tod]) = tod_range;
    let mut bias = vec![0.0; N_ACTIONS];
    bias[3] = 1.0; // hold
    ModelFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        obs_schema_version: OBS_SCHEMA_VERSION,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        obs_norm: ObsNorm {
            mean: vec![0.0; N_FEATURES],
            var: vec![1e4; N_FEATURES],
            epsilon: 1e-8,
            clip: 10.0,
        },
        feature_ranges: FeatureRanges { min, max },
        actor: vec![Dense {
            d_in: N_FEATURES,
            d_out: N_ACTIONS,
            weight: vec![0.0; N_FEATURES * N_ACTIONS],
            bias,
        }],
        critic: vec![Dense {
            d_in: N_FEATURES,
            d_out: 1,
            weight: vec![0.0; N_FEATURES],
            bias: vec![0.0],
        }],
        activation: "tanh".into(),
        action_deltas: ACTION_DELTAS.to_vec(),
        provenance: serde_json::json!({}),
    }
}

/// Decisions by `source/reason` over one episode of `policy`.
fn sources(policy: &PolicyChoice) -> std::collections::BTreeMap<String, usize> {
    let envs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs");
    let o = Overrides {
        max_episode_steps: Some(120),
        ..Overrides::default()
    };
    let sc = Arc::new(Scenario::resolve(&envs, "flash-crowd-8b-l4-v1", &o).unwrap());
    let mut p = policy.build(&sc, 1, 120).unwrap();
    let mut env = SimEnv::new(sc);
    let mut counts = std::collections::BTreeMap::new();
    run_episode(&mut env, &mut *p, 1, |row| {
        *counts
            .entry(format!("{}/{}", row.source, row.reason))
            .or_insert(0) += 1;
    });
    counts
}

#[test]
fn model_policies_run_through_the_runtime() {
    let dir = std::env::temp_dir().join(format!("rlscale-runtime-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let configs = PathBuf::from("/nonexistent");
    let choice = |name: &str, m: ModelFile| {
        let path = dir.join(format!("{name}.json"));
        m.save(&path).unwrap();
        PolicyChoice::parse(&format!("model:{}", path.display()), &configs).unwrap()
    };
    // In distribution: the model decides (it always holds).
    let inside = sources(&choice("inside", model((-1.0, 1.0))));
    assert_eq!(
        inside.keys().collect::<Vec<_>>(),
        ["model/hold"],
        "{inside:?}"
    );
    // Time of day outside the training range: every decision is the fallback law's, with the reason.
    let outside = sources(&choice("outside", model((5.0, 6.0))));
    let total: usize = outside.values().sum();
    let fallback: usize = outside
        .iter()
        .filter(|(k, _)| {
            k.as_str() == "fallback/out_of_distribution" || k.starts_with("guardrail/")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 120);
    assert_eq!(fallback, 120, "{outside:?}");
    assert!(outside.contains_key("fallback/out_of_distribution"));
    std::fs::remove_dir_all(&dir).ok();
}
