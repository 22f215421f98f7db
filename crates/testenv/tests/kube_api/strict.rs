//! What a real API server refuses or rewrites, and this one too (issue 18: the controller passed
//! tests that a Kubernetes API server would have failed).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use rlscale_testenv::TestApiServer;
use serde_json::json;

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
