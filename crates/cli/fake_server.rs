//! `rlscale fake-server`: a stand-in for a vLLM Deployment, driven by the simulator, for tests and
//! `rlscale dev-cluster`.
//!
//! Every `control_interval_s / speedup` wall seconds it
//! 1. reads the Deployment's `spec.replicas` from the API server (what an autoscaler asked for);
//! 2. steps the simulator one control interval with that target (arrivals, queue, cold starts);
//! 3. writes the Deployment's `status` (`replicas`, `readyReplicas`, `updatedReplicas`,
//!    `availableReplicas`), as the Deployment controller and kubelet would;
//! 4. serves `/metrics` in Prometheus text format, one series per ready pod (`pod`, named as
//!    Kubernetes names a Deployment's pods, `<deployment>-<pod-template-hash>-<5 chars>`, see
//!    [`pod_names`]; `namespace`, `model_name`), with vLLM's names (`vllm:num_requests_waiting`,
//!    `vllm:num_requests_running`, `vllm:kv_cache_usage_perc`, `vllm:request_success_total`,
//!    `vllm:e2e_request_latency_seconds` histogram) and the DCGM exporter's `DCGM_FI_DEV_GPU_UTIL` (%).
//!
//! NB: simulated time runs `speedup` times faster than the wall clock. Counters advance by the
//! simulated count divided by `speedup`, so that `rate()` over wall time gives the simulated rate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rlscale_core::{Action, Env};
use rlscale_sim::{Overrides, Scenario, SimEnv};

use crate::BadInput;

/// Serve vLLM/DCGM-style metrics for a Deployment whose replicas the simulator plays.
#[derive(Debug, Parser)]
pub struct Args {
    /// Scenario id (in --envs) or path: the traffic and the service profile.
    #[arg(long)]
    pub scenario: String,
    /// Kubeconfig of the API server holding the Deployment.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the Deployment.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Name of the Deployment.
    #[arg(long)]
    pub deployment: String,
    /// Address of /metrics.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 15.0)]
    pub speedup: f64,
    /// Seed of the simulator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `model_name` label.
    #[arg(long, default_value = "meta-llama/Llama-3.1-8B-Instruct")]
    pub model_name: String,
}

/// Histogram bucket bounds (seconds) of `vllm:e2e_request_latency_seconds`, a subset of vLLM's.
const BUCKETS: [f64; 12] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0,
];

#[derive(Debug, Default)]
struct State {
    ready: u32,
    queue: f64,
    running: f64,
    gpu_util: f64,
    kv: f64,
    /// Per pod index: cumulative completions (÷ speedup) and latency bucket counts.
    completed: Vec<f64>,
    buckets: Vec<[f64; BUCKETS.len() + 1]>,
    latency_sum: Vec<f64>,
}

