//! The fault matrix (issue #7): each fault is injected into a running controller (in-process, the same
//! `rlscale_controller::run` the binary runs, driven by kube's real client against the in-repo test API
//! server, with a real Prometheus) and must end in a fallback or a retry, plus a condition, an Event and
//! a metric — never a crash and never a scale outside `[minReplicas, maxReplicas]`.
//!
//! The results are recorded in docs/faults.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event as KEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use rlscale_controller::{LeaseConfig, RLAutoscaler};
use rlscale_testenv::prometheus::{PrometheusProcess, free_port};
use rlscale_testenv::{Fault, TestApiServer};
use serde_json::{Value, json};

use crate::e2e::{Proc, create_deployment, repo, runtime};

/// Constant PromQL answers of a loaded service (8B/L4-like: 3 req/s per replica): the model scales
/// a target at 2 up (to 10).
fn loaded_queries() -> Value {
    json!({
        "arrivalRate1m": "vector(12)", "arrivalRate5m": "vector(12)",
        "queueDepth": "vector(8)", "running": "vector(6)",
        "gpuUtilization": "vector(0.97)", "kvCacheUsage": "vector(0.9)",
        "latencyP50": "vector(4)", "latencyP95": "vector(9)", "latencyP99": "vector(12)",
    })
}

/// The controller's scale writes (not the test's own, whose field manager is `test`), as kube's client
/// spells the URL.
const OUR_SCALE: &str = "/scale?&fieldManager=rlscale-controller";

struct Env {
    api: TestApiServer,
    client: kube::Client,
    dir: tempfile::TempDir,
    prometheus: PrometheusProcess,
    metrics_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let api = TestApiServer::start().await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &RLAutoscaler::crd())
        .await
        .unwrap();
    let prometheus = PrometheusProcess::start_for_test(&[]);
    Env {
        api,
        client,
        dir,
        prometheus,
        metrics_url: String::new(),
        stop: None,
        task: None,
    }
}

impl Env {
    fn options(&self, port: u16, leader: Option<LeaseConfig>) -> rlscale_controller::Options {
        rlscale_controller::Options {
            namespace: Some("default".into()),
            metrics_addr: format!("127.0.0.1:{port}").parse().unwrap(),
            decision_log: Some(self.dir.path().join("decisions.jsonl")),
            reporter: "rlscale-controller".into(),
            leader_election: leader,
            reconcile_timeout: Duration::from_secs(2),
            max_concurrent_reconciles: 32,
        }
    }

