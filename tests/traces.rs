//! Trace replay: over a whole trace, the simulated arrivals match Σ rps · interval within Poisson noise,
//! for every shipped trace; unshipped traces give a clear error naming where to get them.

use rlscale_core::Env;
use rlscale_sim::config::Arrivals;
use rlscale_sim::{Overrides, Scenario};

use crate::util::{envs, load, needs_user_trace, scenario_ids};

/// Expected arrivals over `[0, horizon)` of a trace replayed from offset 0, with `scale` applied.
fn expected(trace: &rlscale_sim::Trace, scale: f64, horizon: f64) -> f64 {
    trace
        .rps
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let start = i as f64 * trace.interval_s;
            let overlap = (horizon - start).clamp(0.0, trace.interval_s);
            r * scale * overlap
        })
        .sum()
}

#[test]
fn shipped_traces_replay_their_total_arrivals() {
    let ids: Vec<String> = scenario_ids()
        .into_iter()
        .filter(|id| id.ends_with("-8b-l4-v1"))
        .collect();
    let mut checked = 0;
    for id in ids {
        let base = load(&id, Overrides::default());
        let Arrivals::Trace {
            trace,
            rate_scale,
            offset_s,
            ..
        } = &base.arrivals
        else {
            continue;
        };
        if needs_user_trace(&id) {
            continue;
        }
        assert_eq!(
            *offset_s, 0.0,
            "{id}: the test assumes replay from the start"
        );
        // One pass over the trace, in whole control steps; keep the run under ~4 M requests.
        let steps = (trace.duration_s() / base.file.control_interval_s).floor() as u64;
        let horizon = steps as f64 * base.file.control_interval_s;
        let full = expected(trace, *rate_scale, horizon);
        let thin = (4.0e6 / full).min(1.0);
        let sc = load(
            &id,
            Overrides {
                max_episode_steps: Some(steps),
                rate_scale: Some(thin),
                ..Overrides::default()
            },
        );
        let mut env = rlscale_sim::SimEnv::new(sc);
        env.reset(Some(1));
        loop {
            if env.step(&rlscale_core::Action::Hold).unwrap().truncated {
                break;
            }
        }
        let got = env.totals().unwrap().arrivals as f64;
        let want = full * thin;
        let z = (got - want) / want.sqrt();
        println!("{id}: {got} arrivals, expected {want:.0} (z = {z:+.2})");
        assert!(
            z.abs() < 4.0,
            "{id}: {got} arrivals, expected {want:.1}, z = {z:.2}"
        );
        checked += 1;
    }
    assert_eq!(checked, 5, "one replay per shipped trace");
}

#[test]
fn unshipped_traces_say_where_to_get_the_data() {
    let ids: Vec<String> = scenario_ids()
        .into_iter()
        .filter(|id| needs_user_trace(id))
        .collect();
    assert_eq!(
        ids.len(),
        4,
        "nasa-http and alibaba-lora on two profiles: {ids:?}"
    );
    for id in ids {
        let err = Scenario::resolve(&envs(), &id, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&id) && err.contains("--trace PATH") && err.contains("get it from"),
            "{err}"
        );
    }
}
