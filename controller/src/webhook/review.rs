//! The pure admission decision: one `AdmissionRequest` and the current configuration
//! objects in, an `AdmissionResponse` out.
//!
//! The change is applied to a copy of the snapshot (the incoming object replaces the stored
//! one of the same kind and name, or a deleted object is removed) and both versions are
//! built with [`ferrolb_config::build::build`]. Only errors the change *introduces* (present
//! after, absent before) count, so an invalid object that slipped in earlier (e.g. while the
//! webhook was not installed) never blocks an unrelated fix.
//!
//! * CREATE/UPDATE of one of the six configuration kinds is denied when it introduces an
//!   error; the message lists each as `Kind namespace/name: field: reason`.
//! * DELETE is always allowed; the errors it introduces (an advertisement left pointing
//!   at a deleted pool, a peer at a deleted BFD profile, ...) come back as warnings,
//!   which `kubectl` prints. Refusing would make the order of `kubectl delete -f`, and
//!   namespace deletion, fail.
//! * Objects outside the ferrolb namespace are denied on CREATE/UPDATE: nothing reads
//!   them, so accepting them would hide a mistake.
//! * Subresource requests (`status`) and kinds that are not configuration (the status
//!   kinds, anything else routed here) are allowed untouched; unknown kinds get a warning.
//! * An object that does not decode as its kind is denied with the decoder's message.

use std::collections::BTreeSet;

use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_config::error::ConfigError;
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde::de::DeserializeOwned;

/// Most errors listed in one denial or as warnings (the rest are counted).
const MAX_LISTED: usize = 50;

/// The configuration kinds the webhook validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigKind {
    /// `IPAddressPool`.
    IPAddressPool,
    /// `L2Advertisement`.
    L2Advertisement,
    /// `BGPAdvertisement`.
    BGPAdvertisement,
    /// `BGPPeer`.
    BGPPeer,
    /// `BFDProfile`.
    BFDProfile,
    /// `Community`.
    Community,
}

impl ConfigKind {
    /// Every configuration kind.
    pub const ALL: [ConfigKind; 6] = [
        ConfigKind::IPAddressPool,
        ConfigKind::L2Advertisement,
        ConfigKind::BGPAdvertisement,
        ConfigKind::BGPPeer,
        ConfigKind::BFDProfile,
        ConfigKind::Community,
    ];

    /// The kind's name, as in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::IPAddressPool => "IPAddressPool",
            ConfigKind::L2Advertisement => "L2Advertisement",
            ConfigKind::BGPAdvertisement => "BGPAdvertisement",
            ConfigKind::BGPPeer => "BGPPeer",
            ConfigKind::BFDProfile => "BFDProfile",
            ConfigKind::Community => "Community",
        }
    }

    /// The configuration kind of `group`/`kind`, if it is one.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<ConfigKind> {
        if group != ferrolb_crds::GROUP {
            return None;
        }
        ConfigKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// Kinds of the ferrolb group that are not configuration (written by the components).
const STATUS_KINDS: [&str; 2] = ["ServiceL2Status", "ServiceBGPStatus"];

