//! A Service's load-balancer request, parsed and validated for the controller.
//!
//! [`parse_service`] reads a `core/v1` Service into a [`ServiceView`]: whether ferrolb
//! handles it (type and `loadBalancerClass`), what it asks for ([`LbRequest`]: pool,
//! requested IPs, sharing key, IP families, traffic policy, ports, backend key), what it
//! currently has (status ingress IPs and the pool annotation), and which deprecated
//! annotation spellings it used. Annotations are read under the prefixes
//! `ferrolb.io/` > `metallb.io/` > `metallb.universe.tf/`, the first present key winning.
//! Every problem is reported with its field path; nothing here panics on any input.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use crate::ipset::Family;

/// Annotation prefixes in order of precedence; the first is current, the others are read
/// for compatibility with MetalLB manifests and reported as deprecated.
pub const ANNOTATION_PREFIXES: [&str; 3] = ["ferrolb.io/", "metallb.io/", "metallb.universe.tf/"];

/// `ferrolb.io/address-pool`: the pool a Service asks to be allocated from.
pub const ANNOTATION_ADDRESS_POOL: &str = "ferrolb.io/address-pool";
/// `ferrolb.io/loadBalancerIPs`: comma-separated requested IPs, at most one per family.
pub const ANNOTATION_LOAD_BALANCER_IPS: &str = "ferrolb.io/loadBalancerIPs";
/// `ferrolb.io/allow-shared-ip`: the sharing key.
pub const ANNOTATION_ALLOW_SHARED_IP: &str = "ferrolb.io/allow-shared-ip";
/// `ferrolb.io/ip-allocated-from-pool`: written by the controller, the pool of the IPs.
pub const ANNOTATION_IP_ALLOCATED_FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";

/// The Service annotations ferrolb reads, independent of prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnnotationKey {
    /// `address-pool`.
    AddressPool,
    /// `loadBalancerIPs`.
    LoadBalancerIps,
    /// `allow-shared-ip`.
    AllowSharedIp,
    /// `ip-allocated-from-pool` (written by the controller).
    IpAllocatedFromPool,
}

impl AnnotationKey {
    /// Every key.
    pub const ALL: [AnnotationKey; 4] = [
        AnnotationKey::AddressPool,
        AnnotationKey::LoadBalancerIps,
        AnnotationKey::AllowSharedIp,
        AnnotationKey::IpAllocatedFromPool,
    ];

    /// The key's name after the prefix, e.g. `loadBalancerIPs`.
    pub const fn name(self) -> &'static str {
        match self {
            AnnotationKey::AddressPool => "address-pool",
            AnnotationKey::LoadBalancerIps => "loadBalancerIPs",
            AnnotationKey::AllowSharedIp => "allow-shared-ip",
            AnnotationKey::IpAllocatedFromPool => "ip-allocated-from-pool",
        }
    }

    /// The current spelling, under `ferrolb.io/`.
    pub const fn current(self) -> &'static str {
        match self {
            AnnotationKey::AddressPool => ANNOTATION_ADDRESS_POOL,
            AnnotationKey::LoadBalancerIps => ANNOTATION_LOAD_BALANCER_IPS,
            AnnotationKey::AllowSharedIp => ANNOTATION_ALLOW_SHARED_IP,
            AnnotationKey::IpAllocatedFromPool => ANNOTATION_IP_ALLOCATED_FROM_POOL,
        }
    }
}

/// A deprecated annotation spelling that was read because no newer one was present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeprecatedAnnotation {
    /// Which annotation.
    pub key: AnnotationKey,
    /// The full key that was read, e.g. `metallb.universe.tf/address-pool`.
    pub used: String,
}

impl DeprecatedAnnotation {
    /// The key to use instead, e.g. `ferrolb.io/address-pool`.
    pub fn replacement(&self) -> &'static str {
        self.key.current()
    }
}

/// A transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling: `TCP`, `UDP` or `SCTP`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (protocol, port) pair a Service exposes; two Services sharing an IP must not
/// have one in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    /// Protocol.
    pub protocol: Protocol,
    /// Service port, 1 to 65535.
    pub port: u16,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamilyPolicy {
    /// One address, of the primary family (the default).
    SingleStack,
    /// Both families if the pool has both, otherwise the primary one.
    PreferDualStack,
    /// One address of each family, from one pool.
    RequireDualStack,
}

