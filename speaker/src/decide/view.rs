//! Small views of the Kubernetes objects the decisions read, converted from k8s-openapi
//! data types once so the decision code never walks optional API fields.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_config::service::{Handling, TrafficPolicy, parse_service};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label that keeps a node out of external load balancers (honoured unless
/// [`super::Options::ignore_exclude_lb`]).
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Label of an EndpointSlice naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Namespace and name of a Service (or of any namespaced object). The strings are
/// shared, so the copies kept by caches, decisions and statuses cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// `metadata.namespace`.
    pub namespace: Arc<str>,
    /// `metadata.name`.
    pub name: Arc<str>,
}

impl ServiceKey {
    /// A key from namespace and name.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the decisions need to know about a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The `Ready` condition is `True` (absent or `Unknown` count as not ready).
    pub ready: bool,
    /// The `NetworkUnavailable` condition is `True`.
    pub network_unavailable: bool,
}

impl NodeInfo {
    /// Reads a node; `None` when it has no name (the API server never serves one).
    pub fn from_k8s(node: &Node) -> Option<NodeInfo> {
        let name = node.metadata.name.clone().filter(|n| !n.is_empty())?;
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or(&[]);
        let is_true = |kind: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == kind && c.status == "True")
        };
        Some(NodeInfo {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            ready: is_true("Ready"),
            network_unavailable: is_true("NetworkUnavailable"),
            name,
        })
    }

    /// Whether the node carries [`EXCLUDE_LB_LABEL`] (any value, as Kubernetes does).
    pub fn excluded_from_lb(&self) -> bool {
        self.labels.contains_key(EXCLUDE_LB_LABEL)
    }
}

/// What the decisions need to know about a Service ferrolb manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace and name.
    pub key: ServiceKey,
    /// `metadata.labels`, for advertisement `serviceSelectors`.
    pub labels: BTreeMap<String, String>,
    /// The IPs of `status.loadBalancer.ingress`, in order.
    pub ips: Vec<IpAddr>,
    /// `spec.externalTrafficPolicy`.
    pub traffic_policy: TrafficPolicy,
}

impl ServiceInfo {
    /// Reads a Service; `None` unless it is a LoadBalancer Service of class `lb_class`
    /// (see [`parse_service`]). A Service whose request fails validation is still read
    /// (its assigned IPs stay announced); an unknown `externalTrafficPolicy` then counts
    /// as `Cluster`.
    pub fn from_k8s(svc: &Service, lb_class: Option<&str>) -> Option<ServiceInfo> {
        let view = parse_service(svc, lb_class);
        if view.handling != Handling::Managed {
            return None;
        }
        let traffic_policy = match &view.request {
            Ok(req) => req.traffic_policy,
            Err(_) => match svc
                .spec
                .as_ref()
                .and_then(|s| s.external_traffic_policy.as_deref())
            {
                Some("Local") => TrafficPolicy::Local,
                _ => TrafficPolicy::Cluster,
            },
        };
        let mut ips = view.current.ips;
        ips.shrink_to_fit();
        Some(ServiceInfo {
            key: ServiceKey::new(view.namespace, view.name),
            labels: view.labels,
            ips,
            traffic_policy,
        })
    }
}

/// One backend of a Service, merged across the Service's EndpointSlices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Identity used to merge copies of the same backend (the `targetRef` when present,
    /// else the first address), so a dual-stack pod listed in an IPv4 and an IPv6 slice
    /// counts once.
    pub id: String,
    /// `nodeName`: where the backend runs.
    pub node: Option<String>,
    /// `conditions.ready`, absent meaning ready (Kubernetes: "nil should be interpreted
    /// as true").
    pub ready: bool,
    /// `conditions.serving`, absent meaning the value of `ready`.
    pub serving: bool,
    /// `conditions.terminating`, absent meaning false.
    pub terminating: bool,
}

