//! Fault injection, the write log and the request log.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchParams};
use rlscale_testenv::{Fault, TestApiServer};
use serde_json::json;

use crate::deployments::deployment;
use crate::{api_status, client, config};

#[tokio::test]
async fn injected_errors_and_times() {
    let server = TestApiServer::start().await.unwrap();
    let mut cfg = config(&server).await;
    cfg.default_retry = false; // kube retries 429/503 by default
    let api: Api<Deployment> = Api::default_namespaced(Client::try_from(cfg).unwrap());
    api.create(&PostParams::default(), &deployment("web", "web", 1))
        .await
        .unwrap();

    server.inject(Fault::status("/deployments/web", 500).times(1));
    let st = api_status(api.get("web").await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (500, "InternalError"));
    api.get("web")
        .await
        .expect("times = 1 affects one request only");

    server.inject(Fault::status("/deployments/web", 429).times(2));
    for _ in 0..2 {
        let st = api_status(api.get("web").await.unwrap_err());
        assert_eq!((st.code, st.reason.as_str()), (429, "TooManyRequests"));
    }
    api.get("web").await.unwrap();

    server.inject(Fault::status("/deployments", 409).method("PATCH"));
    let st = api_status(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"));
    api.get("web").await.expect("method filter: GET unaffected");
    server.clear_faults();

    server.inject(Fault::status("/deployments/web", 503).times(1));
    let st = api_status(api.get("web").await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (503, "ServiceUnavailable"));

    // kube's default client honours Retry-After and retries a 429.
    let retrying: Api<Deployment> = Api::default_namespaced(client(&server).await);
    server.inject(Fault::status("/deployments/web", 429).times(1));
    retrying
        .get("web")
        .await
        .expect("retried after Retry-After");
    let codes: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/deployments/web") && r.verb == "get")
        .map(|r| r.status)
        .collect();
    assert_eq!(&codes[codes.len() - 2..], [429, 200]);
}

#[tokio::test]
async fn delay_makes_client_time_out() {
    let server = TestApiServer::start().await.unwrap();
    let mut cfg = config(&server).await;
    cfg.read_timeout = Some(Duration::from_millis(300));
    let api: Api<Deployment> = Api::default_namespaced(Client::try_from(cfg).unwrap());
    api.create(&PostParams::default(), &deployment("web", "web", 1))
        .await
        .unwrap();
    server.inject(Fault::delay("/deployments/web", 1500).times(1));
    let err = api.get("web").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "transport timeout, got {err:?}"
    );
    api.get("web").await.expect("fault consumed");
}

#[tokio::test]
async fn write_log_and_request_verbs() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    let d = api
        .create(&PostParams::default(), &deployment("web", "web", 1))
        .await
        .unwrap();
    api.get("web").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    drop(
        api.watch(&WatchParams::default().timeout(1), "0")
            .await
            .unwrap(),
    );
    api.replace("web", &PostParams::default(), &d)
        .await
        .unwrap();
    api.get_scale("web").await.unwrap();
    api.patch_scale(
        "web",
        &PatchParams::apply("scaler").force(),
        &Patch::Apply(
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 4}}),
        ),
    )
    .await
    .unwrap();
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    api.delete("web", &Default::default()).await.unwrap();

    let w = server.writes();
    let summary: Vec<(&str, Option<&str>, u16)> = w
        .iter()
        .map(|r| (r.method.as_str(), r.subresource.as_deref(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", None, 201),
            ("PUT", None, 200),
            ("PATCH", Some("scale"), 200),
            ("PATCH", Some("scale"), 200),
            ("DELETE", None, 200)
        ]
    );
    assert_eq!(w[0].name.as_deref(), Some("web"));
    let apply = &w[2];
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(apply.field_manager.as_deref(), Some("scaler"));
    let merge = &w[3];
    assert_eq!(merge.body, json!({"spec": {"replicas": 3}}));
    assert_eq!(
        merge.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        (
            merge.group.as_str(),
            merge.version.as_str(),
            merge.resource.as_str()
        ),
        ("apps", "v1", "deployments")
    );
    assert_eq!(
        (merge.namespace.as_deref(), merge.name.as_deref()),
        (Some("default"), Some("web"))
    );
    assert!(w.windows(2).all(|p| p[0].seq < p[1].seq));

    let verbs: Vec<(String, Option<String>)> = server
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments")
        .map(|r| (r.verb, r.subresource))
        .collect();
    let expect = |v: &str, s: Option<&str>| (v.to_string(), s.map(str::to_string));
    assert_eq!(
        verbs,
        [
            expect("create", None),
            expect("get", None),
            expect("list", None),
            expect("watch", None),
            expect("update", None),
            expect("get", Some("scale")),
            expect("patch", Some("scale")),
            expect("patch", Some("scale")),
            expect("delete", None),
        ]
    );
}

#[tokio::test]
async fn control_endpoints_over_http() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let req = |method: &str, path: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    c.request_text(req(
        "POST",
        "/testenv/faults",
        r#"{"method":"GET","path_contains":"/configmaps","status":500,"times":1}"#,
    ))
    .await
    .unwrap();
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(c.clone());
    assert_eq!(
        api_status(cms.list(&ListParams::default()).await.unwrap_err()).code,
        500
    );
    cms.list(&ListParams::default()).await.unwrap();
    c.request_text(req(
        "POST",
        "/testenv/faults",
        r#"{"path_contains":"/configmaps","status":503}"#,
    ))
    .await
    .unwrap();
    c.request_text(req("DELETE", "/testenv/faults", ""))
        .await
        .unwrap();
    cms.list(&ListParams::default()).await.unwrap();
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let writes: Vec<rlscale_testenv::WriteRecord> = serde_json::from_str(
        &c.request_text(req("GET", "/testenv/writes", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(writes, server.writes());
    assert_eq!(writes.len(), 1);
    let requests: Vec<rlscale_testenv::RequestRecord> = serde_json::from_str(
        &c.request_text(req("GET", "/testenv/requests", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.resource == "configmaps")
            .count(),
        4
    );
}
