//! Random clusters: the L2 election never yields two owners for an IP, finds one whenever
//! a node could serve, and BGP announcers of `externalTrafficPolicy: Local` Services are
//! exactly the healthy nodes with usable local endpoints.

mod decide_common;

use std::collections::{BTreeMap, BTreeSet};

use decide_common::*;
use ferrolb_config::service::TrafficPolicy;
use ferrolb_speaker::bgp::update::ExtCommunity;
use ferrolb_speaker::decide::{
    EndpointInfo, Inputs, LINK_BANDWIDTH_PER_ENDPOINT, NodeInfo, l2_owners, node_eligibility,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct NodeSpec {
    ready: bool,
    network_unavailable: bool,
    excluded: bool,
    live: bool,
    zone: u8,
}

/// 0 ready, 1 terminating but serving, 2 neither.
#[derive(Debug, Clone)]
struct PodSpec {
    node: usize,
    state: u8,
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    ip: u8,
    v6: bool,
    local: bool,
    tier: u8,
    pods: Vec<PodSpec>,
}

#[derive(Debug, Clone)]
struct World {
    nodes: Vec<NodeSpec>,
    services: Vec<ServiceSpec>,
    l2_zone_only: bool,
    preferred_z2: Option<u8>,
    tier_ad: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.85),
        0u8..2,
    )
        .prop_map(
            |(ready, network_unavailable, excluded, live, zone)| NodeSpec {
                ready,
                network_unavailable,
                excluded,
                live,
                zone,
            },
        )
}

fn world() -> impl Strategy<Value = World> {
    prop::collection::vec(node_spec(), 1..7).prop_flat_map(|nodes| {
        let n = nodes.len();
        let pod = (0..n, 0u8..3).prop_map(|(node, state)| PodSpec { node, state });
        let service = (
            0u8..6,
            any::<bool>(),
            any::<bool>(),
            0u8..2,
            prop::collection::vec(pod, 0..6),
        )
            .prop_map(|(ip, v6, local, tier, pods)| ServiceSpec {
                ip,
                v6,
                local,
                tier,
                pods,
            });
        (
            Just(nodes),
            prop::collection::vec(service, 1..9),
            any::<bool>(),
            prop::option::of(1u8..=100),
            any::<bool>(),
        )
            .prop_map(
                |(nodes, services, l2_zone_only, preferred_z2, tier_ad)| World {
                    nodes,
                    services,
                    l2_zone_only,
                    preferred_z2,
                    tier_ad,
                },
            )
    })
}

fn node_name(i: usize) -> String {
    format!("node-{i}")
}

fn build(w: &World) -> Inputs {
    let nodes: Vec<NodeInfo> = w
        .nodes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let zone = if s.zone == 0 { "z1" } else { "z2" };
            let mut n = node(&node_name(i), &[("zone", zone)]);
            n.ready = s.ready;
            n.network_unavailable = s.network_unavailable;
            if s.excluded {
                n.labels.insert(
                    "node.kubernetes.io/exclude-from-external-load-balancers".into(),
                    String::new(),
                );
            }
            n
        })
        .collect();
    let mut inputs = cluster(&nodes);
    inputs.live_speakers = w
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, s)| s.live)
        .map(|(i, _)| node_name(i))
        .collect();
    inputs
        .config
        .pools
        .insert("p".into(), pool("p", &["192.0.2.0/24", "2001:db8::/64"]));
    let mut l2 = l2ad("l2", &["p"]);
    if w.l2_zone_only {
        l2.node_selectors = sel(&[("zone", "z1")]);
    }
    if let Some(weight) = w.preferred_z2 {
        l2.preferred_nodes = vec![preferred(weight, &[("zone", "z2")])];
    }
    inputs.config.l2_advertisements.insert("l2".into(), l2);
    if w.tier_ad {
        let mut ad = l2ad("tier", &["p"]);
        ad.service_selectors = sel(&[("tier", "a")]);
        ad.interfaces = ["eth1".to_owned()].into_iter().collect();
        inputs.config.l2_advertisements.insert("tier".into(), ad);
    }
    inputs
        .config
        .peers
        .insert("tor".into(), peer("tor", 64512, 64500));
    let mut bgp = bgpad("bgp", &["p"], &["tor"]);
    bgp.weighted_ecmp = true;
    inputs.config.bgp_advertisements.insert("bgp".into(), bgp);

    for (i, s) in w.services.iter().enumerate() {
        let mut ips = vec![format!("192.0.2.{}", s.ip)];
        if s.v6 {
            ips.push(format!("2001:db8::{}", s.ip));
        }
        let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let policy = if s.local {
            TrafficPolicy::Local
        } else {
            TrafficPolicy::Cluster
        };
        let mut info = svc(&format!("ns/s{i}"), &ip_refs, policy);
        info.labels = labels(&[("tier", if s.tier == 0 { "a" } else { "b" })]);
        let eps: Vec<EndpointInfo> = s
            .pods
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let id = format!("s{i}-p{j}");
                let n = node_name(p.node);
                match p.state {
                    0 => ready(&id, &n),
                    1 => terminating(&id, &n),
                    _ => unready(&id, &n),
                }
            })
            .collect();
        add_service(&mut inputs, info, eps);
    }
    inputs
}

