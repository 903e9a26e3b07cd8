//! Configuration of the session manager and of each BGP peer and its BFD session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::bgp::open::{Family, GracefulRestartConfig, PeerAsPolicy};

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// Settings of one BFD session (intervals in microseconds, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    /// bfd.DesiredMinTxInterval once Up (µs).
    pub transmit_interval_us: u32,
    /// bfd.RequiredMinRxInterval (µs).
    pub receive_interval_us: u32,
    /// bfd.DetectMult.
    pub detect_multiplier: u8,
    /// Wait for the peer to send first (RFC 5880 §6.1 passive role).
    pub passive: bool,
}

impl Default for BfdConfig {
    /// FRR's and MetalLB's defaults: 300 ms x 3.
    fn default() -> Self {
        Self {
            transmit_interval_us: 300_000,
            receive_interval_us: 300_000,
            detect_multiplier: 3,
            passive: false,
        }
    }
}

/// One BGP neighbour (a `BGPPeer` resolved for this node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Unique key of the peer (e.g. the BGPPeer name); used by `set_routes` and status.
    pub id: String,
    /// Our AS.
    pub local_as: u32,
    /// The AS the peer must have (`peerASN` or `dynamicASN`).
    pub peer_as: PeerAsPolicy,
    /// The peer's address.
    pub peer_address: IpAddr,
    /// The peer's TCP port for active connections.
    pub peer_port: u16,
    /// Local address to bind outgoing connections (and BFD) to.
    pub source_address: Option<IpAddr>,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// Keepalive interval in seconds (`None` = hold time / 3).
    pub keepalive: Option<u16>,
    /// Initial connect-retry time (`connectTime`); the backoff doubles up to
    /// `max(connect_time, 30 s)`.
    pub connect_time: Duration,
    /// TCP-MD5 password (RFC 2385), at most 80 octets.
    pub password: Option<String>,
    /// Multi-hop eBGP: send TTL 255 without requiring it.
    pub ebgp_multihop: bool,
    /// GTSM for single-hop eBGP (RFC 5082: send TTL 255, accept only 255); the
    /// router must enable it too (FRR: `neighbor X ttl-security hops 1`). Note
    /// that FRR then runs its BFD session as multi-hop (port 4784), which this
    /// speaker does not serve: with BFD towards FRR, turn GTSM off.
    pub gtsm: bool,
    /// Only accept connections, never connect.
    pub passive: bool,
    /// Families to offer; empty = the family of `peer_address`.
    pub families: Vec<Family>,
    /// NEXT_HOP for IPv4 routes; default: the session's local address if IPv4.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 routes; default: the session's local address if IPv6.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Graceful restart capability to advertise.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// BFD session to the peer (single hop); its Down tears the BGP session down.
    pub bfd: Option<BfdConfig>,
}

impl PeerConfig {
    /// A peer with MetalLB's defaults: port 179, hold 90 s, connect time 10 s,
    /// no password, single hop, active, the peer address's family.
    pub fn new(
        id: impl Into<String>,
        local_as: u32,
        peer_as: PeerAsPolicy,
        peer_address: IpAddr,
        router_id: Ipv4Addr,
    ) -> Self {
        Self {
            id: id.into(),
            local_as,
            peer_as,
            peer_address,
            peer_port: BGP_PORT,
            source_address: None,
            router_id,
            hold_time: 90,
            keepalive: None,
            connect_time: Duration::from_secs(10),
            password: None,
            ebgp_multihop: false,
            gtsm: true,
            passive: false,
            families: Vec::new(),
            next_hop_v4: None,
            next_hop_v6: None,
            graceful_restart: None,
            bfd: None,
        }
    }

    /// The families offered in OPEN.
    pub fn effective_families(&self) -> Vec<Family> {
        if !self.families.is_empty() {
            return self.families.clone();
        }
        match self.peer_address {
            IpAddr::V4(_) => vec![Family::Ipv4Unicast],
            IpAddr::V6(_) => vec![Family::Ipv6Unicast],
        }
    }

    /// Whether the session is (or must be) external.
    pub fn is_external(&self) -> bool {
        match self.peer_as {
            PeerAsPolicy::Fixed(a) => a != self.local_as,
            PeerAsPolicy::DynamicExternal => true,
            PeerAsPolicy::DynamicInternal => false,
        }
    }

    /// The TTL handling for this peer's TCP connections.
    pub fn ttl_policy(&self) -> TtlPolicy {
        if !self.is_external() {
            TtlPolicy::Default
        } else if self.ebgp_multihop {
            TtlPolicy::Multihop
        } else if self.gtsm {
            TtlPolicy::Gtsm
        } else {
            TtlPolicy::Default
        }
    }

    /// Checks the fields the session cannot work without; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if id.is_empty() {
            return Err("peer id: must not be empty".into());
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(format!(
                "peer {id}: holdTime {} must be 0 or >= 3",
                self.hold_time
            ));
        }
        if let (Some(k), h) = (self.keepalive, self.hold_time)
            && h > 0
            && k > h
        {
            return Err(format!("peer {id}: keepaliveTime {k} exceeds holdTime {h}"));
        }
        if self.connect_time.is_zero() {
            return Err(format!("peer {id}: connectTime must be positive"));
        }
        if let Some(p) = &self.password
            && (p.is_empty() || p.len() > super::sockopt::MD5_MAX_KEY_LEN)
        {
            return Err(format!("peer {id}: password must be 1 to 80 octets"));
        }
        if let Some(src) = self.source_address
            && src.is_ipv4() != self.peer_address.is_ipv4()
        {
            return Err(format!(
                "peer {id}: sourceAddress {src} and peerAddress {} differ in family",
                self.peer_address
            ));
        }
        if self.local_as == 0 {
            return Err(format!("peer {id}: myASN must not be 0"));
        }
        if self.router_id.is_unspecified() {
            return Err(format!("peer {id}: routerID must not be 0.0.0.0"));
        }
        if let Some(b) = self.bfd
            && (b.detect_multiplier == 0 || b.transmit_interval_us == 0)
        {
            return Err(format!(
                "peer {id}: BFD detectMultiplier and transmitInterval must be positive"
            ));
        }
        Ok(())
    }

    /// The same peer with BFD ignored: a change only there keeps the BGP session.
    pub(crate) fn bgp_part(&self) -> PeerConfig {
        PeerConfig {
            bfd: None,
            ..self.clone()
        }
    }
}

/// TTL handling of a BGP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlPolicy {
    /// Kernel default TTL (iBGP).
    Default,
    /// Send TTL 255, accept anything (`ebgpMultiHop`).
    Multihop,
    /// GTSM: send TTL 255 and drop segments with a lower TTL.
    Gtsm,
}

/// Settings of the whole session manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerConfig {
    /// Port to accept BGP connections on (179; 0 picks a free port; `None` = no listener).
    pub listen_port: Option<u16>,
    /// Accept on IPv4 (`0.0.0.0`).
    pub listen_v4: bool,
    /// Accept on IPv6 (`[::]`, v6-only).
    pub listen_v6: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            listen_port: Some(BGP_PORT),
            listen_v4: true,
            listen_v6: true,
        }
    }
}

/// Which peers a route set is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// Every peer without an own route set, now and in future (clears per-peer sets).
    All,
    /// One peer by id; overrides the `All` set for it.
    Peer(String),
}
