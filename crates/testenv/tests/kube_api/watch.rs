//! Watches: kube's watcher (list+watch and streaming lists), relist after 410, bookmarks,
//! selectors.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rlscale_testenv::{Fault, TestApiServer};
use serde_json::json;
use tokio::sync::mpsc;

use crate::client;
use crate::deployments::deployment;

type Item = Result<Event<Deployment>, watcher::Error>;

/// Runs a watcher in the background, forwarding its items.
fn spawn_watcher(api: Api<Deployment>, cfg: watcher::Config) -> mpsc::UnboundedReceiver<Item> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = watcher::watcher(api, cfg).default_backoff().boxed();
        while let Some(item) = s.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (up to `secs`) for an item satisfying `pred`; returns it.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Item>,
    secs: u64,
    mut pred: impl FnMut(&Item) -> bool,
) -> Item {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let item = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("timed out waiting for a watcher item")
            .expect("watcher ended");
        if pred(&item) {
            return item;
        }
    }
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

async fn initial_names(rx: &mut mpsc::UnboundedReceiver<Item>) -> Vec<String> {
    let mut names = vec![];
    let _ = wait_for(rx, 5, |i| matches!(i, Ok(Event::Init))).await;
    loop {
        match wait_for(rx, 5, |_| true).await {
            Ok(Event::InitApply(d)) => names.push(d.metadata.name.unwrap()),
            Ok(Event::InitDone) => return names,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn watcher_sees_initial_state_and_changes() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &deployment("a", "a", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &deployment("b", "b", 1))
        .await
        .unwrap();
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    assert_eq!(initial_names(&mut rx).await, ["a", "b"]);
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let ev = wait_for(&mut rx, 5, |i| matches!(i, Ok(Event::Apply(_)))).await;
    let Ok(Event::Apply(d)) = ev else {
        unreachable!()
    };
    assert_eq!(replicas(&d), Some(3));
    api.delete("b", &Default::default()).await.unwrap();
    let ev = wait_for(&mut rx, 5, |i| matches!(i, Ok(Event::Delete(_)))).await;
    let Ok(Event::Delete(d)) = ev else {
        unreachable!()
    };
    assert_eq!(d.metadata.name.as_deref(), Some("b"));

    // Streaming lists (sendInitialEvents) work too.
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default().streaming_lists());
    assert_eq!(initial_names(&mut rx).await, ["a"]);
    assert!(server.requests().iter().any(|r| {
        r.verb == "watch"
            && r.query
                .as_deref()
                .is_some_and(|q| q.contains("sendInitialEvents=true"))
    }));
}

#[tokio::test]
async fn watcher_relists_after_compaction() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &deployment("web", "web", 1))
        .await
        .unwrap();
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default().timeout(1));
    assert_eq!(initial_names(&mut rx).await, ["web"]);

    // Keep the watcher from reconnecting while the object changes and history is compacted.
    server.inject(Fault::status("watch=true", 500).method("GET"));
    let _ = wait_for(&mut rx, 5, |i| {
        matches!(i, Err(watcher::Error::WatchStartFailed(_)))
    })
    .await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 7}})),
    )
    .await
    .unwrap();
    server.compact();
    server.clear_faults();

    // The watcher resumes from its old resourceVersion, gets 410 Expired, and relists.
    let _ = wait_for(&mut rx, 10, |i| {
        matches!(i, Err(watcher::Error::WatchError(s)) if s.code == 410 && s.reason == "Expired")
    })
    .await;
    let ev = wait_for(&mut rx, 10, |i| matches!(i, Ok(Event::InitApply(_)))).await;
    let Ok(Event::InitApply(d)) = ev else {
        unreachable!()
    };
    assert_eq!(replicas(&d), Some(7));
    let _ = wait_for(&mut rx, 5, |i| matches!(i, Ok(Event::InitDone))).await;
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "deployments")
        .count();
    assert!(lists >= 2, "expected a relist, saw {lists} lists");

    // And keeps working afterwards.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 8}})),
    )
    .await
    .unwrap();
    let ev = wait_for(&mut rx, 5, |i| matches!(i, Ok(Event::Apply(_)))).await;
    let Ok(Event::Apply(d)) = ev else {
        unreachable!()
    };
    assert_eq!(replicas(&d), Some(8));
}

#[tokio::test]
async fn raw_watch_bookmarks_and_selectors() {
    let server = TestApiServer::start().await.unwrap();
    server
        .cluster()
        .set_bookmark_interval(Duration::from_millis(200));
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &deployment("web", "web", 1))
        .await
        .unwrap();

    let wp = WatchParams {
        bookmarks: true,
        ..Default::default()
    }
    .timeout(5);
    let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(ref d) if d.metadata.name.as_deref() == Some("web")));
    let next = tokio::time::timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let WatchEvent::Bookmark(bm) = next else {
        panic!("expected a bookmark, got {next:?}")
    };
    assert!(bm.metadata.resource_version.parse::<u64>().unwrap() > 0);
    assert!(
        !bm.metadata
            .annotations
            .contains_key("k8s.io/initial-events-end")
    );

    // An object that stops matching the selector is DELETED for this watcher.
    let rv = api
        .get("web")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default()
        .labels("app=web")
        .timeout(5)
        .disable_bookmarks();
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Deleted(ref d) if d.metadata.name.as_deref() == Some("web")),
        "{ev:?}"
    );
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ev, WatchEvent::Added(_)), "{ev:?}");

    // timeoutSeconds ends the stream.
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let stream = api.watch(&wp, "0").await.unwrap();
    let all: Vec<_> = tokio::time::timeout(Duration::from_secs(4), stream.collect::<Vec<_>>())
        .await
        .expect("stream ends after timeoutSeconds");
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    let stream = api.watch(&WatchParams::default(), "0").await.unwrap();
    let collect = tokio::spawn(stream.collect::<Vec<_>>());
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown completes despite an open watch");
    tokio::time::timeout(Duration::from_secs(5), collect)
        .await
        .unwrap()
        .unwrap();
}
