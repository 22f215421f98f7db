//! The reconcile loop (controller-rs style): [`reconcile`] gathers inputs (the object, its target's
//! scale, Prometheus), calls the runtime's pure decision pipeline, and then applies (active) or records
//! (shadow) the result. [`run`] wires it into kube's `Controller` with the web server beside it.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::applier;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use rlscale_baselines::{Baseline, BaselineConfig, Bounds};
use rlscale_core::{Policy, SimTime, Source};
use rlscale_runtime::decision_log::{ConfigLine, DecisionLine, LogLine};
use rlscale_runtime::{ModelFile, Outcome, Runtime, RuntimeConfig};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::crd::{
    Divergence, GROUP, KIND, LastDecision, Mode, PLURAL, RLAutoscalerSpec, RLAutoscalerStatus,
    VERSION,
};
use crate::decide::{self, QueryResult, camel, rfc3339, set_condition};
use crate::lease::{LeaderElector, LeaseConfig};
use crate::loglimit::{LOG_PERIOD_S, LogLimiter};
use crate::metrics::Metrics;
use crate::prom::Prometheus;

/// Why a reconcile failed (it is retried; the object gets a condition where one applies).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The HPA watch has not listed yet (shadow mode needs it).
    #[error("the HorizontalPodAutoscaler watch has not listed yet")]
    HpaWatch,
    /// The reconcile took longer than its limit (a hung API server or Prometheus); it was abandoned.
    #[error("the reconcile did not finish within {0:?}; abandoned")]
    Timeout(Duration),
}

impl Error {
    /// A low-cardinality label for `rlscale_reconcile_failures_total{error}`.
    pub fn metric_label(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(s)) => format!("kube_api_{}", s.code),
            Error::Kube(_) => "kube_transport".into(),
            Error::Timeout(_) => "timeout".into(),
            Error::HpaWatch => "hpa_watch_not_synced".into(),
        }
    }
}

/// The field manager of every write the controller makes (`managedFields`, the API server's audit).
pub const FIELD_MANAGER: &str = "rlscale-controller";

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// The `RLAutoscaler` resource, for untyped access.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// Unix seconds now. The only clock the controller reads; policies get the time as an argument.
pub fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The JSONL decision log: one line per decision, appended and flushed.
#[derive(Debug)]
pub struct DecisionLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl DecisionLog {
    /// Open (append) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(DecisionLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    fn write(&self, line: &LogLine) {
        let mut text = serde_json::to_string(line).expect("a log line serializes");
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.flush()) {
            warn!(path = %self.path.display(), error = %e, "cannot append to the decision log");
        }
    }
}

/// Loaded model files by path, reloaded when the file changes. A file that becomes unreadable or
/// invalid after a good load keeps the last good model (and says so).
#[derive(Debug, Default)]
pub struct ModelCache {
    entries: Mutex<HashMap<String, ModelEntry>>,
}

#[derive(Debug)]
struct ModelEntry {
    stamp: Option<(SystemTime, u64)>,
    last_good: Option<Arc<ModelFile>>,
    error: Option<String>,
}

/// What [`ModelCache::get`] found.
#[derive(Debug, Clone)]
pub struct ModelState {
    /// The model to use, or why there is none.
    pub model: Result<Arc<ModelFile>, String>,
    /// The error of the latest load, when it failed (the last good model may still be in use).
    pub error: Option<String>,
}

impl ModelCache {
    /// The model at `path`, (re)loaded if its modification time or size changed.
    pub fn get(&self, path: &str) -> ModelState {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(path.to_string()).or_insert(ModelEntry {
            stamp: None,
            last_good: None,
            error: None,
        });
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_none() || stamp != entry.stamp {
            entry.stamp = stamp;
            match ModelFile::load(Path::new(path)) {
                Ok(m) => {
                    entry.last_good = Some(Arc::new(m));
                    entry.error = None;
                }
                Err(e) => entry.error = Some(e.to_string()),
            }
        }
        ModelState {
            model: match (&entry.last_good, &entry.error) {
                (Some(m), _) => Ok(m.clone()),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => Err(format!("{path}: not loaded")),
            },
            error: entry.error.clone(),
        }
    }
}

struct ObjState {
    generation: Option<i64>,
    model: Option<usize>,
    runtime: Runtime,
    shadow_hpa: Baseline,
    divergence: Divergence,
}

/// The HTTP client for Prometheus: one pool for every object. Idle connections are capped (at the
/// reconcile concurrency) and closed after 30 s: a burst of queries must not leave a socket (and its
/// buffers, about 23 KB of RSS) open per query it ran at once.
pub fn prometheus_client(max_idle: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::from(max_idle.max(1)))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| {
            warn!(error = %e, "cannot configure the Prometheus HTTP client; using the defaults");
            reqwest::Client::new()
        })
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The controller's metrics.
    pub metrics: Arc<Metrics>,
    /// HTTP client for Prometheus (one connection pool).
    pub http: reqwest::Client,
    /// Model files.
    pub models: ModelCache,
    /// The decision log, when one is kept.
    pub log: Option<DecisionLog>,
    /// Unix seconds now.
    pub clock: Arc<dyn Fn() -> f64 + Send + Sync>,
    /// Each object's decision state, by `metadata.uid` (see [`object_key`]).
    states: Mutex<HashMap<String, ObjState>>,
    /// Last warning published per object (by uid) and topic, so that a persisting problem is not
    /// re-published every interval.
    warned: Mutex<HashMap<(String, String), String>>,
    /// Which repeated failure lines get logged (per object and kind: the first, then one a minute).
    logs: Mutex<LogLimiter>,
    /// Set once the controller's watch has listed the objects.
    pub ready: AtomicBool,
    /// HPAs by watch (set by [`run`]); `None`: look them up through the API.
    pub hpas: Mutex<Option<reflector::Store<HorizontalPodAutoscaler>>>,
    /// Whether the HPA watch has listed.
    pub hpas_listed: AtomicBool,
    /// A reconcile running longer than this is abandoned and retried (a hung API server must not stall
    /// an object forever). Default 30 s.
    pub reconcile_timeout: Duration,
    /// Reconciles in flight at most (kube's applier limit).
    pub max_concurrent_reconciles: u16,
}

