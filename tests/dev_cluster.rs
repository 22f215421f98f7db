//! `rlscale dev-cluster --mode shadow`: an HPA to shadow, played as kube-controller-manager would, and
//! a live line that says what is happening (issue 21). Runs the real processes: the test API server,
//! `rlscale fake-server`, a real Prometheus and `rlscale controller`.

use rlscale_testenv::prometheus::free_port;

use crate::util::{rlscale, tempdir, text};

#[test]
fn shadow_mode_has_a_live_hpa_to_shadow() {
    let dir = tempdir("dev-cluster-shadow");
    let port = || free_port().unwrap().to_string();
    let (api, prom, fake, ctl) = (port(), port(), port(), port());
    let out = rlscale(&[
        "dev-cluster",
        "--mode",
        "shadow",
        "--scenario",
        "steady-8b-l4-v1",
        "--for",
        "30s",
        "--api-port",
        &api,
        "--prometheus-port",
        &prom,
        "--fake-port",
        &fake,
        "--controller-port",
        &ctl,
        "--dir",
        &dir.display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("(Shadow mode"),
        "--mode is read in any case: {stdout}"
    );
    let header = stdout
        .lines()
        .find(|l| l.contains("last decision"))
        .expect("a header");
    for col in [
        "arrivals", "needed", "ours", "HPA", "wanted", "ready", "queue",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let lines: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("last decision"))
        .skip(1)
        .collect();
    assert!(lines.len() >= 20, "{stdout}");
    // The first seconds, before Prometheus has a rate, are the warm-up, said as such: no
    // "fallback, invalid_input" before the first decision on real inputs.
    let first_real = lines
        .iter()
        .position(|l| l.contains("  model, ") || l.contains("  guardrail, "))
        .expect("the model decides once Prometheus has rates");
    assert!(first_real > 0, "{stdout}");
    for l in &lines[..first_real] {
        assert!(
            l.ends_with("warming up (Prometheus has no rates yet)") || l.ends_with('–'),
            "{l}"
        );
    }
    // Later lines show the arrival rate, the replicas it needs and the HPA's recommendation.
    let late = lines.last().unwrap();
    let cells: Vec<&str> = late.split_whitespace().collect();
    assert!(cells[1].ends_with("/s"), "arrivals: {late}");
    assert!(cells[2].parse::<u32>().is_ok(), "needed: {late}");
    assert!(cells[4].parse::<u32>().is_ok(), "HPA: {late}");

    // The decision log compares against a live HPA: its status.desiredReplicas is logged.
    let log = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap();
    let decisions: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "decision")
        .collect();
    assert!(decisions.len() >= 20, "{} decisions", decisions.len());
    let with_hpa = decisions
        .iter()
        .filter(|d| d["hpa_desired_replicas"].is_u64())
        .count();
    assert!(
        with_hpa * 2 >= decisions.len(),
        "the HPA's recommendation is in {with_hpa} of {} decisions",
        decisions.len()
    );
    assert!(decisions.iter().all(|d| d["mode"] == "Shadow"));
    let _ = std::fs::remove_dir_all(&dir);
}
