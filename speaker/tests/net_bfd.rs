//! BFD I/O against a raw UDP peer in a private network namespace: TTL 255
//! enforcement on receive, the three-way handshake to Up, detection timeout,
//! and BFD Down tearing the BGP session down with Cease / BFD Down.
//! Needs root (fails with a clear message otherwise).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Netns, NodeRt, require_root, unique, wait_for};
use ferrolb_speaker::bfd::packet::{ControlPacket, Diag, PACKET_LEN, SessionState};
use ferrolb_speaker::bgp::codec::{Framer, Notification, encode_keepalive, err, msg_type};
use ferrolb_speaker::bgp::fsm::State;
use ferrolb_speaker::bgp::open::{Family, LocalConfig, PeerAsPolicy, encode_local_open};
use ferrolb_speaker::net::{
    BfdConfig, DownCause, ManagerConfig, PeerConfig, SessionEvent, SessionManager,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const AS: u32 = 65000;

fn packet(state: SessionState, my: u32, your: u32) -> [u8; PACKET_LEN] {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        length: PACKET_LEN as u8,
        my_discr: my,
        your_discr: your,
        desired_min_tx: 50_000,
        required_min_rx: 50_000,
        required_min_echo_rx: 0,
    }
    .encode()
}

#[test]
fn bfd_up_then_silence_tears_bgp_down_with_cease_bfd_down() {
    require_root();
    let ns = Netns::new(&unique("bfd"));
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
    let mut p = PeerConfig::new(
        "p",
        AS,
        PeerAsPolicy::Fixed(AS),
        IpAddr::V4(PEER),
        Ipv4Addr::new(10, 9, 9, 9),
    );
    p.passive = true;
    p.bfd = Some(BfdConfig {
        transmit_interval_us: 50_000,
        receive_interval_us: 50_000,
        detect_multiplier: 3,
        passive: false,
    });
    let mut events = mgr.events();
    let m = mgr.clone();
    let (bad_ttl_stats, cease) = rt.run(async move {
        m.set_peers(vec![p]).await.expect("peers");
        // BGP up first (iBGP, raw peer).
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(PEER.into(), 0)).expect("bind");
        let mut s = sock
            .connect(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
            .await
            .expect("connect");
        let open = encode_local_open(&LocalConfig {
            local_as: AS,
            hold_time: 90,
            keepalive: None,
            router_id: Ipv4Addr::new(1, 1, 1, 2),
            families: vec![Family::Ipv4Unicast],
            graceful_restart: None,
        })
        .expect("OPEN");
        s.write_all(&open).await.expect("write");
        s.write_all(&encode_keepalive()).await.expect("write");

        // BFD peer on 127.0.0.2:3784.
        // SO_REUSEADDR: the speaker's socket holds 0.0.0.0:3784 (also with it).
        let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .expect("socket");
        raw.set_reuse_address(true).expect("reuse");
        raw.bind(&SocketAddr::new(PEER.into(), 3784).into())
            .expect("bind 3784");
        raw.set_nonblocking(true).expect("nonblocking");
        let u = UdpSocket::from_std(raw.into()).expect("tokio socket");
        let to = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 3784);
        // TTL 64 is dropped by the speaker.
        u.set_ttl(64).expect("ttl");
        u.send_to(&packet(SessionState::Down, 7, 0), to)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let bad_ttl_stats = m.bfd_stats().await.expect("stats");
        u.set_ttl(255).expect("ttl");
        // Learn the speaker's discriminator from its packets (sent at 1/s while down).
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(Duration::from_secs(3), u.recv_from(&mut buf))
            .await
            .expect("speaker sends BFD")
            .expect("recv");
        assert_eq!(from.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(from.port() >= 49152, "source port {}", from.port());
        let ours = ControlPacket::decode(&buf[..n]).expect("valid BFD packet");
        // Handshake: Down -> (speaker Init) -> Up.
        u.send_to(&packet(SessionState::Down, 7, 0), to)
            .await
            .expect("send");
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            u.send_to(&packet(SessionState::Up, 7, ours.my_discr), to)
                .await
                .expect("send");
            if m.peer_status("p").and_then(|s| s.bfd) == Some(SessionState::Up)
                && m.peer_status("p").map(|s| s.state) == Some(State::Established)
            {
                break;
            }
        }
        assert_eq!(
            m.peer_status("p").and_then(|s| s.bfd),
            Some(SessionState::Up)
        );
        assert_eq!(
            m.peer_status("p").map(|s| s.state),
            Some(State::Established)
        );
        // Silence: detection after 3 x 50 ms; BGP goes down with Cease 10.
        let mut framer = Framer::new();
        let mut tcp = [0u8; 4096];
        let cease = loop {
            if let Some(f) = framer.next_frame().expect("framing") {
                if f.msg_type == msg_type::NOTIFICATION {
                    break Notification::decode_body(f.body()).expect("notification");
                }
                continue;
            }
            let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut tcp))
                .await
                .expect("NOTIFICATION in time")
                .expect("read");
            assert!(n > 0, "closed without NOTIFICATION");
            framer.extend(&tcp[..n]);
        };
        (bad_ttl_stats, cease)
    });
    assert_eq!(bad_ttl_stats.bad_ttl, 1, "{bad_ttl_stats:?}");
    assert_eq!(bad_ttl_stats.delivered, 0, "{bad_ttl_stats:?}");
    assert_eq!(
        (cease.code, cease.subcode),
        (err::CEASE, err::CEASE_BFD_DOWN)
    );
    wait_for(Duration::from_secs(2), "down cause recorded", || {
        let s = mgr.peer_status("p")?;
        (s.last_down == Some(DownCause::BfdDown) && s.bfd == Some(SessionState::Down)).then_some(())
    });
    // The same story as events.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let pos = |want: &SessionEvent| seen.iter().position(|e| e == want);
    let up = pos(&SessionEvent::BfdStateChanged {
        peer: "p".into(),
        from: SessionState::Init,
        to: SessionState::Up,
    });
    let established = pos(&SessionEvent::StateChanged {
        peer: "p".into(),
        from: State::OpenConfirm,
        to: State::Established,
    });
    let down = pos(&SessionEvent::SessionDown {
        peer: "p".into(),
        cause: DownCause::BfdDown,
    });
    assert!(
        up.is_some() && established.is_some() && down > up && down > established,
        "{seen:#?}"
    );
    let m = mgr.clone();
    rt.run(async move { m.shutdown().await });
}
