//! `rlscale dev-cluster`: watch the controller scale, on one machine, with no cluster.
//!
//! It starts the in-repo test API server (`rlscale-testenv`), creates the RLAutoscaler CRD, a
//! Deployment and an RLAutoscaler for it, then runs three processes: `rlscale fake-server` (the
//! simulator playing the Deployment's vLLM pods), a real Prometheus scraping it, and `rlscale
//! controller`. It prints one line per second (the arrival rate, the replicas it needs at the
//! declared capacity, ours, the HPA's in Shadow mode, the Deployment's replicas wanted and ready, the
//! queue and the last decision) until Ctrl-C, or for `--for`.
//!
//! In Shadow mode there is an HPA to shadow: dev-cluster creates one for the Deployment (the Pods
//! metric `vllm:num_requests_running` at an average of 32, rlscale's HPA law's default) and plays its
//! controller, as kube-controller-manager would in a cluster: each second it takes the recommendation
//! of rlscale's HPA law on the same metrics (the RLAutoscaler's `status.hpaRecomputedReplicas`),
//! writes it to the HPA's `status.desiredReplicas` and scales the Deployment to it. The HPA in the
//! decision log therefore lags the recomputed one by up to a second.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rlscale_controller::RLAutoscaler;
use rlscale_sim::{Overrides, Scenario};
use rlscale_testenv::TestApiServer;
use rlscale_testenv::prometheus::PrometheusProcess;
use serde_json::json;

use crate::BadInput;

/// Run a local API server, the fake model server, Prometheus and the controller together.
#[derive(Debug, Parser)]
pub struct Args {
    /// Scenario whose traffic and service profile the fake model server plays.
    #[arg(long, default_value = "flash-crowd-8b-l4-v1")]
    pub scenario: String,
    /// Active (the controller scales the Deployment) or Shadow (it only records, beside an HPA);
    /// any case.
    #[arg(long, default_value = "Active", value_parser = parse_mode, value_name = "Active|Shadow")]
    pub mode: String,
    /// Model file the RLAutoscaler uses [default: models/default.json].
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 15.0)]
    pub speedup: f64,
    /// Port of the API server (kubeconfig in --dir).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Port of Prometheus.
    #[arg(long, default_value_t = 9090)]
    pub prometheus_port: u16,
    /// Port of the fake model server's /metrics.
    #[arg(long, default_value_t = 8000)]
    pub fake_port: u16,
    /// Port of the controller's /metrics.
    #[arg(long, default_value_t = 8080)]
    pub controller_port: u16,
    /// Folder for the kubeconfig, the decision log and the processes' logs [default: a new
    /// runs/dev-cluster-<UTC time>/ per run, so one run's decision log never appends to another's].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Stop after this long: 90s, 15m, 2h or bare seconds [default: run until Ctrl-C].
    #[arg(long = "for", value_parser = rlscale_controller::cli::parse_duration, value_name = "DURATION")]
    pub duration: Option<std::time::Duration>,
}

/// `--mode`: `Active` or `Shadow` in any case, as the CRD spells them.
fn parse_mode(s: &str) -> Result<String, String> {
    match s.to_ascii_lowercase().as_str() {
        "active" => Ok("Active".into()),
        "shadow" => Ok("Shadow".into()),
        _ => Err(format!("{s:?} is not a mode: Active or Shadow")),
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String], log: &Path) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("locating the rlscale binary")?;
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .with_context(|| format!("starting rlscale {}", args[0]))?;
    Ok(Proc(child))
}

/// `--model`, or `models/default.json`, as an absolute path (the controller runs in another process);
/// a missing file is a `BadInput`.
pub(crate) fn resolve_model(model: Option<&Path>) -> anyhow::Result<PathBuf> {
    let model = model.map_or_else(|| PathBuf::from("models/default.json"), Path::to_path_buf);
    if !model.is_file() {
        return Err(BadInput(format!(
            "--model {}: no such file (run from the repository root, or pass --model)",
            model.display()
        ))
        .into());
    }
    Ok(std::fs::canonicalize(&model)?)
}

/// `runs/dev-cluster-<UTC time, compact>` for a run started at `now`.
fn run_dir(now: std::time::SystemTime) -> PathBuf {
    let unix = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let stamp: String = rlscale_core::SimTime(unix)
        .rfc3339()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    PathBuf::from(format!("runs/dev-cluster-{stamp}"))
}

