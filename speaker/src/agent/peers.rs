//! Pure conversion of the configured `BGPPeer`s that select this node into the session
//! layer's [`PeerConfig`]s.
//!
//! - Router ID: the peer's `routerID`, else the node's first IPv4 `InternalIP`; a peer with
//!   neither is skipped with an error naming it.
//! - Next hop: left unset, so the session layer uses the session's local address.
//! - Times: hold and keepalive in whole seconds (hold 1 or 2 s is raised to 3 s, the
//!   smallest legal value), connect time as is.
//! - BFD from the peer's profile (intervals in microseconds), TCP-MD5 password from the
//!   resolved Secret, graceful restart with [`GR_RESTART_TIME`].
//! - GTSM is off unless [`PeerOptions::gtsm`]: it needs `ttl-security` on the router, and
//!   FRR then runs BFD multi-hop, which this speaker does not serve.

use std::net::{IpAddr, Ipv4Addr};

use ferrolb_config::model::{Config, Peer, PeerAsn};
use k8s_openapi::api::core::v1::Node;

use crate::bgp::open::{GracefulRestartConfig, PeerAsPolicy};
use crate::net::{BfdConfig, PeerConfig};

/// Restart Time (seconds) advertised in the graceful-restart capability.
pub const GR_RESTART_TIME: u16 = 120;

/// Knobs of the conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerOptions {
    /// Enable GTSM (RFC 5082) on single-hop eBGP sessions.
    pub gtsm: bool,
}

