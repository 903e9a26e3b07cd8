//! BGP wire fixtures: every message type and attribute we emit, compared with
//! bytes written out by hand from the RFC layouts, plus decoding and error mapping.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ferrolb_speaker::bgp::codec::{
    DecodeContext, Framer, Message, Notification, RouteRefresh, UpdateCounters, UpdateHandling,
    decode_message, encode_keepalive, encode_route_refresh, err, scan_update,
};
use ferrolb_speaker::bgp::open::{
    Family, GracefulRestartConfig, LocalConfig, PeerAsPolicy, build_open, encode_local_open,
    keepalive_for, negotiate,
};
use ferrolb_speaker::bgp::update::{
    ExtCommunity, RouteAttrs, RouteSet, UpdateContext, build_announcements, build_withdrawals,
    end_of_rib,
};

/// Bytes from a hex string; whitespace and `|` separators are ignored.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).map(|d| d as u8).unwrap_or(0))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd hex fixture");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

const MARKER: &str = "ffffffff ffffffff ffffffff ffffffff";

fn msg(len_type: &str, body: &str) -> Vec<u8> {
    hex(&format!("{MARKER} {len_type} {body}"))
}

fn local(local_as: u32) -> LocalConfig {
    LocalConfig {
        local_as,
        hold_time: 90,
        keepalive: None,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            forwarding_preserved: true,
        }),
    }
}

// OPEN: version 4, My AS, hold 90 (0x005a), id 10.0.0.1, one Capabilities
// optional parameter (type 2, length 0x20) holding:
//   MP-BGP IPv4/unicast 01 04 0001 00 01, MP-BGP IPv6/unicast 01 04 0002 00 01,
//   route refresh 02 00, 4-octet AS 41 04 <asn>, graceful restart 40 0a
//   <R=0, time 120 = 0x078> then per AFI: AFI, SAFI, flags 0x80 (forwarding state).
const CAPS_TAIL: &str = "0104 0001 0001  0104 0002 0001  0200";
const GR: &str = "400a 0078 0001 0180 0002 0180";

