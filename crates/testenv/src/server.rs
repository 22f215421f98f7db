//! HTTP routing: discovery, resource verbs, watches, the `/testenv` control endpoints.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::authn::{self, Identity};
use crate::rbac;
use crate::records::{Fault, RequestRecord, WriteRecord};
use crate::resources::{self, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector, required_name};
use crate::status::ApiError;
use crate::store::{Cluster, ListOpts, PatchType, WriteOpts};
use crate::watch::{self as watcher, WatchRequest, metadata_only};

/// The Kubernetes version this server claims to be.
pub(crate) const GIT_VERSION: &str = "v1.33.0";

#[derive(Clone)]
struct App {
    cluster: Cluster,
    shutdown: watch::Receiver<bool>,
}

/// Serves the API on `listener` until `shutdown` completes; then open watches end and the
/// server stops once in-flight requests are done.
pub async fn serve(
    listener: TcpListener,
    cluster: Cluster,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let app = App {
        cluster,
        shutdown: rx,
    };
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(true);
        })
        .await
}

fn json_response(code: u16, body: &Value) -> Response {
    json_response_ct(code, body, "application/json")
}

fn json_response_ct(code: u16, body: &Value, content_type: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// Where a request goes.
#[derive(Debug, Clone, Default)]
struct ReqInfo {
    resource_request: bool,
    verb: String,
    group: String,
    version: String,
    resource: String,
    sub: Option<String>,
    ns: Option<String>,
    name: Option<String>,
    /// Non-resource path segments (discovery).
    segments: Vec<String>,
    not_found: bool,
}

fn parse_path(method: &Method, path: &str, params: &HashMap<String, String>) -> ReqInfo {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut info = ReqInfo {
        verb: method.as_str().to_lowercase(),
        ..Default::default()
    };
    let (group, version, rest): (String, String, &[String]) = match segs.as_slice() {
        [api, v, rest @ ..] if api == "api" && !rest.is_empty() => (String::new(), v.clone(), rest),
        [apis, g, v, rest @ ..] if apis == "apis" && !rest.is_empty() => {
            (g.clone(), v.clone(), rest)
        }
        _ => {
            info.verb = if method == Method::GET {
                "get".into()
            } else {
                method.as_str().to_lowercase()
            };
            info.segments = segs;
            return info;
        }
    };
    info.resource_request = true;
    info.group = group;
    info.version = version;
    let mut rest = rest;
    if rest[0] == "namespaces"
        && rest.len() >= 3
        && !matches!(rest[2].as_str(), "status" | "finalize")
    {
        info.ns = Some(rest[1].clone());
        rest = &rest[2..];
    }
    match rest {
        [r] => info.resource = r.clone(),
        [r, n] => {
            info.resource = r.clone();
            info.name = Some(n.clone());
        }
        [r, n, s] => {
            info.resource = r.clone();
            info.name = Some(n.clone());
            info.sub = Some(s.clone());
        }
        _ => info.not_found = true,
    }
    let watch = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    info.verb = match *method {
        Method::GET if info.name.is_some() => "get",
        Method::GET if watch => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if info.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
    .to_string();
    info
}

/// The authorization attributes of a request, as kube-apiserver's `RequestInfoFactory` reads them
/// beyond [`parse_path`]: a namespace's own URLs (`/api/v1/namespaces/x`, `.../x/status`) are in
/// namespace `x`, and a list or watch names the object its `metadata.name` field selector requires.
fn attributes(info: &ReqInfo, path: &str, params: &HashMap<String, String>) -> rbac::Attributes {
    let mut name = info.name.clone().unwrap_or_default();
    if matches!(info.verb.as_str(), "list" | "watch")
        && let Some(n) = params.get("fieldSelector").and_then(|s| required_name(s))
    {
        name = n;
    }
    let namespace = match &info.ns {
        Some(ns) => ns.clone(),
        None if info.resource == "namespaces" => info.name.clone().unwrap_or_default(),
        None => String::new(),
    };
    rbac::Attributes {
        verb: info.verb.clone(),
        resource_request: info.resource_request,
        group: info.group.clone(),
        resource: info.resource.clone(),
        subresource: info.sub.clone().unwrap_or_default(),
        namespace,
        name,
        path: path.to_string(),
    }
}

/// Authentication, then authorization, as the API server's filters run them before any handler:
/// the user a registered token stands for (`None` for the admin) and the 401 or 403 that refuses
/// the request, if any.
fn authenticate_and_authorize(
    cluster: &Cluster,
    headers: &HeaderMap,
    attributes: impl FnOnce() -> rbac::Attributes,
) -> (Option<String>, Option<ApiError>) {
    let g = cluster.lock();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    match authn::authenticate(&g.tokens, authorization) {
        Err(e) => (None, Some(e)),
        Ok(Identity::Admin) => (None, None),
        Ok(Identity::User(user)) => {
            let refused = rbac::authorize(&*g, &user, &attributes()).err();
            (Some(user.name), refused)
        }
    }
}

fn accepts(headers: &HeaderMap, needle: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.replace(' ', "").contains(needle))
}

fn write_method(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let query = uri.query().filter(|q| !q.is_empty()).map(str::to_string);
    let headers = req.headers().clone();
    if path == "/testenv" || path.starts_with("/testenv/") {
        let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
        return control(&app.cluster, &method, &path, &body);
    }
    let seq = app.cluster.next_seq();
    let body = match to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!("failed to read body: {e}")));
        }
    };
    let params: HashMap<String, String> =
        form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let info = parse_path(&method, &path, &params);
    let pq = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let (user, refused) =
        authenticate_and_authorize(&app.cluster, &headers, || attributes(&info, &path, &params));
    // A refused request reaches neither the faults nor the storage.
    let mut response = refused.as_ref().map(|e| (error_response(e), None));
    let fault = match refused {
        Some(_) => None,
        None => take_fault(&app.cluster, method.as_str(), &pq),
    };
    if let Some(f) = fault {
        if let Some(ms) = f.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(code) = f.status {
            response = Some((error_response(&ApiError::injected(code)), None));
        }
    }
    let (resp, created_name) = match response {
        Some(r) => r,
        None => dispatch(&app, &method, &info, &params, &headers, &body).await,
    };
    let code = resp.status().as_u16();
    let dry_run = params.get("dryRun").is_some_and(|d| !d.is_empty());
    let mut g = app.cluster.lock();
    g.requests.push(RequestRecord {
        seq,
        method: method.as_str().to_string(),
        verb: info.verb.clone(),
        path: path.clone(),
        query: query.clone(),
        group: info.group.clone(),
        version: info.version.clone(),
        resource: info.resource.clone(),
        subresource: info.sub.clone(),
        namespace: info.ns.clone(),
        name: info.name.clone(),
        status: code,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        user,
    });
    if info.resource_request && write_method(&method) && !dry_run && refused.is_none() {
        let body_json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        let name = info.name.clone().or(created_name).or_else(|| {
            body_json
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        g.writes.push(WriteRecord {
            seq,
            method: method.as_str().to_string(),
            path,
            query,
            group: info.group.clone(),
            version: info.version.clone(),
            resource: info.resource.clone(),
            subresource: info.sub.clone(),
            namespace: info.ns.clone(),
            name,
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            field_manager: params.get("fieldManager").cloned(),
            status: code,
            body: body_json,
        });
    }
    resp
}

fn take_fault(cluster: &Cluster, method: &str, pq: &str) -> Option<Fault> {
    let mut g = cluster.lock();
    let idx = g.faults.iter().position(|f| f.fault.matches(method, pq))?;
    let f = g.faults[idx].fault.clone();
    if let Some(r) = g.faults[idx].remaining.as_mut() {
        *r -= 1;
        if *r == 0 {
            g.faults.remove(idx);
        }
    }
    Some(f)
}

fn control(cluster: &Cluster, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/testenv/writes") => json_response(200, &json!(cluster.writes())),
        ("GET", "/testenv/requests") => json_response(200, &json!(cluster.requests())),
        ("POST", "/testenv/faults") => match serde_json::from_slice::<Fault>(body) {
            Ok(f) => {
                cluster.inject(f.clone());
                json_response(201, &json!(f))
            }
            Err(e) => error_response(&ApiError::bad_request(format!("invalid fault: {e}"))),
        },
        ("DELETE", "/testenv/faults") => {
            cluster.clear_faults();
            json_response(200, &json!({}))
        }
        ("POST", "/testenv/compact") => {
            cluster.compact();
            json_response(200, &json!({}))
        }
        _ => error_response(&ApiError::path_not_found()),
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "60a317eadfcb839692a5551a1b2fe2ab4ad0ecd1",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:52Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

const AGGREGATED_V2: &str = "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn discovery(app: &App, method: &Method, info: &ReqInfo, headers: &HeaderMap) -> Response {
    if *method != Method::GET {
        return error_response(&ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: None,
            retry_after: None,
        });
    }
    let defs = app.cluster.lock().defs.clone();
    let segs: Vec<&str> = info.segments.iter().map(String::as_str).collect();
    let aggregated = accepts(headers, AGGREGATED_V2);
    let agg_ct = format!("application/json;{AGGREGATED_V2}");
    match segs.as_slice() {
        [] => {
            let mut paths = vec![
                "/api".to_string(),
                "/api/v1".into(),
                "/apis".into(),
                "/version".into(),
                "/healthz".into(),
                "/livez".into(),
                "/readyz".into(),
            ];
            for (g, vs) in resources::groups(&defs) {
                paths.push(format!("/apis/{g}"));
                for v in vs {
                    paths.push(format!("/apis/{g}/{v}"));
                }
            }
            paths.sort();
            json_response(200, &json!({"paths": paths}))
        }
        ["version"] => json_response(200, &version_info()),
        ["healthz"] | ["livez"] | ["readyz"] => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        ["api"] if aggregated => {
            json_response_ct(200, &resources::aggregated(&defs, true), &agg_ct)
        }
        ["api"] => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1")
                .to_string();
            json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
            )
        }
        ["api", v] => match resources::api_resource_list(&defs, "", v) {
            Some(l) => json_response(200, &l),
            None => error_response(&ApiError::path_not_found()),
        },
        ["apis"] if aggregated => {
            json_response_ct(200, &resources::aggregated(&defs, false), &agg_ct)
        }
        ["apis"] => json_response(200, &resources::api_group_list(&defs)),
        ["apis", g] => match resources::api_group(&defs, g) {
            Some(v) => json_response(200, &v),
            None => error_response(&ApiError::path_not_found()),
        },
        ["apis", g, v] => match resources::api_resource_list(&defs, g, v) {
            Some(l) => json_response(200, &l),
            None => error_response(&ApiError::path_not_found()),
        },
        _ => error_response(&ApiError::path_not_found()),
    }
}

