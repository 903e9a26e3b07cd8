//! Helpers of the BGP announce benchmark: a kernel-FIB watcher and a GoBGP
//! gRPC client.

pub mod fibwatch;
pub mod gobgp_api;
