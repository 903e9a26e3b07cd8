//! The network-namespace lab end to end: topology and reachability, BGP ECMP from GoBGP on
//! the nodes into FRR's and BIRD's FIB, silent node failure and restore, kube-proxy-style
//! DNAT from the client to pods on every node, teardown (also on panic and on a failed
//! build) and stale-run cleanup. Needs root; the tests run in parallel (unique run names).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{self, Families, FrrPeering, Lab, LabSpec, NodeAsns, Proto, RouterKind};

mod lab_common;
use lab_common::{assert_torn_down, root};

const BGP_WAIT: Duration = Duration::from_secs(30);

fn link_up(lab: &Lab, ns: &str, dev: &str) -> bool {
    let out = lab
        .exec(ns, &["ip", "-j", "link", "show", "dev", dev])
        .expect("ip link");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v[0]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "LOWER_UP"))
}

fn ping(lab: &Lab, ns: &str, to: IpAddr) {
    lab.exec(ns, &["ping", "-c", "1", "-W", "2", &to.to_string()])
        .unwrap_or_else(|e| panic!("ping {to} from {ns}: {e}"));
}

fn uplinks(lab: &Lab, v6: bool) -> Vec<IpAddr> {
    lab.nodes()
        .iter()
        .filter_map(|n| {
            if v6 {
                n.uplink.v6.map(IpAddr::V6)
            } else {
                n.uplink.v4.map(IpAddr::V4)
            }
        })
        .collect()
}

#[test]
fn lab_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Lab>();
    check::<lab::TeardownHandle>();
}

#[test]
fn frr_lab_reachability_ecmp_failover_and_teardown() {
    root();
    let spec = LabSpec {
        nodes: 2,
        pods_per_node: 1,
        router: RouterKind::Frr,
        frr_peering: FrrPeering::Static,
        node_asns: NodeAsns::Sequential { first: 65001 },
        hold_time_secs: 3,
        ..LabSpec::default()
    };
    let lab = Lab::up(spec).expect("lab up");
    let plan = lab.plan().clone();

    for ns in plan.namespaces() {
        assert!(
            Path::new("/var/run/netns").join(&ns).exists(),
            "namespace {ns} missing"
        );
    }
    for n in &plan.nodes {
        for dev in [&n.uplink_if, &n.l2_if, &"cbr0".to_string()] {
            assert!(link_up(&lab, &n.ns, dev), "{dev} in {} not up", n.ns);
        }
        assert!(
            link_up(&lab, lab.router_ns(), &n.router_if),
            "router side of node {}",
            n.index
        );
    }
    for n in &plan.nodes {
        for (r, node) in n.router_side.all().into_iter().zip(n.uplink.all()) {
            ping(&lab, &n.ns, r);
            ping(&lab, lab.router_ns(), node);
        }
        for to in n.pods.iter().flat_map(|p| p.addr.all()).chain(n.l2.all()) {
            ping(&lab, lab.client_ns(), to);
        }
    }
    // The client learnt each node's MAC on the L2 segment (ARP and NDP).
    for n in &plan.nodes {
        let mac = lab.link_mac(&n.ns, &n.l2_if).expect("mac");
        for ip in n.l2.all() {
            assert_eq!(
                lab.client_neighbor(ip).expect("neigh").as_deref(),
                Some(mac.as_str()),
                "{ip}"
            );
        }
    }
    // Pod to pod across nodes goes over the router's static pod-CIDR routes.
    for to in plan.nodes[1].pods[0].addr.all() {
        ping(&lab, &plan.nodes[0].pods[0].ns, to);
    }

    // BGP smoke test: both nodes announce the same /32 and /128; the router installs ECMP.
    let (v4, v6) = ("198.51.100.1/32", "fd00:5100::1/128");
    for n in 1..=2 {
        lab.start_gobgp(n).expect("gobgp");
        lab.gobgp_announce(n, v4).expect("announce v4");
        lab.gobgp_announce(n, v6).expect("announce v6");
    }
    assert_eq!(
        lab.wait_router_routes(v4, 2, BGP_WAIT).expect("v4 ECMP"),
        uplinks(&lab, false)
    );
    assert_eq!(
        lab.wait_router_routes(v6, 2, BGP_WAIT).expect("v6 ECMP"),
        uplinks(&lab, true)
    );
    assert_eq!(
        lab.established_count().expect("neighbors"),
        4,
        "{:?}",
        lab.bgp_neighbors()
    );
    let summary = lab.frr_json("show bgp summary").expect("summary json");
    assert_eq!(
        summary["ipv4Unicast"]["peers"].as_object().map(|p| p.len()),
        Some(2),
        "{summary}"
    );
    // bfdd runs with the profile; GoBGP has no BFD, so the sessions exist but stay down.
    let bfd = lab.bfd_peers().expect("BFD peers");
    let want: Vec<IpAddr> = uplinks(&lab, false)
        .into_iter()
        .chain(uplinks(&lab, true))
        .collect();
    assert_eq!(
        bfd.iter().map(|p| p.address).collect::<BTreeSet<_>>(),
        want.into_iter().collect(),
        "{bfd:?}"
    );

    // Silent failure of node 1 (its links go down, the router's port keeps carrier): the
    // 3 s hold timer removes its next hop and only node 2's remains.
    lab.node_fail(1).expect("fail");
    let left4 = lab
        .wait_router_routes(v4, 1, Duration::from_secs(15))
        .expect("v4 after failure");
    assert_eq!(left4, vec![uplinks(&lab, false)[1]]);
    let left6 = lab
        .wait_router_routes(v6, 1, Duration::from_secs(15))
        .expect("v6 after failure");
    assert_eq!(left6, vec![uplinks(&lab, true)[1]]);
    lab.node_restore(1).expect("restore");
    lab.wait_router_routes(v4, 2, BGP_WAIT).expect("v4 back");
    lab.wait_router_routes(v6, 2, BGP_WAIT).expect("v6 back");
    lab.gobgp_withdraw(2, v4).expect("withdraw");
    assert_eq!(
        lab.wait_router_routes(v4, 1, BGP_WAIT).expect("withdrawn"),
        vec![uplinks(&lab, false)[0]]
    );

    let run_dir = lab.run_dir().to_path_buf();
    let gobgp_pids: Vec<i32> = plan
        .namespaces()
        .iter()
        .flat_map(|ns| lab::ns_pids(ns))
        .collect();
    assert!(!gobgp_pids.is_empty(), "daemons run in the lab namespaces");
    let handle = lab.teardown_handle();
    lab.down().expect("down");
    assert!(handle.teardown().is_empty(), "a second teardown is a no-op");
    assert_torn_down(&plan.run, &run_dir);
    for pid in gobgp_pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "process {pid} still runs: {stat}"
        );
    }
}

