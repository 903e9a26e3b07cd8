//! The speaker agent for BGP mode: gathers inputs from Kubernetes and executes the
//! decisions of [`crate::decide`] on a [`SessionManager`].
//!
//! - Reflectors (kube-rs watchers with backoff) keep caches of the ferrolb configuration
//!   objects and Secrets in the ferrolb namespace, Nodes and Namespaces. Services and
//!   EndpointSlices (all namespaces) come in thousands, so they are cached as compact
//!   projections made on arrival ([`cache`]): a [`ServiceInfo`] per managed LoadBalancer
//!   Service (others are not kept) and the backends of each EndpointSlice. Any change wakes
//!   the reconciler, which waits until [`AgentConfig::debounce`] passes without a change
//!   (at most [`AgentConfig::debounce_max`] after the first), so a burst is decided once
//!   or a few times rather than after every event.
//! - Nothing is decided before every cache has been listed once. Watch errors never clear
//!   a cache (a re-list is swapped in only once it is complete), so while the API server
//!   is unreachable the agent keeps its sessions and keeps announcing what the last known
//!   state says.
//! - The configuration is rebuilt with [`ferrolb_config::build::build`]; an invalid
//!   configuration is logged and the last valid one stays in force.
//! - Peers selecting this node become [`PeerConfig`]s ([`peers::peers_for_node`]); the
//!   manager gets `set_peers` only when the set changed (unchanged peers keep their
//!   sessions anyway) and `set_routes` per peer when its route set changed.
//! - `ServiceBGPStatus` objects are written by a separate task ([`status::sync`]), so a
//!   slow or unreachable API server never delays route changes; failures are retried.
//!   It is handed the wanted statuses (shared, not copied) and builds each object only
//!   when writing it.
//! - [`Agent::shutdown`] stops the tasks and shuts the sessions down with a Cease; a
//!   killed process sends nothing, so the router falls back to graceful restart.

mod cache;
pub mod metrics;
pub mod peers;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use self::cache::Projected;
use self::metrics::AgentGauges;
use self::peers::PeerOptions;
use crate::bgp::update::RouteSet;
use crate::decide::{
    Backends, BgpStatus, EndpointInfo, EndpointSummary, Inputs, NodeInfo, Options, ServiceInfo,
    ServiceKey, View, decide_view, endpoints_from_slices,
};
use crate::net::{PeerConfig, RouteTarget, SessionEvent, SessionManager};

/// Settings of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Name of this node (its Node object and the `nodeName` of its endpoints).
    pub node_name: String,
    /// Namespace of ferrolb's custom resources and password Secrets.
    pub namespace: String,
    /// Only Services of this `spec.loadBalancerClass` (`None`: Services without a class).
    pub lb_class: Option<String>,
    /// Wait this long after a change before deciding, to handle bursts at once.
    pub debounce: Duration,
    /// Decide at the latest this long after the first change of a burst that goes on.
    pub debounce_max: Duration,
    /// Decision knobs.
    pub options: Options,
    /// Peer conversion knobs.
    pub peer_options: PeerOptions,
}

impl AgentConfig {
    /// Defaults for `node_name`: namespace `ferrolb-system`, no class, 100 ms debounce
    /// (at most 1 s).
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            namespace: ferrolb_crds::DEFAULT_NAMESPACE.to_owned(),
            lb_class: None,
            debounce: Duration::from_millis(100),
            debounce_max: Duration::from_secs(1),
            options: Options::default(),
            peer_options: PeerOptions::default(),
        }
    }
}

/// What the agent last handed to the session manager and the status writer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Peers configured on the manager.
    pub peers: Vec<PeerConfig>,
    /// Route set given to each peer, by peer id (shared with the session manager).
    pub routes: BTreeMap<String, Arc<RouteSet>>,
    /// `ServiceBGPStatus` content wanted for this node (shared with the status writer).
    pub statuses: Arc<BTreeMap<ServiceKey, BgpStatus>>,
    /// Errors of the last configuration build (empty when it was valid).
    pub config_errors: Vec<String>,
    /// Peers selecting this node that could not be configured, with the reason.
    pub peer_errors: Vec<String>,
}

