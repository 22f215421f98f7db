//! Arbitrary service-profile TOML: parsing and validation return a profile or an error naming the
//! field, never a panic; an accepted profile has a positive finite capacity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlscale_sim::Profile;
use rlscale_sim::config::ProfileFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = toml::from_str::<ProfileFile>(&text) else {
        return;
    };
    if let Ok(p) = Profile::from_file(file, std::path::Path::new("fuzz.toml")) {
        let c = p.capacity_rps();
        assert!(c.is_finite() && c > 0.0, "capacity {c}");
        assert!(p.mean_cold_start_s().is_finite());
    }
});
