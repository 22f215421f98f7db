//! What the log says on its own: how far our recommendation was from the HPA's, whether we would have
//! scaled earlier or later, and the replica-hours each recommended.
//!
//! All three compare series sampled at the decision times: ours (`desired_replicas`, always known)
//! against the HPA's (`hpa_desired_replicas` or `hpa_recomputed_replicas`, absent at some decisions).
//! A decision where the HPA's value is absent is left out of that comparison, and the tables say how
//! many were compared.

use serde::Serialize;

/// How far ours was from theirs, per decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Divergence {
    /// Decisions where theirs was known.
    pub compared: usize,
    /// ... of which ours differed.
    pub differ: usize,
    /// `differ / compared`, percent (NaN when nothing was compared).
    pub differ_pct: f64,
    /// Decisions where ours was higher.
    pub higher: usize,
    /// Decisions where ours was lower.
    pub lower: usize,
    /// Mean of `ours − theirs`, replicas.
    pub mean_delta: f64,
    /// Mean of `|ours − theirs|`, replicas.
    pub mean_abs_delta: f64,
    /// Largest `|ours − theirs|`, replicas.
    pub max_abs_delta: u32,
    /// Decisions where ours differed by more than the tolerance band: more than `band_replicas`
    /// and more than `band_pct` of theirs.
    pub outside_band: usize,
    /// `outside_band / compared`, percent (NaN when nothing was compared).
    pub outside_band_pct: f64,
    /// The band: differences of at most this many replicas are within it ...
    pub band_replicas: u32,
    /// ... and so are differences of at most this percentage of theirs.
    pub band_pct: f64,
}

/// Whether `ours` is outside the tolerance band around `theirs`: more than `band_replicas` away and
/// more than `band_pct` percent of `theirs` away.
pub fn outside_band(ours: u32, theirs: u32, band_replicas: u32, band_pct: f64) -> bool {
    let d = ours.abs_diff(theirs);
    d > band_replicas && f64::from(d) > band_pct / 100.0 * f64::from(theirs)
}

/// Divergence of `ours` from `theirs` over the decisions where `theirs` is known, with a tolerance
/// band of `band_replicas` replicas or `band_pct` percent of theirs, whichever is wider.
pub fn divergence(
    ours: &[u32],
    theirs: &[Option<u32>],
    band_replicas: u32,
    band_pct: f64,
) -> Divergence {
    let (mut compared, mut differ, mut higher, mut lower, mut max_abs) = (0, 0, 0, 0, 0u32);
    let mut outside = 0;
    let (mut sum, mut sum_abs) = (0.0, 0.0);
    for (&o, t) in ours.iter().zip(theirs) {
        let Some(t) = *t else { continue };
        compared += 1;
        let d = i64::from(o) - i64::from(t);
        if d != 0 {
            differ += 1;
        }
        if outside_band(o, t, band_replicas, band_pct) {
            outside += 1;
        }
        if d > 0 {
            higher += 1;
        }
        if d < 0 {
            lower += 1;
        }
        sum += d as f64;
        sum_abs += d.unsigned_abs() as f64;
        max_abs = max_abs.max(o.abs_diff(t));
    }
    let n = compared as f64;
    let per = |x: f64| if compared == 0 { f64::NAN } else { x / n };
    Divergence {
        compared,
        differ,
        differ_pct: per(100.0 * differ as f64),
        higher,
        lower,
        mean_delta: per(sum),
        mean_abs_delta: per(sum_abs),
        max_abs_delta: max_abs,
        outside_band: outside,
        outside_band_pct: per(100.0 * outside as f64),
        band_replicas,
        band_pct,
    }
}

/// Direction of a change of the HPA's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Scale up.
    Up,
    /// Scale down.
    Down,
}

/// How one change of the HPA's recommendation compares with ours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "seconds")]
pub enum Match {
    /// Ours reached the new level this many seconds before the HPA did (> 0).
    Earlier(f64),
    /// Ours reached it at the same decision.
    Same,
    /// Ours reached it this many seconds after the HPA did (> 0).
    Later(f64),
    /// Ours was at that level (or beyond it) since before the HPA's previous move the other way (or
    /// since the start of the window): a difference of level, not of timing.
    Already,
    /// Ours did not reach the level before the HPA moved back the other way (or the window ended).
    Never,
}

/// One change of the HPA's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// Unix seconds of the decision at which the HPA's recommendation changed.
    pub time: f64,
    /// Up or down.
    pub direction: Direction,
    /// The HPA's new recommendation, replicas.
    pub to: u32,
    /// When ours reached it.
    pub ours: Match,
}

