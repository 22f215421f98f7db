//! Integration tests of the `rlscale` package: the scenarios in `envs/`, the simulator through them, and
//! the command line as users run it.

mod util;

mod cli;
mod conformance;
mod golden;
mod traces;