/// Backends of every Service, by Service, from EndpointSlices: slices without the
/// `kubernetes.io/service-name` label, `FQDN` slices and endpoints without addresses
/// are skipped. Copies of one backend (see [`EndpointInfo::id`]) are merged, each
/// condition true if any copy has it true, so the result does not depend on slice order.
pub fn endpoints_from_slices<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeMap<ServiceKey, Vec<EndpointInfo>> {
    let mut by_service: BTreeMap<ServiceKey, BTreeMap<String, EndpointInfo>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let key = ServiceKey::new(
            slice.metadata.namespace.clone().unwrap_or_default(),
            service.clone(),
        );
        let merged = by_service.entry(key).or_default();
        for ep in &slice.endpoints {
            let Some(first) = ep.addresses.first() else {
                continue;
            };
            let id = match &ep.target_ref {
                Some(r) => format!(
                    "{}/{}/{}/{}",
                    r.kind.as_deref().unwrap_or(""),
                    r.namespace.as_deref().unwrap_or(""),
                    r.name.as_deref().unwrap_or(""),
                    r.uid.as_deref().unwrap_or("")
                ),
                None => format!("addr/{first}"),
            };
            let cond = ep.conditions.clone().unwrap_or_default();
            let ready = cond.ready.unwrap_or(true);
            let info = EndpointInfo {
                id: id.clone(),
                node: ep.node_name.clone().filter(|n| !n.is_empty()),
                ready,
                serving: cond.serving.unwrap_or(ready),
                terminating: cond.terminating.unwrap_or(false),
            };
            merged
                .entry(id)
                .and_modify(|old| {
                    old.ready |= info.ready;
                    old.serving |= info.serving;
                    old.terminating |= info.terminating;
                    if old.node.is_none() {
                        old.node.clone_from(&info.node);
                    }
                })
                .or_insert(info);
        }
    }
    by_service
        .into_iter()
        .map(|(k, m)| (k, m.into_values().collect()))
        .collect()
}

/// Which nodes can take traffic for one Service, by the endpoint rule of
/// [`super`] ("Endpoint rule"). Borrows the node names from the backends it summarises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSummary<'a> {
    /// At least one backend anywhere is ready or serving.
    pub any_serving: bool,
    /// Usable local backends per node (ready ones, or serving ones when no backend
    /// anywhere is ready), sorted by node name; nodes with none are absent.
    pub usable_by_node: Vec<(&'a str, u32)>,
}

