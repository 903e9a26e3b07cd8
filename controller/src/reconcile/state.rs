//! The reconciler's pure core: snapshots of the watched objects, the last good
//! configuration and the allocator, and the decisions that turn them into writes.
//!
//! No client, no tokio, no clock: the I/O edge feeds watch events in
//! ([`State::apply_service`], [`State::apply_config`], ...), calls [`State::step`] with the
//! current time, and performs the returned [`Action`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_config::error::ConfigError;
use ferrolb_config::model::Config;
use ferrolb_config::pool::Pool;
use ferrolb_config::service::{Handling, ServiceView, parse_service};
use ferrolb_crds::annotations::CONDITION_LB_READY;
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::status::{
    CONDITION_VALID, CondSpec, ObservedStatus, REASON_ACCEPTED, REASON_ALLOCATED,
    REASON_CONFIGURATION_ERROR, REASON_INVALID_REQUEST, ServiceTarget, config_status_patch,
    observed_patches, pool_annotation,
};
use crate::allocator::{AllocError, Allocator, Change, ServiceKey, ServiceRequest};
use crate::metrics::Counts;
use ferrolb_config::ipset::Family;

/// Kinds of configuration objects the controller watches in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    /// `IPAddressPool`.
    Pool,
    /// `L2Advertisement`.
    L2Advertisement,
    /// `BGPAdvertisement`.
    BgpAdvertisement,
    /// `BGPPeer`.
    BgpPeer,
    /// `BFDProfile`.
    BfdProfile,
    /// `Community`.
    Community,
}

impl ConfigKind {
    /// Every kind.
    pub const ALL: [ConfigKind; 6] = [
        ConfigKind::Pool,
        ConfigKind::L2Advertisement,
        ConfigKind::BgpAdvertisement,
        ConfigKind::BgpPeer,
        ConfigKind::BfdProfile,
        ConfigKind::Community,
    ];

    /// The Kubernetes kind, as [`ConfigError::kind`] spells it.
    pub const fn kind(self) -> &'static str {
        match self {
            ConfigKind::Pool => "IPAddressPool",
            ConfigKind::L2Advertisement => "L2Advertisement",
            ConfigKind::BgpAdvertisement => "BGPAdvertisement",
            ConfigKind::BgpPeer => "BGPPeer",
            ConfigKind::BfdProfile => "BFDProfile",
            ConfigKind::Community => "Community",
        }
    }

    fn of_kind(kind: &str) -> Option<ConfigKind> {
        ConfigKind::ALL.into_iter().find(|k| k.kind() == kind)
    }
}

/// One configuration object as watched.
#[derive(Debug, Clone)]
pub enum ConfigObject {
    /// An `IPAddressPool`.
    Pool(IPAddressPool),
    /// An `L2Advertisement`.
    L2Advertisement(L2Advertisement),
    /// A `BGPAdvertisement`.
    BgpAdvertisement(BGPAdvertisement),
    /// A `BGPPeer`.
    BgpPeer(BGPPeer),
    /// A `BFDProfile`.
    BfdProfile(BFDProfile),
    /// A `Community`.
    Community(Community),
}

impl ConfigObject {
    /// The kind.
    pub fn kind(&self) -> ConfigKind {
        match self {
            ConfigObject::Pool(_) => ConfigKind::Pool,
            ConfigObject::L2Advertisement(_) => ConfigKind::L2Advertisement,
            ConfigObject::BgpAdvertisement(_) => ConfigKind::BgpAdvertisement,
            ConfigObject::BgpPeer(_) => ConfigKind::BgpPeer,
            ConfigObject::BfdProfile(_) => ConfigKind::BfdProfile,
            ConfigObject::Community(_) => ConfigKind::Community,
        }
    }

    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            ConfigObject::Pool(o) => &o.metadata,
            ConfigObject::L2Advertisement(o) => &o.metadata,
            ConfigObject::BgpAdvertisement(o) => &o.metadata,
            ConfigObject::BgpPeer(o) => &o.metadata,
            ConfigObject::BfdProfile(o) => &o.metadata,
            ConfigObject::Community(o) => &o.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    /// What a configuration build depends on: uid, generation (spec) and labels.
    fn fingerprint(
        &self,
    ) -> (
        Option<String>,
        Option<i64>,
        Option<BTreeMap<String, String>>,
    ) {
        let m = self.meta();
        (m.uid.clone(), m.generation, m.labels.clone())
    }

    fn status_json(&self) -> Value {
        let s = match self {
            ConfigObject::Pool(o) => serde_json::to_value(&o.status),
            ConfigObject::L2Advertisement(o) => serde_json::to_value(&o.status),
            ConfigObject::BgpAdvertisement(o) => serde_json::to_value(&o.status),
            ConfigObject::BgpPeer(o) => serde_json::to_value(&o.status),
            ConfigObject::BfdProfile(o) => serde_json::to_value(&o.status),
            ConfigObject::Community(o) => serde_json::to_value(&o.status),
        };
        s.unwrap_or(Value::Null)
    }
}

/// Severity of an Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An Event to publish on a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub severity: Severity,
    /// `IPAllocated`, `AllocationFailed`, `ClearAssignment`, `DeprecatedAnnotation`.
    pub reason: String,
    /// The message.
    pub note: String,
}

/// A write the I/O edge performs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Merge patch on the Service (`metadata.annotations`).
    PatchServiceMeta {
        /// The Service.
        key: ServiceKey,
        /// The merge patch.
        patch: Value,
    },
    /// Merge patch on the Service's status subresource.
    PatchServiceStatus {
        /// The Service.
        key: ServiceKey,
        /// The merge patch.
        patch: Value,
    },
    /// An Event regarding a Service.
    Event {
        /// The Service.
        key: ServiceKey,
        /// Reference to the Service object.
        regarding: ObjectReference,
        /// The Event.
        event: EventSpec,
    },
    /// Merge patch on a configuration object's status subresource.
    PatchConfigStatus {
        /// The kind.
        kind: ConfigKind,
        /// The object's name (in the controller's namespace).
        name: String,
        /// The merge patch.
        patch: Value,
    },
}

