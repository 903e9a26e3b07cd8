//! The session manager against raw TCP peers written in the test (in a
//! private network namespace, loopback only): malformed UPDATE handling,
//! UPDATE floods, End-of-RIB, reconfiguration without resets, GTSM.
//! Needs root (fails with a clear message otherwise).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Netns, NodeRt, require_root, unique, wait_for};
use ferrolb_speaker::bgp::codec::{
    DecodeContext, Framer, Message, Notification, decode_message, encode_keepalive, err, msg_type,
};
use ferrolb_speaker::bgp::fsm::State;
use ferrolb_speaker::bgp::open::{Family, LocalConfig, PeerAsPolicy, encode_local_open};
use ferrolb_speaker::bgp::update::{RouteAttrs, RouteSet, UpdateContext, build_announcements};
use ferrolb_speaker::net::{ManagerConfig, PeerConfig, RouteTarget, SessionManager};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const LOCAL_AS: u32 = 65000;

/// A BGP peer speaking raw bytes.
struct RawPeer {
    s: TcpStream,
    framer: Framer,
}

impl RawPeer {
    async fn connect(src: Ipv4Addr, to: SocketAddr, ttl: u32) -> Self {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(IpAddr::V4(src), 0))
            .expect("bind");
        socket2::SockRef::from(&sock).set_ttl_v4(ttl).expect("ttl");
        let s = sock.connect(to).await.expect("connect");
        Self {
            s,
            framer: Framer::new(),
        }
    }

    async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.expect("write");
    }

    /// The next message (type, bytes), `None` on EOF or after `wait`.
    async fn recv(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(f) = self.framer.next_frame().expect("valid framing") {
                return Some((f.msg_type, f.bytes));
            }
            match tokio::time::timeout(wait, self.s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.framer.extend(&buf[..n]),
            }
        }
    }

    async fn expect(&mut self, ty: u8) -> Vec<u8> {
        loop {
            let (t, b) = self
                .recv(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("no message of type {ty}"));
            if t == ty {
                return b;
            }
            assert_eq!(
                t,
                msg_type::KEEPALIVE,
                "unexpected message type {t} waiting for {ty}"
            );
        }
    }

    /// OPEN exchange as AS `asn` with identifier `id`.
    async fn establish(&mut self, asn: u32, id: Ipv4Addr) {
        self.send(&open_msg(asn, id)).await;
        self.expect(msg_type::OPEN).await;
        self.send(&encode_keepalive()).await;
        self.expect(msg_type::KEEPALIVE).await;
    }

    /// Reads UPDATEs until an IPv4 End-of-RIB; returns the prefixes announced.
    async fn read_until_eor(&mut self) -> usize {
        let mut announced = 0;
        loop {
            let b = self.expect(msg_type::UPDATE).await;
            let ctx = DecodeContext {
                four_octet_as: true,
                internal: true,
            };
            match decode_message(&b, ctx).expect("valid UPDATE") {
                Message::Update(u) if u.end_of_rib.is_some() => return announced,
                Message::Update(u) => announced += u.announced_v4,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

struct Fixture {
    mgr: SessionManager,
    addr: SocketAddr,
    rt: NodeRt,
    _ns: Netns,
}

impl Fixture {
    fn new(peers: Vec<PeerConfig>) -> Self {
        require_root();
        let ns = Netns::new(&unique("net"));
        let rt = NodeRt::new(&ns);
        let mgr = rt
            .run(async {
                SessionManager::start(ManagerConfig {
                    listen_port: Some(0),
                    listen_v4: true,
                    listen_v6: false,
                })
            })
            .expect("manager");
        let port = mgr.listen_addrs()[0].port();
        let m = mgr.clone();
        rt.run(async move { m.set_peers(peers).await })
            .expect("peers");
        Self {
            mgr,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            rt,
            _ns: ns,
        }
    }

    fn wait_state(&self, id: &str, st: State) {
        wait_for(Duration::from_secs(5), &format!("{id} in {st:?}"), || {
            (self.mgr.peer_status(id)?.state == st).then_some(())
        });
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let m = self.mgr.clone();
        self.rt.run(async move { m.shutdown().await });
    }
}

fn peer(id: &str, addr: Ipv4Addr, asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(
        id,
        LOCAL_AS,
        PeerAsPolicy::Fixed(asn),
        IpAddr::V4(addr),
        Ipv4Addr::new(10, 9, 9, 9),
    );
    p.passive = true;
    p
}

fn prefix_set(prefixes: &[&str]) -> RouteSet {
    prefixes
        .iter()
        .map(|p| (p.parse::<IpNet>().expect("prefix"), RouteAttrs::default()))
        .collect()
}

const BAD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[test]
fn malformed_update_gets_notification_and_others_are_unaffected() {
    let fx = Fixture::new(vec![
        peer("bad", BAD, LOCAL_AS),
        peer("good", GOOD, LOCAL_AS),
    ]);
    let addr = fx.addr;
    let m = fx.mgr.clone();
    let (n, good_announced, extra) = fx.rt.run(async move {
        m.set_routes(RouteTarget::All, prefix_set(&["203.0.113.1/32"]))
            .await
            .expect("routes");
        let mut bad = RawPeer::connect(BAD, addr, 64).await;
        bad.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 2)).await;
        let mut good = RawPeer::connect(GOOD, addr, 64).await;
        good.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 3)).await;
        // Full table, then End-of-RIB.
        let good_announced = good.read_until_eor().await;
        assert_eq!(bad.read_until_eor().await, 1);
        // Path attribute length runs past the attribute list.
        let mut upd = vec![0xff; 16];
        upd.extend_from_slice(&27u16.to_be_bytes());
        upd.push(msg_type::UPDATE);
        upd.extend_from_slice(&[0, 0, 0, 4, 0x40, 1, 5, 0]);
        bad.send(&upd).await;
        let body = bad.expect(msg_type::NOTIFICATION).await;
        let n = Notification::decode_body(&body[19..]).expect("notification");
        assert!(
            bad.recv(Duration::from_secs(2)).await.is_none(),
            "connection closed"
        );
        // The other session still carries changes.
        m.set_routes(
            RouteTarget::All,
            prefix_set(&["203.0.113.1/32", "203.0.113.2/32"]),
        )
        .await
        .expect("routes");
        let b = good.expect(msg_type::UPDATE).await;
        let extra = match decode_message(&b, DecodeContext::default()).expect("UPDATE") {
            Message::Update(u) => u.announced_v4,
            other => panic!("unexpected {other:?}"),
        };
        (n, good_announced, extra)
    });
    assert_eq!(
        (n.code, n.subcode),
        (err::UPDATE, err::UPD_MALFORMED_ATTR_LIST)
    );
    assert_eq!(good_announced, 1);
    assert_eq!(extra, 1);
    let bad = fx.mgr.peer_status("bad").expect("bad status");
    assert_eq!(bad.notifications_sent, 1);
    assert_eq!(
        bad.last_notification_sent.map(|n| n.code),
        Some(err::UPDATE)
    );
    assert_ne!(bad.state, State::Established);
    // The status is updated just after the UPDATE is handed to the socket.
    let good = wait_for(
        Duration::from_secs(2),
        "good's status to count 2 prefixes",
        || {
            fx.mgr
                .peer_status("good")
                .filter(|s| s.prefixes_advertised == 2)
        },
    );
    assert_eq!(good.state, State::Established);
    assert_eq!(good.established_count, 1);
}