/// Lead and lag over the HPA's changes in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// Up or down.
    pub direction: Direction,
    /// Changes of the HPA's recommendation in this direction.
    pub changes: usize,
    /// Ours reached the level first.
    pub earlier: usize,
    /// At the same decision.
    pub same: usize,
    /// Ours reached it after the HPA.
    pub later: usize,
    /// Ours was already there (see [`Match::Already`]).
    pub already: usize,
    /// Ours never got there (see [`Match::Never`]).
    pub never: usize,
    /// Median lead of the `earlier` changes, seconds (NaN when none).
    pub lead_median_s: f64,
    /// 90th percentile lead, seconds.
    pub lead_p90_s: f64,
    /// Median lag of the `later` changes, seconds.
    pub lag_median_s: f64,
    /// 90th percentile lag, seconds.
    pub lag_p90_s: f64,
}

/// Every change of `theirs` (between consecutive decisions where it is known) and when `ours`
/// reached the same level (≥ the new level for a scale-up, ≤ it for a scale-down):
///
/// - if ours is at the level at the HPA's change, look back, no further than the HPA's last move the
///   other way (or the start), for when ours got there: `Earlier` by that many seconds (or `Same`),
///   or `Already` when ours was there all that time;
/// - otherwise look forward, no further than the HPA's next move the other way (or the end), for the
///   first decision where ours is at the level: `Later`, or `Never`.
pub fn changes(t: &[f64], ours: &[u32], theirs: &[Option<u32>]) -> Vec<Change> {
    let n = t.len().min(ours.len()).min(theirs.len());
    let known: Vec<(usize, u32)> = (0..n).filter_map(|i| theirs[i].map(|v| (i, v))).collect();
    let moves: Vec<(usize, Direction, u32)> = known
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| {
            let dir = if w[1].1 > w[0].1 {
                Direction::Up
            } else {
                Direction::Down
            };
            (w[1].0, dir, w[1].1)
        })
        .collect();
    let mut out = Vec::with_capacity(moves.len());
    for (k, &(b, dir, level)) in moves.iter().enumerate() {
        let at = |j: usize| match dir {
            Direction::Up => ours[j] >= level,
            Direction::Down => ours[j] <= level,
        };
        let back_limit = moves[..k]
            .iter()
            .rev()
            .find(|m| m.1 != dir)
            .map_or(0, |m| m.0);
        let fwd_limit = moves[k + 1..]
            .iter()
            .find(|m| m.1 != dir)
            .map_or(n, |m| m.0);
        let ours_match = if at(b) {
            // j: the earliest decision, within the limit, from which ours stayed at the level.
            let mut j = b;
            while j > back_limit && at(j - 1) {
                j -= 1;
            }
            // At the limit: ours got there before it (or, at the start, we cannot tell when).
            let before_limit = j == back_limit && (j == 0 || at(j - 1));
            if before_limit {
                Match::Already
            } else if j == b {
                Match::Same
            } else {
                Match::Earlier(t[b] - t[j])
            }
        } else {
            match (b + 1..fwd_limit).find(|&j| at(j)) {
                Some(j) => Match::Later(t[j] - t[b]),
                None => Match::Never,
            }
        };
        out.push(Change {
            time: t[b],
            direction: dir,
            to: level,
            ours: ours_match,
        });
    }
    out
}

/// Counts and lead/lag quantiles of `changes` in `direction`.
pub fn timing(changes: &[Change], direction: Direction) -> Timing {
    let mut tm = Timing {
        direction,
        changes: 0,
        earlier: 0,
        same: 0,
        later: 0,
        already: 0,
        never: 0,
        lead_median_s: f64::NAN,
        lead_p90_s: f64::NAN,
        lag_median_s: f64::NAN,
        lag_p90_s: f64::NAN,
    };
    let (mut leads, mut lags) = (Vec::new(), Vec::new());
    for c in changes.iter().filter(|c| c.direction == direction) {
        tm.changes += 1;
        match c.ours {
            Match::Earlier(s) => {
                tm.earlier += 1;
                leads.push(s);
            }
            Match::Same => tm.same += 1,
            Match::Later(s) => {
                tm.later += 1;
                lags.push(s);
            }
            Match::Already => tm.already += 1,
            Match::Never => tm.never += 1,
        }
    }
    tm.lead_median_s = quantile(&mut leads, 0.5);
    tm.lead_p90_s = quantile(&mut leads, 0.9);
    tm.lag_median_s = quantile(&mut lags, 0.5);
    tm.lag_p90_s = quantile(&mut lags, 0.9);
    tm
}

