//! `ferrolbctl describe service`: everything about one Service (request, VIPs, pool,
//! condition, announcers, Events) and a plain-words [`diagnose`] of why it is pending or
//! why traffic may not arrive.
//!
//! The diagnosis starts from the controller's `ferrolb.io/LoadBalancerReady` condition
//! (reason and message) and explains it against the objects: which pool fails to serve the
//! Service and why, who holds a requested IP, whether any advertisement covers the pool.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_config::error::ConfigError;
use ferrolb_config::ipset::Family;
use ferrolb_config::model::Config;
use ferrolb_config::pool::Pool;
use ferrolb_config::service::{Handling, IpFamilyPolicy, LbRequest, TrafficPolicy, parse_service};
use ferrolb_crds::annotations::{CONDITION_LB_READY, IP_ALLOCATED_FROM_POOL};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;

use super::events::{EventLine, events_table};
use super::table::Table;
use super::{
    Announcement, age, announcements_of, ingress_addresses, service_annotation, service_condition,
    service_key,
};

/// Events shown by [`describe_service`] (the most recent ones).
pub const EVENT_LIMIT: usize = 20;

/// Where BGP session state lives, since it is not in the Kubernetes API.
pub const SESSION_STATE_HINT: &str = "BGP/BFD session state is not in the Kubernetes API: read \
     ferrolb_bgp_session_up{peer=...} and ferrolb_bfd_session_up on each speaker's /metrics \
     (port 7473 by default)";

/// Everything [`describe_service`] and [`diagnose`] look at.
#[derive(Debug, Clone, Copy)]
pub struct DescribeInput<'a> {
    /// The Service.
    pub service: &'a Service,
    /// Labels of the Service's Namespace; `None` when they could not be read.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// ferrolb's configuration objects, and every Service of the cluster (for shared and
    /// requested IPs held by others).
    pub resources: &'a Resources,
    /// Namespace ferrolb's objects live in.
    pub ferrolb_namespace: &'a str,
    /// The controller's `--lb-class`.
    pub lb_class: Option<&'a str>,
    /// Speaker announcements (all Services; filtered here).
    pub announcements: &'a [Announcement],
    /// Events regarding the Service, oldest first.
    pub events: &'a [EventLine],
    /// Current time, for ages.
    pub now: Timestamp,
}

/// The configuration as the controller would see it, and the pools even when the whole
/// configuration does not build (each pool built on its own then).
struct ConfigView {
    config: Option<Config>,
    errors: Vec<ConfigError>,
    pools: BTreeMap<String, Pool>,
    /// Pools that do not build even on their own, with the first error.
    broken_pools: BTreeMap<String, String>,
}

fn config_view(resources: &Resources, namespace: &str) -> ConfigView {
    // ferrolbctl reads no Secrets, so references are resolved as the admission webhook
    // does: a missing password Secret, BFD profile or alias is not an error here (the
    // controller's `Valid` condition on the object reports it).
    let opts = BuildOptions {
        namespace: namespace.to_owned(),
        allow_missing_references: true,
    };
    match build(resources, &opts) {
        Ok(config) => ConfigView {
            pools: config.pools.clone(),
            config: Some(config),
            errors: Vec::new(),
            broken_pools: BTreeMap::new(),
        },
        Err(errors) => {
            let mut pools = BTreeMap::new();
            let mut broken_pools = BTreeMap::new();
            for p in &resources.pools {
                let alone = Resources {
                    pools: vec![p.clone()],
                    ..Resources::default()
                };
                let name = p.metadata.name.clone().unwrap_or_default();
                match build(&alone, &opts) {
                    Ok(mut c) => pools.append(&mut c.pools),
                    Err(e) => {
                        let first = e.first().map(|e| e.to_string()).unwrap_or_default();
                        broken_pools.insert(name, first);
                    }
                }
            }
            ConfigView {
                config: None,
                errors,
                pools,
                broken_pools,
            }
        }
    }
}

