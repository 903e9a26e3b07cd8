//! ferrolb controller library: the pure IP allocation engine and the Service reconciler.

pub mod allocator;
pub mod reconcile;
