//! Announcement decisions: which Service IPs this node announces, by L2 and by BGP.
//!
//! Pure functions of an [`Inputs`] snapshot (configuration, nodes, live speakers,
//! Services, endpoints): no clock, no I/O, no randomness, so every speaker computes the
//! same answer from the same inputs and the L2 election needs no messages between
//! speakers. [`decide`] returns [`Decisions`] for one node; [`diff`] compares two of them
//! (the L2 announcer sends gratuitous ARP / unsolicited NA only for
//! [`DecisionsDiff::l2_gained`]); [`l2_owners`] is the cluster-wide view of the election.
//!
//! # Node eligibility
//! A node may announce when its `Ready` condition is `True`, its `NetworkUnavailable`
//! condition is not `True`, it is not labelled [`EXCLUDE_LB_LABEL`] (unless
//! [`Options::ignore_exclude_lb`]), and, for L2, its speaker is in
//! [`Inputs::live_speakers`]. For BGP the speaker deciding is alive by definition.
//!
//! # Endpoint rule
//! An endpoint is *ready* when `conditions.ready` is true or absent, and *serving* when
//! ready or `conditions.serving` is true (terminating pods that still pass readiness).
//! - `externalTrafficPolicy: Cluster`: announce when at least one endpoint anywhere is
//!   ready or serving (MetalLB's `ready == nil || ready || serving`).
//! - `externalTrafficPolicy: Local`: a node is usable when it has a *ready* local
//!   endpoint (`nodeName`). Only when no endpoint of the Service is ready anywhere do
//!   nodes with a serving, terminating local endpoint count, mirroring kube-proxy's
//!   terminating-endpoint fallback. So a node whose last pods are terminating withdraws
//!   while other nodes still have ready pods (draining), but a Service whose pods are
//!   all terminating keeps being announced where they still serve.
//!
//! # BGP
//! Per peer whose `nodeSelectors` select this node, the desired [`RouteSet`]: every IP of
//! every Service whose pool has a BGP advertisement selecting this node, the Service
//! and the peer, masked to the advertisement's aggregation length. Prefixes produced
//! more than once (aggregation, shared IPs, several advertisements) are merged:
//! communities and large communities are unioned; LOCAL_PREF (sent on iBGP sessions
//! only) is the maximum of the values set (conflicts are rejected by config validation;
//! the maximum makes the result independent of order); the link-bandwidth community is
//! described below. Both address families are produced; the session layer keeps the
//! families it negotiated ([`routes_for_families`]).
//!
//! # Weighted ECMP
//! For an `externalTrafficPolicy: Local` Service whose advertisement sets
//! `weightedECMP`, the route carries the link-bandwidth extended community with
//! `usable local endpoints x` [`Options::link_bandwidth_per_endpoint`] bytes/s (default
//! [`LINK_BANDWIDTH_PER_ENDPOINT`], 1 Gbit/s, a whole number of Mbit/s because FRR
//! converts to Mbit/s with truncation). When several Services share a prefix the
//! endpoint counts of the distinct Services are summed; the community is attached only
//! when every Service contributing to the prefix asks for weighting (a Cluster or
//! unweighted Service in the aggregate makes it plain ECMP).
//!
//! # L2
//! One node announces each IP. All Services carrying the IP elect together with the same
//! key, so shared-IP Services land on one node. For each Service, its candidate nodes
//! are the eligible nodes selected by the `nodeSelectors` of an L2 advertisement of the
//! IP's pool that selects the Service, restricted by the endpoint rule. Candidates of
//! all Services on the IP are pooled and ranked by: the number of those Services the node
//! is a candidate for (higher first; equal for all when the Services agree, which the
//! allocator guarantees since shared IPs need the same traffic policy and, for Local,
//! the same pod selector), then the sum of the `preferredNodeSelectors` weights of the
//! advertisements (of the IP's Services) selecting the node (higher first), then
//! `sha256(node_name + "#" + ip)` ascending, MetalLB's tie-break, so mixed clusters elect
//! alike. Unlike MetalLB, each IP of a dual-stack Service elects on its own address
//! (MetalLB uses the first ingress IP for both). MetalLB refuses shared IPs whose
//! advertisements use `serviceSelectors`; pooling makes that case well-defined, so it is
//! allowed. The owner answers on the union of the `interfaces` of the advertisements
//! selecting it (empty list = every interface).

