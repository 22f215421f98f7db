//! rlscale's shared vocabulary.
//!
//! # Layout
//! - [`snapshot`]: [`MetricsSnapshot`], what a cluster's Prometheus can tell at one instant, and the
//!   [`ServiceProfile`] it carries.
//! - [`features`]: the ONE function [`features()`] that turns a snapshot into an [`Observation`], with its
//!   fixed feature order ([`FEATURE_NAMES`]), schema version ([`OBS_SCHEMA_VERSION`]) and bounds ([`ObsSpace`]).
//! - [`action`]: the action tables ([`ActionTable`]: replica deltas [`ACTION_DELTAS`], or demand-relative
//!   target utilizations) with their mask at min/max, [`Action`] (hold or a replica count) and
//!   [`ActionSpace`] (the bounds).
//! - [`policy`]: the [`Policy`] trait and its [`Decision`].
//! - [`env`]: the Gymnasium-like [`Env`] trait, [`Step`], [`StepInfo`] and the conformance check [`check_env`].
//! - [`time`]: [`SimTime`], the time every control law receives as an argument.
//!
//! Data flows one way: simulator or controller → `MetricsSnapshot` → `features` → policy → `Decision`.
//! The simulator and the controller both build the same snapshot type, so a policy trained in simulation
//! sees exactly the same inputs in a cluster.
#![warn(missing_docs)]

pub mod action;
pub mod env;
pub mod features;
pub mod policy;
pub mod snapshot;
pub mod time;

pub use action::{ACTION_DELTAS, Action, ActionSpace, ActionSpec, ActionTable, N_ACTIONS};
pub use env::{Env, EnvError, Step, StepInfo, check_env};
pub use features::{
    FEATURE_NAMES, N_FEATURES, N_FEATURES_V1, OBS_SCHEMA_VERSION, ObsSpace, Observation, features,
    n_features,
};
pub use policy::{Decision, Policy, Reason, Source};
pub use snapshot::{MetricsSnapshot, ServiceProfile};
pub use time::SimTime;
