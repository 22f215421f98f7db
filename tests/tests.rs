//! Integration tests of the `rlscale` package: the scenarios in `envs/`, the simulator through them, and
//! the command line as users run it.

mod util;

mod cli;
mod conformance;
mod e2e;
mod golden;
mod traces;