#[test]
fn frr_bfd_detects_silent_node_failure_with_bird_speakers() {
    root();
    let spec = LabSpec {
        nodes: 2,
        pods_per_node: 0,
        frr_peering: FrrPeering::Static,
        node_asns: NodeAsns::Same(64513),
        // Far longer than the wait below: only BFD can remove the next hop in time.
        hold_time_secs: 60,
        ..LabSpec::default()
    };
    let lab = Lab::up(spec).expect("lab up");
    let (v4, v6) = ("198.51.100.3/32", "fd00:5100::3/128");
    for n in 1..=2 {
        lab.start_bird_speaker(n).expect("BIRD speaker");
        lab.bird_speaker_announce(n, v4).expect("announce v4");
        lab.bird_speaker_announce(n, v6).expect("announce v6");
    }
    // BIRD sends a link-local next hop too, which FRR prefers: compare by router interface.
    for p in [v4, v6] {
        lab.wait_router_route_nodes(p, &[1, 2], BGP_WAIT)
            .expect("ECMP");
    }
    lab::wait_until("4 BFD sessions up", BGP_WAIT, || {
        Ok(lab.bfd_peers()?.iter().filter(|p| p.up).count() == 4)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", lab.bfd_peers()));

    lab.node_fail(2).expect("fail");
    let bfd_wait = Duration::from_secs(10);
    for p in [v4, v6] {
        lab.wait_router_route_nodes(p, &[1], bfd_wait)
            .expect("next hop removed by BFD");
    }
    let node2 = uplinks(&lab, false)[1];
    assert!(
        lab.bfd_peers()
            .expect("bfd")
            .iter()
            .any(|p| p.address == node2 && !p.up)
    );

    lab.node_restore(2).expect("restore");
    lab.wait_router_route_nodes(v4, &[1, 2], BGP_WAIT)
        .expect("v4 back");
    lab.bird_speaker_withdraw(1, v4).expect("withdraw");
    lab.wait_router_route_nodes(v4, &[2], BGP_WAIT)
        .expect("withdrawn");
}

#[test]
fn frr_listen_range_accepts_dynamic_neighbours() {
    root();
    let spec = LabSpec {
        nodes: 2,
        pods_per_node: 0,
        node_asns: NodeAsns::Same(64513),
        hold_time_secs: 9,
        ..LabSpec::default()
    };
    assert_eq!(spec.frr_peering, FrrPeering::Listen);
    let lab = Lab::up(spec).expect("lab up");
    for n in 1..=2 {
        lab.start_gobgp(n).expect("gobgp");
        lab.gobgp_announce(n, "198.51.100.2/32").expect("announce");
    }
    assert_eq!(
        lab.wait_router_routes("198.51.100.2/32", 2, BGP_WAIT)
            .expect("ECMP"),
        uplinks(&lab, false)
    );
    let n = lab.bgp_neighbors().expect("neighbors");
    assert!(n.iter().filter(|x| x.established).count() >= 2, "{n:?}");
}

#[test]
fn bird_lab_ecmp_and_kube_proxy_dnat_to_pods_on_every_node() {
    root();
    let spec = LabSpec {
        nodes: 2,
        pods_per_node: 2,
        router: RouterKind::Bird,
        node_asns: NodeAsns::Same(64513),
        hold_time_secs: 3,
        ..LabSpec::default()
    };
    let lab = Lab::up(spec).expect("lab up");
    let (vip4, vip6): (IpAddr, IpAddr) = (
        "198.51.100.10".parse().expect("ip"),
        "fd00:5100::10".parse().expect("ip"),
    );
    for n in 1..=2 {
        lab.start_gobgp(n).expect("gobgp");
        lab.gobgp_announce(n, &format!("{vip4}/32"))
            .expect("announce v4");
        lab.gobgp_announce(n, &format!("{vip6}/128"))
            .expect("announce v6");
    }
    assert_eq!(
        lab.wait_router_routes(&format!("{vip4}/32"), 2, BGP_WAIT)
            .expect("v4"),
        uplinks(&lab, false)
    );
    assert_eq!(
        lab.wait_router_routes(&format!("{vip6}/128"), 2, BGP_WAIT)
            .expect("v6"),
        uplinks(&lab, true)
    );
    assert!(
        lab.birdc("show protocols")
            .expect("birdc")
            .contains("Established")
    );
    assert_eq!(lab.established_count().expect("neighbors"), 4);
    let bfd = lab.bfd_peers().expect("BIRD BFD sessions");
    assert_eq!(bfd.len(), 4, "one BFD session per BGP session: {bfd:?}");

    lab.serve_pods(8080).expect("pod servers");
    for n in 1..=2 {
        for (vip, v6) in [(vip4, false), (vip6, true)] {
            for proto in [Proto::Tcp, Proto::Udp] {
                lab.install_kube_proxy_nft(n, vip, 80, proto, &lab.pod_endpoints(8080, v6))
                    .expect("nft");
            }
        }
    }
    let all_pods: BTreeSet<String> = lab
        .nodes()
        .iter()
        .flat_map(|n| n.pods.iter().map(|p| p.name.clone()))
        .collect();
    for vip in [vip4, vip6] {
        let names = lab
            .client_tcp_many(SocketAddr::new(vip, 80), 100)
            .expect("100 TCP connections");
        let seen: BTreeSet<String> = names.into_iter().collect();
        assert!(seen.is_subset(&all_pods), "{seen:?}");
        let nodes_seen: BTreeSet<&str> = seen.iter().filter_map(|p| p.split('-').nth(1)).collect();
        assert_eq!(
            nodes_seen.len(),
            2,
            "pods on both nodes answer via {vip}: {seen:?}"
        );
        let udp = lab.client_udp(SocketAddr::new(vip, 80)).expect("UDP");
        assert!(all_pods.contains(&udp), "{udp}");
    }

    // Re-installing with new endpoints replaces the old ones.
    for n in 1..=2 {
        let node2: Vec<SocketAddr> = lab
            .node(2)
            .expect("node")
            .pods
            .iter()
            .filter_map(|p| p.addr.v4)
            .map(|a| SocketAddr::new(a.into(), 8080))
            .collect();
        lab.install_kube_proxy_nft(n, vip4, 80, Proto::Tcp, &node2)
            .expect("reinstall");
    }
    let names = lab
        .client_tcp_many(SocketAddr::new(vip4, 80), 20)
        .expect("TCP after reinstall");
    assert!(names.iter().all(|p| p.starts_with("pod-2-")), "{names:?}");
    lab.remove_kube_proxy_nft(1, vip4, 80, Proto::Udp)
        .expect("remove");
}

#[test]
fn single_family_lab_ipv6_only() {
    root();
    let spec = LabSpec {
        nodes: 1,
        pods_per_node: 1,
        families: Families {
            v4: false,
            v6: true,
        },
        frr_peering: FrrPeering::Static,
        bfd: None,
        ..LabSpec::default()
    };
    let lab = Lab::up(spec).expect("lab up");
    let pod = lab.nodes()[0].pods[0].addr;
    assert_eq!(pod.v4, None);
    ping(&lab, lab.client_ns(), IpAddr::V6(pod.v6.expect("v6 pod")));
    lab.start_gobgp(1).expect("gobgp");
    lab.gobgp_announce(1, "fd00:5100::4/128").expect("announce");
    assert_eq!(
        lab.wait_router_routes("fd00:5100::4/128", 1, BGP_WAIT)
            .expect("route"),
        uplinks(&lab, true)
    );
    assert_eq!(lab.established_count().expect("neighbors"), 1);
}

#[test]
fn failed_build_tears_down_and_names_the_step() {
    root();
    let spec = LabSpec {
        nodes: 1,
        pods_per_node: 1,
        frr_dir: "/nonexistent/frr".into(),
        ..LabSpec::default()
    };
    let err = Lab::up(spec).expect_err("no FRR there");
    let run = err
        .step
        .strip_prefix("start FRR zebra in ")
        .and_then(|ns| ns.strip_suffix("-r"))
        .unwrap_or_else(|| panic!("unexpected step: {err}"))
        .to_string();
    assert_eq!(err.detail, "/nonexistent/frr/zebra not found");
    assert_eq!(
        err.hint.as_deref(),
        Some("install it with: apt-get install -y frr")
    );
    assert_torn_down(&run, &std::env::temp_dir().join(&run));

    let bad = LabSpec {
        nodes: 0,
        ..LabSpec::default()
    };
    assert!(
        Lab::up(bad)
            .expect_err("invalid")
            .to_string()
            .starts_with("step 'validate lab spec': nodes = 0")
    );
}

#[test]
fn panic_while_lab_is_up_tears_it_down() {
    root();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let lab = Lab::up(LabSpec {
            nodes: 1,
            pods_per_node: 1,
            bfd: None,
            ..LabSpec::default()
        })
        .expect("lab up");
        tx.send((lab.run_name().to_string(), lab.run_dir().to_path_buf()))
            .expect("send");
        panic!("deliberate panic with the lab up");
    });
    assert!(result.is_err());
    let (run, dir) = rx.recv().expect("lab was built");
    assert_torn_down(&run, &dir);
}

