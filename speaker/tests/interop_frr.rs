//! The session manager against a real FRR router (zebra + bgpd + bfdd) in
//! network namespaces: sessions, ECMP in the router's kernel FIB, attributes,
//! withdrawal, TCP-MD5, BFD-driven failover and hold-timer expiry.
//! Needs root (fails with a clear message otherwise).

mod common;

use std::time::{Duration, Instant};

use common::{
    FrrNeighbor, Lab, MD5_PASSWORD, ROUTER_AS, SpeakerNode, VIP4, VIP6, bfd_peers, bfdd_conf,
    bgpd_conf, community, fib_nexthops, md5_peers, route_set, router_peers, summary_established,
    wait_for,
};
use ferrolb_speaker::bgp::fsm::State;
use ferrolb_speaker::bgp::update::{RouteAttrs, RouteSet};
use ferrolb_speaker::net::DownCause;

#[test]
fn ecmp_attributes_and_withdraw_v4_v6() {
    let mut lab = Lab::new("ecmp", 3);
    let nb = |i: usize, asn: u32| {
        [
            FrrNeighbor {
                addr: Lab::node_v4(i),
                remote_as: asn,
                ..Default::default()
            },
            FrrNeighbor {
                addr: Lab::node_v6(i),
                remote_as: asn,
                ..Default::default()
            },
        ]
    };
    let mut neighbors = Vec::new();
    neighbors.extend(nb(1, 64601));
    neighbors.extend(nb(2, 64602));
    // Node 3 is internal (iBGP) to check LOCAL_PREF.
    neighbors.push(FrrNeighbor {
        addr: Lab::node_v4(3),
        remote_as: ROUTER_AS,
        ..Default::default()
    });
    lab.start_frr(
        &bgpd_conf(ROUTER_AS, "10.0.0.1", &neighbors),
        &bfdd_conf(300),
    );

    let n1 = SpeakerNode::start(lab.node(1), router_peers(1, 64601, true));
    let n2 = SpeakerNode::start(lab.node(2), router_peers(2, 64602, true));
    let n3 = SpeakerNode::start(lab.node(3), router_peers(3, ROUTER_AS, false));

    let frr = lab.frr();
    for addr in [
        Lab::node_v4(1),
        Lab::node_v6(1),
        Lab::node_v4(2),
        Lab::node_v6(2),
        Lab::node_v4(3),
    ] {
        wait_for(
            Duration::from_secs(20),
            &format!("{addr} Established in FRR"),
            || summary_established(frr, &addr).then_some(()),
        );
    }
    assert_eq!(n1.state("r4"), Some(State::Established));
    assert_eq!(n1.state("r6"), Some(State::Established));

    let attrs = |asn: u16| RouteAttrs {
        communities: [community(asn, 100)].into_iter().collect(),
        large_communities: [(u32::from(asn), 1, 2)].into_iter().collect(),
        ..Default::default()
    };
    n1.set_routes(route_set(&[(VIP4, attrs(64601)), (VIP6, attrs(64601))]));
    n2.set_routes(route_set(&[(VIP4, attrs(64602)), (VIP6, attrs(64602))]));
    n3.set_routes(route_set(&[(
        "198.51.100.20/32",
        RouteAttrs {
            local_pref: Some(250),
            ..Default::default()
        },
    )]));

    let vip4 = VIP4.trim_end_matches("/32");
    let vip6 = VIP6.trim_end_matches("/128");
    let want4 = vec![Lab::node_v4(1), Lab::node_v4(2)];
    let want6 = vec![Lab::node_v6(1), Lab::node_v6(2)];
    wait_for(
        Duration::from_secs(10),
        "IPv4 ECMP route in the router FIB",
        || (fib_nexthops(&lab.router, vip4) == want4).then_some(()),
    );
    wait_for(
        Duration::from_secs(10),
        "IPv6 ECMP route in the router FIB",
        || (fib_nexthops(&lab.router, vip6) == want6).then_some(()),
    );

    // Attributes as configured.
    let v = frr.json(&format!("show bgp ipv4 unicast {VIP4} json"));
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 2, "{v}");
    let mut comms: Vec<&str> = paths
        .iter()
        .map(|p| p["community"]["string"].as_str().expect("community"))
        .collect();
    comms.sort();
    assert_eq!(comms, ["64601:100", "64602:100"]);
    let mut large: Vec<&str> = paths
        .iter()
        .map(|p| {
            p["largeCommunity"]["string"]
                .as_str()
                .expect("large community")
        })
        .collect();
    large.sort();
    assert_eq!(large, ["64601:1:2", "64602:1:2"]);
    let v6 = frr.json(&format!("show bgp ipv6 unicast {VIP6} json"));
    assert_eq!(v6["paths"].as_array().map(Vec::len), Some(2), "{v6}");
    let lp = wait_for(
        Duration::from_secs(10),
        "iBGP route with LOCAL_PREF",
        || {
            let v = frr.json("show bgp ipv4 unicast 198.51.100.20/32 json");
            v["paths"][0]["locPrf"].as_u64()
        },
    );
    assert_eq!(lp, 250);
    let st = n1.mgr.peer_status("r4").expect("status");
    assert!(st.end_of_rib_sent && st.prefixes_advertised == 1, "{st:?}");

    // Withdraw from node 1: only node 2 remains; then from node 2: gone.
    n1.set_routes(RouteSet::new());
    wait_for(Duration::from_secs(10), "node 1 withdrawn (v4)", || {
        (fib_nexthops(&lab.router, vip4) == [Lab::node_v4(2)]).then_some(())
    });
    wait_for(Duration::from_secs(10), "node 1 withdrawn (v6)", || {
        (fib_nexthops(&lab.router, vip6) == [Lab::node_v6(2)]).then_some(())
    });
    n2.set_routes(RouteSet::new());
    wait_for(Duration::from_secs(10), "route removed", || {
        (fib_nexthops(&lab.router, vip4).is_empty() && fib_nexthops(&lab.router, vip6).is_empty())
            .then_some(())
    });
    assert_eq!(n1.established_count("r4"), Some(1));
}

