//! Graceful restart (RFC 4724) at the session layer, against raw TCP peers
//! written in the test (private network namespace, loopback only): the Restart
//! State bit of our OPENs across sessions of one peer task, and End-of-RIB held
//! back until the first route set was handed to the peer (with graceful restart
//! only). Needs root (fails with a clear message otherwise).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Netns, NodeRt, require_root, unique, wait_for};
use ferrolb_speaker::bgp::codec::{
    DecodeContext, Framer, Message, decode_message, decode_open, encode_keepalive, msg_type,
};
use ferrolb_speaker::bgp::fsm::State;
use ferrolb_speaker::bgp::open::{
    Family, GracefulRestartConfig, LocalConfig, PeerAsPolicy, PeerGracefulRestart,
    encode_local_open, negotiate,
};
use ferrolb_speaker::bgp::update::{RouteAttrs, RouteSet};
use ferrolb_speaker::net::{ManagerConfig, PeerConfig, RouteTarget, SessionManager};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const LOCAL_AS: u32 = 65000;
const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 3);

/// A BGP peer speaking raw bytes.
struct RawPeer {
    s: TcpStream,
    framer: Framer,
}

impl RawPeer {
    async fn connect(to: SocketAddr) -> Self {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(IpAddr::V4(PEER_ADDR), 0))
            .expect("bind");
        let s = sock.connect(to).await.expect("connect");
        Self {
            s,
            framer: Framer::new(),
        }
    }

    async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.expect("write");
    }

    /// The next message (type, bytes); panics on EOF or after 5 s.
    async fn next(&mut self) -> (u8, Vec<u8>) {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(f) = self.framer.next_frame().expect("valid framing") {
                return (f.msg_type, f.bytes);
            }
            match tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("connection closed"),
                Ok(Ok(n)) => self.framer.extend(&buf[..n]),
                Ok(Err(e)) => panic!("read: {e}"),
                Err(_) => panic!("no message within 5 s"),
            }
        }
    }

    /// The next message of type `ty`, skipping KEEPALIVEs.
    async fn expect(&mut self, ty: u8) -> Vec<u8> {
        loop {
            let (t, b) = self.next().await;
            if t == ty {
                return b;
            }
            assert_eq!(t, msg_type::KEEPALIVE, "type {t} while waiting for {ty}");
        }
    }

    /// Sends our OPEN and returns the graceful-restart capability of the manager's OPEN.
    async fn open(&mut self) -> Option<PeerGracefulRestart> {
        self.send(&peer_open()).await;
        let open = decode_open(&self.expect(msg_type::OPEN).await).expect("OPEN");
        let me = LocalConfig {
            local_as: LOCAL_AS,
            hold_time: 90,
            keepalive: None,
            router_id: PEER_ID,
            families: vec![Family::Ipv4Unicast],
            graceful_restart: None,
        };
        negotiate(&me, PeerAsPolicy::Fixed(LOCAL_AS), &open)
            .expect("acceptable OPEN")
            .peer_graceful_restart
    }

    /// Confirms the OPEN exchange (KEEPALIVE both ways).
    async fn confirm(&mut self) {
        self.send(&encode_keepalive()).await;
        self.expect(msg_type::KEEPALIVE).await;
    }

    /// Reads UPDATEs until an IPv4 End-of-RIB; returns the prefixes announced before it.
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

fn peer_open() -> Vec<u8> {
    encode_local_open(&LocalConfig {
        local_as: LOCAL_AS,
        hold_time: 90,
        keepalive: None,
        router_id: PEER_ID,
        families: vec![Family::Ipv4Unicast],
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            forwarding_preserved: true,
        }),
    })
    .expect("OPEN")
}

fn gr_peer(restarting: bool) -> PeerConfig {
    let mut p = PeerConfig::new(
        "tor",
        LOCAL_AS,
        PeerAsPolicy::Fixed(LOCAL_AS),
        IpAddr::V4(PEER_ADDR),
        Ipv4Addr::new(10, 9, 9, 9),
    );
    p.passive = true;
    p.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting,
        forwarding_preserved: true,
    });
    p
}

fn prefix_set(prefixes: &[&str]) -> RouteSet {
    prefixes
        .iter()
        .map(|p| (p.parse::<IpNet>().expect("prefix"), RouteAttrs::default()))
        .collect()
}

struct Fixture {
    mgr: SessionManager,
    addr: SocketAddr,
    rt: NodeRt,
    _ns: Netns,
}

impl Fixture {
    /// A manager with `peer`; `routes` (if any) are set before the peer is added.
    fn new(peer: PeerConfig, routes: Option<RouteSet>) -> Self {
        require_root();
        let ns = Netns::new(&unique("gr"));
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
        rt.run(async move {
            if let Some(r) = routes {
                m.set_routes(RouteTarget::All, r).await?;
            }
            m.set_peers(vec![peer]).await
        })
        .expect("peers");
        Self {
            mgr,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            rt,
            _ns: ns,
        }
    }

    fn wait(&self, what: &str, f: impl Fn(&ferrolb_speaker::net::PeerStatus) -> bool) {
        wait_for(Duration::from_secs(5), what, || {
            f(&self.mgr.peer_status("tor")?).then_some(())
        });
    }

