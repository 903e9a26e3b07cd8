//! Validating admission webhook served by the controller over HTTPS.
//!
//! `POST /validate` takes an `admission.k8s.io/v1` `AdmissionReview` for one of the six
//! configuration kinds and refuses a change that would make the whole configuration
//! invalid (overlapping pools, dangling references, ...), as built by
//! [`ferrolb_config::build::build`] with strict references; see [`review`] for the rules
//! and `docs/webhook.md` for the deployment.
//!
//! The serving certificate comes from PEM files (e.g. a cert-manager mount, re-read when
//! they change) or from a Secret the controller fills itself: a CA and a serving
//! certificate generated with `rcgen`, replaced before they expire, the CA written into
//! the `caBundle` of the `ValidatingWebhookConfiguration`. The certificate is swapped in
//! the running TLS listener without dropping it.

pub mod certs;
pub mod http;
pub mod review;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ferrolb_config::build::BuildOptions;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use certs::Lifetimes;
pub use http::VALIDATE_PATH;

/// Time a client gets to finish the TLS handshake and to send the request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts to obtain the first certificate.
const STARTUP_RETRY: Duration = Duration::from_secs(5);

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files (certificate chain and private key), e.g. a cert-manager Secret mounted
    /// into the pod; re-read every [`WebhookOptions::file_poll_interval`] and swapped in
    /// when their content changes. The `caBundle` is left to the provider (e.g.
    /// cert-manager's CA injector).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A Secret in the controller's namespace holding `tls.crt`, `tls.key`, `ca.crt` and
    /// `ca.key`: used when it holds a certificate valid for the Service names for at least
    /// [`Lifetimes::rotate_before`], otherwise a CA and serving certificate are generated
    /// and stored there (see [`certs::plan`]), and the CA goes into the `caBundle`.
    Secret {
        /// Secret name.
        name: String,
    },
}

/// Options of [`serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Listening address (`0.0.0.0:9443`).
    pub addr: SocketAddr,
    /// The ferrolb namespace: configuration objects and the certificate Secret live there.
    pub namespace: String,
    /// Where the serving certificate comes from.
    pub cert: CertSource,
    /// `ValidatingWebhookConfiguration` whose webhooks get the CA in `caBundle` (only with
    /// [`CertSource::Secret`]); empty: do not touch any.
    pub configuration_name: String,
    /// Service in front of the webhook; the generated certificate is valid for `<svc>`,
    /// `<svc>.<ns>`, `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local`.
    pub service_name: String,
    /// Lifetimes of generated certificates and the rotation margin.
    pub lifetimes: Lifetimes,
    /// How often the Secret is checked (rotation, a certificate written by another
    /// replica) and the `caBundle` re-asserted (1 hour).
    pub check_interval: Duration,
    /// How often [`CertSource::Files`] are re-read (10 s).
    pub file_poll_interval: Duration,
}

impl WebhookOptions {
    /// Defaults for namespace `namespace`: `0.0.0.0:9443`, Secret `ferrolb-webhook-cert`,
    /// configuration and Service `ferrolb-webhook`, CA 10 years, serving certificate
    /// 1 year, rotation 30 days before expiry, checked hourly.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 9443)),
            namespace: namespace.into(),
            cert: CertSource::Secret {
                name: "ferrolb-webhook-cert".to_owned(),
            },
            configuration_name: "ferrolb-webhook".to_owned(),
            service_name: "ferrolb-webhook".to_owned(),
            lifetimes: Lifetimes::default(),
            check_interval: Duration::from_secs(3600),
            file_poll_interval: Duration::from_secs(10),
        }
    }

    /// The DNS names the serving certificate must carry.
    pub fn dns_names(&self) -> Vec<String> {
        certs::service_dns_names(&self.service_name, &self.namespace)
    }
}

/// Binds `opts.addr` and serves the webhook until `shutdown` completes (see [`serve_on`]).
pub async fn serve(
    client: kube::Client,
    opts: WebhookOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("binding the webhook listener on {}", opts.addr))?;
    serve_on(client, listener, opts, shutdown).await
}

