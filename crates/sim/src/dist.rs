//! Configurable distributions for durations (cold-start phases) and request sizes.

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A non-negative distribution, written in TOML as an inline table tagged by `dist`:
///
/// ```toml
/// provision_s = { dist = "lognormal", mean = 60.0, cv = 0.3 }
/// model_load_s = { dist = "const", value = 30.0 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistSpec {
    /// Always `value`.
    Const {
        /// The value.
        value: f64,
    },
    /// Exponential with the given mean.
    Exponential {
        /// Mean.
        mean: f64,
    },
    /// Log-normal with the given mean and coefficient of variation (std / mean).
    Lognormal {
        /// Mean.
        mean: f64,
        /// Coefficient of variation.
        cv: f64,
    },
    /// Gamma with the given mean and coefficient of variation.
    Gamma {
        /// Mean.
        mean: f64,
        /// Coefficient of variation.
        cv: f64,
    },
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
    },
}

/// A validated distribution, ready to sample.
#[derive(Debug, Clone, Copy)]
pub enum Dist {
    /// Always this value.
    Const(f64),
    /// Exponential with this mean.
    Exponential(f64),
    /// exp(mu + sigma · N(0, 1)).
    Lognormal {
        /// Log-mean.
        mu: f64,
        /// Log-standard deviation.
        sigma: f64,
    },
    /// Gamma.
    Gamma(Gamma<f64>),
    /// Uniform on `[low, high]`.
    Uniform(f64, f64),
}

impl DistSpec {
    /// The distribution of `k · X` (same shape and cv, every value times `k`).
    pub fn scaled(&self, k: f64) -> DistSpec {
        match *self {
            DistSpec::Const { value } => DistSpec::Const { value: value * k },
            DistSpec::Exponential { mean } => DistSpec::Exponential { mean: mean * k },
            DistSpec::Lognormal { mean, cv } => DistSpec::Lognormal { mean: mean * k, cv },
            DistSpec::Gamma { mean, cv } => DistSpec::Gamma { mean: mean * k, cv },
            DistSpec::Uniform { low, high } => DistSpec::Uniform {
                low: low * k,
                high: high * k,
            },
        }
    }

    /// The mean of the distribution.
    pub fn mean(&self) -> f64 {
        match *self {
            DistSpec::Const { value } => value,
            DistSpec::Exponential { mean }
            | DistSpec::Lognormal { mean, .. }
            | DistSpec::Gamma { mean, .. } => mean,
            DistSpec::Uniform { low, high } => 0.5 * (low + high),
        }
    }

    /// Validate (finite, non-negative parameters) and build a sampler. `field` names the field in errors.
    pub fn build(&self, path: &Path, field: &str) -> Result<Dist> {
        let nonneg = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    path,
                    format!("{field}.{name}"),
                    v,
                    "must be a finite number >= 0",
                ))
            }
        };
        let positive = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    path,
                    format!("{field}.{name}"),
                    v,
                    "must be a finite number > 0",
                ))
            }
        };
        Ok(match *self {
            DistSpec::Const { value } => {
                nonneg("value", value)?;
                Dist::Const(value)
            }
            DistSpec::Exponential { mean } => {
                positive("mean", mean)?;
                Dist::Exponential(mean)
            }
            DistSpec::Lognormal { mean, cv } => {
                positive("mean", mean)?;
                nonneg("cv", cv)?;
                let s2 = (1.0 + cv * cv).ln();
                Dist::Lognormal {
                    mu: mean.ln() - 0.5 * s2,
                    sigma: s2.sqrt(),
                }
            }
            DistSpec::Gamma { mean, cv } => {
                positive("mean", mean)?;
                positive("cv", cv)?;
                let shape = 1.0 / (cv * cv);
                let g = Gamma::new(shape, mean / shape).map_err(|e| {
                    Error::invalid(path, field, format!("mean={mean}, cv={cv}"), e.to_string())
                })?;
                Dist::Gamma(g)
            }
            DistSpec::Uniform { low, high } => {
                nonneg("low", low)?;
                nonneg("high", high)?;
                if high < low {
                    return Err(Error::invalid(
                        path,
                        format!("{field}.high"),
                        high,
                        format!("must be >= low ({low})"),
                    ));
                }
                Dist::Uniform(low, high)
            }
        })
    }
}

impl Dist {
    /// One sample (always finite and >= 0).
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match *self {
            Dist::Const(v) => v,
            Dist::Exponential(mean) => {
                let e: f64 = Exp1.sample(rng);
                mean * e
            }
            Dist::Lognormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
            Dist::Gamma(g) => g.sample(rng),
            Dist::Uniform(lo, hi) => lo + (hi - lo) * rng.random::<f64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sample_means_match_specs() {
        let specs = [
            DistSpec::Const { value: 3.0 },
            DistSpec::Exponential { mean: 2.0 },
            DistSpec::Lognormal { mean: 5.0, cv: 0.5 },
            DistSpec::Gamma { mean: 4.0, cv: 0.3 },
            DistSpec::Uniform {
                low: 1.0,
                high: 3.0,
            },
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for spec in specs {
            let d = spec.build(Path::new("x.toml"), "d").unwrap();
            let n = 200_000;
            let mean = (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / f64::from(n);
            assert!(
                (mean / spec.mean() - 1.0).abs() < 0.01,
                "{spec:?}: sample mean {mean}"
            );
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let err = DistSpec::Lognormal {
            mean: -1.0,
            cv: 0.2,
        }
        .build(Path::new("p.toml"), "cold_start.provision_s")
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.toml")
                && err.contains("cold_start.provision_s.mean")
                && err.contains("-1"),
            "{err}"
        );
        let err = DistSpec::Uniform {
            low: 3.0,
            high: 1.0,
        }
        .build(Path::new("p.toml"), "u")
        .unwrap_err()
        .to_string();
        assert!(err.contains("u.high"), "{err}");
    }

    #[test]
    fn toml_tagging_and_unknown_fields() {
        #[derive(Deserialize)]
        struct W {
            d: DistSpec,
        }
        let w: W = toml::from_str("d = { dist = \"lognormal\", mean = 60.0, cv = 0.3 }").unwrap();
        assert_eq!(
            w.d,
            DistSpec::Lognormal {
                mean: 60.0,
                cv: 0.3
            }
        );
        let err = toml::from_str::<W>("d = { dist = \"lognormal\", mean = 60.0, cvv = 0.3 }")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cvv"), "{err}");
    }
}