impl Action {
    /// Identity of the object written, so that writes to one object stay in order.
    pub fn object(&self) -> String {
        match self {
            Action::PatchServiceMeta { key, .. }
            | Action::PatchServiceStatus { key, .. }
            | Action::Event { key, .. } => format!("Service/{key}"),
            Action::PatchConfigStatus { kind, name, .. } => format!("{}/{name}", kind.kind()),
        }
    }
}

/// Options of the reconciler's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    /// Namespace of ferrolb's configuration objects.
    pub namespace: String,
    /// `--lb-class`: handle only Services of this class (`None`: only Services without one).
    pub lb_class: Option<String>,
}

/// Pure reconciler state. See the module documentation.
#[derive(Debug)]
pub struct State {
    opts: StateOptions,
    allocator: Allocator,
    /// Last configuration that validated (`None` until the first one).
    config: Option<Config>,
    /// Errors of the newest snapshot, if it did not validate.
    config_errors: Vec<ConfigError>,
    services: BTreeMap<ServiceKey, ServiceSnapshot>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    config_objects: BTreeMap<(ConfigKind, String), ConfigObject>,
    /// Services whose state must be recomputed.
    dirty: BTreeSet<ServiceKey>,
    /// Managed Services without addresses.
    pending: BTreeSet<ServiceKey>,
    /// Services converged at least once (their status addresses were restored then).
    known: BTreeSet<ServiceKey>,
    /// Events to publish on a Service at its next convergence.
    notices: BTreeMap<ServiceKey, Vec<EventSpec>>,
    /// Last failure announced per Service (reason, message), to avoid repeating Events.
    announced_failures: HashMap<ServiceKey, (String, String)>,
    /// Deprecated annotation keys already warned about per Service.
    warned: HashMap<ServiceKey, BTreeSet<String>>,
    config_dirty: bool,
    synced: bool,
    initial_load_done: bool,
    last_free_generation: u64,
    /// Last status patch sent per configuration object, so that an identical write is not
    /// repeated before the watch echoes the first one.
    config_written: BTreeMap<(ConfigKind, String), Value>,
    /// Decisions counted since the last [`State::take_counts`].
    counts: Counts,
}

/// What an `Event` reason means to [`State`]'s callers.
pub mod reasons {
    /// An address was assigned.
    pub const IP_ALLOCATED: &str = "IPAllocated";
    /// Allocation failed; the Service stays pending.
    pub const ALLOCATION_FAILED: &str = "AllocationFailed";
    /// The Service's previous addresses were dropped.
    pub const CLEAR_ASSIGNMENT: &str = "ClearAssignment";
    /// A `metallb.io/`-style annotation was read.
    pub const DEPRECATED_ANNOTATION: &str = "DeprecatedAnnotation";
}

fn ips_text(ips: &[std::net::IpAddr]) -> String {
    let v: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// A Service as [`State`] keeps it: the parsed request ([`ServiceView`]) and the few
/// fields the reconciler compares or writes back, instead of the whole object (a typed
/// `Service` costs about 3 KB of memory, this a fraction of it). Made by
/// [`State::snapshot`]; the parse depends only on the object and the fixed `--lb-class`.
#[derive(Debug, Clone)]
pub struct ServiceSnapshot {
    /// The parsed Service; its namespace and name are the key.
    view: ServiceView,
    /// `metadata.uid`, for the Events' `regarding`.
    uid: Option<String>,
    /// `metadata.resourceVersion` when numeric, to ignore older copies.
    resource_version: Option<u64>,
    /// `metadata.generation`, the conditions' `observedGeneration`.
    generation: Option<i64>,
    /// The raw `ferrolb.io/ip-allocated-from-pool` annotation.
    pool_annotation: Option<String>,
    /// What the status carries (`None`: no status).
    status: Option<ObservedStatus>,
}

impl ServiceSnapshot {
    /// The Service's namespace and name.
    pub fn key(&self) -> ServiceKey {
        ServiceKey::new(self.view.namespace.clone(), self.view.name.clone())
    }

    /// Whether ferrolb's marks are on the object: the pool annotation (even empty) or
    /// the `ferrolb.io/LoadBalancerReady` condition.
    fn carries_our_marks(&self) -> bool {
        self.pool_annotation.is_some()
            || self
                .status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == CONDITION_LB_READY))
    }

    /// What `Resource::object_ref` gives for the Service.
    fn object_ref(&self) -> ObjectReference {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ObjectReference {
            api_version: Some(<Service as k8s_openapi::Resource>::API_VERSION.to_owned()),
            kind: Some(<Service as k8s_openapi::Resource>::KIND.to_owned()),
            name: some(&self.view.name),
            namespace: some(&self.view.namespace),
            uid: self.uid.clone(),
            ..ObjectReference::default()
        }
    }
}

