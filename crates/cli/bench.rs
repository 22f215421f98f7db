//! `rlscale bench`: simulator and runtime speed, for BENCHMARKS.md.
//!
//! Two figures, each from one timed run in this process:
//! - simulated requests per second (wall clock, one core): a long episode of a request-heavy scenario;
//! - control steps per second on a training-sized episode (one simulated day of 15 s steps).
//!
//! With `--runtime MODEL`, instead: the runtime's decision latency (p50, p99, max over single decisions
//! on snapshots recorded from the simulator), the bare forward pass, and the model's load time.
//!
//! With `--controller N`, instead: one `rlscale controller` process managing N RLAutoscalers against the
//! in-repo test API server and a Prometheus-API responder: its CPU, RSS, reconcile latency and decision
//! rate (see `crates/bench/src/controller.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use rlscale_core::Policy;
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

    /// Benchmark the runtime's decision pipeline with this model file instead of the simulator.
    #[arg(long, value_name = "MODEL")]
    runtime: Option<std::path::PathBuf>,

    /// Decisions to time (with --runtime).
    #[arg(long, default_value_t = 1_000_000)]
    decisions: usize,

    /// Benchmark the Kubernetes controller managing N RLAutoscalers instead (a separate process
    /// against the in-repo test API server and a Prometheus-API responder).
    #[arg(long, value_name = "N", conflicts_with = "runtime")]
    controller: Option<usize>,

    #[command(flatten)]
    controller_opts: rlscale_bench::controller::ControllerArgs,
}

/// A policy that records every snapshot it is shown and lets `inner` decide.
struct Recorder<P> {
    inner: P,
    seen: Vec<(rlscale_core::MetricsSnapshot, rlscale_core::SimTime)>,
}

impl<P: rlscale_core::Policy> rlscale_core::Policy for Recorder<P> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn decide(
        &mut self,
        s: &rlscale_core::MetricsSnapshot,
        now: rlscale_core::SimTime,
    ) -> rlscale_core::Decision {
        self.seen.push((*s, now));
        self.inner.decide(s, now)
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
}

/// Percentile `q` (0–1) of sorted `v`.
fn pct(v: &[u64], q: f64) -> u64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `rlscale bench --runtime MODEL`.
fn bench_runtime(envs: &Path, args: &Args, model_path: &Path) -> Result<()> {
    use rlscale_runtime::{ModelFile, Runtime, RuntimeConfig};
    // Load time: the median of 21 loads (read, parse, validate).
    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..21 {
        let t = Instant::now();
        let m = ModelFile::load(model_path).map_err(|e| crate::BadInput(e.to_string()))?;
        loads.push(t.elapsed().as_nanos() as u64);
        model = Some(m);
    }
    loads.sort_unstable();
    let model = Arc::new(model.expect("loaded above"));
    let bytes = std::fs::metadata(model_path).map_or(0, |m| m.len());

    // Snapshots as the simulator shows them, with their decision times: one day of the scenario
    // under the model itself (so the runtime sees the states its own decisions lead to).
    let overrides = Overrides {
        max_episode_steps: Some(5760),
        ..Overrides::default()
    };
    let scenario = Arc::new(Scenario::resolve(envs, &args.scenario, &overrides)?);
    let r = scenario.file.replicas;
    let cfg = RuntimeConfig::new(r.min, r.max);
    let rt = Runtime::new(Ok(model.clone()), cfg, "bench")
        .map_err(|e| crate::BadInput(e.to_string()))?;
    let mut rec = Recorder {
        inner: rt.clone(),
        seen: Vec::new(),
    };
    let mut env = SimEnv::new(scenario.clone());
    run_episode(&mut env, &mut rec, args.seed, |_| {});
    let snaps = rec.seen;

    // Decision latency: each decision timed on its own, cycling through the day's snapshots in order
    // (the runtime keeps its guardrail state as in a cluster); one warm-up pass first.
    let mut rt = rt;
    let n = args.decisions.max(1);
    let mut lat = Vec::with_capacity(n);
    let mut sources = std::collections::BTreeMap::<String, u64>::new();
    for (s, now) in &snaps {
        std::hint::black_box(rt.decide(s, *now));
    }
    rt.reset();
    for i in 0..n {
        let (s, now) = &snaps[i % snaps.len()];
        if i % snaps.len() == 0 {
            rt.reset();
        }
        let t = Instant::now();
        let d = std::hint::black_box(rt.decide(std::hint::black_box(s), *now));
        lat.push(t.elapsed().as_nanos() as u64);
        if i < snaps.len() {
            *sources
                .entry(format!("{}/{}", d.source, d.reason))
                .or_default() += 1;
        }
    }
    lat.sort_unstable();
    // The bare forward pass (features + network), for reference.
    let mut fwd = Vec::with_capacity(n.min(200_000));
    for i in 0..n.min(200_000) {
        let (s, _) = &snaps[i % snaps.len()];
        let t = Instant::now();
        let obs = rlscale_core::features(std::hint::black_box(s));
        std::hint::black_box(model.logits(&obs.0));
        fwd.push(t.elapsed().as_nanos() as u64);
    }
    fwd.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "runtime: model {} ({bytes} bytes), load (read + parse + validate) median {:.2} ms over 21 loads",
        model_path.display(),
        us(loads[10]) / 1000.0
    );
    println!(
        "runtime: {n} decisions on {} snapshots of {} (one core): p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs",
        snaps.len(),
        args.scenario,
        us(pct(&lat, 0.5)),
        us(pct(&lat, 0.99)),
        us(pct(&lat, 0.999)),
        us(*lat.last().expect("n >= 1")),
    );
    println!(
        "runtime: features + forward pass alone: p50 {:.2} µs, p99 {:.2} µs",
        us(pct(&fwd, 0.5)),
        us(pct(&fwd, 0.99))
    );
    let total: u64 = sources.values().sum();
    let shares: Vec<String> = sources
        .iter()
        .map(|(k, v)| format!("{k} {:.1} %", 100.0 * *v as f64 / total as f64))
        .collect();
    println!("runtime: decisions over the day: {}", shares.join(", "));
    Ok(())
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
    if let Some(n) = args.controller {
        let opts = &args.controller_opts;
        let model = crate::dev_cluster::resolve_model(opts.model.as_deref())?;
        let summary = rlscale_bench::controller::run(n, opts, &model)?;
        rlscale_bench::controller::print_summary(&summary);
        if let Some(out) = &opts.out {
            let mut f = crate::fsutil::AtomicFile::create(out)?;
            f.line(&serde_json::to_string_pretty(&summary)?)?;
            f.commit()?;
            println!("\nwrote {}", out.display());
        }
        return Ok(());
    }
    if let Some(m) = &args.runtime {
        return bench_runtime(envs, &args, m);
    }
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
        profile_scale: None,
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
        profile_scale: None,
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