    fn set_routes(&self, routes: RouteSet) {
        let m = self.mgr.clone();
        self.rt
            .run(async move { m.set_routes(RouteTarget::All, routes).await })
            .expect("routes");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let m = self.mgr.clone();
        self.rt.run(async move { m.shutdown().await });
    }
}

#[test]
fn restart_bit_is_set_until_the_first_session_is_established() {
    let fx = Fixture::new(gr_peer(false), Some(prefix_set(&["203.0.113.1/32"])));
    let addr = fx.addr;
    // (what the peer does after the OPEN exchange, R bit expected in the OPEN).
    // An OPEN exchange that never reaches Established leaves R set.
    let steps = [
        ("close before confirming", false, true),
        ("establish", true, true),
        ("reconnect after an established session", true, false),
        ("again", false, false),
    ];
    for (n, (what, establish, want_r)) in steps.into_iter().enumerate() {
        let gr = fx.rt.run(async move {
            let mut p = RawPeer::connect(addr).await;
            let gr = p.open().await;
            if establish {
                p.confirm().await;
                assert_eq!(p.read_until_eor().await, 1, "{what}: full table");
            }
            gr
        });
        let gr = gr.unwrap_or_else(|| panic!("{what}: no graceful-restart capability"));
        assert_eq!(gr.restarting, want_r, "{what}: R bit");
        assert_eq!(gr.restart_time, 120, "{what}");
        assert_eq!(gr.families, [(Family::Ipv4Unicast, true)], "{what}: F bit");
        // The manager noticed the close before the next round.
        fx.wait(&format!("{what}: session gone"), |s| {
            matches!(s.state, State::Idle | State::Connect | State::Active)
        });
        let established = fx.mgr.peer_status("tor").expect("status").established_count;
        let want = steps[..=n].iter().filter(|s| s.1).count() as u64;
        assert_eq!(established, want, "{what}: sessions established so far");
    }
}

#[test]
fn configured_restart_state_sets_the_bit_in_every_session() {
    let fx = Fixture::new(gr_peer(true), Some(prefix_set(&["203.0.113.1/32"])));
    let addr = fx.addr;
    for round in 0..2 {
        let gr = fx.rt.run(async move {
            let mut p = RawPeer::connect(addr).await;
            let gr = p.open().await;
            p.confirm().await;
            p.read_until_eor().await;
            gr
        });
        assert!(gr.expect("capability").restarting, "session {round}");
        fx.wait("session gone", |s| {
            matches!(s.state, State::Idle | State::Connect | State::Active)
        });
    }
}

#[test]
fn end_of_rib_waits_for_the_first_route_set() {
    // Peer added before any route set: the session comes up with nothing to
    // send and must not claim a complete (empty) RIB.
    let fx = Fixture::new(gr_peer(false), None);
    let addr = fx.addr;
    let p = fx.rt.run(async move {
        let mut p = RawPeer::connect(addr).await;
        p.open().await;
        p.confirm().await;
        p
    });
    fx.wait("established", |s| s.state == State::Established);
    // Give a premature End-of-RIB time to be queued; the first UPDATE read
    // below would then be it, and the count 0.
    std::thread::sleep(Duration::from_millis(300));
    let st = fx.mgr.peer_status("tor").expect("status");
    assert!(
        !st.end_of_rib_sent,
        "End-of-RIB before any route set: {st:?}"
    );
    fx.set_routes(prefix_set(&["203.0.113.1/32", "203.0.113.2/32"]));
    let mut p = p;
    let announced = fx.rt.run(async move { p.read_until_eor().await });
    assert_eq!(announced, 2, "routes, then End-of-RIB");
    fx.wait("End-of-RIB sent", |s| s.end_of_rib_sent);
}

#[test]
fn an_empty_route_set_handed_over_is_followed_by_end_of_rib() {
    // An empty set is a route set too: handed over before the session came
    // up or while it is up, End-of-RIB follows it.
    for before in [false, true] {
        let fx = Fixture::new(gr_peer(false), None);
        if before {
            fx.set_routes(RouteSet::new());
        }
        let addr = fx.addr;
        let p = fx.rt.run(async move {
            let mut p = RawPeer::connect(addr).await;
            p.open().await;
            p.confirm().await;
            p
        });
        if !before {
            fx.wait("established", |s| s.state == State::Established);
            fx.set_routes(RouteSet::new());
        }
        let mut p = p;
        let announced = fx.rt.run(async move { p.read_until_eor().await });
        assert_eq!(announced, 0, "set before the session: {before}");
    }
}

#[test]
fn without_graceful_restart_end_of_rib_is_not_held_back() {
    let mut p = gr_peer(false);
    p.graceful_restart = None;
    let fx = Fixture::new(p, None);
    let addr = fx.addr;
    let (gr, announced) = fx.rt.run(async move {
        let mut p = RawPeer::connect(addr).await;
        let gr = p.open().await;
        p.confirm().await;
        (gr, p.read_until_eor().await)
    });
    assert_eq!(gr, None, "no capability");
    assert_eq!(announced, 0);
}

#[test]
fn routes_set_before_the_peer_was_added_are_followed_by_end_of_rib() {
    let fx = Fixture::new(gr_peer(false), Some(prefix_set(&["203.0.113.9/32"])));
    let addr = fx.addr;
    let announced = fx.rt.run(async move {
        let mut p = RawPeer::connect(addr).await;
        p.open().await;
        p.confirm().await;
        p.read_until_eor().await
    });
    assert_eq!(announced, 1);
}
