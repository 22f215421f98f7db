//! Static N replicas: what a team without an autoscaler runs.

use rlscale_core::{Decision, MetricsSnapshot, Policy, Reason, SimTime, Source};
use serde::{Deserialize, Serialize};

use crate::{Bounds, ConfigError};

/// `replicas`: the fixed count; unset means the target's initial count.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// Replicas to hold (clamped to the bounds).
    pub replicas: Option<u32>,
}

impl StaticConfig {
    /// Always valid: any count is clamped to the bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Always the same count.
#[derive(Debug, Clone, Copy)]
pub struct Static {
    replicas: u32,
}

impl Static {
    /// Hold `cfg.replicas` (or `initial`), clamped to `bounds`.
    pub fn new(cfg: StaticConfig, bounds: Bounds, initial: u32) -> Self {
        Static {
            replicas: bounds.clamp(cfg.replicas.unwrap_or(initial)),
        }
    }
}

impl Policy for Static {
    fn name(&self) -> String {
        format!("static:{}", self.replicas)
    }

    fn decide(&mut self, _snapshot: &MetricsSnapshot, _now: SimTime) -> Decision {
        Decision {
            replicas: self.replicas,
            source: Source::Baseline,
            reason: Reason::Static,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::snap;

    #[test]
    fn holds_the_clamped_count() {
        let b = Bounds { min: 2, max: 10 };
        for (cfg, initial, want) in [
            (None, 4, 4),
            (Some(7), 4, 7),
            (Some(50), 4, 10),
            (Some(0), 4, 2),
        ] {
            let mut p = Static::new(StaticConfig { replicas: cfg }, b, initial);
            for t in [0.0, 15.0, 1e6] {
                let d = p.decide(&snap(t, 30, 5), SimTime(t));
                assert_eq!((d.replicas, d.reason), (want, Reason::Static), "{cfg:?}");
            }
        }
    }
}
