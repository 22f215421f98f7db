//! Events: core `v1` and `events.k8s.io/v1` are two views of one stored object.
//!
//! kube-apiserver stores core `v1` Events; `events.k8s.io/v1` is a conversion of the same objects
//! (`pkg/apis/events/v1/conversion.go`), so an Event written through one API is read, listed,
//! watched, patched and deleted through the other. Here the store keeps the core `v1` form: a write
//! through `events.k8s.io/v1` is converted to it first, and every read is converted back.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// The group of the newer Event API.
const GROUP: &str = "events.k8s.io";

/// Fields renamed by the conversion: (`events.k8s.io/v1`, core `v1`).
const RENAMED: [(&str, &str); 7] = [
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Fields with the same name and meaning in both versions.
const SHARED: [&str; 10] = [
    "apiVersion",
    "kind",
    "metadata",
    "eventTime",
    "series",
    "related",
    "action",
    "reason",
    "type",
    "reportingInstance",
];

/// Whether `def` is `events.k8s.io`'s Event resource (served from the core Events' storage).
pub(crate) fn is_events_v1(def: &ResourceDef) -> bool {
    def.builtin && def.group == GROUP && def.plural == "events"
}

/// Whether `def` is one of the two Event resources.
pub(crate) fn is_event(def: &ResourceDef) -> bool {
    def.builtin && def.plural == "events" && (def.group.is_empty() || def.group == GROUP)
}

/// Copies the known fields of `obj` into a new object, renaming them by `(from, to)` pairs; fields
/// the source version does not have are dropped, as a typed decode drops them.
fn convert(obj: &Value, renames: impl Iterator<Item = (&'static str, &'static str)>) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (from, to) in SHARED.iter().map(|f| (*f, *f)).chain(renames) {
        if let Some(v) = m.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event in its stored (core `v1`) form.
pub(crate) fn to_core(obj: &Value) -> Value {
    let mut out = convert(obj, RENAMED.into_iter());
    out["apiVersion"] = json!("v1");
    out
}

/// A stored (core `v1`) Event as `events.k8s.io/v1` serves it.
pub(crate) fn from_core(obj: &Value) -> Value {
    let mut out = convert(obj, RENAMED.into_iter().map(|(new, core)| (core, new)));
    out["apiVersion"] = json!(format!("{GROUP}/v1"));
    out
}

/// Fills what the typed encoding always writes: `involvedObject` and `source` are structs without
/// `omitempty` effect in Go's JSON, so a real server answers `{}` for them when unset (and kube's
/// core `Event` type requires `involvedObject`).
pub(crate) fn normalize_core(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        for f in ["involvedObject", "source"] {
            if !m.get(f).is_some_and(Value::is_object) {
                m.insert(f.into(), json!({}));
            }
        }
    }
}

/// A stored object as the resource `def` shows it (converted for `events.k8s.io/v1`).
pub(crate) fn view<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    if is_events_v1(def) {
        Cow::Owned(from_core(obj))
    } else {
        Cow::Borrowed(obj)
    }
}
