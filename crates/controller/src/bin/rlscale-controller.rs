//! `rlscale-controller`: the Kubernetes controller alone, the binary the image in `deploy/` runs.
//!
//! The same arguments, checks, logs and exit codes as `rlscale controller` (`rlscale_controller::cli`),
//! without what the rest of the `rlscale` CLI links (burn, plotters, tensorboard-rs, the test API
//! server). Exit code 0 on a clean stop, 2 for bad input, 1 for any other failure.

use std::process::ExitCode;

use clap::Parser;
use rlscale_controller::cli;

/// The rlscale Kubernetes controller (RLAutoscaler CRD; active and shadow modes).
#[derive(Debug, Parser)]
#[command(name = "rlscale-controller", version)]
struct Cli {
    #[command(flatten)]
    args: cli::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(true);
    match cli::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
