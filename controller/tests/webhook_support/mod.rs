//! Shared fixtures of the webhook tests: an in-memory API server with the CRDs and the
//! webhook configuration, a webhook running against it, and a TLS client that trusts only
//! a given CA.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrolb_controller::webhook::{WebhookOptions, serve_on};
use ferrolb_e2e::apiserver::ApiServer;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::reconcile_support::NS;
/// Name the clients verify.
pub const SERVER_NAME: &str = "ferrolb-webhook.ferrolb-system.svc";
/// Certificate Secret of [`WebhookOptions::new`].
pub const SECRET: &str = "ferrolb-webhook-cert";

/// An API server with the CRDs, the namespaces and the `ValidatingWebhookConfiguration` of
/// `deploy/webhook` (its first document).
pub async fn server() -> ApiServer {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = crate::reconcile_support::server().await;
    let manifest =
        std::fs::read_to_string(root.join("deploy/webhook/validatingwebhookconfiguration.yaml"))
            .expect("read the webhook manifest");
    let first = manifest.split("\n---\n").next().expect("first document");
    let vwc: Value = serde_yaml::from_str(first).expect("webhook manifest is YAML");
    assert_eq!(vwc["kind"], "ValidatingWebhookConfiguration");
    server
        .insert(vwc)
        .expect("insert the webhook configuration");
    server
}

/// A running webhook.
pub struct Webhook {
    /// Bound address.
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<anyhow::Result<()>>,
}

impl Webhook {
    /// Starts a webhook on 127.0.0.1:0 against `server` with `opts`.
    pub async fn start(server: &ApiServer, opts: WebhookOptions) -> Webhook {
        let client = server.client().expect("client");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(serve_on(client, listener, opts, async move {
            let _ = rx.await;
        }));
        Webhook {
            addr,
            stop: Some(tx),
            join,
        }
    }

    /// Stops the webhook and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.join)
            .await
            .expect("webhook task")
            .expect("webhook result");
    }
}

/// Options for the tests: namespace [`NS`], defaults otherwise.
pub fn options() -> WebhookOptions {
    WebhookOptions::new(NS)
}

/// Polls `cond` every 20 ms until it returns `Some`; panics with `what` after 30 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One key of the Secret as text.
pub fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?.0.clone();
    String::from_utf8(bytes).ok()
}

/// The certificate Secret, once it holds all four keys.
pub async fn secret(server: &ApiServer) -> Option<Secret> {
    let api: Api<Secret> = Api::namespaced(server.client().ok()?, NS);
    let s = api.get_opt(SECRET).await.ok()??;
    ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        .iter()
        .all(|k| secret_text(&s, k).is_some())
        .then_some(s)
}

/// The `caBundle` of every webhook of `ferrolb-webhook`, as text.
pub async fn ca_bundles(server: &ApiServer) -> Vec<String> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(server.client().expect("client"));
    let vwc = api
        .get("ferrolb-webhook")
        .await
        .expect("read the configuration");
    vwc.webhooks
        .unwrap_or_default()
        .iter()
        .map(|w| {
            String::from_utf8(
                w.client_config
                    .ca_bundle
                    .clone()
                    .map(|b| b.0)
                    .unwrap_or_default(),
            )
            .expect("utf-8 caBundle")
        })
        .collect()
}

/// An HTTP response read by [`request`].
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// Leaf certificate the server presented.
    pub leaf: CertificateDer<'static>,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends one HTTP/1.1 request over TLS to `addr`, trusting only the CAs of `ca_pem` and
/// verifying [`SERVER_NAME`].
pub async fn request(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<HttpResponse, String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(ca.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first().cloned())
        .ok_or("no peer certificate")?
        .into_owned();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {SERVER_NAME}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // The server may close without a TLS close_notify; what was read is enough.
    let _ = tls.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok(HttpResponse {
        status,
        body: raw[split + 4..].to_vec(),
        leaf,
    })
}

/// An `AdmissionReview` (v1) for `op` on `object`.
pub fn admission_review(uid: &str, op: &str, object: Value) -> Value {
    let kind = object["kind"].clone();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ferrolb.io", "version": "v1beta1", "kind": kind},
            "resource": {"group": "ferrolb.io", "version": "v1beta1", "resource": "ipaddresspools"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": op,
            "userInfo": {"username": "tester"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

/// An `IPAddressPool` in [`NS`].
pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"addresses": addresses},
    })
}
