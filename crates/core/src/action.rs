//! The action tables a learned policy chooses from, and their mask at min/max replicas.
//!
//! Two tables, both of [`N_ACTIONS`] actions with "hold" at index [`HOLD`]:
//! - [`ActionTable::deltas`] (the original): replica deltas `[-4, -2, -1, 0, +1, +2, +4, +8]` applied to
//!   the current target;
//! - [`ActionTable::utilization`] (demand-relative): "provision for the last minute's arrival rate at
//!   this share of each replica's saturation throughput", `ceil(arrival_rate_1m / (capacity_rps · u))`
//!   for `u` in `[0.95, 0.9, 0.85, (hold), 0.75, 0.65, 0.55, 0.4]`. Right-sizing to the demand is one
//!   action away from any state, whatever the service's size.
//!
//! A model's table may also mix kinds (`actions = "table"` in a training config), including
//! [`ActionSpec::RaiseToUtilization`]: "at least the last minute's rate at utilization `u`", which
//! scales up to the demand in one step but never lowers the target. With delta actions for the way
//! down, no single decision can drop more than the table's largest down-delta, so a minute of
//! near-zero traffic (a gap between bursts, an off period) cannot undo the insurance a warm replica
//! gives; that is the failure the pure utilization table showed on sparse traffic.
//!
//! A model file records its table, so the runtime applies the one it was trained with.

use serde::{Deserialize, Serialize};

use crate::snapshot::MetricsSnapshot;

/// Replica deltas a learned policy chooses from, in action-index order.
///
/// Asymmetric on purpose: scaling up fast matters more than scaling down fast when a cold start takes
/// minutes, and large jumps down are what flapping is made of.
pub const ACTION_DELTAS: [i32; N_ACTIONS] = [-4, -2, -1, 0, 1, 2, 4, 8];

/// Number of discrete actions.
pub const N_ACTIONS: usize = 8;

/// Index of the "hold" action (delta 0).
pub const HOLD: usize = 3;

/// One entry of an action table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Add this many replicas to the current target (0 holds).
    Delta(i32),
    /// Set the target to `ceil(arrival_rate_1m / (capacity_rps · u))`: provision for the last minute's
    /// arrival rate at this share `u` (0–1] of each replica's saturation throughput.
    TargetUtilization(f64),
    /// Raise the target to `ceil(arrival_rate_1m / (capacity_rps · u))` when that is above it, hold
    /// otherwise: the demand-relative way up, without the way down.
    RaiseToUtilization(f64),
}

impl std::fmt::Display for ActionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionSpec::Delta(d) => write!(f, "{d:+}"),
            ActionSpec::TargetUtilization(u) => write!(f, "1m rate at utilization {u}"),
            ActionSpec::RaiseToUtilization(u) => {
                write!(f, "at least the 1m rate at utilization {u}")
            }
        }
    }
}

/// The target utilizations of [`ActionTable::utilization`], in action order (index [`HOLD`] holds).
pub const UTILIZATION_TABLE: [f64; N_ACTIONS] = [0.95, 0.9, 0.85, 0.0, 0.75, 0.65, 0.55, 0.4];

/// An action table: what each of the [`N_ACTIONS`] outputs of a policy network does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionTable(pub [ActionSpec; N_ACTIONS]);

/// Why an action table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action {index}: {message}")]
pub struct TableError {
    /// The offending entry.
    pub index: usize,
    /// What is wrong with it.
    pub message: String,
}

impl ActionTable {
    /// The replica-delta table, [`ACTION_DELTAS`].
    pub fn deltas() -> Self {
        ActionTable(ACTION_DELTAS.map(ActionSpec::Delta))
    }

    /// The demand-relative table, [`UTILIZATION_TABLE`] with hold at [`HOLD`].
    pub fn utilization() -> Self {
        let mut t = UTILIZATION_TABLE.map(ActionSpec::TargetUtilization);
        t[HOLD] = ActionSpec::Delta(0);
        ActionTable(t)
    }

