//! The checked-in CRD and example are current and parse, and the CRD's schema declares what the
//! controller reads and writes.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use rlscale_controller::RLAutoscalerStatus;
use rlscale_controller::crd::{
    Condition, Divergence, Field, LastDecision, Mode, RLAutoscaler, RLAutoscalerSpec,
};
use rlscale_testenv::TestApiServer;
use serde_json::json;

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

/// Feature schema 2's hour-scale windows default to subqueries over whichever 1-minute rate is in
/// force: an `arrivalRate1m` pointed at a gateway's counter carries over to them, and an explicit
/// query for one of them is taken as written.
#[test]
fn the_hour_scale_windows_follow_the_one_minute_rate() {
    use rlscale_controller::crd::Queries;
    let sel = r#"namespace="ns",pod=~"t-([a-z0-9]+-[bcdfghjklmnpqrstvwxz2456789]{5}|[0-9]+)""#;
    let q = Queries::default().resolved("ns", "t");
    assert_eq!(
        q[&Field::ArrivalRatePeak15m],
        format!("max_over_time((sum(rate(vllm:request_success_total{{{sel}}}[1m])))[15m:15s])")
    );
    assert_eq!(
        q[&Field::ArrivalRate1h],
        format!("avg_over_time((sum(rate(vllm:request_success_total{{{sel}}}[1m])))[1h:15s])")
    );
    let gateway = Queries {
        arrival_rate_1m: Some(r#"sum(rate(gw_requests_total{service="$target"}[1m]))"#.into()),
        arrival_rate_1h: Some("my_hourly_rate".into()),
        ..Queries::default()
    };
    let q = gateway.resolved("ns", "t");
    assert_eq!(
        q[&Field::ArrivalRatePeak1h],
        r#"max_over_time((sum(rate(gw_requests_total{service="t"}[1m])))[1h:15s])"#
    );
    assert_eq!(q[&Field::ArrivalRate1h], "my_hourly_rate");
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

/// The generated CRD on an API server that applies its schema (issue 18): a typo in a spec field is
/// pruned (not kept, not refused), the schema's defaults are what the controller's serde defaults
/// are, and a wrong type is refused with the field named.
#[tokio::test]
async fn the_api_server_prunes_defaults_and_validates_by_the_generated_schema() {
    let (server, api) = rla_api().await;
    let mut spec = minimal_spec();
    spec["maxReplica"] = json!(9);
    spec["prometheus"]["timeout"] = json!(3);
    let created = api
        .create(&PostParams::default(), &rla("llm", spec))
        .await
        .unwrap();
    let got = api.get("llm").await.unwrap();
    for obj in [&created, &got] {
        let spec = &obj.data["spec"];
        assert!(spec.get("maxReplica").is_none(), "{spec}");
        assert!(spec["prometheus"].get("timeout").is_none(), "{spec}");
        // The schema's defaults are the ones serde fills in when the controller parses the spec.
        let parsed: RLAutoscalerSpec = serde_json::from_value(minimal_spec()).unwrap();
        let stored: RLAutoscalerSpec = serde_json::from_value(spec.clone()).unwrap();
        assert_eq!(stored, parsed);
        assert_eq!(
            (
                &spec["minReplicas"],
                &spec["mode"],
                &spec["interval"],
                &spec["scaleTargetRef"]["kind"]
            ),
            (
                &json!(1),
                &json!("Shadow"),
                &json!(15),
                &json!("Deployment")
            )
        );
    }
    let mut bad = minimal_spec();
    bad["maxReplicas"] = json!("16");
    let err = api
        .create(&PostParams::default(), &rla("bad", bad))
        .await
        .unwrap_err();
    let kube::Error::Api(st) = err else {
        panic!("{err:?}")
    };
    assert_eq!(st.code, 422, "{st:?}");
    let causes = st.details.unwrap().causes;
    assert_eq!(
        (causes[0].field.as_str(), causes[0].reason.as_str()),
        ("spec.maxReplicas", "FieldValueTypeInvalid")
    );
    server.shutdown().await;
}

/// Everything the controller writes to the status is declared in the CRD: a fully populated status
/// patch (`status_patch`, the controller's only status write) reads back unchanged. A field the schema
/// did not declare would be dropped by a real API server, silently.
#[tokio::test]
async fn every_status_field_the_controller_writes_survives_the_schema() {
    let (server, api) = rla_api().await;
    api.create(&PostParams::default(), &rla("llm", minimal_spec()))
        .await
        .unwrap();
    let mut divergence = Divergence::default();
    divergence.add(5, 3);
    divergence.add(2, 3);
    let full = RLAutoscalerStatus {
        observed_generation: Some(1),
        current_replicas: Some(2),
        desired_replicas: Some(3),
        last_decision: Some(LastDecision {
            replicas: 3,
            source: "model".into(),
            reason: "scale_up".into(),
            time: "2026-01-01T00:00:00Z".into(),
        }),
        last_scale_time: Some("2026-01-01T00:00:00Z".into()),
        hpa_desired_replicas: Some(4),
        hpa_recomputed_replicas: Some(5),
        divergence: Some(divergence),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Decided".into(),
            message: "ok".into(),
            last_transition_time: "2026-01-01T00:00:00Z".into(),
            observed_generation: Some(1),
        }],
    };
    let patch = rlscale_controller::controller::status_patch(&full);
    api.patch_status("llm", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let got = api.get("llm").await.unwrap();
    assert_eq!(got.data["status"], serde_json::to_value(&full).unwrap());
    server.shutdown().await;
}

/// The shipped example loses nothing to the schema: every field it sets is declared (a misspelt one
/// would be dropped without a word by `kubectl apply`, and the controller would run on the default).
#[tokio::test]
async fn the_example_is_stored_as_written_plus_defaults() {
    let (server, api) = rla_api().await;
    let text =
        std::fs::read_to_string(repo().join("deploy/rlautoscaler-shadow-example.yaml")).unwrap();
    let mut example: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    example["metadata"]["namespace"] = json!("default");
    let obj: DynamicObject = serde_json::from_value(example.clone()).unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    let mut missing = vec![];
    lost_fields(
        &example["spec"],
        &created.data["spec"],
        "spec",
        &mut missing,
    );
    assert!(missing.is_empty(), "pruned or changed: {missing:?}");
    server.shutdown().await;
}

/// The paths of `written` whose value `stored` does not have.
fn lost_fields(
    written: &serde_json::Value,
    stored: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    match (written, stored) {
        (serde_json::Value::Object(w), serde_json::Value::Object(s)) => {
            for (k, v) in w {
                match s.get(k) {
                    Some(sv) => lost_fields(v, sv, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (w, s) if w.as_f64().is_some() && w.as_f64() == s.as_f64() => {}
        (w, s) if w != s => out.push(path.to_string()),
        _ => {}
    }
}

fn minimal_spec() -> serde_json::Value {
    json!({
        "scaleTargetRef": {"name": "llm"},
        "maxReplicas": 16,
        "prometheus": {"serverAddress": "http://prometheus:9090"},
        "serviceProfile": {"coldStartSeconds": 180, "capacityRps": 4, "usdPerGpuHour": 0.8,
                           "sloLatencySeconds": 20},
    })
}

fn rla(name: &str, spec: serde_json::Value) -> DynamicObject {
    DynamicObject::new(name, &rlscale_controller::controller::resource())
        .data(json!({ "spec": spec }))
}

/// A test API server with the generated CRD installed, and the RLAutoscalers of `default`.
async fn rla_api() -> (TestApiServer, Api<DynamicObject>) {
    let server = TestApiServer::start().await.unwrap();
    let kc = Kubeconfig::from_yaml(&server.kubeconfig_yaml("default")).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &RLAutoscaler::crd())
        .await
        .unwrap();
    let api = Api::namespaced_with(
        client,
        "default",
        &rlscale_controller::controller::resource(),
    );
    (server, api)
}