mod bgp;
mod l2;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Index;
use std::sync::Arc;

use ferrolb_config::model::Config;
use ferrolb_config::pool::Pool;

pub use self::bgp::routes_for_families;
pub use self::view::{
    EXCLUDE_LB_LABEL, EndpointInfo, EndpointSummary, NodeInfo, SERVICE_NAME_LABEL, ServiceInfo,
    ServiceKey, endpoints_from_slices,
};
use crate::bgp::update::RouteSet;

/// Link bandwidth per usable local endpoint: 1 Gbit/s in bytes per second.
pub const LINK_BANDWIDTH_PER_ENDPOINT: u64 = 125_000_000;

/// Knobs of the decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Let nodes labelled [`EXCLUDE_LB_LABEL`] announce (`--ignore-exclude-lb`).
    pub ignore_exclude_lb: bool,
    /// Bytes per second advertised per usable local endpoint with weighted ECMP.
    pub link_bandwidth_per_endpoint: u64,
    /// Send the transitive form of the link-bandwidth community (type 0x00) instead of
    /// the non-transitive one (0x40).
    pub link_bandwidth_transitive: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ignore_exclude_lb: false,
            link_bandwidth_per_endpoint: LINK_BANDWIDTH_PER_ENDPOINT,
            link_bandwidth_transitive: false,
        }
    }
}

/// Everything a decision depends on. The speaker keeps one, updates its fields from
/// watches and membership, and calls [`decide`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Name of the node deciding.
    pub node: String,
    /// The running configuration.
    pub config: Config,
    /// Every node, by name.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Nodes whose speaker the membership layer sees alive (L2 only).
    pub live_speakers: BTreeSet<String>,
    /// Managed LoadBalancer Services, by key.
    pub services: BTreeMap<ServiceKey, ServiceInfo>,
    /// Backends by Service (see [`endpoints_from_slices`]); a Service absent here has none.
    pub endpoints: BTreeMap<ServiceKey, Vec<EndpointInfo>>,
    /// Knobs.
    pub options: Options,
}

impl Inputs {
    /// The borrowed view [`decide_view`] reads.
    pub fn view(&self) -> View<'_> {
        View {
            node: &self.node,
            config: &self.config,
            nodes: &self.nodes,
            live_speakers: &self.live_speakers,
            options: &self.options,
            services: &self.services,
            backends: &self.endpoints,
        }
    }
}

/// The backends of each Service, as the decisions read them.
pub trait Backends {
    /// The endpoint summary of the Service `key` (no backend: the default summary).
    fn summary(&self, key: &ServiceKey) -> EndpointSummary<'_>;
}

impl Backends for BTreeMap<ServiceKey, Vec<EndpointInfo>> {
    fn summary(&self, key: &ServiceKey) -> EndpointSummary<'_> {
        self.get(key)
            .map(|eps| EndpointSummary::of(eps))
            .unwrap_or_default()
    }
}

/// [`Inputs`] borrowed: the agent builds one over its caches, so a decision copies no
/// Service and no backend.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// Name of the node deciding.
    pub node: &'a str,
    /// The running configuration.
    pub config: &'a Config,
    /// Every node, by name.
    pub nodes: &'a BTreeMap<String, NodeInfo>,
    /// Nodes whose speaker the membership layer sees alive (L2 only).
    pub live_speakers: &'a BTreeSet<String>,
    /// Knobs.
    pub options: &'a Options,
    /// Managed LoadBalancer Services, by key.
    pub services: &'a BTreeMap<ServiceKey, ServiceInfo>,
    /// Backends by Service.
    pub backends: &'a dyn Backends,
}

