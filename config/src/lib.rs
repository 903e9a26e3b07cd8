//! Pure, validated ferrolb configuration model.
//!
//! Built from a snapshot of the custom resources; no kube client, no tokio, no sockets.
//! The controller, the speaker, the admission webhook and `ferrolbctl` all call
//! [`build::build`] and share the resulting [`model::Config`].

pub mod build;
pub mod error;
pub mod ipset;
pub mod manifest;
pub mod model;
pub mod pool;
pub mod selector;
pub mod service;
