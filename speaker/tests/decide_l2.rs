//! L2 election as stories: exactly one node answers for each IP, all views agree, and
//! IPs move only when they must.

mod decide_common;

use std::collections::{BTreeMap, BTreeSet};

use decide_common::*;
use ferrolb_config::service::TrafficPolicy::{Cluster, Local};
use ferrolb_speaker::decide::{
    Decisions, Inputs, Interfaces, NodeInfo, Reason, decide, diff, l2_owners,
};

fn only(names: &[&str]) -> Interfaces {
    Interfaces::Only(names.iter().map(|s| (*s).to_owned()).collect())
}

fn at(inputs: &Inputs, node: &str) -> Inputs {
    let mut v = inputs.clone();
    v.node = node.to_owned();
    v
}

/// `n` ready, live nodes `node-0..`, a pool covering 192.0.2.0/24 and 2001:db8::/64,
/// one L2 advertisement for every node.
fn base(n: usize) -> Inputs {
    let nodes: Vec<NodeInfo> = (0..n).map(|i| node(&format!("node-{i}"), &[])).collect();
    let mut inputs = cluster(&nodes);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24", "2001:db8::/64"]));
    inputs
        .config
        .l2_advertisements
        .insert("l2".into(), l2ad("l2", &["p"]));
    inputs
}

/// `count` Cluster Services, one IP each, with a pod on node-0.
fn with_services(mut inputs: Inputs, count: usize) -> Inputs {
    for i in 0..count {
        let addr = format!("192.0.2.{}", i + 1);
        add_service(
            &mut inputs,
            svc(&format!("ns/s{i}"), &[&addr], Cluster),
            vec![ready(&format!("p{i}"), "node-0")],
        );
    }
    inputs
}

fn owners(inputs: &Inputs) -> BTreeMap<String, Option<String>> {
    l2_announcers(inputs)
        .into_iter()
        .map(|(ip, nodes)| {
            assert!(nodes.len() <= 1, "{ip} announced by {nodes:?}");
            (ip.to_string(), nodes.into_iter().next())
        })
        .collect()
}