impl State {
    /// An empty state: no objects, no configuration, initial load not done.
    pub fn new(opts: StateOptions) -> State {
        State {
            opts,
            allocator: Allocator::new(Vec::<Pool>::new()),
            config: None,
            config_errors: Vec::new(),
            services: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            config_objects: BTreeMap::new(),
            dirty: BTreeSet::new(),
            pending: BTreeSet::new(),
            known: BTreeSet::new(),
            notices: BTreeMap::new(),
            announced_failures: HashMap::new(),
            warned: HashMap::new(),
            config_dirty: true,
            synced: false,
            initial_load_done: false,
            last_free_generation: 0,
            config_written: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    /// Takes the decisions counted since the last call (addresses assigned per pool and
    /// family, failures per condition reason, releases), for the metrics counters.
    ///
    /// A failure counts once per distinct (reason, message) of a Service, like its
    /// `AllocationFailed` Event, so retries do not inflate it.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// Whether a configuration has validated since this replica last took over.
    pub fn config_loaded(&self) -> bool {
        self.config.is_some()
    }

    /// The allocator (read-only), for inspection.
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// Whether every already-assigned Service has been restored and the first round of
    /// allocations ran (the controller is ready).
    pub fn initial_load_done(&self) -> bool {
        self.initial_load_done
    }

    /// Errors of the newest configuration snapshot (empty when it is the running one).
    pub fn config_errors(&self) -> &[ConfigError] {
        &self.config_errors
    }

    /// Managed Services currently without addresses.
    pub fn pending(&self) -> &BTreeSet<ServiceKey> {
        &self.pending
    }

    /// Whether Services are waiting to be converged by the next [`State::step_at_most`]
    /// (only once the initial load is done; before, nothing is decided).
    pub fn has_due_services(&self) -> bool {
        self.initial_load_done && !self.dirty.is_empty()
    }

    /// Every watch has listed its objects once: the initial load may run.
    pub fn mark_synced(&mut self) {
        self.synced = true;
    }

    /// The compact copy of `svc` this state keeps (see [`ServiceSnapshot`]), for callers
    /// that buffer Services (e.g. a re-list) before handing them over.
    pub fn snapshot(&self, svc: &Service) -> ServiceSnapshot {
        let meta = &svc.metadata;
        ServiceSnapshot {
            view: parse_service(svc, self.opts.lb_class.as_deref()),
            uid: meta.uid.clone(),
            resource_version: meta
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
            generation: meta.generation,
            pool_annotation: pool_annotation(svc),
            status: ObservedStatus::of(svc),
        }
    }

    /// A Service was added or changed. A copy older than the one held (by numeric
    /// `resourceVersion`, e.g. a watch event overtaken by a fresh list) is ignored.
    pub fn apply_service(&mut self, svc: Service) {
        let snap = self.snapshot(&svc);
        self.apply_snapshot(snap);
    }

    /// [`State::apply_service`] with a Service already turned into a [`ServiceSnapshot`].
    pub fn apply_snapshot(&mut self, snap: ServiceSnapshot) {
        let key = snap.key();
        let old_rv = self.services.get(&key).and_then(|s| s.resource_version);
        if let (Some(old), Some(new)) = (old_rv, snap.resource_version)
            && new < old
        {
            return;
        }
        self.dirty.insert(key.clone());
        self.services.insert(key, snap);
    }

    /// This replica became the leader: the allocator is rebuilt from the Services' status
    /// (the initial load runs again on the next [`State::step`]), so a standby that kept
    /// its caches warm takes over without moving an address.
    pub fn take_over(&mut self) {
        let pools: Vec<Pool> = self
            .config
            .as_ref()
            .map(|c| c.pools.values().cloned().collect())
            .unwrap_or_default();
        self.allocator = Allocator::new(pools);
        self.last_free_generation = self.allocator.free_generation();
        self.initial_load_done = false;
        self.known.clear();
        self.pending.clear();
        self.notices.clear();
        self.announced_failures.clear();
        self.config_written.clear();
        self.dirty.extend(self.services.keys().cloned());
    }

    /// This replica lost the leadership: it stops deciding until [`State::take_over`].
    pub fn stand_down(&mut self) {
        self.initial_load_done = false;
        self.allocator = Allocator::new(Vec::<Pool>::new());
        self.config = None;
        self.config_dirty = true;
    }

    /// A Service was deleted: its addresses are released from the in-memory allocator
    /// right away (no finalizer: the allocator is rebuilt from Service status on restart,
    /// so a delete missed while the controller was down cannot leak an address).
    pub fn delete_service(&mut self, key: &ServiceKey) {
        self.services.remove(key);
        self.dirty.insert(key.clone());
    }

    /// A watch re-listed every Service: objects missing from `all` were deleted.
    pub fn replace_services(&mut self, all: Vec<Service>) {
        let snaps = all.into_iter().map(|s| self.snapshot(&s)).collect();
        self.replace_snapshots(snaps);
    }

    /// [`State::replace_services`] with the Services already turned into snapshots.
    pub fn replace_snapshots(&mut self, all: Vec<ServiceSnapshot>) {
        let new: BTreeMap<ServiceKey, ServiceSnapshot> =
            all.into_iter().map(|s| (s.key(), s)).collect();
        for k in self.services.keys() {
            if !new.contains_key(k) {
                self.dirty.insert(k.clone());
            }
        }
        self.dirty.extend(new.keys().cloned());
        self.services = new;
    }

    /// A Namespace was added or changed (its labels select pools).
    pub fn apply_namespace(&mut self, ns: &Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        if self.namespaces.get(&name) != Some(&labels) {
            self.namespaces.insert(name.clone(), labels);
            self.mark_namespace_dirty(&name);
        }
    }

    /// A Namespace was deleted.
    pub fn delete_namespace(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.mark_namespace_dirty(name);
        }
    }

    /// A watch re-listed every Namespace.
    pub fn replace_namespaces(&mut self, all: &[Namespace]) {
        let names: BTreeSet<String> = all.iter().filter_map(|n| n.metadata.name.clone()).collect();
        let gone: Vec<String> = self
            .namespaces
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for n in gone {
            self.delete_namespace(&n);
        }
        for ns in all {
            self.apply_namespace(ns);
        }
    }

    fn mark_namespace_dirty(&mut self, ns: &str) {
        let keys: Vec<ServiceKey> = self
            .services
            .range(ServiceKey::new(ns, "")..)
            .take_while(|(k, _)| k.namespace == ns)
            .map(|(k, _)| k.clone())
            .collect();
        self.dirty.extend(keys);
    }

    /// A configuration object was added or changed (objects of other namespaces are
    /// ignored).
    pub fn apply_config(&mut self, obj: ConfigObject) {
        if obj.meta().namespace.as_deref() != Some(self.opts.namespace.as_str()) {
            return;
        }
        let k = (obj.kind(), obj.name());
        let changed = self
            .config_objects
            .get(&k)
            .is_none_or(|old| old.fingerprint() != obj.fingerprint());
        if changed {
            self.config_dirty = true;
        }
        self.config_objects.insert(k, obj);
    }

    /// A configuration object was deleted.
    pub fn delete_config(&mut self, kind: ConfigKind, name: &str) {
        if self
            .config_objects
            .remove(&(kind, name.to_owned()))
            .is_some()
        {
            self.config_dirty = true;
        }
        self.config_written.remove(&(kind, name.to_owned()));
    }

    /// A watch re-listed every object of `kind`.
    pub fn replace_config(&mut self, kind: ConfigKind, all: Vec<ConfigObject>) {
        let names: BTreeSet<String> = all.iter().map(ConfigObject::name).collect();
        let gone: Vec<String> = self
            .config_objects
            .keys()
            .filter(|(k, n)| *k == kind && !names.contains(n))
            .map(|(_, n)| n.clone())
            .collect();
        for n in gone {
            self.delete_config(kind, &n);
        }
        for o in all {
            self.apply_config(o);
        }
    }

    /// Asks for a Service to be recomputed (e.g. after a failed write).
    pub fn mark_dirty(&mut self, key: ServiceKey) {
        self.dirty.insert(key);
    }

    /// Forgets what was last written to a configuration object (after a failed write).
    pub fn mark_config_unwritten(&mut self, kind: ConfigKind, name: &str) {
        self.config_written.remove(&(kind, name.to_owned()));
    }

    fn resources(&self) -> Resources {
        let mut r = Resources::default();
        for o in self.config_objects.values() {
            match o {
                ConfigObject::Pool(p) => r.pools.push(p.clone()),
                ConfigObject::L2Advertisement(p) => r.l2_advertisements.push(p.clone()),
                ConfigObject::BgpAdvertisement(p) => r.bgp_advertisements.push(p.clone()),
                ConfigObject::BgpPeer(p) => r.peers.push(p.clone()),
                ConfigObject::BfdProfile(p) => r.bfd_profiles.push(p.clone()),
                ConfigObject::Community(p) => r.communities.push(p.clone()),
            }
        }
        r
    }

    /// Rebuilds the configuration; returns whether the pools changed.
    fn rebuild_config(&mut self) -> bool {
        self.config_dirty = false;
        // The controller only uses pools; references the speaker resolves (password
        // Secrets, BFD profiles, community aliases) are not the controller's to check, so
        // it needs no read access to Secrets.
        let opts = BuildOptions {
            namespace: self.opts.namespace.clone(),
            allow_missing_references: true,
        };
        // Every config object is re-evaluated for its `Valid` condition.
        self.config_written.clear();
        match build(&self.resources(), &opts) {
            Ok(config) => {
                self.config_errors.clear();
                let changed = self
                    .config
                    .as_ref()
                    .is_none_or(|old| old.pools != config.pools);
                self.config = Some(config);
                changed
            }
            Err(errors) => {
                for e in &errors {
                    tracing::warn!(object = %format!("{}/{}/{}", e.kind, e.namespace, e.name), field = %e.field, reason = %e.reason, "invalid configuration; keeping the last good one");
                }
                self.config_errors = errors;
                false
            }
        }
    }

    /// Runs everything that is due and returns the writes to perform: configuration
    /// rebuild, the initial load (once synced and a valid configuration exists), the
    /// convergence of changed Services, retries of pending ones when addresses were freed
    /// or pools changed, and status of configuration objects.
    pub fn step(&mut self, now: &Time) -> Vec<Action> {
        self.step_at_most(now, usize::MAX)
    }

    /// [`State::step`] converging at most `max_services` Services; the others stay due
    /// ([`State::has_due_services`]) for the next call. Bounds the writes (and their
    /// memory) one call returns, e.g. after the initial load of 10k Services.
    pub fn step_at_most(&mut self, now: &Time, max_services: usize) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.synced {
            return actions;
        }
        let mut pools_changed = false;
        if self.config_dirty && self.rebuild_config() {
            pools_changed = true;
        }
        let Some(config) = self.config.as_ref() else {
            self.config_actions(now, &mut actions);
            return actions;
        };
        if pools_changed {
            let pools: Vec<Pool> = config.pools.values().cloned().collect();
            for ev in self.allocator.set_pools(pools) {
                self.counts.releases += 1;
                let note = format!(
                    "{} lost {} of pool `{}` after a pool change; allocating again",
                    ev.key,
                    ips_text(&ev.lost),
                    ev.previous.pool
                );
                self.notices
                    .entry(ev.key.clone())
                    .or_default()
                    .push(EventSpec {
                        severity: Severity::Normal,
                        reason: reasons::CLEAR_ASSIGNMENT.into(),
                        note,
                    });
            }
            // Pools may now select Services differently: everything is looked at again.
            self.dirty.extend(self.services.keys().cloned());
            self.dirty.extend(self.known.iter().cloned());
        }
        if !self.initial_load_done {
            self.initial_load();
            self.initial_load_done = true;
        }
        let mut budget = max_services;
        for _round in 0..4 {
            if self.allocator.free_generation() != self.last_free_generation {
                self.last_free_generation = self.allocator.free_generation();
                self.dirty.extend(self.pending.iter().cloned());
            }
            if self.dirty.is_empty() || budget == 0 {
                break;
            }
            while budget > 0
                && let Some(k) = self.dirty.pop_first()
            {
                budget -= 1;
                self.converge(&k, now, &mut actions);
            }
        }
        self.config_actions(now, &mut actions);
        actions
    }

