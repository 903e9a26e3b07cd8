//! `ferrolb-controller`: allocates VIPs from IPAddressPools to LoadBalancer Services.
//!
//! Runs the Service reconciler ([`ferrolb_controller::reconcile`]) with a client from the
//! kubeconfig (`KUBECONFIG`, `~/.kube/config`) or the in-cluster service account, serves
//! Prometheus `/metrics` ([`ferrolb_controller::metrics`]), `/healthz` (process alive) and
//! `/readyz` (leader: initial load done; standby with `--leader-elect`: caches synced) over
//! plain HTTP, serves the validating admission
//! webhook over HTTPS on every replica ([`ferrolb_controller::webhook`]; off with
//! `--disable-webhook`), and stops cleanly on SIGTERM or Ctrl-C (releasing the Lease).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ferrolb_controller::reconcile::{Handle, LeaderElection, Options, run};
use ferrolb_controller::webhook::{self, CertSource, WebhookOptions};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Command-line flags of the controller.
#[derive(Parser, Debug)]
#[command(
    name = "ferrolb-controller",
    version,
    about = "ferrolb controller: VIP allocation for LoadBalancer Services"
)]
struct Flags {
    /// Namespace ferrolb's custom resources live in.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (default: Services without a class).
    #[arg(long = "lb-class", env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "FERROLB_METRICS_ADDR", default_value = "0.0.0.0:7472")]
    metrics_addr: SocketAddr,
    /// Event reporting instance (normally the pod name).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Elect a leader by Lease so that several replicas can run (standbys keep their
    /// caches warm; only the leader writes).
    #[arg(long, env = "FERROLB_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the leader-election Lease in `--namespace`.
    #[arg(long, default_value = "ferrolb-controller")]
    lease_name: String,
    /// Seconds the Lease stays valid after a renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration: u64,
    /// Log as JSON lines.
    #[arg(long, env = "FERROLB_LOG_JSON")]
    log_json: bool,
    /// Do not serve the validating admission webhook.
    #[arg(long, env = "FERROLB_DISABLE_WEBHOOK")]
    disable_webhook: bool,
    /// HTTPS address of the admission webhook.
    #[arg(long, env = "FERROLB_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    webhook_addr: SocketAddr,
    /// Secret (in `--namespace`) holding the webhook's CA and serving certificate; the
    /// controller generates, stores and rotates them when missing or expiring.
    #[arg(long, default_value = "ferrolb-webhook-cert")]
    webhook_secret: String,
    /// Serving certificate chain (PEM) from a file instead of the Secret (e.g. mounted by
    /// cert-manager; re-read on change). Needs `--webhook-key-file`.
    #[arg(long, requires = "webhook_key_file")]
    webhook_cert_file: Option<PathBuf>,
    /// Private key (PEM) for `--webhook-cert-file`.
    #[arg(long, requires = "webhook_cert_file")]
    webhook_key_file: Option<PathBuf>,
    /// ValidatingWebhookConfiguration whose caBundle the controller fills ("" = none).
    #[arg(long, default_value = "ferrolb-webhook")]
    webhook_configuration: String,
    /// Service in front of the webhook (names in the generated certificate).
    #[arg(long, default_value = "ferrolb-webhook")]
    webhook_service: String,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn respond(path: &str, handle: &Handle) -> Response<Full<Bytes>> {
    let (code, body): (StatusCode, Bytes) = match path {
        "/healthz" | "/livez" => (StatusCode::OK, Bytes::from_static(b"ok\n")),
        "/readyz" if handle.is_ready() => (StatusCode::OK, Bytes::from_static(b"ok\n")),
        "/readyz" if !handle.is_leader() && handle.is_synced() => {
            (StatusCode::OK, Bytes::from_static(b"standby\n"))
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"initial load not done\n"),
        ),
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(handle.metrics().render())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return r;
        }
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = code;
    r
}

/// Serves the health endpoints until `stop` flips.
async fn serve_health(listener: TcpListener, handle: Handle, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "health endpoint accept failed");
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = respond(req.uri().path(), &handle);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                tracing::debug!(error = %e, "health connection ended");
            }
        });
    }
}

// One thread: the controller's work is I/O-bound (allocation for 10k Services takes tens of
// milliseconds), and a single thread keeps glibc from spreading the watch caches over
// per-thread malloc arenas (see target/bench-reports/restart.md for the RSS it saves).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logging(flags.log_json);
    let client = kube::Client::try_default()
        .await
        .context("building a Kubernetes client (KUBECONFIG or in-cluster)")?;
    let listener = TcpListener::bind(flags.metrics_addr)
        .await
        .with_context(|| format!("binding {}", flags.metrics_addr))?;
    tracing::info!(addr = %flags.metrics_addr, namespace = %flags.namespace, lb_class = ?flags.lb_class, "ferrolb-controller starting");
    let handle = Handle::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let health = tokio::spawn(serve_health(listener, handle.clone(), stop_rx.clone()));
    let hook = if flags.disable_webhook {
        None
    } else {
        let mut wo = WebhookOptions::new(flags.namespace.clone());
        wo.addr = flags.webhook_addr;
        wo.configuration_name = flags.webhook_configuration.clone();
        wo.service_name = flags.webhook_service.clone();
        wo.cert = match (&flags.webhook_cert_file, &flags.webhook_key_file) {
            (Some(cert), Some(key)) => CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => CertSource::Secret {
                name: flags.webhook_secret.clone(),
            },
        };
        let mut stop = stop_rx.clone();
        let client = client.clone();
        Some(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = webhook::serve(client, wo, stopped).await {
                tracing::error!(error = format!("{e:#}"), "admission webhook stopped");
            }
        }))
    };
    let mut opts = Options::new(flags.namespace);
    opts.lb_class = flags.lb_class;
    if flags.leader_elect {
        let identity = flags
            .instance
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .context("leader election needs --instance (POD_NAME) or HOSTNAME")?;
        let mut le = LeaderElection::new(identity);
        le.lease_name = flags.lease_name;
        le.duration_secs = flags.lease_duration.max(2);
        le.grace_secs = (le.duration_secs / 3).max(1);
        opts.leader_election = Some(le);
    }
    opts.instance = flags.instance;
    let result = run(client, opts, handle, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = health.await;
    if let Some(h) = hook {
        let _ = h.await;
    }
    result
}
