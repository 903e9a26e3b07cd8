//! Cluster emulation against the in-memory API server through a real kube-rs client: Nodes
//! and EndpointSlices, state changes, the example manifests, and the kube-proxy emulation
//! hook end to end (Service status IP -> nftables DNAT on every node -> a client connection
//! through the VIP reaches a pod). Needs root for the lab test: reachability of the VIP
//! comes from a static route on the router to node 1 (no speaker needed for this).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::{BGPPeer, IPAddressPool};
use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::{
    self, Cluster, EXCLUDE_LABEL, EndpointState, NodeHealth, SERVICE_NAME_LABEL, SlicePort,
};
use ferrolb_e2e::lab::{self, Lab, LabSpec, Proto};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

async fn api() -> ApiServer {
    ApiServer::start(ApiServerOptions {
        manifests: vec![deploy().join("crds")],
        ..ApiServerOptions::default()
    })
    .await
    .expect("API server")
}

fn plan(nodes: u8, pods: u8) -> lab::Plan {
    LabSpec {
        nodes,
        pods_per_node: pods,
        ..LabSpec::default()
    }
    .plan("flb-0-0")
    .expect("plan")
}

fn condition(n: &Node, ty: &str) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == ty))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn nodes_and_endpoint_slices_through_kube_rs() {
    let api = api().await;
    let plan = plan(3, 2);
    cluster::seed_cluster(&api, &plan).expect("seed");
    let client = api.client().expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.expect("nodes");
    let names: Vec<String> = list
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    assert!(list.iter().all(|n| condition(n, "Ready") == "True"));
    let by_label = nodes
        .list(&ListParams::default().labels("kubernetes.io/hostname=node2"))
        .await
        .expect("by label");
    assert_eq!(by_label.items.len(), 1);

    let c = Cluster::new(client.clone());
    c.set_node_health("node2", NodeHealth::NotReady)
        .await
        .expect("not ready");
    c.set_node_health("node3", NodeHealth::NetworkUnavailable)
        .await
        .expect("net");
    c.set_node_excluded("node1", true).await.expect("exclude");
    let n1 = nodes.get("node1").await.expect("node1");
    assert!(
        n1.metadata
            .labels
            .as_ref()
            .expect("labels")
            .contains_key(EXCLUDE_LABEL)
    );
    assert_eq!(
        condition(&n1, "Ready"),
        "True",
        "a label write keeps the status"
    );
    assert_eq!(
        condition(&nodes.get("node2").await.expect("n2"), "Ready"),
        "False"
    );
    let n3 = nodes.get("node3").await.expect("n3");
    assert_eq!(condition(&n3, "NetworkUnavailable"), "True");
    c.set_node_excluded("node1", false).await.expect("include");
    let n1 = nodes.get("node1").await.expect("node1");
    assert!(
        !n1.metadata
            .labels
            .as_ref()
            .expect("labels")
            .contains_key(EXCLUDE_LABEL)
    );

    let ports = [SlicePort {
        name: "http".into(),
        port: 8080,
        proto: Proto::Tcp,
    }];
    c.create_endpoint_slices(&plan, "default", "web", &ports)
        .await
        .expect("slices");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}=web"));
    let got = slices.list(&lp).await.expect("list");
    assert_eq!(got.items.len(), 2);
    assert!(got.items.iter().all(|s| s.endpoints.len() == 6));
    c.set_endpoint_state("default", "web", "pod-2-1", EndpointState::Terminating)
        .await
        .expect("terminating");
    for s in slices.list(&lp).await.expect("list") {
        let e = s
            .endpoints
            .iter()
            .find(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some("pod-2-1"))
            .expect("endpoint");
        let cnd = e.conditions.clone().expect("conditions");
        assert_eq!(
            (cnd.ready, cnd.serving, cnd.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(e.node_name.as_deref(), Some("node2"));
    }
    let err = c
        .set_endpoint_state("default", "web", "pod-9-9", EndpointState::Ready)
        .await
        .expect_err("unknown pod");
    assert!(err.to_string().contains("pod-9-9"), "{err}");
    api.shutdown().await;
}

#[tokio::test]
async fn examples_are_validated_then_loaded() {
    let api = api().await;
    let plan = plan(3, 1);
    let nodes = cluster::seed_cluster(&api, &plan).expect("seed");
    let files = cluster::manifest_files(&deploy().join("examples")).expect("files");
    let v = cluster::apply_manifests(&api, &files, &nodes).expect("apply");
    assert_eq!(v.config.pools.len(), 2);
    let client = api.client().expect("client");
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), cluster::SYSTEM_NAMESPACE);
    let mut names: Vec<String> = pools
        .list(&ListParams::default())
        .await
        .expect("pools")
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["bgp-pool", "l2-pool"]);
    let peers: Api<BGPPeer> = Api::namespaced(client.clone(), cluster::SYSTEM_NAMESPACE);
    assert_eq!(
        peers
            .list(&ListParams::default())
            .await
            .expect("peers")
            .items
            .len(),
        6
    );
    let svcs: Api<Service> = Api::namespaced(client, "default");
    assert_eq!(
        svcs.list(&ListParams::default())
            .await
            .expect("svcs")
            .items
            .len(),
        4
    );

    // An invalid file is rejected before anything of it reaches the API server.
    let dir = std::env::temp_dir().join(format!("flb-cluster-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: overlap\n  namespace: ferrolb-system\nspec:\n  addresses: [198.51.100.0/25]\n",
    )
    .expect("write");
    let mut with_bad = files.clone();
    with_bad.push(bad);
    let err = cluster::apply_manifests(&api, &with_bad, &nodes).expect_err("overlap");
    std::fs::remove_dir_all(&dir).ok();
    let msg = err.to_string();
    assert!(msg.contains("IPAddressPool ferrolb-system/"), "{msg}");
    assert!(
        api.object(
            "ferrolb.io/v1beta1",
            "IPAddressPool",
            Some("ferrolb-system"),
            "overlap"
        )
        .is_none()
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnat_watcher_programs_nodes_from_service_status() {
    if let Err(e) = lab::require_root() {
        panic!("this test builds network namespaces: {e}");
    }
    let lab = tokio::task::block_in_place(|| {
        Lab::up(LabSpec {
            nodes: 2,
            pods_per_node: 1,
            bfd: None,
            ..LabSpec::default()
        })
    })
    .expect("lab up");
    let lab = Arc::new(lab);
    let api = api().await;
    cluster::seed_cluster(&api, lab.plan()).expect("seed");
    let client = api.client().expect("client");
    tokio::task::block_in_place(|| lab.serve_pods(8080)).expect("pods");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    }))
    .expect("svc");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.create(&Default::default(), &svc)
        .await
        .expect("create svc");
    let c = Cluster::new(client.clone());
    let ports = [SlicePort {
        name: "http".into(),
        port: 8080,
        proto: Proto::Tcp,
    }];
    c.create_endpoint_slices(lab.plan(), "default", "web", &ports)
        .await
        .expect("slices");
    let mut watcher = DnatWatcher::spawn(client.clone(), lab.clone());

    // The VIP reaches the nodes by a static route on the router to node 1.
    let vip: IpAddr = "198.51.100.77".parse().expect("vip");
    let node1 = lab
        .node(1)
        .expect("node1")
        .uplink
        .v4
        .expect("v4")
        .to_string();
    lab.exec(
        lab.router_ns(),
        &["ip", "route", "add", "198.51.100.77/32", "via", &node1],
    )
    .expect("static route");
    let patch =
        serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": vip.to_string()}]}}});
    svcs.patch_status("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status");
    let rules = watcher
        .wait_for_vip(vip, Duration::from_secs(20))
        .await
        .expect("rules");
    assert_eq!(rules.len(), 2, "{rules:?}");
    let addr = SocketAddr::new(vip, 80);
    let names: BTreeSet<String> = tokio::task::block_in_place(|| lab.client_tcp_many(addr, 40))
        .expect("through the VIP")
        .into_iter()
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["pod-1-1".to_string(), "pod-2-1".to_string()])
    );

    // A not-ready endpoint leaves the rules; traffic goes to the other pod only.
    c.set_endpoint_state("default", "web", "pod-2-1", EndpointState::NotReady)
        .await
        .expect("not ready");
    let mut ok = false;
    for _ in 0..100 {
        let r = watcher.applied();
        if r.values().all(|v| v.iter().all(|s| s.endpoints.len() == 1)) && !r.is_empty() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "rules did not drop the not-ready endpoint: {:?}",
        watcher.applied()
    );
    let names = tokio::task::block_in_place(|| lab.client_tcp_many(addr, 20)).expect("after");
    assert!(names.iter().all(|n| n == "pod-1-1"), "{names:?}");
    assert!(watcher.error().await.is_none());
    watcher.stop().await;
    api.shutdown().await;
    let lab = Arc::try_unwrap(lab).expect("sole owner");
    tokio::task::block_in_place(|| lab.down()).expect("down");
}
