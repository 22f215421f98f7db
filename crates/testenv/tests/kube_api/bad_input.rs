//! Malformed or inconsistent requests get the apiserver's error statuses.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use rlscale_testenv::TestApiServer;
use serde_json::json;
use tokio::net::TcpListener;

use crate::{api_status, client, raw_error};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn malformed_and_inconsistent_bodies() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let st = raw_error(&c, "POST", DEPLOYMENTS, "application/json", "{not json").await;
    assert_eq!((st.code, st.reason.as_str()), (400, "BadRequest"));

    let st = raw_error(
        &c,
        "POST",
        DEPLOYMENTS,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(st.code, 400);

    let st = raw_error(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"metadata":{"name":"x","namespace":"other"}}"#,
    )
    .await;
    assert_eq!((st.code, st.reason.as_str()), (400, "BadRequest"));

    let st = raw_error(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"metadata":{}}"#,
    )
    .await;
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));

    let st = raw_error(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"metadata":{"name":"Bad_Name"}}"#,
    )
    .await;
    assert_eq!(st.code, 422);

    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let st = raw_error(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cfg",
        "application/json-patch+json",
        r#"[{"op":"test","path":"/data/a","value":"2"}]"#,
    )
    .await;
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));
    let st = raw_error(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cfg",
        "application/apply-patch+yaml",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}"#,
    )
    .await;
    assert_eq!(st.code, 422, "apply needs a fieldManager");
    let st = raw_error(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cfg",
        "text/plain",
        "x",
    )
    .await;
    assert_eq!(st.code, 415);
    let st = raw_error(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/missing",
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(
        (st.code, st.message.as_str()),
        (404, "configmaps \"missing\" not found")
    );
    // dryRun does not store.
    let dry: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dry"}})).unwrap();
    cms.create(
        &PostParams {
            dry_run: true,
            field_manager: None,
        },
        &dry,
    )
    .await
    .unwrap();
    assert_eq!(api_status(cms.get("dry").await.unwrap_err()).code, 404);
    assert!(
        server
            .writes()
            .iter()
            .all(|w| w.name.as_deref() != Some("dry"))
    );
}

#[tokio::test]
async fn missing_namespace_unknown_paths_and_verbs() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "nope");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    let st = api_status(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"));
    assert_eq!(st.message, "namespaces \"nope\" not found");

    let st = raw_error(&c, "GET", "/apis/foo.dev/v1/bars", "application/json", "").await;
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"));
    let st = raw_error(&c, "GET", "/nonsense", "application/json", "").await;
    assert_eq!(st.code, 404);
    let st = raw_error(
        &c,
        "DELETE",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        "application/json",
        "",
    )
    .await;
    assert_eq!((st.code, st.reason.as_str()), (405, "MethodNotAllowed"));
    let st = raw_error(&c, "DELETE", "/api/v1/namespaces", "application/json", "").await;
    assert_eq!(st.code, 405, "namespaces have no deletecollection");
    let st = raw_error(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b",
        "application/json",
        "",
    )
    .await;
    assert_eq!(st.code, 400);
    let st = raw_error(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps?fieldSelector=spec.x%3D1",
        "application/json",
        "",
    )
    .await;
    assert_eq!(st.message, "field label not supported: spec.x");
}

#[tokio::test]
async fn serve_stops_on_shutdown_future() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rlscale_testenv::serve(
        listener,
        rlscale_testenv::Cluster::new(),
        async move {
            let _ = rx.await;
        },
    ));
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
