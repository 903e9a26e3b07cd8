//! L2 election: one announcing node per IP (see the module docs of [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_config::model::L2Advertisement;
use ferrolb_config::service::TrafficPolicy;
use ring::digest::{Digest, SHA256, digest};

use super::view::EndpointSummary;
use super::{
    Interfaces, NodeInfo, Reason, ServiceInfo, Slots, View, distinct_ips, node_eligibility, pool_of,
};

/// Per (Service, IP): the L2 decision of the deciding node.
pub(super) type PerIp = Slots<Result<Interfaces, Reason>>;

/// `sha256(node + "#" + ip)`, MetalLB's tie-break key.
#[cfg(test)]
fn election_hash(node: &str, ip: IpAddr) -> Digest {
    hash_with(&mut String::new(), node, &ip.to_string())
}

/// [`election_hash`] of the IP written as `ip`, reusing `buf` for the key.
fn hash_with(buf: &mut String, node: &str, ip: &str) -> Digest {
    buf.clear();
    buf.push_str(node);
    buf.push('#');
    buf.push_str(ip);
    digest(&SHA256, buf.as_bytes())
}

/// An L2 advertisement with its verdict on every node, computed once per decision.
struct AdFacts<'a> {
    ad: &'a L2Advertisement,
    /// `nodeSelectors` select node `i`.
    selects: Vec<bool>,
    /// Sum of the `preferredNodeSelectors` weights matching node `i`.
    score: Vec<u64>,
}

/// Cluster-wide facts reused for every IP.
struct Cluster<'a> {
    nodes: Vec<&'a NodeInfo>,
    /// Base eligibility (live, ready, not excluded, network available) per node.
    eligible: Vec<bool>,
    /// Every L2 advertisement, in name order.
    ads: Vec<AdFacts<'a>>,
}

impl<'a> Cluster<'a> {
    fn new(inputs: &View<'a>) -> Self {
        let nodes: Vec<&NodeInfo> = inputs.nodes.values().collect();
        let eligible = nodes
            .iter()
            .map(|n| {
                inputs.live_speakers.contains(&n.name)
                    && node_eligibility(n, inputs.options).is_ok()
            })
            .collect();
        let ads = inputs
            .config
            .l2_advertisements
            .values()
            .map(|ad| AdFacts {
                ad,
                selects: nodes
                    .iter()
                    .map(|n| ad.node_selectors.matches(&n.labels))
                    .collect(),
                score: nodes
                    .iter()
                    .map(|n| {
                        ad.preferred_nodes
                            .iter()
                            .filter(|p| p.selector.matches(&n.labels))
                            .map(|p| u64::from(p.weight))
                            .sum()
                    })
                    .collect(),
            })
            .collect();
        Self {
            nodes,
            eligible,
            ads,
        }
    }

    fn index_of(&self, node: &str) -> Option<usize> {
        self.nodes
            .binary_search_by(|n| n.name.as_str().cmp(node))
            .ok()
    }
}

/// One IP with the Services carrying it and their matching advertisements.
struct Group<'a> {
    ip: IpAddr,
    /// Each Service with its result slot and the indexes (in [`Cluster::ads`]) of the
    /// pool's L2 advertisements selecting it.
    services: Vec<(&'a ServiceInfo, usize, Vec<usize>)>,
    /// Union of the advertisement indexes of all the Services, sorted.
    ads: Vec<usize>,
}

