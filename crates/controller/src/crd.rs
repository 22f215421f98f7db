//! The `RLAutoscaler` custom resource (`rlscale.dev/v1alpha1`), shaped like KEDA's `ScaledObject`.
//!
//! ```yaml
//! apiVersion: rlscale.dev/v1alpha1
//! kind: RLAutoscaler
//! metadata: { name: llama-8b, namespace: serving }
//! spec:
//!   scaleTargetRef: { name: llama-8b }          # apps/v1 Deployment by default
//!   minReplicas: 1
//!   maxReplicas: 16
//!   mode: Shadow                                # or Active
//!   model: /models/default.json
//!   prometheus: { serverAddress: http://prometheus.monitoring:9090 }
//!   serviceProfile: { coldStartSeconds: 180, capacityRps: 4, gpusPerReplica: 1, usdPerGpuHour: 0.8, sloLatencySeconds: 20 }
//! ```
//!
//! The controller watches these objects as untyped JSON and parses each one on its own
//! ([`RLAutoscaler::parse`]), so one object with a bad spec gets a condition and an Event instead of
//! breaking the watch for every other object.

use std::collections::BTreeMap;
use std::fmt;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the custom resource.
pub const GROUP: &str = "rlscale.dev";
/// Its version.
pub const VERSION: &str = "v1alpha1";
/// Its kind.
pub const KIND: &str = "RLAutoscaler";
/// Its plural (the URL segment).
pub const PLURAL: &str = "rlautoscalers";

/// Scales one workload with a learned policy, or only records what it would do (shadow mode).
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "rlscale.dev",
    version = "v1alpha1",
    kind = "RLAutoscaler",
    plural = "rlautoscalers",
    shortname = "rla",
    namespaced,
    status = "RLAutoscalerStatus",
    derive = "PartialEq",
    doc = "Scales a workload with a learned GPU-serving policy (Active), or records beside the HPA what it would do (Shadow).",
    printcolumn = r#"{"name": "Target", "type": "string", "jsonPath": ".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}"#,
    printcolumn = r#"{"name": "Min", "type": "integer", "jsonPath": ".spec.minReplicas"}"#,
    printcolumn = r#"{"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicas"}"#,
    printcolumn = r#"{"name": "Current", "type": "integer", "jsonPath": ".status.currentReplicas"}"#,
    printcolumn = r#"{"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"}"#,
    printcolumn = r#"{"name": "HPA", "type": "integer", "jsonPath": ".status.hpaDesiredReplicas"}"#,
    printcolumn = r#"{"name": "Source", "type": "string", "jsonPath": ".status.lastDecision.source"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RLAutoscalerSpec {
    /// The workload to scale: any resource with a scale subresource (an `apps/v1` Deployment by default).
    pub scale_target_ref: ScaleTargetRef,
    /// Fewest replicas (default 1).
    #[serde(default = "default_min")]
    #[schemars(range(min = 0))]
    pub min_replicas: u32,
    /// Most replicas.
    #[schemars(range(min = 1))]
    pub max_replicas: u32,
    /// `Active` scales the target; `Shadow` (default) never writes to it and records its
    /// recommendation beside the HPA's.
    #[serde(default)]
    pub mode: Mode,
    /// Path of the model file inside the controller's container (e.g. a mounted ConfigMap). Absent,
    /// or unreadable: the fallback law decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Where and what to query.
    pub prometheus: PrometheusSpec,
    /// What the operator knows about the served model; part of the policy's observation.
    pub service_profile: ServiceProfileSpec,
    /// The rule that decides when the model cannot be trusted: the same table as
    /// `configs/baselines/*.toml`, e.g. `{law: hpa}` or `{law: keda, ...}`. Default: HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub fallback: Option<serde_json::Value>,
    /// Limits applied to every decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<GuardrailsSpec>,
    /// Seconds between two decisions (default 15).
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval: u32,
    /// The HPA to compare with in shadow mode. Default: the HPA in the namespace whose
    /// `scaleTargetRef` names the same workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_ref: Option<String>,
}

fn default_min() -> u32 {
    1
}

fn default_interval() -> u32 {
    15
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A reference to the scaled workload (`autoscaling/v2` `CrossVersionObjectReference`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// API version of the target (default `apps/v1`).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Kind of the target (default `Deployment`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Name of the target, in the RLAutoscaler's namespace.
    pub name: String,
}

fn default_api_version() -> String {
    "apps/v1".into()
}

fn default_kind() -> String {
    "Deployment".into()
}

/// Active or shadow.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
pub enum Mode {
    /// Patch the target's scale subresource.
    Active,
    /// Never write to the target; record the recommendation beside the HPA's.
    #[default]
    Shadow,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Active => "Active",
            Mode::Shadow => "Shadow",
        })
    }
}

