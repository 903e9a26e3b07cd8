//! The I/O side of the serving certificate: a hot-swappable rustls certificate resolver,
//! the certificate Secret (read, create, replace with optimistic concurrency), the CA bundle
//! of the `ValidatingWebhookConfiguration`, and PEM files on disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{self, Bundle, CA_CRT, CA_KEY, Lifetimes, Plan, TLS_CRT, TLS_KEY};

/// Attempts at a read-modify-write before giving up on repeated conflicts.
const ATTEMPTS: usize = 5;

/// Serves whichever certificate was stored last; swapped without restarting the listener.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    /// A resolver serving `key`.
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// Serves `key` from the next handshake on.
    pub fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }

    /// The certificate served now.
    pub fn get(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Reads the bundle stored in a Secret (`None` unless all four keys hold UTF-8 text).
pub fn bundle_from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| -> Option<String> { String::from_utf8(data.get(k)?.0.clone()).ok() };
    Some(Bundle {
        ca_crt: text(CA_CRT)?,
        ca_key: text(CA_KEY)?,
        tls_crt: text(TLS_CRT)?,
        tls_key: text(TLS_KEY)?,
    })
}

/// Writes the bundle's four keys into `data`, keeping any other key.
fn put_bundle(data: &mut BTreeMap<String, ByteString>, bundle: &Bundle) {
    for (k, v) in [
        (CA_CRT, &bundle.ca_crt),
        (CA_KEY, &bundle.ca_key),
        (TLS_CRT, &bundle.tls_crt),
        (TLS_KEY, &bundle.tls_key),
    ] {
        data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
    }
}

/// Whether a kube error is a 409 (AlreadyExists on create, Conflict on replace).
fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Makes sure Secret `name` holds a bundle that is good for `dns_names` for at least
/// `lifetimes.rotate_before`, generating and storing one when it does not (see
/// [`certs::plan`]). Two replicas racing write with `resourceVersion` preconditions; the
/// loser re-reads and adopts the winner's bundle. Returns the bundle in force.
pub async fn ensure_secret(
    api: &Api<Secret>,
    name: &str,
    dns_names: &[String],
    lifetimes: &Lifetimes,
) -> anyhow::Result<Bundle> {
    for _ in 0..ATTEMPTS {
        let current = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading Secret {name}"))?;
        let stored = current.as_ref().and_then(bundle_from_secret);
        let (bundle, new_ca, reason) =
            match certs::plan(stored.as_ref(), dns_names, SystemTime::now(), lifetimes)? {
                Plan::Keep => {
                    if let Some(b) = stored {
                        return Ok(b);
                    }
                    anyhow::bail!("internal: kept a bundle that does not exist");
                }
                Plan::Replace {
                    bundle,
                    new_ca,
                    reason,
                } => (bundle, new_ca, reason),
            };
        let result = match current {
            None => {
                let mut data = BTreeMap::new();
                put_bundle(&mut data, &bundle);
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_owned(),
                            "ferrolb-controller".to_owned(),
                        )])),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".to_owned()),
                    data: Some(data),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &secret).await
            }
            Some(mut secret) => {
                put_bundle(secret.data.get_or_insert_with(BTreeMap::new), &bundle);
                api.replace(name, &PostParams::default(), &secret).await
            }
        };
        match result {
            Ok(_) => {
                tracing::info!(secret = name, new_ca, %reason, "stored a new webhook serving certificate");
                return Ok(bundle);
            }
            Err(e) if is_conflict(&e) => {
                tracing::debug!(
                    secret = name,
                    "certificate Secret changed concurrently; re-reading"
                );
            }
            Err(e) => return Err(e).with_context(|| format!("writing Secret {name}")),
        }
    }
    anyhow::bail!("Secret {name} kept changing during {ATTEMPTS} attempts")
}

/// Sets `caBundle` of every webhook of `ValidatingWebhookConfiguration` `name` to `ca_pem`
/// (only writing when something differs). A missing configuration is logged and skipped.
pub async fn patch_ca_bundle(
    client: &kube::Client,
    name: &str,
    ca_pem: &str,
) -> anyhow::Result<()> {
    if name.is_empty() {
        return Ok(());
    }
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    for _ in 0..ATTEMPTS {
        let Some(mut config) = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading ValidatingWebhookConfiguration {name}"))?
        else {
            tracing::info!(
                configuration = name,
                "ValidatingWebhookConfiguration not found; not setting its caBundle"
            );
            return Ok(());
        };
        let want = ByteString(ca_pem.as_bytes().to_vec());
        let mut changed = false;
        for webhook in config.webhooks.iter_mut().flatten() {
            if webhook.client_config.ca_bundle.as_ref() != Some(&want) {
                webhook.client_config.ca_bundle = Some(want.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        match api.replace(name, &PostParams::default(), &config).await {
            Ok(_) => {
                tracing::info!(configuration = name, "updated the webhook caBundle");
                return Ok(());
            }
            Err(e) if is_conflict(&e) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("updating ValidatingWebhookConfiguration {name}"));
            }
        }
    }
    anyhow::bail!("ValidatingWebhookConfiguration {name} kept changing during {ATTEMPTS} attempts")
}

/// Reads a PEM certificate chain and key from files: (cert bytes, key bytes).
pub fn read_files(cert: &Path, key: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let c = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    Ok((c, k))
}
