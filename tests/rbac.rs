//! The deploy manifests (`deploy/`): the RBAC grants exactly what `rlscale controller` uses, the
//! controller's Deployment is locked down and probed, and the kustomization lists every manifest.
//!
//! The RBAC tests run the controller as a separate process against the in-repo test API server with
//! RBAC enforced (issue 18): `deploy/rbac.yaml`'s objects are applied to the server through kube's
//! client, and the controller's kubeconfig carries a bearer token that the server authenticates as the
//! controller's ServiceAccount (`system:serviceaccount:rlscale-system:rlscale-controller`). Whatever
//! the manifest does not grant is answered 403, as a cluster answers it; the test's own requests carry
//! no token and are the server's admin.
//!
//! - With the Deployment's environment (`POD_NAMESPACE`), the controller goes through every flow it
//!   has (Active with scale-ups: scale patches, a `Scaled` Event created and then patched as a series;
//!   Shadow with an HPA found by `hpaRef` and by its `scaleTargetRef`; `--leader-elect`: the Lease,
//!   released on SIGTERM) without a single 401 or 403. The set of (apiGroup, resource[/subresource],
//!   verb) it used must also equal the set the manifest grants: the server proves that nothing used
//!   is missing, this comparison that nothing granted is unused.
//! - Without `POD_NAMESPACE` or `--leader-election-namespace` (issue 18), the Lease goes to `default`,
//!   which the manifest does not grant: the server answers 403, and the controller says so once.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use rlscale_controller::RLAutoscaler;
use rlscale_testenv::prometheus::{PrometheusProcess, free_port};
use rlscale_testenv::{RequestRecord, TestApiServer, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::e2e::{Proc, create_deployment, repo, runtime, tail};

/// The controller's bearer token, which the server authenticates as its ServiceAccount.
const TOKEN: &str = "rlscale-controller-rbac-test";

fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// The YAML documents of a file, as JSON values (empty documents skipped).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The one document of `kind` in `file` (under `deploy/`).
fn one(file: &str, kind: &str) -> Value {
    let docs: Vec<Value> = yaml_docs(&deploy().join(file))
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(docs.len(), 1, "deploy/{file}: one {kind} expected");
    docs.into_iter().next().unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// One RBAC permission, as a rule spells it and as a request needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Permission {
    /// `resource` is `plural` or `plural/subresource`.
    Resource {
        group: String,
        resource: String,
        verb: String,
    },
    NonResource {
        url: String,
        verb: String,
    },
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Resource {
                group,
                resource,
                verb,
            } => {
                let g = if group.is_empty() { "core" } else { group };
                write!(f, "({g}, {resource}, {verb})")
            }
            Permission::NonResource { url, verb } => write!(f, "(nonResourceURL {url}, {verb})"),
        }
    }
}

/// What a request needs.
fn needed(r: &RequestRecord) -> Permission {
    if r.resource.is_empty() {
        return Permission::NonResource {
            url: r.path.clone(),
            verb: r.verb.clone(),
        };
    }
    Permission::Resource {
        group: r.group.clone(),
        resource: match &r.subresource {
            Some(s) => format!("{}/{s}", r.resource),
            None => r.resource.clone(),
        },
        verb: r.verb.clone(),
    }
}

/// Every permission one rule of a Role or ClusterRole grants (its lists expanded).
fn rule_grants(rule: &Value) -> Vec<Permission> {
    let mut out = vec![];
    for verb in strings(&rule["verbs"]) {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                out.push(Permission::Resource {
                    group: group.clone(),
                    resource,
                    verb: verb.clone(),
                });
            }
        }
        for url in strings(&rule["nonResourceURLs"]) {
            out.push(Permission::NonResource {
                url,
                verb: verb.clone(),
            });
        }
    }
    out
}

