//! UPDATE generation from a desired route set (RFC 4271 §4.3/§5, RFC 4760,
//! RFC 6793, RFC 1997, RFC 8092, RFC 4360, draft-ietf-idr-link-bandwidth, RFC 4724).
//!
//! Routes with identical attributes are grouped and packed into as few
//! UPDATEs as fit in 4096 octets. MP_REACH_NLRI / MP_UNREACH_NLRI are always
//! written first (RFC 7606 §5.1) with the extended-length flag; the other
//! attributes follow in ascending type order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::community::{
    Community, ExtendedCommunity, LargeCommunity, NonTransitiveTwoOctetExtendedCommunity,
    TransitiveTwoOctetExtendedCommunity,
};
use netgauze_bgp_pkt::nlri::{Ipv4Unicast, Ipv4UnicastAddress, Ipv6Unicast, Ipv6UnicastAddress};
use netgauze_bgp_pkt::path_attribute::{
    As2PathSegment, As4Path, As4PathSegment, AsPath, AsPathSegmentType, Communities,
    ExtendedCommunities, LargeCommunities, LocalPreference, MpReach, MpUnreach, NextHop, Origin,
    PathAttribute, PathAttributeValue,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_parse_utils::WritablePdu;

use super::codec::{EncodeError, HEADER_LEN, MAX_MESSAGE_LEN, encode_netgauze};
use super::open::{AS_TRANS, Family};

/// Extended community subtype of link bandwidth.
const LINK_BANDWIDTH_SUBTYPE: u8 = 0x04;

/// An extended community we can attach (RFC 4360).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtCommunity {
    /// Link bandwidth (RFC 10005, formerly draft-ietf-idr-link-bandwidth):
    /// subtype 0x04 of the two-octet AS-specific type, 0x00 when transitive
    /// (FRR's default) or 0x40 when non-transitive; 2-octet AS (AS_TRANS when
    /// ours is larger) and the bandwidth as an IEEE 754 single-precision float
    /// in bytes per second. FRR uses either form for weighted ECMP.
    LinkBandwidth {
        /// Global administrator AS.
        asn: u16,
        /// Bandwidth in bytes per second.
        bytes_per_sec: u64,
        /// Type 0x00 (transitive) instead of 0x40 (non-transitive).
        transitive: bool,
    },
}

impl ExtCommunity {
    /// Link bandwidth from our AS (AS_TRANS when it needs 4 octets, as the
    /// community has room for 2) and a bandwidth in bytes per second.
    pub fn link_bandwidth(local_as: u32, bytes_per_sec: u64, transitive: bool) -> Self {
        Self::LinkBandwidth {
            asn: u16::try_from(local_as).unwrap_or(AS_TRANS),
            bytes_per_sec,
            transitive,
        }
    }

    fn to_netgauze(self) -> ExtendedCommunity {
        match self {
            Self::LinkBandwidth {
                asn,
                bytes_per_sec,
                transitive,
            } => {
                let local_admin = (bytes_per_sec as f32).to_bits();
                if transitive {
                    ExtendedCommunity::TransitiveTwoOctet(
                        TransitiveTwoOctetExtendedCommunity::Unassigned {
                            sub_type: LINK_BANDWIDTH_SUBTYPE,
                            global_admin: asn,
                            local_admin,
                        },
                    )
                } else {
                    ExtendedCommunity::NonTransitiveTwoOctet(
                        NonTransitiveTwoOctetExtendedCommunity::LinkBandwidth {
                            global_admin: asn,
                            local_admin,
                        },
                    )
                }
            }
        }
    }
}

/// Per-route attributes; routes with equal attributes share UPDATEs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteAttrs {
    /// LOCAL_PREF, sent on iBGP sessions only.
    pub local_pref: Option<u32>,
    /// COMMUNITIES (RFC 1997) as 32-bit values.
    pub communities: BTreeSet<u32>,
    /// LARGE_COMMUNITIES (RFC 8092) as (global admin, local 1, local 2).
    pub large_communities: BTreeSet<(u32, u32, u32)>,
    /// EXTENDED_COMMUNITIES (RFC 4360).
    pub ext_communities: BTreeSet<ExtCommunity>,
}

/// The routes we want the peer to have: prefix -> attributes.
pub type RouteSet = BTreeMap<IpNet, RouteAttrs>;

