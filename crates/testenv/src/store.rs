//! The in-memory object store with one global resourceVersion counter and watch history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::authn::User;
use crate::events;
use crate::rbac::{self, RbacObjects};
use crate::records::{ActiveFault, Fault, RequestRecord, WriteRecord};
use crate::resources::{self, Generation, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector, label_selector_string};
use crate::status::{ApiError, success_status};
use crate::util::{
    b64url_decode, b64url_encode, get_path, meta_mut, meta_str, name_suffix, new_uid, now_rfc3339,
    set_path, validate_dns_label, validate_dns_subdomain,
};

/// (group, plural): storage is shared by all versions of a resource.
pub(crate) type Gr = (String, String);

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One entry of a resource's watch history.
#[derive(Debug)]
pub(crate) struct HistEvent {
    pub rv: u64,
    pub typ: EventType,
    /// The new object (for DELETED: the last state, stamped with the deletion's RV).
    pub object: Value,
    /// The previous object (MODIFIED and DELETED).
    pub prev: Option<Value>,
}

/// Maximum events kept per resource before the oldest expire (watchers then get 410).
const HISTORY_LIMIT: usize = 10_000;

/// Patch types by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// List options.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// Write options common to create/update/patch/delete.
#[derive(Debug, Default, Clone)]
pub(crate) struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
}

/// The mutable state behind the lock.
pub(crate) struct Inner {
    pub rv: u64,
    pub defs: Vec<ResourceDef>,
    objects: HashMap<Gr, BTreeMap<String, Value>>,
    history: HashMap<Gr, VecDeque<Arc<HistEvent>>>,
    floors: HashMap<Gr, u64>,
    compacted: u64,
    pub faults: Vec<ActiveFault>,
    pub requests: Vec<RequestRecord>,
    pub writes: Vec<WriteRecord>,
    /// Registered bearer tokens and the users they authenticate as (`authn.rs`).
    pub tokens: HashMap<String, User>,
}

pub(crate) struct Shared {
    pub state: Mutex<Inner>,
    pub rv_tx: watch::Sender<u64>,
    pub seq: AtomicU64,
    pub bookmark_ms: AtomicU64,
}

/// A handle on the cluster state (objects, logs, faults). Cheap to clone; share it between
/// [`serve`](crate::serve) and the test.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) shared: Arc<Shared>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

/// `ns/name` for namespaced objects, `name` for cluster-scoped ones (etcd key order).
pub(crate) fn key(ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Where a resource's objects are stored: its own (group, plural), except `events.k8s.io` Events,
/// which are core `v1` Events (see [`crate::events`]).
fn gr(def: &ResourceDef) -> Gr {
    if events::is_events_v1(def) {
        return (String::new(), "events".to_string());
    }
    (def.group.clone(), def.plural.clone())
}

fn ns_gr() -> Gr {
    (String::new(), "namespaces".to_string())
}

fn crd_gr() -> Gr {
    (
        "apiextensions.k8s.io".to_string(),
        "customresourcedefinitions".to_string(),
    )
}

/// The object as served at `version`: apiVersion/kind set (and converted, for
/// `events.k8s.io` Events).
pub(crate) fn present(def: &ResourceDef, version: &str, obj: &Value) -> Value {
    let mut o = events::view(def, obj).into_owned();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version(version)));
        m.insert("kind".into(), json!(def.kind));
    }
    o
}