#[test]
fn reference_tie_break_picks_lowest_sha256() {
    // From sha256sum: node-c#192.0.2.10 and node-b#2001:db8::10 hash lowest.
    let mut inputs = cluster(&[
        node("node-a", &[]),
        node("node-b", &[]),
        node("node-c", &[]),
    ]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24", "2001:db8::/64"]));
    inputs
        .config
        .l2_advertisements
        .insert("l2".into(), l2ad("l2", &["p"]));
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10", "2001:db8::10"], Cluster),
        vec![ready("p1", "node-a")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-c"));
    assert_eq!(l2_owner(&inputs, "2001:db8::10").as_deref(), Some("node-b"));
    let cluster_view = l2_owners(&inputs);
    assert_eq!(cluster_view[&ip("192.0.2.10")].as_deref(), Some("node-c"));
    // Without node-c, node-a (d4b8...) loses to node-b (6e9f...).
    inputs.live_speakers.remove("node-c");
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-b"));
    // The loser learns who owns the IP.
    let d = decide(&at(&inputs, "node-a"));
    assert_eq!(
        d.services[&key("ns/web")].ips[&ip("192.0.2.10")].l2,
        Err(Reason::NotOwner {
            owner: Some("node-b".into())
        })
    );
}

#[test]
fn every_ip_has_exactly_one_owner_in_all_views() {
    let inputs = with_services(base(5), 40);
    let owners = owners(&inputs);
    assert_eq!(owners.len(), 40);
    assert!(owners.values().all(Option::is_some), "{owners:?}");
    // The hash spreads IPs: every node owns something with 40 IPs on 5 nodes.
    let used: BTreeSet<_> = owners.values().flatten().collect();
    assert_eq!(used.len(), 5, "{owners:?}");
    // The cluster view agrees with the nodes' own decisions.
    for (ip, owner) in l2_owners(&inputs) {
        assert_eq!(owners[&ip.to_string()], owner, "{ip}");
    }
}

#[test]
fn no_owner_when_no_node_is_eligible() {
    // (story, change)
    type Change = fn(&mut Inputs);
    let table: Vec<(&str, Change)> = vec![
        ("all nodes not ready", |i| {
            i.nodes.values_mut().for_each(|n| n.ready = false)
        }),
        ("no live speaker", |i| i.live_speakers.clear()),
        ("all networks unavailable", |i| {
            i.nodes
                .values_mut()
                .for_each(|n| n.network_unavailable = true)
        }),
        ("all nodes excluded", |i| {
            i.nodes.values_mut().for_each(|n| {
                n.labels.insert(
                    "node.kubernetes.io/exclude-from-external-load-balancers".into(),
                    "true".into(),
                );
            })
        }),
        ("no endpoints", |i| i.endpoints.clear()),
        ("advertisement selects no node", |i| {
            let ad = i.config.l2_advertisements.get_mut("l2").expect("ad");
            ad.node_selectors = sel(&[("role", "lb")]);
        }),
    ];
    for (story, change) in table {
        let mut inputs = with_services(base(3), 5);
        change(&mut inputs);
        let owners = owners(&inputs);
        assert!(owners.values().all(Option::is_none), "{story}: {owners:?}");
        assert!(l2_owners(&inputs).values().all(Option::is_none), "{story}");
    }
}

#[test]
fn node_reasons() {
    let mut inputs = with_services(base(3), 1);
    inputs.nodes.get_mut("node-1").expect("n").ready = false;
    inputs.live_speakers.remove("node-2");
    let reason = |n: &str| {
        decide(&at(&inputs, n)).services[&key("ns/s0")].ips[&ip("192.0.2.1")]
            .l2
            .clone()
    };
    assert_eq!(reason("node-0"), Ok(Interfaces::All));
    assert_eq!(reason("node-1"), Err(Reason::NodeNotReady));
    assert_eq!(reason("node-2"), Err(Reason::SpeakerNotAlive));
    assert_eq!(reason("ghost"), Err(Reason::NodeUnknown));
    let statuses = decide(&at(&inputs, "node-0")).l2_statuses();
    let s = &statuses[&key("ns/s0")];
    assert_eq!((s.node.as_str(), s.interfaces.len()), ("node-0", 0));
}

#[test]
fn removing_a_non_owner_never_moves_an_ip() {
    let inputs = with_services(base(6), 30);
    let before = owners(&inputs);
    for gone in inputs.nodes.keys() {
        // Node failure (speaker leaves) and node deletion.
        for delete in [false, true] {
            let mut after = inputs.clone();
            after.live_speakers.remove(gone);
            if delete {
                after.nodes.remove(gone);
            }
            let now = owners(&after);
            for (ip, owner) in &before {
                if owner.as_deref() != Some(gone.as_str()) {
                    assert_eq!(&now[ip], owner, "{ip} moved when {gone} left");
                } else {
                    assert!(
                        now[ip].is_some() && now[ip] != *owner,
                        "{ip} kept on {gone}"
                    );
                }
            }
        }
    }
}

#[test]
fn adding_a_node_moves_only_ips_it_wins() {
    let inputs = with_services(base(4), 30);
    let before = owners(&inputs);
    let mut after = inputs.clone();
    after.nodes.insert("node-new".into(), node("node-new", &[]));
    after.live_speakers.insert("node-new".into());
    let now = owners(&after);
    let mut moved = 0;
    for (ip, owner) in &before {
        if &now[ip] != owner {
            assert_eq!(now[ip].as_deref(), Some("node-new"), "{ip}");
            moved += 1;
        }
    }
    assert!(moved > 0 && moved < 30, "moved {moved}");
}

#[test]
fn shared_ip_services_land_on_one_node() {
    let mut inputs = base(5);
    // Three Services share 192.0.2.50; the ETP Local pair has identical pods.
    add_service(
        &mut inputs,
        svc("ns/http", &["192.0.2.50"], Cluster),
        vec![ready("p1", "node-0")],
    );
    add_service(
        &mut inputs,
        svc("ns/dns", &["192.0.2.50"], Cluster),
        vec![ready("p2", "node-3")],
    );
    add_service(
        &mut inputs,
        svc("ns/l-tcp", &["192.0.2.60"], Local),
        vec![ready("p3", "node-1"), ready("p4", "node-4")],
    );
    add_service(
        &mut inputs,
        svc("ns/l-udp", &["192.0.2.60"], Local),
        vec![ready("p3", "node-1"), ready("p4", "node-4")],
    );
    let all = decide_all(&inputs);
    for (addr, services) in [
        ("192.0.2.50", ["ns/http", "ns/dns"]),
        ("192.0.2.60", ["ns/l-tcp", "ns/l-udp"]),
    ] {
        let owner = l2_owner(&inputs, addr).expect("owned");
        for s in services {
            let announcing: Vec<&String> = all
                .iter()
                .filter(|(_, d)| d.l2_statuses().contains_key(&key(s)))
                .map(|(n, _)| n)
                .collect();
            assert_eq!(announcing, [&owner], "{s}");
        }
    }
    let local_owner = l2_owner(&inputs, "192.0.2.60").expect("owned");
    assert!(local_owner == "node-1" || local_owner == "node-4");
}

#[test]
fn shared_ip_with_differing_candidates_prefers_nodes_serving_all() {
    // A Cluster Service and a Local Service on one IP (the allocator forbids this, but the
    // election must stay single-owner): the owner is a node serving both.
    let mut inputs = base(5);
    add_service(
        &mut inputs,
        svc("ns/cluster", &["192.0.2.70"], Cluster),
        vec![ready("p1", "node-0")],
    );
    add_service(
        &mut inputs,
        svc("ns/local", &["192.0.2.70"], Local),
        vec![ready("p2", "node-2")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.70").as_deref(), Some("node-2"));
    let d = decide(&at(&inputs, "node-3"));
    assert_eq!(
        d.services[&key("ns/local")].ips[&ip("192.0.2.70")].l2,
        Err(Reason::NoLocalEndpoints)
    );
    assert_eq!(
        d.services[&key("ns/cluster")].ips[&ip("192.0.2.70")].l2,
        Err(Reason::NotOwner {
            owner: Some("node-2".into())
        })
    );
}

#[test]
fn local_policy_follows_pods() {
    let mut inputs = base(5);
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Local),
        vec![ready("p1", "node-3")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-3"));
    // The pod is replaced on node-1; the old one terminates: the IP follows.
    inputs.endpoints.insert(
        key("ns/web"),
        vec![terminating("p1", "node-3"), ready("p2", "node-1")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-1"));
    // Only unready pods: nobody.
    inputs
        .endpoints
        .insert(key("ns/web"), vec![unready("p2", "node-1")]);
    assert_eq!(l2_owner(&inputs, "192.0.2.10"), None);
    let d = decide(&at(&inputs, "node-1"));
    assert_eq!(
        d.services[&key("ns/web")].ips[&ip("192.0.2.10")].l2,
        Err(Reason::NoEndpoints)
    );
}

#[test]
fn preferred_node_weights_beat_the_hash() {
    let mut inputs = cluster(&[
        node("node-a", &[("zone", "z1")]),
        node("node-b", &[("zone", "z2")]),
        node("node-c", &[("zone", "z2"), ("fast", "yes")]),
    ]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    let mut ad = l2ad("l2", &["p"]);
    inputs
        .config
        .l2_advertisements
        .insert("l2".into(), ad.clone());
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "node-a")],
    );
    // Hash order for 192.0.2.10: node-c < node-b < node-a.
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-c"));
    // (story, preferences, expected owner)
    let table = vec![
        (
            "z1 preferred",
            vec![preferred(10, &[("zone", "z1")])],
            "node-a",
        ),
        (
            "z2 preferred: the hash decides between b and c",
            vec![preferred(10, &[("zone", "z2")])],
            "node-c",
        ),
        (
            "weights add up",
            vec![
                preferred(30, &[("zone", "z1")]),
                preferred(20, &[("zone", "z2")]),
                preferred(20, &[("fast", "yes")]),
            ],
            "node-c",
        ),
        (
            "heavier single preference wins",
            vec![
                preferred(50, &[("zone", "z1")]),
                preferred(20, &[("zone", "z2")]),
                preferred(20, &[("fast", "yes")]),
            ],
            "node-a",
        ),
    ];
    for (story, prefs, want) in table {
        ad.preferred_nodes = prefs;
        inputs
            .config
            .l2_advertisements
            .insert("l2".into(), ad.clone());
        assert_eq!(
            l2_owner(&inputs, "192.0.2.10").as_deref(),
            Some(want),
            "{story}"
        );
    }
    // A preferred node that is not eligible does not win.
    inputs.live_speakers.remove("node-a");
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-c"));
}

#[test]
fn preferences_of_ads_not_selecting_the_node_do_not_count() {
    let mut inputs = cluster(&[node("node-a", &[("zone", "z1")]), node("node-c", &[])]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    inputs
        .config
        .l2_advertisements
        .insert("all".into(), l2ad("all", &["p"]));
    let mut other = l2ad("other", &["p"]);
    other.node_selectors = sel(&[("zone", "z9")]);
    other.preferred_nodes = vec![preferred(100, &[("zone", "z1")])];
    inputs
        .config
        .l2_advertisements
        .insert("other".into(), other);
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "node-a")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-c"));
}

#[test]
fn interfaces_are_the_union_of_ads_selecting_the_owner() {
    let mut inputs = cluster(&[node("node-a", &[("rack", "r1")])]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    let mut eth0 = l2ad("eth0", &["p"]);
    eth0.interfaces = ["eth0".to_owned()].into_iter().collect();
    let mut eth1 = l2ad("eth1", &["p"]);
    eth1.interfaces = ["eth1".to_owned()].into_iter().collect();
    let mut elsewhere = l2ad("elsewhere", &["p"]);
    elsewhere.interfaces = ["bond9".to_owned()].into_iter().collect();
    elsewhere.node_selectors = sel(&[("rack", "r2")]);
    for ad in [eth0, eth1, elsewhere] {
        inputs.config.l2_advertisements.insert(ad.name.clone(), ad);
    }
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "node-a")],
    );
    let d = decide(&at(&inputs, "node-a"));
    assert_eq!(d.l2[&ip("192.0.2.10")], only(&["eth0", "eth1"]));
    assert_eq!(d.l2_statuses()[&key("ns/web")].interfaces, ["eth0", "eth1"]);
    // An advertisement without interfaces means all of them.
    inputs
        .config
        .l2_advertisements
        .insert("any".into(), l2ad("any", &["p"]));
    let d = decide(&at(&inputs, "node-a"));
    assert_eq!(d.l2[&ip("192.0.2.10")], Interfaces::All);
}

#[test]
fn service_and_node_selectors_on_l2_ads() {
    let mut inputs = cluster(&[node("node-a", &[("l2", "yes")]), node("node-b", &[])]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    let mut ad = l2ad("l2", &["p"]);
    ad.node_selectors = sel(&[("l2", "yes")]);
    ad.service_selectors = sel(&[("tier", "front")]);
    inputs.config.l2_advertisements.insert("l2".into(), ad);
    let mut front = svc("ns/front", &["192.0.2.10"], Cluster);
    front.labels = labels(&[("tier", "front")]);
    add_service(&mut inputs, front, vec![ready("p1", "node-b")]);
    add_service(
        &mut inputs,
        svc("ns/back", &["192.0.2.11"], Cluster),
        vec![ready("p2", "node-b")],
    );
    assert_eq!(l2_owner(&inputs, "192.0.2.10").as_deref(), Some("node-a"));
    assert_eq!(l2_owner(&inputs, "192.0.2.11"), None);
    let b = decide(&at(&inputs, "node-b"));
    assert_eq!(
        b.services[&key("ns/front")].ips[&ip("192.0.2.10")].l2,
        Err(Reason::NoMatchingAdvertisement)
    );
    let a = decide(&at(&inputs, "node-a"));
    assert_eq!(
        a.services[&key("ns/back")].ips[&ip("192.0.2.11")].l2,
        Err(Reason::NoMatchingAdvertisement)
    );
}

#[test]
fn diff_reports_ownership_transitions() {
    let inputs = with_services(base(3), 12);
    let owners_before = owners(&inputs);
    let victim = owners_before
        .values()
        .flatten()
        .next()
        .expect("some owner")
        .clone();
    let mut after = inputs.clone();
    after.live_speakers.remove(&victim);
    let owners_after = owners(&after);

    for n in inputs.nodes.keys() {
        let prev = decide(&at(&inputs, n));
        let next = decide(&at(&after, n));
        let d = diff(&prev, &next);
        let gained: BTreeSet<String> = d.l2_gained.keys().map(ToString::to_string).collect();
        let lost: BTreeSet<String> = d.l2_lost.iter().map(ToString::to_string).collect();
        let want_gained: BTreeSet<String> = owners_after
            .iter()
            .filter(|(ip, o)| o.as_deref() == Some(n) && owners_before[*ip].as_deref() != Some(n))
            .map(|(ip, _)| ip.clone())
            .collect();
        let want_lost: BTreeSet<String> = owners_before
            .iter()
            .filter(|(ip, o)| o.as_deref() == Some(n) && owners_after[*ip].as_deref() != Some(n))
            .map(|(ip, _)| ip.clone())
            .collect();
        assert_eq!(
            (gained, lost),
            (want_gained.clone(), want_lost.clone()),
            "{n}"
        );
        if n == &victim {
            assert!(!want_lost.is_empty());
        }
        // Statuses change exactly for the Services that moved to or from this node.
        let moved: BTreeSet<String> = want_gained.union(&want_lost).cloned().collect();
        let status_ips: BTreeSet<String> = d
            .statuses_changed
            .iter()
            .flat_map(|k| inputs.services[k].ips.iter().map(ToString::to_string))
            .collect();
        assert_eq!(status_ips, moved, "{n}");
        // No change, no diff.
        assert!(diff(&next, &next).is_empty());
    }
    // Startup: everything owned counts as gained.
    let first = decide(&at(&inputs, &victim));
    let d = diff(&Decisions::default(), &first);
    assert_eq!(d.l2_gained, first.l2);
    assert!(!d.l2_gained.is_empty());
}

#[test]
fn diff_reports_interface_changes() {
    let mut inputs = cluster(&[node("node-a", &[])]);
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24"]));
    let mut ad = l2ad("l2", &["p"]);
    ad.interfaces = ["eth0".to_owned()].into_iter().collect();
    inputs
        .config
        .l2_advertisements
        .insert("l2".into(), ad.clone());
    add_service(
        &mut inputs,
        svc("ns/web", &["192.0.2.10"], Cluster),
        vec![ready("p1", "node-a")],
    );
    let prev = decide(&at(&inputs, "node-a"));
    ad.interfaces.insert("eth1".to_owned());
    inputs.config.l2_advertisements.insert("l2".into(), ad);
    let next = decide(&at(&inputs, "node-a"));
    let d = diff(&prev, &next);
    assert!(d.l2_gained.is_empty() && d.l2_lost.is_empty());
    assert_eq!(
        d.l2_interfaces_changed,
        [(ip("192.0.2.10"), only(&["eth0", "eth1"]))]
            .into_iter()
            .collect()
    );
    assert_eq!(d.statuses_changed, [key("ns/web")].into_iter().collect());
}
