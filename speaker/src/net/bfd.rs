//! BFD single-hop I/O (RFC 5881): one receive socket per address family on
//! port 3784 that demultiplexes packets to sessions by Your Discriminator (or
//! by source address while it is 0), and one task per session that owns a send
//! socket (source port 49152-65535, TTL 255) and the
//! [`crate::bfd::session::Session`] with its timers.
//!
//! Received packets must carry TTL / Hop Limit 255 (RFC 5881 §5): the socket
//! asks for the value with `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` (`IP_MINTTL` does
//! not filter UDP on Linux) and anything else is dropped.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::BfdConfig;
use super::peer::Shared;
use super::status::SessionEvent;
use crate::bfd::packet::{ControlPacket, SessionState};
use crate::bfd::session::{Action, Event, Session, SessionConfig};

/// UDP port of single-hop BFD control packets.
pub const BFD_PORT: u16 = 3784;
/// First source port allowed for single-hop BFD (RFC 5881 §4).
pub const SOURCE_PORT_MIN: u16 = 49152;
const SESSION_QUEUE: usize = 16;

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    tx: mpsc::Sender<ControlPacket>,
}

#[derive(Debug, Default)]
struct Demux {
    by_discr: HashMap<u32, Entry>,
    by_peer: HashMap<IpAddr, u32>,
}

impl Demux {
    /// The session a packet from `src` belongs to (RFC 5880 §6.3).
    fn lookup(&self, src: IpAddr, p: &ControlPacket) -> Option<&Entry> {
        let discr = if p.your_discr != 0 {
            p.your_discr
        } else {
            *self.by_peer.get(&src)?
        };
        self.by_discr.get(&discr).filter(|e| e.peer == src)
    }
}

/// Counters of the receive path, for diagnosis.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BfdRxStats {
    /// Packets handed to a session.
    pub delivered: u64,
    /// Packets dropped because TTL / Hop Limit was not 255.
    pub bad_ttl: u64,
    /// Packets that failed to decode.
    pub malformed: u64,
    /// Packets that matched no session.
    pub unknown: u64,
}

/// The BFD receive sockets and the session table of one manager.
#[derive(Debug)]
pub(crate) struct BfdHub {
    demux: Arc<Mutex<Demux>>,
    stats: Arc<Mutex<BfdRxStats>>,
    rx_v4: Option<JoinHandle<()>>,
    rx_v6: Option<JoinHandle<()>>,
    next_discr: u32,
}

impl Drop for BfdHub {
    fn drop(&mut self) {
        for h in [self.rx_v4.take(), self.rx_v6.take()].into_iter().flatten() {
            h.abort();
        }
    }
}

/// A running BFD session; dropping it stops the session.
#[derive(Debug)]
pub(crate) struct BfdSessionHandle {
    task: JoinHandle<()>,
}

impl Drop for BfdSessionHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn seed() -> u32 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0x9e37_79b9);
    n ^ std::process::id().rotate_left(16)
}

/// xorshift32 for timer jitter and port choice (not security relevant).
#[derive(Debug, Clone, Copy)]
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

impl BfdHub {
    pub fn new() -> Self {
        Self {
            demux: Arc::default(),
            stats: Arc::default(),
            rx_v4: None,
            rx_v6: None,
            next_discr: seed() | 1,
        }
    }

    /// Receive-path counters.
    pub fn stats(&self) -> BfdRxStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ensure_rx(&mut self, ipv6: bool) -> io::Result<()> {
        let slot = if ipv6 {
            &mut self.rx_v6
        } else {
            &mut self.rx_v4
        };
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        let sock = rx_socket(ipv6)?;
        let demux = self.demux.clone();
        let stats = self.stats.clone();
        *slot = Some(tokio::spawn(rx_loop(sock, demux, stats)));
        Ok(())
    }

    fn alloc_discr(&mut self) -> u32 {
        let demux = self.demux.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            self.next_discr = self.next_discr.wrapping_add(1);
            if self.next_discr != 0 && !demux.by_discr.contains_key(&self.next_discr) {
                return self.next_discr;
            }
        }
    }

    /// Starts a session to `peer`; its state is published on `state_tx`.
    pub fn start_session(
        &mut self,
        id: &str,
        peer: IpAddr,
        source: Option<IpAddr>,
        cfg: BfdConfig,
        state_tx: watch::Sender<Option<SessionState>>,
        shared: Arc<Shared>,
    ) -> io::Result<BfdSessionHandle> {
        self.ensure_rx(peer.is_ipv6())?;
        let discr = self.alloc_discr();
        let mut rng = Rng(seed() ^ discr | 1);
        let sock = tx_socket(peer, source, &mut rng)?;
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        {
            let mut d = self.demux.lock().unwrap_or_else(|e| e.into_inner());
            d.by_discr.insert(discr, Entry { peer, tx });
            d.by_peer.insert(peer, discr);
        }
        let guard = DemuxGuard {
            demux: self.demux.clone(),
            discr,
            peer,
        };
        let session = Session::new(SessionConfig {
            local_discr: discr,
            desired_min_tx_us: cfg.transmit_interval_us,
            required_min_rx_us: cfg.receive_interval_us,
            detect_mult: cfg.detect_multiplier,
            passive: cfg.passive,
        });
        state_tx.send_replace(Some(SessionState::Down));
        let run = SessionRun {
            id: id.to_owned(),
            peer: SocketAddr::new(peer, BFD_PORT),
            session,
            sock,
            rx,
            state_tx,
            shared,
            rng,
            tx_at: None,
            detect_at: None,
            _guard: guard,
        };
        Ok(BfdSessionHandle {
            task: tokio::spawn(run.run()),
        })
    }
}

