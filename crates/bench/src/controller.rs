//! `rlscale bench --controller N`: one controller process managing N RLAutoscalers, for BENCHMARKS.md.
//! The CLI parses the flags ([`ControllerArgs`]), resolves the model and writes `--out`; this module is
//! the harness.
//!
//! # Layout
//!
//! This process runs the in-repo test API server (`rlscale-testenv`), a Prometheus-API-compatible
//! responder and a stand-in kubelet; the controller runs as a child process (`rlscale controller`, this
//! executable), so that the CPU time and memory /proc shows for it are its own.
//!
//! 1. Setup: the CRD; N Deployments `bench-00000`, `bench-00001`, … with `status.readyReplicas`; in
//!    shadow mode N HPAs with `status.desiredReplicas`; N RLAutoscalers of the same names using
//!    `models/default.json`, at `--interval` seconds: before the controller starts (as after a
//!    restart), or with `--stagger` one by one over the first interval after it started.
//! 2. Warm-up: until every object has a decision in the controller's decision log. The first reconciles
//!    all start at once, when the controller's watch lists the objects.
//! 3. The window (`--for`): the controller's CPU (utime + stime of /proc/PID/stat), RSS (VmRSS sampled
//!    every second, VmHWM), reconcile latency (its /metrics histograms, and per reconcile from its logs)
//!    and the decisions per object.
//!
//! # Prometheus
//!
//! The responder answers `GET /api/v1/query` for the controller's default queries (`crd.rs`): it finds
//! the field by rebuilding each default query for the namespace and target named in the query, and
//! answers one sample from a demand curve per target (a sine around a per-target mean, with its own
//! phase) and the target's ready replicas. A real Prometheus would have to scrape about 20k series
//! (1000 targets × gauges, counters and histogram buckets) and answer 9 × 1000 / 15 = 600 range-function
//! and regex-matcher queries per second on the same 2 cores as the controller and the API server; the
//! controller's share would then mostly measure Prometheus's CPU contention.
//!
//! # Latency without Prometheus, per reconcile
//!
//! The decision log's `time` is when a reconcile started (the controller reads its clock once, first);
//! the JSON log line `"decision"` is written at its end (after the status write). The responder records
//! when each query arrived and when its answer was ready; the span from the first arrival to the last
//! answer among an object's queries inside one reconcile is that reconcile's Prometheus share.
//! Reconcile − span counts the controller's own request building and response parsing (and any wait
//! for a core) as controller time, so it errs high.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rlscale_controller::RLAutoscaler;
use rlscale_controller::controller::wall_clock;
use rlscale_controller::crd::{Field, POD_NAME_SUFFIX};
use rlscale_eval::shadow::log::parse_time;
use rlscale_testenv::TestApiServer;
use serde::{Deserialize, Serialize};
use serde_json::json;

use rlscale_controller::cli::BadInput;

/// The namespace every object lives in.
const NS: &str = "default";
/// `spec.serviceProfile.capacityRps` of every RLAutoscaler, requests/s per replica.
const CAPACITY_RPS: f64 = 4.0;
/// `spec.maxReplicas`.
const MAX_REPLICAS: u32 = 16;
/// Period of the demand curves, seconds.
const DEMAND_PERIOD_S: f64 = 300.0;
/// How often the stand-in kubelet marks wanted replicas ready, seconds.
const KUBELET_PERIOD_S: f64 = 2.0;
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks: 100 per second on every Linux architecture
/// rlscale builds for (the value `getconf CLK_TCK` prints; reading it needs libc, and we forbid unsafe).
const TICKS_PER_S: f64 = 100.0;
/// Goals of issue #7.
const GOAL_RSS_MIB: f64 = 64.0;
const GOAL_P99_MS: f64 = 50.0;

/// Active or shadow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// The controller scales the Deployments.
    Active,
    /// The controller records beside one HPA per Deployment.
    Shadow,
}

impl BenchMode {
    fn spec(self) -> &'static str {
        match self {
            BenchMode::Active => "Active",
            BenchMode::Shadow => "Shadow",
        }
    }
}

/// Options of `rlscale bench --controller N`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// With --controller: Active (the controller scales the Deployments) or Shadow (beside an HPA each).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value = "active",
        requires = "controller"
    )]
    pub mode: BenchMode,

    /// With --controller: how long to measure after the warm-up (`90`, `90s`, `2m`).
    #[arg(long = "for", default_value = "2m", value_parser = parse_duration, value_name = "DURATION", requires = "controller")]
    pub duration: Duration,

    /// With --controller: `spec.interval` of every RLAutoscaler, whole seconds from 1 to 3600 (`15`,
    /// `15s`, `1m`).
    #[arg(long, default_value = "15", value_parser = parse_interval, value_name = "DURATION", requires = "controller")]
    pub interval: u32,

    /// With --controller --mode shadow: set `spec.hpaRef` (the controller then gets its HPA by name
    /// instead of listing the namespace's HPAs on every reconcile).
    #[arg(long, requires = "controller")]
    pub hpa_ref: bool,

    /// With --controller: create the RLAutoscalers one by one over one interval after the controller
    /// has started. Default: they all exist before it starts, as after a controller restart or a
    /// leader change, so their first reconciles come in one burst (at most 32 at once). From its second
    /// decision on, each object decides at its own phase of the interval either way.
    #[arg(long, requires = "controller")]
    pub stagger: bool,

    /// With --controller: the controller's --max-concurrent-reconciles [default: the controller's, 32].
    #[arg(long, value_name = "N", requires = "controller")]
    pub max_concurrent_reconciles: Option<u16>,

    /// With --controller: the controller binary to measure: a file named `rlscale` runs as
    /// `rlscale controller FLAGS`, any other (e.g. `target/release/rlscale-controller`, the slim one
    /// the image ships) as `FILE FLAGS` [default: this `rlscale`, as `rlscale controller`].
    #[arg(long, value_name = "FILE", requires = "controller")]
    pub controller_bin: Option<PathBuf>,

    /// With --controller: the model file of every RLAutoscaler [default: models/default.json].
    #[arg(long, value_name = "FILE", requires = "controller")]
    pub model: Option<PathBuf>,

    /// With --controller: folder for the kubeconfig, the decision log and the controller's log.
    #[arg(
        long,
        default_value = "runs/bench-controller",
        value_name = "DIR",
        requires = "controller"
    )]
    pub dir: PathBuf,

    /// With --controller: write the summary as JSON to this file.
    #[arg(long, value_name = "FILE", requires = "controller")]
    pub out: Option<PathBuf>,

    /// With --controller: give up when the warm-up (two decisions of every object) takes longer
    /// (`300s`, `5m`).
    #[arg(
        long,
        default_value = "5m",
        value_parser = parse_duration,
        value_name = "DURATION",
        requires = "controller"
    )]
    pub warmup_timeout: Duration,
}

