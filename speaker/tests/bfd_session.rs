//! BFD session state machine (RFC 5880 §6.2, §6.5, §6.8): transition table,
//! timers, poll/final, and two sessions driven against each other.

use ferrolb_speaker::bfd::packet::{ControlPacket, Diag, SessionState};
use ferrolb_speaker::bfd::session::{Action, Discard, Event, SLOW_TX_US, Session, SessionConfig};

const LOCAL: u32 = 0x11;
const REMOTE: u32 = 0x22;

fn cfg(discr: u32) -> SessionConfig {
    SessionConfig {
        local_discr: discr,
        desired_min_tx_us: 100_000,
        required_min_rx_us: 100_000,
        detect_mult: 3,
        passive: false,
    }
}

fn remote(state: SessionState) -> ControlPacket {
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
        length: 24,
        my_discr: REMOTE,
        your_discr: LOCAL,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
}

fn session_in(state: SessionState) -> Session {
    let mut s = Session::new(cfg(LOCAL));
    s.handle(Event::Start, 0);
    match state {
        SessionState::Down => {}
        SessionState::Init => {
            s.handle(Event::Received(remote(SessionState::Down)), 0);
        }
        SessionState::Up => {
            s.handle(Event::Received(remote(SessionState::Init)), 0);
        }
        SessionState::AdminDown => {
            s.handle(Event::AdminDown, 0);
        }
    }
    assert_eq!(s.state(), state);
    s
}

#[test]
fn transition_table_for_every_local_and_received_state() {
    use Diag as D;
    use SessionState::*;
    // (local, received) -> (next, diag after)
    let table = [
        (AdminDown, AdminDown, AdminDown, D::AdminDown),
        (AdminDown, Down, AdminDown, D::AdminDown),
        (AdminDown, Init, AdminDown, D::AdminDown),
        (AdminDown, Up, AdminDown, D::AdminDown),
        (Down, AdminDown, Down, D::None),
        (Down, Down, Init, D::None),
        (Down, Init, Up, D::None),
        (Down, Up, Down, D::None),
        (Init, AdminDown, Down, D::NeighborSignaledDown),
        (Init, Down, Init, D::None),
        (Init, Init, Up, D::None),
        (Init, Up, Up, D::None),
        (Up, AdminDown, Down, D::NeighborSignaledDown),
        (Up, Down, Down, D::NeighborSignaledDown),
        (Up, Init, Up, D::None),
        (Up, Up, Up, D::None),
    ];
    assert_eq!(
        table.len(),
        SessionState::ALL.len() * SessionState::ALL.len()
    );
    for (local, rx, next, diag) in table {
        let mut s = session_in(local);
        let actions = s.handle(Event::Received(remote(rx)), 0);
        assert_eq!((s.state(), s.local_diag()), (next, diag), "{local} + {rx}");
        let changed = actions.iter().any(
            |a| matches!(a, Action::StateChanged { from, to, .. } if *from == local && *to == next),
        );
        assert_eq!(changed, local != next, "{local} + {rx}: {actions:?}");
        if local == AdminDown {
            assert_eq!(s.last_discard(), Some(Discard::AdminDown));
        } else {
            assert!(
                actions.contains(&Action::ArmDetect(300_000)),
                "{local} + {rx}"
            );
        }
    }
}

#[test]
fn slow_transmit_until_up() {
    let mut s = Session::new(cfg(LOCAL));
    let a = s.handle(Event::Start, 0);
    let Action::SendPacket(p) = a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(
        (p.state, p.desired_min_tx, p.your_discr),
        (SessionState::Down, SLOW_TX_US, 0)
    );
    // 75 % of 1 s with rand 0, 100 % with rand 25.
    assert_eq!(a[1], Action::ArmTx(750_000));
    assert_eq!(
        s.handle(Event::TxTimerExpired, 25)[1],
        Action::ArmTx(1_000_000)
    );
    s.handle(Event::Received(remote(SessionState::Init)), 0);
    assert_eq!(s.state(), SessionState::Up);
    assert_eq!(s.advertised_desired_min_tx(), 100_000);
    assert_eq!(s.tx_interval_us(), 100_000);
    // Going Up lowered the advertised interval, so a Poll Sequence runs.
    assert!(s.polling());
    let a = s.handle(Event::TxTimerExpired, 0);
    assert!(matches!(a[0], Action::SendPacket(p) if p.poll && p.desired_min_tx == 100_000));
    assert_eq!(a[1], Action::ArmTx(75_000));
    // Remote asking for slower packets wins.
    let mut slow = remote(SessionState::Up);
    slow.required_min_rx = 250_000;
    s.handle(Event::Received(slow), 0);
    assert_eq!(s.tx_interval_us(), 250_000);
}

