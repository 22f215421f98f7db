//! Arrival processes: non-homogeneous Poisson streams over piecewise-constant rates.
//!
//! Every generator is reduced to a sequence of segments `[t, t_end)` of constant rate: trace rows, MMPP and
//! on/off sojourns, piecewise points, and 1-second steps of the smooth generators (diurnal, flash crowd,
//! linear ramps; the rate is evaluated at each second's midpoint, which is exact for a piecewise-constant
//! process and within a second's change of the rate for the smooth ones). Arrival times are drawn by the
//! time-change method: a unit exponential is spent across segments at each segment's rate, so a segment of
//! rate 0 produces nothing and costs one iteration.
//!
//! The arrival stream draws only from its own RNG, never from the system's state: for one seed every
//! policy sees exactly the same requests (common random numbers, which makes policy comparisons fair).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use crate::config::{ArrivalSpec, Arrivals, Interpolation};

/// Length of the constant-rate steps used for smooth rate functions, seconds.
const SMOOTH_STEP_S: f64 = 1.0;

/// How far past the episode's start an arrival can matter, seconds: ten years, beyond any run
/// (`MAX_EPISODE_STEPS` steps of up to 150 s). Arrivals later than this never come.
pub const ARRIVAL_HORIZON_S: f64 = 10.0 * 365.0 * 86_400.0;

/// A rate process reduced to piecewise-constant segments.
#[derive(Debug, Clone)]
pub struct RateProcess {
    arrivals: Arrivals,
    /// Offset into a trace, seconds (fixed or drawn at reset).
    trace_offset_s: f64,
    /// MMPP / on-off state: current state index and the time it ends.
    state: usize,
    state_until: f64,
    /// Token means of the current segment (trace with token columns).
    tokens: Option<(f64, f64)>,
}

impl RateProcess {
    /// A process at time 0. `rng` draws the random trace offset and the first MMPP/on-off sojourn.
    pub fn new(arrivals: &Arrivals, rng: &mut ChaCha8Rng) -> Self {
        let mut p = RateProcess {
            arrivals: arrivals.clone(),
            trace_offset_s: 0.0,
            state: 0,
            state_until: 0.0,
            tokens: None,
        };
        match &p.arrivals {
            Arrivals::Trace {
                trace,
                offset_s,
                random_offset,
                ..
            } => {
                p.trace_offset_s = if *random_offset {
                    // Whole intervals, so segments stay aligned with rows.
                    (rng.random::<f64>() * trace.rps.len() as f64).floor() * trace.interval_s
                } else {
                    *offset_s
                };
            }
            Arrivals::Generator(ArrivalSpec::Mmpp { states }) => {
                let e: f64 = Exp1.sample(rng);
                p.state_until = e * states[0].mean_holding_s;
            }
            Arrivals::Generator(ArrivalSpec::OnOff { mean_on_s, .. }) => {
                let e: f64 = Exp1.sample(rng);
                p.state_until = e * mean_on_s;
            }
            _ => {}
        }
        p
    }

    /// A homogeneous Poisson process at `rate` requests/s whose requests carry the token means
    /// `tokens` (the warm-up's: the rate and tokens of the episode's first segment).
    fn constant(rate: f64, tokens: Option<(f64, f64)>) -> Self {
        RateProcess {
            arrivals: Arrivals::Generator(ArrivalSpec::Poisson { rps: rate }),
            trace_offset_s: 0.0,
            state: 0,
            state_until: 0.0,
            tokens,
        }
    }

    /// Token means `(input, output)` of the segment last returned, when the trace has them.
    pub fn tokens(&self) -> Option<(f64, f64)> {
        self.tokens
    }

    /// The rate at `t` for the smooth generators (requests/s).
    fn smooth_rate(&self, t: f64, start_unix_s: f64) -> f64 {
        match &self.arrivals {
            Arrivals::Generator(ArrivalSpec::Diurnal {
                mean_rps,
                daily_amplitude,
                peak_hour,
                weekly_amplitude,
                peak_day,
            }) => {
                use std::f64::consts::TAU;
                let now = rlscale_core::SimTime(start_unix_s + t);
                let hour = now.second_of_day() / 3600.0;
                let day = now.second_of_week() / 86_400.0;
                let d = 1.0 + daily_amplitude * (TAU * (hour - peak_hour) / 24.0).cos();
                let w = 1.0 + weekly_amplitude * (TAU * (day - peak_day) / 7.0).cos();
                (mean_rps * d * w).max(0.0)
            }
            Arrivals::Generator(ArrivalSpec::FlashCrowd {
                base_rps,
                peak_rps,
                start_s,
                ramp_s,
                hold_s,
                decay_s,
            }) => {
                let extra = peak_rps - base_rps;
                if t < *start_s {
                    *base_rps
                } else if t < start_s + ramp_s {
                    base_rps + extra * (t - start_s) / ramp_s
                } else if t < start_s + ramp_s + hold_s {
                    *peak_rps
                } else {
                    base_rps + extra * (-(t - start_s - ramp_s - hold_s) / decay_s).exp()
                }
            }
            Arrivals::Generator(ArrivalSpec::Piecewise { points, .. }) => {
                let (i, tl) = self.piece_at(t);
                let [t0, r0] = points[i];
                match points.get(i + 1) {
                    Some([t1, r1]) => r0 + (r1 - r0) * (tl - t0) / (t1 - t0),
                    None => r0,
                }
            }
            _ => unreachable!("smooth_rate is only called for smooth generators"),
        }
    }

