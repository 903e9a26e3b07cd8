//! The task of one BGP peer: drives [`crate::bgp::fsm::Fsm`] with socket and
//! timer events and executes its actions (connect, send, timers), keeps the
//! Adj-RIB-Out in step with the desired route set, handles connection
//! collisions and tears the session down when the peer's BFD session drops.
//!
//! # Graceful restart (RFC 4724)
//!
//! With graceful restart configured the capability is in every OPEN, with the
//! Forwarding State bit set per family (the node's forwarding plane does not
//! depend on this process, so it survives a speaker restart), and:
//!
//! - **Restart State (R) bit** (§4.1): set in the OPENs of a task until its
//!   first session reaches Established, clear afterwards. A process cannot tell
//!   a restart after a crash from a first start, so it claims a restart every
//!   time it starts. That is harmless on a first start: the only duty R puts
//!   on the receiving speaker (§3) is not to wait for our End-of-RIB before
//!   sending its own routes, and a receiver without stale routes from us has
//!   nothing to keep or flush. Later sessions of the same task are reconnects
//!   of a running process and carry R clear. A task restarted by a
//!   configuration change starts over with R set; the old session ended with a
//!   Cease, after which the receiver holds no stale routes (see the last point).
//!   A `restarting: true` in the configuration sets R in every session.
//! - **End-of-RIB** follows the initial Adj-RIB-Out only once the manager has
//!   handed this task a route set (a `set_routes` reaching it, or a non-empty
//!   set present when it started). A freshly restarted process has an empty
//!   set until its agent has synced its caches; sending End-of-RIB before
//!   would tell the receiver the RIB is complete and make it flush the stale
//!   routes it keeps for us, breaking traffic through this node. There is no
//!   deadline: if the routes never come (API server unreachable after the
//!   restart), the receiver keeps forwarding on the stale routes until its own
//!   stale-path timer (FRR: `bgp graceful-restart stalepath-time`, 360 s).
//!   Without graceful restart the receiver keeps nothing, so End-of-RIB goes
//!   out as soon as the initial (possibly empty) table is sent.
//! - **BFD**: a killed process also stops answering BFD, and a router treats
//!   BFD Down as a forwarding failure: it ends the session without graceful
//!   restart and removes the routes (FRR sends Cease/BFD Down, RFC 9384),
//!   unless it runs `bfd check-control-plane-failure` and our Control Plane
//!   Independent (C) bit is clear (RFC 5882 §4.3); ours is clear, as this BFD
//!   shares fate with the control plane. In practice the kernel closes a killed
//!   process's TCP connections at once, so the router sees the session end and
//!   starts helping the restart before BFD times out (3 × the interval), and
//!   FRR (8.4) keeps the stale routes through the later BFD Down; the e2e suite
//!   `suite_gr` shows it with and without BFD. A dead node sends no FIN: BFD
//!   detects it first and its routes go, as they should.
//! - A stop (SIGTERM, peer removed) sends a Cease: without RFC 8538's N bit,
//!   which this speaker does not advertise, a NOTIFICATION ends the session
//!   without graceful restart and the router withdraws our routes at once.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use super::config::PeerConfig;
use super::conn::{self, Conn, ReadEvent};
use super::status::{DownCause, PeerStatus, SessionEvent, StatusMap};
use crate::bfd::packet::SessionState as BfdState;
use crate::bgp::codec::{
    DecodeContext, Frame, Message, Notification, UpdateHandling, decode_message, decode_open,
    encode_keepalive, err, msg_type,
};
use crate::bgp::fsm::{Action, Event, Fsm, FsmConfig, State, TimerKind, collision_keeps_local};
use crate::bgp::open::{
    Family, GracefulRestartConfig, LocalConfig, Negotiated, encode_local_open, negotiate,
};
use crate::bgp::update::{RibDiff, RouteSet, UpdateContext, build_diff_updates, end_of_rib};

/// Prefixes put into one write-queue buffer; bounds a buffer to about 100 KiB.
const UPDATE_CHUNK: usize = 1024;
/// How long an incoming connection that collides may take to send its OPEN.
const PENDING_OPEN_WAIT: Duration = Duration::from_secs(30);
/// The send queue may stay full this long (or the hold time if longer)
/// before the session is dropped.
const MIN_STALL: Duration = Duration::from_secs(10);

