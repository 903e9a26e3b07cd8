//! BGP decisions: the desired route set per peer of this node (see the module docs of
//! [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_config::model::{BgpAdvertisement, Community, Peer};
use ferrolb_config::service::TrafficPolicy;
use ipnet::IpNet;

use std::sync::Arc;

use super::l2::endpoint_check;
use super::{PeerNames, Reason, ServiceKey, Slots, View, distinct_ips, node_eligibility, pool_of};
use crate::bgp::open::Family;
use crate::bgp::update::{ExtCommunity, RouteAttrs, RouteSet};

/// Per (Service, IP): the peers the deciding node advertises to, or why none.
pub(super) type PerIp = Slots<Result<PeerNames, Reason>>;

/// The routes of `routes` whose prefixes belong to one of `families` (the families
/// negotiated on the session).
pub fn routes_for_families(routes: &RouteSet, families: &[Family]) -> RouteSet {
    routes
        .iter()
        .filter(|(net, _)| {
            let family = match net {
                IpNet::V4(_) => Family::Ipv4Unicast,
                IpNet::V6(_) => Family::Ipv6Unicast,
            };
            families.contains(&family)
        })
        .map(|(n, a)| (*n, a.clone()))
        .collect()
}

/// `ip` masked to `len` bits (clamped to the family's width, so a bad length cannot
/// fail).
fn prefix(ip: IpAddr, len: u8) -> IpNet {
    let max = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    IpNet::new(ip, len.min(max))
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

/// A route being merged from several (Service, advertisement) contributions.
#[derive(Default)]
struct Acc {
    attrs: RouteAttrs,
    /// The first contributing Service and its weighted-ECMP endpoint count (`None` when
    /// it does not ask for weighting; the largest of its contributions). Inline: most
    /// routes have a single contributing Service.
    first: Option<(ServiceKey, Option<u32>)>,
    /// Contributions of other Services, merged per Service (largest) in [`Acc::total`].
    more: Vec<(ServiceKey, Option<u32>)>,
}

impl Acc {
    fn add_weight(&mut self, key: &ServiceKey, weight: Option<u32>) {
        match &mut self.first {
            None => self.first = Some((key.clone(), weight)),
            Some((k, w)) if k == key => *w = (*w).max(weight),
            Some(_) => self.more.push((key.clone(), weight)),
        }
    }

    /// The endpoint count of the route: the sum over its Services of each one's largest
    /// count, `None` when a Service does not ask for weighting.
    fn total(mut self) -> Option<u64> {
        self.more.extend(self.first);
        // Per Service the largest weight first (`None` sorts below every count).
        self.more
            .sort_unstable_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
        self.more.dedup_by(|later, first| later.0 == first.0);
        self.more
            .iter()
            .map(|(_, w)| w.map(u64::from))
            .sum::<Option<u64>>()
    }
}

fn add_communities(attrs: &mut RouteAttrs, communities: &BTreeSet<Community>) {
    for c in communities {
        match *c {
            Community::Standard(a, b) => {
                attrs
                    .communities
                    .insert((u32::from(a) << 16) | u32::from(b));
            }
            Community::Large(a, b, c) => {
                attrs.large_communities.insert((a, b, c));
            }
        }
    }
}

/// BGP decisions of `inputs.node`: desired routes per peer and per (Service, IP) result.
pub(super) fn decide(inputs: &View<'_>) -> (BTreeMap<String, RouteSet>, PerIp) {
    let mut per_ip = PerIp::new();
    let me = inputs.nodes.get(inputs.node);
    let peers: Vec<&Peer> = match me {
        Some(n) => inputs.config.peers_for_node(&n.labels).collect(),
        None => Vec::new(),
    };
    // Shared names, so each decision's peer list copies no string.
    let names: BTreeMap<&str, Arc<str>> = peers
        .iter()
        .map(|p| (p.name.as_str(), Arc::from(p.name.as_str())))
        .collect();
    let mut acc: BTreeMap<&str, BTreeMap<IpNet, Acc>> = peers
        .iter()
        .map(|p| (p.name.as_str(), BTreeMap::new()))
        .collect();
    let eligibility = me.map(|n| node_eligibility(n, inputs.options));

    for (key, svc) in inputs.services {
        let summary = inputs.backends.summary(key);
        for ip in distinct_ips(svc) {
            let result: Result<PeerNames, Reason> = (|| {
                let pool = pool_of(inputs.config, ip).ok_or(Reason::NoPool)?;
                let ads: Vec<&BgpAdvertisement> = inputs
                    .config
                    .bgp_advertisements_for_pool(pool.name())
                    .collect();
                if ads.is_empty() {
                    return Err(Reason::NoAdvertisement);
                }
                let me = me.ok_or(Reason::NodeUnknown)?;
                let ads: Vec<&BgpAdvertisement> = ads
                    .into_iter()
                    .filter(|a| {
                        a.node_selectors.matches(&me.labels)
                            && a.service_selectors.matches(&svc.labels)
                    })
                    .collect();
                if ads.is_empty() {
                    return Err(Reason::NoMatchingAdvertisement);
                }
                if let Some(Err(r)) = &eligibility {
                    return Err(r.clone());
                }
                endpoint_check(&me.name, svc, &summary)?;
                let local_count = summary.usable_on(&me.name);
                let mut sent_to: PeerNames = Vec::new();
                for ad in &ads {
                    let weight = (svc.traffic_policy == TrafficPolicy::Local && ad.weighted_ecmp)
                        .then_some(local_count)
                        .flatten();
                    let net = prefix(ip, ad.aggregation_length_for(ip));
                    for peer in peers.iter().filter(|p| ad.peers.contains(&p.name)) {
                        if let Some(name) = names.get(peer.name.as_str()) {
                            sent_to.push(name.clone());
                        }
                        let Some(routes) = acc.get_mut(peer.name.as_str()) else {
                            continue;
                        };
                        let route = routes.entry(net).or_default();
                        add_communities(&mut route.attrs, &ad.communities);
                        if peer.peer_asn.is_ibgp(peer.my_asn) {
                            route.attrs.local_pref = route.attrs.local_pref.max(ad.local_pref);
                        }
                        route.add_weight(key, weight);
                    }
                }
                if sent_to.is_empty() {
                    return Err(Reason::NoPeers);
                }
                sent_to.sort_unstable();
                sent_to.dedup();
                sent_to.shrink_to_fit();
                Ok(sent_to)
            })();
            per_ip.push(Some(result));
        }
    }

    let routes = peers
        .iter()
        .map(|peer| {
            let set: RouteSet = acc
                .remove(peer.name.as_str())
                .unwrap_or_default()
                .into_iter()
                .map(|(net, mut a)| {
                    let mut attrs = std::mem::take(&mut a.attrs);
                    if let Some(total) = a.total()
                        && total > 0
                    {
                        attrs.ext_communities.insert(ExtCommunity::link_bandwidth(
                            peer.my_asn,
                            total.saturating_mul(inputs.options.link_bandwidth_per_endpoint),
                            inputs.options.link_bandwidth_transitive,
                        ));
                    }
                    (net, attrs)
                })
                .collect();
            (peer.name.clone(), set)
        })
        .collect();
    (routes, per_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masking_table() {
        let table = [
            ("192.0.2.77", 32, "192.0.2.77/32"),
            ("192.0.2.77", 24, "192.0.2.0/24"),
            ("192.0.2.77", 1, "128.0.0.0/1"),
            ("192.0.2.77", 40, "192.0.2.77/32"),
            ("2001:db8:1:2:3::9", 64, "2001:db8:1:2::/64"),
            ("2001:db8:1:2:3::9", 128, "2001:db8:1:2:3::9/128"),
            ("2001:db8:1:2:3::9", 200, "2001:db8:1:2:3::9/128"),
        ];
        for (ip, len, want) in table {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(prefix(ip, len).to_string(), want, "{ip}/{len}");
        }
    }

    #[test]
    fn family_filter() {
        let mut routes = RouteSet::new();
        for p in ["192.0.2.1/32", "2001:db8::1/128", "198.51.100.0/24"] {
            routes.insert(p.parse().expect("net"), RouteAttrs::default());
        }
        assert_eq!(
            routes_for_families(&routes, &[Family::Ipv4Unicast]).len(),
            2
        );
        let v6 = routes_for_families(&routes, &[Family::Ipv6Unicast]);
        assert_eq!(
            v6.keys().map(ToString::to_string).collect::<Vec<_>>(),
            ["2001:db8::1/128"]
        );
        assert!(routes_for_families(&routes, &[]).is_empty());
        assert_eq!(
            routes_for_families(&routes, &[Family::Ipv6Unicast, Family::Ipv4Unicast]),
            routes
        );
    }

    #[test]
    fn standard_communities_pack_into_32_bits() {
        let mut attrs = RouteAttrs::default();
        let set: BTreeSet<Community> = [
            Community::Standard(64500, 1),
            Community::Standard(65535, 65281),
            Community::Large(4_200_000_000, 1, 2),
        ]
        .into_iter()
        .collect();
        add_communities(&mut attrs, &set);
        assert_eq!(
            attrs.communities,
            [0xFBF4_0001u32, 0xFFFF_FF01].into_iter().collect()
        );
        assert_eq!(
            attrs.large_communities,
            [(4_200_000_000, 1, 2)].into_iter().collect()
        );
    }
}