    /// A table by name: `deltas` or `utilization`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "deltas" => Some(Self::deltas()),
            "utilization" => Some(Self::utilization()),
            _ => None,
        }
    }

    /// A table from a model file's entries: [`N_ACTIONS`] of them, hold at [`HOLD`], deltas within
    /// ±64, utilizations in [0.05, 1].
    pub fn from_entries(entries: &[ActionSpec]) -> Result<Self, TableError> {
        let err = |index: usize, message: String| TableError { index, message };
        let table: [ActionSpec; N_ACTIONS] = entries.try_into().map_err(|_| {
            err(
                entries.len(),
                format!(
                    "the table has {} actions, expected {N_ACTIONS}",
                    entries.len()
                ),
            )
        })?;
        for (i, a) in table.iter().enumerate() {
            match *a {
                ActionSpec::Delta(d) if !(-64..=64).contains(&d) => {
                    return Err(err(i, format!("delta {d} is outside [-64, 64]")));
                }
                ActionSpec::TargetUtilization(u) | ActionSpec::RaiseToUtilization(u)
                    if !(0.05..=1.0).contains(&u) =>
                {
                    return Err(err(
                        i,
                        format!("target utilization {u} is outside [0.05, 1]"),
                    ));
                }
                _ => {}
            }
        }
        if table[HOLD] != ActionSpec::Delta(0) {
            return Err(err(
                HOLD,
                format!("is {}, must hold (delta 0)", table[HOLD]),
            ));
        }
        Ok(ActionTable(table))
    }

    /// The replica count that action `index` leads to from `current`, given the snapshot the policy
    /// decided on, clamped to `space`. An index outside the table, or a utilization action on a
    /// snapshot without a usable rate or capacity, holds.
    pub fn apply(
        &self,
        space: &ActionSpace,
        current: u32,
        index: usize,
        snapshot: &MetricsSnapshot,
    ) -> u32 {
        match self.0.get(index) {
            None => space.clamp(current),
            Some(ActionSpec::Delta(d)) => space.add(space.clamp(current), *d),
            Some(ActionSpec::TargetUtilization(u)) => {
                need_at(snapshot, *u).map_or(space.clamp(current), |n| space.clamp(n))
            }
            Some(ActionSpec::RaiseToUtilization(u)) => {
                let current = space.clamp(current);
                need_at(snapshot, *u).map_or(current, |n| space.clamp(n).max(current))
            }
        }
    }

    /// Which actions are valid at `current`: hold always is; a delta when it moves the count in its
    /// own direction once clamped (every "down" delta is masked at `min`, every "up" one at `max`); a
    /// utilization action whenever the bounds leave room to move (`min < max`); a raise below `max`.
    pub fn mask(&self, space: &ActionSpace, current: u32) -> [bool; N_ACTIONS] {
        let current = space.clamp(current);
        let mut m = [false; N_ACTIONS];
        for (i, a) in self.0.iter().enumerate() {
            m[i] = match *a {
                ActionSpec::Delta(0) => true,
                ActionSpec::Delta(d) => space.add(current, d) != current,
                ActionSpec::TargetUtilization(_) => space.min_replicas < space.max_replicas,
                ActionSpec::RaiseToUtilization(_) => current < space.max_replicas,
            };
        }
        m
    }

    /// The table's kind: `deltas` when every action is a delta, `utilization` when every action but
    /// hold is a target utilization, `None` for a mixed table.
    pub fn name(&self) -> Option<&'static str> {
        let others = || self.0.iter().enumerate().filter(|(i, _)| *i != HOLD);
        if self.0.iter().all(|a| matches!(a, ActionSpec::Delta(_))) {
            Some("deltas")
        } else if others().all(|(_, a)| matches!(a, ActionSpec::TargetUtilization(_))) {
            Some("utilization")
        } else {
            None
        }
    }
}

