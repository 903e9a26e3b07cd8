//! Service annotation keys, labels and condition names shared by every component.

/// Current annotation prefix.
pub const PREFIX: &str = "ferrolb.io/";
/// Annotation prefixes read for compatibility with MetalLB, newest first. Reading one of
/// these makes the controller emit a Warning Event suggesting the `ferrolb.io/` key.
pub const LEGACY_PREFIXES: [&str; 2] = ["metallb.io/", "metallb.universe.tf/"];

/// Requested pool name (suffix after the prefix).
pub const ADDRESS_POOL: &str = "address-pool";
/// Requested IPs, comma separated, at most one per family.
pub const LOAD_BALANCER_IPS: &str = "loadBalancerIPs";
/// Sharing key: Services with the same key may share an IP.
pub const ALLOW_SHARED_IP: &str = "allow-shared-ip";
/// Written by the controller: the pool the Service's IPs came from.
pub const IP_ALLOCATED_FROM_POOL: &str = "ip-allocated-from-pool";

/// Service condition type written by the controller.
pub const CONDITION_LB_READY: &str = "ferrolb.io/LoadBalancerReady";

/// Label on status objects naming the node that wrote them.
pub const LABEL_NODE: &str = "ferrolb.io/node";
/// Label on status objects naming the Service.
pub const LABEL_SERVICE_NAME: &str = "ferrolb.io/service-name";
/// Label on status objects naming the Service's namespace.
pub const LABEL_SERVICE_NAMESPACE: &str = "ferrolb.io/service-namespace";

/// Well-known node label that excludes a node from announcing load-balancer IPs.
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Full annotation key under the current prefix, e.g. `ferrolb.io/address-pool`.
pub fn key(suffix: &str) -> String {
    format!("{PREFIX}{suffix}")
}
