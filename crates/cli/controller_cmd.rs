//! `rlscale controller` (its arguments and run live in `rlscale_controller::cli`, shared with the
//! slim `rlscale-controller` binary) and `rlscale crdgen`.

use clap::Parser;

pub use rlscale_controller::cli::{Args, run};

/// Print the RLAutoscaler CRD.
#[derive(Debug, Parser)]
pub struct CrdgenArgs {}

pub fn run_crdgen(_args: CrdgenArgs) -> anyhow::Result<()> {
    print!("{}", rlscale_controller::crd_yaml());
    Ok(())
}