/// The replicas that serve the snapshot's last-minute arrival rate at utilization `u` of each one's
/// saturation throughput, rounded up; `None` without a usable rate or capacity.
fn need_at(snapshot: &MetricsSnapshot, u: f64) -> Option<u32> {
    let need = snapshot.arrival_rate_1m / (snapshot.profile.capacity_rps * u);
    (need.is_finite() && need >= 0.0).then(|| need.ceil().min(f64::from(u32::MAX)) as u32)
}

/// What an environment is asked to do at one control step. A learned policy's output index means
/// something only through its model's own [`ActionTable`] ([`ActionTable::apply`] turns it into a
/// replica count from the snapshot it decided on), so an environment never sees an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Keep the current target.
    Hold,
    /// Set the replica count (clamped to `[min, max]`).
    Replicas(u32),
}

/// The replica bounds every action is clamped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpace {
    /// Fewest replicas any action may lead to.
    pub min_replicas: u32,
    /// Most replicas any action may lead to.
    pub max_replicas: u32,
}

impl ActionSpace {
    /// A space bounded by `[min_replicas, max_replicas]`.
    ///
    /// # Panics
    /// If `min_replicas > max_replicas`; configs are validated before they get here.
    pub fn new(min_replicas: u32, max_replicas: u32) -> Self {
        assert!(
            min_replicas <= max_replicas,
            "min_replicas must be <= max_replicas"
        );
        ActionSpace {
            min_replicas,
            max_replicas,
        }
    }

    /// `replicas` clamped to the bounds.
    pub fn clamp(&self, replicas: u32) -> u32 {
        replicas.clamp(self.min_replicas, self.max_replicas)
    }

    /// `current + delta`, clamped to the bounds.
    pub fn add(&self, current: u32, delta: i32) -> u32 {
        let target = i64::from(current) + i64::from(delta);
        target.clamp(i64::from(self.min_replicas), i64::from(self.max_replicas)) as u32
    }