fn parse_write_opts(params: &HashMap<String, String>) -> Result<WriteOpts, ApiError> {
    let dry_run = match params.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("Invalid dry run value: \"{other}\": supported values: \"All\""),
                details: None,
                retry_after: None,
            });
        }
    };
    Ok(WriteOpts {
        dry_run,
        field_manager: params.get("fieldManager").cloned(),
        force: params.get("force").is_some_and(|f| f == "true" || f == "1"),
    })
}

fn parse_list_opts(
    def: &ResourceDef,
    params: &HashMap<String, String>,
) -> Result<ListOpts, ApiError> {
    let labels = LabelSelector::parse(
        params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        &def.field_labels,
    )?;
    let limit = match params.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
        ),
        None => None,
    };
    Ok(ListOpts {
        labels,
        fields,
        limit,
        continue_token: params.get("continue").cloned(),
    })
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "error decoding request body: json parse error: {e}"
        ))
    })
}

/// Handles a request; the second value is the name of a created object (for the write log).
async fn dispatch(
    app: &App,
    method: &Method,
    info: &ReqInfo,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Option<String>) {
    if !info.resource_request {
        return (discovery(app, method, info, headers), None);
    }
    match resource_request(app, info, params, headers, body) {
        Ok(Reply::Json(code, v)) => {
            let created = (code == 201)
                .then(|| {
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .flatten();
            let v = if accepts(headers, "as=PartialObjectMetadataList") && v.get("items").is_some()
            {
                let items: Vec<Value> = v["items"]
                    .as_array()
                    .map(|a| a.iter().map(metadata_only).collect())
                    .unwrap_or_default();
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": v["metadata"].clone(), "items": items})
            } else if accepts(headers, "as=PartialObjectMetadata;")
                && v.get("kind") != Some(&json!("Status"))
            {
                metadata_only(&v)
            } else {
                v
            };
            (json_response(code, &v), created)
        }
        Ok(Reply::Stream(r)) => (r, None),
        Err(e) => (error_response(&e), None),
    }
}

enum Reply {
    Json(u16, Value),
    Stream(Response),
}

fn resource_request(
    app: &App,
    info: &ReqInfo,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    if info.not_found {
        return Err(ApiError::path_not_found());
    }
    let cluster = &app.cluster;
    let def = cluster
        .lock()
        .resolve(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::path_not_found)?;
    let verb = info.verb.as_str();
    let ns = info.ns.as_deref();
    let version = info.version.as_str();
    if def.namespaced {
        if ns.is_none() && info.name.is_some() {
            return Err(ApiError::path_not_found());
        }
        if ns.is_none() && matches!(verb, "create" | "deletecollection") {
            return Err(ApiError::method_not_supported(
                &def.group,
                &def.plural,
                verb,
            ));
        }
    } else if ns.is_some() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = info.sub.as_deref() {
        let ok = (sub == "status" && def.status) || (sub == "scale" && def.scale.is_some());
        if !ok {
            return Err(ApiError::path_not_found());
        }
        if !matches!(verb, "get" | "update" | "patch") {
            return Err(ApiError::method_not_supported(
                &def.group,
                &format!("{}/{sub}", def.plural),
                verb,
            ));
        }
    } else if (verb == "create" && info.name.is_some()) || verb == "unknown" || !def.allows(verb) {
        return Err(ApiError::method_not_supported(
            &def.group,
            &def.plural,
            verb,
        ));
    }
    let name = info.name.as_deref().unwrap_or_default();
    // `kubectl get` asks for a server-side Table; a custom resource is printed with its CRD's
    // columns (built-ins are served as JSON, and kubectl prints those itself).
    let table = (!def.builtin && info.sub.is_none() && accepts(headers, "as=Table"))
        .then(|| def.printer_columns.get(version).cloned())
        .flatten();
    let as_table = |v: Value| match &table {
        Some(cols) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::table::to_table(cols, &v, now)
        }
        None => v,
    };
    match verb {
        "get" => {
            let g = cluster.lock();
            let v = if info.sub.as_deref() == Some("scale") {
                g.get_scale(&def, ns, name)?
            } else {
                g.get(&def, version, ns, name)?
            };
            Ok(Reply::Json(200, as_table(v)))
        }
        "list" => {
            let opts = parse_list_opts(&def, params)?;
            let v = cluster.lock().list(&def, version, ns, &opts)?;
            Ok(Reply::Json(200, as_table(v)))
        }
        "watch" => {
            let opts = parse_list_opts(&def, params)?;
            let bookmarks = params
                .get("allowWatchBookmarks")
                .is_some_and(|b| b == "true" || b == "1");
            let send_initial = params
                .get("sendInitialEvents")
                .is_some_and(|b| b == "true" || b == "1");
            if send_initial {
                let rvm = params
                    .get("resourceVersionMatch")
                    .map(String::as_str)
                    .unwrap_or_default();
                let mut errs = vec![];
                if rvm != "NotOlderThan" {
                    errs.push("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
                }
                if !bookmarks {
                    errs.push("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true");
                }
                if !errs.is_empty() {
                    return Err(ApiError {
                        code: 422,
                        reason: "Invalid",
                        message: format!(
                            "ListOptions.meta.k8s.io \"\" is invalid: [{}]",
                            errs.join(", ")
                        ),
                        details: Some(json!({"group": "meta.k8s.io", "kind": "ListOptions"})),
                        retry_after: None,
                    });
                }
            }
            let timeout = params
                .get("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|t| *t > 0)
                .unwrap_or(1800);
            let req = WatchRequest {
                def: def.clone(),
                version: version.to_string(),
                namespace: info.ns.clone(),
                labels: opts.labels,
                fields: opts.fields,
                resource_version: params.get("resourceVersion").cloned(),
                bookmarks,
                send_initial_events: send_initial,
                timeout: Duration::from_secs(timeout),
                metadata_only: accepts(headers, "as=PartialObjectMetadata"),
            };
            Ok(Reply::Stream(watcher::start(
                cluster,
                req,
                app.shutdown.clone(),
            )?))
        }
        "create" => {
            let wo = parse_write_opts(params)?;
            let obj = body_json(body)?;
            let (code, v) = cluster.with(|g| g.create(&def, version, ns, obj, &wo))?;
            Ok(Reply::Json(code, v))
        }
        "update" => {
            let wo = parse_write_opts(params)?;
            let obj = body_json(body)?;
            let (code, v) = match info.sub.as_deref() {
                Some("scale") => cluster.with(|g| g.update_scale(&def, ns, name, obj, &wo))?,
                Some(_) => cluster.with(|g| g.update(&def, version, ns, name, obj, true, &wo))?,
                None => cluster.with(|g| g.update(&def, version, ns, name, obj, false, &wo))?,
            };
            Ok(Reply::Json(code, v))
        }
        "patch" => {
            let wo = parse_write_opts(params)?;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let pt = PatchType::from_content_type(ct).ok_or_else(|| ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
                    if def.builtin { ", application/strategic-merge-patch+json" } else { "" }),
                details: None,
                retry_after: None,
            })?;
            if body.is_empty() {
                return Err(ApiError::bad_request("the body of the request was empty"));
            }
            let (code, v) = cluster
                .with(|g| g.patch(&def, version, ns, name, info.sub.as_deref(), pt, body, &wo))?;
            Ok(Reply::Json(code, v))
        }
        "delete" => {
            let wo = parse_write_opts(params)?;
            let opts = if body.is_empty() {
                json!({})
            } else {
                body_json(body)?
            };
            let wo = WriteOpts {
                dry_run: wo.dry_run
                    || opts
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|d| d == "All")),
                ..wo
            };
            let (code, v) = cluster.with(|g| g.delete(&def, version, ns, name, &opts, &wo))?;
            Ok(Reply::Json(code, v))
        }
        "deletecollection" => {
            let wo = parse_write_opts(params)?;
            let lo = parse_list_opts(&def, params)?;
            let opts = if body.is_empty() {
                json!({})
            } else {
                body_json(body)?
            };
            let (code, v) =
                cluster.with(|g| g.delete_collection(&def, version, ns, &lo, &opts, &wo))?;
            Ok(Reply::Json(code, v))
        }
        _ => Err(ApiError::method_not_supported(
            &def.group,
            &def.plural,
            verb,
        )),
    }
}
