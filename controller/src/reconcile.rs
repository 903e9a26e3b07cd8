//! Service reconciler: watches Services, Namespaces and ferrolb's configuration objects,
//! keeps the allocator in step with them and writes each Service's addresses, pool
//! annotation, `ferrolb.io/LoadBalancerReady` condition and Events.
//!
//! # Shape
//! One task owns the pure [`state::State`]. Watch streams (kube-rs `watcher`, with
//! backoff) feed it; after each batch of events [`state::State::step`] returns the writes,
//! which run concurrently across objects and in order per object. A failed write marks the
//! object for another try a second later.
//!
//! # Rules kept from MetalLB
//! - Nothing is decided until every watch has listed once and a valid configuration
//!   exists; then every Service's status addresses are restored (already-assigned
//!   Services first) before anything is allocated (`initialLoadPerformed`). Only then does
//!   [`Handle::is_ready`] turn true.
//! - An invalid configuration never replaces the last good one; the offending objects get
//!   a `Valid=False` condition naming field and reason, and a log line.
//! - A deleted Service (or one that is no longer a LoadBalancer of our class) is released
//!   from the in-memory allocator when the watch reports it. No finalizer is needed: the
//!   allocator is rebuilt from Service status on restart, so a delete missed while the
//!   controller was down cannot leak an address, and a re-list drops vanished Services.
//! - Pending Services are retried whenever an address is freed or the pools change.
//!
//! # Writes
//! The pool annotation goes by merge patch on the Service, addresses and the condition by
//! merge patch on its status subresource, Events as `events.k8s.io/v1` objects created
//! directly; each only when it differs from what the object carries. Event spam is avoided
//! by announcing a failure once per (reason, message) in [`state::State`], so kube's
//! `Recorder` (which keeps every Event in a cache for series aggregation, tens of
//! megabytes at 10k Services) is not used.
//!
//! # Metrics
//! [`Handle::metrics`] is the registry ([`crate::metrics::Metrics`]) the reconciler keeps
//! current: after each batch the decision counts of [`state::State::take_counts`], the
//! pool gauges of the allocator, pending Services, configuration validity and the batch
//! duration (decisions plus writes); leadership changes and failed writes as they happen.
//!
//! # High availability
//! With [`Options::leader_election`], replicas compete for a Lease (`kube-lease-manager`).
//! Every replica runs the watches, so a standby's caches stay warm, but only the holder
//! decides and writes. On takeover the new leader re-lists Services (its watch may lag
//! behind the previous leader's last writes; older watch copies are then ignored by
//! `resourceVersion`) and runs the initial load again, so no address moves. A leader that
//! stops releases the Lease at once; one that dies is replaced when the Lease expires.
//! As with any Lease-based election, a leader cut off from the API server may still
//! finish an in-flight write after its Lease expired.

pub mod state;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::allocator::ServiceKey;
use crate::metrics::Metrics;
use state::{Action, ConfigKind, ConfigObject, ServiceSnapshot, Severity, State, StateOptions};

/// Field manager / Event reporter name of the controller.
pub const MANAGER: &str = "ferrolb-controller";

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespace of ferrolb's configuration objects.
    pub namespace: String,
    /// `--lb-class`.
    pub lb_class: Option<String>,
    /// Event reporting instance (e.g. the pod name); `None`: the host name.
    pub instance: Option<String>,
    /// Writes in flight at once.
    pub concurrency: usize,
    /// Lease-based leader election; `None`: this replica always leads (single replica).
    pub leader_election: Option<LeaderElection>,
}

/// Leader election by a `coordination.k8s.io/v1` Lease in the controller's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// Name of the Lease.
    pub lease_name: String,
    /// Identity of this replica (unique among replicas, e.g. the pod name).
    pub identity: String,
    /// Seconds a lease stays valid after its last renewal.
    pub duration_secs: u64,
    /// Seconds before expiry at which the holder renews (less than `duration_secs`).
    pub grace_secs: u64,
}

impl LeaderElection {
    /// Lease `ferrolb-controller` held by `identity`, 15 s validity renewed 5 s early.
    pub fn new(identity: impl Into<String>) -> LeaderElection {
        LeaderElection {
            lease_name: MANAGER.into(),
            identity: identity.into(),
            duration_secs: 15,
            grace_secs: 5,
        }
    }
}

impl Options {
    /// Options for `namespace` with defaults elsewhere.
    pub fn new(namespace: impl Into<String>) -> Options {
        Options {
            namespace: namespace.into(),
            lb_class: None,
            instance: None,
            concurrency: 32,
            leader_election: None,
        }
    }
}

