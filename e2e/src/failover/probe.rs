//! The client's probe stream and its pure analysis.
//!
//! A [`Probe`] runs on a thread in the client namespace: `flows` connected UDP sockets (one
//! source port each, so the router's L4 ECMP hash spreads them over the nodes) each send a
//! datagram to the target every `interval`; every reply (the answering pod's name,
//! `pod-<node>-<j>`) is recorded with its arrival time and the node it came through.
//! [`outages`] then finds, for the flows that were using the failed node, the largest gap
//! between successful replies until the flow is answered through another node: the outage
//! that flow's user saw. Silence up to the end of the recording counts as a gap, and a reply
//! through the failed node itself after the failure command started (the link may go down
//! only later, and a loaded probe thread may read a queued reply late) is not a recovery.
//! Gaps of the other flows, and of affected flows after their recovery, are the
//! *collateral* gap: anything but a few probe intervals means the lab itself was disturbed
//! (e.g. BFD sessions of healthy nodes flapping on an overloaded machine).

use std::io::ErrorKind;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::netns;
use crate::lab::{LabError, LabResult};

/// One reply received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Flow (socket) index.
    pub flow: u16,
    /// Arrival time since the probe started.
    pub at: Duration,
    /// Node of the answering pod (from its name `pod-<node>-<j>`).
    pub node: u8,
}

/// The node of a pod name `pod-<node>-<j>`.
pub fn pod_node(name: &str) -> Option<u8> {
    let rest = name.strip_prefix("pod-")?;
    let (node, j) = rest.split_once('-')?;
    j.parse::<u8>().ok()?;
    node.parse().ok()
}

/// A running probe stream. Stops on drop.
#[derive(Debug)]
pub struct Probe {
    start: Instant,
    flows: u16,
    replies: Arc<Mutex<Vec<Reply>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<LabResult<(u64, Duration)>>>,
}

/// What a stopped [`Probe`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Datagrams sent.
    pub sent: u64,
    /// Every reply, in arrival order per flow.
    pub replies: Vec<Reply>,
    /// Start of the probe thread's last receive sweep (since the probe started): no reply
    /// that arrived before it is missing from `replies`, so silence up to here is real.
    pub end: Duration,
}