/// A running agent; dropping it aborts its tasks without a Cease (prefer
/// [`Agent::shutdown`]).
pub struct Agent {
    manager: SessionManager,
    applied: watch::Receiver<Applied>,
    gauges: Arc<Mutex<AgentGauges>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").finish_non_exhaustive()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The caches the agent decides from.
#[derive(Clone)]
struct Stores {
    pools: Store<IPAddressPool>,
    l2_ads: Store<L2Advertisement>,
    bgp_ads: Store<BGPAdvertisement>,
    peers: Store<BGPPeer>,
    bfd: Store<BFDProfile>,
    communities: Store<Community>,
    secrets: Store<Secret>,
    nodes: Store<Node>,
    namespaces: Store<Namespace>,
    services: Projected<ServiceInfo>,
    /// Per EndpointSlice: its Service and its backends.
    slices: Projected<(ServiceKey, Vec<EndpointInfo>)>,
}

fn owned<K>(s: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    s.state().iter().map(|k| (**k).clone()).collect()
}

impl Stores {
    async fn wait_ready(&self) {
        type Wait = Pin<Box<dyn Future<Output = bool> + Send>>;
        fn w<K>(s: &Store<K>) -> Wait
        where
            K: Resource + Clone + Send + Sync + 'static,
            K::DynamicType: Eq + Hash + Clone + Send + Sync,
        {
            let s = s.clone();
            Box::pin(async move { s.wait_until_ready().await.is_ok() })
        }
        let projected = async {
            self.services.wait_ready().await;
            self.slices.wait_ready().await;
        };
        let typed = futures::future::join_all([
            w(&self.pools),
            w(&self.l2_ads),
            w(&self.bgp_ads),
            w(&self.peers),
            w(&self.bfd),
            w(&self.communities),
            w(&self.secrets),
            w(&self.nodes),
            w(&self.namespaces),
        ]);
        futures::future::join(typed, projected).await;
    }

    fn resources(&self) -> Resources {
        Resources {
            pools: owned(&self.pools),
            l2_advertisements: owned(&self.l2_ads),
            bgp_advertisements: owned(&self.bgp_ads),
            peers: owned(&self.peers),
            bfd_profiles: owned(&self.bfd),
            communities: owned(&self.communities),
            namespaces: owned(&self.namespaces),
            nodes: owned(&self.nodes),
            secrets: owned(&self.secrets),
            services: Vec::new(),
            service_l2_statuses: Vec::new(),
            service_bgp_statuses: Vec::new(),
        }
    }
}

/// Drops what the agent never reads and that dominates a cached object's memory:
/// `managedFields` (nested JSON maps) and kubectl's last-applied annotation (a copy of the
/// whole object).
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn spawn_reflector<K>(api: Api<K>, notify: Arc<Notify>, tasks: &mut Vec<JoinHandle<()>>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .modify(slim)
            .default_backoff(),
    );
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut failing = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => {
                    if failing {
                        info!(kind, "watch recovered");
                        failing = false;
                    }
                    notify.notify_one();
                }
                Err(e) => {
                    if !failing {
                        warn!(kind, error = %e, "watch failed; keeping the last known state");
                    }
                    failing = true;
                }
            }
        }
    }));
    store
}

struct Ctx {
    cfg: AgentConfig,
    manager: SessionManager,
    gauges: Arc<Mutex<AgentGauges>>,
    applied_tx: watch::Sender<Applied>,
    status_tx: watch::Sender<Option<Arc<BTreeMap<ServiceKey, BgpStatus>>>>,
}

#[derive(Default)]
struct LoopState {
    inputs: Option<Inputs>,
    applied: Applied,
}