impl Context {
    /// A context; `reporter` names the controller in Events.
    pub fn new(
        client: Client,
        reporter: &str,
        metrics: Arc<Metrics>,
        log: Option<DecisionLog>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: reporter.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Context {
            client,
            recorder,
            metrics,
            http: prometheus_client(DEFAULT_MAX_CONCURRENT_RECONCILES),
            models: ModelCache::default(),
            log,
            clock: Arc::new(wall_clock),
            states: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashMap::new()),
            logs: Mutex::new(LogLimiter::new(LOG_PERIOD_S)),
            ready: AtomicBool::new(false),
            reconcile_timeout: Duration::from_secs(30),
            max_concurrent_reconciles: DEFAULT_MAX_CONCURRENT_RECONCILES,
            hpas: Mutex::new(None),
            hpas_listed: AtomicBool::new(false),
        }
    }

    /// Publish an Event; whether the API server took it.
    ///
    /// kube's [`Recorder`] folds an Event into an earlier one of the same type, reason, `action` and
    /// object (seen within the last 6 min), counting it (`series.count`) but keeping the earlier
    /// note: the `action` decides which Events are repeats (see [`scale_action`]).
    async fn event(
        &self,
        obj: &DynamicObject,
        type_: EventType,
        reason: &str,
        action: String,
        note: String,
    ) -> bool {
        let reference = obj.object_ref(&resource());
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(event_note(note)),
            action,
            secondary: None,
        };
        match self.recorder.publish(&ev, &reference).await {
            Ok(()) => true,
            Err(e) => {
                if let Some(suppressed) = self.admit_log(&object_key(obj), "event") {
                    warn!(object = %display_name(obj), error = %e, reason, suppressed, "cannot publish an Event");
                }
                false
            }
        }
    }

    /// Publish a Warning once per distinct message per object and topic (`spec`, `target`, `metrics`,
    /// `model`, `hpa`, `scale`, `status`), so that a persisting problem is not re-published every
    /// interval and two problems at once do not re-publish each other.
    async fn warn_once(&self, obj: &DynamicObject, topic: &str, reason: &str, message: &str) {
        let key = (object_key(obj), topic.to_string());
        let text = format!("{reason}: {message}");
        let fresh = {
            let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            w.insert(key.clone(), text.clone()).as_deref() != Some(text.as_str())
        };
        if fresh
            && !self
                .event(
                    obj,
                    EventType::Warning,
                    reason,
                    warning_action(topic, message),
                    message.to_string(),
                )
                .await
        {
            // Not published (the API server refused it or did not answer): not marked either, so
            // that the next occurrence tries again.
            let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            if w.get(&key) == Some(&text) {
                w.remove(&key);
            }
        }
    }

    /// Whether to log a repeated failure line of `kind` about the object `key` now: `Some(n)`, with the
    /// `n` lines held back since the last one logged, or `None` (held back). See [`LogLimiter`].
    fn admit_log(&self, key: &str, kind: &str) -> Option<u64> {
        let now = (self.clock)();
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(key, kind, now)
    }

    /// The problem of `topic` is gone: its next occurrence is published again.
    fn clear_warning(&self, obj: &DynamicObject, topic: &str) {
        let key = (object_key(obj), topic.to_string());
        self.warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Forget the state of the object whose uid is `uid` (it was deleted).
    pub fn forget(&self, uid: &str) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _), _| k != uid);
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
    }

    /// Forget the state of every object whose uid is not in `live` (after a relist: an object deleted
    /// while the watch was down gets no delete event).
    pub fn forget_all_but(&self, live: &std::collections::HashSet<String>) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| live.contains(k));
        self.warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _), _| live.contains(k));
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k| live.contains(k));
    }

    /// Forget every object's decision state (after losing the leader lease: a new term starts fresh).
    fn forget_all(&self) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.ready.store(false, Ordering::Relaxed);
    }
}

/// The longest Event note the API server accepts, in bytes (`NoteLengthLimit`, 1024: a longer one is
/// refused with a 422).
pub const EVENT_NOTE_LIMIT: usize = 1024;

/// `note` cut to [`EVENT_NOTE_LIMIT`] bytes at a character boundary, ending in `…` when cut. The
/// full text stays in the object's condition.
pub fn event_note(note: String) -> String {
    if note.len() <= EVENT_NOTE_LIMIT {
        return note;
    }
    const MORE: &str = "…";
    let mut end = EVENT_NOTE_LIMIT - MORE.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &note[..end])
}

/// The `action` of the `Scaled` Event of a scale `from` → `to`: `Scale2To10`. kube's [`Recorder`]
/// folds Events of one object, type, reason and action into the first (a `series` count, the first
/// note kept); with one action for every scaling, `kubectl describe` showed `2 → 10 replicas (x27)`
/// for 27 different scalings (issue 18, bug 5). Keyed by its numbers, each different scaling is an
/// Event of its own, and only the same scaling again counts up.
pub fn scale_action(from: u32, to: u32) -> String {
    format!("Scale{from}To{to}")
}

/// The `action` of a Warning about `topic` saying `message`: `Reconcile/<topic>/<8 hex digits of the
/// message's FNV-1a hash>`. [`Context::warn_once`] publishes only when a topic's message changes, so
/// with one action per reason every new text (an unreachable Prometheus, then another URL; a missing
/// Deployment, then another name) was folded into the first Warning as a count, its note kept, as the
/// `Scaled` Events were (issue 18, bug 5). Keyed by the text, a new message is a new Event and only the
/// same message again counts up. The hash is stable across runs and platforms.
pub fn warning_action(topic: &str, message: &str) -> String {
    let hash = message.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("Reconcile/{topic}/{hash:08x}")
}

/// The key of an object's decision state and warnings: its `metadata.uid`, which the API server
/// assigns anew to every object it creates. Keyed by namespace/name, an `RLAutoscaler` deleted and
/// created again under the same name (at generation 1 again) would inherit the deleted one's runtime,
/// bounds included (issue 18, bug 2). `namespace/name` only for an object without a uid (never from an
/// API server).
pub fn object_key(obj: &DynamicObject) -> String {
    match &obj.metadata.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => display_name(obj),
    }
}

/// `namespace/name`, for log lines.
fn display_name(obj: &DynamicObject) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// This object's phase within its interval, in seconds: a stable hash (FNV-1a, 64 bit) of
/// `namespace/name`, the same in every process and after every restart.
pub fn phase_s(ns: &str, name: &str, interval_s: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain(std::iter::once(b'/')).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let period_ms = u64::from(interval_s.max(1)) * 1000;
    (h % period_ms) as f64 / 1000.0
}

/// How long until this object's next decision: the first instant at its phase
/// (`t ≡ phase_s mod interval`) at least half an interval from `now`.
///
/// Requeueing `interval` after a reconcile ends keeps every object in the phase it started in: after a
/// restart (or a leader change) all of them start at once, so all of them decide at once every interval,
/// and the last of each burst waits behind the rest (BENCHMARKS.md, "Controller at 1000 targets"). A
/// fixed phase per object spreads them evenly over the interval whatever their start, and keeps each
/// one's period at exactly `interval` (a requeue after the end drifts by the reconcile's own duration).
/// The half-interval floor keeps the first decision after a start from repeating a moment later.
pub fn until_next_decision(ns: &str, name: &str, interval_s: u32, now: f64) -> Duration {
    let i = f64::from(interval_s.max(1));
    if !now.is_finite() {
        return Duration::from_secs_f64(i);
    }
    let phase = phase_s(ns, name, interval_s);
    let earliest = now + i / 2.0;
    let k = ((earliest - phase) / i).ceil();
    let next = phase + k * i;
    Duration::from_secs_f64((next - now).clamp(i / 2.0, 1.5 * i))
}

fn requeue(ctx: &Context, ns: &str, name: &str, interval_s: u32) -> Action {
    Action::requeue(until_next_decision(ns, name, interval_s, (ctx.clock)()))
}

async fn patch_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &RLAutoscalerStatus,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource());
    api.patch_status(name, &patch_params(), &Patch::Merge(status_patch(status)))
        .await?;
    Ok(())
}

/// The status's optional fields, as named in the object.
const STATUS_OPTIONAL_FIELDS: [&str; 8] = [
    "observedGeneration",
    "currentReplicas",
    "desiredReplicas",
    "lastDecision",
    "lastScaleTime",
    "hpaDesiredReplicas",
    "hpaRecomputedReplicas",
    "divergence",
];