    /// MetalLB's initial-load rule: every Service's status addresses are taken back,
    /// already-assigned Services first, before anything new is allocated.
    fn initial_load(&mut self) {
        let mut restored = 0usize;
        let keys: Vec<ServiceKey> = self.services.keys().cloned().collect();
        for k in &keys {
            let Some(svc) = self.services.remove(k) else {
                continue;
            };
            let view = &svc.view;
            if view.handling == Handling::Managed && !view.current.ips.is_empty() {
                self.restore(view);
                restored += 1;
            }
            self.services.insert(k.clone(), svc);
            self.known.insert(k.clone());
        }
        tracing::info!(
            services = keys.len(),
            restored,
            "initial load: status addresses restored"
        );
        self.dirty.extend(keys);
    }

    fn request_of(&self, view: &ServiceView) -> Option<ServiceRequest> {
        let empty = BTreeMap::new();
        let ns_labels = self.namespaces.get(&view.namespace).unwrap_or(&empty);
        ServiceRequest::from_view(view, ns_labels)
    }

    fn restore(&mut self, view: &ServiceView) {
        let Some(req) = self.request_of(view) else {
            return;
        };
        let out = self.allocator.restore(&req, &view.current.ips);
        for r in out.rejected {
            self.notices
                .entry(req.key.clone())
                .or_default()
                .push(EventSpec {
                    severity: Severity::Normal,
                    reason: reasons::CLEAR_ASSIGNMENT.into(),
                    note: format!("dropping {}: {}", r.ip, r.error.message),
                });
        }
    }

