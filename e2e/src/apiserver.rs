//! In-memory Kubernetes API server: a **test component** of the ferrolb lab, not a product
//! part. It speaks the real Kubernetes REST and watch protocol over plain HTTP on 127.0.0.1
//! so the unchanged kube-rs code of the controller and speaker runs against it without a
//! cluster.
//!
//! What it serves:
//! - Generic storage for any group/version/resource, core (`/api/v1/...`) and grouped
//!   (`/apis/<group>/<version>/...`), namespaced, cluster-scoped and all-namespaces paths.
//!   Built-ins: namespaces, nodes, services, endpoints, pods, secrets, configmaps,
//!   serviceaccounts, events, `discovery.k8s.io/v1` endpointslices, `coordination.k8s.io/v1`
//!   leases, `events.k8s.io/v1` events and `apiextensions.k8s.io/v1` CRDs. Creating a CRD
//!   (over HTTP, by [`ApiServer::insert`] or from YAML at start) registers its served versions,
//!   scope and `/status` subresource; deleting it removes the resource and its objects.
//! - Discovery: `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`,
//!   `/version`, `/healthz`.
//! - Verbs get, list (label and field selectors, `limit`/`continue`), create (generateName,
//!   uid, creationTimestamp, generation), update (409 Conflict on a stale resourceVersion;
//!   generation bumps when anything outside metadata/status changes; no-op writes keep the
//!   version), delete (finalizers set deletionTimestamp; the object goes when they are
//!   emptied), deletecollection, patch (merge, JSON, strategic and server-side apply with
//!   field ownership and conflicts: see [`patch`] and [`fields`] for the simplifications)
//!   and the `/status` subresource (status writes change only `.status`, main writes leave
//!   `.status` alone; create drops `.status` for kinds that have the subresource, so seed
//!   e.g. Ready Nodes with [`ApiServer::insert`] or a status write). Failures are `Status`
//!   objects (kind Status, status Failure, reason and code).
//! - Watch with a global, etcd-like decimal resourceVersion and a bounded history ring:
//!   replay after a version, 410 Expired `ERROR` events when it fell out of history,
//!   `sendInitialEvents` with the `k8s.io/initial-events-end` bookmark, periodic bookmarks,
//!   `timeoutSeconds`, selectors with ADDED/DELETED on selector transitions.
//!
//! Simplifications (fine for a lab, documented so nobody relies on them): no auth, no
//! admission, no OpenAPI schema validation or defaulting, no field pruning, no version
//! conversion (an object read at another version only has its `apiVersion` rewritten), no
//! namespace existence check, namespace deletion cascades immediately, no cluster IP or node
//! port allocation, delete ignores grace periods and propagation policy, `dryRun` is refused
//! with 400, lists always read the current state (a `resourceVersionMatch=Exact` list for an
//! older version is 410), and `continue` pages continue over the live state (events between
//! pages are still replayed by a watch from the list's version). Updates without a
//! `metadata.resourceVersion` are unconditional for every kind.

pub mod errors;
pub mod fields;
pub mod patch;
pub mod registry;
pub mod route;
pub mod selector;
mod server;
pub mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Deserialize as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use errors::ApiError;
use server::{RunState, Shared};
use store::Store;

/// Start options.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Number of change events kept for watch replay; older versions get 410 Gone.
    pub history_limit: usize,
    /// YAML files or directories (every `*.yaml`/`*.yml`, sorted) loaded at start, e.g.
    /// `deploy/crds`: multi-document manifests of CRDs and any other served objects.
    pub manifests: Vec<PathBuf>,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        ApiServerOptions {
            port: 0,
            bookmark_interval: Duration::from_secs(60),
            history_limit: 10_000,
            manifests: Vec::new(),
        }
    }
}

