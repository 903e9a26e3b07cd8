//! The session manager against a real GoBGP router (gobgpd, zebra off) in
//! network namespaces: two nodes announce the same VIP; sessions (IPv4 and
//! IPv6), one path per node in gobgpd's RIB with the communities, large
//! communities and extended communities sent, withdrawal, iBGP LOCAL_PREF and
//! TCP-MD5. gobgpd without zebra installs nothing into the kernel, so the
//! assertions are on its RIB. Needs root (fails with a clear message
//! otherwise).

mod common;

use std::time::{Duration, Instant};

use common::gobgp::{GoBgpNeighbor, GoBgpPath, GoBgpRouter, gobgpd_conf, parse_rib};
use common::{
    Lab, MD5_PASSWORD, ROUTER_AS, SpeakerNode, VIP4, VIP6, assert_md5_refused, community,
    md5_peers, route_set, router_peers, wait_for, wait_ours_established,
};
use ferrolb_speaker::bgp::update::{ExtCommunity, RouteAttrs, RouteSet};

const WAIT: Duration = Duration::from_secs(30);

/// gobgpd neighbours for node `i` (IPv4, and IPv6 if `v6`).
fn neighbors(i: usize, asn: u32, v6: bool) -> Vec<GoBgpNeighbor> {
    let mut addrs = vec![Lab::node_v4(i)];
    if v6 {
        addrs.push(Lab::node_v6(i));
    }
    addrs
        .into_iter()
        .map(|addr| GoBgpNeighbor {
            addr,
            asn,
            gtsm: asn != ROUTER_AS,
            ..Default::default()
        })
        .collect()
}

fn wait_paths(r: &GoBgpRouter, prefix: &str, n: usize) -> Vec<GoBgpPath> {
    let t = Instant::now();
    loop {
        let p = r.rib(prefix);
        if p.len() == n {
            return p;
        }
        assert!(
            t.elapsed() < WAIT,
            "{prefix}: {} paths in gobgpd's RIB, want {n}: {p:?}\nlog:\n{}",
            p.len(),
            r.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rib_json_parses_per_path() {
    let json = r#"{"198.51.100.10/32":[
        {"nlri":{"prefix":"198.51.100.10/32"},"age":1,"best":true,"neighbor-ip":"10.0.0.11",
         "attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[64601]}]},
                  {"type":3,"nexthop":"10.0.0.11"},{"type":8,"communities":[4233691236]},
                  {"type":16,"value":[{"type":0,"subtype":4}]},
                  {"type":32,"value":[{"ASN":64601,"LocalData1":1,"LocalData2":2}]}]},
        {"nlri":{"prefix":"198.51.100.10/32"},"age":1,"neighbor-ip":"10.0.0.12",
         "attrs":[{"type":5,"value":250},{"type":14,"nexthop":"fd00::12","afi":2,"safi":1}]}]}"#;
    let p = parse_rib(json, VIP4);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].neighbor, "10.0.0.11");
    assert_eq!(p[0].as_path, [64601]);
    assert_eq!(p[0].next_hop, "10.0.0.11");
    assert_eq!(p[0].communities, [community(64601, 100)]);
    assert_eq!(p[0].large_communities, [(64601, 1, 2)]);
    assert_eq!(p[0].ext_communities.len(), 1);
    assert_eq!(p[0].local_pref, None);
    assert_eq!(p[1].local_pref, Some(250));
    assert_eq!(p[1].next_hop, "fd00::12");
    assert!(p[1].as_path.is_empty());
    assert!(parse_rib(json, VIP6).is_empty());
    assert!(parse_rib("Network not in table", VIP4).is_empty());
}

