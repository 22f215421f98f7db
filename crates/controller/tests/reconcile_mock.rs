//! Reconcile against kube's tower-test mock API server (controller-rs `ApiServerVerifier` style): each
//! test states the exact sequence of API calls one reconcile makes, answers them, and checks what was
//! written. Prometheus is real where a test needs numbers (Debian's package on a loopback port).

use rlscale_testenv::prometheus::{PrometheusProcess, free_port};

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::api::DynamicObject;
use kube::client::Body;
use rlscale_controller::metrics::Metrics;
use rlscale_controller::{Context, reconcile};
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type H = Handle<Request<Body>, Response<Body>>;

const NOW: f64 = 1_800_000_000.0;

fn ctx(client: kube::Client) -> Arc<Context> {
    let mut c = Context::new(client, "rlscale-test", Arc::new(Metrics::default()), None);
    c.clock = Arc::new(|| NOW);
    Arc::new(c)
}

fn rla(spec: Value) -> Arc<DynamicObject> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "rlscale.dev/v1alpha1",
            "kind": "RLAutoscaler",
            "metadata": {"name": "web-rla", "namespace": "default", "uid": "u-1", "generation": 1, "resourceVersion": "5"},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn spec(mode: &str, prometheus: &str) -> Value {
    json!({
        "scaleTargetRef": {"name": "web"},
        "minReplicas": 1,
        "maxReplicas": 20,
        "mode": mode,
        "prometheus": {"serverAddress": prometheus, "timeoutSeconds": 2},
        "serviceProfile": {"coldStartSeconds": 60, "capacityRps": 4, "usdPerGpuHour": 1.0, "sloLatencySeconds": 10},
    })
}

async fn next(h: &mut H) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(Duration::from_secs(10), h.next_request())
        .await
        .expect("the next API call within 10 s")
        .expect("the client is alive")
}

async fn body(req: Request<Body>) -> Value {
    let bytes = req.into_body().collect_bytes().await.unwrap();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn respond(send: SendResponse<Response<Body>>, status: u16, body: Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

/// Answer a status patch with the object, as the API server does.
fn respond_status_patch(send: SendResponse<Response<Body>>) {
    respond(
        send,
        200,
        json!({"apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler", "metadata": {"name": "web-rla", "namespace": "default"}}),
    );
}

fn scale(replicas: i32, rv: &str) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": "web", "namespace": "default", "resourceVersion": rv},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}})
}

fn deployment(replicas: i32, ready: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default", "resourceVersion": "10"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}},
           "status": {"replicas": replicas, "readyReplicas": ready}})
}

/// Expect `method path`, return the request body and the responder.
async fn expect(h: &mut H, method: &str, path: &str) -> (Value, SendResponse<Response<Body>>) {
    let (req, send) = next(h).await;
    assert_eq!(
        (req.method().as_str(), req.uri().path()),
        (method, path),
        "unexpected call {} {}",
        req.method(),
        req.uri()
    );
    (body(req).await, send)
}

async fn expect_no_more_calls(h: &mut H) {
    if let Ok(Some((req, _))) =
        tokio::time::timeout(Duration::from_millis(300), h.next_request()).await
    {
        panic!("unexpected extra call {} {}", req.method(), req.uri());
    }
}

const SCALE: &str = "/apis/apps/v1/namespaces/default/deployments/web/scale";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/web";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
const STATUS: &str = "/apis/rlscale.dev/v1alpha1/namespaces/default/rlautoscalers/web-rla/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn condition<'a>(status: &'a Value, t: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == t)
        .unwrap_or_else(|| panic!("no {t} condition in {status}"))
}