/// The Prometheus server and one PromQL instant query per snapshot field.
///
/// In a query, `$namespace` is replaced by the RLAutoscaler's namespace and `$target` by the target's
/// name. Each query must return one series (aggregate with `sum`/`avg`) or nothing.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`.
    pub server_address: String,
    /// Timeout of one query, seconds (default 5).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Queries that replace the defaults, by field.
    #[serde(default)]
    pub queries: Queries,
}

fn default_timeout() -> f64 {
    5.0
}

/// One PromQL query per [`rlscale_core::MetricsSnapshot`] field; every one has a default aimed at vLLM
/// and the DCGM exporter (see [`Queries::resolved`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Queries {
    /// Arrival rate over 1 minute, requests/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_1m: Option<String>,
    /// Arrival rate over 5 minutes, requests/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_5m: Option<String>,
    /// Requests waiting, summed over replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<String>,
    /// Requests running, summed over replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// Mean GPU utilization, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_utilization: Option<String>,
    /// Mean KV-cache usage, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage: Option<String>,
    /// Median latency, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50: Option<String>,
    /// 95th percentile latency, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<String>,
    /// 99th percentile latency, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<String>,
    /// Highest 1-minute arrival rate of the last 15 minutes, requests/s (feature schema 2). Default:
    /// `max_over_time((<arrivalRate1m>)[15m:15s])`, over whichever `arrivalRate1m` query is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_peak_15m: Option<String>,
    /// Highest 1-minute arrival rate of the last hour, requests/s (feature schema 2). Default:
    /// `max_over_time((<arrivalRate1m>)[1h:15s])`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_peak_1h: Option<String>,
    /// Mean arrival rate over the last hour, requests/s (feature schema 2). Default:
    /// `avg_over_time((<arrivalRate1m>)[1h:15s])`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate_1h: Option<String>,
}

/// What follows `$target` in the name of a pod the target owns, as an RE2 regex (Prometheus anchors it
/// at both ends):
/// - a Deployment's pod, `<name>-<pod-template-hash>-<5 chars>`: the ReplicaSet is
///   `<name>-<hash>` (the hash is `[a-z0-9]+`, typically 9–10 characters) and the pod's
///   `generateName` suffix is 5 characters of `bcdfghjklmnpqrstvwxz2456789`;
/// - a StatefulSet's pod, `<name>-<ordinal>`.
///
/// A prefix (`$target-.*`) also selects every workload whose name starts with the target's and a
/// dash: the pods of `llm-shadow` are `llm-…` too. This pattern does not: after `<name>-` it allows
/// exactly one dash-free segment (an ordinal) or two (hash and suffix), and another Deployment's pods
/// have at least three. NB: when `<name>-<hash>-` exceeds 58 characters (a Deployment name of about
/// 47 or more), Kubernetes truncates the pod name's base and the pod no longer has this shape: the
/// default queries then find no data (`MetricsAvailable=False/NoData`); write the queries by hand.
pub const POD_NAME_SUFFIX: &str = "-([a-z0-9]+-[bcdfghjklmnpqrstvwxz2456789]{5}|[0-9]+)";

/// The series selector every default query uses: the target's own pods in its namespace.
fn sel() -> String {
    format!(r#"namespace="$namespace",pod=~"$target{POD_NAME_SUFFIX}""#)
}

/// `<agg>_over_time((<rate_1m>)[<window>:15s])`: a subquery over the 1-minute rate at the control
/// interval's resolution, as the simulator computes the hour-scale windows.
fn over(agg: &str, window: &str, rate_1m: &str) -> String {
    format!("{agg}_over_time(({rate_1m})[{window}:15s])")
}

/// A snapshot field a query fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `arrivalRate1m`
    ArrivalRate1m,
    /// `arrivalRate5m`
    ArrivalRate5m,
    /// `queueDepth`
    QueueDepth,
    /// `running`
    Running,
    /// `gpuUtilization`
    GpuUtilization,
    /// `kvCacheUsage`
    KvCacheUsage,
    /// `latencyP50`
    LatencyP50,
    /// `latencyP95`
    LatencyP95,
    /// `latencyP99`
    LatencyP99,
    /// `arrivalRatePeak15m`
    ArrivalRatePeak15m,
    /// `arrivalRatePeak1h`
    ArrivalRatePeak1h,
    /// `arrivalRate1h`
    ArrivalRate1h,
}

impl Field {
    /// Every field, in snapshot order.
    pub const ALL: [Field; 12] = [
        Field::ArrivalRate1m,
        Field::ArrivalRate5m,
        Field::QueueDepth,
        Field::Running,
        Field::GpuUtilization,
        Field::KvCacheUsage,
        Field::LatencyP50,
        Field::LatencyP95,
        Field::LatencyP99,
        Field::ArrivalRatePeak15m,
        Field::ArrivalRatePeak1h,
        Field::ArrivalRate1h,
    ];

