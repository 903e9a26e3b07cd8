//! Watches the IPv4 `proto bgp` routes of table main in one network namespace
//! through rtnetlink: one dump, then the RTMGRP_IPV4_ROUTE notifications, each
//! timestamped (CLOCK_MONOTONIC) when it is read. Far cheaper than spawning
//! `ip route show` every few ms, and exact to the message.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// Milliseconds from mono ns `a` to mono ns `b` (0 when `b` is earlier).
pub fn ms(a: u64, b: u64) -> f64 {
    b.saturating_sub(a) as f64 / 1e6
}

/// CLOCK_MONOTONIC in ns: one time base for this process, its children and
/// the watcher.
pub fn mono_ns() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTPROT_BGP: u8 = 186;
const RT_TABLE_MAIN: u8 = 254;
const RTA_DST: u16 = 1;

#[derive(Default)]
struct State {
    count: usize,
    target: Option<usize>,
    first: Option<u64>,
    hit: Option<u64>,
    overruns: u64,
}

/// A running watcher; stops on drop.
pub struct FibWatch {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FibWatch {
    /// Starts watching in the namespace `/run/netns/<ns>`.
    pub fn start(ns: &str) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let path = format!("/run/netns/{ns}");
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let sock = (|| -> anyhow::Result<OwnedFd> {
                setns(std::fs::File::open(&path)?, CloneFlags::CLONE_NEWNET)?;
                let fd = socket(
                    AddressFamily::Netlink,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::NetlinkRoute,
                )?;
                setsockopt(&fd, sockopt::RcvBufForce, &(64 << 20))?;
                setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 50_000))?;
                bind(fd.as_raw_fd(), &NetlinkAddr::new(0, RTMGRP_IPV4_ROUTE))?;
                Ok(fd)
            })();
            match sock {
                Ok(fd) => {
                    let _ = tx.send(Ok(()));
                    run(&fd, &st, &sp);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        rx.recv()??;
        Ok(Self {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The current number of routes.
    pub fn count(&self) -> usize {
        self.state.lock().expect("fibwatch lock").count
    }

    /// Netlink overruns seen (each followed by a fresh dump).
    pub fn overruns(&self) -> u64 {
        self.state.lock().expect("fibwatch lock").overruns
    }

    /// Arms the watcher: from now on record the first change and the moment
    /// the count equals `target`.
    pub fn arm(&self, target: usize) {
        let mut s = self.state.lock().expect("fibwatch lock");
        s.target = Some(target);
        s.first = None;
        s.hit = None;
    }

    /// Waits for the armed target: (first change, target reached), mono ns.
    pub fn wait(&self, timeout: Duration) -> Option<(u64, u64)> {
        let start = Instant::now();
        loop {
            {
                let s = self.state.lock().expect("fibwatch lock");
                if let Some(hit) = s.hit {
                    return Some((s.first.unwrap_or(hit), hit));
                }
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the count equals `n` (no timing).
    pub fn wait_count(&self, n: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.count() == n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dump(fd: &OwnedFd) {
    // nlmsghdr (16) + rtmsg (12), family AF_INET.
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(&28u32.to_ne_bytes());
    m.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
    m.extend_from_slice(&(0x1u16 | 0x300).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc_af_inet());
    m.extend_from_slice(&[0; 11]);
    let _ = sendto(
        fd.as_raw_fd(),
        &m,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    );
}

fn libc_af_inet() -> u8 {
    AddressFamily::Inet as i32 as u8
}

fn run(fd: &OwnedFd, state: &Mutex<State>, stop: &AtomicBool) {
    let mut routes: HashSet<(u32, u8)> = HashSet::new();
    let mut buf = vec![0u8; 1 << 18];
    dump(fd);
    while !stop.load(Ordering::Relaxed) {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(Errno::ENOBUFS) => {
                routes.clear();
                state.lock().expect("fibwatch lock").overruns += 1;
                dump(fd);
                continue;
            }
            Err(_) => break,
        };
        let ts = mono_ns();
        parse(&buf[..n], &mut routes);
        let mut s = state.lock().expect("fibwatch lock");
        if s.count != routes.len() {
            s.count = routes.len();
            if s.target.is_some() && s.first.is_none() {
                s.first = Some(ts);
            }
            if s.target == Some(s.count) && s.hit.is_none() {
                s.hit = Some(ts);
            }
        }
    }
}

fn parse(mut b: &[u8], routes: &mut HashSet<(u32, u8)>) {
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            return;
        }
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if (ty == RTM_NEWROUTE || ty == RTM_DELROUTE) && len >= 28 {
            let msg = &b[16..len];
            let (family, dst_len, table, proto) = (msg[0], msg[1], msg[4], msg[5]);
            if family == libc_af_inet() && proto == RTPROT_BGP && table == RT_TABLE_MAIN {
                let mut dst = 0u32;
                let mut a = &msg[12..];
                while a.len() >= 4 {
                    let alen = u16::from_ne_bytes([a[0], a[1]]) as usize;
                    let aty = u16::from_ne_bytes([a[2], a[3]]);
                    if alen < 4 || alen > a.len() {
                        break;
                    }
                    if aty == RTA_DST && alen >= 8 {
                        dst = u32::from_be_bytes([a[4], a[5], a[6], a[7]]);
                    }
                    a = &a[((alen + 3) & !3).min(a.len())..];
                }
                if ty == RTM_NEWROUTE {
                    routes.insert((dst, dst_len));
                } else {
                    routes.remove(&(dst, dst_len));
                }
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
}