#[test]
fn md5_right_password_up_wrong_password_not() {
    let mut lab = Lab::new("md5", 2);
    let neighbors = [1, 2].map(|i| FrrNeighbor {
        addr: Lab::node_v4(i),
        remote_as: 64600 + i as u32,
        password: Some(MD5_PASSWORD.into()),
        ..Default::default()
    });
    lab.start_frr(
        &bgpd_conf(ROUTER_AS, "10.0.0.1", &neighbors),
        &bfdd_conf(300),
    );
    let n1 = SpeakerNode::start(lab.node(1), md5_peers(1, MD5_PASSWORD));
    let n2 = SpeakerNode::start(lab.node(2), md5_peers(2, "wrong-pw"));
    let frr = lab.frr();
    wait_for(Duration::from_secs(20), "MD5 session Established", || {
        summary_established(frr, &Lab::node_v4(1)).then_some(())
    });
    assert_eq!(n1.state("r4"), Some(State::Established));
    // Give the wrong-password peer several connect attempts in both directions.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!summary_established(frr, &Lab::node_v4(2)));
    let st = n2.mgr.peer_status("r4").expect("status");
    assert_eq!(st.established_count, 0, "{st:?}");
    assert_ne!(st.state, State::Established);
}

#[test]
fn bfd_silent_node_loss_removes_nexthop_fast() {
    let mut lab = Lab::new("bfd", 2);
    let mut neighbors = Vec::new();
    for i in [1, 2] {
        for addr in [Lab::node_v4(i), Lab::node_v6(i)] {
            neighbors.push(FrrNeighbor {
                addr,
                remote_as: 64600 + i as u32,
                bfd: true,
                no_gtsm: true,
                ..Default::default()
            });
        }
    }
    lab.start_frr(
        &bgpd_conf(ROUTER_AS, "10.0.0.1", &neighbors),
        &bfdd_conf(100),
    );
    let mk = |i: usize| {
        let mut v = bfd_peers(i);
        for p in &mut v {
            p.gtsm = false;
        }
        v
    };
    let n1 = SpeakerNode::start(lab.node(1), mk(1));
    let n2 = SpeakerNode::start(lab.node(2), mk(2));
    let both = route_set(&[(VIP4, RouteAttrs::default()), (VIP6, RouteAttrs::default())]);
    n1.set_routes(both.clone());
    n2.set_routes(both);
    let frr = lab.frr();
    let vip4 = VIP4.trim_end_matches("/32");
    let vip6 = VIP6.trim_end_matches("/128");
    wait_for(Duration::from_secs(20), "ECMP routes", || {
        (fib_nexthops(&lab.router, vip4) == [Lab::node_v4(1), Lab::node_v4(2)]
            && fib_nexthops(&lab.router, vip6) == [Lab::node_v6(1), Lab::node_v6(2)])
        .then_some(())
    });
    for addr in [1, 2]
        .into_iter()
        .flat_map(|i| [Lab::node_v4(i), Lab::node_v6(i)])
    {
        let t = Instant::now();
        while frr.bfd_status(&addr).as_deref() != Some("up") {
            if t.elapsed() > Duration::from_secs(15) {
                panic!(
                    "BFD not up in FRR for {addr}: {}\nnode 1: {:?}",
                    frr.json("show bfd peers json"),
                    n1.mgr.status().borrow().clone()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for id in ["r4", "r6"] {
        assert_eq!(
            n1.mgr.peer_status(id).and_then(|s| s.bfd),
            Some(ferrolb_speaker::bfd::packet::SessionState::Up),
            "{id}"
        );
    }

    let t0 = Instant::now();
    lab.node_link_down(1);
    let (mut t4, mut t6) = (None, None);
    wait_for(Duration::from_secs(5), "node 1 nexthops removed", || {
        if t4.is_none() && fib_nexthops(&lab.router, vip4) == [Lab::node_v4(2)] {
            t4 = Some(t0.elapsed());
        }
        if t6.is_none() && fib_nexthops(&lab.router, vip6) == [Lab::node_v6(2)] {
            t6 = Some(t0.elapsed());
        }
        t4.zip(t6)
    });
    let (t4, t6) = (t4.expect("v4"), t6.expect("v6"));
    println!(
        "silent node loss with BFD 100 ms x 3: nexthop removed after {t4:?} (IPv4), {t6:?} (IPv6)"
    );
    assert!(t4 < Duration::from_millis(1500), "IPv4 took {t4:?}");
    assert!(t6 < Duration::from_millis(1500), "IPv6 took {t6:?}");
    // Our side detected it too and tore the BGP sessions down.
    for id in ["r4", "r6"] {
        wait_for(Duration::from_secs(5), "node 1 BGP down by BFD", || {
            let s = n1.mgr.peer_status(id)?;
            (s.last_down == Some(DownCause::BfdDown)).then_some(())
        });
    }
    assert_eq!(n2.state("r4"), Some(State::Established));
    assert_eq!(n2.state("r6"), Some(State::Established));
}

#[test]
fn hold_timer_expiry_without_bfd_removes_route() {
    let mut lab = Lab::new("hold", 1);
    let neighbors = [FrrNeighbor {
        addr: Lab::node_v4(1),
        remote_as: 64601,
        ..Default::default()
    }];
    lab.start_frr(
        &bgpd_conf(ROUTER_AS, "10.0.0.1", &neighbors),
        &bfdd_conf(300),
    );
    let mut p = router_peers(1, 64601, false);
    p[0].hold_time = 3;
    let n1 = SpeakerNode::start(lab.node(1), p);
    n1.set_routes(route_set(&[(VIP4, RouteAttrs::default())]));
    let vip4 = VIP4.trim_end_matches("/32");
    wait_for(Duration::from_secs(20), "route installed", || {
        (fib_nexthops(&lab.router, vip4) == [Lab::node_v4(1)]).then_some(())
    });
    assert_eq!(n1.mgr.peer_status("r4").and_then(|s| s.hold_time), Some(3));
    let t0 = Instant::now();
    lab.node_link_down(1);
    wait_for(
        Duration::from_secs(10),
        "route removed by the hold timer",
        || fib_nexthops(&lab.router, vip4).is_empty().then_some(()),
    );
    let took = t0.elapsed();
    println!("silent node loss, hold time 3 s: route removed after {took:?}");
    // Keepalives every second, hold 3 s: between 2 and 3 s plus scheduling.
    assert!(
        took >= Duration::from_millis(1500),
        "removed too early: {took:?}"
    );
    wait_for(
        Duration::from_secs(10),
        "our hold timer expired too",
        || {
            let s = n1.mgr.peer_status("r4")?;
            (s.last_down
                == Some(DownCause::Fsm(
                    ferrolb_speaker::bgp::fsm::DownReason::HoldTimerExpired,
                )))
            .then_some(())
        },
    );
}