/// `--interval`: a duration of whole seconds in 1..=3600, as `spec.interval` takes it.
fn parse_interval(text: &str) -> Result<u32, String> {
    let d = rlscale_controller::cli::parse_duration(text)?;
    let s = d.as_secs_f64();
    if s.fract() != 0.0 || !(1.0..=3600.0).contains(&s) {
        return Err(format!(
            "{text:?}: spec.interval is whole seconds from 1 to 3600"
        ));
    }
    Ok(s as u32)
}

/// A positive duration, in `rlscale controller`'s grammar (`500ms`, `15s`, `2m`, bare seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = rlscale_controller::cli::parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("{text:?}: the duration must be > 0"));
    }
    Ok(d)
}

fn object_name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Mean arrival rate of target `i`, requests/s: 2–38, so that 1–16 replicas are wanted.
fn mean_demand(i: u32) -> f64 {
    2.0 + f64::from((i * 7919) % 37)
}

/// Replicas target `i` starts with: its mean demand at 60 % of capacity, so that the model sees
/// loads like those it was trained on from the first decision.
fn initial_replicas(i: u32) -> u32 {
    ((mean_demand(i) / (0.6 * CAPACITY_RPS)).ceil() as u32).clamp(1, MAX_REPLICAS)
}

// ---------------------------------------------------------------------------------------------------
// The Prometheus responder.

/// One query as the responder saw it.
#[derive(Debug, Clone, Copy)]
struct QueryRecord {
    /// Target index.
    target: u32,
    /// Unix seconds when the request reached the handler.
    arrived: f64,
    /// Unix seconds when its answer was ready.
    answered: f64,
}

/// Answers the controller's default queries, per target.
struct Responder {
    targets: usize,
    /// Unix seconds: the phase origin of the demand curves.
    origin: f64,
    /// Ready replicas by target index (kept by the stand-in kubelet).
    ready: Mutex<Vec<u32>>,
    records: Mutex<Vec<QueryRecord>>,
}

impl Responder {
    /// Arrival rate of target `i` at `t` (Unix seconds), requests/s: a sine of ±50 % around a mean of
    /// 2–38 req/s (so 1–10 replicas), each target with its own mean and phase.
    fn demand(&self, i: u32, t: f64) -> f64 {
        let mean = mean_demand(i);
        let phase = f64::from(i) * 2.399_963; // the golden angle: phases spread evenly
        mean * (1.0
            + 0.5 * (std::f64::consts::TAU * (t - self.origin) / DEMAND_PERIOD_S + phase).sin())
    }

    /// The value of `field` for target `i` with `ready` replicas at `t`.
    fn value(&self, field: Field, i: u32, ready: u32, t: f64) -> f64 {
        let rate = self.demand(i, t);
        let cap = CAPACITY_RPS * f64::from(ready.max(1));
        let load = (rate / cap).min(1.0);
        let queue = ((rate - cap) * 20.0).max(0.0);
        match field {
            Field::ArrivalRate1m => rate,
            Field::ArrivalRate5m => 0.5 * (rate + self.demand(i, t - 120.0)),
            Field::QueueDepth => queue.round(),
            Field::Running => (rate.min(cap) * 4.0).round(),
            Field::GpuUtilization => 0.1 + 0.85 * load,
            Field::KvCacheUsage => 0.9 * load,
            Field::LatencyP50 => 2.0 + 3.0 * load + queue / cap,
            Field::LatencyP95 => 4.0 + 10.0 * load * load + queue / cap,
            Field::LatencyP99 => 5.0 + 20.0 * load * load + 1.5 * queue / cap,
            // The demand's sinusoid peaks at 1.5× its mean and averages the mean over a period.
            Field::ArrivalRatePeak15m => rate.max(self.demand(i, t - 450.0)),
            Field::ArrivalRatePeak1h => 1.5 * mean_demand(i),
            Field::ArrivalRate1h => mean_demand(i),
        }
    }

    /// The answer to `query`: `Ok(None)` for an unknown target (an empty vector, as Prometheus gives for
    /// no series), `Err` for a query that is not one of the defaults.
    fn answer(&self, query: &str, t: f64) -> Result<Option<(u32, f64)>, String> {
        let between = |start: &str, end: &str| -> Option<&str> {
            let i = query.find(start)? + start.len();
            let n = query[i..].find(end)?;
            Some(&query[i..i + n])
        };
        let pod_end = format!("{POD_NAME_SUFFIX}\"");
        let (Some(ns), Some(target)) =
            (between("namespace=\"", "\""), between("pod=~\"", &pod_end))
        else {
            return Err(format!("not a default rlscale query: {query}"));
        };
        let field = Field::ALL
            .into_iter()
            .find(|f| {
                f.default_query()
                    .replace("$namespace", ns)
                    .replace("$target", target)
                    == query
            })
            .ok_or_else(|| format!("not a default rlscale query: {query}"))?;
        let Some(i) = target
            .strip_prefix("bench-")
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|&i| (i as usize) < self.targets && ns == NS)
        else {
            return Ok(None);
        };
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner())[i as usize];
        Ok(Some((i, self.value(field, i, ready, t))))
    }
}

async fn prom_query(
    State(r): State<Arc<Responder>>,
    Query(params): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let arrived = wall_clock();
    let q = params.get("query").map(String::as_str).unwrap_or("");
    let (status, body) = match r.answer(q, arrived) {
        Ok(Some((i, v))) => {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{arrived:.3},"{v}"]}}]}}}}"#
            );
            r.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(QueryRecord {
                    target: i,
                    arrived,
                    answered: wall_clock(),
                });
            (StatusCode::OK, body)
        }
        Ok(None) => (
            StatusCode::OK,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_string(),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "errorType": "bad_data", "error": e}).to_string(),
        ),
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

