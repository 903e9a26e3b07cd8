//! The BFD session state machine (RFC 5880 §6.2, §6.5, §6.8), asynchronous
//! mode without authentication or echo. Timer expiries are events and timer
//! (re)arming is an action; the transmit jitter comes in with each call.

use super::packet::{ControlPacket, Diag, PACKET_LEN, SessionState};

/// Minimum Desired Min TX Interval while the session is not Up (§6.8.3): 1 s.
pub const SLOW_TX_US: u32 = 1_000_000;

/// Local session parameters (intervals in microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our discriminator (non-zero, unique on this system).
    pub local_discr: u32,
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx_us: u32,
    /// bfd.RequiredMinRxInterval (0 = do not send to us).
    pub required_min_rx_us: u32,
    /// bfd.DetectMult.
    pub detect_mult: u8,
    /// Passive role: send nothing until a packet is received (§6.1).
    pub passive: bool,
}

/// Inputs to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Begin the session (start transmitting unless passive).
    Start,
    /// A received control packet that passed [`ControlPacket::decode`].
    Received(ControlPacket),
    /// The transmit timer fired.
    TxTimerExpired,
    /// The detection timer fired.
    DetectTimerExpired,
    /// Administratively disable the session (§6.8.16).
    AdminDown,
    /// Re-enable an administratively disabled session.
    AdminUp,
    /// Change the local intervals; runs a Poll Sequence (§6.8.3).
    SetTimers {
        /// New bfd.DesiredMinTxInterval (µs).
        desired_min_tx_us: u32,
        /// New bfd.RequiredMinRxInterval (µs).
        required_min_rx_us: u32,
    },
}

/// What the I/O layer must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this packet now.
    SendPacket(ControlPacket),
    /// (Re)arm the transmit timer to fire after this many µs.
    ArmTx(u64),
    /// Stop the transmit timer.
    DisarmTx,
    /// (Re)arm the detection timer to fire after this many µs.
    ArmDetect(u64),
    /// Stop the detection timer.
    DisarmDetect,
    /// The local session state changed.
    StateChanged {
        /// Previous state.
        from: SessionState,
        /// New state.
        to: SessionState,
        /// Local diagnostic explaining the change.
        diag: Diag,
    },
}

/// Why a received packet was discarded by the session (§6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// Authentication present but none configured.
    #[error("authentication bit set but no authentication configured")]
    AuthNotConfigured,
    /// Your Discriminator is not ours.
    #[error("your discriminator {0} does not match this session")]
    WrongDiscriminator(u32),
    /// Your Discriminator is zero while the sender's state is Init or Up.
    #[error("your discriminator is 0 in state {0}")]
    ZeroYourDiscr(SessionState),
    /// Our session is AdminDown.
    #[error("session is administratively down")]
    AdminDown,
}

/// One BFD session.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: SessionConfig,
    state: SessionState,
    local_diag: Diag,
    remote_discr: u32,
    remote_state: SessionState,
    remote_min_rx: u32,
    remote_desired_min_tx: u32,
    remote_detect_mult: u8,
    /// Values advertised (the newest configuration).
    desired_min_tx: u32,
    required_min_rx: u32,
    /// Values in force for our own timing until a poll sequence ends.
    active_tx: u32,
    active_rx: u32,
    poll: bool,
    tx_armed: bool,
    /// Nominal interval the transmit timer was last armed with.
    armed_interval: u64,
    started: bool,
    last_discard: Option<Discard>,
}

impl Session {
    /// A new session in Down.
    pub fn new(cfg: SessionConfig) -> Self {
        Self {
            cfg,
            state: SessionState::Down,
            local_diag: Diag::None,
            remote_discr: 0,
            remote_state: SessionState::Down,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            desired_min_tx: cfg.desired_min_tx_us,
            required_min_rx: cfg.required_min_rx_us,
            active_tx: cfg.desired_min_tx_us,
            active_rx: cfg.required_min_rx_us,
            poll: false,
            tx_armed: false,
            armed_interval: 0,
            started: false,
            last_discard: None,
        }
    }