impl Agent {
    /// Starts the watches, the reconciler and the status writer on the current tokio
    /// runtime. `client` may live on another runtime or network namespace than the
    /// `manager` (a handle: its sockets stay where it was started).
    pub fn start(client: Client, cfg: AgentConfig, manager: SessionManager) -> Agent {
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let ns = cfg.namespace.as_str();
        let stores = Stores {
            pools: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            l2_ads: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            bgp_ads: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            peers: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            bfd: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            communities: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            secrets: spawn_reflector(
                Api::namespaced(client.clone(), ns),
                notify.clone(),
                &mut tasks,
            ),
            nodes: spawn_reflector(Api::all(client.clone()), notify.clone(), &mut tasks),
            namespaces: spawn_reflector(Api::all(client.clone()), notify.clone(), &mut tasks),
            services: {
                let class = cfg.lb_class.clone();
                cache::spawn(
                    Api::<Service>::all(client.clone()),
                    // The cache key's strings are shared with the projection's key.
                    move |key, s| {
                        ServiceInfo::from_k8s(s, class.as_deref()).map(|mut info| {
                            info.key = key.clone();
                            info
                        })
                    },
                    notify.clone(),
                    &mut tasks,
                )
            },
            slices: cache::spawn(
                Api::<EndpointSlice>::all(client.clone()),
                |key, s| {
                    endpoints_from_slices([s])
                        .into_iter()
                        .next()
                        .map(|(svc, eps)| {
                            // Same namespace as the slice: share its string.
                            (ServiceKey::new(key.namespace.clone(), svc.name), eps)
                        })
                },
                notify.clone(),
                &mut tasks,
            ),
        };
        let gauges = Arc::new(Mutex::new(AgentGauges::default()));
        let (applied_tx, applied) = watch::channel(Applied::default());
        let (status_tx, status_rx) = watch::channel(None);
        tasks.push(tokio::spawn(status_writer(
            client,
            cfg.namespace.clone(),
            cfg.node_name.clone(),
            status_rx,
        )));
        tasks.push(tokio::spawn(count_events(manager.events(), gauges.clone())));
        let ctx = Ctx {
            cfg,
            manager: manager.clone(),
            gauges: gauges.clone(),
            applied_tx,
            status_tx,
        };
        tasks.push(tokio::spawn(reconcile_loop(ctx, stores, notify)));
        Agent {
            manager,
            applied,
            gauges,
            tasks,
        }
    }

    /// The session manager the agent drives.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// What the agent last applied; changes whenever peers, routes, statuses or errors do.
    pub fn applied(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    /// The Prometheus text of the sessions and the agent.
    pub fn metrics(&self) -> String {
        render_metrics(&self.manager, &self.gauges)
    }

    /// A function rendering the metrics, for [`metrics::serve`].
    pub fn metrics_fn(&self) -> impl Fn() -> String + Clone + Send + Sync + 'static {
        let manager = self.manager.clone();
        let gauges = self.gauges.clone();
        move || render_metrics(&manager, &gauges)
    }

    /// Stops watching and deciding, then shuts every session down with a Cease.
    pub async fn shutdown(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.manager.shutdown().await;
    }
}

fn render_metrics(manager: &SessionManager, gauges: &Mutex<AgentGauges>) -> String {
    let status = manager.status().borrow().clone();
    let gauges = gauges
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    metrics::render(&status, &gauges)
}

