//! Our OPEN message and capability negotiation from the peer's OPEN
//! (RFC 4271 §4.2/§6.2, RFC 5492, RFC 4760, RFC 6793, RFC 2918, RFC 4724, RFC 6286).

use std::net::Ipv4Addr;

use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartAddressFamily, GracefulRestartCapability,
    MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_iana::address_family::AddressType;

use super::codec::{EncodeError, Notification, encode_open, err};

/// The 2-octet placeholder AS used when the real AS does not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Address families this speaker can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
}

impl Family {
    /// (AFI, SAFI) numbers.
    pub const fn afi_safi(self) -> (u16, u8) {
        match self {
            Self::Ipv4Unicast => (1, 1),
            Self::Ipv6Unicast => (2, 1),
        }
    }

    fn address_type(self) -> AddressType {
        match self {
            Self::Ipv4Unicast => AddressType::Ipv4Unicast,
            Self::Ipv6Unicast => AddressType::Ipv6Unicast,
        }
    }

    fn from_address_type(at: AddressType) -> Option<Self> {
        match at {
            AddressType::Ipv4Unicast => Some(Self::Ipv4Unicast),
            AddressType::Ipv6Unicast => Some(Self::Ipv6Unicast),
            _ => None,
        }
    }
}

/// Our graceful-restart settings (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart Time in seconds (12 bits, capped at 4095).
    pub restart_time: u16,
    /// The Restart State (R) bit: we are restarting now.
    pub restarting: bool,
    /// Forwarding state preserved, set per AFI in the capability.
    pub forwarding_preserved: bool,
}

/// Everything needed to build our OPEN and judge the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Our AS number.
    pub local_as: u32,
    /// Proposed hold time in seconds (0 or >= 3).
    pub hold_time: u16,
    /// Configured keepalive interval in seconds; `None` = hold time / 3.
    pub keepalive: Option<u16>,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Families we offer (MP-BGP capability per family).
    pub families: Vec<Family>,
    /// Graceful restart capability, if enabled.
    pub graceful_restart: Option<GracefulRestartConfig>,
}

/// Which AS the peer must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAsPolicy {
    /// Exactly this AS.
    Fixed(u32),
    /// Any AS equal to ours (iBGP).
    DynamicInternal,
    /// Any AS different from ours (eBGP).
    DynamicExternal,
}

/// The peer's graceful-restart capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerGracefulRestart {
    /// Peer's restart time in seconds.
    pub restart_time: u16,
    /// Peer's R bit: it is restarting.
    pub restarting: bool,
    /// Families the peer preserves state for, with the forwarding-state bit.
    pub families: Vec<(Family, bool)>,
}

/// The result of a successful OPEN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Peer's AS (4-octet if it sent the capability).
    pub peer_as: u32,
    /// Peer's BGP identifier.
    pub peer_router_id: Ipv4Addr,
    /// Whether the session is iBGP.
    pub internal: bool,
    /// Negotiated hold time in seconds (0 = no hold timer, no keepalives).
    pub hold_time: u16,
    /// Keepalive interval in seconds (0 when the hold time is 0).
    pub keepalive: u16,
    /// Both sides support 4-octet AS numbers.
    pub four_octet_as: bool,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// Peer supports ROUTE-REFRESH.
    pub peer_route_refresh: bool,
    /// Peer's graceful-restart capability.
    pub peer_graceful_restart: Option<PeerGracefulRestart>,
}

/// Our capabilities, in the order we send them.
pub fn capabilities(cfg: &LocalConfig) -> Vec<BgpCapability> {
    let mut caps: Vec<BgpCapability> = cfg
        .families
        .iter()
        .map(|f| {
            BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
                f.address_type(),
            ))
        })
        .collect();
    caps.push(BgpCapability::RouteRefresh);
    caps.push(BgpCapability::FourOctetAs(FourOctetAsCapability::new(
        cfg.local_as,
    )));
    if let Some(gr) = cfg.graceful_restart {
        let afs: Vec<_> = cfg
            .families
            .iter()
            .map(|f| GracefulRestartAddressFamily::new(gr.forwarding_preserved, f.address_type()))
            .collect();
        caps.push(BgpCapability::GracefulRestartCapability(
            GracefulRestartCapability::new(gr.restarting, false, gr.restart_time.min(4095), afs),
        ));
    }
    caps
}

/// Our OPEN message (AS_TRANS in My AS when our AS exceeds 65535).
pub fn build_open(cfg: &LocalConfig) -> BgpOpenMessage {
    let my_as = u16::try_from(cfg.local_as).unwrap_or(AS_TRANS);
    BgpOpenMessage::new(
        my_as,
        cfg.hold_time,
        cfg.router_id,
        vec![BgpOpenMessageParameter::Capabilities(
            capabilities(cfg).into(),
        )],
    )
}

