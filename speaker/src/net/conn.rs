//! TCP plumbing of a BGP connection: connecting and listening with the peer's
//! socket options (source address, TCP-MD5, TTL/GTSM), and the reader and
//! writer tasks that sit between the socket and the session task.
//!
//! Memory stays bounded whatever the peer does: the reader cuts at most one
//! 16 KiB read into frames per batch and blocks when the session task has
//! [`READ_QUEUE`] batches pending (so a flood of UPDATEs is back-pressured onto
//! TCP), and the writer queue holds at most [`WRITE_QUEUE`] buffers; UPDATEs are
//! only generated when the queue has room (the Adj-RIB-Out coalesces changes
//! meanwhile).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::{PeerConfig, TtlPolicy};
use super::sockopt;
use crate::bgp::codec::{Frame, Framer, Notification};

/// Buffers (each at most a few KiB up to one UPDATE chunk) the writer may hold.
pub const WRITE_QUEUE: usize = 16;
/// Frame batches the reader may hold before it stops reading the socket.
pub const READ_QUEUE: usize = 4;
const READ_BUF: usize = 16 * 1024;
/// How long a closing connection may take to flush its last NOTIFICATION.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the reader task reports.
#[derive(Debug)]
pub enum ReadEvent {
    /// Complete messages, in order.
    Frames(Vec<Frame>),
    /// An invalid header: the NOTIFICATION to send; the reader has stopped.
    HeaderError(Notification),
    /// The peer closed the connection or the socket failed.
    Closed(Option<String>),
}

/// Applies the TTL policy to a TCP socket.
pub fn apply_ttl(fd: &impl AsFd, ipv6: bool, policy: TtlPolicy) -> io::Result<()> {
    if policy == TtlPolicy::Default {
        return Ok(());
    }
    let sock = SockRef::from(fd);
    if ipv6 {
        sock.set_unicast_hops_v6(255)?;
    } else {
        sock.set_ttl_v4(255)?;
    }
    if policy == TtlPolicy::Gtsm {
        sockopt::set_min_ttl(fd, ipv6, 255)?;
    }
    Ok(())
}

/// Opens an outgoing connection to the peer with its socket options.
pub async fn connect(cfg: &PeerConfig) -> io::Result<TcpStream> {
    let peer = SocketAddr::new(cfg.peer_address, cfg.peer_port);
    let ipv6 = peer.is_ipv6();
    let sock = if ipv6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(src) = cfg.source_address {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    if let Some(pw) = &cfg.password {
        sockopt::set_tcp_md5(&sock, cfg.peer_address, Some(pw.as_bytes()))?;
    }
    apply_ttl(&sock, ipv6, cfg.ttl_policy())?;
    let stream = sock.connect(peer).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Prepares an accepted connection for the peer it was matched to.
pub fn prepare_accepted(stream: &TcpStream, cfg: &PeerConfig) -> io::Result<()> {
    stream.set_nodelay(true)?;
    apply_ttl(stream, cfg.peer_address.is_ipv6(), cfg.ttl_policy())
}

/// A listening socket on `[::]` (v6-only) or `0.0.0.0`.
pub fn listen(ipv6: bool, port: u16) -> io::Result<TcpListener> {
    let (domain, addr): (Domain, IpAddr) = if ipv6 {
        (Domain::IPV6, IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    };
    let s = Socket::new(domain, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if ipv6 {
        s.set_only_v6(true)?;
    }
    s.bind(&SocketAddr::new(addr, port).into())?;
    s.listen(128)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// An open BGP connection: queues to and from its reader and writer tasks.
#[derive(Debug)]
pub struct Conn {
    /// Batches of received frames.
    pub frames: mpsc::Receiver<ReadEvent>,
    /// Encoded messages to send.
    pub tx: mpsc::Sender<Vec<u8>>,
    /// We initiated this connection.
    pub outgoing: bool,
    /// Our OPEN was queued on it.
    pub open_sent: bool,
    /// Local address of the socket.
    pub local: SocketAddr,
    /// Remote address of the socket.
    pub remote: SocketAddr,
    started: Instant,
    progress_ms: Arc<AtomicU64>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Conn {
    /// Splits the stream and starts the reader and writer tasks.
    pub fn start(stream: TcpStream, outgoing: bool) -> io::Result<Self> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (rd, wr) = stream.into_split();
        let (ftx, frames) = mpsc::channel(READ_QUEUE);
        let (tx, wrx) = mpsc::channel(WRITE_QUEUE);
        let started = Instant::now();
        let progress_ms = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(reader(rd, ftx));
        let writer = tokio::spawn(writer(wr, wrx, started, progress_ms.clone()));
        Ok(Self {
            frames,
            tx,
            outgoing,
            open_sent: false,
            local,
            remote,
            started,
            progress_ms,
            reader,
            writer,
        })
    }

    /// Time since the writer last finished writing a buffer (or since the start).
    pub fn write_stalled_for(&self) -> Duration {
        let done = Duration::from_millis(self.progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(done)
    }

    /// Queues a message; `false` when the queue is full or the writer is gone.
    pub fn try_send(&self, msg: Vec<u8>) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    /// Closes the connection: the reader stops now, the writer flushes what is
    /// queued (e.g. a NOTIFICATION) for up to one second, then the socket closes.
    pub fn close(self) {
        self.reader.abort();
        let Conn { tx, mut writer, .. } = self;
        drop(tx);
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        });
    }
}

async fn reader(mut rd: OwnedReadHalf, tx: mpsc::Sender<ReadEvent>) {
    let mut framer = Framer::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(ReadEvent::Closed(None)).await;
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(ReadEvent::Closed(Some(e.to_string()))).await;
                return;
            }
        };
        framer.extend(&buf[..n]);
        let mut frames = Vec::new();
        let mut error = None;
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(n) => {
                    error = Some(n);
                    break;
                }
            }
        }
        if !frames.is_empty() && tx.send(ReadEvent::Frames(frames)).await.is_err() {
            return;
        }
        if let Some(n) = error {
            let _ = tx.send(ReadEvent::HeaderError(n)).await;
            return;
        }
    }
}

async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    started: Instant,
    progress_ms: Arc<AtomicU64>,
) {
    while let Some(buf) = rx.recv().await {
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress_ms.store(ms, Ordering::Relaxed);
    }
    let _ = wr.shutdown().await;
}
