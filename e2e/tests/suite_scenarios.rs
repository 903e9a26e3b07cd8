//! End-to-end suite, BGP mode scenarios with ferrolb's controller and speakers (root). One
//! lab for every section: an FRR ToR peering with three nodes (`deploy/examples`
//! configuration, BFD 100 ms x 3), one pod per node serving TCP and UDP, the in-memory API
//! server, the lab's kube-proxy emulation (nftables DNAT from Service status and
//! EndpointSlices), `ferrolb-speaker` in every node namespace and `ferrolb-controller` in
//! node1's namespace.
//!
//! - IP sharing: a TCP and a UDP Service on the same port with the same
//!   `ferrolb.io/allow-shared-ip` key get the same IPv4 and IPv6 VIPs, and real TCP and UDP
//!   exchanges reach the pods through both; a third Service with that key and a port already
//!   taken gets other VIPs, and one that asks for the shared VIPs gets
//!   `ferrolb.io/LoadBalancerReady=False` with reason `SharingConflict`.
//! - Client neighbour table: the client reaches BGP VIPs through its routed uplink, so the
//!   shared L2 segment must have nothing to say about them: no node answers ARP or NDP for
//!   a BGP VIP there (the VIP is not on a host interface and is not announced by L2), while
//!   the nodes' own segment addresses do answer (the control that the probes work).
//! - Node loss: a continuous UDP probe (16 flows per family, a probe every 5 ms) against an
//!   `externalTrafficPolicy: Local` Service while one node's uplink goes down silently; the
//!   router drops that node's next hop (BFD), traffic continues through the others, and the
//!   measured client-seen outage is printed (asserted only under a generous bound: the real
//!   figure is `ferrolb-lab failover-bench`'s). The node then comes back and announces again.
//! - Pool change: a pool with a positive priority and a Service selector takes a new
//!   selected Service ahead of the example's unselective pool; editing that pool so the
//!   Service's addresses leave it makes the controller re-home the Service (new addresses in
//!   status, from the edited pool), the router's FIB drops the old host routes and holds
//!   the new ones, and connections to the new VIPs reach the pods.
//!
//! Needs the binaries: `cargo build -p ferrolb-speaker -p ferrolb-controller`
//! (`cargo test --workspace` builds them).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::cluster::SlicePort;
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::{CONTROLLER_BIN, FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use ferrolb_e2e::failover::probe::{self, Probe};
use ferrolb_e2e::lab::{self, Lab, Proto};
use serde_json::json;

mod suite_common;
use suite_common::{Env, PORT, slice_port};

const NS: &str = "default";
const SYSTEM_NS: &str = "ferrolb-system";
const WAIT: Duration = Duration::from_secs(20);
const SHARE_KEY: &str = "ferrolb.io/allow-shared-ip";
const POOL_ANNOTATION: &str = "ferrolb.io/ip-allocated-from-pool";
const CONDITION: &str = "ferrolb.io/LoadBalancerReady";
/// Bound on the node-loss outage: BFD detects in about 300 ms; this only catches a failover
/// that does not happen by BFD (the hold timer would take 9 s).
const OUTAGE_BOUND: Duration = Duration::from_secs(5);

/// A dual-stack LoadBalancer Service selecting the pods, with `ports` (name, port,
/// protocol; target port [`PORT`]) and extra metadata.
fn service(
    name: &str,
    policy: &str,
    ports: &[(&str, u16, &str)],
    annotations: serde_json::Value,
    labels: serde_json::Value,
) -> serde_json::Value {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .map(|(n, p, proto)| json!({"name": n, "port": p, "targetPort": PORT, "protocol": proto}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations, "labels": labels},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": policy,
            "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4", "IPv6"],
            "selector": {"app": "web"},
            "ports": ports,
        },
    })
}

fn udp_port() -> SlicePort {
    SlicePort {
        name: "udp".into(),
        port: PORT,
        proto: Proto::Udp,
    }
}