pub fn run(envs: &Path, args: Args) -> anyhow::Result<()> {
    let scenario = Scenario::resolve(envs, &args.scenario, &Overrides::default())
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?;
    let model = resolve_model(args.model.as_deref())?;
    let mut args = args;
    let dir = args
        .dir
        .take()
        .unwrap_or_else(|| run_dir(std::time::SystemTime::now()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    args.dir = Some(dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(go(envs, scenario, model, args))
}

async fn go(envs: &Path, scenario: Scenario, model: PathBuf, args: Args) -> anyhow::Result<()> {
    let dir = args.dir.clone().expect("run() resolved the folder");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.api_port));
    let api = TestApiServer::start_on(addr)
        .await
        .with_context(|| format!("starting the test API server on {addr}"))?;
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, "default")?;
    let client = kube::Client::try_from(kube::Config::new(api.url().parse()?))?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &RLAutoscaler::crd())
        .await?;
    let initial = scenario.file.replicas.initial.max(1);
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": initial, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]}}},
    }))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments.create(&PostParams::default(), &d).await?;

    let fake_addr = format!("127.0.0.1:{}", args.fake_port);
    let kc = kubeconfig.display().to_string();
    let _fake = spawn(
        &[
            "fake-server".into(),
            "--envs".into(),
            envs.display().to_string(),
            "--scenario".into(),
            args.scenario.clone(),
            "--kubeconfig".into(),
            kc.clone(),
            "--deployment".into(),
            "web".into(),
            "--listen".into(),
            fake_addr.clone(),
            "--speedup".into(),
            args.speedup.to_string(),
        ],
        &dir.join("fake-server.log"),
    )?;
    let prometheus =
        PrometheusProcess::start_on(args.prometheus_port, std::slice::from_ref(&fake_addr))?;
    let decisions = dir.join("decisions.jsonl");
    let _controller = spawn(
        &[
            "controller".into(),
            "--kubeconfig".into(),
            kc.clone(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", args.controller_port),
            "--decision-log".into(),
            decisions.display().to_string(),
        ],
        &dir.join("controller.log"),
    )?;
    let p = scenario.service_profile();
    let rla: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rlscale.dev/v1alpha1", "kind": "RLAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"name": "web"},
            "minReplicas": scenario.file.replicas.min.max(1),
            "maxReplicas": scenario.file.replicas.max,
            "mode": args.mode, "interval": 1,
            "model": model.display().to_string(),
            "prometheus": {"serverAddress": prometheus.url, "timeoutSeconds": 2},
            "serviceProfile": {"coldStartSeconds": p.cold_start_s, "capacityRps": p.capacity_rps,
                               "gpusPerReplica": p.gpus_per_replica, "usdPerGpuHour": p.usd_per_gpu_hour,
                               "sloLatencySeconds": p.slo_latency_s},
        },
    }))?;
    let rlas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &rlscale_controller::controller::resource(),
    );
    rlas.create(&PostParams::default(), &rla).await?;
    let shadow = args.mode == "Shadow";
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    if shadow {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": scenario.file.replicas.min.max(1),
                "maxReplicas": scenario.file.replicas.max,
                "metrics": [{"type": "Pods", "pods": {
                    "metric": {"name": "vllm:num_requests_running"},
                    "target": {"type": "AverageValue", "averageValue": "32"}}}],
            },
        }))?;
        hpas.create(&PostParams::default(), &hpa).await?;
    }

    println!(
        "dev-cluster is up ({} mode, scenario {}, {}x time):",
        args.mode, args.scenario, args.speedup
    );
    println!(
        "  API server   {}  (kubeconfig {})",
        api.url(),
        kubeconfig.display()
    );
    println!("  Prometheus   {}", prometheus.url);
    println!("  fake vLLM    http://{fake_addr}/metrics");
    println!(
        "  controller   http://127.0.0.1:{}/metrics  (log {})",
        args.controller_port,
        dir.join("controller.log").display()
    );
    println!("  decisions    {}", decisions.display());
    println!("Ctrl-C stops everything.\n");
    if shadow {
        println!(
            "In Shadow mode dev-cluster plays the HPA `web`: each second it writes rlscale's HPA law's recommendation to the HPA's status and scales the Deployment to it.\n"
        );
    }
    println!("{}", live_header());
    let start = Instant::now();
    let prom = rlscale_controller::prom::Prometheus::new(
        reqwest::Client::new(),
        &prometheus.url,
        Duration::from_secs(2),
    );
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut decided = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if args.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        let d = deployments.get("web").await?;
        let wanted = d.spec.and_then(|s| s.replicas).unwrap_or(0);
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        let query = |q: &'static str| {
            let prom = &prom;
            async move { prom.query(q).await.ok().flatten() }
        };
        let queue = query("sum(vllm:num_requests_waiting)").await;
        let arrivals = query("sum(rate(vllm:request_success_total[1m]))").await;
        let status = rlas.get("web").await?.data.get("status").cloned();
        let status = status.unwrap_or(serde_json::Value::Null);
        let last = &status["lastDecision"];
        let ours = last["replicas"].as_u64();
        let (source, reason) = (
            last["source"].as_str().unwrap_or(""),
            last["reason"].as_str().unwrap_or(""),
        );
        // Until Prometheus has a rate, the controller's inputs are missing and it holds on its
        // fallback: that is the warm-up, not a fault.
        if source == "model" || (source == "guardrail" && reason != "invalid_input") {
            decided = true;
        }
        let note = if last.is_null() {
            "–".to_string()
        } else if !decided && reason == "invalid_input" {
            "warming up (Prometheus has no rates yet)".to_string()
        } else {
            format!("{source}, {reason}")
        };
        let mut hpa = None;
        if shadow && let Some(rec) = status["hpaRecomputedReplicas"].as_u64() {
            // Play the HPA controller: its status, then the Deployment's scale.
            let st = json!({"status": {"currentReplicas": wanted, "desiredReplicas": rec}});
            hpas.patch_status("web", &PatchParams::default(), &Patch::Merge(&st))
                .await?;
            if rec != u64::from(wanted.max(0) as u32) {
                let scale = json!({"spec": {"replicas": rec}});
                deployments
                    .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale))
                    .await?;
            }
            hpa = Some(rec);
        }
        println!(
            "{}",
            live_line(&LiveLine {
                wall_s: start.elapsed().as_secs_f64(),
                arrivals,
                needed: arrivals.map(|a| (a / p.capacity_rps).ceil()),
                ours,
                hpa,
                wanted,
                ready,
                queue,
                note,
            })
        );
    }
    api.shutdown().await;
    Ok(())
}

