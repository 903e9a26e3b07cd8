//! `L2Advertisement`: which pools are announced by ARP/NDP, from which nodes and interfaces.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConfigStatus;

/// Announce pools' IPs on layer 2 (ARP for IPv4, NDP for IPv6).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    plural = "l2advertisements",
    namespaced,
    status = "ConfigStatus",
    category = "ferrolb",
    doc = "Announces the IPs of the selected pools on layer 2: one node per IP answers ARP/NDP for it.",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools to announce, by name. With neither this nor `ipAddressPoolSelectors`, every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools to announce, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce (empty: every node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on (empty: every interface that is up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = kube::core::Rule::new(
        "self.all(i, size(i) > 0 && size(i) <= 15 && !i.contains('/') && !i.contains(' '))"
    ).message("interface names are 1-15 characters without '/' or spaces"))]
    pub interfaces: Vec<String>,
    /// Services to announce, by label (empty: every Service of the pools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
    /// Soft preferences among eligible nodes: the weights of matching entries are summed and
    /// the highest-scoring node announces; ties fall back to the hash of node name and IP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// A weighted node preference.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PreferredNodeSelector {
    /// Weight added to the score of matching nodes, 1 to 100.
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 100").message("weight must be between 1 and 100"))]
    pub weight: i32,
    /// Nodes that get the weight.
    pub preference: LabelSelector,
}