impl Cluster {
    /// A fresh cluster with the `default`, `kube-system` and `kube-public` namespaces.
    pub fn new() -> Self {
        let (rv_tx, _) = watch::channel(0);
        let mut inner = Inner {
            rv: 0,
            defs: resources::builtins(),
            objects: HashMap::new(),
            history: HashMap::new(),
            floors: HashMap::new(),
            compacted: 0,
            faults: vec![],
            requests: vec![],
            writes: vec![],
            tokens: HashMap::new(),
        };
        let ns_def = inner.def_for(&ns_gr()).expect("namespaces");
        for ns in ["default", "kube-system", "kube-public"] {
            inner
                .create(
                    &ns_def,
                    "v1",
                    None,
                    json!({"metadata": {"name": ns}}),
                    &WriteOpts::default(),
                )
                .expect("create namespace");
        }
        rv_tx.send_replace(inner.rv);
        Cluster {
            shared: Arc::new(Shared {
                state: Mutex::new(inner),
                rv_tx,
                seq: AtomicU64::new(1),
                bookmark_ms: AtomicU64::new(1000),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` under the lock and wakes watchers if the resourceVersion moved.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.lock();
        let before = g.rv;
        let out = f(&mut g);
        let after = g.rv;
        drop(g);
        if after != before {
            self.shared.rv_tx.send_replace(after);
        }
        out
    }

    /// Sets how often watches that asked for bookmarks get one (default 1 s).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared
            .bookmark_ms
            .store(interval.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    pub(crate) fn bookmark_interval(&self) -> Duration {
        Duration::from_millis(self.shared.bookmark_ms.load(Ordering::Relaxed))
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every write request so far, in arrival order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        let mut w = self.lock().writes.clone();
        w.sort_by_key(|r| r.seq);
        w
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut r = self.lock().requests.clone();
        r.sort_by_key(|r| r.seq);
        r
    }

    /// Installs a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        let remaining = (fault.times > 0).then_some(fault.times);
        self.lock().faults.push(ActiveFault { fault, remaining });
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Registers a bearer token: requests carrying `Authorization: Bearer <token>` authenticate as
    /// `user`, and RBAC (the stored Roles, ClusterRoles and bindings) decides what they may do.
    /// Requests without an `Authorization` header stay the server's own admin; any other token is
    /// answered 401 Unauthorized.
    pub fn add_token(&self, token: &str, user: User) {
        self.lock().tokens.insert(token.to_string(), user);
    }

    /// Forgets all watch history: watches from a resourceVersion older than the current one
    /// get `410 Gone` (an ERROR event with reason `Expired`).
    pub fn compact(&self) {
        let mut g = self.lock();
        g.compacted = g.rv;
        g.history.clear();
    }

    /// A stored object as JSON (`group` is `""` for core; `resource` is the plural).
    pub fn object(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let g = self.lock();
        let def = g.def_for(&(group.to_string(), resource.to_string()))?;
        let obj = g.objects.get(&gr(&def))?.get(&key(namespace, name))?;
        Some(present(&def, &def.versions[0], obj))
    }

    /// All stored objects of a resource, in key order.
    pub fn objects(&self, group: &str, resource: &str) -> Vec<Value> {
        let g = self.lock();
        let Some(def) = g.def_for(&(group.to_string(), resource.to_string())) else {
            return vec![];
        };
        g.objects
            .get(&gr(&def))
            .map(|m| {
                m.values()
                    .map(|o| present(&def, &def.versions[0], o))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.shared.seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// What a watcher gets when it polls the history.
pub(crate) enum Poll {
    /// The resource is no longer served.
    Gone,
    /// The requested resourceVersion is older than the retained history.
    Expired { oldest: u64 },
    /// Events after the requested version, and the current resourceVersion.
    Events(Vec<Arc<HistEvent>>, u64),
}

fn uid_of(obj: &Value) -> String {
    meta_str(obj, "uid").unwrap_or_default().to_string()
}

fn rv_of(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion").unwrap_or_default()
}

fn set_rv(obj: &mut Value, rv: u64) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rv.to_string()));
}

/// Everything but metadata/status/apiVersion/kind: changes here bump `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

fn set_default(obj: &mut Value, path: &str, value: Value) {
    if get_path(obj, path).is_none_or(Value::is_null) {
        set_path(obj, path, value);
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                let last = image.rsplit('/').next().unwrap_or_default();
                let policy = if image.contains('@') {
                    "IfNotPresent"
                } else {
                    match last.split_once(':') {
                        Some((_, "latest")) | None => "Always",
                        Some(_) => "IfNotPresent",
                    }
                };
                set_default(c, "imagePullPolicy", json!(policy));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn default_scaling_rules(rules: Option<&Value>, default: Value) -> Value {
    let mut out = default;
    if let Some(r) = rules.and_then(Value::as_object) {
        for (k, v) in r {
            if !v.is_null() {
                out[k.as_str()] = v.clone();
            }
        }
    }
    out
}

/// The subset of the apiserver's defaulting this server applies (see the crate docs).
fn apply_defaults(def: &ResourceDef, obj: &mut Value) {
    if !def.builtin {
        return;
    }
    match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => {
            set_default(obj, "spec.replicas", json!(1));
            set_default(obj, "spec.strategy.type", json!("RollingUpdate"));
            if get_path(obj, "spec.strategy.type").and_then(Value::as_str) == Some("RollingUpdate")
            {
                set_default(
                    obj,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    json!("25%"),
                );
                set_default(obj, "spec.strategy.rollingUpdate.maxSurge", json!("25%"));
            }
            set_default(obj, "spec.revisionHistoryLimit", json!(10));
            set_default(obj, "spec.progressDeadlineSeconds", json!(600));
            if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
                default_pod_spec(spec);
            }
        }
        ("", "pods") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            set_default(obj, "spec.minReplicas", json!(1));
            let no_metrics = get_path(obj, "spec.metrics")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if no_metrics {
                set_path(
                    obj,
                    "spec.metrics",
                    json!([{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                );
            }
            if let Some(b) = obj
                .pointer("/spec/behavior")
                .filter(|b| b.is_object())
                .cloned()
            {
                let up = default_scaling_rules(
                    b.get("scaleUp"),
                    json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                        {"type": "Pods", "value": 4, "periodSeconds": 15},
                        {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
                );
                let down = default_scaling_rules(
                    b.get("scaleDown"),
                    json!({"selectPolicy": "Max", "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
                );
                set_path(obj, "spec.behavior.scaleUp", up);
                set_path(obj, "spec.behavior.scaleDown", down);
            }
        }
        (rbac::GROUP, _) => rbac::apply_defaults(def, obj),
        _ => {}
    }
}

/// The status fields of built-in objects that are Go scalars (not pointers) tagged `omitempty`: the
/// API server's typed JSON encoding never returns them at 0 (`readyReplicas: 0` is absent, not 0).
/// A pointer with `omitempty` (`*int32`, `*int64`) is dropped only when nil, so its 0 is kept:
/// `DeploymentStatus.terminatingReplicas` and `HorizontalPodAutoscalerStatus.observedGeneration`
/// are pointers, and `HorizontalPodAutoscalerStatus.desiredReplicas` has no `omitempty` at all.
/// (group, plural, fields) from `k8s.io/api` `apps/v1` and `autoscaling/v2` `types.go`.
const STATUS_OMITEMPTY: [(&str, &str, &[&str]); 2] = [
    (
        "apps",
        "deployments",
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
    ),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["currentReplicas"],
    ),
];

/// What the API server's JSON encoding drops: zero-valued `omitempty` scalars of built-in objects'
/// status (Go serializes the typed object; a client's explicit `0` does not survive the round trip).
fn omit_empty(def: &ResourceDef, obj: &mut Value) {
    let Some((_, _, fields)) = STATUS_OMITEMPTY
        .iter()
        .find(|(g, p, _)| def.builtin && def.group == *g && def.plural == *p)
    else {
        return;
    };
    if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut) {
        st.retain(|k, v| !(fields.contains(&k.as_str()) && v.as_i64() == Some(0)));
    }
}

/// Longest `note` (events.k8s.io) / `message` (core) of an Event, in bytes (Go's `len`):
/// `NoteLengthLimit` in `pkg/apis/core/validation/events.go`.
pub(crate) const EVENT_NOTE_LIMIT: usize = 1024;
/// Longest `reason`, `action` and `reportingInstance` of an Event.
const EVENT_FIELD_LIMIT: usize = 128;

/// An Event's validation, as `ValidateEventCreate`/`ValidateEventUpdate` apply it (the subset that
/// concerns a client): for an Event with an `eventTime` (every `events.k8s.io/v1` Event, and core
/// ones written by a new-style recorder), the reporting controller and instance, the action and the
/// reason are required, each at most 128 bytes, and the note at most 1024; `events.k8s.io/v1`
/// requires the `eventTime` and a `type` of `Normal` or `Warning`.
fn validate_event(def: &ResourceDef, obj: &Value, name: &str) -> Result<(), ApiError> {
    let new_api = def.group == "events.k8s.io";
    let (note, controller) = if new_api {
        ("note", "reportingController")
    } else {
        ("message", "reportingComponent")
    };
    let invalid = |field: &str, reason: &str, detail: String| {
        Err(ApiError::invalid(
            &def.group, &def.kind, name, field, reason, &detail,
        ))
    };
    let str_of = |f: &str| obj.get(f).and_then(Value::as_str).unwrap_or_default();
    let has_time = obj.get("eventTime").is_some_and(|v| !v.is_null());
    if new_api && !has_time {
        return invalid("eventTime", "FieldValueRequired", "Required value".into());
    }
    if has_time {
        for (field, limit) in [
            (controller, None),
            ("reportingInstance", Some(EVENT_FIELD_LIMIT)),
            ("action", Some(EVENT_FIELD_LIMIT)),
            ("reason", Some(EVENT_FIELD_LIMIT)),
        ] {
            let v = str_of(field);
            if v.is_empty() {
                return invalid(field, "FieldValueRequired", "Required value".into());
            }
            if let Some(limit) = limit
                && v.len() > limit
            {
                return invalid(
                    field,
                    "FieldValueInvalid",
                    format!("Invalid value: \"\": can have at most {limit} characters"),
                );
            }
        }
        if str_of(note).len() > EVENT_NOTE_LIMIT {
            return invalid(
                note,
                "FieldValueInvalid",
                format!("Invalid value: \"\": can have at most {EVENT_NOTE_LIMIT} characters"),
            );
        }
    }
    if new_api {
        let t = str_of("type");
        if t != "Normal" && t != "Warning" {
            return invalid(
                "type",
                "FieldValueInvalid",
                format!("Invalid value: \"\": has invalid value: {t}"),
            );
        }
    }
    Ok(())
}

/// The subset of validation this server applies: built-ins by hand, custom resources against
/// the served version's schema (see [`crate::schema`]); `old` is the stored object, on update.
fn validate(
    def: &ResourceDef,
    version: &str,
    obj: &Value,
    old: Option<&Value>,
    name: &str,
) -> Result<(), ApiError> {
    if let Some(schema) = def.schema(version) {
        let errs = schema.validate(obj);
        if !errs.is_empty() {
            return Err(ApiError::invalid_fields(&def.group, &def.kind, name, &errs));
        }
    }
    if events::is_event(def) {
        // Stored in the core form; checked in the form (and with the field names) of the request.
        return validate_event(def, &events::view(def, obj), name);
    }
    if def.builtin && def.group == rbac::GROUP {
        return rbac::validate(def, obj, old);
    }
    if def.group == "apps" && def.plural == "deployments" {
        if let Some(r) = get_path(obj, "spec.replicas").and_then(Value::as_i64)
            && r < 0
        {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                "spec.replicas",
                "FieldValueInvalid",
                &format!("Invalid value: {r}: must be greater than or equal to 0"),
            ));
        }
        if get_path(obj, "spec.selector").is_none_or(Value::is_null) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                name,
                "spec.selector",
                "FieldValueRequired",
                "Required value",
            ));
        }
    }
    Ok(())
}

fn crd_invalid(name: &str, field: &str, reason: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        name,
        field,
        reason,
        detail,
    )
}

/// Validates and defaults a CRD and fills in the status its controllers would set.
fn prepare_crd(obj: &mut Value, old_status: Option<&Value>) -> Result<(), ApiError> {
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let s = |o: &Value, p: &str| {
        get_path(o, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let group = s(obj, "spec.group");
    let plural = s(obj, "spec.names.plural");
    let kind = s(obj, "spec.names.kind");
    if group.is_empty() {
        return Err(crd_invalid(
            &name,
            "spec.group",
            "FieldValueRequired",
            "Required value",
        ));
    }
    if !group.contains('.') {
        return Err(crd_invalid(
            &name,
            "spec.group",
            "FieldValueInvalid",
            &format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        return Err(crd_invalid(
            &name,
            "spec.names.plural",
            "FieldValueRequired",
            "Required value",
        ));
    }
    if kind.is_empty() {
        return Err(crd_invalid(
            &name,
            "spec.names.kind",
            "FieldValueRequired",
            "Required value",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(crd_invalid(
            &name,
            "metadata.name",
            "FieldValueInvalid",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = s(obj, "spec.scope");
    if scope != "Namespaced" && scope != "Cluster" {
        return Err(crd_invalid(
            &name,
            "spec.scope",
            "FieldValueNotSupported",
            &format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let versions = get_path(obj, "spec.versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(crd_invalid(
            &name,
            "spec.versions",
            "FieldValueInvalid",
            "Invalid value: null: must have exactly one version marked as storage version",
        ));
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "name"))
        .collect();
    if storage.len() != 1 {
        return Err(crd_invalid(
            &name,
            "spec.versions",
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    set_default(obj, "spec.names.singular", json!(kind.to_lowercase()));
    set_default(obj, "spec.names.listKind", json!(format!("{kind}List")));
    set_default(obj, "spec.conversion", json!({"strategy": "None"}));
    let names = get_path(obj, "spec.names").cloned().unwrap_or_default();
    let now = now_rfc3339();
    let mut stored: Vec<Value> = old_status
        .and_then(|st| st.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !stored.contains(&json!(storage[0])) {
        stored.push(json!(storage[0]));
    }
    let since = |t: &str| -> String {
        old_status
            .and_then(|st| st.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| now.clone())
    };
    let status = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": since("NamesAccepted"),
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": since("Established"),
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    });
    obj["status"] = status;
    Ok(())
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "error decoding request body: json parse error: {e}"
        ))
    })
}

/// Applies a patch document to a target object.
pub(crate) fn apply_patch(pt: PatchType, target: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match pt {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: format!(
                    "the server rejected our request due to an error in our request: {e}"
                ),
                details: None,
                retry_after: None,
            })?;
        }
        PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
            let p = parse_json(patch)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: the patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut doc, &p);
        }
    }
    Ok(doc)
}

/// A Scale's `spec` as the typed encoding writes it: `replicas` is an `omitempty` `int32`.
fn scale_spec(replicas: i64) -> Value {
    if replicas == 0 {
        json!({})
    } else {
        json!({"replicas": replicas})
    }
}

impl RbacObjects for Inner {
    fn rbac_objects(&self, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        let Some(objects) = self
            .objects
            .get(&(rbac::GROUP.to_string(), plural.to_string()))
        else {
            return vec![];
        };
        match namespace {
            // Keys are `ns/name`: the namespace's objects are one range of the map.
            Some(ns) => {
                let prefix = format!("{ns}/");
                objects
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, o)| o)
                    .collect()
            }
            None => objects.values().collect(),
        }
    }

    fn rbac_object(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects
            .get(&(rbac::GROUP.to_string(), plural.to_string()))?
            .get(&key(namespace, name))
    }
}

impl Inner {
    /// The definition serving (group, plural).
    pub fn def_for(&self, g: &Gr) -> Option<ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == g.0 && d.plural == g.1)
            .cloned()
    }

