//! Fair tuning: grid-search a baseline's main knob on a training window, score the choice on a separate
//! window.
//!
//! Objective: the least GPU cost subject to SLO attainment ≥ the scenario's target (pooled over the
//! window's seeds: violations ÷ finished requests). When no grid value meets the target, the one with the
//! highest attainment is kept and the entry says `feasible = false`.
//!
//! Windows ([`windows`]), on the same workload (`Overrides::window_offset_s`), with other seeds:
//! - a history of two whole days or more is fitted on the whole days before its last (at most four)
//!   and scored on the last whole day: what a team tuning on last week's data would see today;
//! - a shorter one is split in halves, and the entry's `note` says by how much the halves' traffic
//!   differs (mean and 5-minute peak, [`WindowTraffic`]): on a one-day scenario the first half is
//!   the night and the second the day, and a flash crowd at 13:00 is only in the second.
//!
//! A knob that misses the target on the training window is kept with `feasible = false`, and every
//! reader warns about it (`rlscale tune` and `rlscale evaluate`).
//! Static N is searched by bisection over every integer in the replica bounds (attainment rises with N),
//! the other laws over [`default_grid`].

use std::sync::Arc;

use rayon::prelude::*;
use rlscale_baselines::{BaselineConfig, StaticConfig};
use rlscale_sim::Scenario;
use serde::{Deserialize, Serialize};

use crate::matrix::run_one;
use crate::oracle::Bound;
use crate::policies::{PolicyChoice, PolicyError};

/// How one knob value did on one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowScore {
    /// The knob value.
    pub value: f64,
    /// Mean GPU cost per episode, US dollars.
    pub cost_usd: f64,
    /// Pooled SLO attainment, percent.
    pub slo_attainment_pct: f64,
    /// Mean objective (cost + penalty × violations), US dollars.
    pub objective_usd: f64,
    /// Attainment ≥ the scenario's target.
    pub feasible: bool,
}

/// Where a window lies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Seconds after the scenario's start.
    pub offset_s: f64,
    /// Control steps.
    pub steps: u64,
    /// Seeds.
    pub seeds: Vec<u64>,
}

impl Window {
    /// The window at `(offset_s, steps)` (a [`WindowPlan`]'s `fit` or `score`) on `seeds`.
    pub fn at((offset_s, steps): (f64, u64), seeds: &[u64]) -> Window {
        Window {
            offset_s,
            steps,
            seeds: seeds.to_vec(),
        }
    }
}

/// A fit window and a scoring window: offsets (seconds after the scenario's start) and lengths
/// (control steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPlan {
    /// Training window: offset, steps.
    pub fit: (f64, u64),
    /// Scoring window: offset, steps.
    pub score: (f64, u64),
    /// Both windows are whole days (the scoring day after the fitting days).
    pub whole_days: bool,
}

/// Days of history fitted on at most.
pub const MAX_FIT_DAYS: u64 = 4;

/// The windows of an episode of `episode` steps of `dt` seconds: with two whole days or more, up to
/// [`MAX_FIT_DAYS`] whole days, then the last whole day; else the two halves. `steps` (the command
/// line's `--steps`) forces halves of that length: fit from 0, score half an episode later.
pub fn windows(episode: u64, dt: f64, steps: Option<u64>) -> WindowPlan {
    let half = (episode / 2).max(1);
    if let Some(n) = steps {
        return WindowPlan {
            fit: (0.0, n.min(half)),
            score: (half as f64 * dt, n.min(half)),
            whole_days: false,
        };
    }
    let per_day = (86_400.0 / dt).round().max(1.0) as u64;
    let days = episode / per_day;
    if days >= 2 {
        let fit_days = (days - 1).min(MAX_FIT_DAYS);
        let score_day = days - 1;
        WindowPlan {
            fit: (
                (score_day - fit_days) as f64 * per_day as f64 * dt,
                fit_days * per_day,
            ),
            score: (score_day as f64 * per_day as f64 * dt, per_day),
            whole_days: true,
        }
    } else {
        WindowPlan {
            fit: (0.0, half),
            score: (half as f64 * dt, half),
            whole_days: false,
        }
    }
}

/// A window's traffic: the mean arrival rate and the highest 5-minute mean, requests/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowTraffic {
    /// Mean rate.
    pub mean_rps: f64,
    /// Highest mean over 5 minutes.
    pub peak_rps: f64,
}

impl WindowTraffic {
    /// The arrivals `scenario` (loaded for the window) draws from `seed` over `steps` steps.
    pub fn measure(scenario: &Arc<Scenario>, seed: u64, steps: u64) -> WindowTraffic {
        let d = rlscale_sim::SimEnv::new(scenario.clone()).demand(seed, steps);
        let dt = d.interval_s;
        let n = d.arrivals.len().max(1);
        let total: u64 = d.arrivals.iter().map(|&a| u64::from(a)).sum();
        let k = ((300.0 / dt).round() as usize).clamp(1, n);
        let mut run: u64 = d.arrivals[..k.min(d.arrivals.len())]
            .iter()
            .map(|&a| u64::from(a))
            .sum();
        let mut best = run;
        for i in k..d.arrivals.len() {
            run = run + u64::from(d.arrivals[i]) - u64::from(d.arrivals[i - k]);
            best = best.max(run);
        }
        WindowTraffic {
            mean_rps: total as f64 / (n as f64 * dt),
            peak_rps: best as f64 / (k as f64 * dt),
        }
    }
}

