//! Arbitrary TOML runtime configurations: whatever parses and validates builds a runtime whose
//! decisions stay within its bounds; nothing panics.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use rlscale_core::SimTime;
use rlscale_runtime::{Runtime, RuntimeConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = toml::from_str::<RuntimeConfig>(&text) else {
        return;
    };
    if cfg.validate().is_err() {
        // Runtime::new must refuse it too, with an error rather than a panic.
        assert!(Runtime::new(Ok(common::model()), cfg, "fuzz").is_err());
        return;
    }
    let (min, max) = (cfg.min_replicas, cfg.max_replicas);
    let mut rt = Runtime::new(Ok(common::model()), cfg, "fuzz").expect("a validated config builds");
    for k in 0..4 {
        let t = 1.7e9 + 15.0 * f64::from(k);
        let d = rt.decide_explained(&common::snapshot(t), SimTime(t)).decision;
        assert!(d.replicas >= min && d.replicas <= max, "{} outside [{min}, {max}]", d.replicas);
    }
});
