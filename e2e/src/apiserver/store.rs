//! The object store: versioned objects of every served resource, the global resourceVersion
//! counter and the bounded event history that watches replay from. Pure: no I/O, no clock
//! (callers pass the timestamp), randomness from a seeded generator.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::fields::{self, Scope};
use super::patch::{PatchKind, apply_patch, parse_apply_body};
use super::registry::{CRD_GROUP, CRD_PLURAL, GroupResource, Registry, ResourceInfo, parse_crd};
use super::selector::{FieldSelector, LabelSelector};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One entry of the event history.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// Resource of the object.
    pub gr: GroupResource,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for deletions: its last state, with the deletion's rv).
    pub object: Arc<Value>,
    /// The object before the change, for modifications and deletions.
    pub old: Option<Arc<Value>>,
}

/// Which objects a list or watch sees.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Resource watched.
    pub gr: GroupResource,
    /// Namespace, `None` for cluster-scoped resources or all namespaces.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether an object of the watched resource passes namespace and selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
            }
            None => true,
        };
        ns_ok && self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }

    /// The watch event type a history event turns into for this filter, if any: an object that
    /// starts matching is ADDED, one that stops matching is DELETED.
    pub fn translate(&self, ev: &Event) -> Option<(&'static str, Arc<Value>)> {
        if ev.gr != self.gr {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.old.as_deref().is_some_and(|o| self.matches(o));
        let kind = match ev.kind {
            EventKind::Added if now => "ADDED",
            EventKind::Deleted if now || before => "DELETED",
            EventKind::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
            _ => return None,
        };
        Some((kind, ev.object.clone()))
    }
}

/// Preconditions of a delete (`DeleteOptions.preconditions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// Required current resourceVersion.
    pub resource_version: Option<String>,
    /// Required uid.
    pub uid: Option<String>,
}

/// A patch request.
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    /// Patch flavour.
    pub kind: PatchKind,
    /// Raw body.
    pub body: &'a [u8],
    /// `fieldManager` query parameter (required for apply).
    pub field_manager: Option<&'a str>,
    /// Manager recorded for non-apply patches (the `fieldManager` or one derived from the
    /// client's user agent).
    pub update_manager: &'a str,
    /// `force` query parameter of apply.
    pub force: bool,
    /// Whether the patch targets the `/status` subresource.
    pub status: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Main,
    Status,
    Seed,
}

/// How a write records field ownership.
#[derive(Debug, Clone, Copy)]
enum Ownership<'a> {
    /// Keep the stored `managedFields` (seeding).
    Keep,
    /// A non-apply write by this manager.
    Update(&'a str),
    /// The incoming object carries `managedFields` computed by [`fields::apply`].
    Applied,
}

type Key = (String, String);

fn scope(info: &ResourceInfo, status: bool) -> Scope {
    if status {
        Scope::Status
    } else if info.status_subresource {
        Scope::Main
    } else {
        Scope::All
    }
}

/// The in-memory object store.
#[derive(Debug)]
pub struct Store {
    registry: Registry,
    objects: BTreeMap<GroupResource, BTreeMap<Key, Arc<Value>>>,
    rv: u64,
    history: VecDeque<Event>,
    history_limit: usize,
    compacted: u64,
    rng: u64,
}

/// Kubernetes' generateName alphabet (no vowels, no ambiguous digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(k);
        }
    }
    out
}