    /// Start the controller in this process.
    async fn start_controller(&mut self, leader: Option<LeaseConfig>) {
        let port = free_port().unwrap();
        let opts = self.options(port, leader);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let client = self.client.clone();
        self.task = Some(tokio::spawn(async move {
            rlscale_controller::run(client, opts, async move {
                let _ = rx.await;
            })
            .await
        }));
        self.stop = Some(tx);
        self.metrics_url = format!("http://127.0.0.1:{port}/metrics");
        let t = Instant::now();
        while reqwest::get(&self.metrics_url).await.is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the controller did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop it (as on SIGTERM) and check it ended cleanly.
    async fn stop_controller(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let r = tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("the controller stops within 10 s")
            .unwrap();
        r.expect("the controller ends without an error");
    }

    /// The controller is still running (no crash).
    fn assert_alive(&self) {
        assert!(
            !self.task.as_ref().unwrap().is_finished(),
            "the controller task ended"
        );
    }

    async fn deployment(&self, name: &str, replicas: i32, ready: i32) {
        create_deployment(&self.client, "default", name, replicas, ready).await;
    }

    fn rla_api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            "default",
            &rlscale_controller::controller::resource(),
        )
    }

    /// An RLAutoscaler `name` for Deployment `target`, with `patch` merged into its spec.
    async fn rla(&self, name: &str, target: &str, patch: Value) {
        let mut spec = json!({
            "scaleTargetRef": {"name": target},
            "minReplicas": 1, "maxReplicas": 12, "mode": "Active", "interval": 1,
            "model": repo().join("models/default.json").to_str().unwrap(),
            "prometheus": {"serverAddress": self.prometheus.url, "timeoutSeconds": 1,
                           "queries": loaded_queries()},
            "serviceProfile": {"coldStartSeconds": 135, "capacityRps": 3, "gpusPerReplica": 1,
                               "usdPerGpuHour": 0.8, "sloLatencySeconds": 10},
        });
        merge(&mut spec, &patch);
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }))
        .unwrap();
        self.rla_api()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<Value> {
        let o = self.rla_api().get(name).await.unwrap();
        o.data["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
    }

    /// Wait until `name`'s condition `type_` has `status` and `reason`.
    async fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: &str) -> Value {
        let t = Instant::now();
        loop {
            let c = self.condition(name, type_).await;
            if let Some(c) = &c
                && c["status"] == status
                && c["reason"] == reason
            {
                return c.clone();
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{name}: condition {type_} never became {status}/{reason}; last {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn events(&self, name: &str) -> Vec<KEvent> {
        let api: Api<KEvent> = Api::namespaced(self.client.clone(), "default");
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    async fn wait_event(&self, name: &str, reason: &str) -> KEvent {
        let t = Instant::now();
        loop {
            if let Some(e) = self
                .events(name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return e;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{name}: no {reason} Event; have {:?}",
                self.events(name)
                    .await
                    .iter()
                    .map(|e| e.reason.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn metrics(&self) -> String {
        reqwest::get(&self.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one sample of the controller's /metrics (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        metric_in(&self.metrics().await, series)
    }

    async fn wait_metric_at_least(&self, series: &str, v: f64) {
        let t = Instant::now();
        loop {
            let text = self.metrics().await;
            if metric_in(&text, series) >= v {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{series} never reached {v}:\n{text}\n{}\n{:?}",
                self.last_decisions(),
                self.api
                    .writes()
                    .iter()
                    .filter(|w| w.subresource.as_deref() == Some("scale"))
                    .map(|w| (w.query.clone(), w.status, w.body.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The decision log's last lines, for failure messages.
    fn last_decisions(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("decisions.jsonl")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join("\n")
    }

    async fn spec_replicas(&self, name: &str) -> i64 {
        let d: Api<Deployment> = Api::namespaced(self.client.clone(), "default");
        i64::from(d.get(name).await.unwrap().spec.unwrap().replicas.unwrap())
    }

    /// Successful controller writes to `target`'s scale, as replica counts.
    fn scale_writes(&self, target: &str) -> Vec<i64> {
        self.api
            .writes()
            .into_iter()
            .filter(|w| {
                w.subresource.as_deref() == Some("scale")
                    && w.name.as_deref() == Some(target)
                    && w.status < 300
                    && w.field_manager.as_deref()
                        == Some(rlscale_controller::controller::FIELD_MANAGER)
            })
            .map(|w| w.body["spec"]["replicas"].as_i64().unwrap())
            .collect()
    }

    /// Wait until the controller has written `target`'s scale at least `n` times; how many it has.
    async fn wait_scale_writes(&self, target: &str, n: usize) -> usize {
        let t = Instant::now();
        loop {
            let k = self.scale_writes(target).len();
            if k >= n {
                return k;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{target}: {k} scale writes, waited for {n}\n{}",
                self.last_decisions()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The test plays a person scaling `target` back by hand.
    async fn set_replicas(&self, target: &str, replicas: i32) {
        let d: Api<Deployment> = Api::namespaced(self.client.clone(), "default");
        d.patch_scale(
            target,
            &PatchParams {
                field_manager: Some("test".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
    }

    async fn wait_replicas_above(&self, target: &str, n: i64) -> i64 {
        let t = Instant::now();
        loop {
            let r = self.spec_replicas(target).await;
            if r > n {
                return r;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{target} stayed at {r}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn metric_in(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn write_model(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Prometheus faults, model faults, a missing HPA and a deleted/recreated target, one object each,
/// all under one controller.
#[test]
fn metrics_model_hpa_and_target_faults_fall_back_with_a_condition_an_event_and_a_metric() {
    runtime().block_on(async {
        let mut e = env().await;
        for t in [
            "down", "slow", "nan", "empty", "several", "missing", "corrupt", "schema", "replaced",
            "nohpa", "deleted",
        ] {
            e.deployment(t, 2, 2).await;
        }
        // A server that accepts connections and never answers: a Prometheus slower than the timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let dead = free_port().unwrap();
        let dir = e.dir.path().to_path_buf();
        let default_model = std::fs::read_to_string(repo().join("models/default.json")).unwrap();
        let corrupt = write_model(&dir, "corrupt.json", "{\"format\": \"rlscale-model\", \"format_");
        let mut wrong: Value = serde_json::from_str(&default_model).unwrap();
        wrong["obs_schema_version"] = json!(99);
        let schema = write_model(&dir, "schema.json", &wrong.to_string());
        let replaced = write_model(&dir, "replaced.json", &default_model);
        let several = r#"label_replace(vector(1), "pod", "a", "", "") or label_replace(vector(2), "pod", "b", "", "")"#;

        e.rla("down", "down", json!({"prometheus": {"serverAddress": format!("http://127.0.0.1:{dead}")}})).await;
        e.rla("slow", "slow", json!({"prometheus": {"serverAddress": format!("http://{silent_addr}")}})).await;
        e.rla("nan", "nan", json!({"prometheus": {"queries": {"arrivalRate1m": "vector(0) / vector(0)"}}})).await;
        e.rla("empty", "empty", json!({"prometheus": {"queries": {"queueDepth": "vector(1) > 2"}}})).await;
        e.rla("several", "several", json!({"prometheus": {"queries": {"running": several}}})).await;
        e.rla("missing", "missing", json!({"model": dir.join("nope.json").to_str().unwrap()})).await;
        e.rla("corrupt", "corrupt", json!({"model": corrupt.to_str().unwrap()})).await;
        e.rla("schema", "schema", json!({"model": schema.to_str().unwrap()})).await;
        e.rla("replaced", "replaced", json!({"model": replaced.to_str().unwrap()})).await;
        e.rla("nohpa", "nohpa", json!({"mode": "Shadow"})).await;
        e.rla("deleted", "deleted", json!({})).await;
        e.start_controller(None).await;

        // Prometheus: the fallback holds the target, MetricsAvailable says why, one Warning Event, and
        // the query-failure metric counts it.
        for (obj, reason, label) in [
            ("down", "PrometheusUnreachable", Some("prometheus_unreachable")),
            ("slow", "PrometheusTimeout", Some("prometheus_timeout")),
            ("nan", "NotANumber", None),
            ("empty", "NoData", None),
            ("several", "SeveralSeries", Some("prometheus_several_series")),
        ] {
            e.wait_condition(obj, "MetricsAvailable", "False", reason).await;
            e.wait_condition(obj, "FallbackActive", "True", "InvalidInput").await;
            e.wait_event(obj, reason).await;
            if let Some(label) = label {
                assert!(
                    e.metric(&format!("rlscale_metrics_query_failures_total{{error=\"{label}\"}}"))
                        .await
                        >= 1.0
                );
            }
            assert_eq!(e.spec_replicas(obj).await, 2, "{obj}: the fallback holds the target");
        }
        assert!(e.metric("rlscale_fallback_total{reason=\"invalid_input\"}").await >= 5.0);

        // Models: missing, corrupt and wrong-schema files → ModelLoaded False, the fallback law
        // decides (it still scales: the service is loaded), a Warning Event.
        for obj in ["missing", "corrupt", "schema"] {
            let c = e.wait_condition(obj, "ModelLoaded", "False", "LoadFailed").await;
            e.wait_condition(obj, "FallbackActive", "True", "NoModel").await;
            e.wait_event(obj, "ModelLoadFailed").await;
            eprintln!("{obj}: {}", c["message"]);
        }
        let schema_msg = e.condition("schema", "ModelLoaded").await.unwrap()["message"].to_string();
        assert!(schema_msg.contains("schema"), "{schema_msg}");
        assert!(e.metric("rlscale_fallback_total{reason=\"no_model\"}").await >= 3.0);
        // Replaced while running by a corrupt file: the last good model stays in use.
        e.wait_condition("replaced", "ModelLoaded", "True", "Loaded").await;
        std::fs::write(&replaced, "not a model").unwrap();
        e.wait_condition("replaced", "ModelLoaded", "True", "KeptLastGood").await;
        e.wait_event("replaced", "ModelLoadFailed").await;
        e.wait_condition("replaced", "FallbackActive", "False", "ModelDecides").await;
        // ... and a good file again is loaded again.
        std::fs::write(&replaced, &default_model).unwrap();
        e.wait_condition("replaced", "ModelLoaded", "True", "Loaded").await;

        // Shadow mode without an HPA: recorded with our recommendation and the recomputed HPA.
        let ready = e.wait_condition("nohpa", "Ready", "True", "Reconciled").await;
        assert!(ready["message"].as_str().unwrap().contains("no HPA"), "{ready}");
        e.wait_event("nohpa", "HPANotFound").await;
        let st = e.rla_api().get("nohpa").await.unwrap().data["status"].clone();
        assert!(st["hpaRecomputedReplicas"].as_u64().is_some(), "{st}");
        assert!(st["hpaDesiredReplicas"].is_null(), "{st}");
        assert!(e.scale_writes("nohpa").is_empty(), "shadow mode wrote a scale");

        // The target deleted, then recreated.
        e.wait_condition("deleted", "Ready", "True", "Reconciled").await;
        let d: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
        d.delete("deleted", &DeleteParams::default()).await.unwrap();
        e.wait_condition("deleted", "Ready", "False", "TargetNotFound").await;
        e.wait_event("deleted", "TargetNotFound").await;
        assert!(e.metric("rlscale_reconcile_failures_total{error=\"target_not_found\"}").await >= 1.0);
        e.deployment("deleted", 2, 2).await;
        e.wait_condition("deleted", "Ready", "True", "Reconciled").await;

        // Never out of bounds, never a crash.
        for w in e.api.writes().iter().filter(|w| w.subresource.as_deref() == Some("scale")) {
            let r = w.body["spec"]["replicas"].as_i64().unwrap();
            assert!((1..=12).contains(&r), "scale write of {r}");
        }
        e.assert_alive();
        e.stop_controller().await;
        hold.abort();
    });
}

/// API server faults on the scale subresource, the status subresource and the Lease.
#[test]
fn api_server_errors_and_timeouts_are_retried_with_a_condition_an_event_and_a_metric() {
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("web", 2, 2).await;
        e.rla("web", "web", json!({})).await;
        let mut le = LeaseConfig::new("rlscale-controller", "default", "faults");
        le.lease_duration = Duration::from_secs(3);
        le.renew_deadline = Duration::from_secs(2);
        le.retry_period = Duration::from_millis(300);
        e.start_controller(Some(le)).await;
        e.wait_replicas_above("web", 2).await;

        // Scale: 500, 429 and a hang beyond the reconcile timeout fail the write; it is retried.
        // (kube's client retries a 429 itself, honouring Retry-After, until the reconcile timeout.)
        for (fault, reason, label) in [
            (Fault::status(OUR_SCALE, 500), "ScaleFailed", "kube_api_500"),
            (Fault::status(OUR_SCALE, 429), "ReconcileTimeout", "timeout"),
            (
                Fault::delay(OUR_SCALE, 60_000),
                "ReconcileTimeout",
                "timeout",
            ),
        ] {
            let before = e.scale_writes("web").len();
            let failures_before = e
                .metric(&format!(
                    "rlscale_reconcile_failures_total{{error=\"{label}\"}}"
                ))
                .await;
            e.api.inject(fault.clone().method("PATCH"));
            e.set_replicas("web", 2).await;
            let series = format!("rlscale_reconcile_failures_total{{error=\"{label}\"}}");
            e.wait_metric_at_least(&series, failures_before + 1.0).await;
            e.wait_condition("web", "Ready", "False", reason).await;
            e.wait_event("web", reason).await;
            assert_eq!(e.spec_replicas("web").await, 2, "{fault:?}");
            e.api.clear_faults();
            e.wait_replicas_above("web", 2).await;
            e.wait_condition("web", "Ready", "True", "Reconciled").await;
            assert_eq!(
                e.scale_writes("web").len(),
                before + 1,
                "{fault:?}: one write after the fault"
            );
        }

        // Scale 409 (someone wrote the target meanwhile): re-read and retry in the same reconcile.
        let before = e.scale_writes("web").len();
        let scaled_before = e
            .metric("rlscale_scale_writes_total{namespace=\"default\",name=\"web\"}")
            .await;
        e.api
            .inject(Fault::status(OUR_SCALE, 409).method("PATCH").times(1));
        e.set_replicas("web", 2).await;
        e.wait_replicas_above("web", 2).await;
        let conflicts = e
            .api
            .writes()
            .iter()
            .filter(|w| w.subresource.as_deref() == Some("scale") && w.status == 409)
            .count();
        assert_eq!(conflicts, 1);
        assert_eq!(e.scale_writes("web").len(), before + 1);
        assert_eq!(
            e.metric("rlscale_scale_writes_total{namespace=\"default\",name=\"web\"}")
                .await,
            scaled_before + 1.0
        );

        // Status: 500 and a hang; the reconcile fails and is retried, and the status is written again.
        e.api
            .inject(Fault::status("/rlautoscalers/web/status", 500).method("PATCH"));
        e.wait_metric_at_least(
            "rlscale_reconcile_failures_total{error=\"kube_api_500\"}",
            2.0,
        )
        .await;
        e.wait_event("web", "StatusUpdateFailed").await;
        e.api.clear_faults();
        e.api
            .inject(Fault::delay("/rlautoscalers/web/status", 60_000).method("PATCH"));
        e.wait_metric_at_least("rlscale_reconcile_failures_total{error=\"timeout\"}", 2.0)
            .await;
        e.api.clear_faults();
        let t0 = rlscale_controller::controller::wall_clock();
        let t = Instant::now();
        loop {
            let c = e.condition("web", "Ready").await.unwrap();
            let dec = e.rla_api().get("web").await.unwrap().data["status"]["lastDecision"]["time"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if c["status"] == "True" && dec.as_str() >= rlscale_core::SimTime(t0).rfc3339().as_str()
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the status was not written again"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Lease: errors shorter than the renew deadline are ridden out; longer ones make the
        // controller stop leading (and writing), then it takes the Lease again and resumes.
        let leading = "rlscale_leader_election_master_status{name=\"rlscale-controller\"}";
        e.api.inject(Fault::status("/leases", 500));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        e.api.clear_faults();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            e.metric(leading).await,
            1.0,
            "a short lease outage made it step down"
        );
        assert_eq!(e.metric("rlscale_leader_election_lost_total").await, 0.0);
        for (i, fault) in [
            Fault::status("/leases", 429),
            Fault::delay("/leases", 60_000),
        ]
        .into_iter()
        .enumerate()
        {
            e.api.inject(fault);
            e.wait_metric_at_least("rlscale_leader_election_lost_total", i as f64 + 1.0)
                .await;
            assert_eq!(e.metric(leading).await, 0.0);
            // Not leading: no reconcile, so no write, even when the target is far from the decision.
            let writes = e.scale_writes("web").len();
            e.set_replicas("web", 2).await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            assert_eq!(e.scale_writes("web").len(), writes, "a standby wrote");
            e.api.clear_faults();
            let t = Instant::now();
            while e.metric(leading).await != 1.0 {
                assert!(t.elapsed() < Duration::from_secs(15), "never leads again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            e.wait_replicas_above("web", 2).await;
            e.assert_alive();
        }
        assert_eq!(e.metric("rlscale_leader_election_lost_total").await, 2.0);

        // Never out of bounds, never a crash.
        for w in e
            .api
            .writes()
            .iter()
            .filter(|w| w.subresource.as_deref() == Some("scale"))
        {
            let r = w.body["spec"]["replicas"].as_i64().unwrap();
            assert!((1..=12).contains(&r), "scale write of {r}");
        }
        e.assert_alive();
        e.stop_controller().await;
    });
}

/// A restart in the middle of an interval does not apply the same scale twice: the new process reads
/// the target's current size and only writes when its decision differs.
#[test]
fn a_restart_mid_interval_does_not_scale_twice() {
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("web", 2, 2).await;
        e.rla("web", "web", json!({"interval": 4})).await;
        for round in 0..3 {
            e.start_controller(None).await;
            if round == 0 {
                e.wait_replicas_above("web", 2).await;
            }
            // Stop somewhere inside the 4 s interval.
            tokio::time::sleep(Duration::from_millis(700 + 900 * round)).await;
            e.stop_controller().await;
        }
        e.start_controller(None).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let writes = e.scale_writes("web");
        assert!(!writes.is_empty());
        for pair in writes.windows(2) {
            assert_ne!(pair[0], pair[1], "the same scale applied twice: {writes:?}");
        }
        e.stop_controller().await;
    });
}

/// Issue 18, bug 2: an RLAutoscaler deleted and created again under the same name (generation 1
/// again) starts afresh: the deleted one's runtime, bounds included, is not reused. The reproduction:
/// `rec` with bounds [10, 40] scales its Deployment to 10; it is deleted, the Deployment is scaled
/// back to 2 by hand, and `rec` is created again with bounds [1, 3]. Keyed by namespace/name, the
/// controller kept the old runtime and scaled 2 → 10 (source `guardrail`) with no new config line.
#[test]
fn a_recreated_rlautoscaler_does_not_inherit_the_deleted_ones_state() {
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("rec", 2, 2).await;
        e.rla("rec", "rec", json!({"minReplicas": 10, "maxReplicas": 40}))
            .await;
        e.start_controller(None).await;
        assert!(e.wait_replicas_above("rec", 9).await >= 10);
        let old = e.rla_api().get("rec").await.unwrap();
        e.rla_api()
            .delete("rec", &DeleteParams::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        e.set_replicas("rec", 2).await;
        let writes_before = e.scale_writes("rec").len();
        e.rla("rec", "rec", json!({"minReplicas": 1, "maxReplicas": 3}))
            .await;
        let new = e.rla_api().get("rec").await.unwrap();
        // What the API server does, and what made the old key collide: a new uid, generation 1 again.
        assert_ne!(new.metadata.uid, old.metadata.uid);
        assert_eq!(new.metadata.generation, old.metadata.generation);
        e.wait_condition("rec", "Ready", "True", "Reconciled").await;
        // A few more decisions (interval 1 s) on the loaded service: it scales up, to 3 at most.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after = e.scale_writes("rec")[writes_before..].to_vec();
        assert!(
            after.iter().all(|r| (1..=3).contains(r)),
            "scaled outside [1, 3] after the re-creation: {after:?}\n{}",
            e.last_decisions()
        );
        let now = e.spec_replicas("rec").await;
        assert!((1..=3).contains(&now), "{now}");
        // The decision log has the new object's configuration line, with its bounds.
        let log = std::fs::read_to_string(e.dir.path().join("decisions.jsonl")).unwrap();
        let configs: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["kind"] == "config" && l["name"] == "rec")
            .collect();
        assert_eq!(configs.len(), 2, "{configs:?}");
        assert_eq!(configs[0]["runtime"]["min_replicas"], 10, "{}", configs[0]);
        assert_eq!(configs[1]["runtime"]["min_replicas"], 1, "{}", configs[1]);
        assert_eq!(configs[1]["runtime"]["max_replicas"], 3, "{}", configs[1]);
        // Every decision after the re-creation within the new bounds.
        let last: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .skip_while(|l| !(l["kind"] == "config" && l["runtime"]["max_replicas"] == 3))
            .filter(|l| l["kind"] == "decision")
            .collect();
        assert!(!last.is_empty());
        for l in &last {
            let d = l["desired_replicas"].as_u64().unwrap();
            assert!((1..=3).contains(&d), "{l}");
        }
        e.assert_alive();
        e.stop_controller().await;
    });
}

/// Issue 18, bug 3: a real API server refuses an Event whose note is over 1024 bytes (422). The
/// `PrometheusUnreachable` message names every query's URL (here about 4 KB): its Event is
/// published with the note cut at 1024 bytes, and the condition keeps the whole text. A Warning
/// whose POST failed is not taken as published: it is tried again at the next occurrence.
#[test]
fn a_long_warning_is_published_cut_and_a_failed_one_is_retried() {
    runtime().block_on(async {
        let mut e = env().await;
        // Port 1: nothing listens there (a probed free port can be taken by a parallel test's server).
        let dead = 1;
        e.deployment("long", 2, 2).await;
        e.deployment("retry", 2, 2).await;
        let long_path = "a-very-long-prometheus-path/".repeat(12);
        e.rla(
            "long",
            "long",
            json!({"prometheus": {
            "serverAddress": format!("http://127.0.0.1:{dead}/{long_path}")}}),
        )
        .await;
        e.rla(
            "retry",
            "retry",
            json!({"prometheus": {
            "serverAddress": format!("http://127.0.0.1:{dead}")}}),
        )
        .await;
        // The first Event POST of each object fails.
        e.api
            .inject(Fault::status("/events", 500).method("POST").times(2));
        e.start_controller(None).await;
        let c = e
            .wait_condition("long", "MetricsAvailable", "False", "PrometheusUnreachable")
            .await;
        let full = c["message"].as_str().unwrap().to_string();
        assert!(full.len() > 2048, "{}", full.len());
        for name in ["long", "retry"] {
            let ev = e.wait_event(name, "PrometheusUnreachable").await;
            let note = ev.note.unwrap();
            assert!(note.len() <= 1024, "{name}: {} bytes", note.len());
            if name == "long" {
                let kept = note.strip_suffix('…').expect("the note says it was cut");
                assert!(full.starts_with(kept), "{note}");
                assert!(kept.len() > 1000);
            }
        }
        // None of the controller's Event writes was refused by validation.
        let refused: Vec<_> = e
            .api
            .writes()
            .into_iter()
            .filter(|w| w.resource == "events" && w.status == 422)
            .collect();
        assert!(refused.is_empty(), "{refused:?}");
        e.assert_alive();
        e.stop_controller().await;
    });
}

/// Issue 18, bug 4: 4 pods, none ready. A real API server omits `readyReplicas` at 0 (as the test
/// API server now does); the snapshot must say ready 0, starting 4, not ready 4.
#[test]
fn a_workload_with_no_ready_pod_reads_as_0_ready() {
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("cold", 4, 0).await;
        let d: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
        let st = d.get("cold").await.unwrap().status.unwrap();
        assert_eq!(
            (st.replicas, st.ready_replicas),
            (Some(4), None),
            "omitted, as Kubernetes does"
        );
        e.rla("cold", "cold", json!({"mode": "Shadow"})).await;
        e.start_controller(None).await;
        let t = Instant::now();
        let line = loop {
            let log =
                std::fs::read_to_string(e.dir.path().join("decisions.jsonl")).unwrap_or_default();
            if let Some(l) = log
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|l| l["kind"] == "decision" && l["name"] == "cold")
            {
                break l;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "no decision");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(line["snapshot"]["ready_replicas"], 0, "{line}");
        assert_eq!(line["snapshot"]["starting_replicas"], 4, "{line}");
        e.stop_controller().await;
    });
}

/// Issue 18, bugs 7 and 6, on one object. An HPA whose controller has not written its status yet
/// (the API server's zero value, `desiredReplicas: 0`) is no recommendation: not recorded, no
/// divergence. Once written, it is. Then Shadow → Active deletes the HPA fields from the status
/// (explicit nulls in the merge patch: left out, they stayed forever).
#[test]
fn an_unsynced_hpa_is_ignored_and_active_mode_clears_the_hpa_fields() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("cmp", 2, 2).await;
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(e.client.clone(), "default");
        let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "cmp", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cmp"},
                     "minReplicas": 1, "maxReplicas": 12},
        }))
        .unwrap();
        hpas.create(&PostParams::default(), &h).await.unwrap();
        e.rla("cmp", "cmp", json!({"mode": "Shadow"})).await;
        e.start_controller(None).await;
        e.wait_condition("cmp", "Ready", "True", "Reconciled").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let st = e.rla_api().get("cmp").await.unwrap().data["status"].clone();
        assert!(st["hpaDesiredReplicas"].is_null(), "{st}");
        assert!(st["divergence"].is_null(), "{st}");
        assert!(st["hpaRecomputedReplicas"].is_u64(), "{st}");
        let ready = e.condition("cmp", "Ready").await.unwrap();
        assert!(ready["message"].as_str().unwrap().contains("has not synced"), "{ready}");
        let log = std::fs::read_to_string(e.dir.path().join("decisions.jsonl")).unwrap();
        for l in log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()) {
            if l["kind"] == "decision" {
                assert!(l["hpa_desired_replicas"].is_null(), "{l}");
            }
        }
        let text = e.metrics().await;
        assert!(!text.contains(r#"name="cmp",source="hpa"}"#), "{text}");
        // The HPA controller syncs: now it is compared.
        hpas.patch_status(
            "cmp",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentReplicas": 2, "desiredReplicas": 5,
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await
        .unwrap();
        let t = Instant::now();
        let st = loop {
            let st = e.rla_api().get("cmp").await.unwrap().data["status"].clone();
            if st["hpaDesiredReplicas"] == 5 && st["divergence"]["samples"].as_u64().unwrap_or(0) >= 1 {
                break st;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{st}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(st["hpaRecomputedReplicas"].is_u64(), "{st}");
        // Shadow → Active: the HPA fields go.
        e.rla_api()
            .patch("cmp", &PatchParams::default(), &Patch::Merge(json!({"spec": {"mode": "Active"}})))
            .await
            .unwrap();
        let t = Instant::now();
        loop {
            let st = e.rla_api().get("cmp").await.unwrap().data["status"].clone();
            let active = st["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| c["type"] == "Ready" && c["message"].as_str().unwrap_or("").starts_with("Active mode"))
            });
            if active {
                for k in ["hpaDesiredReplicas", "hpaRecomputedReplicas", "divergence"] {
                    assert!(st.get(k).is_none(), "{k} stayed after Shadow → Active: {st}");
                }
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{st}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        e.stop_controller().await;
    });
}

/// Issue 18: during an API-server outage the controller logged one ERROR and two WARNs per object
/// every 5 s. Repeated failure lines are now rate-limited per object and kind of failure (the first,
/// then one a minute with a `suppressed` count: `rlscale_controller::loglimit`), and kube-client's own
/// ERROR per failed request is off. The controller runs as its own process (its log is its stderr)
/// over two objects at a 1 s interval; every API request fails with a 503 for 30 s, then the server
/// answers again and the controller scales without a restart. With the limiter off (a period of 0)
/// this test fails: each object's two lines came 3 and 4 times in the 30 s.
#[test]
fn an_api_server_outage_logs_each_failure_once_per_object() {
    runtime().block_on(async {
        let e = env().await;
        for name in ["oa", "ob"] {
            e.deployment(name, 2, 2).await;
            e.rla(name, name, json!({})).await;
        }
        let kubeconfig = e.dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, e.api.kubeconfig_yaml("default")).unwrap();
        let port = free_port().unwrap();
        let metrics = format!("127.0.0.1:{port}");
        let controller = Proc::spawn(
            "controller-outage",
            &[
                "controller",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--namespace",
                "default",
                "--metrics-addr",
                &metrics,
                "--reconcile-timeout",
                "2s",
            ],
            e.dir.path(),
        );
        for name in ["oa", "ob"] {
            e.wait_scale_writes(name, 1).await;
        }
        let before = controller.log().len();
        e.api.inject(Fault::status("", 503));
        tokio::time::sleep(Duration::from_secs(30)).await;
        let during = controller.log()[before..].to_string();
        e.api.clear_faults();
        // Back: a hand scale is corrected again, without a restart.
        let writes = e.scale_writes("oa").len();
        e.set_replicas("oa", 2).await;
        e.wait_scale_writes("oa", writes + 1).await;

        let records: Vec<Value> = during
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let level = |r: &Value| r["level"].as_str().unwrap_or_default().to_string();
        let loud: Vec<&Value> = records
            .iter()
            .filter(|r| matches!(level(r).as_str(), "WARN" | "ERROR"))
            .collect();
        let show = || {
            loud.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        // The outage was seen and said: each object's failure is logged.
        for name in ["default/oa", "default/ob"] {
            assert!(
                loud.iter().any(|r| r.to_string().contains(name)),
                "nothing logged about {name} during the outage:\n{}",
                show()
            );
        }
        // Each kind of line at most once per object (or once for the controller) in 30 s: the
        // limiter's period is a minute. Before, the same lines came at every retry (5 s apart).
        let mut seen = std::collections::BTreeMap::<(String, String), usize>::new();
        for r in &loud {
            let who = r["object"]
                .as_str()
                .or_else(|| r["span"]["object"].as_str())
                .unwrap_or("")
                .to_string();
            let what = r["message"].as_str().unwrap_or_default().to_string();
            *seen.entry((who, what)).or_default() += 1;
        }
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "repeated within the minute: {repeated:?}\n{}",
            show()
        );
        assert!(
            !during.contains("kube_client"),
            "kube-client's per-request ERROR is on:\n{during}"
        );
        drop(controller);
    });
}

/// Issue 18: a Warning whose text changes under the same reason folded into the first one, as the
/// `Scaled` Events did (bug 5): kube's Recorder keeps the first note and counts, and `warn_once`
/// publishes only when the text changes, so the new text was never shown. An RLAutoscaler aimed at a
/// missing Deployment, then at another missing one: two `TargetNotFound` Warnings, each naming its
/// own Deployment.
#[test]
fn a_changed_warning_is_a_new_event() {
    runtime().block_on(async {
        let mut e = env().await;
        e.rla("wt", "ghost-one", json!({})).await;
        e.start_controller(None).await;
        e.wait_condition("wt", "Ready", "False", "TargetNotFound")
            .await;
        e.wait_event("wt", "TargetNotFound").await;
        let patch = json!({"spec": {"scaleTargetRef": {"name": "ghost-two"}}});
        e.rla_api()
            .patch("wt", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let t = Instant::now();
        let notes = loop {
            let notes: Vec<String> = e
                .events("wt")
                .await
                .into_iter()
                .filter(|ev| ev.reason.as_deref() == Some("TargetNotFound"))
                .map(|ev| ev.note.unwrap_or_default())
                .collect();
            if notes.iter().any(|n| n.contains("ghost-two"))
                || t.elapsed() > Duration::from_secs(20)
            {
                break notes;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        e.stop_controller().await;
        for name in ["ghost-one", "ghost-two"] {
            assert_eq!(
                notes.iter().filter(|n| n.contains(name)).count(),
                1,
                "one Warning names {name}: {notes:?}"
            );
        }
        assert_eq!(notes.len(), 2, "{notes:?}");
    });
}

/// Issue 18, bug 5: kube's Recorder folds an Event into an earlier one of the same object, type,
/// reason and action (a `series` count, the earlier note kept). With one action for every scaling,
/// `kubectl describe` showed `2 → 10 replicas (x27)` for 27 different scalings. Each different
/// scaling must be an Event whose note states its own numbers; only the same scaling again may count
/// up. The Deployment starts at 2 and is set back by hand twice (to 3, then to 2 again).
#[test]
fn each_different_scaling_is_its_own_event() {
    runtime().block_on(async {
        let mut e = env().await;
        e.deployment("sc", 2, 2).await;
        e.rla("sc", "sc", json!({})).await;
        e.start_controller(None).await;
        let mut seen = 0;
        for by_hand in [3, 2] {
            seen = e.wait_scale_writes("sc", seen + 1).await;
            e.set_replicas("sc", by_hand).await;
        }
        e.wait_scale_writes("sc", seen + 1).await;
        // Let a last scale settle, then stop writing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        e.stop_controller().await;
        // Every successful write to the scale, in order (the test's own by hand, and the
        // controller's): each controller write scales from the size the write before it left.
        let mut size = 2;
        let mut scalings = Vec::new();
        for w in e.api.writes().into_iter().filter(|w| {
            w.subresource.as_deref() == Some("scale")
                && w.name.as_deref() == Some("sc")
                && w.status < 300
        }) {
            let to = w.body["spec"]["replicas"].as_i64().unwrap();
            if w.field_manager.as_deref() == Some(rlscale_controller::controller::FIELD_MANAGER) {
                scalings.push((size, to));
            }
            size = to;
        }
        assert!(scalings.len() >= 3, "{scalings:?}");
        let events: Vec<KEvent> = e
            .events("sc")
            .await
            .into_iter()
            .filter(|ev| ev.reason.as_deref() == Some("Scaled"))
            .collect();
        let notes: Vec<(String, i32)> = events
            .iter()
            .map(|ev| {
                let count = ev.series.as_ref().map_or(1, |s| s.count);
                (ev.note.clone().unwrap_or_default(), count)
            })
            .collect();
        let mut distinct = scalings.clone();
        distinct.sort();
        distinct.dedup();
        for (from, to) in &distinct {
            let said = format!(": {from} → {to} replicas;");
            let n = notes
                .iter()
                .filter(|(note, _)| note.contains(&said))
                .count();
            assert_eq!(
                n, 1,
                "scaling {from} → {to}: {n} Events say so; scalings {scalings:?}, Events {notes:?}"
            );
        }
        assert_eq!(events.len(), distinct.len(), "{scalings:?} {notes:?}");
        // The repeats count up: one count per scaling.
        let counted: i32 = notes.iter().map(|(_, c)| c).sum();
        assert_eq!(counted as usize, scalings.len(), "{scalings:?} {notes:?}");
    });
}