/// Decides on `request` given the stored configuration objects `existing` of the ferrolb
/// namespace (`options.namespace`). See the module documentation for the rules.
pub fn review(
    request: &AdmissionRequest<DynamicObject>,
    existing: &Resources,
    options: &BuildOptions,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return response;
    }
    let Some(kind) = ConfigKind::from_group_kind(&request.kind.group, &request.kind.kind) else {
        if request.kind.group == ferrolb_crds::GROUP
            && STATUS_KINDS.contains(&request.kind.kind.as_str())
        {
            return response;
        }
        return warn(
            response,
            vec![format!(
                "{}/{} {} is not validated by the ferrolb webhook",
                request.kind.group, request.kind.version, request.kind.kind
            )],
        );
    };
    let namespace = request_namespace(request);
    let name = request_name(request);
    let what = format!("{} {namespace}/{name}", kind.as_str());

    let mut after = existing.clone();
    match request.operation {
        Operation::Connect => return response,
        Operation::Delete => {
            if namespace != options.namespace {
                return response;
            }
            remove(&mut after, kind, &name);
        }
        Operation::Create | Operation::Update => {
            if namespace != options.namespace {
                return response.deny(format!(
                    "{what}: ferrolb only reads its configuration from namespace {}; an \
                     object in namespace {namespace} would be ignored",
                    options.namespace
                ));
            }
            let Some(object) = &request.object else {
                return response.deny(format!("{what}: the request carries no object"));
            };
            if let Err(reason) = substitute(&mut after, kind, object, &namespace, &name) {
                return response.deny(format!("{what}: {reason}"));
            }
        }
    }

    let before_errors = errors_of(existing, options);
    let after_errors = errors_of(&after, options);
    let introduced: Vec<&ConfigError> = after_errors.difference(&before_errors).collect();
    let remaining_old = after_errors.intersection(&before_errors).count();
    let mut warnings = Vec::new();
    if remaining_old > 0 {
        warnings.push(format!(
            "the configuration already has {remaining_old} error(s) this change does not \
             fix; the components keep running the last valid configuration"
        ));
    }
    if introduced.is_empty() {
        return warn(response, warnings);
    }
    if request.operation == Operation::Delete {
        warnings.push(format!(
            "deleting {what} leaves the configuration invalid; the components keep running \
             the last valid configuration until this is fixed:"
        ));
        warnings.extend(listed(&introduced));
        return warn(response, warnings);
    }
    let mut message = format!(
        "{what}: the change would make the ferrolb configuration invalid ({} error(s)):",
        introduced.len()
    );
    for line in listed(&introduced) {
        message.push_str("\n- ");
        message.push_str(&line);
    }
    let mut denied = warn(response, warnings).deny(message);
    denied.result.code = 422;
    denied.result.reason = "Invalid".to_owned();
    denied
}

/// The names of the password Secrets (in the ferrolb namespace) referenced by the peers of
/// `existing` and by the incoming object of `request`, so the caller can fetch exactly
/// those.
pub fn referenced_secrets(
    request: &AdmissionRequest<DynamicObject>,
    existing: &Resources,
) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = existing
        .peers
        .iter()
        .filter_map(|p| p.spec.password_secret.as_ref().map(|s| s.name.clone()))
        .collect();
    if ConfigKind::from_group_kind(&request.kind.group, &request.kind.kind)
        == Some(ConfigKind::BGPPeer)
        && let Some(object) = &request.object
        && let Ok(peer) = decode::<BGPPeer>(object, ConfigKind::BGPPeer)
        && let Some(secret) = peer.spec.password_secret
    {
        names.insert(secret.name);
    }
    names
}

/// The namespace of the request (from the request, else from the object).
fn request_namespace(request: &AdmissionRequest<DynamicObject>) -> String {
    request
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            request
                .object
                .as_ref()
                .and_then(|o| o.metadata.namespace.clone())
        })
        .or_else(|| {
            request
                .old_object
                .as_ref()
                .and_then(|o| o.metadata.namespace.clone())
        })
        .unwrap_or_default()
}

/// The name of the request's object.
fn request_name(request: &AdmissionRequest<DynamicObject>) -> String {
    if !request.name.is_empty() {
        return request.name.clone();
    }
    [&request.object, &request.old_object]
        .into_iter()
        .flatten()
        .find_map(|o| o.metadata.name.clone())
        .unwrap_or_default()
}

/// Every error of building `resources`, as a set.
fn errors_of(resources: &Resources, options: &BuildOptions) -> BTreeSet<ConfigError> {
    match build(resources, options) {
        Ok(_) => BTreeSet::new(),
        Err(errors) => errors.into_iter().collect(),
    }
}

