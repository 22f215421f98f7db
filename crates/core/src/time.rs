//! Time as an argument.
//!
//! Policies never read a clock: the caller passes [`SimTime`]. In the simulator it is the scenario's start
//! time plus simulated seconds; in the controller it is the wall clock read once per reconcile. Every control
//! law can therefore be tested on a simulated timeline (as knative's `autoscaler_test.go` does).

use serde::{Deserialize, Serialize};

/// A point in time, in seconds since the Unix epoch (UTC), with sub-second precision.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub f64);

impl SimTime {
    /// Seconds since the Unix epoch.
    pub fn unix_s(self) -> f64 {
        self.0
    }

    /// This time plus `secs` seconds.
    pub fn plus(self, secs: f64) -> SimTime {
        SimTime(self.0 + secs)
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> f64 {
        self.0 - earlier.0
    }

    /// Seconds since midnight UTC, in `[0, 86400)`.
    pub fn second_of_day(self) -> f64 {
        self.0.rem_euclid(86_400.0)
    }

    /// Day of the week, 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    pub fn day_of_week(self) -> u32 {
        // In floating point: a time beyond i64's days (a garbage snapshot) must not overflow. NaN → 0.
        ((self.0 / 86_400.0).floor() + 3.0).rem_euclid(7.0) as u32
    }

    /// Seconds since Monday 00:00 UTC, in `[0, 604800)`.
    pub fn second_of_week(self) -> f64 {
        f64::from(self.day_of_week()) * 86_400.0 + self.second_of_day()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_of_known_dates() {
        // 1970-01-01 00:00 UTC was a Thursday.
        assert_eq!(SimTime(0.0).day_of_week(), 3);
        // 2024-05-10 00:00:00 UTC (1715299200) was a Friday.
        let t = SimTime(1_715_299_200.0);
        assert_eq!(t.day_of_week(), 4);
        assert_eq!(t.second_of_day(), 0.0);
        // 18:30 the next day is a Saturday.
        let t2 = t.plus(86_400.0 + 18.5 * 3600.0);
        assert_eq!(t2.day_of_week(), 5);
        assert!((t2.second_of_day() - 18.5 * 3600.0).abs() < 1e-6);
        assert!((t2.second_of_week() - (5.0 * 86_400.0 + 18.5 * 3600.0)).abs() < 1e-6);
        assert_eq!(t2.since(t), 86_400.0 + 18.5 * 3600.0);
    }

    /// Found by `fuzz/snapshot_decide`: a snapshot time of 3.3e25 s overflowed an i64 day count.
    #[test]
    fn absurd_times_do_not_panic() {
        for t in [3.3e25, -3.3e25, f64::MAX, f64::MIN, f64::INFINITY, f64::NAN] {
            let d = SimTime(t).day_of_week();
            assert!(d < 7, "{t}: {d}");
            let _ = SimTime(t).second_of_week();
        }
    }

    #[test]
    fn times_before_the_epoch_wrap_correctly() {
        // 1969-12-31 23:00 UTC was a Wednesday.
        let t = SimTime(-3600.0);
        assert_eq!(t.day_of_week(), 2);
        assert!((t.second_of_day() - 82_800.0).abs() < 1e-9);
    }
}
