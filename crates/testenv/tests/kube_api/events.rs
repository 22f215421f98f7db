//! Core `v1` and `events.k8s.io/v1` Events are one store (issue 18): what is written through one
//! API is read, listed, watched, patched and deleted through the other, with the field mapping of
//! kube-apiserver's conversion (`note` ↔ `message`, `regarding` ↔ `involvedObject`, ...).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use rlscale_testenv::TestApiServer;
use serde_json::{Value, json};

use crate::{api_status, client};

/// An `events.k8s.io/v1` Event with every field the conversion maps.
fn new_event(name: &str) -> NewEvent {
    serde_json::from_value(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"},
        "related": {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "default"},
        "reportingController": "rlscale.dev/controller", "reportingInstance": "controller-0",
        "deprecatedSource": {"component": "rlscale", "host": "node-1"},
        "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
        "deprecatedLastTimestamp": "2026-01-01T00:01:00Z",
        "deprecatedCount": 3,
        "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "2 → 3",
    }))
    .expect("a valid events.k8s.io/v1 Event")
}

/// The same Event as core `v1` writes it.
fn core_event(name: &str) -> CoreEvent {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"},
        "related": {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "default"},
        "reportingComponent": "rlscale.dev/controller", "reportingInstance": "controller-0",
        "source": {"component": "rlscale", "host": "node-1"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:01:00Z",
        "count": 3,
        "action": "Scale", "reason": "Scaled", "type": "Normal", "message": "2 → 3",
    }))
    .expect("a valid core v1 Event")
}

/// Everything but the metadata, as JSON (to compare a read with what was written).
fn body<T: serde::Serialize>(ev: &T) -> Value {
    let mut v = serde_json::to_value(ev).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("metadata");
    v
}