/// Validates an object name as an RFC 1123 subdomain.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl Store {
    /// An empty store with the built-in resources, keeping at most `history_limit` events.
    pub fn new(history_limit: usize, seed: u64) -> Self {
        Store {
            registry: Registry::builtin(),
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            rng: seed | 1,
        }
    }

    /// The served resources.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Drops the whole event history: watches resuming from any earlier version get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_random(), self.next_random());
        let a = (a & !0xF000) | 0x4000; // version 4
        let b = (b & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }

    fn suffix(&mut self) -> String {
        let mut r = self.next_random();
        (0..5)
            .map(|_| {
                let c = NAME_ALPHABET[(r % NAME_ALPHABET.len() as u64) as usize] as char;
                r /= NAME_ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    fn key(info: &ResourceInfo, ns: Option<&str>, name: &str) -> Key {
        let ns = if info.namespaced {
            ns.unwrap_or("")
        } else {
            ""
        };
        (ns.to_string(), name.to_string())
    }

    fn lookup(&self, gr: &GroupResource, key: &Key) -> Option<Arc<Value>> {
        self.objects.get(gr).and_then(|m| m.get(key)).cloned()
    }

    fn push_event(&mut self, ev: Event) {
        self.history.push_back(ev);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// The object as served at the requested version (apiVersion and kind set).
    pub fn present(info: &ResourceInfo, obj: &Value) -> Value {
        let mut out = obj.clone();
        out["apiVersion"] = json!(info.api_version());
        out["kind"] = json!(info.kind);
        out
    }

    /// Gets one object.
    pub fn get(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.lookup(&info.group_resource(), &Self::key(info, ns, name))
            .map(|o| Self::present(info, &o))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// Lists objects: `limit` items at most, continuing after `continue_token`; `exact_rv` is a
    /// `resourceVersionMatch=Exact` request, answerable only for the current version.
    pub fn list(
        &self,
        info: &ResourceInfo,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
        exact_rv: Option<u64>,
    ) -> Result<Value, ApiError> {
        if let Some(rv) = exact_rv.filter(|rv| *rv != self.rv) {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({}): only the current state is kept",
                self.rv
            )));
        }
        let (list_rv, after) = match continue_token {
            Some(token) => {
                let mut parts = token.splitn(3, '/');
                let parsed = match (
                    parts.next().map(str::parse::<u64>),
                    parts.next(),
                    parts.next(),
                ) {
                    (Some(Ok(rv)), Some(ns), Some(name)) => {
                        (rv, (ns.to_string(), name.to_string()))
                    }
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid continue token {token:?}"
                        )));
                    }
                };
                if parsed.0 < self.compacted {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         You can start a new list without the continue parameter.",
                    ));
                }
                (parsed.0, Some(parsed.1))
            }
            None => (self.rv, None),
        };
        let empty = BTreeMap::new();
        let objects = self.objects.get(&info.group_resource()).unwrap_or(&empty);
        let range: Box<dyn Iterator<Item = (&Key, &Arc<Value>)>> = match &after {
            Some(k) => Box::new(objects.range::<Key, _>((
                std::ops::Bound::Excluded(k.clone()),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(objects.iter()),
        };
        let mut items = Vec::new();
        let mut next = None;
        for (key, obj) in range.filter(|(_, o)| filter.matches(o)) {
            if limit.is_some_and(|l| l > 0 && items.len() >= l) {
                next = Some(format!("{list_rv}/{}/{}", key.0, key.1));
                break;
            }
            items.push(Self::present(info, obj));
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if next.is_some() {
            // The token names the last returned item: the next page starts after it.
            let last = items.last().and_then(meta).map(|m| {
                let s = |f: &str| m.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                (s("namespace"), s("name"))
            });
            if let Some((ns, name)) = last {
                metadata["continue"] = json!(format!("{list_rv}/{ns}/{name}"));
            }
        }
        Ok(json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// The current objects passing `filter`, and the version they are current at.
    pub fn snapshot(&self, filter: &Filter) -> (Vec<Arc<Value>>, u64) {
        let items = self
            .objects
            .get(&filter.gr)
            .map(|m| m.values().filter(|o| filter.matches(o)).cloned().collect())
            .unwrap_or_default();
        (items, self.rv)
    }

    /// History events after `rv`, and the current version; 410 Expired if `rv` is older than
    /// the retained history.
    pub fn events_after(&self, rv: u64) -> Result<(Vec<Event>, u64), ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok((self.history.range(start..).cloned().collect(), self.rv))
    }

    fn check_object(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if obj.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        if let Some(kind) = obj
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            && kind != info.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({kind}) does not match the resource {} ({})",
                info.plural, info.kind
            )));
        }
        if let Some(av) = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let (group, _) = super::registry::split_api_version(av);
            if group != info.group {
                return Err(ApiError::bad_request(format!(
                    "the apiVersion of the object ({av}) does not match the group of {} ({:?})",
                    info.plural, info.group
                )));
            }
        }
        Ok(())
    }

    fn check_namespace(
        info: &ResourceInfo,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Option<String>, ApiError> {
        if !info.namespaced {
            return Ok(None);
        }
        let ns = ns.ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} are namespaced: a namespace is required",
                info.plural
            ))
        })?;
        if let Some(body_ns) = meta_str(obj, "namespace")
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(Some(ns.to_string()))
    }

    fn crd_established_status(crd: &Value, now: &str) -> Value {
        let stored: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "storedVersions": stored,
        })
    }

    fn is_crd(gr: &GroupResource) -> bool {
        gr.group == CRD_GROUP && gr.plural == CRD_PLURAL
    }

    /// Creates an object (POST).
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        body: Value,
        manager: &str,
        now: &str,
    ) -> Result<Value, ApiError> {
        self.create_inner(info, ns, body, now, false, Some(manager))
    }

    fn create_inner(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        now: &str,
        keep_status: bool,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        Self::check_object(info, &obj)?;
        let ns = Self::check_namespace(info, ns, &obj)?;
        let gr = info.group_resource();
        let name = match (meta_str(&obj, "name"), meta_str(&obj, "generateName")) {
            (Some(name), _) => name.to_string(),
            (None, Some(prefix)) => {
                let prefix = prefix.to_string();
                let mut candidate = format!("{prefix}{}", self.suffix());
                for _ in 0..16 {
                    if self
                        .lookup(&gr, &Self::key(info, ns.as_deref(), &candidate))
                        .is_none()
                    {
                        break;
                    }
                    candidate = format!("{prefix}{}", self.suffix());
                }
                candidate
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        validate_name(&name)?;
        let key = Self::key(info, ns.as_deref(), &name);
        if self.lookup(&gr, &key).is_some() {
            return Err(ApiError::already_exists(&info.group, &info.plural, &name));
        }
        obj = Self::present(info, &obj);
        let uid = self.uuid();
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), json!(name));
            match &ns {
                Some(ns) => m.insert("namespace".into(), json!(ns)),
                None => m.remove("namespace"),
            };
            m.insert("uid".into(), json!(uid));
            m.insert("creationTimestamp".into(), json!(now));
            m.insert("generation".into(), json!(1));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
        }
        if info.status_subresource && !keep_status {
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        if let Some(manager) = manager {
            meta_mut(&mut obj).remove("managedFields");
            fields::record_update(
                None,
                &mut obj,
                manager,
                scope(info, false),
                &info.api_version(),
                now,
            );
        }
        if Self::is_crd(&gr) {
            parse_crd(&obj)?;
            self.registry.register_crd(&obj)?;
            obj["status"] = Self::crd_established_status(&obj, now);
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let obj = Arc::new(obj);
        self.objects
            .entry(gr.clone())
            .or_default()
            .insert(key, obj.clone());
        self.push_event(Event {
            rv,
            gr,
            kind: EventKind::Added,
            object: obj.clone(),
            old: None,
        });
        Ok(Self::present(info, &obj))
    }

    /// Replaces an object (PUT).
    pub fn update(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        manager: &str,
        now: &str,
    ) -> Result<Value, ApiError> {
        let ownership = Ownership::Update(manager);
        self.write(info, ns, name, body, WriteMode::Main, ownership, now)
    }

    /// Replaces an object's status (PUT `/status`): only `.status` changes.
    pub fn update_status(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        manager: &str,
        now: &str,
    ) -> Result<Value, ApiError> {
        let ownership = Ownership::Update(manager);
        self.write(info, ns, name, body, WriteMode::Status, ownership, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        incoming: Value,
        mode: WriteMode,
        ownership: Ownership<'_>,
        now: &str,
    ) -> Result<Value, ApiError> {
        Self::check_object(info, &incoming)?;
        let ns = Self::check_namespace(info, ns, &incoming)?;
        let gr = info.group_resource();
        let key = Self::key(info, ns.as_deref(), name);
        let old = self
            .lookup(&gr, &key)
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if let Some(body_name) = meta_str(&incoming, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or("").to_string();
        if mode != WriteMode::Seed
            && let Some(rv) = meta_str(&incoming, "resourceVersion")
            && rv != old_rv
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let incoming_fields = meta(&incoming)
            .and_then(|m| m.get("managedFields"))
            .cloned();
        let mut new = match mode {
            WriteMode::Status => {
                let mut n = (*old).clone();
                match incoming.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().map(|o| o.remove("status"));
                    }
                }
                n
            }
            WriteMode::Main => {
                let mut n = incoming;
                if info.status_subresource {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            n.as_object_mut().map(|o| o.remove("status"));
                        }
                    }
                }
                n
            }
            WriteMode::Seed => incoming,
        };
        new = Self::present(info, &new);
        let old_meta = meta(&old).cloned().unwrap_or_default();
        {
            let m = meta_mut(&mut new);
            m.insert("name".into(), json!(name));
            match &ns {
                Some(ns) => m.insert("namespace".into(), json!(ns)),
                None => m.remove("namespace"),
            };
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            let managed = match ownership {
                Ownership::Applied => incoming_fields,
                Ownership::Keep | Ownership::Update(_) => old_meta.get("managedFields").cloned(),
            };
            match managed {
                Some(mf) => m.insert("managedFields".into(), mf),
                None => m.remove("managedFields"),
            };
            m.remove("selfLink");
            m.insert("resourceVersion".into(), json!(old_rv));
        }
        if old_meta.contains_key("deletionTimestamp") {
            let before = finalizers(&old);
            if let Some(added) = finalizers(&new).into_iter().find(|f| !before.contains(f)) {
                return Err(ApiError::invalid(format!(
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{added:?}]"
                )));
            }
        }
        let old_gen = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if let Ownership::Update(manager) = ownership {
            let sc = scope(info, mode == WriteMode::Status);
            fields::record_update(Some(&old), &mut new, manager, sc, &info.api_version(), now);
        }
        let generation = if spec_part(&old) != spec_part(&new) {
            old_gen + 1
        } else {
            old_gen
        };
        meta_mut(&mut new).insert("generation".into(), json!(generation));
        if new == *old {
            return Ok(Self::present(info, &old));
        }
        if Self::is_crd(&gr) && mode != WriteMode::Status {
            parse_crd(&new)?;
        }
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        if Self::is_crd(&gr) && mode != WriteMode::Status {
            self.registry.register_crd(&new)?;
        }
        let new = Arc::new(new);
        if old_meta.contains_key("deletionTimestamp") && finalizers(&new).is_empty() {
            self.remove_at(&gr, &key, rv, new.clone(), old, now);
        } else {
            self.objects
                .entry(gr.clone())
                .or_default()
                .insert(key, new.clone());
            self.push_event(Event {
                rv,
                gr,
                kind: EventKind::Modified,
                object: new.clone(),
                old: Some(old),
            });
        }
        Ok(Self::present(info, &new))
    }

    /// Patches an object or its status; apply creates a missing object.
    pub fn patch(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        req: PatchRequest<'_>,
        now: &str,
    ) -> Result<Value, ApiError> {
        let key = Self::key(info, ns, name);
        let old = self.lookup(&info.group_resource(), &key);
        let mode = if req.status {
            WriteMode::Status
        } else {
            WriteMode::Main
        };
        if req.kind != PatchKind::Apply {
            let Some(old) = old else {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            let patched = apply_patch(req.kind, &Self::present(info, &old), req.body)?;
            return self.write(
                info,
                ns,
                name,
                patched,
                mode,
                Ownership::Update(req.update_manager),
                now,
            );
        }
        let Some(manager) = req.field_manager.filter(|m| !m.is_empty()) else {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        let applied = parse_apply_body(req.body)?;
        if meta_str(&applied, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the applied object does not match the name on the URL",
            ));
        }
        let sc = scope(info, req.status);
        let av = info.api_version();
        match old {
            Some(old) => {
                let live = Self::present(info, &old);
                let merged =
                    fields::apply(Some(&live), &applied, manager, req.force, sc, &av, now)?;
                self.write(info, ns, name, merged, mode, Ownership::Applied, now)
            }
            None if !req.status => {
                let mut obj = fields::apply(None, &applied, manager, req.force, sc, &av, now)?;
                meta_mut(&mut obj).insert("name".into(), json!(name));
                self.create_inner(info, ns, obj, now, false, None)
            }
            None => Err(ApiError::not_found(&info.group, &info.plural, name)),
        }
    }

    /// Removes `key` at version `rv` (already allocated), with `last` as the final state.
    fn remove_at(
        &mut self,
        gr: &GroupResource,
        key: &Key,
        rv: u64,
        last: Arc<Value>,
        old: Arc<Value>,
        now: &str,
    ) {
        if let Some(m) = self.objects.get_mut(gr) {
            m.remove(key);
        }
        self.push_event(Event {
            rv,
            gr: gr.clone(),
            kind: EventKind::Deleted,
            object: last.clone(),
            old: Some(old),
        });
        if gr.group.is_empty() && gr.plural == "namespaces" {
            self.cascade_namespace(&key.1, now);
        }
        if Self::is_crd(gr) {
            self.drop_crd_objects(&last, now);
        }
    }

    fn cascade_namespace(&mut self, ns: &str, now: &str) {
        let victims: Vec<(GroupResource, Key)> = self
            .objects
            .iter()
            .flat_map(|(gr, m)| {
                m.keys()
                    .filter(|k| k.0 == ns)
                    .map(move |k| (gr.clone(), k.clone()))
            })
            .collect();
        for (gr, key) in victims {
            self.delete_key(&gr, &key, now);
        }
    }

    fn drop_crd_objects(&mut self, crd: &Value, now: &str) {
        let Ok(infos) = parse_crd(crd) else { return };
        let Some(info) = infos.first() else { return };
        let gr = info.group_resource();
        self.registry.unregister(&gr.group, &gr.plural);
        let keys: Vec<Key> = self
            .objects
            .get(&gr)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            if let Some(old) = self.lookup(&gr, &key) {
                let rv = self.next_rv();
                let mut last = (*old).clone();
                meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
                self.remove_at(&gr, &key, rv, Arc::new(last), old, now);
            }
        }
        self.objects.remove(&gr);
    }

    /// Deletes with finalizer semantics; returns the final (or now terminating) object.
    fn delete_key(&mut self, gr: &GroupResource, key: &Key, now: &str) -> Option<Value> {
        let old = self.lookup(gr, key)?;
        let mut last = (*old).clone();
        if !finalizers(&old).is_empty() {
            if meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Some(last);
            }
            let rv = self.next_rv();
            let m = meta_mut(&mut last);
            m.insert("deletionTimestamp".into(), json!(now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            let last = Arc::new(last);
            self.objects
                .entry(gr.clone())
                .or_default()
                .insert(key.clone(), last.clone());
            self.push_event(Event {
                rv,
                gr: gr.clone(),
                kind: EventKind::Modified,
                object: last.clone(),
                old: Some(old),
            });
            return Some((*last).clone());
        }
        let rv = self.next_rv();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        let last = Arc::new(last);
        self.remove_at(gr, key, rv, last.clone(), old, now);
        Some((*last).clone())
    }

    /// Deletes one object (DELETE): objects with finalizers get a deletionTimestamp and stay
    /// until their finalizers are emptied.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
        now: &str,
    ) -> Result<Value, ApiError> {
        let gr = info.group_resource();
        let key = Self::key(info, ns, name);
        let old = self
            .lookup(&gr, &key)
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if let Some(uid) = &pre.uid {
            let actual = meta_str(&old, "uid").unwrap_or("");
            if uid != actual {
                let why = format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                );
                return Err(ApiError::conflict(&info.group, &info.plural, name, &why));
            }
        }
        if let Some(rv) = &pre.resource_version {
            let actual = meta_str(&old, "resourceVersion").unwrap_or("");
            if rv != actual {
                let why = format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                );
                return Err(ApiError::conflict(&info.group, &info.plural, name, &why));
            }
        }
        let last = self
            .delete_key(&gr, &key, now)
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        Ok(Self::present(info, &last))
    }

    /// Deletes every object passing `filter` (DELETE on a collection); returns them as a list.
    pub fn delete_collection(&mut self, info: &ResourceInfo, filter: &Filter, now: &str) -> Value {
        let gr = info.group_resource();
        let keys: Vec<Key> = self
            .objects
            .get(&gr)
            .map(|m| {
                m.iter()
                    .filter(|(_, o)| filter.matches(o))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let items: Vec<Value> = keys
            .iter()
            .filter_map(|k| self.delete_key(&gr, k, now))
            .map(|o| Self::present(info, &o))
            .collect();
        json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        })
    }

    /// Seeds an object directly (test knob): resolves the resource from `apiVersion`/`kind`,
    /// creates it or replaces it unconditionally, keeping `status` as given.
    pub fn insert(&mut self, obj: Value, now: &str) -> Result<Value, ApiError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let info = self
            .registry
            .lookup_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no resource is served for apiVersion {api_version:?} kind {kind:?}"
                ))
            })?;
        let ns = if info.namespaced {
            Some(meta_str(&obj, "namespace").unwrap_or("default").to_string())
        } else {
            None
        };
        let name = meta_str(&obj, "name").map(str::to_string);
        match name {
            Some(name)
                if self
                    .lookup(
                        &info.group_resource(),
                        &Self::key(&info, ns.as_deref(), &name),
                    )
                    .is_some() =>
            {
                self.write(
                    &info,
                    ns.as_deref(),
                    &name,
                    obj,
                    WriteMode::Seed,
                    Ownership::Keep,
                    now,
                )
            }
            _ => self.create_inner(&info, ns.as_deref(), obj, now, true, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn info(store: &Store, group: &str, plural: &str) -> ResourceInfo {
        store
            .registry()
            .lookup(group, "v1", plural)
            .expect(plural)
            .clone()
    }

    fn filter(info: &ResourceInfo, ns: Option<&str>) -> Filter {
        Filter {
            gr: info.group_resource(),
            namespace: ns.map(str::to_string),
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
        }
    }

    fn rv(obj: &Value) -> u64 {
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn rfc3339_table() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_767_225_599, "2025-12-31T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_rfc3339(secs), want);
        }
    }

    #[test]
    fn create_sets_metadata_and_rejects_duplicates() {
        let mut s = Store::new(100, 7);
        let svc = info(&s, "", "services");
        let created = s
            .create(
                &svc,
                Some("ns"),
                json!({"metadata": {"generateName": "web-"}, "spec": {}, "status": {"x": 1}}),
                "test",
                NOW,
            )
            .unwrap();
        let name = created["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["metadata"]["namespace"], "ns");
        assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert_eq!(created["metadata"]["creationTimestamp"], NOW);
        assert!(
            created.get("status").is_none(),
            "status dropped on create for status-subresource kinds"
        );
        let dup = s
            .create(
                &svc,
                Some("ns"),
                json!({"metadata": {"name": name}}),
                "test",
                NOW,
            )
            .unwrap_err();
        assert_eq!(dup.code, 409);
        let bad = [
            json!({"metadata": {}}),
            json!({"metadata": {"name": "Bad_Name"}}),
            json!({"metadata": {"name": "x", "namespace": "other"}}),
            json!({"kind": "Pod", "metadata": {"name": "x"}}),
            json!([1]),
        ];
        for body in bad {
            assert!(
                s.create(&svc, Some("ns"), body.clone(), "test", NOW)
                    .is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn update_conflict_generation_and_noop() {
        let mut s = Store::new(100, 1);
        let svc = info(&s, "", "services");
        let a = s
            .create(
                &svc,
                Some("ns"),
                json!({"metadata": {"name": "a"}, "spec": {"p": 1}}),
                "test",
                NOW,
            )
            .unwrap();
        let mut b = a.clone();
        b["metadata"]["labels"] = json!({"l": "1"});
        let b = s.update(&svc, Some("ns"), "a", b, "test", NOW).unwrap();
        assert_eq!(
            b["metadata"]["generation"], 1,
            "metadata change keeps generation"
        );
        assert!(rv(&b) > rv(&a));
        let stale = s
            .update(&svc, Some("ns"), "a", a.clone(), "test", NOW)
            .unwrap_err();
        assert_eq!((stale.code, stale.reason), (409, "Conflict"));
        let mut c = b.clone();
        c["spec"]["p"] = json!(2);
        c["status"] = json!({"ignored": true});
        let c = s.update(&svc, Some("ns"), "a", c, "test", NOW).unwrap();
        assert_eq!(c["metadata"]["generation"], 2);
        assert!(c.get("status").is_none(), "main write ignores status");
        let same = s
            .update(&svc, Some("ns"), "a", c.clone(), "test", NOW)
            .unwrap();
        assert_eq!(rv(&same), rv(&c), "no-op update keeps the version");
        let mut st = c.clone();
        st["status"] = json!({"lb": 1});
        st["spec"]["p"] = json!(99);
        let st = s
            .update_status(&svc, Some("ns"), "a", st, "test", NOW)
            .unwrap();
        assert_eq!(st["spec"]["p"], 2, "status write ignores spec");
        assert_eq!(st["status"]["lb"], 1);
        assert_eq!(st["metadata"]["generation"], 2);
    }

    #[test]
    fn finalizers_delay_deletion() {
        let mut s = Store::new(100, 1);
        let cm = info(&s, "", "configmaps");
        s.create(
            &cm,
            Some("ns"),
            json!({"metadata": {"name": "a", "finalizers": ["x/y"]}}),
            "test",
            NOW,
        )
        .unwrap();
        let d = s
            .delete(&cm, Some("ns"), "a", &Preconditions::default(), NOW)
            .unwrap();
        assert_eq!(d["metadata"]["deletionTimestamp"], NOW);
        let mut live = s.get(&cm, Some("ns"), "a").unwrap();
        live["metadata"]["finalizers"] = json!(["x/y", "new/one"]);
        assert_eq!(
            s.update(&cm, Some("ns"), "a", live.clone(), "test", NOW)
                .unwrap_err()
                .code,
            422
        );
        live["metadata"]["finalizers"] = json!([]);
        s.update(&cm, Some("ns"), "a", live, "test", NOW).unwrap();
        assert_eq!(s.get(&cm, Some("ns"), "a").unwrap_err().code, 404);
        let (events, _) = s.events_after(0).unwrap();
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Added, EventKind::Modified, EventKind::Deleted]
        );
    }

    #[test]
    fn delete_preconditions() {
        let mut s = Store::new(100, 1);
        let cm = info(&s, "", "configmaps");
        s.create(
            &cm,
            Some("ns"),
            json!({"metadata": {"name": "a"}}),
            "test",
            NOW,
        )
        .unwrap();
        let pre = Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        };
        assert_eq!(
            s.delete(&cm, Some("ns"), "a", &pre, NOW).unwrap_err().code,
            409
        );
        let pre = Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        };
        assert_eq!(
            s.delete(&cm, Some("ns"), "a", &pre, NOW).unwrap_err().code,
            409
        );
        s.delete(&cm, Some("ns"), "a", &Preconditions::default(), NOW)
            .unwrap();
        assert_eq!(
            s.delete(&cm, Some("ns"), "a", &Preconditions::default(), NOW)
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn history_ring_expires() {
        let mut s = Store::new(2, 1);
        let cm = info(&s, "", "configmaps");
        let first = s.resource_version();
        for name in ["a", "b", "c"] {
            s.create(
                &cm,
                Some("ns"),
                json!({"metadata": {"name": name}}),
                "test",
                NOW,
            )
            .unwrap();
        }
        assert_eq!(s.events_after(first).unwrap_err().code, 410);
        let (events, now) = s.events_after(first + 1).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(now, first + 3);
        s.compact();
        assert_eq!(s.events_after(now - 1).unwrap_err().code, 410);
        assert!(s.events_after(now).unwrap().0.is_empty());
    }

    #[test]
    fn list_pagination_and_selectors() {
        let mut s = Store::new(100, 1);
        let cm = info(&s, "", "configmaps");
        for (ns, name, app) in [
            ("a", "x", "web"),
            ("a", "y", "db"),
            ("b", "z", "web"),
            ("b", "w", "web"),
        ] {
            s.create(
                &cm,
                Some(ns),
                json!({"metadata": {"name": name, "labels": {"app": app}}}),
                "test",
                NOW,
            )
            .unwrap();
        }
        let mut f = filter(&cm, None);
        f.labels = LabelSelector::parse("app=web").unwrap();
        let page1 = s.list(&cm, &f, Some(2), None, None).unwrap();
        assert_eq!(page1["items"].as_array().unwrap().len(), 2);
        let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
        let page2 = s.list(&cm, &f, Some(2), Some(&token), None).unwrap();
        let names: Vec<&str> = page2["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["z"]);
        assert!(page2["metadata"].get("continue").is_none());
        assert_eq!(
            page1["metadata"]["resourceVersion"],
            page2["metadata"]["resourceVersion"]
        );
        let only_a = s
            .list(&cm, &filter(&cm, Some("a")), None, None, None)
            .unwrap();
        assert_eq!(only_a["items"].as_array().unwrap().len(), 2);
        assert_eq!(
            s.list(&cm, &f, None, Some("garbage"), None)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(s.list(&cm, &f, None, None, Some(1)).unwrap_err().code, 410);
    }

    #[test]
    fn watch_translation_follows_selector_transitions() {
        let mut s = Store::new(100, 1);
        let cm = info(&s, "", "configmaps");
        let start = s.resource_version();
        let mut o = s
            .create(
                &cm,
                Some("ns"),
                json!({"metadata": {"name": "a", "labels": {"app": "db"}}}),
                "test",
                NOW,
            )
            .unwrap();
        o["metadata"]["labels"]["app"] = json!("web");
        let mut o = s.update(&cm, Some("ns"), "a", o, "test", NOW).unwrap();
        o["data"] = json!({"k": "v"});
        let mut o = s.update(&cm, Some("ns"), "a", o, "test", NOW).unwrap();
        o["metadata"]["labels"]["app"] = json!("db");
        s.update(&cm, Some("ns"), "a", o, "test", NOW).unwrap();
        s.delete(&cm, Some("ns"), "a", &Preconditions::default(), NOW)
            .unwrap();
        let mut f = filter(&cm, Some("ns"));
        f.labels = LabelSelector::parse("app=web").unwrap();
        let (events, _) = s.events_after(start).unwrap();
        let seen: Vec<&str> = events
            .iter()
            .filter_map(|e| f.translate(e))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
        let all: Vec<&str> = events
            .iter()
            .filter_map(|e| filter(&cm, None).translate(e))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            all,
            ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
        );
    }

    #[test]
    fn patch_and_apply() {
        let mut s = Store::new(100, 1);
        let lease = info(&s, "coordination.k8s.io", "leases");
        let req = |kind, body: &'static str, manager| PatchRequest {
            update_manager: "test",
            force: false,
            kind,
            body: body.as_bytes(),
            field_manager: manager,
            status: false,
        };
        let err = s
            .patch(
                &lease,
                Some("ns"),
                "l",
                req(PatchKind::Merge, "{}", None),
                NOW,
            )
            .unwrap_err();
        assert_eq!(err.code, 404);
        let err = s
            .patch(
                &lease,
                Some("ns"),
                "l",
                req(PatchKind::Apply, "{}", None),
                NOW,
            )
            .unwrap_err();
        assert_eq!(err.code, 400);
        let applied = s
            .patch(
                &lease,
                Some("ns"),
                "l",
                req(
                    PatchKind::Apply,
                    r#"{"spec":{"holderIdentity":"a"}}"#,
                    Some("m"),
                ),
                NOW,
            )
            .unwrap();
        assert_eq!(applied["spec"]["holderIdentity"], "a");
        assert_eq!(applied["metadata"]["managedFields"][0]["manager"], "m");
        let merged = s
            .patch(
                &lease,
                Some("ns"),
                "l",
                req(
                    PatchKind::Merge,
                    r#"{"spec":{"leaseDurationSeconds":5}}"#,
                    None,
                ),
                NOW,
            )
            .unwrap();
        assert_eq!(
            merged["spec"],
            json!({"holderIdentity": "a", "leaseDurationSeconds": 5})
        );
        assert_eq!(merged["metadata"]["generation"], 2);
        let stale = s
            .patch(
                &lease,
                Some("ns"),
                "l",
                req(
                    PatchKind::Merge,
                    r#"{"metadata":{"resourceVersion":"1"}}"#,
                    None,
                ),
                NOW,
            )
            .unwrap_err();
        assert_eq!(stale.code, 409);
    }

    #[test]
    fn crd_lifecycle_registers_and_cleans_up() {
        let mut s = Store::new(100, 1);
        let crds = info(&s, CRD_GROUP, CRD_PLURAL);
        let crd = json!({
            "metadata": {"name": "widgets.example.test"},
            "spec": {"group": "example.test", "scope": "Cluster",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}
        });
        let created = s.create(&crds, None, crd, "test", NOW).unwrap();
        assert_eq!(created["status"]["conditions"][1]["type"], "Established");
        let widget = s
            .registry()
            .lookup("example.test", "v1", "widgets")
            .unwrap()
            .clone();
        s.create(
            &widget,
            None,
            json!({"metadata": {"name": "w"}}),
            "test",
            NOW,
        )
        .unwrap();
        s.delete(
            &crds,
            None,
            "widgets.example.test",
            &Preconditions::default(),
            NOW,
        )
        .unwrap();
        assert!(
            s.registry()
                .lookup("example.test", "v1", "widgets")
                .is_none()
        );
        assert!(s.snapshot(&filter(&widget, None)).0.is_empty());
    }

    #[test]
    fn insert_seeds_with_status_and_namespace_cascade() {
        let mut s = Store::new(100, 1);
        let node = s
            .insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {"phase": "x"}}), NOW)
            .unwrap();
        assert_eq!(node["status"]["phase"], "x");
        let again = s
            .insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {"phase": "y"}}), NOW)
            .unwrap();
        assert_eq!(again["status"]["phase"], "y");
        assert_eq!(again["metadata"]["uid"], node["metadata"]["uid"]);
        assert_eq!(
            s.insert(json!({"apiVersion": "v9", "kind": "Nope"}), NOW)
                .unwrap_err()
                .code,
            400
        );
        s.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
            NOW,
        )
        .unwrap();
        s.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}}), NOW)
            .unwrap();
        let ns = info(&s, "", "namespaces");
        s.delete(&ns, None, "team", &Preconditions::default(), NOW)
            .unwrap();
        let cm = info(&s, "", "configmaps");
        assert_eq!(s.get(&cm, Some("team"), "c").unwrap_err().code, 404);
    }
}