/// One line of the live view.
struct LiveLine {
    wall_s: f64,
    arrivals: Option<f64>,
    needed: Option<f64>,
    ours: Option<u64>,
    hpa: Option<u64>,
    wanted: i32,
    ready: i32,
    queue: Option<f64>,
    note: String,
}

fn live_header() -> String {
    format!(
        "{:>6}  {:>9}  {:>6}  {:>4}  {:>4}  {:>6}  {:>5}  {:>6}  last decision",
        "wall s", "arrivals", "needed", "ours", "HPA", "wanted", "ready", "queue"
    )
}

fn live_line(l: &LiveLine) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "–".into());
    format!(
        "{:>6.0}  {:>9}  {:>6}  {:>4}  {:>4}  {:>6}  {:>5}  {:>6}  {}",
        l.wall_s,
        opt(l.arrivals.map(|a| format!("{a:.1}/s"))),
        opt(l.needed.map(|n| format!("{n:.0}"))),
        opt(l.ours.map(|n| n.to_string())),
        opt(l.hpa.map(|n| n.to_string())),
        l.wanted,
        l.ready,
        opt(l.queue.map(|q| format!("{q:.0}"))),
        l.note
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_live_line_lines_up_with_its_header() {
        let h = super::live_header();
        let l = super::live_line(&super::LiveLine {
            wall_s: 12.0,
            arrivals: Some(41.25),
            needed: Some(14.0),
            ours: Some(28),
            hpa: None,
            wanted: 20,
            ready: 18,
            queue: Some(3.0),
            note: "model, scale_up".into(),
        });
        assert_eq!(
            l,
            "    12     41.2/s      14    28     –      20     18       3  model, scale_up"
        );
        // Columns in characters (the "–" of an unknown value is one character, three bytes).
        let col = |s: &str, pat: &str| s[..s.find(pat).unwrap()].chars().count();
        assert_eq!(col(&h, "last decision"), col(&l, "model"));
    }

    #[test]
    fn the_mode_is_read_in_any_case() {
        assert_eq!(super::parse_mode("shadow").unwrap(), "Shadow");
        assert_eq!(super::parse_mode("ACTIVE").unwrap(), "Active");
        assert!(
            super::parse_mode("passive")
                .unwrap_err()
                .contains("Active or Shadow")
        );
    }

    /// Issue 21: each run's decision log is its own, in a folder named by the run's start.
    #[test]
    fn each_run_gets_its_own_folder_named_by_its_start() {
        let t = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(
            super::run_dir(t(1_700_000_000)),
            std::path::PathBuf::from("runs/dev-cluster-20231114T221320Z")
        );
        assert_ne!(
            super::run_dir(t(1_700_000_000)),
            super::run_dir(t(1_700_000_001))
        );
    }
}