/// The controller's ServiceAccount: (namespace, name).
fn service_account() -> (String, String) {
    let sa = one("serviceaccount.yaml", "ServiceAccount");
    (
        sa["metadata"]["namespace"].as_str().unwrap().to_string(),
        sa["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

/// The user the controller's token authenticates as.
fn controller_user() -> User {
    let (ns, name) = service_account();
    User::service_account(&ns, &name)
}

/// Every permission `deploy/rbac.yaml` grants the controller's ServiceAccount. Checks on the way that
/// every role is bound to that ServiceAccount alone and that no rule uses a wildcard (the expansion
/// compares names, not patterns).
fn granted() -> BTreeSet<Permission> {
    let (sa_ns, sa_name) = service_account();
    let mut grants = BTreeSet::new();
    let mut roles = BTreeSet::new();
    let mut bound = BTreeSet::new();
    for d in yaml_docs(&deploy().join("rbac.yaml")) {
        let kind = d["kind"].as_str().unwrap();
        let name = d["metadata"]["name"].as_str().unwrap();
        let ns = d["metadata"]["namespace"].as_str();
        match kind {
            "ClusterRole" | "Role" => {
                assert_eq!(kind == "Role", ns.is_some(), "{kind} {name}: namespace");
                roles.insert(format!("{kind}/{name}"));
                for r in d["rules"].as_array().unwrap() {
                    let lists = ["apiGroups", "resources", "verbs", "nonResourceURLs"];
                    assert!(
                        lists
                            .iter()
                            .all(|l| strings(&r[l]).iter().all(|s| !s.contains('*'))),
                        "{kind} {name}: a wildcard in {r}"
                    );
                    grants.extend(rule_grants(r));
                }
            }
            "ClusterRoleBinding" | "RoleBinding" => {
                let subjects = d["subjects"].as_array().unwrap();
                assert_eq!(
                    subjects,
                    &vec![json!({"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns})],
                    "{kind} {name}: bound to the controller's ServiceAccount only"
                );
                let role_ref = &d["roleRef"];
                bound.insert(format!(
                    "{}/{}",
                    role_ref["kind"].as_str().unwrap(),
                    role_ref["name"].as_str().unwrap()
                ));
            }
            other => panic!("deploy/rbac.yaml: unexpected kind {other}"),
        }
    }
    assert_eq!(
        roles, bound,
        "every role is bound, and every binding names a role of rbac.yaml"
    );
    grants
}

/// Applies every document of `deploy/<file>` as `kubectl apply --server-side` would: each kind
/// resolved through discovery, each object server-side applied.
async fn apply(client: &kube::Client, file: &str) {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for doc in yaml_docs(&deploy().join(file)) {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = doc["kind"].as_str().unwrap();
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("deploy/{file}: the server does not serve {gvk:?}"));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"].as_str().unwrap();
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let name = doc["metadata"]["name"].as_str().unwrap();
        api.patch(name, &PatchParams::apply("rbac-test"), &Patch::Apply(&doc))
            .await
            .unwrap_or_else(|e| panic!("deploy/{file}: {kind} {name}: {e}"));
    }
}

/// Constant PromQL answers of a loaded service, so that every query succeeds against a Prometheus
/// that scrapes nothing.
fn loaded_queries() -> Value {
    json!({
        "arrivalRate1m": "vector(20)", "arrivalRate5m": "vector(20)",
        "queueDepth": "vector(60)", "running": "vector(6)",
        "gpuUtilization": "vector(0.97)", "kvCacheUsage": "vector(0.9)",
        "latencyP50": "vector(4)", "latencyP95": "vector(9)", "latencyP99": "vector(12)",
    })
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn rla_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &rlscale_controller::controller::resource(),
    )
}

async fn create_rla(client: &kube::Client, ns: &str, name: &str, spec: Value) {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .unwrap();
    rla_api(client, ns)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

/// A test API server as the manifests set up a cluster: the controller's namespace, the CRD and
/// `deploy/rbac.yaml` applied, and the controller's token registered as its ServiceAccount. Returns
/// the server and the test's own (admin) client.
async fn cluster_with_rbac() -> (TestApiServer, kube::Client) {
    let (sa_ns, _) = service_account();
    let api = TestApiServer::start().await.unwrap();
    // The test's client sends no Authorization header: the server's admin.
    let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
    create_namespace(&client, &sa_ns).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &RLAutoscaler::crd())
        .await
        .unwrap();
    apply(&client, "rbac.yaml").await;
    api.add_token(TOKEN, controller_user());
    (api, client)
}

/// The controller's kubeconfig (its bearer token) in `dir`.
fn controller_kubeconfig(api: &TestApiServer, dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, api.kubeconfig_yaml_with_token("default", TOKEN)).unwrap();
    path
}

/// The controller's requests so far: those carrying its token (authenticated as its ServiceAccount).
fn controller_requests(api: &TestApiServer) -> Vec<RequestRecord> {
    let bearer = format!("Bearer {TOKEN}");
    let user = controller_user().name;
    api.requests()
        .into_iter()
        .filter(|r| r.authorization.as_deref() == Some(bearer.as_str()))
        .inspect(|r| assert_eq!(r.user.as_deref(), Some(user.as_str()), "{r:?}"))
        .collect()
}

fn count(requests: &[RequestRecord], group: &str, resource: &str, verb: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.status < 300)
        .filter(|r| {
            needed(r)
                == Permission::Resource {
                    group: group.into(),
                    resource: resource.into(),
                    verb: verb.into(),
                }
        })
        .count()
}

/// Sends SIGTERM and waits (10 s at most) for the process to exit.
async fn terminate(controller: &mut Proc) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &controller.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    while controller.child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the controller did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_controller_runs_under_deploy_rbac_yaml_and_uses_exactly_what_it_grants() {
    let granted = granted();
    // The controller runs where the Deployment manifest puts it: its namespace is POD_NAMESPACE, where
    // the Lease goes.
    let own_ns = one("deployment.yaml", "Deployment")["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (api, client) = cluster_with_rbac().await;
        create_namespace(&client, "serving").await;
        let prometheus = PrometheusProcess::start_for_test(&[]);
        let spec = |target: &str, mode: &str| {
            json!({
                "scaleTargetRef": {"name": target},
                "minReplicas": 1, "maxReplicas": 12, "mode": mode, "interval": 1,
                "model": repo().join("models/default.json").to_str().unwrap(),
                "prometheus": {"serverAddress": prometheus.url, "timeoutSeconds": 2,
                               "queries": loaded_queries()},
                "serviceProfile": {"coldStartSeconds": 135, "capacityRps": 3, "gpusPerReplica": 1,
                                   "usdPerGpuHour": 0.8, "sloLatencySeconds": 10},
            })
        };
        // Active: `web` in default, at 2 replicas under `minReplicas: 3`: the bounds apply before any
        // policy, so every decision scales it up (the test scales it back down after each).
        create_deployment(&client, "default", "web", 2, 2).await;
        let mut active = spec("web", "Active");
        active["minReplicas"] = json!(3);
        create_rla(&client, "default", "web", active).await;
        // Shadow: `llm` in serving, beside its HPA; one RLAutoscaler names the HPA, one finds it.
        create_deployment(&client, "serving", "llm", 2, 2).await;
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "serving");
        let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "llm-hpa", "namespace": "serving"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"},
                     "minReplicas": 1, "maxReplicas": 12,
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": "vllm:num_requests_running"},
                                  "target": {"type": "AverageValue", "averageValue": "32"}}}]},
        }))
        .unwrap();
        hpas.create(&PostParams::default(), &h).await.unwrap();
        hpas.patch_status(
            "llm-hpa",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentReplicas": 2, "desiredReplicas": 4}})),
        )
        .await
        .unwrap();
        let mut by_ref = spec("llm", "Shadow");
        by_ref["hpaRef"] = json!("llm-hpa");
        create_rla(&client, "serving", "llm-by-ref", by_ref).await;
        create_rla(&client, "serving", "llm-by-target", spec("llm", "Shadow")).await;

        // RBAC is on: as the controller's ServiceAccount (another token, so that these requests are
        // not the controller's), a scale may be read, a Deployment not written.
        api.add_token("probe", controller_user());
        let probe = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml_with_token("default", "probe"))
                .unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        let theirs: Api<Deployment> =
            Api::namespaced(kube::Client::try_from(probe).unwrap(), "default");
        theirs.get_scale("web").await.unwrap();
        let refused = theirs
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 1}})),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, kube::Error::Api(s) if s.code == 403),
            "{refused}"
        );

        // The controller, with its ServiceAccount's token.
        let kubeconfig = controller_kubeconfig(&api, dir.path());
        let port = free_port().unwrap();
        let log = dir.path().join("decisions.jsonl");
        let mut controller = Proc::spawn_env(
            "controller",
            &[
                "controller",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--decision-log",
                log.to_str().unwrap(),
                "--leader-elect",
                "--lease-duration",
                "4s",
                "--renew-deadline",
                "3s",
                "--retry-period",
                "1s",
            ],
            dir.path(),
            &[("POD_NAME", "rlscale-controller-0"), ("POD_NAMESPACE", own_ns.as_str())],
        );

        // Until every flow has happened: scale-ups (the test scales `web` back to 2 after each, so
        // that the controller scales again and repeats its `Scaled` Event, which the Recorder then
        // patches), both shadow objects comparing with the HPA, and the Lease renewed. A refused
        // request fails at once, with what was refused.
        let start = Instant::now();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let mut seen_scale_writes = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let used = controller_requests(&api);
            let refused: Vec<String> = used
                .iter()
                .filter(|r| matches!(r.status, 401 | 403))
                .map(|r| format!("{} {}{} → {} {}", r.method, r.path, query(r), r.status, needed(r)))
                .collect();
            assert!(
                refused.is_empty(),
                "the API server refused the controller (deploy/rbac.yaml does not grant it):\n{}\n\
                 --- controller\n{}",
                refused.join("\n"),
                tail(&controller.log())
            );
            let scale_writes = count(&used, "apps", "deployments/scale", "patch");
            if scale_writes > seen_scale_writes {
                seen_scale_writes = scale_writes;
                deployments
                    .patch_scale(
                        "web",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"replicas": 2}})),
                    )
                    .await
                    .unwrap();
            }
            let mut shadow_done = true;
            for name in ["llm-by-ref", "llm-by-target"] {
                let o = rla_api(&client, "serving").get(name).await.unwrap();
                shadow_done &= o.data["status"]["hpaDesiredReplicas"] == 4;
            }
            let done = scale_writes >= 2
                && count(&used, "events.k8s.io", "events", "create") >= 1
                && count(&used, "events.k8s.io", "events", "patch") >= 1
                && count(&used, "coordination.k8s.io", "leases", "update") >= 1
                && shadow_done;
            if done {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "not every flow happened within 90 s: {scale_writes} scale writes, shadow done: \
                 {shadow_done}; the controller's requests:\n{}\n--- controller\n{}",
                summary(&used),
                tail(&controller.log())
            );
        }
        // SIGTERM: the controller releases the Lease (an update RBAC must allow too) and exits.
        terminate(&mut controller).await;

        let used = controller_requests(&api);
        let refused: Vec<&RequestRecord> = used
            .iter()
            .filter(|r| matches!(r.status, 401 | 403))
            .collect();
        assert!(
            refused.is_empty(),
            "refused: {refused:#?}\n--- controller\n{}",
            tail(&controller.log())
        );
        let text = controller.log();
        assert!(
            !text.to_lowercase().contains("forbid"),
            "the controller logged a refusal:\n{}",
            tail(&text)
        );
        let lease = api
            .cluster()
            .object("coordination.k8s.io", "leases", Some(&own_ns), "rlscale-controller")
            .expect("the Lease in the controller's namespace");
        assert_eq!(lease["spec"]["holderIdentity"], "", "released on SIGTERM");

        // Nothing granted is unused (a 403 would have shown anything used but not granted).
        let used_set: BTreeSet<Permission> = used.iter().map(needed).collect();
        let show = |ps: &mut dyn Iterator<Item = &Permission>| {
            ps.map(|p| p.to_string()).collect::<Vec<_>>()
        };
        let not_granted = show(&mut used_set.difference(&granted));
        let not_used = show(&mut granted.difference(&used_set));
        eprintln!(
            "the controller used: {}",
            show(&mut used_set.iter()).join(" ")
        );
        assert!(
            not_granted.is_empty() && not_used.is_empty(),
            "deploy/rbac.yaml does not match what the controller uses:\n\
             used but not granted: {not_granted:?}\n\
             granted but not used: {not_used:?}\n\
             the controller's requests:\n{}",
            summary(&used)
        );
    });
}

