//! The pods' test server: answers every TCP connection and every UDP datagram with the pod's
//! name and a newline, and the matching client helpers.
//!
//! The lab runs one [`PodServer`] per pod on threads moved into the pod's namespace; the
//! example `podserver` runs [`serve`] as a process (`ip netns exec <pod ns> podserver <name> <port>`).

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(2);

/// A running pod server (TCP and UDP on one port, both families). Stops on drop.
#[derive(Debug)]
pub struct PodServer {
    name: String,
    port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl PodServer {
    /// Binds `[::]:port` (dual-stack) for TCP and UDP in the calling thread's namespace and
    /// serves `name` from two background threads.
    pub fn start(name: &str, port: u16) -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let tcp = TcpListener::bind(addr)?;
        tcp.set_nonblocking(true)?;
        let udp = UdpSocket::bind(addr)?;
        udp.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let reply: Arc<[u8]> = format!("{name}\n").into_bytes().into();
        let (s1, r1) = (stop.clone(), reply.clone());
        let t_tcp = std::thread::Builder::new()
            .name(format!("pod-tcp-{name}"))
            .spawn(move || tcp_loop(&tcp, &r1, &s1))?;
        let (s2, r2) = (stop.clone(), reply);
        let t_udp = std::thread::Builder::new()
            .name(format!("pod-udp-{name}"))
            .spawn(move || udp_loop(&udp, &r2, &s2))?;
        Ok(Self {
            name: name.to_string(),
            port,
            stop,
            threads: vec![t_tcp, t_udp],
        })
    }

    /// The name this server answers with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops both loops and waits for them (idempotent).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for PodServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tcp_loop(l: &TcpListener, reply: &[u8], stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = s.write_all(reply);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn udp_loop(u: &UdpSocket, reply: &[u8], stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((_, peer)) = u.recv_from(&mut buf) {
            let _ = u.send_to(reply, peer);
        }
    }
}

/// Serves `name` on `port` until the process ends (for the `podserver` example binary).
pub fn serve(name: &str, port: u16) -> io::Result<()> {
    let _server = PodServer::start(name, port)?;
    loop {
        std::thread::park();
    }
}

fn parse_reply(buf: &[u8]) -> io::Result<String> {
    let s = std::str::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let name = s.strip_suffix('\n').unwrap_or(s);
    if name.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty reply"));
    }
    Ok(name.to_string())
}

/// Connects to `addr` over TCP and returns the answering pod's name.
pub fn tcp_ask(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let mut buf = Vec::with_capacity(64);
    s.read_to_end(&mut buf)?;
    parse_reply(&buf)
}

/// Sends one UDP datagram to `addr` and returns the answering pod's name.
pub fn udp_ask(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let u = UdpSocket::bind(local)?;
    u.connect(addr)?;
    u.set_read_timeout(Some(timeout))?;
    u.send(b"who\n")?;
    let mut buf = [0u8; 512];
    let n = u.recv(&mut buf)?;
    parse_reply(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_parsing() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"pod-1-1\n", Some("pod-1-1")),
            (b"x", Some("x")),
            (b"\n", None),
            (b"", None),
            (b"\xff\n", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_reply(input).ok().as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn serves_tcp_and_udp_on_loopback() {
        // Port 0 is not usable for both sockets at once, so pick a free TCP port and retry.
        let mut server = None;
        for _ in 0..20 {
            let port = TcpListener::bind("[::1]:0")
                .and_then(|l| l.local_addr())
                .expect("probe")
                .port();
            if let Ok(s) = PodServer::start("pod-x", port) {
                server = Some(s);
                break;
            }
        }
        let mut server = server.expect("bind a free port");
        let t = Duration::from_secs(2);
        for ip in ["127.0.0.1", "::1"] {
            let addr = SocketAddr::new(ip.parse().expect("ip"), server.port());
            assert_eq!(tcp_ask(addr, t).expect("tcp"), "pod-x");
            assert_eq!(udp_ask(addr, t).expect("udp"), "pod-x");
        }
        server.stop();
        let addr = SocketAddr::new("127.0.0.1".parse().expect("ip"), server.port());
        assert!(tcp_ask(addr, t).is_err(), "stopped server must not answer");
    }
}