/// Why an IP is not announced by this node in one mode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum Reason {
    /// The IP is in no configured pool.
    #[error("the IP is in no configured pool")]
    NoPool,
    /// The IP's pool has no advertisement of this mode.
    #[error("the pool has no advertisement of this mode")]
    NoAdvertisement,
    /// No advertisement of the pool selects both this node and the Service.
    #[error("no advertisement selects this node and the Service")]
    NoMatchingAdvertisement,
    /// This node is not among the known nodes.
    #[error("this node is unknown")]
    NodeUnknown,
    /// The membership layer does not see this node's speaker alive.
    #[error("this node's speaker is not a live member")]
    SpeakerNotAlive,
    /// The node is labelled to be excluded from external load balancers.
    #[error("the node is labelled {EXCLUDE_LB_LABEL}")]
    NodeExcluded,
    /// The node's `NetworkUnavailable` condition is true.
    #[error("the node's network is unavailable")]
    NetworkUnavailable,
    /// The node's `Ready` condition is not true.
    #[error("the node is not ready")]
    NodeNotReady,
    /// No endpoint of the Service is ready or serving anywhere.
    #[error("the Service has no serving endpoint")]
    NoEndpoints,
    /// `externalTrafficPolicy: Local` and no usable endpoint runs on this node.
    #[error("no usable endpoint of the Service runs on this node")]
    NoLocalEndpoints,
    /// Another node (or none) won the L2 election for the IP.
    #[error("the IP is announced by {}", owner.as_deref().unwrap_or("no node"))]
    NotOwner {
        /// The elected node.
        owner: Option<String>,
    },
    /// No BGP peer of this node is selected by the matching advertisements.
    #[error("no BGP peer of this node is selected by the advertisements")]
    NoPeers,
}

/// Whether `node` may announce, apart from speaker liveness and advertisement selectors.
pub fn node_eligibility(node: &NodeInfo, options: &Options) -> Result<(), Reason> {
    if node.excluded_from_lb() && !options.ignore_exclude_lb {
        return Err(Reason::NodeExcluded);
    }
    if node.network_unavailable {
        return Err(Reason::NetworkUnavailable);
    }
    if !node.ready {
        return Err(Reason::NodeNotReady);
    }
    Ok(())
}

/// Interfaces an IP is answered on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interfaces {
    /// Every interface that is up.
    All,
    /// Only these interfaces.
    Only(BTreeSet<String>),
}

impl Interfaces {
    /// The interfaces of an advertisement's `interfaces` list (empty = all).
    pub fn from_list(list: &BTreeSet<String>) -> Self {
        if list.is_empty() {
            Self::All
        } else {
            Self::Only(list.clone())
        }
    }

    /// Adds `other` (a union; `All` absorbs everything).
    pub fn union_with(&mut self, other: &Interfaces) {
        match (&mut *self, other) {
            (Self::All, _) => {}
            (_, Self::All) => *self = Self::All,
            (Self::Only(a), Self::Only(b)) => a.extend(b.iter().cloned()),
        }
    }

    /// The names for a status object: empty for [`Interfaces::All`].
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::All => Vec::new(),
            Self::Only(s) => s.iter().cloned().collect(),
        }
    }
}

/// What this node does with one IP of one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDecision {
    /// L2: the interfaces this node answers on, or why it does not.
    pub l2: Result<Interfaces, Reason>,
    /// BGP: the peers this node advertises the IP (or its aggregate) to, or why none.
    pub bgp: Result<PeerNames, Reason>,
}

/// Peer names, sorted and distinct; shared strings, so copies cost no allocation.
pub type PeerNames = Vec<Arc<str>>;

/// Per IP decisions of one Service, sorted by IP (a Service has one or two IPs, so a
/// sorted vector, not a tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpDecisions(Vec<(IpAddr, IpDecision)>);

