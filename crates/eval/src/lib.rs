//! rlscale's yardstick: the hindsight oracle, fair tuning of the baselines, and the evaluation matrix
//! with its tables and plots.
//!
//! * [`oracle`]: the lower bound on any policy's objective, and the hindsight schedule played as a policy.
//! * [`policies`]: policy names (`hpa`, `hpa-tuned`, `static:8`, `oracle`) and building them.
//! * [`matrix`]: scenario × policy × seed in parallel (rayon).
//! * [`tune`]: grid search of a baseline's main knob on a training window, scored on another.
//! * [`report`]: the Markdown table, CSV, JSON and plots.
//! * [`plot`]: the plots (plotters; PNG and SVG).
//! * [`shadow`]: the shadow report: the controller's shadow-mode decision log, its divergence from the
//!   HPA, and a counterfactual replay in the simulator.
#![warn(missing_docs)]

pub mod matrix;
pub mod oracle;
pub mod planner;
pub mod plot;
pub mod policies;
pub mod report;
pub mod shadow;
pub mod tune;
