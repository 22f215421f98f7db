//! Integration tests driving the test API server with kube's real client.

mod bad_input;
mod crd_schema;
mod deployments;
mod discovery;
mod events;
mod faults;
mod rbac;
mod resources;
mod strict;
mod watch;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rlscale_testenv::TestApiServer;

/// A client configured from the server's kubeconfig (namespace `default`).
pub async fn client(server: &TestApiServer) -> Client {
    Client::try_from(config(server).await).expect("client")
}

/// The kube `Config` read from the server's kubeconfig.
pub async fn config(server: &TestApiServer) -> Config {
    let kc = Kubeconfig::from_yaml(&server.kubeconfig_yaml("default")).expect("kubeconfig parses");
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config")
}

/// The `Status` of an API error, panicking on any other error.
pub fn api_status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Sends a raw request and returns the API error status it produced.
pub async fn raw_error(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Box<kube::core::Status> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .expect("request");
    api_status(
        client
            .request_text(req)
            .await
            .expect_err("request should fail"),
    )
}
