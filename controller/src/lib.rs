//! ferrolb controller library: the pure IP allocation engine, the Service reconciler, the
//! validating admission webhook, Prometheus metrics and the `ferrolbctl` views.

pub mod allocator;
pub mod ctl;
pub mod metrics;
pub mod reconcile;
pub mod webhook;