    fn converge(&mut self, key: &ServiceKey, now: &Time, actions: &mut Vec<Action>) {
        // Taken out and put back so that `self` stays borrowable without a clone.
        let Some(svc) = self.services.remove(key) else {
            // Deleted: release, nothing to write.
            if let Some(r) = self.allocator.release(key) {
                self.counts.releases += 1;
                tracing::info!(service = %key, ips = %ips_text(&r.allocation.ips), "service deleted; addresses released");
            }
            self.pending.remove(key);
            self.known.remove(key);
            self.notices.remove(key);
            self.announced_failures.remove(key);
            self.warned.remove(key);
            return;
        };
        self.converge_present(key, &svc, now, actions);
        self.services.insert(key.clone(), svc);
    }

    fn converge_present(
        &mut self,
        key: &ServiceKey,
        svc: &ServiceSnapshot,
        now: &Time,
        actions: &mut Vec<Action>,
    ) {
        let view = &svc.view;
        let first_time = self.known.insert(key.clone());
        let mut events: Vec<EventSpec> = self.notices.remove(key).unwrap_or_default();
        let target = match &view.handling {
            Handling::NotLoadBalancer | Handling::OtherClass { .. } => {
                self.pending.remove(key);
                self.announced_failures.remove(key);
                let released = self.allocator.release(key);
                // Only our own marks count: a `metallb.io/` pool annotation belongs to
                // another implementation that may still manage the Service.
                let ours = svc.carries_our_marks();
                if released.is_none() && !ours {
                    return;
                }
                if let Some(r) = released {
                    self.counts.releases += 1;
                    events.push(EventSpec {
                        severity: Severity::Normal,
                        reason: reasons::CLEAR_ASSIGNMENT.into(),
                        note: format!(
                            "released {} of pool `{}`: the Service is no longer a LoadBalancer handled by ferrolb",
                            ips_text(&r.allocation.ips),
                            r.allocation.pool
                        ),
                    });
                }
                ServiceTarget {
                    ips: Vec::new(),
                    pool: None,
                    condition: None,
                }
            }
            Handling::Managed => {
                if first_time
                    && !view.current.ips.is_empty()
                    && self.allocator.allocation(key).is_none()
                {
                    self.restore(view);
                    events.extend(self.notices.remove(key).unwrap_or_default());
                }
                self.managed_target(view, svc.generation, &mut events)
            }
        };
        let (meta, status) = observed_patches(
            svc.pool_annotation.as_deref(),
            svc.status.as_ref(),
            &target,
            now,
        );
        if meta.is_none() && status.is_none() && events.is_empty() {
            return;
        }
        for d in &view.deprecated_annotations {
            let warned = self.warned.entry(key.clone()).or_default();
            if warned.insert(d.used.clone()) {
                events.push(EventSpec {
                    severity: Severity::Warning,
                    reason: reasons::DEPRECATED_ANNOTATION.into(),
                    note: format!(
                        "annotation {} is deprecated; use {} instead",
                        d.used,
                        d.replacement()
                    ),
                });
            }
        }
        if let Some(patch) = meta {
            actions.push(Action::PatchServiceMeta {
                key: key.clone(),
                patch,
            });
        }
        if let Some(patch) = status {
            actions.push(Action::PatchServiceStatus {
                key: key.clone(),
                patch,
            });
        }
        let regarding = svc.object_ref();
        for event in events {
            actions.push(Action::Event {
                key: key.clone(),
                regarding: regarding.clone(),
                event,
            });
        }
    }

    /// Counts the addresses of `now` that `before` did not hold.
    fn count_allocation(
        &mut self,
        before: Option<&crate::allocator::Allocation>,
        now: &crate::allocator::Allocation,
    ) {
        for ip in &now.ips {
            if before.is_some_and(|b| b.ips.contains(ip)) {
                continue;
            }
            *self
                .counts
                .allocations
                .entry((now.pool.clone(), Family::of(*ip)))
                .or_default() += 1;
        }
    }