impl IpFamilyPolicy {
    /// The Kubernetes spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            IpFamilyPolicy::SingleStack => "SingleStack",
            IpFamilyPolicy::PreferDualStack => "PreferDualStack",
            IpFamilyPolicy::RequireDualStack => "RequireDualStack",
        }
    }
}

/// `spec.externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficPolicy {
    /// Any node may forward to any endpoint (the default).
    Cluster,
    /// Only nodes with a ready local endpoint serve traffic.
    Local,
}

/// Whether ferrolb handles a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handling {
    /// A LoadBalancer Service of the configured class: ferrolb allocates for it.
    Managed,
    /// `spec.type` is not `LoadBalancer` (absent means `ClusterIP`).
    NotLoadBalancer,
    /// A LoadBalancer Service whose `spec.loadBalancerClass` differs from the configured
    /// class (`None` here: the Service has no class but one is configured).
    OtherClass {
        /// The Service's class.
        class: Option<String>,
    },
}

/// What is wrong with a Service field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceErrorKind {
    /// A requested or status IP that does not parse.
    #[error("`{value}` is not an IP address")]
    InvalidIp {
        /// The text as written.
        value: String,
    },
    /// An empty item in the comma-separated list of requested IPs.
    #[error("empty entry in the comma-separated list `{value}`")]
    EmptyIpEntry {
        /// The whole annotation value.
        value: String,
    },
    /// Two requested IPs of one family.
    #[error(
        "more than one {family} address requested ({first} and {second}); at most one per family"
    )]
    DuplicateFamily {
        /// The family requested twice.
        family: Family,
        /// The first address of that family.
        first: IpAddr,
        /// The second address of that family.
        second: IpAddr,
    },
    /// Both `spec.loadBalancerIP` and the requested-IPs annotation are set.
    #[error(
        "both spec.loadBalancerIP and annotation {annotation} are set; use only the annotation"
    )]
    ConflictingRequests {
        /// The annotation key that was set.
        annotation: String,
    },
    /// A requested IP of a family the Service does not have.
    #[error("requested {ip} is {} but the Service's ipFamilies are [{families}]", Family::of(*.ip))]
    FamilyNotEnabled {
        /// The requested address.
        ip: IpAddr,
        /// The Service's families, comma-separated.
        families: String,
    },
    /// A value outside a Kubernetes enum.
    #[error("unknown value `{value}`; expected {expected}")]
    UnknownValue {
        /// The value as written.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// The same family listed twice in `spec.ipFamilies`.
    #[error("{family} is listed twice")]
    DuplicateIpFamily {
        /// The repeated family.
        family: Family,
    },
    /// `spec.ipFamilies` does not fit `spec.ipFamilyPolicy`.
    #[error("ipFamilyPolicy {policy} does not fit {count} ipFamilies")]
    PolicyFamilies {
        /// The policy.
        policy: &'static str,
        /// Number of families listed.
        count: usize,
    },
    /// A port outside 1..=65535.
    #[error("port {port} is outside 1-65535")]
    InvalidPort {
        /// The port as written.
        port: i32,
    },
}

/// A Service problem with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ServiceError {
    /// Field path, e.g. `metadata.annotations[ferrolb.io/loadBalancerIPs]`,
    /// `spec.loadBalancerIP`, `spec.ports[1].port`, `status.loadBalancer.ingress[0].ip`.
    pub path: String,
    /// The problem.
    pub kind: ServiceErrorKind,
}

