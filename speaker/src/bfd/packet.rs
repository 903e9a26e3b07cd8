//! BFD control packet encoding and syntactic validation (RFC 5880 §4.1, §6.8.6).

use std::fmt;

/// Length of a control packet without authentication.
pub const PACKET_LEN: usize = 24;
/// The only BFD version.
pub const VERSION: u8 = 1;

/// Session states as carried on the wire (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionState {
    /// 0.
    AdminDown,
    /// 1.
    Down,
    /// 2.
    Init,
    /// 3.
    Up,
}

impl SessionState {
    /// All states, for exhaustive tests.
    pub const ALL: [SessionState; 4] = [
        SessionState::AdminDown,
        SessionState::Down,
        SessionState::Init,
        SessionState::Up,
    ];

    /// Wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Self::AdminDown => 0,
            Self::Down => 1,
            Self::Init => 2,
            Self::Up => 3,
        }
    }

    /// From the 2-bit wire value (higher bits ignored).
    pub const fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::AdminDown,
            1 => Self::Down,
            2 => Self::Init,
            _ => Self::Up,
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Diag {
    /// 0: No Diagnostic.
    None,
    /// 1: Control Detection Time Expired.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdminDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9-31: reserved values, kept as received.
    Reserved(u8),
}

impl Diag {
    /// Wire value (5 bits).
    pub const fn bits(self) -> u8 {
        match self {
            Self::None => 0,
            Self::ControlDetectionTimeExpired => 1,
            Self::EchoFailed => 2,
            Self::NeighborSignaledDown => 3,
            Self::ForwardingPlaneReset => 4,
            Self::PathDown => 5,
            Self::ConcatenatedPathDown => 6,
            Self::AdminDown => 7,
            Self::ReverseConcatenatedPathDown => 8,
            Self::Reserved(b) => b & 0x1f,
        }
    }

    /// From the 5-bit wire value.
    pub const fn from_bits(b: u8) -> Self {
        match b & 0x1f {
            0 => Self::None,
            1 => Self::ControlDetectionTimeExpired,
            2 => Self::EchoFailed,
            3 => Self::NeighborSignaledDown,
            4 => Self::ForwardingPlaneReset,
            5 => Self::PathDown,
            6 => Self::ConcatenatedPathDown,
            7 => Self::AdminDown,
            8 => Self::ReverseConcatenatedPathDown,
            other => Self::Reserved(other),
        }
    }
}

/// Flag bits in octet 1 (below the 2 state bits).
pub mod flags {
    /// Poll.
    pub const POLL: u8 = 0x20;
    /// Final.
    pub const FINAL: u8 = 0x10;
    /// Control Plane Independent.
    pub const CPI: u8 = 0x08;
    /// Authentication Present.
    pub const AUTH: u8 = 0x04;
    /// Demand.
    pub const DEMAND: u8 = 0x02;
    /// Multipoint.
    pub const MULTIPOINT: u8 = 0x01;
}

/// A BFD control packet (intervals in microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diagnostic code.
    pub diag: Diag,
    /// Sender's session state.
    pub state: SessionState,
    /// Poll (P).
    pub poll: bool,
    /// Final (F).
    pub final_: bool,
    /// Control Plane Independent (C).
    pub control_plane_independent: bool,
    /// Authentication Present (A).
    pub auth_present: bool,
    /// Demand (D).
    pub demand: bool,
    /// Multipoint (M), must be zero.
    pub multipoint: bool,
    /// Detection time multiplier.
    pub detect_mult: u8,
    /// Length field (24 without authentication).
    pub length: u8,
    /// Sender's discriminator.
    pub my_discr: u32,
    /// Receiver's discriminator as known to the sender (0 if unknown).
    pub your_discr: u32,
    /// Desired Min TX Interval (µs).
    pub desired_min_tx: u32,
    /// Required Min RX Interval (µs).
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval (µs).
    pub required_min_echo_rx: u32,
}

/// Why a received packet was discarded (RFC 5880 §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer octets than a control packet.
    #[error("BFD packet too short: {0} octets, need 24")]
    TooShort(usize),
    /// Version field is not 1.
    #[error("BFD version {0} is not 1")]
    BadVersion(u8),
    /// Length field below the minimum (24, or 26 with authentication).
    #[error("BFD length field {0} below the minimum")]
    LengthTooSmall(u8),
    /// Length field beyond the received payload.
    #[error("BFD length field {field} exceeds the {received} octets received")]
    LengthBeyondPayload {
        /// Length field.
        field: u8,
        /// Octets received.
        received: usize,
    },
    /// Detect Mult is zero.
    #[error("BFD detect multiplier is 0")]
    ZeroDetectMult,
    /// Multipoint bit set.
    #[error("BFD multipoint bit set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("BFD my discriminator is 0")]
    ZeroMyDiscr,
}

impl ControlPacket {
    /// Encodes the 24-octet packet (the length field is written as 24; no authentication).
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (VERSION << 5) | self.diag.bits();
        let mut f = self.state.bits() << 6;
        for (set, bit) in [
            (self.poll, flags::POLL),
            (self.final_, flags::FINAL),
            (self.control_plane_independent, flags::CPI),
            (self.auth_present, flags::AUTH),
            (self.demand, flags::DEMAND),
            (self.multipoint, flags::MULTIPOINT),
        ] {
            if set {
                f |= bit;
            }
        }
        b[1] = f;
        b[2] = self.detect_mult;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }

    /// Decodes and applies the session-independent checks of §6.8.6.
    pub fn decode(buf: &[u8]) -> Result<Self, PacketError> {
        if buf.len() < PACKET_LEN {
            return Err(PacketError::TooShort(buf.len()));
        }
        let version = buf[0] >> 5;
        if version != VERSION {
            return Err(PacketError::BadVersion(version));
        }
        let f = buf[1];
        let auth_present = f & flags::AUTH != 0;
        let length = buf[3];
        let min = if auth_present { 26 } else { 24 };
        if length < min {
            return Err(PacketError::LengthTooSmall(length));
        }
        if usize::from(length) > buf.len() {
            return Err(PacketError::LengthBeyondPayload {
                field: length,
                received: buf.len(),
            });
        }
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let p = ControlPacket {
            diag: Diag::from_bits(buf[0]),
            state: SessionState::from_bits(f >> 6),
            poll: f & flags::POLL != 0,
            final_: f & flags::FINAL != 0,
            control_plane_independent: f & flags::CPI != 0,
            auth_present,
            demand: f & flags::DEMAND != 0,
            multipoint: f & flags::MULTIPOINT != 0,
            detect_mult: buf[2],
            length,
            my_discr: u32_at(4),
            your_discr: u32_at(8),
            desired_min_tx: u32_at(12),
            required_min_rx: u32_at(16),
            required_min_echo_rx: u32_at(20),
        };
        if p.detect_mult == 0 {
            return Err(PacketError::ZeroDetectMult);
        }
        if p.multipoint {
            return Err(PacketError::Multipoint);
        }
        if p.my_discr == 0 {
            return Err(PacketError::ZeroMyDiscr);
        }
        Ok(p)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::AdminDown => "AdminDown",
            Self::Down => "Down",
            Self::Init => "Init",
            Self::Up => "Up",
        };
        f.write_str(s)
    }
}
