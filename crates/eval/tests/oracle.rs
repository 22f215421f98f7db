//! The oracle on real scenarios: the bound holds against policies that over- and under-provision, and
//! the hindsight schedule is cheaper than a static fleet sized for the peak.

use std::path::PathBuf;
use std::sync::Arc;

use rlscale_eval::matrix::run_one;
use rlscale_eval::oracle::{self, OracleConfig};
use rlscale_eval::policies::PolicyChoice;
use rlscale_sim::{Overrides, Scenario};

fn scenario(id: &str, steps: u64) -> Arc<Scenario> {
    let envs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../envs");
    let o = Overrides {
        max_episode_steps: Some(steps),
        ..Overrides::default()
    };
    Arc::new(Scenario::resolve(&envs, id, &o).unwrap())
}

#[test]
fn the_bound_holds_and_the_schedule_follows_demand() {
    let configs = PathBuf::from("/nonexistent");
    for (id, steps) in [
        ("diurnal-8b-l4-v1", 2880),
        ("flash-crowd-70b-h100x2-v1", 960),
    ] {
        let sc = scenario(id, steps);
        let plan = oracle::plan(&sc, 1, steps, OracleConfig::default());
        assert_eq!(plan.schedule.len() as u64, steps);
        let r = sc.file.replicas;
        assert!(plan.schedule.iter().all(|&n| n >= r.min && n <= r.max));
        // Lead and keep only ever add replicas.
        assert!(plan.schedule.iter().zip(&plan.needed).all(|(s, n)| s >= n));
        assert!(plan.bound.objective_usd > 0.0 && plan.bound.settled_requests > 0);
        assert!(plan.bound.cost_usd <= plan.planned_cost_usd, "{id}");
        let mut results = Vec::new();
        for name in ["oracle", "static:1", "static", "hpa", "kpa"] {
            let choice = PolicyChoice::parse(name, &configs).unwrap();
            let run = run_one(&sc, &choice, 1, plan.bound, false).unwrap();
            assert!(
                run.objective_usd >= plan.bound.objective_usd,
                "{id} {name}: objective {} < bound {}",
                run.objective_usd,
                plan.bound.objective_usd
            );
            results.push((name, run));
        }
        let oracle = &results[0].1;
        eprintln!(
            "{id}: bound ${:.2}, oracle ${:.2} at {:.2} % SLO (gap {:.1} %), n* = {}",
            plan.bound.objective_usd,
            oracle.summary.cost_usd,
            oracle.summary.slo_attainment_pct,
            oracle.gap_pct,
            plan.n_star
        );
        // The hindsight schedule meets the SLO target in simulation.
        assert!(
            oracle.summary.slo_attainment_pct >= oracle.summary.slo_target_pct,
            "{id}: oracle attainment {}",
            oracle.summary.slo_attainment_pct
        );
        // And beats a fleet of its own peak size held all the time.
        let peak = *plan.schedule.iter().max().unwrap();
        let choice = PolicyChoice::parse(&format!("static:{peak}"), &configs).unwrap();
        let fixed = run_one(&sc, &choice, 1, plan.bound, false).unwrap();
        assert!(oracle.summary.cost_usd < fixed.summary.cost_usd, "{id}");
    }
}
