//! Rate-limited log lines. During an API-server outage every object's reconcile fails and is retried
//! every 5 s, and each failure logged a WARN from the error policy, another from the controller's
//! stream and kube-client's ERROR for the failed request: three lines per object every 5 s (issue 18).
//! A [`LogLimiter`] lets the first line of a kind about an object through, then at most one per
//! period (a minute in the controller), and counts the lines it held back: the next line that gets
//! through says how many.
//!
//! Pure: the time is an argument (the controller passes its clock's reading).

use std::collections::HashMap;

/// How often a line of one kind about one object gets through, in the controller.
pub const LOG_PERIOD_S: f64 = 60.0;

/// The last line let through for one (object, kind), and the lines held back since.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    /// When it was let through, Unix seconds.
    at: f64,
    /// Lines held back since.
    held: u64,
}

/// Which log lines get through: per (object, kind), the first, then one per period.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    period_s: f64,
    /// By object key, then kind.
    slots: HashMap<String, HashMap<String, Slot>>,
}

impl LogLimiter {
    /// A limiter letting one line per `period_s` seconds through for each object and kind.
    pub fn new(period_s: f64) -> Self {
        LogLimiter {
            period_s,
            slots: HashMap::new(),
        }
    }

    /// A line of `kind` about `object` at `now`: `Some(held)` to log it, with the number of lines of
    /// this kind about this object held back since the last one logged; `None` to hold it back (it is
    /// counted). A clock that went backwards, or is not a number, lets the line through: a broken
    /// clock must not silence a failure.
    pub fn admit(&mut self, object: &str, kind: &str, now: f64) -> Option<u64> {
        let kinds = self.slots.entry(object.to_string()).or_default();
        match kinds.get_mut(kind) {
            None => {
                kinds.insert(kind.to_string(), Slot { at: now, held: 0 });
                Some(0)
            }
            Some(slot) => {
                let elapsed = now - slot.at;
                if (0.0..self.period_s).contains(&elapsed) {
                    slot.held += 1;
                    None
                } else {
                    let held = slot.held;
                    *slot = Slot { at: now, held: 0 };
                    Some(held)
                }
            }
        }
    }

    /// Forget `object` (it was deleted).
    pub fn forget(&mut self, object: &str) {
        self.slots.remove(object);
    }

    /// Forget every object for which `live` is false.
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.slots.retain(|k, _| live(k));
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_700_000_000.0;

    /// An outage: a failure every 5 s for 3 min. One line at once, then one a minute, each saying how
    /// many it stands for.
    #[test]
    fn the_first_then_one_per_period_with_the_count_held_back() {
        let mut l = LogLimiter::new(60.0);
        let logged: Vec<(f64, u64)> = (0..36)
            .map(|k| T0 + 5.0 * f64::from(k))
            .filter_map(|t| {
                l.admit("default/web", "reconcile", t)
                    .map(|held| (t - T0, held))
            })
            .collect();
        assert_eq!(logged, [(0.0, 0), (60.0, 11), (120.0, 11)]);
        // The 11 failures from 125 s to 175 s are counted in the next line let through.
        assert_eq!(l.admit("default/web", "reconcile", T0 + 180.0), Some(11));
    }

    #[test]
    fn objects_and_kinds_are_counted_apart() {
        let mut l = LogLimiter::new(60.0);
        assert_eq!(l.admit("a", "reconcile", T0), Some(0));
        assert_eq!(l.admit("b", "reconcile", T0 + 1.0), Some(0));
        assert_eq!(l.admit("a", "event", T0 + 2.0), Some(0));
        assert_eq!(l.admit("a", "reconcile", T0 + 3.0), None);
        assert_eq!(l.admit("b", "reconcile", T0 + 4.0), None);
        assert_eq!(l.admit("a", "reconcile", T0 + 60.0), Some(1));
        assert_eq!(l.admit("a", "event", T0 + 61.0), None);
    }

    #[test]
    fn after_a_quiet_period_the_next_failure_is_logged_at_once() {
        let mut l = LogLimiter::new(60.0);
        assert_eq!(l.admit("a", "reconcile", T0), Some(0));
        assert_eq!(l.admit("a", "reconcile", T0 + 59.9), None);
        // Exactly one period after the last line let through: through, with the one held back.
        assert_eq!(l.admit("a", "reconcile", T0 + 60.0), Some(1));
        // An hour later, a new outage: its first failure at once.
        assert_eq!(l.admit("a", "reconcile", T0 + 3660.0), Some(0));
    }

    #[test]
    fn a_broken_clock_lets_lines_through() {
        let mut l = LogLimiter::new(60.0);
        assert_eq!(l.admit("a", "k", T0), Some(0));
        assert_eq!(l.admit("a", "k", T0 - 3600.0), Some(0), "went backwards");
        assert_eq!(l.admit("a", "k", f64::NAN), Some(0));
        assert_eq!(l.admit("a", "k", f64::NAN), Some(0));
    }

    #[test]
    fn forgotten_objects_start_afresh() {
        let mut l = LogLimiter::new(60.0);
        for o in ["a", "b", "c"] {
            assert_eq!(l.admit(o, "k", T0), Some(0));
        }
        l.forget("a");
        l.retain(|o| o != "b");
        assert_eq!(l.admit("a", "k", T0 + 1.0), Some(0));
        assert_eq!(l.admit("b", "k", T0 + 1.0), Some(0));
        assert_eq!(l.admit("c", "k", T0 + 1.0), None);
        l.clear();
        assert_eq!(l.admit("c", "k", T0 + 2.0), Some(0));
    }
}