/// The node's first IPv4 `InternalIP`, if any.
pub fn node_ipv4(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

fn secs_u16(d: std::time::Duration) -> u16 {
    u16::try_from(d.as_secs()).unwrap_or(u16::MAX)
}

fn micros_u32(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Converts one validated peer for a node whose first IPv4 InternalIP is `node_v4`.
pub fn peer_config(
    peer: &Peer,
    node_v4: Option<Ipv4Addr>,
    opts: PeerOptions,
) -> Result<PeerConfig, String> {
    let router_id = peer.router_id.or(node_v4).ok_or_else(|| {
        format!(
            "BGPPeer {}: no routerID and the node has no IPv4 InternalIP",
            peer.name
        )
    })?;
    let peer_as = match peer.peer_asn {
        PeerAsn::Fixed(a) => PeerAsPolicy::Fixed(a),
        PeerAsn::Internal => PeerAsPolicy::DynamicInternal,
        PeerAsn::External => PeerAsPolicy::DynamicExternal,
    };
    let mut pc = PeerConfig::new(
        peer.name.clone(),
        peer.my_asn,
        peer_as,
        peer.address,
        router_id,
    );
    pc.peer_port = peer.port;
    pc.source_address = peer.source_address;
    let hold = secs_u16(peer.hold_time);
    pc.hold_time = if hold == 1 || hold == 2 { 3 } else { hold };
    let keepalive = secs_u16(peer.keepalive_time);
    pc.keepalive = (pc.hold_time > 0).then_some(keepalive.min(pc.hold_time));
    pc.connect_time = peer.connect_time;
    pc.password = match &peer.password {
        Some(p) => Some(String::from_utf8(p.as_bytes().to_vec()).map_err(|_| {
            format!(
                "BGPPeer {}: passwordSecret: the password is not UTF-8",
                peer.name
            )
        })?),
        None => None,
    };
    pc.ebgp_multihop = peer.ebgp_multi_hop;
    pc.gtsm = opts.gtsm;
    pc.graceful_restart = peer.graceful_restart.then_some(GracefulRestartConfig {
        restart_time: GR_RESTART_TIME,
        // The session task sets the R bit for its first session itself.
        restarting: false,
        // The node's forwarding (kube-proxy, CNI) does not depend on the speaker.
        forwarding_preserved: true,
    });
    pc.bfd = peer.bfd_profile.as_ref().map(|b| BfdConfig {
        transmit_interval_us: micros_u32(b.transmit_interval),
        receive_interval_us: micros_u32(b.receive_interval),
        detect_multiplier: b.detect_multiplier,
        passive: b.passive_mode,
    });
    pc.validate()?;
    Ok(pc)
}

/// The session configs of every peer selecting `node` (by labels), in name order, and
/// an error per peer that cannot be used. Two peers with the same address keep the first.
pub fn peers_for_node(
    config: &Config,
    node: &Node,
    opts: PeerOptions,
) -> (Vec<PeerConfig>, Vec<String>) {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let node_v4 = node_ipv4(node);
    let mut out: Vec<PeerConfig> = Vec::new();
    let mut errors = Vec::new();
    for peer in config.peers_for_node(&labels) {
        match peer_config(peer, node_v4, opts) {
            Ok(pc) => {
                let same_addr = |a: IpAddr, b: IpAddr| a == b;
                if let Some(dup) = out
                    .iter()
                    .find(|o| same_addr(o.peer_address, pc.peer_address))
                {
                    errors.push(format!(
                        "BGPPeer {}: peerAddress {} is already used by {}",
                        pc.id, pc.peer_address, dup.id
                    ));
                } else {
                    out.push(pc);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ferrolb_config::model::{AnySelector, BfdProfile, Md5Password};
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    use super::*;

    fn peer(name: &str) -> Peer {
        Peer {
            name: name.to_owned(),
            my_asn: 64513,
            peer_asn: PeerAsn::Fixed(64512),
            address: "10.0.1.1".parse().unwrap(),
            port: 179,
            source_address: None,
            hold_time: Duration::from_secs(9),
            keepalive_time: Duration::from_secs(3),
            connect_time: Duration::from_secs(1),
            router_id: None,
            password: None,
            ebgp_multi_hop: false,
            bfd_profile: None,
            graceful_restart: false,
            node_selectors: AnySelector::default(),
        }
    }

    fn node(addrs: &[(&str, &str)]) -> Node {
        Node {
            metadata: Default::default(),
            spec: None,
            status: Some(NodeStatus {
                addresses: Some(
                    addrs
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: (*t).to_owned(),
                            address: (*a).to_owned(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn node_ipv4_table() {
        type Addrs<'a> = &'a [(&'a str, &'a str)];
        let table: [(Addrs, Option<&str>); 4] = [
            (&[], None),
            (&[("InternalIP", "fd00::2")], None),
            (
                &[
                    ("ExternalIP", "1.2.3.4"),
                    ("InternalIP", "fd00::2"),
                    ("InternalIP", "10.0.1.2"),
                ],
                Some("10.0.1.2"),
            ),
            (&[("InternalIP", "bogus"), ("Hostname", "n1")], None),
        ];
        for (addrs, want) in table {
            assert_eq!(
                node_ipv4(&node(addrs)),
                want.map(|w| w.parse().unwrap()),
                "{addrs:?}"
            );
        }
    }

    #[test]
    fn converts_fields() {
        let mut p = peer("tor");
        p.port = 1179;
        p.password = Some(Md5Password::new(b"secret".to_vec()).unwrap());
        p.graceful_restart = true;
        p.bfd_profile = Some(BfdProfile {
            name: "fast".to_owned(),
            receive_interval: Duration::from_millis(100),
            transmit_interval: Duration::from_millis(200),
            detect_multiplier: 3,
            echo_interval: Duration::from_millis(50),
            echo_mode: false,
            passive_mode: true,
            minimum_ttl: 254,
        });
        let pc = peer_config(
            &p,
            Some("10.0.1.2".parse().unwrap()),
            PeerOptions::default(),
        )
        .unwrap();
        assert_eq!(pc.id, "tor");
        assert_eq!(pc.peer_port, 1179);
        assert_eq!(pc.router_id, "10.0.1.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(pc.hold_time, 9);
        assert_eq!(pc.keepalive, Some(3));
        assert_eq!(pc.connect_time, Duration::from_secs(1));
        assert_eq!(pc.password.as_deref(), Some("secret"));
        assert!(!pc.gtsm);
        assert_eq!(pc.next_hop_v4, None);
        assert_eq!(pc.next_hop_v6, None);
        assert_eq!(
            pc.graceful_restart.map(|g| g.restart_time),
            Some(GR_RESTART_TIME)
        );
        assert_eq!(
            pc.bfd,
            Some(BfdConfig {
                transmit_interval_us: 200_000,
                receive_interval_us: 100_000,
                detect_multiplier: 3,
                passive: true,
            })
        );
        let gtsm = peer_config(
            &p,
            Some("10.0.1.2".parse().unwrap()),
            PeerOptions { gtsm: true },
        )
        .unwrap();
        assert!(gtsm.gtsm);
    }

    #[test]
    fn router_id_and_times_table() {
        let v4: Ipv4Addr = "10.0.1.2".parse().unwrap();
        let explicit: Ipv4Addr = "1.1.1.1".parse().unwrap();
        // (router_id, node v4, hold s, keepalive s) -> Ok((router id, hold, keepalive)) / Err
        type Case = (Option<Ipv4Addr>, Option<Ipv4Addr>, u64, u64);
        type Want = Result<(Ipv4Addr, u16, Option<u16>), ()>;
        let table: Vec<(Case, Want)> = vec![
            ((None, Some(v4), 90, 30), Ok((v4, 90, Some(30)))),
            (
                (Some(explicit), Some(v4), 90, 30),
                Ok((explicit, 90, Some(30))),
            ),
            ((Some(explicit), None, 90, 30), Ok((explicit, 90, Some(30)))),
            ((None, None, 90, 30), Err(())),
            ((None, Some(v4), 0, 0), Ok((v4, 0, None))),
            ((None, Some(v4), 2, 1), Ok((v4, 3, Some(1)))),
            ((None, Some(v4), 70_000, 30), Ok((v4, u16::MAX, Some(30)))),
        ];
        for ((rid, node_v4, hold, ka), want) in table {
            let mut p = peer("p");
            p.router_id = rid;
            p.hold_time = Duration::from_secs(hold);
            p.keepalive_time = Duration::from_secs(ka);
            let got = peer_config(&p, node_v4, PeerOptions::default())
                .map(|pc| (pc.router_id, pc.hold_time, pc.keepalive))
                .map_err(|e| assert!(e.contains("BGPPeer p"), "{e}"));
            assert_eq!(got, want, "{rid:?} {node_v4:?} {hold} {ka}");
        }
    }

    #[test]
    fn dynamic_asn_table() {
        let table = [
            (PeerAsn::Fixed(65000), PeerAsPolicy::Fixed(65000)),
            (PeerAsn::Internal, PeerAsPolicy::DynamicInternal),
            (PeerAsn::External, PeerAsPolicy::DynamicExternal),
        ];
        for (asn, want) in table {
            let mut p = peer("p");
            p.peer_asn = asn;
            let pc = peer_config(
                &p,
                Some("10.0.0.1".parse().unwrap()),
                PeerOptions::default(),
            )
            .unwrap();
            assert_eq!(pc.peer_as, want);
        }
    }

    #[test]
    fn selects_by_node_labels_and_reports_bad_peers() {
        use ferrolb_config::selector::LabelSelector;
        let sel = |v: &str| {
            LabelSelector::from_match_labels(&[("host".to_owned(), v.to_owned())].into()).unwrap()
        };
        let mut cfg = Config::default();
        let mut mine = peer("a-mine");
        mine.node_selectors = AnySelector(vec![sel("n1")]);
        let mut other = peer("b-other");
        other.address = "10.0.2.1".parse().unwrap();
        other.node_selectors = AnySelector(vec![sel("n2")]);
        let mut bad = peer("c-bad");
        bad.address = "10.0.3.1".parse().unwrap();
        bad.my_asn = 0;
        let dup = peer("d-dup");
        for p in [mine, other, bad, dup] {
            cfg.peers.insert(p.name.clone(), p);
        }
        let mut n = node(&[("InternalIP", "10.0.1.2")]);
        n.metadata.labels = Some([("host".to_owned(), "n1".to_owned())].into());
        let (peers, errors) = peers_for_node(&cfg, &n, PeerOptions::default());
        assert_eq!(
            peers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["a-mine"]
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("myASN"), "{errors:?}");
        assert!(errors[1].contains("d-dup"), "{errors:?}");
    }
}