/// The merge patch that makes the object's status `status`. A field that is `None` is sent as an
/// explicit `null`: left out, a merge patch keeps the old value, so Shadow → Active kept the last
/// `hpaDesiredReplicas` and `divergence` forever (issue 18, bug 6).
pub fn status_patch(status: &RLAutoscalerStatus) -> serde_json::Value {
    let mut body = serde_json::to_value(status).expect("the status serializes");
    if let Some(m) = body.as_object_mut() {
        for k in STATUS_OPTIONAL_FIELDS {
            m.entry(k).or_insert(serde_json::Value::Null);
        }
    }
    json!({ "status": body })
}

/// Whether the HPA's controller has written its status. A new HPA's status is the API server's
/// zero value, `{desiredReplicas: 0}` (the one required field): that is no recommendation, and
/// counted as one it skewed the divergence (issue 18, bug 7). Every sync of the HPA controller
/// writes more: its conditions (`AbleToScale`, always), `currentReplicas`, and on recent versions
/// `observedGeneration`; any of them (or `lastScaleTime`, `currentMetrics`) marks a written status.
pub fn hpa_synced(
    status: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus,
) -> bool {
    status.observed_generation.is_some()
        || status.conditions.as_ref().is_some_and(|c| !c.is_empty())
        || status.current_replicas.is_some()
        || status.last_scale_time.is_some()
        || status
            .current_metrics
            .as_ref()
            .is_some_and(|m| !m.is_empty())
}

/// The target's resource from its `apiVersion` and `kind`.
fn target_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// The target's ready replicas, from the workload object: its `status.readyReplicas` (Deployment,
/// StatefulSet, ReplicaSet, and most workload CRDs such as Argo Rollouts). The API server omits the
/// field when it is 0 (`omitempty`), so once the workload has a status an absent `readyReplicas`
/// means 0: falling back to the scale's `status.replicas` read 4 pods with none ready as 4 ready
/// (issue 18, bug 4). Only a workload without any status falls back to the scale's replicas.
pub fn ready_replicas(workload: &serde_json::Value, scale_status_replicas: Option<u32>) -> u32 {
    match workload.get("status") {
        Some(st) if st.is_object() => st
            .get("readyReplicas")
            .and_then(|v| v.as_u64())
            .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        _ => scale_status_replicas.unwrap_or(0),
    }
}

/// The HPA to compare with: `hpaRef`, or the one whose `scaleTargetRef` names our target.
///
/// Under [`run`] the HPAs come from a watch (a reflector store, listed once): a lookup is a scan in
/// memory, not an API call, so 1000 shadow objects in one namespace do not list 1000 HPAs each every
/// interval. Without a store (the unit tests' `Context`) it asks the API server.
async fn find_hpa(
    ctx: &Context,
    ns: &str,
    spec: &RLAutoscalerSpec,
) -> Result<Option<HorizontalPodAutoscaler>, Error> {
    let matches = |h: &HorizontalPodAutoscaler| {
        h.spec.as_ref().is_some_and(|s| {
            s.scale_target_ref.name == spec.scale_target_ref.name
                && s.scale_target_ref.kind == spec.scale_target_ref.kind
        })
    };
    let store = ctx.hpas.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(store) = store {
        // The first reconciles may come before the HPA watch has listed: wait for it (briefly).
        let t = std::time::Instant::now();
        while !ctx.hpas_listed.load(Ordering::Relaxed) {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(Error::HpaWatch);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return Ok(match &spec.hpa_ref {
            Some(name) => store
                .get(&ObjectRef::new(name).within(ns))
                .map(|h| (*h).clone()),
            // A scan under the store's read lock, without cloning its 1000 `Arc`s first.
            None => store
                .find(|h| h.metadata.namespace.as_deref() == Some(ns) && matches(h))
                .map(|h| (*h).clone()),
        });
    }
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(name) = &spec.hpa_ref {
        return Ok(api.get_opt(name).await?);
    }
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.into_iter().find(|h| matches(h)))
}

/// Ends [`reconcile`] early when a step says so (`ControlFlow::Break` carries the requeue).
macro_rules! step {
    ($e:expr) => {
        match $e {
            ControlFlow::Continue(v) => v,
            ControlFlow::Break(action) => return Ok(action),
        }
    };
}

/// One reconcile of one `RLAutoscaler`: spec → target → snapshot → decide → act → status. Each step is
/// a method of [`Reconcile`]; a step that ends the reconcile early (a bad spec, a missing target) has
/// written the object's status itself and breaks with the requeue.
#[tracing::instrument(skip(obj, ctx), fields(object = %display_name(&obj)))]
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.time_reconcile();
    let mut r = Reconcile::new(&obj, &ctx);
    let (spec, rcfg) = step!(r.spec().await?);
    let target = step!(r.target(&spec).await?);
    let scraped = r.snapshot(&spec, &target).await;
    let decided = r.decide(&spec, rcfg, &target, &scraped).await;
    let acted = r.act(&spec, &target, &decided).await?;
    r.write_status(&spec, &target, &scraped, &decided, &acted)
        .await?;
    r.report(&spec, &target, scraped, &decided, &acted);
    Ok(requeue(&ctx, &r.ns, &r.name, spec.interval))
}

/// What one reconcile has read so far, and the status it is writing.
struct Reconcile<'a> {
    obj: &'a DynamicObject,
    ctx: &'a Context,
    ns: String,
    name: String,
    /// The reconcile's time (`ctx.clock`), read once.
    now: f64,
    generation: Option<i64>,
    status: RLAutoscalerStatus,
}

/// The target's size, read from its scale subresource and its own status.
struct Target {
    api: Api<DynamicObject>,
    scale: Scale,
    /// `spec.replicas` of the scale.
    current: u32,
    ready: u32,
    starting: u32,
}

/// Prometheus's answers, as a snapshot.
struct Scraped {
    queries: usize,
    built: decide::Built,
}

/// The runtime's decision and the recomputed HPA's.
struct Decided {
    model: Option<ModelState>,
    outcome: Outcome,
    hpa_recomputed: Option<u32>,
    divergence: Divergence,
}

/// What acting on the decision did: the scale written (Active) or the HPA compared with (Shadow).
struct Acted {
    scaled: bool,
    hpa_desired: Option<u32>,
    /// An HPA found whose controller has not written its status yet.
    hpa_unsynced: Option<String>,
    divergence: Divergence,
}

impl<'a> Reconcile<'a> {
    fn new(obj: &'a DynamicObject, ctx: &'a Context) -> Self {
        let generation = obj.metadata.generation;
        let mut status: RLAutoscalerStatus = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        status.observed_generation = generation;
        Reconcile {
            obj,
            ctx,
            ns: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            now: (ctx.clock)(),
            generation,
            status,
        }
    }

    fn condition(&mut self, kind: &str, ok: bool, reason: &str, message: impl Into<String>) {
        set_condition(
            &mut self.status.conditions,
            kind,
            ok,
            reason,
            message,
            self.now,
            self.generation,
        );
    }

