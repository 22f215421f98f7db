//! The work a run may create is bounded before anything is allocated (issue 21): a run with no
//! arrivals finishes, and a rate beyond `MAX_ARRIVAL_RPS` is refused with an error naming the field.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_core::{Action, Env};
use rlscale_sim::{Overrides, Scenario, SimEnv};

fn path(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../envs/{id}.toml"))
}

/// `--rate-scale 0` used to spin forever in the arrival stream's walk over zero-rate segments on
/// diurnal, flash-crowd and trace scenarios. Every kind of process now finishes with no arrivals.
/// `--rate-scale 1e-12` on a smooth process (one-second segments) used to walk ~1e11 segments for
/// its first arrival (found by tests/fuzz_loaders.rs): the walk now stops at the horizon.
#[test]
fn a_run_scaled_almost_to_nothing_finishes() {
    for id in [
        "flash-crowd-8b-l4-v1",
        "ramp-step-8b-l4-v1",
        "diurnal-8b-l4-v1",
    ] {
        let o = Overrides {
            rate_scale: Some(1e-12),
            ..Overrides::default()
        };
        let sc = Arc::new(Scenario::load(&path(id), &o).unwrap());
        let mut env = SimEnv::new(sc);
        env.reset(Some(1));
        let mut arrivals = 0;
        for _ in 0..40 {
            arrivals += env.step(&Action::Replicas(1)).unwrap().info.arrivals;
        }
        assert_eq!(arrivals, 0, "{id}");
    }
}

#[test]
fn a_run_scaled_to_no_arrivals_finishes() {
    for id in [
        "diurnal-8b-l4-v1",
        "flash-crowd-8b-l4-v1",
        "azure-code-2023-8b-l4-v1",
        "sparse-8b-l4-v1",
        "steady-8b-l4-v1",
    ] {
        let o = Overrides {
            rate_scale: Some(0.0),
            ..Overrides::default()
        };
        let sc = Arc::new(Scenario::load(&path(id), &o).unwrap());
        let mut env = SimEnv::new(sc);
        env.reset(Some(1));
        let mut arrivals = 0;
        for _ in 0..40 {
            arrivals += env.step(&Action::Replicas(1)).unwrap().info.arrivals;
        }
        assert_eq!(arrivals, 0, "{id}");
    }
}

#[test]
fn a_rate_beyond_the_limit_is_refused_before_it_is_simulated() {
    let o = Overrides {
        rate_scale: Some(1e6),
        ..Overrides::default()
    };
    let e = Scenario::load(&path("diurnal-8b-l4-v1"), &o)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--rate-scale") && e.contains("1000000") && e.contains("10000 req/s"),
        "{e}"
    );
    // At the limit it loads: the bound is on the peak after the multiplier, not on the multiplier.
    let sc = Scenario::load(&path("steady-8b-l4-v1"), &Overrides::default()).unwrap();
    let at_limit = rlscale_sim::config::MAX_ARRIVAL_RPS / sc.arrivals.peak_rps();
    let o = Overrides {
        rate_scale: Some(at_limit),
        ..Overrides::default()
    };
    Scenario::load(&path("steady-8b-l4-v1"), &o).unwrap();
    let o = Overrides {
        rate_scale: Some(at_limit * 1.01),
        ..Overrides::default()
    };
    assert!(Scenario::load(&path("steady-8b-l4-v1"), &o).is_err());

    // The same rate written in a scenario file names the arrivals, not a flag.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(path("steady-8b-l4-v1"))
        .unwrap()
        .replace("rps = 50.0", "rps = 1e12");
    assert!(text.contains("1e12"), "the steady scenario's rate moved");
    let file = dir.path().join("steady-8b-l4-v1.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
    let profile = path("profiles/llm-8b-l4");
    std::fs::copy(&profile, dir.path().join("profiles/llm-8b-l4.toml")).unwrap();
    let e = Scenario::load(&file, &Overrides::default());
    match e {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("arrivals") && e.contains("10000 req/s"), "{e}");
        }
        Ok(_) => panic!("a scenario at 1e12 req/s loaded"),
    }
}