/// The `q` quantile by nearest rank (the smallest value with at least `q` of the values at or below
/// it); NaN for no values.
pub fn quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let rank = (q * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

/// Replica-hours recommended by ours and by theirs over the same decisions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplicaHours {
    /// Hours covered: the decisions where theirs is known, each held until the next decision.
    pub hours: f64,
    /// Ours, replica-hours.
    pub ours_replica_h: f64,
    /// Theirs, replica-hours.
    pub theirs_replica_h: f64,
    /// Ours, GPU-hours (replica-hours × the profile's GPUs per replica).
    pub ours_gpu_h: f64,
    /// Theirs, GPU-hours.
    pub theirs_gpu_h: f64,
    /// Ours, US dollars (GPU-hours × the profile's price).
    pub ours_usd: f64,
    /// Theirs, US dollars.
    pub theirs_usd: f64,
}

/// How long each decision's recommendation holds, seconds: until the next decision, but no more than
/// `max_hold_s` (a longer silence is a gap in the log, where nothing was recommended), and
/// `interval_s` for the last one. Returns the holds and the number of gaps.
pub fn holds(t: &[f64], interval_s: f64, max_hold_s: f64) -> (Vec<f64>, usize) {
    let mut gaps = 0;
    let h = (0..t.len())
        .map(|i| match t.get(i + 1) {
            Some(&next) => {
                let d = (next - t[i]).max(0.0);
                if d > max_hold_s {
                    gaps += 1;
                    interval_s
                } else {
                    d
                }
            }
            None => interval_s,
        })
        .collect();
    (h, gaps)
}

