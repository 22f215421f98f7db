//! Request and write logs, and injectable faults.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One write request (POST, PUT, PATCH or DELETE on a resource), as received and answered.
///
/// Dry-run requests (`?dryRun=All`) are not writes and are not recorded here, nor are requests
/// refused before they reach the storage: 401 (an unknown token) and RBAC's 403.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Sequence number shared with [`RequestRecord::seq`] (arrival order).
    pub seq: u64,
    /// HTTP method (`POST`, `PUT`, `PATCH`, `DELETE`).
    pub method: String,
    /// URL path, e.g. `/apis/apps/v1/namespaces/default/deployments/web/scale`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource (plural), e.g. `deployments`.
    pub resource: String,
    /// Subresource (`status`, `scale`), if any.
    pub subresource: Option<String>,
    /// Namespace from the URL, if any.
    pub namespace: Option<String>,
    /// Object name: from the URL, or for creates the name of the created object.
    pub name: Option<String>,
    /// `Content-Type` request header (the patch type for PATCH).
    pub content_type: Option<String>,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// HTTP status code of the response.
    pub status: u16,
    /// Request body as JSON (`null` when empty; a JSON string when it was not valid JSON).
    pub body: Value,
}

/// One request of any kind, with the Kubernetes verb it maps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number in arrival order.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` (non-resource requests such as discovery are `get`).
    pub verb: String,
    /// URL path.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// API group (`""` for core and for non-resource requests).
    pub group: String,
    /// API version (`""` for non-resource requests).
    pub version: String,
    /// Resource (plural); `""` for non-resource requests such as `/version` or `/apis`.
    pub resource: String,
    /// Subresource, if any.
    pub subresource: Option<String>,
    /// Namespace from the URL, if any.
    pub namespace: Option<String>,
    /// Object name from the URL, if any.
    pub name: Option<String>,
    /// HTTP status code (for watches, the code the stream started with).
    pub status: u16,
    /// The `Authorization` request header, if any (tests can tell clients apart by their tokens).
    #[serde(default)]
    pub authorization: Option<String>,
    /// The user a registered bearer token authenticated the request as (see
    /// [`Cluster::add_token`](crate::Cluster::add_token)); `None` for the server's own admin (no
    /// `Authorization` header) and for a request refused with 401.
    #[serde(default)]
    pub user: Option<String>,
}

/// A fault to inject into matching requests.
///
/// A request matches when `method` (if set) equals its HTTP method (case-insensitive) and
/// `path_contains` is a substring of `path?query`. The first matching fault applies: after
/// `delay_ms` (if set) the request either fails with `status` (a proper `metav1.Status`:
/// 500 InternalError, 429 TooManyRequests with `Retry-After: 1`, 409 Conflict, 503
/// ServiceUnavailable, ...) or, without `status`, is handled normally. `times` is how many
/// matching requests the fault affects (`0` = forever). `/testenv/...` requests never match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP method to match (`GET`, `PATCH`, ...); any when `None`.
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of `path?query` to match (empty matches everything).
    #[serde(default)]
    pub path_contains: String,
    /// Status code to answer with; `None` = only delay.
    #[serde(default)]
    pub status: Option<u16>,
    /// Delay before handling (or failing) the request, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Number of matching requests affected; 0 = unlimited.
    #[serde(default)]
    pub times: u32,
}

impl Fault {
    /// A fault that fails every matching request with `status`.
    pub fn status(path_contains: impl Into<String>, status: u16) -> Self {
        Fault {
            path_contains: path_contains.into(),
            status: Some(status),
            ..Default::default()
        }
    }

    /// A fault that delays every matching request by `ms` milliseconds.
    pub fn delay(path_contains: impl Into<String>, ms: u64) -> Self {
        Fault {
            path_contains: path_contains.into(),
            delay_ms: Some(ms),
            ..Default::default()
        }
    }

    /// Restricts the fault to one HTTP method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Limits the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    pub(crate) fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path_and_query.contains(&self.path_contains)
    }
}

/// An installed fault with its remaining count.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub fault: Fault,
    pub remaining: Option<u32>,
}
