//! A CRD's OpenAPI schema, as the apiextensions server applies it to custom resources (issue 18):
//! unknown fields pruned, defaults applied, invalid objects refused with 422 and the real causes,
//! on create, update, every patch type and `/status`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use rlscale_testenv::TestApiServer;
use serde_json::{Value, json};

use crate::{api_status, client};

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "spec": {"type": "object", "required": ["maxReplicas"], "properties": {
                            "minReplicas": {"type": "integer", "minimum": 0, "default": 1},
                            "maxReplicas": {"type": "integer", "minimum": 1},
                            "mode": {"type": "string", "enum": ["Active", "Shadow"], "default": "Shadow"},
                            "target": {"type": "object", "properties": {
                                "kind": {"type": "string", "default": "Deployment"},
                                "name": {"type": "string"}}},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                        }},
                        "status": {"type": "object", "properties": {
                            "replicas": {"type": "integer"},
                            "conditions": {"type": "array", "default": [], "items": {
                                "type": "object", "properties": {"type": {"type": "string"}}}}
                        }}
                    }
                }}
            }]
        }
    }))
    .expect("crd json")
}

async fn widgets(server: &TestApiServer) -> Api<DynamicObject> {
    let c = client(server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    crds.create(&PostParams::default(), &crd()).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(c, "default", &ar)
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    DynamicObject::new(name, &ar).data(json!({ "spec": spec }))
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied_on_create() {
    let server = TestApiServer::start().await.unwrap();
    let api = widgets(&server).await;
    let created = api
        .create(
            &PostParams::default(),
            &widget(
                "w",
                json!({"maxReplicas": 3, "maxReplica": 4, "target": {"name": "web", "nmae": "x"},
                       "extra": {"anything": {"goes": 1}}}),
            ),
        )
        .await
        .unwrap();
    let got = api.get("w").await.unwrap();
    for obj in [&created, &got] {
        let spec = &obj.data["spec"];
        assert_eq!(
            *spec,
            json!({"maxReplicas": 3, "minReplicas": 1, "mode": "Shadow",
                   "target": {"name": "web", "kind": "Deployment"},
                   "extra": {"anything": {"goes": 1}}}),
            "unknown fields gone, defaults there"
        );
    }
    // A root field the schema does not declare is pruned too; metadata is kept.
    let mut obj = widget("w2", json!({"maxReplicas": 3}));
    obj.data["rogue"] = json!(true);
    obj.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert!(created.data.get("rogue").is_none(), "{:?}", created.data);
    assert_eq!(created.metadata.labels.unwrap()["app"], "web");
}

#[tokio::test]
async fn a_wrong_type_is_422_with_the_field_and_nothing_is_stored() {
    let server = TestApiServer::start().await.unwrap();
    let api = widgets(&server).await;
    let err = api
        .create(
            &PostParams::default(),
            &widget("w", json!({"maxReplicas": "three"})),
        )
        .await
        .unwrap_err();
    let st = api_status(err);
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
    assert_eq!(
        st.message,
        "Widget.example.com \"w\" is invalid: spec.maxReplicas: Invalid value: \"string\": spec.maxReplicas in body must be of type integer: \"string\""
    );
    let details = st.details.expect("details");
    assert_eq!(
        (
            details.group.as_str(),
            details.kind.as_str(),
            details.name.as_str()
        ),
        ("example.com", "Widget", "w")
    );
    let causes = details.causes;
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0].field, "spec.maxReplicas");
    assert_eq!(causes[0].reason, "FieldValueTypeInvalid");
    assert_eq!(
        causes[0].message,
        "Invalid value: \"string\": spec.maxReplicas in body must be of type integer: \"string\""
    );
    assert_eq!(api_status(api.get("w").await.unwrap_err()).code, 404);

    // Several errors: all causes, the message lists them in brackets.
    let err = api
        .create(
            &PostParams::default(),
            &widget("w", json!({"minReplicas": -1, "mode": "Passive"})),
        )
        .await
        .unwrap_err();
    let st = api_status(err);
    let causes: Vec<(String, String)> = st
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| (c.field, c.reason))
        .collect();
    assert_eq!(
        causes,
        [
            ("spec.minReplicas", "FieldValueInvalid"),
            ("spec.mode", "FieldValueNotSupported"),
            ("spec.maxReplicas", "FieldValueRequired"),
        ]
        .map(|(f, r)| (f.to_string(), r.to_string()))
    );
    assert_eq!(
        st.message,
        "Widget.example.com \"w\" is invalid: [spec.minReplicas: Invalid value: -1: spec.minReplicas in body should be greater than or equal to 0, spec.mode: Unsupported value: \"Passive\": supported values: \"Active\", \"Shadow\", spec.maxReplicas: Required value]"
    );
}