/// Session facts that shape every UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateContext {
    /// Our AS number.
    pub local_as: u32,
    /// iBGP session (empty AS_PATH, LOCAL_PREF sent) rather than eBGP.
    pub internal: bool,
    /// 4-octet AS numbers negotiated.
    pub four_octet_as: bool,
    /// NEXT_HOP for IPv4 routes.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Global IPv6 next hop for IPv6 routes.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Optional link-local IPv6 next hop sent beside the global one.
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
}

/// Why UPDATEs could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A route of this family exists but no next hop was configured for it.
    #[error("no next hop configured for {0:?} routes")]
    MissingNextHop(Family),
    /// The prefix cannot be carried as unicast NLRI (multicast or broadcast).
    #[error("prefix {0} is not a valid unicast prefix")]
    InvalidPrefix(IpNet),
    /// The attributes alone do not fit in one message.
    #[error("path attributes take {0} octets, leaving no room for NLRI")]
    AttributesTooLarge(usize),
    /// netgauze rejected a path attribute's flags.
    #[error("invalid path attribute {0}")]
    Attribute(String),
    /// netgauze refused to encode the message.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Octets a prefix takes in NLRI encoding.
fn nlri_len(prefix_len: u8) -> usize {
    1 + usize::from(prefix_len.div_ceil(8))
}

fn attr(
    optional: bool,
    transitive: bool,
    value: PathAttributeValue,
) -> Result<PathAttribute, UpdateError> {
    let build = |ext: bool, value: PathAttributeValue| {
        PathAttribute::from(optional, transitive, false, ext, value)
            .map_err(|(v, e)| UpdateError::Attribute(format!("{v:?}: {e:?}")))
    };
    let a = build(false, value)?;
    // Switch to a 2-octet length when the value exceeds 255 octets.
    if a.len() > 3 + 255 {
        build(true, a.value().clone())
    } else {
        Ok(a)
    }
}

fn mp_attr(value: PathAttributeValue) -> Result<PathAttribute, UpdateError> {
    PathAttribute::from(true, false, false, true, value)
        .map_err(|(v, e)| UpdateError::Attribute(format!("{v:?}: {e:?}")))
}

/// The path attributes for a group, excluding MP_REACH_NLRI, in type order.
fn common_attrs(
    ctx: &UpdateContext,
    attrs: &RouteAttrs,
    family: Family,
) -> Result<Vec<PathAttribute>, UpdateError> {
    let mut out = vec![attr(false, true, PathAttributeValue::Origin(Origin::IGP))?];
    let mut as4_path = None;
    let as_path = if ctx.internal {
        if ctx.four_octet_as {
            AsPath::As4PathSegments(Box::new([]))
        } else {
            AsPath::As2PathSegments(Box::new([]))
        }
    } else if ctx.four_octet_as {
        AsPath::As4PathSegments(Box::new([As4PathSegment::new(
            AsPathSegmentType::AsSequence,
            vec![ctx.local_as],
        )]))
    } else {
        let two = u16::try_from(ctx.local_as).unwrap_or(AS_TRANS);
        if u32::from(two) != ctx.local_as {
            // RFC 6793 §4.2.2: the real path goes in AS4_PATH.
            as4_path = Some(As4Path::new(vec![As4PathSegment::new(
                AsPathSegmentType::AsSequence,
                vec![ctx.local_as],
            )]));
        }
        AsPath::As2PathSegments(Box::new([As2PathSegment::new(
            AsPathSegmentType::AsSequence,
            vec![two],
        )]))
    };
    out.push(attr(false, true, PathAttributeValue::AsPath(as_path))?);
    if family == Family::Ipv4Unicast
        && let Some(nh) = ctx.next_hop_v4
    {
        out.push(attr(
            false,
            true,
            PathAttributeValue::NextHop(NextHop::new(nh)),
        )?);
    }
    if ctx.internal
        && let Some(lp) = attrs.local_pref
    {
        out.push(attr(
            false,
            true,
            PathAttributeValue::LocalPreference(LocalPreference::new(lp)),
        )?);
    }
    if !attrs.communities.is_empty() {
        let c: Vec<Community> = attrs
            .communities
            .iter()
            .map(|v| Community::new(*v))
            .collect();
        out.push(attr(
            true,
            true,
            PathAttributeValue::Communities(Communities::new(c)),
        )?);
    }
    if !attrs.ext_communities.is_empty() {
        let c: Vec<ExtendedCommunity> = attrs
            .ext_communities
            .iter()
            .map(|e| e.to_netgauze())
            .collect();
        out.push(attr(
            true,
            true,
            PathAttributeValue::ExtendedCommunities(ExtendedCommunities::new(c)),
        )?);
    }
    if let Some(p) = as4_path {
        out.push(attr(true, true, PathAttributeValue::As4Path(p))?);
    }
    if !attrs.large_communities.is_empty() {
        let c: Vec<LargeCommunity> = attrs
            .large_communities
            .iter()
            .map(|(a, b, c)| LargeCommunity::new(*a, *b, *c))
            .collect();
        out.push(attr(
            true,
            true,
            PathAttributeValue::LargeCommunities(LargeCommunities::new(c)),
        )?);
    }
    Ok(out)
}

