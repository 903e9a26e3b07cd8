//! BGP decisions as stories: who advertises which prefix to which peer, with which
//! attributes, as endpoints, nodes and advertisements change.

mod decide_common;

use std::collections::BTreeSet;
use std::sync::Arc;

use decide_common::*;
use ferrolb_config::model::PeerAsn;
use ferrolb_config::service::TrafficPolicy::{Cluster, Local};
use ferrolb_speaker::bgp::update::{ExtCommunity, RouteAttrs};
use ferrolb_speaker::decide::{
    Inputs, LINK_BANDWIDTH_PER_ENDPOINT, NodeInfo, Options, PeerNames, Reason, decide,
};
use ipnet::IpNet;

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn peers(list: &[&str]) -> PeerNames {
    list.iter().map(|s| Arc::from(*s)).collect()
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

/// Three ready nodes, one eBGP peer selecting all, one pool with a /32 advertisement.
fn base() -> Inputs {
    let mut inputs = cluster(&[node("a", &[]), node("b", &[]), node("c", &[])]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24", "2001:db8::/64"]));
    inputs
        .config
        .peers
        .insert("tor".into(), peer("tor", 64512, 64500));
    inputs
        .config
        .bgp_advertisements
        .insert("ad".into(), bgpad("ad", &["p"], &["tor"]));
    inputs
}

fn at(inputs: &Inputs, node: &str) -> Inputs {
    let mut v = inputs.clone();
    v.node = node.to_owned();
    v
}

#[test]
fn traffic_policy_and_endpoints_decide_announcers() {
    // (story, policy, endpoints, nodes advertising 192.0.2.10/32)
    let table = vec![
        (
            "cluster, one pod anywhere: every node",
            Cluster,
            vec![ready("p1", "a")],
            vec!["a", "b", "c"],
        ),
        ("cluster, no endpoints: nobody", Cluster, vec![], vec![]),
        (
            "cluster, only unready pods: nobody",
            Cluster,
            vec![unready("p1", "a")],
            vec![],
        ),
        (
            "cluster, only a terminating serving pod: every node",
            Cluster,
            vec![terminating("p1", "a")],
            vec!["a", "b", "c"],
        ),
        (
            "local: nodes with ready pods",
            Local,
            vec![ready("p1", "a"), ready("p2", "b"), ready("p3", "b")],
            vec!["a", "b"],
        ),
        (
            "local: an unready pod does not count",
            Local,
            vec![ready("p1", "a"), unready("p2", "c")],
            vec!["a"],
        ),
        (
            "local: a node whose pod terminates drains while others are ready",
            Local,
            vec![ready("p1", "a"), terminating("p2", "b")],
            vec!["a"],
        ),
        (
            "local: all pods terminating, they keep serving where they are",
            Local,
            vec![terminating("p1", "b"), terminating("p2", "c")],
            vec!["b", "c"],
        ),
        ("local: no endpoints", Local, vec![], vec![]),
    ];
    for (story, policy, eps, want) in table {
        let mut inputs = base();
        add_service(&mut inputs, svc("ns/web", &["192.0.2.10"], policy), eps);
        assert_eq!(
            bgp_announcers(&inputs, "192.0.2.10/32"),
            names(&want),
            "{story}"
        );
    }
}

#[test]
fn endpoints_appear_and_disappear() {
    let mut inputs = base();
    add_service(&mut inputs, svc("ns/web", &["192.0.2.10"], Local), vec![]);
    let reason = |inputs: &Inputs, n: &str| {
        decide(&at(inputs, n)).services[&key("ns/web")].ips[&ip("192.0.2.10")]
            .bgp
            .clone()
    };
    assert_eq!(reason(&inputs, "a"), Err(Reason::NoEndpoints));
    inputs
        .endpoints
        .insert(key("ns/web"), vec![ready("p1", "b")]);
    assert_eq!(reason(&inputs, "a"), Err(Reason::NoLocalEndpoints));
    assert_eq!(reason(&inputs, "b"), Ok(peers(&["tor"])));
    // The pod moves from b to a.
    inputs.endpoints.insert(
        key("ns/web"),
        vec![terminating("p1", "b"), ready("p2", "a")],
    );
    assert_eq!(bgp_announcers(&inputs, "192.0.2.10/32"), names(&["a"]));
    inputs.endpoints.remove(&key("ns/web"));
    assert!(bgp_announcers(&inputs, "192.0.2.10/32").is_empty());
}

#[test]
fn peer_and_advertisement_node_selectors() {
    let mut inputs = cluster(&[
        node("a", &[("rack", "r1")]),
        node("b", &[("rack", "r2")]),
        node("c", &[("rack", "r2"), ("edge", "yes")]),
    ]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    let mut tor1 = peer("tor1", 64512, 64501);
    tor1.node_selectors = sel(&[("rack", "r1")]);
    let mut tor2 = peer("tor2", 64512, 64502);
    tor2.node_selectors = sel(&[("rack", "r2")]);
    inputs.config.peers.insert("tor1".into(), tor1);
    inputs.config.peers.insert("tor2".into(), tor2);
    // Advertised to both peers, but only from edge nodes and rack r1.
    let mut ad = bgpad("ad", &["p"], &["tor1", "tor2"]);
    ad.node_selectors = ferrolb_config::model::AnySelector(
        [sel(&[("rack", "r1")]).0, sel(&[("edge", "yes")]).0].concat(),
    );
    inputs.config.bgp_advertisements.insert("ad".into(), ad);
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "b")],
    );

    let d = decide_all(&inputs);
    // Sessions follow the peers' node selectors, even when nothing is advertised.
    assert_eq!(
        d["a"].bgp.keys().cloned().collect::<BTreeSet<_>>(),
        names(&["tor1"])
    );
    assert_eq!(
        d["b"].bgp.keys().cloned().collect::<BTreeSet<_>>(),
        names(&["tor2"])
    );
    assert!(d["b"].bgp["tor2"].is_empty());
    assert!(d["a"].bgp["tor1"].contains_key(&net("192.0.2.10/32")));
    assert!(d["c"].bgp["tor2"].contains_key(&net("192.0.2.10/32")));
    let web = |n: &str| {
        d[n].services[&key("ns/web")].ips[&ip("192.0.2.10")]
            .bgp
            .clone()
    };
    assert_eq!(web("a"), Ok(peers(&["tor1"])));
    assert_eq!(web("b"), Err(Reason::NoMatchingAdvertisement));
    assert_eq!(web("c"), Ok(peers(&["tor2"])));

    // An advertisement limited to tor1 gives rack r2 nodes nothing to send.
    inputs
        .config
        .bgp_advertisements
        .insert("ad".into(), bgpad("ad", &["p"], &["tor1"]));
    let d = decide(&at(&inputs, "c"));
    assert_eq!(
        d.services[&key("ns/web")].ips[&ip("192.0.2.10")].bgp,
        Err(Reason::NoPeers)
    );
    assert!(d.bgp_statuses().is_empty());
    let d = decide(&at(&inputs, "a"));
    let status = &d.bgp_statuses()[&key("ns/web")];
    assert_eq!(
        (&*status.node, status.peers.clone()),
        ("a", peers(&["tor1"]))
    );
}

