//! RFC 4271 §8 FSM: every event in every state, checked against a table.

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_speaker::bgp::fsm::{
    Action, DownReason, Event, Fsm, FsmConfig, State, TimerKind, collision_keeps_local,
};

fn drive(events: &[Event]) -> Fsm {
    let mut f = Fsm::new(FsmConfig::default());
    for e in events {
        f.handle(e.clone());
    }
    f
}

const OPEN: Event = Event::BgpOpen {
    hold_time: 90,
    keepalive: 30,
};

/// Puts a fresh FSM (default config: connect retry 5 s, cap 120 s) in `state`.
/// Idle is the Idle reached after a failed connection (IdleHold running).
fn fsm_in(state: State) -> Fsm {
    use Event::*;
    let f = match state {
        State::Idle => drive(&[ManualStart, TcpConnectionFails]),
        State::Connect => drive(&[ManualStart]),
        State::Active => drive(&[ManualStartWithPassiveTcpEstablishment]),
        State::OpenSent => drive(&[ManualStart, TcpCrAcked]),
        State::OpenConfirm => drive(&[ManualStart, TcpCrAcked, OPEN]),
        State::Established => drive(&[ManualStart, TcpCrAcked, OPEN, KeepAliveMsg]),
    };
    assert_eq!(f.state(), state);
    f
}