// ---------------------------------------------------------------------------------------------------
// Objects and the stand-in kubelet.

/// What every RLAutoscaler of the run has in common.
#[derive(Debug, Clone)]
struct RlaTemplate {
    mode: BenchMode,
    interval: u32,
    hpa_ref: bool,
    prometheus_url: String,
    model: String,
}

impl RlaTemplate {
    fn object(&self, i: usize) -> Result<DynamicObject> {
        let name = object_name(i);
        let mut spec = json!({
            "scaleTargetRef": {"name": name},
            "minReplicas": 1, "maxReplicas": MAX_REPLICAS,
            "mode": self.mode.spec(), "interval": self.interval,
            "model": self.model,
            "prometheus": {"serverAddress": self.prometheus_url, "timeoutSeconds": 5},
            "serviceProfile": {"coldStartSeconds": 180, "capacityRps": CAPACITY_RPS,
                               "gpusPerReplica": 1, "usdPerGpuHour": 0.8, "sloLatencySeconds": 20},
            "fallback": {"law": "hpa"},
            "guardrails": {"maxStepUp": 4, "maxStepDown": 2, "scaleDownStabilizationSeconds": 300},
        });
        if self.hpa_ref && self.mode == BenchMode::Shadow {
            spec["hpaRef"] = json!(name);
        }
        Ok(serde_json::from_value(json!({
            "apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))?)
    }
}

fn rla_api(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NS,
        &rlscale_controller::controller::resource(),
    )
}

/// The CRD, N Deployments, in shadow mode N HPAs, and unless `rlas` is `None` the N RLAutoscalers.
async fn create_objects(
    client: &kube::Client,
    n: usize,
    mode: BenchMode,
    rlas: Option<&RlaTemplate>,
) -> Result<()> {
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &RLAutoscaler::crd())
        .await
        .context("creating the RLAutoscaler CRD")?;
    // A few workers, each creating every `workers`-th object.
    let workers = 8.min(n.max(1));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let client = client.clone();
        let rlas = rlas.cloned();
        set.spawn(async move {
            let deployments: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                NS,
                &kube::discovery::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            );
            let hpas: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                NS,
                &kube::discovery::ApiResource::erase::<
                    k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
                >(&()),
            );
            let rla_api = rla_api(&client);
            let pp = PostParams::default();
            let ps = PatchParams::default();
            for i in (w..n).step_by(workers) {
                let name = object_name(i);
                let labels = json!({"app": name});
                let d: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": NS, "labels": labels},
                    "spec": {"replicas": initial_replicas(i as u32), "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels},
                                          "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]}}},
                }))?;
                deployments.create(&pp, &d).await?;
                let r = initial_replicas(i as u32);
                let status = json!({"status": {"replicas": r, "readyReplicas": r, "availableReplicas": r, "updatedReplicas": r}});
                deployments
                    .patch_status(&name, &ps, &Patch::Merge(&status))
                    .await?;
                if mode == BenchMode::Shadow {
                    let h: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": name, "namespace": NS},
                        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                                 "minReplicas": 1, "maxReplicas": MAX_REPLICAS,
                                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                              "target": {"type": "Utilization", "averageUtilization": 70}}}]},
                    }))?;
                    hpas.create(&pp, &h).await?;
                    let status = json!({"status": {"currentReplicas": r, "desiredReplicas": r}});
                    hpas.patch_status(&name, &ps, &Patch::Merge(&status))
                        .await?;
                }
                if let Some(t) = &rlas {
                    rla_api.create(&pp, &t.object(i)?).await?;
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.context("an object-creating task panicked")?
            .context("creating the benchmark's objects")?;
    }
    Ok(())
}

/// `--stagger`: create the RLAutoscalers one by one, evenly over one interval.
async fn create_staggered(client: kube::Client, n: usize, template: RlaTemplate) -> Result<()> {
    let api = rla_api(&client);
    let start = Instant::now();
    let step = f64::from(template.interval) / n as f64;
    for i in 0..n {
        tokio::time::sleep_until((start + Duration::from_secs_f64(step * i as f64)).into()).await;
        api.create(&PostParams::default(), &template.object(i)?)
            .await
            .context("creating an RLAutoscaler")?;
    }
    Ok(())
}

/// Every [`KUBELET_PERIOD_S`]: Deployments whose `spec.replicas` changed get that many ready replicas
/// (written through the API, as a kubelet and the Deployment controller would), and the responder learns
/// the ready counts.
async fn kubelet(api_url: String, cluster: rlscale_testenv::Cluster, responder: Arc<Responder>) {
    let Ok(client) = api_url
        .parse()
        .map(kube::Config::new)
        .map_err(anyhow::Error::from)
        .and_then(|c| kube::Client::try_from(c).map_err(anyhow::Error::from))
    else {
        return;
    };
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, NS);
    loop {
        tokio::time::sleep(Duration::from_secs_f64(KUBELET_PERIOD_S)).await;
        for d in cluster.objects("apps", "deployments") {
            let name = d.pointer("/metadata/name").and_then(|v| v.as_str());
            let Some(i) = name
                .and_then(|n| n.strip_prefix("bench-"))
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&i| i < responder.targets)
            else {
                continue;
            };
            let wanted = d.pointer("/spec/replicas").and_then(|v| v.as_u64());
            let ready = d.pointer("/status/readyReplicas").and_then(|v| v.as_u64());
            if let Some(w) = wanted {
                if ready != Some(w) {
                    let status = json!({"status": {"replicas": w, "readyReplicas": w, "availableReplicas": w, "updatedReplicas": w}});
                    let _ = deployments
                        .patch_status(
                            &object_name(i),
                            &PatchParams::default(),
                            &Patch::Merge(&status),
                        )
                        .await;
                }
                responder.ready.lock().unwrap_or_else(|e| e.into_inner())[i] = w as u32;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The controller process and /proc.

/// The controller process, killed on drop.
struct Controller {
    child: Child,
    log: PathBuf,
}

impl Controller {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if it has exited, with the end of its log.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the controller exited ({status}); the end of {}:\n{}",
                self.log.display(),
                tail(&self.log, 20)
            );
        }
        Ok(())
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What /proc says about a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    /// utime + stime, ticks.
    cpu_ticks: u64,
    /// VmRSS, KiB.
    rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    hwm_kib: u64,
    /// Threads.
    threads: u64,
}