/// The alphabet of Kubernetes' generated name parts (`k8s.io/apimachinery/pkg/util/rand`): no vowels,
/// no `0`, `1`, `3`, so that no word is spelled.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits.
fn fnv32a(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The names of the first `n` pods of Deployment `ns/deployment`, as Kubernetes names them:
/// `<deployment>-<pod-template-hash>-<5 chars>`. Deterministic (a stand-in has no ReplicaSet).
///
/// - The hash is what the Deployment controller computes, `rand.SafeEncodeString` of the decimal
///   FNV-32a hash (here of `ns/deployment`, Kubernetes hashes the pod template): up to 10
///   characters, usually 9 or 10.
/// - The suffix (the API server's `generateName`, 5 random characters of [`ALPHANUMS`]) is pod `i`'s
///   index through a bijection of `0..27^5`, so that the names are distinct and the same every run.
pub(crate) fn pod_names(ns: &str, deployment: &str, n: usize) -> Vec<String> {
    let key = format!("{ns}/{deployment}");
    let hash: String = fnv32a(key.bytes())
        .to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect();
    const SPACE: u64 = 27u64.pow(5);
    // Not a multiple of 3: `i * STEP` is a bijection of `0..27^5` (27^5 = 3^15).
    const STEP: u64 = 0x9E37_79B1;
    let offset = u64::from(fnv32a(key.bytes().rev()));
    (0..n as u64)
        .map(|i| {
            let mut v = (offset + i * STEP) % SPACE;
            let mut suffix = [0u8; 5];
            for c in suffix.iter_mut().rev() {
                *c = ALPHANUMS[(v % 27) as usize];
                v /= 27;
            }
            let suffix = String::from_utf8_lossy(&suffix).into_owned();
            format!("{deployment}-{hash}-{suffix}")
        })
        .collect()
}

fn render(s: &State, ns: &str, deployment: &str, model: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let pods = s.ready as usize;
    let per = |x: f64| if pods > 0 { x / pods as f64 } else { 0.0 };
    let names = pod_names(ns, deployment, pods);
    let lbl = |i: usize| {
        format!(
            r#"model_name="{model}",namespace="{ns}",pod="{}""#,
            names[i]
        )
    };
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for i in 0..pods {
            let _ = writeln!(out, "{name}{{{}}} {v}", lbl(i));
        }
    };
    gauge(
        &mut out,
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        per(s.queue),
    );
    gauge(
        &mut out,
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        per(s.running),
    );
    gauge(
        &mut out,
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        s.kv,
    );
    gauge(
        &mut out,
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %).",
        (s.gpu_util * 100.0).round(),
    );
    let _ = writeln!(
        out,
        "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter"
    );
    for i in 0..pods {
        let _ = writeln!(
            out,
            "vllm:request_success_total{{{},finished_reason=\"stop\"}} {}",
            lbl(i),
            s.completed.get(i).copied().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        out,
        "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.\n# TYPE vllm:e2e_request_latency_seconds histogram"
    );
    for i in 0..pods {
        let b = s.buckets.get(i).copied().unwrap_or_default();
        let mut cum = 0.0;
        for (k, le) in BUCKETS.iter().enumerate() {
            cum += b[k];
            let _ = writeln!(
                out,
                "vllm:e2e_request_latency_seconds_bucket{{{},le=\"{le}\"}} {cum}",
                lbl(i)
            );
        }
        cum += b[BUCKETS.len()];
        let _ = writeln!(
            out,
            "vllm:e2e_request_latency_seconds_bucket{{{},le=\"+Inf\"}} {cum}",
            lbl(i)
        );
        let _ = writeln!(
            out,
            "vllm:e2e_request_latency_seconds_count{{{}}} {cum}",
            lbl(i)
        );
        let _ = writeln!(
            out,
            "vllm:e2e_request_latency_seconds_sum{{{}}} {}",
            lbl(i),
            s.latency_sum.get(i).copied().unwrap_or(0.0)
        );
    }
    out
}

/// Spread `n` completions over the latency buckets by the step's quantiles (p50, p95, p99): half at
/// the p50, 45 % at the p95, 4 % at the p99, 1 % beyond.
fn spread(b: &mut [f64; BUCKETS.len() + 1], sum: &mut f64, n: f64, q: [Option<f64>; 3]) {
    let put = |b: &mut [f64; BUCKETS.len() + 1], v: f64, w: f64| {
        let k = BUCKETS
            .iter()
            .position(|&le| v <= le)
            .unwrap_or(BUCKETS.len());
        b[k] += w;
    };
    let (p50, p95, p99) = match q {
        [Some(a), Some(b), Some(c)] => (a, b, c),
        _ => return,
    };
    for (v, w) in [(p50, 0.5), (p95, 0.45), (p99, 0.04), (p99 * 1.5, 0.01)] {
        put(b, v, n * w);
        *sum += v * n * w;
    }
}

pub fn run(envs: &std::path::Path, args: Args) -> anyhow::Result<()> {
    let scenario = Scenario::resolve(envs, &args.scenario, &Overrides::default())
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))?;
    if !(args.speedup.is_finite() && args.speedup > 0.0) {
        return Err(BadInput(format!("--speedup {} must be positive", args.speedup)).into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(Arc::new(scenario), args))
}