impl IpDecisions {
    /// Sets the decision of `ip`.
    pub fn insert(&mut self, ip: IpAddr, d: IpDecision) {
        match self.0.binary_search_by(|(i, _)| i.cmp(&ip)) {
            Ok(i) => self.0[i].1 = d,
            Err(i) => self.0.insert(i, (ip, d)),
        }
    }

    /// The decision of `ip`.
    pub fn get(&self, ip: &IpAddr) -> Option<&IpDecision> {
        self.0
            .binary_search_by(|(i, _)| i.cmp(ip))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Decisions by IP, in IP order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &IpDecision)> {
        self.0.iter().map(|(ip, d)| (ip, d))
    }

    /// Decisions in IP order.
    pub fn values(&self) -> impl Iterator<Item = &IpDecision> {
        self.0.iter().map(|(_, d)| d)
    }

    /// Number of IPs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no IP.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Index<&IpAddr> for IpDecisions {
    type Output = IpDecision;

    fn index(&self, ip: &IpAddr) -> &IpDecision {
        self.get(ip).expect("no decision for this IP")
    }
}

/// What this node does for one Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDecision {
    /// Per IP of the Service.
    pub ips: IpDecisions,
}

impl ServiceDecision {
    /// Interfaces this node answers on for the Service's IPs (union), if it announces
    /// any of them by L2: the content of its `ServiceL2Status`.
    pub fn l2_interfaces(&self) -> Option<Interfaces> {
        let mut out: Option<Interfaces> = None;
        for ifs in self.ips.values().filter_map(|d| d.l2.as_ref().ok()) {
            match &mut out {
                Some(o) => o.union_with(ifs),
                None => out = Some(ifs.clone()),
            }
        }
        out
    }

    /// Peers this node advertises any of the Service's IPs to, sorted: the content of
    /// its `ServiceBGPStatus`.
    pub fn bgp_peers(&self) -> PeerNames {
        let mut out: PeerNames = Vec::new();
        for d in self.ips.values().filter_map(|d| d.bgp.as_ref().ok()) {
            if out.is_empty() {
                out.clone_from(d);
            } else {
                out.extend(d.iter().cloned());
                out.sort_unstable();
                out.dedup();
            }
        }
        out
    }
}

/// Content of a `ServiceL2Status` written by the announcing node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Status {
    /// The announcing node (this one).
    pub node: String,
    /// Interfaces answered on; empty = all.
    pub interfaces: Vec<String>,
}

/// Content of a `ServiceBGPStatus` written by an advertising node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpStatus {
    /// The advertising node (this one).
    pub node: Arc<str>,
    /// Peers advertised to, sorted.
    pub peers: PeerNames,
}

/// Everything one node announces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// The node these decisions are for.
    pub node: String,
    /// IPs this node answers ARP / NDP for, with their interfaces.
    pub l2: BTreeMap<IpAddr, Interfaces>,
    /// Desired routes per peer name, for every peer whose `nodeSelectors` select this
    /// node (an empty set when nothing is advertised to it).
    pub bgp: BTreeMap<String, RouteSet>,
    /// Per Service with at least one IP.
    pub services: BTreeMap<ServiceKey, ServiceDecision>,
}

impl Decisions {
    /// `ServiceL2Status` content for every Service this node announces by L2.
    pub fn l2_statuses(&self) -> BTreeMap<ServiceKey, L2Status> {
        self.services
            .iter()
            .filter_map(|(k, d)| {
                d.l2_interfaces().map(|ifs| {
                    (
                        k.clone(),
                        L2Status {
                            node: self.node.clone(),
                            interfaces: ifs.names(),
                        },
                    )
                })
            })
            .collect()
    }

    /// `ServiceBGPStatus` content for every Service this node advertises by BGP.
    pub fn bgp_statuses(&self) -> BTreeMap<ServiceKey, BgpStatus> {
        let node: Arc<str> = self.node.as_str().into();
        self.services
            .iter()
            .filter_map(|(k, d)| {
                let peers = d.bgp_peers();
                (!peers.is_empty()).then(|| {
                    (
                        k.clone(),
                        BgpStatus {
                            node: node.clone(),
                            peers,
                        },
                    )
                })
            })
            .collect()
    }
}

