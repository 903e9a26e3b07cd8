//! Inputs and results of the allocator: Service keys and requests, allocations, typed
//! failures, counters.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ferrolb_config::ipset::AddrCount;
use ferrolb_config::service::{LbRequest, ServiceView};

/// Identity of a Service: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceKey {
    /// The key of Service `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
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

/// Everything the allocator needs to know about one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    /// The Service.
    pub key: ServiceKey,
    /// Labels of the Service's Namespace, for pools' `namespaceSelectors`.
    pub namespace_labels: BTreeMap<String, String>,
    /// The Service's labels, for pools' `serviceSelectors`.
    pub labels: BTreeMap<String, String>,
    /// The parsed load-balancer request.
    pub lb: LbRequest,
}

impl ServiceRequest {
    /// A request without Service or Namespace labels.
    pub fn new(key: ServiceKey, lb: LbRequest) -> ServiceRequest {
        ServiceRequest {
            key,
            namespace_labels: BTreeMap::new(),
            labels: BTreeMap::new(),
            lb,
        }
    }

    /// The request of a parsed Service, or `None` if its request did not parse (the
    /// caller reports those errors; the allocator never sees them).
    pub fn from_view(
        view: &ServiceView,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Option<ServiceRequest> {
        let lb = view.request.as_ref().ok()?.clone();
        Some(ServiceRequest {
            key: ServiceKey::new(view.namespace.clone(), view.name.clone()),
            namespace_labels: namespace_labels.clone(),
            labels: view.labels.clone(),
            lb,
        })
    }
}

/// Why an allocation failed; the spelling ([`FailureReason::as_str`]) is the reason of the
/// Service condition `ferrolb.io/LoadBalancerReady`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No pool serves the Service (none selects it, none has the wanted family, or the
    /// requested pool is unknown or does not serve it).
    NoPool,
    /// Pools serve the Service but none has a free address of the wanted family.
    PoolExhausted,
    /// A requested address cannot be given: outside every pool, wrong family, excluded by
    /// `avoidBuggyIPs`, in a pool that does not serve the Service or disagrees with the
    /// requested pool, or in use by a Service without a matching sharing key.
    RequestedIpUnavailable,
    /// The address carries the same sharing key but the Services cannot share it: a
    /// (protocol, port) in common or different backends.
    SharingConflict,
    /// `RequireDualStack` cannot be met: no serving pool has both families, or the
    /// requested addresses do not cover both.
    DualStackUnavailable,
}

impl FailureReason {
    /// The condition reason: `NoPool`, `PoolExhausted`, `RequestedIPUnavailable`,
    /// `SharingConflict` or `DualStackUnavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureReason::NoPool => "NoPool",
            FailureReason::PoolExhausted => "PoolExhausted",
            FailureReason::RequestedIpUnavailable => "RequestedIPUnavailable",
            FailureReason::SharingConflict => "SharingConflict",
            FailureReason::DualStackUnavailable => "DualStackUnavailable",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed allocation: the condition reason and a message naming the pool or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct AllocError {
    /// The condition reason.
    pub reason: FailureReason,
    /// Human explanation naming the Service, pool and/or address.
    pub message: String,
}

impl AllocError {
    pub(crate) fn new(reason: FailureReason, message: impl Into<String>) -> AllocError {
        AllocError {
            reason,
            message: message.into(),
        }
    }
}

/// The addresses a Service holds and the pool they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Name of the pool (written to `ferrolb.io/ip-allocated-from-pool`).
    pub pool: String,
    /// The addresses, at most one per family, primary family first (for a restored
    /// allocation: in status order).
    pub ips: Vec<IpAddr>,
}

/// What [`crate::allocator::Allocator::allocate`] did to the Service's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The Service keeps exactly the addresses it had (after a pool rename, the pool name
    /// in the [`Allocation`] may differ from the annotation the Service carries).
    Unchanged,
    /// The Service had nothing and got addresses.
    New,
    /// The Service kept its addresses and got one of the other family from the same pool
    /// (dual-stack top-up).
    ToppedUp,
    /// The Service's previous addresses no longer fit its request, pools or co-tenants
    /// and were replaced (the caller emits a `ClearAssignment` Event).
    Replaced {
        /// What the Service had before.
        previous: Allocation,
    },
}

/// A successful allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocOutcome {
    /// What the Service holds now.
    pub allocation: Allocation,
    /// How that differs from before.
    pub change: Change,
    /// Addresses that became free (a replaced allocation); when non-empty, pending
    /// Services deserve a retry.
    pub freed: Vec<IpAddr>,
}

/// Result of [`crate::allocator::Allocator::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// What the Service held.
    pub allocation: Allocation,
    /// Addresses no other Service uses any more (not those still shared); when non-empty,
    /// pending Services deserve a retry.
    pub freed: Vec<IpAddr>,
}

/// A status address that [`crate::allocator::Allocator::restore`] could not take back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedIp {
    /// The address from the Service's status.
    pub ip: IpAddr,
    /// Why it is no longer valid.
    pub error: AllocError,
}

/// Result of [`crate::allocator::Allocator::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// What the Service holds after the restore (`None` if nothing could be restored).
    pub allocation: Option<Allocation>,
    /// Status addresses that are no longer valid; non-empty means the caller must clear
    /// them (`ClearAssignment` Event) and allocate the Service again.
    pub rejected: Vec<RejectedIp>,
}

/// A Service that lost its allocation in [`crate::allocator::Allocator::set_pools`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// The Service.
    pub key: ServiceKey,
    /// What it held (now released).
    pub previous: Allocation,
    /// Its addresses that no pool may hand out any more, or that now fall in a different
    /// pool than its other address.
    pub lost: Vec<IpAddr>,
}

/// Exact usage of one family of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FamilyCounters {
    /// Distinct addresses held by at least one Service.
    pub assigned: AddrCount,
    /// Addresses that may still be handed out (allocatable minus assigned; released
    /// addresses in quarantine count as available).
    pub available: AddrCount,
}

/// Exact usage of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounters {
    /// IPv4 usage.
    pub v4: FamilyCounters,
    /// IPv6 usage.
    pub v6: FamilyCounters,
}