    /// Step 1: The spec, parsed and validated on its own: a bad object gets a condition and an Event.
    async fn spec(
        &mut self,
    ) -> Result<ControlFlow<Action, (RLAutoscalerSpec, RuntimeConfig)>, Error> {
        let parsed = match self.obj.data.get("spec") {
            Some(s) => serde_json::from_value::<RLAutoscalerSpec>(s.clone())
                .map_err(|e| format!("spec: {e}")),
            None => Err("spec is missing".to_string()),
        }
        .and_then(|spec| {
            decide::validate(&spec)
                .map(|cfg| (spec, cfg))
                .map_err(|e| e.to_string())
        });
        let message = match parsed {
            Ok(x) => return Ok(ControlFlow::Continue(x)),
            Err(message) => message,
        };
        let (ctx, obj) = (self.ctx, self.obj);
        warn!(%message, "invalid RLAutoscaler spec");
        self.condition("Ready", false, "InvalidSpec", &message);
        ctx.metrics.failure("invalid_spec");
        ctx.warn_once(obj, "spec", "InvalidSpec", &message).await;
        ctx.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&object_key(obj));
        patch_status(ctx, &self.ns, &self.name, &self.status).await?;
        let raw_interval = obj
            .data
            .pointer("/spec/interval")
            .and_then(|v| v.as_u64())
            .map(|v| v.clamp(1, 3600) as u32)
            .unwrap_or(15);
        Ok(ControlFlow::Break(requeue(
            ctx,
            &self.ns,
            &self.name,
            raw_interval,
        )))
    }

    /// Step 2: The target's scale, and how many of its replicas are ready.
    async fn target(
        &mut self,
        spec: &RLAutoscalerSpec,
    ) -> Result<ControlFlow<Action, Target>, Error> {
        let (ctx, obj) = (self.ctx, self.obj);
        let target = &spec.scale_target_ref;
        let tar = target_resource(&target.api_version, &target.kind);
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &self.ns, &tar);
        let scale = match api.get_scale(&target.name).await {
            Ok(s) => s,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let message = format!(
                    "{} {}/{} not found (or it has no scale subresource)",
                    target.kind, self.ns, target.name
                );
                self.condition("Ready", false, "TargetNotFound", &message);
                ctx.metrics.failure("target_not_found");
                ctx.warn_once(obj, "target", "TargetNotFound", &message)
                    .await;
                patch_status(ctx, &self.ns, &self.name, &self.status).await?;
                return Ok(ControlFlow::Break(requeue(
                    ctx,
                    &self.ns,
                    &self.name,
                    spec.interval,
                )));
            }
            Err(e) => return Err(e.into()),
        };
        ctx.clear_warning(obj, "target");
        let current = scale
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(0)
            .max(0) as u32;
        let scale_status_replicas = scale.status.as_ref().map(|s| s.replicas.max(0) as u32);
        let ready = match api.get_opt(&target.name).await? {
            Some(t) => ready_replicas(&t.data, scale_status_replicas),
            None => scale_status_replicas.unwrap_or(0),
        }
        .min(current.max(scale_status_replicas.unwrap_or(0)));
        Ok(ControlFlow::Continue(Target {
            api,
            scale,
            current,
            ready,
            starting: current.saturating_sub(ready),
        }))
    }

    /// Step 3: Prometheus, all queries at once, into one snapshot.
    async fn snapshot(&self, spec: &RLAutoscalerSpec, target: &Target) -> Scraped {
        let ctx = self.ctx;
        let prom = Prometheus::new(
            ctx.http.clone(),
            &spec.prometheus.server_address,
            Duration::from_secs_f64(spec.prometheus.timeout_seconds),
        );
        let queries = spec
            .prometheus
            .queries
            .resolved(&self.ns, &spec.scale_target_ref.name);
        let prom_start = std::time::Instant::now();
        let answers = futures::future::join_all(queries.iter().map(|(f, q)| {
            let prom = &prom;
            async move { (*f, prom.query(q).await) }
        }))
        .await;
        ctx.metrics
            .prometheus_duration
            .observe(prom_start.elapsed().as_secs_f64());
        let results: BTreeMap<_, QueryResult> = answers.into_iter().collect();
        for r in results.values() {
            if let Err(e) = r {
                ctx.metrics.query_failure(e.label());
            }
        }
        Scraped {
            queries: queries.len(),
            built: decide::build_snapshot(
                &results,
                target.ready,
                target.starting,
                spec,
                SimTime(self.now),
            ),
        }
    }

    /// Step 4: The decision: the object's runtime (rebuilt when the object, its generation or its model
    /// changed) and the recomputed HPA, on the snapshot.
    async fn decide(
        &self,
        spec: &RLAutoscalerSpec,
        rcfg: RuntimeConfig,
        target: &Target,
        scraped: &Scraped,
    ) -> Decided {
        let (ctx, obj, now, current) = (self.ctx, self.obj, self.now, target.current);
        let model = spec.model.as_deref().map(|p| ctx.models.get(p));
        let model_result = match &model {
            Some(m) => m.model.clone(),
            None => Err("no model configured (spec.model)".to_string()),
        };
        match &model {
            Some(ModelState { error: Some(e), .. }) => {
                let kept = if model_result.is_ok() {
                    "; the last good model stays in use"
                } else {
                    "; the fallback law decides"
                };
                ctx.warn_once(obj, "model", "ModelLoadFailed", &format!("{e}{kept}"))
                    .await;
            }
            _ => ctx.clear_warning(obj, "model"),
        }
        let model_id = model_result.as_ref().ok().map(|m| Arc::as_ptr(m) as usize);
        let snapshot = &scraped.built.snapshot;
        let mut states = ctx.states.lock().unwrap_or_else(|e| e.into_inner());
        let key = object_key(obj);
        let fresh = states
            .get(&key)
            .is_none_or(|s| s.generation != self.generation || s.model != model_id);
        if fresh {
            if let Some(log) = &ctx.log {
                log.write(&LogLine::Config(ConfigLine {
                    time: now,
                    namespace: self.ns.clone(),
                    name: self.name.clone(),
                    generation: self.generation,
                    model: spec.model.clone(),
                    runtime: rcfg.clone(),
                }));
            }
            let id = format!("{}/{}", self.ns, self.name);
            let runtime = Runtime::new(model_result, rcfg, id)
                .expect("validate() checked this configuration");
            let hpa_cfg = BaselineConfig::default_for("hpa").expect("hpa is a law");
            let shadow_hpa = hpa_cfg
                .build(
                    Bounds {
                        min: spec.min_replicas,
                        max: spec.max_replicas,
                    },
                    current.clamp(spec.min_replicas, spec.max_replicas),
                )
                .expect("the default HPA builds within valid bounds");
            let divergence = states
                .remove(&key)
                .map(|s| s.divergence)
                .unwrap_or_default();
            states.insert(
                key.clone(),
                ObjState {
                    generation: self.generation,
                    model: model_id,
                    runtime,
                    shadow_hpa,
                    divergence,
                },
            );
        }
        let st = states.get_mut(&key).expect("inserted above");
        st.runtime.set_target(current);
        let outcome = st.runtime.decide_explained(snapshot, SimTime(now));
        let hpa_recomputed = snapshot.invalid_fields().is_empty().then(|| {
            // The recomputed HPA starts each sync from the target's real size, as the HPA does.
            st.shadow_hpa.observe_current(current);
            st.shadow_hpa.decide(snapshot, SimTime(now)).replicas
        });
        Decided {
            model,
            outcome,
            hpa_recomputed,
            divergence: st.divergence.clone(),
        }
    }

    /// Step 5: Apply (Active: write the scale) or record (Shadow: compare with the real HPA).
    async fn act(
        &mut self,
        spec: &RLAutoscalerSpec,
        target: &Target,
        decided: &Decided,
    ) -> Result<Acted, Error> {
        let mut acted = Acted {
            scaled: false,
            hpa_desired: None,
            hpa_unsynced: None,
            divergence: decided.divergence.clone(),
        };
        match spec.mode {
            Mode::Active => acted.scaled = self.write_scale(spec, target, decided).await?,
            Mode::Shadow => self.compare_hpa(spec, decided, &mut acted).await?,
        }
        Ok(acted)
    }

    /// Active mode: write the decision to the target's scale (retrying a conflict), and say so in an
    /// Event. Whether the scale was written.
    async fn write_scale(
        &mut self,
        spec: &RLAutoscalerSpec,
        target: &Target,
        decided: &Decided,
    ) -> Result<bool, Error> {
        let (ctx, obj) = (self.ctx, self.obj);
        let d = &decided.outcome.decision;
        let (t, current) = (&spec.scale_target_ref, target.current);
        if d.replicas == current {
            return Ok(false);
        }
        let mut rv = target.scale.metadata.resource_version.clone();
        let mut from = current;
        let mut scaled = false;
        for _attempt in 0..3 {
            let patch = json!({
                "metadata": { "resourceVersion": rv },
                "spec": { "replicas": d.replicas },
            });
            match target
                .api
                .patch_scale(&t.name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    scaled = true;
                    break;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    // Someone else wrote the target since we read it: re-read and retry.
                    let fresh = target.api.get_scale(&t.name).await?;
                    rv = fresh.metadata.resource_version.clone();
                    from = fresh
                        .spec
                        .as_ref()
                        .and_then(|s| s.replicas)
                        .unwrap_or(0)
                        .max(0) as u32;
                    if from == d.replicas {
                        break;
                    }
                }
                Err(e) => {
                    // 500, 429, a timeout: say so on the object, and retry (error_policy).
                    let message = format!(
                        "writing {} {}/{} scale {current} → {}: {e}",
                        t.kind, self.ns, t.name, d.replicas
                    );
                    self.condition("Ready", false, "ScaleFailed", &message);
                    ctx.warn_once(obj, "scale", "ScaleFailed", &message).await;
                    let _ = patch_status(ctx, &self.ns, &self.name, &self.status).await;
                    return Err(e.into());
                }
            }
        }
        if scaled {
            ctx.clear_warning(obj, "scale");
            self.status.last_scale_time = Some(rfc3339(self.now));
            ctx.metrics.scale_write(&self.ns, &self.name);
            ctx.event(
                obj,
                EventType::Normal,
                "Scaled",
                scale_action(from, d.replicas),
                format!(
                    "{} {}: {} → {} replicas; source: {}; reason: {}",
                    t.kind, t.name, from, d.replicas, d.source, d.reason
                ),
            )
            .await;
        }
        Ok(scaled)
    }

    /// Shadow mode: the real HPA's recommendation, once its controller has written one, and the
    /// divergence between it and ours.
    async fn compare_hpa(
        &self,
        spec: &RLAutoscalerSpec,
        decided: &Decided,
        acted: &mut Acted,
    ) -> Result<(), Error> {
        let (ctx, obj) = (self.ctx, self.obj);
        let Some(hpa) = find_hpa(ctx, &self.ns, spec).await? else {
            let t = &spec.scale_target_ref;
            let which = spec
                .hpa_ref
                .clone()
                .unwrap_or_else(|| format!("with scaleTargetRef {}/{}", t.kind, t.name));
            let message = format!(
                "shadow mode: no HorizontalPodAutoscaler {which} in {}; recording only our recommendation and the recomputed HPA",
                self.ns
            );
            ctx.warn_once(obj, "hpa", "HPANotFound", &message).await;
            return Ok(());
        };
        ctx.clear_warning(obj, "hpa");
        acted.hpa_desired = hpa
            .status
            .as_ref()
            .filter(|s| hpa_synced(s))
            .map(|s| s.desired_replicas.max(0) as u32);
        let Some(h) = acted.hpa_desired else {
            acted.hpa_unsynced = Some(hpa.name_any());
            return Ok(());
        };
        acted.divergence.add(decided.outcome.decision.replicas, h);
        if let Some(s) = ctx
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&object_key(obj))
        {
            s.divergence = acted.divergence.clone();
        }
        Ok(())
    }

    /// Step 6: The status: the decision, the conditions, and the Warnings that no longer hold cleared.
    async fn write_status(
        &mut self,
        spec: &RLAutoscalerSpec,
        target: &Target,
        scraped: &Scraped,
        decided: &Decided,
        acted: &Acted,
    ) -> Result<(), Error> {
        let (ctx, obj, now) = (self.ctx, self.obj, self.now);
        let d = &decided.outcome.decision;
        let (source, reason) = (d.source.to_string(), d.reason.to_string());
        let current = target.current;
        self.status.current_replicas = Some(current);
        self.status.desired_replicas = Some(d.replicas);
        self.status.last_decision = Some(LastDecision {
            replicas: d.replicas,
            source: source.clone(),
            reason: reason.clone(),
            time: rfc3339(now),
        });
        if spec.mode == Mode::Shadow {
            self.status.hpa_desired_replicas = acted.hpa_desired;
            self.status.hpa_recomputed_replicas = decided.hpa_recomputed;
            self.status.divergence =
                (acted.divergence.samples > 0).then(|| acted.divergence.clone());
        } else {
            self.status.hpa_desired_replicas = None;
            self.status.hpa_recomputed_replicas = None;
            self.status.divergence = None;
        }
        let (metrics_ok, metrics_reason, metrics_msg) = metrics_condition(scraped);
        self.condition(
            "MetricsAvailable",
            metrics_ok,
            &metrics_reason,
            &metrics_msg,
        );
        self.model_condition(spec, decided);
        if d.source == Source::Fallback {
            let chain = decided
                .outcome
                .chain
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            self.condition("FallbackActive", true, &camel(&reason), chain);
        } else {
            self.condition(
                "FallbackActive",
                false,
                "ModelDecides",
                format!("source: {source}"),
            );
        }
        let hpa_note = match (&spec.mode, acted.hpa_desired, &acted.hpa_unsynced) {
            (Mode::Shadow, None, Some(h)) => {
                format!(
                    "; HPA {h} has not synced yet (its controller wrote no status): not compared"
                )
            }
            (Mode::Shadow, None, None) => "; no HPA found to compare with".to_string(),
            _ => String::new(),
        };
        self.condition(
            "Ready",
            true,
            "Reconciled",
            format!(
                "{} mode; {current} → {} ({source}, {reason}){hpa_note}",
                spec.mode, d.replicas
            ),
        );
        if let Err(e) = patch_status(ctx, &self.ns, &self.name, &self.status).await {
            let message = format!("writing the status: {e}");
            ctx.warn_once(obj, "status", "StatusUpdateFailed", &message)
                .await;
            return Err(e);
        }
        ctx.clear_warning(obj, "status");
        ctx.clear_warning(obj, "timeout");
        if metrics_ok {
            ctx.clear_warning(obj, "metrics");
        } else {
            ctx.warn_once(obj, "metrics", &metrics_reason, &metrics_msg)
                .await;
        }
        Ok(())
    }

    /// The `ModelLoaded` condition.
    fn model_condition(&mut self, spec: &RLAutoscalerSpec, decided: &Decided) {
        match (&spec.model, &decided.model) {
            (None, _) => self.condition(
                "ModelLoaded",
                false,
                "NoModelConfigured",
                "spec.model is not set; the fallback law decides",
            ),
            (
                Some(p),
                Some(ModelState {
                    model: Ok(_),
                    error: None,
                }),
            ) => self.condition("ModelLoaded", true, "Loaded", p.to_string()),
            (
                Some(p),
                Some(ModelState {
                    model: Ok(_),
                    error: Some(e),
                }),
            ) => self.condition(
                "ModelLoaded",
                true,
                "KeptLastGood",
                format!("{p} failed to reload, the last good model stays in use: {e}"),
            ),
            (Some(_), Some(ModelState { model: Err(e), .. })) => {
                self.condition("ModelLoaded", false, "LoadFailed", e.clone())
            }
            (Some(_), None) => {}
        }
    }

    /// The reconcile's metrics, its log line and its decision-log line.
    fn report(
        &self,
        spec: &RLAutoscalerSpec,
        target: &Target,
        scraped: Scraped,
        decided: &Decided,
        acted: &Acted,
    ) {
        let (ctx, ns, name) = (self.ctx, &self.ns, &self.name);
        let d = &decided.outcome.decision;
        let (source, reason) = (d.source.to_string(), d.reason.to_string());
        let hpa_recomputed = decided.hpa_recomputed.filter(|_| spec.mode == Mode::Shadow);
        ctx.metrics.recommend(ns, name, "rlscale", d.replicas);
        if let Some(h) = acted.hpa_desired {
            ctx.metrics.recommend(ns, name, "hpa", h);
        }
        if let Some(h) = hpa_recomputed {
            ctx.metrics.recommend(ns, name, "hpa_recomputed", h);
        }
        ctx.metrics.decision(&source, &reason);
        if d.source == Source::Fallback {
            ctx.metrics.fallback(&reason);
        }
        info!(
            object = %format!("{ns}/{name}"),
            mode = %spec.mode,
            from = target.current,
            to = d.replicas,
            source = %source,
            reason = %reason,
            hpa = ?acted.hpa_desired,
            scaled = acted.scaled,
            "decision"
        );
        if let Some(log) = &ctx.log {
            log.write(&LogLine::Decision(DecisionLine {
                time: self.now,
                namespace: ns.clone(),
                name: name.clone(),
                mode: spec.mode.to_string(),
                current_replicas: target.current,
                desired_replicas: d.replicas,
                source,
                reason,
                hpa_desired_replicas: acted.hpa_desired,
                hpa_recomputed_replicas: hpa_recomputed,
                scaled: acted.scaled,
                model: spec.model.clone(),
                min_replicas: spec.min_replicas,
                max_replicas: spec.max_replicas,
                interval_s: spec.interval,
                snapshot: scraped.built.snapshot,
            }));
        }
    }
}

