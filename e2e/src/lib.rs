//! ferrolb lab: network-namespace topology, the in-memory Kubernetes API server (a test
//! component, not a product part), cluster emulation, the failover benchmark, helpers
//! shared by the benchmark binaries, and the end-to-end suite.

pub mod apiserver;
pub mod bench;
pub mod cluster;
pub mod failover;
pub mod lab;