/// Our OPEN message on the wire.
pub fn encode_local_open(cfg: &LocalConfig) -> Result<Vec<u8>, EncodeError> {
    encode_open(&build_open(cfg))
}

/// Validates the peer's OPEN against our config and negotiates session
/// parameters. Errors are the NOTIFICATION to send (RFC 4271 §6.2).
pub fn negotiate(
    cfg: &LocalConfig,
    expected: PeerAsPolicy,
    peer: &BgpOpenMessage,
) -> Result<Negotiated, Notification> {
    if peer.version() != 4 {
        return Err(Notification::open(
            err::OPEN_UNSUPPORTED_VERSION,
            4u16.to_be_bytes(),
        ));
    }
    let hold = peer.hold_time();
    if hold == 1 || hold == 2 {
        return Err(Notification::open(
            err::OPEN_UNACCEPTABLE_HOLD_TIME,
            hold.to_be_bytes(),
        ));
    }
    let caps = peer.capabilities();
    let mut peer_as4 = None;
    let mut peer_families = Vec::new();
    let mut saw_mp = false;
    let mut peer_route_refresh = false;
    let mut peer_gr = None;
    for cap in caps {
        match cap {
            BgpCapability::FourOctetAs(c) => peer_as4 = Some(c.asn4()),
            BgpCapability::MultiProtocolExtensions(mp) => {
                saw_mp = true;
                if let Some(f) = Family::from_address_type(mp.address_type()) {
                    peer_families.push(f);
                }
            }
            BgpCapability::RouteRefresh | BgpCapability::EnhancedRouteRefresh => {
                peer_route_refresh = true
            }
            BgpCapability::GracefulRestartCapability(gr) => {
                peer_gr = Some(PeerGracefulRestart {
                    restart_time: gr.time(),
                    restarting: gr.restart(),
                    families: gr
                        .address_families()
                        .iter()
                        .filter_map(|af| {
                            Family::from_address_type(af.address_type())
                                .map(|f| (f, af.forwarding_state()))
                        })
                        .collect(),
                })
            }
            _ => {}
        }
    }
    // RFC 6793 §4.2.1: the 2-octet field must be AS_TRANS when the real AS needs 4 octets.
    let peer_as = match peer_as4 {
        Some(as4) => {
            if as4 > u32::from(u16::MAX) && peer.my_as() != AS_TRANS {
                return Err(Notification::open(err::OPEN_BAD_PEER_AS, Vec::new()));
            }
            as4
        }
        None => u32::from(peer.my_as()),
    };
    let as_ok = match expected {
        PeerAsPolicy::Fixed(asn) => asn == peer_as,
        PeerAsPolicy::DynamicInternal => peer_as == cfg.local_as,
        PeerAsPolicy::DynamicExternal => peer_as != cfg.local_as,
    };
    if !as_ok || peer_as == 0 || peer_as == u32::from(AS_TRANS) {
        return Err(Notification::open(
            err::OPEN_BAD_PEER_AS,
            peer.my_as().to_be_bytes(),
        ));
    }
    let internal = peer_as == cfg.local_as;
    let id = peer.bgp_id();
    // RFC 6286 §2.2: identifiers must differ within an AS; 0 is never valid.
    if id.is_unspecified() || (internal && id == cfg.router_id) {
        return Err(Notification::open(
            err::OPEN_BAD_BGP_ID,
            id.octets().to_vec(),
        ));
    }
    // RFC 4760: a peer that sends no MP capability supports IPv4 unicast only.
    if !saw_mp {
        peer_families.push(Family::Ipv4Unicast);
    }
    let families: Vec<Family> = cfg
        .families
        .iter()
        .copied()
        .filter(|f| peer_families.contains(f))
        .collect();
    if families.is_empty() {
        let data: Vec<u8> = cfg
            .families
            .iter()
            .flat_map(|f| {
                let (afi, safi) = f.afi_safi();
                let [a, b] = afi.to_be_bytes();
                [1, 4, a, b, 0, safi]
            })
            .collect();
        return Err(Notification::open(err::OPEN_UNSUPPORTED_CAPABILITY, data));
    }
    let hold_time = cfg.hold_time.min(hold);
    let keepalive = keepalive_for(hold_time, cfg.keepalive);
    Ok(Negotiated {
        peer_as,
        peer_router_id: id,
        internal,
        hold_time,
        keepalive,
        four_octet_as: peer_as4.is_some(),
        families,
        peer_route_refresh,
        peer_graceful_restart: peer_gr,
    })
}

/// Keepalive interval for a negotiated hold time: hold/3, or the configured
/// value capped by hold/3; 0 when the hold time is 0. Never 0 for a non-zero hold time.
pub fn keepalive_for(hold_time: u16, configured: Option<u16>) -> u16 {
    if hold_time == 0 {
        return 0;
    }
    let third = (hold_time / 3).max(1);
    match configured {
        Some(k) if k > 0 => k.min(third),
        _ => third,
    }
}