/// The Service's ingress IPs, as written into its status, IPv4 first.
fn ingress(api: &ApiServer, name: &str) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = api
        .object("v1", "Service", Some(NS), name)
        .and_then(|s| {
            s["status"]["loadBalancer"]["ingress"].as_array().map(|a| {
                a.iter()
                    .filter_map(|i| i["ip"].as_str()?.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default();
    ips.sort_by_key(IpAddr::is_ipv6);
    ips
}

/// Waits until the controller wrote one IPv4 and one IPv6 VIP for `name` that `accept`s.
fn allocated_where(api: &ApiServer, name: &str, accept: impl Fn(&[IpAddr]) -> bool) -> Vec<IpAddr> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ips = ingress(api, name);
        if ips.len() == 2 && ips[0].is_ipv4() && ips[1].is_ipv6() && accept(&ips) {
            return ips;
        }
        assert!(
            Instant::now() < deadline,
            "Service {name}: no expected IPv4 and IPv6 VIPs in status: {ips:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn allocated(api: &ApiServer, name: &str) -> Vec<IpAddr> {
    allocated_where(api, name, |_| true)
}

/// The Service's `ferrolb.io/LoadBalancerReady` condition as (status, reason, message).
fn condition(api: &ApiServer, name: &str) -> Option<(String, String, String)> {
    let s = api.object("v1", "Service", Some(NS), name)?;
    let c = s["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == CONDITION)?
        .clone();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

fn wait_condition(api: &ApiServer, name: &str, status: &str) -> (String, String, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = condition(api, name);
        if let Some(c) = c.as_ref().filter(|c| c.0 == status) {
            return c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Service {name}: {CONDITION} not {status}: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn prefix(ip: &IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
}

fn routes_via(lab: &Lab, vips: &[IpAddr], nodes: &[u8]) {
    for ip in vips {
        lab.wait_router_route_nodes(&prefix(ip), nodes, WAIT)
            .unwrap_or_else(|e| panic!("route of {ip} via nodes {nodes:?}: {e}"));
    }
}

/// Waits until every node DNATs each of `vips` at `port`/`proto` to `endpoints` pods.
fn wait_dnat(watcher: &DnatWatcher, vips: &[IpAddr], port: u16, proto: Proto, endpoints: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rules = watcher.applied();
        let ok = rules.len() == 3
            && vips.iter().all(|v| {
                rules.values().all(|r| {
                    r.iter().any(|s| {
                        s.vip == *v
                            && s.port == port
                            && s.proto == proto
                            && s.endpoints.len() == endpoints
                    })
                })
            });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "DNAT of {vips:?} {port}/{proto:?} not at {endpoints} endpoints on every node: {rules:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tcp_pods(lab: &Lab, vips: &[IpAddr], port: u16, count: usize) -> BTreeSet<String> {
    let mut pods = BTreeSet::new();
    for ip in vips {
        let addr = SocketAddr::new(*ip, port);
        let names = lab
            .client_tcp_many(addr, count)
            .unwrap_or_else(|e| panic!("TCP connections to {addr}: {e}"));
        assert_eq!(names.len(), count, "{addr}: {names:?}");
        pods.extend(names);
    }
    pods
}

fn udp_pods(lab: &Lab, vips: &[IpAddr], port: u16, count: usize) -> BTreeSet<String> {
    let mut pods = BTreeSet::new();
    for ip in vips {
        let addr = SocketAddr::new(*ip, port);
        for _ in 0..count {
            pods.insert(
                lab.client_udp(addr)
                    .unwrap_or_else(|e| panic!("UDP exchange with {addr}: {e}")),
            );
        }
    }
    pods
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Whether anything on the client's L2 segment answers address resolution for `ip`
/// (`arping` for IPv4, `ndisc6` for IPv6, two tries each; raw sockets, so the client's
/// kernel neighbour table is not touched).
fn answers_on_segment(lab: &Lab, ip: IpAddr) -> bool {
    let dev = lab.plan().client.l2_if.clone();
    let ip_s = ip.to_string();
    let tool: Vec<&str> = if ip.is_ipv4() {
        vec!["arping", "-q", "-c", "2", "-w", "3", "-i", &dev, &ip_s]
    } else {
        vec!["ndisc6", "-q", "-r", "2", "-w", "500", &ip_s, &dev]
    };
    let status = Command::new("ip")
        .args(["netns", "exec", lab.client_ns()])
        .args(&tool)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool[0]));
    assert!(status.code().is_some(), "{} was killed ({status})", tool[0]);
    status.success()
}

/// IP sharing: same key, different protocols on one port share; a port clash does not.
fn ip_sharing(env: &Env, watcher: &DnatWatcher) {
    let (lab, api) = (&env.lab, &env.api);
    let key = json!({SHARE_KEY: "e2e-web"});
    api.insert(service(
        "e2e-share-tcp",
        "Cluster",
        &[("http", 80, "TCP")],
        key.clone(),
        json!({}),
    ))
    .expect("TCP service");
    api.insert(service(
        "e2e-share-udp",
        "Cluster",
        &[("udp", 80, "UDP")],
        key.clone(),
        json!({}),
    ))
    .expect("UDP service");
    let shared = allocated(api, "e2e-share-tcp");
    let udp = allocated(api, "e2e-share-udp");
    assert_eq!(
        udp, shared,
        "same key, TCP and UDP on port 80: one pair of VIPs"
    );
    for name in ["e2e-share-tcp", "e2e-share-udp"] {
        let c = wait_condition(api, name, "True");
        assert_eq!(c.1, "Allocated", "{name}: {c:?}");
    }
    routes_via(lab, &shared, &[1, 2, 3]);
    wait_dnat(watcher, &shared, 80, Proto::Tcp, 3);
    wait_dnat(watcher, &shared, 80, Proto::Udp, 3);
    let all = set(&["pod-1-1", "pod-2-1", "pod-3-1"]);
    assert_eq!(
        tcp_pods(lab, &shared, 80, 60),
        all,
        "TCP through the shared VIPs"
    );
    let udp_answers = udp_pods(lab, &shared, 80, 30);
    assert!(
        !udp_answers.is_empty() && udp_answers.is_subset(&all),
        "UDP through the shared VIPs: {udp_answers:?}"
    );

    // Same key but TCP 80 is taken: not shared (other VIPs) ...
    api.insert(service(
        "e2e-share-clash",
        "Cluster",
        &[("http", 80, "TCP")],
        key.clone(),
        json!({}),
    ))
    .expect("clashing service");
    let other = allocated(api, "e2e-share-clash");
    assert!(
        other.iter().all(|ip| !shared.contains(ip)),
        "a port clash must not share: {other:?} vs {shared:?}"
    );
    // ... and asking for the shared VIPs fails with a named reason.
    let wanted: Vec<String> = shared.iter().map(ToString::to_string).collect();
    let mut annotations = key;
    annotations["ferrolb.io/loadBalancerIPs"] = json!(wanted.join(","));
    api.insert(service(
        "e2e-share-forced",
        "Cluster",
        &[("http", 80, "TCP")],
        annotations,
        json!({}),
    ))
    .expect("forced service");
    let c = wait_condition(api, "e2e-share-forced", "False");
    assert_eq!(c.1, "SharingConflict", "{c:?}");
    assert!(c.2.contains("port"), "the message names the port: {c:?}");
    assert!(ingress(api, "e2e-share-forced").is_empty());
    assert_eq!(
        ingress(api, "e2e-share-tcp"),
        shared,
        "the sharers keep their VIPs"
    );
    println!(
        "IP sharing: e2e-share-tcp and e2e-share-udp on {shared:?}; e2e-share-clash on \
         {other:?}; e2e-share-forced: {} ({})",
        c.1, c.2
    );
    // The L2 segment has nothing to say about BGP VIPs.
    let node1 = &lab.plan().nodes[0];
    for control in [node1.l2.v4.map(IpAddr::V4), node1.l2.v6.map(IpAddr::V6)]
        .into_iter()
        .flatten()
    {
        assert!(
            answers_on_segment(lab, control),
            "node1's segment address {control} does not answer: the probe is broken"
        );
    }
    for vip in &shared {
        assert!(
            !answers_on_segment(lab, *vip),
            "something on the L2 segment answers address resolution for BGP VIP {vip}"
        );
        assert_eq!(
            lab.client_neighbor(*vip).expect("client neighbour table"),
            None,
            "the client has a neighbour entry for BGP VIP {vip} on its L2 segment"
        );
    }
}

/// Node loss with a measured client-seen outage.
fn node_loss(env: &Env, watcher: &DnatWatcher) {
    let (lab, api) = (&env.lab, &env.api);
    api.insert(service(
        "e2e-nodeloss",
        "Local",
        &[("udp", 80, "UDP"), ("http", 80, "TCP")],
        json!({}),
        json!({}),
    ))
    .expect("node-loss service");
    let vips = allocated(api, "e2e-nodeloss");
    routes_via(lab, &vips, &[1, 2, 3]);
    wait_dnat(watcher, &vips, 80, Proto::Udp, 1);
    let probes: Vec<Probe> = vips
        .iter()
        .map(|ip| {
            Probe::start(
                lab.client_ns(),
                SocketAddr::new(*ip, 80),
                16,
                Duration::from_millis(5),
            )
            .expect("probe")
        })
        .collect();
    lab::wait_until("every probe flow answered", WAIT, || {
        Ok(probes
            .iter()
            .all(|p| p.current_nodes().iter().all(Option::is_some)))
    })
    .expect("probe warm-up");
    std::thread::sleep(Duration::from_millis(200));
    // The node carrying flows of both families, node3 preferred.
    let node = [3u8, 2, 1]
        .into_iter()
        .find(|n| probes.iter().all(|p| p.current_nodes().contains(&Some(*n))))
        .expect("a node carrying flows of both families");
    let others: Vec<u8> = [1u8, 2, 3].into_iter().filter(|n| *n != node).collect();

    let t_fail = Instant::now();
    lab.node_fail(node).expect("fail node");
    routes_via(lab, &vips, &others);
    let detected = t_fail.elapsed();
    // Let the affected flows be answered through the other nodes.
    let recover_until = Instant::now() + OUTAGE_BOUND;
    while Instant::now() < recover_until {
        std::thread::sleep(Duration::from_millis(200));
        if probes.iter().all(|p| {
            probe::outages(&p.replies(), p.flows(), p.at(t_fail), p.elapsed(), node)
                .unrecovered
                .is_empty()
        }) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for (ip, p) in vips.iter().zip(probes) {
        let fail_at = p.at(t_fail);
        let flows = p.flows();
        let rec = p.stop().expect("stop probe");
        let rep = probe::outages(&rec.replies, flows, fail_at, rec.end, node);
        assert!(
            rep.unrecovered.is_empty(),
            "{ip}: flows {:?} through node{node} were not answered through another node",
            rep.unrecovered
        );
        let outage = rep.worst().expect("flows went through the failed node");
        println!(
            "node loss: node{node} failed silently; router dropped it from {ip} after {} ms; \
             client-seen outage {} ms over {} flows (others' largest gap {} ms)",
            detected.as_millis(),
            outage.as_millis(),
            rep.affected.len(),
            rep.collateral.unwrap_or_default().as_millis()
        );
        assert!(
            outage < OUTAGE_BOUND,
            "{ip}: outage {outage:?} (BFD should detect)"
        );
        assert!(
            rep.affected.iter().all(|f| f.recovered_via != node),
            "{rep:?}"
        );
    }
    // Traffic continues through the others: new connections reach only their pods.
    let survivors: BTreeSet<String> = others.iter().map(|n| format!("pod-{n}-1")).collect();
    assert_eq!(tcp_pods(lab, &vips, 80, 30), survivors);

    lab.node_restore(node).expect("restore node");
    routes_via(lab, &vips, &[1, 2, 3]);
    assert_eq!(
        tcp_pods(lab, &vips, 80, 60),
        set(&["pod-1-1", "pod-2-1", "pod-3-1"])
    );
}

fn in_net(ip: &IpAddr, v4: [u8; 4], v4_len: u32, v6: [u16; 8], v6_len: u32) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - v4_len).unwrap_or(0);
            u32::from(*a) & mask == u32::from_be_bytes(v4) & mask
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - v6_len).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(v6);
            u128::from(*a) & mask == u128::from(net) & mask
        }
    }
}

fn scoped_pool(v4: &str, v6: &str) -> serde_json::Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "e2e-scoped", "namespace": SYSTEM_NS, "labels": {"mode": "bgp"}},
        "spec": {
            "addresses": [v4, v6],
            "serviceAllocation": {
                "priority": 10,
                "serviceSelectors": [{"matchLabels": {"e2e-pool": "scoped"}}],
            },
        },
    })
}

