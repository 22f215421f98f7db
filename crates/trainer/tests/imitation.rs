//! The imitation term: a teacher's labels on the states the learner visits (DAgger), learnt by the
//! cross-entropy `bc_coef` weighs.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_trainer::env::TrainEnv;
use rlscale_trainer::ppo::{Ppo, PpoConfig};
use rlscale_trainer::simenv::{MixEntry, SimTrainEnv, Teacher};

fn diurnal() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/diurnal-8b-l4-v1.toml")
}

fn mix() -> Arc<[MixEntry]> {
    vec![MixEntry {
        max_offset_s: 518_400.0,
        min_offset_s: 0.0,
        rate_scale: [0.7, 1.4],
        ..MixEntry::new(diurnal(), 120)
    }]
    .into()
}

/// `n` envs on [`mix`], each labelled by the heuristic oracle.
fn taught_envs(n: usize) -> Vec<SimTrainEnv> {
    (0..n)
        .map(|_| SimTrainEnv::new(mix()).with_teacher(Some(Teacher::Oracle)))
        .collect()
}

/// The teacher's label at each step moves the target toward the episode's hindsight plan: followed
/// greedily, the labels track the plan within the table's resolution.
#[test]
fn following_the_labels_tracks_the_plan() {
    let mut env = SimTrainEnv::new(mix()).with_teacher(Some(Teacher::Oracle));
    env.reset(4);
    let plan = env.plan().to_vec();
    assert_eq!(plan.len(), 120);
    let mut off = Vec::new();
    for &want in &plan {
        let a = env.teacher_action().expect("a label at every step");
        let t = env.step(a);
        off.push(env.target().abs_diff(want));
        if t.truncated {
            break;
        }
    }
    // Deltas reach +8/-4 a step: after the first few steps the target is on the plan nearly always.
    let late = &off[20..];
    let on = late.iter().filter(|&&d| d <= 1).count();
    assert!(on * 10 >= late.len() * 9, "{off:?}");
    // Without a teacher there is no label.
    let mut plain = SimTrainEnv::new(mix());
    plain.reset(4);
    assert_eq!(plain.teacher_action(), None);
}

/// Imitation alone (`bc_only_iterations`) lowers the cross-entropy to the teacher and makes the
/// greedy policy agree with it far above chance (1 in 8). Not on every state: the heuristic plan
/// looks a cold start ahead and follows each interval's own arrivals, which the causal features
/// cannot see, so its labels are partly unpredictable (0.4 here; 0.4–0.6 in the 2M-step run of
/// docs/model/bar.md).
#[test]
fn behaviour_cloning_learns_the_teachers_actions() {
    let cfg = PpoConfig {
        seed: 3,
        total_timesteps: 40 * 512,
        num_envs: 4,
        num_steps: 128,
        num_minibatches: 4,
        learning_rate: 1e-3,
        norm_obs: true,
        bc_coef: 1.0,
        bc_anneal_frac: 1.0,
        bc_only_iterations: 40,
        ..PpoConfig::default()
    };
    let mut ppo = Ppo::new(cfg, taught_envs(4)).unwrap();
    let first = ppo.iterate();
    assert!(first.bc_coef > 0.99, "{}", first.bc_coef);
    let mut last = first.clone();
    while !ppo.finished() {
        last = ppo.iterate();
    }
    assert!(
        last.bc_loss < first.bc_loss,
        "{} → {}",
        first.bc_loss,
        last.bc_loss
    );
    assert!(last.bc_agreement > 0.3, "{}", last.bc_agreement);
    // The weight anneals to 0 over the run.
    assert!(last.bc_coef < 0.05, "{}", last.bc_coef);
}

/// A teacher without an imitation weight, or a weight without a teacher, is refused by name.
#[test]
fn a_teacher_needs_a_weight_and_a_weight_a_teacher() {
    let cfg = PpoConfig {
        bc_only_iterations: 3,
        ..PpoConfig::default()
    };
    let e = cfg.validate().unwrap_err();
    assert!(e.contains("bc_only_iterations"), "{e}");
    let cfg = PpoConfig {
        bc_coef: -1.0,
        ..PpoConfig::default()
    };
    assert!(cfg.validate().unwrap_err().contains("bc_coef"));
}

/// Four iterations of 2 envs × 128 steps, the imitation weight 1 annealed to `floor` over a quarter
/// of them: from the second iteration on, the weight is the floor.
fn annealed_in_one_iteration(floor: f64) -> PpoConfig {
    PpoConfig {
        seed: 5,
        total_timesteps: 4 * 2 * 128,
        num_envs: 2,
        num_steps: 128,
        num_minibatches: 2,
        bc_coef: 1.0,
        bc_anneal_frac: 0.25,
        bc_floor: floor,
        ..PpoConfig::default()
    }
}

/// Once the imitation weight has annealed to 0, the envs stop making plans (the planner's are ~20
/// simulations of each episode): episodes started after that have no plan and no label.
#[test]
fn the_teacher_stops_once_the_weight_is_zero() {
    let mut ppo = Ppo::new(annealed_in_one_iteration(0.0), taught_envs(2)).unwrap();
    assert!(ppo.iterate().bc_coef > 0.99);
    assert_eq!(ppo.iterate().bc_coef, 0.0);
    // Each env is on its third 120-step episode, started in the second iteration (at step 240).
    for env in ppo.envs().envs() {
        assert!(env.plan().is_empty(), "a plan after the weight reached 0");
        assert_eq!(env.teacher_action(), None);
    }
}

/// With a floor, the weight anneals to the floor and stays there, and the envs keep their teacher:
/// episodes started late in the run still have a plan and a label.
#[test]
fn a_floored_weight_keeps_the_teacher() {
    let cfg = annealed_in_one_iteration(0.3);
    assert_eq!(cfg.bc_weight(1), 1.0);
    assert_eq!(cfg.bc_weight(4), 0.3);
    let mut ppo = Ppo::new(cfg, taught_envs(2)).unwrap();
    assert!(ppo.iterate().bc_coef > 0.99);
    assert_eq!(ppo.iterate().bc_coef, 0.3);
    for env in ppo.envs().envs() {
        assert!(
            !env.plan().is_empty(),
            "the plan was dropped above the floor"
        );
        assert!(env.teacher_action().is_some());
    }
    let above = PpoConfig {
        bc_floor: 1.5,
        ..PpoConfig::default()
    };
    let err = PpoConfig {
        bc_coef: 1.0,
        ..above
    }
    .validate()
    .unwrap_err();
    assert!(err.contains("bc_floor = 1.5"), "{err}");
}

/// On scale-to-zero traffic the hindsight plan empties the fleet between bursts; the labels never
/// lead there (no causal policy can know that no request comes), so followed, they keep a replica.
#[test]
fn the_labels_never_empty_the_fleet() {
    let sparse = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs/sparse-8b-l4-v1.toml");
    let mix: Arc<[MixEntry]> = vec![MixEntry::new(sparse, 480)].into();
    let mut env = SimTrainEnv::new(mix).with_teacher(Some(Teacher::Oracle));
    env.reset(11);
    let zeros = env.plan().iter().filter(|&&r| r == 0).count();
    assert!(
        zeros > 0,
        "the plan keeps a replica throughout: nothing to check"
    );
    let mut lowest = u32::MAX;
    for _ in 0..480 {
        let a = env.teacher_action().expect("a label at every step");
        let t = env.step(a);
        lowest = lowest.min(env.target());
        if t.truncated {
            break;
        }
    }
    assert!(lowest >= 1, "the labels led to {lowest} replicas");
}