    fn fail(
        &mut self,
        key: &ServiceKey,
        reason: &str,
        message: String,
        generation: Option<i64>,
        events: &mut Vec<EventSpec>,
    ) -> ServiceTarget {
        if let Some(r) = self.allocator.release(key) {
            self.counts.releases += 1;
            events.push(EventSpec {
                severity: Severity::Normal,
                reason: reasons::CLEAR_ASSIGNMENT.into(),
                note: format!(
                    "released {} of pool `{}`: {message}",
                    ips_text(&r.allocation.ips),
                    r.allocation.pool
                ),
            });
        }
        self.pending.insert(key.clone());
        let announced = (reason.to_owned(), message.clone());
        if self.announced_failures.get(key) != Some(&announced) {
            *self.counts.failures.entry(reason.to_owned()).or_default() += 1;
            events.push(EventSpec {
                severity: Severity::Warning,
                reason: reasons::ALLOCATION_FAILED.into(),
                note: message.clone(),
            });
            self.announced_failures.insert(key.clone(), announced);
        }
        ServiceTarget {
            ips: Vec::new(),
            pool: None,
            condition: Some(CondSpec {
                type_: CONDITION_LB_READY.into(),
                ok: false,
                reason: reason.into(),
                message,
                observed_generation: generation,
            }),
        }
    }

    fn managed_target(
        &mut self,
        view: &ServiceView,
        generation: Option<i64>,
        events: &mut Vec<EventSpec>,
    ) -> ServiceTarget {
        let key = ServiceKey::new(view.namespace.clone(), view.name.clone());
        let req = match &view.request {
            Err(errors) => {
                let msg: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                return self.fail(
                    &key,
                    REASON_INVALID_REQUEST,
                    msg.join("; "),
                    generation,
                    events,
                );
            }
            Ok(_) => match self.request_of(view) {
                Some(r) => r,
                None => {
                    return self.fail(
                        &key,
                        REASON_INVALID_REQUEST,
                        "request did not parse".into(),
                        generation,
                        events,
                    );
                }
            },
        };
        let before = self.allocator.allocation(&key);
        match self.allocator.allocate(&req) {
            Err(AllocError { reason, message }) => {
                self.fail(&key, reason.as_str(), message, generation, events)
            }
            Ok(out) => {
                self.pending.remove(&key);
                self.announced_failures.remove(&key);
                let a = &out.allocation;
                self.count_allocation(before.as_ref(), a);
                if matches!(out.change, Change::Replaced { .. }) {
                    self.counts.releases += 1;
                }
                match &out.change {
                    Change::Unchanged => {}
                    Change::New => events.push(EventSpec {
                        severity: Severity::Normal,
                        reason: reasons::IP_ALLOCATED.into(),
                        note: format!("Assigned IP {} from pool `{}`", ips_text(&a.ips), a.pool),
                    }),
                    Change::ToppedUp => events.push(EventSpec {
                        severity: Severity::Normal,
                        reason: reasons::IP_ALLOCATED.into(),
                        note: format!(
                            "Assigned additional IP; now {} from pool `{}`",
                            ips_text(&a.ips),
                            a.pool
                        ),
                    }),
                    Change::Replaced { previous } => {
                        events.push(EventSpec {
                            severity: Severity::Normal,
                            reason: reasons::CLEAR_ASSIGNMENT.into(),
                            note: format!(
                                "previous IP {} of pool `{}` no longer fits the Service",
                                ips_text(&previous.ips),
                                previous.pool
                            ),
                        });
                        events.push(EventSpec {
                            severity: Severity::Normal,
                            reason: reasons::IP_ALLOCATED.into(),
                            note: format!(
                                "Assigned IP {} from pool `{}`",
                                ips_text(&a.ips),
                                a.pool
                            ),
                        });
                    }
                }
                ServiceTarget {
                    ips: a.ips.clone(),
                    pool: Some(a.pool.clone()),
                    condition: Some(CondSpec {
                        type_: CONDITION_LB_READY.into(),
                        ok: true,
                        reason: REASON_ALLOCATED.into(),
                        message: format!("{} from pool `{}`", ips_text(&a.ips), a.pool),
                        observed_generation: generation,
                    }),
                }
            }
        }
    }