/// The pool containing `ip` (pools never overlap in a validated config).
fn pool_of(config: &Config, ip: IpAddr) -> Option<&Pool> {
    config.pools.values().find(|p| p.contains(ip))
}

/// Results per (Service, IP) in slot order: Services by key, then each Service's
/// distinct IPs ascending ([`distinct_ips`]). A flat vector, so no result carries a copy
/// of its key.
type Slots<T> = Vec<Option<T>>;

/// The result in `slot`, taken out (a slot the mode did not fill: no advertisement).
fn take_slot<T>(slots: &mut Slots<Result<T, Reason>>, slot: usize) -> Result<T, Reason> {
    slots
        .get_mut(slot)
        .and_then(Option::take)
        .unwrap_or(Err(Reason::NoAdvertisement))
}

/// A Service's distinct IPs, ascending: the order of its result slots.
fn distinct_ips(svc: &ServiceInfo) -> Vec<IpAddr> {
    let mut ips = svc.ips.clone();
    ips.sort_unstable();
    ips.dedup();
    ips
}

/// Decides what `inputs.node` announces.
pub fn decide(inputs: &Inputs) -> Decisions {
    decide_view(&inputs.view())
}

/// Decides what `v.node` announces, reading Services and backends in place.
pub fn decide_view(v: &View<'_>) -> Decisions {
    let (l2, mut l2_per_ip) = l2::decide(v);
    let (routes, mut bgp_per_ip) = bgp::decide(v);

    let mut services = BTreeMap::new();
    let mut slot = 0;
    for (key, svc) in v.services {
        let ips = distinct_ips(svc);
        let mut decision = ServiceDecision {
            ips: IpDecisions(Vec::with_capacity(ips.len())),
        };
        for ip in ips {
            let l2 = take_slot(&mut l2_per_ip, slot);
            let bgp = take_slot(&mut bgp_per_ip, slot);
            slot += 1;
            decision.ips.insert(ip, IpDecision { l2, bgp });
        }
        if !decision.ips.is_empty() {
            services.insert(key.clone(), decision);
        }
    }
    Decisions {
        node: v.node.to_owned(),
        l2,
        bgp: routes,
        services,
    }
}

/// The L2 owner of every Service IP in the cluster (`None`: no node is eligible), as
/// each speaker computes it; for status tools and tests.
pub fn l2_owners(inputs: &Inputs) -> BTreeMap<IpAddr, Option<String>> {
    l2::owners(&inputs.view())
}

/// What changed between two decisions of the same node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionsDiff {
    /// IPs this node now announces by L2 and did not before: send gratuitous ARP /
    /// unsolicited NA for these, on their interfaces.
    pub l2_gained: BTreeMap<IpAddr, Interfaces>,
    /// IPs this node no longer announces by L2.
    pub l2_lost: BTreeSet<IpAddr>,
    /// IPs still announced whose interfaces changed (new interfaces).
    pub l2_interfaces_changed: BTreeMap<IpAddr, Interfaces>,
    /// Peers whose desired route set changed, appeared or disappeared.
    pub bgp_peers_changed: BTreeSet<String>,
    /// Services whose `ServiceL2Status` or `ServiceBGPStatus` content on this node changed:
    /// started or stopped announcing, or changed interfaces or peers (a removed Service
    /// that had a status counts; one that never had a status does not).
    pub statuses_changed: BTreeSet<ServiceKey>,
}

impl DecisionsDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.l2_gained.is_empty()
            && self.l2_lost.is_empty()
            && self.l2_interfaces_changed.is_empty()
            && self.bgp_peers_changed.is_empty()
            && self.statuses_changed.is_empty()
    }
}

