//! Integration tests of the `rlscale` package: the scenarios in `envs/`, the simulator through them, and
//! the command line as users run it.

mod util;

mod bench_controller;
mod cli;
mod conformance;
mod dev_cluster;
mod e2e;
mod faults;
mod fit;
mod fuzz_loaders;
mod golden;
mod history;
mod leader;
mod rbac;
mod shadow_report;
mod traces;
