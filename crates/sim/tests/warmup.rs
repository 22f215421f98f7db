//! The warm-up before the first decision (`metrics.warmup_s`): the first snapshot of an episode sees
//! the workload as a running cluster's Prometheus would, and the episode's own requests are those of
//! a run without the warm-up.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_core::{Action, Env};
use rlscale_sim::{Overrides, Scenario, SimEnv};

fn scenario(id: &str, warmup_s: Option<f64>) -> Arc<Scenario> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../envs/{id}.toml"));
    let mut sc = Scenario::load(&path, &Overrides::default()).unwrap();
    if let Some(w) = warmup_s {
        sc.file.metrics.warmup_s = w;
    }
    Arc::new(sc)
}

/// steady-8b-l4-v1 runs at 50 req/s on 17 initial replicas. Without a warm-up the first decision
/// sees no arrivals and no latency at all; with it, a 1m rate within Poisson noise of 50 req/s,
/// a 5m rate likewise, and latency quantiles from requests served.
#[test]
fn the_first_snapshot_sees_the_workload() {
    let cold = {
        let mut env = SimEnv::new(scenario("steady-8b-l4-v1", Some(0.0)));
        env.reset(Some(7)).1.snapshot
    };
    assert_eq!(cold.arrival_rate_1m, 0.0);
    assert_eq!(cold.arrival_rate_5m, 0.0);
    assert_eq!(cold.latency_p99_s, None);

    let sc = scenario("steady-8b-l4-v1", None);
    assert_eq!(sc.file.metrics.warmup_s, 300.0, "the default");
    let rps = match &sc.arrivals {
        rlscale_sim::config::Arrivals::Generator(rlscale_sim::config::ArrivalSpec::Poisson {
            rps,
        }) => *rps,
        other => panic!("steady is Poisson, got {other:?}"),
    };
    let initial = sc.file.replicas.initial;
    let mut env = SimEnv::new(sc);
    let (obs, info) = env.reset(Some(7));
    let s = info.snapshot;
    // 50 req/s over 60 s: sd of the rate = sqrt(3000)/60 = 0.9 req/s; over 300 s, 0.4 req/s.
    assert!((s.arrival_rate_1m - rps).abs() < 5.0, "{s:?}");
    assert!((s.arrival_rate_5m - rps).abs() < 2.5, "{s:?}");
    assert!(s.latency_p99_s.is_some_and(|l| l > 0.0), "{s:?}");
    assert!(s.running > 0.0 && s.gpu_utilization > 0.0, "{s:?}");
    assert_eq!(s.ready_replicas, initial);
    assert!(obs.0.iter().all(|x| x.is_finite()));
    // Nothing of the warm-up is billed or counted in the reset's info.
    assert_eq!((info.arrivals, info.completed, info.dropped), (0, 0, 0));
    assert_eq!(info.gpu_seconds, 0.0);
    assert_eq!(env.totals().unwrap().arrivals, 0);
    // The snapshot is stamped at the episode start.
    assert_eq!(s.time, env.now().unwrap());
}

/// The warm-up draws from streams of its own: the episode's arrivals, interval by interval, are the
/// same with and without it, and the same seed gives the same numbers.
#[test]
fn the_episode_keeps_its_own_requests_and_is_deterministic() {
    let run = |warmup: Option<f64>| {
        let mut env = SimEnv::new(scenario("bursty-8b-l4-v1", warmup));
        env.reset(Some(11));
        let mut per_step = Vec::new();
        let mut cost = 0.0;
        for _ in 0..40 {
            let s = env.step(&Action::Hold).unwrap();
            per_step.push(s.info.arrivals);
            cost += s.info.cost_usd;
        }
        (per_step, cost, env.totals().unwrap().completed)
    };
    let (without, cost0, _) = run(Some(0.0));
    let (with, cost1, done1) = run(None);
    assert_eq!(with, without, "the episode's arrivals");
    // Billing starts at 0 either way: the same fleet, held.
    assert!(
        (cost1 - cost0).abs() < 1e-9 * cost0.max(1.0),
        "{cost0} {cost1}"
    );
    let again = run(None);
    assert_eq!((again.0, again.1, again.2), (with, cost1, done1));
    // And the oracle's view of the episode is unchanged.
    let a = SimEnv::new(scenario("bursty-8b-l4-v1", Some(0.0))).demand(11, 40);
    let b = SimEnv::new(scenario("bursty-8b-l4-v1", None)).demand(11, 40);
    assert_eq!(a.arrivals, b.arrivals);
}

/// A bad `warmup_s` is refused with the file, the field and the value.
#[test]
fn a_bad_warmup_is_refused() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("warmup-bad");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/steady-8b-l4-v1.toml");
    let text = std::fs::read_to_string(&src).unwrap();
    assert!(text.contains("[metrics]") || !text.contains("warmup_s"));
    // The file name is the scenario's id.
    let path = dir.join("steady-8b-l4-v1.toml");
    let body = if text.contains("[metrics]") {
        text.replace("[metrics]", "[metrics]\nwarmup_s = -5.0")
    } else {
        format!("{text}\n[metrics]\nwarmup_s = -5.0\n")
    };
    std::fs::write(&path, body).unwrap();
    // Profiles are found beside the scenario file.
    for entry in std::fs::read_dir(src.parent().unwrap().join("profiles"))
        .into_iter()
        .flatten()
    {
        let entry = entry.unwrap();
        let to = dir.join("profiles");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let err = Scenario::load(&path, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics.warmup_s"), "{err}");
    assert!(err.contains("-5"), "{err}");
}

/// The hour-scale windows of feature schema 2 (`arrival_rate_peak_15m`, `arrival_rate_peak_1h`,
/// `arrival_rate_1h`) are over the 1-minute rates the scrapes reported: a peak is never below the
/// rate it covers, and on sparse on/off traffic (5 req/s for ~10 min, off for ~40) the hourly peak
/// still shows the last on period well into an off period, when the 1- and 5-minute rates read 0.
#[test]
fn the_hour_scale_windows_remember_the_last_burst() {
    let mut env = SimEnv::new(scenario("sparse-8b-l4-v1", None));
    env.reset(Some(11));
    let mut quiet_but_remembered = 0;
    let mut quiet = 0;
    for _ in 0..5760 {
        let s = env.step(&Action::Replicas(2)).unwrap().info.snapshot;
        let (p15, p60, mean) = (
            s.arrival_rate_peak_15m.unwrap(),
            s.arrival_rate_peak_1h.unwrap(),
            s.arrival_rate_1h.unwrap(),
        );
        assert!(p15 >= s.arrival_rate_1m && p60 >= p15, "{s:?}");
        assert!(mean <= p60 + 1e-9 && mean >= 0.0, "{s:?}");
        if s.arrival_rate_1m == 0.0 && s.arrival_rate_5m == 0.0 {
            quiet += 1;
            if p60 > 2.0 {
                quiet_but_remembered += 1;
            }
        }
    }
    // The off periods are most of the day, and in about half of their steps (the first ~35 min
    // after a burst, of ~40) the hourly peak still reads the burst.
    assert!(quiet > 2000, "{quiet} quiet steps");
    assert!(
        quiet_but_remembered * 10 > quiet * 3,
        "{quiet_but_remembered} of {quiet} quiet steps remember a burst"
    );
}
