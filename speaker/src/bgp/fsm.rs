//! The BGP finite state machine of RFC 4271 §8 as a pure state machine.
//!
//! Events go in through [`Fsm::handle`], [`Action`]s come out; timers are
//! started and stopped by actions and their expiry comes back as events, so
//! there is no clock inside. Simplifications relative to the RFC's optional
//! attributes: DelayOpen and SendNOTIFICATIONwithoutOPEN are not used; instead
//! of DampPeerOscillations the IdleHold timer restarts the session after a
//! failure with exponential backoff (`initial` doubling to `max`, reset on
//! Established). Collision detection between two connections is done by the
//! session manager with [`collision_keeps_local`] and reported back as
//! [`Event::OpenCollisionDump`].

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::codec::{Notification, err};

/// FSM states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Refusing connections, waiting for a start event.
    Idle,
    /// Waiting for an outgoing TCP connection to complete.
    Connect,
    /// Waiting for the peer to connect.
    Active,
    /// OPEN sent, waiting for the peer's OPEN.
    OpenSent,
    /// OPEN exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Session up.
    Established,
}

impl State {
    /// All states, for exhaustive tests.
    pub const ALL: [State; 6] = [
        State::Idle,
        State::Connect,
        State::Active,
        State::OpenSent,
        State::OpenConfirm,
        State::Established,
    ];
}

/// Timers the FSM asks the I/O layer to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// ConnectRetryTimer.
    ConnectRetry,
    /// HoldTimer.
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// IdleHoldTimer: automatic restart after a failure (backoff).
    IdleHold,
}

const TIMERS: [TimerKind; 4] = [
    TimerKind::ConnectRetry,
    TimerKind::Hold,
    TimerKind::Keepalive,
    TimerKind::IdleHold,
];

/// FSM input events, named after RFC 4271 §8.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1.
    ManualStart,
    /// Event 2.
    ManualStop,
    /// Event 3.
    AutomaticStart,
    /// Event 4.
    ManualStartWithPassiveTcpEstablishment,
    /// Event 5.
    AutomaticStartWithPassiveTcpEstablishment,
    /// Event 8.
    AutomaticStop,
    /// Event 9.
    ConnectRetryTimerExpires,
    /// Event 10.
    HoldTimerExpires,
    /// Event 11.
    KeepaliveTimerExpires,
    /// Event 13.
    IdleHoldTimerExpires,
    /// Event 16: our outgoing connection completed.
    TcpCrAcked,
    /// Event 17: an incoming connection was accepted.
    TcpConnectionConfirmed,
    /// Event 18.
    TcpConnectionFails,
    /// Event 19: a valid OPEN; carries the negotiated hold time and keepalive (s).
    BgpOpen {
        /// Negotiated hold time in seconds (0 = none).
        hold_time: u16,
        /// Keepalive interval in seconds.
        keepalive: u16,
    },
    /// Event 21: message header error; the NOTIFICATION to send.
    BgpHeaderErr(Notification),
    /// Event 22: OPEN message error; the NOTIFICATION to send.
    BgpOpenMsgErr(Notification),
    /// Event 23: the session manager chose to drop this connection.
    OpenCollisionDump,
    /// Event 24: NOTIFICATION with a version error received.
    NotifMsgVerErr,
    /// Event 25: NOTIFICATION received.
    NotifMsg,
    /// Event 26.
    KeepAliveMsg,
    /// Event 27.
    UpdateMsg,
    /// Event 28: UPDATE error requiring a session reset; the NOTIFICATION to send.
    UpdateMsgErr(Notification),
    /// ROUTE-REFRESH received (RFC 2918; not an RFC 4271 event).
    RouteRefreshMsg,
}

