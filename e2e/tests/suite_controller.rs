//! End-to-end suite, BGP mode with ferrolb's controller and speaker (root). One lab: an FRR
//! ToR peering with three nodes (`deploy/examples` configuration), one pod per node, the
//! in-memory API server, the lab's kube-proxy emulation, the `ferrolb-speaker` binary in
//! every node namespace and the `ferrolb-controller` binary in node1's namespace.
//!
//! - allocation: a dual-stack Service without status gets an IPv4 and an IPv6 VIP from the
//!   BGP pool, the router routes both via every node and real connections reach every pod;
//! - controller restart: with the controller stopped traffic keeps flowing; a new
//!   controller keeps the Service's IPs unchanged and gives a new Service different ones.
//!
//! Needs the binaries: `cargo build -p ferrolb-speaker -p ferrolb-controller`
//! (`cargo test --workspace` builds them).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::{
    CONTROLLER_BIN, FerrolbProcess, FerrolbSpeakers, SPEAKER_BIN, locate_binary,
};
use ferrolb_e2e::lab::{self, Lab};
use serde_json::json;

mod suite_common;
use suite_common::{Env, PORT, slice_port};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(20);

fn service(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "LoadBalancer",
            "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4", "IPv6"],
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    })
}

/// The Service's ingress IPs, as written into its status.
fn ingress(api: &ApiServer, name: &str) -> Vec<IpAddr> {
    api.object("v1", "Service", Some(NS), name)
        .and_then(|s| {
            s["status"]["loadBalancer"]["ingress"].as_array().map(|a| {
                a.iter()
                    .filter_map(|i| i["ip"].as_str()?.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Waits until the controller wrote one IPv4 and one IPv6 VIP for `name`.
fn allocated(api: &ApiServer, name: &str) -> Vec<IpAddr> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ips = ingress(api, name);
        if ips.len() == 2 && ips.iter().any(IpAddr::is_ipv4) && ips.iter().any(IpAddr::is_ipv6) {
            return ips;
        }
        assert!(
            Instant::now() < deadline,
            "Service {name} not allocated an IPv4 and an IPv6 VIP: {ips:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `ip` is in `bgp-pool` of `deploy/examples`: 198.51.100.0/24 or fd00:5100::/64.
fn in_bgp_pool(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.octets()[..3] == [198, 51, 100],
        IpAddr::V6(a) => a.segments()[..4] == [0xfd00, 0x5100, 0, 0],
    }
}

fn prefix(ip: &IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
}

fn answering_pods(lab: &Lab, vips: &[IpAddr], count: usize) -> BTreeSet<String> {
    let mut pods = BTreeSet::new();
    for ip in vips {
        let addr = SocketAddr::new(*ip, 80);
        let names = lab
            .client_tcp_many(addr, count)
            .unwrap_or_else(|e| panic!("connections to {addr}: {e}"));
        assert_eq!(names.len(), count, "{addr}: {names:?}");
        pods.extend(names);
    }
    pods
}

fn wait_dnat(watcher: &DnatWatcher, vips: &[IpAddr]) {
    let deadline = Instant::now() + WAIT;
    while !vips.iter().all(|v| {
        let rules = watcher.applied();
        !rules.is_empty()
            && rules
                .values()
                .all(|r| r.iter().any(|s| s.vip == *v && s.endpoints.len() == 3))
    }) {
        assert!(Instant::now() < deadline, "DNAT for {vips:?} not installed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the controller in node1's namespace, logging to `log`.
fn start_controller(
    speakers: &FerrolbSpeakers,
    lab: &Lab,
    bin: &Path,
    kubeconfig: &Path,
    log: &str,
) -> FerrolbProcess {
    speakers
        .start_controller_logged(lab, bin, kubeconfig, 1, &lab.run_dir().join(log))
        .expect("start the controller")
}

#[test]
fn controller_allocates_and_restarts_without_changing_ips() {
    lab::require_root().unwrap_or_else(|e| panic!("the suite builds network namespaces: {e}"));
    let speaker_bin = locate_binary(SPEAKER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let controller_bin = locate_binary(CONTROLLER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let Env {
        lab,
        rt,
        api,
        client,
        cluster,
    } = Env::up();
    let guard = rt.enter();
    let slice_port = slice_port();
    for name in ["e2e-first", "e2e-second"] {
        rt.block_on(cluster.create_endpoint_slices(lab.plan(), NS, name, &slice_port))
            .expect("endpoint slices");
    }
    let kubeconfig = lab.run_dir().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let watcher = DnatWatcher::spawn(client.clone(), lab.clone());
    let speakers =
        FerrolbSpeakers::start(&lab, &speaker_bin, api.addr(), &kubeconfig).expect("speakers");
    let mut controller = start_controller(
        &speakers,
        &lab,
        &controller_bin,
        &kubeconfig,
        "controller-1.log",
    );
    let all_pods: BTreeSet<String> = ["pod-1-1", "pod-2-1", "pod-3-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // Allocation: both families from the BGP pool, announced by every node, served by every pod.
    api.insert(service("e2e-first")).expect("service");
    let first = allocated(&api, "e2e-first");
    assert!(
        first.iter().all(in_bgp_pool),
        "{first:?} outside the BGP pool"
    );
    for ip in &first {
        lab.wait_router_route_nodes(&prefix(ip), &[1, 2, 3], WAIT)
            .expect("VIP via every node");
    }
    wait_dnat(&watcher, &first);
    assert_eq!(answering_pods(&lab, &first, 60), all_pods);

    // Controller restart: traffic does not depend on it; the new one keeps the IPs.
    let exit = controller.stop(Duration::from_secs(5));
    assert_eq!(exit, "exit status: 0");
    assert!(!answering_pods(&lab, &first, 10).is_empty());
    let mut controller = start_controller(
        &speakers,
        &lab,
        &controller_bin,
        &kubeconfig,
        "controller-2.log",
    );
    api.insert(service("e2e-second")).expect("second service");
    let second = allocated(&api, "e2e-second");
    let stable = Instant::now();
    while stable.elapsed() < Duration::from_secs(1) {
        assert_eq!(ingress(&api, "e2e-first"), first, "restart changed the IPs");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        second.iter().all(|ip| !first.contains(ip)),
        "the restarted controller reused {first:?} for {second:?}"
    );
    for ip in &second {
        lab.wait_router_route_nodes(&prefix(ip), &[1, 2, 3], WAIT)
            .expect("second VIP via every node");
    }
    wait_dnat(&watcher, &second);
    assert_eq!(answering_pods(&lab, &second, 60), all_pods);
    assert_eq!(ingress(&api, "e2e-first"), first);

    controller.check().expect("controller running");
    assert_eq!(controller.stop(Duration::from_secs(5)), "exit status: 0");
    drop(guard);
    suite_common::finish(lab, rt, api, watcher, speakers);
}
