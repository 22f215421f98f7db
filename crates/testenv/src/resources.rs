//! The resource registry: built-in resources, CRD-defined resources, and discovery documents.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::schema::Schema;
use crate::util::version_priority;

/// Where a scale subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// For CRDs: a path to a selector string. `None` for deployments, whose selector is
    /// rendered from `.spec.selector`.
    pub label_selector: Option<String>,
    /// Deployments render `.spec.selector` (a `LabelSelector`) instead.
    pub from_spec_selector: bool,
}

/// How `metadata.generation` is maintained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Generation {
    /// The resource does not set `metadata.generation`.
    None,
    /// Set to 1 on create, bumped when anything but metadata/status changes.
    Spec,
    /// Like `Spec`, and annotation changes bump it too (deployments).
    SpecAndAnnotations,
}

/// One served resource.
#[derive(Debug, Clone)]
pub(crate) struct ResourceDef {
    pub group: String,
    /// Served versions, highest priority first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Built-in (typed) resources omit kind/apiVersion on list items.
    pub builtin: bool,
    pub generation: Generation,
    /// `ReturnDeletedObject` in the real registry: delete answers with the object, not a Status.
    pub return_deleted: bool,
    /// Extra field-selector labels the resource supports.
    pub field_labels: Vec<&'static str>,
    /// A CRD's `schema.openAPIV3Schema` per served version (empty for built-ins, and for a
    /// version that declares no schema: its objects are stored as sent).
    pub schemas: Arc<BTreeMap<String, Schema>>,
    /// A CRD's printer columns per served version (`kubectl get`'s server-side Table; empty for
    /// built-ins, which are served as JSON only).
    pub printer_columns: Arc<BTreeMap<String, Vec<crate::table::PrinterColumn>>>,
}

