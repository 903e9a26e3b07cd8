//! `BFDProfile`: BFD timers referenced by BGP peers.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConfigStatus;

/// BFD session parameters (RFC 5880), referenced by `BGPPeer.spec.bfdProfile`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    status = "ConfigStatus",
    category = "ferrolb",
    doc = "BFD timers for fast detection of a lost BGP neighbour.",
    printcolumn(
        name = "Receive Interval",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Transmit Interval",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    ),
    printcolumn(name = "Passive", type_ = "boolean", json_path = ".spec.passiveMode")
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Minimum interval, in milliseconds, between received control packets this end is
    /// able to handle (10 to 60000).
    #[serde(default = "default_interval")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("receiveInterval must be between 10 and 60000 ms"))]
    pub receive_interval: u32,
    /// Desired interval, in milliseconds, between transmitted control packets (10 to 60000).
    #[serde(default = "default_interval")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("transmitInterval must be between 10 and 60000 ms"))]
    pub transmit_interval: u32,
    /// Missed packets before the session is declared down (2 to 255).
    #[serde(default = "default_multiplier")]
    #[x_kube(validation = kube::core::Rule::new("self >= 2 && self <= 255").message("detectMultiplier must be between 2 and 255"))]
    pub detect_multiplier: u32,
    /// Echo transmit interval in milliseconds (10 to 60000); only used with `echoMode`.
    #[serde(default = "default_echo_interval")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("echoInterval must be between 10 and 60000 ms"))]
    pub echo_interval: u32,
    /// Enable the echo function.
    #[serde(default)]
    pub echo_mode: bool,
    /// Wait for the peer to start the session instead of sending first.
    #[serde(default)]
    pub passive_mode: bool,
    /// Minimum incoming TTL for multihop sessions (1 to 254).
    #[serde(default = "default_min_ttl")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 254").message("minimumTtl must be between 1 and 254"))]
    pub minimum_ttl: u32,
}

impl Default for BFDProfileSpec {
    fn default() -> Self {
        Self {
            receive_interval: default_interval(),
            transmit_interval: default_interval(),
            detect_multiplier: default_multiplier(),
            echo_interval: default_echo_interval(),
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: default_min_ttl(),
        }
    }
}

fn default_interval() -> u32 {
    300
}
fn default_multiplier() -> u32 {
    3
}
fn default_echo_interval() -> u32 {
    50
}
fn default_min_ttl() -> u32 {
    254
}