#[tokio::test]
async fn shadow_mode_never_writes_the_scale_and_records_the_hpa() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let task = tokio::spawn(reconcile(rla(spec("Shadow", &dead)), ctx(client)));

    let (_, s) = expect(&mut h, "GET", SCALE).await;
    respond(s, 200, scale(3, "10"));
    let (_, s) = expect(&mut h, "GET", DEPLOY).await;
    respond(s, 200, deployment(3, 3));
    let (_, s) = expect(&mut h, "GET", HPAS).await;
    respond(
        s,
        200,
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList", "metadata": {"resourceVersion": "12"},
               "items": [{"metadata": {"name": "web", "namespace": "default"},
                          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 20},
                          "status": {"currentReplicas": 3, "desiredReplicas": 5}}]}),
    );
    let (patch, s) = expect(&mut h, "PATCH", STATUS).await;
    respond_status_patch(s);
    let st = &patch["status"];
    assert_eq!(st["hpaDesiredReplicas"], 5);
    assert_eq!(st["currentReplicas"], 3);
    // No metrics: the fallback holds the current count.
    assert_eq!(st["desiredReplicas"], 3);
    assert_eq!(st["lastDecision"]["source"], "fallback");
    assert_eq!(st["lastDecision"]["reason"], "invalid_input");
    assert_eq!(condition(st, "MetricsAvailable")["status"], "False");
    assert_eq!(
        condition(st, "MetricsAvailable")["reason"],
        "PrometheusUnreachable"
    );
    assert_eq!(condition(st, "FallbackActive")["status"], "True");
    assert_eq!(condition(st, "ModelLoaded")["reason"], "NoModelConfigured");
    assert_eq!(condition(st, "Ready")["status"], "True");
    assert_eq!(st["divergence"]["samples"], 1);
    assert_eq!(st["divergence"]["lower"], 1);
    // The metrics problem becomes a Warning Event.
    let (ev, s) = expect(&mut h, "POST", EVENTS).await;
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "PrometheusUnreachable");
    respond(s, 201, ev);
    let action = task.await.unwrap().unwrap();
    // Requeued at the object's own phase of the 15 s interval, at least half an interval away.
    let delay = rlscale_controller::controller::until_next_decision("default", "web-rla", 15, NOW);
    assert!(
        delay >= Duration::from_millis(7500) && delay <= Duration::from_millis(22500),
        "{delay:?}"
    );
    assert_eq!(action, kube::runtime::controller::Action::requeue(delay));
    expect_no_more_calls(&mut h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_mode_scales_and_retries_a_conflict_on_a_fresh_read() {
    let prom = PrometheusProcess::start_for_test(&[]);
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let mut sp = spec("Active", &prom.url);
    // Constant answers: 3 replicas running 64 requests each, twice the fallback HPA's target of 32.
    sp["prometheus"]["queries"] = json!({
        "arrivalRate1m": "vector(10)", "arrivalRate5m": "vector(10)", "queueDepth": "vector(0)",
        "running": "vector(192)", "gpuUtilization": "vector(0.9)", "kvCacheUsage": "vector(0.5)",
        "latencyP50": "vector(1)", "latencyP95": "vector(2)", "latencyP99": "vector(3)",
    });
    let task = tokio::spawn(reconcile(rla(sp), ctx(client)));

    let (_, s) = expect(&mut h, "GET", SCALE).await;
    respond(s, 200, scale(3, "10"));
    let (_, s) = expect(&mut h, "GET", DEPLOY).await;
    respond(s, 200, deployment(3, 3));
    // The first write carries the resourceVersion read; someone wrote in between: 409.
    let (p1, s) = expect(&mut h, "PATCH", SCALE).await;
    assert_eq!(
        p1,
        json!({"metadata": {"resourceVersion": "10"}, "spec": {"replicas": 6}})
    );
    respond(
        s,
        409,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Conflict", "code": 409,
               "message": "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"}),
    );
    // Re-read, retry with the fresh resourceVersion.
    let (_, s) = expect(&mut h, "GET", SCALE).await;
    respond(s, 200, scale(3, "11"));
    let (p2, s) = expect(&mut h, "PATCH", SCALE).await;
    assert_eq!(
        p2,
        json!({"metadata": {"resourceVersion": "11"}, "spec": {"replicas": 6}})
    );
    respond(s, 200, scale(6, "12"));
    let (ev, s) = expect(&mut h, "POST", EVENTS).await;
    assert_eq!(ev["type"], "Normal");
    assert_eq!(ev["reason"], "Scaled");
    let note = ev["note"].as_str().unwrap();
    assert!(
        note.contains("3 → 6") && note.contains("source: fallback"),
        "{note}"
    );
    respond(s, 201, ev);
    let (patch, s) = expect(&mut h, "PATCH", STATUS).await;
    respond_status_patch(s);
    let st = &patch["status"];
    assert_eq!(st["desiredReplicas"], 6);
    assert_eq!(condition(st, "MetricsAvailable")["status"], "True");
    assert!(
        st["lastScaleTime"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-15")
    );
    // Active mode deletes the shadow fields (a merge patch keeps what it leaves out).
    for k in ["hpaDesiredReplicas", "hpaRecomputedReplicas", "divergence"] {
        assert_eq!(st.get(k), Some(&Value::Null), "{k}: {st}");
    }
    task.await.unwrap().unwrap();
    expect_no_more_calls(&mut h).await;
}

