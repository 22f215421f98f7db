//! The verdict at the top of the shadow report: may this object switch to Active, by checks whose
//! thresholds the reader can see and set (`rlscale shadow-report --help`).
//!
//! The checks, in the order the report lists them:
//! 1. **Enough data**: the log covers at least [`Thresholds::min_coverage_s`], and the arrival rate it
//!    saw spans a range (95th over 5th percentile of the 1-minute rate) of at least
//!    [`Thresholds::min_traffic_range`]. A log that fails this gets "not enough data to decide",
//!    whatever the other checks say.
//! 2. **SLO in the replay**: ours meets the SLO target in the counterfactual replay (mean over seeds).
//! 3. **Cost against the HPA**: the upper end of the 95 % confidence interval of the paired GPU-cost
//!    difference (ours − HPA, replay) is at most [`Thresholds::max_cost_increase_pct`] of the HPA's
//!    cost.
//! 4. **Flapping**: our recommendation changes at most [`Thresholds::max_scale_events_per_hour`]
//!    times per hour of log.
//! 5. **Guardrail clips** and 6. **fallbacks**: at most [`Thresholds::max_guardrail_pct`] and
//!    [`Thresholds::max_fallback_pct`] of the decisions.
//!
//! A replay in which both policies miss the SLO target is not credible (the profile or the rates are
//! off, or the workload is beyond any fleet within the bounds): the verdict is then "undecided", as it
//! is without a replay.

use serde::Serialize;

use super::ObjectReport;

/// The thresholds of the verdict, each a flag of `rlscale shadow-report`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Hours covered at least, in seconds.
    pub min_coverage_s: f64,
    /// 95th over 5th percentile of the 1-minute arrival rate, at least.
    pub min_traffic_range: f64,
    /// Upper end of the 95 % CI of ours − HPA GPU cost, percent of the HPA's cost, at most.
    pub max_cost_increase_pct: f64,
    /// Changes of our recommendation per hour, at most.
    pub max_scale_events_per_hour: f64,
    /// Decisions clipped by a guardrail, percent, at most.
    pub max_guardrail_pct: f64,
    /// Decisions made by the fallback law, percent, at most.
    pub max_fallback_pct: f64,
    /// Divergence band: a difference of at most this many replicas is not counted ...
    pub band_replicas: u32,
    /// ... nor one of at most this percentage of the HPA's recommendation.
    pub band_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_coverage_s: 24.0 * 3600.0,
            min_traffic_range: 1.5,
            max_cost_increase_pct: 0.0,
            max_scale_events_per_hour: 12.0,
            max_guardrail_pct: 10.0,
            max_fallback_pct: 5.0,
            band_replicas: 1,
            band_pct: 10.0,
        }
    }
}

/// What the report recommends for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    SwitchToActive,
    /// Enough data, a credible replay, and some check failed.
    StayInShadow,
    /// The log is too short or its traffic too narrow.
    NotEnoughData,
    /// No replay, or a replay that is not credible.
    Undecided,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Passed, failed, or could not be checked (`None`).
    pub passed: Option<bool>,
    /// What was measured, in words.
    pub measured: String,
    /// The threshold, in words.
    pub threshold: String,
}

/// The verdict for one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// One sentence: the outcome and why.
    pub headline: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Warnings that bear on the outcome (a replay that is not credible).
    pub warnings: Vec<String>,
}

