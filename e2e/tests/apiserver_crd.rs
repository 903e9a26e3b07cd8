//! CustomResourceDefinitions in the in-memory API server: a CRD loaded from YAML or created
//! over HTTP registers its resource generically (scope, versions, status subresource,
//! discovery) and deleting it removes the resource.

use std::time::Duration;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::json;

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.lab.example
spec:
  group: lab.example
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wdg]
  versions:
    - name: v1alpha1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.lab.example
spec:
  group: lab.example
  scope: Cluster
  names:
    plural: gadgets
    kind: Gadget
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("lab.example", "v1alpha1", "Widget"),
        "widgets",
    )
}

fn widget(name: &str, size: u32) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "lab.example/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }))
    .expect("widget")
}

#[tokio::test]
async fn crd_from_yaml_registers_resources() {
    let server = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("start");
    let loaded = server.load_yaml(WIDGET_CRD).expect("load CRDs");
    assert_eq!(loaded.len(), 2);
    let client: Client = server.client().expect("client");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "ferrolb-system", &widget_resource());
    let created = widgets
        .create(&PostParams::default(), &widget("w1", 3))
        .await
        .expect("create widget");
    assert_eq!(created.metadata.generation, Some(1));
    // Status subresource declared by the CRD: isolated both ways.
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
        )
        .await
        .expect("status patch");
    assert_eq!(
        (
            status.data["status"]["ready"].clone(),
            status.data["spec"]["size"].clone()
        ),
        (json!(true), json!(3))
    );
    let spec = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"ready": false}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(
        (
            spec.data["status"]["ready"].clone(),
            spec.metadata.generation
        ),
        (json!(true), Some(2))
    );
    // Cluster-scoped CRD without status: no namespace, /status is not served.
    let gadget_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("lab.example", "v1alpha1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::all_with(client.clone(), &gadget_ar);
    let gadget: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "lab.example/v1alpha1", "kind": "Gadget", "metadata": {"name": "g"}}),
    )
    .expect("gadget");
    let gadget = gadgets
        .create(&PostParams::default(), &gadget)
        .await
        .expect("create gadget");
    assert!(gadget.metadata.namespace.is_none());
    match gadgets.get_status("g").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404 for /status of a CRD without it, got {other:?}"),
    }
    // Discovery lists the group and its resources.
    let discovery = kube::Discovery::new(client).run().await.expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("lab.example", "v1alpha1", "Widget"))
        .expect("widget gvk");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("lab.example", "v1alpha1", "Gadget"))
        .expect("gadget gvk");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    server.shutdown().await;
}

#[tokio::test]
async fn crd_created_over_http_is_established_and_removable() {
    let server = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("start");
    let client: Client = server.client().expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let first_doc = WIDGET_CRD.split("\n---\n").next().expect("first document");
    let crd: CustomResourceDefinition = serde_yaml::from_str(first_doc).expect("CRD");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");
    let established = await_condition(
        crds.clone(),
        "widgets.lab.example",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(20), established)
        .await
        .expect("in time")
        .expect("established");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .expect("create widget");
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    crds.delete("widgets.lab.example", &DeleteParams::default())
        .await
        .expect("delete CRD");
    match widgets.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("resource should be gone with its CRD, got {other:?}"),
    }
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("re-create CRD");
    let list = widgets
        .list(&ListParams::default())
        .await
        .expect("list after re-create");
    assert!(
        list.items.is_empty(),
        "objects went with the old CRD: {:?}",
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn manifests_load_at_start() {
    let dir = std::env::temp_dir().join(format!("flb-apiserver-crd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("widgets.yaml"), WIDGET_CRD).expect("write");
    std::fs::write(dir.join("ignored.txt"), "not yaml").expect("write");
    let opts = ApiServerOptions {
        manifests: vec![dir.clone()],
        ..Default::default()
    };
    let started = ApiServer::start(opts).await;
    let _ = std::fs::remove_dir_all(&dir);
    let server = started.expect("start with manifests");
    assert!(
        server
            .object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "gadgets.lab.example"
            )
            .is_some()
    );
    let bad = ApiServerOptions {
        manifests: vec![dir.join("missing.yaml")],
        ..Default::default()
    };
    let err = ApiServer::start(bad)
        .await
        .err()
        .expect("missing manifest is an error");
    assert!(format!("{err:#}").contains("missing.yaml"), "{err:#}");
    let invalid = server.load_yaml("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x.y\nspec: {}\n");
    assert_eq!(invalid.expect_err("invalid CRD").code, 422);
    server.shutdown().await;
}