#[test]
fn service_selectors_pick_services() {
    let mut inputs = base();
    let mut ad = bgpad("ad", &["p"], &["tor"]);
    ad.service_selectors = sel(&[("expose", "bgp")]);
    inputs.config.bgp_advertisements.insert("ad".into(), ad);
    let mut web = svc("ns/web", &["192.0.2.10"], Cluster);
    web.labels = labels(&[("expose", "bgp")]);
    add_service(&mut inputs, web, vec![ready("p1", "a")]);
    add_service(
        &mut inputs,
        svc("ns/db", &["192.0.2.11"], Cluster),
        vec![ready("p2", "a")],
    );
    let d = decide(&at(&inputs, "a"));
    assert_eq!(
        d.bgp["tor"].keys().cloned().collect::<Vec<_>>(),
        [net("192.0.2.10/32")]
    );
    assert_eq!(
        d.services[&key("ns/db")].ips[&ip("192.0.2.11")].bgp,
        Err(Reason::NoMatchingAdvertisement)
    );
}

#[test]
fn aggregation_dedups_and_unions_communities() {
    let mut inputs = base();
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["10.0.0.0/16", "2001:db8::/48"]));
    let mut agg = bgpad("agg", &["p"], &["tor"]);
    agg.aggregation_length = 24;
    agg.aggregation_length_v6 = 64;
    agg.communities = [community("64500:1")].into_iter().collect();
    let mut agg2 = agg.clone();
    agg2.name = "agg2".into();
    agg2.communities = [community("64500:2"), community("large:64500:7:9")]
        .into_iter()
        .collect();
    let mut host = bgpad("host", &["p"], &["tor"]);
    host.communities = [community("65535:65282")].into_iter().collect();
    for ad in [agg, agg2, host] {
        inputs.config.bgp_advertisements.insert(ad.name.clone(), ad);
    }
    add_service(
        &mut inputs,
        svc("ns/a", &["10.0.1.5", "2001:db8:0:1::5"], Cluster),
        vec![ready("p1", "a")],
    );
    add_service(
        &mut inputs,
        svc("ns/b", &["10.0.1.6", "2001:db8:0:1::6"], Cluster),
        vec![ready("p2", "a")],
    );
    add_service(
        &mut inputs,
        svc("ns/c", &["10.0.2.1"], Cluster),
        vec![ready("p3", "a")],
    );
    let routes = &decide(&at(&inputs, "b")).bgp["tor"];

    let std = |list: &[(u16, u16)]| -> BTreeSet<u32> {
        list.iter()
            .map(|&(a, b)| (u32::from(a) << 16) | u32::from(b))
            .collect()
    };
    let aggregate = RouteAttrs {
        communities: std(&[(64500, 1), (64500, 2)]),
        large_communities: [(64500, 7, 9)].into_iter().collect(),
        ..RouteAttrs::default()
    };
    let host_route = RouteAttrs {
        communities: std(&[(65535, 65282)]),
        ..RouteAttrs::default()
    };
    let want = [
        ("10.0.1.0/24", &aggregate),
        ("10.0.2.0/24", &aggregate),
        ("10.0.1.5/32", &host_route),
        ("10.0.1.6/32", &host_route),
        ("10.0.2.1/32", &host_route),
        ("2001:db8:0:1::/64", &aggregate),
        ("2001:db8:0:1::5/128", &host_route),
        ("2001:db8:0:1::6/128", &host_route),
    ];
    assert_eq!(routes.len(), want.len(), "{routes:#?}");
    for (prefix, attrs) in want {
        assert_eq!(routes.get(&net(prefix)), Some(attrs), "{prefix}");
    }
}