/// Commands from the manager to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// An accepted connection from the peer's address.
    Incoming(TcpStream),
    /// Stop the session, sending this NOTIFICATION if connected, and end the task.
    Stop(Notification),
}

/// State shared by all tasks of a manager.
#[derive(Debug)]
pub(crate) struct Shared {
    pub status: watch::Sender<StatusMap>,
    pub events: broadcast::Sender<SessionEvent>,
}

impl Shared {
    pub fn event(&self, e: SessionEvent) {
        // No subscriber is fine.
        let _ = self.events.send(e);
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut PeerStatus)) {
        self.status.send_if_modified(|m| match m.get_mut(id) {
            Some(s) => {
                f(s);
                true
            }
            None => false,
        });
    }
}

struct Pending {
    conn: Conn,
    deadline: Instant,
}

enum Wake {
    Cmd(Option<PeerCmd>),
    Connected(Result<io::Result<TcpStream>, JoinError>),
    Frames(Option<ReadEvent>),
    Pending(Option<ReadEvent>),
    Routes(bool),
    Bfd(bool),
    Permit(Option<mpsc::OwnedPermit<Vec<u8>>>),
    Timer,
}

/// One peer's session task.
pub(crate) struct PeerTask {
    cfg: PeerConfig,
    local: LocalConfig,
    fsm: Fsm,
    shared: Arc<Shared>,
    cmd_rx: mpsc::Receiver<PeerCmd>,
    routes_rx: watch::Receiver<Arc<RouteSet>>,
    bfd_rx: watch::Receiver<Option<BfdState>>,
    last_bfd: Option<BfdState>,
    conn: Option<Conn>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    pending: Option<Pending>,
    negotiated: Option<Negotiated>,
    timers: [Option<Instant>; 4],
    desired: Arc<RouteSet>,
    /// What the peer holds from us; shares `desired` once the two are equal (copied on
    /// the next change).
    advertised: Arc<RouteSet>,
    rejected: BTreeSet<IpNet>,
    dirty: bool,
    eor_pending: bool,
    /// The manager has handed this task a route set; End-of-RIB waits for it.
    routes_handed: bool,
    down_override: Option<DownCause>,
    deferred: VecDeque<Event>,
}

fn timer_index(k: TimerKind) -> usize {
    match k {
        TimerKind::ConnectRetry => 0,
        TimerKind::Hold => 1,
        TimerKind::Keepalive => 2,
        TimerKind::IdleHold => 3,
    }
}

const TIMER_EVENTS: [Event; 4] = [
    Event::ConnectRetryTimerExpires,
    Event::HoldTimerExpires,
    Event::KeepaliveTimerExpires,
    Event::IdleHoldTimerExpires,
];