    /// For piecewise: index of the point at or before `t` (after repetition) and the local time.
    fn piece_at(&self, t: f64) -> (usize, f64) {
        let Arrivals::Generator(ArrivalSpec::Piecewise {
            points, repeat_s, ..
        }) = &self.arrivals
        else {
            unreachable!()
        };
        let tl = match repeat_s {
            Some(rep) => t.rem_euclid(*rep),
            None => t,
        };
        let i = points.partition_point(|p| p[0] <= tl).saturating_sub(1);
        (i, tl)
    }

    /// The constant-rate segment starting at `t`: `(t_end, rate)`, with `t_end > t` (possibly infinite).
    pub fn segment(&mut self, t: f64, start_unix_s: f64, rng: &mut ChaCha8Rng) -> (f64, f64) {
        match &self.arrivals {
            Arrivals::Generator(ArrivalSpec::Poisson { rps: r }) => (f64::INFINITY, *r),
            Arrivals::Generator(ArrivalSpec::Diurnal { .. } | ArrivalSpec::FlashCrowd { .. }) => {
                let end = ((t / SMOOTH_STEP_S).floor() + 1.0) * SMOOTH_STEP_S;
                (end, self.smooth_rate(0.5 * (t + end), start_unix_s))
            }
            Arrivals::Generator(ArrivalSpec::Piecewise {
                points,
                interpolation,
                repeat_s,
            }) => {
                let (i, tl) = self.piece_at(t);
                let base = t - tl; // start of this repetition
                let next_point = points
                    .get(i + 1)
                    .map(|p| p[0])
                    .or(*repeat_s)
                    .map_or(f64::INFINITY, |n| base + n);
                match interpolation {
                    Interpolation::Step => (next_point, points[i][1]),
                    Interpolation::Linear => {
                        if points.get(i + 1).is_none() {
                            return (next_point, points[i][1]);
                        }
                        let end =
                            (((t / SMOOTH_STEP_S).floor() + 1.0) * SMOOTH_STEP_S).min(next_point);
                        (end, self.smooth_rate(0.5 * (t + end), start_unix_s))
                    }
                }
            }
            Arrivals::Generator(ArrivalSpec::Mmpp { states }) => {
                while t >= self.state_until {
                    // Jump to another state, uniformly.
                    let k = states.len();
                    let j = rng.random_range(0..k - 1);
                    self.state = if j >= self.state { j + 1 } else { j };
                    let e: f64 = Exp1.sample(rng);
                    self.state_until += e * states[self.state].mean_holding_s;
                }
                (self.state_until, states[self.state].rps)
            }
            Arrivals::Generator(ArrivalSpec::OnOff {
                on_rps,
                mean_on_s,
                mean_off_s,
            }) => {
                while t >= self.state_until {
                    self.state = 1 - self.state;
                    let mean = if self.state == 0 {
                        mean_on_s
                    } else {
                        mean_off_s
                    };
                    let e: f64 = Exp1.sample(rng);
                    self.state_until += e * mean;
                }
                (
                    self.state_until,
                    if self.state == 0 { *on_rps } else { 0.0 },
                )
            }
            Arrivals::Generator(ArrivalSpec::Trace { .. }) => {
                unreachable!("trace specs are validated into Arrivals::Trace")
            }
            Arrivals::Trace {
                trace,
                rate_scale,
                looping,
                ..
            } => {
                let pos = t + self.trace_offset_s;
                let dt = trace.interval_s;
                let n = trace.rps.len();
                let row_abs = (pos / dt).floor();
                // NB: guard against `pos` sitting a rounding error below a row boundary.
                let row_abs = if (row_abs + 1.0) * dt - pos < 1e-9 * dt.max(1.0) {
                    row_abs + 1.0
                } else {
                    row_abs
                };
                let end = (row_abs + 1.0) * dt - self.trace_offset_s;
                let row = row_abs as usize;
                if !looping && row >= n {
                    self.tokens = None;
                    return (f64::INFINITY, 0.0);
                }
                let row = row % n;
                self.tokens = trace.tokens.as_ref().map(|tk| tk[row]);
                (end, trace.rps[row] * rate_scale)
            }
        }
    }
}

