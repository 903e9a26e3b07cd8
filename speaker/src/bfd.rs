//! BFD protocol core (RFC 5880 / 5881, asynchronous mode, single hop): control
//! packet codec and the session state machine. Pure code: timers are events in
//! and actions out.

pub mod packet;
pub mod session;
