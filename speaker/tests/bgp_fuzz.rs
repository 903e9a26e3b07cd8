//! Malformed and truncated input never panics the BGP decoders.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ferrolb_speaker::bgp::codec::{DecodeContext, Framer, decode_message, scan_update};
use ferrolb_speaker::bgp::open::{Family, GracefulRestartConfig, LocalConfig, encode_local_open};
use ferrolb_speaker::bgp::update::{
    ExtCommunity, RouteAttrs, RouteSet, UpdateContext, build_announcements, build_withdrawals,
    end_of_rib,
};
use ipnet::IpNet;
use proptest::prelude::*;

fn fixtures() -> Vec<Vec<u8>> {
    let cfg = LocalConfig {
        local_as: 65001,
        hold_time: 90,
        keepalive: None,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        }),
    };
    let ctx = UpdateContext {
        local_as: 65001,
        internal: true,
        four_octet_as: true,
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        next_hop_v6: Some("2001:db8::1".parse().unwrap()),
        next_hop_v6_link_local: Some("fe80::1".parse().unwrap()),
    };
    let attrs = RouteAttrs {
        local_pref: Some(100),
        communities: BTreeSet::from([1, 2]),
        large_communities: BTreeSet::from([(1, 2, 3)]),
        ext_communities: BTreeSet::from([ExtCommunity::LinkBandwidth {
            asn: 65001,
            bytes_per_sec: 1000,
            transitive: true,
        }]),
    };
    let p4: IpNet = "198.51.100.0/24".parse().unwrap();
    let p6: IpNet = "2001:db8:100::/48".parse().unwrap();
    let routes: RouteSet = [(p4, attrs.clone()), (p6, attrs)].into();
    let mut out = vec![encode_local_open(&cfg).unwrap()];
    out.extend(build_announcements(&ctx, &routes).unwrap());
    out.extend(build_withdrawals([&p4, &p6]).unwrap());
    out.push(end_of_rib(Family::Ipv6Unicast).unwrap());
    out
}

fn exercise(bytes: &[u8]) {
    for ctx in [
        DecodeContext::default(),
        DecodeContext {
            four_octet_as: true,
            internal: true,
        },
    ] {
        let _ = decode_message(bytes, ctx);
        if bytes.len() > 19 {
            let _ = scan_update(&bytes[19..], ctx);
        }
        let _ = scan_update(bytes, ctx);
    }
    let mut f = Framer::new();
    f.extend(bytes);
    while let Ok(Some(frame)) = f.next_frame() {
        let _ = decode_message(&frame.bytes, DecodeContext::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
        // Also behind a valid marker, so the body parsers are reached.
        let mut framed = vec![0xff; 16];
        framed.extend(((19 + bytes.len().min(4000)) as u16).to_be_bytes());
        framed.extend(&bytes);
        exercise(&framed);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..16,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        cut in any::<u16>(),
    ) {
        let all = fixtures();
        let mut m = all[which % all.len()].clone();
        for (pos, val) in edits {
            // Leave the marker alone so the edit lands in length/type/body.
            let i = 16 + usize::from(pos) % (m.len() - 16);
            m[i] = val;
        }
        exercise(&m);
        let cut = usize::from(cut) % (m.len() + 1);
        exercise(&m[..cut]);
    }
}
