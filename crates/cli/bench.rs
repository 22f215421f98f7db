//! `rlscale bench`: simulator speed, for BENCHMARKS.md.
//!
//! Two figures, each from one timed run in this process:
//! - simulated requests per second (wall clock, one core): a long episode of a request-heavy scenario;
//! - control steps per second on a training-sized episode (one simulated day of 15 s steps).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use rlscale_sim::{Overrides, Scenario, SimEnv, run_episode};

use crate::policy_spec;
use rlscale_eval::policies::PolicyChoice;

/// Arguments of `rlscale bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario of the throughput run.
    #[arg(long, default_value = "diurnal-8b-l4-v1", value_name = "ID|PATH")]
    scenario: String,

    /// Mean arrival rate to run it at, requests/s (rates are scaled so that the scenario's mean is this).
    #[arg(long, default_value_t = 100.0)]
    mean_rps: f64,

    /// Simulated days of the throughput run.
    #[arg(long, default_value_t = 7.0)]
    days: f64,

    /// Policy of both runs (default: static at the scenario's maximum, so that nothing is dropped).
    #[arg(long, value_name = "SPEC")]
    policy: Option<String>,

    /// Control steps of the training-sized episode.
    #[arg(long, default_value_t = 5760)]
    train_steps: u64,

    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Mean arrival rate of a scenario's process, estimated by running its arrival stream alone for a week.
fn mean_rate(scenario: &Scenario) -> f64 {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12345);
    let horizon = 7.0 * 86_400.0;
    let mut s = rlscale_sim::arrivals::ArrivalStream::new(
        &scenario.arrivals,
        scenario.start_unix_s,
        1.0,
        &mut rng,
    );
    let mut n = 0u64;
    while s.next_arrival(&mut rng) < horizon {
        n += 1;
    }
    n as f64 / horizon
}

/// One episode through the shared episode runner, timed: (requests, steps, seconds).
fn timed_episode(
    scenario: Arc<Scenario>,
    policy: &PolicyChoice,
    seed: u64,
) -> Result<(u64, u64, f64)> {
    let steps = scenario.file.max_episode_steps;
    let mut p = policy_spec::build(policy, &scenario, seed, steps)?;
    let mut env = SimEnv::new(scenario);
    let started = Instant::now();
    let summary = run_episode(&mut env, p.as_mut(), seed, |_| {});
    Ok((
        summary.arrivals,
        summary.steps,
        started.elapsed().as_secs_f64(),
    ))
}

/// Run the subcommand.
pub fn run(envs: &Path, args: Args) -> Result<()> {
    let base = Scenario::resolve(envs, &args.scenario, &Overrides::default())?;
    let scale = args.mean_rps / mean_rate(&base);
    let steps = (args.days * 86_400.0 / base.file.control_interval_s).round() as u64;
    let name = args
        .policy
        .clone()
        .unwrap_or(format!("static:{}", base.file.replicas.max));
    let policy = policy_spec::parse(&name, &policy_spec::configs_dir(&None))?;
    let overrides = Overrides {
        trace: None,
        max_episode_steps: Some(steps),
        rate_scale: Some(scale),
        window_offset_s: None,
    };
    let scenario = Arc::new(Scenario::resolve(envs, &args.scenario, &overrides)?);
    let (requests, steps, secs) = timed_episode(scenario, &policy, args.seed)?;
    println!(
        "throughput: {} {:.1} simulated days at {:.0} req/s mean, policy {}: {} requests in {:.2} s = {:.2} M simulated requests/s, {:.0} control steps/s",
        args.scenario,
        args.days,
        args.mean_rps,
        name,
        requests,
        secs,
        requests as f64 / secs / 1e6,
        steps as f64 / secs
    );

    let overrides = Overrides {
        trace: None,
        max_episode_steps: Some(args.train_steps),
        rate_scale: None,
        window_offset_s: None,
    };
    let scenario = Arc::new(Scenario::resolve(envs, &args.scenario, &overrides)?);
    let name = args.policy.clone().unwrap_or("static".into());
    let policy = policy_spec::parse(&name, &policy_spec::configs_dir(&None))?;
    let (requests, steps, secs) = timed_episode(scenario, &policy, args.seed)?;
    println!(
        "training-sized episode: {} {} steps at the scenario's own rates, policy {}: {:.3} s = {:.0} control steps/s ({} requests)",
        args.scenario,
        steps,
        name,
        secs,
        steps as f64 / secs,
        requests
    );
    Ok(())
}
