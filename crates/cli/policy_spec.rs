//! `--policy` / `--policies` specs: the plumbing every subcommand uses to turn a name into a [`Policy`].
//!
//! The names are those of `rlscale_eval::policies`: a law with its peers' defaults (`hpa`, `keda`, `kpa`,
//! `ray`, `apa`, `static`, `predictive`), `static:N`, `oracle`, or a named baseline file in
//! `configs/baselines/` such as `hpa-tuned`, or `model:PATH` (a trained model file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlscale_core::Policy;
use rlscale_eval::policies::PolicyChoice;
use rlscale_sim::Scenario;

use crate::BadInput;

/// The named-baseline folder: `--configs`, else `./configs/baselines`, else the one beside the source.
pub fn configs_dir(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    let local = PathBuf::from("configs/baselines");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/baselines")
}

/// Parse one policy name.
pub fn parse(name: &str, configs: &Path) -> Result<PolicyChoice, BadInput> {
    PolicyChoice::parse(name, configs).map_err(|e| BadInput(e.to_string()))
}

/// Parse a comma-separated list of policy names.
pub fn parse_list(list: &str, configs: &Path) -> Result<Vec<PolicyChoice>, BadInput> {
    let v = PolicyChoice::parse_list(list, configs).map_err(|e| BadInput(e.to_string()))?;
    if v.is_empty() {
        return Err(BadInput(format!("--policies `{list}` names no policy")));
    }
    Ok(v)
}

/// Build `choice` for one episode of `scenario`.
pub fn build(
    choice: &PolicyChoice,
    scenario: &Arc<Scenario>,
    seed: u64,
    steps: u64,
) -> Result<Box<dyn Policy + Send>, BadInput> {
    choice
        .build(scenario, seed, steps)
        .map_err(|e| BadInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        let dir = Path::new("configs/baselines");
        assert_eq!(parse("static", dir).unwrap().label(), "static");
        assert_eq!(parse("static:4", dir).unwrap().label(), "static:4");
        assert_eq!(parse("oracle", dir).unwrap().label(), "oracle");
        for law in ["hpa", "keda", "kpa", "ray", "apa", "predictive"] {
            assert_eq!(parse(law, dir).unwrap().label(), law);
        }
        let e = parse("static:x", dir).unwrap_err().0;
        assert!(e.contains("static:x"), "{e}");
        let e = parse("hpa2", dir).unwrap_err().0;
        assert!(
            e.contains("unknown policy `hpa2`") && e.contains("hpa2.toml"),
            "{e}"
        );
        let e = parse_list("hpa,kpa, hpa", dir).unwrap_err().0;
        assert!(e.contains("`hpa` is listed twice"), "{e}");
        let e = parse_list(" , ", dir).unwrap_err().0;
        assert!(e.contains("names no policy"), "{e}");
    }

    #[test]
    fn a_named_baseline_is_labelled_by_the_name_asked_for() {
        // A copy of hpa-tuned.toml under another name keeps `name = "hpa-tuned"` inside: the rows
        // must still say which file they came from.
        let dir = tempfile::tempdir().unwrap();
        let shipped =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/baselines/hpa-tuned.toml");
        std::fs::copy(shipped, dir.path().join("hpa-mine.toml")).unwrap();
        let p = parse("hpa-mine", dir.path()).unwrap();
        assert_eq!(p.label(), "hpa-mine");
        let v = parse_list("hpa-mine,hpa", dir.path()).unwrap();
        assert_eq!(
            v.iter().map(|p| p.label()).collect::<Vec<_>>(),
            ["hpa-mine", "hpa"]
        );
    }
}