/// Shared view of a running reconciler.
#[derive(Debug, Clone, Default)]
pub struct Handle {
    ready: Arc<AtomicBool>,
    leader: Arc<AtomicBool>,
    synced: Arc<AtomicBool>,
    metrics: Metrics,
}

impl Handle {
    /// A handle that is not ready, with a fresh metrics registry.
    pub fn new() -> Handle {
        Handle::default()
    }

    /// A handle that is not ready, recording into `metrics`.
    pub fn with_metrics(metrics: Metrics) -> Handle {
        Handle {
            metrics,
            ..Handle::default()
        }
    }

    /// The metrics registry the reconciler updates; `handle.metrics().render()` is the
    /// body of `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Release);
        self.metrics.set_leader(leader);
        if !leader {
            // A standby knows no allocations.
            self.metrics.clear_pools();
            self.metrics.set_pending(0);
        }
    }

    /// Whether the initial load is done: this replica leads and decides.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether this replica holds the lease (always true without leader election).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Whether every watch has listed once (a standby with warm caches), for `/readyz` of
    /// a standby replica.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

enum Msg {
    Service(WatchEvent<Service>),
    Namespace(WatchEvent<Namespace>),
    Config(ConfigKind, WatchEvent<ConfigObject>),
    Retry(ServiceKey),
    RetryConfig(ConfigKind, String),
    WatchError(String),
}

/// Per-watch list buffer, so a re-list replaces the snapshot atomically.
#[derive(Default)]
struct Relist {
    /// Services as compact snapshots: a list of 10k typed Services would take ~30 MiB.
    services: Option<Vec<ServiceSnapshot>>,
    namespaces: Option<Vec<Namespace>>,
    config: BTreeMap<ConfigKind, Vec<ConfigObject>>,
    synced: std::collections::BTreeSet<String>,
}

const WATCHES: usize = 2 + ConfigKind::ALL.len();

/// Objects per page of the initial lists. A page is held whole, as typed objects with their
/// `managedFields`, until the watcher has handed out its last object (about 5 KB per
/// Service), so 1000 keeps that peak near 5 MiB while a restart with 10k Services still
/// lists in ten round trips.
const LIST_PAGE_SIZE: u32 = 1_000;

/// Services converged per batch: the writes of one batch (merge patches as JSON values,
/// Event references) are held in memory until they are done, about 5 KB per Service, so
/// the 10k Services of an initial load go out in slices instead of all at once.
const SERVICES_PER_BATCH: usize = 1_000;

fn watch_all<K>(api: Api<K>) -> BoxStream<'static, Result<WatchEvent<K>, watcher::Error>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    // Larger pages than the default 500: fewer round trips at 10k Services.
    watcher::watcher(api, watcher::Config::default().page_size(LIST_PAGE_SIZE))
        .modify(slim)
        .default_backoff()
        .boxed()
}

/// Drops what the controller never reads and that dominates a cached object's memory:
/// `managedFields` (nested JSON maps) and kubectl's last-applied annotation (a copy of the
/// whole object). Writes are merge patches of our own fields, so nothing is lost.
fn slim<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// kubectl's client-side-apply annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn config_stream<K>(
    client: &Client,
    ns: &str,
    kind: ConfigKind,
    wrap: fn(K) -> ConfigObject,
) -> BoxStream<'static, Msg>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watch_all(Api::<K>::namespaced(client.clone(), ns))
        .map(move |e| match e {
            Ok(ev) => Msg::Config(kind, map_event(ev, wrap)),
            Err(e) => Msg::WatchError(format!("{}: {e}", kind.kind())),
        })
        .boxed()
}