async fn count_events(mut rx: broadcast::Receiver<SessionEvent>, gauges: Arc<Mutex<AgentGauges>>) {
    loop {
        match rx.recv().await {
            Ok(SessionEvent::BfdStateChanged { peer, from, to }) => {
                info!(peer, ?from, ?to, "BFD state changed");
                let mut g = gauges.lock().unwrap_or_else(PoisonError::into_inner);
                *g.bfd_transitions.entry(peer).or_default() += 1;
            }
            Ok(SessionEvent::StateChanged { peer, from, to }) => {
                debug!(peer, ?from, ?to, "BGP state changed");
            }
            Ok(SessionEvent::SessionDown { peer, cause }) => {
                warn!(peer, ?cause, "BGP session down");
            }
            Ok(SessionEvent::EndOfRibSent { peer }) => info!(peer, "BGP session established"),
            Ok(ev) => debug!(?ev, "session event"),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "session events lagged")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// How often the status writer lists its objects again instead of writing only the
/// difference (repairs objects changed or deleted by someone else).
const STATUS_RESYNC: Duration = Duration::from_secs(300);

async fn status_writer(
    client: Client,
    namespace: String,
    node: String,
    mut rx: watch::Receiver<Option<Arc<BTreeMap<ServiceKey, BgpStatus>>>>,
) {
    // The statuses of the last successful sync, and when the server was last listed.
    let mut last: Option<Arc<BTreeMap<ServiceKey, BgpStatus>>> = None;
    let mut listed = tokio::time::Instant::now();
    loop {
        let resync_at = listed + STATUS_RESYNC;
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(resync_at), if last.is_some() => last = None,
        }
        loop {
            let desired = rx.borrow_and_update().clone();
            let Some(desired) = desired else { break };
            let full = last.is_none();
            // 10 s, plus 2 ms per object for large first writes.
            let limit = Duration::from_secs(10) + Duration::from_millis(2) * desired.len() as u32;
            let res = tokio::time::timeout(
                limit,
                status::sync(&client, &namespace, &node, &desired, last.as_deref()),
            )
            .await;
            match res {
                Ok(Ok(())) => {
                    if full {
                        listed = tokio::time::Instant::now();
                    }
                    last = Some(desired);
                    break;
                }
                Ok(Err(e)) => warn!(error = %e, "writing ServiceBGPStatus failed; retrying"),
                Err(_) => warn!("writing ServiceBGPStatus timed out; retrying"),
            }
            // Whatever was half written is found by listing.
            last = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn reconcile_loop(ctx: Ctx, stores: Stores, notify: Arc<Notify>) {
    stores.wait_ready().await;
    info!(node = %ctx.cfg.node_name, "caches synced");
    let mut st = LoopState::default();
    loop {
        reconcile(&ctx, &stores, &mut st).await;
        notify.notified().await;
        // Trailing debounce: until `debounce` passes without a change, capped.
        let cap = tokio::time::Instant::now() + ctx.cfg.debounce_max.max(ctx.cfg.debounce);
        loop {
            let quiet = (tokio::time::Instant::now() + ctx.cfg.debounce).min(cap);
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep_until(quiet) => break,
            }
            if tokio::time::Instant::now() >= cap {
                break;
            }
        }
    }
}

fn set_gauges(ctx: &Ctx, f: impl FnOnce(&mut AgentGauges)) {
    f(&mut ctx.gauges.lock().unwrap_or_else(PoisonError::into_inner));
}

async fn reconcile(ctx: &Ctx, stores: &Stores, st: &mut LoopState) {
    let cfg = &ctx.cfg;
    set_gauges(ctx, |g| g.reconciles += 1);
    let options = BuildOptions {
        namespace: cfg.namespace.clone(),
        allow_missing_references: false,
    };
    let config = match build(&stores.resources(), &options) {
        Ok(c) => {
            if !st.applied.config_errors.is_empty() {
                info!("configuration valid again");
            }
            st.applied.config_errors.clear();
            set_gauges(ctx, |g| {
                g.config_valid = true;
                g.config_loaded = true;
            });
            Some(c)
        }
        Err(errors) => {
            let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
            if msgs != st.applied.config_errors {
                error!(
                    errors = ?msgs,
                    "invalid configuration; keeping the last valid one"
                );
                st.applied.config_errors = msgs;
            }
            set_gauges(ctx, |g| g.config_valid = false);
            None
        }
    };
    let inputs = st.inputs.get_or_insert_with(|| Inputs {
        node: cfg.node_name.clone(),
        live_speakers: BTreeSet::from([cfg.node_name.clone()]),
        options: cfg.options.clone(),
        ..Inputs::default()
    });
    match config {
        Some(c) => inputs.config = c,
        None if !ctx
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .config_loaded =>
        {
            let _ = ctx.applied_tx.send_replace(st.applied.clone());
            return;
        }
        None => {}
    }
    inputs.nodes = stores
        .nodes
        .state()
        .iter()
        .filter_map(|n| NodeInfo::from_k8s(n))
        .map(|n| (n.name.clone(), n))
        .collect();
    // Decided in place over the caches (both locked for the run; the watch tasks only
    // wait for it), so no Service and no backend is copied.
    let mut decisions = stores.services.with(|services| {
        stores.slices.with(|slices| {
            let backends = SliceIndex::new(slices);
            decide_view(&View {
                node: &inputs.node,
                config: &inputs.config,
                nodes: &inputs.nodes,
                live_speakers: &inputs.live_speakers,
                options: &inputs.options,
                services,
                backends: &backends,
            })
        })
    });

    let (peers, peer_errors) = match stores.nodes.get(&ObjectRef::new(&cfg.node_name)) {
        Some(node) => peers::peers_for_node(&inputs.config, &node, cfg.peer_options),
        None => (
            Vec::new(),
            vec![format!("Node {} not found", cfg.node_name)],
        ),
    };
    if peer_errors != st.applied.peer_errors {
        if !peer_errors.is_empty() {
            error!(errors = ?peer_errors, "peers skipped");
        }
        st.applied.peer_errors = peer_errors;
    }
    if peers != st.applied.peers {
        info!(
            peers = ?peers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            "configuring BGP peers"
        );
        match ctx.manager.set_peers(peers.clone()).await {
            Ok(()) => {
                st.applied.peers = peers;
                st.applied.routes.clear();
            }
            Err(e) => error!(error = %e, "configuring BGP peers failed"),
        }
    }
    let ids: BTreeSet<&str> = st.applied.peers.iter().map(|p| p.id.as_str()).collect();
    st.applied.routes.retain(|id, _| ids.contains(id.as_str()));
    for id in ids {
        let routes = Arc::new(decisions.bgp.remove(id).unwrap_or_default());
        if st.applied.routes.get(id) == Some(&routes) {
            continue;
        }
        debug!(peer = id, prefixes = routes.len(), "setting routes");
        match ctx
            .manager
            .set_shared_routes(RouteTarget::Peer(id.to_owned()), routes.clone())
            .await
        {
            Ok(()) => {
                st.applied.routes.insert(id.to_owned(), routes);
            }
            Err(e) => error!(peer = id, error = %e, "setting routes failed"),
        }
    }
    let statuses = decisions.bgp_statuses();
    drop(decisions);
    if *st.applied.statuses != statuses || ctx.status_tx.borrow().is_none() {
        st.applied.statuses = Arc::new(statuses);
        let _ = ctx
            .status_tx
            .send_replace(Some(st.applied.statuses.clone()));
    }
    ctx.applied_tx.send_if_modified(|a| {
        let changed = *a != st.applied;
        if changed {
            *a = st.applied.clone();
        }
        changed
    });
}

/// The EndpointSlices of each Service, for one decision: references into the slice
/// cache sorted by Service, so a Service's backends are merged across its slices (by
/// [`EndpointSummary::merged`]) without copying any.
struct SliceIndex<'a>(Vec<(&'a ServiceKey, &'a [EndpointInfo])>);

impl<'a> SliceIndex<'a> {
    fn new(slices: &'a BTreeMap<cache::ObjectKey, (ServiceKey, Vec<EndpointInfo>)>) -> Self {
        let mut v: Vec<(&ServiceKey, &[EndpointInfo])> = slices
            .values()
            .map(|(svc, eps)| (svc, eps.as_slice()))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Self(v)
    }
}

impl Backends for SliceIndex<'_> {
    fn summary(&self, key: &ServiceKey) -> EndpointSummary<'_> {
        let start = self.0.partition_point(|(k, _)| *k < key);
        let end = start + self.0[start..].partition_point(|(k, _)| *k == key);
        match end - start {
            0 => EndpointSummary::default(),
            1 => EndpointSummary::of(self.0[start].1),
            _ => {
                let chunks: Vec<&[EndpointInfo]> =
                    self.0[start..end].iter().map(|(_, eps)| *eps).collect();
                EndpointSummary::merged(&chunks)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, node: &str, ready: bool) -> EndpointInfo {
        EndpointInfo {
            id: id.to_owned(),
            node: Some(node.to_owned()),
            ready,
            serving: ready,
            terminating: false,
        }
    }

    #[test]
    fn slice_index_merges_the_slices_of_each_service() {
        let web = ServiceKey::new("ns", "web");
        let db = ServiceKey::new("ns", "db");
        // Slices keyed by their own names; web has an IPv4 and an IPv6 slice listing the
        // same pod p1 (ready only in one copy) and p2 only in the IPv6 one.
        let slices = BTreeMap::from([
            (
                ServiceKey::new("ns", "web-v4"),
                (web.clone(), vec![ep("pod/p1", "a", false)]),
            ),
            (
                ServiceKey::new("ns", "db-1"),
                (db.clone(), vec![ep("pod/d1", "b", true)]),
            ),
            (
                ServiceKey::new("ns", "web-v6"),
                (
                    web.clone(),
                    vec![ep("pod/p1", "a", true), ep("pod/p2", "b", true)],
                ),
            ),
        ]);
        let index = SliceIndex::new(&slices);
        let s = index.summary(&web);
        assert!(s.any_serving);
        assert_eq!(s.usable_by_node, [("a", 1), ("b", 1)]);
        let s = index.summary(&db);
        assert_eq!(s.usable_by_node, [("b", 1)]);
        let none = index.summary(&ServiceKey::new("ns", "nothing"));
        assert_eq!(none, EndpointSummary::default());
    }
}