#[test]
fn open_with_all_capabilities() {
    let bytes = encode_local_open(&local(65001)).unwrap();
    let want = msg(
        "003f 01",
        &format!("04 fde9 005a 0a000001 22 02 20 {CAPS_TAIL} 4104 0000fde9 {GR}"),
    );
    assert_eq!(bytes, want);
    match decode_message(&bytes, DecodeContext::default()).unwrap() {
        Message::Open(o) => assert_eq!(o, build_open(&local(65001))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn open_with_four_octet_as_uses_as_trans() {
    let bytes = encode_local_open(&local(4_200_000_000)).unwrap();
    let want = msg(
        "003f 01",
        &format!("04 5ba0 005a 0a000001 22 02 20 {CAPS_TAIL} 4104 fa56ea00 {GR}"),
    );
    assert_eq!(bytes, want);
}

#[test]
fn keepalive_notification_route_refresh() {
    assert_eq!(encode_keepalive(), msg("0013 04", ""));
    let n = Notification::cease(err::CEASE_ADMIN_SHUTDOWN);
    assert_eq!(n.encode(), msg("0015 03", "06 02"));
    let n = Notification::header(err::HDR_BAD_LENGTH, [0x12, 0x34]);
    assert_eq!(n.encode(), msg("0017 03", "01 02 1234"));
    assert_eq!(
        decode_message(&n.encode(), DecodeContext::default()).unwrap(),
        Message::Notification(n)
    );
    // ROUTE-REFRESH: AFI 2, reserved 0, SAFI 1.
    let rr = encode_route_refresh(2, 1).unwrap();
    assert_eq!(rr, msg("0017 05", "0002 00 01"));
    assert_eq!(
        decode_message(&rr, DecodeContext::default()).unwrap(),
        Message::RouteRefresh(RouteRefresh {
            afi: 2,
            subtype: 0,
            safi: 1
        })
    );
    assert_eq!(
        decode_message(&msg("0013 04", ""), DecodeContext::default()).unwrap(),
        Message::Keepalive
    );
    // Unknown error codes and AFIs are accepted, not rejected.
    let odd = msg("0017 03", "63 07 aabb");
    assert_eq!(
        decode_message(&odd, DecodeContext::default()).unwrap(),
        Message::Notification(Notification::new(99, 7, vec![0xaa, 0xbb]))
    );
}

fn ibgp_ctx() -> UpdateContext {
    UpdateContext {
        local_as: 65001,
        internal: true,
        four_octet_as: true,
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        next_hop_v6: Some("2001:db8::1".parse().unwrap()),
        next_hop_v6_link_local: Some("fe80::1".parse().unwrap()),
    }
}

fn rich_attrs() -> RouteAttrs {
    RouteAttrs {
        local_pref: Some(200),
        communities: BTreeSet::from([(65001 << 16) | 100]),
        large_communities: BTreeSet::from([(65001, 1, 2)]),
        ext_communities: BTreeSet::from([ExtCommunity::LinkBandwidth {
            asn: 65001,
            bytes_per_sec: 125_000_000,
            transitive: false,
        }]),
    }
}

// Attributes, ascending type: ORIGIN 40 01 01 00; AS_PATH 40 02 (empty on iBGP);
// NEXT_HOP 40 03 04 <ip>; LOCAL_PREF 40 05 04 <200>; COMMUNITIES c0 08 04;
// EXTENDED_COMMUNITIES c0 10 08 with link bandwidth 40 04 <AS> <f32 125e6 = 4cee6b28>;
// LARGE_COMMUNITIES c0 20 0c.
const IBGP_ATTRS: &str = "40010100 400200 400304c0000201 40050400 0000c8 c00804fde90064 \
                          c010084004fde94cee6b28 c0200c0000fde9 00000001 00000002";

#[test]
fn update_v4_with_every_attribute() {
    let routes: RouteSet = [("198.51.100.10/32".parse().unwrap(), rich_attrs())].into();
    let ups = build_announcements(&ibgp_ctx(), &routes).unwrap();
    // attrs = 4+3+7+7+7+11+15 = 54 (0x36); total = 19 + 2 + 2 + 54 + 5 = 82 (0x52).
    let want = msg("0052 02", &format!("0000 0036 {IBGP_ATTRS} 20c633640a"));
    assert_eq!(ups, vec![want.clone()]);
    let s = scan_update(
        &want[19..],
        DecodeContext {
            four_octet_as: true,
            internal: true,
        },
    )
    .unwrap();
    assert_eq!((s.announced_v4, s.handling), (1, UpdateHandling::Normal));
}

#[test]
fn link_bandwidth_transitive_and_not() {
    let mut ctx = ibgp_ctx();
    ctx.internal = false;
    for (transitive, ty) in [(true, "00"), (false, "40")] {
        let attrs = RouteAttrs {
            ext_communities: BTreeSet::from([ExtCommunity::LinkBandwidth {
                asn: 65001,
                bytes_per_sec: 1_250_000,
                transitive,
            }]),
            ..RouteAttrs::default()
        };
        let routes: RouteSet = [("198.51.100.0/24".parse().unwrap(), attrs)].into();
        // 1.25e6 bytes/s (10 Mbit/s) as IEEE 754 single: 0x4998_9680.
        let want = msg(
            "003a 02",
            &format!(
                "0000 001f 40010100 40020602010000fde9 400304c0000201 \
                 c01008 {ty}04 fde9 49989680 18c63364"
            ),
        );
        assert_eq!(build_announcements(&ctx, &routes).unwrap(), vec![want]);
    }
    assert_eq!(
        ExtCommunity::link_bandwidth(4_200_000_000, 5, true),
        ExtCommunity::LinkBandwidth {
            asn: 23456,
            bytes_per_sec: 5,
            transitive: true
        }
    );
}

#[test]
fn update_v4_ebgp_as_paths() {
    let mut ctx = ibgp_ctx();
    ctx.internal = false;
    let routes: RouteSet = [("198.51.100.0/24".parse().unwrap(), RouteAttrs::default())].into();
    // eBGP, 4-octet: AS_PATH 40 02 06 <AS_SEQUENCE 02, count 01, 0000fde9>; no LOCAL_PREF.
    let want = msg(
        "002f 02",
        "0000 0014 40010100 40020602010000fde9 400304c0000201 18c63364",
    );
    assert_eq!(build_announcements(&ctx, &routes).unwrap(), vec![want]);
    // eBGP, 2-octet session, AS 4200000000: AS_PATH holds AS_TRANS, AS4_PATH (c0 11) the real AS.
    ctx.four_octet_as = false;
    ctx.local_as = 4_200_000_000;
    let want = msg(
        "0036 02",
        "0000 001b 40010100 4002040201 5ba0 400304c0000201 c011060201fa56ea00 18c63364",
    );
    assert_eq!(build_announcements(&ctx, &routes).unwrap(), vec![want]);
}

#[test]
fn update_v6_mp_reach_with_link_local() {
    let mut ctx = ibgp_ctx();
    ctx.internal = false;
    let routes: RouteSet = [(
        "2001:db8:100::10/128".parse().unwrap(),
        RouteAttrs::default(),
    )]
    .into();
    // MP_REACH_NLRI first: 90 0e <len 0x0036>: AFI 0002 SAFI 01, NH len 0x20,
    // global 2001:db8::1, link-local fe80::1, reserved 00, NLRI 80 + 16 octets.
    let mp = "900e0036 0002 01 20 20010db8000000000000000000000001 \
              fe800000000000000000000000000001 00 80 20010db8010000000000000000000010";
    // total = 19 + 4 + (4 + 54) + 4 + 9 = 94 (0x5e); attr length = 58 + 13 = 71 (0x47)
    let want = msg(
        "005e 02",
        &format!("0000 0047 {mp} 40010100 40020602010000fde9"),
    );
    assert_eq!(
        build_announcements(&ctx, &routes).unwrap(),
        vec![want.clone()]
    );
    let s = scan_update(&want[19..], DecodeContext::default()).unwrap();
    assert_eq!(s.announced_mp, 1);
    // Without a link-local address the next hop is 16 octets.
    ctx.next_hop_v6_link_local = None;
    let ups = build_announcements(&ctx, &routes).unwrap();
    assert_eq!(ups[0].len(), 94 - 16);
    assert_eq!(ups[0][30], 16);
}

#[test]
fn withdrawals_and_end_of_rib() {
    let v4: ipnet::IpNet = "198.51.100.10/32".parse().unwrap();
    let v6: ipnet::IpNet = "2001:db8:100::10/128".parse().unwrap();
    let ups = build_withdrawals([&v4, &v6]).unwrap();
    assert_eq!(
        ups,
        vec![
            msg("001c 02", "0005 20c633640a 0000"),
            msg(
                "002f 02",
                "0000 0018 900f0014 0002 01 80 20010db8010000000000000000000010"
            ),
        ]
    );
    assert_eq!(
        end_of_rib(Family::Ipv4Unicast).unwrap(),
        msg("0017 02", "0000 0000")
    );
    assert_eq!(
        end_of_rib(Family::Ipv6Unicast).unwrap(),
        msg("001e 02", "0000 0007 900f0003 0002 01")
    );
    for (fam, afi) in [(Family::Ipv4Unicast, 1), (Family::Ipv6Unicast, 2)] {
        let b = end_of_rib(fam).unwrap();
        match decode_message(&b, DecodeContext::default()).unwrap() {
            Message::Update(s) => assert_eq!(s.end_of_rib, Some((afi, 1))),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn framer_reassembles_partial_reads() {
    let mut stream = Vec::new();
    stream.extend(encode_keepalive());
    stream.extend(encode_local_open(&local(65001)).unwrap());
    stream.extend(end_of_rib(Family::Ipv6Unicast).unwrap());
    for chunk in [1, 2, 7, 19, 20, 64] {
        let mut f = Framer::new();
        let mut types = Vec::new();
        for part in stream.chunks(chunk) {
            f.extend(part);
            while let Some(frame) = f.next_frame().unwrap() {
                types.push(frame.msg_type);
            }
        }
        assert_eq!(types, vec![4, 1, 2], "chunk size {chunk}");
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn header_errors_map_to_notifications() {
    let cases: Vec<(Vec<u8>, Notification)> = vec![
        (
            hex("fffffffffffffffffffffffffffffffe 0013 04"),
            Notification::header(1, Vec::new()),
        ),
        (msg("0012 04", ""), Notification::header(2, [0x00, 0x12])),
        (msg("1001 02", ""), Notification::header(2, [0x10, 0x01])),
        (msg("0014 04", "00"), Notification::header(2, [0x00, 0x14])),
        (msg("0013 02", ""), Notification::header(2, [0x00, 0x13])),
        (msg("0013 09", ""), Notification::header(3, [9])),
    ];
    for (bytes, want) in cases {
        let mut f = Framer::new();
        f.extend(&bytes);
        assert_eq!(f.next_frame(), Err(want), "{bytes:02x?}");
    }
}

fn peer_open(my_as: &str, hold: &str, id: &str, caps: &str) -> Vec<u8> {
    let caps = hex(caps);
    let params = if caps.is_empty() {
        "00".to_owned()
    } else {
        format!(
            "{:02x} 02 {:02x} {}",
            caps.len() + 2,
            caps.len(),
            hex_str(&caps)
        )
    };
    let body = hex(&format!("04 {my_as} {hold} {id} {params}"));
    let mut out = hex(MARKER);
    out.extend(((19 + body.len()) as u16).to_be_bytes());
    out.push(1);
    out.extend(body);
    out
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn open_result(bytes: &[u8], policy: PeerAsPolicy) -> Result<(u32, u16, u16, bool), Notification> {
    let open = match decode_message(bytes, DecodeContext::default())? {
        Message::Open(o) => o,
        other => panic!("{other:?}"),
    };
    let n = negotiate(&local(65001), policy, &open)?;
    Ok((n.peer_as, n.hold_time, n.keepalive, n.four_octet_as))
}

#[test]
fn open_negotiation_and_errors() {
    let caps = "0104 0001 0001 4104 0000fde8";
    let good = peer_open("fde8", "00b4", "0a000002", caps);
    assert_eq!(
        open_result(&good, PeerAsPolicy::Fixed(65000)),
        Ok((65000, 90, 30, true))
    );
    assert_eq!(
        open_result(&good, PeerAsPolicy::DynamicExternal),
        Ok((65000, 90, 30, true))
    );
    let cases: Vec<(Vec<u8>, PeerAsPolicy, u8, u8)> = vec![
        // wrong peer AS
        (good.clone(), PeerAsPolicy::Fixed(65002), 2, 2),
        (good.clone(), PeerAsPolicy::DynamicInternal, 2, 2),
        // hold time 1 and 2 are unacceptable
        (
            peer_open("fde8", "0001", "0a000002", caps),
            PeerAsPolicy::Fixed(65000),
            2,
            6,
        ),
        (
            peer_open("fde8", "0002", "0a000002", caps),
            PeerAsPolicy::Fixed(65000),
            2,
            6,
        ),
        // BGP identifier 0
        (
            peer_open("fde8", "005a", "00000000", caps),
            PeerAsPolicy::Fixed(65000),
            2,
            3,
        ),
        // iBGP peer with our identifier
        (
            peer_open("fde9", "005a", "0a000001", "0104 0001 0001 4104 0000fde9"),
            PeerAsPolicy::DynamicInternal,
            2,
            3,
        ),
        // only IPv4 multicast offered: nothing in common
        (
            peer_open("fde8", "005a", "0a000002", "0104 0001 0002 4104 0000fde8"),
            PeerAsPolicy::Fixed(65000),
            2,
            7,
        ),
    ];
    for (bytes, policy, code, sub) in cases {
        let e = open_result(&bytes, policy).unwrap_err();
        assert_eq!((e.code, e.subcode), (code, sub), "{bytes:02x?}");
    }
    // Unsupported version: data is the highest version we support (2 octets).
    let mut v3 = good.clone();
    v3[19] = 3;
    assert_eq!(
        open_result(&v3, PeerAsPolicy::Fixed(65000)),
        Err(Notification::open(1, [0, 4]))
    );
    // No MP capability means IPv4 unicast only; no 4-octet AS capability is fine.
    let plain = peer_open("fde8", "0000", "0a000002", "");
    assert_eq!(
        open_result(&plain, PeerAsPolicy::Fixed(65000)),
        Ok((65000, 0, 0, false))
    );
    // Peer with a 4-octet AS must put AS_TRANS in My AS.
    let as4 = peer_open("5ba0", "005a", "0a000002", "4104 fa56ea00");
    assert_eq!(
        open_result(&as4, PeerAsPolicy::Fixed(4_200_000_000)),
        Ok((4_200_000_000, 90, 30, true))
    );
}

#[test]
fn negotiated_families_and_graceful_restart() {
    let caps = "0104 0002 0001 4104 0000fde8 4006 8078 0002 0180";
    let bytes = peer_open("fde8", "005a", "0a000002", caps);
    let open = match decode_message(&bytes, DecodeContext::default()).unwrap() {
        Message::Open(o) => o,
        other => panic!("{other:?}"),
    };
    let n = negotiate(&local(65001), PeerAsPolicy::Fixed(65000), &open).unwrap();
    assert_eq!(n.families, vec![Family::Ipv6Unicast]);
    let gr = n.peer_graceful_restart.unwrap();
    assert_eq!(
        (gr.restart_time, gr.restarting, gr.families),
        (120, true, vec![(Family::Ipv6Unicast, true)])
    );
    assert!(!n.internal);
}

#[test]
fn keepalive_arithmetic() {
    assert_eq!(keepalive_for(90, None), 30);
    assert_eq!(keepalive_for(90, Some(10)), 10);
    assert_eq!(keepalive_for(90, Some(60)), 30);
    assert_eq!(keepalive_for(3, None), 1);
    assert_eq!(keepalive_for(0, Some(10)), 0);
}

/// UPDATE body with the given withdrawn routes, attributes and NLRI (hex).
fn update_body(withdrawn: &str, attrs: &str, nlri: &str) -> Vec<u8> {
    let w = hex(withdrawn);
    let a = hex(attrs);
    let mut b = Vec::new();
    b.extend((w.len() as u16).to_be_bytes());
    b.extend(w);
    b.extend((a.len() as u16).to_be_bytes());
    b.extend(a);
    b.extend(hex(nlri));
    b
}

const BASE: &str = "40010100 400200 400304c0000201";

#[test]
fn rfc7606_error_handling() {
    let ctx = DecodeContext {
        four_octet_as: true,
        internal: false,
    };
    let handling = |attrs: &str, nlri: &str| {
        scan_update(&update_body("", attrs, nlri), ctx).map(|s| s.handling)
    };
    let code = |attrs: &str, nlri: &str| {
        scan_update(&update_body("", attrs, nlri), ctx).map_err(|n| (n.code, n.subcode))
    };
    assert_eq!(handling(BASE, "18c63364"), Ok(UpdateHandling::Normal));
    // ORIGIN value 3 / wrong length: treat-as-withdraw.
    assert_eq!(
        handling("40010103 400200 400304c0000201", "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // NEXT_HOP of 3 octets.
    assert_eq!(
        handling("40010100 400200 400303c00002", "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // AS_PATH segment count running past the attribute.
    assert_eq!(
        handling("40010100 4002060202 0000fde9 400304c0000201", "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // COMMUNITIES length not a multiple of 4.
    assert_eq!(
        handling(&format!("{BASE} c00803fde900"), "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // LARGE_COMMUNITIES length not a multiple of 12.
    assert_eq!(
        handling(&format!("{BASE} c02004 00000001"), "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // Well-known attribute flagged optional: flags error, treat-as-withdraw.
    assert_eq!(
        handling("c0010100 400200 400304c0000201", "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // Missing NEXT_HOP with IPv4 NLRI.
    assert_eq!(
        handling("40010100 400200", "18c63364"),
        Ok(UpdateHandling::TreatAsWithdraw)
    );
    // Bad AGGREGATOR length and LOCAL_PREF from an eBGP peer: attribute discard.
    assert_eq!(
        handling(&format!("{BASE} c00705 0000fde9 00"), "18c63364"),
        Ok(UpdateHandling::AttributeDiscard)
    );
    assert_eq!(
        handling(&format!("{BASE} 400503 000000"), "18c63364"),
        Ok(UpdateHandling::AttributeDiscard)
    );
    // A repeated non-MP attribute: keep the first, discard the rest.
    assert_eq!(
        handling(&format!("{BASE} 40010100"), "18c63364"),
        Ok(UpdateHandling::AttributeDiscard)
    );
    // Session resets:
    // attribute length overruns the attribute list
    assert_eq!(code("40010500", "18c63364"), Err((3, 1)));
    // unknown well-known attribute
    assert_eq!(code(&format!("{BASE} 406300"), "18c63364"), Err((3, 2)));
    // NLRI prefix length 33
    assert_eq!(code(BASE, "21c6336400ff"), Err((3, 10)));
    // MP_REACH twice
    let mp = "900e0015 0002 01 10 20010db8000000000000000000000001 00";
    assert_eq!(code(&format!("{mp} {mp}"), ""), Err((3, 1)));
    // MP_REACH with a 5-octet IPv6 next hop
    assert_eq!(code("900e0009 0002 01 05 0000000000 00", ""), Err((3, 9)));
    // Unknown optional attributes are ignored.
    assert_eq!(
        handling(&format!("{BASE} c0630100"), "18c63364"),
        Ok(UpdateHandling::Normal)
    );
    // Truncated bodies.
    for bad in [&[][..], &[0, 5, 1][..], &[0, 0, 0, 9, 1][..]] {
        assert!(scan_update(bad, ctx).is_err());
    }
}

#[test]
fn unknown_capabilities_are_ignored_and_counters_add_up() {
    // Capability code 0x99 (unassigned) with two octets of data.
    let bytes = peer_open("fde8", "005a", "0a000002", "0104 0001 0001 9902 abcd");
    assert_eq!(
        open_result(&bytes, PeerAsPolicy::Fixed(65000)),
        Ok((65000, 90, 30, false))
    );
    let ctx = DecodeContext::default();
    let mut c = UpdateCounters::default();
    let bodies = [
        update_body("", "40010100 400200 400304c0000201", "18c63364 20c633640a"),
        update_body("18c63364", "", ""),
        update_body("", "40010103 400200 400304c0000201", "18c63364"),
        update_body("", "", ""),
    ];
    for b in &bodies {
        c.record(&scan_update(b, ctx).unwrap());
    }
    assert_eq!(
        c,
        UpdateCounters {
            updates: 4,
            announced: 3,
            withdrawn: 1,
            treat_as_withdraw: 1,
            attribute_discard: 0,
            end_of_rib: 1,
        }
    );
}
