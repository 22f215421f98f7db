//! Deployments: CRUD, selectors, pagination, scale, optimistic concurrency.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rlscale_testenv::TestApiServer;
use serde_json::json;

use crate::{api_status, client};

pub fn deployment(name: &str, app: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn deployment_crud_and_selectors() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    let pp = PostParams::default();
    let web = api.create(&pp, &deployment("web", "web", 2)).await.unwrap();
    let meta = &web.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.generation, Some(1));
    assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
    let rv: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();
    assert!(rv > 0);
    assert!(meta.creation_timestamp.is_some());
    // Defaulting, as the apiserver does.
    let spec = web.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));

    api.create(&pp, &deployment("db", "db", 1)).await.unwrap();
    let err = api
        .create(&pp, &deployment("web", "web", 1))
        .await
        .unwrap_err();
    let st = api_status(err);
    assert_eq!((st.code, st.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(st.message, "deployments.apps \"web\" already exists");

    let got = api.get("web").await.unwrap();
    assert_eq!(got.metadata.uid, web.metadata.uid);
    let st = api_status(api.get("nope").await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"));
    assert_eq!(st.message, "deployments.apps \"nope\" not found");

    let names = |l: kube::core::ObjectList<Deployment>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|d| d.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        ["web"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app notin (web)"))
                .await
                .unwrap()
        ),
        ["db"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (web,db)"))
                .await
                .unwrap()
        ),
        ["db", "web"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=db"))
                .await
                .unwrap()
        ),
        ["db"]
    );
    let all: Api<Deployment> = Api::all(c.clone());
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()),
        ["db", "web"]
    );

    // Metadata-only reads (PartialObjectMetadata), as kube's metadata_watcher uses.
    let metas = api.list_metadata(&ListParams::default()).await.unwrap();
    let meta_names: Vec<_> = metas
        .items
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(meta_names, ["db", "web"]);
    let m = api.get_metadata("web").await.unwrap();
    assert_eq!(m.metadata.uid, web.metadata.uid);

    // Pagination with continue tokens.
    let page1 = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page1.items.len(), 1);
    let token = page1.metadata.continue_.clone().expect("continue token");
    assert_eq!(page1.metadata.remaining_item_count, Some(1));
    let page2 = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(page2.clone()), ["web"]);
    assert!(page2.metadata.continue_.is_none());

    // Delete answers with a Status for deployments.
    let deleted = api.delete("db", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right());
    assert_eq!(api_status(api.get("db").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn scale_subresource_and_conflicts() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    let web = api
        .create(&PostParams::default(), &deployment("web", "web", 2))
        .await
        .unwrap();

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    let status = scale.status.as_ref().unwrap();
    assert_eq!(status.replicas, 0);
    assert_eq!(status.selector.as_deref(), Some("app=web"));
    assert_eq!(
        scale.metadata.resource_version,
        web.metadata.resource_version
    );
    assert_eq!(scale.metadata.uid, web.metadata.uid);

    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(5));
    let d = api.get("web").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(5));
    assert_eq!(d.metadata.generation, Some(2));
    assert_eq!(
        d.metadata.resource_version,
        scaled.metadata.resource_version
    );

    // replace_scale with the current RV succeeds; with a stale RV it conflicts.
    let mut s: Scale = api.get_scale("web").await.unwrap();
    s.spec.as_mut().unwrap().replicas = Some(3);
    let replaced = api
        .replace_scale("web", &PostParams::default(), &s)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().replicas, Some(3));
    s.spec.as_mut().unwrap().replicas = Some(4);
    let st = api_status(
        api.replace_scale("web", &PostParams::default(), &s)
            .await
            .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"));

    // PUT with a stale resourceVersion.
    let mut stale = web.clone();
    stale.spec.as_mut().unwrap().replicas = Some(9);
    let st = api_status(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        st.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion the update is unconditional.
    let mut fresh = api.get("web").await.unwrap();
    fresh.metadata.resource_version = None;
    fresh.spec.as_mut().unwrap().replicas = Some(6);
    let updated = api
        .replace("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(updated.spec.as_ref().unwrap().replicas, Some(6));

    // A no-op patch keeps the resourceVersion (and generation).
    let noop = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(
        noop.metadata.resource_version,
        updated.metadata.resource_version
    );
    assert_eq!(noop.metadata.generation, updated.metadata.generation);
    // Status in a main-resource write is ignored.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(
        p.metadata.resource_version,
        updated.metadata.resource_version
    );
    // A resourceVersion in a patch is a precondition.
    let st = api_status(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(st.code, 409);
    // JSON patch with a test op.
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 6},
        {"op": "replace", "path": "/spec/replicas", "value": 7}
    ]))
    .unwrap();
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(7));
    // Server-side apply creates and updates.
    let apply = PatchParams::apply("tester").force();
    let mut other = serde_json::to_value(deployment("applied", "applied", 1)).unwrap();
    other["metadata"]["namespace"] = json!("default");
    let created = api
        .patch("applied", &apply, &Patch::Apply(&other))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    other["spec"]["replicas"] = json!(4);
    let applied = api
        .patch("applied", &apply, &Patch::Apply(&other))
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(4));
    assert_eq!(applied.metadata.generation, Some(2));
}

/// An object deleted and created again under its name is a new object, as the API server makes it: a
/// new uid, generation 1 again (controllers that key state by name alone confuse the two).
#[tokio::test]
async fn a_recreated_object_has_a_new_uid_and_generation_1() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    let pp = PostParams::default();
    let first = api.create(&pp, &deployment("web", "web", 2)).await.unwrap();
    let bumped = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(bumped.metadata.generation, Some(2));
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let second = api.create(&pp, &deployment("web", "web", 2)).await.unwrap();
    assert_ne!(second.metadata.uid, first.metadata.uid);
    assert_eq!(second.metadata.uid.as_ref().unwrap().len(), 36);
    assert_eq!(second.metadata.generation, Some(1));
}