/// Compares the previous and the new decisions of a node. Start from
/// `Decisions::default()` so every IP owned at startup counts as gained.
pub fn diff(prev: &Decisions, next: &Decisions) -> DecisionsDiff {
    let mut out = DecisionsDiff::default();
    for (ip, ifs) in &next.l2 {
        match prev.l2.get(ip) {
            None => {
                out.l2_gained.insert(*ip, ifs.clone());
            }
            Some(old) if old != ifs => {
                out.l2_interfaces_changed.insert(*ip, ifs.clone());
            }
            Some(_) => {}
        }
    }
    out.l2_lost = prev
        .l2
        .keys()
        .filter(|ip| !next.l2.contains_key(ip))
        .copied()
        .collect();
    let peers: BTreeSet<&String> = prev.bgp.keys().chain(next.bgp.keys()).collect();
    out.bgp_peers_changed = peers
        .into_iter()
        .filter(|p| prev.bgp.get(*p) != next.bgp.get(*p))
        .cloned()
        .collect();
    let keys: BTreeSet<&ServiceKey> = prev.services.keys().chain(next.services.keys()).collect();
    let status = |d: &Decisions, k: &ServiceKey| {
        d.services
            .get(k)
            .map(|s| (s.l2_interfaces(), s.bgp_peers()))
            .unwrap_or_default()
    };
    out.statuses_changed = keys
        .into_iter()
        .filter(|k| status(prev, k) != status(next, k) || prev.node != next.node)
        .cloned()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_eligibility_table() {
        let base = NodeInfo {
            name: "n".to_owned(),
            labels: BTreeMap::new(),
            ready: true,
            network_unavailable: false,
        };
        let excluded = NodeInfo {
            labels: [(EXCLUDE_LB_LABEL.to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
            ..base.clone()
        };
        let ignore = Options {
            ignore_exclude_lb: true,
            ..Options::default()
        };
        let table: Vec<(NodeInfo, Options, Result<(), Reason>)> = vec![
            (base.clone(), Options::default(), Ok(())),
            (
                NodeInfo {
                    ready: false,
                    ..base.clone()
                },
                Options::default(),
                Err(Reason::NodeNotReady),
            ),
            (
                NodeInfo {
                    network_unavailable: true,
                    ..base.clone()
                },
                Options::default(),
                Err(Reason::NetworkUnavailable),
            ),
            (
                excluded.clone(),
                Options::default(),
                Err(Reason::NodeExcluded),
            ),
            (excluded.clone(), ignore.clone(), Ok(())),
            (
                NodeInfo {
                    ready: false,
                    ..excluded
                },
                ignore,
                Err(Reason::NodeNotReady),
            ),
        ];
        for (node, options, want) in table {
            assert_eq!(
                node_eligibility(&node, &options),
                want,
                "{node:?} {options:?}"
            );
        }
    }

    #[test]
    fn interfaces_union_table() {
        let only =
            |names: &[&str]| Interfaces::Only(names.iter().map(|s| (*s).to_owned()).collect());
        let table = [
            (only(&["eth0"]), only(&["eth1"]), only(&["eth0", "eth1"])),
            (only(&["eth0"]), only(&["eth0"]), only(&["eth0"])),
            (only(&["eth0"]), Interfaces::All, Interfaces::All),
            (Interfaces::All, only(&["eth0"]), Interfaces::All),
        ];
        for (mut a, b, want) in table {
            a.union_with(&b);
            assert_eq!(a, want);
        }
        assert_eq!(Interfaces::from_list(&BTreeSet::new()), Interfaces::All);
        assert!(Interfaces::All.names().is_empty());
        assert_eq!(only(&["b", "a"]).names(), ["a", "b"]);
    }

    #[test]
    fn reasons_render() {
        assert_eq!(
            Reason::NotOwner {
                owner: Some("node-b".to_owned())
            }
            .to_string(),
            "the IP is announced by node-b"
        );
        assert_eq!(
            Reason::NotOwner { owner: None }.to_string(),
            "the IP is announced by no node"
        );
    }
}