    /// The replica count that `action` leads to from `current`.
    pub fn apply(&self, current: u32, action: Action) -> u32 {
        match action {
            Action::Hold => self.clamp(current),
            Action::Replicas(n) => self.clamp(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_hold_and_is_sorted() {
        assert_eq!(ACTION_DELTAS[HOLD], 0);
        assert!(ACTION_DELTAS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn mask_at_bounds() {
        let s = ActionSpace::new(1, 10);
        let t = ActionTable::deltas();
        assert_eq!(
            t.mask(&s, 1),
            [false, false, false, true, true, true, true, true]
        );
        assert_eq!(
            t.mask(&s, 10),
            [true, true, true, true, false, false, false, false]
        );
        assert_eq!(t.mask(&s, 5), [true; N_ACTIONS]);
        // min == max: only hold.
        let fixed = ActionSpace::new(3, 3);
        let m = t.mask(&fixed, 3);
        assert_eq!(m.iter().filter(|v| **v).count(), 1);
        assert!(m[HOLD]);
    }

    fn profile() -> crate::ServiceProfile {
        crate::ServiceProfile {
            cold_start_s: 120.0,
            capacity_rps: 3.0,
            gpus_per_replica: 1,
            usd_per_gpu_hour: 0.8,
            slo_latency_s: 10.0,
        }
    }

    /// The delta table adds its delta to the clamped count, within the bounds; an index outside the
    /// table holds; a masked-in action moves the count (or holds) and a masked-out one would not.
    #[test]
    fn the_delta_table_adds_within_the_bounds() {
        let s = ActionSpace::new(1, 10);
        let t = ActionTable::deltas();
        let snap = MetricsSnapshot::idle(crate::SimTime(0.0), 3, profile());
        for cur in 0..=12 {
            let from = s.clamp(cur);
            let mask = t.mask(&s, cur);
            for (i, d) in ACTION_DELTAS.iter().enumerate() {
                let to = t.apply(&s, cur, i, &snap);
                assert_eq!(
                    i64::from(to),
                    (i64::from(from) + i64::from(*d)).clamp(1, 10)
                );
                assert_eq!(mask[i], i == HOLD || to != from, "cur {cur} action {i}");
            }
            assert_eq!(t.apply(&s, cur, N_ACTIONS, &snap), from);
        }
        assert_eq!(t.name(), Some("deltas"));
    }

    /// A raise goes up to the demand at its utilization and never down: on a rate that needs fewer
    /// replicas than the current count, or none, or a broken one, it holds; it is masked at `max`
    /// only. With down-deltas beside it, one decision can drop at most the largest down-delta.
    #[test]
    fn raise_actions_go_up_to_the_demand_and_never_down() {
        let mut entries = ActionTable::deltas().0;
        entries[4] = ActionSpec::RaiseToUtilization(0.9);
        entries[7] = ActionSpec::RaiseToUtilization(0.5);
        let t = ActionTable::from_entries(&entries).unwrap();
        assert_eq!(t.name(), None);
        let s = ActionSpace::new(0, 40);
        let mut snap = MetricsSnapshot::idle(crate::SimTime(0.0), 5, profile());
        snap.profile.capacity_rps = 3.0;
        snap.arrival_rate_1m = 30.0;
        // 30 / (3 · 0.9) = 11.1 → 12; 30 / (3 · 0.5) = 20.
        assert_eq!(t.apply(&s, 5, 4, &snap), 12);
        assert_eq!(t.apply(&s, 5, 7, &snap), 20);
        assert_eq!(t.apply(&s, 15, 4, &snap), 15, "above the need: hold");
        assert_eq!(t.apply(&s, 15, 7, &snap), 20);
        snap.arrival_rate_1m = 0.0;
        for cur in [0, 2, 40] {
            assert_eq!(t.apply(&s, cur, 7, &snap), cur, "no traffic: hold at {cur}");
        }
        snap.arrival_rate_1m = f64::NAN;
        assert_eq!(t.apply(&s, 3, 4, &snap), 3);
        snap.arrival_rate_1m = 1e6;
        assert_eq!(t.apply(&s, 3, 4, &snap), 40, "clamped to max");
        assert!(t.mask(&s, 39)[7]);
        assert!(!t.mask(&s, 40)[7]);
        assert!(t.mask(&s, 0)[7]);
        // The largest drop any action makes from 10 replicas is the -4 delta, whatever the rate.
        for rate in [0.0, 3.0, 300.0] {
            snap.arrival_rate_1m = rate;
            let lowest = (0..N_ACTIONS).map(|i| t.apply(&s, 10, i, &snap)).min();
            assert_eq!(lowest, Some(6), "rate {rate}");
        }
        // Its utilization is checked like a target utilization's, and it round-trips by name.
        entries[4] = ActionSpec::RaiseToUtilization(0.01);
        assert_eq!(ActionTable::from_entries(&entries).unwrap_err().index, 4);
        let a: ActionSpec = serde_json::from_str(r#"{"raise_to_utilization": 0.75}"#).unwrap();
        assert_eq!(a, ActionSpec::RaiseToUtilization(0.75));
        assert_eq!(a.to_string(), "at least the 1m rate at utilization 0.75");
    }

    /// A utilization action provisions `ceil(rate / (capacity · u))`, clamped; a broken rate holds.
    #[test]
    fn utilization_actions_size_to_the_demand() {
        let t = ActionTable::utilization();
        assert_eq!(t.name(), Some("utilization"));
        assert_eq!(t.0[HOLD], ActionSpec::Delta(0));
        let s = ActionSpace::new(1, 40);
        let mut snap = MetricsSnapshot::idle(crate::SimTime(0.0), 5, profile());
        snap.profile.capacity_rps = 3.0;
        snap.arrival_rate_1m = 50.0;
        let u = |i: usize| match t.0[i] {
            ActionSpec::TargetUtilization(u) => u,
            _ => unreachable!(),
        };
        for i in (0..N_ACTIONS).filter(|&i| i != HOLD) {
            let want = (50.0 / (3.0 * u(i))).ceil() as u32;
            assert_eq!(t.apply(&s, 5, i, &snap), want.min(40), "action {i}");
        }
        // 0.4 of 3 req/s at 50 req/s is 42 replicas: clamped to 40.
        assert_eq!(t.apply(&s, 5, N_ACTIONS - 1, &snap), 40);
        assert_eq!(t.apply(&s, 5, HOLD, &snap), 5);
        // No load: the floor.
        snap.arrival_rate_1m = 0.0;
        assert_eq!(t.apply(&s, 5, 0, &snap), 1);
        // A NaN rate or a zero capacity holds instead of guessing.
        snap.arrival_rate_1m = f64::NAN;
        assert_eq!(t.apply(&s, 5, 0, &snap), 5);
        snap.arrival_rate_1m = 10.0;
        snap.profile.capacity_rps = 0.0;
        assert_eq!(t.apply(&s, 5, 0, &snap), 5);
        // Utilization actions are valid unless the bounds pin the count.
        assert_eq!(t.mask(&s, 1), [true; N_ACTIONS]);
        let pinned = t.mask(&ActionSpace::new(3, 3), 3);
        assert_eq!(pinned.iter().filter(|v| **v).count(), 1);
    }

    /// Model files carry their table; a malformed one is refused with the entry named.
    #[test]
    fn tables_round_trip_and_bad_ones_are_refused() {
        for t in [ActionTable::deltas(), ActionTable::utilization()] {
            let json = serde_json::to_string(&t).unwrap();
            let back: ActionTable = serde_json::from_str(&json).unwrap();
            assert_eq!(back, t);
            assert_eq!(ActionTable::from_entries(&t.0).unwrap(), t);
        }
        assert_eq!(
            serde_json::to_string(&ActionTable::utilization().0[..2]).unwrap(),
            r#"[{"target_utilization":0.95},{"target_utilization":0.9}]"#
        );
        let mut bad = ActionTable::utilization().0;
        bad[0] = ActionSpec::TargetUtilization(1.5);
        let e = ActionTable::from_entries(&bad).unwrap_err();
        assert_eq!(e.index, 0);
        assert!(e.to_string().contains("1.5"), "{e}");
        bad[0] = ActionSpec::Delta(1);
        bad[HOLD] = ActionSpec::Delta(2);
        assert_eq!(ActionTable::from_entries(&bad).unwrap_err().index, HOLD);
        let e = ActionTable::from_entries(&bad[..5]).unwrap_err();
        assert!(e.to_string().contains("5 actions"), "{e}");
        assert_eq!(
            ActionTable::by_name("utilization"),
            Some(ActionTable::utilization())
        );
        assert_eq!(ActionTable::by_name("nope"), None);
        // The name is the kind: other utilizations are still a utilization table; a mix is neither.
        let mut other = ActionTable::utilization();
        other.0[7] = ActionSpec::TargetUtilization(0.6);
        assert_eq!(other.name(), Some("utilization"));
        other.0[7] = ActionSpec::Delta(1);
        assert_eq!(other.name(), None);
    }

    #[test]
    fn apply_clamps() {
        let s = ActionSpace::new(1, 10);
        assert_eq!(s.apply(5, Action::Hold), 5);
        assert_eq!(s.apply(12, Action::Hold), 10);
        assert_eq!(s.apply(5, Action::Replicas(0)), 1);
        assert_eq!(s.apply(5, Action::Replicas(50)), 10);
        assert_eq!(s.add(2, -4), 1);
        assert_eq!(s.add(9, 8), 10);
    }
}