fn render(actions: &[Action]) -> String {
    actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Per state: explicit rows (event name, next state, actions), then the default
/// row for every event not listed.
type Rows = &'static [(&'static str, State, &'static str)];

fn table(state: State) -> (Rows, (State, &'static str)) {
    use State::*;
    match state {
        Idle => (
            &[
                (
                    "ManualStart",
                    Connect,
                    "Stop(IdleHold) Start(ConnectRetry,10) Connect",
                ),
                (
                    "AutomaticStart",
                    Connect,
                    "Stop(IdleHold) Start(ConnectRetry,10) Connect",
                ),
                (
                    "IdleHoldTimerExpires",
                    Connect,
                    "Start(ConnectRetry,10) Connect",
                ),
                (
                    "ManualStartWithPassiveTcpEstablishment",
                    Active,
                    "Stop(IdleHold) Start(ConnectRetry,10)",
                ),
                (
                    "AutomaticStartWithPassiveTcpEstablishment",
                    Active,
                    "Stop(IdleHold) Start(ConnectRetry,10)",
                ),
                ("ManualStop", Idle, "Stop(IdleHold)"),
                ("TcpCrAcked", Idle, "Drop"),
                ("TcpConnectionConfirmed", Idle, "Drop"),
            ],
            (Idle, ""),
        ),
        Connect => (
            &[
                ("ManualStart", Connect, ""),
                ("AutomaticStart", Connect, ""),
                ("ManualStartWithPassiveTcpEstablishment", Connect, ""),
                ("AutomaticStartWithPassiveTcpEstablishment", Connect, ""),
                ("ManualStop", Idle, "Stop(ConnectRetry) Drop"),
                (
                    "ConnectRetryTimerExpires",
                    Connect,
                    "Drop Start(ConnectRetry,10) Connect",
                ),
                ("HoldTimerExpires", Connect, ""),
                ("KeepaliveTimerExpires", Connect, ""),
                ("IdleHoldTimerExpires", Connect, ""),
                (
                    "TcpCrAcked",
                    OpenSent,
                    "Stop(ConnectRetry) SendOpen Start(Hold,240)",
                ),
                (
                    "TcpConnectionConfirmed",
                    OpenSent,
                    "Stop(ConnectRetry) SendOpen Start(Hold,240)",
                ),
            ],
            (Idle, "Stop(ConnectRetry) Drop Start(IdleHold,5)"),
        ),
        Active => (
            &[
                ("ManualStart", Active, ""),
                ("AutomaticStart", Active, ""),
                ("ManualStartWithPassiveTcpEstablishment", Active, ""),
                ("AutomaticStartWithPassiveTcpEstablishment", Active, ""),
                ("ManualStop", Idle, "Stop(ConnectRetry) Drop"),
                (
                    "ConnectRetryTimerExpires",
                    Connect,
                    "Start(ConnectRetry,10) Connect",
                ),
                ("HoldTimerExpires", Active, ""),
                ("KeepaliveTimerExpires", Active, ""),
                ("IdleHoldTimerExpires", Active, ""),
                (
                    "TcpCrAcked",
                    OpenSent,
                    "Stop(ConnectRetry) SendOpen Start(Hold,240)",
                ),
                (
                    "TcpConnectionConfirmed",
                    OpenSent,
                    "Stop(ConnectRetry) SendOpen Start(Hold,240)",
                ),
            ],
            (Idle, "Stop(ConnectRetry) Drop Start(IdleHold,5)"),
        ),
        OpenSent => (
            &[
                ("ManualStart", OpenSent, ""),
                ("AutomaticStart", OpenSent, ""),
                ("ManualStartWithPassiveTcpEstablishment", OpenSent, ""),
                ("AutomaticStartWithPassiveTcpEstablishment", OpenSent, ""),
                ("ConnectRetryTimerExpires", OpenSent, ""),
                ("KeepaliveTimerExpires", OpenSent, ""),
                ("IdleHoldTimerExpires", OpenSent, ""),
                ("TcpCrAcked", OpenSent, ""),
                ("TcpConnectionConfirmed", OpenSent, ""),
                ("ManualStop", Idle, "Notify(6/2) Stop(Hold) Drop"),
                (
                    "AutomaticStop",
                    Idle,
                    "Notify(6/4) Stop(Hold) Drop Start(IdleHold,5)",
                ),
                (
                    "HoldTimerExpires",
                    Idle,
                    "Notify(4/0) Drop Start(IdleHold,5)",
                ),
                (
                    "TcpConnectionFails",
                    Active,
                    "Stop(Hold) Drop Start(ConnectRetry,10)",
                ),
                (
                    "BgpOpen",
                    OpenConfirm,
                    "SendKeepalive Start(Keepalive,30) Start(Hold,90)",
                ),
                (
                    "BgpHeaderErr",
                    Idle,
                    "Notify(1/2) Stop(Hold) Drop Start(IdleHold,5)",
                ),
                (
                    "BgpOpenMsgErr",
                    Idle,
                    "Notify(2/2) Stop(Hold) Drop Start(IdleHold,5)",
                ),
                (
                    "OpenCollisionDump",
                    Idle,
                    "Notify(6/7) Stop(Hold) Drop Start(IdleHold,5)",
                ),
                ("NotifMsgVerErr", Idle, "Stop(Hold) Drop Start(IdleHold,5)"),
                ("NotifMsg", Idle, "Stop(Hold) Drop Start(IdleHold,5)"),
            ],
            (Idle, "Notify(5/1) Stop(Hold) Drop Start(IdleHold,5)"),
        ),
        OpenConfirm => (
            &[
                ("ManualStart", OpenConfirm, ""),
                ("AutomaticStart", OpenConfirm, ""),
                ("ManualStartWithPassiveTcpEstablishment", OpenConfirm, ""),
                ("AutomaticStartWithPassiveTcpEstablishment", OpenConfirm, ""),
                ("ConnectRetryTimerExpires", OpenConfirm, ""),
                ("IdleHoldTimerExpires", OpenConfirm, ""),
                ("TcpCrAcked", OpenConfirm, ""),
                ("TcpConnectionConfirmed", OpenConfirm, ""),
                (
                    "ManualStop",
                    Idle,
                    "Notify(6/2) Stop(Hold) Stop(Keepalive) Drop",
                ),
                (
                    "AutomaticStop",
                    Idle,
                    "Notify(6/4) Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "HoldTimerExpires",
                    Idle,
                    "Notify(4/0) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "KeepaliveTimerExpires",
                    OpenConfirm,
                    "SendKeepalive Start(Keepalive,30)",
                ),
                (
                    "TcpConnectionFails",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "NotifMsg",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "NotifMsgVerErr",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "BgpHeaderErr",
                    Idle,
                    "Notify(1/2) Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "BgpOpenMsgErr",
                    Idle,
                    "Notify(2/2) Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "OpenCollisionDump",
                    Idle,
                    "Notify(6/7) Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
                ),
                (
                    "KeepAliveMsg",
                    Established,
                    "Start(Hold,90) Established SendUpdates",
                ),
            ],
            (
                Idle,
                "Notify(5/2) Stop(Hold) Stop(Keepalive) Drop Start(IdleHold,5)",
            ),
        ),
        Established => (
            &[
                ("ManualStart", Established, ""),
                ("AutomaticStart", Established, ""),
                ("ManualStartWithPassiveTcpEstablishment", Established, ""),
                ("AutomaticStartWithPassiveTcpEstablishment", Established, ""),
                ("ConnectRetryTimerExpires", Established, ""),
                ("IdleHoldTimerExpires", Established, ""),
                ("TcpCrAcked", Established, ""),
                ("TcpConnectionConfirmed", Established, ""),
                (
                    "ManualStop",
                    Idle,
                    "Notify(6/2) Stop(Hold) Stop(Keepalive) Drop Down",
                ),
                (
                    "AutomaticStop",
                    Idle,
                    "Notify(6/4) Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "HoldTimerExpires",
                    Idle,
                    "Notify(4/0) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "KeepaliveTimerExpires",
                    Established,
                    "SendKeepalive Start(Keepalive,30)",
                ),
                (
                    "TcpConnectionFails",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "NotifMsg",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "NotifMsgVerErr",
                    Idle,
                    "Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "BgpHeaderErr",
                    Idle,
                    "Notify(1/2) Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "UpdateMsgErr",
                    Idle,
                    "Notify(3/1) Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                (
                    "OpenCollisionDump",
                    Idle,
                    "Notify(6/7) Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
                ),
                ("KeepAliveMsg", Established, "Start(Hold,90)"),
                ("UpdateMsg", Established, "Start(Hold,90)"),
                ("RouteRefreshMsg", Established, "Start(Hold,90) SendUpdates"),
            ],
            (
                Idle,
                "Notify(5/3) Stop(Hold) Stop(Keepalive) Drop Down Start(IdleHold,5)",
            ),
        ),
    }
}

#[test]
fn every_event_in_every_state_matches_the_table() {
    let mut checked = 0;
    for state in State::ALL {
        let (rows, default) = table(state);
        for (name, _, _) in rows {
            assert!(
                Event::all().iter().any(|e| e.name() == *name),
                "table row for unknown event {name}"
            );
        }
        for event in Event::all() {
            let (next, actions) = rows
                .iter()
                .find(|(n, _, _)| *n == event.name())
                .map(|(_, s, a)| (*s, *a))
                .unwrap_or(default);
            let mut f = fsm_in(state);
            let got = f.handle(event.clone());
            assert_eq!(
                (f.state(), render(&got).as_str()),
                (next, actions),
                "{state:?} + {}",
                event.name()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * Event::all().len());
}

#[test]
fn counter_and_backoff_follow_failures_and_reset_on_established() {
    let mut f = Fsm::new(FsmConfig::default());
    let mut idle_holds = Vec::new();
    f.handle(Event::ManualStart);
    for _ in 0..7 {
        for a in f.handle(Event::TcpConnectionFails) {
            if let Action::StartTimer(TimerKind::IdleHold, d) = a {
                idle_holds.push(d.as_secs());
            }
        }
        assert_eq!(f.state(), State::Idle);
        f.handle(Event::IdleHoldTimerExpires);
        assert_eq!(f.state(), State::Connect);
    }
    // Each consecutive failure doubles the backoff, capped at 120 s.
    assert_eq!(idle_holds, vec![5, 10, 20, 40, 80, 120, 120]);
    f.handle(Event::TcpCrAcked);
    f.handle(OPEN);
    f.handle(Event::KeepAliveMsg);
    assert_eq!(f.state(), State::Established);
    assert_eq!(f.backoff(), Duration::from_secs(5));
    assert_eq!(f.connect_retry_counter(), 0);
    f.handle(Event::HoldTimerExpires);
    assert_eq!(f.connect_retry_counter(), 1);
}

#[test]
fn manual_stop_cancels_automatic_restart() {
    let mut f = fsm_in(State::Idle);
    assert!(f.timer_running(TimerKind::IdleHold));
    assert_eq!(render(&f.handle(Event::ManualStop)), "Stop(IdleHold)");
    // A late expiry of the cancelled timer does nothing.
    assert!(f.handle(Event::IdleHoldTimerExpires).is_empty());
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn zero_hold_time_means_no_hold_timer_and_no_keepalives() {
    let mut f = fsm_in(State::OpenSent);
    let a = f.handle(Event::BgpOpen {
        hold_time: 0,
        keepalive: 0,
    });
    assert_eq!(render(&a), "SendKeepalive Stop(Hold)");
    let a = f.handle(Event::KeepAliveMsg);
    assert_eq!(render(&a), "Established SendUpdates");
    assert_eq!(
        a[0],
        Action::SessionEstablished {
            hold_time: 0,
            keepalive: 0
        }
    );
    assert!(f.handle(Event::UpdateMsg).is_empty());
    assert!(f.handle(Event::KeepaliveTimerExpires).is_empty());
    assert!(f.handle(Event::HoldTimerExpires).is_empty());
    assert_eq!(f.state(), State::Established);
}

#[test]
fn passive_config_never_connects() {
    let mut f = Fsm::new(FsmConfig {
        passive: true,
        ..FsmConfig::default()
    });
    assert_eq!(
        render(&f.handle(Event::ManualStart)),
        "Start(ConnectRetry,5)"
    );
    assert_eq!(f.state(), State::Active);
    assert_eq!(
        render(&f.handle(Event::ConnectRetryTimerExpires)),
        "Start(ConnectRetry,10)"
    );
    assert_eq!(f.state(), State::Active);
    f.handle(Event::TcpConnectionConfirmed);
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn session_down_reasons() {
    let cases = [
        (Event::HoldTimerExpires, DownReason::HoldTimerExpired),
        (Event::TcpConnectionFails, DownReason::ConnectionFailed),
        (Event::NotifMsg, DownReason::PeerNotification),
        (Event::ManualStop, DownReason::Stopped),
        (Event::OpenCollisionDump, DownReason::Collision),
    ];
    for (ev, reason) in cases {
        let mut f = fsm_in(State::Established);
        let a = f.handle(ev);
        assert!(
            a.contains(&Action::SessionDown(reason.clone())),
            "{reason:?}: {a:?}"
        );
    }
}

#[test]
fn no_auto_restart_when_disabled() {
    let mut f = Fsm::new(FsmConfig {
        auto_restart: false,
        ..FsmConfig::default()
    });
    f.handle(Event::ManualStart);
    assert_eq!(
        render(&f.handle(Event::TcpConnectionFails)),
        "Stop(ConnectRetry) Drop"
    );
}

#[test]
fn collision_keeps_connection_of_higher_identifier() {
    let lo = Ipv4Addr::new(10, 0, 0, 1);
    let hi = Ipv4Addr::new(10, 0, 0, 2);
    assert!(collision_keeps_local(hi, lo, 65000, 65001));
    assert!(!collision_keeps_local(lo, hi, 65000, 65001));
    // Compared as unsigned 32-bit numbers, not octet strings of different length.
    assert!(collision_keeps_local(
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(9, 255, 255, 255),
        1,
        2
    ));
    // Equal identifiers (allowed for eBGP by RFC 6286): the higher AS wins.
    assert!(collision_keeps_local(lo, lo, 65001, 65000));
    assert!(!collision_keeps_local(lo, lo, 65000, 65001));
}
