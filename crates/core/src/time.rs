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

    /// The UTC calendar date and time of day, whole seconds: `(year, month 1–12, day 1–31, hour,
    /// minute, second)`. A time beyond ±2.9e11 years saturates; NaN is the epoch.
    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        // `as` saturates, and keeps the day arithmetic below within i64.
        let secs = (self.0.floor() as i64).clamp(-(1 << 52), 1 << 52);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
        // Howard Hinnant's days-to-civil.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// RFC 3339 in UTC with whole seconds (`metav1.Time`'s form), e.g. `2024-05-06T09:00:00Z`.
    pub fn rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

#[cfg(test)]
mod civil_tests {
    use super::SimTime;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(SimTime(0.0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(SimTime(1_700_000_000.7).rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(SimTime(951_782_400.0).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(SimTime(-1.0).rfc3339(), "1969-12-31T23:59:59Z");
        assert_eq!(SimTime(f64::NAN).rfc3339(), "1970-01-01T00:00:00Z");
        // No overflow on garbage.
        let _ = SimTime(3.3e25).rfc3339();
        let _ = SimTime(-3.3e25).rfc3339();
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