impl<'a> EndpointSummary<'a> {
    /// The summary of one Service's backends (copies already merged).
    pub fn of(endpoints: &'a [EndpointInfo]) -> EndpointSummary<'a> {
        Self::from_flags(
            endpoints
                .iter()
                .map(|e| (e.node.as_deref(), e.ready, e.serving)),
        )
    }

    /// The summary of one Service's backends listed in several chunks (one per
    /// EndpointSlice, each merged by [`endpoints_from_slices`]): copies of one backend
    /// across chunks merge first, each condition true if any copy has it true.
    pub fn merged(chunks: &[&'a [EndpointInfo]]) -> EndpointSummary<'a> {
        match chunks {
            [] => Self::default(),
            [one] => Self::of(one),
            _ => {
                let mut by_id: BTreeMap<&str, (Option<&'a str>, bool, bool)> = BTreeMap::new();
                for e in chunks.iter().flat_map(|c| c.iter()) {
                    let m = by_id.entry(e.id.as_str()).or_insert((None, false, false));
                    m.0 = m.0.or(e.node.as_deref());
                    m.1 |= e.ready;
                    m.2 |= e.serving;
                }
                Self::from_flags(by_id.values().copied())
            }
        }
    }

    /// From `(node, ready, serving)` of each distinct backend.
    fn from_flags(
        backends: impl Iterator<Item = (Option<&'a str>, bool, bool)> + Clone,
    ) -> EndpointSummary<'a> {
        let any_ready = backends.clone().any(|(_, r, _)| r);
        let any_serving = backends.clone().any(|(_, r, s)| r || s);
        let mut usable_by_node: Vec<(&'a str, u32)> = Vec::new();
        for (node, ready, serving) in backends {
            let usable = if any_ready { ready } else { serving };
            if let (true, Some(node)) = (usable, node) {
                match usable_by_node.binary_search_by(|(n, _)| (*n).cmp(node)) {
                    Ok(i) => usable_by_node[i].1 = usable_by_node[i].1.saturating_add(1),
                    Err(i) => usable_by_node.insert(i, (node, 1)),
                }
            }
        }
        EndpointSummary {
            any_serving,
            usable_by_node,
        }
    }

    /// Usable local backends on `node`, if any.
    pub fn usable_on(&self, node: &str) -> Option<u32> {
        self.usable_by_node
            .binary_search_by(|(n, _)| (*n).cmp(node))
            .ok()
            .map(|i| self.usable_by_node[i].1)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, ObjectReference, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn k8s_node(name: Option<&str>, conditions: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: name.map(str::to_owned),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| NodeCondition {
                            type_: (*t).to_owned(),
                            status: (*s).to_owned(),
                            ..NodeCondition::default()
                        })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn node_conditions_table() {
        type Conditions<'a> = &'a [(&'a str, &'a str)];
        // (conditions, ready, network unavailable)
        let table: &[(Conditions<'_>, bool, bool)] = &[
            (&[("Ready", "True")], true, false),
            (&[("Ready", "False")], false, false),
            (&[("Ready", "Unknown")], false, false),
            (&[], false, false),
            (
                &[("Ready", "True"), ("NetworkUnavailable", "True")],
                true,
                true,
            ),
            (
                &[("Ready", "True"), ("NetworkUnavailable", "False")],
                true,
                false,
            ),
        ];
        for (conds, ready, nu) in table {
            let n = NodeInfo::from_k8s(&k8s_node(Some("n1"), conds, &[])).expect("named");
            assert_eq!((n.ready, n.network_unavailable), (*ready, *nu), "{conds:?}");
        }
        assert!(NodeInfo::from_k8s(&k8s_node(None, &[], &[])).is_none());
        assert!(NodeInfo::from_k8s(&k8s_node(Some(""), &[], &[])).is_none());
        let excluded = NodeInfo::from_k8s(&k8s_node(Some("n"), &[], &[(EXCLUDE_LB_LABEL, "")]))
            .expect("named");
        assert!(excluded.excluded_from_lb());
    }

    fn k8s_service(etp: Option<&str>, class: Option<&str>, ips: &[&str]) -> Service {
        use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
        Service {
            metadata: ObjectMeta {
                namespace: Some("ns".to_owned()),
                name: Some("web".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".to_owned()),
                external_traffic_policy: etp.map(str::to_owned),
                load_balancer_class: class.map(str::to_owned),
                ..ServiceSpec::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        ips.iter()
                            .map(|ip| LoadBalancerIngress {
                                ip: Some((*ip).to_owned()),
                                ..LoadBalancerIngress::default()
                            })
                            .collect(),
                    ),
                }),
                ..ServiceStatus::default()
            }),
        }
    }

    #[test]
    fn service_view_table() {
        let s = ServiceInfo::from_k8s(
            &k8s_service(Some("Local"), None, &["192.0.2.1", "2001:db8::1"]),
            None,
        )
        .expect("managed");
        assert_eq!(s.key, ServiceKey::new("ns", "web"));
        assert_eq!(s.key.to_string(), "ns/web");
        assert_eq!(s.traffic_policy, TrafficPolicy::Local);
        assert_eq!(s.ips.len(), 2);
        let s = ServiceInfo::from_k8s(&k8s_service(None, None, &["bad", "192.0.2.1"]), None)
            .expect("managed");
        assert_eq!(s.traffic_policy, TrafficPolicy::Cluster);
        assert_eq!(s.ips, vec!["192.0.2.1".parse::<IpAddr>().expect("ip")]);
        // Other class, or not a LoadBalancer: not ours.
        assert!(ServiceInfo::from_k8s(&k8s_service(None, Some("other"), &[]), None).is_none());
        let mut plain = k8s_service(None, None, &[]);
        plain.spec.as_mut().expect("spec").type_ = Some("ClusterIP".to_owned());
        assert!(ServiceInfo::from_k8s(&plain, None).is_none());
        // A request that fails validation keeps its IPs and reads the policy directly.
        let mut bad = k8s_service(Some("Local"), None, &["192.0.2.1"]);
        bad.spec.as_mut().expect("spec").ip_family_policy = Some("Sideways".to_owned());
        let s = ServiceInfo::from_k8s(&bad, None).expect("managed");
        assert_eq!(s.traffic_policy, TrafficPolicy::Local);
        assert_eq!(s.ips.len(), 1);
    }

    fn ep(
        addr: &str,
        node: Option<&str>,
        pod: Option<&str>,
        cond: (Option<bool>, Option<bool>, Option<bool>),
    ) -> Endpoint {
        Endpoint {
            addresses: vec![addr.to_owned()],
            node_name: node.map(str::to_owned),
            target_ref: pod.map(|p| ObjectReference {
                kind: Some("Pod".to_owned()),
                namespace: Some("ns".to_owned()),
                name: Some(p.to_owned()),
                uid: Some(format!("uid-{p}")),
                ..ObjectReference::default()
            }),
            conditions: Some(EndpointConditions {
                ready: cond.0,
                serving: cond.1,
                terminating: cond.2,
            }),
            ..Endpoint::default()
        }
    }

    fn slice(service: Option<&str>, family: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: family.to_owned(),
            endpoints,
            metadata: ObjectMeta {
                namespace: Some("ns".to_owned()),
                labels: service.map(|s| {
                    [(SERVICE_NAME_LABEL.to_owned(), s.to_owned())]
                        .into_iter()
                        .collect()
                }),
                ..ObjectMeta::default()
            },
            ports: None,
        }
    }

    #[test]
    fn slices_merge_by_backend() {
        let slices = vec![
            slice(
                Some("web"),
                "IPv4",
                vec![
                    ep(
                        "10.1.0.1",
                        Some("a"),
                        Some("p1"),
                        (Some(true), Some(true), Some(false)),
                    ),
                    ep(
                        "10.1.0.2",
                        Some("b"),
                        Some("p2"),
                        (Some(false), Some(true), Some(true)),
                    ),
                    ep("10.1.0.3", None, None, (None, None, None)),
                ],
            ),
            // The same pods in the IPv6 slice of a dual-stack Service.
            slice(
                Some("web"),
                "IPv6",
                vec![
                    ep(
                        "fd00::1",
                        Some("a"),
                        Some("p1"),
                        (Some(true), Some(true), Some(false)),
                    ),
                    ep(
                        "fd00::2",
                        Some("b"),
                        Some("p2"),
                        (Some(false), Some(true), Some(true)),
                    ),
                ],
            ),
            slice(
                None,
                "IPv4",
                vec![ep("10.9.0.1", Some("a"), None, (None, None, None))],
            ),
            slice(
                Some("ext"),
                "FQDN",
                vec![ep("example.com", Some("a"), None, (None, None, None))],
            ),
        ];
        let by_service = endpoints_from_slices(&slices);
        assert_eq!(by_service.len(), 1, "{by_service:?}");
        let eps = &by_service[&ServiceKey::new("ns", "web")];
        assert_eq!(eps.len(), 3, "{eps:?}");
        let p2 = eps.iter().find(|e| e.id.contains("p2")).expect("p2");
        assert_eq!((p2.ready, p2.serving, p2.terminating), (false, true, true));
        let bare = eps.iter().find(|e| e.id == "addr/10.1.0.3").expect("bare");
        assert_eq!(
            (bare.ready, bare.serving, bare.node.as_deref()),
            (true, true, None)
        );
        let summary = EndpointSummary::of(eps);
        assert!(summary.any_serving);
        assert_eq!(summary.usable_by_node, [("a", 1)]);
        assert_eq!(summary.usable_on("a"), Some(1));
        assert_eq!(summary.usable_on("b"), None);
    }

    #[test]
    fn endpoint_rule_table() {
        let e = |node: &str, ready: bool, serving: bool| EndpointInfo {
            id: format!("{node}-{ready}-{serving}"),
            node: Some(node.to_owned()),
            ready,
            serving,
            terminating: !ready && serving,
        };
        type Usable = Vec<(&'static str, u32)>;
        // (endpoints, any serving, usable per node)
        let table: Vec<(Vec<EndpointInfo>, bool, Usable)> = vec![
            (vec![], false, vec![]),
            (vec![e("a", false, false)], false, vec![]),
            (
                vec![e("a", true, true), e("b", false, true)],
                true,
                vec![("a", 1)],
            ),
            // Nothing ready anywhere: terminating-but-serving backends count.
            (
                vec![
                    e("a", false, true),
                    e("b", false, true),
                    e("b", false, false),
                ],
                true,
                vec![("a", 1), ("b", 1)],
            ),
            (
                vec![
                    e("a", true, true),
                    EndpointInfo {
                        id: "x".into(),
                        ..e("a", true, true)
                    },
                ],
                true,
                vec![("a", 2)],
            ),
        ];
        for (eps, any, usable) in table {
            let s = EndpointSummary::of(&eps);
            assert_eq!((s.any_serving, s.usable_by_node), (any, usable), "{eps:?}");
        }
    }

    #[test]
    fn merged_chunks_count_each_backend_once() {
        let e = |id: &str, node: Option<&str>, ready: bool, serving: bool| EndpointInfo {
            id: id.to_owned(),
            node: node.map(str::to_owned),
            ready,
            serving,
            terminating: false,
        };
        // A dual-stack pod in an IPv4 and an IPv6 slice: one backend; the node comes from
        // whichever copy has it, ready if any copy is ready.
        let v4 = [
            e("pod/p1", None, false, true),
            e("pod/p2", Some("b"), false, false),
        ];
        let v6 = [
            e("pod/p1", Some("a"), true, true),
            e("pod/p3", Some("a"), true, true),
        ];
        let s = EndpointSummary::merged(&[&v4, &v6]);
        assert_eq!((s.any_serving, s.usable_by_node), (true, vec![("a", 2)]));
        // One chunk and no chunk.
        assert_eq!(EndpointSummary::merged(&[&v6]), EndpointSummary::of(&v6));
        assert_eq!(EndpointSummary::merged(&[]), EndpointSummary::default());
        // Nothing ready in any copy: serving copies count.
        let s = EndpointSummary::merged(&[&v4[..1], &v4[1..]]);
        assert_eq!((s.any_serving, s.usable_by_node), (true, vec![]));
    }
}