#[test]
fn ebgp_two_paths_attributes_and_withdraw_v4_v6() {
    let lab = Lab::new("gobgp", 2);
    let mut nb = neighbors(1, 64601, true);
    nb.extend(neighbors(2, 64602, true));
    let r = GoBgpRouter::start(&lab.router, &gobgpd_conf(ROUTER_AS, "10.0.0.1", &nb));
    let n1 = SpeakerNode::start(lab.node(1), router_peers(1, 64601, true));
    let n2 = SpeakerNode::start(lab.node(2), router_peers(2, 64602, true));
    let all: Vec<String> = [1, 2]
        .into_iter()
        .flat_map(|i| [Lab::node_v4(i), Lab::node_v6(i)])
        .collect();
    r.wait_established(&all, WAIT);
    wait_ours_established(&[(&n1, "r4"), (&n1, "r6"), (&n2, "r4"), (&n2, "r6")], WAIT);

    let attrs = |asn: u16| RouteAttrs {
        communities: [community(asn, 100)].into_iter().collect(),
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

    for prefix in [VIP4, VIP6] {
        let v6 = prefix.contains(':');
        let paths = wait_paths(&r, prefix, 2);
        println!("gobgpd paths of {prefix}: {paths:?}");
        for (i, asn) in [(1, 64601u32), (2, 64602)] {
            let p = &paths[i - 1];
            let addr = if v6 { Lab::node_v6(i) } else { Lab::node_v4(i) };
            assert_eq!(p.neighbor, addr, "{paths:?}");
            assert_eq!(p.next_hop, addr, "{p:?}");
            assert_eq!(p.as_path, [asn], "{p:?}");
            assert_eq!(p.local_pref, None, "no LOCAL_PREF on eBGP: {p:?}");
            assert_eq!(p.communities, [(asn << 16) | 100], "{p:?}");
            assert_eq!(p.large_communities, [(asn, 1, 2)], "{p:?}");
            // gobgp decodes link bandwidth (subtype 4) and prints it with
            // type 64 even for the transitive form (type 0) we send.
            assert_eq!(p.ext_communities.len(), 1, "{p:?}");
            let ec = &p.ext_communities[0];
            assert_eq!(ec["subtype"].as_u64(), Some(4), "{ec}");
            assert_eq!(ec["asn"].as_u64(), Some(u64::from(asn)), "{ec}");
            assert_eq!(ec["bandwidth"].as_f64(), Some(125_000_000.0), "{ec}");
        }
    }
    for n in [&n1, &n2] {
        for id in ["r4", "r6"] {
            let st = n.mgr.peer_status(id).expect("status");
            assert!(st.end_of_rib_sent && st.prefixes_advertised == 1, "{st:?}");
        }
    }

    // Withdraw on node 1: only node 2's paths remain.
    n1.set_routes(RouteSet::new());
    for prefix in [VIP4, VIP6] {
        let paths = wait_paths(&r, prefix, 1);
        let want = if prefix.contains(':') {
            Lab::node_v6(2)
        } else {
            Lab::node_v4(2)
        };
        assert_eq!(paths[0].neighbor, want, "{paths:?}");
    }
    // Then on node 2: gone.
    n2.set_routes(RouteSet::new());
    for prefix in [VIP4, VIP6] {
        wait_paths(&r, prefix, 0);
    }
    for a in &all {
        assert!(r.established(a), "{a} still Established after withdrawals");
    }
    assert_eq!(n1.established_count("r4"), Some(1));
}

#[test]
fn ibgp_local_pref() {
    let lab = Lab::new("gobgpi", 2);
    let mut nb = neighbors(1, ROUTER_AS, true);
    nb.extend(neighbors(2, ROUTER_AS, true));
    let r = GoBgpRouter::start(&lab.router, &gobgpd_conf(ROUTER_AS, "10.0.0.1", &nb));
    let n1 = SpeakerNode::start(lab.node(1), router_peers(1, ROUTER_AS, true));
    let n2 = SpeakerNode::start(lab.node(2), router_peers(2, ROUTER_AS, true));
    let all: Vec<String> = [1, 2]
        .into_iter()
        .flat_map(|i| [Lab::node_v4(i), Lab::node_v6(i)])
        .collect();
    r.wait_established(&all, WAIT);
    for (i, n) in [(1u32, &n1), (2, &n2)] {
        let attrs = RouteAttrs {
            local_pref: Some(200 + i),
            ..Default::default()
        };
        n.set_routes(route_set(&[(VIP4, attrs.clone()), (VIP6, attrs)]));
    }
    for prefix in [VIP4, VIP6] {
        let paths = wait_paths(&r, prefix, 2);
        let lps: Vec<Option<u32>> = paths.iter().map(|p| p.local_pref).collect();
        assert_eq!(lps, [Some(201), Some(202)], "{prefix}: {paths:?}");
        for p in &paths {
            assert!(p.as_path.is_empty(), "iBGP AS_PATH: {p:?}");
        }
    }
    // Best path: the higher LOCAL_PREF (node 2).
    let out = r
        .cli(&["global", "rib", "-a", "ipv4", VIP4, "-j"])
        .expect("gobgp rib");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let best: Vec<&str> = v[VIP4]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["best"].as_bool() == Some(true))
        .filter_map(|p| p["neighbor-ip"].as_str())
        .collect();
    assert_eq!(best, [Lab::node_v4(2)], "{out}");
    assert_eq!(
        n1.mgr.peer_status("r4").and_then(|s| s.peer_as),
        Some(ROUTER_AS)
    );
}

#[test]
fn md5_right_password_up_wrong_password_not() {
    let lab = Lab::new("gobgpmd5", 2);
    let mut nb = neighbors(1, 64601, false);
    nb.extend(neighbors(2, 64602, false));
    for n in &mut nb {
        n.password = Some(MD5_PASSWORD.into());
    }
    let r = GoBgpRouter::start(&lab.router, &gobgpd_conf(ROUTER_AS, "10.0.0.1", &nb));
    let n1 = SpeakerNode::start(lab.node(1), md5_peers(1, MD5_PASSWORD));
    let n2 = SpeakerNode::start(lab.node(2), md5_peers(2, "wrong-pw"));
    r.wait_established(&[Lab::node_v4(1)], WAIT);
    wait_for(WAIT, "our MD5 session Established", || {
        n1.established("r4").then_some(())
    });
    n1.set_routes(route_set(&[(VIP4, RouteAttrs::default())]));
    n2.set_routes(route_set(&[(VIP4, RouteAttrs::default())]));
    let paths = wait_paths(&r, VIP4, 1);
    assert_eq!(paths[0].neighbor, Lab::node_v4(1));
    // Several connect attempts in both directions.
    let st = assert_md5_refused(&n2, || r.established(&Lab::node_v4(2)));
    println!(
        "wrong MD5 password: gobgpd shows {:?}; our status: state {:?}, last error {:?}",
        r.neighbor_state(&Lab::node_v4(2)),
        st.state,
        st.last_error
    );
    assert_eq!(r.rib(VIP4).len(), 1);
}