#[test]
fn update_flood_is_counted_and_discarded() {
    const N: u64 = 20_000;
    let fx = Fixture::new(vec![peer("good", GOOD, LOCAL_AS)]);
    let addr = fx.addr;
    fx.rt.run(async move {
        let mut p = RawPeer::connect(GOOD, addr, 64).await;
        p.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 3)).await;
        let ctx = UpdateContext {
            local_as: LOCAL_AS,
            internal: true,
            four_octet_as: true,
            next_hop_v4: Some(GOOD),
            next_hop_v6: None,
            next_hop_v6_link_local: None,
        };
        let mut batch = Vec::new();
        for i in 0..N {
            let net: IpNet = format!("10.{}.{}.0/24", i / 256, i % 256)
                .parse()
                .expect("net");
            let one: RouteSet = [(net, RouteAttrs::default())].into_iter().collect();
            for m in build_announcements(&ctx, &one).expect("UPDATE") {
                batch.extend_from_slice(&m);
            }
            if batch.len() > 64 * 1024 {
                p.send(&batch).await;
                batch.clear();
            }
        }
        // NLRI without NEXT_HOP: treat-as-withdraw (RFC 7606), not a reset.
        let mut upd = vec![0xff; 16];
        upd.extend_from_slice(&34u16.to_be_bytes());
        upd.push(msg_type::UPDATE);
        upd.extend_from_slice(&[0, 0, 0, 7, 0x40, 1, 1, 0, 0x40, 2, 0, 24, 192, 0, 2]);
        batch.extend_from_slice(&upd);
        p.send(&batch).await;
        // Keep the connection open until the runtime ends.
        tokio::spawn(async move {
            let _keep = p;
            std::future::pending::<()>().await
        });
    });
    wait_for(Duration::from_secs(20), "all UPDATEs counted", || {
        let s = fx.mgr.peer_status("good")?;
        (s.updates_received == N + 1).then_some(())
    });
    let s = fx.mgr.peer_status("good").expect("status");
    assert_eq!(s.prefixes_received, N + 1);
    assert_eq!(s.treat_as_withdraw, 1);
    assert_eq!(s.state, State::Established);
    assert_eq!(s.notifications_sent, 0);
}

