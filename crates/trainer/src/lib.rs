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

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed over
/// `path`, so a crash leaves either the old file or the new one, never half of one.
pub fn atomic_write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