impl Event {
    /// One instance of every event, for exhaustive tests.
    pub fn all() -> Vec<Event> {
        vec![
            Event::ManualStart,
            Event::ManualStop,
            Event::AutomaticStart,
            Event::ManualStartWithPassiveTcpEstablishment,
            Event::AutomaticStartWithPassiveTcpEstablishment,
            Event::AutomaticStop,
            Event::ConnectRetryTimerExpires,
            Event::HoldTimerExpires,
            Event::KeepaliveTimerExpires,
            Event::IdleHoldTimerExpires,
            Event::TcpCrAcked,
            Event::TcpConnectionConfirmed,
            Event::TcpConnectionFails,
            Event::BgpOpen {
                hold_time: 90,
                keepalive: 30,
            },
            Event::BgpHeaderErr(Notification::header(err::HDR_BAD_LENGTH, [0, 5])),
            Event::BgpOpenMsgErr(Notification::open(err::OPEN_BAD_PEER_AS, Vec::new())),
            Event::OpenCollisionDump,
            Event::NotifMsgVerErr,
            Event::NotifMsg,
            Event::KeepAliveMsg,
            Event::UpdateMsg,
            Event::UpdateMsgErr(Notification::update(
                err::UPD_MALFORMED_ATTR_LIST,
                Vec::new(),
            )),
            Event::RouteRefreshMsg,
        ]
    }

    /// Short name (the variant name).
    pub fn name(&self) -> &'static str {
        match self {
            Event::ManualStart => "ManualStart",
            Event::ManualStop => "ManualStop",
            Event::AutomaticStart => "AutomaticStart",
            Event::ManualStartWithPassiveTcpEstablishment => {
                "ManualStartWithPassiveTcpEstablishment"
            }
            Event::AutomaticStartWithPassiveTcpEstablishment => {
                "AutomaticStartWithPassiveTcpEstablishment"
            }
            Event::AutomaticStop => "AutomaticStop",
            Event::ConnectRetryTimerExpires => "ConnectRetryTimerExpires",
            Event::HoldTimerExpires => "HoldTimerExpires",
            Event::KeepaliveTimerExpires => "KeepaliveTimerExpires",
            Event::IdleHoldTimerExpires => "IdleHoldTimerExpires",
            Event::TcpCrAcked => "TcpCrAcked",
            Event::TcpConnectionConfirmed => "TcpConnectionConfirmed",
            Event::TcpConnectionFails => "TcpConnectionFails",
            Event::BgpOpen { .. } => "BgpOpen",
            Event::BgpHeaderErr(_) => "BgpHeaderErr",
            Event::BgpOpenMsgErr(_) => "BgpOpenMsgErr",
            Event::OpenCollisionDump => "OpenCollisionDump",
            Event::NotifMsgVerErr => "NotifMsgVerErr",
            Event::NotifMsg => "NotifMsg",
            Event::KeepAliveMsg => "KeepAliveMsg",
            Event::UpdateMsg => "UpdateMsg",
            Event::UpdateMsgErr(_) => "UpdateMsgErr",
            Event::RouteRefreshMsg => "RouteRefreshMsg",
        }
    }
}

/// Why an Established session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// ManualStop or AutomaticStop.
    Stopped,
    /// The hold timer expired.
    HoldTimerExpired,
    /// The TCP connection failed.
    ConnectionFailed,
    /// The peer sent a NOTIFICATION.
    PeerNotification,
    /// We sent this NOTIFICATION because of an error.
    LocalError(Notification),
    /// Lost a connection collision.
    Collision,
}

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an outgoing TCP connection to the peer.
    Connect,
    /// Close the TCP connection.
    DropConnection,
    /// Send our OPEN.
    SendOpen,
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send this NOTIFICATION (then the connection is dropped).
    SendNotification(Notification),
    /// Send the whole Adj-RIB-Out followed by End-of-RIB markers.
    SendUpdates,
    /// (Re)start a timer.
    StartTimer(TimerKind, Duration),
    /// Stop a timer.
    StopTimer(TimerKind),
    /// The session reached Established with these negotiated timers (s).
    SessionEstablished {
        /// Hold time in seconds.
        hold_time: u16,
        /// Keepalive interval in seconds.
        keepalive: u16,
    },
    /// An Established session went down.
    SessionDown(DownReason),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Connect => write!(f, "Connect"),
            Action::DropConnection => write!(f, "Drop"),
            Action::SendOpen => write!(f, "SendOpen"),
            Action::SendKeepalive => write!(f, "SendKeepalive"),
            Action::SendNotification(n) => write!(f, "Notify({}/{})", n.code, n.subcode),
            Action::SendUpdates => write!(f, "SendUpdates"),
            Action::StartTimer(k, d) => write!(f, "Start({k:?},{})", d.as_secs()),
            Action::StopTimer(k) => write!(f, "Stop({k:?})"),
            Action::SessionEstablished { .. } => write!(f, "Established"),
            Action::SessionDown(_) => write!(f, "Down"),
        }
    }
}

