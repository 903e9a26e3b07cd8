//! End-to-end suite, BGP mode with ferrolb's speaker (root). One lab: an FRR ToR peering
//! with three nodes (BFD 100 ms x 3, the `deploy/examples` configuration), one pod per node,
//! the in-memory API server, the lab's kube-proxy emulation (nftables DNAT from Service
//! status and EndpointSlices) and the `ferrolb-speaker` binary in every node namespace
//! ([`ferrolb_e2e::cluster::speakers`]). VIPs are written into Service status by the test
//! (the controller is not part of this suite yet).
//!
//! Assertions are on the router's FIB (which nodes the VIP's route points to) and on real
//! TCP connections from the client (which pods answer), for IPv4 and IPv6:
//! - `externalTrafficPolicy: Cluster`: every node announces; every pod answers;
//! - `externalTrafficPolicy: Local`: only nodes with a ready local endpoint announce; an
//!   endpoint going not-ready makes its node withdraw and traffic stays on the others;
//! - API server outage: routes stay and traffic keeps flowing; after it, changes flow again.
//!
//! Needs the binary: `cargo build -p ferrolb-speaker` (`cargo test --workspace` builds it).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ferrolb_e2e::cluster::EndpointState;
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::{FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use ferrolb_e2e::lab::{self, Lab};
use serde_json::json;

mod suite_common;
use suite_common::{Env, PORT, slice_port};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(20);

/// One Service of the suite: name, policy and its IPv4 and IPv6 VIPs.
struct Svc {
    name: &'static str,
    policy: &'static str,
    v4: &'static str,
    v6: &'static str,
}

const CLUSTER: Svc = Svc {
    name: "e2e-cluster",
    policy: "Cluster",
    v4: "198.51.100.20",
    v6: "fd00:5100::20",
};
const LOCAL: Svc = Svc {
    name: "e2e-local",
    policy: "Local",
    v4: "198.51.100.21",
    v6: "fd00:5100::21",
};

impl Svc {
    fn prefixes(&self) -> [String; 2] {
        [format!("{}/32", self.v4), format!("{}/128", self.v6)]
    }

    fn addrs(&self) -> [SocketAddr; 2] {
        [self.v4, self.v6].map(|v| SocketAddr::new(v.parse::<IpAddr>().expect("VIP"), 80))
    }

    fn object(&self) -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": NS},
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": self.policy,
                "ipFamilyPolicy": "RequireDualStack",
                "ipFamilies": ["IPv4", "IPv6"],
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": self.v4}, {"ip": self.v6}]}},
        })
    }
}

/// Waits until both families' routes of `svc` point exactly to `nodes`.
fn routes_via(lab: &Lab, svc: &Svc, nodes: &[u8]) {
    for p in svc.prefixes() {
        lab.wait_router_route_nodes(&p, nodes, WAIT)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", svc.name, svc.policy));
    }
}

/// Opens `count` TCP connections per family to `svc`'s VIPs; returns the answering pods.
fn answering_pods(lab: &Lab, svc: &Svc, count: usize) -> BTreeSet<String> {
    let mut pods = BTreeSet::new();
    for addr in svc.addrs() {
        let names = lab
            .client_tcp_many(addr, count)
            .unwrap_or_else(|e| panic!("connections to {addr} ({}): {e}", svc.name));
        assert_eq!(names.len(), count, "{addr}: {names:?}");
        pods.extend(names);
    }
    pods
}

