//! The agent against the in-memory API server, with a second session manager on
//! loopback playing the router (no root needed): config CRs, a Node, a Service with
//! status IPs and an EndpointSlice make the agent configure its peer and advertise the
//! Service's IPs; the IP is withdrawn when the last local endpoint moves away (ETP Local)
//! and when the Service is deleted; `ServiceBGPStatus` objects follow; an API outage and
//! an invalid configuration keep the routes announced.

mod agent_common;
use agent_common::{api_with_crds, loopback_router};
use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_speaker::agent::{Agent, AgentConfig, Applied};
use ferrolb_speaker::bgp::fsm::State;
use ferrolb_speaker::net::{ManagerConfig, SessionManager};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "ferrolb-system";
const VIP4: &str = "198.51.100.10/32";
const VIP6: &str = "fd00:5100::10/128";

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn routes_of(applied: &Applied, peer: &str) -> Vec<String> {
    applied
        .routes
        .get(peer)
        .map(|r| r.keys().map(ToString::to_string).collect())
        .unwrap_or_default()
}

fn config_yaml(port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: ferrolb-system}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: default}}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp-pool, namespace: ferrolb-system}}
spec:
  addresses: [198.51.100.0/24, "fd00:5100::/64"]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: all, namespace: ferrolb-system}}
spec:
  ipAddressPools: [bgp-pool]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: tor, namespace: ferrolb-system}}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 127.0.0.1
  peerPort: {port}
  holdTime: 9s
  keepaliveTime: 3s
  connectTime: 1s
  nodeSelectors:
    - matchLabels: {{kubernetes.io/hostname: node1}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: elsewhere, namespace: ferrolb-system}}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 127.0.0.2
  nodeSelectors:
    - matchLabels: {{kubernetes.io/hostname: node2}}
"#
    )
}

fn node(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "ipFamilyPolicy": "PreferDualStack",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "selector": {"app": "web"},
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.10"}, {"ip": "fd00:5100::10"}]}},
    })
}

fn slice(node: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": "web-ipv4", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": ["10.244.1.10"],
            "conditions": {"ready": true},
            "nodeName": node,
        }],
        "ports": [{"port": 80, "protocol": "TCP"}],
    })
}

