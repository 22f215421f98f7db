//! Conformance suites.
//!
//! * Here: Gymnasium-style conformance of every scenario in `envs/` (see `rlscale_core::check_env`): the
//!   same seed gives the same trajectory, observations stay inside the declared space, truncation
//!   happens at the episode limit, and `step` before `reset` is an error.
//! * [`hpa`]: the HPA law against Kubernetes' `replica_calculator_test.go` and `horizontal_test.go`.
//! * [`kpa`]: the KPA law against Knative Serving's `autoscaler_test.go`.

mod hpa;
mod kpa;

use rlscale_core::{Action, Env, EnvError, ServiceProfile, check_env};
use rlscale_sim::{Overrides, SimEnv};

use crate::util::{load, scenario_ids};

/// The service the peers' test tables are played on ([`hpa`], [`kpa`]): an 8B model on one L4.
fn peer_profile() -> ServiceProfile {
    ServiceProfile {
        cold_start_s: 135.0,
        capacity_rps: 3.0,
        gpus_per_replica: 1,
        usd_per_gpu_hour: 0.8,
        slo_latency_s: 10.0,
    }
}

#[test]
fn every_scenario_passes_the_env_checker() {
    let ids = scenario_ids();
    assert!(
        ids.len() >= 26,
        "expected at least 26 scenarios, found {}",
        ids.len()
    );
    for id in ids {
        // A shortened episode (40 steps = 10 min) exercises truncation at the limit on every scenario.
        let sc = load(
            &id,
            Overrides {
                max_episode_steps: Some(40),
                ..Overrides::default()
            },
        );
        for seed in [0, 7] {
            check_env(|| SimEnv::new(sc.clone()), seed)
                .unwrap_or_else(|e| panic!("{id} seed {seed}: {e}"));
        }
    }
}

#[test]
fn full_length_truncation_on_a_short_scenario() {
    let sc = load("azure-code-2023-8b-l4-v1", Overrides::default());
    let max = sc.file.max_episode_steps;
    let mut env = SimEnv::new(sc);
    assert_eq!(env.step(&Action::Hold).unwrap_err(), EnvError::ResetNeeded);
    env.reset(Some(3));
    let mut steps = 0;
    loop {
        let s = env.step(&Action::Hold).unwrap();
        steps += 1;
        assert!(!s.terminated);
        if s.truncated {
            break;
        }
    }
    assert_eq!(steps, max);
    assert_eq!(
        env.step(&Action::Hold).unwrap_err(),
        EnvError::EpisodeOver(max)
    );
}

#[test]
fn different_seeds_give_different_trajectories_and_same_seeds_the_same_numbers() {
    let sc = load(
        "bursty-8b-l4-v1",
        Overrides {
            max_episode_steps: Some(240),
            ..Overrides::default()
        },
    );
    let run = |seed| {
        let mut env = SimEnv::new(sc.clone());
        env.reset(Some(seed));
        let mut rewards = Vec::new();
        loop {
            // +1 replica a step (the delta table's action 4), clamped at the bounds.
            let up = env.last_info().unwrap().target_replicas + 1;
            let s = env.step(&Action::Replicas(up)).unwrap();
            rewards.push(s.reward);
            if s.truncated {
                break;
            }
        }
        (rewards, env.totals().unwrap().arrivals)
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_ne!(a.1, run(12).1);
}

/// The oracle is given `SimEnv::demand`: it must be exactly the requests an episode sees, interval by
/// interval, on generators and traces alike (token-sized requests included).
#[test]
fn demand_regenerates_the_episodes_arrivals_exactly() {
    for id in [
        "bursty-8b-l4-v1",
        "azure-code-2023-70b-h100x2-v1",
        "sparse-8b-l4-v1",
    ] {
        let sc = load(
            id,
            Overrides {
                max_episode_steps: Some(200),
                ..Overrides::default()
            },
        );
        let mut env = SimEnv::new(sc.clone());
        let mut requests = Vec::new();
        let demand = env.demand_each(5, 200, |r| requests.push(*r));
        assert_eq!(
            env.demand(5, 200),
            demand,
            "{id}: demand and demand_each agree"
        );
        env.reset(Some(5));
        let mut seen = Vec::new();
        loop {
            let s = env.step(&Action::Replicas(sc.file.replicas.max)).unwrap();
            seen.push(s.info.arrivals as u32);
            if s.truncated {
                break;
            }
        }
        assert_eq!(seen, demand.arrivals, "{id}");
        assert_eq!(requests.len() as u64, env.totals().unwrap().arrivals);
        let total: f64 = demand.work.iter().sum();
        let per_request: f64 = requests.iter().map(|r| r.work).sum();
        assert!((total - per_request).abs() < 1e-6 * total.max(1.0), "{id}");
        assert!(requests.iter().all(|r| r.prefill <= r.work && r.work > 0.0));
        assert!(
            requests
                .windows(2)
                .all(|w| w[0].arrival_s <= w[1].arrival_s)
        );
    }
}

/// `Overrides::window_offset_s` starts episodes later on the workload's timeline: the clock moves with
/// it, and the diurnal peak (18:00 UTC) is where the offset says.
#[test]
fn a_window_offset_moves_the_episode_along_the_workload() {
    let window = |offset_h: f64| {
        let sc = load(
            "diurnal-8b-l4-v1",
            Overrides {
                max_episode_steps: Some(240),
                window_offset_s: Some(offset_h * 3600.0),
                ..Overrides::default()
            },
        );
        let mut env = SimEnv::new(sc.clone());
        env.reset(Some(3));
        let start = env.now().unwrap().unix_s();
        let d = env.demand(3, 240);
        let n: u64 = d.arrivals.iter().map(|&a| u64::from(a)).sum();
        (start, n as f64 / 3600.0)
    };
    let (t0, _) = window(0.0);
    let (t18, r18) = window(18.0);
    let (t6, r6) = window(6.0);
    assert_eq!(t18 - t0, 18.0 * 3600.0);
    assert_eq!(t6 - t0, 6.0 * 3600.0);
    // Monday: 60 req/s × (1 ± 0.6 daily) × the weekly factor; 18:00 is the daily peak, 06:00 the trough.
    assert!(
        r18 > 80.0 && r6 < 35.0,
        "18:00 {r18:.1} req/s, 06:00 {r6:.1} req/s"
    );
    assert!(r18 > 2.5 * r6);

    // The stockout (11:30-12:30 on the workload's timeline) moves with the window, cut at its start.
    let stockouts = |offset_s: f64| {
        load(
            "ramp-step-8b-l4-v1",
            Overrides {
                window_offset_s: Some(offset_s),
                ..Overrides::default()
            },
        )
        .file
        .cluster
        .stockouts
        .iter()
        .map(|p| (p.start_s, p.end_s))
        .collect::<Vec<_>>()
    };
    assert_eq!(stockouts(0.0), [(41_400.0, 45_000.0)]);
    assert_eq!(stockouts(40_000.0), [(1_400.0, 5_000.0)]);
    assert_eq!(stockouts(43_200.0), [(0.0, 1_800.0)]);
    assert!(stockouts(45_000.0).is_empty());
}
