//! The validated configuration every component runs on.
//!
//! [`Config`] is produced by [`crate::build::build`] from a snapshot of the custom
//! resources. Everything in it is parsed and cross-checked: pools are interval sets with
//! exact counts, durations are [`Duration`]s, the TCP-MD5 password is read from its Secret,
//! community aliases are replaced by their values, and references between objects are
//! resolved to names that exist. Maps are ordered, so two configs built from the same
//! objects compare equal and a caller can tell whether a new config differs from the
//! running one with `==`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use crate::pool::Pool;
use crate::selector::LabelSelector;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Address pools by name.
    pub pools: BTreeMap<String, Pool>,
    /// BGP peers by name.
    pub peers: BTreeMap<String, Peer>,
    /// BFD profiles by name.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// Community aliases (from all `Community` objects) by alias name.
    pub communities: BTreeMap<String, Community>,
    /// BGP advertisements by name.
    pub bgp_advertisements: BTreeMap<String, BgpAdvertisement>,
    /// L2 advertisements by name.
    pub l2_advertisements: BTreeMap<String, L2Advertisement>,
}

impl Config {
    /// The BGP advertisements that select pool `pool`, in name order.
    pub fn bgp_advertisements_for_pool<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = &'a BgpAdvertisement> + 'a {
        self.bgp_advertisements
            .values()
            .filter(move |a| a.pools.contains(pool))
    }

    /// The L2 advertisements that select pool `pool`, in name order.
    pub fn l2_advertisements_for_pool<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = &'a L2Advertisement> + 'a {
        self.l2_advertisements
            .values()
            .filter(move |a| a.pools.contains(pool))
    }

    /// The peers a node with `node_labels` opens sessions to, in name order.
    pub fn peers_for_node<'a>(
        &'a self,
        node_labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Peer> + 'a {
        self.peers
            .values()
            .filter(move |p| p.node_selectors.matches(node_labels))
    }
}

/// A list of label selectors where an empty list selects everything and otherwise an object
/// is selected when any selector matches (the semantics of every `nodeSelectors`,
/// `serviceSelectors` and `ipAddressPoolSelectors` field).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnySelector(pub Vec<LabelSelector>);

impl AnySelector {
    /// Whether the list selects every object (it is empty).
    pub fn selects_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.matches(labels))
    }
}

/// How the peer's AS number is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsn {
    /// The configured `peerASN`.
    Fixed(u32),
    /// `dynamicASN: internal`: whatever the peer sends, which must equal `myASN`.
    Internal,
    /// `dynamicASN: external`: whatever the peer sends, which must differ from `myASN`.
    External,
}

impl PeerAsn {
    /// Whether a session with local AS `my_asn` is internal BGP.
    pub fn is_ibgp(self, my_asn: u32) -> bool {
        match self {
            PeerAsn::Fixed(asn) => asn == my_asn,
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }

    /// Whether an AS number received in the peer's OPEN is acceptable.
    pub fn accepts(self, my_asn: u32, received: u32) -> bool {
        match self {
            PeerAsn::Fixed(asn) => asn == received,
            PeerAsn::Internal => received == my_asn,
            PeerAsn::External => received != my_asn,
        }
    }
}

/// A TCP-MD5 (RFC 2385) key read from the peer's password Secret: 1 to 80 bytes.
///
/// `Debug` prints a placeholder, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Password(Vec<u8>);

impl Md5Password {
    /// Longest key the Linux `TCP_MD5SIG` socket option accepts.
    pub const MAX_LEN: usize = 80;

    /// Wraps a key, or explains why it cannot be used.
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.is_empty() {
            return Err("the password is empty".to_owned());
        }
        if key.len() > Self::MAX_LEN {
            return Err(format!(
                "the password is {} bytes long; TCP-MD5 keys are at most {} bytes",
                key.len(),
                Self::MAX_LEN
            ));
        }
        Ok(Self(key))
    }

    /// The key bytes, for `setsockopt(TCP_MD5SIG)`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Md5Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Password(<redacted>)")
    }
}

