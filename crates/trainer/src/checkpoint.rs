//! Checkpoints: everything a run needs to go on where it stopped.
//!
//! A checkpoint is a folder `ckpt-<iteration>/` holding `model.bpk` (burn's burnpack of the network),
//! `optim.bpk` (Adam's moments, keyed by the network's parameter ids) and `state.json` (counters,
//! normalisers, random streams). It is written into a temporary folder and renamed into place, and
//! `latest` (a one-line file naming the newest folder) is replaced atomically after it: a crash at any
//! point leaves the previous checkpoint whole.
//!
//! What a resume does not restore: the simulator's state mid-episode. The envs start fresh episodes
//! from their restored seed streams, so the run continues with the same weights, optimiser moments,
//! normalisers and counters, but its next rollout is not the one an uninterrupted run would have seen.

use std::path::{Path, PathBuf};

use burn::module::Module;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::env::TrainEnv;
use crate::norm::{RewardScaler, RunningMeanStd};
use crate::ppo::{Ppo, PpoConfig};
use rlscale_runtime::model::FeatureRanges;

/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A ChaCha8 generator's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// Key.
    pub seed: [u8; 32],
    /// Stream.
    pub stream: u64,
    /// Word position (as a string: JSON numbers stop at 2^53).
    pub word_pos: String,
}

impl RngState {
    /// Capture `r`.
    pub fn of(r: &ChaCha8Rng) -> Self {
        RngState {
            seed: r.get_seed(),
            stream: r.get_stream(),
            word_pos: r.get_word_pos().to_string(),
        }
    }

    /// Rebuild the generator.
    pub fn restore(&self) -> Result<ChaCha8Rng, String> {
        use rand::SeedableRng;
        let mut r = ChaCha8Rng::from_seed(self.seed);
        r.set_stream(self.stream);
        r.set_word_pos(
            self.word_pos
                .parse()
                .map_err(|_| format!("word_pos `{}` is not a number", self.word_pos))?,
        );
        Ok(r)
    }
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The configuration the run started with.
    pub cfg: PpoConfig,
    /// Iterations done.
    pub iteration: u64,
    /// Env steps done.
    pub global_step: u64,
    /// Observation statistics.
    pub obs_rms: RunningMeanStd,
    /// Raw feature ranges seen.
    pub feature_ranges: FeatureRanges,
    /// Reward scaler (with a split critic: the cost part's).
    pub reward_scaler: RewardScaler,
    /// With a split critic: the violation part's scale and the multipliers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitState>,
    /// The learner's stream (actions, minibatches).
    pub rng: RngState,
    /// Each env's episode-seed stream.
    pub env_rngs: Vec<RngState>,
}

/// A split critic's state beside the shared one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitState {
    /// The violation part's return scale.
    pub viol_scaler: RewardScaler,
    /// The violation multipliers.
    pub lagrange: crate::ppo::Lagrange,
}

/// Errors of saving and loading checkpoints, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint does not fit this run.
    #[error("{path}: {message}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Delete all but the newest `keep` checkpoint folders under `dir`, newest by iteration number
