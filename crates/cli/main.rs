//! `rlscale`: learn how many GPU model-serving replicas to run, and prove it before production.
//!
//! One binary, one subcommand per job (clap derive; doc comments are the help text). `main` returns an
//! exit code: 0 on success, 2 for bad input (arguments, configs, scenario or trace files), 1 for any
//! other failure; the error chain is printed with `{:#}` (ripgrep's `main`).

mod bench;
mod controller_cmd;
mod dev_cluster;
mod evaluate;
mod fake_server;
mod fit;
mod fsutil;
mod history;
mod policy_spec;
mod runtime_cmd;
mod scenarios;
mod select;
mod shadow_report;
mod simulate;
mod train;
mod tune;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Learned autoscaling for GPU model serving (vLLM, Triton, TGI on Kubernetes).
///
/// Simulate serving scenarios with real cold starts, queues, SLOs and GPU cost; score autoscaling
/// policies on them. Scenarios live in `envs/` (see `rlscale scenarios`).
#[derive(Debug, Parser)]
#[command(name = "rlscale", version, propagate_version = true)]
struct Cli {
    /// Folder of scenario files [default: ./envs if present, else the envs/ shipped with the source].
    #[arg(long, global = true, value_name = "DIR")]
    envs: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the scenarios in envs/ with their service profiles.
    Scenarios(scenarios::Args),
    /// Run one policy through one scenario and print GPU cost, SLO attainment and latency.
    Simulate(simulate::Args),
    /// Measure simulator speed: simulated requests per second and control steps per second.
    Bench(bench::Args),
    /// Score policies (baselines, tuned baselines, the hindsight oracle) on scenarios × seeds in
    /// parallel: a Markdown table, CSV, JSON and plots.
    Evaluate(evaluate::Args),
    /// Tune a baseline's main knob per scenario (least cost at the SLO target) into
    /// configs/baselines/<law>-tuned.toml.
    Tune(tune::Args),
    /// Train a PPO policy on a scenario mixture (configs/ppo.toml) into runs/, resumable, and export
    /// the model file.
    Train(train::Args),
    /// Inspect a model file: format, feature schema, sizes, provenance and validation scores.
    Model(runtime_cmd::ModelArgs),
    /// Run snapshots through the runtime's decision pipeline and show each decision with its reason
    /// chain (model, fallback and why, guardrails that clipped it).
    Decide(runtime_cmd::DecideArgs),
    /// Run the Kubernetes controller: watch RLAutoscalers, read Prometheus, scale (Active) or record
    /// beside the HPA (Shadow). Logs are JSON lines on stderr.
    Controller(controller_cmd::Args),
    /// Print the RLAutoscaler CustomResourceDefinition (YAML).
    Crdgen(controller_cmd::CrdgenArgs),
    /// Stand in for a vLLM Deployment: the simulator plays its replicas (read from the API server)
    /// and serves vLLM/DCGM-style /metrics for Prometheus. For tests and `rlscale dev-cluster`.
    FakeServer(fake_server::Args),
    /// Watch the controller scale on this machine: the in-repo test API server, the fake model
    /// server, a real Prometheus (Debian's package) and the controller, with a line per second.
    DevCluster(dev_cluster::Args),
    /// Turn the controller's shadow-mode decision log into a go/no-go report (Markdown, HTML, plots):
    /// divergence from the HPA, earlier or later scaling, and a counterfactual replay in the simulator.
    ShadowReport(shadow_report::Args),
    /// Pull a workload's request-rate history from Prometheus (or the controller's decision log)
    /// into a trace CSV for simulate, tune and train.
    History(history::Args),
    /// For one workload (a scenario, or a trace on a service profile): tune every rule's main knob,
    /// fine-tune the shipped model, and score them all, default HPA and the hindsight schedule on a
    /// later window with other seeds. Writes report.md, report.html, results.json, the fine-tuned
    /// model and an RLAutoscaler for the winner; resumable, bounded by --budget.
    Fit(fit::Args),
}

/// An error caused by the user's input (exit code 2), as opposed to a failure while working (exit code 1).
/// The controller's type, so that `rlscale controller` and `rlscale-controller` agree.
pub use rlscale_controller::cli::BadInput;

/// The exit code for an error: 2 when it (or its cause) is bad input, 1 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|e| {
        e.is::<BadInput>()
            || matches!(
                e.downcast_ref::<rlscale_sim::Error>(),
                Some(
                    rlscale_sim::Error::Parse { .. }
                        | rlscale_sim::Error::Invalid { .. }
                        | rlscale_sim::Error::Trace { .. }
                        | rlscale_sim::Error::NotFound { .. }
                        | rlscale_sim::Error::TraceNotSupplied { .. }
                        | rlscale_sim::Error::Io { .. }
                )
            )
    });
    if bad_input { 2 } else { 1 }
}

/// The scenario folder: `--envs`, else `./envs`, else the one beside the source.
pub fn envs_dir(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    let local = PathBuf::from("envs");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("envs")
}

/// Logs go to stderr, filtered by `RUST_LOG`: JSON lines at `info` for the controller, text at `warn`
/// for the rest (`rlscale_controller::cli::init_tracing`).
fn init_tracing(controller: bool) {
    rlscale_controller::cli::init_tracing(controller);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Controller(_)));
    let envs = envs_dir(&cli.envs);
    let result = match cli.command {
        Command::Scenarios(args) => scenarios::run(&envs, args),
        Command::Simulate(args) => simulate::run(&envs, args),
        Command::Bench(args) => bench::run(&envs, args),
        Command::Evaluate(args) => evaluate::run(&envs, args),
        Command::Tune(args) => tune::run(&envs, args),
        Command::Train(args) => train::run(&envs, args),
        Command::Model(args) => runtime_cmd::run_model(args),
        Command::Decide(args) => runtime_cmd::run_decide(args),
        Command::Controller(args) => controller_cmd::run(args),
        Command::Crdgen(args) => controller_cmd::run_crdgen(args),
        Command::FakeServer(args) => fake_server::run(&envs, args),
        Command::DevCluster(args) => dev_cluster::run(&envs, args),
        Command::ShadowReport(args) => shadow_report::run(&envs, args),
        Command::History(args) => history::run(args),
        Command::Fit(args) => fit::run(&envs, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