/// A Poisson arrival stream over a [`RateProcess`].
#[derive(Debug, Clone)]
pub struct ArrivalStream {
    process: RateProcess,
    start_unix_s: f64,
    multiplier: f64,
    /// Where the episode starts on the process's timeline, seconds.
    offset_s: f64,
    /// Time on the process's timeline, seconds.
    t: f64,
    seg_end: f64,
    rate: f64,
    /// An upper bound of `rate` over the whole process (the multiplier applied), for the horizon.
    peak: f64,
}

impl ArrivalStream {
    /// A stream starting at simulated time 0, every rate multiplied by `multiplier`.
    pub fn new(
        arrivals: &Arrivals,
        start_unix_s: f64,
        multiplier: f64,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        Self::starting_at(arrivals, start_unix_s, 0.0, multiplier, rng)
    }

    /// A stream whose episode starts `offset_s` into the process (a later window of the same workload):
    /// the process runs on its own timeline from `origin_unix_s`, and arrival times are returned
    /// relative to the episode start.
    pub fn starting_at(
        arrivals: &Arrivals,
        origin_unix_s: f64,
        offset_s: f64,
        multiplier: f64,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut process = RateProcess::new(arrivals, rng);
        let (seg_end, rate) = process.segment(offset_s, origin_unix_s, rng);
        ArrivalStream {
            process,
            start_unix_s: origin_unix_s,
            multiplier,
            offset_s,
            t: offset_s,
            seg_end,
            rate: rate * multiplier,
            peak: arrivals.peak_rps() * multiplier,
        }
    }

    /// Poisson arrivals at `rate` requests/s at times in `[-duration_s, ∞)` (relative to the episode
    /// start): the simulator's warm-up before the first decision.
    pub fn warm_up(rate: f64, tokens: Option<(f64, f64)>, duration_s: f64) -> Self {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        ArrivalStream {
            process: RateProcess::constant(rate, tokens),
            start_unix_s: 0.0,
            multiplier: 1.0,
            offset_s: duration_s,
            t: 0.0,
            seg_end: f64::INFINITY,
            rate,
            peak: rate,
        }
    }

    /// The arrival rate now (requests/s, the multiplier applied): the current segment's.
    pub fn current_rate(&self) -> f64 {
        self.rate
    }

    /// Token means of the segment the last arrival fell in (trace with token columns).
    pub fn tokens(&self) -> Option<(f64, f64)> {
        self.process.tokens()
    }

