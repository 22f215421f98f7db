//! Validation against queueing theory.
//!
//! - M/M/c (Poisson arrivals, exponential service, c fixed replicas of concurrency 1): the simulated mean
//!   wait and P(wait > 0) match Erlang C within 3 % at loads 0.5, 0.8 and 0.95.
//! - M/M/1-PS (one processor-sharing replica with constant throughput): mean sojourn = 1/(μ − λ) within 3 %.
//!
//! The runs are long enough that 3 % is several standard errors (estimated by batch means over 20 batches,
//! printed with `--nocapture`): the tests check the simulator, not a lucky seed.

use std::path::Path;
use std::sync::Arc;

use rlscale_core::{Action, Env};
use rlscale_sim::config::{
    ArrivalSpec, ClusterSpec, ColdStartSpec, MetricsSpec, ProfileFile, ReplicasSpec, RequestSpec,
    ScenarioFile, SloKind, SloSpec,
};
use rlscale_sim::dist::DistSpec;
use rlscale_sim::{Overrides, Profile, Scenario, SimEnv};

fn scenario(
    lambda: f64,
    mu: f64,
    replicas: u32,
    max_concurrency: u32,
    hours: f64,
) -> Arc<Scenario> {
    let path = Path::new("queueing-test.toml");
    let zero = DistSpec::Const { value: 0.0 };
    let profile = ProfileFile {
        name: "queueing".into(),
        description: "exponential service, constant throughput".into(),
        gpus_per_replica: 1,
        usd_per_gpu_hour: 1.0,
        max_concurrency,
        throughput_curve: vec![[1.0, mu], [f64::from(max_concurrency).max(2.0), mu]],
        cold_start: ColdStartSpec {
            provision_s: zero,
            image_pull_s: zero,
            model_load_s: zero,
        },
        requests: RequestSpec {
            work: DistSpec::Exponential { mean: 1.0 },
            prefill_fraction: 0.0,
            tokens: None,
        },
        slo: SloSpec {
            kind: SloKind::E2e,
            latency_s: 1e9,
            timeout_s: 1e12,
            target: 0.99,
            penalty_usd: 0.0,
        },
    };
    let profile = Arc::new(Profile::from_file(profile, path).unwrap());
    let file = ScenarioFile {
        id: "queueing-test-v1".into(),
        description: "M/M/c validation".into(),
        profile: "queueing".into(),
        max_episode_steps: (hours * 3600.0 / 15.0) as u64,
        control_interval_s: 15.0,
        start_time: "2024-01-01T00:00:00Z".into(),
        nondeterministic: false,
        replicas: ReplicasSpec {
            min: replicas,
            max: replicas,
            initial: replicas,
        },
        arrivals: ArrivalSpec::Poisson { rps: lambda },
        requests: None,
        slo: None,
        metrics: MetricsSpec::default(),
        cluster: ClusterSpec::default(),
    };
    Arc::new(Scenario::build(file, profile, path, &Overrides::default()).unwrap())
}

/// Per-batch statistics of one long run: (mean wait, P(wait > 0), mean sojourn) for each of `batches`.
fn run_batches(sc: Arc<Scenario>, seed: u64, batches: u64) -> Vec<(f64, f64, f64)> {
    let mut env = SimEnv::new(sc);
    env.reset(Some(seed));
    let steps = env.max_episode_steps();
    let per = steps / batches;
    let mut out = Vec::new();
    let mut prev = env.totals().unwrap().clone();
    for step in 1..=steps {
        env.step(&Action::Hold).unwrap();
        if step % per == 0 {
            let t = env.totals().unwrap().clone();
            let admitted = (t.admitted - prev.admitted) as f64;
            let completed = (t.completed - prev.completed) as f64;
            out.push((
                (t.wait_sum_s - prev.wait_sum_s) / admitted,
                (t.waited - prev.waited) as f64 / admitted,
                (t.sojourn_sum_s - prev.sojourn_sum_s) / completed,
            ));
            prev = t;
        }
    }
    out
}

/// Mean and standard error of the mean over batches.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Erlang C: probability that an arrival waits in M/M/c with offered load a = λ/μ.
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c) * f64::from(c) / (f64::from(c) - a);
    last / (sum + last)
}

fn check_mmc(rho: f64, hours: f64) {
    let (c, mu) = (4u32, 1.0);
    let lambda = rho * f64::from(c) * mu;
    let pw = erlang_c(c, lambda / mu);
    let wq = pw / (f64::from(c) * mu - lambda);
    let batches = run_batches(scenario(lambda, mu, c, 1, hours), 42, 20);
    let (w, w_se) = mean_se(&batches.iter().map(|b| b.0).collect::<Vec<_>>());
    let (p, p_se) = mean_se(&batches.iter().map(|b| b.1).collect::<Vec<_>>());
    println!(
        "M/M/{c} rho={rho}: mean wait {w:.5} (Erlang C {wq:.5}, err {:+.2}%, se {:.2}%), P(wait>0) {p:.5} (Erlang C {pw:.5}, err {:+.2}%, se {:.2}%)",
        100.0 * (w / wq - 1.0),
        100.0 * w_se / wq,
        100.0 * (p / pw - 1.0),
        100.0 * p_se / pw
    );
    assert!(
        (w / wq - 1.0).abs() < 0.03,
        "rho {rho}: mean wait {w} vs Erlang C {wq}"
    );
    assert!(
        (p / pw - 1.0).abs() < 0.03,
        "rho {rho}: P(wait>0) {p} vs Erlang C {pw}"
    );
}

#[test]
fn erlang_c_formula_matches_a_known_value() {
    // c = 2, a = 1 (rho 0.5): C = (1/2 · 2/1) / (1 + 1 + 1) = 1/3.
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    // c = 1 reduces to rho.
    assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
}

#[test]
fn mmc_matches_erlang_c_at_load_0_5() {
    check_mmc(0.5, 400.0);
}

#[test]
fn mmc_matches_erlang_c_at_load_0_8() {
    check_mmc(0.8, 400.0);
}

#[test]
fn mmc_matches_erlang_c_at_load_0_95() {
    check_mmc(0.95, 4000.0);
}

fn check_mm1_ps(rho: f64, hours: f64) {
    let mu = 1.0;
    let lambda = rho * mu;
    let want = 1.0 / (mu - lambda);
    let batches = run_batches(scenario(lambda, mu, 1, 2000, hours), 7, 20);
    let (s, se) = mean_se(&batches.iter().map(|b| b.2).collect::<Vec<_>>());
    // Under PS nobody waits in the queue: every request is admitted at once.
    assert!(batches.iter().all(|b| b.1 == 0.0));
    println!(
        "M/M/1-PS rho={rho}: mean sojourn {s:.5} (1/(mu-lambda) = {want:.5}, err {:+.2}%, se {:.2}%)",
        100.0 * (s / want - 1.0),
        100.0 * se / want
    );
    assert!(
        (s / want - 1.0).abs() < 0.03,
        "rho {rho}: mean sojourn {s} vs {want}"
    );
}

#[test]
fn mm1_ps_sojourn_at_load_0_5() {
    check_mm1_ps(0.5, 400.0);
}

#[test]
fn mm1_ps_sojourn_at_load_0_8() {
    check_mm1_ps(0.8, 1000.0);
}
