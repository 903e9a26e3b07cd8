//! The positive fixture: a realistic dual-stack configuration builds and resolves.

#[path = "fixtures/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ferrolb_config::build::{BuildOptions, build};
use ferrolb_config::ipset::Family;
use ferrolb_config::manifest::{parse_manifests, to_yaml};
use ferrolb_config::model::{Community, PeerAsn};

const FULL: &str = include_str!("fixtures/full.yaml");

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn full_fixture_builds_with_resolved_content() {
    let res = parse_manifests(FULL).expect("fixture parses");
    let cfg = build(&res, &BuildOptions::default()).expect("fixture builds");

    // Pools: interval sets per family with exact counts.
    let names: Vec<&str> = cfg.pools.keys().map(String::as_str).collect();
    assert_eq!(names, ["office", "prod", "prod-v6-small"]);
    let prod = &cfg.pools["prod"];
    assert_eq!(prod.count(Family::V4).to_string(), "256");
    assert_eq!(
        prod.count(Family::V6).to_string(),
        (1u128 << 80).to_string()
    );
    assert_eq!(prod.priority(), 10);
    assert!(prod.selects_namespace("team-a", &BTreeMap::new()));
    assert!(prod.selects_namespace("team-b", &labels(&[("ferrolb.io/tier", "gold")])));
    assert!(!prod.selects_namespace("team-b", &BTreeMap::new()));
    let small = &cfg.pools["prod-v6-small"];
    assert_eq!(
        small.count(Family::V6).to_string(),
        (1u128 << 64).to_string()
    );
    assert!(!small.auto_assign());
    let office = &cfg.pools["office"];
    assert_eq!(office.count(Family::V4).to_string(), "41");
    assert!(office.avoid_buggy_ips());

    // BFD.
    let fast = &cfg.bfd_profiles["fast"];
    assert_eq!(fast.receive_interval, Duration::from_millis(100));
    assert_eq!(fast.detect_multiplier, 3);
    assert_eq!(fast.echo_interval, Duration::from_millis(50));

    // Peers: timers, password, BFD, node selection.
    let r1 = &cfg.peers["tor-r1"];
    assert_eq!(r1.peer_asn, PeerAsn::Fixed(65000));
    assert_eq!(r1.address, "10.1.0.1".parse::<IpAddr>().expect("ip"));
    assert_eq!(r1.port, 179);
    assert_eq!(r1.hold_time, Duration::from_secs(9));
    assert_eq!(r1.keepalive_time, Duration::from_secs(3));
    assert_eq!(r1.connect_time, Duration::from_secs(5));
    assert_eq!(
        r1.password.as_ref().map(|p| p.as_bytes()),
        Some(&b"s3cr3t-md5"[..])
    );
    assert_eq!(r1.bfd_profile.as_ref(), Some(fast));
    assert!(r1.graceful_restart);
    let r2 = &cfg.peers["tor-r2"];
    assert_eq!(r2.hold_time, Duration::from_secs(30));
    assert_eq!(r2.keepalive_time, Duration::from_secs(10));
    assert_eq!(r2.connect_time, Duration::from_secs(2));
    assert_eq!(r2.router_id, Some("10.2.0.100".parse().expect("ip")));
    let node1 = labels(&[("kubernetes.io/hostname", "node-1"), ("rack", "r1")]);
    let on_node1: Vec<&str> = cfg
        .peers_for_node(&node1)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(on_node1, ["tor-r1"]);

    // Communities: aliases resolved.
    assert_eq!(
        cfg.communities["no-advertise"],
        Community::Standard(65535, 65282)
    );
    let hosts = &cfg.bgp_advertisements["prod-hosts"];
    let comms: Vec<Community> = hosts.communities.iter().copied().collect();
    assert_eq!(
        comms,
        [
            Community::Standard(64512, 300),
            Community::Standard(65535, 65282)
        ]
    );
    let pools: Vec<&str> = hosts.pools.iter().map(String::as_str).collect();
    assert_eq!(pools, ["prod", "prod-v6-small"]);
    let peers: Vec<&str> = hosts.peers.iter().map(String::as_str).collect();
    assert_eq!(peers, ["tor-r1", "tor-r2"]);
    assert_eq!(hosts.local_pref, Some(100));
    assert_eq!(hosts.aggregation_length, 32);
    let agg = &cfg.bgp_advertisements["prod-aggregate"];
    assert_eq!(
        agg.communities.iter().copied().collect::<Vec<_>>(),
        [Community::Large(64512, 1, 100)]
    );
    assert_eq!(
        (agg.aggregation_length, agg.aggregation_length_v6),
        (24, 48)
    );
    assert_eq!(
        agg.peers.iter().map(String::as_str).collect::<Vec<_>>(),
        ["tor-r1"]
    );
    let for_prod: Vec<&str> = cfg
        .bgp_advertisements_for_pool("prod")
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(for_prod, ["prod-aggregate", "prod-hosts"]);

    // L2.
    let l2 = &cfg.l2_advertisements["office"];
    assert_eq!(
        l2.pools.iter().map(String::as_str).collect::<Vec<_>>(),
        ["office"]
    );
    assert_eq!(
        l2.interfaces.iter().map(String::as_str).collect::<Vec<_>>(),
        ["bond0.100", "eth0"]
    );
    assert!(l2.node_selectors.matches(&node1));
    assert!(!l2.node_selectors.matches(&labels(&[("rack", "r2")])));
    assert_eq!(l2.preferred_nodes[0].weight, 50);
    assert!(l2.preferred_nodes[0].selector.matches(&node1));
}