/// Renders at most [`MAX_LISTED`] errors, then a count of the rest.
fn listed(errors: &[&ConfigError]) -> Vec<String> {
    let mut out: Vec<String> = errors
        .iter()
        .take(MAX_LISTED)
        .map(|e| e.to_string())
        .collect();
    if errors.len() > MAX_LISTED {
        out.push(format!("... and {} more", errors.len() - MAX_LISTED));
    }
    out
}

/// Adds warnings to a response (none: unchanged).
fn warn(mut response: AdmissionResponse, warnings: Vec<String>) -> AdmissionResponse {
    if !warnings.is_empty() {
        response
            .warnings
            .get_or_insert_with(Vec::new)
            .extend(warnings);
    }
    response
}

/// Decodes a dynamic object as `K`, filling in `apiVersion`/`kind` when absent.
fn decode<K: DeserializeOwned>(object: &DynamicObject, kind: ConfigKind) -> Result<K, String> {
    let mut value =
        serde_json::to_value(object).map_err(|e| format!("cannot encode the object: {e}"))?;
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| ferrolb_crds::API_VERSION.into());
        map.entry("kind").or_insert_with(|| kind.as_str().into());
    }
    serde_json::from_value(value)
        .map_err(|e| format!("the object is not a valid {}: {e}", kind.as_str()))
}

/// Replaces (or adds) the object `name` of `kind` in `resources` with `object`.
fn substitute(
    resources: &mut Resources,
    kind: ConfigKind,
    object: &DynamicObject,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    fn put<K: DeserializeOwned + kube::Resource>(
        list: &mut Vec<K>,
        object: &DynamicObject,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
    ) -> Result<(), String> {
        let mut typed: K = decode(object, kind)?;
        let meta = typed.meta_mut();
        meta.namespace = Some(namespace.to_owned());
        if meta.name.as_deref().is_none_or(str::is_empty) {
            meta.name = Some(name.to_owned());
        }
        list.retain(|o| o.name_any() != name);
        list.push(typed);
        Ok(())
    }
    match kind {
        ConfigKind::IPAddressPool => {
            put::<IPAddressPool>(&mut resources.pools, object, kind, namespace, name)
        }
        ConfigKind::L2Advertisement => put::<L2Advertisement>(
            &mut resources.l2_advertisements,
            object,
            kind,
            namespace,
            name,
        ),
        ConfigKind::BGPAdvertisement => put::<BGPAdvertisement>(
            &mut resources.bgp_advertisements,
            object,
            kind,
            namespace,
            name,
        ),
        ConfigKind::BGPPeer => put::<BGPPeer>(&mut resources.peers, object, kind, namespace, name),
        ConfigKind::BFDProfile => {
            put::<BFDProfile>(&mut resources.bfd_profiles, object, kind, namespace, name)
        }
        ConfigKind::Community => {
            put::<Community>(&mut resources.communities, object, kind, namespace, name)
        }
    }
}

/// Removes the object `name` of `kind` from `resources`.
fn remove(resources: &mut Resources, kind: ConfigKind, name: &str) {
    match kind {
        ConfigKind::IPAddressPool => resources.pools.retain(|o| o.name_any() != name),
        ConfigKind::L2Advertisement => resources.l2_advertisements.retain(|o| o.name_any() != name),
        ConfigKind::BGPAdvertisement => resources
            .bgp_advertisements
            .retain(|o| o.name_any() != name),
        ConfigKind::BGPPeer => resources.peers.retain(|o| o.name_any() != name),
        ConfigKind::BFDProfile => resources.bfd_profiles.retain(|o| o.name_any() != name),
        ConfigKind::Community => resources.communities.retain(|o| o.name_any() != name),
    }
}

#[cfg(test)]
mod tests {
    use ferrolb_config::manifest::parse_manifests;
    use serde_json::{Value, json};

    use super::*;

    const NS: &str = "ferrolb-system";