#[test]
fn set_peers_keeps_unchanged_sessions_and_resets_changed_ones() {
    let a = peer("a", BAD, LOCAL_AS);
    let b = peer("b", GOOD, LOCAL_AS);
    let fx = Fixture::new(vec![a.clone(), b.clone()]);
    let addr = fx.addr;
    let m = fx.mgr.clone();
    let (a_quiet, b_notif, a_notif) = fx.rt.run(async move {
        let mut pa = RawPeer::connect(BAD, addr, 64).await;
        pa.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 2)).await;
        let mut pb = RawPeer::connect(GOOD, addr, 64).await;
        pb.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 3)).await;
        pa.read_until_eor().await;
        pb.read_until_eor().await;
        let mut b2 = b.clone();
        b2.hold_time = 30;
        m.set_peers(vec![a.clone(), b2]).await.expect("set_peers");
        let nb = pb.expect(msg_type::NOTIFICATION).await;
        let a_quiet = pa.recv(Duration::from_millis(500)).await.is_none();
        m.set_peers(vec![]).await.expect("set_peers");
        let na = pa.expect(msg_type::NOTIFICATION).await;
        (
            a_quiet,
            Notification::decode_body(&nb[19..]).expect("notification"),
            Notification::decode_body(&na[19..]).expect("notification"),
        )
    });
    assert!(a_quiet, "the unchanged session got a message");
    assert_eq!((b_notif.code, b_notif.subcode), (err::CEASE, 6));
    assert_eq!(
        (a_notif.code, a_notif.subcode),
        (err::CEASE, err::CEASE_PEER_DECONFIGURED)
    );
    assert!(fx.mgr.peer_status("a").is_none());
}

#[test]
fn single_hop_ebgp_enforces_gtsm() {
    let low = Ipv4Addr::new(127, 0, 0, 4);
    let high = Ipv4Addr::new(127, 0, 0, 5);
    let fx = Fixture::new(vec![peer("low", low, 65001), peer("high", high, 65002)]);
    let addr = fx.addr;
    fx.rt.run(async move {
        let mut h = RawPeer::connect(high, addr, 255).await;
        h.establish(65002, Ipv4Addr::new(1, 1, 1, 5)).await;
        // TTL 64: the listener drops the SYN (IP_MINTTL 255), the connect
        // attempt times out in the background.
        let l = tokio::spawn(async move {
            let mut l = RawPeer::connect(low, addr, 64).await;
            l.send(&open_msg(65001, Ipv4Addr::new(1, 1, 1, 4))).await;
            l
        });
        tokio::spawn(async move {
            let _keep = (h, l);
            std::future::pending::<()>().await
        });
    });
    fx.wait_state("high", State::Established);
    std::thread::sleep(Duration::from_millis(1500));
    let s = fx.mgr.peer_status("low").expect("status");
    assert!(
        s.established_count == 0 && !matches!(s.state, State::OpenConfirm | State::Established),
        "{s:?}"
    );
}