    /// `Valid` conditions of configuration objects and counters of pools, written when
    /// they differ from the object.
    fn config_actions(&mut self, now: &Time, actions: &mut Vec<Action>) {
        let mut by_object: BTreeMap<(ConfigKind, String), Vec<&ConfigError>> = BTreeMap::new();
        for e in &self.config_errors {
            if e.namespace != self.opts.namespace {
                continue;
            }
            if let Some(kind) = ConfigKind::of_kind(&e.kind) {
                by_object.entry((kind, e.name.clone())).or_default().push(e);
            }
        }
        let build_ok = self.config_errors.is_empty();
        let counters = if self.initial_load_done {
            self.allocator.all_counters()
        } else {
            BTreeMap::new()
        };
        for ((kind, name), obj) in &self.config_objects {
            let generation = obj.meta().generation;
            let valid = match by_object.get(&(*kind, name.clone())) {
                Some(errs) => Some(CondSpec {
                    type_: CONDITION_VALID.into(),
                    ok: false,
                    reason: REASON_CONFIGURATION_ERROR.into(),
                    message: errs
                        .iter()
                        .map(|e| {
                            if e.field.is_empty() {
                                e.reason.clone()
                            } else {
                                format!("{}: {}", e.field, e.reason)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    observed_generation: generation,
                }),
                None if build_ok => Some(CondSpec {
                    type_: CONDITION_VALID.into(),
                    ok: true,
                    reason: REASON_ACCEPTED.into(),
                    message: "part of the running configuration".into(),
                    observed_generation: generation,
                }),
                // Another object broke the snapshot: this one keeps its last condition.
                None => None,
            };
            let pool_counters = if *kind == ConfigKind::Pool {
                counters.get(name).map(|c| {
                    BTreeMap::from([
                        ("assignedIPv4", c.v4.assigned.to_string()),
                        ("availableIPv4", c.v4.available.to_string()),
                        ("assignedIPv6", c.v6.assigned.to_string()),
                        ("availableIPv6", c.v6.available.to_string()),
                    ])
                })
            } else {
                None
            };
            if let Some(patch) = config_status_patch(
                &obj.status_json(),
                valid.as_ref(),
                pool_counters.as_ref(),
                now,
            ) {
                // The watch echo may lag behind: do not repeat an identical write.
                let k = (*kind, name.clone());
                if self.config_written.get(&k) == Some(&patch) {
                    continue;
                }
                self.config_written.insert(k, patch.clone());
                actions.push(Action::PatchConfigStatus {
                    kind: *kind,
                    name: name.clone(),
                    patch,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use kube::Resource as _;
    use serde_json::json;

    fn now() -> Time {
        Time(Timestamp::from_second(1_000).expect("time"))
    }

    fn pool(name: &str, addrs: &[&str]) -> ConfigObject {
        ConfigObject::Pool(
            serde_json::from_value(json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": {"name": name, "namespace": "ferrolb-system", "generation": 1},
                "spec": {"addresses": addrs},
            }))
            .expect("pool"),
        )
    }

    fn svc(name: &str, status_ip: Option<&str>) -> Service {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        });
        if let Some(ip) = status_ip {
            v["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
        }
        serde_json::from_value(v).expect("service")
    }

    fn state() -> State {
        State::new(StateOptions {
            namespace: "ferrolb-system".into(),
            lb_class: None,
        })
    }

    fn status_ips(actions: &[Action], name: &str) -> Option<Value> {
        actions.iter().find_map(|a| match a {
            Action::PatchServiceStatus { key, patch } if key.name == name => {
                Some(patch["status"]["loadBalancer"]["ingress"].clone())
            }
            _ => None,
        })
    }

    #[test]
    fn nothing_is_decided_before_sync() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.0/30"]));
        s.apply_service(svc("a", None));
        assert!(s.step(&now()).is_empty());
        assert!(!s.initial_load_done());
        s.mark_synced();
        let actions = s.step(&now());
        assert!(s.initial_load_done());
        assert_eq!(status_ips(&actions, "a"), Some(json!([{"ip": "10.0.0.0"}])));
    }

    #[test]
    fn initial_load_restores_before_allocating() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.0/30"]));
        // `a` sorts first and would get .0 lowest-first; `z` already holds it.
        s.apply_service(svc("a", None));
        s.apply_service(svc("z", Some("10.0.0.0")));
        s.mark_synced();
        let actions = s.step(&now());
        assert_eq!(status_ips(&actions, "a"), Some(json!([{"ip": "10.0.0.1"}])));
        // `z` already carries its address: only the annotation and condition are written.
        assert_eq!(status_ips(&actions, "z"), Some(Value::Null));
        let z = s
            .allocator()
            .allocation(&ServiceKey::new("default", "z"))
            .expect("z");
        assert_eq!(
            z.ips,
            vec!["10.0.0.0".parse::<std::net::IpAddr>().expect("ip")]
        );
    }

    #[test]
    fn invalid_config_keeps_the_last_good_one() {
        let mut s = state();
        s.apply_config(pool("good", &["10.0.0.0/31"]));
        s.mark_synced();
        s.step(&now());
        let mut bad = pool("bad", &["10.0.0.1/32"]);
        if let ConfigObject::Pool(p) = &mut bad {
            p.metadata.generation = Some(3);
        }
        s.apply_config(bad);
        let actions = s.step(&now());
        assert!(!s.config_errors().is_empty());
        let marked = actions.iter().any(|a| {
            matches!(a,
            Action::PatchConfigStatus { kind: ConfigKind::Pool, name, patch }
                if name == "bad" && patch["status"]["conditions"][0]["status"] == "False")
        });
        assert!(marked, "{actions:?}");
        // The running pools are still the good ones.
        let names: Vec<&str> = s.allocator().pools().map(|p| p.name()).collect();
        assert_eq!(names, vec!["good"]);
        s.apply_service(svc("x", None));
        let actions = s.step(&now());
        assert_eq!(status_ips(&actions, "x"), Some(json!([{"ip": "10.0.0.0"}])));
    }

    #[test]
    fn deletion_retries_pending_services() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.9/32"]));
        s.apply_service(svc("a", None));
        s.mark_synced();
        s.step(&now());
        s.apply_service(svc("b", None));
        let actions = s.step(&now());
        assert!(s.pending().contains(&ServiceKey::new("default", "b")));
        let failed = actions.iter().any(|a| matches!(a,
            Action::Event { event, .. } if event.reason == reasons::ALLOCATION_FAILED && event.severity == Severity::Warning));
        assert!(failed, "{actions:?}");
        // The same failure again announces nothing new.
        s.mark_dirty(ServiceKey::new("default", "b"));
        assert!(
            !s.step(&now())
                .iter()
                .any(|a| matches!(a, Action::Event { .. }))
        );
        s.delete_service(&ServiceKey::new("default", "a"));
        let actions = s.step(&now());
        assert_eq!(status_ips(&actions, "b"), Some(json!([{"ip": "10.0.0.9"}])));
        assert!(s.pending().is_empty());
    }

    #[test]
    fn takeover_rebuilds_from_status() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.0/30"]));
        s.apply_service(svc("b", Some("10.0.0.2")));
        s.mark_synced();
        s.step(&now());
        s.stand_down();
        s.take_over();
        s.apply_service(svc("a", None));
        let actions = s.step(&now());
        assert_eq!(status_ips(&actions, "a"), Some(json!([{"ip": "10.0.0.0"}])));
        let b = s
            .allocator()
            .allocation(&ServiceKey::new("default", "b"))
            .expect("b");
        assert_eq!(
            b.ips,
            vec!["10.0.0.2".parse::<std::net::IpAddr>().expect("ip")]
        );
    }

    #[test]
    fn other_implementations_services_are_left_alone() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.0/30"]));
        let mut foreign: Service = svc("m", Some("192.168.9.9"));
        foreign.spec.as_mut().expect("spec").load_balancer_class = Some("metallb".into());
        foreign.metadata.annotations = Some(
            [(
                "metallb.io/ip-allocated-from-pool".to_owned(),
                "x".to_owned(),
            )]
            .into(),
        );
        s.apply_service(foreign.clone());
        s.mark_synced();
        let actions = s.step(&now());
        assert!(
            actions
                .iter()
                .all(|a| matches!(a, Action::PatchConfigStatus { .. })),
            "{actions:?}"
        );
        // Our own leftovers on a Service that left our class are cleared.
        foreign.metadata.annotations = Some(
            [(
                "ferrolb.io/ip-allocated-from-pool".to_owned(),
                "p".to_owned(),
            )]
            .into(),
        );
        s.apply_service(foreign);
        let actions = s.step(&now());
        assert_eq!(status_ips(&actions, "m"), Some(Value::Null));
    }

