//! The model loader on arbitrary bytes: it must return a model or an error, never panic. A model it
//! accepts has finite weights and right shapes, so
//! - the forward pass runs and returns one logit per action (finite weights can still overflow f32 in
//!   a sum, and inf − inf is NaN, so finiteness of the logits is not asserted: only no panic);
//! - the runtime's prepared actor computes exactly what `ModelFile::logits` does, bit for bit (a NaN
//!   matches any NaN);
//! - a runtime built on it decides within its bounds, whatever its normalisation, feature ranges and
//!   logits (the out-of-distribution limits and the masked argmax see the fuzzed numbers).
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rlscale_core::{N_ACTIONS, N_FEATURES, SimTime};
use rlscale_runtime::model::PreparedActor;
use rlscale_runtime::{ModelFile, Runtime, RuntimeConfig};

/// Raw feature vectors: a constant one, and one with both signs and a large magnitude.
fn inputs() -> [[f32; N_FEATURES]; 2] {
    let mut varied = [0.0f32; N_FEATURES];
    for (i, v) in varied.iter_mut().enumerate() {
        *v = (i as f32 - 10.0) * 3.5;
    }
    varied[0] = 1e6;
    [[0.5; N_FEATURES], varied]
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(m) = ModelFile::from_json(&text, std::path::Path::new("fuzz.json")) else {
        return;
    };
    let mut prepared = PreparedActor::new(std::sync::Arc::new(m.clone()));
    for x in inputs() {
        let logits = m.logits(&x);
        assert_eq!(logits.len(), N_ACTIONS);
        let fast = prepared.logits(&x);
        assert!(
            logits.len() == fast.len() && logits.iter().zip(fast).all(|(&a, &b)| same(a, b)),
            "PreparedActor {fast:?} != ModelFile::logits {logits:?}"
        );
        let _ = m.value(&x);
    }
    let (min, max) = (1, 40);
    let mut rt = Runtime::new(Ok(Arc::new(m)), RuntimeConfig::new(min, max), "fuzz")
        .expect("a valid config with a validated model builds");
    for k in 0..3 {
        let t = 1.7e9 + 15.0 * f64::from(k);
        let d = rt.decide_explained(&common::snapshot(t), SimTime(t)).decision;
        assert!((min..=max).contains(&d.replicas), "{} outside [{min}, {max}]", d.replicas);
    }
});