fn lock(m: &Mutex<Vec<Reply>>) -> MutexGuard<'_, Vec<Reply>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Probe {
    /// Starts `flows` UDP flows from namespace `ns` to `target`, each probing every
    /// `interval`.
    pub fn start(ns: &str, target: SocketAddr, flows: u16, interval: Duration) -> LabResult<Probe> {
        let step = format!("start probe stream to {target} from {ns}");
        if flows == 0 || interval.is_zero() {
            return Err(LabError::new(
                step,
                "flows and interval must be non-zero",
                None,
            ));
        }
        let replies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r2, s2) = (replies.clone(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Instant, String>>();
        let thread = netns::spawn_in(ns, "flb-probe", move || {
            let local: SocketAddr = if target.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let mut socks = Vec::new();
            for _ in 0..flows {
                let s = UdpSocket::bind(local)
                    .and_then(|u| u.connect(target).map(|()| u))
                    .and_then(|u| u.set_nonblocking(true).map(|()| u));
                match s {
                    Ok(u) => socks.push(u),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(LabError::new("open probe sockets", e.to_string(), None));
                    }
                }
            }
            let start = Instant::now();
            let _ = ready_tx.send(Ok(start));
            let mut sent = 0u64;
            let mut next = start;
            let mut buf = [0u8; 256];
            let mut end = Duration::ZERO;
            while !s2.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now >= next {
                    for s in &socks {
                        if s.send(b"probe\n").is_ok() {
                            sent += 1;
                        }
                    }
                    next += interval;
                    if next < now {
                        next = now + interval;
                    }
                }
                let mut got = Vec::new();
                let sweep = start.elapsed();
                for (i, s) in socks.iter().enumerate() {
                    loop {
                        match s.recv(&mut buf) {
                            Ok(n) => {
                                let at = start.elapsed();
                                let name = std::str::from_utf8(&buf[..n]).unwrap_or("");
                                if let Some(node) = pod_node(name.trim_end()) {
                                    got.push(Reply {
                                        flow: i as u16,
                                        at,
                                        node,
                                    });
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            // ICMP errors (unreachable, refused) surface here; keep probing.
                            Err(_) => break,
                        }
                    }
                }
                if !got.is_empty() {
                    lock(&r2).extend(got);
                }
                end = sweep;
                std::thread::sleep(Duration::from_micros(100));
            }
            Ok((sent, end))
        })?;
        let start = match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(LabError::new(step, e, None)),
            Err(_) => return Err(LabError::new(step, "the probe thread did not start", None)),
        };
        Ok(Probe {
            start,
            flows,
            replies,
            stop,
            thread: Some(thread),
        })
    }

    /// Time since the probe started (the time base of [`Reply::at`]).
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The probe's time of instant `t`.
    pub fn at(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// Number of flows.
    pub fn flows(&self) -> u16 {
        self.flows
    }

    /// A copy of the replies so far.
    pub fn replies(&self) -> Vec<Reply> {
        lock(&self.replies).clone()
    }

    /// The node each flow's latest reply came through (`None`: no reply yet).
    pub fn current_nodes(&self) -> Vec<Option<u8>> {
        let mut v = vec![None; usize::from(self.flows)];
        for r in lock(&self.replies).iter() {
            v[usize::from(r.flow)] = Some(r.node);
        }
        v
    }

    /// Stops the stream; returns what it recorded.
    pub fn stop(mut self) -> LabResult<Recording> {
        self.stop.store(true, Ordering::SeqCst);
        let (sent, end) = match self.thread.take() {
            Some(t) => t.join().map_err(|_| {
                LabError::new("stop probe stream", "the probe thread panicked", None)
            })??,
            None => (0, self.elapsed()),
        };
        Ok(Recording {
            sent,
            replies: lock(&self.replies).clone(),
            end,
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The outage one flow saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOutage {
    /// Flow index.
    pub flow: u16,
    /// Largest gap between consecutive replies, from the last reply before the failure up to
    /// the first reply through another node.
    pub gap: Duration,
    /// Node of that first reply through another node (where the flow recovered).
    pub recovered_via: u8,
}

/// What [`outages`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutageReport {
    /// Flows whose last reply before the failure came through the failed node and that were
    /// answered through another node afterwards.
    pub affected: Vec<FlowOutage>,
    /// Flows whose last reply before the failure came through the failed node and that got
    /// no reply through another node before the end of the recording.
    pub unrecovered: Vec<u16>,
    /// Flows with no reply before the failure (not usable).
    pub silent: Vec<u16>,
    /// Largest gap (silence up to the end included) of the flows that were not through the
    /// failed node, and of affected flows after their recovery: what the failure should not
    /// have caused (`None`: no such flow).
    pub collateral: Option<Duration>,
}

impl OutageReport {
    /// The largest gap of any affected flow (the client-seen outage).
    pub fn worst(&self) -> Option<Duration> {
        self.affected.iter().map(|f| f.gap).max()
    }
}

/// Largest gap between consecutive arrival times in `rs`, and from the last one to `end`.
fn largest_gap(rs: &[&Reply], end: Option<Duration>) -> Duration {
    let between = rs
        .windows(2)
        .map(|w| w[1].at.saturating_sub(w[0].at))
        .max()
        .unwrap_or_default();
    let trailing = match (end, rs.last()) {
        (Some(e), Some(last)) => e.saturating_sub(last.at),
        _ => Duration::ZERO,
    };
    between.max(trailing)
}

/// Per flow: was it using `failed` when the node failed at `fail_at`, and how long did it go
/// without a reply until it was answered through another node. `end` is when the recording
/// ends ([`Recording::end`]): a flow silent until then has not recovered, and silence up to
/// it counts in the collateral gap. `replies` must be in arrival order per flow (as
/// [`Probe`] records them).
pub fn outages(
    replies: &[Reply],
    flows: u16,
    fail_at: Duration,
    end: Duration,
    failed: u8,
) -> OutageReport {
    let mut rep = OutageReport::default();
    let mut collateral: Option<Duration> = None;
    let mut note = |g: Duration| collateral = Some(collateral.map_or(g, |c| c.max(g)));
    for f in 0..flows {
        let mine: Vec<&Reply> = replies.iter().filter(|r| r.flow == f).collect();
        let Some(last_before) = mine.iter().rposition(|r| r.at < fail_at) else {
            rep.silent.push(f);
            continue;
        };
        let after = &mine[last_before..];
        if after[0].node != failed {
            note(largest_gap(after, Some(end)));
            continue;
        }
        // Replies through the failed node after `fail_at` do not end the outage: the node's
        // links may go down only after the failure command started.
        let Some(k) = after.iter().position(|r| r.node != failed) else {
            rep.unrecovered.push(f);
            continue;
        };
        rep.affected.push(FlowOutage {
            flow: f,
            gap: largest_gap(&after[..=k], None),
            recovered_via: after[k].node,
        });
        note(largest_gap(&after[k..], Some(end)));
    }
    rep.collateral = collateral;
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(flow: u16, ms: u64, node: u8) -> Reply {
        Reply {
            flow,
            at: Duration::from_millis(ms),
            node,
        }
    }

    #[test]
    fn pod_names() {
        let cases = [
            ("pod-1-2", Some(1)),
            ("pod-12-1", Some(12)),
            ("pod-1", None),
            ("pod-x-1", None),
            ("node-1-1", None),
            ("pod-1-x", None),
        ];
        for (n, want) in cases {
            assert_eq!(pod_node(n), want, "{n}");
        }
    }

    #[test]
    fn outage_of_flows_through_the_failed_node() {
        let replies = [
            r(0, 0, 2),
            r(1, 0, 1),
            r(0, 10, 2),
            r(1, 10, 1),
            // node 2 fails at 15 ms: flow 0 is silent until 350 ms, then answered by node 3.
            r(1, 20, 1),
            r(1, 30, 1),
            r(0, 350, 3),
            r(0, 360, 3),
            r(1, 360, 1),
        ];
        let rep = outages(&replies, 3, ms(15), ms(362), 2);
        assert_eq!(
            rep.affected,
            vec![FlowOutage {
                flow: 0,
                gap: ms(340),
                recovered_via: 3
            }]
        );
        assert_eq!(rep.worst(), Some(ms(340)));
        assert_eq!(rep.silent, vec![2]);
        assert!(rep.unrecovered.is_empty());
        // Flow 1 (node 1) was silent from 30 to 360 ms: collateral, not the failover.
        assert_eq!(rep.collateral, Some(ms(330)));

        let rep = outages(&replies[..4], 2, ms(15), ms(20), 2);
        assert_eq!(rep.unrecovered, vec![0]);
        assert_eq!(rep.worst(), None);
        assert_eq!(rep.collateral, Some(ms(10)));

        let rep = outages(&replies, 2, ms(15), ms(362), 9);
        assert!(rep.affected.is_empty() && rep.unrecovered.is_empty());
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Flows 0 (node 3, the failed one), 1 (node 1) and 2 (node 2) probed every 2 ms from 0
    /// to 100 ms; node 3 fails at 100 ms. `tail` adds each case's replies after that.
    fn with_tail(tail: &[(u16, u64, u8)]) -> Vec<Reply> {
        let mut v = Vec::new();
        for t in (0..100).step_by(2) {
            for (f, n) in [(0, 3), (1, 1), (2, 2)] {
                v.push(r(f, t, n));
            }
        }
        v.extend(tail.iter().map(|&(f, t, n)| r(f, t, n)));
        v
    }

    fn steady(flow: u16, node: u8, from: u64, to: u64) -> Vec<(u16, u64, u8)> {
        (from..to).step_by(2).map(|t| (flow, t, node)).collect()
    }

    #[test]
    fn outage_table() {
        struct Case {
            name: &'static str,
            tail: Vec<(u16, u64, u8)>,
            end: u64,
            affected: Vec<(u16, u64, u8)>,
            unrecovered: Vec<u16>,
            collateral: Option<u64>,
        }
        let cat = |parts: Vec<Vec<(u16, u64, u8)>>| parts.concat();
        let cases = [
            Case {
                name: "clean failover: 330 ms of silence, then node 1",
                tail: cat(vec![
                    steady(0, 1, 428, 800),
                    steady(1, 1, 100, 800),
                    steady(2, 2, 100, 800),
                ]),
                end: 800,
                affected: vec![(0, 330, 1)],
                unrecovered: vec![],
                collateral: Some(2),
            },
            Case {
                // The demo's bug (seen under load: "6 flows, 491 ms detection, 6 ms
                // outage"): the node's links went down only a few ms after the failure
                // command started, so the flow got replies through node 3 after `fail_at`,
                // then nothing until the recording stopped. The old analysis counted those
                // replies as the recovery and ignored the trailing silence: a 2 ms outage.
                name: "replies through the failed node after fail_at, then silence",
                tail: cat(vec![
                    steady(0, 3, 100, 110),
                    steady(1, 1, 100, 800),
                    steady(2, 2, 100, 800),
                ]),
                end: 800,
                affected: vec![],
                unrecovered: vec![0],
                collateral: Some(2),
            },
            Case {
                name: "late replies through the failed node are part of the outage",
                tail: cat(vec![
                    steady(0, 3, 100, 110),
                    steady(0, 2, 450, 800),
                    steady(1, 1, 100, 800),
                    steady(2, 2, 100, 800),
                ]),
                end: 800,
                affected: vec![(0, 342, 2)],
                unrecovered: vec![],
                collateral: Some(2),
            },
            Case {
                // The router dropped every next hop (healthy nodes' BFD flapped on an
                // overloaded machine): every flow goes silent up to the end.
                name: "lab collapse after the recovery shows as collateral",
                tail: cat(vec![
                    steady(0, 1, 300, 400),
                    steady(1, 1, 100, 400),
                    steady(2, 2, 100, 400),
                ]),
                end: 900,
                affected: vec![(0, 202, 1)],
                unrecovered: vec![],
                collateral: Some(502),
            },
            Case {
                name: "a healthy flow rehashed to another node without a gap",
                tail: cat(vec![
                    steady(0, 1, 400, 600),
                    steady(1, 1, 100, 600),
                    steady(2, 2, 100, 350),
                    steady(2, 1, 350, 600),
                ]),
                end: 600,
                affected: vec![(0, 302, 1)],
                unrecovered: vec![],
                collateral: Some(2),
            },
            Case {
                name: "recording stopped before any recovery",
                tail: cat(vec![steady(1, 1, 100, 300), steady(2, 2, 100, 300)]),
                end: 300,
                affected: vec![],
                unrecovered: vec![0],
                collateral: Some(2),
            },
        ];
        for c in cases {
            let replies = with_tail(&c.tail);
            let rep = outages(&replies, 3, ms(100), ms(c.end), 3);
            let want: Vec<FlowOutage> = c
                .affected
                .iter()
                .map(|&(flow, gap, via)| FlowOutage {
                    flow,
                    gap: ms(gap),
                    recovered_via: via,
                })
                .collect();
            assert_eq!(rep.affected, want, "{}", c.name);
            assert_eq!(rep.unrecovered, c.unrecovered, "{}", c.name);
            assert_eq!(rep.collateral, c.collateral.map(ms), "{}", c.name);
            assert!(rep.silent.is_empty(), "{}", c.name);
        }
    }
}