/// The documented endpoint rule, restated independently: usable local pods per node.
fn usable_pods(s: &ServiceSpec) -> BTreeMap<usize, u64> {
    let any_ready = s.pods.iter().any(|p| p.state == 0);
    let mut out = BTreeMap::new();
    for p in &s.pods {
        let usable = if any_ready {
            p.state == 0
        } else {
            p.state == 1
        };
        if usable {
            *out.entry(p.node).or_insert(0) += 1;
        }
    }
    out
}

fn healthy(n: &NodeSpec) -> bool {
    n.ready && !n.network_unavailable && !n.excluded
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn at_most_one_l2_owner_and_one_when_possible(w in world()) {
        let inputs = build(&w);
        let announcers = l2_announcers(&inputs);
        let cluster_view = l2_owners(&inputs);
        for (ip, nodes) in &announcers {
            prop_assert!(nodes.len() <= 1, "{} announced by {:?}", ip, nodes);
            prop_assert_eq!(
                nodes.iter().next().cloned(),
                cluster_view.get(ip).cloned().flatten(),
                "views disagree on {}", ip
            );
        }
        // Some node could serve a Service on the IP => the IP has an owner.
        for (i, s) in w.services.iter().enumerate() {
            let usable = usable_pods(s);
            let any_serving = s.pods.iter().any(|p| p.state <= 1);
            let could = w.nodes.iter().enumerate().any(|(n, spec)| {
                let ad_selects_node = !w.l2_zone_only || spec.zone == 0
                    || (w.tier_ad && s.tier == 0);
                healthy(spec) && spec.live && ad_selects_node
                    && any_serving
                    && (!s.local || usable.contains_key(&n))
            });
            let ip = ip(&format!("192.0.2.{}", s.ip));
            prop_assert!(
                !could || announcers[&ip].len() == 1,
                "s{} on {}: a node could serve but nobody announces",
                i,
                ip
            );
            if !could {
                // Whoever owns the IP does so for another Service sharing it.
                let shared = w.services.iter().enumerate().any(|(j, o)| j != i && o.ip == s.ip);
                prop_assert!(shared || announcers[&ip].is_empty(), "s{} on {}", i, ip);
            }
        }
    }

    #[test]
    fn bgp_local_announcers_are_nodes_with_usable_local_pods(w in world()) {
        let inputs = build(&w);
        let all = decide_all(&inputs);
        for (i, s) in w.services.iter().enumerate() {
            let usable = usable_pods(s);
            let any_serving = s.pods.iter().any(|p| p.state <= 1);
            let want: BTreeSet<String> = w
                .nodes
                .iter()
                .enumerate()
                .filter(|(n, spec)| {
                    healthy(spec)
                        && any_serving
                        && (!s.local || usable.contains_key(n))
                })
                .map(|(n, _)| node_name(n))
                .collect();
            let ip = ip(&format!("192.0.2.{}", s.ip));
            let got: BTreeSet<String> = all
                .iter()
                .filter(|(_, d)| d.services[&key(&format!("ns/s{i}"))].ips[&ip].bgp.is_ok())
                .map(|(n, _)| n.clone())
                .collect();
            prop_assert_eq!(&got, &want, "s{} ({:?})", i, s);
            // Liveness is an L2 input only; health is checked the same way for both modes.
            for n in &got {
                prop_assert!(node_eligibility(&inputs.nodes[n], &inputs.options).is_ok());
            }
            // A Local Service alone on its IP carries its local pod count as bandwidth.
            let alone = w.services.iter().filter(|o| o.ip == s.ip).count() == 1;
            if s.local && alone {
                for (n, count) in &usable {
                    let name = node_name(*n);
                    if !want.contains(&name) {
                        continue;
                    }
                    let route = &all[&name].bgp["tor"][&format!("{ip}/32").parse().expect("net")];
                    prop_assert_eq!(
                        route.ext_communities.iter().next().copied(),
                        Some(ExtCommunity::link_bandwidth(64512, count * LINK_BANDWIDTH_PER_ENDPOINT, false))
                    );
                }
            }
        }
    }
}