async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn join_opt<T>(h: Option<&mut JoinHandle<T>>) -> Result<T, JoinError> {
    match h {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

async fn reserve_opt<T>(tx: Option<mpsc::Sender<T>>) -> Option<mpsc::OwnedPermit<T>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl PeerTask {
    pub fn new(
        cfg: PeerConfig,
        shared: Arc<Shared>,
        cmd_rx: mpsc::Receiver<PeerCmd>,
        routes_rx: watch::Receiver<Arc<RouteSet>>,
        bfd_rx: watch::Receiver<Option<BfdState>>,
    ) -> Self {
        let local = LocalConfig {
            local_as: cfg.local_as,
            hold_time: cfg.hold_time,
            keepalive: cfg.keepalive,
            router_id: cfg.router_id,
            families: cfg.effective_families(),
            // R bit set until the first session is established (module docs).
            graceful_restart: cfg.graceful_restart.map(|g| GracefulRestartConfig {
                restarting: true,
                ..g
            }),
        };
        let fsm = Fsm::new(FsmConfig {
            connect_retry_initial: cfg.connect_time,
            connect_retry_max: cfg.connect_time.max(Duration::from_secs(30)),
            passive: cfg.passive,
            auto_restart: true,
            ..FsmConfig::default()
        });
        let desired = routes_rx.borrow().clone();
        // The manager starts a task with an empty set unless routes were set for
        // it; only graceful restart needs to wait for them (module docs).
        let routes_handed = !desired.is_empty() || cfg.graceful_restart.is_none();
        Self {
            cfg,
            local,
            fsm,
            shared,
            cmd_rx,
            routes_rx,
            bfd_rx,
            last_bfd: None,
            conn: None,
            connecting: None,
            pending: None,
            negotiated: None,
            timers: [None; 4],
            desired,
            advertised: Arc::default(),
            rejected: BTreeSet::new(),
            dirty: true,
            eor_pending: false,
            routes_handed,
            down_override: None,
            deferred: VecDeque::new(),
        }
    }

    fn id(&self) -> &str {
        &self.cfg.id
    }

    /// End-of-RIB is owed and may go out (after the first route set arrived).
    fn eor_due(&self) -> bool {
        self.eor_pending && self.routes_handed
    }

    fn status(&self, f: impl FnOnce(&mut PeerStatus)) {
        self.shared.update(&self.cfg.id, f);
    }

    /// Runs until stopped by the manager.
    pub async fn run(mut self) {
        self.feed(if self.cfg.passive {
            Event::ManualStartWithPassiveTcpEstablishment
        } else {
            Event::ManualStart
        });
        loop {
            match self.wait().await {
                Wake::Cmd(None) => {
                    self.stop(Notification::cease(err::CEASE_PEER_DECONFIGURED));
                    return;
                }
                Wake::Cmd(Some(PeerCmd::Stop(n))) => {
                    self.stop(n);
                    return;
                }
                Wake::Cmd(Some(PeerCmd::Incoming(s))) => self.incoming(s),
                Wake::Connected(r) => {
                    self.connecting = None;
                    match r {
                        Ok(Ok(stream)) => match Conn::start(stream, true) {
                            Ok(c) => {
                                self.conn = Some(c);
                                self.feed(Event::TcpCrAcked);
                            }
                            Err(e) => self.connect_failed(e.to_string()),
                        },
                        Ok(Err(e)) => self.connect_failed(e.to_string()),
                        Err(e) => self.connect_failed(e.to_string()),
                    }
                }
                Wake::Frames(Some(ReadEvent::Frames(frames))) => self.on_frames(frames),
                Wake::Frames(Some(ReadEvent::HeaderError(n))) => self.feed(Event::BgpHeaderErr(n)),
                Wake::Frames(Some(ReadEvent::Closed(e))) => self.conn_closed(e),
                Wake::Frames(None) => self.conn_closed(None),
                Wake::Pending(ev) => self.on_pending(ev),
                Wake::Routes(true) => {
                    self.desired = self.routes_rx.borrow_and_update().clone();
                    self.rejected.clear();
                    self.dirty = true;
                    self.routes_handed = true;
                }
                Wake::Routes(false) | Wake::Bfd(false) => {
                    self.stop(Notification::cease(err::CEASE_PEER_DECONFIGURED));
                    return;
                }
                Wake::Bfd(true) => {
                    let new = *self.bfd_rx.borrow_and_update();
                    self.on_bfd(new);
                }
                Wake::Permit(Some(p)) => self.pump(p),
                Wake::Permit(None) => self.conn_closed(Some("writer stopped".into())),
                Wake::Timer => self.fire_timers(),
            }
        }
    }

    async fn wait(&mut self) -> Wake {
        let tx = if self.fsm.state() == State::Established && (self.dirty || self.eor_due()) {
            self.conn.as_ref().map(|c| c.tx.clone())
        } else {
            None
        };
        let deadline = self
            .timers
            .iter()
            .flatten()
            .copied()
            .chain(self.pending.as_ref().map(|p| p.deadline))
            .min();
        // Priorities: commands, then timers (keepalives and the hold timer must
        // not starve behind a flood of input), then everything else; input
        // last, as it is the only source that can stay ready indefinitely.
        tokio::select! {
            biased;
            c = self.cmd_rx.recv() => Wake::Cmd(c),
            _ = sleep_opt(deadline) => Wake::Timer,
            r = self.bfd_rx.changed() => Wake::Bfd(r.is_ok()),
            r = join_opt(self.connecting.as_mut()) => Wake::Connected(r),
            r = self.routes_rx.changed() => Wake::Routes(r.is_ok()),
            p = reserve_opt(tx) => Wake::Permit(p),
            e = recv_opt(self.conn.as_mut().map(|c| &mut c.frames)) => Wake::Frames(e),
            e = recv_opt(self.pending.as_mut().map(|p| &mut p.conn.frames)) => Wake::Pending(e),
        }
    }

    /// Feeds an event and everything it leads to.
    fn feed(&mut self, ev: Event) {
        self.deferred.push_back(ev);
        while let Some(ev) = self.deferred.pop_front() {
            let before = self.fsm.state();
            tracing::trace!(peer = %self.cfg.id, state = ?before, event = ev.name(), "bgp event");
            let actions = self.fsm.handle(ev);
            let after = self.fsm.state();
            if before != after {
                tracing::debug!(peer = %self.cfg.id, from = ?before, to = ?after, "bgp state");
                self.status(|s| s.state = after);
                self.shared.event(SessionEvent::StateChanged {
                    peer: self.cfg.id.clone(),
                    from: before,
                    to: after,
                });
            }
            for a in actions {
                self.exec(a);
            }
        }
    }

    fn exec(&mut self, a: Action) {
        match a {
            Action::Connect => {
                self.abort_connect();
                let cfg = self.cfg.clone();
                self.connecting = Some(tokio::spawn(async move { conn::connect(&cfg).await }));
            }
            Action::DropConnection => {
                if let Some(c) = self.conn.take() {
                    c.close();
                }
                self.abort_connect();
            }
            Action::SendOpen => match encode_local_open(&self.local) {
                Ok(open) => {
                    if let Some(c) = self.conn.as_mut()
                        && !c.open_sent
                    {
                        c.open_sent = true;
                        c.try_send(open);
                    }
                }
                Err(e) => {
                    tracing::error!(peer = %self.cfg.id, error = %e, "cannot encode OPEN");
                    self.status(|s| s.last_error = Some(e.to_string()));
                }
            },
            Action::SendKeepalive => self.send_keepalive(),
            Action::SendNotification(n) => {
                if let Some(c) = &self.conn {
                    c.try_send(n.encode());
                }
                self.notification_sent(n);
            }
            Action::SendUpdates => {
                self.advertised = Arc::default();
                self.dirty = true;
                self.eor_pending = true;
                self.status(|s| {
                    s.prefixes_advertised = 0;
                    s.end_of_rib_sent = false;
                });
            }
            Action::StartTimer(k, d) => self.timers[timer_index(k)] = Some(Instant::now() + d),
            Action::StopTimer(k) => self.timers[timer_index(k)] = None,
            Action::SessionEstablished { hold_time, .. } => {
                // Later sessions of this task are reconnects, not restarts.
                let forced = self.cfg.graceful_restart.is_some_and(|g| g.restarting);
                if let Some(gr) = self.local.graceful_restart.as_mut() {
                    gr.restarting = forced;
                }
                let peer_as = self.negotiated.as_ref().map(|n| n.peer_as);
                tracing::info!(peer = %self.cfg.id, hold_time, "bgp session established");
                self.status(|s| {
                    s.established_count += 1;
                    s.hold_time = Some(hold_time);
                    s.peer_as = peer_as;
                });
            }
            Action::SessionDown(reason) => {
                let cause = self.down_override.take().unwrap_or(DownCause::Fsm(reason));
                tracing::info!(peer = %self.cfg.id, ?cause, "bgp session down");
                self.advertised = Arc::default();
                self.eor_pending = false;
                self.status(|s| {
                    s.prefixes_advertised = 0;
                    s.end_of_rib_sent = false;
                    s.last_down = Some(cause.clone());
                });
                self.shared.event(SessionEvent::SessionDown {
                    peer: self.cfg.id.clone(),
                    cause,
                });
            }
        }
    }

    fn notification_sent(&self, n: Notification) {
        tracing::info!(peer = %self.cfg.id, notification = %n, "sent NOTIFICATION");
        self.status(|s| {
            s.notifications_sent += 1;
            s.last_notification_sent = Some(n.clone());
        });
        self.shared.event(SessionEvent::NotificationSent {
            peer: self.cfg.id.clone(),
            notification: n,
        });
    }

    /// Queues a KEEPALIVE. A full queue is fine for a while (the peer is slow);
    /// if it stays full past the hold time the peer has stopped reading and
    /// the connection is dropped.
    fn send_keepalive(&mut self) {
        let Some(c) = &self.conn else { return };
        if c.try_send(encode_keepalive()) {
            return;
        }
        let hold = Duration::from_secs(self.negotiated.as_ref().map_or(90, |n| n.hold_time).into());
        if c.write_stalled_for() > hold.max(MIN_STALL) {
            tracing::warn!(peer = %self.cfg.id, "peer stopped reading; dropping the session");
            self.down_override = Some(DownCause::SendQueueStalled);
            self.deferred.push_back(Event::TcpConnectionFails);
        }
    }

    /// Aborts an outgoing connect still in flight. One that never completed is recorded as
    /// the last error: the kernel got no answer (peer down, filtered, or a TCP-MD5
    /// mismatch, where the peer drops our SYNs without a reset).
    fn abort_connect(&mut self) {
        let Some(h) = self.connecting.take() else {
            return;
        };
        if !h.is_finished() {
            let hint = if self.cfg.password.is_some() {
                "no answer: peer down, filtered, or TCP-MD5 password mismatch"
            } else {
                "no answer: peer down or filtered"
            };
            let e = format!(
                "connect to {} timed out ({hint})",
                std::net::SocketAddr::new(self.cfg.peer_address, self.cfg.peer_port)
            );
            tracing::debug!(peer = %self.cfg.id, error = %e, "connect retry");
            self.status(|s| s.last_error = Some(e));
        }
        h.abort();
    }

    fn connect_failed(&mut self, e: String) {
        tracing::debug!(peer = %self.cfg.id, error = %e, "connect failed");
        self.status(|s| s.last_error = Some(e));
        self.feed(Event::TcpConnectionFails);
    }

    fn conn_closed(&mut self, e: Option<String>) {
        if let Some(e) = e {
            self.status(|s| s.last_error = Some(e));
        }
        self.feed(Event::TcpConnectionFails);
        // The FSM may keep the connection in OpenSent -> Active; it is dead anyway.
        if let Some(c) = self.conn.take() {
            c.close();
        }
        self.promote_pending_if_idle();
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        for (i, ev) in TIMER_EVENTS.iter().enumerate() {
            if self.timers[i].is_some_and(|d| d <= now) {
                self.timers[i] = None;
                self.feed(ev.clone());
            }
        }
        if let Some(p) = self.pending.take() {
            if p.deadline <= now {
                p.conn.close();
            } else {
                self.pending = Some(p);
            }
        }
        self.promote_pending_if_idle();
    }

    fn decode_ctx(&self) -> DecodeContext {
        self.negotiated
            .as_ref()
            .map(|n| DecodeContext {
                four_octet_as: n.four_octet_as,
                internal: n.internal,
            })
            .unwrap_or_default()
    }

    fn on_frames(&mut self, frames: Vec<Frame>) {
        let mut updates = 0u64;
        let mut prefixes = 0u64;
        let mut taw = 0u64;
        for f in frames {
            if self.conn.is_none() {
                break;
            }
            if f.msg_type == msg_type::OPEN {
                match decode_open(&f.bytes)
                    .and_then(|o| negotiate(&self.local, self.cfg.peer_as, &o))
                {
                    Ok(neg) => {
                        let (hold_time, keepalive) = (neg.hold_time, neg.keepalive);
                        self.negotiated = Some(neg);
                        self.feed(Event::BgpOpen {
                            hold_time,
                            keepalive,
                        });
                    }
                    Err(n) => self.feed(Event::BgpOpenMsgErr(n)),
                }
                continue;
            }
            match decode_message(&f.bytes, self.decode_ctx()) {
                Ok(Message::Update(s)) => {
                    updates += 1;
                    prefixes += (s.announced_v4 + s.announced_mp) as u64;
                    if s.handling == UpdateHandling::TreatAsWithdraw {
                        taw += 1;
                        tracing::debug!(peer = %self.cfg.id, reasons = ?s.reasons, "UPDATE treated as withdraw");
                    }
                    self.feed(Event::UpdateMsg);
                }
                Ok(Message::Keepalive) => self.feed(Event::KeepAliveMsg),
                Ok(Message::Notification(n)) => {
                    tracing::info!(peer = %self.cfg.id, notification = %n, "received NOTIFICATION");
                    let ver = n.code == err::OPEN && n.subcode == err::OPEN_UNSUPPORTED_VERSION;
                    self.status(|s| {
                        s.notifications_received += 1;
                        s.last_notification_received = Some(n.clone());
                    });
                    self.shared.event(SessionEvent::NotificationReceived {
                        peer: self.cfg.id.clone(),
                        notification: n,
                    });
                    self.feed(if ver {
                        Event::NotifMsgVerErr
                    } else {
                        Event::NotifMsg
                    });
                }
                Ok(Message::RouteRefresh(_)) => self.feed(Event::RouteRefreshMsg),
                Ok(Message::Open(_)) => {}
                Err(n) => self.feed(if f.msg_type == msg_type::UPDATE {
                    Event::UpdateMsgErr(n)
                } else {
                    Event::BgpHeaderErr(n)
                }),
            }
        }
        if updates > 0 {
            self.status(|s| {
                s.updates_received += updates;
                s.prefixes_received += prefixes;
                s.treat_as_withdraw += taw;
            });
        }
        self.promote_pending_if_idle();
    }

    /// An accepted connection from the peer.
    fn incoming(&mut self, stream: TcpStream) {
        if let Err(e) = conn::prepare_accepted(&stream, &self.cfg) {
            self.status(|s| s.last_error = Some(format!("accepted connection: {e}")));
            return;
        }
        let mut c = match Conn::start(stream, false) {
            Ok(c) => c,
            Err(e) => {
                self.status(|s| s.last_error = Some(format!("accepted connection: {e}")));
                return;
            }
        };
        tracing::debug!(peer = %self.cfg.id, remote = %c.remote, state = ?self.fsm.state(), "incoming connection");
        match self.fsm.state() {
            State::Idle => {
                self.feed(Event::AutomaticStartWithPassiveTcpEstablishment);
                self.adopt(c);
            }
            State::Connect | State::Active => self.adopt(c),
            State::OpenSent | State::OpenConfirm => {
                // Collision (RFC 4271 §6.8): run the OPEN exchange on the new
                // connection and decide once its OPEN names the peer's identifier.
                if let Ok(open) = encode_local_open(&self.local) {
                    c.open_sent = true;
                    c.try_send(open);
                }
                if let Some(old) = self.pending.replace(Pending {
                    conn: c,
                    deadline: Instant::now() + PENDING_OPEN_WAIT,
                }) {
                    old.conn.close();
                }
            }
            State::Established => {
                let n = Notification::cease(err::CEASE_COLLISION);
                c.try_send(n.encode());
                c.close();
                self.notification_sent(n);
            }
        }
    }

    /// Makes `c` the session's connection (FSM in Connect or Active).
    fn adopt(&mut self, c: Conn) {
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        if let Some(old) = self.conn.replace(c) {
            old.close();
        }
        self.feed(Event::TcpConnectionConfirmed);
    }

    fn on_pending(&mut self, ev: Option<ReadEvent>) {
        let Some(p) = self.pending.take() else { return };
        let frames = match ev {
            Some(ReadEvent::Frames(f)) => f,
            Some(ReadEvent::HeaderError(n)) => {
                p.conn.try_send(n.encode());
                p.conn.close();
                return;
            }
            _ => {
                p.conn.close();
                return;
            }
        };
        let mut it = frames.into_iter();
        let Some(first) = it.next() else {
            self.pending = Some(p);
            return;
        };
        if first.msg_type != msg_type::OPEN {
            let n = Notification::fsm(err::FSM_UNEXPECTED_IN_OPENSENT);
            if first.msg_type != msg_type::NOTIFICATION {
                p.conn.try_send(n.encode());
            }
            p.conn.close();
            return;
        }
        let neg = match decode_open(&first.bytes)
            .and_then(|o| negotiate(&self.local, self.cfg.peer_as, &o))
        {
            Ok(neg) => neg,
            Err(n) => {
                p.conn.try_send(n.encode());
                p.conn.close();
                return;
            }
        };
        let keep_existing = match &self.conn {
            // Our own connection survives if our identifier is higher (§6.8).
            Some(c) if c.outgoing => collision_keeps_local(
                self.cfg.router_id,
                neg.peer_router_id,
                self.cfg.local_as,
                neg.peer_as,
            ),
            // Two connections from the peer: it gave up on the older one.
            _ => false,
        };
        if keep_existing {
            let n = Notification::cease(err::CEASE_COLLISION);
            p.conn.try_send(n.encode());
            p.conn.close();
            self.notification_sent(n);
            return;
        }
        if matches!(
            self.fsm.state(),
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            self.feed(Event::OpenCollisionDump);
        }
        if self.fsm.state() == State::Idle {
            self.feed(Event::AutomaticStartWithPassiveTcpEstablishment);
        }
        self.adopt(p.conn);
        let (hold_time, keepalive) = (neg.hold_time, neg.keepalive);
        self.negotiated = Some(neg);
        self.feed(Event::BgpOpen {
            hold_time,
            keepalive,
        });
        let rest: Vec<Frame> = it.collect();
        if !rest.is_empty() {
            self.on_frames(rest);
        }
    }

    /// When the main connection is gone while a colliding one is still in its
    /// OPEN exchange, that one carries on (after its OPEN arrives).
    fn promote_pending_if_idle(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let Some(p) = self.pending.take() else {
            return;
        };
        tracing::debug!(peer = %self.cfg.id, remote = %p.conn.remote, "keeping the colliding connection");
        // Its OPEN has not arrived yet: adopt it now; the OPEN will be handled
        // as the main connection's (ours was already sent on it).
        if self.fsm.state() == State::Idle {
            self.feed(Event::AutomaticStartWithPassiveTcpEstablishment);
        }
        if matches!(self.fsm.state(), State::Connect | State::Active) {
            self.adopt(p.conn);
        } else {
            p.conn.close();
        }
    }

    fn on_bfd(&mut self, new: Option<BfdState>) {
        let old = self.last_bfd;
        self.last_bfd = new;
        self.status(|s| s.bfd = new);
        if old == Some(BfdState::Up)
            && new.is_some_and(|s| s != BfdState::Up)
            && self.conn.is_some()
        {
            let n = Notification::cease(err::CEASE_BFD_DOWN);
            if let Some(c) = &self.conn {
                c.try_send(n.encode());
            }
            self.notification_sent(n);
            tracing::info!(peer = %self.cfg.id, "BFD down: tearing the BGP session down");
            self.down_override = Some(DownCause::BfdDown);
            self.feed(Event::TcpConnectionFails);
            if let Some(c) = self.conn.take() {
                c.close();
            }
            self.down_override = None;
        }
    }

    /// Stops the session for good (peer removed or reconfigured).
    fn stop(&mut self, n: Notification) {
        let was_established = self.fsm.state() == State::Established;
        if let Some(c) = self.conn.take() {
            if matches!(
                self.fsm.state(),
                State::OpenSent | State::OpenConfirm | State::Established
            ) {
                c.try_send(n.encode());
                self.notification_sent(n);
            }
            c.close();
        }
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        if let Some(p) = self.pending.take() {
            p.conn.close();
        }
        if was_established {
            self.shared.event(SessionEvent::SessionDown {
                peer: self.cfg.id.clone(),
                cause: DownCause::Deconfigured,
            });
        }
    }

    fn update_ctx(&self) -> Option<UpdateContext> {
        let n = self.negotiated.as_ref()?;
        let local = self.conn.as_ref()?.local.ip();
        let local = match local {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(local),
            v4 => v4,
        };
        Some(UpdateContext {
            local_as: self.cfg.local_as,
            internal: n.internal,
            four_octet_as: n.four_octet_as,
            next_hop_v4: self.cfg.next_hop_v4.or(match local {
                std::net::IpAddr::V4(a) => Some(a),
                _ => None,
            }),
            next_hop_v6: self.cfg.next_hop_v6.or(match local {
                std::net::IpAddr::V6(a) => Some(a),
                _ => None,
            }),
            next_hop_v6_link_local: None,
        })
    }

    /// The next at most `max` changes that move the Adj-RIB-Out towards the
    /// desired routes this session can carry (withdrawals first); the same
    /// result as `bgp::update::diff` cut to size, without copying the tables.
    fn next_chunk(&self, families: &[Family], max: usize) -> RibDiff {
        let carried = |p: &IpNet| {
            let fam = match p {
                IpNet::V4(_) => Family::Ipv4Unicast,
                IpNet::V6(_) => Family::Ipv6Unicast,
            };
            families.contains(&fam) && !self.rejected.contains(p)
        };
        let mut d = RibDiff::default();
        for p in self.advertised.keys() {
            if d.withdraw.len() >= max {
                return d;
            }
            if !(carried(p) && self.desired.contains_key(p)) {
                d.withdraw.insert(*p);
            }
        }
        for (p, a) in self.desired.iter() {
            if d.withdraw.len() + d.announce.len() >= max {
                break;
            }
            if carried(p) && self.advertised.get(p) != Some(a) {
                d.announce.insert(*p, a.clone());
            }
        }
        d
    }

    /// Sends the next chunk of the Adj-RIB-Out diff (or End-of-RIB) into the permit.
    fn pump(&mut self, permit: mpsc::OwnedPermit<Vec<u8>>) {
        let (Some(ctx), Some(n)) = (self.update_ctx(), self.negotiated.as_ref()) else {
            return;
        };
        let families = n.families.clone();
        let chunk = self.next_chunk(&families, UPDATE_CHUNK);
        if chunk.is_empty() {
            self.dirty = false;
            if !Arc::ptr_eq(&self.advertised, &self.desired) && *self.advertised == *self.desired {
                self.advertised = self.desired.clone();
            }
            if self.eor_due() {
                self.eor_pending = false;
                let mut buf = Vec::new();
                for f in &families {
                    match end_of_rib(*f) {
                        Ok(m) => buf.extend_from_slice(&m),
                        Err(e) => tracing::error!(peer = %self.cfg.id, error = %e, "End-of-RIB"),
                    }
                }
                let count = families.len() as u64;
                permit.send(buf);
                self.status(|s| {
                    s.end_of_rib_sent = true;
                    s.updates_sent += count;
                });
                self.shared.event(SessionEvent::EndOfRibSent {
                    peer: self.cfg.id.clone(),
                });
            }
            return;
        }
        match build_diff_updates(&ctx, &chunk) {
            Ok(msgs) => {
                let count = msgs.len() as u64;
                permit.send(msgs.concat());
                let advertised = Arc::make_mut(&mut self.advertised);
                for p in &chunk.withdraw {
                    advertised.remove(p);
                }
                advertised.extend(chunk.announce);
                let adv = self.advertised.len();
                self.status(|s| {
                    s.updates_sent += count;
                    s.prefixes_advertised = adv;
                });
            }
            Err(e) => {
                // Find the routes that cannot be encoded and leave them out.
                let mut progressed = false;
                for (p, a) in &chunk.announce {
                    let one = RibDiff {
                        announce: [(*p, a.clone())].into_iter().collect(),
                        withdraw: BTreeSet::new(),
                    };
                    if let Err(e) = build_diff_updates(&ctx, &one) {
                        tracing::warn!(peer = %self.cfg.id, prefix = %p, error = %e, "route not advertised");
                        self.status(|s| s.last_error = Some(format!("{p}: {e}")));
                        progressed |= self.rejected.insert(*p);
                    }
                }
                if !progressed {
                    tracing::error!(peer = %self.cfg.id, error = %e, "cannot build UPDATEs");
                    self.dirty = false;
                }
                drop(permit);
            }
        }
    }
}

impl std::fmt::Debug for PeerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTask")
            .field("id", &self.id())
            .field("state", &self.fsm.state())
            .finish()
    }
}
