//! Root: the agent end to end in the lab. A three-node FRR lab, the in-memory API
//! server (root namespace, 127.0.0.1) with the CRDs and `deploy/examples/ferrolb-config.yaml`,
//! and one agent per node.
//!
//! Each node's `SessionManager` is started on a thread that entered the node's network
//! namespace (`setns`) and runs its own tokio runtime, so every BGP and BFD socket lives
//! in the node namespace. The agent itself (kube client, watches, status writer) runs on
//! the test's runtime in the root namespace, where it can reach the API server on
//! 127.0.0.1; it drives the manager through its handle, which works across runtimes.
//! (A speaker process started with `ip netns exec` could not reach 127.0.0.1 of the root
//! namespace.)
//!
//! A Service whose status the test writes (the controller is not part of this test) makes
//! FRR install the /32 and the /128 with one next hop per node; deleting the Service
//! withdraws both.

use std::fs;
use std::time::Duration;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::seed_cluster;
use ferrolb_e2e::lab::{Lab, LabSpec, wait_until};
use ferrolb_speaker::agent::{Agent, AgentConfig};
use ferrolb_speaker::net::{ManagerConfig, SessionManager};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::DeleteParams;
use nix::sched::{CloneFlags, setns};
use serde_json::json;

const NS: &str = "ferrolb-system";
const VIP4: &str = "198.51.100.10/32";
const VIP6: &str = "fd00:5100::10/128";

/// A tokio runtime on a thread inside a network namespace, holding a session manager.
struct NodeRuntime {
    manager: SessionManager,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeRuntime {
    fn start(ns: &str) -> NodeRuntime {
        let path = format!("/run/netns/{ns}");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let f = fs::File::open(&path).expect("open netns");
            setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("node runtime");
            rt.block_on(async move {
                let manager = SessionManager::start(ManagerConfig {
                    listen_port: None,
                    ..ManagerConfig::default()
                })
                .expect("session manager");
                tx.send(manager).expect("send manager");
                let _ = stop_rx.await;
            });
        });
        let manager = rx.recv().expect("node runtime thread");
        NodeRuntime {
            manager,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for NodeRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn agents_announce_service_ips_to_frr_with_ecmp() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces, FRR); run it as root"
    );
    let lab = Lab::up(LabSpec {
        nodes: 3,
        pods_per_node: 0,
        ..LabSpec::default()
    })
    .expect("lab up");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let api = rt
        .block_on(ApiServer::start(ApiServerOptions {
            manifests: vec![root.join("deploy/crds")],
            ..ApiServerOptions::default()
        }))
        .expect("api server");
    seed_cluster(&api, lab.plan()).expect("seed cluster");
    api.load_path(&root.join("deploy/examples/ferrolb-config.yaml"))
        .expect("example config");
    api.insert(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "RequireDualStack",
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.10"}, {"ip": "fd00:5100::10"}]}},
    }))
    .expect("service");
    api.insert(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": "web-ipv4", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.10"], "conditions": {"ready": true}, "nodeName": "node1"}],
        "ports": [{"port": 80, "protocol": "TCP"}],
    }))
    .expect("endpoint slice");

    let nodes: Vec<NodeRuntime> = lab
        .nodes()
        .iter()
        .map(|n| NodeRuntime::start(&n.ns))
        .collect();
    let agents: Vec<Agent> = lab
        .nodes()
        .iter()
        .zip(&nodes)
        .map(|(n, node)| {
            let _guard = rt.enter();
            let mut cfg = AgentConfig::new(n.name.clone());
            cfg.debounce = Duration::from_millis(50);
            Agent::start(api.client().expect("client"), cfg, node.manager.clone())
        })
        .collect();

    let all: Vec<u8> = lab.nodes().iter().map(|n| n.index).collect();
    lab.wait_router_route_nodes(VIP4, &all, Duration::from_secs(30))
        .expect("IPv4 VIP via every node");
    lab.wait_router_route_nodes(VIP6, &all, Duration::from_secs(30))
        .expect("IPv6 VIP via every node");
    let hops4 = lab.router_nexthops(VIP4).expect("read IPv4 route");
    let hops6 = lab.router_nexthops(VIP6).expect("read IPv6 route");
    assert_eq!((hops4.len(), hops6.len()), (3, 3), "{hops4:?} {hops6:?}");
    eprintln!("router: {VIP4} via {hops4:?}; {VIP6} via {hops6:?}");

    // Each node wrote its ServiceBGPStatus naming both of its peers.
    for n in lab.nodes() {
        let name = format!("{}-default-web", n.name);
        let want = json!([format!("tor-{}-v4", n.name), format!("tor-{}-v6", n.name)]);
        wait_until(
            &format!("ServiceBGPStatus {name}"),
            Duration::from_secs(10),
            || {
                Ok(api
                    .object("ferrolb.io/v1beta1", "ServiceBGPStatus", Some(NS), &name)
                    .is_some_and(|o| o["status"]["peers"] == want))
            },
        )
        .expect("status written");
    }
    // BFD from the BGPPeers' profile comes Up with FRR on all six sessions.
    wait_until("six BFD sessions Up", Duration::from_secs(20), || {
        Ok(lab.bfd_peers()?.iter().filter(|p| p.up).count() == 6)
    })
    .expect("BFD up");

    rt.block_on(async {
        let services: Api<Service> = Api::namespaced(api.client().expect("client"), "default");
        services
            .delete("web", &DeleteParams::default())
            .await
            .expect("delete service");
    });
    lab.wait_router_route_nodes(VIP4, &[], Duration::from_secs(15))
        .expect("IPv4 VIP withdrawn");
    lab.wait_router_route_nodes(VIP6, &[], Duration::from_secs(15))
        .expect("IPv6 VIP withdrawn");
    for n in lab.nodes() {
        let name = format!("{}-default-web", n.name);
        wait_until(&format!("{name} deleted"), Duration::from_secs(10), || {
            Ok(api
                .object("ferrolb.io/v1beta1", "ServiceBGPStatus", Some(NS), &name)
                .is_none())
        })
        .expect("status deleted");
    }

    for agent in agents {
        rt.block_on(agent.shutdown());
    }
    drop(nodes);
    rt.block_on(api.shutdown());
    lab.down().expect("lab down");
}