/// The `MetricsAvailable` condition: (status, reason, message).
fn metrics_condition(scraped: &Scraped) -> (bool, String, String) {
    let built = &scraped.built;
    if built.problems.is_empty() {
        return (
            true,
            "QueriesSucceeded".to_string(),
            format!("{} queries answered", scraped.queries),
        );
    }
    let msg = built
        .problems
        .iter()
        .map(|(f, p)| format!("{}: {p}", f.name()))
        .collect::<Vec<_>>()
        .join("; ");
    (false, built.problem_reason().to_string(), msg)
}

/// [`reconcile`] within `ctx.reconcile_timeout`. A reconcile that hangs (an API server or Prometheus
/// that accepts and never answers, a 429 the client keeps retrying) is abandoned; the object then gets
/// `Ready=False/ReconcileTimeout` and a Warning Event on a best-effort basis (bounded too), and the
/// error policy retries it.
pub async fn reconcile_bounded(
    obj: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let limit = ctx.reconcile_timeout;
    match tokio::time::timeout(limit, reconcile(obj.clone(), ctx.clone())).await {
        Ok(r) => r,
        Err(_) => {
            let message = format!(
                "the reconcile did not finish within {limit:?} (an API server or Prometheus that does not answer); retrying"
            );
            if let Some(suppressed) = ctx.admit_log(&object_key(&obj), "timeout") {
                warn!(object = %display_name(&obj), suppressed, %message);
            }
            let say = async {
                ctx.warn_once(&obj, "timeout", "ReconcileTimeout", &message)
                    .await;
                let mut status: RLAutoscalerStatus = obj
                    .data
                    .get("status")
                    .and_then(|s| serde_json::from_value(s.clone()).ok())
                    .unwrap_or_default();
                set_condition(
                    &mut status.conditions,
                    "Ready",
                    false,
                    "ReconcileTimeout",
                    &message,
                    (ctx.clock)(),
                    obj.metadata.generation,
                );
                let ns = obj.namespace().unwrap_or_default();
                let _ = patch_status(&ctx, &ns, &obj.name_any(), &status).await;
            };
            let _ = tokio::time::timeout(limit.min(Duration::from_secs(5)), say).await;
            Err(Error::Timeout(limit))
        }
    }
}