    /// The field's name in `spec.prometheus.queries`.
    pub fn name(self) -> &'static str {
        match self {
            Field::ArrivalRate1m => "arrivalRate1m",
            Field::ArrivalRate5m => "arrivalRate5m",
            Field::QueueDepth => "queueDepth",
            Field::Running => "running",
            Field::GpuUtilization => "gpuUtilization",
            Field::KvCacheUsage => "kvCacheUsage",
            Field::LatencyP50 => "latencyP50",
            Field::LatencyP95 => "latencyP95",
            Field::LatencyP99 => "latencyP99",
            Field::ArrivalRatePeak15m => "arrivalRatePeak15m",
            Field::ArrivalRatePeak1h => "arrivalRatePeak1h",
            Field::ArrivalRate1h => "arrivalRate1h",
        }
    }

    /// Whether an empty result or NaN means "no data" (latency quantiles with no completed request)
    /// rather than a missing metric. The hour-scale rates are optional too: only a schema-2 model reads
    /// them, and the runtime falls back (naming the field) when one is missing.
    pub fn optional(self) -> bool {
        matches!(
            self,
            Field::LatencyP50
                | Field::LatencyP95
                | Field::LatencyP99
                | Field::ArrivalRatePeak15m
                | Field::ArrivalRatePeak1h
                | Field::ArrivalRate1h
        )
    }

    /// The default query: vLLM's metric names and the DCGM exporter's GPU utilization (a percentage).
    ///
    /// NB: vLLM has no arrivals counter; the default arrival rate is the completion rate
    /// (`vllm:request_success_total`), which equals arrivals except while the queue grows, and the queue
    /// depth is observed separately. Point `arrivalRate1m` at a gateway's request counter when you have one.
    pub fn default_query(self) -> String {
        let sel = sel();
        let q = |pct: &str| {
            format!(
                "histogram_quantile({pct}, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{{{sel}}}[1m])))"
            )
        };
        match self {
            Field::ArrivalRate1m => format!("sum(rate(vllm:request_success_total{{{sel}}}[1m]))"),
            Field::ArrivalRate5m => format!("sum(rate(vllm:request_success_total{{{sel}}}[5m]))"),
            Field::QueueDepth => format!("sum(vllm:num_requests_waiting{{{sel}}})"),
            Field::Running => format!("sum(vllm:num_requests_running{{{sel}}})"),
            Field::GpuUtilization => format!("avg(DCGM_FI_DEV_GPU_UTIL{{{sel}}}) / 100"),
            Field::KvCacheUsage => format!("avg(vllm:kv_cache_usage_perc{{{sel}}})"),
            Field::LatencyP50 => q("0.5"),
            Field::LatencyP95 => q("0.95"),
            Field::LatencyP99 => q("0.99"),
            Field::ArrivalRatePeak15m => over("max", "15m", &Field::ArrivalRate1m.default_query()),
            Field::ArrivalRatePeak1h => over("max", "1h", &Field::ArrivalRate1m.default_query()),
            Field::ArrivalRate1h => over("avg", "1h", &Field::ArrivalRate1m.default_query()),
        }
    }
}

impl Queries {
    fn get(&self, f: Field) -> Option<&String> {
        match f {
            Field::ArrivalRate1m => self.arrival_rate_1m.as_ref(),
            Field::ArrivalRate5m => self.arrival_rate_5m.as_ref(),
            Field::QueueDepth => self.queue_depth.as_ref(),
            Field::Running => self.running.as_ref(),
            Field::GpuUtilization => self.gpu_utilization.as_ref(),
            Field::KvCacheUsage => self.kv_cache_usage.as_ref(),
            Field::LatencyP50 => self.latency_p50.as_ref(),
            Field::LatencyP95 => self.latency_p95.as_ref(),
            Field::LatencyP99 => self.latency_p99.as_ref(),
            Field::ArrivalRatePeak15m => self.arrival_rate_peak_15m.as_ref(),
            Field::ArrivalRatePeak1h => self.arrival_rate_peak_1h.as_ref(),
            Field::ArrivalRate1h => self.arrival_rate_1h.as_ref(),
        }
    }

