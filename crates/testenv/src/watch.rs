//! Watch streams: newline-delimited JSON `WatchEvent`s over a chunked response.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::events;
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Cluster, EventType, HistEvent, Poll, present};
use crate::util::meta_str;

/// A parsed watch request.
pub(crate) struct WatchRequest {
    pub def: ResourceDef,
    pub version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None`, `""` or `"0"`: start with synthetic ADDED events for the current state.
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
    pub metadata_only: bool,
}

impl WatchRequest {
    fn selected(&self, obj: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) if self.def.namespaced => meta_str(obj, "namespace") == Some(ns.as_str()),
            _ => true,
        };
        ns_ok && self.labels.matches(obj) && self.fields.matches(&events::view(&self.def, obj))
    }

    fn render(&self, obj: &Value) -> Value {
        let o = present(&self.def, &self.version, obj);
        if self.metadata_only {
            metadata_only(&o)
        } else {
            o
        }
    }

    /// Converts a stored event for this watcher, as the watch cache does: an object that
    /// starts matching is ADDED, one that stops matching is DELETED (previous state, new RV).
    fn convert(&self, e: &HistEvent) -> Option<Value> {
        let now = self.selected(&e.object);
        let before = e.prev.as_ref().is_some_and(|p| self.selected(p));
        let (typ, obj) = match e.typ {
            EventType::Added if now => ("ADDED", self.render(&e.object)),
            EventType::Modified => match (before, now) {
                (true, true) => ("MODIFIED", self.render(&e.object)),
                (false, true) => ("ADDED", self.render(&e.object)),
                (true, false) => {
                    let mut prev = self.render(e.prev.as_ref()?);
                    prev["metadata"]["resourceVersion"] = json!(e.rv.to_string());
                    ("DELETED", prev)
                }
                (false, false) => return None,
            },
            EventType::Deleted if before => ("DELETED", self.render(&e.object)),
            _ => return None,
        };
        Some(json!({"type": typ, "object": obj}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = if self.metadata_only {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (self.def.kind.clone(), self.def.api_version(&self.version))
        };
        json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}})
    }
}

/// `PartialObjectMetadata` view of an object.
pub(crate) fn metadata_only(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch: answers 200 with a streaming body fed by a background task.
pub(crate) fn start(
    cluster: &Cluster,
    req: WatchRequest,
    shutdown: watch::Receiver<bool>,
) -> Result<Response, ApiError> {
    let initial_state = matches!(req.resource_version.as_deref(), None | Some("") | Some("0"))
        || req.send_initial_events;
    let start_rv: Option<u64> = match req.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{s}\": must be a non-negative integer"
            ))
        })?),
    };
    // Subscribe before reading the state so that no write is missed.
    let mut rv_rx = cluster.shared.rv_tx.subscribe();
    let (initial, snapshot_rv) = if initial_state {
        let g = cluster.lock();
        let (objs, rv) = g.snapshot(&req.def, req.namespace.as_deref());
        (objs, rv)
    } else {
        (vec![], 0)
    };
    let mut last = if initial_state {
        snapshot_rv
    } else {
        start_rv.unwrap_or(0)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let bookmark_every = cluster.bookmark_interval();
    let cluster = cluster.clone();
    let mut shutdown = shutdown;
    tokio::spawn(async move {
        let deadline = Instant::now() + req.timeout;
        for obj in initial.iter().filter(|o| req.selected(o)) {
            let ev = json!({"type": "ADDED", "object": req.render(obj)});
            if tx.send(line(&ev)).await.is_err() {
                return;
            }
        }
        if req.send_initial_events
            && req.bookmarks
            && tx.send(line(&req.bookmark(last, true))).await.is_err()
        {
            return;
        }
        let mut tick = tokio::time::interval_at(Instant::now() + bookmark_every, bookmark_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut want_bookmark = false;
        loop {
            rv_rx.borrow_and_update();
            let poll = cluster.lock().poll(&req.def, last);
            match poll {
                Poll::Gone => return,
                Poll::Expired { oldest } => {
                    let status = ApiError::expired(last, oldest).to_status();
                    let _ = tx
                        .send(line(&json!({"type": "ERROR", "object": status})))
                        .await;
                    return;
                }
                Poll::Events(events, current) => {
                    for e in &events {
                        if let Some(ev) = req.convert(e)
                            && tx.send(line(&ev)).await.is_err()
                        {
                            return;
                        }
                    }
                    last = current;
                }
            }
            if want_bookmark {
                want_bookmark = false;
                if tx.send(line(&req.bookmark(last, false))).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                r = rv_rx.changed() => if r.is_err() { return },
                _ = tick.tick(), if req.bookmarks => want_bookmark = true,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(&e.to_string()))
}
