//! UPDATE packing, grouping and Adj-RIB-Out diffs, cross-checked by decoding
//! every generated message with netgauze.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_speaker::bgp::codec::{DecodeContext, MAX_MESSAGE_LEN, Message, decode_message};
use ferrolb_speaker::bgp::open::Family;
use ferrolb_speaker::bgp::update::{
    RouteAttrs, RouteSet, UpdateContext, UpdateError, build_announcements, build_diff_updates,
    build_withdrawals, diff,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::path_attribute::{MpReach, MpUnreach, PathAttributeValue};
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;

fn ebgp() -> UpdateContext {
    UpdateContext {
        local_as: 65001,
        internal: false,
        four_octet_as: true,
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        next_hop_v6: Some("2001:db8::1".parse().unwrap()),
        next_hop_v6_link_local: Some("fe80::1".parse().unwrap()),
    }
}

fn v4_hosts(n: u32) -> impl Iterator<Item = IpNet> {
    (0..n).map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap()))
}

fn v6_hosts(n: u128) -> impl Iterator<Item = IpNet> {
    let base = u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap());
    (0..n).map(move |i| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base + i), 128).unwrap()))
}

/// Decodes with netgauze; returns (announced, withdrawn) prefixes.
fn netgauze_prefixes(bytes: &[u8]) -> (Vec<IpNet>, Vec<IpNet>) {
    let mut ctx = BgpParsingContext::default();
    let msg = BgpMessage::parse(&mut SliceReader::new(bytes), &mut ctx).unwrap();
    let BgpMessage::Update(u) = msg else {
        panic!("not an UPDATE: {msg:?}")
    };
    let mut ann: Vec<IpNet> = u
        .nlri()
        .iter()
        .map(|a| IpNet::V4(a.network().address()))
        .collect();
    let mut wd: Vec<IpNet> = u
        .withdraw_routes()
        .iter()
        .map(|a| IpNet::V4(a.network().address()))
        .collect();
    for a in u.path_attributes() {
        match a.value() {
            PathAttributeValue::MpReach(MpReach::Ipv6Unicast { nlri, .. }) => {
                ann.extend(nlri.iter().map(|n| IpNet::V6(n.network().address())))
            }
            PathAttributeValue::MpUnreach(MpUnreach::Ipv6Unicast { nlri }) => {
                wd.extend(nlri.iter().map(|n| IpNet::V6(n.network().address())))
            }
            _ => {}
        }
    }
    (ann, wd)
}

fn same_attrs(prefixes: impl Iterator<Item = IpNet>) -> RouteSet {
    prefixes.map(|p| (p, RouteAttrs::default())).collect()
}

#[test]
fn ten_thousand_v4_hosts_fill_the_minimum_number_of_updates() {
    let routes = same_attrs(v4_hosts(10_000));
    let ups = build_announcements(&ebgp(), &routes).unwrap();
    // ORIGIN 4 + AS_PATH 9 + NEXT_HOP 7 = 20 octets of attributes; each /32 takes 5.
    let per_msg = (MAX_MESSAGE_LEN - 23 - 20) / 5;
    assert_eq!(per_msg, 810);
    assert_eq!(ups.len(), 10_000usize.div_ceil(per_msg));
    let mut seen = BTreeSet::new();
    for (i, u) in ups.iter().enumerate() {
        assert!(u.len() <= MAX_MESSAGE_LEN);
        if i + 1 < ups.len() {
            assert!(
                u.len() > MAX_MESSAGE_LEN - 5,
                "message {i} not full: {}",
                u.len()
            );
        }
        let (ann, wd) = netgauze_prefixes(u);
        assert!(wd.is_empty());
        seen.extend(ann);
    }
    assert_eq!(seen, routes.keys().copied().collect());
}

#[test]
fn ten_thousand_v6_hosts_pack_into_mp_reach() {
    let routes = same_attrs(v6_hosts(10_000));
    let ups = build_announcements(&ebgp(), &routes).unwrap();
    // 23 + ORIGIN 4 + AS_PATH 9 + MP_REACH header 4 + 5 + 32 next hop = 77; 17 per /128.
    let per_msg = (MAX_MESSAGE_LEN - 77) / 17;
    assert_eq!(ups.len(), 10_000usize.div_ceil(per_msg));
    let mut seen = BTreeSet::new();
    for u in &ups {
        assert!(u.len() <= MAX_MESSAGE_LEN);
        seen.extend(netgauze_prefixes(u).0);
    }
    assert_eq!(seen.len(), 10_000);
}