/// (names grow past `ckpt-999999` to seven digits). `current`, the one just written, always stays.
fn prune(dir: &Path, keep: usize, current: &Path) -> Result<(), CheckpointError> {
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p != current)
        .filter_map(|p| {
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("ckpt-")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    all.sort();
    let n = all.len();
    for (_, old) in all.into_iter().take(n.saturating_sub(keep.max(1) - 1)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// fsync a file or a folder.
fn sync_path(p: &Path) -> std::io::Result<()> {
    std::fs::File::open(p)?.sync_all()
}

/// The newest checkpoint folder under `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    let f = dir.join("latest");
    match std::fs::read_to_string(&f) {
        Ok(name) => Ok(Some(dir.join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&f, e)),
    }
}

impl<E: TrainEnv> Ppo<E> {
    /// Write a checkpoint of the current state under `dir` (see the module doc) and keep the newest
    /// `keep` of them. Returns the checkpoint's folder.
    pub fn save_checkpoint(&self, dir: &Path, keep: usize) -> Result<PathBuf, CheckpointError> {
        let name = format!("ckpt-{:06}", self.iteration);
        let dest = dir.join(&name);
        let lf = dir.join("latest");
        if dest.join("state.json").is_file() {
            // This iteration is saved already (say, Ctrl-C right after a periodic save, or a resume
            // that stopped before its first iteration): the state is the same, and deleting the
            // folder to write it again would open a window with no checkpoint at all.
            crate::atomic_write(&lf, name.as_bytes()).map_err(|e| io(&lf, e))?;
            return Ok(dest);
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        let model = tmp.join("model.bpk");
        self.model
            .clone()
            .save_file(&model)
            .map_err(|e| io(&model, format!("{e:?}")))?;
        let optim = tmp.join("optim.bpk");
        self.optim()
            .save(&optim)
            .map_err(|e| io(&optim, format!("{e:?}")))?;
        let state = TrainerState {
            version: CHECKPOINT_VERSION,
            cfg: self.cfg.clone(),
            iteration: self.iteration,
            global_step: self.global_step,
            obs_rms: self.obs_rms.clone(),
            feature_ranges: self.feature_ranges.clone(),
            reward_scaler: self.reward_scaler().clone(),
            split: self.cfg.split_critic.then(|| SplitState {
                viol_scaler: self.viol_scaler().clone(),
                lagrange: self.lagrange.clone(),
            }),
            rng: RngState::of(self.rng()),
            env_rngs: self.envs().rngs().iter().map(RngState::of).collect(),
        };
        let sf = tmp.join("state.json");
        let text = serde_json::to_string_pretty(&state).map_err(|e| io(&sf, e))?;
        crate::atomic_write(&sf, text.as_bytes()).map_err(|e| io(&sf, e))?;
        // burn writes the .bpk files without fsync: flush them and the folder before the rename
        // makes the checkpoint visible, and the parent after it, so `latest` never names a
        // checkpoint whose data a power cut could lose.
        for f in [&model, &optim] {
            sync_path(f).map_err(|e| io(f, e))?;
        }
        sync_path(&tmp).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
        sync_path(dir).map_err(|e| io(dir, e))?;
        crate::atomic_write(&lf, name.as_bytes()).map_err(|e| io(&lf, e))?;
        prune(dir, keep, &dest)?;
        Ok(dest)
    }

    /// A learner over `envs` resumed from the checkpoint folder `ckpt`. The configuration must equal
    /// the checkpoint's, except `total_timesteps` (a run may be extended).
    pub fn resume(cfg: PpoConfig, envs: Vec<E>, ckpt: &Path) -> Result<Self, CheckpointError> {
        let sf = ckpt.join("state.json");
        let text = std::fs::read_to_string(&sf).map_err(|e| io(&sf, e))?;
        let state: TrainerState = serde_json::from_str(&text).map_err(|e| io(&sf, e))?;
        let mismatch = |message: String| CheckpointError::Mismatch {
            path: sf.clone(),
            message,
        };
        if state.version != CHECKPOINT_VERSION {
            return Err(mismatch(format!(
                "checkpoint version {} (this build reads {CHECKPOINT_VERSION})",
                state.version
            )));
        }
        let same = PpoConfig {
            total_timesteps: cfg.total_timesteps,
            ..state.cfg.clone()
        };
        if same != cfg {
            return Err(mismatch(
                "the configuration differs from the checkpoint's (only total_timesteps may change)"
                    .into(),
            ));
        }
        let mut p = Ppo::new(cfg, envs).map_err(mismatch)?;
        let mf = ckpt.join("model.bpk");
        p.model = p
            .model
            .clone()
            .try_load_file(&mf)
            .map_err(|e| io(&mf, format!("{e:?}")))?;
        let of = ckpt.join("optim.bpk");
        p.load_optim(&of).map_err(|e| io(&of, e))?;
        p.iteration = state.iteration;
        p.global_step = state.global_step;
        p.obs_rms = state.obs_rms;
        p.feature_ranges = state.feature_ranges;
        let rng = state.rng.restore().map_err(mismatch)?;
        let env_rngs = state
            .env_rngs
            .iter()
            .map(RngState::restore)
            .collect::<Result<Vec<_>, _>>()
            .map_err(mismatch)?;
        if env_rngs.len() != p.cfg.num_envs {
            return Err(mismatch(format!(
                "{} env streams for num_envs = {}",
                env_rngs.len(),
                p.cfg.num_envs
            )));
        }
        p.restore_streams(rng, state.reward_scaler, env_rngs);
        if let Some(split) = state.split {
            p.restore_viol_scaler(split.viol_scaler);
            p.lagrange = split.lagrange;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cartpole::CartPole;

    fn cfg() -> PpoConfig {
        PpoConfig {
            seed: 4,
            total_timesteps: 20 * 512,
            norm_obs: true,
            norm_reward: true,
            // Per-task scales travel in the checkpoint too (CartPole is one task).
            norm_reward_per_task: true,
            // And the return statistics' horizon.
            norm_reward_horizon: Some(1000),
            ..PpoConfig::default()
        }
    }

    fn envs() -> Vec<CartPole> {
        (0..4).map(|_| CartPole::default()).collect()
    }

    #[test]
    fn a_resumed_run_continues_exactly_where_the_checkpoint_left_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Ppo::new(cfg(), envs()).unwrap();
        for _ in 0..3 {
            a.iterate();
        }
        let ck = a.save_checkpoint(dir.path(), 2).unwrap();
        assert_eq!(latest(dir.path()).unwrap(), Some(ck.clone()));
        let mut b = Ppo::resume(cfg(), envs(), &ck).unwrap();
        assert_eq!(b.iteration, 3);
        assert_eq!(b.global_step, a.global_step);
        assert_eq!(b.obs_rms, a.obs_rms);
        assert_eq!(b.model.actor.to_dense(), a.model.actor.to_dense());
        // Put the original through the same episode restart a resume does: from then on the two must
        // agree bit for bit, which needs the optimiser moments and every stream restored.
        let (rng, scaler, env_rngs) = (a.rng().clone(), a.reward_scaler().clone(), a.envs().rngs());
        a.restore_streams(rng, scaler, env_rngs);
        for _ in 0..2 {
            let (sa, sb) = (a.iterate(), b.iterate());
            assert_eq!(
                (sa.value_loss, sa.policy_loss, sa.approx_kl),
                (sb.value_loss, sb.policy_loss, sb.approx_kl)
            );
        }
        assert_eq!(b.model.critic.to_dense(), a.model.critic.to_dense());
    }

    #[test]
    fn old_checkpoints_are_pruned_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Ppo::new(cfg(), envs()).unwrap();
        for _ in 0..4 {
            a.iterate();
            a.save_checkpoint(dir.path(), 2).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ckpt-000003", "ckpt-000004", "latest"]);
        let ck = latest(dir.path()).unwrap().unwrap();
        // Another configuration is refused, naming the file.
        let other = PpoConfig {
            learning_rate: 1e-3,
            ..cfg()
        };
        let e = Ppo::resume(other, envs(), &ck).err().unwrap().to_string();
        assert!(
            e.contains("state.json") && e.contains("configuration differs"),
            "{e}"
        );
        // A longer run is fine.
        let longer = PpoConfig {
            total_timesteps: 40 * 512,
            ..cfg()
        };
        assert!(Ppo::resume(longer, envs(), &ck).is_ok());
        // Saving an iteration that is saved already leaves that folder in place.
        std::fs::write(ck.join("marker"), b"").unwrap();
        assert_eq!(a.save_checkpoint(dir.path(), 2).unwrap(), ck);
        assert!(ck.join("marker").exists());
        // A truncated model file is an error, not a panic.
        std::fs::write(ck.join("model.bpk"), b"not a burnpack").unwrap();
        let e = Ppo::resume(cfg(), envs(), &ck).err().unwrap().to_string();
        assert!(e.contains("model.bpk"), "{e}");
    }

    #[test]
    fn pruning_orders_by_iteration_number_and_keeps_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "ckpt-999998",
            "ckpt-999999",
            "ckpt-1000000",
            "ckpt-1000001",
            "other",
        ] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        prune(dir.path(), 2, &dir.path().join("ckpt-1000001")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ckpt-1000000", "ckpt-1000001", "other"]);
        // The one just written stays even when larger numbers exist.
        prune(dir.path(), 1, &dir.path().join("ckpt-999998")).unwrap();
        assert!(!dir.path().join("ckpt-1000000").exists());
        assert!(!dir.path().join("ckpt-1000001").exists());
    }
}