#[tokio::test]
async fn a_bad_spec_gets_a_condition_and_an_event_and_nothing_else() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let mut sp = spec("Active", "http://127.0.0.1:9");
    sp["minReplicas"] = json!(9);
    sp["maxReplicas"] = json!(2);
    let task = tokio::spawn(reconcile(rla(sp), ctx(client)));
    let (ev, s) = expect(&mut h, "POST", EVENTS).await;
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "InvalidSpec");
    assert!(
        ev["note"]
            .as_str()
            .unwrap()
            .contains("minReplicas 9 is greater than maxReplicas 2"),
        "{ev}"
    );
    respond(s, 201, ev);
    let (patch, s) = expect(&mut h, "PATCH", STATUS).await;
    respond_status_patch(s);
    let ready = condition(&patch["status"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    // Not an error (no fast retry loop): requeued at the interval.
    task.await.unwrap().unwrap();
    expect_no_more_calls(&mut h).await;
}

#[tokio::test]
async fn an_unknown_mode_gets_a_condition_naming_the_value() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let task = tokio::spawn(reconcile(
        rla(spec("Turbo", "http://127.0.0.1:9")),
        ctx(client),
    ));
    let (ev, s) = expect(&mut h, "POST", EVENTS).await;
    assert_eq!(ev["reason"], "InvalidSpec");
    respond(s, 201, ev);
    let (patch, s) = expect(&mut h, "PATCH", STATUS).await;
    respond_status_patch(s);
    let ready = condition(&patch["status"], "Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    let msg = ready["message"].as_str().unwrap();
    assert!(msg.contains("Turbo") && msg.contains("Active"), "{msg}");
    task.await.unwrap().unwrap();
    expect_no_more_calls(&mut h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_promql_gets_a_condition_and_an_event_and_the_fallback_holds() {
    let prom = PrometheusProcess::start_for_test(&[]);
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let mut sp = spec("Active", &prom.url);
    sp["prometheus"]["queries"] = json!({"queueDepth": "sum(vllm:num_requests_waiting"});
    let task = tokio::spawn(reconcile(rla(sp), ctx(client)));
    let (_, s) = expect(&mut h, "GET", SCALE).await;
    respond(s, 200, scale(3, "10"));
    let (_, s) = expect(&mut h, "GET", DEPLOY).await;
    respond(s, 200, deployment(3, 3));
    // No scale write: the fallback holds at 3.
    let (patch, s) = expect(&mut h, "PATCH", STATUS).await;
    respond_status_patch(s);
    let st = &patch["status"];
    assert_eq!(st["desiredReplicas"], 3);
    let m = condition(st, "MetricsAvailable");
    assert_eq!(m["status"], "False");
    assert_eq!(m["reason"], "BadQuery");
    assert!(m["message"].as_str().unwrap().contains("queueDepth"), "{m}");
    let (ev, s) = expect(&mut h, "POST", EVENTS).await;
    assert_eq!(
        (ev["type"].as_str(), ev["reason"].as_str()),
        (Some("Warning"), Some("BadQuery"))
    );
    respond(s, 201, ev);
    task.await.unwrap().unwrap();
    expect_no_more_calls(&mut h).await;
}