/// How far the scoring window's traffic is from the fitting window's, in words, when the mean or
/// the peak differs by more than 25 %; `None` when they are alike.
pub fn traffic_note(fit: WindowTraffic, score: WindowTraffic) -> Option<String> {
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            a / b
        } else if a > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    };
    let (m, p) = (
        ratio(score.mean_rps, fit.mean_rps),
        ratio(score.peak_rps, fit.peak_rps),
    );
    let off = |r: f64| !(0.8..=1.25).contains(&r);
    (off(m) || off(p)).then(|| {
        format!(
            "the windows' traffic differs: fitted on mean {:.1} req/s, 5-min peak {:.1}; scored on mean {:.1} ({m:.2}x), peak {:.1} ({p:.2}x)",
            fit.mean_rps, fit.peak_rps, score.mean_rps, score.peak_rps
        )
    })
}

/// The tuned setting of one scenario, as stored in `configs/baselines/<law>-tuned.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunedEntry {
    /// The chosen knob value.
    pub value: f64,
    /// Whether it met the SLO target on the training window.
    pub feasible: bool,
    /// The training window.
    pub train_window: Window,
    /// The scoring window.
    pub score_window: Window,
    /// The chosen value on the training window.
    pub train: WindowScore,
    /// The chosen value on the scoring window (what tables should quote).
    pub score: WindowScore,
    /// Every value tried on the training window.
    pub grid: Vec<WindowScore>,
    /// How the windows' traffic differs, when it does (see [`traffic_note`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The grid `rlscale tune` searches for each law's main knob.