/// The peer (a raw listener on 127.0.0.2:`port`) and the manager connect to
/// each other at once; the connection initiated by the higher identifier wins.
fn collision(peer_id: Ipv4Addr) -> (bool, Notification) {
    let r = Ipv4Addr::new(127, 0, 0, 2);
    require_root();
    let ns = Netns::new(&unique("coll"));
    let rt = NodeRt::new(&ns);
    let (mgr, listener) = rt.run(async move {
        let l = tokio::net::TcpListener::bind((r, 0)).await.expect("listen");
        let m = SessionManager::start(ManagerConfig {
            listen_port: Some(0),
            listen_v4: true,
            listen_v6: false,
        })
        .expect("manager");
        (m, l)
    });
    let mgr_port = mgr.listen_addrs()[0].port();
    let mut p = peer("r", r, LOCAL_AS);
    p.passive = false;
    p.peer_port = listener.local_addr().expect("addr").port();
    p.connect_time = Duration::from_secs(1);
    let m = mgr.clone();
    let (ours_won, cease) = rt.run(async move {
        m.set_peers(vec![p]).await.expect("peers");
        // conn1: initiated by the manager.
        let (s1, _) = listener.accept().await.expect("accept");
        let mut c1 = RawPeer {
            s: s1,
            framer: Framer::new(),
        };
        c1.expect(msg_type::OPEN).await;
        // conn2: initiated by the peer, while conn1 waits in OpenSent.
        let mut c2 = RawPeer::connect(r, SocketAddr::new(r.into(), mgr_port), 64).await;
        c2.establish_open_only(LOCAL_AS, peer_id).await;
        let (loser, winner) = if u32::from(peer_id) > u32::from(Ipv4Addr::new(10, 9, 9, 9)) {
            (&mut c1, &mut c2)
        } else {
            (&mut c2, &mut c1)
        };
        let n = loser.expect(msg_type::NOTIFICATION).await;
        let cease = Notification::decode_body(&n[19..]).expect("notification");
        let ours_won = std::ptr::eq(winner, &c1);
        // Complete the surviving connection.
        if ours_won {
            c1.send(&open_msg(LOCAL_AS, peer_id)).await;
            c1.expect(msg_type::KEEPALIVE).await;
            c1.send(&encode_keepalive()).await;
        } else {
            c2.send(&encode_keepalive()).await;
            c2.expect(msg_type::KEEPALIVE).await;
        }
        tokio::spawn(async move {
            let _keep = (c1, c2);
            std::future::pending::<()>().await
        });
        (ours_won, cease)
    });
    wait_for(
        Duration::from_secs(5),
        "Established after the collision",
        || (mgr.peer_status("r")?.state == State::Established).then_some(()),
    );
    assert_eq!(mgr.peer_status("r").map(|s| s.established_count), Some(1));
    let m = mgr.clone();
    rt.run(async move { m.shutdown().await });
    (ours_won, cease)
}

impl RawPeer {
    /// Sends OPEN and reads the manager's OPEN, without confirming.
    async fn establish_open_only(&mut self, asn: u32, id: Ipv4Addr) {
        self.send(&open_msg(asn, id)).await;
        self.expect(msg_type::OPEN).await;
    }
}