/// Reconciles in flight at most, by default (`--max-concurrent-reconciles`).
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 32;

/// On a failed reconcile: log, count, retry in 5 s. The log line is rate-limited per object and error
/// class (the first, then one a minute saying how many were held back): during an API-server outage
/// every object fails every 5 s.
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    let kind = format!("reconcile:{}", error.metric_label());
    if let Some(suppressed) = ctx.admit_log(&object_key(&obj), &kind) {
        warn!(object = %display_name(&obj), error = %error, suppressed, "reconcile failed");
    }
    ctx.metrics.failure(&error.metric_label());
    Action::requeue(Duration::from_secs(5))
}

/// How to run the controller.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch one namespace, or all.
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub metrics_addr: SocketAddr,
    /// Append every decision to this JSONL file.
    pub decision_log: Option<PathBuf>,
    /// The name Events are reported under.
    pub reporter: String,
    /// Elect a leader over a Lease before reconciling (several replicas), or reconcile at once.
    pub leader_election: Option<LeaseConfig>,
    /// Abandon (and retry) a reconcile that runs longer than this.
    pub reconcile_timeout: Duration,
    /// Reconciles in flight at most (> 0). More drains a restart's first pass faster when Prometheus
    /// is slow; fewer keeps each reconcile shorter when the controller is short of CPU.
    pub max_concurrent_reconciles: u16,
}

/// The web server: `/metrics` (OpenMetrics), `/healthz`, `/readyz`.
pub fn router(metrics: Arc<Metrics>, ready: Arc<dyn Fn() -> bool + Send + Sync>) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.clone();
                async move {
                    if r() {
                        (StatusCode::OK, "ok")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: the watch has not listed yet",
                        )
                    }
                }
            }),
        )
}

