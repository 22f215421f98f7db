//! The action table: replica deltas, and their mask at min/max replicas.

use serde::{Deserialize, Serialize};

/// Replica deltas a learned policy chooses from, in action-index order.
///
/// Asymmetric on purpose: scaling up fast matters more than scaling down fast when a cold start takes
/// minutes, and large jumps down are what flapping is made of.
pub const ACTION_DELTAS: [i32; N_ACTIONS] = [-4, -2, -1, 0, 1, 2, 4, 8];

/// Number of discrete actions.
pub const N_ACTIONS: usize = 8;

/// Index of the "hold" action (delta 0).
pub const HOLD: usize = 3;

/// What an environment is asked to do at one control step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Apply the delta at this index of [`ACTION_DELTAS`] to the current replica count (clamped to
    /// `[min, max]`). A learned policy acts this way.
    Index(usize),
    /// Set the replica count (clamped to `[min, max]`). Rule-based policies act this way.
    Replicas(u32),
}

/// The discrete action space with its replica bounds.
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

    /// The replica count that action `index` leads to from `current`, clamped to the bounds.
    /// An index outside the table holds.
    pub fn apply_index(&self, current: u32, index: usize) -> u32 {
        let delta = ACTION_DELTAS.get(index).copied().unwrap_or(0);
        let target = i64::from(current) + i64::from(delta);
        let clamped = target.clamp(i64::from(self.min_replicas), i64::from(self.max_replicas));
        clamped as u32
    }

    /// The replica count that `action` leads to from `current`.
    pub fn apply(&self, current: u32, action: Action) -> u32 {
        match action {
            Action::Index(i) => self.apply_index(current, i),
            Action::Replicas(n) => self.clamp(n),
        }
    }

    /// Which actions are valid at `current`: hold always is; any other delta is valid when it moves the
    /// count in its own direction once clamped (so every "down" action is masked at `min`, every "up"
    /// action at `max`).
    pub fn mask(&self, current: u32) -> [bool; N_ACTIONS] {
        let current = self.clamp(current);
        let mut m = [false; N_ACTIONS];
        for (i, d) in ACTION_DELTAS.iter().enumerate() {
            m[i] = *d == 0 || self.apply_index(current, i) != current;
        }
        m
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
        assert_eq!(
            s.mask(1),
            [false, false, false, true, true, true, true, true]
        );
        assert_eq!(
            s.mask(10),
            [true, true, true, true, false, false, false, false]
        );
        assert_eq!(s.mask(5), [true; N_ACTIONS]);
        // min == max: only hold.
        let fixed = ActionSpace::new(3, 3);
        let m = fixed.mask(3);
        assert_eq!(m.iter().filter(|v| **v).count(), 1);
        assert!(m[HOLD]);
    }

    #[test]
    fn apply_clamps() {
        let s = ActionSpace::new(1, 10);
        assert_eq!(s.apply(2, Action::Index(0)), 1); // -4 from 2 clamps to 1
        assert_eq!(s.apply(9, Action::Index(7)), 10); // +8 from 9 clamps to 10
        assert_eq!(s.apply(5, Action::Index(HOLD)), 5);
        assert_eq!(s.apply(5, Action::Index(99)), 5);
        assert_eq!(s.apply(5, Action::Replicas(0)), 1);
        assert_eq!(s.apply(5, Action::Replicas(50)), 10);
        // Every masked-in action changes the count (or holds); every masked-out one would not move.
        for cur in 1..=10 {
            for (i, ok) in s.mask(cur).iter().enumerate() {
                let moved = s.apply_index(cur, i) != cur;
                assert_eq!(*ok, i == HOLD || moved, "cur {cur} action {i}");
            }
        }
    }
}
