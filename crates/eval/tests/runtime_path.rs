//! `model:PATH` is played through the whole runtime (checks, guardrails, fallback), not the bare
//! network: a model whose training ranges exclude the scenario hands every decision to the fallback
//! law, and the timeline says so.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_core::{FEATURE_NAMES, N_FEATURES};
use rlscale_eval::policies::PolicyChoice;
use rlscale_runtime::ModelFile;
use rlscale_sim::{Overrides, Scenario, SimEnv, run_episode};

fn model(tod_range: (f32, f32)) -> ModelFile {
    let tod = FEATURE_NAMES.iter().position(|f| *f == "tod_sin").unwrap();
    let mut m = ModelFile::always(3); // hold
    m.obs_norm.var = vec![1e4; N_FEATURES];
    m.feature_ranges.min = vec![-1e3; N_FEATURES];
    m.feature_ranges.max = vec![1e3; N_FEATURES];
    (m.feature_ranges.min[tod], m.feature_ranges.max[tod]) = tod_range;
    m
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