/// Issue 18: started without `POD_NAMESPACE` and without `--leader-election-namespace`, the controller
/// puts its Lease in `default`, where `deploy/rbac.yaml` grants no Leases. The API server refuses it
/// (403, the RBAC authorizer's message); the controller never leads, so it writes nothing, and it logs
/// the Lease's namespace and the 403 once, with what to set, however often it retries.
///
/// See: crates/controller/src/lease.rs (`forbidden_advice`), commit 4a1238b.
#[test]
fn issue_18_without_pod_namespace_the_lease_in_default_is_forbidden() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (api, _client) = cluster_with_rbac().await;
        let writes_before = api.writes().len();
        let kubeconfig = controller_kubeconfig(&api, dir.path());
        let port = free_port().unwrap();
        let mut controller = Proc::spawn_env_without(
            "controller",
            &[
                "controller",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--decision-log",
                dir.path().join("decisions.jsonl").to_str().unwrap(),
                "--leader-elect",
                "--lease-duration",
                "4s",
                "--renew-deadline",
                "3s",
                "--retry-period",
                "1s",
            ],
            dir.path(),
            &[("POD_NAME", "rlscale-controller-0")],
            &["POD_NAMESPACE"],
        );
        let refused_leases = |api: &TestApiServer| -> Vec<RequestRecord> {
            controller_requests(api)
                .into_iter()
                .filter(|r| r.resource == "leases" && r.status == 403)
                .collect()
        };
        // Until it has retried after its first 403 at least twice (retry period: 1 s).
        let start = Instant::now();
        while refused_leases(&api).len() < 3 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no three refused Lease requests within 60 s; the controller's requests:\n{}\n\
                 --- controller\n{}",
                summary(&controller_requests(&api)),
                tail(&controller.log())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        terminate(&mut controller).await;

        // Every Lease request went to `default` and was refused; the controller wrote nothing.
        let leases: Vec<RequestRecord> = controller_requests(&api)
            .into_iter()
            .filter(|r| r.resource == "leases")
            .collect();
        assert!(
            leases
                .iter()
                .all(|r| r.namespace.as_deref() == Some("default") && r.status == 403),
            "{}",
            summary(&leases)
        );
        assert_eq!(
            api.writes().len(),
            writes_before,
            "a refused request is no write"
        );

        // The log (JSON lines): the namespace at startup, then the 403 once, with the server's reason
        // and what to set.
        let text = controller.log();
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let field = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
        let startup: Vec<&Value> = records
            .iter()
            .filter(|r| field(r, "message").contains("neither --leader-election-namespace nor"))
            .collect();
        assert_eq!(startup.len(), 1, "the Lease's namespace, once:\n{text}");
        assert_eq!(
            (field(startup[0], "level"), field(startup[0], "namespace")),
            ("WARN".into(), "default".into())
        );
        let refusals: Vec<&Value> = records
            .iter()
            .filter(|r| (field(r, "message") + &field(r, "error")).contains("403"))
            .collect();
        assert_eq!(
            refusals.len(),
            1,
            "the 403 logged once in {} refusals:\n{text}",
            refused_leases(&api).len()
        );
        let r = refusals[0];
        assert_eq!(
            (field(r, "level"), field(r, "lease")),
            ("ERROR".into(), "default/rlscale-controller".into())
        );
        for needle in [
            "--leader-election-namespace",
            "POD_NAMESPACE",
            "deploy/rbac.yaml",
        ] {
            assert!(field(r, "message").contains(needle), "{needle} missing: {r}");
        }
        let user = controller_user().name;
        let reason = format!(
            "leases.coordination.k8s.io \"rlscale-controller\" is forbidden: User \"{user}\" cannot get \
             resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
        );
        assert!(field(r, "error").contains(&reason), "{r}");
    });
}

