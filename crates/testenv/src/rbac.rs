//! Authorization: Kubernetes' RBAC authorizer over the stored Roles, ClusterRoles and bindings.
//!
//! ```text
//! request ──▶ Attributes (verb, group, resource/subresource, namespace, name | path)   server.rs
//!         ──▶ system:masters? allow                                                    authorize
//!         ──▶ the built-in grants of every authenticated user (discovery)? allow
//!         ──▶ each ClusterRoleBinding naming the user: its ClusterRole's rules
//!         ──▶ in the request's namespace, each RoleBinding naming the user: its Role's
//!             or ClusterRole's rules (a ClusterRole granted in that namespace only)
//!         ──▶ no rule allows: 403 Forbidden, worded as the API server words it
//! ```
//!
//! Rules match as `rbac.RuleAllows` does: a verb, an API group, a resource (`plural`,
//! `plural/subresource`, `*/subresource` or `*`) and, when the rule lists `resourceNames`, the
//! request's name. Requests without a name (create, list and watch without a `metadata.name`
//! field selector, deletecollection) never match a rule with `resourceNames`. Non-resource URLs
//! match `nonResourceURLs` exactly or by a trailing `*` prefix.
//!
//! The RBAC objects are validated and defaulted on write as the API server does for the fields the
//! authorizer reads (see [`validate`]); aggregated ClusterRoles, the `escalate` and `bind` checks and
//! the bootstrap roles (`cluster-admin`, `edit`, `view`, ...) are not modelled (see the crate docs).

use serde_json::{Value, json};

use crate::authn::{AUTHENTICATED, MASTERS, User};
use crate::resources::ResourceDef;
use crate::status::ApiError;

/// The RBAC API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// What a request asks to do (`authorizer.Attributes`), read from its URL as the API server's
/// `RequestInfoFactory` reads it. Empty strings stand for "none", as in Go.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// non-resource URL the lower-cased HTTP method.
    pub verb: String,
    /// `false` for a non-resource URL (`/version`, `/apis`, discovery, `/`): rules match `path`.
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// `""` at the cluster scope (a cluster-scoped resource, or a list across all namespaces).
    pub namespace: String,
    /// From the URL, or a list's or watch's `metadata.name` field selector; `""` for a create.
    pub name: String,
    pub path: String,
}

/// One rule of a Role or ClusterRole (`rbacv1.PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// The strings of `obj[key]` (an absent or `null` list is empty).
fn strings(obj: &Value, key: &str) -> Vec<String> {
    obj.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `*` or an exact match.
fn matches_any(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

impl PolicyRule {
    fn from_json(rule: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(rule, "verbs"),
            api_groups: strings(rule, "apiGroups"),
            resources: strings(rule, "resources"),
            resource_names: strings(rule, "resourceNames"),
            non_resource_urls: strings(rule, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object.
    fn of_role(role: &Value) -> Vec<PolicyRule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }

    /// Whether the rule allows the request (`rbac.RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        if !matches_any(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_url_matches(&a.path);
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        matches_any(&self.api_groups, &a.group)
            && self.resource_matches(&combined, &a.subresource)
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }

    /// `*`, the exact `plural` or `plural/subresource`, or `*/subresource` for a subresource.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
    }

    /// `*`, the exact path, or a prefix ending in `*` (`/apis/*`).
    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        })
    }
}

/// What the bootstrap ClusterRoles bound to `system:authenticated` grant every authenticated user:
/// `system:discovery` (and `system:public-info-viewer`, a subset of it) and `system:basic-user`.
fn authenticated_defaults() -> [PolicyRule; 2] {
    let owned = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    [
        PolicyRule {
            verbs: owned(&["get"]),
            non_resource_urls: owned(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ]),
            ..Default::default()
        },
        PolicyRule {
            verbs: owned(&["create"]),
            api_groups: owned(&["authorization.k8s.io", "authentication.k8s.io"]),
            resources: owned(&[
                "selfsubjectaccessreviews",
                "selfsubjectrulesreviews",
                "selfsubjectreviews",
            ]),
            ..Default::default()
        },
    ]
}