#[test]
fn local_pref_only_on_ibgp_and_max_wins() {
    let mut inputs = base();
    inputs
        .config
        .peers
        .insert("rr".into(), peer("rr", 64512, 64512));
    let mut dynamic = peer("dyn", 64512, 0);
    dynamic.peer_asn = PeerAsn::Internal;
    inputs.config.peers.insert("dyn".into(), dynamic);
    let mut low = bgpad("low", &["p"], &["tor", "rr", "dyn"]);
    low.local_pref = Some(100);
    let mut high = bgpad("high", &["p"], &["tor", "rr", "dyn"]);
    high.local_pref = Some(200);
    inputs.config.bgp_advertisements = [("low".into(), low), ("high".into(), high)]
        .into_iter()
        .collect();
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "a")],
    );
    let d = decide(&at(&inputs, "a"));
    let lp = |peer: &str| d.bgp[peer][&net("192.0.2.10/32")].local_pref;
    assert_eq!(
        (lp("tor"), lp("rr"), lp("dyn")),
        (None, Some(200), Some(200))
    );
}

#[test]
fn unhealthy_nodes_withdraw() {
    let not_ready = NodeInfo {
        ready: false,
        ..node("a", &[])
    };
    let nu = NodeInfo {
        network_unavailable: true,
        ..node("a", &[])
    };
    let excluded = node(
        "a",
        &[(
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "",
        )],
    );
    // (story, node a, ignore exclude label, expected result on a)
    let table = vec![
        ("healthy", node("a", &[]), false, Ok(peers(&["tor"]))),
        ("not ready", not_ready, false, Err(Reason::NodeNotReady)),
        (
            "network unavailable",
            nu,
            false,
            Err(Reason::NetworkUnavailable),
        ),
        (
            "excluded",
            excluded.clone(),
            false,
            Err(Reason::NodeExcluded),
        ),
        ("excluded but ignored", excluded, true, Ok(peers(&["tor"]))),
    ];
    for (story, a, ignore, want) in table {
        let mut inputs = base();
        inputs.nodes.insert("a".into(), a);
        inputs.options = Options {
            ignore_exclude_lb: ignore,
            ..Options::default()
        };
        add_service(
            &mut inputs,
            svc("ns/web", &["192.0.2.10"], Cluster),
            vec![ready("p1", "b")],
        );
        let d = decide(&at(&inputs, "a"));
        assert_eq!(
            d.services[&key("ns/web")].ips[&ip("192.0.2.10")].bgp,
            want,
            "{story}"
        );
        assert_eq!(d.bgp["tor"].is_empty(), want.is_err(), "{story}");
        // The other nodes are unaffected.
        assert!(
            decide(&at(&inputs, "b")).bgp["tor"].contains_key(&net("192.0.2.10/32")),
            "{story}"
        );
    }
    // A node missing from the node list advertises nothing and opens no session.
    let mut inputs = base();
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "b")],
    );
    let d = decide(&at(&inputs, "ghost"));
    assert!(d.bgp.is_empty());
    assert_eq!(
        d.services[&key("ns/web")].ips[&ip("192.0.2.10")].bgp,
        Err(Reason::NodeUnknown)
    );
}

