//! `ferrolb-speaker`: announces VIPs from each node by BGP.
//!
//! Connects to the API server with `kube::Client::try_default()` (in-cluster config or
//! `KUBECONFIG`), runs the [`ferrolb_speaker::agent::Agent`] with a BGP session manager
//! listening on `--bgp-port`, serves `/metrics` and `/healthz` on `--metrics-addr`, and on
//! SIGTERM or SIGINT closes every session with a Cease before exiting. A SIGKILL sends
//! nothing, so a router with graceful restart keeps the routes until the speaker is back.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ferrolb_speaker::agent::peers::PeerOptions;
use ferrolb_speaker::agent::{Agent, AgentConfig, metrics};
use ferrolb_speaker::decide::Options;
use ferrolb_speaker::net::{ManagerConfig, SessionManager};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

/// Command-line flags of the speaker.
#[derive(Parser, Debug)]
#[command(
    name = "ferrolb-speaker",
    version,
    about = "ferrolb speaker: announces VIPs by BGP"
)]
struct Flags {
    /// Name of the node this speaker runs on (the Node object and EndpointSlice nodeName).
    #[arg(long, env = "FERROLB_NODE_NAME")]
    node_name: String,
    /// Namespace ferrolb's custom resources live in.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (default: Services without a class).
    #[arg(long = "lb-class", env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// TCP port to accept BGP connections on (0: any free port).
    #[arg(long, default_value_t = 179)]
    bgp_port: u16,
    /// Address for /metrics and /healthz (empty: do not serve).
    #[arg(long, default_value = "0.0.0.0:7473")]
    metrics_addr: String,
    /// Let nodes labelled node.kubernetes.io/exclude-from-external-load-balancers announce.
    #[arg(long)]
    ignore_exclude_lb: bool,
    /// Enable GTSM (RFC 5082) on single-hop eBGP sessions; the router needs ttl-security.
    #[arg(long)]
    gtsm: bool,
    /// Milliseconds to wait after a change before deciding.
    #[arg(long, default_value_t = 100)]
    debounce_ms: u64,
}

// Two workers whatever the core count: the work is I/O-bound and light, and every worker
// thread that allocates gets its own malloc arena, which on a large node multiplies the
// resident set for nothing.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let flags = Flags::parse();
    anyhow::ensure!(!flags.node_name.is_empty(), "--node-name must not be empty");

    let client = kube::Client::try_default()
        .await
        .context("creating the Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let manager = SessionManager::start(ManagerConfig {
        listen_port: Some(flags.bgp_port),
        ..ManagerConfig::default()
    })
    .context("starting the BGP session manager")?;
    info!(listen = ?manager.listen_addrs(), node = %flags.node_name, "BGP listening");

    let mut cfg = AgentConfig::new(flags.node_name.clone());
    cfg.namespace = flags.namespace;
    cfg.lb_class = flags.lb_class;
    cfg.debounce = Duration::from_millis(flags.debounce_ms);
    cfg.options = Options {
        ignore_exclude_lb: flags.ignore_exclude_lb,
        ..Options::default()
    };
    cfg.peer_options = PeerOptions { gtsm: flags.gtsm };
    let agent = Agent::start(client, cfg, manager);

    let metrics_task = if flags.metrics_addr.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&flags.metrics_addr)
            .await
            .with_context(|| format!("binding --metrics-addr {}", flags.metrics_addr))?;
        info!(addr = %flags.metrics_addr, "serving /metrics and /healthz");
        Some(tokio::spawn(metrics::serve(listener, agent.metrics_fn())))
    };

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: closing sessions"),
        _ = int.recv() => info!("SIGINT: closing sessions"),
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    agent.shutdown().await;
    info!("stopped");
    Ok(())
}