/// `/proc/<pid>` (`pid` = "self" for this process).
fn proc_sample(pid: &str) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 (state): utime is field 14.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        f.get(i - 3)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_ticks: num(14) + num(15),
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// Machine-wide CPU ticks: (busy, total), from the first line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle.min(total), total)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

// ---------------------------------------------------------------------------------------------------
// The controller's /metrics.

/// A histogram as OpenMetrics text shows it: cumulative counts by upper bound.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// (upper bound in seconds, cumulative count), `+Inf` last.
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Histogram {
    fn parse(text: &str, name: &str) -> Histogram {
        let mut h = Histogram::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let value = |s: &str| s.split_whitespace().last().and_then(|v| v.parse().ok());
            if let Some(r) = rest.strip_prefix("_bucket{le=\"") {
                let Some((le, tail)) = r.split_once('"') else {
                    continue;
                };
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if let Some(v) = value(tail) {
                    h.buckets.push((le, v));
                }
            } else if let Some(r) = rest.strip_prefix("_sum ") {
                h.sum = value(r).unwrap_or(0.0);
            } else if let Some(r) = rest.strip_prefix("_count ") {
                h.count = value(r).unwrap_or(0.0);
            }
        }
        h
    }

    /// What was observed between `earlier` and `self`.
    fn since(&self, earlier: &Histogram) -> Histogram {
        let before: HashMap<u64, f64> = earlier
            .buckets
            .iter()
            .map(|(le, c)| (le.to_bits(), *c))
            .collect();
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, c - before.get(&le.to_bits()).copied().unwrap_or(0.0)))
                .collect(),
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// Quantile `q`, seconds, interpolated linearly inside its bucket (Prometheus's
    /// `histogram_quantile`); in the `+Inf` bucket, the highest finite bound (a lower bound of the truth).
    fn quantile(&self, q: f64) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return prev.0;
                }
                let width = c - prev.1;
                return if width > 0.0 {
                    prev.0 + (le - prev.0) * (rank - prev.1) / width
                } else {
                    le
                };
            }
            prev = (le, c);
        }
        prev.0
    }

    fn mean(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count
        } else {
            f64::NAN
        }
    }
}

/// Counter values by label set, for every sample of `name` (`name{labels} value`).
fn counters(text: &str, name: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((l, v)) => (l.to_string(), v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => (String::new(), v),
                None => continue,
            },
        };
        if let Some(v) = value.split_whitespace().next().and_then(|v| v.parse().ok()) {
            out.insert(labels, v);
        }
    }
    out
}

fn counter_deltas(before: &str, after: &str, name: &str) -> BTreeMap<String, f64> {
    let b = counters(before, name);
    counters(after, name)
        .into_iter()
        .map(|(k, v)| {
            let d = v - b.get(&k).copied().unwrap_or(0.0);
            (k, d)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect()
}

/// The controller's /metrics text. An overloaded controller can take seconds to answer: up to three
/// tries of 30 s each.
async fn fetch_metrics(http: &reqwest::Client, addr: &str) -> Result<String> {
    let mut last = None;
    for _ in 0..3 {
        let got = async {
            http.get(format!("http://{addr}/metrics"))
                .timeout(Duration::from_secs(30))
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        }
        .await;
        match got {
            Ok(text) => return Ok(text),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once")).context("reading the controller's /metrics")
}

// ---------------------------------------------------------------------------------------------------
// The controller's logs.

#[derive(Deserialize)]
struct DecisionLine {
    kind: String,
    time: f64,
    namespace: String,
    name: String,
}

#[derive(Deserialize)]
struct ControllerLogLine {
    timestamp: Option<String>,
    message: Option<String>,
    object: Option<String>,
}

/// Reads the complete lines appended to a file since the last call.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    fn new(path: &Path) -> Self {
        LogTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        let mut buf = String::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_string(&mut buf).is_err() {
            return vec![];
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&buf);
        let Some(end) = self.partial.rfind('\n') else {
            return vec![];
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(str::to_string).collect()
    }
}

/// One reconcile that decided: when it started and ended (Unix seconds), and its Prometheus span.
#[derive(Debug, Clone, Copy)]
struct Reconcile {
    start: f64,
    end: f64,
    /// From the first query's arrival to the last answer, at the responder, seconds.
    prom_span: f64,
}

/// Pairs each decision's start (decision log) with its end (the controller log's `decision` line) and
/// the responder's records of its queries.
fn reconciles(
    starts: &HashMap<String, Vec<f64>>,
    ends: &HashMap<String, Vec<f64>>,
    queries: &HashMap<u32, Vec<QueryRecord>>,
) -> (Vec<Reconcile>, usize) {
    let mut out = Vec::new();
    let mut unmatched = 0;
    for (name, s) in starts {
        let e = ends.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let idx = name
            .strip_prefix("bench-")
            .and_then(|x| x.parse::<u32>().ok());
        let q = idx
            .and_then(|i| queries.get(&i))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut j = 0;
        for (k, &start) in s.iter().enumerate() {
            let next = s.get(k + 1).copied().unwrap_or(f64::INFINITY);
            // The end is microseconds, truncated: allow that much before the start.
            while j < e.len() && e[j] < start - 1e-5 {
                j += 1;
            }
            if j >= e.len() || e[j] >= next {
                unmatched += 1;
                continue;
            }
            let end = e[j].max(start);
            j += 1;
            let from = q.partition_point(|r| r.arrived < start);
            let to = q.partition_point(|r| r.arrived <= end);
            let inside = &q[from..to];
            let prom_span = if inside.is_empty() {
                0.0
            } else {
                let first = inside
                    .iter()
                    .map(|r| r.arrived)
                    .fold(f64::INFINITY, f64::min);
                let last = inside.iter().map(|r| r.answered).fold(0.0, f64::max);
                (last - first).max(0.0)
            };
            out.push(Reconcile {
                start,
                end,
                prom_span,
            });
        }
    }
    (out, unmatched)
}

// ---------------------------------------------------------------------------------------------------
// The summary.

/// Latency quantiles, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms (exact samples only; NaN from a histogram).
    pub max_ms: f64,
}

impl Latency {
    fn of_histogram(h: &Histogram) -> Latency {
        Latency {
            count: h.count.max(0.0) as u64,
            mean_ms: 1e3 * h.mean(),
            p50_ms: 1e3 * h.quantile(0.5),
            p99_ms: 1e3 * h.quantile(0.99),
            max_ms: f64::NAN,
        }
    }

    fn of_samples(mut v: Vec<f64>) -> Latency {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                1e3 * v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
            }
        };
        Latency {
            count: v.len() as u64,
            mean_ms: 1e3 * v.iter().sum::<f64>() / v.len().max(1) as f64,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            max_ms: q(1.0),
        }
    }
}