fn v4_nlri(p: Ipv4Net) -> Result<Ipv4UnicastAddress, UpdateError> {
    Ipv4Unicast::from_net(p.trunc())
        .map(Ipv4UnicastAddress::new_no_path_id)
        .map_err(|_| UpdateError::InvalidPrefix(IpNet::V4(p)))
}

fn v6_nlri(p: Ipv6Net) -> Result<Ipv6UnicastAddress, UpdateError> {
    Ipv6Unicast::from_net(p.trunc())
        .map(|n| Ipv6UnicastAddress::new(None, n))
        .map_err(|_| UpdateError::InvalidPrefix(IpNet::V6(p)))
}

/// Splits `lens` (NLRI octets per prefix) into consecutive chunks of at most `budget` octets.
fn chunks(lens: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, l) in lens.iter().enumerate() {
        if used + l > budget && i > start {
            out.push(start..i);
            start = i;
            used = 0;
        }
        used += l;
    }
    if start < lens.len() {
        out.push(start..lens.len());
    }
    out
}

fn encode_update(msg: BgpUpdateMessage) -> Result<Vec<u8>, UpdateError> {
    Ok(encode_netgauze(&BgpMessage::Update(msg))?)
}

const EMPTY_UPDATE_LEN: usize = HEADER_LEN + 4;
/// MP attribute header with extended length (flags, type, 2-octet length).
const MP_ATTR_HDR: usize = 4;