/// Removes a session from the demux table when its task ends.
struct DemuxGuard {
    demux: Arc<Mutex<Demux>>,
    discr: u32,
    peer: IpAddr,
}

impl Drop for DemuxGuard {
    fn drop(&mut self) {
        let mut d = self.demux.lock().unwrap_or_else(|e| e.into_inner());
        d.by_discr.remove(&self.discr);
        if d.by_peer.get(&self.peer) == Some(&self.discr) {
            d.by_peer.remove(&self.peer);
        }
    }
}

fn rx_socket(ipv6: bool) -> io::Result<UdpSocket> {
    let (domain, addr): (Domain, IpAddr) = if ipv6 {
        (Domain::IPV6, Ipv6Addr::UNSPECIFIED.into())
    } else {
        (Domain::IPV4, Ipv4Addr::UNSPECIFIED.into())
    };
    let s = Socket::new(domain, Type::DGRAM, None)?;
    s.set_reuse_address(true)?;
    if ipv6 {
        s.set_only_v6(true)?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
    } else {
        setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?;
    }
    s.bind(&SocketAddr::new(addr, BFD_PORT).into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

fn tx_socket(peer: IpAddr, source: Option<IpAddr>, rng: &mut Rng) -> io::Result<UdpSocket> {
    let ipv6 = peer.is_ipv6();
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, None)?;
    if ipv6 {
        s.set_unicast_hops_v6(255)?;
    } else {
        s.set_ttl_v4(255)?;
    }
    let ip = source.unwrap_or(if ipv6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    });
    let span = u32::from(u16::MAX - SOURCE_PORT_MIN) + 1;
    let start = rng.next() % span;
    let mut last = None;
    for i in 0..span.min(256) {
        let port = SOURCE_PORT_MIN + ((start + i) % span) as u16;
        match s.bind(&SocketAddr::new(ip, port).into()) {
            Ok(()) => {
                s.set_nonblocking(true)?;
                return UdpSocket::from_std(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free BFD source port")))
}

/// One datagram with its source and TTL / Hop Limit.
fn recv_one(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, IpAddr, Option<i32>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let src = msg
        .address
        .as_ref()
        .and_then(|a| match a.family() {
            Some(nix::sys::socket::AddressFamily::Inet) => {
                a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip()))
            }
            Some(nix::sys::socket::AddressFamily::Inet6) => {
                a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()))
            }
            _ => None,
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut ttl = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) => ttl = Some(t),
                ControlMessageOwned::Ipv6HopLimit(t) => ttl = Some(t),
                _ => {}
            }
        }
    }
    Ok((msg.bytes, src, ttl))
}

async fn rx_loop(sock: UdpSocket, demux: Arc<Mutex<Demux>>, stats: Arc<Mutex<BfdRxStats>>) {
    let mut buf = [0u8; 128];
    loop {
        let r = sock
            .async_io(Interest::READABLE, || recv_one(&sock, &mut buf))
            .await;
        let (len, src, ttl) = match r {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "BFD receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let src = match src {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(src),
            v4 => v4,
        };
        let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
        if ttl != Some(255) {
            st.bad_ttl += 1;
            continue;
        }
        let p = match ControlPacket::decode(&buf[..len]) {
            Ok(p) => p,
            Err(_) => {
                st.malformed += 1;
                continue;
            }
        };
        let d = demux.lock().unwrap_or_else(|e| e.into_inner());
        match d.lookup(src, &p) {
            // A full session queue means the session is far behind; dropping is
            // what the network would do.
            Some(e) => {
                let _ = e.tx.try_send(p);
                st.delivered += 1;
            }
            None => st.unknown += 1,
        }
    }
}

struct SessionRun {
    id: String,
    peer: SocketAddr,
    session: Session,
    sock: UdpSocket,
    rx: mpsc::Receiver<ControlPacket>,
    state_tx: watch::Sender<Option<SessionState>>,
    shared: Arc<Shared>,
    rng: Rng,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    _guard: DemuxGuard,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl SessionRun {
    async fn run(mut self) {
        self.apply(Event::Start);
        loop {
            let ev = tokio::select! {
                p = self.rx.recv() => match p {
                    Some(p) => Event::Received(p),
                    None => return,
                },
                _ = sleep_opt(self.detect_at) => {
                    self.detect_at = None;
                    Event::DetectTimerExpired
                }
                _ = sleep_opt(self.tx_at) => {
                    self.tx_at = None;
                    Event::TxTimerExpired
                }
            };
            self.apply(ev);
        }
    }

    fn apply(&mut self, ev: Event) {
        let r = self.rng.next();
        for a in self.session.handle(ev, r) {
            match a {
                Action::SendPacket(p) => {
                    // Errors (e.g. no route while the link is down) are what
                    // detection is for; the session times out on its own.
                    if let Err(e) = self.sock.try_send_to(&p.encode(), self.peer) {
                        tracing::trace!(peer = %self.id, error = %e, "BFD send failed");
                    }
                }
                Action::ArmTx(us) => self.tx_at = Some(Instant::now() + Duration::from_micros(us)),
                Action::DisarmTx => self.tx_at = None,
                Action::ArmDetect(us) => {
                    self.detect_at = Some(Instant::now() + Duration::from_micros(us))
                }
                Action::DisarmDetect => self.detect_at = None,
                Action::StateChanged { from, to, diag } => {
                    tracing::info!(peer = %self.id, ?from, ?to, ?diag, "BFD state");
                    self.state_tx.send_replace(Some(to));
                    self.shared.event(SessionEvent::BfdStateChanged {
                        peer: self.id.clone(),
                        from,
                        to,
                    });
                }
            }
        }
    }
}
