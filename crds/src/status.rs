//! Status-only kinds written by speakers (`ServiceL2Status`, `ServiceBGPStatus`) and the
//! common status block of configuration kinds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Status block shared by configuration kinds: a `Valid` condition set by the controller
/// when the object is rejected by whole-config validation (object, field and reason).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// Conditions; `Valid` is the one ferrolb writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Spec of `ServiceL2Status`: empty, the content is in the status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "ServiceL2Status",
    plural = "servicel2statuses",
    namespaced,
    status = "ServiceL2StatusStatus",
    category = "ferrolb",
    doc = "Which node announces a Service's IPs in layer-2 mode, and on which interfaces. Written by the speaker.",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
pub struct ServiceL2StatusSpec {}

/// Observed L2 announcement of one Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusStatus {
    /// Node that announces the Service's IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("node is immutable"))]
    pub node: Option<String>,
    /// Name of the announced Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("serviceName is immutable"))]
    pub service_name: Option<String>,
    /// Namespace of the announced Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("serviceNamespace is immutable"))]
    pub service_namespace: Option<String>,
    /// Interfaces the node answers ARP/NDP on for the Service's IPs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<StatusInterface>,
}

/// One interface in a `ServiceL2Status`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StatusInterface {
    /// Interface name.
    pub name: String,
}

/// Spec of `ServiceBGPStatus`: empty, the content is in the status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    plural = "servicebgpstatuses",
    namespaced,
    status = "ServiceBGPStatusStatus",
    category = "ferrolb",
    doc = "Which BGP peers a node advertises a Service's IPs to. Written by the speaker, one per (Service, node).",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    ),
    printcolumn(name = "Peers", type_ = "string", json_path = ".status.peers")
)]
pub struct ServiceBGPStatusSpec {}

/// Observed BGP advertisement of one Service from one node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBGPStatusStatus {
    /// Node that advertises the Service's IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("node is immutable"))]
    pub node: Option<String>,
    /// Name of the advertised Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("serviceName is immutable"))]
    pub service_name: Option<String>,
    /// Namespace of the advertised Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("serviceNamespace is immutable"))]
    pub service_namespace: Option<String>,
    /// BGPPeer names the node advertises the Service to (sessions permitting).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}