/// Groups Service IPs by IP. IPs in no pool or in a pool without L2 advertisement get
/// their reason directly in `per_ip` (sized here: one slot per Service IP).
fn groups<'a>(inputs: &View<'a>, cluster: &Cluster<'a>, per_ip: &mut PerIp) -> Vec<Group<'a>> {
    // (IP, slot, Service), sorted by IP: one allocation for all Service IPs.
    let mut by_ip: Vec<(IpAddr, usize, &ServiceInfo)> = Vec::new();
    for svc in inputs.services.values() {
        for ip in distinct_ips(svc) {
            by_ip.push((ip, by_ip.len(), svc));
        }
    }
    per_ip.clear();
    per_ip.resize_with(by_ip.len(), || None);
    by_ip.sort_unstable_by_key(|&(ip, slot, _)| (ip, slot));
    let mut out = Vec::new();
    for chunk in by_ip.chunk_by(|a, b| a.0 == b.0) {
        let ip = chunk[0].0;
        let svcs = chunk.iter().map(|&(_, slot, svc)| (svc, slot));
        let reason = match pool_of(inputs.config, ip) {
            None => Some(Reason::NoPool),
            Some(pool) => {
                let ads: Vec<usize> = cluster
                    .ads
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.ad.pools.contains(pool.name()))
                    .map(|(i, _)| i)
                    .collect();
                if ads.is_empty() {
                    Some(Reason::NoAdvertisement)
                } else {
                    let services: Vec<(&ServiceInfo, usize, Vec<usize>)> = svcs
                        .clone()
                        .map(|(s, slot)| {
                            let matching = ads
                                .iter()
                                .copied()
                                .filter(|&a| cluster.ads[a].ad.service_selectors.matches(&s.labels))
                                .collect();
                            (s, slot, matching)
                        })
                        .collect();
                    let union: BTreeSet<usize> = services
                        .iter()
                        .flat_map(|(_, _, a)| a.iter().copied())
                        .collect();
                    out.push(Group {
                        ip,
                        services,
                        ads: union.into_iter().collect(),
                    });
                    None
                }
            }
        };
        if let Some(reason) = reason {
            for (_, slot) in svcs {
                per_ip[slot] = Some(Err(reason.clone()));
            }
        }
    }
    out
}

/// Whether node `i` may announce `svc` (ignoring liveness and node health, which
/// [`Cluster::eligible`] covers), or why not.
fn service_candidate(
    cluster: &Cluster<'_>,
    i: usize,
    svc: &ServiceInfo,
    ads: &[usize],
    summary: &EndpointSummary<'_>,
) -> Result<(), Reason> {
    if !ads.iter().any(|&a| cluster.ads[a].selects[i]) {
        return Err(Reason::NoMatchingAdvertisement);
    }
    endpoint_check(&cluster.nodes[i].name, svc, summary)
}

/// The endpoint rule for one node.
pub(super) fn endpoint_check(
    node: &str,
    svc: &ServiceInfo,
    summary: &EndpointSummary<'_>,
) -> Result<(), Reason> {
    if !summary.any_serving {
        return Err(Reason::NoEndpoints);
    }
    if svc.traffic_policy == TrafficPolicy::Local && summary.usable_on(node).is_none() {
        return Err(Reason::NoLocalEndpoints);
    }
    Ok(())
}