/// What one run measured (the JSON of `--out`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The command line.
    pub command: String,
    /// RLAutoscalers (and Deployments, and in shadow mode HPAs).
    pub targets: usize,
    /// `active` or `shadow`.
    pub mode: BenchMode,
    /// Shadow: whether `spec.hpaRef` was set.
    pub hpa_ref: bool,
    /// Whether the RLAutoscalers were created over one interval (`--stagger`) rather than before the
    /// controller started.
    pub staggered: bool,
    /// `spec.interval`, seconds.
    pub interval_s: u32,
    /// The controller's `--max-concurrent-reconciles`.
    pub max_concurrent_reconciles: u16,
    /// How Prometheus was served.
    pub prometheus: &'static str,
    /// Creating the objects, seconds.
    pub setup_s: f64,
    /// From the controller's start to every object's first decision (the first pass), seconds.
    pub first_pass_s: f64,
    /// From the controller's start to every object's second decision, seconds.
    pub warmup_s: f64,
    /// The measured window, seconds.
    pub window_s: f64,
    /// Controller CPU in the window, % of one core.
    pub cpu_percent: f64,
    /// This process (API server, responder, kubelet) in the window, % of one core.
    pub bench_process_cpu_percent: f64,
    /// The whole machine in the window, % of all its cores.
    pub machine_cpu_busy_percent: f64,
    /// Cores of the machine.
    pub cores: usize,
    /// Controller VmRSS at the end of the window, MiB.
    pub rss_mib: f64,
    /// Largest VmRSS sampled (every second) in the window, MiB.
    pub rss_window_max_mib: f64,
    /// Controller VmHWM (peak RSS since it started, warm-up included), MiB.
    pub rss_peak_mib: f64,
    /// Controller threads at the end.
    pub threads: u64,
    /// Controller open file descriptors at the end (sockets included).
    pub open_fds: usize,
    /// `rlscale_reconcile_duration_seconds` over the window (every reconcile, Prometheus included).
    pub reconcile_histogram: Latency,
    /// `rlscale_prometheus_duration_seconds` over the window.
    pub prometheus_histogram: Latency,
    /// Mean reconcile − mean Prometheus time from the histograms' sums (exact), ms.
    pub mean_excluding_prometheus_ms: f64,
    /// Per reconcile that decided (started in the window): start to the `decision` log line.
    pub reconcile_per_decision: Latency,
    /// Per reconcile: the responder's span of its queries.
    pub prometheus_span_per_decision: Latency,
    /// Per reconcile: reconcile − Prometheus span (the controller's own time, erring high).
    pub excluding_prometheus: Latency,
    /// The same over the first pass (each object's first decision after the controller started).
    pub first_pass_excluding_prometheus: Latency,
    /// Decisions whose end was not found in the controller's log.
    pub unmatched_decisions: usize,
    /// Decisions in the window.
    pub decisions: u64,
    /// Decisions per second achieved.
    pub decisions_per_s: f64,
    /// `targets / interval_s`.
    pub expected_decisions_per_s: f64,
    /// Window / interval: decisions per object if each came exactly every interval.
    pub expected_per_object: f64,
    /// Fewest decisions of one object in the window.
    pub per_object_min: u64,
    /// Median decisions per object.
    pub per_object_median: u64,
    /// Most decisions of one object in the window.
    pub per_object_max: u64,
    /// Objects without a decision in the window.
    pub objects_without_decision: usize,
    /// `rlscale_decisions_total` in the window, by `source/reason`.
    pub decisions_by_source: BTreeMap<String, f64>,
    /// `rlscale_scale_writes_total` in the window.
    pub scale_writes: f64,
    /// `rlscale_reconcile_failures_total` in the window, by error.
    pub reconcile_failures: BTreeMap<String, f64>,
    /// `rlscale_metrics_query_failures_total` in the window, by error.
    pub query_failures: BTreeMap<String, f64>,
    /// Prometheus queries answered per second in the window.
    pub prometheus_queries_per_s: f64,
    /// API requests per second in the window, by `verb resource[/subresource]` (the stand-in kubelet's
    /// are the `patch deployments/status`).
    pub api_requests_per_s: BTreeMap<String, f64>,
    /// RSS goal, MiB.
    pub goal_rss_mib: f64,
    /// p99 goal (reconcile excluding Prometheus), ms.
    pub goal_p99_ms: f64,
    /// Peak RSS within the goal.
    pub rss_goal_met: bool,
    /// p99 excluding Prometheus within the goal.
    pub p99_goal_met: bool,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Print `s` as the tables BENCHMARKS.md quotes.
