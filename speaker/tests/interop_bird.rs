//! The session manager against a real BIRD 2 router in network namespaces:
//! two nodes announce the same VIP; sessions (IPv4 and IPv6), ECMP in the
//! router's kernel FIB through BIRD's kernel protocol (`merge paths on`),
//! communities and large communities, withdrawal, iBGP LOCAL_PREF and empty
//! AS_PATH, TCP-MD5 and BFD. Needs root (fails with a clear message
//! otherwise).

mod common;

use std::time::{Duration, Instant};

use common::bird::{Bird, BirdNeighbor, BirdPath, bird_conf, parse_routes};
use common::{
    Lab, MD5_PASSWORD, ROUTER_AS, SpeakerNode, VIP4, VIP6, assert_md5_refused, bfd_peers,
    community, fib_nexthops, md5_peers, route_set, router_peers, wait_for, wait_ours_established,
};
use ferrolb_speaker::bfd::packet::SessionState as BfdState;
use ferrolb_speaker::bgp::update::{ExtCommunity, RouteAttrs, RouteSet};
use ferrolb_speaker::net::DownCause;

const WAIT: Duration = Duration::from_secs(30);

/// BIRD neighbours for node `i` (IPv4, and IPv6 if `v6`), named `n<i>v4/6`.
fn neighbors(i: usize, asn: u32, v6: bool) -> Vec<BirdNeighbor> {
    let mut v = vec![BirdNeighbor {
        name: format!("n{i}v4"),
        addr: Lab::node_v4(i),
        asn,
        gtsm: asn != ROUTER_AS,
        ..Default::default()
    }];
    if v6 {
        v.push(BirdNeighbor {
            name: format!("n{i}v6"),
            addr: Lab::node_v6(i),
            asn,
            gtsm: asn != ROUTER_AS,
            ..Default::default()
        });
    }
    v
}