#[test]
fn build_is_deterministic_and_order_independent() {
    let res = parse_manifests(FULL).expect("fixture parses");
    let a = build(&res, &BuildOptions::default()).expect("builds");
    let mut reversed = res.clone();
    reversed.pools.reverse();
    reversed.peers.reverse();
    reversed.bgp_advertisements.reverse();
    let b = build(&reversed, &BuildOptions::default()).expect("builds");
    assert_eq!(a, b);

    // A change is visible to `==`.
    let mut changed = res.clone();
    changed.peers[0].spec.hold_time = Some("12s".to_owned());
    let c = build(&changed, &BuildOptions::default()).expect("builds");
    assert_ne!(a, c);
}

#[test]
fn manifest_round_trip() {
    let res = parse_manifests(FULL).expect("fixture parses");
    let yaml = to_yaml(&res).expect("serialises");
    let again = parse_manifests(&yaml).expect("re-parses");
    assert_eq!(to_yaml(&again).expect("serialises"), yaml);
    let a = build(&res, &BuildOptions::default()).expect("builds");
    let b = build(&again, &BuildOptions::default()).expect("builds");
    assert_eq!(a, b);
}

#[test]
fn missing_references_can_be_deferred_for_webhooks() {
    let yaml = harness::peer(
        "p",
        "10.0.0.1",
        &["bfdProfile: later", "passwordSecret: {name: later}"],
    ) + &harness::doc("BGPAdvertisement", "a", &["communities: [later-alias]"]);
    let res = parse_manifests(&yaml).expect("parses");
    let errs = build(&res, &BuildOptions::default()).expect_err("strict build fails");
    assert_eq!(errs.len(), 3, "{errs:?}");
    let lenient = BuildOptions {
        allow_missing_references: true,
        ..BuildOptions::default()
    };
    let cfg = build(&res, &lenient).expect("lenient build passes");
    assert!(cfg.peers["p"].password.is_none());
}

#[test]
fn a_thousand_pools_and_their_overlaps() {
    let mut yaml = String::new();
    for i in 0..1000u32 {
        let (a, b) = (i / 256, i % 256);
        yaml.push_str(&harness::pool(
            &format!("p{i:04}"),
            &[&format!("10.{a}.{b}.0/24")],
        ));
    }
    let cfg = harness::parse_and_build(&yaml).expect("1000 disjoint pools build");
    assert_eq!(cfg.pools.len(), 1000);
    // One pool that overlaps all of them reports each overlap on both sides.
    yaml.push_str(&harness::pool("zz-big", &["10.0.0.0/8"]));
    let errs = harness::parse_and_build(&yaml).expect_err("overlap");
    assert!(errs.iter().all(|e| e.field == "spec.addresses[0]"));
    assert_eq!(errs.iter().filter(|e| e.name == "zz-big").count(), 1000);
}

#[test]
fn deploy_examples_build() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // No examples shipped yet.
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable example");
        let res = parse_manifests(&text).unwrap_or_else(|e| {
            panic!(
                "{}: {}",
                path.display(),
                ferrolb_config::error::render_errors(&e)
            )
        });
        if let Err(e) = build(&res, &BuildOptions::default()) {
            panic!(
                "{}: {}",
                path.display(),
                ferrolb_config::error::render_errors(&e)
            );
        }
    }
}