/// The reconcile loop until `stop` turns true: kube's `applier` over a generation-filtered watch, with
/// a watch of the HPAs beside it (shadow mode compares with them).
async fn run_controller(
    ctx: Arc<Context>,
    api: Api<DynamicObject>,
    hpa_api: Api<HorizontalPodAutoscaler>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let (hpa_store, hpa_writer) = reflector::store::<HorizontalPodAutoscaler>();
    *ctx.hpas.lock().unwrap_or_else(|e| e.into_inner()) = Some(hpa_store);
    ctx.hpas_listed.store(false, Ordering::Relaxed);
    let hpa_watch = watcher(hpa_api, watcher::Config::default())
        .default_backoff()
        .inspect_ok({
            let ctx = ctx.clone();
            move |ev| {
                if matches!(ev, watcher::Event::InitDone) {
                    ctx.hpas_listed.store(true, Ordering::Relaxed);
                }
            }
        })
        .reflect(hpa_writer)
        .for_each({
            let ctx = ctx.clone();
            move |r| {
                if let Err(e) = r
                    && let Some(suppressed) = ctx.admit_log("", "hpa-watch")
                {
                    warn!(error = %e, suppressed, "HPA watch");
                }
                futures::future::ready(())
            }
        });
    let mut stop2 = stop.clone();
    tokio::select! {
        _ = run_applier(ctx.clone(), api, stop) => {}
        _ = async move {
            hpa_watch.await;
            // The watch never ends by itself (it backs off and retries); wait for the stop anyway.
            let _ = stop2.wait_for(|s| *s).await;
        } => {}
    }
    ctx.hpas_listed.store(false, Ordering::Relaxed);
}

