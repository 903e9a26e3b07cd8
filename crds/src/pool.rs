//! `IPAddressPool`: the address ranges VIPs are allocated from, and who may use them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Address ranges that LoadBalancer Services get their external IPs from.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    status = "IPAddressPoolStatus",
    category = "ferrolb",
    doc = "A pool of IPv4 and/or IPv6 addresses that LoadBalancer Services are assigned external IPs from.",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "Assigned IPv4",
        type_ = "string",
        json_path = ".status.assignedIPv4",
        priority = "1"
    ),
    printcolumn(
        name = "Available IPv4",
        type_ = "string",
        json_path = ".status.availableIPv4",
        priority = "1"
    ),
    printcolumn(
        name = "Assigned IPv6",
        type_ = "string",
        json_path = ".status.assignedIPv6",
        priority = "1"
    ),
    printcolumn(
        name = "Available IPv6",
        type_ = "string",
        json_path = ".status.availableIPv6",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// CIDRs (`192.168.10.0/24`, `fc00:f853::/120`) or inclusive ranges
    /// (`192.168.10.10-192.168.10.20`), IPv4 and IPv6 may be mixed across entries.
    #[schemars(length(min = 1))]
    #[x_kube(validation = kube::core::Rule::new(
        "self.all(a, a.contains('/') ? a.split('/').size() == 2 : a.split('-').size() == 2)"
    ).message("each address must be a CIDR (a.b.c.d/n) or a range (start-end)"))]
    pub addresses: Vec<String>,
    /// Whether the pool is used for automatic allocation. With `false`, addresses are only
    /// handed out when a Service asks for this pool or one of its IPs explicitly.
    #[serde(default = "default_true")]
    pub auto_assign: bool,
    /// Skip IPv4 addresses ending in `.0` and `.255`, which some old client stacks drop.
    #[serde(default, rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,
    /// Restricts which Services may be allocated from this pool, and in which order pools
    /// are tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which Services a pool serves, and with which priority.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.namespaces) || self.namespaces.all(n, self.namespaces.exists_one(m, m == n))"
).message("namespaces must not contain duplicates").field_path(".namespaces"))]
pub struct ServiceAllocation {
    /// Lower numbers are tried first; 0 (or unset) is tried last, after every
    /// pool with a positive priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0").message("priority must be >= 0"))]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces, selected by label, whose Services may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services, selected by label, that may use this pool (any selector may match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Observed state of a pool, written by the controller.
///
/// Counts are decimal strings so that IPv6 pools are exact (a `/64` holds 2^64
/// addresses, beyond what a JSON integer can carry without loss).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses currently assigned to Services.
    #[serde(
        default,
        rename = "assignedIPv4",
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv4: Option<String>,
    /// IPv6 addresses currently assigned to Services.
    #[serde(
        default,
        rename = "assignedIPv6",
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv6: Option<String>,
    /// IPv4 addresses still free for allocation.
    #[serde(
        default,
        rename = "availableIPv4",
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv4: Option<String>,
    /// IPv6 addresses still free for allocation.
    #[serde(
        default,
        rename = "availableIPv6",
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv6: Option<String>,
    /// `Valid` condition: whether the pool is part of the running configuration, with the
    /// validation error otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn default_true() -> bool {
    true
}
