//! Two speakers built from the pure pieces (FSM, framer, codec, OPEN
//! negotiation, UPDATE generation) talking over an in-memory byte pipe, the way
//! the I/O tasks will wire them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ferrolb_speaker::bgp::codec::{
    DecodeContext, Framer, Message, Notification, UpdateCounters, decode_message, encode_keepalive,
    encode_route_refresh,
};
use ferrolb_speaker::bgp::fsm::{Action, Event, Fsm, FsmConfig, State};
use ferrolb_speaker::bgp::open::{
    Family, LocalConfig, Negotiated, PeerAsPolicy, encode_local_open, negotiate,
};
use ferrolb_speaker::bgp::update::{
    RouteAttrs, RouteSet, UpdateContext, build_announcements, end_of_rib,
};
use ipnet::IpNet;

struct Speaker {
    fsm: Fsm,
    cfg: LocalConfig,
    policy: PeerAsPolicy,
    framer: Framer,
    outbox: Vec<u8>,
    negotiated: Option<Negotiated>,
    counters: UpdateCounters,
    routes: RouteSet,
    received_notification: Option<Notification>,
    connect_requests: usize,
}

impl Speaker {
    fn new(local_as: u32, id: u8, policy: PeerAsPolicy, passive: bool) -> Self {
        Self {
            fsm: Fsm::new(FsmConfig {
                passive,
                ..FsmConfig::default()
            }),
            cfg: LocalConfig {
                local_as,
                hold_time: 9,
                keepalive: None,
                router_id: Ipv4Addr::new(10, 0, 0, id),
                families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
                graceful_restart: None,
            },
            policy,
            framer: Framer::new(),
            outbox: Vec::new(),
            negotiated: None,
            counters: UpdateCounters::default(),
            routes: RouteSet::new(),
            received_notification: None,
            connect_requests: 0,
        }
    }

    fn ctx(&self) -> DecodeContext {
        DecodeContext {
            four_octet_as: self.negotiated.as_ref().is_some_and(|n| n.four_octet_as),
            internal: self.negotiated.as_ref().is_some_and(|n| n.internal),
        }
    }

    fn event(&mut self, e: Event) {
        for a in self.fsm.handle(e) {
            match a {
                Action::Connect => self.connect_requests += 1,
                Action::SendOpen => self.outbox.extend(encode_local_open(&self.cfg).unwrap()),
                Action::SendKeepalive => self.outbox.extend(encode_keepalive()),
                Action::SendNotification(n) => self.outbox.extend(n.encode()),
                Action::SendUpdates => {
                    let n = self.negotiated.clone().unwrap();
                    let ctx = UpdateContext {
                        local_as: self.cfg.local_as,
                        internal: n.internal,
                        four_octet_as: n.four_octet_as,
                        next_hop_v4: Some(self.cfg.router_id),
                        next_hop_v6: Some("2001:db8::1".parse().unwrap()),
                        next_hop_v6_link_local: None,
                    };
                    for u in build_announcements(&ctx, &self.routes).unwrap() {
                        self.outbox.extend(u);
                    }
                    for f in &n.families {
                        self.outbox.extend(end_of_rib(*f).unwrap());
                    }
                }
                Action::DropConnection
                | Action::StartTimer(..)
                | Action::StopTimer(_)
                | Action::SessionEstablished { .. }
                | Action::SessionDown(_) => {}
            }
        }
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.framer.extend(bytes);
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(n) => return self.event(Event::BgpHeaderErr(n)),
            };
            let ev = match decode_message(&frame.bytes, self.ctx()) {
                Ok(Message::Open(o)) => match negotiate(&self.cfg, self.policy, &o) {
                    Ok(n) => {
                        let ev = Event::BgpOpen {
                            hold_time: n.hold_time,
                            keepalive: n.keepalive,
                        };
                        self.negotiated = Some(n);
                        ev
                    }
                    Err(n) => Event::BgpOpenMsgErr(n),
                },
                Ok(Message::Update(s)) => {
                    self.counters.record(&s);
                    Event::UpdateMsg
                }
                Ok(Message::Keepalive) => Event::KeepAliveMsg,
                Ok(Message::Notification(n)) => {
                    self.received_notification = Some(n);
                    Event::NotifMsg
                }
                Ok(Message::RouteRefresh(_)) => Event::RouteRefreshMsg,
                Err(n) if n.code == 2 => Event::BgpOpenMsgErr(n),
                Err(n) if n.code == 3 => Event::UpdateMsgErr(n),
                Err(n) => Event::BgpHeaderErr(n),
            };
            self.event(ev);
        }
    }
}