fn meta_of<T: kube::Resource>(ev: &T) -> (String, String, String) {
    let m = ev.meta();
    (
        m.name.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default(),
        m.resource_version.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn an_event_created_through_events_k8s_io_is_a_core_event() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    let created = new
        .create(&PostParams::default(), &new_event("web.1"))
        .await
        .unwrap();
    let want = body(&core_event("web.1"));

    let got = core.get("web.1").await.unwrap();
    assert_eq!(body(&got), want);
    assert_eq!(
        meta_of(&got),
        meta_of(&created),
        "one object: same uid and RV"
    );

    let list = core
        .list(&ListParams::default().fields("involvedObject.name=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(body(&list.items[0]), want);

    let mut stream = core
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(ev)) => assert_eq!(body(&ev), want),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn a_core_event_is_an_events_k8s_io_event() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    let created = core
        .create(&PostParams::default(), &core_event("web.1"))
        .await
        .unwrap();
    let want = body(&new_event("web.1"));

    let got = new.get("web.1").await.unwrap();
    assert_eq!(body(&got), want);
    assert_eq!(meta_of(&got), meta_of(&created));

    let list = new
        .list(&ListParams::default().fields("regarding.name=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(body(&list.items[0]), want);

    let mut stream = new
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(ev)) => assert_eq!(body(&ev), want),
        other => panic!("expected ADDED, got {other:?}"),
    }
    let cluster = server.cluster();
    assert_eq!(cluster.objects("", "events").len(), 1, "one stored object");
    assert_eq!(cluster.objects("events.k8s.io", "events").len(), 1);
}

/// A watch on one API sees the writes made through the other, and both APIs share one
/// resourceVersion sequence.
#[tokio::test]
async fn a_patch_through_one_api_is_seen_through_the_other() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    let created = new
        .create(&PostParams::default(), &new_event("web.1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let mut core_watch = core
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut new_watch = new
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();

    // events.k8s.io → core.
    let patched = new
        .patch(
            "web.1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "3 → 4", "series": {"count": 3}})),
        )
        .await
        .unwrap();
    let seen = core.get("web.1").await.unwrap();
    assert_eq!(seen.message.as_deref(), Some("3 → 4"));
    assert_eq!(seen.series.as_ref().and_then(|s| s.count), Some(3));
    assert_eq!(
        seen.metadata.resource_version,
        patched.metadata.resource_version
    );
    let next = tokio::time::timeout(Duration::from_secs(5), core_watch.try_next())
        .await
        .expect("the core watch sees the patch")
        .unwrap();
    match next {
        Some(WatchEvent::Modified(ev)) => assert_eq!(ev.message.as_deref(), Some("3 → 4")),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // core → events.k8s.io.
    let patched = core
        .patch(
            "web.1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"message": "4 → 5", "count": 7, "source": {"component": "other"}}),
            ),
        )
        .await
        .unwrap();
    let seen = new.get("web.1").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("4 → 5"));
    assert_eq!(seen.deprecated_count, Some(7));
    assert_eq!(
        seen.deprecated_source.and_then(|s| s.component).as_deref(),
        Some("other")
    );
    assert_eq!(
        seen.metadata.resource_version,
        patched.metadata.resource_version
    );
    let mut notes = vec![];
    while notes.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(5), new_watch.try_next())
            .await
            .expect("the events.k8s.io watch sees both patches")
            .unwrap();
        match next {
            Some(WatchEvent::Modified(ev)) => notes.push(ev.note.unwrap_or_default()),
            other => panic!("expected MODIFIED, got {other:?}"),
        }
    }
    assert_eq!(notes, ["3 → 4", "4 → 5"]);

    // One resourceVersion sequence: a core write after an events.k8s.io one gets a later RV.
    let other = core
        .create(&PostParams::default(), &core_event("web.2"))
        .await
        .unwrap();
    let rv_of = |m: &kube::api::ObjectMeta| -> u64 {
        m.resource_version.as_deref().unwrap().parse().unwrap()
    };
    assert!(rv_of(&other.metadata) > rv_of(&patched.metadata));
    let lists = (
        new.list(&ListParams::default()).await.unwrap(),
        core.list(&ListParams::default()).await.unwrap(),
    );
    assert_eq!(
        lists.0.metadata.resource_version,
        lists.1.metadata.resource_version
    );
    assert_eq!(lists.0.items.len(), 2);
    assert_eq!(lists.1.items.len(), 2);
}

#[tokio::test]
async fn deleting_through_one_api_removes_the_event_from_both() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    new.create(&PostParams::default(), &new_event("a"))
        .await
        .unwrap();
    core.create(&PostParams::default(), &core_event("b"))
        .await
        .unwrap();
    let st = api_status(
        core.create(&PostParams::default(), &core_event("a"))
            .await
            .unwrap_err(),
    );
    assert_eq!(st.code, 409, "the name is taken through the other API");

    core.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_status(new.get("a").await.unwrap_err()).code, 404);
    new.delete("b", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_status(core.get("b").await.unwrap_err()).code, 404);
    assert!(
        new.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        core.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The Event rules hold whichever API writes: a core `message` over 1024 bytes is refused as an
/// events.k8s.io `note` is, and a patch through events.k8s.io cannot break what core stored.
#[tokio::test]
async fn event_validation_applies_through_both_apis() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    let mut long = core_event("long");
    long.message = Some("x".repeat(1025));
    let st = api_status(
        core.create(&PostParams::default(), &long)
            .await
            .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));
    assert!(st.message.contains("message"), "{}", st.message);

    core.create(&PostParams::default(), &core_event("web.1"))
        .await
        .unwrap();
    let st = api_status(
        new.patch(
            "web.1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "x".repeat(1025)})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));
    assert!(st.message.contains("note"), "{}", st.message);
    let st = api_status(
        new.patch(
            "web.1",
            &PatchParams::default(),
            &Patch::Merge(json!({"type": "Info"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(st.code, 422);
    assert_eq!(
        core.get("web.1").await.unwrap().message.as_deref(),
        Some("2 → 3"),
        "a refused write changes nothing"
    );
}
