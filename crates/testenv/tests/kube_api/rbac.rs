//! RBAC (issue 18): a registered bearer token's user may do what the stored Roles, ClusterRoles and
//! bindings grant, and gets the API server's 403 otherwise; an unknown token gets a 401. Requests
//! without a token are the harness's own (cluster-admin).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{GroupVersionKind, Status};
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config};
use rlscale_testenv::{TestApiServer, User};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::deployments::deployment;
use crate::{api_status, client};

/// The controller's ServiceAccount, as deploy/ names it.
const SA_NS: &str = "rlscale-system";
const SA_NAME: &str = "rlscale-controller";
const SA_USER: &str = "system:serviceaccount:rlscale-system:rlscale-controller";

fn sa() -> User {
    User::service_account(SA_NS, SA_NAME)
}

fn sa_subject() -> Value {
    json!({"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NS})
}

/// A client that sends `token`, registered for `user`.
async fn client_as(server: &TestApiServer, token: &str, user: User) -> Client {
    server.add_token(token, user);
    let yaml = server.kubeconfig_yaml_with_token("default", token);
    let kc = Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

async fn create_namespace(admin: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(admin.clone());
    api.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": name}})),
    )
    .await
    .unwrap();
}

/// A Role `name` with `rules` in `ns`, bound to the controller's ServiceAccount.
async fn grant_in(admin: &Client, ns: &str, name: &str, rules: Value) {
    let pp = PostParams::default();
    let role = json!({"metadata": {"name": name, "namespace": ns}, "rules": rules});
    let roles: Api<Role> = Api::namespaced(admin.clone(), ns);
    roles.create(&pp, &typed(role)).await.unwrap();
    let binding = json!({"metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [sa_subject()]});
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
    bindings.create(&pp, &typed(binding)).await.unwrap();
}

async fn cluster_role(admin: &Client, name: &str, rules: Value) {
    let api: Api<ClusterRole> = Api::all(admin.clone());
    let role = json!({"metadata": {"name": name}, "rules": rules});
    api.create(&PostParams::default(), &typed(role))
        .await
        .unwrap();
}

/// The status code of a raw request (the body is not read: an allowed watch streams).
async fn code(c: &Client, method: &str, uri: &str, body: Option<Value>) -> u16 {
    let mut req = http::Request::builder().method(method).uri(uri);
    if method == "PATCH" {
        req = req.header("content-type", "application/merge-patch+json");
    } else if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let req = req.body(kube::client::Body::from(body)).unwrap();
    c.send(req).await.unwrap().status().as_u16()
}

/// Status fields as the API server sends them (kube's `Status` keeps `details` apart).
fn shape(st: &Status) -> Value {
    let d = st.details.as_ref();
    json!({"code": st.code, "reason": st.reason, "message": st.message,
        "details": d.map(|d| json!({"name": d.name, "group": d.group, "kind": d.kind}))})
}

#[tokio::test]
async fn rbac_resources_are_served_discovered_and_validated() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    for (kind, scope) in [
        ("Role", Scope::Namespaced),
        ("RoleBinding", Scope::Namespaced),
        ("ClusterRole", Scope::Cluster),
        ("ClusterRoleBinding", Scope::Cluster),
    ] {
        let gvk = GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind);
        for d in [
            Discovery::new(admin.clone()).run().await.unwrap(),
            Discovery::new(admin.clone())
                .run_aggregated()
                .await
                .unwrap(),
        ] {
            let (ar, caps) = d.resolve_gvk(&gvk).unwrap_or_else(|| panic!("{kind}"));
            assert_eq!(caps.scope, scope, "{kind}");
            assert_eq!(ar.plural, format!("{}s", kind.to_lowercase()));
        }
    }

    // Defaults: a binding's roleRef.apiGroup, a User subject's apiGroup.
    let bindings: Api<RoleBinding> = Api::default_namespaced(admin.clone());
    let b = bindings
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "b"},
                "roleRef": {"apiGroup": "", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "jane"}]})),
        )
        .await
        .unwrap();
    assert_eq!(b.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(
        b.subjects.unwrap()[0].api_group.as_deref(),
        Some("rbac.authorization.k8s.io")
    );
    // The roleRef cannot change.
    let st = api_status(
        bindings
            .patch(
                "b",
                &PatchParams::default(),
                &Patch::Merge(json!({"roleRef": {"name": "other"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"));
    assert!(
        st.message.ends_with("cannot change roleRef"),
        "{}",
        st.message
    );

    // A ClusterRoleBinding references ClusterRoles only; a rule needs verbs; a Role's rules cannot
    // name non-resource URLs.
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let st = api_status(
        crbs.create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "c"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [sa_subject()]})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        st.message,
        "ClusterRoleBinding.rbac.authorization.k8s.io \"c\" is invalid: roleRef.kind: Unsupported \
         value: \"Role\": supported values: \"ClusterRole\""
    );
    let roles: Api<Role> = Api::default_namespaced(admin.clone());
    for (rule, field) in [
        (
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": []}),
            "rules[0].verbs",
        ),
        (
            json!({"resources": ["pods"], "verbs": ["get"]}),
            "rules[0].apiGroups",
        ),
        (
            json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}),
            "rules[0].nonResourceURLs",
        ),
    ] {
        let role = json!({"metadata": {"name": "r"}, "rules": [rule]});
        let st = api_status(
            roles
                .create(&PostParams::default(), &typed(role))
                .await
                .unwrap_err(),
        );
        assert_eq!(st.code, 422, "{field}");
        assert!(st.message.contains(field), "{field}: {}", st.message);
    }
    assert!(
        server
            .cluster()
            .objects("rbac.authorization.k8s.io", "roles")
            .is_empty()
    );
}

/// GET on a collection is list, with `watch=true` watch, GET on a name get, POST create, PUT update,
/// PATCH patch, DELETE on a name delete, DELETE on a collection deletecollection: a Role granting
/// one verb allows exactly the one request that maps to it.
#[tokio::test]
async fn each_request_is_authorized_as_its_verb() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    let c = client_as(&server, "sa-token", sa()).await;
    let cm = |name: &str| json!({"metadata": {"name": name}, "data": {"k": "v"}});
    let verbs = [
        "list",
        "watch",
        "get",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    for granted in verbs {
        let ns = format!("only-{granted}");
        create_namespace(&admin, &ns).await;
        grant_in(
            &admin,
            &ns,
            "configmaps",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": [granted]}]),
        )
        .await;
        let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
        cms.create(&PostParams::default(), &typed(cm("cm")))
            .await
            .unwrap();
        let coll = format!("/api/v1/namespaces/{ns}/configmaps");
        let one = format!("{coll}/cm");
        let requests = [
            ("list", "GET", coll.clone(), None),
            (
                "watch",
                "GET",
                format!("{coll}?watch=true&timeoutSeconds=1"),
                None,
            ),
            ("get", "GET", one.clone(), None),
            ("create", "POST", coll.clone(), Some(cm("new"))),
            ("update", "PUT", one.clone(), Some(cm("cm"))),
            (
                "patch",
                "PATCH",
                one.clone(),
                Some(json!({"data": {"k": "w"}})),
            ),
            ("delete", "DELETE", one.clone(), None),
            ("deletecollection", "DELETE", coll.clone(), None),
        ];
        for (verb, method, uri, body) in requests {
            let got = code(&c, method, &uri, body).await;
            if verb == granted {
                assert!(
                    (200..300).contains(&got),
                    "{granted}: {method} {uri} → {got}"
                );
            } else {
                assert_eq!(got, 403, "granted {granted} only: {method} {uri} ({verb})");
            }
        }
    }
    // The request log names each verb and the user; a refused request is no write.
    let requests = server.requests();
    let by_sa: Vec<_> = requests
        .iter()
        .filter(|r| r.user.as_deref() == Some(SA_USER))
        .collect();
    assert_eq!(by_sa.len(), verbs.len() * verbs.len());
    for v in verbs {
        assert_eq!(
            by_sa.iter().filter(|r| r.verb == v).count(),
            verbs.len(),
            "{v}"
        );
        assert_eq!(
            by_sa
                .iter()
                .filter(|r| r.verb == v && r.status != 403)
                .count(),
            1,
            "{v}"
        );
    }
    let refused_writes = server.writes().iter().filter(|w| w.status == 403).count();
    assert_eq!(refused_writes, 0);
}

/// `resourceNames` allows requests for those objects only: not a create (no name yet), not a list
/// or watch unless its field selector names the object.
#[tokio::test]
async fn resource_names_allow_named_requests_only() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    let c = client_as(&server, "sa-token", sa()).await;
    grant_in(
        &admin,
        "default",
        "lock",
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "resourceNames": ["lock"], "verbs": ["get", "list", "watch", "create", "update"]}]),
    )
    .await;
    let lease = |name: &str| typed::<Lease>(json!({"metadata": {"name": name}}));
    let as_admin: Api<Lease> = Api::default_namespaced(admin.clone());
    for name in ["lock", "other"] {
        as_admin
            .create(&PostParams::default(), &lease(name))
            .await
            .unwrap();
    }
    let leases: Api<Lease> = Api::default_namespaced(c.clone());
    leases.get("lock").await.unwrap();
    let mut held = leases.get("lock").await.unwrap();
    held.spec = Some(typed(json!({"holderIdentity": "me"})));
    leases
        .replace("lock", &PostParams::default(), &held)
        .await
        .unwrap();
    let st = api_status(leases.get("other").await.unwrap_err());
    assert_eq!(
        shape(&st),
        json!({"code": 403, "reason": "Forbidden",
            "message": format!("leases.coordination.k8s.io \"other\" is forbidden: User \"{SA_USER}\" \
                cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \
                \"default\""),
            "details": {"name": "other", "group": "coordination.k8s.io", "kind": "leases"}})
    );
    // A create has no name to match, even one the rule lists.
    let st = api_status(
        leases
            .create(&PostParams::default(), &lease("lock"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        st.message,
        format!(
            "leases.coordination.k8s.io is forbidden: User \"{SA_USER}\" cannot create resource \
            \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""
        )
    );
    // A list: only with a metadata.name field selector naming the object.
    let st = api_status(leases.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(st.code, 403);
    let named = ListParams::default().fields("metadata.name=lock");
    assert_eq!(leases.list(&named).await.unwrap().items.len(), 1);
    let other = ListParams::default().fields("metadata.name=other");
    assert_eq!(api_status(leases.list(&other).await.unwrap_err()).code, 403);
    let watch = |sel: &str| {
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases?watch=true&timeoutSeconds=1&fieldSelector={sel}"
        )
    };
    assert_eq!(
        code(&c, "GET", &watch("metadata.name%3Dlock"), None).await,
        200
    );
    assert_eq!(
        code(&c, "GET", &watch("metadata.name%3Dother"), None).await,
        403
    );
}

/// A subresource is its own resource to RBAC: `deployments/scale` does not grant `deployments` or
/// `deployments/status`; `*/scale` grants every scale. A refused write changes nothing and is not
/// recorded as a write.
#[tokio::test]
async fn subresources_are_granted_apart_from_their_resource() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    let c = client_as(&server, "sa-token", sa()).await;
    create_namespace(&admin, "serving").await;
    for ns in ["default", "serving"] {
        let api: Api<Deployment> = Api::namespaced(admin.clone(), ns);
        api.create(&PostParams::default(), &deployment("llm", "llm", 2))
            .await
            .unwrap();
    }
    grant_in(
        &admin,
        "serving",
        "scaler",
        json!([{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]}]),
    )
    .await;
    let pp = PatchParams::default();
    let replicas = |n: i32| Patch::Merge(json!({"spec": {"replicas": n}}));
    let serving: Api<Deployment> = Api::namespaced(c.clone(), "serving");
    let scaled = serving.patch_scale("llm", &pp, &replicas(5)).await.unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    assert_eq!(
        api_status(serving.patch("llm", &pp, &replicas(6)).await.unwrap_err()).code,
        403
    );
    let status = Patch::Merge(json!({"status": {"readyReplicas": 1}}));
    let st = api_status(serving.patch_status("llm", &pp, &status).await.unwrap_err());
    assert!(
        st.message
            .contains("cannot patch resource \"deployments/status\""),
        "{}",
        st.message
    );

    // The issue's example: the Role is in `serving`, the Deployment in `default`.
    let before = server
        .cluster()
        .object("apps", "deployments", Some("default"), "llm")
        .unwrap();
    let writes_before = server.writes().len();
    let default: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let st = api_status(
        default
            .patch_scale("llm", &pp, &replicas(9))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        shape(&st),
        json!({"code": 403, "reason": "Forbidden",
            "message": format!("deployments.apps \"llm\" is forbidden: User \"{SA_USER}\" cannot patch \
                resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""),
            "details": {"name": "llm", "group": "apps", "kind": "deployments"}})
    );
    let after = server
        .cluster()
        .object("apps", "deployments", Some("default"), "llm")
        .unwrap();
    assert_eq!(before, after, "a refused patch changes nothing");
    assert_eq!(server.writes().len(), writes_before, "nor is it a write");
    let last = server.requests().pop().unwrap();
    assert_eq!(
        (last.verb.as_str(), last.subresource.as_deref(), last.status),
        ("patch", Some("scale"), 403)
    );

    // `*/scale` in a ClusterRole bound cluster-wide: every scale, and nothing else.
    cluster_role(
        &admin,
        "any-scale",
        json!([{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["patch"]}]),
    )
    .await;
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    crbs.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "any-scale"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "any-scale"},
            "subjects": [sa_subject()]})),
    )
    .await
    .unwrap();
    default.patch_scale("llm", &pp, &replicas(9)).await.unwrap();
    assert_eq!(
        api_status(default.patch("llm", &pp, &replicas(9)).await.unwrap_err()).code,
        403
    );
}