/// UPDATEs announcing every route in `routes`, grouped by attributes and packed.
pub fn build_announcements(
    ctx: &UpdateContext,
    routes: &RouteSet,
) -> Result<Vec<Vec<u8>>, UpdateError> {
    let mut groups: BTreeMap<(Family, &RouteAttrs), Vec<IpNet>> = BTreeMap::new();
    for (p, a) in routes {
        let fam = match p {
            IpNet::V4(_) => Family::Ipv4Unicast,
            IpNet::V6(_) => Family::Ipv6Unicast,
        };
        groups.entry((fam, a)).or_default().push(*p);
    }
    let mut out = Vec::new();
    for ((fam, attrs), prefixes) in groups {
        let common = common_attrs(ctx, attrs, fam)?;
        let common_len: usize = common.iter().map(WritablePdu::len).sum();
        let lens: Vec<usize> = prefixes.iter().map(|p| nlri_len(p.prefix_len())).collect();
        match fam {
            Family::Ipv4Unicast => {
                if ctx.next_hop_v4.is_none() {
                    return Err(UpdateError::MissingNextHop(fam));
                }
                let base = EMPTY_UPDATE_LEN + common_len;
                let budget = MAX_MESSAGE_LEN
                    .checked_sub(base)
                    .filter(|b| *b >= nlri_len(32))
                    .ok_or(UpdateError::AttributesTooLarge(common_len))?;
                for r in chunks(&lens, budget) {
                    let nlri = prefixes[r]
                        .iter()
                        .map(|p| match p {
                            IpNet::V4(p) => v4_nlri(*p),
                            IpNet::V6(p) => Err(UpdateError::InvalidPrefix(IpNet::V6(*p))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(encode_update(BgpUpdateMessage::new(
                        vec![],
                        common.clone(),
                        nlri,
                    ))?);
                }
            }
            Family::Ipv6Unicast => {
                let global = ctx.next_hop_v6.ok_or(UpdateError::MissingNextHop(fam))?;
                let ll = ctx.next_hop_v6_link_local;
                let nh_len = if ll.is_some() { 32 } else { 16 };
                let base = EMPTY_UPDATE_LEN + common_len + MP_ATTR_HDR + 5 + nh_len;
                let budget = MAX_MESSAGE_LEN
                    .checked_sub(base)
                    .filter(|b| *b >= nlri_len(128))
                    .ok_or(UpdateError::AttributesTooLarge(common_len))?;
                for r in chunks(&lens, budget) {
                    let nlri = prefixes[r]
                        .iter()
                        .map(|p| match p {
                            IpNet::V6(p) => v6_nlri(*p),
                            IpNet::V4(p) => Err(UpdateError::InvalidPrefix(IpNet::V4(*p))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut attrs = Vec::with_capacity(common.len() + 1);
                    attrs.push(mp_attr(PathAttributeValue::MpReach(
                        MpReach::Ipv6Unicast {
                            next_hop_global: global,
                            next_hop_local: ll,
                            nlri: nlri.into(),
                        },
                    ))?);
                    attrs.extend(common.iter().cloned());
                    out.push(encode_update(BgpUpdateMessage::new(vec![], attrs, vec![]))?);
                }
            }
        }
    }
    Ok(out)
}

/// UPDATEs withdrawing `prefixes` (IPv4 in Withdrawn Routes, IPv6 in MP_UNREACH_NLRI).
pub fn build_withdrawals<'a>(
    prefixes: impl IntoIterator<Item = &'a IpNet>,
) -> Result<Vec<Vec<u8>>, UpdateError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in prefixes {
        match p {
            IpNet::V4(p) => v4.push(*p),
            IpNet::V6(p) => v6.push(*p),
        }
    }
    let mut out = Vec::new();
    let lens: Vec<usize> = v4.iter().map(|p| nlri_len(p.prefix_len())).collect();
    for r in chunks(&lens, MAX_MESSAGE_LEN - EMPTY_UPDATE_LEN) {
        let w = v4[r]
            .iter()
            .map(|p| v4_nlri(*p))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(encode_update(BgpUpdateMessage::new(w, vec![], vec![]))?);
    }
    let lens: Vec<usize> = v6.iter().map(|p| nlri_len(p.prefix_len())).collect();
    for r in chunks(&lens, MAX_MESSAGE_LEN - EMPTY_UPDATE_LEN - MP_ATTR_HDR - 3) {
        let w = v6[r]
            .iter()
            .map(|p| v6_nlri(*p))
            .collect::<Result<Vec<_>, _>>()?;
        let a = mp_attr(PathAttributeValue::MpUnreach(MpUnreach::Ipv6Unicast {
            nlri: w.into(),
        }))?;
        out.push(encode_update(BgpUpdateMessage::new(
            vec![],
            vec![a],
            vec![],
        ))?);
    }
    Ok(out)
}

/// The End-of-RIB marker for `family` (RFC 4724 §2).
pub fn end_of_rib(family: Family) -> Result<Vec<u8>, UpdateError> {
    let msg = match family {
        Family::Ipv4Unicast => BgpUpdateMessage::new(vec![], vec![], vec![]),
        Family::Ipv6Unicast => BgpUpdateMessage::new(
            vec![],
            vec![mp_attr(PathAttributeValue::MpUnreach(
                MpUnreach::Ipv6Unicast { nlri: Box::new([]) },
            ))?],
            vec![],
        ),
    };
    encode_update(msg)
}

/// What an Adj-RIB-Out must send to move the peer from one route set to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RibDiff {
    /// New routes and routes whose attributes changed.
    pub announce: RouteSet,
    /// Routes no longer desired.
    pub withdraw: BTreeSet<IpNet>,
}

impl RibDiff {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

/// Compares the advertised set with the desired one.
pub fn diff(advertised: &RouteSet, desired: &RouteSet) -> RibDiff {
    let announce = desired
        .iter()
        .filter(|(p, a)| advertised.get(*p) != Some(*a))
        .map(|(p, a)| (*p, a.clone()))
        .collect();
    let withdraw = advertised
        .keys()
        .filter(|p| !desired.contains_key(*p))
        .copied()
        .collect();
    RibDiff { announce, withdraw }
}

/// The UPDATEs for a diff: withdrawals first, then announcements.
pub fn build_diff_updates(ctx: &UpdateContext, d: &RibDiff) -> Result<Vec<Vec<u8>>, UpdateError> {
    let mut out = build_withdrawals(&d.withdraw)?;
    out.extend(build_announcements(ctx, &d.announce)?);
    Ok(out)
}
