//! `BGPPeer` and `BGPAdvertisement`: BGP sessions and what is advertised over them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::ConfigStatus;

/// A BGP neighbour (typically a top-of-rack router) that speakers peer with.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    status = "ConfigStatus",
    category = "ferrolb",
    doc = "A BGP neighbour that the speakers on the selected nodes establish a session with.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
    printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
    printcolumn(
        name = "Multi Hops",
        type_ = "boolean",
        json_path = ".spec.ebgpMultiHop"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.peerASN) != has(self.dynamicASN)")
    .message("exactly one of peerASN and dynamicASN must be set"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) <= duration(self.holdTime)"
).message("keepaliveTime must be lower than or equal to holdTime").field_path(".keepaliveTime"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.holdTime) != duration('0s') || duration(self.keepaliveTime) == duration('0s')"
).message("keepaliveTime must be 0 when holdTime is 0").field_path(".keepaliveTime"))]
pub struct BGPPeerSpec {
    /// Local AS number the speaker uses on this session.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// Peer's AS number. Exactly one of `peerASN` and `dynamicASN` is set.
    #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u32>,
    /// Accept the peer's AS as found in its OPEN: `internal` (same as myASN) or `external`.
    #[serde(
        default,
        rename = "dynamicASN",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsn>,
    /// Peer's IP address.
    #[x_kube(validation = kube::core::Rule::new("isIP(self)").message("peerAddress must be an IP address"))]
    pub peer_address: String,
    /// Peer's TCP port (default 179).
    #[serde(default = "default_peer_port")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 65535").message("peerPort must be between 1 and 65535"))]
    pub peer_port: u32,
    /// Local address to originate the session from (default: chosen by routing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("isIP(self)").message("sourceAddress must be an IP address"))]
    pub source_address: Option<String>,
    /// Proposed hold time, e.g. `90s` (0 disables keepalives; otherwise at least 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(
        "duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))"
    ).message("holdTime must be 0 or between 3s and 65535s"))]
    pub hold_time: Option<String>,
    /// Keepalive interval, e.g. `30s` (default: holdTime / 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('0s') && duration(self) <= duration('65535s')")
        .message("keepaliveTime must be between 0s and 65535s"))]
    pub keepalive_time: Option<String>,
    /// Initial connect-retry interval, e.g. `5s` (whole seconds, 1s to 65535s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(
        "self.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?$') && duration(self) >= duration('1s') && duration(self) <= duration('65535s')"
    ).message("connectTime must be whole seconds between 1s and 65535s"))]
    pub connect_time: Option<String>,
    /// BGP identifier to use (default: the node's first IPv4 address).
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("isIP(self) && ip(self).family() == 4").message("routerID must be an IPv4 address"))]
    pub router_id: Option<String>,
    /// Secret (type `kubernetes.io/basic-auth`, key `password`) holding the TCP-MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretRef>,
    /// The peer is more than one hop away (eBGP multihop: TTL 255, no GTSM).
    #[serde(default)]
    pub ebgp_multi_hop: bool,
    /// Name of a `BFDProfile` enabling BFD on this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Negotiate graceful restart (RFC 4724) so the peer keeps routes while the speaker restarts.
    #[serde(default)]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("enableGracefulRestart is immutable"))]
    pub enable_graceful_restart: bool,
    /// Nodes whose speakers peer with this neighbour (empty: every node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
}

/// How a peer's AS is accepted when not given as a number.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    /// The peer's AS equals `myASN` (iBGP).
    Internal,
    /// The peer's AS differs from `myASN` (eBGP).
    External,
}

/// Reference to a Secret in the ferrolb namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace (must be the ferrolb namespace if set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Advertise pools' IPs to BGP peers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    plural = "bgpadvertisements",
    namespaced,
    status = "ConfigStatus",
    category = "ferrolb",
    doc = "Advertises the IPs of the selected pools to BGP peers, from every eligible node.",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
    printcolumn(
        name = "Aggregation",
        type_ = "integer",
        json_path = ".spec.aggregationLength",
        priority = "1"
    ),
    printcolumn(
        name = "LocalPref",
        type_ = "integer",
        json_path = ".spec.localPref",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))"
).message("serviceSelectors cannot be combined with aggregated (shorter than host) prefixes").field_path(".serviceSelectors"))]
pub struct BGPAdvertisementSpec {
    /// IPv4 prefix length to advertise (1 to 32; 32 advertises each IP on its own).
    #[serde(default = "default_agg_v4")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 32").message("aggregationLength must be between 1 and 32"))]
    pub aggregation_length: u32,
    /// IPv6 prefix length to advertise (1 to 128).
    #[serde(default = "default_agg_v6", rename = "aggregationLengthV6")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 128").message("aggregationLengthV6 must be between 1 and 128"))]
    pub aggregation_length_v6: u32,
    /// LOCAL_PREF attribute, sent on iBGP sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Communities: `A:B`, `large:A:B:C`, or the name of a `Community` alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 63))]
    pub communities: Vec<String>,
    /// Pools to advertise, by name. With neither this nor `ipAddressPoolSelectors`, every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools to advertise, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that advertise (become next hops); empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// BGPPeer names to advertise to; empty: every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Services to advertise, by label; empty: every Service of the pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
    /// For `externalTrafficPolicy: Local` Services, attach the link-bandwidth extended
    /// community in proportion to the node's ready local endpoints, so routers that honour
    /// it (FRR does) spread traffic per pod rather than per node.
    #[serde(default, rename = "weightedECMP")]
    pub weighted_ecmp: bool,
}

impl Default for BGPAdvertisementSpec {
    fn default() -> Self {
        Self {
            aggregation_length: default_agg_v4(),
            aggregation_length_v6: default_agg_v6(),
            local_pref: None,
            communities: Vec::new(),
            ip_address_pools: Vec::new(),
            ip_address_pool_selectors: Vec::new(),
            node_selectors: Vec::new(),
            peers: Vec::new(),
            service_selectors: Vec::new(),
            weighted_ecmp: false,
        }
    }
}

fn default_peer_port() -> u32 {
    179
}
fn default_agg_v4() -> u32 {
    32
}
fn default_agg_v6() -> u32 {
    128
}