/// What a managed Service asks the allocator for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbRequest {
    /// Requested pool (`address-pool` annotation); `None` when absent or empty.
    pub pool: Option<String>,
    /// Requested addresses in the order written, at most one per family, each of a family
    /// in `ip_families`; from the `loadBalancerIPs` annotation or `spec.loadBalancerIP`.
    pub requested_ips: Vec<IpAddr>,
    /// Path of the field the requested IPs came from, for messages.
    pub requested_ips_path: Option<String>,
    /// Sharing key (`allow-shared-ip` annotation); `None` when absent or empty.
    pub sharing_key: Option<String>,
    /// `spec.ipFamilyPolicy` (default SingleStack).
    pub ip_family_policy: IpFamilyPolicy,
    /// The families to allocate, primary first: one for SingleStack, two for
    /// RequireDualStack, one or two for PreferDualStack. From `spec.ipFamilies`, else from
    /// the families of `spec.clusterIPs`, else IPv4.
    pub ip_families: Vec<Family>,
    /// `spec.externalTrafficPolicy` (default Cluster).
    pub traffic_policy: TrafficPolicy,
    /// Distinct (protocol, port) pairs of `spec.ports`, sorted.
    pub ports: Vec<PortKey>,
    /// Backend identity for IP sharing: empty for ETP Cluster; for ETP Local the pod
    /// selector as sorted `k=v,k2=v2`, so only Services with identical selectors share.
    pub backend_key: String,
}

impl LbRequest {
    /// The primary family (first of `ip_families`).
    pub fn primary_family(&self) -> Family {
        self.ip_families.first().copied().unwrap_or(Family::V4)
    }

    /// The requested address of `family`, if any.
    pub fn requested_ip(&self, family: Family) -> Option<IpAddr> {
        self.requested_ips
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
    }
}

/// What a Service currently has, as recorded on the object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentAllocation {
    /// Valid IPs of `status.loadBalancer.ingress[].ip`, in order (hostname-only entries
    /// are skipped).
    pub ips: Vec<IpAddr>,
    /// The `ip-allocated-from-pool` annotation; `None` when absent or empty.
    pub pool: Option<String>,
}

/// A Service as the controller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// `metadata.namespace` (empty if unset).
    pub namespace: String,
    /// `metadata.name` (empty if unset).
    pub name: String,
    /// `metadata.labels`, for pool and advertisement Service selectors.
    pub labels: BTreeMap<String, String>,
    /// Whether ferrolb handles the Service.
    pub handling: Handling,
    /// The parsed request, or every problem found in it.
    pub request: Result<LbRequest, Vec<ServiceError>>,
    /// What the Service currently has.
    pub current: CurrentAllocation,
    /// Problems in the current status (unparsable ingress IPs, which are left out of
    /// `current.ips`).
    pub current_errors: Vec<ServiceError>,
    /// Deprecated annotation spellings that were read, for a Warning Event.
    pub deprecated_annotations: Vec<DeprecatedAnnotation>,
}

/// Reads annotation `key` under the prefixes in precedence order: returns the full key
/// that was found and its value.
fn lookup(
    annotations: &BTreeMap<String, String>,
    key: AnnotationKey,
    deprecated: &mut Vec<DeprecatedAnnotation>,
) -> Option<(String, String)> {
    for (i, prefix) in ANNOTATION_PREFIXES.iter().enumerate() {
        let full = format!("{prefix}{}", key.name());
        if let Some(value) = annotations.get(&full) {
            if i > 0 {
                deprecated.push(DeprecatedAnnotation {
                    key,
                    used: full.clone(),
                });
            }
            return Some((full, value.clone()));
        }
    }
    None
}

fn annotation_path(full_key: &str) -> String {
    format!("metadata.annotations[{full_key}]")
}

fn non_empty(value: Option<(String, String)>) -> Option<String> {
    value.map(|(_, v)| v).filter(|v| !v.is_empty())
}

