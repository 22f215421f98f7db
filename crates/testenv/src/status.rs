//! `metav1.Status` error responses, shaped like `k8s.io/apimachinery/pkg/api/errors`.

use serde_json::{Value, json};

use crate::schema::FieldError;

/// An API error, rendered as a `metav1.Status` body with the matching HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

/// `deployments.apps` / `pods`: the qualified resource used in messages.
pub(crate) fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }

    /// 404 for an object: `deployments.apps "web" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        );
        e.details = Some(details(group, plural, name));
        e
    }

    /// 404 for an unknown path or resource.
    pub fn path_not_found() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        );
        e.details = Some(details(group, plural, name));
        e
    }

    /// 409 Conflict for a stale resourceVersion (optimistic concurrency).
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict_msg(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a custom cause (`Operation cannot be fulfilled on ...: <why>`).
    pub fn conflict_msg(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, plural)
            ),
        );
        e.details = Some(details(group, plural, name));
        e
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 Invalid with one field cause.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        field: &str,
        cause_reason: &str,
        detail: &str,
    ) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {field}: {detail}"),
        );
        let mut d = details(group, kind, name);
        d["causes"] = json!([{ "reason": cause_reason, "message": detail, "field": field }]);
        e.details = Some(d);
        e
    }

    /// 422 Invalid with one cause per field error (`apierrors.NewInvalid`): the message joins the
    /// distinct errors as `field.ErrorList.ToAggregate` does (one error alone, several as `[a, b]`).
    pub fn invalid_fields(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut messages: Vec<String> = vec![];
        for m in errs.iter().map(FieldError::message) {
            if !messages.contains(&m) {
                messages.push(m);
            }
        }
        let joined = match messages.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        );
        let mut d = details(group, kind, name);
        d["causes"] = errs
            .iter()
            .map(|f| json!({ "reason": f.reason, "message": f.body, "field": f.field }))
            .collect();
        e.details = Some(d);
        e
    }

    /// 405 MethodNotAllowed for a verb a resource does not support.
    pub fn method_not_supported(group: &str, plural: &str, verb: &str) -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                qualified(group, plural)
            ),
        );
        e.details = Some(details(group, plural, ""));
        e
    }

    /// 403 Forbidden, worded as `apierrors.NewForbidden`: `deployments.apps "web" is forbidden: why`;
    /// without a name (a create, a list) `deployments.apps is forbidden: why`; without a resource
    /// (a non-resource URL such as `/`) `forbidden: why`. `details` holds the name, the group and
    /// the resource (as `kind`), each only when set.
    pub fn forbidden(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let message = match (plural.is_empty() && group.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{} is forbidden: {why}", qualified(group, plural)),
            (false, false) => format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(group, plural)
            ),
        };
        let mut e = Self::new(403, "Forbidden", message);
        e.details = Some(details(group, plural, name));
        e
    }

    /// 401 Unauthorized: what the API server answers when no authenticator accepts the
    /// credentials a request carries (an unknown bearer token).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 500 InternalError.
    pub fn internal(message: &str) -> Self {
        let mut e = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        );
        e.details = Some(json!({ "causes": [{ "message": message }] }));
        e
    }

    /// 410 Expired (too old resource version), as sent in a watch ERROR event.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// The error an injected fault produces for an HTTP status code.
    pub fn injected(code: u16) -> Self {
        match code {
            400 => Self::bad_request("injected fault"),
            401 => Self::unauthorized(),
            403 => Self::new(403, "Forbidden", "forbidden: injected fault"),
            404 => Self::path_not_found(),
            409 => Self::new(
                409,
                "Conflict",
                "Operation cannot be fulfilled: injected fault",
            ),
            410 => Self::new(410, "Expired", "injected fault"),
            422 => Self::new(422, "Invalid", "injected fault"),
            429 => {
                let mut e = Self::new(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                );
                e.details = Some(json!({ "retryAfterSeconds": 1 }));
                e.retry_after = Some(1);
                e
            }
            500 => Self::internal("injected fault"),
            503 => Self::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => Self::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            c => Self::new(c, "Unknown", "injected fault"),
        }
    }
}

/// A `Status` with `status: Success` (the reply to most deletes).
pub(crate) fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut d = details(group, plural, name);
    if !uid.is_empty() {
        d["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_apiserver() {
        assert_eq!(
            ApiError::not_found("apps", "deployments", "web").to_status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"deployments.apps \"web\" not found","reason":"NotFound",
                "details":{"name":"web","group":"apps","kind":"deployments"},"code":404})
        );
        assert_eq!(
            ApiError::not_found("", "pods", "x").to_status()["message"],
            "pods \"x\" not found"
        );
    }
}
