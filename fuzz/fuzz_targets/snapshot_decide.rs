//! Arbitrary JSON snapshots through the runtime: whatever parses gets a decision within
//! [min, max] that moves by at most the step limits, at any decision time.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use rlscale_core::{MetricsSnapshot, SimTime};
use rlscale_runtime::{Runtime, RuntimeConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = serde_json::from_slice::<MetricsSnapshot>(data) else {
        return;
    };
    let cfg = RuntimeConfig::new(1, 40);
    let g = cfg.guardrails;
    let mut rt = Runtime::new(Ok(common::model()), cfg, "fuzz").expect("valid config");
    let mut from = None;
    for now in [s.time.0, s.time.0 + 15.0, s.time.0 + 1e4, f64::NAN, -1.0] {
        let o = rt.decide_explained(&s, SimTime(now));
        let n = o.decision.replicas;
        assert!((1..=40).contains(&n), "{n} outside [1, 40]");
        if let Some(f) = from {
            assert_eq!(o.from, f);
        }
        assert!(n <= o.from + g.max_step_up && n + g.max_step_down >= o.from);
        from = Some(n);
    }
});