fn open_msg(asn: u32, id: Ipv4Addr) -> Vec<u8> {
    encode_local_open(&LocalConfig {
        local_as: asn,
        hold_time: 90,
        keepalive: None,
        router_id: id,
        families: vec![Family::Ipv4Unicast],
        graceful_restart: None,
    })
    .expect("OPEN")
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    // Peer identifier higher than ours (10.9.9.9): the peer's connection wins.
    let (ours_won, cease) = collision(Ipv4Addr::new(200, 0, 0, 1));
    assert!(!ours_won);
    assert_eq!(
        (cease.code, cease.subcode),
        (err::CEASE, err::CEASE_COLLISION)
    );
    // Lower: ours wins.
    let (ours_won, cease) = collision(Ipv4Addr::new(1, 1, 1, 1));
    assert!(ours_won);
    assert_eq!(
        (cease.code, cease.subcode),
        (err::CEASE, err::CEASE_COLLISION)
    );
}

#[test]
fn open_advertises_graceful_restart_when_configured() {
    use ferrolb_speaker::bgp::codec::decode_open;
    use ferrolb_speaker::bgp::open::GracefulRestartConfig;
    use netgauze_bgp_pkt::capabilities::BgpCapability;
    let mut p = peer("good", GOOD, LOCAL_AS);
    p.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: false,
        forwarding_preserved: true,
    });
    let fx = Fixture::new(vec![p]);
    let addr = fx.addr;
    let open = fx.rt.run(async move {
        let mut c = RawPeer::connect(GOOD, addr, 64).await;
        c.expect(msg_type::OPEN).await
    });
    let open = decode_open(&open).expect("OPEN");
    let gr = open
        .capabilities()
        .into_iter()
        .find_map(|c| match c {
            BgpCapability::GracefulRestartCapability(g) => Some(g.clone()),
            _ => None,
        })
        .expect("graceful restart capability");
    assert_eq!(gr.time(), 120);
    assert_eq!(gr.address_families().len(), 1);
}

#[test]
fn peer_that_stops_reading_holds_back_updates_without_growing_the_queue() {
    const N: u32 = 40_000;
    let fx = Fixture::new(vec![peer("slow", GOOD, LOCAL_AS)]);
    // Small TCP buffers so the bound comes from our queue, not the kernel's.
    fx._ns
        .exec(&["sysctl", "-qw", "net.ipv4.tcp_wmem=4096 16384 65536"]);
    fx._ns
        .exec(&["sysctl", "-qw", "net.ipv4.tcp_rmem=4096 16384 65536"]);
    let addr = fx.addr;
    let m = fx.mgr.clone();
    // Every route has its own community, so each needs its own UPDATE.
    let routes: RouteSet = (0..N)
        .map(|i| {
            let net: IpNet =
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).expect("net"));
            let attrs = RouteAttrs {
                communities: [i].into_iter().collect(),
                ..Default::default()
            };
            (net, attrs)
        })
        .collect();
    let mut p = fx.rt.run(async move {
        let mut p = RawPeer::connect(GOOD, addr, 64).await;
        p.establish(LOCAL_AS, Ipv4Addr::new(1, 1, 1, 3)).await;
        m.set_routes(RouteTarget::All, routes)
            .await
            .expect("routes");
        p
    });
    // Wait until queueing stops (the count is stable for 500 ms).
    let advertised = || {
        fx.mgr
            .peer_status("slow")
            .expect("status")
            .prefixes_advertised
    };
    let mut last = (advertised(), std::time::Instant::now());
    let queued = wait_for(Duration::from_secs(20), "queueing to stop", || {
        let now = advertised();
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        (now > 0 && last.1.elapsed() > Duration::from_millis(500)).then_some(now)
    });
    // Our queue (16 buffers of up to 1024 prefixes, one more in the writer)
    // plus what the small kernel buffers hold.
    let bound = (ferrolb_speaker::net::conn::WRITE_QUEUE + 2) * 1024 + 4096;
    println!("{queued} of {N} prefixes queued for a peer that does not read (bound {bound})");
    assert!(queued <= bound, "{queued} prefixes queued, bound {bound}");
    // Once the peer reads again, everything arrives, then End-of-RIB.
    let got = fx.rt.run(async move { p.read_until_eor().await });
    assert_eq!(got, N as usize);
    let s = fx.mgr.peer_status("slow").expect("status");
    assert_eq!(s.prefixes_advertised, N as usize);
    assert!(s.end_of_rib_sent);
}
