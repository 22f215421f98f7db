//! `--policy` specs: the plumbing every subcommand uses to turn a name into a [`Policy`].
//!
//! Today: `static` (the scenario's initial replicas) and `static:N`. The baselines issue adds `hpa`,
//! `keda`, `kpa`, `ray`, `apa`, `predictive` and `oracle`; the runtime adds `model:PATH`. Each is one arm of
//! [`PolicySpec`] and one line in [`PolicySpec::build`].

use std::str::FromStr;

use rlscale_core::{Decision, MetricsSnapshot, Policy, Reason, SimTime, Source};
use rlscale_sim::Scenario;

use crate::BadInput;

/// A policy named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySpec {
    /// A fixed replica count; `None` means the scenario's `replicas.initial`.
    Static(Option<u32>),
}

impl FromStr for PolicySpec {
    type Err = BadInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name, arg) {
            ("static", None) => Ok(PolicySpec::Static(None)),
            ("static", Some(n)) => n
                .parse::<u32>()
                .map(|n| PolicySpec::Static(Some(n)))
                .map_err(|_| {
                    BadInput(format!(
                        "--policy static:N needs a whole number of replicas, got `{n}`"
                    ))
                }),
            _ => Err(BadInput(format!(
                "unknown policy `{s}`; available: static (the scenario's initial replicas), static:N"
            ))),
        }
    }
}

impl PolicySpec {
    /// Build the policy for `scenario`.
    pub fn build(&self, scenario: &Scenario) -> Result<Box<dyn Policy>, BadInput> {
        match self {
            PolicySpec::Static(n) => {
                let r = scenario.file.replicas;
                let n = n.unwrap_or(r.initial);
                if n < r.min || n > r.max {
                    return Err(BadInput(format!(
                        "--policy static:{n} is outside scenario {}'s replica bounds [{}, {}] ({})",
                        scenario.id(),
                        r.min,
                        r.max,
                        scenario.path.display()
                    )));
                }
                Ok(Box::new(Static(n)))
            }
        }
    }
}

/// Always `N` replicas.
#[derive(Debug, Clone, Copy)]
pub struct Static(pub u32);

impl Policy for Static {
    fn name(&self) -> String {
        format!("static:{}", self.0)
    }

    fn decide(&mut self, _snapshot: &MetricsSnapshot, _now: SimTime) -> Decision {
        Decision {
            replicas: self.0,
            source: Source::Baseline,
            reason: Reason::Static,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!(
            "static".parse::<PolicySpec>().unwrap(),
            PolicySpec::Static(None)
        );
        assert_eq!(
            "static:4".parse::<PolicySpec>().unwrap(),
            PolicySpec::Static(Some(4))
        );
        let e = "static:x".parse::<PolicySpec>().unwrap_err().0;
        assert!(e.contains("`x`"), "{e}");
        let e = "hpa2".parse::<PolicySpec>().unwrap_err().0;
        assert!(
            e.contains("unknown policy `hpa2`") && e.contains("static:N"),
            "{e}"
        );
    }
}