/// Waits until the controller wrote `Valid=True` into pool `name`'s status.
fn wait_pool_valid(api: &ApiServer, name: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let pool = api.object("ferrolb.io/v1beta1", "IPAddressPool", Some(SYSTEM_NS), name);
        let valid = pool
            .as_ref()
            .and_then(|p| p["status"]["conditions"].as_array())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Valid" && c["status"] == "True")
            });
        if valid {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool {name} never got Valid=True: {pool:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pool selection by priority and selector, then a pool edit that re-homes the Service.
fn pool_change(env: &Env, watcher: &DnatWatcher) {
    let (lab, api) = (&env.lab, &env.api);
    api.insert(scoped_pool("203.0.113.0/28", "fd00:5300::/124"))
        .expect("scoped pool");
    // Watches of different kinds are not ordered: a Service seen before the new pool is
    // (rightly) allocated from the pools known then. Wait until the controller has taken
    // the pool in (it writes the pool's `Valid` condition), as a user would check with
    // `kubectl get ipaddresspool`.
    wait_pool_valid(api, "e2e-scoped");
    api.insert(service(
        "e2e-pool",
        "Cluster",
        &[("http", 80, "TCP")],
        json!({}),
        json!({"e2e-pool": "scoped"}),
    ))
    .expect("pool service");
    let first = allocated(api, "e2e-pool");
    assert!(
        first.iter().all(|ip| in_net(
            ip,
            [203, 0, 113, 0],
            28,
            [0xfd00, 0x5300, 0, 0, 0, 0, 0, 0],
            124
        )),
        "the selecting pool with priority 10 goes first: {first:?}"
    );
    let from_pool = || {
        api.object("v1", "Service", Some(NS), "e2e-pool")
            .and_then(|s| {
                s["metadata"]["annotations"][POOL_ANNOTATION]
                    .as_str()
                    .map(String::from)
            })
    };
    assert_eq!(from_pool().as_deref(), Some("e2e-scoped"));
    routes_via(lab, &first, &[1, 2, 3]);
    wait_dnat(watcher, &first, 80, Proto::Tcp, 3);
    assert_eq!(
        tcp_pods(lab, &first, 80, 30),
        set(&["pod-1-1", "pod-2-1", "pod-3-1"])
    );

    // The pool moves: the Service's addresses leave it and it is re-homed within it.
    api.insert(scoped_pool("203.0.113.16/28", "fd00:5300::100/124"))
        .expect("edit pool");
    let moved = allocated_where(api, "e2e-pool", |ips| {
        ips.iter().all(|ip| {
            in_net(
                ip,
                [203, 0, 113, 16],
                28,
                [0xfd00, 0x5300, 0, 0, 0, 0, 0, 0x100],
                124,
            )
        })
    });
    assert_eq!(from_pool().as_deref(), Some("e2e-scoped"));
    routes_via(lab, &moved, &[1, 2, 3]);
    routes_via(lab, &first, &[]);
    for ip in &first {
        assert!(
            lab.router_routes(&prefix(ip)).expect("read FIB").is_empty(),
            "the router still routes the old VIP {ip}"
        );
    }
    wait_dnat(watcher, &moved, 80, Proto::Tcp, 3);
    assert_eq!(
        tcp_pods(lab, &moved, 80, 60),
        set(&["pod-1-1", "pod-2-1", "pod-3-1"])
    );
    println!("pool change: e2e-pool re-homed from {first:?} to {moved:?}");

    // A Service the scoped pool does not select still comes from the example's pool.
    api.insert(service(
        "e2e-unscoped",
        "Cluster",
        &[("http", 80, "TCP")],
        json!({}),
        json!({}),
    ))
    .expect("unscoped service");
    allocated_where(api, "e2e-unscoped", |ips| {
        ips.iter().all(|ip| {
            in_net(
                ip,
                [198, 51, 100, 0],
                24,
                [0xfd00, 0x5100, 0, 0, 0, 0, 0, 0],
                64,
            )
        })
    });
}

#[test]
fn bgp_scenarios_with_ferrolb_controller_and_speakers() {
    lab::require_root().unwrap_or_else(|e| panic!("the suite builds network namespaces: {e}"));
    let speaker_bin = locate_binary(SPEAKER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let controller_bin = locate_binary(CONTROLLER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let env = Env::up();
    let guard = env.rt.enter();
    let [http] = slice_port();
    let both = [http, udp_port()];
    for name in [
        "e2e-share-tcp",
        "e2e-share-udp",
        "e2e-share-clash",
        "e2e-share-forced",
        "e2e-nodeloss",
        "e2e-pool",
        "e2e-unscoped",
    ] {
        env.rt
            .block_on(
                env.cluster
                    .create_endpoint_slices(env.lab.plan(), NS, name, &both),
            )
            .expect("endpoint slices");
    }
    let kubeconfig = env.lab.run_dir().join("kubeconfig");
    env.api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let watcher = DnatWatcher::spawn(env.client.clone(), env.lab.clone());
    let speakers = FerrolbSpeakers::start(&env.lab, &speaker_bin, env.api.addr(), &kubeconfig)
        .expect("speakers");
    let mut controller = speakers
        .start_controller(&env.lab, &controller_bin, &kubeconfig, 1)
        .expect("controller");

    let t = Instant::now();
    ip_sharing(&env, &watcher);
    println!("section IP sharing: {} ms", t.elapsed().as_millis());
    let t = Instant::now();
    node_loss(&env, &watcher);
    println!("section node loss: {} ms", t.elapsed().as_millis());
    let t = Instant::now();
    pool_change(&env, &watcher);
    println!("section pool change: {} ms", t.elapsed().as_millis());

    controller.check().expect("controller running");
    assert_eq!(controller.stop(Duration::from_secs(5)), "exit status: 0");
    drop(guard);
    let Env { lab, rt, api, .. } = env;
    suite_common::finish(lab, rt, api, watcher, speakers);
}