fn query(r: &RequestRecord) -> String {
    r.query
        .as_ref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default()
}

/// One line per distinct (method, path, verb) with its count, for failure messages.
fn summary(requests: &[RequestRecord]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in requests {
        *counts
            .entry(format!(
                "{} {} [{}] {}",
                r.method,
                r.path,
                r.status,
                needed(r)
            ))
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("  {n:>4} × {k}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_controller_deployment_is_locked_down_probed_and_runs_the_documented_flags() {
    let d = one("deployment.yaml", "Deployment");
    let (sa_ns, sa_name) = service_account();
    assert_eq!(d["metadata"]["namespace"], sa_ns.as_str());
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa_name.as_str());
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&d["spec"]["selector"]["matchLabels"], labels);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // Flags: the documented command line, and the binary accepts it (it gets as far as reading the
    // kubeconfig).
    // The image runs `rlscale-controller` (crates/controller/tests/slim_binary.rs runs these flags
    // through it); `rlscale controller` parses the same `rlscale_controller::cli::Args`.
    let args = strings(&c["args"]);
    assert_eq!(
        args,
        [
            "--leader-elect",
            "--metrics-addr",
            "0.0.0.0:8080",
            "--decision-log",
            "/var/log/rlscale/decisions.jsonl"
        ]
    );
    let mut with_kubeconfig: Vec<&str> = ["controller"].into();
    with_kubeconfig.extend(args.iter().map(String::as_str));
    with_kubeconfig.extend(["--kubeconfig", "/nonexistent/kubeconfig"]);
    let out = crate::util::rlscale(&with_kubeconfig);
    let (_, stderr) = crate::util::text(&out);
    assert!(
        !out.status.success() && stderr.contains("/nonexistent/kubeconfig"),
        "the manifest's flags: {stderr}"
    );

    // The downward API: the Event reporter instance and leader-election identity, the Lease namespace.
    for (var, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let e = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var)
            .unwrap_or_else(|| panic!("no {var}"));
        assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], field, "{var}");
    }

    // Security: the container's own settings, or the pod's where Kubernetes inherits them.
    let csc = &c["securityContext"];
    let psc = &pod["securityContext"];
    assert!(
        csc["runAsNonRoot"] == true || psc["runAsNonRoot"] == true,
        "runAsNonRoot"
    );
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
    assert!(csc.get("privileged").is_none_or(|p| p == false));
    assert!(
        csc["seccompProfile"]["type"] == "RuntimeDefault"
            || (csc["seccompProfile"].is_null()
                && psc["seccompProfile"]["type"] == "RuntimeDefault"),
        "seccompProfile RuntimeDefault"
    );
    for sc in [csc, psc] {
        assert!(sc["runAsUser"].as_u64().is_none_or(|u| u > 0), "uid 0");
    }

    // Probes on the metrics port (a port name resolves to the container port).
    let port_of = |p: &Value| -> u64 {
        match p {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|cp| cp["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
                .as_u64()
                .unwrap(),
            _ => panic!("port {p}"),
        }
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let g = &c[probe]["httpGet"];
        assert_eq!(g["path"], path, "{probe}");
        assert_eq!(port_of(&g["port"]), 8080, "{probe}");
    }

    // Resources: requests and limits; the memory limit leaves room over the 64 MiB RSS target.
    for kind in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][kind][r].is_string(), "resources.{kind}.{r}");
        }
    }
    let mib = |q: &str| -> u64 {
        match (q.strip_suffix("Mi"), q.strip_suffix("Gi")) {
            (Some(m), _) => m.parse().unwrap(),
            (_, Some(g)) => g.parse::<u64>().unwrap() * 1024,
            _ => panic!("memory {q}: write it in Mi or Gi"),
        }
    };
    let limit = mib(c["resources"]["limits"]["memory"].as_str().unwrap());
    assert!(limit >= 64, "memory limit {limit} MiB");

    // The decision log goes to a writable emptyDir (the root filesystem is read-only).
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/log/rlscale")
        .expect("a volume at /var/log/rlscale");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert!(volume["emptyDir"].is_object(), "{volume}");
    assert_ne!(mount["readOnly"], true);

    // Spread across nodes.
    let spread = pod["topologySpreadConstraints"]
        .as_array()
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t["topologyKey"] == "kubernetes.io/hostname")
        });
    let anti = !pod["affinity"]["podAntiAffinity"].is_null();
    assert!(
        spread || anti,
        "no topology spread or anti-affinity across nodes"
    );

    // The Service for /metrics selects these pods, on a port named `metrics`.
    let svc = one("service.yaml", "Service");
    assert_eq!(svc["metadata"]["namespace"], sa_ns.as_str());
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "Service selector {k}");
    }
    let p = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics");
    assert_eq!(port_of(&p["targetPort"]), 8080);
}