/// A RoleBinding of a ClusterRole grants its rules in the binding's namespace only; across all
/// namespaces and for cluster-scoped resources only ClusterRoleBindings count.
#[tokio::test]
async fn a_role_binding_grants_a_cluster_role_in_its_namespace_only() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    let c = client_as(&server, "sa-token", sa()).await;
    for ns in ["a", "b"] {
        create_namespace(&admin, ns).await;
        let api: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
        api.create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "cm"}})),
        )
        .await
        .unwrap();
    }
    cluster_role(
        &admin,
        "cm-reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
    )
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "a");
    bindings
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "cm-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-reader"},
                "subjects": [sa_subject()]})),
        )
        .await
        .unwrap();
    let in_ns = |ns: &str| Api::<ConfigMap>::namespaced(c.clone(), ns);
    in_ns("a").get("cm").await.unwrap();
    assert_eq!(
        in_ns("a")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let st = api_status(in_ns("b").get("cm").await.unwrap_err());
    assert_eq!(
        st.message,
        format!(
            "configmaps \"cm\" is forbidden: User \"{SA_USER}\" cannot get resource \
            \"configmaps\" in API group \"\" in the namespace \"b\""
        )
    );
    let all: Api<ConfigMap> = Api::all(c.clone());
    let st = api_status(all.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        shape(&st),
        json!({"code": 403, "reason": "Forbidden",
            "message": format!("configmaps is forbidden: User \"{SA_USER}\" cannot list resource \
                \"configmaps\" in API group \"\" at the cluster scope"),
            "details": {"name": "", "group": "", "kind": "configmaps"}})
    );
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let st = api_status(
        namespaces
            .create(
                &PostParams::default(),
                &typed(json!({"metadata": {"name": "c"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        st.message,
        format!(
            "namespaces is forbidden: User \"{SA_USER}\" cannot create resource \
            \"namespaces\" in API group \"\" at the cluster scope"
        )
    );
    // A namespace is in itself: get namespace `a` is a request in namespace `a`.
    let st = api_status(namespaces.get("a").await.unwrap_err());
    assert!(
        st.message.ends_with("in the namespace \"a\""),
        "{}",
        st.message
    );
}

/// Discovery is open to every authenticated user (the bootstrap `system:discovery` role); other
/// non-resource URLs are not.
#[tokio::test]
async fn discovery_is_open_to_every_authenticated_user() {
    let server = TestApiServer::start().await.unwrap();
    let c = client_as(&server, "nobody", User::new("nobody", &[])).await;
    let d = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    assert!(
        d.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .is_some()
    );
    assert_eq!(c.apiserver_version().await.unwrap().major, "1");
    assert_eq!(code(&c, "GET", "/apis/apps/v1", None).await, 200);
    let req = http::Request::get("/").body(vec![]).unwrap();
    let st = api_status(c.request_text(req).await.unwrap_err());
    assert_eq!(
        shape(&st),
        json!({"code": 403, "reason": "Forbidden",
            "message": "forbidden: User \"nobody\" cannot get path \"/\"",
            "details": {"name": "", "group": "", "kind": ""}})
    );
    // Nor any resource.
    let cms: Api<DynamicObject> = Api::default_namespaced_with(
        c.clone(),
        &kube::discovery::ApiResource::erase::<ConfigMap>(&()),
    );
    assert_eq!(
        api_status(cms.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
}

/// An unknown bearer token is 401 Unauthorized, and nothing happens; the admin (no token, or a
/// `system:masters` user) may do anything.
#[tokio::test]
async fn an_unknown_token_is_unauthorized() {
    let server = TestApiServer::start().await.unwrap();
    let admin = client(&server).await;
    server.add_token("known", sa());
    let yaml = server.kubeconfig_yaml_with_token("default", "unknown");
    let kc = Kubeconfig::from_yaml(&yaml).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let stranger = Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(stranger.clone());
    let st = api_status(
        cms.create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "x"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        shape(&st),
        json!({"code": 401, "reason": "Unauthorized", "message": "Unauthorized", "details": null})
    );
    assert_eq!(code(&stranger, "GET", "/version", None).await, 401);
    assert!(server.writes().is_empty());
    assert!(server.cluster().objects("", "configmaps").is_empty());
    let last = server.requests().pop().unwrap();
    assert_eq!((last.status, last.user), (401, None));

    // The harness, and a system:masters user, pass whatever RBAC says.
    let root = client_as(&server, "root", User::admin()).await;
    for c in [admin, root] {
        let cms: Api<ConfigMap> = Api::default_namespaced(c);
        let name = format!(
            "cm-{}",
            cms.list(&ListParams::default()).await.unwrap().items.len()
        );
        cms.create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": name}})),
        )
        .await
        .unwrap();
    }
    let users: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|r| r.verb == "create")
        .map(|r| r.user.clone())
        .collect();
    assert_eq!(
        users,
        [None, None, Some("kubernetes-admin".to_string())],
        "the stranger's refused create, the harness's, the admin's"
    );
}
