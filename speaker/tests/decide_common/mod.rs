//! Builders shared by the `decide_*` tests: a small cluster described in a few lines.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ferrolb_config::ipset::parse_pool_entry;
use ferrolb_config::model::{
    AnySelector, BgpAdvertisement, Community, L2Advertisement, Peer, PeerAsn, PreferredNode,
};
use ferrolb_config::pool::{Pool, PoolPolicy};
use ferrolb_config::selector::LabelSelector;
use ferrolb_config::service::TrafficPolicy;
use ferrolb_speaker::decide::{
    Decisions, EndpointInfo, Inputs, NodeInfo, ServiceInfo, ServiceKey, decide,
};

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A selector list with one `matchLabels` selector (empty pairs: select all).
pub fn sel(pairs: &[(&str, &str)]) -> AnySelector {
    if pairs.is_empty() {
        return AnySelector::default();
    }
    AnySelector(vec![
        LabelSelector::from_match_labels(&labels(pairs)).expect("valid selector"),
    ])
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid IP")
}

pub fn pool(name: &str, entries: &[&str]) -> Pool {
    let ranges: Vec<_> = entries
        .iter()
        .map(|e| parse_pool_entry(e).expect("valid entry"))
        .collect();
    Pool::new(
        name,
        &ranges,
        PoolPolicy {
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        },
    )
    .expect("valid pool")
}

pub fn node(name: &str, pairs: &[(&str, &str)]) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        labels: labels(pairs),
        ready: true,
        network_unavailable: false,
    }
}

pub fn l2ad(name: &str, pools: &[&str]) -> L2Advertisement {
    L2Advertisement {
        name: name.to_owned(),
        pools: pools.iter().map(|p| (*p).to_owned()).collect(),
        node_selectors: AnySelector::default(),
        interfaces: BTreeSet::new(),
        service_selectors: AnySelector::default(),
        preferred_nodes: Vec::new(),
    }
}

pub fn preferred(weight: u8, pairs: &[(&str, &str)]) -> PreferredNode {
    PreferredNode {
        weight,
        selector: LabelSelector::from_match_labels(&labels(pairs)).expect("valid selector"),
    }
}

pub fn bgpad(name: &str, pools: &[&str], peers: &[&str]) -> BgpAdvertisement {
    BgpAdvertisement {
        name: name.to_owned(),
        aggregation_length: 32,
        aggregation_length_v6: 128,
        local_pref: None,
        communities: BTreeSet::new(),
        pools: pools.iter().map(|p| (*p).to_owned()).collect(),
        peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        node_selectors: AnySelector::default(),
        service_selectors: AnySelector::default(),
        weighted_ecmp: false,
    }
}

pub fn community(s: &str) -> Community {
    s.parse().expect("valid community")
}

pub fn peer(name: &str, my_asn: u32, peer_asn: u32) -> Peer {
    Peer {
        name: name.to_owned(),
        my_asn,
        peer_asn: PeerAsn::Fixed(peer_asn),
        address: ip("192.0.2.254"),
        port: 179,
        source_address: None,
        hold_time: Duration::from_secs(90),
        keepalive_time: Duration::from_secs(30),
        connect_time: Duration::from_secs(5),
        router_id: None,
        password: None,
        ebgp_multi_hop: false,
        bfd_profile: None,
        graceful_restart: false,
        node_selectors: AnySelector::default(),
    }
}

pub fn key(s: &str) -> ServiceKey {
    let (ns, name) = s.split_once('/').expect("ns/name");
    ServiceKey::new(ns, name)
}

pub fn svc(k: &str, ips: &[&str], policy: TrafficPolicy) -> ServiceInfo {
    ServiceInfo {
        key: key(k),
        labels: BTreeMap::new(),
        ips: ips.iter().map(|s| ip(s)).collect(),
        traffic_policy: policy,
    }
}

/// A ready endpoint on `node`.
pub fn ready(id: &str, node: &str) -> EndpointInfo {
    EndpointInfo {
        id: id.to_owned(),
        node: Some(node.to_owned()),
        ready: true,
        serving: true,
        terminating: false,
    }
}

/// A terminating endpoint on `node` that still serves.
pub fn terminating(id: &str, node: &str) -> EndpointInfo {
    EndpointInfo {
        id: id.to_owned(),
        node: Some(node.to_owned()),
        ready: false,
        serving: true,
        terminating: true,
    }
}

/// An endpoint on `node` that is neither ready nor serving.
pub fn unready(id: &str, node: &str) -> EndpointInfo {
    EndpointInfo {
        id: id.to_owned(),
        node: Some(node.to_owned()),
        ready: false,
        serving: false,
        terminating: false,
    }
}

/// A cluster of `nodes` (all live and ready) with no configuration.
pub fn cluster(nodes: &[NodeInfo]) -> Inputs {
    Inputs {
        nodes: nodes.iter().map(|n| (n.name.clone(), n.clone())).collect(),
        live_speakers: nodes.iter().map(|n| n.name.clone()).collect(),
        ..Inputs::default()
    }
}

pub fn add_service(inputs: &mut Inputs, s: ServiceInfo, endpoints: Vec<EndpointInfo>) {
    inputs.endpoints.insert(s.key.clone(), endpoints);
    inputs.services.insert(s.key.clone(), s);
}

/// Every node's decisions over the same inputs.
pub fn decide_all(inputs: &Inputs) -> BTreeMap<String, Decisions> {
    inputs
        .nodes
        .keys()
        .map(|n| {
            let mut view = inputs.clone();
            view.node = n.clone();
            (n.clone(), decide(&view))
        })
        .collect()
}

/// Which nodes announce each IP by L2, from every node's own view.
pub fn l2_announcers(inputs: &Inputs) -> BTreeMap<IpAddr, BTreeSet<String>> {
    let mut out: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for s in inputs.services.values() {
        for ip in &s.ips {
            out.entry(*ip).or_default();
        }
    }
    for (n, d) in decide_all(inputs) {
        for ip in d.l2.keys() {
            out.entry(*ip).or_default().insert(n.clone());
        }
    }
    out
}

/// The single L2 announcer of `ip`, asserting all views agree there is at most one.
pub fn l2_owner(inputs: &Inputs, addr: &str) -> Option<String> {
    let all = l2_announcers(inputs);
    let owners = all.get(&ip(addr)).cloned().unwrap_or_default();
    assert!(owners.len() <= 1, "{addr} announced by {owners:?}");
    owners.into_iter().next()
}

/// Nodes whose decisions advertise `prefix` to any peer by BGP.
pub fn bgp_announcers(inputs: &Inputs, prefix: &str) -> BTreeSet<String> {
    let net: ipnet::IpNet = prefix.parse().expect("valid prefix");
    decide_all(inputs)
        .into_iter()
        .filter(|(_, d)| d.bgp.values().any(|routes| routes.contains_key(&net)))
        .map(|(n, _)| n)
        .collect()
}