    /// Every field's query, defaults filled in, `$namespace` and `$target` substituted.
    pub fn resolved(&self, namespace: &str, target: &str) -> BTreeMap<Field, String> {
        Field::ALL
            .iter()
            .map(|&f| {
                let q = self.get(f).cloned().unwrap_or_else(|| {
                    // The hour-scale windows are over whichever 1-minute rate is in force, so that
                    // an overridden `arrivalRate1m` (a gateway's counter) carries over to them.
                    let rate_1m = || {
                        self.arrival_rate_1m
                            .clone()
                            .unwrap_or_else(|| Field::ArrivalRate1m.default_query())
                    };
                    match f {
                        Field::ArrivalRatePeak15m => over("max", "15m", &rate_1m()),
                        Field::ArrivalRatePeak1h => over("max", "1h", &rate_1m()),
                        Field::ArrivalRate1h => over("avg", "1h", &rate_1m()),
                        _ => f.default_query(),
                    }
                });
                (
                    f,
                    q.replace("$namespace", namespace)
                        .replace("$target", target),
                )
            })
            .collect()
    }
}

/// The service profile (`rlscale_core::ServiceProfile`), as the operator states it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProfileSpec {
    /// Cold start of one new replica (node, image pull, model load), seconds.
    pub cold_start_seconds: f64,
    /// Requests/s one replica serves at saturation.
    pub capacity_rps: f64,
    /// GPUs per replica (default 1).
    #[serde(default = "default_gpus")]
    pub gpus_per_replica: u32,
    /// Price of one GPU-hour, US dollars.
    pub usd_per_gpu_hour: f64,
    /// The SLO's per-request latency limit, seconds.
    pub slo_latency_seconds: f64,
}

fn default_gpus() -> u32 {
    1
}

impl ServiceProfileSpec {
    /// The core profile.
    pub fn to_profile(&self) -> rlscale_core::ServiceProfile {
        rlscale_core::ServiceProfile {
            cold_start_s: self.cold_start_seconds,
            capacity_rps: self.capacity_rps,
            gpus_per_replica: self.gpus_per_replica,
            usd_per_gpu_hour: self.usd_per_gpu_hour,
            slo_latency_s: self.slo_latency_seconds,
        }
    }
}

/// The runtime's guardrails (`rlscale_runtime::Guardrails`); each absent field keeps its default.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailsSpec {
    /// Most replicas added per decision (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step_up: Option<u32>,
    /// Most replicas removed per decision (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step_down: Option<u32>,
    /// Scale-down stabilization window, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_stabilization_seconds: Option<f64>,
    /// No scale-up beyond demand while replicas start (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_cascade: Option<bool>,
    /// Seconds for the queue to drain, for anti-cascade (default: the SLO latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_drain_seconds: Option<f64>,
    /// Headroom over demand, for anti-cascade (default 1.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_headroom: Option<f64>,
    /// Metrics older than this are stale, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness_seconds: Option<f64>,
}

/// What the controller observed and decided.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RLAutoscalerStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The target's `spec.replicas` when last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<u32>,
    /// Replicas the policy wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<u32>,
    /// The last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// When the controller last changed the target's replicas (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// Shadow mode: the HPA's `status.desiredReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_desired_replicas: Option<u32>,
    /// Shadow mode: the HPA's recommendation recomputed by rlscale's HPA law from the same metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_recomputed_replicas: Option<u32>,
    /// Shadow mode: running comparison of our recommendation with the HPA's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
    /// `Ready`, `MetricsAvailable`, `ModelLoaded`, `FallbackActive`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One decision.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// Replicas decided.
    pub replicas: u32,
    /// Who decided: `model`, `fallback`, `guardrail`.
    pub source: String,
    /// Why (`scale_up`, `no_model`, `anti_cascade`, …).
    pub reason: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A running summary of how our recommendation differs from the HPA's `desiredReplicas`
/// (ours − HPA's), since the controller started watching this object.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// Decisions compared.
    pub samples: u64,
    /// Decisions where ours was higher.
    pub higher: u64,
    /// Decisions where ours was lower.
    pub lower: u64,
    /// Mean of |ours − HPA's|, replicas.
    pub mean_abs: f64,
    /// Largest |ours − HPA's|, replicas.
    pub max_abs: u32,
    /// Mean of ours − HPA's, replicas (negative: we would run fewer).
    pub mean: f64,
}

impl Divergence {
    /// Add one comparison.
    pub fn add(&mut self, ours: u32, hpa: u32) {
        let d = f64::from(ours) - f64::from(hpa);
        self.samples += 1;
        let n = self.samples as f64;
        self.mean += (d - self.mean) / n;
        self.mean_abs += (d.abs() - self.mean_abs) / n;
        self.max_abs = self.max_abs.max(ours.abs_diff(hpa));
        if ours > hpa {
            self.higher += 1;
        } else if ours < hpa {
            self.lower += 1;
        }
    }
}

/// A status condition (`metav1.Condition`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `MetricsAvailable`, `ModelLoaded` or `FallbackActive`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CRD as YAML (what `rlscale crdgen` prints and `deploy/crd.yaml` holds).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&RLAutoscaler::crd()).expect("a CRD serializes to YAML")
}