    #[test]
    fn decisions_are_counted_once() {
        let mut s = state();
        s.apply_config(pool("p", &["10.0.0.9/32"]));
        s.apply_service(svc("a", None));
        s.mark_synced();
        s.step(&now());
        s.apply_service(svc("b", None));
        s.step(&now());
        // A retry of the same failure is not counted again.
        s.mark_dirty(ServiceKey::new("default", "b"));
        s.step(&now());
        let c = s.take_counts();
        assert_eq!(
            c.allocations,
            BTreeMap::from([(("p".to_owned(), Family::V4), 1)])
        );
        assert_eq!(
            c.failures,
            BTreeMap::from([("PoolExhausted".to_owned(), 1)])
        );
        assert_eq!(c.releases, 0);
        assert!(s.take_counts().is_empty(), "taken");
        s.delete_service(&ServiceKey::new("default", "a"));
        s.step(&now());
        let c = s.take_counts();
        assert_eq!(c.releases, 1);
        assert_eq!(
            c.allocations,
            BTreeMap::from([(("p".to_owned(), Family::V4), 1)]),
            "b got the freed address"
        );
        assert!(c.failures.is_empty());
        // Restoring from status at takeover allocates nothing.
        s.stand_down();
        s.take_over();
        s.apply_service(svc("b", Some("10.0.0.9")));
        s.step(&now());
        assert!(s.take_counts().is_empty());
    }

    #[test]
    fn bounded_steps_converge_everything_in_slices() {
        let mut all = state();
        let mut sliced = state();
        for s in [&mut all, &mut sliced] {
            s.apply_config(pool("p", &["10.0.0.0/29"]));
            for i in 0..5 {
                s.apply_service(svc(&format!("s{i}"), None));
            }
            s.mark_synced();
        }
        let want = all.step(&now());
        assert!(!all.has_due_services());
        let mut got = Vec::new();
        let mut calls = 0;
        loop {
            let batch = sliced.step_at_most(&now(), 2);
            calls += 1;
            // Two Services per call: annotation, status and Event each.
            assert!(
                batch
                    .iter()
                    .filter(|a| matches!(a, Action::Event { .. }))
                    .count()
                    <= 2
            );
            got.extend(batch);
            if !sliced.has_due_services() {
                break;
            }
        }
        assert_eq!(calls, 3);
        let services = |v: &[Action]| -> Vec<Action> {
            v.iter()
                .filter(|a| !matches!(a, Action::PatchConfigStatus { .. }))
                .cloned()
                .collect()
        };
        assert_eq!(services(&got), services(&want));
        assert!(sliced.initial_load_done());
    }

    #[test]
    fn snapshots_keep_what_the_writes_need() {
        let s = state();
        let mut v = svc("a", Some("10.0.0.1"));
        v.metadata.uid = Some("u-1".into());
        v.metadata.resource_version = Some("42".into());
        v.metadata.generation = Some(3);
        v.metadata.annotations = Some(
            [(
                "ferrolb.io/ip-allocated-from-pool".to_owned(),
                String::new(),
            )]
            .into(),
        );
        let snap = s.snapshot(&v);
        assert_eq!(snap.key(), ServiceKey::new("default", "a"));
        assert_eq!(snap.object_ref(), v.object_ref(&()));
        assert_eq!(snap.resource_version, Some(42));
        assert_eq!(snap.generation, Some(3));
        // An empty pool annotation is still ours to clear.
        assert!(snap.carries_our_marks());
        let target = ServiceTarget {
            ips: vec!["10.0.0.1".parse().expect("ip")],
            pool: Some("p".into()),
            condition: None,
        };
        assert_eq!(
            observed_patches(
                snap.pool_annotation.as_deref(),
                snap.status.as_ref(),
                &target,
                &now()
            ),
            super::super::status::service_patches(&v, &target, &now())
        );
        assert!(!state().snapshot(&svc("b", None)).carries_our_marks());
    }

    #[test]
    fn older_resource_versions_are_ignored() {
        let mut s = state();
        let mut newer = svc("a", Some("10.0.0.1"));
        newer.metadata.resource_version = Some("20".into());
        let mut older = svc("a", None);
        older.metadata.resource_version = Some("7".into());
        s.apply_service(newer);
        s.apply_service(older);
        assert!(
            s.services[&ServiceKey::new("default", "a")]
                .status
                .is_some()
        );
    }
}