async fn serve(scenario: Arc<Scenario>, args: Args) -> anyhow::Result<()> {
    let cfg = rlscale_controller::cli::kube_config(args.kubeconfig.as_ref(), None).await?;
    let client = kube::Client::try_from(cfg).context("building the Kubernetes client")?;
    let api: Api<Deployment> = Api::namespaced(client, &args.namespace);
    let state = Arc::new(Mutex::new(State::default()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let app = {
        let state = state.clone();
        let (ns, dep, model) = (
            args.namespace.clone(),
            args.deployment.clone(),
            args.model_name.clone(),
        );
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let text = render(
                    &state.lock().unwrap_or_else(|e| e.into_inner()),
                    &ns,
                    &dep,
                    &model,
                );
                async move { ([("content-type", "text/plain; version=0.0.4")], text) }
            }),
        )
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eprintln!("fake-server: /metrics on {}", args.listen);

    let mut env = SimEnv::new(scenario.clone());
    env.reset(Some(args.seed));
    let step_s = scenario.file.control_interval_s;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(step_s / args.speedup));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let target = match api.get_opt(&args.deployment).await {
            Ok(Some(d)) => d.spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as u32,
            Ok(None) => {
                eprintln!(
                    "fake-server: Deployment {}/{} not found",
                    args.namespace, args.deployment
                );
                continue;
            }
            Err(e) => {
                eprintln!("fake-server: reading the Deployment: {e}");
                continue;
            }
        };
        let step = match env.step(&Action::Replicas(target)) {
            Ok(s) => s,
            Err(_) => {
                env.reset(Some(args.seed));
                continue;
            }
        };
        if step.truncated {
            env.reset(Some(args.seed));
        }
        let info = step.info;
        {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.ready = info.ready;
            s.queue = info.queue_len as f64;
            s.running = info.running as f64;
            s.gpu_util = info.snapshot.gpu_utilization;
            s.kv = info.snapshot.kv_cache_usage;
            let pods = info.ready.max(1) as usize;
            if s.completed.len() < pods {
                s.completed.resize(pods, 0.0);
                s.buckets.resize(pods, [0.0; BUCKETS.len() + 1]);
                s.latency_sum.resize(pods, 0.0);
            }
            let each = info.completed as f64 / args.speedup / pods as f64;
            let q = [
                info.snapshot.latency_p50_s,
                info.snapshot.latency_p95_s,
                info.snapshot.latency_p99_s,
            ];
            for i in 0..pods {
                s.completed[i] += each;
                let State {
                    buckets,
                    latency_sum,
                    ..
                } = &mut *s;
                spread(&mut buckets[i], &mut latency_sum[i], each, q);
            }
        }
        let status = serde_json::json!({"status": {
            "replicas": info.ready + info.starting,
            "updatedReplicas": info.ready + info.starting,
            "readyReplicas": info.ready,
            "availableReplicas": info.ready,
        }});
        if let Err(e) = api
            .patch_status(
                &args.deployment,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
        {
            eprintln!("fake-server: writing the Deployment status: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_has_one_series_per_ready_pod() {
        let mut s = State {
            ready: 2,
            queue: 10.0,
            running: 40.0,
            gpu_util: 0.5,
            kv: 0.25,
            ..Default::default()
        };
        s.completed = vec![3.0, 4.0];
        s.buckets = vec![[0.0; BUCKETS.len() + 1]; 2];
        s.latency_sum = vec![0.0; 2];
        spread(
            &mut s.buckets[0],
            &mut s.latency_sum[0],
            10.0,
            [Some(1.0), Some(4.0), Some(9.0)],
        );
        let t = render(&s, "default", "web", "m");
        let pods = pod_names("default", "web", 2);
        let (p0, p1) = (&pods[0], &pods[1]);
        assert!(
            t.contains(&format!(
                r#"vllm:num_requests_waiting{{model_name="m",namespace="default",pod="{p1}"}} 5"#
            )),
            "{t}"
        );
        assert!(t.contains(&format!(
            r#"DCGM_FI_DEV_GPU_UTIL{{model_name="m",namespace="default",pod="{p0}"}} 50"#
        )));
        assert!(t.contains(&format!(r#"vllm:request_success_total{{model_name="m",namespace="default",pod="{p1}",finished_reason="stop"}} 4"#)));
        assert!(t.contains(&format!(r#"vllm:e2e_request_latency_seconds_bucket{{model_name="m",namespace="default",pod="{p0}",le="1"}} 5"#)), "{t}");
        assert!(t.contains(&format!(r#"vllm:e2e_request_latency_seconds_count{{model_name="m",namespace="default",pod="{p0}"}} 10"#)));
    }

    #[test]
    fn pods_are_named_as_kubernetes_names_a_deployments_pods() {
        let names = pod_names("default", "llm", 500);
        assert_eq!(names, pod_names("default", "llm", 500), "deterministic");
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), 500, "distinct");
        let is_alnum = |s: &str| s.bytes().all(|b| ALPHANUMS.contains(&b));
        for n in &names {
            // `llm-<hash>-<suffix>`: one ReplicaSet (one hash), a 5-character suffix per pod.
            let rest = n.strip_prefix("llm-").unwrap();
            let (hash, suffix) = rest.split_once('-').unwrap();
            assert!((1..=10).contains(&hash.len()) && is_alnum(hash), "{n}");
            assert_eq!(suffix.len(), 5, "{n}");
            assert!(is_alnum(suffix), "{n}");
            assert!(n.starts_with(&format!("llm-{hash}-")));
        }
        let first = |d: &str| pod_names("default", d, 1).remove(0);
        let hash = |n: &str| n.rsplit('-').nth(1).unwrap().to_string();
        assert_ne!(hash(&first("llm")), hash(&first("llm-shadow")));
        assert!(first("llm-shadow").starts_with("llm-shadow-"));
        // Pod i keeps its name as the Deployment grows.
        assert_eq!(pod_names("default", "llm", 3)[..], names[..3]);
    }
}