#[tokio::test]
async fn updates_patches_and_status_writes_are_pruned_defaulted_and_validated() {
    let server = TestApiServer::start().await.unwrap();
    let api = widgets(&server).await;
    let pp = PatchParams::default();
    api.create(
        &PostParams::default(),
        &widget("w", json!({"maxReplicas": 3})),
    )
    .await
    .unwrap();

    // Merge patch: an unknown field is dropped (no change, no new generation); a wrong type is 422.
    let before = api.get("w").await.unwrap();
    let same = api
        .patch("w", &pp, &Patch::Merge(json!({"spec": {"maxReplicsa": 9}})))
        .await
        .unwrap();
    assert!(same.data["spec"].get("maxReplicsa").is_none());
    assert_eq!(
        same.metadata.resource_version,
        before.metadata.resource_version
    );
    let st = api_status(
        api.patch("w", &pp, &Patch::Merge(json!({"spec": {"maxReplicas": 0}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(st.code, 422);
    assert!(
        st.message
            .ends_with("spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1"),
        "{}",
        st.message
    );
    assert_eq!(api.get("w").await.unwrap().data["spec"]["maxReplicas"], 3);

    // JSON patch: a null for a non-nullable field with a default is defaulted, without one dropped.
    let patched = api
        .patch(
            "w",
            &pp,
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "replace", "path": "/spec/mode", "value": null},
                    {"op": "add", "path": "/spec/target", "value": {"name": null}}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["mode"], "Shadow");
    assert_eq!(
        patched.data["spec"]["target"],
        json!({"kind": "Deployment"})
    );

    // PUT: pruned and validated the same way.
    let mut put = api.get("w").await.unwrap();
    put.data["spec"]["unknown"] = json!(1);
    put.data["spec"]["minReplicas"] = json!(2);
    let replaced = api
        .replace("w", &PostParams::default(), &put)
        .await
        .unwrap();
    assert!(replaced.data["spec"].get("unknown").is_none());
    assert_eq!(replaced.data["spec"]["minReplicas"], 2);
    put = replaced.clone();
    put.data["spec"]["mode"] = json!("Sideways");
    let st = api_status(
        api.replace("w", &PostParams::default(), &put)
            .await
            .unwrap_err(),
    );
    assert_eq!(st.details.unwrap().causes[0].field, "spec.mode");

    // Server-side apply: the same.
    let applied = api
        .patch(
            "w",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "spec": {"maxReplicas": 5, "typo": true}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["maxReplicas"], 5);
    assert!(applied.data["spec"].get("typo").is_none());

    // /status: unknown status fields are dropped, defaults applied, a wrong type refused.
    let st = api
        .patch_status(
            "w",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 2, "observedGen": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"], json!({"replicas": 2, "conditions": []}));
    let err = api
        .patch_status(
            "w",
            &pp,
            &Patch::Merge(json!({"status": {"conditions": [{"type": 1}]}})),
        )
        .await
        .unwrap_err();
    let st = api_status(err);
    assert_eq!(st.code, 422);
    assert_eq!(
        st.details.unwrap().causes[0].field,
        "status.conditions[0].type"
    );
}

/// `kubectl get widgets` asks for a server-side Table (`Accept: application/json;as=Table;v=v1;
/// g=meta.k8s.io`): the answer is the CRD's `additionalPrinterColumns` after `Name`, each cell read
/// at its JSONPath (empty where the field is missing), a `date` column as an age, and a row per object
/// with its metadata. Without the header the same path answers the object itself.
#[tokio::test]
async fn kubectl_get_prints_the_crds_columns() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server).await;
    let mut crd = serde_json::to_value(crd()).unwrap();
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Max", "type": "integer", "jsonPath": ".spec.maxReplicas"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(crd).unwrap(),
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"maxReplicas": 7}
    }))
    .unwrap();
    api.create(&PostParams::default(), &w).await.unwrap();

    let get = |path: &str, table: bool| {
        let mut req = http::Request::get(path);
        if table {
            req = req.header(
                "Accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            );
        }
        let c = c.clone();
        let req = req.body(vec![]).unwrap();
        async move { serde_json::from_str::<Value>(&c.request_text(req).await.unwrap()).unwrap() }
    };
    let list = get("/apis/example.com/v1/namespaces/default/widgets", true).await;
    assert_eq!(list["kind"], "Table", "{list}");
    let names: Vec<&str> = list["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Mode", "Max", "Replicas", "Age"]);
    let row = &list["rows"][0];
    // The schema's default fills `mode`; no status yet, so `Replicas` is empty.
    assert_eq!(
        row["cells"].as_array().unwrap()[..4],
        [json!("w1"), json!("Shadow"), json!(7), Value::Null]
    );
    let age = row["cells"][4].as_str().unwrap();
    assert!(age.ends_with('s') && age.len() <= 4, "{age}");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "w1");
    let one = get("/apis/example.com/v1/namespaces/default/widgets/w1", true).await;
    assert_eq!(one["rows"].as_array().unwrap().len(), 1, "{one}");
    let plain = get("/apis/example.com/v1/namespaces/default/widgets/w1", false).await;
    assert_eq!(plain["kind"], "Widget");
}