/// Shuttles bytes both ways, in small pieces, until nothing is left to send.
fn pump(a: &mut Speaker, b: &mut Speaker) {
    for _ in 0..1000 {
        if a.outbox.is_empty() && b.outbox.is_empty() {
            return;
        }
        let from_a = std::mem::take(&mut a.outbox);
        for chunk in from_a.chunks(333) {
            b.receive(chunk);
        }
        let from_b = std::mem::take(&mut b.outbox);
        for chunk in from_b.chunks(333) {
            a.receive(chunk);
        }
    }
    panic!("pipe never went quiet");
}

fn start(a: &mut Speaker, b: &mut Speaker) {
    a.event(Event::ManualStart);
    b.event(Event::ManualStart);
    assert_eq!(a.connect_requests, 1);
    assert_eq!(b.connect_requests, 0);
    // The TCP connection A asked for completes on both ends.
    a.event(Event::TcpCrAcked);
    b.event(Event::TcpConnectionConfirmed);
    pump(a, b);
}

#[test]
fn ebgp_session_establishes_and_carries_routes() {
    let mut a = Speaker::new(4_200_000_001, 1, PeerAsPolicy::Fixed(65000), false);
    let mut b = Speaker::new(65000, 2, PeerAsPolicy::DynamicExternal, true);
    let attrs = RouteAttrs {
        communities: BTreeSet::from([42]),
        ..RouteAttrs::default()
    };
    let prefixes: Vec<IpNet> = (0..2000u32)
        .map(|i| IpNet::new(Ipv4Addr::from(0xc633_0000 + i).into(), 32).unwrap())
        .chain(["2001:db8:100::/64".parse().unwrap()])
        .collect();
    a.routes = prefixes.iter().map(|p| (*p, attrs.clone())).collect();
    start(&mut a, &mut b);
    assert_eq!(a.fsm.state(), State::Established);
    assert_eq!(b.fsm.state(), State::Established);
    let nb = b.negotiated.clone().unwrap();
    assert_eq!(
        (nb.peer_as, nb.hold_time, nb.keepalive),
        (4_200_000_001, 9, 3)
    );
    assert!(nb.four_octet_as && !nb.internal);
    assert_eq!(b.counters.announced, 2001);
    assert_eq!(b.counters.end_of_rib, 2);
    assert_eq!(b.counters.treat_as_withdraw, 0);
    // A has no routes from B, only End-of-RIB markers.
    assert_eq!((a.counters.announced, a.counters.end_of_rib), (0, 2));
    // Keepalives keep it up; a ROUTE-REFRESH makes A resend everything.
    a.event(Event::KeepaliveTimerExpires);
    pump(&mut a, &mut b);
    assert_eq!(b.fsm.state(), State::Established);
    b.outbox.extend(encode_route_refresh(1, 1).unwrap());
    pump(&mut a, &mut b);
    assert_eq!((b.counters.announced, b.counters.end_of_rib), (4002, 4));
    // A manual stop on A sends Cease, B goes back to Idle.
    a.event(Event::ManualStop);
    pump(&mut a, &mut b);
    assert_eq!(a.fsm.state(), State::Idle);
    assert_eq!(b.fsm.state(), State::Idle);
    assert_eq!(b.received_notification, Some(Notification::cease(2)));
}

#[test]
fn wrong_peer_as_is_refused_with_a_notification() {
    let mut a = Speaker::new(65001, 1, PeerAsPolicy::Fixed(65000), false);
    let mut b = Speaker::new(65000, 2, PeerAsPolicy::Fixed(65099), true);
    start(&mut a, &mut b);
    assert_eq!(a.fsm.state(), State::Idle);
    assert_eq!(b.fsm.state(), State::Idle);
    let n = a.received_notification.clone().unwrap();
    assert_eq!((n.code, n.subcode), (2, 2));
}

#[test]
fn ibgp_with_same_router_id_is_refused() {
    let mut a = Speaker::new(65000, 1, PeerAsPolicy::DynamicInternal, false);
    let mut b = Speaker::new(65000, 1, PeerAsPolicy::DynamicInternal, true);
    start(&mut a, &mut b);
    let n = a.received_notification.clone().unwrap();
    assert_eq!((n.code, n.subcode), (2, 3));
}
