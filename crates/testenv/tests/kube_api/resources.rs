//! HPAs (status subresource), leases (optimistic concurrency), events via `Recorder`,
//! namespaces, configmaps.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use rlscale_testenv::TestApiServer;
use serde_json::json;

use crate::{api_status, client};

#[tokio::test]
async fn hpa_status_subresource() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client(&server).await);
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 10}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &hpa).await.unwrap();
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.min_replicas, Some(1), "defaulted");
    assert_eq!(
        spec.metrics.as_ref().unwrap().len(),
        1,
        "default CPU metric"
    );
    let patched = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentReplicas": 3, "desiredReplicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().unwrap().desired_replicas, 4);
    assert_eq!(patched.metadata.generation, created.metadata.generation);
    let got = api.get_status("web").await.unwrap();
    assert_eq!(got.status.as_ref().unwrap().current_replicas, Some(3));
    // replace_status changes only the status.
    let mut body = got.clone();
    body.status.as_mut().unwrap().desired_replicas = 5;
    body.spec.as_mut().unwrap().max_replicas = 99;
    let replaced = api
        .replace_status("web", &PostParams::default(), &body)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().desired_replicas, 5);
    assert_eq!(replaced.spec.unwrap().max_replicas, 10);
}

#[tokio::test]
async fn lease_optimistic_concurrency() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Lease> = Api::namespaced(client(&server).await, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "rlscale-leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        created.metadata.generation, None,
        "leases do not track generation"
    );
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let updated = api
        .replace("rlscale-leader", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    // Reusing the old object (stale RV) conflicts.
    mine.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let st = api_status(
        api.replace("rlscale-leader", &PostParams::default(), &mine)
            .await
            .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"));
    assert!(st.message.starts_with(
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"rlscale-leader\""
    ));
}

#[tokio::test]
async fn recorder_events_are_stored_and_logged() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "rlscale-controller".into(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some("web".into()),
        namespace: Some("default".into()),
        ..Default::default()
    };
    let ev = Event {
        type_: EventType::Normal,
        reason: "Scaled".into(),
        note: Some("scaled to 3".into()),
        action: "Scale".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap(); // a series: patched
    let events: Api<K8sEvent> = Api::default_namespaced(c.clone());
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let stored = &list.items[0];
    assert_eq!(stored.reason.as_deref(), Some("Scaled"));
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(server.cluster().objects("events.k8s.io", "events").len(), 1);
    assert_eq!(
        server.cluster().objects("", "events").len(),
        1,
        "core events are the same objects"
    );
    let writes = server.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(
        (
            writes[0].method.as_str(),
            writes[0].group.as_str(),
            writes[0].resource.as_str()
        ),
        ("POST", "events.k8s.io", "events")
    );
    assert_eq!(writes[0].body["reason"], "Scaled");
    assert_eq!(writes[1].method, "PATCH");
    assert_eq!(
        writes[1].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
}

#[tokio::test]
async fn namespaces_and_configmaps() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let nss: Api<Namespace> = Api::all(c.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["default", "kube-public", "kube-system"]);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    let created = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        created
            .metadata
            .labels
            .unwrap()
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("team-a")
    );
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "team-a");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}, "data": {"k": "v"}}))
            .unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    let name = cm.metadata.name.unwrap();
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
    // Deleting a namespace deletes its contents (synchronously here).
    let out = nss.delete("team-a", &Default::default()).await.unwrap();
    assert!(out.is_left(), "namespaces answer with the object");
    assert_eq!(api_status(cms.get(&name).await.unwrap_err()).code, 404);
    let st = api_status(
        nss.delete("default", &Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(st.code, 403);
}