/// Parses a Service for the controller. `lb_class` is the configured load-balancer class
/// (`--lb-class`): with `None`, only Services without `spec.loadBalancerClass` are
/// handled; with `Some(c)`, only those whose class is exactly `c`.
pub fn parse_service(svc: &Service, lb_class: Option<&str>) -> ServiceView {
    let meta = &svc.metadata;
    let empty = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let spec = svc.spec.clone().unwrap_or_default();

    let class = spec.load_balancer_class.clone().filter(|c| !c.is_empty());
    let handling = if spec.type_.as_deref() != Some("LoadBalancer") {
        Handling::NotLoadBalancer
    } else if class.as_deref() == lb_class {
        Handling::Managed
    } else {
        Handling::OtherClass { class }
    };

    let mut deprecated = Vec::new();
    let pool = non_empty(lookup(
        annotations,
        AnnotationKey::AddressPool,
        &mut deprecated,
    ));
    let ips_annotation = lookup(annotations, AnnotationKey::LoadBalancerIps, &mut deprecated);
    let sharing_key = non_empty(lookup(
        annotations,
        AnnotationKey::AllowSharedIp,
        &mut deprecated,
    ));
    let allocated_pool = non_empty(lookup(
        annotations,
        AnnotationKey::IpAllocatedFromPool,
        &mut deprecated,
    ));

    let mut errors = Vec::new();
    let ip_family_policy = parse_policy(spec.ip_family_policy.as_deref(), &mut errors);
    let ip_families = parse_families(&spec, ip_family_policy, &mut errors);
    let (requested_ips, requested_ips_path) = parse_requested_ips(
        ips_annotation,
        spec.load_balancer_ip.as_deref(),
        &ip_families,
        &mut errors,
    );
    let traffic_policy = match spec.external_traffic_policy.as_deref() {
        None | Some("") | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            errors.push(ServiceError {
                path: "spec.externalTrafficPolicy".to_owned(),
                kind: ServiceErrorKind::UnknownValue {
                    value: other.to_owned(),
                    expected: "Cluster or Local",
                },
            });
            TrafficPolicy::Cluster
        }
    };
    let ports = parse_ports(&spec, &mut errors);
    let backend_key = match traffic_policy {
        TrafficPolicy::Cluster => String::new(),
        TrafficPolicy::Local => spec
            .selector
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    };

    let request = if errors.is_empty() {
        Ok(LbRequest {
            pool,
            requested_ips,
            requested_ips_path,
            sharing_key,
            ip_family_policy,
            ip_families,
            traffic_policy,
            ports,
            backend_key,
        })
    } else {
        Err(errors)
    };

    let mut current_errors = Vec::new();
    let mut current_ips = Vec::new();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (i, entry) in ingress.into_iter().flatten().enumerate() {
        let Some(text) = entry.ip.as_deref() else {
            continue;
        };
        match text.parse::<IpAddr>() {
            Ok(ip) => current_ips.push(ip),
            Err(_) => current_errors.push(ServiceError {
                path: format!("status.loadBalancer.ingress[{i}].ip"),
                kind: ServiceErrorKind::InvalidIp {
                    value: text.to_owned(),
                },
            }),
        }
    }

    ServiceView {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        handling,
        request,
        current: CurrentAllocation {
            ips: current_ips,
            pool: allocated_pool,
        },
        current_errors,
        deprecated_annotations: deprecated,
    }
}

fn parse_policy(value: Option<&str>, errors: &mut Vec<ServiceError>) -> IpFamilyPolicy {
    match value {
        None | Some("") | Some("SingleStack") => IpFamilyPolicy::SingleStack,
        Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
        Some(other) => {
            errors.push(ServiceError {
                path: "spec.ipFamilyPolicy".to_owned(),
                kind: ServiceErrorKind::UnknownValue {
                    value: other.to_owned(),
                    expected: "SingleStack, PreferDualStack or RequireDualStack",
                },
            });
            IpFamilyPolicy::SingleStack
        }
    }
}

fn parse_families(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    policy: IpFamilyPolicy,
    errors: &mut Vec<ServiceError>,
) -> Vec<Family> {
    let mut families = Vec::new();
    let listed = spec.ip_families.as_deref().unwrap_or_default();
    for (i, text) in listed.iter().enumerate() {
        let path = format!("spec.ipFamilies[{i}]");
        match Family::from_k8s_str(text) {
            Some(f) if families.contains(&f) => errors.push(ServiceError {
                path,
                kind: ServiceErrorKind::DuplicateIpFamily { family: f },
            }),
            Some(f) => families.push(f),
            None => errors.push(ServiceError {
                path,
                kind: ServiceErrorKind::UnknownValue {
                    value: text.clone(),
                    expected: "IPv4 or IPv6",
                },
            }),
        }
    }
    if listed.is_empty() {
        // Not defaulted by an API server: fall back to the cluster IPs' families.
        let cluster_ips = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter());
        for ip in cluster_ips.filter_map(|s| s.parse::<IpAddr>().ok()) {
            let f = Family::of(ip);
            if !families.contains(&f) {
                families.push(f);
            }
        }
        if families.is_empty() {
            families.push(Family::V4);
        }
        if policy == IpFamilyPolicy::SingleStack {
            families.truncate(1);
        }
    }
    let fits = match policy {
        IpFamilyPolicy::SingleStack => families.len() <= 1,
        IpFamilyPolicy::PreferDualStack => true,
        IpFamilyPolicy::RequireDualStack => families.len() == 2,
    };
    if !fits && !listed.is_empty() {
        errors.push(ServiceError {
            path: "spec.ipFamilies".to_owned(),
            kind: ServiceErrorKind::PolicyFamilies {
                policy: policy.as_str(),
                count: families.len(),
            },
        });
    } else if policy == IpFamilyPolicy::RequireDualStack && families.len() < 2 {
        // Derived families: a RequireDualStack Service always wants both.
        families.push(families.first().copied().unwrap_or(Family::V4).other());
    }
    families
}