/// Elects the owner of `group.ip` among all nodes; returns its index. Ranking: number of
/// the IP's Services the node can serve, then preferred score, then the hash.
fn elect(
    cluster: &Cluster<'_>,
    group: &Group<'_>,
    backends: &dyn super::Backends,
) -> Option<usize> {
    let services: Vec<(&ServiceInfo, &[usize], EndpointSummary<'_>)> = group
        .services
        .iter()
        .map(|(svc, _, ads)| (*svc, ads.as_slice(), backends.summary(&svc.key)))
        .collect();
    // (node, coverage, score) per candidate node.
    let mut ranked: Vec<(usize, usize, u64)> = Vec::new();
    for (i, _) in cluster.eligible.iter().enumerate().filter(|(_, e)| **e) {
        let coverage = services
            .iter()
            .filter(|(svc, ads, summary)| service_candidate(cluster, i, svc, ads, summary).is_ok())
            .count();
        if coverage == 0 {
            continue;
        }
        let score = group
            .ads
            .iter()
            .filter(|&&a| cluster.ads[a].selects[i])
            .map(|&a| cluster.ads[a].score[i])
            .sum();
        ranked.push((i, coverage, score));
    }
    let best = ranked.iter().map(|&(_, c, s)| (c, s)).max()?;
    let ip = group.ip.to_string();
    let mut buf = String::new();
    ranked
        .iter()
        .filter(|&&(_, c, s)| (c, s) == best)
        .map(|&(i, _, _)| (i, hash_with(&mut buf, &cluster.nodes[i].name, &ip)))
        .min_by(|a, b| a.1.as_ref().cmp(b.1.as_ref()).then(a.0.cmp(&b.0)))
        .map(|(i, _)| i)
}

/// L2 decisions of `inputs.node`: announced IPs and per (Service, IP) result.
pub(super) fn decide(inputs: &View<'_>) -> (BTreeMap<IpAddr, Interfaces>, PerIp) {
    let mut per_ip = PerIp::new();
    let mut announce = BTreeMap::new();
    let cluster = Cluster::new(inputs);
    let groups = groups(inputs, &cluster, &mut per_ip);
    let me = cluster.index_of(inputs.node);
    // Why this node is not eligible at all, if it is not.
    let my_reason = match me {
        None => Some(Reason::NodeUnknown),
        Some(i) => node_eligibility(cluster.nodes[i], inputs.options)
            .err()
            .or_else(|| {
                (!inputs.live_speakers.contains(inputs.node)).then_some(Reason::SpeakerNotAlive)
            }),
    };
    for group in &groups {
        // This node's own standing per Service.
        let mine: Vec<Result<(), Reason>> = group
            .services
            .iter()
            .map(|(svc, _, ads)| {
                if ads.is_empty() {
                    return Err(Reason::NoMatchingAdvertisement);
                }
                let Some(me) = me else {
                    return Err(Reason::NodeUnknown);
                };
                if !ads.iter().any(|&a| cluster.ads[a].selects[me]) {
                    return Err(Reason::NoMatchingAdvertisement);
                }
                if let Some(r) = &my_reason {
                    return Err(r.clone());
                }
                service_candidate(&cluster, me, svc, ads, &inputs.backends.summary(&svc.key))
            })
            .collect();
        let owner = if mine.iter().any(Result::is_ok) {
            elect(&cluster, group, inputs.backends)
        } else {
            None
        };
        // Interfaces when this node won: the advertisements selecting it, of the Services
        // it can serve.
        let mut interfaces: Option<Interfaces> = None;
        if let Some(me) = me.filter(|&m| owner == Some(m)) {
            for ((_, _, ads), r) in group.services.iter().zip(&mine) {
                if r.is_err() {
                    continue;
                }
                for &a in ads.iter().filter(|&&a| cluster.ads[a].selects[me]) {
                    let ifs = Interfaces::from_list(&cluster.ads[a].ad.interfaces);
                    match &mut interfaces {
                        Some(i) => i.union_with(&ifs),
                        None => interfaces = Some(ifs),
                    }
                }
            }
        }
        for ((_, slot, _), r) in group.services.iter().zip(mine) {
            let result = match (r, &interfaces) {
                (Err(reason), _) => Err(reason),
                (Ok(()), Some(ifs)) => Ok(ifs.clone()),
                (Ok(()), None) => Err(Reason::NotOwner {
                    owner: owner.map(|i| cluster.nodes[i].name.clone()),
                }),
            };
            per_ip[*slot] = Some(result);
        }
        if let Some(ifs) = interfaces {
            announce.insert(group.ip, ifs);
        }
    }
    (announce, per_ip)
}

/// Owner of every Service IP with an L2 advertisement (`None`: no eligible node).
pub(super) fn owners(inputs: &View<'_>) -> BTreeMap<IpAddr, Option<String>> {
    let cluster = Cluster::new(inputs);
    let mut scratch = PerIp::new();
    let groups = groups(inputs, &cluster, &mut scratch);
    groups
        .iter()
        .map(|g| {
            (
                g.ip,
                elect(&cluster, g, inputs.backends).map(|i| cluster.nodes[i].name.clone()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_prefix(d: &Digest) -> String {
        d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn election_hash_matches_reference_digests() {
        // Digests computed independently with coreutils `sha256sum` of the exact strings.
        let table = [
            ("node-a", "192.0.2.10", "d4b84135501a6622"),
            ("node-b", "192.0.2.10", "6e9fb809c116d8f2"),
            ("node-c", "192.0.2.10", "39f2d7a8f2401847"),
            ("node-a", "2001:db8::10", "5525059d790ad6c9"),
            ("node-b", "2001:db8::10", "21d5668f18c03bbe"),
            ("node-c", "2001:db8::10", "d30d3eb7a24270e0"),
        ];
        for (node, ip, want) in table {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(hex_prefix(&election_hash(node, ip)), want, "{node}#{ip}");
        }
    }

    #[test]
    fn ip_strings_are_rfc5952_like_go() {
        // Go's net.IP.String() output for the same addresses.
        let table = [
            (
                "2001:0db8:0000:0000:0001:0000:0000:0001",
                "2001:db8::1:0:0:1",
            ),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("2001:DB8::A", "2001:db8::a"),
            ("::1", "::1"),
            ("192.000.2.1", ""),
            ("192.0.2.1", "192.0.2.1"),
        ];
        for (input, want) in table {
            match input.parse::<IpAddr>() {
                Ok(ip) => assert_eq!(ip.to_string(), want, "{input}"),
                Err(_) => assert_eq!(want, "", "{input} should parse"),
            }
        }
    }
}