/// A running in-memory API server. Dropping it stops it (without waiting); prefer
/// [`ApiServer::shutdown`].
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds 127.0.0.1:`opts.port`, loads `opts.manifests` and starts serving.
    pub async fn start(opts: ApiServerOptions) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|e| {
                let hint = match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        " (port in use: pick another with --port or 0 for any free port)"
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        " (ports below 1024 need root: pick another with --port or 0)"
                    }
                    _ => "",
                };
                anyhow::Error::new(e).context(format!("binding 127.0.0.1:{}{hint}", opts.port))
            })?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32)
            ^ u64::from(addr.port());
        let shared = Arc::new(Shared::new(
            Store::new(opts.history_limit, seed),
            opts.bookmark_interval,
            addr,
        ));
        let mut server = ApiServer {
            shared: shared.clone(),
            addr,
            accept: None,
        };
        for path in &opts.manifests {
            server.load_path(path)?;
        }
        let state = shared.state.subscribe();
        server.accept = Some(tokio::spawn(server::accept_loop(shared, listener, state)));
        Ok(server)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose only cluster is this server (plain HTTP, no credentials), with
    /// context `ferrolb-lab` and namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferrolb-lab\n  cluster:\n    server: {}\n\
             users:\n- name: ferrolb-lab\n  user: {{}}\ncontexts:\n- name: ferrolb-lab\n  context:\n    \
             cluster: ferrolb-lab\n    user: ferrolb-lab\n    namespace: default\ncurrent-context: ferrolb-lab\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A kube-rs configuration for this server (default namespace `default`).
    pub fn kube_config(&self) -> kube::Config {
        let uri = self.url().parse().unwrap_or_default();
        kube::Config::new(uri)
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        kube::Client::try_from(self.kube_config())
    }

    /// Seeds an object directly (no HTTP): its `apiVersion`/`kind` pick the resource; it is
    /// created, or replaced unconditionally if it exists, with `.status` kept as given (so a
    /// Node can start Ready). Watches see it like any other change.
    pub fn insert(&self, object: Value) -> Result<Value, ApiError> {
        let now = server::now();
        self.shared.mutate(|s| s.insert(object, &now))
    }

    /// Loads a multi-document YAML string with [`Self::insert`] (CRDs register their resource).
    pub fn load_yaml(&self, yaml: &str) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
            let value = Value::deserialize(doc)
                .map_err(|e| ApiError::bad_request(format!("YAML document {i}: {e}")))?;
            if value.is_null() {
                continue;
            }
            out.push(self.insert(value).map_err(|e| ApiError {
                message: format!("YAML document {i}: {}", e.message),
                ..e
            })?);
        }
        Ok(out)
    }

    /// Loads a YAML file, or every `*.yaml`/`*.yml` file of a directory in name order.
    pub fn load_path(&self, path: &Path) -> anyhow::Result<Vec<Value>> {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut out = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            out.extend(
                self.load_yaml(&text)
                    .with_context(|| format!("loading {}", file.display()))?,
            );
        }
        Ok(out)
    }

    /// Reads an object directly (no HTTP), `None` if absent or the kind is not served.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.shared.lock();
        let info = store.registry().lookup_kind(api_version, kind)?.clone();
        store.get(&info, namespace, name).ok()
    }

    /// Simulates an API outage: open connections (watches included) are dropped and new
    /// connections are accepted and closed at once, until [`Self::resume`].
    pub fn pause(&self) {
        self.shared.state.send_replace(RunState::Refusing);
    }

    /// Like [`Self::pause`], but new connections hang unanswered until resumed (then close).
    pub fn pause_hang(&self) {
        self.shared.state.send_replace(RunState::Hanging);
    }

    /// Ends an outage started by [`Self::pause`] or [`Self::pause_hang`].
    pub fn resume(&self) {
        self.shared.state.send_if_modified(|s| {
            let paused = matches!(*s, RunState::Refusing | RunState::Hanging);
            if paused {
                *s = RunState::Running;
            }
            paused
        });
    }

    /// Whether an outage is being simulated.
    pub fn is_paused(&self) -> bool {
        matches!(
            *self.shared.state.borrow(),
            RunState::Refusing | RunState::Hanging
        )
    }

    /// Drops the watch history: every watch resuming from an older version gets 410 Gone.
    pub fn compact(&self) {
        self.shared.mutate(Store::compact);
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version()
    }

    /// Requests served so far for a verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`, `discovery`), or for `"<verb> <plural>"` (`"watch leases"`).
    pub fn request_count(&self, key: &str) -> u64 {
        self.shared.counters().get(key).copied().unwrap_or(0)
    }

    /// All request counters (see [`Self::request_count`] for the keys).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.shared.counters()
    }

    /// Stops accepting, ends watches, lets in-flight requests finish (up to 5 s) and returns.
    pub async fn shutdown(mut self) {
        self.shared.state.send_replace(RunState::Stopping);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        self.shared
            .wait_connections_closed(Duration::from_secs(5))
            .await;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shared.state.send_replace(RunState::Stopping);
        }
    }
}
