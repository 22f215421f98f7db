//! The model loader on arbitrary bytes: it must return a model or an error, never panic; a model it
//! accepts has finite weights and right shapes, so the forward pass runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlscale_runtime::ModelFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = ModelFile::from_json(&text, std::path::Path::new("fuzz.json")) {
        let x = [0.5f32; rlscale_core::N_FEATURES];
        let logits = m.logits(&x);
        assert_eq!(logits.len(), rlscale_core::N_ACTIONS);
        // Finite weights can still overflow f32 in a sum; no NaN may come out of a finite input
        // unless that overflow happened (inf - inf), which we do not assert against.
        let _ = m.value(&x);
    }
});