#[test]
fn detection_time_arithmetic() {
    let mut s = session_in(SessionState::Up);
    // 3 x max(100 ms local rx, 100 ms remote tx) = 300 ms
    assert_eq!(s.detection_time_us(), 300_000);
    let mut p = remote(SessionState::Up);
    p.desired_min_tx = 300_000;
    p.detect_mult = 5;
    let a = s.handle(Event::Received(p), 0);
    // 5 x max(100 ms, 300 ms) = 1.5 s
    assert!(a.contains(&Action::ArmDetect(1_500_000)));
    let mut s = Session::new(SessionConfig {
        required_min_rx_us: 500_000,
        ..cfg(LOCAL)
    });
    s.handle(Event::Start, 0);
    s.handle(Event::Received(remote(SessionState::Init)), 0);
    assert_eq!(s.detection_time_us(), 1_500_000);
}

#[test]
fn jitter_bounds() {
    let s = session_in(SessionState::Up);
    assert_eq!(s.jittered_tx_us(0), 75_000);
    assert_eq!(s.jittered_tx_us(25), 100_000);
    assert!((0..1000).all(|r| (75_000..=100_000).contains(&s.jittered_tx_us(r))));
    let mut one = Session::new(SessionConfig {
        detect_mult: 1,
        ..cfg(LOCAL)
    });
    one.handle(Event::Start, 0);
    one.handle(Event::Received(remote(SessionState::Init)), 0);
    assert_eq!(one.jittered_tx_us(15), 90_000);
    assert!((0..1000).all(|r| (75_000..=90_000).contains(&one.jittered_tx_us(r))));
}

#[test]
fn poll_and_final() {
    let mut s = session_in(SessionState::Up);
    let mut fin = remote(SessionState::Up);
    fin.final_ = true;
    s.handle(Event::Received(fin), 0);
    assert!(!s.polling());
    // Incoming Poll is answered at once with Final and without Poll.
    let mut poll = remote(SessionState::Up);
    poll.poll = true;
    let a = s.handle(Event::Received(poll), 0);
    assert!(matches!(a[0], Action::SendPacket(p) if p.final_ && !p.poll));
    // Slowing down while Up: advertise at once, keep the old rate until Final.
    s.handle(
        Event::SetTimers {
            desired_min_tx_us: 300_000,
            required_min_rx_us: 50_000,
        },
        0,
    );
    assert!(s.polling());
    assert_eq!(s.tx_interval_us(), 100_000);
    // Reduced rx: the old 100 ms still sets the detection time until Final.
    assert_eq!(s.detection_time_us(), 300_000);
    let a = s.handle(Event::TxTimerExpired, 0);
    assert!(
        matches!(a[0], Action::SendPacket(p) if p.poll && p.desired_min_tx == 300_000 && p.required_min_rx == 50_000)
    );
    s.handle(Event::Received(fin), 0);
    assert!(!s.polling());
    assert_eq!(s.tx_interval_us(), 300_000);
    assert_eq!(s.detection_time_us(), 300_000);
}

#[test]
fn receive_discards() {
    let mut s = session_in(SessionState::Down);
    let mut p = remote(SessionState::Down);
    p.auth_present = true;
    s.handle(Event::Received(p), 0);
    assert_eq!(s.last_discard(), Some(Discard::AuthNotConfigured));
    let mut p = remote(SessionState::Down);
    p.your_discr = 99;
    s.handle(Event::Received(p), 0);
    assert_eq!(s.last_discard(), Some(Discard::WrongDiscriminator(99)));
    let mut p = remote(SessionState::Up);
    p.your_discr = 0;
    s.handle(Event::Received(p), 0);
    assert_eq!(
        s.last_discard(),
        Some(Discard::ZeroYourDiscr(SessionState::Up))
    );
    assert_eq!(s.state(), SessionState::Down);
    assert_eq!(s.remote_discr(), 0);
}

#[test]
fn passive_waits_for_the_peer() {
    let mut s = Session::new(SessionConfig {
        passive: true,
        ..cfg(LOCAL)
    });
    assert!(s.handle(Event::Start, 0).is_empty());
    let mut first = remote(SessionState::Down);
    first.your_discr = 0;
    let a = s.handle(Event::Received(first), 0);
    assert!(a.iter().any(|a| matches!(a, Action::ArmTx(_))), "{a:?}");
    assert_eq!(s.state(), SessionState::Init);
}

#[test]
fn admin_down_and_up() {
    let mut s = session_in(SessionState::Up);
    let a = s.handle(Event::AdminDown, 0);
    assert!(a.contains(&Action::StateChanged {
        from: SessionState::Up,
        to: SessionState::AdminDown,
        diag: Diag::AdminDown
    }));
    assert!(matches!(a.last(), Some(Action::SendPacket(p)) if p.state == SessionState::AdminDown));
    s.handle(Event::AdminUp, 0);
    assert_eq!(s.state(), SessionState::Down);
}