pub fn print_summary(s: &Summary) {
    let lat = |l: &Latency| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms, max {:.1} ms ({} samples)",
            l.p50_ms, l.p99_ms, l.mean_ms, l.max_ms, l.count
        )
    };
    let hist = |l: &Latency| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms ({} samples)",
            l.p50_ms, l.p99_ms, l.mean_ms, l.count
        )
    };
    let ok = |b: bool| if b { "met" } else { "MISSED" };
    println!(
        "controller bench: {} RLAutoscalers, {} mode{}{}, interval {} s, at most {} reconciles at once, {}",
        s.targets,
        s.mode.spec(),
        if s.hpa_ref { ", hpaRef set" } else { "" },
        if s.staggered {
            ", created over one interval"
        } else {
            ", all present at the controller's start"
        },
        s.interval_s,
        s.max_concurrent_reconciles,
        s.prometheus
    );
    println!(
        "setup {:.1} s, first pass (every object decided once) {:.1} s, warm-up (twice) {:.1} s, window {:.1} s\n",
        s.setup_s, s.first_pass_s, s.warmup_s, s.window_s
    );
    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| controller CPU | {:.1} % of one core (this process: {:.1} %; machine busy {:.1} % of {} cores) |",
        s.cpu_percent, s.bench_process_cpu_percent, s.machine_cpu_busy_percent, s.cores
    );
    println!(
        "| controller RSS | {:.1} MiB at the end, {:.1} MiB max in the window, {:.1} MiB peak (VmHWM) — goal ≤ {} MiB: {} |",
        s.rss_mib,
        s.rss_window_max_mib,
        s.rss_peak_mib,
        s.goal_rss_mib,
        ok(s.rss_goal_met)
    );
    println!("| threads, open fds | {}, {} |", s.threads, s.open_fds);
    println!(
        "| reconcile, histogram | {} |",
        hist(&s.reconcile_histogram)
    );
    println!(
        "| Prometheus share, histogram | {} |",
        hist(&s.prometheus_histogram)
    );
    println!(
        "| reconcile per decision (logs) | {} |",
        lat(&s.reconcile_per_decision)
    );
    println!(
        "| Prometheus span per decision (responder) | {} |",
        lat(&s.prometheus_span_per_decision)
    );
    println!(
        "| reconcile − Prometheus, per decision | {} — goal p99 ≤ {} ms: {} |",
        lat(&s.excluding_prometheus),
        s.goal_p99_ms,
        ok(s.p99_goal_met)
    );
    println!(
        "| reconcile − Prometheus, first pass (each object's first decision) | {} |",
        lat(&s.first_pass_excluding_prometheus)
    );
    println!(
        "| mean reconcile − mean Prometheus (histogram sums) | {:.1} ms |",
        s.mean_excluding_prometheus_ms
    );
    println!(
        "| decisions | {} = {:.2}/s (expected {:.2}/s); per object min {} / median {} / max {} (expected {:.1}); {} objects without one |",
        s.decisions,
        s.decisions_per_s,
        s.expected_decisions_per_s,
        s.per_object_min,
        s.per_object_median,
        s.per_object_max,
        s.expected_per_object,
        s.objects_without_decision
    );
    let map = |m: &BTreeMap<String, f64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}: {v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!("| decisions by source | {} |", map(&s.decisions_by_source));
    println!("| scale writes | {:.0} |", s.scale_writes);
    println!(
        "| failures | reconcile: {}; queries: {} |",
        map(&s.reconcile_failures),
        map(&s.query_failures)
    );
    println!(
        "| Prometheus queries | {:.0}/s |",
        s.prometheus_queries_per_s
    );
    let api = s
        .api_requests_per_s
        .iter()
        .map(|(k, v)| format!("{k} {v:.1}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("| API requests per s | {api} |");
}

// ---------------------------------------------------------------------------------------------------

/// `rlscale bench --controller N` with the model file `model`: set up, run the window, and return
/// what was measured (see the module's docs).
pub fn run(n: usize, args: &ControllerArgs, model: &Path) -> Result<Summary> {
    if n == 0 {
        return Err(BadInput("--controller N needs N ≥ 1".into()).into());
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(go(n, args, model))
}

async fn go(n: usize, args: &ControllerArgs, model: &Path) -> Result<Summary> {
    let api = TestApiServer::start()
        .await
        .context("starting the test API server")?;
    let kubeconfig = args.dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, NS)?;
    let client = kube::Client::try_from(kube::Config::new(api.url().parse()?))?;

    let responder = Arc::new(Responder {
        targets: n,
        origin: wall_clock(),
        ready: Mutex::new((0..n as u32).map(initial_replicas).collect()),
        records: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let prom_url = format!("http://{}", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/api/v1/query", axum::routing::get(prom_query))
        .with_state(responder.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let template = RlaTemplate {
        mode: args.mode,
        interval: args.interval,
        hpa_ref: args.hpa_ref,
        prometheus_url: prom_url.clone(),
        model: model.display().to_string(),
    };
    let started = Instant::now();
    create_objects(&client, n, args.mode, (!args.stagger).then_some(&template)).await?;
    let setup_s = started.elapsed().as_secs_f64();
    let kubelet_task = tokio::spawn(kubelet(api.url(), api.cluster().clone(), responder.clone()));

    // The controller.
    let decisions = args.dir.join("decisions.jsonl");
    let log = args.dir.join("controller.log");
    let _ = std::fs::remove_file(&decisions);
    let metrics_addr = format!("127.0.0.1:{}", rlscale_testenv::prometheus::free_port()?);
    // `rlscale controller ...`, or the slim binary's own flags (the same `cli::Args`).
    let (exe, subcommand) = match &args.controller_bin {
        Some(bin) => {
            if !bin.is_file() {
                let msg = format!("--controller-bin {}: no such file", bin.display());
                return Err(BadInput(msg).into());
            }
            let full = bin.file_stem().is_some_and(|n| n == "rlscale");
            (bin.clone(), full.then_some("controller"))
        }
        None => (
            std::env::current_exe().context("locating the rlscale binary")?,
            Some("controller"),
        ),
    };
    let started_wall = wall_clock();
    let max_concurrent = args
        .max_concurrent_reconciles
        .unwrap_or(rlscale_controller::controller::DEFAULT_MAX_CONCURRENT_RECONCILES);
    let child = Command::new(&exe)
        .args(subcommand)
        .args([
            "--max-concurrent-reconciles",
            &max_concurrent.to_string(),
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--namespace",
            NS,
            "--metrics-addr",
            &metrics_addr,
            "--decision-log",
            &decisions.display().to_string(),
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut controller = Controller { child, log };
    let pid = controller.pid().to_string();
    let mut stagger_task = args
        .stagger
        .then(|| tokio::spawn(create_staggered(client.clone(), n, template.clone())));

    // Warm-up: every object decided twice. Its first decision comes when the controller (or the
    // object) starts; from the second on, each object decides at its own phase of the interval, so
    // the window measures the steady schedule. VmHWM still covers the first pass.
    let warm_start = Instant::now();
    let mut tail_decisions = LogTail::new(&decisions);
    let mut decided = HashMap::<String, u32>::new();
    let twice = |d: &HashMap<String, u32>| d.values().filter(|&&c| c >= 2).count();
    let mut first_pass_s = None;
    while twice(&decided) < n {
        if first_pass_s.is_none() && decided.len() == n {
            first_pass_s = Some(warm_start.elapsed().as_secs_f64());
        }
        controller.check_alive()?;
        if warm_start.elapsed() > args.warmup_timeout {
            bail!(
                "after {:.0} s only {} of {n} objects had decided twice; the end of {}:\n{}",
                args.warmup_timeout.as_secs_f64(),
                twice(&decided),
                controller.log.display(),
                tail(&controller.log, 5)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stagger_task.as_ref().is_some_and(|t| t.is_finished()) {
            let t = stagger_task.take().expect("checked above");
            t.await
                .context("the RLAutoscaler-creating task panicked")??;
        }
        for line in tail_decisions.lines() {
            if let Ok(d) = serde_json::from_str::<DecisionLine>(&line)
                && d.kind == "decision"
            {
                *decided.entry(d.name).or_default() += 1;
            }
        }
    }
    let warmup_s = warm_start.elapsed().as_secs_f64();
    let first_pass_s = first_pass_s.unwrap_or(warmup_s);

    // The window.
    let http = reqwest::Client::new();
    let seq0 = api.requests().last().map_or(0, |r| r.seq);
    let queries0 = responder
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    let m0 = fetch_metrics(&http, &metrics_addr).await?;
    let (c0, s0, mach0) = (proc_sample(&pid)?, proc_sample("self")?, machine_ticks());
    let (t0, i0) = (wall_clock(), Instant::now());
    let mut rss_max = c0.rss_kib;
    while i0.elapsed() < args.duration {
        let left = args.duration.saturating_sub(i0.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        controller.check_alive()?;
        rss_max = rss_max.max(proc_sample(&pid)?.rss_kib);
    }
    let (c1, s1, mach1) = (proc_sample(&pid)?, proc_sample("self")?, machine_ticks());
    let (t1, window_s) = (wall_clock(), i0.elapsed().as_secs_f64());
    let m1 = fetch_metrics(&http, &metrics_addr).await?;
    let fds = open_fds(controller.pid());
    let mut api_requests = BTreeMap::<String, f64>::new();
    for r in api.requests().iter().filter(|r| r.seq > seq0) {
        let what = match &r.subresource {
            Some(s) => format!("{} {}/{s}", r.verb, r.resource),
            None => format!("{} {}", r.verb, r.resource),
        };
        *api_requests.entry(what).or_default() += 1.0 / window_s;
    }
    // Reconciles that started just before the end finish within a moment: let their log lines land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    controller.check_alive()?;
    let records: Vec<QueryRecord> = responder
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let queries_in_window = records[queries0..]
        .iter()
        .filter(|r| r.arrived < t1)
        .count();
    kubelet_task.abort();
    drop(controller);
    api.shutdown().await;

    // Decisions and their ends: the window's, and the first pass's (every object's first decision).
    let decision_text = std::fs::read_to_string(&decisions)?;
    let log_text = std::fs::read_to_string(args.dir.join("controller.log"))?;
    let collect = |lo: f64, hi: f64| {
        let mut starts = HashMap::<String, Vec<f64>>::new();
        for line in decision_text.lines() {
            if let Ok(d) = serde_json::from_str::<DecisionLine>(line)
                && d.kind == "decision"
                && d.namespace == NS
                && (lo..hi).contains(&d.time)
            {
                starts.entry(d.name).or_default().push(d.time);
            }
        }
        let mut ends = HashMap::<String, Vec<f64>>::new();
        for line in log_text.lines() {
            if let Ok(l) = serde_json::from_str::<ControllerLogLine>(line)
                && l.message.as_deref() == Some("decision")
                && let (Some(obj), Some(ts)) = (
                    l.object,
                    l.timestamp.as_deref().and_then(|t| parse_time(t).ok()),
                )
                && let Some(name) = obj.strip_prefix(&format!("{NS}/"))
                && ts >= lo
            {
                ends.entry(name.to_string()).or_default().push(ts);
            }
        }
        for v in starts.values_mut().chain(ends.values_mut()) {
            v.sort_by(f64::total_cmp);
        }
        (starts, ends)
    };
    let (starts, ends) = collect(t0, t1);
    let mut by_target = HashMap::<u32, Vec<QueryRecord>>::new();
    for r in &records {
        if r.arrived >= started_wall - 60.0 {
            by_target.entry(r.target).or_default().push(*r);
        }
    }
    for v in by_target.values_mut() {
        v.sort_by(|a, b| a.arrived.total_cmp(&b.arrived));
    }
    let first_pass_excluding = {
        let (mut fs, fe) = collect(started_wall, started_wall + first_pass_s + 1.0);
        // Only each object's first decision.
        fs.values_mut().for_each(|v| v.truncate(1));
        let (recs, _) = reconciles(&fs, &fe, &by_target);
        Latency::of_samples(recs.iter().map(|r| r.end - r.start - r.prom_span).collect())
    };
    let (recs, unmatched) = reconciles(&starts, &ends, &by_target);

    let mut per_object: Vec<u64> = (0..n)
        .map(|i| starts.get(&object_name(i)).map_or(0, |v| v.len() as u64))
        .collect();
    per_object.sort_unstable();
    let decisions_n: u64 = per_object.iter().sum();
    let reconcile_h = Histogram::parse(&m1, "rlscale_reconcile_duration_seconds")
        .since(&Histogram::parse(&m0, "rlscale_reconcile_duration_seconds"));
    let prom_h = Histogram::parse(&m1, "rlscale_prometheus_duration_seconds").since(
        &Histogram::parse(&m0, "rlscale_prometheus_duration_seconds"),
    );
    let excluding =
        Latency::of_samples(recs.iter().map(|r| r.end - r.start - r.prom_span).collect());
    let cpu = |a: &ProcSample, b: &ProcSample| {
        100.0 * (b.cpu_ticks.saturating_sub(a.cpu_ticks)) as f64 / TICKS_PER_S / window_s
    };
    let rss_peak_mib = mib(c1.hwm_kib);
    let command = std::iter::once("rlscale".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Summary {
        command,
        targets: n,
        mode: args.mode,
        hpa_ref: args.hpa_ref && args.mode == BenchMode::Shadow,
        staggered: args.stagger,
        interval_s: args.interval,
        max_concurrent_reconciles: max_concurrent,
        prometheus: "in-process Prometheus-API responder (GET /api/v1/query, default queries)",
        setup_s,
        first_pass_s,
        warmup_s,
        window_s,
        cpu_percent: cpu(&c0, &c1),
        bench_process_cpu_percent: cpu(&s0, &s1),
        machine_cpu_busy_percent: {
            let (busy, total) = (mach1.0 - mach0.0, mach1.1 - mach0.1);
            100.0 * busy as f64 / (total.max(1)) as f64
        },
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        rss_mib: mib(c1.rss_kib),
        rss_window_max_mib: mib(rss_max.max(c1.rss_kib)),
        rss_peak_mib,
        threads: c1.threads,
        open_fds: fds,
        mean_excluding_prometheus_ms: 1e3 * (reconcile_h.mean() - prom_h.mean()),
        reconcile_histogram: Latency::of_histogram(&reconcile_h),
        prometheus_histogram: Latency::of_histogram(&prom_h),
        reconcile_per_decision: Latency::of_samples(recs.iter().map(|r| r.end - r.start).collect()),
        prometheus_span_per_decision: Latency::of_samples(
            recs.iter().map(|r| r.prom_span).collect(),
        ),
        p99_goal_met: excluding.p99_ms <= GOAL_P99_MS,
        excluding_prometheus: excluding,
        first_pass_excluding_prometheus: first_pass_excluding,
        unmatched_decisions: unmatched,
        decisions: decisions_n,
        decisions_per_s: decisions_n as f64 / window_s,
        expected_decisions_per_s: n as f64 / f64::from(args.interval),
        expected_per_object: window_s / f64::from(args.interval),
        per_object_min: per_object.first().copied().unwrap_or(0),
        per_object_median: per_object[per_object.len() / 2],
        per_object_max: per_object.last().copied().unwrap_or(0),
        objects_without_decision: per_object.iter().filter(|&&c| c == 0).count(),
        decisions_by_source: counter_deltas(&m0, &m1, "rlscale_decisions_total")
            .into_iter()
            .map(|(k, v)| {
                // `source="model",reason="scale_up"` → `model/scale_up`
                let vals: Vec<&str> = k.split('"').skip(1).step_by(2).collect();
                (vals.join("/"), v)
            })
            .collect(),
        scale_writes: counter_deltas(&m0, &m1, "rlscale_scale_writes_total")
            .values()
            .fold(0.0, |a, b| a + b),
        reconcile_failures: counter_deltas(&m0, &m1, "rlscale_reconcile_failures_total"),
        query_failures: counter_deltas(&m0, &m1, "rlscale_metrics_query_failures_total"),
        prometheus_queries_per_s: queries_in_window as f64 / window_s,
        api_requests_per_s: api_requests,
        goal_rss_mib: GOAL_RSS_MIB,
        goal_p99_ms: GOAL_P99_MS,
        rss_goal_met: rss_peak_mib <= GOAL_RSS_MIB,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_whole_seconds_written_as_a_duration() {
        assert_eq!(parse_interval("15"), Ok(15));
        assert_eq!(parse_interval("15s"), Ok(15));
        assert_eq!(parse_interval("1m"), Ok(60));
        for bad in ["1.5s", "0", "2h", "500ms", "x"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tracing_timestamps_parse() {
        // The controller log's timestamps, as tracing-subscriber writes them.
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0.0));
        let t = parse_time("2023-11-14T22:13:20.250000Z").unwrap();
        assert!((t - 1_700_000_000.25).abs() < 1e-6, "{t}");
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400.0));
        assert!(parse_time("2000-02-29 00:00:00").is_err());
    }

    #[test]
    fn histogram_quantiles_interpolate() {
        let text = "x_bucket{le=\"0.01\"} 50\nx_bucket{le=\"0.02\"} 100\nx_bucket{le=\"+Inf\"} 100\nx_sum 1.0\nx_count 100\n";
        let h = Histogram::parse(text, "x");
        assert!((h.quantile(0.5) - 0.01).abs() < 1e-12);
        assert!((h.quantile(0.75) - 0.015).abs() < 1e-12);
        assert!((h.mean() - 0.01).abs() < 1e-12);
        let d = h.since(&Histogram::parse("x_bucket{le=\"0.01\"} 50\nx_bucket{le=\"0.02\"} 50\nx_bucket{le=\"+Inf\"} 50\nx_sum 0.25\nx_count 50\n", "x"));
        assert!((d.quantile(0.5) - 0.015).abs() < 1e-12);
    }

    #[test]
    fn the_responder_answers_every_default_query_and_refuses_others() {
        let r = Responder {
            targets: 3,
            origin: 0.0,
            ready: Mutex::new(vec![2; 3]),
            records: Mutex::new(vec![]),
        };
        for f in Field::ALL {
            let q = f
                .default_query()
                .replace("$namespace", NS)
                .replace("$target", "bench-00002");
            let (i, v) = r.answer(&q, 100.0).unwrap().unwrap();
            assert_eq!(i, 2);
            assert!(v.is_finite() && v >= 0.0, "{f:?} {v}");
            let other = q.replace("bench-00002", "web");
            assert_eq!(r.answer(&other, 100.0), Ok(None));
        }
        assert!(r.answer("up", 0.0).is_err());
    }

    #[test]
    fn reconciles_pair_starts_ends_and_queries() {
        let starts = HashMap::from([("bench-00000".to_string(), vec![10.0, 25.0, 40.0])]);
        let ends = HashMap::from([("bench-00000".to_string(), vec![10.02, 25.05])]);
        let q = |a: f64, b: f64| QueryRecord {
            target: 0,
            arrived: a,
            answered: b,
        };
        let queries = HashMap::from([(
            0,
            vec![q(10.001, 10.004), q(10.002, 10.010), q(25.01, 25.02)],
        )]);
        let (r, unmatched) = reconciles(&starts, &ends, &queries);
        assert_eq!(unmatched, 1);
        assert_eq!(r.len(), 2);
        assert!((r[0].prom_span - 0.009).abs() < 1e-9);
        assert!((r[1].end - r[1].start - 0.05).abs() < 1e-9);
    }
}