/// A validated BGP neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Name of the `BGPPeer` object.
    pub name: String,
    /// Local AS number.
    pub my_asn: u32,
    /// The peer's AS number, fixed or dynamic.
    pub peer_asn: PeerAsn,
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's TCP port.
    pub port: u16,
    /// Local address to connect from, of the same family as `address`.
    pub source_address: Option<IpAddr>,
    /// Proposed hold time: zero (no keepalives) or 3 s to 65535 s in whole seconds.
    /// Default 90 s; three times `keepalive_time` when only that is set.
    pub hold_time: Duration,
    /// Keepalive interval in whole seconds, at most `hold_time`. Default `hold_time / 3`
    /// (rounded down to whole seconds).
    pub keepalive_time: Duration,
    /// Connect-retry interval in whole seconds. Default [`DEFAULT_CONNECT_TIME`].
    pub connect_time: Duration,
    /// BGP identifier; `None` uses the node's IPv4 address.
    pub router_id: Option<Ipv4Addr>,
    /// TCP-MD5 key from the `passwordSecret`.
    pub password: Option<Md5Password>,
    /// The peer is several hops away.
    pub ebgp_multi_hop: bool,
    /// The BFD profile of the session, resolved.
    pub bfd_profile: Option<BfdProfile>,
    /// Negotiate graceful restart.
    pub graceful_restart: bool,
    /// Nodes whose speakers open this session.
    pub node_selectors: AnySelector,
}

/// Hold time used when neither `holdTime` nor `keepaliveTime` is set.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// Keepalive interval used when neither `holdTime` nor `keepaliveTime` is set.
pub const DEFAULT_KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// Connect-retry interval used when `connectTime` is not set.
pub const DEFAULT_CONNECT_TIME: Duration = Duration::from_secs(5);

/// Validated BFD timers (RFC 5880).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    /// Name of the `BFDProfile` object.
    pub name: String,
    /// Required minimum receive interval (10 ms to 60 s).
    pub receive_interval: Duration,
    /// Desired minimum transmit interval (10 ms to 60 s).
    pub transmit_interval: Duration,
    /// Detection multiplier (2 to 255).
    pub detect_multiplier: u8,
    /// Echo transmit interval (10 ms to 60 s), used with `echo_mode`.
    pub echo_interval: Duration,
    /// Use the echo function (IPv4 sessions only).
    pub echo_mode: bool,
    /// Wait for the peer to send first.
    pub passive_mode: bool,
    /// Minimum incoming TTL for multihop sessions (1 to 254).
    pub minimum_ttl: u8,
}

/// A BGP community value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// RFC 1997 community `A:B`, two 16-bit halves.
    Standard(u16, u16),
    /// RFC 8092 large community `large:A:B:C`, three 32-bit parts.
    Large(u32, u32, u32),
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

impl FromStr for Community {
    type Err = String;

    /// Parses `A:B` (each 0-65535) or `large:A:B:C` (each 0-4294967295).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn part<T: FromStr>(s: &str, whole: &str, max: &str) -> Result<T, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{whole}`: `{s}` is not a decimal number"));
            }
            s.parse()
                .map_err(|_| format!("`{whole}`: {s} is out of range (0 to {max})"))
        }
        if let Some(rest) = s.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let [a, b, c] = parts.as_slice() else {
                return Err(format!(
                    "`{s}` is not a large community; expected large:A:B:C"
                ));
            };
            const MAX: &str = "4294967295";
            return Ok(Community::Large(
                part(a, s, MAX)?,
                part(b, s, MAX)?,
                part(c, s, MAX)?,
            ));
        }
        let parts: Vec<&str> = s.split(':').collect();
        let [a, b] = parts.as_slice() else {
            return Err(format!(
                "`{s}` is not a community; expected A:B (16-bit each) or large:A:B:C (32-bit each)"
            ));
        };
        const MAX: &str = "65535";
        Ok(Community::Standard(part(a, s, MAX)?, part(b, s, MAX)?))
    }
}

