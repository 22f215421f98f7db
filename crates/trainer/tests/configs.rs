//! Every training config shipped in `configs/` loads and validates (its scenarios exist, its action
//! table is well formed), so a recipe the README or `docs/model/bar.md` names can be rerun as is.

use rlscale_core::{ActionSpec, action::HOLD};
use rlscale_trainer::run::TrainConfig;

#[test]
fn every_shipped_train_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("ppo") && name.ends_with(".toml")) {
            continue;
        }
        let cfg = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let table = cfg.action_table();
        assert_eq!(table.0[HOLD], ActionSpec::Delta(0), "{name}");
        match cfg.actions.as_str() {
            "deltas" => assert_eq!(table.name(), Some("deltas"), "{name}"),
            "utilization" => assert_eq!(table.name(), Some("utilization"), "{name}"),
            // An explicit table is the one the file gives, entry for entry.
            "table" => assert_eq!(cfg.table.as_deref(), Some(&table.0[..]), "{name}"),
            other => panic!("{name}: actions = {other:?}"),
        }
        seen.push(name);
    }
    seen.sort();
    for want in [
        "ppo.toml",
        "ppo-utilization-tight.toml",
        "ppo-utilization-surge.toml",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want} not in {seen:?}");
    }
    // The surge recipe mixes kinds: utilization levels and a +8 delta.
    let surge = TrainConfig::load(&dir.join("ppo-utilization-surge.toml")).unwrap();
    assert_eq!(surge.action_table().0[7], ActionSpec::Delta(8));
    assert_eq!(surge.action_table().name(), None);
}
