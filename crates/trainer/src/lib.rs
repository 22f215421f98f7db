//! The rlscale trainer: PPO on burn (CPU, `flex` backend with autodiff).
//!
//! * [`env`]: the learner's view of an environment and the parallel vector env;
//! * [`cartpole`]: CartPole-v1 to Gymnasium's spec, the learner's sanity check;
//! * [`norm`]: running observation and reward normalisation;
//! * [`net`]: the actor-critic network;
//! * [`ppo`]: the algorithm, cleanrl-style;
//! * [`simenv`]: the autoscaling simulator over a scenario mixture.
#![warn(missing_docs)]

pub mod cartpole;
pub mod checkpoint;
pub mod env;
pub mod net;
pub mod norm;
pub mod ppo;
pub mod run;
pub mod simenv;

pub use rlscale_runtime::atomic_write;