#[derive(Deserialize)]
struct Kustomization {
    namespace: String,
    resources: Vec<String>,
}

#[test]
fn the_kustomization_lists_every_manifest_in_one_namespace() {
    let k: Kustomization =
        serde_json::from_value(yaml_docs(&deploy().join("kustomization.yaml")).remove(0)).unwrap();
    // The example is applied on its own, in the serving namespace, once the CRD is established.
    const NOT_LISTED: [&str; 2] = ["kustomization.yaml", "rlautoscaler-shadow-example.yaml"];
    let mut files: Vec<String> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        .filter(|f| !NOT_LISTED.contains(&f.as_str()))
        .collect();
    files.sort();
    let mut listed = k.resources.clone();
    listed.sort();
    assert_eq!(
        listed, files,
        "kustomization.yaml resources vs deploy/*.yaml"
    );

    // One namespace throughout, so that the manifests mean the same with and without kustomize.
    assert_eq!(
        one("namespace.yaml", "Namespace")["metadata"]["name"],
        k.namespace.as_str()
    );
    for f in &k.resources {
        for d in yaml_docs(&deploy().join(f)) {
            let kind = d["kind"].as_str().unwrap();
            let cluster_scoped = matches!(
                kind,
                "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
            );
            if !cluster_scoped {
                assert_eq!(
                    d["metadata"]["namespace"],
                    k.namespace.as_str(),
                    "{f}: {kind}"
                );
            }
            for s in d["subjects"].as_array().into_iter().flatten() {
                assert_eq!(s["namespace"], k.namespace.as_str(), "{f}: {kind} subject");
            }
        }
    }
}