#[test]
fn ips_outside_pools_or_advertisements() {
    let mut inputs = base();
    inputs
        .config
        .pools
        .insert("l2only".into(), pool("l2only", &["198.51.100.0/24"]));
    add_service(
        &mut inputs,
        svc("ns/web", &["203.0.113.1", "198.51.100.1"], Cluster),
        vec![ready("p1", "a")],
    );
    let d = decide(&at(&inputs, "a"));
    let ips = &d.services[&key("ns/web")].ips;
    assert_eq!(ips[&ip("203.0.113.1")].bgp, Err(Reason::NoPool));
    assert_eq!(ips[&ip("203.0.113.1")].l2, Err(Reason::NoPool));
    assert_eq!(ips[&ip("198.51.100.1")].bgp, Err(Reason::NoAdvertisement));
    assert!(d.bgp["tor"].is_empty());
}

fn lbw(count: u64) -> ExtCommunity {
    ExtCommunity::link_bandwidth(64512, count * LINK_BANDWIDTH_PER_ENDPOINT, false)
}

#[test]
fn weighted_ecmp_follows_local_endpoint_counts() {
    let mut inputs = base();
    let mut ad = bgpad("ad", &["p"], &["tor"]);
    ad.weighted_ecmp = true;
    inputs.config.bgp_advertisements.insert("ad".into(), ad);
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Local),
        vec![
            ready("p1", "a"),
            ready("p2", "a"),
            ready("p3", "a"),
            ready("p4", "b"),
            terminating("p5", "b"),
            unready("p6", "c"),
        ],
    );
    let d = decide_all(&inputs);
    let ext = |n: &str| {
        d[n].bgp["tor"]
            .get(&net("192.0.2.10/32"))
            .map(|r| r.ext_communities.clone())
    };
    assert_eq!(ext("a"), Some([lbw(3)].into_iter().collect()));
    assert_eq!(ext("b"), Some([lbw(1)].into_iter().collect()));
    assert_eq!(ext("c"), None);
    // The unit is 1 Gbit/s per endpoint, in bytes per second.
    assert_eq!(
        lbw(3),
        ExtCommunity::LinkBandwidth {
            asn: 64512,
            bytes_per_sec: 375_000_000,
            transitive: false
        }
    );

    // Options change the unit and the community type.
    inputs.options.link_bandwidth_per_endpoint = 1_250_000;
    inputs.options.link_bandwidth_transitive = true;
    let d = decide(&at(&inputs, "a"));
    assert_eq!(
        d.bgp["tor"][&net("192.0.2.10/32")].ext_communities,
        [ExtCommunity::link_bandwidth(64512, 3_750_000, true)]
            .into_iter()
            .collect()
    );
}

