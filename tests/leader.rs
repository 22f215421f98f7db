//! Leader election with two `rlscale controller --leader-elect` processes against the in-repo test API
//! server and a real Prometheus: only the holder of the Lease reconciles and writes; when the leader is
//! killed the standby takes over within the lease duration (plus one retry period); on SIGTERM the
//! leader releases the Lease and exits 0; the write log shows no scale applied twice.
//!
//! The Prometheus queries are constant PromQL expressions (`vector(20)`, ...) evaluated by the real
//! Prometheus: load high enough that the target is scaled up from 2. The test itself scales the
//! Deployment back to 2 now and then (field manager `test`), so that there is scaling work throughout.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rlscale_controller::RLAutoscaler;
use rlscale_testenv::TestApiServer;
use rlscale_testenv::prometheus::{PrometheusProcess, free_port};
use serde_json::{Value, json};

use crate::e2e::{Proc, create_deployment, repo, runtime, tail};

const LEASE_S: f64 = 3.0;
const RETRY_S: f64 = 0.5;

async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get_opt("rlscale-controller")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn decisions(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "decision")
        .collect()
}

fn now_s() -> f64 {
    rlscale_controller::controller::wall_clock()
}

#[test]
fn one_leader_writes_the_standby_takes_over_and_sigterm_releases() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let api = TestApiServer::start().await.unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig, "default").unwrap();
        let client =
            kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &RLAutoscaler::crd())
            .await
            .unwrap();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        create_deployment(&client, "default", "web", 2, 2).await;
        let prometheus = PrometheusProcess::start_for_test(&[]);
        let rla: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "minReplicas": 1, "maxReplicas": 30, "mode": "Active", "interval": 1,
                "model": repo().join("models/default.json").to_str().unwrap(),
                "prometheus": {"serverAddress": prometheus.url, "timeoutSeconds": 2, "queries": {
                    "arrivalRate1m": "vector(12)", "arrivalRate5m": "vector(12)",
                    "queueDepth": "vector(8)", "running": "vector(6)",
                    "gpuUtilization": "vector(0.97)", "kvCacheUsage": "vector(0.9)",
                    "latencyP50": "vector(4)", "latencyP95": "vector(9)", "latencyP99": "vector(12)"}},
                "serviceProfile": {"coldStartSeconds": 135, "capacityRps": 3, "gpusPerReplica": 1,
                                   "usdPerGpuHour": 0.8, "sloLatencySeconds": 10},
            },
        }))
        .unwrap();
        Api::<DynamicObject>::namespaced_with(
            client.clone(),
            "default",
            &rlscale_controller::controller::resource(),
        )
        .create(&PostParams::default(), &rla)
        .await
        .unwrap();

        let kc = kubeconfig.to_str().unwrap().to_string();
        let spawn = |id: &str| {
            let port = free_port().unwrap();
            let log = dir.path().join(format!("decisions-{id}.jsonl"));
            let p = Proc::spawn_env(
                id,
                &[
                    "controller",
                    "--kubeconfig",
                    &kc,
                    "--metrics-addr",
                    &format!("127.0.0.1:{port}"),
                    "--decision-log",
                    log.to_str().unwrap(),
                    "--leader-elect",
                    "--lease-duration",
                    &format!("{LEASE_S}s"),
                    "--renew-deadline",
                    "2s",
                    "--retry-period",
                    &format!("{}ms", RETRY_S * 1000.0),
                ],
                dir.path(),
                &[("POD_NAME", id), ("POD_NAMESPACE", "default")],
            );
            (p, log, format!("http://127.0.0.1:{port}"))
        };
        let reset = |replicas: i32| {
            let deployments = deployments.clone();
            async move {
                deployments
                    .patch_scale(
                        "web",
                        &PatchParams {
                field_manager: Some("test".into()),
                ..Default::default()
            },
                        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                    )
                    .await
                    .unwrap();
            }
        };
        async fn wait_for_holder(client: &kube::Client, who: &str, limit: Duration) -> Duration {
            let t = Instant::now();
            while t.elapsed() < limit {
                if lease_holder(client).await.as_deref() == Some(who) {
                    return t.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{who} did not take the lease within {limit:?}");
        }

        // A leads; B stands by.
        let (mut a, a_log, a_url) = spawn("ctl-a");
        wait_for_holder(&client, "ctl-a", Duration::from_secs(20)).await;
        let (b, b_log, b_url) = spawn("ctl-b");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reset(2).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(lease_holder(&client).await.as_deref(), Some("ctl-a"));
        assert!(
            decisions(&b_log).is_empty(),
            "the standby decided:\n{}",
            tail(&b.log())
        );
        let a_decisions = decisions(&a_log);
        assert!(a_decisions.len() >= 5, "{}", tail(&a.log()));
        // Both are ready (the standby is healthy); only A reports leading.
        for (url, leading) in [(&a_url, 1), (&b_url, 0)] {
            assert_eq!(reqwest::get(format!("{url}/readyz")).await.unwrap().status(), 200);
            let m = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
            assert!(
                m.contains(&format!(
                    "rlscale_leader_election_master_status{{name=\"rlscale-controller\"}} {leading}"
                )),
                "{m}"
            );
        }

        // Kill A (no chance to release): B takes over within the lease duration plus a retry.
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        let killed_at = now_s();
        let takeover = wait_for_holder(&client, "ctl-b", Duration::from_secs(15)).await;
        eprintln!("takeover after SIGKILL: {takeover:?}");
        assert!(
            takeover.as_secs_f64() <= LEASE_S + 2.0 * RETRY_S + 0.5,
            "takeover took {takeover:?}"
        );
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reset(2).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b_decisions = decisions(&b_log);
        assert!(!b_decisions.is_empty(), "B never decided:\n{}", tail(&b.log()));
        let b_first = b_decisions[0]["time"].as_f64().unwrap();
        assert!(b_first >= killed_at, "B decided before A died");
        // A made no decision after it was killed (sanity of the attribution below).
        assert!(decisions(&a_log).iter().all(|l| l["time"].as_f64().unwrap() <= killed_at));

        // The write log: every controller scale write is one that a process logged as its own
        // (scaled: true), and no two consecutive controller writes set the same size: nothing was
        // applied twice.
        let writes: Vec<_> = api
            .writes()
            .into_iter()
            .filter(|w| w.subresource.as_deref() == Some("scale") && w.status < 300)
            .collect();
        let ours: Vec<_> = writes
            .iter()
            .filter(|w| w.field_manager.as_deref() == Some(rlscale_controller::controller::FIELD_MANAGER))
            .collect();
        let logged = decisions(&a_log)
            .iter()
            .chain(decisions(&b_log).iter())
            .filter(|l| l["scaled"] == true)
            .count();
        assert_eq!(ours.len(), logged, "scale writes vs logged scale decisions");
        assert!(
            ours.len() >= 4,
            "expected scaling work under both leaders: {}; A's last decision {}",
            ours.len(),
            a_decisions.last().unwrap()
        );
        let mut last: Option<i64> = None;
        for w in &writes {
            let to = w.body["spec"]["replicas"].as_i64();
            if w.field_manager.as_deref() == Some("test") {
                last = None;
            } else {
                assert!(to.is_some() && to != last, "replicas {to:?} written twice in a row: {writes:#?}");
                last = to;
            }
        }

        // SIGTERM: B releases the Lease and exits 0; a new candidate takes it at once.
        let mut b = b;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &b.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let t = Instant::now();
        let code = loop {
            if let Some(code) = b.child.try_wait().unwrap() {
                break code;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "B did not exit on SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(code.success(), "B exited with {code}:\n{}", tail(&b.log()));
        assert_eq!(lease_holder(&client).await.as_deref(), Some(""), "B did not release");
        let (_c, _, _) = spawn("ctl-c");
        let after_release = wait_for_holder(&client, "ctl-c", Duration::from_secs(10)).await;
        eprintln!("takeover after release: {after_release:?}");
        assert!(
            after_release.as_secs_f64() < LEASE_S,
            "a released lease was taken only after {after_release:?}"
        );
        drop(prometheus);
    });
}
