//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rlscale_sim::config::{ArrivalSpec, ScenarioFile, list_scenario_files, read_toml};
use rlscale_sim::{Overrides, Scenario};

/// The repository's `envs/` folder.
pub fn envs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("envs")
}

/// Ids of every scenario in `envs/`.
pub fn scenario_ids() -> Vec<String> {
    list_scenario_files(&envs())
        .unwrap()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Whether the scenario replays a trace the repository does not ship (the user passes `--trace`).
pub fn needs_user_trace(id: &str) -> bool {
    let f: ScenarioFile = read_toml(&envs().join(format!("{id}.toml"))).unwrap();
    matches!(f.arrivals, ArrivalSpec::Trace { file: None, .. })
}

/// A small made-up trace standing in for a user-supplied one (no test depends on unshipped data).
pub fn stand_in_trace() -> PathBuf {
    let dir = tempdir("stand-in-trace");
    let path = dir.join("user_trace_60s.csv");
    let mut text = String::from("t_s,rps\n");
    for i in 0..600 {
        let rps = 0.2 + 0.15 * (f64::from(i) / 60.0).sin().abs();
        text.push_str(&format!("{},{rps:.4}\n", i * 60));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Load scenario `id` with `overrides` (a stand-in trace for unshipped ones unless one is given).
pub fn load(id: &str, mut overrides: Overrides) -> Arc<Scenario> {
    if needs_user_trace(id) && overrides.trace.is_none() {
        overrides.trace = Some(stand_in_trace());
    }
    Arc::new(Scenario::resolve(&envs(), id, &overrides).unwrap_or_else(|e| panic!("{id}: {e}")))
}

/// A fresh empty folder under the system's temp dir.
pub fn tempdir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rlscale-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the `rlscale` binary with `args` from the repository root.
pub fn rlscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlscale"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the rlscale binary runs")
}

/// Stdout and stderr of `out` as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