    fn opts() -> BuildOptions {
        BuildOptions {
            namespace: NS.to_owned(),
            allow_missing_references: false,
        }
    }

    fn existing(yaml: &str) -> Resources {
        parse_manifests(yaml).expect("fixture parses")
    }

    /// An AdmissionRequest for `object` (a ferrolb object as JSON).
    fn request(op: &str, object: Value) -> AdmissionRequest<DynamicObject> {
        let kind = object["kind"]
            .as_str()
            .unwrap_or("IPAddressPool")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(NS)
            .to_owned();
        let (obj, old) = match op {
            "DELETE" => (Value::Null, object),
            _ => (object, Value::Null),
        };
        serde_json::from_value(json!({
            "uid": "u-1",
            "kind": {"group": "ferrolb.io", "version": "v1beta1", "kind": kind},
            "resource": {"group": "ferrolb.io", "version": "v1beta1", "resource": "x"},
            "name": name,
            "namespace": ns,
            "operation": op,
            "userInfo": {},
            "object": obj,
            "oldObject": old,
        }))
        .expect("request fixture")
    }

    fn pool(name: &str, addresses: &[&str]) -> Value {
        json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
               "metadata": {"name": name, "namespace": NS}, "spec": {"addresses": addresses}})
    }

    const BASE: &str = r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool-a, namespace: ferrolb-system}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2-a, namespace: ferrolb-system}