/// Static FSM configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsmConfig {
    /// Initial ConnectRetryTime (RFC default 120 s; MetalLB's `connectTime`).
    pub connect_retry_initial: Duration,
    /// Backoff cap for ConnectRetry and IdleHold.
    pub connect_retry_max: Duration,
    /// Only wait for the peer to connect.
    pub passive: bool,
    /// Restart automatically after errors (IdleHold timer).
    pub auto_restart: bool,
    /// Hold timer while waiting for the peer's OPEN (RFC suggests 4 minutes).
    pub large_hold_time: Duration,
}

impl Default for FsmConfig {
    fn default() -> Self {
        Self {
            connect_retry_initial: Duration::from_secs(5),
            connect_retry_max: Duration::from_secs(120),
            passive: false,
            auto_restart: true,
            large_hold_time: Duration::from_secs(240),
        }
    }
}

/// The BGP FSM for one connection to one peer.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    connect_retry_counter: u32,
    backoff: Duration,
    hold_time: u16,
    keepalive: u16,
    running: [bool; 4],
}

fn timer_index(k: TimerKind) -> usize {
    match k {
        TimerKind::ConnectRetry => 0,
        TimerKind::Hold => 1,
        TimerKind::Keepalive => 2,
        TimerKind::IdleHold => 3,
    }
}

