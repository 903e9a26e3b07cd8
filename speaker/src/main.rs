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

/// The BGP/BFD sessions on their own thread and single-threaded runtime, so deciding over
/// thousands of Services or a burst of watch events never delays a keepalive or a BFD
/// packet. Returns the manager handle (usable from any runtime), the thread, and the
/// sender that stops the runtime once the sessions are shut down.
fn start_sessions(
    cfg: ManagerConfig,
) -> anyhow::Result<(
    SessionManager,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
)> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ferrolb-bgp".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(anyhow::Error::new(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let started =
                    SessionManager::start(cfg).context("starting the BGP session manager");
                let ok = started.is_ok();
                let _ = started_tx.send(started);
                if ok {
                    let _ = stop_rx.await;
                }
            });
        })
        .context("spawning the BGP thread")?;
    let manager = started_rx
        .recv()
        .context("the BGP thread exited during start-up")??;
    Ok((manager, thread, stop_tx))
}

// Kubernetes watches, decisions, status writes and metrics run on the main thread's
// single-threaded runtime, the sessions on their own (see `start_sessions`). Two threads
// that allocate, so two malloc arenas: the resident set does not grow with the core count.
fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let flags = Flags::parse();
    anyhow::ensure!(!flags.node_name.is_empty(), "--node-name must not be empty");
    let (manager, bgp_thread, stop_bgp) = start_sessions(ManagerConfig {
        listen_port: Some(flags.bgp_port),
        ..ManagerConfig::default()
    })?;
    info!(listen = ?manager.listen_addrs(), node = %flags.node_name, "BGP listening");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let result = rt.block_on(run(flags, manager));
    // The sessions were shut down (Cease sent) by `run`, or `run` failed before starting
    // any; either way the BGP runtime can stop.
    let _ = stop_bgp.send(());
    let _ = bgp_thread.join();
    result
}

async fn run(flags: Flags, manager: SessionManager) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("creating the Kubernetes client (in-cluster config or KUBECONFIG)")?;

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
