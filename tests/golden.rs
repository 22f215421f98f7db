//! Golden summaries: every shipped scenario × every baseline law (its defaults) × the oracle, one fixed
//! seed, two simulated hours each, snapshotted with insta (`tests/snapshots/`). A change in the
//! simulator's dynamics or in a law shows up as a snapshot diff: review it with `cargo insta review`
//! (or re-run with `INSTA_UPDATE=always` and read the diff), and bump the scenario version when the
//! dynamics changed.
//!
//! The same runs check the oracle's lower bound: no policy's objective (GPU $ + penalty × violations)
//! is below it, by construction.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rlscale_eval::matrix::run_one;
use rlscale_eval::oracle::{self, OracleConfig};
use rlscale_eval::policies::PolicyChoice;
use rlscale_sim::Overrides;
use serde::Serialize;

use crate::util::{load, needs_user_trace, scenario_ids};

const STEPS: u64 = 480;
const SEED: u64 = 42;
const POLICIES: [&str; 8] = [
    "hpa",
    "keda",
    "kpa",
    "ray",
    "apa",
    "static",
    "predictive",
    "oracle",
];

/// Rounded to 6 significant digits, so that the snapshot does not hinge on the last bits of libm.
fn r6(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

#[derive(Serialize)]
struct Golden {
    cost_usd: f64,
    gpu_hours: f64,
    slo_attainment_pct: f64,
    slo_violations: u64,
    dropped: u64,
    latency_p99_s: Option<f64>,
    scale_events: u64,
    cold_starts: u64,
    mean_replicas: f64,
    max_replicas: u32,
    objective_usd: f64,
}

#[test]
fn golden_summaries_and_the_oracle_bound() {
    let configs = PathBuf::from("configs/baselines");
    let ids: Vec<String> = scenario_ids()
        .into_iter()
        .filter(|id| !needs_user_trace(id))
        .collect();
    assert!(ids.len() >= 22, "{ids:?}");
    let mut failures = Vec::new();
    for id in &ids {
        let sc = load(
            id,
            Overrides {
                max_episode_steps: Some(STEPS),
                ..Overrides::default()
            },
        );
        let bound = oracle::plan(&sc, SEED, STEPS, OracleConfig::default()).bound;
        let mut snap = BTreeMap::new();
        snap.insert(
            "oracle-bound".to_string(),
            BTreeMap::from([
                ("objective_usd", r6(bound.objective_usd)),
                ("cost_usd", r6(bound.cost_usd)),
                ("forced_violations", bound.forced_violations as f64),
            ])
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<String, f64>>(),
        );
        let mut runs = BTreeMap::new();
        for name in POLICIES {
            let choice = PolicyChoice::parse(name, &configs).unwrap();
            let r = run_one(&sc, &choice, SEED, bound, false).unwrap();
            if r.objective_usd < bound.objective_usd {
                failures.push(format!(
                    "{id} / {name}: objective {} < oracle bound {}",
                    r.objective_usd, bound.objective_usd
                ));
            }
            let s = &r.summary;
            runs.insert(
                name.to_string(),
                Golden {
                    cost_usd: r6(s.cost_usd),
                    gpu_hours: r6(s.gpu_hours),
                    slo_attainment_pct: r6(s.slo_attainment_pct),
                    slo_violations: s.slo_violations,
                    dropped: s.dropped,
                    latency_p99_s: s.latency_p99_s.map(r6),
                    scale_events: s.scale_events,
                    cold_starts: s.cold_starts,
                    mean_replicas: r6(s.mean_replicas),
                    max_replicas: s.max_replicas,
                    objective_usd: r6(r.objective_usd),
                },
            );
        }
        insta::assert_yaml_snapshot!(id.as_str(), (snap, runs));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn r6_rounds_to_six_significant_digits() {
    assert_eq!(r6(123.456789), 123.457);
    assert_eq!(r6(0.000123456789), 0.000123457);
    assert_eq!(r6(0.0), 0.0);
    assert!(r6(f64::NAN).is_nan());
}
