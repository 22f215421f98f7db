//! rlscale's simulator: GPU model-serving replicas under request-level discrete-event simulation.
//!
//! # Layout
//! - [`config`]: scenario (`envs/*.toml`) and service-profile (`envs/profiles/*.toml`) files, raw and
//!   validated.
//! - [`trace`]: CSV arrival traces.
//! - [`arrivals`]: arrival processes (Poisson, diurnal, MMPP, flash crowd, steps/ramps, on/off, trace
//!   replay) as non-homogeneous Poisson streams.
//! - [`dist`]: distributions of cold-start phases and request sizes.
//! - [`replica`]: one replica's lifecycle and processor-sharing service.
//! - [`metrics`]: latency histograms, Prometheus-style and summary.
//! - [`mintree`]: the tournament trees that make each event O(log replicas).
//! - [`env`]: [`SimEnv`], the event loop behind the [`rlscale_core::Env`] trait.
//! - [`episode`]: running a [`rlscale_core::Policy`] through an episode, with a [`Summary`] and a timeline.
//!
//! Data flow: scenario → `SimEnv::reset(seed)` → per step: action → events → scrapes →
//! `MetricsSnapshot` → `features()` → observation, reward and a typed `StepInfo`.
#![warn(missing_docs)]

pub mod arrivals;
pub mod config;
pub mod dist;
pub mod env;
pub mod episode;
pub mod error;
pub mod metrics;
pub mod mintree;
pub mod replica;
pub mod trace;

pub use config::{Overrides, Profile, ProfileScale, Scenario};
pub use env::{Demand, Request, SimEnv, Totals};
pub use episode::{Summary, TimelineRow, run_episode};
pub use error::{Error, Result};
pub use trace::Trace;