#[test]
fn cleanup_stale_removes_leftovers_of_dead_runs_only() {
    root();
    // A pid that has exited: our reaped child's.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let run = format!("flb-{dead}-0");
    let ns = format!("{run}-x");
    let base = std::env::temp_dir().join(format!("flb-stale-test-{}", std::process::id()));
    std::fs::create_dir_all(base.join(&run)).expect("run dir");
    let step = "set up a stale namespace";
    ferrolb_e2e::lab::exec::run(step, &["ip", "netns", "add", &ns]).expect("netns");
    let mut sleeper = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "30"])
        .spawn()
        .expect("sleeper");
    let live_lab = Lab::up(LabSpec {
        nodes: 1,
        pods_per_node: 0,
        bfd: None,
        ..LabSpec::default()
    })
    .expect("lab up");
    lab::wait_until("sleeper in namespace", Duration::from_secs(5), || {
        Ok(!lab::ns_pids(&ns).is_empty())
    })
    .expect("sleeper");

    let report = lab::cleanup_stale_in("flb-", &base).expect("cleanup");
    let _ = sleeper.wait();
    std::fs::remove_dir_all(&base).ok();
    assert!(report.namespaces.contains(&ns), "{report:?}");
    assert!(report.killed.contains(&(sleeper.id() as i32)), "{report:?}");
    assert_eq!(report.dirs, vec![base.join(&run)]);
    assert!(!Path::new("/var/run/netns").join(&ns).exists());
    // The live lab (this process) is untouched.
    assert!(
        Path::new("/var/run/netns")
            .join(live_lab.router_ns())
            .exists()
    );
    live_lab.down().expect("down");
}
