//! Session I/O at the edge: tokio tasks that run the BGP FSM and the BFD
//! session cores over real sockets.
//!
//! [`SessionManager`] is the entry point: it owns the BGP listeners, one task
//! per peer (active connect with `sourceAddress`/`peerPort`, passive accept
//! matched by remote address, collision resolution, timers, keepalives, hold
//! timer, connect-retry backoff, TCP-MD5, GTSM / multi-hop TTL), the desired
//! Adj-RIB-Out per peer, and the BFD sessions whose Down tears BGP down.

pub mod bfd;
pub mod config;
pub mod conn;
pub mod manager;
mod peer;
pub mod sockopt;
pub mod status;

pub use bfd::BfdRxStats;
pub use config::{BfdConfig, ManagerConfig, PeerConfig, RouteTarget, TtlPolicy};
pub use manager::{NetError, SessionManager};
pub use status::{DownCause, PeerStatus, SessionEvent, StatusMap};
