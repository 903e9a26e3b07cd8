//! Whole-config validation: a snapshot of the custom resources in, a [`Config`] or every
//! problem found out.
//!
//! [`build`] is a pure function. It re-checks every single-object rule the CRDs express as
//! CEL (the API server of the lab does not run CEL, and manifests may come from a file),
//! then the rules that span objects. One bad object rejects the whole configuration, as in
//! MetalLB: a component keeps running its last good [`Config`] until a new snapshot builds.
//!
//! The rules, each reported with the object's kind, namespace/name, the exact field path and
//! a reason:
//!
//! * **Every kind**: objects live in [`BuildOptions::namespace`] (an empty namespace, as in a
//!   manifest without one, means that namespace); names are unique per kind.
//! * **IPAddressPool**: every `addresses` entry parses (CIDR with no host bits, or a
//!   `start-end` range of one family in order); entries of one pool do not overlap each
//!   other; no two pools overlap (found by sorting all entries of a family by start
//!   address, O(n log n)); `serviceAllocation` has no negative priority, no empty or
//!   duplicate namespace, and valid, distinct selectors.
//! * **BGPPeer**: see *BGP peers* below.
//! * **BFDProfile**: intervals 10 to 60000 ms, multiplier 2 to 255, minimum TTL 1 to 254.
//! * **Community**: alias names non-empty without `:`, unique across all Community objects;
//!   values `A:B` (16-bit each) or `large:A:B:C` (32-bit each).
//! * **BGPAdvertisement**: aggregation lengths 1 to 32 and 1 to 128; `serviceSelectors` only
//!   with host-length aggregation; at most 63 communities, each a valid value or a known
//!   alias; every named pool and peer exists; valid selectors. *Aggregation rule*
//!   (MetalLB's): for every selected pool and every `addresses` entry of the family, the
//!   aggregation length must be at least the prefix length of the entry, where a range
//!   counts as its smallest exact CIDR cover and the shortest prefix of that cover is the
//!   one compared (so `10.0.0.0-10.0.0.255` needs `>= 24` and `10.0.0.1-10.0.0.10` needs
//!   `>= 30`); otherwise the aggregate would cover addresses outside the pool. *LOCAL_PREF
//!   rule*: two advertisements conflict when both set `localPref` to different values and
//!   they select a common pool with the same aggregation length for a family the pool has,
//!   can reach a common peer (an empty `peers` list reaches all) and can run on a common
//!   node (see node overlap below), unless both have `serviceSelectors` that are provably
//!   disjoint. An unset `localPref` is compatible with any value.
//! * **L2Advertisement**: every named pool exists; interface names are 1 to 15 characters
//!   without `/`, whitespace or `:` and not `.` or `..`; preferred-node weights 1 to 100;
//!   valid selectors.
//!
//! # BGP peers
//!
//! `myASN` and `peerASN` are non-zero; exactly one of `peerASN` and `dynamicASN`;
//! `peerAddress` and `sourceAddress` are IP addresses (not unspecified or multicast) of the
//! same family; `peerPort` 1 to 65535; `routerID` a non-zero IPv4 address; `ebgpMultiHop`
//! only on eBGP sessions. Timers are whole seconds: `holdTime` 0 or 3 s to 65535 s,
//! `keepaliveTime` at most `holdTime` and non-zero unless `holdTime` is 0, `connectTime`
//! 1 s to 65535 s. Defaults: hold 90 s / keepalive 30 s when neither is set; keepalive =
//! hold / 3 (rounded down) when only the hold time is set; hold = 3 x keepalive when only
//! the keepalive is set (MetalLB's rule); connect time 5 s. The `passwordSecret` lives in
//! the ferrolb namespace, exists, has type `kubernetes.io/basic-auth` and a `password` key
//! of 1 to 80 bytes (in `data` or `stringData`). The `bfdProfile` exists; a profile with
//! `echoMode` is rejected on an IPv6 session (BFD echo is implemented for IPv4 only; this
//! looks at the session's address family, not at the advertised pools as MetalLB does).
//!
//! Across peers: two peers with the same `peerAddress` that may run on a common node must
//! not have the same `peerPort` (a duplicate session) nor a different `myASN`.
//!
//! *Node overlap* (peers and advertisements): when the snapshot has Nodes, two selector
//! lists overlap when some Node matches both (what the cluster looks like now, as MetalLB
//! checks); with no Nodes (e.g. validating a file) they overlap unless provably disjoint
//! (for each pair of selectors, one requires a label value or existence that the other
//! excludes).

mod adapt;
mod duration;
mod objects;
mod overlap;

use std::collections::BTreeMap;

use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
    ServiceBGPStatus, ServiceL2Status,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};

pub use duration::parse_duration;

use crate::error::{ConfigError, sort_errors};
use crate::model::Config;

/// A snapshot of every object the configuration is built from.
/// (Not `PartialEq`: kube's generated root types of the custom resources do not implement it;
/// compare [`crate::manifest::to_yaml`] output instead.)
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// `IPAddressPool` objects.
    pub pools: Vec<IPAddressPool>,
    /// `L2Advertisement` objects.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// `BGPAdvertisement` objects.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// `BGPPeer` objects.
    pub peers: Vec<BGPPeer>,
    /// `BFDProfile` objects.
    pub bfd_profiles: Vec<BFDProfile>,
    /// `Community` objects.
    pub communities: Vec<Community>,
    /// Namespaces. [`build`] does not need them (a pool's namespace selectors are
    /// evaluated per Service with [`crate::pool::Pool::selects_namespace`]); they travel in
    /// the snapshot so callers evaluate selectors against the same state.
    pub namespaces: Vec<Namespace>,
    /// Nodes, for the node-overlap checks between peers and between advertisements.
    pub nodes: Vec<Node>,
    /// Secrets referenced by `BGPPeer.spec.passwordSecret`.
    pub secrets: Vec<Secret>,
    /// LoadBalancer Services (not used by [`build`]; carried so that a manifest with
    /// example Services, as the lab's, loads in one call).
    pub services: Vec<Service>,
    /// `ServiceL2Status` objects (not used by [`build`]; carried for manifests).
    pub service_l2_statuses: Vec<ServiceL2Status>,
    /// `ServiceBGPStatus` objects (not used by [`build`]; carried for manifests).
    pub service_bgp_statuses: Vec<ServiceBGPStatus>,
}

/// Options of [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// Namespace ferrolb is installed in; every ferrolb object and password Secret must
    /// live there.
    pub namespace: String,
    /// Do not report references that may be satisfied by an object applied a moment later:
    /// a missing BFD profile, password Secret or community alias (MetalLB's "transient"
    /// errors). For admission webhooks, so that the order of `kubectl apply` does not
    /// matter; the unresolved value is left out of the model, so a running component must
    /// build with this off.
    pub allow_missing_references: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            namespace: ferrolb_crds::DEFAULT_NAMESPACE.to_owned(),
            allow_missing_references: false,
        }
    }
}

/// Validates a snapshot and builds the configuration, or returns every problem found,
/// sorted (see the module documentation for the rules).
pub fn build(resources: &Resources, options: &BuildOptions) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let config = objects::build_all(resources, options, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        sort_errors(&mut errors);
        Err(errors)
    }
}

/// Labels of an object's metadata (empty when unset).
pub(crate) fn labels_of(labels: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    labels.as_ref().unwrap_or(&EMPTY)
}
