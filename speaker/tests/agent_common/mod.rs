//! Shared set-up of the agent tests: the in-memory API server with ferrolb's CRDs, and a
//! passive session manager on loopback playing the router for node1 (AS 64512 <- 64513).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_speaker::bgp::open::PeerAsPolicy;
use ferrolb_speaker::net::{ManagerConfig, PeerConfig, SessionManager};

/// Starts the in-memory API server with `deploy/crds` loaded.
pub async fn api_with_crds() -> ApiServer {
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    ApiServer::start(ApiServerOptions {
        manifests: vec![crds],
        ..ApiServerOptions::default()
    })
    .await
    .expect("api server")
}

/// Starts the loopback "router" accepting node1's session; returns it and its port.
/// `hold_time` overrides the router's proposed hold time when given.
pub async fn loopback_router(hold_time: Option<u16>) -> (SessionManager, u16) {
    let router = SessionManager::start(ManagerConfig {
        listen_port: Some(0),
        listen_v4: true,
        listen_v6: false,
    })
    .expect("router manager");
    let port = router.listen_addrs()[0].port();
    let mut rp = PeerConfig::new(
        "node1",
        64512,
        PeerAsPolicy::Fixed(64513),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        Ipv4Addr::new(10, 255, 0, 254),
    );
    rp.passive = true;
    rp.gtsm = false;
    if let Some(hold) = hold_time {
        rp.hold_time = hold;
    }
    router.set_peers(vec![rp]).await.expect("router peers");
    (router, port)
}
