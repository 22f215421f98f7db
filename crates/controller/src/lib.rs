//! The rlscale Kubernetes controller.
//!
//! # Layout
//! - [`crd`]: the `RLAutoscaler` custom resource (`rlscale.dev/v1alpha1`) and its status;
//! - [`prom`]: PromQL instant queries against the Prometheus HTTP API, every failure typed;
//! - [`decide`]: the pure part of a reconcile (spec validation, the snapshot, conditions);
//! - [`controller`]: the reconcile loop, active and shadow modes, Events, the decision log, `run`;
//! - [`lease`]: leader election over a `coordination.k8s.io/v1` Lease (client-go's semantics);
//! - [`loglimit`]: which repeated failure lines are logged (the first, then one a minute);
//! - [`metrics`]: the controller's own Prometheus metrics.
//!
//! Data flow per object and interval: Prometheus → [`rlscale_core::MetricsSnapshot`] (the type the
//! simulator fills in training) → `rlscale_runtime::Runtime` (features, model, fallback, guardrails) →
//! the target's scale subresource (active) or the status, metrics and log beside the HPA (shadow).
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod controller;
pub mod crd;
pub mod decide;
pub mod lease;
pub mod loglimit;
pub mod metrics;
pub mod prom;

pub use controller::{Context, Options, reconcile, run};
pub use crd::{RLAutoscaler, RLAutoscalerSpec, RLAutoscalerStatus, crd_yaml};
pub use lease::LeaseConfig;