/// Seconds as a reader says them: `45 s`, `3.3 min`, `5.2 h`, `3.5 days`.
pub fn human_duration(s: f64) -> String {
    if !s.is_finite() {
        "–".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

/// Nearest-rank percentile of the finite values (NaN when there are none).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    super::analysis::quantile(&mut v, q / 100.0)
}

/// Changes of a recommendation series (consecutive decisions that differ), skipping unknown values.
pub fn scale_events(series: &[f64]) -> usize {
    let known: Vec<f64> = series.iter().copied().filter(|x| x.is_finite()).collect();
    known.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Hours the object's log covers: first to last decision plus one interval.
pub fn coverage_s(o: &ObjectReport) -> f64 {
    (o.window.1 - o.window.0).max(0.0) + f64::from(o.interval_s)
}

fn pct(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

/// The verdict for `o` under `t`.
pub fn decide(o: &ObjectReport, t: &Thresholds) -> Verdict {
    let mut checks = Vec::new();
    let mut warnings = Vec::new();

    // 1. Enough data.
    let covered = coverage_s(o);
    let p5 = percentile(&o.series.arrival, 5.0);
    let p95 = percentile(&o.series.arrival, 95.0);
    let range = if !p95.is_finite() {
        f64::NAN
    } else if p5 > 0.0 {
        p95 / p5
    } else if p95 > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let long_enough = covered >= t.min_coverage_s;
    let wide_enough = range.is_infinite() || (range.is_finite() && range >= t.min_traffic_range);
    checks.push(Check {
        name: "enough data".into(),
        passed: Some(long_enough && wide_enough),
        measured: format!(
            "{} of decisions; arrival rate {} to {} req/s (5th to 95th percentile{})",
            human_duration(covered),
            fmt(p5, 2),
            fmt(p95, 2),
            if range.is_finite() {
                format!(", a range of {range:.2}×")
            } else if range.is_infinite() {
                ", from idle".to_string()
            } else {
                ": no arrival rate was logged".to_string()
            }
        ),
        threshold: format!(
            "at least {} and a range of at least {:.2}×",
            human_duration(t.min_coverage_s),
            t.min_traffic_range
        ),
    });

    // 2 and 3. The replay.
    let mut replay_ok = true;
    match &o.replay {
        None => {
            replay_ok = false;
            let why = o
                .replay_skipped
                .clone()
                .unwrap_or_else(|| "--no-replay was given".into());
            for name in ["SLO in the replay", "cost against the HPA"] {
                checks.push(Check {
                    name: name.into(),
                    passed: None,
                    measured: format!("no replay ({why})"),
                    threshold: "needs the replay".into(),
                });
            }
        }
        Some(r) => {
            let row = |label: &str| r.rows.iter().find(|row| row.policy == label);
            let (ours, hpa) = (row(&r.ours), row(&r.hpa));
            let target = ours.or(hpa).map_or(f64::NAN, |x| x.slo_target_pct);
            let slo =
                |x: Option<&crate::report::Row>| x.map_or(f64::NAN, |x| x.slo_attainment_pct.mean);
            let (ours_slo, hpa_slo) = (slo(ours), slo(hpa));
            checks.push(Check {
                name: "SLO in the replay".into(),
                passed: Some(ours_slo >= target),
                measured: format!(
                    "ours {} %, the HPA {} % (mean of {} seed(s))",
                    fmt(ours_slo, 2),
                    fmt(hpa_slo, 2),
                    r.seeds.len()
                ),
                threshold: format!("ours at least the target, {} %", fmt(target, 2)),
            });
            let meets = |x: f64| x >= target;
            if !meets(ours_slo) && !meets(hpa_slo) {
                replay_ok = false;
                warnings.push(format!(
                    "The replay misses the SLO target ({} %) for both policies (ours {} %, the HPA {} %): it is not credible. Check the declared profile (capacity per replica, cold start, SLO latency) and the bounds before reading its costs.",
                    fmt(target, 2),
                    fmt(ours_slo, 2),
                    fmt(hpa_slo, 2)
                ));
            }
            match r.diffs.iter().find(|d| d.metric == "cost $") {
                Some(d) => {
                    let (upper, how) = if d.ci95.1.is_finite() {
                        (d.ci95.1, "upper end of the 95 % CI")
                    } else {
                        (d.mean, "one seed, no interval: the mean")
                    };
                    let limit = t.max_cost_increase_pct / 100.0 * d.hpa_mean;
                    let rel = |x: f64| {
                        if d.hpa_mean > 0.0 {
                            format!("{:+.1} %", 100.0 * x / d.hpa_mean)
                        } else {
                            "–".into()
                        }
                    };
                    checks.push(Check {
                        name: "cost against the HPA".into(),
                        passed: Some(upper <= limit),
                        measured: format!(
                            "ours ${} against the HPA's ${}: {} ({how}: {})",
                            fmt(d.ours_mean, 2),
                            fmt(d.hpa_mean, 2),
                            rel(d.mean),
                            rel(upper)
                        ),
                        threshold: format!(
                            "upper end of the 95 % CI at most {:+.1} % of the HPA's cost",
                            t.max_cost_increase_pct
                        ),
                    });
                }
                None => checks.push(Check {
                    name: "cost against the HPA".into(),
                    passed: None,
                    measured: "the replay has no cost".into(),
                    threshold: String::new(),
                }),
            }
        }
    }

    // 4. Flapping.
    let hours = covered / 3600.0;
    let ours_events = scale_events(&o.series.ours);
    let hpa_events = if o.vs_hpa.compared > 0 {
        scale_events(&o.series.hpa)
    } else {
        scale_events(&o.series.recomputed)
    };
    let per_h = ours_events as f64 / hours;
    checks.push(Check {
        name: "flapping".into(),
        passed: Some(per_h <= t.max_scale_events_per_hour),
        measured: format!(
            "ours changed {ours_events} time(s), {per_h:.1} per hour; the HPA {hpa_events}, {:.1} per hour",
            hpa_events as f64 / hours
        ),
        threshold: format!(
            "at most {:.1} per hour",
            t.max_scale_events_per_hour
        ),
    });

    // 5 and 6. Guardrails and fallbacks.
    let n = o.decisions;
    let count = |k: &str| o.sources.get(k).copied().unwrap_or(0);
    let (clipped, fell_back) = (count("guardrail"), count("fallback"));
    checks.push(Check {
        name: "guardrail clips".into(),
        passed: Some(pct(clipped, n) <= t.max_guardrail_pct),
        measured: format!("{clipped} of {n} decisions ({:.1} %)", pct(clipped, n)),
        threshold: format!("at most {:.1} %", t.max_guardrail_pct),
    });
    checks.push(Check {
        name: "fallbacks".into(),
        passed: Some(pct(fell_back, n) <= t.max_fallback_pct),
        measured: format!("{fell_back} of {n} decisions ({:.1} %)", pct(fell_back, n)),
        threshold: format!("at most {:.1} %", t.max_fallback_pct),
    });

    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.passed == Some(false))
        .map(|c| c.name.as_str())
        .collect();
    let (outcome, headline) = if checks[0].passed != Some(true) {
        (
            Outcome::NotEnoughData,
            format!(
                "not enough data to decide: the log covers {} (needs {}){}.",
                human_duration(covered),
                human_duration(t.min_coverage_s),
                if wide_enough {
                    String::new()
                } else {
                    format!(
                        " and its traffic spans {} (needs {:.2}×)",
                        if range.is_finite() {
                            format!("{range:.2}×")
                        } else {
                            "nothing".into()
                        },
                        t.min_traffic_range
                    )
                }
            ),
        )
    } else if !replay_ok {
        (
            Outcome::Undecided,
            if o.replay.is_none() {
                "undecided: the verdict needs the counterfactual replay (run without --no-replay, with --model if the log's model is not on this machine).".into()
            } else {
                "undecided: the replay misses the SLO for both policies, so it is not credible."
                    .into()
            },
        )
    } else if failed.is_empty() {
        (
            Outcome::SwitchToActive,
            "switch to Active: every check passed.".into(),
        )
    } else {
        (
            Outcome::StayInShadow,
            format!("stay in Shadow: {} failed.", failed.join(", ")),
        )
    };
    Verdict {
        outcome,
        headline,
        checks,
        warnings,
    }
}

fn fmt(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank_skip_unknowns() {
        let v = [f64::NAN, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 5.0), 1.0);
        assert_eq!(percentile(&v, 95.0), 10.0);
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert!(percentile(&[f64::NAN], 50.0).is_nan());
    }

    #[test]
    fn scale_events_count_changes_between_known_values() {
        assert_eq!(scale_events(&[3.0, 3.0, 4.0, f64::NAN, 4.0, 2.0]), 2);
        assert_eq!(scale_events(&[]), 0);
    }

    #[test]
    fn durations_read_in_the_unit_a_reader_uses() {
        assert_eq!(human_duration(45.0), "45 s");
        assert_eq!(human_duration(200.0), "3.3 min");
        assert_eq!(human_duration(5.0 * 3600.0), "5.0 h");
        assert_eq!(human_duration(3.5 * 86_400.0), "3.5 days");
    }
}
