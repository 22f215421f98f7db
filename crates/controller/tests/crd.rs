//! The checked-in CRD and example are current and parse.

use std::path::PathBuf;

use rlscale_controller::crd::{Field, Mode, RLAutoscaler};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn deploy_crd_yaml_is_what_crdgen_prints() {
    let path = repo().join("deploy/crd.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == rlscale_controller::crd_yaml(),
        "{} is stale: regenerate it with `cargo run -- crdgen > deploy/crd.yaml`",
        path.display()
    );
}

#[test]
fn the_example_parses_and_fills_defaults() {
    let text =
        std::fs::read_to_string(repo().join("deploy/rlautoscaler-shadow-example.yaml")).unwrap();
    let obj: RLAutoscaler = serde_yaml::from_str(&text).unwrap();
    assert_eq!(obj.spec.mode, Mode::Shadow);
    assert_eq!(obj.spec.max_replicas, 16);
    rlscale_controller::decide::validate(&obj.spec).unwrap();
    let q = obj
        .spec
        .prometheus
        .queries
        .resolved("serving", "llama-3-8b");
    assert_eq!(
        q[&Field::QueueDepth],
        r#"sum(vllm:num_requests_waiting{namespace="serving",pod=~"llama-3-8b-([a-z0-9]+-[bcdfghjklmnpqrstvwxz2456789]{5}|[0-9]+)"})"#
    );
    // A default: the DCGM exporter's utilization, a percentage, scaled to 0-1.
    assert_eq!(
        q[&Field::GpuUtilization],
        r#"avg(DCGM_FI_DEV_GPU_UTIL{namespace="serving",pod=~"llama-3-8b-([a-z0-9]+-[bcdfghjklmnpqrstvwxz2456789]{5}|[0-9]+)"}) / 100"#
    );
}

#[test]
fn an_unknown_mode_is_a_parse_error_naming_the_value() {
    let text = std::fs::read_to_string(repo().join("deploy/rlautoscaler-shadow-example.yaml"))
        .unwrap()
        .replace("mode: Shadow", "mode: Turbo");
    let obj: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let spec = serde_json::to_value(&obj["spec"]).unwrap();
    let e = serde_json::from_value::<rlscale_controller::RLAutoscalerSpec>(spec).unwrap_err();
    assert!(e.to_string().contains("Turbo"), "{e}");
}