/// Serves the webhook on an already bound `listener` (`opts.addr` is ignored) until
/// `shutdown` completes. Obtains the certificate first (retrying every 5 s while the API
/// server is unreachable), then accepts connections while keeping the certificate fresh.
pub async fn serve_on(
    client: kube::Client,
    listener: TcpListener,
    opts: WebhookOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let source = CertSource::clone(&opts.cert);
    let mut store = CertStore::new(client.clone(), &opts);
    let first = loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = store.load() => match r {
                Ok(key) => break key,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot obtain the webhook certificate; retrying");
                }
            },
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(STARTUP_RETRY) => {}
        }
    };
    let resolver = Arc::new(tls::Resolver::new(first));
    let mut config = ServerConfig::builder_with_provider(certs::provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let state = Arc::new(http::State {
        client,
        options: BuildOptions {
            namespace: opts.namespace.clone(),
            allow_missing_references: false,
        },
    });
    tracing::info!(addr = ?listener.local_addr().ok(), source = ?source, "webhook serving");

    let interval = match source {
        CertSource::Files { .. } => opts.file_poll_interval,
        CertSource::Secret { .. } => opts.check_interval,
    };
    let refresh = async {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match store.refresh().await {
                Ok(Some(key)) => {
                    resolver.set(key);
                    tracing::info!("webhook serving certificate swapped");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "checking the webhook certificate failed; keeping the current one");
                }
            }
        }
    };
    let accept = accept_loop(&listener, acceptor, state);
    tokio::select! {
        () = &mut shutdown => {}
        () = refresh => {}
        () = accept => {}
    }
    Ok(())
}

/// Accepts connections forever; each is served on its own task (aborted when this future
/// is dropped).
async fn accept_loop(listener: &TcpListener, acceptor: TlsAcceptor, state: Arc<http::State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a webhook connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "webhook TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "webhook TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| http::handle(state.clone(), req));
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

/// Obtains and refreshes the serving certificate from its source.
struct CertStore {
    client: kube::Client,
    source: CertSource,
    namespace: String,
    configuration_name: String,
    dns_names: Vec<String>,
    lifetimes: Lifetimes,
    /// Last bundle or file content in force, to tell whether a refresh changed anything.
    last: Option<(Vec<u8>, Vec<u8>)>,
}

impl CertStore {
    fn new(client: kube::Client, opts: &WebhookOptions) -> Self {
        Self {
            client,
            source: opts.cert.clone(),
            namespace: opts.namespace.clone(),
            configuration_name: opts.configuration_name.clone(),
            dns_names: opts.dns_names(),
            lifetimes: opts.lifetimes,
            last: None,
        }
    }

    /// Loads the certificate in force.
    async fn load(&mut self) -> anyhow::Result<rustls::sign::CertifiedKey> {
        self.last = None;
        self.refresh()
            .await?
            .context("internal: no certificate after a first load")
    }

    /// Re-reads the source; returns the certificate when it differs from the last one.
    async fn refresh(&mut self) -> anyhow::Result<Option<rustls::sign::CertifiedKey>> {
        let (cert, key) = match &self.source {
            CertSource::Files { cert, key } => tls::read_files(cert, key)?,
            CertSource::Secret { name } => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
                let bundle =
                    tls::ensure_secret(&api, name, &self.dns_names, &self.lifetimes).await?;
                // Re-asserted on every check, so a configuration created or reset later
                // (e.g. by a re-applied manifest with an empty caBundle) gets the CA.
                tls::patch_ca_bundle(&self.client, &self.configuration_name, &bundle.ca_crt)
                    .await?;
                (bundle.tls_crt.into_bytes(), bundle.tls_key.into_bytes())
            }
        };
        if self
            .last
            .as_ref()
            .is_some_and(|(c, k)| *c == cert && *k == key)
        {
            return Ok(None);
        }
        let certified = certs::certified_key(&cert, &key)?;
        self.last = Some((cert, key));
        Ok(Some(certified))
    }
}
