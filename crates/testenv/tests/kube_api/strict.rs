//! What a real API server refuses or rewrites, and this one too (issue 18: the controller passed
//! tests that a Kubernetes API server would have failed).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use rlscale_testenv::TestApiServer;
use serde_json::{Value, json};

use crate::deployments::deployment;
use crate::{api_status, client};

fn reference() -> ObjectReference {
    ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some("web".into()),
        namespace: Some("default".into()),
        ..Default::default()
    }
}

fn event(note: String) -> Event {
    Event {
        type_: EventType::Warning,
        reason: "PrometheusUnreachable".into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    }
}

/// `note` is at most 1024 bytes (`NoteLengthLimit`): one more is a 422, and nothing is stored.
#[tokio::test]
async fn an_event_note_over_1024_bytes_is_invalid() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    // A recorder per Event: one recorder would send a repeat of the same reason as a series update
    // of the first Event (a PATCH that keeps the first note).
    let publish = |note: String| {
        let recorder = Recorder::new(c.clone(), Reporter::from("rlscale-controller".to_string()));
        async move { recorder.publish(&event(note), &reference()).await }
    };
    publish("x".repeat(1024)).await.unwrap();
    let st = api_status(publish("y".repeat(1025)).await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
    assert!(
        st.message.contains("note") && st.message.contains("at most 1024"),
        "{}",
        st.message
    );
    // Bytes, as Go's len counts: 342 three-byte characters (1026 bytes) are too many.
    let st = api_status(publish("→".repeat(342)).await.unwrap_err());
    assert_eq!(st.code, 422);
    let events: Api<K8sEvent> = Api::default_namespaced(c);
    assert_eq!(
        events.list(&Default::default()).await.unwrap().items.len(),
        1
    );
}

/// An events.k8s.io/v1 Event needs its eventTime, reportingController, reportingInstance, action,
/// reason, and a type of Normal or Warning.
#[tokio::test]
async fn an_event_without_its_required_fields_is_invalid() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let events: Api<K8sEvent> = Api::default_namespaced(c);
    let full = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
        "reportingController": "rlscale-controller", "reportingInstance": "pod-1",
        "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "2 → 3",
    });
    for (field, replacement) in [
        ("eventTime", None),
        ("reportingController", None),
        ("reportingInstance", None),
        ("action", None),
        ("reason", None),
        ("type", Some(json!("Info"))),
        ("reason", Some(json!("R".repeat(129)))),
    ] {
        let mut ev = full.clone();
        match replacement {
            Some(v) => ev[field] = v,
            None => {
                ev.as_object_mut().unwrap().remove(field);
            }
        }
        let ev: K8sEvent = serde_json::from_value(ev).unwrap();
        let st = api_status(
            events
                .create(&PostParams::default(), &ev)
                .await
                .unwrap_err(),
        );
        assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{field}");
        assert!(st.message.contains(field), "{field}: {}", st.message);
    }
    let ev: K8sEvent = serde_json::from_value(full).unwrap();
    events.create(&PostParams::default(), &ev).await.unwrap();
}

/// `DeploymentStatus`'s counts are `omitempty`: a real API server never returns `readyReplicas: 0`;
/// it omits the field.
#[tokio::test]
async fn zero_valued_deployment_status_counts_are_omitted() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c);
    api.create(&PostParams::default(), &deployment("web", "web", 4))
        .await
        .unwrap();
    let written = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "replicas": 4, "updatedReplicas": 4, "readyReplicas": 0,
                "availableReplicas": 0, "unavailableReplicas": 4, "observedGeneration": 1,
            }})),
        )
        .await
        .unwrap();
    for got in [written, api.get("web").await.unwrap()] {
        let st = serde_json::to_value(got.status.unwrap()).unwrap();
        assert_eq!(
            st,
            json!({"replicas": 4, "updatedReplicas": 4, "unavailableReplicas": 4, "observedGeneration": 1}),
        );
    }
    // And the non-zero ones stay.
    let got = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 0}})),
        )
        .await
        .unwrap();
    let st = got.status.unwrap();
    assert_eq!(
        (
            st.ready_replicas,
            st.available_replicas,
            st.unavailable_replicas
        ),
        (Some(2), Some(2), None)
    );
}

/// The object at `path` as the server sent it (to see which fields are absent, not just `None`).
async fn raw_get(c: &kube::Client, path: &str) -> Value {
    let req = http::Request::get(path).body(vec![]).unwrap();
    c.request::<Value>(req).await.unwrap()
}

/// `DeploymentStatus.terminatingReplicas` is an `*int32`: `omitempty` drops it only when nil, so a
/// written 0 comes back.
#[tokio::test]
async fn a_deployments_zero_terminating_replicas_is_kept() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    api.create(&PostParams::default(), &deployment("web", "web", 4))
        .await
        .unwrap();
    let got = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 4, "terminatingReplicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(got.status.unwrap().terminating_replicas, Some(0));
    let raw = raw_get(&c, "/apis/apps/v1/namespaces/default/deployments/web").await;
    assert_eq!(
        raw["status"],
        json!({"replicas": 4, "terminatingReplicas": 0})
    );
}

/// `HorizontalPodAutoscalerStatus` (autoscaling/v2): `currentReplicas` is an `omitempty` `int32`
/// (absent at 0); `desiredReplicas` has no `omitempty` (kept at 0); `observedGeneration` is an
/// `*int64` (kept at 0).
#[tokio::test]
async fn an_hpas_zero_current_replicas_is_omitted() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<HorizontalPodAutoscaler> = Api::default_namespaced(c.clone());
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 10}
    }))
    .unwrap();
    api.create(&PostParams::default(), &hpa).await.unwrap();
    let written = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "currentReplicas": 0, "desiredReplicas": 0, "observedGeneration": 0,
            }})),
        )
        .await
        .unwrap();
    for got in [written, api.get("web").await.unwrap()] {
        let st = got.status.unwrap();
        assert_eq!(
            (
                st.current_replicas,
                st.desired_replicas,
                st.observed_generation
            ),
            (None, 0, Some(0))
        );
    }
    let raw = raw_get(
        &c,
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web",
    )
    .await;
    assert_eq!(
        raw["status"],
        json!({"desiredReplicas": 0, "observedGeneration": 0})
    );
    // A non-zero count stays.
    let got = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentReplicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(got.status.unwrap().current_replicas, Some(2));
}

/// `ScaleSpec.replicas` (autoscaling/v1) is an `omitempty` `int32`: a Scale of 0 replicas has
/// `spec: {}`; `ScaleStatus.replicas` has no `omitempty` and is kept at 0.
#[tokio::test]
async fn a_scale_of_zero_replicas_has_no_spec_replicas() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    api.create(&PostParams::default(), &deployment("web", "web", 0))
        .await
        .unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, None);
    assert_eq!(scale.status.unwrap().replicas, 0);
    let raw = raw_get(&c, "/apis/apps/v1/namespaces/default/deployments/web/scale").await;
    assert_eq!(raw["spec"], json!({}));
    assert_eq!(raw["status"]["replicas"], 0);
    // Scaling up from an absent `spec.replicas`, and back to 0.
    let up = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(up.spec.unwrap().replicas, Some(3));
    let down = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(down.spec.unwrap().replicas, None);
    let d = api.get("web").await.unwrap();
    assert_eq!(
        d.spec.unwrap().replicas,
        Some(0),
        "a Deployment's replicas is a pointer: kept"
    );
}