fn wait_established(bird: &Bird, names: &[&str]) {
    for name in names {
        let t = Instant::now();
        while !bird.established(name) {
            assert!(
                t.elapsed() < WAIT,
                "{name} not Established in BIRD after {WAIT:?}:\n{}\nlog:\n{}",
                bird.protocol_details(name),
                bird.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn host(prefix: &str) -> &str {
    prefix.split('/').next().expect("prefix")
}

fn wait_paths(bird: &Bird, prefix: &str, n: usize) -> Vec<BirdPath> {
    wait_for(WAIT, &format!("{n} paths of {prefix} in BIRD"), || {
        let r = bird.route(prefix);
        (r.len() == n).then_some(r)
    })
}

#[test]
fn route_output_parses_per_path() {
    let text = "BIRD 2.0.12 ready.\nTable master4:\n\
198.51.100.10/32     unicast [n1v4 04:40:01.123] * (100) [AS64601i]\n\
\tvia 10.0.0.11 on eth0\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 64601\n\
\tBGP.next_hop: 10.0.0.11\n\tBGP.community: (64601,100)\n\tBGP.large_community: (64601, 1, 2)\n\
                     unicast [n2v4 04:40:01.456] (100) [AS64602i]\n\
\tvia 10.0.0.12 on eth0\n\tBGP.as_path: \n\tBGP.local_pref: 250\n";
    let r = parse_routes(text);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].protocol, "n1v4");
    assert_eq!(r[0].via.as_deref(), Some("10.0.0.11"));
    assert_eq!(r[0].as_path, "64601");
    assert_eq!(r[0].community, "(64601,100)");
    assert_eq!(r[0].large_community, "(64601, 1, 2)");
    assert_eq!(r[1].protocol, "n2v4");
    assert_eq!(r[1].as_path, "");
    assert_eq!(r[1].local_pref, Some(250));
    assert!(parse_routes("BIRD 2.0.12 ready.\nNetwork not found\n").is_empty());
}

#[test]
fn ebgp_ecmp_communities_and_withdraw_v4_v6() {
    let lab = Lab::new("bird", 2);
    let mut nb = neighbors(1, 64601, true);
    nb.extend(neighbors(2, 64602, true));
    let bird = Bird::start(&lab.router, &bird_conf(ROUTER_AS, "10.0.0.1", None, &nb));
    let n1 = SpeakerNode::start(lab.node(1), router_peers(1, 64601, true));
    let n2 = SpeakerNode::start(lab.node(2), router_peers(2, 64602, true));
    wait_established(&bird, &["n1v4", "n1v6", "n2v4", "n2v6"]);
    wait_ours_established(&[(&n1, "r4"), (&n1, "r6"), (&n2, "r4"), (&n2, "r6")], WAIT);

    let attrs = |asn: u16| RouteAttrs {
        communities: [community(asn, 100), community(65535, 65281)]
            .into_iter()
            .collect(),
        large_communities: [(u32::from(asn), 1, 2)].into_iter().collect(),
        ext_communities: [ExtCommunity::link_bandwidth(
            u32::from(asn),
            125_000_000,
            true,
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    n1.set_routes(route_set(&[(VIP4, attrs(64601)), (VIP6, attrs(64601))]));
    n2.set_routes(route_set(&[(VIP4, attrs(64602)), (VIP6, attrs(64602))]));

    let want4 = vec![Lab::node_v4(1), Lab::node_v4(2)];
    let want6 = vec![Lab::node_v6(1), Lab::node_v6(2)];
    let t = Instant::now();
    while fib_nexthops(&lab.router, host(VIP4)) != want4
        || fib_nexthops(&lab.router, host(VIP6)) != want6
    {
        assert!(
            t.elapsed() < WAIT,
            "no ECMP routes in the router FIB: v4 {:?} v6 {:?}\n{}\n{}\n{}",
            fib_nexthops(&lab.router, host(VIP4)),
            fib_nexthops(&lab.router, host(VIP6)),
            lab.router.exec(&["ip", "-6", "route"]),
            bird.birdc(&format!("show route {VIP4} all"))
                .unwrap_or_default(),
            bird.birdc(&format!("show route {VIP6} all"))
                .unwrap_or_default(),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let route4 = lab.router.exec(&["ip", "route", "show", host(VIP4)]);
    assert!(route4.contains("proto bird"), "{route4}");

    // Attributes as configured, one path per node and family. BIRD prints
    // well-known communities by value, e.g. NO_EXPORT as (65535,65281).
    for (prefix, proto) in [(VIP4, "v4"), (VIP6, "v6")] {
        let paths = wait_paths(&bird, prefix, 2);
        println!("BIRD paths of {prefix}: {paths:?}");
        for (i, asn) in [(1, 64601u32), (2, 64602)] {
            let p = &paths[i - 1];
            assert_eq!(p.protocol, format!("n{i}{proto}"), "{paths:?}");
            assert_eq!(p.as_path, asn.to_string(), "{p:?}");
            assert_eq!(
                p.community,
                format!("({asn},100) (65535,65281)"),
                "{prefix}: {p:?}"
            );
            assert_eq!(p.large_community, format!("({asn}, 1, 2)"), "{p:?}");
            // Link bandwidth (type 0x00, subtype 0x04) is unknown to BIRD
            // 2.0: printed as raw AS and float bits (125 MB/s).
            assert_eq!(
                p.ext_community,
                format!("(unknown 0x4, {asn}, {})", 125_000_000f32.to_bits()),
                "{p:?}"
            );
            let want_via = if proto == "v4" {
                Lab::node_v4(i)
            } else {
                Lab::node_v6(i)
            };
            assert_eq!(p.via.as_deref(), Some(want_via.as_str()), "{p:?}");
        }
    }
    for n in [&n1, &n2] {
        let st = n.mgr.peer_status("r4").expect("status");
        assert!(st.end_of_rib_sent && st.prefixes_advertised == 1, "{st:?}");
        let st = n.mgr.peer_status("r6").expect("status");
        assert!(st.end_of_rib_sent && st.prefixes_advertised == 1, "{st:?}");
    }

    // Withdraw on node 1 (Service gone there): one nexthop left.
    n1.set_routes(RouteSet::new());
    wait_for(WAIT, "node 1 withdrawn from the FIB", || {
        (fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(2)]
            && fib_nexthops(&lab.router, host(VIP6)) == [Lab::node_v6(2)])
        .then_some(())
    });
    assert_eq!(bird.route(VIP4).len(), 1);
    assert_eq!(bird.route(VIP6).len(), 1);
    // Then on node 2: the route is gone from BIRD and the kernel.
    n2.set_routes(RouteSet::new());
    wait_for(WAIT, "VIP gone from the FIB", || {
        (fib_nexthops(&lab.router, host(VIP4)).is_empty()
            && fib_nexthops(&lab.router, host(VIP6)).is_empty())
        .then_some(())
    });
    assert!(bird.route(VIP4).is_empty() && bird.route(VIP6).is_empty());
    // Withdrawing kept the sessions up.
    for name in ["n1v4", "n1v6", "n2v4", "n2v6"] {
        assert!(bird.established(name), "{name}");
    }
    assert_eq!(n1.established_count("r4"), Some(1));
}

#[test]
fn ibgp_local_pref_and_empty_as_path() {
    let lab = Lab::new("birdi", 2);
    let mut nb = neighbors(1, ROUTER_AS, true);
    nb.extend(neighbors(2, ROUTER_AS, true));
    let bird = Bird::start(&lab.router, &bird_conf(ROUTER_AS, "10.0.0.1", None, &nb));
    let n1 = SpeakerNode::start(lab.node(1), router_peers(1, ROUTER_AS, true));
    let n2 = SpeakerNode::start(lab.node(2), router_peers(2, ROUTER_AS, true));
    wait_established(&bird, &["n1v4", "n1v6", "n2v4", "n2v6"]);
    let attrs = RouteAttrs {
        local_pref: Some(250),
        communities: [community(64500, 7)].into_iter().collect(),
        ..Default::default()
    };
    for n in [&n1, &n2] {
        n.set_routes(route_set(&[(VIP4, attrs.clone()), (VIP6, attrs.clone())]));
    }
    for prefix in [VIP4, VIP6] {
        let paths = wait_paths(&bird, prefix, 2);
        for p in &paths {
            assert_eq!(p.local_pref, Some(250), "{prefix}: {p:?}");
            assert_eq!(p.as_path, "", "{prefix}: {p:?}");
            assert_eq!(p.community, "(64500,7)", "{prefix}: {p:?}");
        }
    }
    // Internal paths with equal attributes are merged too.
    wait_for(WAIT, "iBGP ECMP in the FIB", || {
        (fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(1), Lab::node_v4(2)]
            && fib_nexthops(&lab.router, host(VIP6)) == [Lab::node_v6(1), Lab::node_v6(2)])
        .then_some(())
    });
    // A different LOCAL_PREF on node 2 wins alone.
    n2.set_routes(route_set(&[(
        VIP4,
        RouteAttrs {
            local_pref: Some(300),
            ..Default::default()
        },
    )]));
    wait_for(WAIT, "higher LOCAL_PREF wins", || {
        (fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(2)]).then_some(())
    });
    let paths = bird.route(VIP4);
    let lps: Vec<Option<u32>> = paths.iter().map(|p| p.local_pref).collect();
    assert_eq!(lps, [Some(250), Some(300)], "{paths:?}");
    assert_eq!(
        n1.mgr.peer_status("r4").and_then(|s| s.peer_as),
        Some(ROUTER_AS)
    );
}

#[test]
fn md5_right_password_up_wrong_password_not() {
    let lab = Lab::new("birdmd5", 2);
    let mut nb = neighbors(1, 64601, false);
    nb.extend(neighbors(2, 64602, false));
    for n in &mut nb {
        n.password = Some(MD5_PASSWORD.into());
    }
    let bird = Bird::start(&lab.router, &bird_conf(ROUTER_AS, "10.0.0.1", None, &nb));
    let n1 = SpeakerNode::start(lab.node(1), md5_peers(1, MD5_PASSWORD));
    let n2 = SpeakerNode::start(lab.node(2), md5_peers(2, "wrong-pw"));
    wait_established(&bird, &["n1v4"]);
    wait_for(WAIT, "our MD5 session Established", || {
        n1.established("r4").then_some(())
    });
    n1.set_routes(route_set(&[(VIP4, RouteAttrs::default())]));
    n2.set_routes(route_set(&[(VIP4, RouteAttrs::default())]));
    wait_for(WAIT, "route from the MD5 session", || {
        (fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(1)]).then_some(())
    });
    // Several connect attempts in both directions while the good session is known to
    // work.
    let st = assert_md5_refused(&n2, || bird.established("n2v4"));
    let info = bird.protocol_info("n2v4").unwrap_or_default();
    assert_ne!(info, "Established");
    println!(
        "wrong MD5 password: BIRD shows {info:?}; our status: state {:?}, last error {:?}",
        st.state, st.last_error
    );
    assert_eq!(fib_nexthops(&lab.router, host(VIP4)), [Lab::node_v4(1)]);
}

#[test]
fn bfd_up_and_silent_node_loss() {
    let lab = Lab::new("birdbfd", 2);
    let mut nb = neighbors(1, 64601, true);
    nb.extend(neighbors(2, 64602, true));
    for n in &mut nb {
        n.bfd = true;
    }
    let bird = Bird::start(
        &lab.router,
        &bird_conf(ROUTER_AS, "10.0.0.1", Some(100), &nb),
    );
    let n1 = SpeakerNode::start(lab.node(1), bfd_peers(1));
    let n2 = SpeakerNode::start(lab.node(2), bfd_peers(2));
    wait_established(&bird, &["n1v4", "n1v6", "n2v4", "n2v6"]);
    let both = route_set(&[(VIP4, RouteAttrs::default()), (VIP6, RouteAttrs::default())]);
    n1.set_routes(both.clone());
    n2.set_routes(both);
    for addr in [1, 2]
        .into_iter()
        .flat_map(|i| [Lab::node_v4(i), Lab::node_v6(i)])
    {
        let t = Instant::now();
        while bird.bfd_state(&addr).as_deref() != Some("Up") {
            assert!(
                t.elapsed() < WAIT,
                "BFD not Up in BIRD for {addr}:\n{}\nnode 1: {:?}",
                bird.birdc("show bfd sessions").unwrap_or_default(),
                n1.mgr.status().borrow().clone()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for n in [&n1, &n2] {
        for id in ["r4", "r6"] {
            wait_for(WAIT, &format!("our BFD Up ({id})"), || {
                (n.mgr.peer_status(id).and_then(|s| s.bfd) == Some(BfdState::Up)).then_some(())
            });
        }
    }
    wait_for(WAIT, "ECMP routes", || {
        (fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(1), Lab::node_v4(2)]
            && fib_nexthops(&lab.router, host(VIP6)) == [Lab::node_v6(1), Lab::node_v6(2)])
        .then_some(())
    });

    // Cut only once both sides run the fast rates (detection 3 x 100 ms);
    // until the Poll sequence after Up completes, BIRD still detects with the
    // slow start interval (1 s x 3).
    let t = Instant::now();
    for addr in [Lab::node_v4(1), Lab::node_v6(1)] {
        wait_for(
            WAIT,
            &format!("BIRD's BFD detection time to {addr} at 300 ms"),
            || (bird.bfd_timeout(&addr)? <= Duration::from_millis(300)).then_some(()),
        );
    }
    println!(
        "BIRD BFD sessions (fast rates {:?} after all were Up):\n{}",
        t.elapsed(),
        bird.birdc("show bfd sessions").unwrap_or_default()
    );
    // Node 1 goes silent. The hold time is 90 s, so a removal within the
    // wait below is BFD's doing.
    let t0 = Instant::now();
    lab.node_link_down(1);
    let (mut t4, mut t6) = (None, None);
    wait_for(Duration::from_secs(20), "node 1 nexthops removed", || {
        if t4.is_none() && fib_nexthops(&lab.router, host(VIP4)) == [Lab::node_v4(2)] {
            t4 = Some(t0.elapsed());
        }
        if t6.is_none() && fib_nexthops(&lab.router, host(VIP6)) == [Lab::node_v6(2)] {
            t6 = Some(t0.elapsed());
        }
        t4.zip(t6)
    });
    println!("BIRD, BFD 100 ms x 3: node 1's nexthops removed after {t4:?} (IPv4), {t6:?} (IPv6)");
    assert_ne!(bird.bfd_state(&Lab::node_v4(1)).as_deref(), Some("Up"));
    for id in ["r4", "r6"] {
        wait_for(WAIT, &format!("node 1 {id} down by BFD"), || {
            let s = n1.mgr.peer_status(id)?;
            (s.last_down == Some(DownCause::BfdDown)).then_some(())
        });
    }
    assert!(n2.established("r4") && n2.established("r6"));
    assert_eq!(bird.bfd_state(&Lab::node_v4(2)).as_deref(), Some("Up"));
}
