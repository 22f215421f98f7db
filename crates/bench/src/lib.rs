//! Benchmark harnesses of rlscale that set up more than the code they measure, kept out of the CLI so
//! that it stays a thin layer of argument parsing and output (issue 18).
//!
//! - [`controller`]: `rlscale bench --controller N`, one controller process managing N RLAutoscalers
//!   against the in-repo test API server, for `BENCHMARKS.md`.

#![warn(missing_docs)]

pub mod controller;