fn families_text(fams: &[Family]) -> String {
    fams.iter()
        .map(|f| f.as_k8s_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "no labels".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why `pool` does not serve a Service in `ns` with these labels and families, in plain
/// words; empty when it does. `auto` is whether the Service relies on automatic assignment
/// (no requested pool or IP), where `autoAssign: false` matters.
fn pool_refusals(
    pool: &Pool,
    ns: &str,
    ns_labels: &BTreeMap<String, String>,
    svc_labels: &BTreeMap<String, String>,
    fams: &[Family],
    auto: bool,
) -> Vec<String> {
    let mut why = Vec::new();
    if auto && !pool.auto_assign() {
        why.push(
            "autoAssign is false: it only serves Services that name it in \
             ferrolb.io/address-pool or request one of its IPs"
                .to_owned(),
        );
    }
    if let Some(a) = pool.service_allocation() {
        if !a.selects_namespace(ns, ns_labels) {
            let mut parts = Vec::new();
            if !a.namespaces.is_empty() {
                parts.push(format!(
                    "serviceAllocation.namespaces [{}] does not include `{ns}`",
                    a.namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if !a.namespace_selectors.is_empty() {
                parts.push(format!(
                    "no serviceAllocation.namespaceSelectors ({}) matches namespace `{ns}` ({})",
                    a.namespace_selectors
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(" | "),
                    labels_text(ns_labels)
                ));
            }
            why.push(parts.join(", and "));
        }
        if !a.selects_service_labels(svc_labels) {
            why.push(format!(
                "no serviceAllocation.serviceSelectors ({}) matches the Service's labels ({})",
                a.service_selectors
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
                labels_text(svc_labels)
            ));
        }
    }
    if !fams.iter().any(|f| pool.has_family(*f)) {
        why.push(format!(
            "it has no {} addresses",
            fams.iter()
                .map(|f| f.as_k8s_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    why
}

fn pool_free_text(resources: &Resources, name: &str, family: Family) -> String {
    let st = resources
        .pools
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .and_then(|p| p.status.clone())
        .unwrap_or_default();
    let (used, free) = match family {
        Family::V4 => (st.assigned_ipv4, st.available_ipv4),
        Family::V6 => (st.assigned_ipv6, st.available_ipv6),
    };
    format!(
        "{family} used {}, free {}",
        used.as_deref().unwrap_or("?"),
        free.as_deref().unwrap_or("?")
    )
}

/// Services other than `me` whose status holds `ip`, as `ns/name` with their sharing key.
fn holders(resources: &Resources, me: &str, ip: IpAddr) -> Vec<String> {
    let mut out: Vec<String> = resources
        .services
        .iter()
        .filter(|s| service_key(s) != me)
        .filter(|s| {
            ingress_addresses(s)
                .iter()
                .any(|a| a.parse::<IpAddr>().ok() == Some(ip))
        })
        .map(|s| {
            let key = service_annotation(s, ferrolb_crds::annotations::ALLOW_SHARED_IP);
            match key {
                Some(k) => format!("{} (sharing key `{k}`)", service_key(s)),
                None => format!("{} (no sharing key)", service_key(s)),
            }
        })
        .collect();
    out.sort();
    out
}

fn ports_text(svc: &Service) -> String {
    let ports: Vec<String> = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(", ")
    }
}

/// Plain-words findings about the Service, most important first. Never empty.
pub fn diagnose(input: &DescribeInput<'_>) -> Vec<String> {
    let svc = input.service;
    let me = service_key(svc);
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let view = parse_service(svc, input.lb_class);
    let mut out = Vec::new();
    match &view.handling {
        Handling::NotLoadBalancer => {
            out.push(format!(
                "spec.type is {}, not LoadBalancer: ferrolb only gives addresses to \
                 type: LoadBalancer Services.",
                svc.spec
                    .as_ref()
                    .and_then(|s| s.type_.as_deref())
                    .unwrap_or("ClusterIP")
            ));
            return out;
        }
        Handling::OtherClass { class } => {
            out.push(match (class, input.lb_class) {
                (Some(c), _) => format!(
                    "spec.loadBalancerClass is `{c}`: ferrolb's controller handles it only when \
                     started with --lb-class {c} (if it is, pass --lb-class {c} to ferrolbctl)."
                ),
                (None, Some(mine)) => format!(
                    "the Service has no spec.loadBalancerClass, but you told ferrolbctl the \
                     controller runs with --lb-class {mine}: such a controller ignores it."
                ),
                (None, None) => "the Service is not handled by ferrolb's controller.".to_owned(),
            });
            return out;
        }
        Handling::Managed => {}
    }
    let request: Option<&LbRequest> = match &view.request {
        Ok(r) => Some(r),
        Err(errors) => {
            out.push(
                "The Service's request is invalid, so the controller will not allocate until it \
                 is fixed:"
                    .to_owned(),
            );
            for e in errors {
                out.push(format!("  {e}"));
            }
            None
        }
    };
    let cv = config_view(input.resources, input.ferrolb_namespace);
    if !cv.errors.is_empty() {
        out.push(format!(
            "The ferrolb configuration in namespace {} does not validate, so the controller \
             keeps running its last good one (recent changes are not in effect). First errors:",
            input.ferrolb_namespace
        ));
        for e in cv.errors.iter().take(5) {
            out.push(format!("  {e}"));
        }
        if cv.errors.len() > 5 {
            out.push(format!(
                "  ... and {} more (ferrolbctl validate shows them all)",
                cv.errors.len() - 5
            ));
        }
    }
    let vips = ingress_addresses(svc);
    let cond = service_condition(svc, CONDITION_LB_READY);
    if let Some(c) = cond
        && let (Some(seen), Some(generation)) = (c.observed_generation, svc.metadata.generation)
        && seen < generation
    {
        out.push(format!(
            "The condition was computed for generation {seen}, the Service is at generation \
             {generation}: the controller has not caught up with the latest change yet."
        ));
    }
    let empty = BTreeMap::new();
    let ns_labels = input.namespace_labels.unwrap_or(&empty);
    let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
    let fams: Vec<Family> = request
        .map(|r| r.ip_families.clone())
        .unwrap_or_else(|| vec![Family::V4]);

    match cond {
        None if vips.is_empty() => {
            out.push(
                "No ferrolb.io/LoadBalancerReady condition: the controller has not handled this \
                 Service. Check that ferrolb-controller is running and ready (/readyz on port \
                 7472), that it leads (with --leader-elect), and that its --lb-class matches."
                    .to_owned(),
            );
        }
        Some(c) if c.status == "False" => {
            out.push(format!(
                "Pending. The controller says {}: {}",
                c.reason, c.message
            ));
            if let Some(req) = request {
                explain_failure(
                    &c.reason,
                    req,
                    &me,
                    &ns,
                    ns_labels,
                    &svc_labels,
                    &fams,
                    input,
                    &cv,
                    &mut out,
                );
            }
            let uses_ns_selectors = cv.pools.values().any(|p| {
                p.service_allocation()
                    .is_some_and(|a| !a.namespace_selectors.is_empty())
            });
            if input.namespace_labels.is_none() && uses_ns_selectors {
                out.push(
                    "(The Namespace's labels could not be read, so namespaceSelectors were \
                     checked against no labels.)"
                        .to_owned(),
                );
            }
        }
        _ => {}
    }
    if !vips.is_empty() {
        explain_announcement(input, &cv, request, &ns, &svc_labels, &vips, &mut out);
    }
    if out.is_empty() {
        out.push("Nothing looks wrong.".to_owned());
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn explain_failure(
    reason: &str,
    req: &LbRequest,
    me: &str,
    ns: &str,
    ns_labels: &BTreeMap<String, String>,
    svc_labels: &BTreeMap<String, String>,
    fams: &[Family],
    input: &DescribeInput<'_>,
    cv: &ConfigView,
    out: &mut Vec<String>,
) {
    let pool_names = || {
        let names: Vec<&str> = cv.pools.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    match reason {
        "NoPool" => {
            if let Some(want) = &req.pool {
                match cv.pools.get(want) {
                    None if cv.broken_pools.contains_key(want) => out.push(format!(
                        "The requested pool `{want}` (ferrolb.io/address-pool) is invalid: {}",
                        cv.broken_pools[want]
                    )),
                    None => out.push(format!(
                        "The requested pool `{want}` (ferrolb.io/address-pool) does not exist in \
                         namespace {}; pools there: {}.",
                        input.ferrolb_namespace,
                        pool_names()
                    )),
                    Some(p) => {
                        for why in pool_refusals(p, ns, ns_labels, svc_labels, fams, false) {
                            out.push(format!(
                                "The requested pool `{want}` does not serve it: {why}."
                            ));
                        }
                    }
                }
                return;
            }
            if cv.pools.is_empty() {
                out.push(format!(
                    "There is no usable IPAddressPool in namespace {}: create one.",
                    input.ferrolb_namespace
                ));
            } else {
                out.push("No pool serves this Service:".to_owned());
            }
            for (name, p) in &cv.pools {
                let why = pool_refusals(p, ns, ns_labels, svc_labels, fams, true);
                if why.is_empty() {
                    out.push(format!(
                        "  pool {name}: serves it now (the condition may be from before a \
                         recent change; the controller retries when pools change)"
                    ));
                } else {
                    out.push(format!("  pool {name}: {}", why.join("; ")));
                }
            }
            for (name, e) in &cv.broken_pools {
                out.push(format!("  pool {name}: invalid: {e}"));
            }
        }
        "PoolExhausted" => {
            out.push("Every pool that serves this Service is full:".to_owned());
            for (name, p) in &cv.pools {
                let serves = match &req.pool {
                    Some(w) => w == name,
                    None => pool_refusals(p, ns, ns_labels, svc_labels, fams, true).is_empty(),
                };
                if serves {
                    let parts: Vec<String> = fams
                        .iter()
                        .filter(|f| p.has_family(**f))
                        .map(|f| pool_free_text(input.resources, name, *f))
                        .collect();
                    out.push(format!("  pool {name}: {}", parts.join("; ")));
                }
            }
            out.push(
                "Add addresses to a pool, add a pool that selects the Service, or delete \
                 LoadBalancer Services that are not needed (avoidBuggyIPs also removes .0/.255 \
                 addresses)."
                    .to_owned(),
            );
        }
        "RequestedIPUnavailable" => {
            let from = req.requested_ips_path.as_deref().unwrap_or("the request");
            for &ip in &req.requested_ips {
                let holder = cv.pools.iter().find(|(_, p)| p.contains(ip));
                match holder {
                    None => {
                        let ranges: Vec<String> = cv
                            .pools
                            .iter()
                            .map(|(n, p)| {
                                let sets: Vec<String> = Family::ALL
                                    .iter()
                                    .flat_map(|f| p.addresses(*f).iter().map(|r| r.to_string()))
                                    .collect();
                                format!("{n} {}", sets.join(" "))
                            })
                            .collect();
                        out.push(format!(
                            "Requested IP {ip} (from {from}) is outside every pool (pools: {}).",
                            if ranges.is_empty() {
                                "none".to_owned()
                            } else {
                                ranges.join("; ")
                            }
                        ));
                    }
                    Some((name, p)) => {
                        if req.pool.as_ref().is_some_and(|w| w != name) {
                            out.push(format!(
                                "Requested IP {ip} is in pool {name}, but the Service asks for pool \
                                 {} in ferrolb.io/address-pool.",
                                req.pool.as_deref().unwrap_or_default()
                            ));
                        }
                        for why in pool_refusals(p, ns, ns_labels, svc_labels, fams, false) {
                            out.push(format!(
                                "Requested IP {ip} is in pool {name}, which does not serve this \
                                 Service: {why}."
                            ));
                        }
                        if !p.is_allocatable(ip) {
                            out.push(format!(
                                "Requested IP {ip} ends in .0 or .255 and pool {name} has \
                                 avoidBuggyIPs: true."
                            ));
                        }
                        let held = holders(input.resources, me, ip);
                        if !held.is_empty() {
                            out.push(format!(
                                "Requested IP {ip} is held by {}. To share it, give the Services \
                                 the same ferrolb.io/allow-shared-ip key, no common port, and \
                                 the same backend; otherwise request another IP.",
                                held.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        "SharingConflict" => {
            let key = req.sharing_key.as_deref().unwrap_or_default();
            let mut peers: Vec<String> = input
                .resources
                .services
                .iter()
                .filter(|s| service_key(s) != me)
                .filter(|s| {
                    service_annotation(s, ferrolb_crds::annotations::ALLOW_SHARED_IP) == Some(key)
                })
                .map(|s| {
                    let etp = s
                        .spec
                        .as_ref()
                        .and_then(|x| x.external_traffic_policy.clone())
                        .unwrap_or_else(|| "Cluster".to_owned());
                    format!(
                        "  {} ports {}, ETP {etp}, VIPs {}",
                        service_key(s),
                        ports_text(s),
                        ingress_addresses(s).join(",")
                    )
                })
                .collect();
            peers.sort();
            out.push(format!(
                "Services with sharing key `{key}` (this one: ports {}, ETP {}):",
                ports_text(input.service),
                match req.traffic_policy {
                    TrafficPolicy::Cluster => "Cluster",
                    TrafficPolicy::Local => "Local",
                }
            ));
            out.extend(peers);
            out.push(
                "Services share an IP only with the same key, no common (protocol, port), and \
                 the same backend (externalTrafficPolicy Cluster, or Local with identical pod \
                 selectors)."
                    .to_owned(),
            );
        }
        "DualStackUnavailable" => {
            let both: Vec<&str> = cv
                .pools
                .iter()
                .filter(|(_, p)| p.has_family(Family::V4) && p.has_family(Family::V6))
                .map(|(n, _)| n.as_str())
                .collect();
            out.push(format!(
                "ipFamilyPolicy RequireDualStack takes {} from one pool; pools with both \
                 families: {}.",
                families_text(&[Family::V4, Family::V6]),
                if both.is_empty() {
                    "none".to_owned()
                } else {
                    both.join(", ")
                }
            ));
        }
        _ => {}
    }
}

fn explain_announcement(
    input: &DescribeInput<'_>,
    cv: &ConfigView,
    request: Option<&LbRequest>,
    ns: &str,
    svc_labels: &BTreeMap<String, String>,
    vips: &[String],
    out: &mut Vec<String>,
) {
    let svc = input.service;
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let anns: Vec<&Announcement> = announcements_of(input.announcements, ns, name).collect();
    let pool = service_annotation(svc, IP_ALLOCATED_FROM_POOL);
    let local = request.is_some_and(|r| r.traffic_policy == TrafficPolicy::Local);
    if !anns.is_empty() {
        let nodes: Vec<String> = anns
            .iter()
            .map(|a| format!("{} ({})", a.node, a.mode.as_str()))
            .collect();
        out.push(format!(
            "Allocated {} and announced by {}.",
            vips.join(", "),
            nodes.join(", ")
        ));
        out.push(format!(
            "If traffic does not arrive: for BGP, check the sessions on those nodes are \
             Established ({SESSION_STATE_HINT}) and the router's routes; for L2, check that ARP/NDP \
             from the client's segment reaches the announcing node's interface{}.",
            if local {
                "; with externalTrafficPolicy Local only nodes with a ready local pod announce"
            } else {
                ""
            }
        ));
        return;
    }
    out.push(format!(
        "Allocated {} but no speaker reports announcing it (no ServiceBGPStatus or \
         ServiceL2Status object for this Service).",
        vips.join(", ")
    ));
    let Some(config) = &cv.config else {
        return;
    };
    if let Some(pool) = pool {
        let bgp: Vec<&str> = config
            .bgp_advertisements_for_pool(pool)
            .map(|a| a.name.as_str())
            .collect();
        let l2: Vec<&str> = config
            .l2_advertisements_for_pool(pool)
            .map(|a| a.name.as_str())
            .collect();
        if bgp.is_empty() && l2.is_empty() {
            out.push(format!(
                "No L2Advertisement or BGPAdvertisement selects pool {pool}: its IPs are \
                 allocated but never announced. Create an advertisement for the pool."
            ));
            return;
        }
        let selected_by_any = config
            .bgp_advertisements_for_pool(pool)
            .map(|a| &a.service_selectors)
            .chain(
                config
                    .l2_advertisements_for_pool(pool)
                    .map(|a| &a.service_selectors),
            )
            .any(|s| s.matches(svc_labels));
        if !selected_by_any {
            out.push(format!(
                "The advertisements of pool {pool} ({}) all have serviceSelectors that do not \
                 match this Service's labels ({}).",
                bgp.iter()
                    .chain(&l2)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                labels_text(svc_labels)
            ));
            return;
        }
        if !bgp.is_empty() && config.peers.is_empty() {
            out.push(format!(
                "Pool {pool} is advertised by BGP ({}) but there is no BGPPeer.",
                bgp.join(", ")
            ));
        }
    }
    if local {
        out.push(
            "externalTrafficPolicy is Local: only nodes with a ready local endpoint announce. \
             Check the Service has ready endpoints (kubectl get endpointslices -n NS \
             -l kubernetes.io/service-name=NAME)."
                .replace("NS", ns)
                .replace("NAME", name),
        );
    }
    out.push(format!(
        "Check that the speakers run on the nodes the advertisements' nodeSelectors select, \
         and that those nodes are Ready and not labelled \
         node.kubernetes.io/exclude-from-external-load-balancers; {SESSION_STATE_HINT}."
    ));
}

/// The whole description of the Service, as text.
pub fn describe_service(input: &DescribeInput<'_>) -> String {
    let svc = input.service;
    let spec = svc.spec.clone().unwrap_or_default();
    let view = parse_service(svc, input.lb_class);
    let none = || "<none>".to_owned();
    let mut fields: Vec<(&str, String)> = vec![
        ("Name", svc.metadata.name.clone().unwrap_or_default()),
        (
            "Namespace",
            svc.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            "Type",
            spec.type_.clone().unwrap_or_else(|| "ClusterIP".to_owned()),
        ),
        (
            "LoadBalancer class",
            spec.load_balancer_class.clone().unwrap_or_else(none),
        ),
        (
            "External traffic policy",
            spec.external_traffic_policy
                .clone()
                .unwrap_or_else(|| "Cluster".to_owned()),
        ),
        ("Ports", ports_text(svc)),
    ];
    if let Ok(req) = &view.request {
        fields.push((
            "IP families",
            format!(
                "{} ({})",
                families_text(&req.ip_families),
                match req.ip_family_policy {
                    IpFamilyPolicy::SingleStack => "SingleStack",
                    IpFamilyPolicy::PreferDualStack => "PreferDualStack",
                    IpFamilyPolicy::RequireDualStack => "RequireDualStack",
                }
            ),
        ));
        fields.push(("Requested pool", req.pool.clone().unwrap_or_else(none)));
        fields.push((
            "Requested IPs",
            if req.requested_ips.is_empty() {
                none()
            } else {
                format!(
                    "{} (from {})",
                    req.requested_ips
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    req.requested_ips_path.as_deref().unwrap_or("?")
                )
            },
        ));
        fields.push(("Sharing key", req.sharing_key.clone().unwrap_or_else(none)));
    }
    let vips = ingress_addresses(svc);
    fields.push((
        "VIPs",
        if vips.is_empty() {
            "<pending>".to_owned()
        } else {
            vips.join(", ")
        },
    ));
    fields.push((
        "Allocated from pool",
        service_annotation(svc, IP_ALLOCATED_FROM_POOL).map_or_else(none, str::to_owned),
    ));
    let cond = service_condition(svc, CONDITION_LB_READY);
    fields.push((
        "LoadBalancerReady",
        match cond {
            None => "<not set>".to_owned(),
            Some(c) => {
                let since = format!(" (for {})", age(c.last_transition_time.0, input.now));
                format!("{} {}: {}{since}", c.status, c.reason, c.message)
            }
        },
    ));
    for d in &view.deprecated_annotations {
        fields.push((
            "Deprecated annotation",
            format!("{} (use {})", d.used, d.replacement()),
        ));
    }
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (k, v) in &fields {
        out.push_str(&format!("{:<width$}{v}\n", format!("{k}:")));
    }
    let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    out.push_str("Announced by:\n");
    let anns: Vec<&Announcement> = announcements_of(input.announcements, ns, name).collect();
    if anns.is_empty() {
        out.push_str("  <nobody>\n");
    } else {
        let mut t = Table::new(&["NODE", "MODE", "VIA"]);
        for a in anns {
            t.push(vec![
                a.node.clone(),
                a.mode.as_str().to_owned(),
                a.via.join(","),
            ]);
        }
        for line in t.render().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str("Diagnosis:\n");
    for line in diagnose(input) {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str("Events:\n");
    out.push_str(&events_table(input.events, input.now, EVENT_LIMIT));
    out
}

#[cfg(test)]
mod tests {
    use super::super::Mode;
    use super::super::services::tests::lb_service;
    use super::*;
    use ferrolb_crds::{
        BGPAdvertisement, BGPAdvertisementSpec, IPAddressPool, IPAddressPoolSpec,
        IPAddressPoolStatus, ServiceAllocation,
    };

    fn pool(name: &str, addrs: &[&str], f: impl FnOnce(&mut IPAddressPoolSpec)) -> IPAddressPool {
        let mut spec = IPAddressPoolSpec {
            addresses: addrs.iter().map(|a| (*a).into()).collect(),
            auto_assign: true,
            ..Default::default()
        };
        f(&mut spec);
        let mut p = IPAddressPool::new(name, spec);
        p.metadata.namespace = Some("ferrolb-system".into());
        p
    }

    fn resources(pools: Vec<IPAddressPool>, services: Vec<Service>) -> Resources {
        Resources {
            pools,
            services,
            ..Resources::default()
        }
    }

    fn input<'a>(
        svc: &'a Service,
        res: &'a Resources,
        anns: &'a [Announcement],
        ns_labels: Option<&'a BTreeMap<String, String>>,
    ) -> DescribeInput<'a> {
        DescribeInput {
            service: svc,
            namespace_labels: ns_labels,
            resources: res,
            ferrolb_namespace: "ferrolb-system",
            lb_class: None,
            announcements: anns,
            events: &[],
            now: Timestamp::from_second(1_000).expect("time"),
        }
    }

    /// Each case: Service, pools, other Services, expected fragments of the diagnosis.
    #[test]
    fn diagnosis_table() {
        let team_only = |s: &mut IPAddressPoolSpec| {
            s.service_allocation = Some(ServiceAllocation {
                namespaces: vec!["team-a".into()],
                ..Default::default()
            });
        };
        let manual = |s: &mut IPAddressPoolSpec| s.auto_assign = false;
        let mut full = pool("small", &["10.9.0.0/31"], |_| {});
        full.status = Some(IPAddressPoolStatus {
            assigned_ipv4: Some("2".into()),
            available_ipv4: Some("0".into()),
            ..Default::default()
        });
        let mut not_lb = lb_service("default", "plain", &[], &[], None);
        if let Some(s) = not_lb.spec.as_mut() {
            s.type_ = Some("ClusterIP".into());
        }
        let mut classy = lb_service("default", "classy", &[], &[], None);
        if let Some(s) = classy.spec.as_mut() {
            s.load_balancer_class = Some("other.io/lb".into());
        }
        let holder = lb_service(
            "default",
            "holder",
            &["10.0.0.5"],
            &[("ferrolb.io/allow-shared-ip", "k1")],
            Some(("True", "Allocated", "")),
        );
        type Case<'a> = (
            &'a str,
            Service,
            Vec<IPAddressPool>,
            Vec<Service>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "no pool selects the namespace",
                lb_service(
                    "web",
                    "svc",
                    &[],
                    &[],
                    Some((
                        "False",
                        "NoPool",
                        "no autoAssign address pool serves web/svc",
                    )),
                ),
                vec![
                    pool("a", &["10.0.0.0/24"], team_only),
                    pool("b", &["10.1.0.0/24"], manual),
                ],
                vec![],
                vec![
                    "Pending. The controller says NoPool: no autoAssign address pool serves web/svc",
                    "No pool serves this Service:",
                    "  pool a: serviceAllocation.namespaces [team-a] does not include `web`",
                    "  pool b: autoAssign is false",
                ],
            ),
            (
                "requested pool missing",
                lb_service(
                    "web",
                    "svc",
                    &[],
                    &[("ferrolb.io/address-pool", "gold")],
                    Some(("False", "NoPool", "requested pool `gold` does not exist")),
                ),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![],
                vec![
                    "The requested pool `gold` (ferrolb.io/address-pool) does not exist in namespace ferrolb-system; pools there: a.",
                ],
            ),
            (
                "no pools at all",
                lb_service("web", "svc", &[], &[], Some(("False", "NoPool", "x"))),
                vec![],
                vec![],
                vec!["There is no usable IPAddressPool in namespace ferrolb-system: create one."],
            ),
            (
                "requested IP outside every pool",
                lb_service(
                    "web",
                    "svc",
                    &[],
                    &[("ferrolb.io/loadBalancerIPs", "1.2.3.4")],
                    Some((
                        "False",
                        "RequestedIPUnavailable",
                        "requested 1.2.3.4 is outside every address pool",
                    )),
                ),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![],
                vec![
                    "Requested IP 1.2.3.4 (from metadata.annotations[ferrolb.io/loadBalancerIPs]) is outside every pool (pools: a 10.0.0.0/24).",
                ],
            ),
            (
                "requested IP held by another Service",
                lb_service(
                    "default",
                    "svc",
                    &[],
                    &[("ferrolb.io/loadBalancerIPs", "10.0.0.5")],
                    Some(("False", "RequestedIPUnavailable", "10.0.0.5 is in use")),
                ),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![holder.clone()],
                vec!["Requested IP 10.0.0.5 is held by default/holder (sharing key `k1`)."],
            ),
            (
                "pool exhausted",
                lb_service(
                    "web",
                    "svc",
                    &[],
                    &[],
                    Some(("False", "PoolExhausted", "no free IPv4 address")),
                ),
                vec![full],
                vec![],
                vec![
                    "Every pool that serves this Service is full:",
                    "  pool small: IPv4 used 2, free 0",
                    "Add addresses to a pool",
                ],
            ),
            (
                "sharing conflict",
                lb_service(
                    "default",
                    "svc",
                    &[],
                    &[("ferrolb.io/allow-shared-ip", "k1")],
                    Some((
                        "False",
                        "SharingConflict",
                        "port 80 on 10.0.0.5 is already used",
                    )),
                ),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![holder.clone()],
                vec![
                    "Services with sharing key `k1` (this one: ports <none>, ETP Cluster):",
                    "  default/holder ports <none>, ETP Cluster, VIPs 10.0.0.5",
                ],
            ),
            (
                "never handled",
                lb_service("web", "svc", &[], &[], None),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![],
                vec![
                    "No ferrolb.io/LoadBalancerReady condition: the controller has not handled this Service.",
                ],
            ),
            (
                "not a LoadBalancer",
                not_lb,
                vec![],
                vec![],
                vec!["spec.type is ClusterIP, not LoadBalancer"],
            ),
            (
                "other class",
                classy,
                vec![],
                vec![],
                vec![
                    "spec.loadBalancerClass is `other.io/lb`: ferrolb's controller handles it only when started with --lb-class other.io/lb",
                ],
            ),
            (
                "allocated, pool not advertised",
                lb_service(
                    "web",
                    "svc",
                    &["10.0.0.1"],
                    &[("ferrolb.io/ip-allocated-from-pool", "a")],
                    Some(("True", "Allocated", "")),
                ),
                vec![pool("a", &["10.0.0.0/24"], |_| {})],
                vec![],
                vec![
                    "Allocated 10.0.0.1 but no speaker reports announcing it",
                    "No L2Advertisement or BGPAdvertisement selects pool a: its IPs are allocated but never announced.",
                ],
            ),
            (
                "invalid configuration",
                lb_service("web", "svc", &[], &[], Some(("False", "NoPool", "x"))),
                vec![
                    pool("a", &["10.0.0.0/24"], |_| {}),
                    pool("b", &["10.0.0.128/25"], |_| {}),
                ],
                vec![],
                vec![
                    "does not validate, so the controller keeps running its last good one",
                    "  IPAddressPool ferrolb-system/",
                ],
            ),
            (
                "invalid request",
                lb_service(
                    "web",
                    "svc",
                    &[],
                    &[("ferrolb.io/loadBalancerIPs", "nope")],
                    Some(("False", "InvalidRequest", "x")),
                ),
                vec![],
                vec![],
                vec![
                    "The Service's request is invalid",
                    "  metadata.annotations[ferrolb.io/loadBalancerIPs]: `nope` is not an IP address",
                ],
            ),
        ];
        for (what, svc, pools, others, want) in cases {
            let res = resources(pools, others);
            let lines = diagnose(&input(&svc, &res, &[], None));
            let text = lines.join("\n");
            for w in want {
                assert!(text.contains(w), "{what}: missing {w:?} in:\n{text}");
            }
        }
    }

    #[test]
    fn namespace_selector_and_announced() {
        let sel = |s: &mut IPAddressPoolSpec| {
            s.service_allocation = Some(ServiceAllocation {
                namespace_selectors: vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                        match_labels: Some([("tier".to_owned(), "prod".to_owned())].into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            });
        };
        let svc = lb_service("web", "svc", &[], &[], Some(("False", "NoPool", "x")));
        let res = resources(vec![pool("p", &["10.0.0.0/24"], sel)], vec![]);
        let labels: BTreeMap<String, String> = [("tier".to_owned(), "dev".to_owned())].into();
        let text = diagnose(&input(&svc, &res, &[], Some(&labels))).join("\n");
        assert!(
            text.contains("no serviceAllocation.namespaceSelectors (tier=prod) matches namespace `web` (tier=dev)"),
            "{text}"
        );
        assert!(!text.contains("could not be read"));
        let text = diagnose(&input(&svc, &res, &[], None)).join("\n");
        assert!(
            text.contains("(The Namespace's labels could not be read"),
            "{text}"
        );
        let prod: BTreeMap<String, String> = [("tier".to_owned(), "prod".to_owned())].into();
        let text = diagnose(&input(&svc, &res, &[], Some(&prod))).join("\n");
        assert!(text.contains("pool p: serves it now"), "{text}");

        // Allocated and announced: the description lists the announcers and the hint.
        let mut res = resources(vec![pool("p", &["10.0.0.0/24"], |_| {})], vec![]);
        let mut adv = BGPAdvertisement::new("adv", BGPAdvertisementSpec::default());
        adv.metadata.namespace = Some("ferrolb-system".into());
        res.bgp_advertisements.push(adv);
        let svc = lb_service(
            "web",
            "svc",
            &["10.0.0.1"],
            &[("ferrolb.io/ip-allocated-from-pool", "p")],
            Some(("True", "Allocated", "[10.0.0.1] from pool `p`")),
        );
        let anns = [Announcement {
            service_namespace: "web".into(),
            service_name: "svc".into(),
            node: "node1".into(),
            mode: Mode::Bgp,
            via: vec!["tor".into()],
        }];
        let text = describe_service(&input(&svc, &res, &anns, None));
        let field = |k: &str, v: &str| format!("{:<25}{v}\n", format!("{k}:"));
        for want in [
            field("Name", "svc"),
            field("VIPs", "10.0.0.1"),
            field("Allocated from pool", "p"),
            field(
                "LoadBalancerReady",
                "True Allocated: [10.0.0.1] from pool `p` (for 100s)",
            ),
            "Announced by:\n  NODE    MODE   VIA\n  node1   bgp    tor\n".to_owned(),
            "Allocated 10.0.0.1 and announced by node1 (bgp).".to_owned(),
            "ferrolb_bgp_session_up".to_owned(),
            "Events:\n  <none>\n".to_owned(),
        ] {
            assert!(text.contains(&want), "missing {want:?} in:\n{text}");
        }
        // Advertised pool but nobody announces: points at speakers, not at the pool.
        let text = diagnose(&input(&svc, &res, &[], None)).join("\n");
        assert!(
            text.contains("Pool p is advertised by BGP (adv) but there is no BGPPeer."),
            "{text}"
        );
    }
}
