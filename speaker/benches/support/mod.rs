//! Helpers of the speaker benchmarks: a kernel-FIB watcher, a GoBGP gRPC client and host
//! checks.

pub mod fibwatch;
pub mod gobgp_api;
pub mod host;