/// Where the authorizer reads RBAC objects: the store, or a unit test's fixture.
pub(crate) trait RbacObjects {
    /// The stored objects of an RBAC resource (`roles`, `rolebindings`, `clusterroles`,
    /// `clusterrolebindings`) in `namespace` (`None` for the cluster-scoped two).
    fn rbac_objects(&self, plural: &str, namespace: Option<&str>) -> Vec<&Value>;

    /// One stored RBAC object.
    fn rbac_object(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.rbac_objects(plural, namespace)
            .into_iter()
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    }
}

/// Whether a binding's subject is the user (`appliesToUser`). A ServiceAccount subject without a
/// namespace means the binding's own namespace (none for a ClusterRoleBinding: no match).
fn subject_is(user: &User, subject: &Value, binding_namespace: &str) -> bool {
    let name = str_of(subject, "name");
    match str_of(subject, "kind") {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let ns = match str_of(subject, "namespace") {
                "" => binding_namespace,
                ns => ns,
            };
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn binds(user: &User, binding: &Value, binding_namespace: &str) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| subject_is(user, s, binding_namespace)))
}

/// The rules a binding's `roleRef` grants, or why they cannot be read (as the authorizer reports a
/// missing role: `clusterrole.rbac.authorization.k8s.io "x" not found`).
fn referenced_rules(
    store: &impl RbacObjects,
    role_ref: &Value,
    binding_namespace: &str,
) -> Result<Vec<PolicyRule>, String> {
    let name = str_of(role_ref, "name");
    let (plural, namespace, singular) = match str_of(role_ref, "kind") {
        "ClusterRole" => ("clusterroles", None, "clusterrole"),
        "Role" => ("roles", Some(binding_namespace), "role"),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    store
        .rbac_object(plural, namespace, name)
        .map(PolicyRule::of_role)
        .ok_or_else(|| format!("{singular}.{GROUP} {name:?} not found"))
}

/// The RBAC authorizer's decision: `Ok` when a rule allows the request, else the 403 to answer.
pub(crate) fn authorize(
    store: &impl RbacObjects,
    user: &User,
    a: &Attributes,
) -> Result<(), ApiError> {
    if user.in_group(MASTERS)
        || (user.in_group(AUTHENTICATED) && authenticated_defaults().iter().any(|r| r.allows(a)))
    {
        return Ok(());
    }
    let mut bindings: Vec<(&Value, &str)> = store
        .rbac_objects("clusterrolebindings", None)
        .into_iter()
        .map(|b| (b, ""))
        .collect();
    if !a.namespace.is_empty() {
        let ns = a.namespace.as_str();
        bindings.extend(
            store
                .rbac_objects("rolebindings", Some(ns))
                .into_iter()
                .map(|b| (b, ns)),
        );
    }
    let mut errors = vec![];
    for (binding, ns) in bindings.into_iter().filter(|(b, ns)| binds(user, b, ns)) {
        match referenced_rules(store, &binding["roleRef"], ns) {
            Ok(rules) if rules.iter().any(|r| r.allows(a)) => return Ok(()),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    // `utilerrors.NewAggregate`: one error as it is, several as `[a, b]`.
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Err(forbidden(user, a, &reason))
}

/// The 403 the API server answers (`responsewriters.Forbidden`): `<what> is forbidden: User "<u>"
/// cannot <verb> resource "<res[/sub]>" in API group "<g>" in the namespace "<ns>"` (or `at the
/// cluster scope`; for a non-resource URL `forbidden: User "<u>" cannot <verb> path "<path>"`),
/// then `: <reason>` when the authorizer gave one.
pub(crate) fn forbidden(user: &User, a: &Attributes, reason: &str) -> ApiError {
    let u = &user.name;
    let verb = &a.verb;
    let mut why = if !a.resource_request {
        format!("User {u:?} cannot {verb} path {:?}", a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", a.namespace)
        };
        format!(
            "User {u:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
            a.group
        )
    };
    // The API server HTML-escapes this part of the message (not the reason).
    why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    if a.resource_request {
        ApiError::forbidden(&a.group, &a.resource, &a.name, &why)
    } else {
        ApiError::forbidden("", "", "", &why)
    }
}

/// The defaults the API server sets on RBAC objects: a binding's `roleRef.apiGroup`, and a `User`
/// or `Group` subject's `apiGroup` (`SetDefaults_Subject`).
pub(crate) fn apply_defaults(def: &ResourceDef, obj: &mut Value) {
    if !def.plural.ends_with("bindings") {
        return;
    }
    if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && r.get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        r.insert("apiGroup".into(), json!(GROUP));
    }
    for s in obj
        .get_mut("subjects")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let kind = str_of(s, "kind");
        if matches!(kind, "User" | "Group") && str_of(s, "apiGroup").is_empty() {
            s["apiGroup"] = json!(GROUP);
        }
    }
}

/// One field error of an RBAC object: (field, cause reason, detail).
type FieldError = (String, &'static str, String);

fn required(field: String, detail: &str) -> FieldError {
    let detail = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    (field, "FieldValueRequired", detail)
}

fn not_supported(field: String, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    let detail = format!(
        "Unsupported value: {value:?}: supported values: {}",
        list.join(", ")
    );
    (field, "FieldValueNotSupported", detail)
}

/// Go's `%#v` of a `[]string`, as a field error shows an invalid list.
fn go_strings(xs: &[String]) -> String {
    let quoted: Vec<String> = xs.iter().map(|x| format!("{x:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `ValidatePolicyRule`.
fn rule_error(rule: &Value, i: usize, namespaced: bool) -> Option<FieldError> {
    let path = format!("rules[{i}]");
    let r = PolicyRule::from_json(rule);
    if r.verbs.is_empty() {
        return Some(required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !r.non_resource_urls.is_empty() {
        let invalid = |detail: &str| {
            let value = go_strings(&r.non_resource_urls);
            let field = format!("{path}.nonResourceURLs");
            (
                field,
                "FieldValueInvalid",
                format!("Invalid value: {value}: {detail}"),
            )
        };
        if namespaced {
            return Some(invalid(
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !(r.api_groups.is_empty() && r.resources.is_empty() && r.resource_names.is_empty()) {
            return Some(invalid(
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return None;
    }
    if r.api_groups.is_empty() {
        let detail = "resource rules must supply at least one api group";
        return Some(required(format!("{path}.apiGroups"), detail));
    }
    if r.resources.is_empty() {
        let detail = "resource rules must supply at least one resource";
        return Some(required(format!("{path}.resources"), detail));
    }
    None
}

/// `ValidateRoleBindingSubject`.
fn subject_error(s: &Value, i: usize, namespaced: bool) -> Option<FieldError> {
    let path = format!("subjects[{i}]");
    if str_of(s, "name").is_empty() {
        return Some(required(format!("{path}.name"), ""));
    }
    match str_of(s, "kind") {
        "ServiceAccount" => {
            let group = str_of(s, "apiGroup");
            if !group.is_empty() {
                return Some(not_supported(format!("{path}.apiGroup"), group, &[""]));
            }
            if !namespaced && str_of(s, "namespace").is_empty() {
                return Some(required(format!("{path}.namespace"), ""));
            }
            None
        }
        "User" | "Group" => {
            let group = str_of(s, "apiGroup");
            (group != GROUP).then(|| not_supported(format!("{path}.apiGroup"), group, &[GROUP]))
        }
        other => Some(not_supported(
            format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`, and on update that `roleRef` is unchanged.
fn binding_error(obj: &Value, old: Option<&Value>, namespaced: bool) -> Option<FieldError> {
    let role_ref = obj.get("roleRef").cloned().unwrap_or_default();
    let group = str_of(&role_ref, "apiGroup");
    if group != GROUP {
        return Some(not_supported("roleRef.apiGroup".into(), group, &[GROUP]));
    }
    let kind = str_of(&role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        return Some(not_supported("roleRef.kind".into(), kind, kinds));
    }
    let name = str_of(&role_ref, "name");
    if name.is_empty() {
        return Some(required("roleRef.name".into(), ""));
    }
    let subjects = obj.get("subjects").and_then(Value::as_array);
    if let Some(e) = subjects
        .into_iter()
        .flatten()
        .enumerate()
        .find_map(|(i, s)| subject_error(s, i, namespaced))
    {
        return Some(e);
    }
    let old_ref = old.and_then(|o| o.get("roleRef"));
    if old_ref.is_some_and(|r| *r != role_ref) {
        let shown = format!("rbac.RoleRef{{APIGroup:{group:?}, Kind:{kind:?}, Name:{name:?}}}");
        let detail = format!("Invalid value: {shown}: cannot change roleRef");
        return Some(("roleRef".into(), "FieldValueInvalid", detail));
    }
    None
}

/// Validates an RBAC object on create (`old: None`) and update: a Role's or ClusterRole's rules
/// (verbs; API groups and resources, or non-resource URLs in a ClusterRole only) and a binding's
/// `roleRef` (API group, a kind its scope may reference, a name; unchanged by an update) and
/// subjects. The first error is answered with a 422 Invalid.
pub(crate) fn validate(
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let error = if def.plural.ends_with("bindings") {
        binding_error(obj, old, def.namespaced)
    } else {
        obj.get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .find_map(|(i, r)| rule_error(r, i, def.namespaced))
    };
    match error {
        None => Ok(()),
        Some((field, reason, detail)) => {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Err(ApiError::invalid(
                &def.group, &def.kind, name, &field, reason, &detail,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RBAC objects by resource, for the authorizer.
    #[derive(Default)]
    struct Objects(Vec<(&'static str, Value)>);

    impl Objects {
        fn with(mut self, plural: &'static str, obj: Value) -> Self {
            self.0.push((plural, obj));
            self
        }
    }

    impl RbacObjects for Objects {
        fn rbac_objects(&self, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
            self.0
                .iter()
                .filter(|(p, o)| {
                    *p == plural
                        && o.pointer("/metadata/namespace").and_then(Value::as_str) == namespace
                })
                .map(|(_, o)| o)
                .collect()
        }
    }

    fn sa() -> User {
        User::service_account("rlscale-system", "rlscale-controller")
    }

    fn req(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    fn rule(v: Value) -> PolicyRule {
        PolicyRule::from_json(&v)
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let scale = rule(
            json!({"apiGroups": ["apps"], "resources": ["deployments/scale"],
            "verbs": ["get", "patch"]}),
        );
        assert!(scale.allows(&req("patch", "apps", "deployments/scale", "d", "web")));
        assert!(!scale.allows(&req("update", "apps", "deployments/scale", "d", "web")));
        assert!(!scale.allows(&req("patch", "apps", "deployments", "d", "web")));
        assert!(!scale.allows(&req("patch", "apps", "deployments/status", "d", "web")));
        assert!(!scale.allows(&req("patch", "", "deployments/scale", "d", "web")));

        let any_scale = rule(json!({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]}));
        assert!(any_scale.allows(&req("update", "rlscale.dev", "things/scale", "d", "x")));
        assert!(!any_scale.allows(&req("update", "apps", "deployments", "d", "x")));
        // `*` is every resource, subresources included.
        let all = rule(json!({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}));
        assert!(all.allows(&req("get", "apps", "deployments/scale", "d", "x")));

        let named = rule(
            json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "resourceNames": ["lock"], "verbs": ["get", "create", "list"]}),
        );
        let lease = |verb, name| req(verb, "coordination.k8s.io", "leases", "ns", name);
        assert!(named.allows(&lease("get", "lock")));
        assert!(!named.allows(&lease("get", "other")));
        // A create has no name; a list names one only through a metadata.name field selector.
        assert!(!named.allows(&lease("create", "")));
        assert!(!named.allows(&lease("list", "")));
        assert!(named.allows(&lease("list", "lock")));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_star_prefix() {
        let r = rule(json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
        let path = |verb: &str, p: &str| Attributes {
            verb: verb.into(),
            path: p.into(),
            ..Default::default()
        };
        assert!(r.allows(&path("get", "/apis/apps/v1")));
        assert!(r.allows(&path("get", "/version")));
        assert!(!r.allows(&path("get", "/apis")));
        assert!(!r.allows(&path("get", "/version/x")));
        assert!(!r.allows(&path("post", "/version")));
        // Every authenticated user may read discovery, and not `/`.
        let objects = Objects::default();
        assert!(authorize(&objects, &sa(), &path("get", "/apis/apps/v1")).is_ok());
        let e = authorize(&objects, &sa(), &path("get", "/")).unwrap_err();
        assert_eq!(
            e.to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "forbidden: User \"system:serviceaccount:rlscale-system:rlscale-controller\" cannot get path \"/\"",
                "reason": "Forbidden", "details": {}, "code": 403})
        );
    }

    fn role(kind: &str, ns: Option<&str>, name: &str, rules: Value) -> Value {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({"kind": kind, "metadata": meta, "rules": rules})
    }

    fn binding(ns: Option<&str>, name: &str, role_kind: &str, role: &str, subject: Value) -> Value {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({"metadata": meta, "subjects": [subject],
            "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}})
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let u = sa();
        let s = |v: Value| subject_is(&u, &v, "ns");
        assert!(s(json!({"kind": "User", "name": u.name})));
        assert!(s(
            json!({"kind": "Group", "name": "system:serviceaccounts:rlscale-system"})
        ));
        assert!(s(json!({"kind": "Group", "name": "system:authenticated"})));
        assert!(!s(
            json!({"kind": "Group", "name": "system:serviceaccounts:other"})
        ));
        assert!(s(
            json!({"kind": "ServiceAccount", "name": "rlscale-controller",
            "namespace": "rlscale-system"})
        ));
        assert!(!s(
            json!({"kind": "ServiceAccount", "name": "rlscale-controller",
            "namespace": "ns"})
        ));
        // Without a namespace: the binding's.
        assert!(subject_is(
            &u,
            &json!({"kind": "ServiceAccount", "name": "rlscale-controller"}),
            "rlscale-system"
        ));
        assert!(!subject_is(
            &u,
            &json!({"kind": "ServiceAccount", "name": "rlscale-controller"}),
            ""
        ));
    }

    #[test]
    fn a_role_binding_grants_a_cluster_role_in_its_namespace_only() {
        let subject = json!({"kind": "ServiceAccount", "name": "rlscale-controller",
            "namespace": "rlscale-system"});
        let objects = Objects::default()
            .with(
                "clusterroles",
                role(
                    "ClusterRole",
                    None,
                    "reader",
                    json!([{"apiGroups": ["apps"],
                    "resources": ["deployments"], "verbs": ["get", "list"]}]),
                ),
            )
            .with(
                "rolebindings",
                binding(Some("serving"), "reader", "ClusterRole", "reader", subject),
            );
        let get = |ns: &str| req("get", "apps", "deployments", ns, "llm");
        assert!(authorize(&objects, &sa(), &get("serving")).is_ok());
        let e = authorize(&objects, &sa(), &get("default")).unwrap_err();
        assert_eq!(
            e.to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "deployments.apps \"llm\" is forbidden: User \"system:serviceaccount:rlscale-system:rlscale-controller\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"default\"",
                "reason": "Forbidden",
                "details": {"name": "llm", "group": "apps", "kind": "deployments"}, "code": 403})
        );
        // Across all namespaces only ClusterRoleBindings count.
        let e =
            authorize(&objects, &sa(), &req("list", "apps", "deployments", "", "")).unwrap_err();
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"system:serviceaccount:rlscale-system:rlscale-controller\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
    }

    #[test]
    fn a_binding_to_a_missing_role_is_the_reason_given() {
        let subject = json!({"kind": "Group", "name": "system:serviceaccounts"});
        let objects = Objects::default()
            .with(
                "clusterrolebindings",
                binding(None, "a", "ClusterRole", "gone", subject.clone()),
            )
            .with(
                "rolebindings",
                binding(Some("ns"), "b", "Role", "missing", subject),
            );
        let e = authorize(&objects, &sa(), &req("create", "", "configmaps", "ns", "")).unwrap_err();
        assert_eq!(
            e.message,
            "configmaps is forbidden: User \"system:serviceaccount:rlscale-system:rlscale-controller\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"ns\": RBAC: [clusterrole.rbac.authorization.k8s.io \"gone\" not found, role.rbac.authorization.k8s.io \"missing\" not found]"
        );
        assert_eq!(e.details, Some(json!({"kind": "configmaps"})));
    }

    #[test]
    fn system_masters_pass_whatever_rbac_says() {
        let objects = Objects::default();
        // `/api/v1/namespaces/kube-system`: a namespace's own namespace is itself.
        let a = req("delete", "", "namespaces", "kube-system", "kube-system");
        assert!(authorize(&objects, &User::admin(), &a).is_ok());
        assert!(authorize(&objects, &sa(), &a).is_err());
    }
}
