//! The in-memory API server's request semantics, driven through a real kube-rs client and
//! checked against the Kubernetes API conventions.

use std::collections::BTreeMap;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn server() -> (ApiServer, Client) {
    let server = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("start");
    let client = server.client().expect("client");
    (server, client)
}

fn service(name: &str, labels: &[(&str, &str)]) -> Service {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }))
    .expect("service")
}

/// The `Status` code and reason of a failed call.
fn api_error<T: std::fmt::Debug>(res: kube::Result<T>) -> (u16, String) {
    match res {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_list_delete_round_trip() {
    let (server, client) = server().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let created = svcs
        .create(&PostParams::default(), &service("web", &[]))
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.namespace().as_deref(), Some("default"));
    let got = svcs.get("web").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(
        svcs.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let all: Api<Service> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("list all")
            .items
            .len(),
        1
    );
    assert_eq!(
        api_error(
            svcs.create(&PostParams::default(), &service("web", &[]))
                .await
        ),
        (409, "AlreadyExists".into())
    );
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(api_error(svcs.delete("web", &wrong_uid).await).0, 409);
    let deleted = svcs
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        deleted.left().is_some_and(|s| s.name_any() == "web"),
        "200 with the object"
    );
    assert_eq!(api_error(svcs.get("web").await), (404, "NotFound".into()));

    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-1"}})).expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    assert!(
        nodes
            .get("node-1")
            .await
            .expect("get node")
            .metadata
            .namespace
            .is_none(),
        "cluster-scoped"
    );
    nodes
        .delete("node-1", &DeleteParams::default())
        .await
        .expect("delete node");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "ferrolb-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"generateName": "ctl-"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .expect("lease");
    let lease = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
    assert!(lease.name_any().starts_with("ctl-") && lease.name_any().len() == 9);

    let cm = ApiResource::erase::<ConfigMap>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client, "default", &cm);
    let obj: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}))
            .expect("dynamic");
    dynamic
        .create(&PostParams::default(), &obj)
        .await
        .expect("create dynamic");
    let got = dynamic.get("c").await.expect("get dynamic");
    assert_eq!(got.data["data"]["k"], "v");
    assert!(server.request_count("create") >= 4);
    assert_eq!(server.request_count("create services"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let (server, client) = server().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let first = svcs
        .create(&PostParams::default(), &service("a", &[]))
        .await
        .expect("create");
    let mut second = first.clone();
    second.labels_mut().insert("x".into(), "1".into());
    let second = svcs
        .replace("a", &PostParams::default(), &second)
        .await
        .expect("replace");
    assert_ne!(second.resource_version(), first.resource_version());
    let (code, reason) = api_error(svcs.replace("a", &PostParams::default(), &first).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // Without a resourceVersion the update is unconditional.
    let mut blind = first.clone();
    blind.metadata.resource_version = None;
    svcs.replace("a", &PostParams::default(), &blind)
        .await
        .expect("unconditional replace");
    // A stale version in a merge patch is a precondition too.
    let stale = json!({"metadata": {"resourceVersion": first.resource_version()}, "spec": {"ports": [{"port": 81}]}});
    let (code, _) = api_error(
        svcs.patch("a", &PatchParams::default(), &Patch::Merge(&stale))
            .await,
    );
    assert_eq!(code, 409);
    server.shutdown().await;
}

#[tokio::test]
async fn generation_bumps_only_on_spec_changes() {
    let (server, client) = server().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let svc = svcs
        .create(&PostParams::default(), &service("a", &[]))
        .await
        .expect("create");
    let mut labelled = svc.clone();
    labelled.annotations_mut().insert("note".into(), "x".into());
    let labelled = svcs
        .replace("a", &PostParams::default(), &labelled)
        .await
        .expect("metadata change");
    assert_eq!(labelled.metadata.generation, Some(1));
    let patched = svcs
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [{"port": 443}]}})),
        )
        .await
        .expect("spec change");
    assert_eq!(patched.metadata.generation, Some(2));
    let status = svcs
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})),
        )
        .await
        .expect("status change");
    assert_eq!(status.metadata.generation, Some(2));
    assert_ne!(status.resource_version(), patched.resource_version());
    // Writing the same object again changes nothing, not even the resourceVersion.
    let same = svcs
        .replace("a", &PostParams::default(), &status)
        .await
        .expect("no-op");
    assert_eq!(same.resource_version(), status.resource_version());
    server.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_isolated_both_ways() {
    let (server, client) = server().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    svcs.create(&PostParams::default(), &service("a", &[]))
        .await
        .expect("create");
    let ingress = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}});
    // A main-resource write carrying status leaves status alone.
    let mut svc = svcs.get("a").await.expect("get");
    svc.status = serde_json::from_value(ingress.clone()).expect("status");
    let written = svcs
        .replace("a", &PostParams::default(), &svc)
        .await
        .expect("replace");
    assert!(
        written
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_none()
    );
    // A status write carrying a spec change changes only status.
    let mut svc = svcs.get("a").await.expect("get");
    svc.status = serde_json::from_value(ingress).expect("status");
    svc.spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")[0]
        .port = 9999;
    let written = svcs
        .replace_status("a", &PostParams::default(), &svc)
        .await
        .expect("replace status");
    let ip = written
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .map(|i| i[0].ip.clone());
    assert_eq!(ip, Some(Some("192.0.2.7".to_string())));
    assert_eq!(
        written
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|p| p[0].port),
        Some(80)
    );
    assert_eq!(
        svcs.get_status("a")
            .await
            .expect("get status")
            .resource_version(),
        written.resource_version()
    );
    // Resources without a status subresource have no /status path.
    let leases: Api<Lease> = Api::namespaced(svcs.into_client(), "default");
    let (code, _) = api_error(leases.get_status("x").await);
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn merge_json_and_apply_patches() {
    let (server, client) = server().await;
    let leases: Api<Lease> = Api::namespaced(client, "ferrolb-system");
    // Server-side apply creates the object.
    let applied = leases
        .patch(
            "l",
            &PatchParams::apply("ferrolb-controller").force(),
            &Patch::Apply(json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "l", "labels": {"a": "1"}},
                "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 10},
            })),
        )
        .await
        .expect("apply create");
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["ferrolb-controller"]);
    let merged = leases
        .patch(
            "l",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": null, "b": "2"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(merged.labels().get("b").map(String::as_str), Some("2"));
    assert!(!merged.labels().contains_key("a"));
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/holderIdentity", "value": "node-a"},
        {"op": "replace", "path": "/spec/holderIdentity", "value": "node-b"},
    ]))
    .expect("ops");
    let jp = leases
        .patch("l", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(
        jp.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
        Some("node-b")
    );
    let failing: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/spec/holderIdentity", "value": "node-a"}]),
    )
    .expect("ops");
    let (code, reason) = api_error(
        leases
            .patch("l", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    // Apply again merges into the live object.
    let reapplied = leases
        .patch(
            "l",
            &PatchParams::apply("ferrolb-controller"),
            &Patch::Apply(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"leaseDurationSeconds": 20}})),
        )
        .await
        .expect("apply update");
    let spec = reapplied.spec.expect("spec");
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_duration_seconds),
        (Some("node-b"), Some(20))
    );
    let strategic = leases
        .patch(
            "l",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"annotations": {"s": "1"}}})),
        )
        .await
        .expect("strategic");
    assert_eq!(
        strategic.annotations().get("s").map(String::as_str),
        Some("1")
    );
    let (code, _) = api_error(
        leases
            .patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (server, client) = server().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("a", vec![("app", "web"), ("tier", "front")]),
        ("b", vec![("app", "db")]),
        ("c", vec![("app", "cache"), ("tier", "back")]),
        ("d", vec![]),
    ] {
        svcs.create(&PostParams::default(), &service(name, &labels))
            .await
            .expect("create");
    }
    let cases = [
        ("app=web", vec!["a"]),
        ("app!=web", vec!["b", "c", "d"]),
        ("app in (web,db)", vec!["a", "b"]),
        ("app notin (web,db)", vec!["c", "d"]),
        ("tier", vec!["a", "c"]),
        ("!tier", vec!["b", "d"]),
        ("app,tier!=back", vec!["a", "b"]),
    ];
    for (selector, want) in cases {
        let list = svcs
            .list(&ListParams::default().labels(selector))
            .await
            .expect(selector);
        let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        assert_eq!(names, want, "{selector}");
    }
    let by_name = svcs
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .expect("field");
    assert_eq!(by_name.items.len(), 1);
    let other_ns: Api<Service> = Api::all(client);
    let by_ns = other_ns
        .list(&ListParams::default().fields("metadata.namespace=kube-system"))
        .await
        .expect("ns");
    assert!(by_ns.items.is_empty());
    // Pagination: pages share one resourceVersion and end without a continue token.
    let page1 = svcs
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    let token = page1.metadata.continue_.clone().expect("continue token");
    let page2 = svcs
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!((page1.items.len(), page2.items.len()), (3, 1));
    assert_eq!(
        page1.metadata.resource_version,
        page2.metadata.resource_version
    );
    assert!(page2.metadata.continue_.is_none());
    // deletecollection honours the selector.
    let removed = svcs
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier"),
        )
        .await
        .expect("delete collection")
        .left()
        .expect("list of deleted objects");
    let mut names: Vec<String> = removed.items.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(
        svcs.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_delay_deletion_until_removed() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "f", "finalizers": ["ferrolb.io/test"]}}),
    )
    .expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let terminating = cms
        .delete("f", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("object");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("f")
            .await
            .expect("still there")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let add = json!({"metadata": {"finalizers": ["ferrolb.io/test", "other/new"]}});
    let (code, _) = api_error(
        cms.patch("f", &PatchParams::default(), &Patch::Merge(add))
            .await,
    );
    assert_eq!(code, 422, "no new finalizers while deleting");
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizers");
    assert_eq!(api_error(cms.get("f").await).0, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_and_kubeconfig() {
    let (server, _) = server().await;
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let client = Client::try_from(config).expect("client");
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(ar, _)| format!("{}/{}", ar.api_version, ar.plural))
        .collect();
    for want in [
        "v1/services",
        "v1/nodes",
        "coordination.k8s.io/v1/leases",
        "discovery.k8s.io/v1/endpointslices",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} in {kinds:?}");
    }
    let (_, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Service"))
        .expect("svc");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status"),
        "services/status advertised"
    );
    let (_, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Node"))
        .expect("node");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(server.request_count("discovery") >= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_prompt_and_ends_watches() {
    // Stopping before the accept loop ever ran must not be missed.
    let idle = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("start");
    tokio::time::timeout(std::time::Duration::from_secs(20), idle.shutdown())
        .await
        .expect("idle shutdown returns");
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = server.resource_version().to_string();
    let stream = cms
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("watch");
    tokio::time::timeout(std::time::Duration::from_secs(20), server.shutdown())
        .await
        .expect("shutdown returns");
    let drained = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        use futures::StreamExt;
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(drained.is_ok(), "the open watch ended with the server");
}

#[tokio::test]
async fn apply_conflicts_between_managers_unless_forced() {
    let (server, client) = server().await;
    let leases: Api<Lease> = Api::namespaced(client, "ferrolb-system");
    let apply = |holder: &str| {
        Patch::Apply(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "spec": {"holderIdentity": holder},
        }))
    };
    leases
        .patch("leader", &PatchParams::apply("replica-a"), &apply("a"))
        .await
        .expect("a applies");
    // Another manager applying the same value shares the field.
    leases
        .patch("leader", &PatchParams::apply("replica-b"), &apply("a"))
        .await
        .expect("same value");
    let (code, reason) = api_error(
        leases
            .patch("leader", &PatchParams::apply("replica-b"), &apply("b"))
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let forced = leases
        .patch(
            "leader",
            &PatchParams::apply("replica-b").force(),
            &apply("b"),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("b")
    );
    // replica-a lost the field, so it can re-take it only by force as well.
    let (code, _) = api_error(
        leases
            .patch("leader", &PatchParams::apply("replica-a"), &apply("a"))
            .await,
    );
    assert_eq!(code, 409);
    server.shutdown().await;
}