fn parse_requested_ips(
    annotation: Option<(String, String)>,
    spec_ip: Option<&str>,
    families: &[Family],
    errors: &mut Vec<ServiceError>,
) -> (Vec<IpAddr>, Option<String>) {
    let annotation = annotation.filter(|(_, v)| !v.trim().is_empty());
    let spec_ip = spec_ip.filter(|s| !s.is_empty());
    let (path, items): (String, Vec<&str>) = match (&annotation, spec_ip) {
        (Some((key, _)), Some(_)) => {
            errors.push(ServiceError {
                path: "spec.loadBalancerIP".to_owned(),
                kind: ServiceErrorKind::ConflictingRequests {
                    annotation: key.clone(),
                },
            });
            return (Vec::new(), None);
        }
        (Some((key, value)), None) => (
            annotation_path(key),
            value.split(',').map(str::trim).collect(),
        ),
        (None, Some(ip)) => ("spec.loadBalancerIP".to_owned(), vec![ip]),
        (None, None) => return (Vec::new(), None),
    };
    let before = errors.len();
    let mut ips: Vec<IpAddr> = Vec::new();
    for item in items {
        if item.is_empty() {
            errors.push(ServiceError {
                path: path.clone(),
                kind: ServiceErrorKind::EmptyIpEntry {
                    value: annotation
                        .as_ref()
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                },
            });
            continue;
        }
        let Ok(ip) = item.parse::<IpAddr>() else {
            errors.push(ServiceError {
                path: path.clone(),
                kind: ServiceErrorKind::InvalidIp {
                    value: item.to_owned(),
                },
            });
            continue;
        };
        let family = Family::of(ip);
        if let Some(first) = ips.iter().copied().find(|a| Family::of(*a) == family) {
            errors.push(ServiceError {
                path: path.clone(),
                kind: ServiceErrorKind::DuplicateFamily {
                    family,
                    first,
                    second: ip,
                },
            });
            continue;
        }
        if !families.contains(&family) {
            errors.push(ServiceError {
                path: path.clone(),
                kind: ServiceErrorKind::FamilyNotEnabled {
                    ip,
                    families: families
                        .iter()
                        .map(|f| f.as_k8s_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            });
            continue;
        }
        ips.push(ip);
    }
    if errors.len() > before {
        return (Vec::new(), None);
    }
    (ips, Some(path))
}

fn parse_ports(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    errors: &mut Vec<ServiceError>,
) -> Vec<PortKey> {
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let protocol = match p.protocol.as_deref() {
            None | Some("") | Some("TCP") => Some(Protocol::Tcp),
            Some("UDP") => Some(Protocol::Udp),
            Some("SCTP") => Some(Protocol::Sctp),
            Some(other) => {
                errors.push(ServiceError {
                    path: format!("spec.ports[{i}].protocol"),
                    kind: ServiceErrorKind::UnknownValue {
                        value: other.to_owned(),
                        expected: "TCP, UDP or SCTP",
                    },
                });
                None
            }
        };
        let port = match u16::try_from(p.port) {
            Ok(port) if port != 0 => Some(port),
            _ => {
                errors.push(ServiceError {
                    path: format!("spec.ports[{i}].port"),
                    kind: ServiceErrorKind::InvalidPort { port: p.port },
                });
                None
            }
        };
        if let (Some(protocol), Some(port)) = (protocol, port) {
            ports.push(PortKey { protocol, port });
        }
    }
    ports.sort();
    ports.dedup();
    ports
}