#[test]
fn withdrawals_pack_and_round_trip() {
    let prefixes: Vec<IpNet> = v4_hosts(3000).chain(v6_hosts(3000)).collect();
    let ups = build_withdrawals(&prefixes).unwrap();
    // IPv4: (4096 - 23) / 5 = 814 per message; IPv6: (4096 - 30) / 17 = 239.
    assert_eq!(ups.len(), 3000usize.div_ceil(814) + 3000usize.div_ceil(239));
    let mut seen = BTreeSet::new();
    for u in &ups {
        assert!(u.len() <= MAX_MESSAGE_LEN);
        let (ann, wd) = netgauze_prefixes(u);
        assert!(ann.is_empty());
        seen.extend(wd);
    }
    assert_eq!(seen, prefixes.into_iter().collect());
}

#[test]
fn groups_by_attributes_and_family() {
    let a = RouteAttrs::default();
    let b = RouteAttrs {
        communities: BTreeSet::from([1]),
        ..RouteAttrs::default()
    };
    let mut routes = RouteSet::new();
    for (i, p) in v4_hosts(4).enumerate() {
        routes.insert(p, if i % 2 == 0 { a.clone() } else { b.clone() });
    }
    for p in v6_hosts(2) {
        routes.insert(p, a.clone());
    }
    let ups = build_announcements(&ebgp(), &routes).unwrap();
    assert_eq!(ups.len(), 3);
    let counts: Vec<usize> = ups.iter().map(|u| netgauze_prefixes(u).0.len()).collect();
    assert_eq!(counts, vec![2, 2, 2]);
}

#[test]
fn diff_announces_changes_and_withdraws_removals() {
    let hosts: Vec<IpNet> = v4_hosts(3).collect();
    let a = RouteAttrs::default();
    let b = RouteAttrs {
        large_communities: BTreeSet::from([(1, 2, 3)]),
        ..RouteAttrs::default()
    };
    let old: RouteSet = [(hosts[0], a.clone()), (hosts[1], a.clone())].into();
    let new: RouteSet = [(hosts[1], b.clone()), (hosts[2], a.clone())].into();
    let d = diff(&old, &new);
    assert_eq!(d.announce, [(hosts[1], b), (hosts[2], a)].into());
    assert_eq!(d.withdraw, [hosts[0]].into());
    assert!(diff(&new, &new).is_empty());
    let ups = build_diff_updates(&ebgp(), &d).unwrap();
    // Withdrawals first, then one UPDATE per attribute set.
    assert_eq!(ups.len(), 3);
    assert_eq!(netgauze_prefixes(&ups[0]).1, vec![hosts[0]]);
    for u in &ups {
        assert!(matches!(
            decode_message(
                u,
                DecodeContext {
                    four_octet_as: true,
                    internal: false
                }
            ),
            Ok(Message::Update(_))
        ));
    }
}

#[test]
fn missing_next_hop_and_bad_prefixes_are_errors() {
    let mut ctx = ebgp();
    ctx.next_hop_v6 = None;
    let routes = same_attrs(v6_hosts(1));
    assert_eq!(
        build_announcements(&ctx, &routes),
        Err(UpdateError::MissingNextHop(Family::Ipv6Unicast))
    );
    let mcast: IpNet = "224.0.0.1/32".parse().unwrap();
    assert_eq!(
        build_announcements(&ebgp(), &same_attrs([mcast].into_iter())),
        Err(UpdateError::InvalidPrefix(mcast))
    );
}

#[test]
fn large_attribute_sets_use_extended_length() {
    let attrs = RouteAttrs {
        communities: (0..100).collect(),
        ..RouteAttrs::default()
    };
    let routes: RouteSet = v4_hosts(2).map(|p| (p, attrs.clone())).collect();
    let ups = build_announcements(&ebgp(), &routes).unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(netgauze_prefixes(&ups[0]).0.len(), 2);
    // COMMUNITIES: flags 0xd0 (optional, transitive, extended length), 400 octets.
    let pos = ups[0].windows(4).position(|w| w == [0xd0, 8, 0x01, 0x90]);
    assert!(pos.is_some());
}