fn map_event<K, T>(ev: WatchEvent<K>, f: fn(K) -> T) -> WatchEvent<T> {
    match ev {
        WatchEvent::Apply(o) => WatchEvent::Apply(f(o)),
        WatchEvent::Delete(o) => WatchEvent::Delete(f(o)),
        WatchEvent::Init => WatchEvent::Init,
        WatchEvent::InitApply(o) => WatchEvent::InitApply(f(o)),
        WatchEvent::InitDone => WatchEvent::InitDone,
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Runs the reconciler until `shutdown` resolves. Returns an error only for a broken
/// setup; API errors are logged and retried.
pub async fn run(
    client: Client,
    opts: Options,
    handle: Handle,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let ns = opts.namespace.clone();
    let mut streams: SelectAll<BoxStream<'static, Msg>> = SelectAll::new();
    streams.push(
        watch_all(Api::<Service>::all(client.clone()))
            .map(|e| match e {
                Ok(ev) => Msg::Service(ev),
                Err(e) => Msg::WatchError(format!("Service: {e}")),
            })
            .boxed(),
    );
    streams.push(
        watch_all(Api::<Namespace>::all(client.clone()))
            .map(|e| match e {
                Ok(ev) => Msg::Namespace(ev),
                Err(e) => Msg::WatchError(format!("Namespace: {e}")),
            })
            .boxed(),
    );
    streams.push(config_stream::<IPAddressPool>(
        &client,
        &ns,
        ConfigKind::Pool,
        ConfigObject::Pool,
    ));
    streams.push(config_stream::<L2Advertisement>(
        &client,
        &ns,
        ConfigKind::L2Advertisement,
        ConfigObject::L2Advertisement,
    ));
    streams.push(config_stream::<BGPAdvertisement>(
        &client,
        &ns,
        ConfigKind::BgpAdvertisement,
        ConfigObject::BgpAdvertisement,
    ));
    streams.push(config_stream::<BGPPeer>(
        &client,
        &ns,
        ConfigKind::BgpPeer,
        ConfigObject::BgpPeer,
    ));
    streams.push(config_stream::<BFDProfile>(
        &client,
        &ns,
        ConfigKind::BfdProfile,
        ConfigObject::BfdProfile,
    ));
    streams.push(config_stream::<Community>(
        &client,
        &ns,
        ConfigKind::Community,
        ConfigObject::Community,
    ));
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<Msg>();

    let writer = Writer {
        client: client.clone(),
        namespace: ns.clone(),
        instance: opts.instance.clone().unwrap_or_else(|| MANAGER.into()),
        concurrency: opts.concurrency.max(1),
        metrics: handle.metrics.clone(),
    };
    let mut state = State::new(StateOptions {
        namespace: ns.clone(),
        lb_class: opts.lb_class.clone(),
    });
    let mut relist = Relist::default();
    let (mut leader_rx, lease_task) = match &opts.leader_election {
        Some(le) => {
            let manager =
                kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
                    .with_namespace(ns.clone())
                    .with_identity(le.identity.clone())
                    .with_duration(le.duration_secs)
                    .with_grace(le.grace_secs)
                    .build()
                    .await
                    .context("setting up the leader-election Lease")?;
            let (rx, task) = manager.watch().await;
            (Some(rx), Some(task))
        }
        None => (None, None),
    };
    let mut leading = leader_rx.is_none();
    handle.set_leader(leading);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Services left over by a bounded batch: take what has arrived, but do not wait.
        let busy = leading && state.has_due_services();
        let first = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            m = streams.next() => match m {
                Some(m) => Some(m),
                None => anyhow::bail!("every watch stream ended"),
            },
            Some(m) = retry_rx.recv() => Some(m),
            changed = async {
                match leader_rx.as_mut() {
                    Some(rx) => rx.changed().await.map(|()| *rx.borrow_and_update()),
                    None => std::future::pending().await,
                }
            } => {
                let now_leader = changed.map_err(|_| anyhow::anyhow!("the lease manager stopped"))?;
                if now_leader != leading {
                    leading = now_leader;
                    handle.set_leader(leading);
                    if leading {
                        tracing::info!("acquired the lease; taking over");
                        // A fresh consistent list: the caches may lag behind the last
                        // writes of the previous leader.
                        if let Err(e) = relist_services(&client, &mut state).await {
                            tracing::warn!(error = %e, "listing Services at takeover failed; using the watch cache");
                        }
                        state.take_over();
                    } else {
                        tracing::warn!("lost the lease; standing by");
                        handle.ready.store(false, Ordering::Release);
                        state.stand_down();
                    }
                }
                None
            }
            () = std::future::ready(()), if busy => None,
        };
        if let Some(m) = first {
            handle_msg(&mut state, &mut relist, m);
        }
        // Drain what is already there, so a burst becomes one batch.
        for _ in 0..4096 {
            let next = match streams.next().now_or_never() {
                Some(Some(m)) => Some(m),
                _ => retry_rx.try_recv().ok(),
            };
            match next {
                Some(m) => handle_msg(&mut state, &mut relist, m),
                None => break,
            }
        }
        if relist.synced.len() == WATCHES && !handle.is_synced() {
            handle.synced.store(true, Ordering::Release);
            tracing::info!(
                since_start_ms = started.elapsed().as_millis() as u64,
                "every watch listed"
            );
        }
        if !leading {
            continue;
        }
        let step_started = std::time::Instant::now();
        let actions = state.step_at_most(&now(), SERVICES_PER_BATCH);
        if state.initial_load_done() && !handle.is_ready() {
            handle.ready.store(true, Ordering::Release);
            tracing::info!(
                pending = state.pending().len(),
                since_start_ms = started.elapsed().as_millis() as u64,
                initial_load_ms = step_started.elapsed().as_millis() as u64,
                "initial load done; controller ready"
            );
        }
        let metrics = handle.metrics();
        metrics.add(&state.take_counts());
        if state.initial_load_done() {
            metrics.set_pools(&state.allocator().all_counters());
            metrics.set_pending(state.pending().len());
        }
        metrics.set_config_valid(state.config_loaded() && state.config_errors().is_empty());
        if !actions.is_empty() {
            for failed in writer.execute(actions).await {
                let tx = retry_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = tx.send(failed);
                });
            }
        }
        metrics.observe_reconcile(step_started.elapsed());
    }
    handle.ready.store(false, Ordering::Release);
    handle.set_leader(false);
    // Dropping the receiver makes the lease task release the Lease, so a standby takes
    // over at once instead of waiting for the lease to expire.
    drop(leader_rx);
    if let Some(task) = lease_task {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "lease task failed"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
    }
    tracing::info!("reconciler stopped");
    Ok(())
}