async fn run_applier(
    ctx: Arc<Context>,
    api: Api<DynamicObject>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ar = resource();
    let max_concurrent = ctx.max_concurrent_reconciles.max(1);
    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let reader = writer.as_reader();
    // Spec changes trigger a reconcile at once; status writes (ours) do not: the requeue paces the
    // rest. NB: kube's `Controller` cannot filter its own trigger without an unstable feature, so this
    // drives kube's `applier` (what `Controller::run` wraps) with a generation-filtered watch.
    let queue = watcher(api, watcher::Config::default())
        .default_backoff()
        .inspect_ok({
            // Ready once the first list is complete. A deleted object's state goes with it: on its
            // delete event, or, when the watch missed it (an object deleted while the watch was
            // down is absent from the relist), at the end of the relist.
            let ctx = ctx.clone();
            let mut listed = std::collections::HashSet::new();
            move |ev| match ev {
                watcher::Event::Init => listed.clear(),
                watcher::Event::InitApply(o) => {
                    listed.insert(object_key(o));
                }
                watcher::Event::InitDone => {
                    ctx.forget_all_but(&listed);
                    listed.clear();
                    ctx.ready.store(true, Ordering::Relaxed);
                }
                watcher::Event::Delete(o) => ctx.forget(&object_key(o)),
                watcher::Event::Apply(_) => {}
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .map_ok({
            let ar = ar.clone();
            move |o| ObjectRef::from_obj_with(&o, ar.clone())
        });
    // On shutdown the applier is dropped: a reconcile in flight is abandoned between two awaits. Every
    // write it makes is a single idempotent request (a scale patch carrying the resourceVersion it
    // read, a status merge patch), so an abandoned reconcile leaves nothing half-written.
    let log_ctx = ctx.clone();
    applier(
        |obj, ctx: Arc<Context>| Box::pin(reconcile_bounded(obj, ctx)),
        error_policy,
        ctx,
        reader,
        queue,
        // At most `max_concurrent_reconciles` (32) at once. After a restart or a leader change every object is due at
        // once: unbounded, 1000 reconciles would each open their own connections (9 Prometheus
        // queries, 3–5 API calls) and the last would wait behind all the rest. Bounded, the first pass
        // drains at the controller's throughput and the phases (`until_next_decision`) spread the rest.
        kube::runtime::controller::Config::default().concurrency(max_concurrent),
    )
    .take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .for_each(|r| {
        match r {
            // error_policy has logged it.
            Err(e @ kube::runtime::controller::Error::ReconcilerFailed(..)) => {
                debug!(error = %e, "controller")
            }
            Err(e @ kube::runtime::controller::Error::QueueError(_)) => {
                if let Some(suppressed) = log_ctx.admit_log("", "watch") {
                    warn!(error = %e, suppressed, "controller");
                }
            }
            Err(e) => warn!(error = %e, "controller"),
            Ok(_) => {}
        }
        futures::future::ready(())
    })
    .await;
}

/// Run the controller until `shutdown` resolves (or SIGTERM/Ctrl-C), with the web server beside it.
///
/// With leader election, the process first stands by until it holds the Lease; it releases the Lease
/// on shutdown. When it loses the Lease (no renewal within the renew deadline, or another holder) it
/// stops reconciling at once and returns an error, so that the process exits and restarts as a
/// candidate, as client-go's controllers do.
pub async fn run(
    client: Client,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> std::io::Result<()> {
    if let Some(le) = &opts.leader_election {
        le.validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    let metrics = Arc::new(Metrics::default());
    let log = match &opts.decision_log {
        Some(p) => Some(DecisionLog::open(p).map_err(|e| {
            std::io::Error::new(e.kind(), format!("decision log {}: {e}", p.display()))
        })?),
        None => None,
    };
    let mut ctx = Context::new(client.clone(), &opts.reporter, metrics.clone(), log);
    ctx.reconcile_timeout = opts.reconcile_timeout;
    ctx.max_concurrent_reconciles = opts.max_concurrent_reconciles.max(1);
    ctx.http = prometheus_client(ctx.max_concurrent_reconciles);
    let ctx = Arc::new(ctx);
    let ar = resource();
    let api: Api<DynamicObject> = match &opts.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let hpa_api: Api<HorizontalPodAutoscaler> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let standby = Arc::new(AtomicBool::new(opts.leader_election.is_some()));
    let ready: Arc<dyn Fn() -> bool + Send + Sync> = {
        let ctx = ctx.clone();
        let standby = standby.clone();
        Arc::new(move || ctx.ready.load(Ordering::Relaxed) || standby.load(Ordering::Relaxed))
    };
    let listener = tokio::net::TcpListener::bind(opts.metrics_addr).await?;
    info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let mut rx = stop_rx.clone();
        axum::serve(listener, router(metrics.clone(), ready)).with_graceful_shutdown(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => {},
            _ = shutdown_signal() => {},
        }
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let control = async move {
        let Some(le) = opts.leader_election else {
            run_controller(ctx, api, hpa_api, stop_rx).await;
            return Ok(());
        };
        let mut elector = LeaderElector::new(client.clone(), le.clone(), ctx.clock.clone());
        loop {
            standby.store(true, Ordering::Relaxed);
            metrics.set_leader(&le.name, false);
            info!(lease = %format!("{}/{}", le.namespace, le.name), identity = %le.identity, "waiting for the leader lease");
            if !elector.acquire(stop_rx.clone()).await {
                return Ok(());
            }
            standby.store(false, Ordering::Relaxed);
            metrics.set_leader(&le.name, true);
            info!(identity = %le.identity, "leading: reconciling");
            let lost = tokio::select! {
                _ = run_controller(ctx.clone(), api.clone(), hpa_api.clone(), stop_rx.clone()) => None,
                why = elector.hold() => Some(why),
            };
            metrics.set_leader(&le.name, false);
            match lost {
                None => {
                    elector.release().await;
                    return Ok::<(), std::io::Error>(());
                }
                Some(why) => {
                    // Stopped reconciling before anyone else can consider the Lease expired
                    // (renew deadline < lease duration). Stand by again with a clean slate.
                    tracing::error!(%why, "lost the leader lease: stopped reconciling");
                    metrics.lease_lost();
                    ctx.forget_all();
                }
            }
        }
    };
    let server = server.into_future();
    tokio::pin!(server);
    tokio::pin!(control);
    tokio::select! {
        controlled = &mut control => {
            controlled?;
            server.await
        }
        served = &mut server => {
            // The web server ends on shutdown only (or fails): let the controller finish (it releases
            // the Lease).
            served?;
            control.await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Warning's action is a pure function of its topic and text: the same text keeps its action
    /// (the Recorder counts it up), another text gets another (a new Event), within the 128 bytes an
    /// Event's action may have. FNV-1a's published values pin the hash.
    #[test]
    fn each_warning_text_has_its_own_action() {
        assert_eq!(warning_action("target", ""), "Reconcile/target/811c9dc5");
        assert_eq!(warning_action("target", "a"), "Reconcile/target/e40c292c");
        let a = warning_action("metrics", "Prometheus http://a:9090 is unreachable");
        let b = warning_action("metrics", "Prometheus http://b:9090 is unreachable");
        assert_ne!(a, b);
        assert_eq!(
            a,
            warning_action("metrics", "Prometheus http://a:9090 is unreachable")
        );
        assert_ne!(
            a,
            warning_action("target", "Prometheus http://a:9090 is unreachable")
        );
        assert!(warning_action("timeout", &"x".repeat(5000)).len() <= 128);
    }

    #[test]
    fn each_object_decides_at_its_own_phase_every_interval() {
        let t0 = 1.7e9 + 0.123;
        for (ns, name, i) in [
            ("default", "web", 15),
            ("prod", "llama-70b", 30),
            ("a", "b", 1),
        ] {
            let i_f = f64::from(i);
            let phase = phase_s(ns, name, i);
            assert!((0.0..i_f).contains(&phase), "{phase}");
            // The same phase in every process: a pure function of the name.
            assert_eq!(phase, phase_s(ns, name, i));
            let mut now = t0;
            let mut times = Vec::new();
            for k in 0..20 {
                // Reconciles that take 0 to 1.9 s.
                now += f64::from(k % 20) * 0.1;
                let d = until_next_decision(ns, name, i, now).as_secs_f64();
                assert!(d >= i_f / 2.0 - 1e-9 && d <= 1.5 * i_f + 1e-9, "{d}");
                now += d;
                let off = (now - phase).rem_euclid(i_f);
                assert!(
                    off < 1e-3 || i_f - off < 1e-3,
                    "{now} is not at phase {phase}"
                );
                times.push(now);
            }
            // After the first, the period is exactly the interval as long as reconciles end within half
            // an interval (here up to 1.9 s of 15 s and 30 s).
            if i > 4 {
                for w in times.windows(2) {
                    assert!((w[1] - w[0] - i_f).abs() < 1e-3, "{w:?}");
                }
            }
        }
    }

    #[test]
    fn a_thousand_objects_started_together_spread_over_the_interval() {
        let now = 1.7e9;
        let mut per_second = [0u32; 15];
        for k in 0..1000 {
            let d = until_next_decision("bench", &format!("rla-{k:04}"), 15, now).as_secs_f64();
            let at = (now + d).rem_euclid(15.0);
            per_second[at as usize % 15] += 1;
        }
        // Uniform would be 66.7 per second; a burst would put all 1000 in one.
        let (lo, hi) = (
            per_second.iter().min().unwrap(),
            per_second.iter().max().unwrap(),
        );
        assert!(*lo >= 40 && *hi <= 95, "{per_second:?}");
    }

    #[test]
    fn an_event_note_is_cut_to_1024_bytes_at_a_character_boundary() {
        assert_eq!(event_note("short".into()), "short");
        let exact = "a".repeat(EVENT_NOTE_LIMIT);
        assert_eq!(event_note(exact.clone()), exact);
        for long in [
            "b".repeat(4000),
            "→".repeat(700),
            format!("x{}", "é".repeat(800)),
        ] {
            let cut = event_note(long.clone());
            assert!(cut.len() <= EVENT_NOTE_LIMIT, "{}", cut.len());
            assert!(cut.len() > EVENT_NOTE_LIMIT - 8, "{}", cut.len());
            let kept = cut.strip_suffix('…').expect("marked as cut");
            assert!(long.starts_with(kept));
        }
    }

    #[test]
    fn an_absent_ready_replicas_is_0_once_the_workload_has_a_status() {
        // What a real API server returns for 4 pods, none ready: no readyReplicas at all.
        assert_eq!(
            ready_replicas(&json!({"status": {"replicas": 4}}), Some(4)),
            0
        );
        assert_eq!(ready_replicas(&json!({"status": {}}), Some(4)), 0);
        assert_eq!(
            ready_replicas(
                &json!({"status": {"replicas": 4, "readyReplicas": 3}}),
                Some(4)
            ),
            3
        );
        // No status at all (a workload whose controller writes none): the scale's replicas.
        assert_eq!(ready_replicas(&json!({"spec": {}}), Some(4)), 4);
        assert_eq!(ready_replicas(&json!({"status": null}), Some(2)), 2);
        assert_eq!(ready_replicas(&json!({}), None), 0);
    }

    #[test]
    fn a_status_patch_deletes_what_is_no_longer_set() {
        let full = RLAutoscalerStatus {
            observed_generation: Some(1),
            current_replicas: Some(2),
            desired_replicas: Some(3),
            last_decision: Some(LastDecision {
                replicas: 3,
                source: "model".into(),
                reason: "policy".into(),
                time: "t".into(),
            }),
            last_scale_time: Some("t".into()),
            hpa_desired_replicas: Some(4),
            hpa_recomputed_replicas: Some(5),
            divergence: Some(Divergence::default()),
            conditions: vec![],
        };
        // Every optional field is in the list (a new one cannot be forgotten).
        let v = serde_json::to_value(&full).unwrap();
        for k in v.as_object().unwrap().keys().filter(|k| *k != "conditions") {
            assert!(STATUS_OPTIONAL_FIELDS.contains(&k.as_str()), "{k}");
        }
        assert_eq!(status_patch(&full)["status"], v);
        let active = RLAutoscalerStatus {
            hpa_desired_replicas: None,
            hpa_recomputed_replicas: None,
            divergence: None,
            ..full
        };
        let p = status_patch(&active);
        for k in ["hpaDesiredReplicas", "hpaRecomputedReplicas", "divergence"] {
            assert!(p["status"].get(k).is_some_and(|v| v.is_null()), "{k}: {p}");
        }
        assert_eq!(p["status"]["desiredReplicas"], 3);
    }

    #[test]
    fn an_hpa_status_counts_once_its_controller_wrote_it() {
        use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus as S;
        let st = |v: serde_json::Value| serde_json::from_value::<S>(v).unwrap();
        // What the API server stores for a new HPA.
        assert!(!hpa_synced(&st(json!({"desiredReplicas": 0}))));
        assert!(!hpa_synced(&st(
            json!({"desiredReplicas": 0, "conditions": []})
        )));
        for written in [
            json!({"desiredReplicas": 0, "observedGeneration": 1}),
            json!({"desiredReplicas": 3, "currentReplicas": 2}),
            json!({"desiredReplicas": 0, "conditions": [{"type": "AbleToScale", "status": "True"}]}),
            json!({"desiredReplicas": 2, "lastScaleTime": "2026-01-01T00:00:00Z"}),
        ] {
            assert!(hpa_synced(&st(written.clone())), "{written}");
        }
    }

    #[test]
    fn a_clock_that_is_not_a_number_requeues_at_the_interval() {
        assert_eq!(
            until_next_decision("a", "b", 15, f64::NAN),
            Duration::from_secs(15)
        );
    }
}