pub fn default_grid(law: &str) -> Vec<f64> {
    match law {
        // Pods AverageValue of vllm:num_requests_running (batch size) per pod.
        "hpa" => vec![8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 64.0, 96.0, 128.0],
        // Prometheus trigger threshold on sum(vllm:num_requests_waiting), AverageValue.
        "keda" => vec![0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0],
        // Target concurrency per pod (× 0.7 target utilization).
        "kpa" => vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 85.0, 100.0],
        // Target ongoing requests per replica.
        "ray" => vec![2.0, 8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 64.0],
        // Target per-pod KV-cache usage.
        "apa" => vec![0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        // Headroom over the predicted rate.
        "predictive" => vec![0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
        _ => Vec::new(),
    }
}

fn score(
    scenario: &Arc<Scenario>,
    base: &BaselineConfig,
    value: f64,
    seeds: &[u64],
) -> Result<WindowScore, PolicyError> {
    let choice = PolicyChoice::Baseline {
        label: format!("{}={value}", base.law()),
        config: base.with_knob(value),
    };
    let zero = Bound {
        objective_usd: 0.0,
        cost_usd: 0.0,
        forced_violations: 0,
        settled_requests: 0,
        floor_applied: false,
    };
    let runs: Vec<_> = seeds
        .par_iter()
        .map(|&s| run_one(scenario, &choice, s, zero, false))
        .collect::<Result<_, _>>()?;
    let n = runs.len().max(1) as f64;
    let finished: u64 = runs
        .iter()
        .map(|r| r.summary.completed + r.summary.dropped)
        .sum();
    let violations: u64 = runs.iter().map(|r| r.summary.slo_violations).sum();
    let attainment = if finished == 0 {
        100.0
    } else {
        100.0 * (1.0 - violations as f64 / finished as f64)
    };
    Ok(WindowScore {
        value,
        cost_usd: runs.iter().map(|r| r.summary.cost_usd).sum::<f64>() / n,
        slo_attainment_pct: attainment,
        objective_usd: runs.iter().map(|r| r.objective_usd).sum::<f64>() / n,
        feasible: attainment >= 100.0 * scenario.slo.target,
    })
}

/// The best of `tried`: the cheapest feasible, else the highest attainment (then the cheapest).
fn choose(tried: &[WindowScore]) -> Option<&WindowScore> {
    let feasible = tried.iter().filter(|w| w.feasible).min_by(|a, b| {
        a.cost_usd
            .total_cmp(&b.cost_usd)
            .then(a.objective_usd.total_cmp(&b.objective_usd))
    });
    feasible.or_else(|| {
        tried.iter().max_by(|a, b| {
            a.slo_attainment_pct
                .total_cmp(&b.slo_attainment_pct)
                .then(b.cost_usd.total_cmp(&a.cost_usd))
        })
    })
}

/// Tune `base`'s main knob: search on `train` (a scenario built for the training window), score the
/// choice on `test` (the scoring window). `on_point` is called after each value tried.
pub fn tune(
    base: &BaselineConfig,
    train: (&Arc<Scenario>, &Window),
    test: (&Arc<Scenario>, &Window),
    grid: &[f64],
    on_point: impl Fn(&WindowScore) + Sync,
) -> Result<TunedEntry, PolicyError> {
    let (train_sc, train_w) = train;
    let (test_sc, test_w) = test;
    let mut tried: Vec<WindowScore> = Vec::new();
    if let BaselineConfig::Static(_) = base {
        // Bisection for the smallest feasible N.
        let r = train_sc.file.replicas;
        let (mut lo, mut hi) = (r.min, r.max);
        let base = BaselineConfig::Static(StaticConfig::default());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let w = score(train_sc, &base, f64::from(mid), &train_w.seeds)?;
            on_point(&w);
            if w.feasible {
                hi = mid;
            } else {
                lo = mid + 1;
            }
            tried.push(w);
        }
        if !tried.iter().any(|w| w.value == f64::from(lo)) {
            let w = score(train_sc, &base, f64::from(lo), &train_w.seeds)?;
            on_point(&w);
            tried.push(w);
        }
    } else {
        let results: Vec<WindowScore> = grid
            .par_iter()
            .map(|&v| {
                let w = score(train_sc, base, v, &train_w.seeds)?;
                on_point(&w);
                Ok(w)
            })
            .collect::<Result<_, PolicyError>>()?;
        tried = results;
    }
    tried.sort_by(|a, b| a.value.total_cmp(&b.value));
    let best = choose(&tried).cloned().ok_or_else(|| PolicyError::File {
        path: train_sc.path.clone(),
        message: "the tuning grid is empty".into(),
    })?;
    let scored = score(test_sc, base, best.value, &test_w.seeds)?;
    let first = |w: &Window| w.seeds.first().copied().unwrap_or(0);
    let note = traffic_note(
        WindowTraffic::measure(train_sc, first(train_w), train_w.steps),
        WindowTraffic::measure(test_sc, first(test_w), test_w.steps),
    );
    Ok(TunedEntry {
        note,
        value: best.value,
        feasible: best.feasible,
        train_window: train_w.clone(),
        score_window: test_w.clone(),
        train: best,
        score: scored,
        grid: tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(value: f64, cost: f64, att: f64) -> WindowScore {
        WindowScore {
            value,
            cost_usd: cost,
            slo_attainment_pct: att,
            objective_usd: cost,
            feasible: att >= 99.0,
        }
    }

    #[test]
    fn picks_the_cheapest_feasible_else_the_best_attainment() {
        let tried = [w(1.0, 10.0, 99.5), w(2.0, 8.0, 99.1), w(3.0, 6.0, 97.0)];
        assert_eq!(choose(&tried).unwrap().value, 2.0);
        let none = [w(1.0, 10.0, 98.5), w(2.0, 8.0, 98.5), w(3.0, 6.0, 97.0)];
        assert_eq!(choose(&none).unwrap().value, 2.0);
        assert!(choose(&[]).is_none());
    }

    #[test]
    fn multi_day_histories_fit_on_whole_days_and_score_on_the_last() {
        // 7 days at 15 s: fit on days 2-5, score on day 6.
        let w = windows(40_320, 15.0, None);
        assert!(w.whole_days);
        assert_eq!(w.fit, (2.0 * 86_400.0, 4 * 5_760));
        assert_eq!(w.score, (6.0 * 86_400.0, 5_760));
        // 7 days less one step (a trace played once): the last whole day is day 5.
        let w = windows(40_319, 15.0, None);
        assert_eq!(w.fit, (86_400.0, 4 * 5_760));
        assert_eq!(w.score, (5.0 * 86_400.0, 5_760));
        // Two days: one each.
        let w = windows(11_520, 15.0, None);
        assert_eq!((w.fit, w.score), ((0.0, 5_760), (86_400.0, 5_760)));
        // One day: halves, flagged as not whole days.
        let w = windows(5_760, 15.0, None);
        assert!(!w.whole_days);
        assert_eq!((w.fit, w.score), ((0.0, 2_880), (43_200.0, 2_880)));
        // --steps: halves of that length.
        let w = windows(40_320, 15.0, Some(100));
        assert_eq!((w.fit, w.score), ((0.0, 100), (20_160.0 * 15.0, 100)));
    }

    #[test]
    fn a_note_names_traffic_that_differs() {
        let t = |mean_rps, peak_rps| WindowTraffic { mean_rps, peak_rps };
        assert_eq!(traffic_note(t(10.0, 20.0), t(11.0, 22.0)), None);
        let n = traffic_note(t(40.0, 41.0), t(50.0, 240.0)).unwrap();
        assert!(n.contains("peak 240.0 (5.85x)"), "{n}");
        assert!(traffic_note(t(0.0, 0.0), t(1.0, 1.0)).is_some());
    }

    #[test]
    fn every_law_but_static_has_a_grid_that_validates() {
        for law in BaselineConfig::LAWS {
            let grid = default_grid(law);
            let base = BaselineConfig::default_for(law).unwrap();
            if law == "static" {
                assert!(grid.is_empty());
                continue;
            }
            assert!(grid.len() >= 6, "{law}");
            for v in grid {
                base.with_knob(v).validate().unwrap();
            }
        }
    }
}