spec: {ipAddressPools: [pool-a]}
---
apiVersion: ferrolb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {}
"#;

    /// Base plus a pre-existing error: two pools overlapping each other.
    const BROKEN: &str = r#"
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad-1, namespace: ferrolb-system}
spec: {addresses: [192.168.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad-2, namespace: ferrolb-system}
spec: {addresses: [192.168.0.128/25]}
"#;

    struct Case {
        name: &'static str,
        existing: String,
        op: &'static str,
        object: Value,
        allowed: bool,
        /// Substrings the message (denied) or the joined warnings (allowed) must contain.
        mentions: &'static [&'static str],
    }

    fn cases() -> Vec<Case> {
        let base = BASE.to_owned();
        let broken = format!("{BASE}{BROKEN}");
        vec![
            Case {
                name: "valid new pool",
                existing: base.clone(),
                op: "CREATE",
                object: pool("pool-b", &["10.0.1.0/24"]),
                allowed: true,
                mentions: &[],
            },
            Case {
                name: "pool overlapping an existing pool",
                existing: base.clone(),
                op: "CREATE",
                object: pool("pool-b", &["10.0.0.128/25"]),
                allowed: false,
                mentions: &["pool-a", "pool-b", "spec.addresses"],
            },
            Case {
                name: "pool with a bad CIDR",
                existing: base.clone(),
                op: "CREATE",
                object: pool("pool-b", &["10.0.1.1/24"]),
                allowed: false,
                mentions: &["IPAddressPool ferrolb-system/pool-b: spec.addresses[0]"],
            },
            Case {
                name: "BGPAdvertisement naming a missing pool",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": {"name": "adv", "namespace": NS},
                    "spec": {"ipAddressPools": ["nope"]}}),
                allowed: false,
                mentions: &["BGPAdvertisement ferrolb-system/adv", "nope"],
            },
            Case {
                name: "L2Advertisement naming a missing pool",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "L2Advertisement",
                    "metadata": {"name": "l2-b", "namespace": NS},
                    "spec": {"ipAddressPools": ["nope"]}}),
                allowed: false,
                mentions: &[
                    "L2Advertisement ferrolb-system/l2-b",
                    "spec.ipAddressPools",
                    "nope",
                ],
            },
            Case {
                name: "BGPPeer naming a missing BFD profile",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                    "metadata": {"name": "peer", "namespace": NS},
                    "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                             "bfdProfile": "slow"}}),
                allowed: false,
                mentions: &["BGPPeer ferrolb-system/peer: spec.bfdProfile", "slow"],
            },
            Case {
                name: "BGPPeer naming an existing BFD profile",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                    "metadata": {"name": "peer", "namespace": NS},
                    "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                             "bfdProfile": "fast"}}),
                allowed: true,
                mentions: &[],
            },
            Case {
                name: "BGPPeer naming a missing password Secret",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                    "metadata": {"name": "peer", "namespace": NS},
                    "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                             "passwordSecret": {"name": "md5"}}}),
                allowed: false,
                mentions: &["spec.passwordSecret.name", "md5"],
            },
            Case {
                name: "unrelated valid change while another error remains",
                existing: broken.clone(),
                op: "CREATE",
                object: pool("pool-b", &["10.0.1.0/24"]),
                allowed: true,
                // The overlap is reported on both pools.
                mentions: &["already has 2 error"],
            },
            Case {
                name: "update fixing one error while another remains",
                existing: format!(
                    "{broken}---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\n\
                     metadata: {{name: l2-dangling, namespace: ferrolb-system}}\n\
                     spec: {{ipAddressPools: [gone]}}\n"
                ),
                op: "UPDATE",
                object: pool("bad-2", &["192.168.1.0/24"]),
                allowed: true,
                mentions: &["already has 1 error"],
            },
            Case {
                name: "update that keeps a pre-existing error on the object itself",
                existing: broken.clone(),
                op: "UPDATE",
                object: {
                    let mut p = pool("bad-2", &["192.168.0.128/25"]);
                    p["metadata"]["labels"] = json!({"team": "net"});
                    p
                },
                allowed: true,
                mentions: &[],
            },
            Case {
                name: "update introducing a new error",
                existing: base.clone(),
                op: "UPDATE",
                object: pool("pool-a", &["10.0.0.0/33"]),
                allowed: false,
                mentions: &["pool-a", "spec.addresses[0]"],
            },
            Case {
                name: "object in another namespace",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "p", "namespace": "default"},
                    "spec": {"addresses": ["10.9.0.0/24"]}}),
                allowed: false,
                mentions: &["namespace ferrolb-system", "default"],
            },
            Case {
                name: "delete of a pool still referenced: allowed with a warning",
                existing: base.clone(),
                op: "DELETE",
                object: pool("pool-a", &["10.0.0.0/24"]),
                allowed: true,
                mentions: &["L2Advertisement ferrolb-system/l2-a", "pool-a"],
            },
            Case {
                name: "delete of an unreferenced object",
                existing: base.clone(),
                op: "DELETE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "L2Advertisement",
                    "metadata": {"name": "l2-a", "namespace": NS}, "spec": {}}),
                allowed: true,
                mentions: &[],
            },
            Case {
                name: "BGPAdvertisement naming an unknown community alias",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": {"name": "adv", "namespace": NS},
                    "spec": {"ipAddressPools": ["pool-a"], "communities": ["no-export"]}}),
                allowed: false,
                mentions: &["spec.communities[0]", "no-export"],
            },
            Case {
                name: "delete of a BFD profile still referenced: allowed with a warning",
                existing: format!(
                    "{base}---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\n\
                     metadata: {{name: peer, namespace: ferrolb-system}}\n\
                     spec: {{myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, bfdProfile: fast}}\n"
                ),
                op: "DELETE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BFDProfile",
                    "metadata": {"name": "fast", "namespace": NS}, "spec": {}}),
                allowed: true,
                mentions: &[
                    "deleting BFDProfile ferrolb-system/fast",
                    "BGPPeer ferrolb-system/peer: spec.bfdProfile",
                ],
            },
            Case {
                name: "delete in another namespace",
                existing: base.clone(),
                op: "DELETE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "pool-a", "namespace": "default"}, "spec": {}}),
                allowed: true,
                mentions: &[],
            },
            Case {
                name: "invalid BFD profile",
                existing: base.clone(),
                op: "UPDATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BFDProfile",
                    "metadata": {"name": "fast", "namespace": NS},
                    "spec": {"detectMultiplier": 1}}),
                allowed: false,
                mentions: &["BFDProfile ferrolb-system/fast: spec.detectMultiplier"],
            },
            Case {
                name: "malformed object",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "p", "namespace": NS},
                    "spec": {"addresses": "not-a-list"}}),
                allowed: false,
                mentions: &["not a valid IPAddressPool"],
            },
            Case {
                name: "object without a spec",
                existing: base.clone(),
                op: "CREATE",
                object: json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                    "metadata": {"name": "p", "namespace": NS}}),
                allowed: false,
                mentions: &["BGPPeer ferrolb-system/p"],
            },
        ]
    }

    #[test]
    fn review_table() {
        for case in cases() {
            let req = request(case.op, case.object.clone());
            let resp = review(&req, &existing(&case.existing), &opts());
            assert_eq!(resp.uid, "u-1", "{}", case.name);
            let text = if resp.allowed {
                resp.warnings.clone().unwrap_or_default().join("\n")
            } else {
                resp.result.message.clone()
            };
            assert_eq!(resp.allowed, case.allowed, "{}: {text}", case.name);
            for m in case.mentions {
                assert!(text.contains(m), "{}: {m:?} not in {text:?}", case.name);
            }
        }
    }

    #[test]
    fn denial_lists_only_introduced_errors() {
        let req = request("CREATE", pool("pool-b", &["10.0.0.128/25"]));
        let resp = review(&req, &existing(&format!("{BASE}{BROKEN}")), &opts());
        assert!(!resp.allowed);
        assert!(
            !resp.result.message.contains("bad-1"),
            "{}",
            resp.result.message
        );
        assert_eq!(resp.result.code, 422);
    }

    #[test]
    fn status_subresource_and_other_kinds_pass() {
        let mut req = request("UPDATE", pool("pool-b", &["10.0.0.128/25"]));
        req.sub_resource = Some("status".to_owned());
        assert!(review(&req, &existing(BASE), &opts()).allowed);

        let mut req = request("CREATE", pool("x", &[]));
        req.kind.kind = "ServiceL2Status".to_owned();
        let resp = review(&req, &existing(BASE), &opts());
        assert!(resp.allowed && resp.warnings.is_none());

        let mut req = request("CREATE", pool("x", &[]));
        req.kind.group = "example.com".to_owned();
        req.kind.kind = "Widget".to_owned();
        let resp = review(&req, &existing(BASE), &opts());
        assert!(resp.allowed);
        assert!(resp.warnings.unwrap_or_default()[0].contains("not validated"));
    }

    #[test]
    fn create_without_object_is_denied() {
        let mut req = request("CREATE", pool("p", &["10.5.0.0/24"]));
        req.object = None;
        let resp = review(&req, &existing(BASE), &opts());
        assert!(!resp.allowed);
        assert!(resp.result.message.contains("no object"));
    }

    #[test]
    fn referenced_secrets_include_the_incoming_peer() {
        let req = request(
            "CREATE",
            json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                "metadata": {"name": "peer", "namespace": NS},
                "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                         "passwordSecret": {"name": "md5"}}}),
        );
        let names = referenced_secrets(&req, &existing(BASE));
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["md5".to_owned()]
        );
    }

    #[test]
    fn password_secret_present_passes() {
        let yaml = format!(
            "{BASE}---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/basic-auth\n\
             metadata: {{name: md5, namespace: ferrolb-system}}\nstringData: {{password: s3cret}}\n"
        );
        let req = request(
            "CREATE",
            json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                "metadata": {"name": "peer", "namespace": NS},
                "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                         "passwordSecret": {"name": "md5"}}}),
        );
        let resp = review(&req, &existing(&yaml), &opts());
        assert!(resp.allowed, "{}", resp.result.message);
    }
}
