//! `rlscale bench --controller N` end to end at a tiny size: the test API server, the Prometheus
//! responder and a separate controller process, then the JSON summary. It checks that the benchmark
//! measures (every object decided, memory and latencies read), not how fast anything is: speed
//! figures live in BENCHMARKS.md.

use serde_json::Value;

use crate::util::{rlscale, tempdir, text};

/// Run the bench with `extra` arguments on 5 objects at a 1 s interval for 3 s; the summary.
fn bench(name: &str, extra: &[&str]) -> Value {
    let dir = tempdir(name);
    let out = dir.join("summary.json");
    let dir_s = dir.display().to_string();
    let out_s = out.display().to_string();
    let mut args = vec![
        "bench",
        "--controller",
        "5",
        "--interval",
        "1s",
        "--for",
        "3s",
        "--warmup-timeout",
        "1m",
        "--dir",
        &dir_s,
        "--out",
        &out_s,
    ];
    args.extend_from_slice(extra);
    let o = rlscale(&args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("| controller RSS |"), "{stdout}");
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

fn finite_ms(s: &Value, key: &str) {
    for q in ["p50_ms", "p99_ms", "mean_ms"] {
        let v = s[key][q].as_f64();
        assert!(
            v.is_some_and(|v| v.is_finite() && v >= 0.0),
            "{key}.{q} = {:?} in {s:#}",
            s[key][q]
        );
    }
    assert!(
        s[key]["count"].as_u64().unwrap() > 0,
        "{key} has no samples: {s:#}"
    );
}

fn check(s: &Value, mode: &str) {
    assert_eq!(s["targets"], 5);
    assert_eq!(s["mode"], mode);
    assert_eq!(s["interval_s"], 1);
    // Every object decided in the window, at about the interval (3 s at 1 s: each object decides at its
    // own phase of the interval once the warm-up is over).
    assert_eq!(s["objects_without_decision"], 0, "{s:#}");
    assert!(s["per_object_min"].as_u64().unwrap() >= 1, "{s:#}");
    assert!(s["decisions"].as_u64().unwrap() >= 5, "{s:#}");
    assert!(s["rss_mib"].as_f64().unwrap() > 0.0, "{s:#}");
    assert!(
        s["rss_peak_mib"].as_f64().unwrap() >= s["rss_mib"].as_f64().unwrap(),
        "{s:#}"
    );
    assert!(s["cpu_percent"].as_f64().unwrap() >= 0.0, "{s:#}");
    for key in [
        "reconcile_histogram",
        "prometheus_histogram",
        "reconcile_per_decision",
        "prometheus_span_per_decision",
        "excluding_prometheus",
        "first_pass_excluding_prometheus",
    ] {
        finite_ms(s, key);
    }
    // The responder answered the controller's queries, and none failed.
    assert!(
        s["prometheus_queries_per_s"].as_f64().unwrap() > 0.0,
        "{s:#}"
    );
    assert_eq!(s["query_failures"], serde_json::json!({}), "{s:#}");
    // The model file was loaded: decisions come from the pipeline with a model (its own, the OOD
    // fallback or a guardrail), never from a missing one.
    let sources = s["decisions_by_source"].as_object().unwrap();
    assert!(!sources.is_empty(), "{s:#}");
    assert!(sources.keys().all(|k| !k.contains("no_model")), "{s:#}");
}

#[test]
fn active_mode_measures_every_object() {
    let s = bench("bench-controller-active", &["--mode", "active"]);
    check(&s, "active");
    let api = s["api_requests_per_s"].as_object().unwrap();
    assert!(api.contains_key("get deployments/scale"), "{s:#}");
    assert!(api.contains_key("patch rlautoscalers/status"), "{s:#}");
}

#[test]
fn shadow_mode_measures_every_object_and_never_scales() {
    let s = bench(
        "bench-controller-shadow",
        &["--mode", "shadow", "--stagger"],
    );
    check(&s, "shadow");
    assert_eq!(s["staggered"], true);
    assert_eq!(s["scale_writes"], 0.0, "{s:#}");
    let api = s["api_requests_per_s"].as_object().unwrap();
    assert!(!api.contains_key("patch deployments/scale"), "{s:#}");
    // HPAs come from one watch (listed once, before the measured window), not a list per reconcile.
    assert!(
        api.get("list horizontalpodautoscalers")
            .and_then(|r| r.as_f64())
            .is_none_or(|r| r < 0.1),
        "{s:#}"
    );
}