/// Replica-hours of `ours` and `theirs` over the decisions where `theirs` is known, with `hold_s`
/// from [`holds`] and each decision's `(GPUs per replica, $ per GPU-hour)`.
pub fn replica_hours(
    ours: &[u32],
    theirs: &[Option<u32>],
    hold_s: &[f64],
    price: &[(u32, f64)],
) -> ReplicaHours {
    let mut r = ReplicaHours {
        hours: 0.0,
        ours_replica_h: 0.0,
        theirs_replica_h: 0.0,
        ours_gpu_h: 0.0,
        theirs_gpu_h: 0.0,
        ours_usd: 0.0,
        theirs_usd: 0.0,
    };
    for i in 0..ours
        .len()
        .min(theirs.len())
        .min(hold_s.len())
        .min(price.len())
    {
        let Some(th) = theirs[i] else { continue };
        let h = hold_s[i] / 3600.0;
        let (gpus, usd) = price[i];
        let g = f64::from(gpus);
        r.hours += h;
        r.ours_replica_h += f64::from(ours[i]) * h;
        r.theirs_replica_h += f64::from(th) * h;
        r.ours_gpu_h += f64::from(ours[i]) * h * g;
        r.theirs_gpu_h += f64::from(th) * h * g;
        r.ours_usd += f64::from(ours[i]) * h * g * usd;
        r.theirs_usd += f64::from(th) * h * g * usd;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_wider_of_replicas_and_percent() {
        // ±1 replica around 3: 5 is outside; ±10 % of 40 is 4 replicas: 44 is inside, 45 outside.
        assert!(!outside_band(4, 3, 1, 10.0));
        assert!(outside_band(5, 3, 1, 10.0));
        assert!(!outside_band(44, 40, 1, 10.0));
        assert!(outside_band(45, 40, 1, 10.0));
        assert!(outside_band(35, 40, 1, 10.0));
        // No band: every difference counts.
        assert!(outside_band(4, 3, 0, 0.0));
        assert!(!outside_band(3, 3, 0, 0.0));
    }

    #[test]
    fn divergence_counts_only_known_decisions() {
        let d = divergence(&[3, 5, 5, 2], &[Some(3), Some(4), None, Some(6)], 1, 10.0);
        assert_eq!(d.compared, 3);
        assert_eq!(d.differ, 2);
        assert!((d.differ_pct - 200.0 / 3.0).abs() < 1e-12);
        assert_eq!((d.higher, d.lower), (1, 1));
        assert!((d.mean_delta - (0.0 + 1.0 - 4.0) / 3.0).abs() < 1e-12);
        assert!((d.mean_abs_delta - 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.max_abs_delta, 4);
        // 5 against 4 is within ±1 replica; 2 against 6 is outside both ±1 and ±10 %.
        assert_eq!(d.outside_band, 1);
        assert!((d.outside_band_pct - 100.0 / 3.0).abs() < 1e-12);
        let none = divergence(&[1], &[None], 1, 10.0);
        assert_eq!(none.compared, 0);
        assert!(none.differ_pct.is_nan());
    }

    fn t(n: usize) -> Vec<f64> {
        (0..n).map(|i| 15.0 * i as f64).collect()
    }

    fn outcomes(ours: &[u32], theirs: &[u32]) -> Vec<Match> {
        let th: Vec<Option<u32>> = theirs.iter().map(|&v| Some(v)).collect();
        changes(&t(ours.len()), ours, &th)
            .iter()
            .map(|c| c.ours)
            .collect()
    }

    #[test]
    fn earlier_same_later_never_already() {
        // HPA goes 2 → 5 at step 3; ours got to 5 at step 1: 30 s earlier.
        assert_eq!(
            outcomes(&[2, 5, 5, 5, 5], &[2, 2, 2, 5, 5]),
            vec![Match::Earlier(30.0)]
        );
        // Same decision.
        assert_eq!(outcomes(&[2, 2, 6, 6], &[2, 2, 5, 5]), vec![Match::Same]);
        // Ours two steps later.
        assert_eq!(
            outcomes(&[2, 2, 3, 4, 5], &[2, 2, 5, 5, 5]),
            vec![Match::Later(30.0)]
        );
        // HPA goes up then back down before ours reaches the level: never, then the down move.
        assert_eq!(
            outcomes(&[2, 2, 2, 2, 2], &[2, 5, 5, 2, 2]),
            vec![Match::Never, Match::Already]
        );
        // Ours was at the level from the start of the window.
        assert_eq!(outcomes(&[8, 8, 8, 8], &[2, 2, 5, 5]), vec![Match::Already]);
        // Down: HPA 6 → 3 at step 2, ours came down at step 4.
        assert_eq!(
            outcomes(&[6, 6, 6, 5, 3], &[6, 6, 3, 3, 3]),
            vec![Match::Later(30.0)]
        );
        // After an HPA move down, a move back up: ours at the level since that move down started?
        // ours stays 5; HPA 5 → 3 (ours never ≤ 3 → never), 3 → 5 (ours at 5 since before the
        // move down: already).
        assert_eq!(
            outcomes(&[5, 5, 5, 5, 5], &[5, 3, 3, 5, 5]),
            vec![Match::Never, Match::Already]
        );
    }

    #[test]
    fn unknown_values_are_skipped_between_changes() {
        let th = [Some(2), None, None, Some(4), Some(4)];
        let c = changes(&t(5), &[2, 2, 4, 4, 4], &th);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].time, 45.0);
        assert_eq!(c[0].to, 4);
        assert_eq!(c[0].ours, Match::Earlier(15.0));
    }

    #[test]
    fn timing_summarises_by_direction() {
        let c = [
            Change {
                time: 0.0,
                direction: Direction::Up,
                to: 3,
                ours: Match::Earlier(10.0),
            },
            Change {
                time: 1.0,
                direction: Direction::Up,
                to: 4,
                ours: Match::Earlier(30.0),
            },
            Change {
                time: 2.0,
                direction: Direction::Up,
                to: 5,
                ours: Match::Later(60.0),
            },
            Change {
                time: 3.0,
                direction: Direction::Down,
                to: 2,
                ours: Match::Never,
            },
            Change {
                time: 4.0,
                direction: Direction::Up,
                to: 6,
                ours: Match::Same,
            },
        ];
        let up = timing(&c, Direction::Up);
        assert_eq!((up.changes, up.earlier, up.same, up.later), (4, 2, 1, 1));
        assert_eq!(up.lead_median_s, 10.0);
        assert_eq!(up.lead_p90_s, 30.0);
        assert_eq!(up.lag_median_s, 60.0);
        let down = timing(&c, Direction::Down);
        assert_eq!((down.changes, down.never), (1, 1));
        assert!(down.lead_median_s.is_nan());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 0.9), 5.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn replica_hours_hold_until_the_next_decision_and_skip_gaps() {
        let t = [0.0, 15.0, 30.0, 1000.0];
        let (h, gaps) = holds(&t, 15.0, 45.0);
        assert_eq!(h, vec![15.0, 15.0, 15.0, 15.0]);
        assert_eq!(gaps, 1);
        let r = replica_hours(
            &[2, 4, 4, 4],
            &[Some(2), Some(2), None, Some(6)],
            &h,
            &[(2, 1.0); 4],
        );
        assert!((r.hours - 45.0 / 3600.0).abs() < 1e-12);
        assert!((r.ours_replica_h - (2.0 + 4.0 + 4.0) * 15.0 / 3600.0).abs() < 1e-12);
        assert!((r.theirs_replica_h - (2.0 + 2.0 + 6.0) * 15.0 / 3600.0).abs() < 1e-12);
        assert!((r.ours_gpu_h - 2.0 * r.ours_replica_h).abs() < 1e-12);
        assert!((r.ours_usd - r.ours_gpu_h).abs() < 1e-12);
    }
}