/// Two sessions exchanging packets with a 1 ms one-way delay.
struct Sim {
    now: u64,
    s: [Session; 2],
    tx: [Option<u64>; 2],
    detect: [Option<u64>; 2],
    wire: Vec<(u64, usize, ControlPacket)>,
    alive: [bool; 2],
    rng: u32,
    log: Vec<(u64, usize, SessionState, SessionState, Diag)>,
    last_rx: [u64; 2],
}

impl Sim {
    fn new() -> Self {
        Self {
            now: 0,
            s: [Session::new(cfg(1)), Session::new(cfg(2))],
            tx: [None; 2],
            detect: [None; 2],
            wire: Vec::new(),
            alive: [true; 2],
            rng: 12345,
            log: Vec::new(),
            last_rx: [0; 2],
        }
    }

    fn feed(&mut self, i: usize, ev: Event) {
        // xorshift for jitter
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        for a in self.s[i].handle(ev, self.rng) {
            match a {
                Action::SendPacket(p) => {
                    if self.alive[i] {
                        // Round trip through the wire format.
                        let p = ControlPacket::decode(&p.encode()).unwrap();
                        self.wire.push((self.now + 1000, 1 - i, p));
                    }
                }
                Action::ArmTx(us) => self.tx[i] = Some(self.now + us),
                Action::DisarmTx => self.tx[i] = None,
                Action::ArmDetect(us) => self.detect[i] = Some(self.now + us),
                Action::DisarmDetect => self.detect[i] = None,
                Action::StateChanged { from, to, diag } => {
                    self.log.push((self.now, i, from, to, diag))
                }
            }
        }
    }

    fn step(&mut self) {
        let mut next: Option<(u64, u8, usize)> = None;
        let mut consider = |t: Option<u64>, kind: u8, i: usize| {
            if let Some(t) = t
                && next.is_none_or(|(nt, _, _)| t < nt)
            {
                next = Some((t, kind, i));
            }
        };
        for i in 0..2 {
            consider(self.tx[i], 0, i);
            consider(self.detect[i], 1, i);
        }
        for (k, (t, _, _)) in self.wire.iter().enumerate() {
            consider(Some(*t), 2, k);
        }
        let (t, kind, i) = next.expect("simulation ran out of events");
        self.now = t;
        match kind {
            0 => {
                self.tx[i] = None;
                self.feed(i, Event::TxTimerExpired);
            }
            1 => {
                self.detect[i] = None;
                self.feed(i, Event::DetectTimerExpired);
            }
            _ => {
                let (_, to, p) = self.wire.remove(i);
                self.last_rx[to] = self.now;
                self.feed(to, Event::Received(p));
            }
        }
    }

    fn run_until(&mut self, limit_us: u64, done: impl Fn(&Sim) -> bool) {
        while !done(self) {
            assert!(
                self.now <= limit_us,
                "not done by {limit_us} us: {:?}",
                self.log
            );
            self.step();
        }
    }
}

#[test]
fn two_sessions_come_up_then_detect_a_silent_peer() {
    let mut sim = Sim::new();
    sim.feed(0, Event::Start);
    sim.feed(1, Event::Start);
    sim.run_until(5_000_000, |s| {
        s.s.iter().all(|x| x.state() == SessionState::Up)
    });
    // Both went Down -> Init -> Up (or Down -> Up) with no diagnostic.
    assert!(sim.log.iter().all(|(_, _, _, _, d)| *d == Diag::None));
    // Let the poll sequences for the faster rate finish.
    let up_at = sim.now;
    sim.run_until(up_at + 2_000_000, |s| s.now > up_at + 1_000_000);
    assert!(
        sim.s
            .iter()
            .all(|x| !x.polling() && x.state() == SessionState::Up),
        "{:?} {:?}",
        sim.s,
        sim.log
    );
    assert_eq!(sim.s[0].tx_interval_us(), 100_000);
    assert_eq!(sim.s[0].detection_time_us(), 300_000);

    // Session 1 falls silent.
    sim.alive[1] = false;
    sim.wire.retain(|(_, to, _)| *to != 0);
    sim.feed(1, Event::AdminDown);
    let silent_from = sim.now;
    sim.run_until(silent_from + 2_000_000, |s| {
        s.s[0].state() == SessionState::Down
    });
    let (t, who, from, to, diag) = *sim.log.last().unwrap();
    assert_eq!(
        (who, from, to, diag),
        (
            0,
            SessionState::Up,
            SessionState::Down,
            Diag::ControlDetectionTimeExpired
        )
    );
    // Down exactly one detection time (3 x 100 ms) after the last packet arrived.
    assert_eq!(t - sim.last_rx[0], 300_000);
    assert_eq!(sim.s[0].local_diag(), Diag::ControlDetectionTimeExpired);
    // Back to the slow rate while not Up.
    assert_eq!(sim.s[0].advertised_desired_min_tx(), SLOW_TX_US);
}
