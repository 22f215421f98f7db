//! Discovery, CRDs and dynamic custom resources.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope, verbs};
use rlscale_testenv::TestApiServer;
use serde_json::json;

use crate::{api_status, client};

fn assert_builtins(d: &Discovery) {
    let (ar, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation(verbs::WATCH));
    let subs: Vec<&str> = caps
        .subresources
        .iter()
        .map(|(a, _)| a.plural.as_str())
        .collect();
    assert!(
        subs.contains(&"scale") && subs.contains(&"status"),
        "{subs:?}"
    );
    let (ar, _) = d
        .resolve_gvk(&GroupVersionKind::gvk(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
        ))
        .expect("hpa");
    assert_eq!(ar.plural, "horizontalpodautoscalers");
    d.resolve_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"))
        .expect("leases");
    d.resolve_gvk(&GroupVersionKind::gvk("events.k8s.io", "v1", "Event"))
        .expect("events.k8s.io");
    let (_, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("namespaces");
    assert_eq!(caps.scope, Scope::Cluster);
    assert!(!caps.supports_operation(verbs::DELETE_COLLECTION));
    d.resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .expect("configmaps");
    d.resolve_gvk(&GroupVersionKind::gvk(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    ))
    .expect("crds");
}

fn rlautoscaler_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rlautoscalers.rlscale.dev"},
        "spec": {
            "group": "rlscale.dev",
            "names": {"kind": "RLAutoscaler", "plural": "rlautoscalers", "singular": "rlautoscaler",
                      "shortNames": ["rla"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas"}}
            }]
        }
    }))
    .expect("crd json")
}

#[tokio::test]
async fn discovery_finds_builtin_resources() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    assert_builtins(&Discovery::new(c.clone()).run().await.unwrap());
    assert_builtins(&Discovery::new(c.clone()).run_aggregated().await.unwrap());
    let info = c.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
    assert!(info.git_version.starts_with("v1.33."));
    let core = c.list_core_api_versions().await.unwrap();
    assert_eq!(core.versions, ["v1"]);
    let groups = c.list_api_groups().await.unwrap();
    let auto = groups
        .groups
        .iter()
        .find(|g| g.name == "autoscaling")
        .unwrap();
    assert_eq!(
        auto.preferred_version.as_ref().unwrap().group_version,
        "autoscaling/v2"
    );
}

#[tokio::test]
async fn crd_registers_a_served_custom_resource() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let created = crds
        .create(&PostParams::default(), &rlautoscaler_crd())
        .await
        .unwrap();
    let status = created.status.expect("crd status");
    let conds = status.conditions.unwrap();
    for t in ["NamesAccepted", "Established"] {
        assert!(
            conds.iter().any(|c| c.type_ == t && c.status == "True"),
            "{t}"
        );
    }
    assert_eq!(
        status.accepted_names.unwrap().list_kind.as_deref(),
        Some("RLAutoscalerList")
    );

    let d = Discovery::new(c.clone()).run().await.unwrap();
    let (ar, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk(
            "rlscale.dev",
            "v1alpha1",
            "RLAutoscaler",
        ))
        .expect("custom resource discovered");
    assert_eq!(ar.plural, "rlautoscalers");
    assert!(caps.subresources.iter().any(|(a, _)| a.plural == "status"));
    assert!(caps.subresources.iter().any(|(a, _)| a.plural == "scale"));
    // The aggregated document lists it too.
    let d2 = Discovery::new(c.clone()).run_aggregated().await.unwrap();
    assert!(
        d2.resolve_gvk(&GroupVersionKind::gvk(
            "rlscale.dev",
            "v1alpha1",
            "RLAutoscaler"
        ))
        .is_some()
    );

    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let obj = DynamicObject::new("rla-1", &ar).data(json!({
        "spec": {"target": "web", "replicas": 2},
        "status": {"phase": "ignored on create"}
    }));
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "create drops status: {:?}",
        created.data
    );

    let got = api.get("rla-1").await.unwrap();
    assert_eq!(got.data["spec"]["target"], "web");
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].types.as_ref().unwrap().kind, "RLAutoscaler");

    let pp = PatchParams::default();
    let st = api
        .patch_status(
            "rla-1",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Ready", "replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes keep generation"
    );

    // Main-resource writes cannot change status; spec changes bump generation.
    let patched = api
        .patch(
            "rla-1",
            &pp,
            &Patch::Merge(json!({"spec": {"target": "web2"}, "status": {"phase": "Hacked"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["target"], "web2");
    assert_eq!(patched.data["status"]["phase"], "Ready");
    assert_eq!(patched.metadata.generation, Some(2));
    let mut put = patched.clone();
    put.data["status"] = json!({"phase": "HackedAgain"});
    let replaced = api
        .replace("rla-1", &PostParams::default(), &put)
        .await
        .unwrap();
    assert_eq!(replaced.data["status"]["phase"], "Ready");
    assert_eq!(
        replaced.metadata.resource_version, patched.metadata.resource_version,
        "no-op PUT"
    );

    // Scale subresource from the CRD's paths.
    let scale = api.get_scale("rla-1").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().replicas, 2);

    // Strategic merge patch is not supported for custom resources (as on a real server).
    let err = api
        .patch(
            "rla-1",
            &pp,
            &Patch::Strategic(json!({"spec": {"target": "x"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(err).code, 415);

    // Deleting the CRD stops serving the resource.
    crds.delete("rlautoscalers.rlscale.dev", &Default::default())
        .await
        .unwrap();
    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(
        d.resolve_gvk(&GroupVersionKind::gvk(
            "rlscale.dev",
            "v1alpha1",
            "RLAutoscaler"
        ))
        .is_none()
    );
    let err = api.get("rla-1").await.unwrap_err();
    assert_eq!(api_status(err).code, 404);
}