/// Waits until the kube-proxy emulation on each of `nodes` DNATs both of `svc`'s VIPs to
/// exactly `endpoints` local-or-cluster pod addresses (counted per family).
fn dnat_ready(watcher: &DnatWatcher, svc: &Svc, nodes: &[&str], endpoints: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rules = watcher.applied();
        let ok = svc.addrs().iter().all(|a| {
            nodes.iter().all(|n| {
                rules.get(*n).is_some_and(|v| {
                    v.iter()
                        .any(|s| s.vip == a.ip() && s.endpoints.len() == endpoints)
                })
            })
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "DNAT of {} on {nodes:?} not at {endpoints} endpoints: {rules:?}",
            svc.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bgp_mode_with_ferrolb_speaker() {
    lab::require_root().unwrap_or_else(|e| panic!("the suite builds network namespaces: {e}"));
    let binary = locate_binary(SPEAKER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let Env {
        lab,
        rt,
        api,
        client,
        cluster,
    } = Env::up();
    let guard = rt.enter();
    let slice_port = slice_port();
    for svc in [&CLUSTER, &LOCAL] {
        api.insert(svc.object()).expect("service");
        rt.block_on(cluster.create_endpoint_slices(lab.plan(), NS, svc.name, &slice_port))
            .expect("endpoint slices");
    }
    // ETP Local starts with node3's only endpoint not ready.
    rt.block_on(cluster.set_endpoint_state(NS, LOCAL.name, "pod-3-1", EndpointState::NotReady))
        .expect("pod-3-1 not ready");
    let kubeconfig = lab.run_dir().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let watcher = DnatWatcher::spawn(client.clone(), lab.clone());
    let mut speakers =
        FerrolbSpeakers::start(&lab, &binary, api.addr(), &kubeconfig).expect("speakers");

    dnat_ready(&watcher, &CLUSTER, &["node1", "node2", "node3"], 3);
    dnat_ready(&watcher, &LOCAL, &["node1", "node2"], 1);

    // externalTrafficPolicy Cluster: every node announces, every pod answers.
    routes_via(&lab, &CLUSTER, &[1, 2, 3]);
    assert_eq!(
        answering_pods(&lab, &CLUSTER, 60),
        set(&["pod-1-1", "pod-2-1", "pod-3-1"])
    );

    // externalTrafficPolicy Local: node3 has no ready endpoint, so it does not announce.
    routes_via(&lab, &LOCAL, &[1, 2]);
    lab::wait_until(
        "ServiceBGPStatus of e2e-local from node1 and node2 only",
        WAIT,
        || {
            let has = |node: &str| {
                api.object(
                    "ferrolb.io/v1beta1",
                    "ServiceBGPStatus",
                    Some("ferrolb-system"),
                    &format!("{node}-{NS}-{}", LOCAL.name),
                )
                .is_some()
            };
            Ok(has("node1") && has("node2") && !has("node3"))
        },
    )
    .expect("ServiceBGPStatus per announcing node");
    assert_eq!(
        answering_pods(&lab, &LOCAL, 60),
        set(&["pod-1-1", "pod-2-1"])
    );

    // node2's endpoint goes not ready: node2 withdraws, traffic stays on node1's pod.
    rt.block_on(cluster.set_endpoint_state(NS, LOCAL.name, "pod-2-1", EndpointState::NotReady))
        .expect("pod-2-1 not ready");
    routes_via(&lab, &LOCAL, &[1]);
    assert_eq!(answering_pods(&lab, &LOCAL, 20), set(&["pod-1-1"]));
    routes_via(&lab, &CLUSTER, &[1, 2, 3]);

    // API server outage: sessions, routes and traffic carry on.
    api.pause();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        for (svc, nodes) in [(&CLUSTER, vec![1, 2, 3]), (&LOCAL, vec![1])] {
            for p in svc.prefixes() {
                assert_eq!(
                    lab.router_route_nodes(&p).expect("read route"),
                    nodes,
                    "{p} changed during the API outage"
                );
            }
        }
        assert_eq!(answering_pods(&lab, &LOCAL, 5), set(&["pod-1-1"]));
        assert!(!answering_pods(&lab, &CLUSTER, 5).is_empty());
        std::thread::sleep(Duration::from_millis(250));
    }
    speakers
        .check_running()
        .expect("speakers survive the outage");
    api.resume();

    // After the outage, changes flow again: node2's endpoint is ready, node2 announces.
    rt.block_on(cluster.set_endpoint_state(NS, LOCAL.name, "pod-2-1", EndpointState::Ready))
        .expect("pod-2-1 ready");
    routes_via(&lab, &LOCAL, &[1, 2]);
    dnat_ready(&watcher, &LOCAL, &["node1", "node2"], 1);
    assert_eq!(
        answering_pods(&lab, &LOCAL, 60),
        set(&["pod-1-1", "pod-2-1"])
    );

    // Deleting the Service withdraws both families from every node.
    rt.block_on(async {
        let services: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(client.clone(), NS);
        services
            .delete(CLUSTER.name, &Default::default())
            .await
            .expect("delete service");
    });
    routes_via(&lab, &CLUSTER, &[]);

    drop(guard);
    suite_common::finish(lab, rt, api, watcher, speakers);
}
