//! Peer configuration checks, TTL policy and the TCP-MD5 socket option
//! (unit level: no namespaces, no root needed).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ferrolb_speaker::bgp::open::{Family, PeerAsPolicy};
use ferrolb_speaker::net::sockopt::{MD5_MAX_KEY_LEN, set_tcp_md5};
use ferrolb_speaker::net::{BfdConfig, PeerConfig, TtlPolicy};

fn base() -> PeerConfig {
    PeerConfig::new(
        "p",
        64601,
        PeerAsPolicy::Fixed(64500),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        Ipv4Addr::new(10, 0, 0, 11),
    )
}

#[test]
fn validate_rejects_bad_fields_naming_them() {
    type Edit = fn(&mut PeerConfig);
    let cases: &[(&str, Edit, Option<&str>)] = &[
        ("defaults", |_| {}, None),
        ("empty id", |p| p.id.clear(), Some("peer id")),
        ("hold 2", |p| p.hold_time = 2, Some("holdTime")),
        ("hold 0", |p| p.hold_time = 0, None),
        (
            "keepalive > hold",
            |p| p.keepalive = Some(100),
            Some("keepaliveTime"),
        ),
        (
            "connect 0",
            |p| p.connect_time = Duration::ZERO,
            Some("connectTime"),
        ),
        (
            "empty password",
            |p| p.password = Some(String::new()),
            Some("password"),
        ),
        (
            "long password",
            |p| p.password = Some("x".repeat(81)),
            Some("password"),
        ),
        (
            "80-octet password",
            |p| p.password = Some("x".repeat(80)),
            None,
        ),
        (
            "source family",
            |p| p.source_address = Some("fd00::1".parse().expect("addr")),
            Some("sourceAddress"),
        ),
        ("AS 0", |p| p.local_as = 0, Some("myASN")),
        (
            "router id 0",
            |p| p.router_id = Ipv4Addr::UNSPECIFIED,
            Some("routerID"),
        ),
        (
            "BFD multiplier 0",
            |p| {
                p.bfd = Some(BfdConfig {
                    detect_multiplier: 0,
                    ..BfdConfig::default()
                })
            },
            Some("BFD"),
        ),
    ];
    for (name, edit, want) in cases {
        let mut p = base();
        edit(&mut p);
        match (p.validate(), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.contains(w), "{name}: {e} should mention {w}"),
            (got, want) => panic!("{name}: got {got:?}, want error mentioning {want:?}"),
        }
    }
}

#[test]
fn ttl_policy_follows_session_kind() {
    let cases = [
        (PeerAsPolicy::Fixed(64500), false, true, TtlPolicy::Gtsm),
        (PeerAsPolicy::Fixed(64500), true, true, TtlPolicy::Multihop),
        (PeerAsPolicy::Fixed(64500), false, false, TtlPolicy::Default),
        (PeerAsPolicy::DynamicExternal, false, true, TtlPolicy::Gtsm),
        (PeerAsPolicy::Fixed(64601), false, true, TtlPolicy::Default),
        (
            PeerAsPolicy::DynamicInternal,
            true,
            true,
            TtlPolicy::Default,
        ),
    ];
    for (peer_as, multihop, gtsm, want) in cases {
        let mut p = base();
        p.peer_as = peer_as;
        p.ebgp_multihop = multihop;
        p.gtsm = gtsm;
        assert_eq!(
            p.ttl_policy(),
            want,
            "{peer_as:?} multihop={multihop} gtsm={gtsm}"
        );
    }
}

#[test]
fn families_default_to_the_peer_address_family() {
    let mut p = base();
    assert_eq!(p.effective_families(), [Family::Ipv4Unicast]);
    p.peer_address = "fd00::1".parse().expect("addr");
    assert_eq!(p.effective_families(), [Family::Ipv6Unicast]);
    p.families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    assert_eq!(
        p.effective_families(),
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
}

#[test]
fn md5_key_is_set_removed_and_bounded() {
    let s4 =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let s6 =
        socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).expect("socket");
    let v4: IpAddr = "192.0.2.1".parse().expect("addr");
    let v6: IpAddr = "2001:db8::1".parse().expect("addr");
    set_tcp_md5(&s4, v4, Some(b"secret")).expect("set v4 key");
    set_tcp_md5(&s4, v4, None).expect("remove v4 key");
    set_tcp_md5(&s6, v6, Some(&[b'k'; MD5_MAX_KEY_LEN])).expect("set v6 key");
    let e = set_tcp_md5(&s4, v4, Some(&[b'k'; MD5_MAX_KEY_LEN + 1])).expect_err("too long");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // The kernel checks the address family against the socket's.
    assert!(set_tcp_md5(&s4, v6, Some(b"secret")).is_err());
}
