//! ferrolb speaker library: announcement decisions, BGP and BFD protocol cores, the session
//! tasks that drive them over real sockets, and the agent that feeds them from Kubernetes.

pub mod agent;
pub mod bfd;
pub mod bgp;
pub mod decide;
pub mod net;