const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceDef {
            group: group.into(),
            versions: vec![version.into()],
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: vec![],
            categories: vec![],
            verbs: ALL_VERBS.to_vec(),
            status: false,
            scale: None,
            builtin: true,
            generation: Generation::None,
            return_deleted: false,
            field_labels: vec![],
            schemas: Arc::default(),
            printer_columns: Arc::default(),
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn cats(mut self, c: &[&str]) -> Self {
        self.categories = c.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `apps/v1` or `v1`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The structural schema of a served version, if the resource has one.
    pub fn schema(&self, version: &str) -> Option<&Schema> {
        self.schemas.get(version)
    }

    /// Whether the resource supports a verb on the main resource.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The status the resource's create strategy resets `.status` to (`None`: remove it).
    pub fn initial_status(&self) -> Option<Value> {
        if !self.builtin {
            return None;
        }
        match (self.group.as_str(), self.plural.as_str()) {
            ("apps", "deployments") => Some(json!({})),
            ("autoscaling", "horizontalpodautoscalers") => Some(json!({"desiredReplicas": 0})),
            ("", "pods") => Some(json!({"phase": "Pending"})),
            ("", "namespaces") => Some(json!({"phase": "Active"})),
            _ => None,
        }
    }

    /// One entry (plus subresource entries) of an `APIResourceList`.
    fn discovery_entries(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scale.is_some() {
            out.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }

    /// The aggregated-discovery (`apidiscovery.k8s.io/v2`) entry for this resource.
    fn aggregated_entry(&self) -> Value {
        let mut r = json!({
            "resource": self.plural,
            "responseKind": {"group": "", "version": "", "kind": self.kind},
            "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": self.singular,
            "verbs": self.verbs,
        });
        if !self.short_names.is_empty() {
            r["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            r["categories"] = json!(self.categories);
        }
        let mut subs = vec![];
        if self.status {
            subs.push(json!({
                "subresource": "status",
                "responseKind": {"group": "", "version": "", "kind": self.kind},
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scale.is_some() {
            subs.push(json!({
                "subresource": "scale",
                "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "verbs": ["get", "patch", "update"],
            }));
        }
        if !subs.is_empty() {
            r["subresources"] = json!(subs);
        }
        r
    }
}

/// The built-in resources served at start.
pub(crate) fn builtins() -> Vec<ResourceDef> {
    let mut namespaces =
        ResourceDef::builtin("", "v1", "namespaces", "Namespace", false).short(&["ns"]);
    namespaces.verbs = vec![
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    namespaces.status = true;
    namespaces.return_deleted = true;
    namespaces.field_labels = vec!["status.phase"];

    let mut events = ResourceDef::builtin("", "v1", "events", "Event", true).short(&["ev"]);
    events.field_labels = vec![
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];

    let configmaps = ResourceDef::builtin("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]);

    let mut pods = ResourceDef::builtin("", "v1", "pods", "Pod", true)
        .short(&["po"])
        .cats(&["all"]);
    pods.status = true;
    pods.return_deleted = true;
    pods.field_labels = vec![
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];

    let mut deployments = ResourceDef::builtin("apps", "v1", "deployments", "Deployment", true)
        .short(&["deploy"])
        .cats(&["all"]);
    deployments.status = true;
    deployments.generation = Generation::SpecAndAnnotations;
    deployments.scale = Some(ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: None,
        from_spec_selector: true,
    });

    let mut hpa = ResourceDef::builtin(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
    )
    .short(&["hpa"])
    .cats(&["all"]);
    hpa.status = true;
    hpa.generation = Generation::Spec;

    let leases = ResourceDef::builtin("coordination.k8s.io", "v1", "leases", "Lease", true);

    let mut new_events =
        ResourceDef::builtin("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]);
    new_events.field_labels = vec![
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "reportingController",
        "type",
    ];

    let mut crds = ResourceDef::builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    )
    .short(&["crd", "crds"])
    .cats(&["api-extensions"]);
    crds.status = true;
    crds.generation = Generation::Spec;
    crds.return_deleted = true;

    // RBAC: stored like any other resource, and read by the authorizer (`rbac.rs`) on every
    // request of a user a bearer token authenticated.
    let rbac = |plural: &str, kind: &str, namespaced: bool| {
        ResourceDef::builtin(crate::rbac::GROUP, "v1", plural, kind, namespaced)
    };

    vec![
        namespaces,
        events,
        configmaps,
        pods,
        deployments,
        hpa,
        leases,
        new_events,
        crds,
        rbac("clusterrolebindings", "ClusterRoleBinding", false),
        rbac("clusterroles", "ClusterRole", false),
        rbac("rolebindings", "RoleBinding", true),
        rbac("roles", "Role", true),
    ]
}

/// Reads a validated, defaulted CRD object into a resource definition (`None` if it
/// serves no version).
pub(crate) fn from_crd(crd: &Value) -> Option<ResourceDef> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let served: Vec<&Value> = spec
        .get("versions")?
        .as_array()?
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut versions: Vec<String> = served.iter().map(|v| s(v, "name")).collect();
    versions.sort_by(|a, b| version_priority(a, b));
    // Subresources come from the storage version (or the first served one).
    let sub_src = served
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .unwrap_or(&served[0]);
    let subs = sub_src.get("subresources");
    let status = subs.and_then(|x| x.get("status")).is_some();
    let scale = subs.and_then(|x| x.get("scale")).map(|sc| ScalePaths {
        spec_replicas: s(sc, "specReplicasPath"),
        status_replicas: s(sc, "statusReplicasPath"),
        label_selector: sc
            .get("labelSelectorPath")
            .and_then(Value::as_str)
            .map(str::to_string),
        from_spec_selector: false,
    });
    let selectable: Vec<&'static str> = vec![];
    let schemas: BTreeMap<String, Schema> = served
        .iter()
        .filter_map(|v| {
            let schema = v.pointer("/schema/openAPIV3Schema")?;
            schema
                .is_object()
                .then(|| (s(v, "name"), Schema::parse(schema)))
        })
        .collect();
    Some(ResourceDef {
        group: s(spec, "group"),
        versions,
        plural: s(names, "plural"),
        singular: s(names, "singular"),
        kind: s(names, "kind"),
        list_kind: s(names, "listKind"),
        namespaced: s(spec, "scope") == "Namespaced",
        short_names: strs(names.get("shortNames")),
        categories: strs(names.get("categories")),
        verbs: vec![
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ],
        status,
        scale,
        builtin: false,
        generation: Generation::Spec,
        return_deleted: false,
        field_labels: selectable,
        schemas: Arc::new(schemas),
        printer_columns: Arc::new(
            served
                .iter()
                .map(|v| (s(v, "name"), crate::table::columns_of(v)))
                .collect(),
        ),
    })
}

/// Served groups in discovery order: (group, versions highest-priority first).
pub(crate) fn groups(defs: &[ResourceDef]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        let entry = match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some(e) => e,
            None => {
                out.push((d.group.clone(), vec![]));
                out.last_mut().expect("pushed")
            }
        };
        for v in &d.versions {
            if !entry.1.contains(v) {
                entry.1.push(v.clone());
            }
        }
        entry.1.sort_by(|a, b| version_priority(a, b));
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` as an `APIGroupList`.
pub(crate) fn api_group_list(defs: &[ResourceDef]) -> Value {
    let groups: Vec<Value> = groups(defs)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}` as an `APIGroup`, if served.
pub(crate) fn api_group(defs: &[ResourceDef], group: &str) -> Option<Value> {
    let (g, vs) = groups(defs).into_iter().find(|(g, _)| g == group)?;
    let mut v = group_json(&g, &vs);
    let obj = v.as_object_mut()?;
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(obj);
    Some(Value::Object(out))
}

/// `/api/v1` or `/apis/{group}/{version}` as an `APIResourceList`, if served.
pub(crate) fn api_resource_list(defs: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&ResourceDef> = defs
        .iter()
        .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
        .collect();
    if matching.is_empty() {
        return None;
    }
    let resources: Vec<Value> = matching
        .iter()
        .flat_map(|d| d.discovery_entries())
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// Aggregated discovery (`APIGroupDiscoveryList`) for `/api` (core) or `/apis` (all groups).
pub(crate) fn aggregated(defs: &[ResourceDef], core: bool) -> Value {
    let group_doc = |name: Option<&str>, versions: &[String], group: &str| {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let res: Vec<Value> = defs
                    .iter()
                    .filter(|d| d.group == group && d.versions.contains(v))
                    .map(ResourceDef::aggregated_entry)
                    .collect();
                json!({"version": v, "resources": res, "freshness": "Current"})
            })
            .collect();
        let mut meta = json!({"creationTimestamp": null});
        if let Some(n) = name {
            meta["name"] = json!(n);
        }
        json!({"metadata": meta, "versions": vs})
    };
    let items: Vec<Value> = if core {
        vec![group_doc(None, &["v1".to_string()], "")]
    } else {
        groups(defs)
            .iter()
            .map(|(g, vs)| group_doc(Some(g), vs, g))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