fn bgp_status(api: &ApiServer) -> Option<Value> {
    api.object(
        "ferrolb.io/v1beta1",
        "ServiceBGPStatus",
        Some(NS),
        "node1-default-web",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_announces_withdraws_and_survives_outages() {
    let api = api_with_crds().await;

    // The "router": a passive session manager on loopback.
    let (router, port) = loopback_router(Some(9)).await;

    api.load_yaml(&config_yaml(port)).expect("config");
    api.insert(node("node1", "10.0.1.2")).expect("node1");
    api.insert(node("node2", "10.0.2.2")).expect("node2");
    api.insert(service()).expect("service");
    api.insert(slice("node1")).expect("slice");

    let manager = SessionManager::start(ManagerConfig {
        listen_port: None,
        ..ManagerConfig::default()
    })
    .expect("agent manager");
    let mut cfg = AgentConfig::new("node1");
    cfg.debounce = Duration::from_millis(20);
    let agent = Agent::start(api.client().expect("client"), cfg, manager);
    let applied = agent.applied();
    let long = Duration::from_secs(20);

    // Peer for node1 only, with the node's IPv4 as router ID and GTSM off.
    wait_until("peer configured", long, || {
        applied.borrow().peers.len() == 1
    })
    .await;
    {
        let a = applied.borrow();
        let p = &a.peers[0];
        assert_eq!(p.id, "tor");
        assert_eq!(p.peer_port, port);
        assert_eq!(p.router_id, Ipv4Addr::new(10, 0, 1, 2));
        assert_eq!((p.hold_time, p.keepalive), (9, Some(3)));
        assert!(!p.gtsm);
        assert!(a.config_errors.is_empty(), "{:?}", a.config_errors);
    }
    wait_until("routes applied", long, || {
        routes_of(&applied.borrow(), "tor") == [VIP4, VIP6]
    })
    .await;
    let advertised = |n: usize| {
        let m = agent.manager().clone();
        move || {
            m.peer_status("tor")
                .is_some_and(|s| s.state == State::Established && s.prefixes_advertised == n)
        }
    };
    // The IPv4 session carries the IPv4 prefix only.
    wait_until("session up with the VIP", long, advertised(1)).await;
    wait_until("router received the VIP", long, || {
        router
            .peer_status("node1")
            .is_some_and(|s| s.prefixes_received >= 1)
    })
    .await;
    wait_until("ServiceBGPStatus written", long, || {
        bgp_status(&api).is_some_and(|o| {
            o["status"]["peers"] == json!(["tor"])
                && o["status"]["node"] == "node1"
                && o["metadata"]["labels"]["ferrolb.io/service-namespace"] == "default"
        })
    })
    .await;
    let text = agent.metrics();
    assert!(
        text.contains("ferrolb_bgp_session_up{peer=\"tor\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ferrolb_bgp_prefixes_advertised{peer=\"tor\"} 1"),
        "{text}"
    );

    // API outage: watches fail, the routes stay.
    api.pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(advertised(1)(), "routes kept during the outage");
    assert_eq!(routes_of(&applied.borrow(), "tor"), [VIP4, VIP6]);
    api.resume();

    let client = api.client().expect("client");
    // An invalid configuration (keepalive > hold) does not replace the last good one.
    let peers: Api<ferrolb_crds::BGPPeer> = Api::namespaced(client.clone(), NS);
    peers
        .patch(
            "tor",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"keepaliveTime": "30s"}})),
        )
        .await
        .expect("patch peer");
    wait_until("config error reported", long, || {
        !applied.borrow().config_errors.is_empty()
    })
    .await;
    assert_eq!(applied.borrow().peers[0].keepalive, Some(3));
    assert!(advertised(1)(), "routes kept with an invalid config");
    peers
        .patch(
            "tor",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"keepaliveTime": "3s"}})),
        )
        .await
        .expect("patch peer back");
    wait_until("config valid again", long, || {
        applied.borrow().config_errors.is_empty()
    })
    .await;

    // ETP Local: the last local endpoint moves to node2 => withdrawn, status deleted.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let move_to = |n: &str| {
        Patch::Merge(json!({"endpoints": [{
            "addresses": ["10.244.1.10"], "conditions": {"ready": true}, "nodeName": n,
        }]}))
    };
    slices
        .patch("web-ipv4", &PatchParams::default(), &move_to("node2"))
        .await
        .expect("move endpoint");
    wait_until("withdrawn (no local endpoint)", long, advertised(0)).await;
    assert!(routes_of(&applied.borrow(), "tor").is_empty());
    wait_until("status deleted", long, || bgp_status(&api).is_none()).await;

    slices
        .patch("web-ipv4", &PatchParams::default(), &move_to("node1"))
        .await
        .expect("move endpoint back");
    wait_until("announced again", long, advertised(1)).await;
    wait_until("status back", long, || bgp_status(&api).is_some()).await;

    // Deleting the Service withdraws its IPs and deletes its status.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    wait_until("withdrawn (service deleted)", long, advertised(0)).await;
    wait_until("status deleted again", long, || bgp_status(&api).is_none()).await;
    // The session itself stayed up throughout.
    assert_eq!(
        agent
            .manager()
            .peer_status("tor")
            .map(|s| s.established_count),
        Some(1)
    );

    agent.shutdown().await;
    wait_until("router saw the Cease", long, || {
        router
            .peer_status("node1")
            .is_some_and(|s| s.state != State::Established && s.notifications_received >= 1)
    })
    .await;
    router.shutdown().await;
    api.shutdown().await;
}