    /// bfd.SessionState.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// bfd.LocalDiag.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// bfd.RemoteDiscr.
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    /// Whether a Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.poll
    }

    /// Why the last received packet was discarded, if it was.
    pub fn last_discard(&self) -> Option<Discard> {
        self.last_discard
    }

    /// Desired Min TX we advertise: at least 1 s while not Up (§6.8.3).
    pub fn advertised_desired_min_tx(&self) -> u32 {
        if self.state == SessionState::Up {
            self.desired_min_tx
        } else {
            self.desired_min_tx.max(SLOW_TX_US)
        }
    }

    fn effective_tx(&self) -> u32 {
        if self.state == SessionState::Up {
            self.active_tx
        } else {
            self.active_tx.max(SLOW_TX_US)
        }
    }

    /// Nominal transmit interval (µs) before jitter: max(local desired tx, remote required rx).
    pub fn tx_interval_us(&self) -> u64 {
        u64::from(self.effective_tx().max(self.remote_min_rx))
    }

    /// Detection time (µs): remote detect mult x max(local required rx, remote desired tx).
    pub fn detection_time_us(&self) -> u64 {
        u64::from(self.remote_detect_mult)
            * u64::from(self.active_rx.max(self.remote_desired_min_tx))
    }

    /// Transmit interval with jitter (§6.8.7): 75-100 % of nominal, 75-90 % when
    /// our detect mult is 1. `rand` is any random 32-bit value.
    pub fn jittered_tx_us(&self, rand: u32) -> u64 {
        let span = if self.cfg.detect_mult == 1 { 16 } else { 26 };
        let pct = 75 + u64::from(rand % span);
        self.tx_interval_us() * pct / 100
    }

    fn should_transmit(&self) -> bool {
        self.started && self.remote_min_rx != 0 && !(self.cfg.passive && self.remote_discr == 0)
    }

    /// The packet we would send now (§6.8.7).
    pub fn make_packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.poll && !final_,
            final_,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: self.cfg.detect_mult,
            length: PACKET_LEN as u8,
            my_discr: self.cfg.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.advertised_desired_min_tx(),
            required_min_rx: self.required_min_rx,
            required_min_echo_rx: 0,
        }
    }

    fn set_state(&mut self, out: &mut Vec<Action>, to: SessionState, diag: Diag) {
        let from = self.state;
        if from == to {
            return;
        }
        let adv_before = self.advertised_desired_min_tx();
        self.state = to;
        self.local_diag = diag;
        out.push(Action::StateChanged { from, to, diag });
        // Leaving or entering Up changes the advertised tx interval: poll (§6.8.3).
        if self.advertised_desired_min_tx() != adv_before && self.remote_discr != 0 {
            self.poll = true;
        }
    }

    /// Brings the transmit timer in line with the current state: arm it if it
    /// should run and does not, re-arm it if the interval got shorter (e.g. on
    /// reaching Up), disarm it if nothing may be sent.
    fn reconcile_tx(&mut self, out: &mut Vec<Action>, rand: u32) {
        if self.should_transmit() {
            let interval = self.tx_interval_us();
            if !self.tx_armed || interval < self.armed_interval {
                self.tx_armed = true;
                self.armed_interval = interval;
                out.push(Action::ArmTx(self.jittered_tx_us(rand)));
            }
        } else if self.tx_armed {
            self.tx_armed = false;
            out.push(Action::DisarmTx);
        }
    }

    /// Feeds one event; `rand` supplies the transmit jitter. Returns actions in order.
    pub fn handle(&mut self, event: Event, rand: u32) -> Vec<Action> {
        let mut out = Vec::new();
        self.last_discard = None;
        match event {
            Event::Start => {
                if !self.started {
                    self.started = true;
                    if self.should_transmit() {
                        out.push(Action::SendPacket(self.make_packet(false)));
                    }
                }
            }
            Event::TxTimerExpired => {
                self.tx_armed = false;
                if self.should_transmit() {
                    out.push(Action::SendPacket(self.make_packet(false)));
                }
            }
            Event::DetectTimerExpired => {
                if matches!(self.state, SessionState::Init | SessionState::Up) {
                    self.set_state(
                        &mut out,
                        SessionState::Down,
                        Diag::ControlDetectionTimeExpired,
                    );
                }
                // §6.8.1: forget the remote after a detection time of silence.
                self.remote_discr = 0;
                self.remote_state = SessionState::Down;
                self.remote_min_rx = 1;
                self.remote_desired_min_tx = 0;
                self.poll = false;
                self.apply_pending();
            }
            Event::AdminDown => {
                if self.state != SessionState::AdminDown {
                    self.set_state(&mut out, SessionState::AdminDown, Diag::AdminDown);
                    out.push(Action::DisarmDetect);
                    if self.started && self.remote_discr != 0 {
                        out.push(Action::SendPacket(self.make_packet(false)));
                    }
                }
            }
            Event::AdminUp => {
                if self.state == SessionState::AdminDown {
                    self.set_state(&mut out, SessionState::Down, Diag::None);
                }
            }
            Event::SetTimers {
                desired_min_tx_us,
                required_min_rx_us,
            } => {
                let up = self.state == SessionState::Up;
                if desired_min_tx_us != self.desired_min_tx
                    || required_min_rx_us != self.required_min_rx
                {
                    self.desired_min_tx = desired_min_tx_us;
                    self.required_min_rx = required_min_rx_us;
                    // An increased tx or reduced rx waits for the poll's Final while Up.
                    if !up || desired_min_tx_us <= self.active_tx {
                        self.active_tx = desired_min_tx_us;
                    }
                    if !up || required_min_rx_us >= self.active_rx {
                        self.active_rx = required_min_rx_us;
                    }
                    if self.remote_discr != 0 {
                        self.poll = true;
                    } else {
                        self.apply_pending();
                    }
                }
            }
            Event::Received(p) => {
                if let Err(d) = self.receive(p, &mut out) {
                    self.last_discard = Some(d);
                }
            }
        }
        self.reconcile_tx(&mut out, rand);
        out
    }

    fn apply_pending(&mut self) {
        self.active_tx = self.desired_min_tx;
        self.active_rx = self.required_min_rx;
    }

    fn receive(&mut self, p: ControlPacket, out: &mut Vec<Action>) -> Result<(), Discard> {
        if p.auth_present {
            return Err(Discard::AuthNotConfigured);
        }
        if p.your_discr != 0 && p.your_discr != self.cfg.local_discr {
            return Err(Discard::WrongDiscriminator(p.your_discr));
        }
        if p.your_discr == 0 && !matches!(p.state, SessionState::Down | SessionState::AdminDown) {
            return Err(Discard::ZeroYourDiscr(p.state));
        }
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_min_rx = p.required_min_rx;
        self.remote_desired_min_tx = p.desired_min_tx;
        self.remote_detect_mult = p.detect_mult;
        if p.final_ && self.poll {
            self.poll = false;
            self.apply_pending();
        }
        if self.state == SessionState::AdminDown {
            return Err(Discard::AdminDown);
        }
        if p.state == SessionState::AdminDown {
            if self.state != SessionState::Down {
                self.set_state(out, SessionState::Down, Diag::NeighborSignaledDown);
            }
        } else {
            match (self.state, p.state) {
                (SessionState::Down, SessionState::Down) => {
                    self.set_state(out, SessionState::Init, Diag::None)
                }
                (SessionState::Down, SessionState::Init) => {
                    self.set_state(out, SessionState::Up, Diag::None)
                }
                (SessionState::Init, SessionState::Init | SessionState::Up) => {
                    self.set_state(out, SessionState::Up, Diag::None)
                }
                (SessionState::Up, SessionState::Down) => {
                    self.set_state(out, SessionState::Down, Diag::NeighborSignaledDown)
                }
                _ => {}
            }
        }
        if p.poll {
            out.push(Action::SendPacket(self.make_packet(true)));
        }
        out.push(Action::ArmDetect(self.detection_time_us()));
        Ok(())
    }
}