    /// The next arrival time (simulated seconds), or infinity when no arrival will ever come.
    #[inline]
    pub fn next_arrival(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        // A process scaled to nothing never arrives: without this, the segment walk below would run
        // through zero-rate segments forever (`--rate-scale 0` on a diurnal scenario).
        if self.multiplier == 0.0 {
            self.t = f64::INFINITY;
            return f64::INFINITY;
        }
        let mut e: f64 = Exp1.sample(rng);
        // Consecutive segments without a chance of an arrival; a million of them (years of simulated
        // time at the generators' segment lengths) means the process has stopped.
        let mut empty = 0u32;
        loop {
            // A process scaled almost to nothing (`--rate-scale 1e-12`) puts its next arrival
            // thousands of years away, through ~1e11 one-second segments (found by
            // tests/fuzz_loaders.rs). No rate exceeds the peak, so the arrival comes no sooner than
            // `e / peak` from now (twice the peak, for slack): past the horizon no run needs it.
            if self.t - self.offset_s + e / (2.0 * self.peak) > ARRIVAL_HORIZON_S
                || self.t - self.offset_s > ARRIVAL_HORIZON_S
            {
                self.t = f64::INFINITY;
                return f64::INFINITY;
            }
            let room = (self.seg_end - self.t) * self.rate;
            if e < room {
                self.t += e / self.rate;
                return self.t - self.offset_s;
            }
            if self.seg_end == f64::INFINITY {
                self.t = f64::INFINITY;
                return f64::INFINITY;
            }
            if room > 0.0 {
                empty = 0;
            } else {
                empty += 1;
                if empty >= 1_000_000 {
                    self.t = f64::INFINITY;
                    return f64::INFINITY;
                }
            }
            e -= room;
            self.t = self.seg_end;
            let (end, rate) = self.process.segment(self.t, self.start_unix_s, rng);
            self.seg_end = end;
            self.rate = rate * self.multiplier;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MmppState;
    use rand::SeedableRng;

    fn count(arrivals: &Arrivals, horizon: f64, seed: u64) -> u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = ArrivalStream::new(arrivals, 0.0, 1.0, &mut rng);
        let mut n = 0;
        while s.next_arrival(&mut rng) < horizon {
            n += 1;
        }
        n
    }

    fn within_poisson_noise(n: u64, expected: f64) {
        let z = (n as f64 - expected) / expected.sqrt();
        assert!(
            z.abs() < 4.0,
            "count {n}, expected {expected:.0}, z = {z:.2}"
        );
    }

    #[test]
    fn poisson_count() {
        within_poisson_noise(
            count(
                &Arrivals::Generator(ArrivalSpec::Poisson { rps: 10.0 }),
                10_000.0,
                1,
            ),
            100_000.0,
        );
    }

    #[test]
    fn diurnal_integrates_to_its_mean_over_whole_weeks() {
        let a = Arrivals::Generator(ArrivalSpec::Diurnal {
            mean_rps: 5.0,
            daily_amplitude: 0.8,
            peak_hour: 18.0,
            weekly_amplitude: 0.3,
            peak_day: 2.0,
        });
        // Over whole weeks, the product of the two cosines integrates to the mean.
        within_poisson_noise(count(&a, 2.0 * 604_800.0, 2), 5.0 * 2.0 * 604_800.0);
    }

    #[test]
    fn flash_crowd_and_piecewise_integrate_their_rate() {
        let f = Arrivals::Generator(ArrivalSpec::FlashCrowd {
            base_rps: 2.0,
            peak_rps: 10.0,
            start_s: 100.0,
            ramp_s: 50.0,
            hold_s: 100.0,
            decay_s: 60.0,
        });
        // base·T + ramp triangle + hold + decay tail (to horizon 10000 ≫ decay).
        let expected = 2.0 * 10_000.0 + 8.0 * 25.0 + 8.0 * 100.0 + 8.0 * 60.0;
        within_poisson_noise(count(&f, 10_000.0, 3), expected);
        let p = Arrivals::Generator(ArrivalSpec::Piecewise {
            points: vec![[0.0, 1.0], [100.0, 5.0], [200.0, 5.0]],
            interpolation: Interpolation::Linear,
            repeat_s: Some(300.0),
        });
        // One period: ramp 1→5 over 100 s (300) + 5 for 100 s (500) + 5 for 100 s (500) = 1300.
        within_poisson_noise(count(&p, 300.0 * 200.0, 4), 1300.0 * 200.0);
        let s = Arrivals::Generator(ArrivalSpec::Piecewise {
            points: vec![[0.0, 1.0], [100.0, 3.0]],
            interpolation: Interpolation::Step,
            repeat_s: None,
        });
        within_poisson_noise(count(&s, 20_000.0, 5), 100.0 + 3.0 * 19_900.0);
    }

    #[test]
    fn mmpp_and_on_off_spend_time_in_proportion_to_holding() {
        let m = Arrivals::Generator(ArrivalSpec::Mmpp {
            states: vec![
                MmppState {
                    rps: 1.0,
                    mean_holding_s: 300.0,
                },
                MmppState {
                    rps: 9.0,
                    mean_holding_s: 100.0,
                },
            ],
        });
        // Two states alternate: time shares 3/4 and 1/4, mean rate 0.75 + 2.25 = 3.
        let n = count(&m, 2_000_000.0, 6) as f64;
        assert!(
            (n / 2_000_000.0 / 3.0 - 1.0).abs() < 0.03,
            "mean rate {}",
            n / 2_000_000.0
        );
        let o = Arrivals::Generator(ArrivalSpec::OnOff {
            on_rps: 4.0,
            mean_on_s: 100.0,
            mean_off_s: 300.0,
        });
        let n = count(&o, 2_000_000.0, 7) as f64;
        assert!(
            (n / 2_000_000.0 - 1.0).abs() < 0.03,
            "mean rate {}",
            n / 2_000_000.0
        );
    }

    #[test]
    fn same_seed_same_stream() {
        let a = Arrivals::Generator(ArrivalSpec::OnOff {
            on_rps: 4.0,
            mean_on_s: 100.0,
            mean_off_s: 300.0,
        });
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut s = ArrivalStream::new(&a, 0.0, 1.0, &mut rng);
            (0..1000)
                .map(|_| s.next_arrival(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