/// Lists every Service in pages (one consistent snapshot) into `state`.
async fn relist_services(client: &Client, state: &mut State) -> Result<(), kube::Error> {
    let api = Api::<Service>::all(client.clone());
    let mut params = kube::api::ListParams::default().limit(LIST_PAGE_SIZE);
    loop {
        let page = api.list(&params).await?;
        for svc in page.items {
            state.apply_service(svc);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

fn handle_msg(state: &mut State, relist: &mut Relist, msg: Msg) {
    match msg {
        Msg::Service(ev) => match ev {
            WatchEvent::Apply(s) => state.apply_service(s),
            WatchEvent::Delete(s) => state.delete_service(&ServiceKey::new(
                s.metadata.namespace.unwrap_or_default(),
                s.metadata.name.unwrap_or_default(),
            )),
            WatchEvent::Init => relist.services = Some(Vec::new()),
            WatchEvent::InitApply(s) => {
                let snap = state.snapshot(&s);
                relist.services.get_or_insert_with(Vec::new).push(snap);
            }
            WatchEvent::InitDone => {
                state.replace_snapshots(relist.services.take().unwrap_or_default());
                synced(state, relist, "Service");
            }
        },
        Msg::Namespace(ev) => match ev {
            WatchEvent::Apply(n) => state.apply_namespace(&n),
            WatchEvent::Delete(n) => {
                state.delete_namespace(n.metadata.name.as_deref().unwrap_or_default())
            }
            WatchEvent::Init => relist.namespaces = Some(Vec::new()),
            WatchEvent::InitApply(n) => relist.namespaces.get_or_insert_with(Vec::new).push(n),
            WatchEvent::InitDone => {
                state.replace_namespaces(&relist.namespaces.take().unwrap_or_default());
                synced(state, relist, "Namespace");
            }
        },
        Msg::Config(kind, ev) => match ev {
            WatchEvent::Apply(o) => state.apply_config(o),
            WatchEvent::Delete(o) => state.delete_config(kind, &o.name()),
            WatchEvent::Init => {
                relist.config.insert(kind, Vec::new());
            }
            WatchEvent::InitApply(o) => relist.config.entry(kind).or_default().push(o),
            WatchEvent::InitDone => {
                state.replace_config(kind, relist.config.remove(&kind).unwrap_or_default());
                synced(state, relist, kind.kind());
            }
        },
        Msg::Retry(key) => state.mark_dirty(key),
        Msg::RetryConfig(kind, name) => state.mark_config_unwritten(kind, &name),
        Msg::WatchError(e) => tracing::warn!(error = %e, "watch failed; retrying with backoff"),
    }
}

fn synced(state: &mut State, relist: &mut Relist, what: &str) {
    relist.synced.insert(what.to_owned());
    if relist.synced.len() == WATCHES {
        state.mark_synced();
    }
}

struct Writer {
    client: Client,
    namespace: String,
    /// `reportingInstance` of our Events.
    instance: String,
    concurrency: usize,
    metrics: Metrics,
}

/// The `write` label of `ferrolb_api_write_errors_total` for an action.
fn write_kind(a: &Action) -> &'static str {
    match a {
        Action::PatchServiceMeta { .. } => "ServiceMetadata",
        Action::PatchServiceStatus { .. } => "ServiceStatus",
        Action::Event { .. } => "Event",
        Action::PatchConfigStatus { .. } => "ConfigStatus",
    }
}

impl Writer {
    /// Performs the actions, in order per object and concurrently across objects;
    /// returns retry messages for the objects whose writes failed.
    async fn execute(&self, actions: Vec<Action>) -> Vec<Msg> {
        let mut groups: BTreeMap<String, Vec<Action>> = BTreeMap::new();
        for a in actions {
            groups.entry(a.object()).or_default().push(a);
        }
        futures::stream::iter(groups.into_values())
            .map(|group| self.run_group(group))
            .buffer_unordered(self.concurrency)
            .filter_map(|r| async move { r })
            .collect()
            .await
    }

    async fn run_group(&self, group: Vec<Action>) -> Option<Msg> {
        for a in group {
            if let Err((e, retry)) = self.perform(&a).await {
                self.metrics.write_error(write_kind(&a));
                tracing::warn!(object = %a.object(), error = %e, "write failed");
                return retry;
            }
        }
        None
    }

    async fn perform(&self, a: &Action) -> Result<(), (kube::Error, Option<Msg>)> {
        let pp = PatchParams::apply(MANAGER);
        let pp = PatchParams {
            field_manager: pp.field_manager,
            ..PatchParams::default()
        };
        let not_found = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
        match a {
            Action::PatchServiceMeta { key, patch } | Action::PatchServiceStatus { key, patch } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
                let r = if matches!(a, Action::PatchServiceMeta { .. }) {
                    api.patch(&key.name, &pp, &Patch::Merge(patch)).await
                } else {
                    api.patch_status(&key.name, &pp, &Patch::Merge(patch)).await
                };
                match r {
                    Ok(_) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err((e, Some(Msg::Retry(key.clone())))),
                }
            }
            Action::Event {
                regarding, event, ..
            } => {
                let now = Timestamp::now();
                let ev = K8sEvent {
                    metadata: kube::api::ObjectMeta {
                        namespace: regarding.namespace.clone(),
                        name: Some(format!(
                            "{}.{:x}",
                            regarding.name.as_deref().unwrap_or(MANAGER),
                            now.as_nanosecond()
                        )),
                        ..Default::default()
                    },
                    action: Some("Allocate".into()),
                    reason: Some(event.reason.clone()),
                    note: Some(event.note.clone()),
                    type_: Some(
                        match event.severity {
                            Severity::Normal => "Normal",
                            Severity::Warning => "Warning",
                        }
                        .into(),
                    ),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(regarding.clone()),
                    reporting_controller: Some(MANAGER.into()),
                    reporting_instance: Some(self.instance.clone()),
                    ..Default::default()
                };
                // An Event lost is not worth a retry of the whole Service.
                let ns = regarding.namespace.as_deref().unwrap_or("default");
                Api::<K8sEvent>::namespaced(self.client.clone(), ns)
                    .create(&kube::api::PostParams::default(), &ev)
                    .await
                    .map(|_| ())
                    .map_err(|e| (e, None))
            }
            Action::PatchConfigStatus { kind, name, patch } => {
                let r = match kind {
                    ConfigKind::Pool => self.patch_status::<IPAddressPool>(name, patch, &pp).await,
                    ConfigKind::L2Advertisement => {
                        self.patch_status::<L2Advertisement>(name, patch, &pp).await
                    }
                    ConfigKind::BgpAdvertisement => {
                        self.patch_status::<BGPAdvertisement>(name, patch, &pp)
                            .await
                    }
                    ConfigKind::BgpPeer => self.patch_status::<BGPPeer>(name, patch, &pp).await,
                    ConfigKind::BfdProfile => {
                        self.patch_status::<BFDProfile>(name, patch, &pp).await
                    }
                    ConfigKind::Community => self.patch_status::<Community>(name, patch, &pp).await,
                };
                match r {
                    Ok(()) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err((e, Some(Msg::RetryConfig(*kind, name.clone())))),
                }
            }
        }
    }

    async fn patch_status<K>(
        &self,
        name: &str,
        patch: &serde_json::Value,
        pp: &PatchParams,
    ) -> Result<(), kube::Error>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        api.patch_status(name, pp, &Patch::Merge(patch))
            .await
            .map(|_| ())
    }
}