#[test]
fn the_image_ships_the_model_the_example_points_at() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let example = one("rlautoscaler-shadow-example.yaml", "RLAutoscaler");
    let model = example["spec"]["model"].as_str().unwrap();
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("COPY models/default.json {model}")),
        "the Dockerfile copies models/default.json to {model}"
    );
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for p in ["target", "runs", ".git"] {
        assert!(ignore.lines().any(|l| l.trim() == p), ".dockerignore: {p}");
    }
}

/// `deploy/shadow-log-pvc/`: the overlay that keeps the decision log on a PersistentVolumeClaim. Its
/// patch, merged as kustomize merges it (strategic merge by the container's and the volume's names),
/// gives a Deployment whose decision-log volume is the overlay's claim, whose flags are the base's
/// but for a per-pod log file, and whose binary accepts those flags.
#[test]
fn the_shadow_log_overlay_puts_the_decision_log_on_a_claim() {
    let dir = deploy().join("shadow-log-pvc");
    let k = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(strings(&k["resources"]), ["../", "pvc.yaml"]);
    assert_eq!(k["patches"][0]["path"], "deployment-patch.yaml");
    for f in std::fs::read_dir(&dir).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["kustomization.yaml", "pvc.yaml", "deployment-patch.yaml"].contains(&name.as_str()),
            "deploy/shadow-log-pvc/{name} is not in the kustomization"
        );
    }

    let base = one("deployment.yaml", "Deployment");
    let patch = yaml_docs(&dir.join("deployment-patch.yaml")).remove(0);
    let pvc = yaml_docs(&dir.join("pvc.yaml")).remove(0);
    assert_eq!(pvc["kind"], "PersistentVolumeClaim");
    assert_eq!(pvc["metadata"]["namespace"], base["metadata"]["namespace"]);
    assert!(pvc["spec"]["resources"]["requests"]["storage"].is_string());
    // The patch finds its target.
    assert_eq!(patch["kind"], base["kind"]);
    assert_eq!(patch["metadata"]["name"], base["metadata"]["name"]);
    assert_eq!(
        patch["metadata"]["namespace"],
        base["metadata"]["namespace"]
    );
    let (bpod, ppod) = (
        &base["spec"]["template"]["spec"],
        &patch["spec"]["template"]["spec"],
    );
    let bc = &bpod["containers"][0];
    let pc = &ppod["containers"][0];
    assert_eq!(pc["name"], bc["name"]);
    // The volume the base mounts at /var/log/rlscale becomes the claim (emptyDir deleted).
    let mount = bc["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/log/rlscale")
        .unwrap();
    let pv = &ppod["volumes"][0];
    assert_eq!(pv["name"], mount["name"]);
    assert!(pv["emptyDir"].is_null() && pv.as_object().unwrap().contains_key("emptyDir"));
    assert_eq!(
        pv["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    // The flags: the base's, with the log file named after the pod (an env var of the container).
    let (bargs, pargs) = (strings(&bc["args"]), strings(&pc["args"]));
    assert_eq!(bargs.len(), pargs.len());
    for (b, p) in bargs.iter().zip(&pargs) {
        if b.ends_with(".jsonl") {
            assert_eq!(p, "/var/log/rlscale/$(POD_NAME).jsonl");
        } else {
            assert_eq!(b, p);
        }
    }
    assert!(
        bc["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "POD_NAME"),
        "$(POD_NAME) needs the env var"
    );
    // The binary accepts them, the kubelet's expansion done.
    let mut args: Vec<String> = vec!["controller".into()];
    args.extend(
        pargs
            .iter()
            .map(|a| a.replace("$(POD_NAME)", "rlscale-controller-0")),
    );
    args.extend(["--kubeconfig".into(), "/nonexistent/kubeconfig".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = crate::util::rlscale(&argv);
    let (_, stderr) = crate::util::text(&out);
    assert!(
        !out.status.success() && stderr.contains("/nonexistent/kubeconfig"),
        "the overlay's flags: {stderr}"
    );
}