    /// The definition serving group/version/plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceDef> {
        self.defs
            .iter()
            .find(|d| {
                d.group == group && d.plural == plural && d.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    fn refresh_crds(&mut self) {
        let mut defs = resources::builtins();
        if let Some(crds) = self.objects.get(&crd_gr()) {
            for crd in crds.values() {
                if let Some(d) = resources::from_crd(crd)
                    && !defs
                        .iter()
                        .any(|x| x.group == d.group && x.plural == d.plural)
                {
                    defs.push(d);
                }
            }
        }
        self.defs = defs;
    }

    fn commit(&mut self, g: &Gr, k: &str, typ: EventType, obj: Option<Value>, prev: Option<Value>) {
        let map = self.objects.entry(g.clone()).or_default();
        let event_obj = match (&obj, typ) {
            (Some(o), _) => {
                map.insert(k.to_string(), o.clone());
                o.clone()
            }
            (None, _) => {
                map.remove(k);
                let mut last = prev.clone().unwrap_or_default();
                set_rv(&mut last, self.rv);
                last
            }
        };
        let hist = self.history.entry(g.clone()).or_default();
        hist.push_back(Arc::new(HistEvent {
            rv: self.rv,
            typ,
            object: event_obj,
            prev,
        }));
        if hist.len() > HISTORY_LIMIT
            && let Some(old) = hist.pop_front()
        {
            self.floors.insert(g.clone(), old.rv);
        }
        if *g == crd_gr() {
            self.refresh_crds();
        }
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&ns_gr())
            .is_some_and(|m| m.contains_key(ns))
    }

    pub fn namespace_phase(&self, ns: &str) -> Option<String> {
        self.objects.get(&ns_gr())?.get(ns).map(|o| {
            get_path(o, "status.phase")
                .and_then(Value::as_str)
                .unwrap_or("Active")
                .to_string()
        })
    }

    fn stored(&self, def: &ResourceDef, ns: Option<&str>, name: &str) -> Option<Value> {
        self.objects.get(&gr(def))?.get(&key(ns, name)).cloned()
    }

    /// Checks the body of a create/update: an object of the endpoint's kind in the URL's
    /// namespace (and with the URL's name). Fills in kind/apiVersion/namespace when unset.
    fn check_body(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        url_name: Option<&str>,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        let Some(map) = body.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        };
        let want_av = def.api_version(version);
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(av) if !av.is_empty() && av != want_av => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )));
            }
            _ => {}
        }
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != def.kind => {
                return Err(ApiError::bad_request(format!(
                    "{k} in version \"{version}\" cannot be handled as a {}: the kind in the data ({k}) does not match the expected kind ({})",
                    def.kind, def.kind
                )));
            }
            _ => {}
        }
        map.insert("apiVersion".into(), json!(want_av));
        map.insert("kind".into(), json!(def.kind));
        let meta = meta_mut(&mut body);
        if def.namespaced {
            let url_ns = ns.unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(url_ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        if let Some(url_name) = url_name {
            let n = meta.get("name").and_then(Value::as_str).unwrap_or_default();
            if n != url_name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )));
            }
        }
        meta.remove("selfLink");
        meta.remove("managedFields");
        // As the apiextensions server decodes a custom resource: unknown fields pruned, nulls
        // dropped or defaulted, defaults applied (validation comes last, on the object to store).
        if let Some(schema) = def.schema(version) {
            schema.coerce(&mut body);
        }
        if events::is_events_v1(def) {
            body = events::to_core(&body);
        }
        if events::is_event(def) {
            events::normalize_core(&mut body);
        }
        Ok(body)
    }

    /// POST: create an object.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let mut obj = self.check_body(def, version, ns, None, body)?;
        if let Some(ns) = ns.filter(|_| def.namespaced) {
            if !self.namespace_exists(ns) {
                return Err(ApiError::not_found("", "namespaces", ns));
            }
            if self.namespace_phase(ns).as_deref() == Some("Terminating") {
                return Err(ApiError::forbidden(
                    &def.group,
                    &def.plural,
                    meta_str(&obj, "name").unwrap_or_default(),
                    &format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ),
                ));
            }
        }
        let meta = meta_mut(&mut obj);
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let gen_name = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if gen_name.is_empty() {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
            name = format!("{gen_name}{}", name_suffix());
            meta.insert("name".into(), json!(name));
        }
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let check = if def.plural == "namespaces" && def.group.is_empty() {
            validate_dns_label(&name)
        } else {
            validate_dns_subdomain(&name)
        };
        if let Err(msg) = check {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                &name,
                "metadata.name",
                "FieldValueInvalid",
                &format!("Invalid value: \"{name}\": {msg}"),
            ));
        }
        let k = key(ns.filter(|_| def.namespaced), &name);
        if self
            .objects
            .get(&gr(def))
            .is_some_and(|m| m.contains_key(&k))
        {
            return Err(ApiError::already_exists(&def.group, &def.plural, &name));
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if def.generation != Generation::None {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if def.status {
            match def.initial_status() {
                Some(s) => obj["status"] = s,
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if def.builtin && def.group.is_empty() && def.plural == "namespaces" {
            let meta = meta_mut(&mut obj);
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            if let Some(m) = labels.as_object_mut() {
                m.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            set_default(&mut obj, "spec.finalizers", json!(["kubernetes"]));
        }
        if def.builtin && def.plural == "customresourcedefinitions" {
            prepare_crd(&mut obj, None)?;
        }
        apply_defaults(def, &mut obj);
        omit_empty(def, &mut obj);
        validate(def, version, &obj, None, &name)?;
        if opts.dry_run {
            return Ok((201, present(def, version, &obj)));
        }
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.commit(&gr(def), &k, EventType::Added, Some(obj.clone()), None);
        Ok((201, present(def, version, &obj)))
    }

    /// GET one object.
    pub fn get(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.stored(def, ns, name)
            .map(|o| present(def, version, &o))
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    /// LIST objects (namespace `None` = all namespaces).
    pub fn list(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        opts: &ListOpts,
    ) -> Result<Value, ApiError> {
        let mut list_rv = self.rv;
        let mut start: Option<String> = None;
        if let Some(tok) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data");
            let raw = b64url_decode(tok).ok_or_else(bad)?;
            let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
            start = Some(
                v.get("start")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?
                    .to_string(),
            );
            list_rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
            if list_rv < self.compacted {
                return Err(ApiError {
                    code: 410,
                    reason: "Expired",
                    message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                    details: None,
                    retry_after: None,
                });
            }
        }
        let prefix = ns.filter(|_| def.namespaced).map(|n| format!("{n}/"));
        let empty = BTreeMap::new();
        let all = self.objects.get(&gr(def)).unwrap_or(&empty);
        let matching = all
            .iter()
            .filter(|(k, _)| prefix.as_deref().is_none_or(|p| k.starts_with(p)))
            .filter(|(k, _)| start.as_deref().is_none_or(|s| k.as_str() >= s))
            .filter(|(_, o)| opts.labels.matches(o) && opts.fields.matches(&events::view(def, o)));
        let mut items = vec![];
        let mut last_key = None;
        let mut remaining = 0u64;
        for (k, o) in matching {
            if opts.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                remaining += 1;
                continue;
            }
            let mut item = present(def, version, o);
            if def.builtin
                && let Some(m) = item.as_object_mut()
            {
                m.remove("apiVersion");
                m.remove("kind");
            }
            items.push(item);
            last_key = Some(k.clone());
        }
        let mut meta = json!({"resourceVersion": list_rv.to_string()});
        if remaining > 0
            && let Some(k) = last_key
        {
            let tok = json!({"v": "meta.k8s.io/v1", "rv": list_rv, "start": format!("{k}\u{0}")});
            meta["continue"] = json!(b64url_encode(tok.to_string().as_bytes()));
            if opts.labels.is_empty() && opts.fields.is_empty() {
                meta["remainingItemCount"] = json!(remaining);
            }
        }
        Ok(json!({
            "kind": def.list_kind,
            "apiVersion": def.api_version(version),
            "metadata": meta,
            "items": items,
        }))
    }

    /// Stores `new` in place of `old` unless nothing changed; deletes an object whose
    /// deletion was only waiting for its finalizers.
    fn finish_update(
        &mut self,
        def: &ResourceDef,
        version: &str,
        old: &Value,
        mut new: Value,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        let ns = meta_str(old, "namespace").map(str::to_string);
        set_path(&mut new, "metadata.resourceVersion", json!(rv_of(old)));
        apply_defaults(def, &mut new);
        omit_empty(def, &mut new);
        validate(def, version, &new, Some(old), &name)?;
        if new == *old {
            return Ok((200, present(def, version, old)));
        }
        if opts.dry_run {
            return Ok((200, present(def, version, &new)));
        }
        let k = key(ns.as_deref().filter(|_| def.namespaced), &name);
        self.rv += 1;
        set_rv(&mut new, self.rv);
        let terminating =
            get_path(&new, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null());
        let no_finalizers = get_path(&new, "metadata.finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if terminating && no_finalizers {
            self.commit(&gr(def), &k, EventType::Deleted, None, Some(new.clone()));
        } else {
            self.commit(
                &gr(def),
                &k,
                EventType::Modified,
                Some(new.clone()),
                Some(old.clone()),
            );
        }
        Ok((200, present(def, version, &new)))
    }

    fn bump_generation(def: &ResourceDef, old: &Value, new: &mut Value) {
        let old_gen = get_path(old, "metadata.generation").and_then(Value::as_i64);
        match def.generation {
            Generation::None => {
                meta_mut(new).remove("generation");
            }
            Generation::Spec | Generation::SpecAndAnnotations => {
                let mut changed = spec_part(old) != spec_part(new);
                if def.generation == Generation::SpecAndAnnotations {
                    changed |= get_path(old, "metadata.annotations")
                        != get_path(new, "metadata.annotations");
                }
                let g = old_gen.unwrap_or(1) + i64::from(changed);
                meta_mut(new).insert("generation".into(), json!(g));
            }
        }
    }

    /// PUT (main resource or `/status`). `status_only` selects `/status` semantics.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status_only: bool,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let body = self.check_body(def, version, ns, Some(name), body)?;
        let old = self
            .stored(def, ns, name)
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        let want_rv = rv_of(&body);
        if !want_rv.is_empty() && want_rv != rv_of(&old) {
            return Err(ApiError::conflict(&def.group, &def.plural, name));
        }
        let mut new;
        if status_only {
            new = old.clone();
            match body.get("status") {
                Some(s) if !s.is_null() => new["status"] = s.clone(),
                _ => match def.initial_status() {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                },
            }
        } else {
            new = body;
            let body_uid = meta_str(&new, "uid").unwrap_or_default().to_string();
            if !body_uid.is_empty() && body_uid != uid_of(&old) {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    name,
                    "metadata.uid",
                    "FieldValueInvalid",
                    &format!("Invalid value: \"{body_uid}\": field is immutable"),
                ));
            }
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.get(f) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            if def.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if def.builtin && def.group.is_empty() && def.plural == "namespaces" {
                if let Some(labels) = old.pointer("/metadata/labels/kubernetes.io~1metadata.name") {
                    let l = labels.clone();
                    let meta = meta_mut(&mut new);
                    let labels = meta.entry("labels").or_insert_with(|| json!({}));
                    if let Some(m) = labels.as_object_mut() {
                        m.insert("kubernetes.io/metadata.name".into(), l);
                    }
                }
                set_default(&mut new, "spec.finalizers", json!(["kubernetes"]));
            }
            if def.builtin && def.plural == "customresourcedefinitions" {
                let old_status = old.get("status").cloned();
                prepare_crd(&mut new, old_status.as_ref())?;
            }
            Self::bump_generation(def, &old, &mut new);
        }
        self.finish_update(def, version, &old, new, opts)
    }

    /// PATCH (main resource, `/status` or `/scale`).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        pt: PatchType,
        patch: &[u8],
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        if pt == PatchType::Apply && opts.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                details: Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions",
                    "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})),
                retry_after: None,
            });
        }
        if pt != PatchType::Apply && opts.force {
            return Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch".into(),
                details: Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions",
                    "causes": [{"reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for non-apply patch", "field": "force"}]})),
                retry_after: None,
            });
        }
        if pt == PatchType::Strategic && !def.builtin {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                details: None,
                retry_after: None,
            });
        }
        let Some(old) = self.stored(def, ns, name) else {
            if pt == PatchType::Apply && sub.is_none() {
                let mut body = parse_json(patch)?;
                if !body.is_object() {
                    return Err(ApiError::bad_request(
                        "the body of the request was not a JSON object",
                    ));
                }
                let body_name = meta_str(&body, "name").unwrap_or_default().to_string();
                if !body_name.is_empty() && body_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({name})"
                    )));
                }
                meta_mut(&mut body).insert("name".into(), json!(name));
                return self.create(def, version, ns, body, opts);
            }
            return Err(ApiError::not_found(&def.group, &def.plural, name));
        };
        match sub {
            Some("scale") => {
                let view = self.scale_view(def, &old, true)?;
                let patched = apply_patch(pt, &view, patch)?;
                self.update_scale(def, ns, name, patched, opts)
            }
            Some(_) => {
                let patched = apply_patch(pt, &present(def, version, &old), patch)?;
                self.update(def, version, ns, name, patched, true, opts)
            }
            None => {
                let patched = apply_patch(pt, &present(def, version, &old), patch)?;
                self.update(def, version, ns, name, patched, false, opts)
            }
        }
    }

    /// The `autoscaling/v1` Scale view of an object. `lenient` = missing spec replicas read
    /// as 0 (used when the view is a patch target).
    pub fn scale_view(
        &self,
        def: &ResourceDef,
        obj: &Value,
        lenient: bool,
    ) -> Result<Value, ApiError> {
        let paths = def.scale.as_ref().ok_or_else(ApiError::path_not_found)?;
        let spec = get_path(obj, &paths.spec_replicas).and_then(Value::as_i64);
        if spec.is_none() && !lenient {
            return Err(ApiError::internal(&format!(
                "the spec replicas field {:?} does not exist",
                paths.spec_replicas
            )));
        }
        let status = get_path(obj, &paths.status_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let selector = if paths.from_spec_selector {
            get_path(obj, "spec.selector")
                .map(label_selector_string)
                .unwrap_or_default()
        } else {
            paths
                .label_selector
                .as_deref()
                .and_then(|p| get_path(obj, p))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let m = obj.get("metadata").cloned().unwrap_or_default();
        let mut meta = serde_json::Map::new();
        for f in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = m.get(f) {
                meta.insert(f.into(), v.clone());
            }
        }
        // `ScaleStatus.replicas` has no `omitempty`; `ScaleSpec.replicas` and
        // `ScaleStatus.selector` have it, so a Scale of 0 replicas has `spec: {}`.
        let mut st = json!({"replicas": status});
        if !selector.is_empty() {
            st["selector"] = json!(selector);
        }
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": scale_spec(spec.unwrap_or(0)),
            "status": st,
        }))
    }

    /// GET `/scale`.
    pub fn get_scale(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self
            .stored(def, ns, name)
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        self.scale_view(def, &obj, false)
    }

    /// PUT `/scale` (and the second half of PATCH `/scale`): writes only the replicas.
    pub fn update_scale(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        mut body: Value,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let paths = def.scale.clone().ok_or_else(ApiError::path_not_found)?;
        let Some(map) = body.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        };
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(av) if !av.is_empty() && av != "autoscaling/v1" => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version (autoscaling/v1)"
                )));
            }
            _ => {}
        }
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != "Scale" => {
                return Err(ApiError::bad_request(format!(
                    "{k} in version \"v1\" cannot be handled as a Scale: the kind in the data ({k}) does not match the expected kind (Scale)"
                )));
            }
            _ => {}
        }
        let body_name = meta_str(&body, "name").unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old = self
            .stored(def, ns, name)
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        let replicas = match get_path(&body, "spec.replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().filter(|r| i32::try_from(*r).is_ok()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
                ))
            })?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                "spec.replicas",
                "FieldValueInvalid",
                &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            ));
        }
        let want_rv = rv_of(&body);
        if !want_rv.is_empty() && want_rv != rv_of(&old) {
            return Err(ApiError::conflict(&def.group, &def.plural, name));
        }
        let mut new = old.clone();
        set_path(&mut new, &paths.spec_replicas, json!(replicas));
        Self::bump_generation(def, &old, &mut new);
        let version = def.versions[0].clone();
        self.finish_update(def, &version, &old, new, opts)?;
        let stored = self
            .stored(def, ns, name)
            .filter(|_| !opts.dry_run)
            .unwrap_or(old);
        let mut view = self.scale_view(def, &stored, true)?;
        if opts.dry_run {
            view["spec"] = scale_spec(replicas);
        }
        Ok((200, view))
    }

    fn remove_object(&mut self, def: &ResourceDef, k: &str, obj: &Value) {
        self.rv += 1;
        self.commit(&gr(def), k, EventType::Deleted, None, Some(obj.clone()));
    }

    /// DELETE one object.
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        options: &Value,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let old = self
            .stored(def, ns, name)
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && uid != uid_of(&old)
        {
            return Err(ApiError::conflict_msg(
                &def.group,
                &def.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    uid_of(&old)
                ),
            ));
        }
        if let Some(rv) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && rv != rv_of(&old)
        {
            return Err(ApiError::conflict_msg(
                &def.group,
                &def.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    rv_of(&old)
                ),
            ));
        }
        let is_ns = def.builtin && def.group.is_empty() && def.plural == "namespaces";
        if is_ns && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        let k = key(ns.filter(|_| def.namespaced), name);
        let finalizers = get_path(&old, "metadata.finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if is_ns {
            let mut term = old.clone();
            set_default(
                &mut term,
                "metadata.deletionTimestamp",
                json!(now_rfc3339()),
            );
            set_default(&mut term, "metadata.deletionGracePeriodSeconds", json!(0));
            set_path(&mut term, "status.phase", json!("Terminating"));
            if opts.dry_run {
                return Ok((200, present(def, version, &term)));
            }
            // Synchronous namespace cleanup (the real namespace controller is asynchronous).
            let prefix = format!("{name}/");
            let defs = self.defs.clone();
            for d in defs.iter().filter(|d| d.namespaced) {
                let victims: Vec<(String, Value)> = self
                    .objects
                    .get(&gr(d))
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| k.starts_with(&prefix))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                for (vk, vo) in victims {
                    self.remove_object(d, &vk, &vo);
                }
            }
            self.remove_object(def, &k, &term);
            let mut out = term;
            set_rv(&mut out, self.rv);
            return Ok((200, present(def, version, &out)));
        }
        if finalizers {
            if get_path(&old, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
                return Ok((200, present(def, version, &old)));
            }
            let mut new = old.clone();
            let meta = meta_mut(&mut new);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if def.generation != Generation::None {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                meta.insert("generation".into(), json!(g + 1));
            }
            return self.finish_update(def, version, &old, new, opts);
        }
        let is_crd = def.builtin && def.plural == "customresourcedefinitions";
        if opts.dry_run {
            return Ok((
                200,
                if def.return_deleted {
                    present(def, version, &old)
                } else {
                    success_status(&def.group, &def.plural, name, &uid_of(&old))
                },
            ));
        }
        if is_crd && let Some(served) = resources::from_crd(&old) {
            let victims: Vec<(String, Value)> = self
                .objects
                .get(&gr(&served))
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            for (vk, vo) in victims {
                self.remove_object(&served, &vk, &vo);
            }
        }
        let mut last = old.clone();
        if is_crd {
            set_default(
                &mut last,
                "metadata.deletionTimestamp",
                json!(now_rfc3339()),
            );
            set_default(&mut last, "metadata.deletionGracePeriodSeconds", json!(0));
        }
        self.remove_object(def, &k, &last);
        if def.return_deleted {
            set_rv(&mut last, self.rv);
            Ok((200, present(def, version, &last)))
        } else {
            Ok((
                200,
                success_status(&def.group, &def.plural, name, &uid_of(&old)),
            ))
        }
    }

    /// DELETE a collection: deletes every matching object, answers with the deleted items.
    pub fn delete_collection(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        lopts: &ListOpts,
        options: &Value,
        opts: &WriteOpts,
    ) -> Result<(u16, Value), ApiError> {
        let list = self.list(
            def,
            version,
            ns,
            &ListOpts {
                limit: None,
                continue_token: None,
                ..lopts.clone()
            },
        )?;
        let mut items = vec![];
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let ins = meta_str(&item, "namespace").map(str::to_string);
            let (_, out) = self.delete(def, version, ins.as_deref(), &name, options, opts)?;
            if out.get("kind").and_then(Value::as_str) != Some("Status") {
                items.push(out);
            } else {
                items.push(item);
            }
        }
        Ok((
            200,
            json!({
                "kind": def.list_kind,
                "apiVersion": def.api_version(version),
                "metadata": {"resourceVersion": self.rv.to_string()},
                "items": items,
            }),
        ))
    }

    /// Current objects of a resource (for a watch's initial events) and the current RV.
    pub fn snapshot(&self, def: &ResourceDef, ns: Option<&str>) -> (Vec<Value>, u64) {
        let prefix = ns.filter(|_| def.namespaced).map(|n| format!("{n}/"));
        let items = self
            .objects
            .get(&gr(def))
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| prefix.as_deref().is_none_or(|p| k.starts_with(p)))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, self.rv)
    }

    /// Events of a resource after `since`.
    pub fn poll(&self, def: &ResourceDef, since: u64) -> Poll {
        if !self
            .defs
            .iter()
            .any(|d| d.group == def.group && d.plural == def.plural)
        {
            return Poll::Gone;
        }
        let g = gr(def);
        let oldest = self
            .compacted
            .max(self.floors.get(&g).copied().unwrap_or(0));
        if since < oldest {
            return Poll::Expired { oldest };
        }
        let events = self
            .history
            .get(&g)
            .map(|h| {
                let start = h.partition_point(|e| e.rv <= since);
                h.iter().skip(start).cloned().collect()
            })
            .unwrap_or_default();
        Poll::Events(events, self.rv)
    }
}