/// A validated BGP advertisement with every reference resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpAdvertisement {
    /// Name of the `BGPAdvertisement` object.
    pub name: String,
    /// Prefix length advertised for IPv4 addresses (1 to 32).
    pub aggregation_length: u8,
    /// Prefix length advertised for IPv6 addresses (1 to 128).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF for iBGP sessions.
    pub local_pref: Option<u32>,
    /// Communities attached, aliases replaced by values, sorted and without duplicates.
    pub communities: BTreeSet<Community>,
    /// Names of the pools advertised (named pools plus pools matched by the selectors, or
    /// every pool when neither is given).
    pub pools: BTreeSet<String>,
    /// Names of the peers advertised to (every peer when the object lists none).
    pub peers: BTreeSet<String>,
    /// Nodes that advertise.
    pub node_selectors: AnySelector,
    /// Services advertised.
    pub service_selectors: AnySelector,
    /// Attach the link-bandwidth extended community for `externalTrafficPolicy: Local`.
    pub weighted_ecmp: bool,
}

impl BgpAdvertisement {
    /// The aggregation length for `family`'s addresses.
    pub fn aggregation_length_for(&self, addr: IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => self.aggregation_length,
            IpAddr::V6(_) => self.aggregation_length_v6,
        }
    }
}

/// A weighted node preference of an L2 advertisement.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferredNode {
    /// Score added to matching nodes (1 to 100).
    pub weight: u8,
    /// Nodes that get the weight.
    pub selector: LabelSelector,
}

/// A validated L2 advertisement with every reference resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Advertisement {
    /// Name of the `L2Advertisement` object.
    pub name: String,
    /// Names of the pools announced.
    pub pools: BTreeSet<String>,
    /// Nodes that may announce.
    pub node_selectors: AnySelector,
    /// Interfaces to announce on; empty means every interface that is up.
    pub interfaces: BTreeSet<String>,
    /// Services announced.
    pub service_selectors: AnySelector,
    /// Soft preferences among eligible nodes.
    pub preferred_nodes: Vec<PreferredNode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_parse_table() {
        let ok: &[(&str, Community)] = &[
            ("0:0", Community::Standard(0, 0)),
            ("65535:65535", Community::Standard(65535, 65535)),
            ("64500:100", Community::Standard(64500, 100)),
            ("large:0:0:0", Community::Large(0, 0, 0)),
            (
                "large:4294967295:1:4294967295",
                Community::Large(u32::MAX, 1, u32::MAX),
            ),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<Community>().as_ref(), Ok(want), "{s}");
            assert_eq!(want.to_string(), *s);
        }
        let bad: &[(&str, &str)] = &[
            ("65536:1", "out of range (0 to 65535)"),
            ("1:65536", "out of range"),
            ("1", "expected A:B"),
            ("1:2:3", "expected A:B"),
            ("a:b", "not a decimal number"),
            ("-1:2", "not a decimal number"),
            ("large:1:2", "expected large:A:B:C"),
            ("large:1:2:4294967296", "out of range (0 to 4294967295)"),
            ("large:1:2:3:4", "expected large:A:B:C"),
            ("", "expected A:B"),
            (":", "not a decimal number"),
        ];
        for (s, want) in bad {
            let err = s.parse::<Community>().expect_err(s);
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Md5Password::new(b"secret".to_vec()).expect("valid");
        assert!(!format!("{p:?}").contains("secret"));
        assert!(Md5Password::new(Vec::new()).is_err());
        assert!(Md5Password::new(vec![b'x'; 81]).is_err());
        assert!(Md5Password::new(vec![b'x'; 80]).is_ok());
    }

    #[test]
    fn peer_asn_semantics() {
        assert!(PeerAsn::Fixed(65000).is_ibgp(65000));
        assert!(!PeerAsn::Fixed(65001).is_ibgp(65000));
        assert!(PeerAsn::Internal.accepts(65000, 65000));
        assert!(!PeerAsn::External.accepts(65000, 65000));
        assert!(PeerAsn::External.accepts(65000, 65001));
    }
}
