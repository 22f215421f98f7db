//! rlscale's yardstick: the hindsight oracle, fair tuning of the baselines, and the evaluation matrix
//! with its tables and plots.
#![warn(missing_docs)]

pub mod plot;
