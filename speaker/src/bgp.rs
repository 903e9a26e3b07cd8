//! BGP-4 protocol core: wire codec, OPEN negotiation, UPDATE generation and
//! the RFC 4271 §8 finite state machine. Pure code: the I/O tasks feed events
//! in and execute the actions returned.

pub mod codec;
pub mod fsm;
pub mod open;
pub mod update;
