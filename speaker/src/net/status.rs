//! Session status snapshots and events published by the session manager.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::bfd::packet::SessionState as BfdState;
use crate::bgp::codec::Notification;
use crate::bgp::fsm::{DownReason, State};

/// Why a session left Established (or a connection was closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownCause {
    /// A cause reported by the FSM.
    Fsm(DownReason),
    /// The peer's BFD session went from Up to Down (Cease subcode 10 sent).
    BfdDown,
    /// The peer stopped reading: our send queue stayed full past the hold time.
    SendQueueStalled,
    /// The peer was removed or reconfigured.
    Deconfigured,
}

/// Counters and state of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Peer id.
    pub id: String,
    /// Peer address.
    pub peer_address: IpAddr,
    /// FSM state.
    pub state: State,
    /// BFD state, when BFD is configured.
    pub bfd: Option<BfdState>,
    /// Peer's AS once an OPEN was accepted.
    pub peer_as: Option<u32>,
    /// Negotiated hold time (s) of the current session.
    pub hold_time: Option<u16>,
    /// Times the session reached Established.
    pub established_count: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// UPDATE messages received.
    pub updates_received: u64,
    /// Prefixes received in UPDATEs (counted and discarded).
    pub prefixes_received: u64,
    /// UPDATEs handled as treat-as-withdraw (RFC 7606).
    pub treat_as_withdraw: u64,
    /// NOTIFICATIONs sent.
    pub notifications_sent: u64,
    /// NOTIFICATIONs received.
    pub notifications_received: u64,
    /// Prefixes currently advertised (Adj-RIB-Out).
    pub prefixes_advertised: usize,
    /// Whether the initial table and End-of-RIB were sent in this session.
    pub end_of_rib_sent: bool,
    /// The last NOTIFICATION received.
    pub last_notification_received: Option<Notification>,
    /// The last NOTIFICATION sent.
    pub last_notification_sent: Option<Notification>,
    /// Why the session last went down.
    pub last_down: Option<DownCause>,
    /// The last socket error, for diagnosis.
    pub last_error: Option<String>,
}

impl PeerStatus {
    /// The initial status of a configured peer.
    pub fn new(id: &str, peer_address: IpAddr, bfd: bool) -> Self {
        Self {
            id: id.to_owned(),
            peer_address,
            state: State::Idle,
            bfd: bfd.then_some(BfdState::Down),
            peer_as: None,
            hold_time: None,
            established_count: 0,
            updates_sent: 0,
            updates_received: 0,
            prefixes_received: 0,
            treat_as_withdraw: 0,
            notifications_sent: 0,
            notifications_received: 0,
            prefixes_advertised: 0,
            end_of_rib_sent: false,
            last_notification_received: None,
            last_notification_sent: None,
            last_down: None,
            last_error: None,
        }
    }
}

/// All peers' status by id.
pub type StatusMap = BTreeMap<String, PeerStatus>;

/// Something that happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The FSM changed state.
    StateChanged {
        /// Peer id.
        peer: String,
        /// Previous state.
        from: State,
        /// New state.
        to: State,
    },
    /// An Established session went down.
    SessionDown {
        /// Peer id.
        peer: String,
        /// Why.
        cause: DownCause,
    },
    /// A NOTIFICATION was sent.
    NotificationSent {
        /// Peer id.
        peer: String,
        /// The message.
        notification: Notification,
    },
    /// A NOTIFICATION was received.
    NotificationReceived {
        /// Peer id.
        peer: String,
        /// The message.
        notification: Notification,
    },
    /// The BFD session changed state.
    BfdStateChanged {
        /// Peer id.
        peer: String,
        /// Previous state.
        from: BfdState,
        /// New state.
        to: BfdState,
    },
    /// The initial table and End-of-RIB were sent after Established.
    EndOfRibSent {
        /// Peer id.
        peer: String,
    },
}