#[test]
fn weighted_ecmp_merge_rules() {
    // (story, services as (name, ip, policy, pods on node a), weighted ad, expected lbw count on a)
    type Row = (
        &'static str,
        Vec<(
            &'static str,
            &'static str,
            ferrolb_config::service::TrafficPolicy,
            usize,
        )>,
        bool,
        Option<u64>,
    );
    let table: Vec<Row> = vec![
        (
            "two local services in one /24 sum",
            vec![
                ("s1", "192.0.2.10", Local, 2),
                ("s2", "192.0.2.20", Local, 3),
            ],
            true,
            Some(5),
        ),
        (
            "shared IP counts each service",
            vec![
                ("s1", "192.0.2.10", Local, 2),
                ("s2", "192.0.2.10", Local, 2),
            ],
            true,
            Some(4),
        ),
        (
            "a cluster service in the aggregate disables weighting",
            vec![
                ("s1", "192.0.2.10", Local, 2),
                ("s2", "192.0.2.20", Cluster, 1),
            ],
            true,
            None,
        ),
        (
            "cluster services are never weighted",
            vec![("s1", "192.0.2.10", Cluster, 2)],
            true,
            None,
        ),
        (
            "advertisement without weightedECMP",
            vec![("s1", "192.0.2.10", Local, 2)],
            false,
            None,
        ),
    ];
    for (story, services, weighted, want) in table {
        let mut inputs = base();
        let mut ad = bgpad("ad", &["p"], &["tor"]);
        ad.aggregation_length = 24;
        ad.weighted_ecmp = weighted;
        inputs.config.bgp_advertisements.insert("ad".into(), ad);
        for (name, addr, policy, pods) in services {
            let eps = (0..pods)
                .map(|i| ready(&format!("{name}-{i}"), "a"))
                .collect();
            add_service(
                &mut inputs,
                svc(&format!("ns/{name}"), &[addr], policy),
                eps,
            );
        }
        let d = decide(&at(&inputs, "a"));
        let route = &d.bgp["tor"][&net("192.0.2.0/24")];
        let expected: BTreeSet<ExtCommunity> = want.map(lbw).into_iter().collect();
        assert_eq!(route.ext_communities, expected, "{story}");
    }
}

#[test]
fn same_service_through_weighted_and_plain_ads_is_weighted_once() {
    let mut inputs = base();
    let mut weighted = bgpad("w", &["p"], &["tor"]);
    weighted.weighted_ecmp = true;
    let plain = bgpad("plain", &["p"], &["tor"]);
    inputs.config.bgp_advertisements = [("w".into(), weighted), ("plain".into(), plain)]
        .into_iter()
        .collect();
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Local),
        vec![ready("p1", "a"), ready("p2", "a")],
    );
    let d = decide(&at(&inputs, "a"));
    assert_eq!(
        d.bgp["tor"][&net("192.0.2.10/32")].ext_communities,
        [lbw(2)].into_iter().collect()
    );
}

#[test]
fn ipv6_routes_are_produced_for_the_session_to_filter() {
    let mut inputs = base();
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10", "2001:db8::10"], Cluster),
        vec![ready("p1", "a")],
    );
    let d = decide(&at(&inputs, "c"));
    let routes = &d.bgp["tor"];
    assert_eq!(routes.len(), 2);
    let v4 = ferrolb_speaker::decide::routes_for_families(
        routes,
        &[ferrolb_speaker::bgp::open::Family::Ipv4Unicast],
    );
    assert_eq!(
        v4.keys().cloned().collect::<Vec<_>>(),
        [net("192.0.2.10/32")]
    );
}