impl Fsm {
    /// A new FSM in Idle.
    pub fn new(cfg: FsmConfig) -> Self {
        Self {
            cfg,
            state: State::Idle,
            connect_retry_counter: 0,
            backoff: cfg.connect_retry_initial,
            hold_time: 0,
            keepalive: 0,
            running: [false; 4],
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The RFC's ConnectRetryCounter.
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Current backoff (next ConnectRetry / IdleHold duration).
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// Whether the FSM believes `k` is running.
    pub fn timer_running(&self, k: TimerKind) -> bool {
        self.running[timer_index(k)]
    }

    fn start(&mut self, out: &mut Vec<Action>, k: TimerKind, d: Duration) {
        self.running[timer_index(k)] = true;
        out.push(Action::StartTimer(k, d));
    }

    fn stop(&mut self, out: &mut Vec<Action>, k: TimerKind) {
        if self.running[timer_index(k)] {
            self.running[timer_index(k)] = false;
            out.push(Action::StopTimer(k));
        }
    }

    /// One more consecutive failure: double the backoff up to the cap.
    fn bump_backoff(&mut self) -> Duration {
        self.backoff = (self.backoff * 2).min(self.cfg.connect_retry_max);
        self.backoff
    }

    /// Leaves for Idle: stop timers, optionally notify, drop, and schedule an
    /// automatic restart unless the stop was manual.
    fn go_idle(
        &mut self,
        out: &mut Vec<Action>,
        notify: Option<Notification>,
        reason: DownReason,
        manual: bool,
        count: bool,
    ) {
        let was_established = self.state == State::Established;
        let connected = self.state != State::Idle;
        if let Some(n) = notify {
            out.push(Action::SendNotification(n));
        }
        for k in TIMERS {
            self.stop(out, k);
        }
        if connected {
            out.push(Action::DropConnection);
        }
        if was_established {
            out.push(Action::SessionDown(reason));
        }
        if manual {
            self.connect_retry_counter = 0;
        } else {
            if count {
                self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
            }
            if self.cfg.auto_restart {
                let d = self.backoff;
                self.start(out, TimerKind::IdleHold, d);
                self.bump_backoff();
            }
        }
        self.state = State::Idle;
    }

    fn start_session(&mut self, out: &mut Vec<Action>, passive: bool) {
        self.connect_retry_counter = 0;
        self.stop(out, TimerKind::IdleHold);
        let d = self.backoff;
        self.start(out, TimerKind::ConnectRetry, d);
        if passive || self.cfg.passive {
            self.state = State::Active;
        } else {
            out.push(Action::Connect);
            self.state = State::Connect;
        }
    }

    fn connected(&mut self, out: &mut Vec<Action>) {
        self.stop(out, TimerKind::ConnectRetry);
        out.push(Action::SendOpen);
        let d = self.cfg.large_hold_time;
        self.start(out, TimerKind::Hold, d);
        self.state = State::OpenSent;
    }

    fn restart_hold(&mut self, out: &mut Vec<Action>) {
        if self.hold_time > 0 {
            let d = Duration::from_secs(self.hold_time.into());
            self.start(out, TimerKind::Hold, d);
        }
    }

    fn fsm_error(&self) -> Notification {
        Notification::fsm(match self.state {
            State::OpenSent => err::FSM_UNEXPECTED_IN_OPENSENT,
            State::OpenConfirm => err::FSM_UNEXPECTED_IN_OPENCONFIRM,
            State::Established => err::FSM_UNEXPECTED_IN_ESTABLISHED,
            _ => 0,
        })
    }

    /// Feeds one event; returns the actions to execute in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        // A timer expiry is only meaningful for a timer we started and did not
        // stop; a stale one (raced with StopTimer) is ignored.
        let timer = match event {
            Event::ConnectRetryTimerExpires => Some(TimerKind::ConnectRetry),
            Event::HoldTimerExpires => Some(TimerKind::Hold),
            Event::KeepaliveTimerExpires => Some(TimerKind::Keepalive),
            Event::IdleHoldTimerExpires => Some(TimerKind::IdleHold),
            _ => None,
        };
        if let Some(k) = timer {
            if !self.timer_running(k) {
                return out;
            }
            self.running[timer_index(k)] = false;
        }
        let o = &mut out;
        use Event as E;
        use State as S;
        match (self.state, event) {
            // ---- Idle ----
            (S::Idle, E::ManualStart | E::AutomaticStart | E::IdleHoldTimerExpires) => {
                self.start_session(o, false)
            }
            (
                S::Idle,
                E::ManualStartWithPassiveTcpEstablishment
                | E::AutomaticStartWithPassiveTcpEstablishment,
            ) => self.start_session(o, true),
            (S::Idle, E::ManualStop) => {
                self.stop(o, TimerKind::IdleHold);
                self.connect_retry_counter = 0;
            }
            (S::Idle, E::TcpConnectionConfirmed | E::TcpCrAcked) => o.push(Action::DropConnection),
            (S::Idle, _) => {}

            // ---- Connect and Active ----
            (
                S::Connect | S::Active,
                E::ManualStart
                | E::AutomaticStart
                | E::ManualStartWithPassiveTcpEstablishment
                | E::AutomaticStartWithPassiveTcpEstablishment,
            ) => {}
            (S::Connect | S::Active, E::ManualStop) => {
                self.go_idle(o, None, DownReason::Stopped, true, false)
            }
            (S::Connect, E::ConnectRetryTimerExpires) => {
                o.push(Action::DropConnection);
                let d = self.bump_backoff();
                self.start(o, TimerKind::ConnectRetry, d);
                o.push(Action::Connect);
            }
            (S::Active, E::ConnectRetryTimerExpires) => {
                let d = self.bump_backoff();
                self.start(o, TimerKind::ConnectRetry, d);
                if !self.cfg.passive {
                    o.push(Action::Connect);
                    self.state = S::Connect;
                }
            }
            (S::Connect | S::Active, E::TcpCrAcked | E::TcpConnectionConfirmed) => {
                self.connected(o)
            }
            (S::Connect | S::Active, E::TcpConnectionFails) => {
                self.go_idle(o, None, DownReason::ConnectionFailed, false, true)
            }
            (S::Connect | S::Active, _) => {
                // RFC 4271: "any other event" -> Idle (no NOTIFICATION without OPEN).
                self.go_idle(o, None, DownReason::ConnectionFailed, false, true)
            }

            // ---- OpenSent, OpenConfirm, Established: shared handling ----
            (
                S::OpenSent | S::OpenConfirm | S::Established,
                E::ManualStart
                | E::AutomaticStart
                | E::ManualStartWithPassiveTcpEstablishment
                | E::AutomaticStartWithPassiveTcpEstablishment
                | E::IdleHoldTimerExpires
                // A second connection is handled by the session manager (§6.8).
                | E::TcpCrAcked
                | E::TcpConnectionConfirmed,
            ) => {}
            (S::OpenSent | S::OpenConfirm | S::Established, E::ManualStop) => self.go_idle(
                o,
                Some(Notification::cease(err::CEASE_ADMIN_SHUTDOWN)),
                DownReason::Stopped,
                true,
                false,
            ),
            (S::OpenSent | S::OpenConfirm | S::Established, E::AutomaticStop) => self.go_idle(
                o,
                Some(Notification::cease(err::CEASE_ADMIN_RESET)),
                DownReason::Stopped,
                false,
                true,
            ),
            (S::OpenSent | S::OpenConfirm | S::Established, E::HoldTimerExpires) => self.go_idle(
                o,
                Some(Notification::hold_timer_expired()),
                DownReason::HoldTimerExpired,
                false,
                true,
            ),
            (S::OpenSent | S::OpenConfirm | S::Established, E::BgpHeaderErr(n))
            | (S::OpenSent | S::OpenConfirm, E::BgpOpenMsgErr(n))
            | (S::Established, E::UpdateMsgErr(n)) => {
                self.go_idle(o, Some(n.clone()), DownReason::LocalError(n), false, true)
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::OpenCollisionDump) => self.go_idle(
                o,
                Some(Notification::cease(err::CEASE_COLLISION)),
                DownReason::Collision,
                false,
                true,
            ),
            (S::OpenSent | S::OpenConfirm | S::Established, E::NotifMsgVerErr) => {
                self.go_idle(o, None, DownReason::PeerNotification, false, false)
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::NotifMsg) => {
                self.go_idle(o, None, DownReason::PeerNotification, false, true)
            }

            // ---- OpenSent ----
            (S::OpenSent, E::TcpConnectionFails) => {
                // RFC 4271: close, restart ConnectRetryTimer, go to Active.
                self.stop(o, TimerKind::Hold);
                o.push(Action::DropConnection);
                let d = self.bump_backoff();
                self.start(o, TimerKind::ConnectRetry, d);
                self.state = S::Active;
            }
            (
                S::OpenSent,
                E::BgpOpen {
                    hold_time,
                    keepalive,
                },
            ) => {
                self.hold_time = hold_time;
                self.keepalive = keepalive;
                self.stop(o, TimerKind::ConnectRetry);
                o.push(Action::SendKeepalive);
                if hold_time > 0 {
                    self.start(
                        o,
                        TimerKind::Keepalive,
                        Duration::from_secs(keepalive.max(1).into()),
                    );
                    self.restart_hold(o);
                } else {
                    self.stop(o, TimerKind::Hold);
                }
                self.state = S::OpenConfirm;
            }

            // ---- OpenConfirm and Established: keepalives ----
            (S::OpenConfirm | S::Established, E::KeepaliveTimerExpires) => {
                o.push(Action::SendKeepalive);
                if self.hold_time > 0 {
                    let d = Duration::from_secs(self.keepalive.max(1).into());
                    self.start(o, TimerKind::Keepalive, d);
                }
            }
            (S::OpenConfirm | S::Established, E::TcpConnectionFails) => {
                self.go_idle(o, None, DownReason::ConnectionFailed, false, true)
            }
            (S::OpenConfirm, E::KeepAliveMsg) => {
                self.restart_hold(o);
                self.backoff = self.cfg.connect_retry_initial;
                self.connect_retry_counter = 0;
                self.state = S::Established;
                o.push(Action::SessionEstablished {
                    hold_time: self.hold_time,
                    keepalive: self.keepalive,
                });
                o.push(Action::SendUpdates);
            }
            (S::Established, E::KeepAliveMsg | E::UpdateMsg) => self.restart_hold(o),
            (S::Established, E::RouteRefreshMsg) => {
                self.restart_hold(o);
                o.push(Action::SendUpdates);
            }

            // ---- everything else in OpenSent/OpenConfirm/Established: FSM error ----
            (S::OpenSent | S::OpenConfirm | S::Established, _) => {
                let n = self.fsm_error();
                self.go_idle(o, Some(n.clone()), DownReason::LocalError(n), false, true)
            }
        }
        out
    }
}

/// Connection collision resolution (RFC 4271 §6.8, RFC 6286 §2.3): returns
/// `true` if the connection *we* initiated survives, `false` if the one the
/// peer initiated survives. The connection initiated by the speaker with the
/// higher BGP identifier is kept; with equal identifiers the higher AS wins.
pub fn collision_keeps_local(
    local_id: Ipv4Addr,
    remote_id: Ipv4Addr,
    local_as: u32,
    remote_as: u32,
) -> bool {
    let (l, r) = (u32::from(local_id), u32::from(remote_id));
    if l != r { l > r } else { local_as > remote_as }
}
