//! Cluster emulation: the Kubernetes objects a real cluster would have for the lab, written
//! into the in-memory [`ApiServer`] (a test component) so ferrolb's kube-rs code sees a
//! cluster whose Nodes and endpoints are the lab's namespaces.
//!
//! - [`seed_cluster`]: Namespaces `ferrolb-system` and `default`, one Node per lab node
//!   (`node<N>`, labels `kubernetes.io/hostname` and `kubernetes.io/os`, node addresses, pod
//!   CIDRs, conditions `Ready=True` and `NetworkUnavailable=False`). Nodes are seeded with
//!   [`ApiServer::insert`] because a create over HTTP drops `.status`.
//! - [`endpoint_slices`] / [`Cluster::create_endpoint_slices`]: one `discovery.k8s.io/v1`
//!   EndpointSlice per address family for a Service, one endpoint per pod (its address of
//!   that family, `nodeName`, a Pod `targetRef`, conditions), labelled with
//!   `kubernetes.io/service-name`.
//! - [`Cluster`] helpers change state as a real cluster would: an endpoint becomes not ready
//!   or terminating, a Node becomes NotReady / NetworkUnavailable (a `/status` write), a
//!   Node gets or loses the `node.kubernetes.io/exclude-from-external-load-balancers` label.
//! - [`validate_manifests`] / [`apply_manifests`]: the example manifests are parsed and
//!   validated by `ferrolb-config` exactly as the controller will (so errors name the file,
//!   object, field and reason) and only then loaded into the API server.
//! - [`dnat`]: the kube-proxy emulation hook: a watcher that installs nftables DNAT for every
//!   Service IP in `status.loadBalancer.ingress` on every node.
//! - [`demo`]: the `ferrolb-lab demo` walk-through.

pub mod demo;
pub mod dnat;
pub mod speakers;
pub mod table;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_config::error::{ConfigError, render_errors};
use ferrolb_config::ipset::Family;
use ferrolb_config::manifest::parse_manifests;
use ferrolb_config::model::{Config, PeerAsn};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, ObjectReference,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};

use crate::apiserver::ApiServer;
use crate::lab::{NodePlan, Plan, Proto};
use table::Table;

/// Namespace ferrolb is installed in.
pub const SYSTEM_NAMESPACE: &str = ferrolb_crds::DEFAULT_NAMESPACE;
/// Namespace of the example Services.
pub const SERVICE_NAMESPACE: &str = "default";
/// Label that keeps a node out of external load balancing.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Label linking an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by` value of the slices written here.
pub const MANAGED_BY: &str = "ferrolb-lab";

/// Health of a Node as its conditions tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeHealth {
    /// `Ready=True`, `NetworkUnavailable=False`.
    Ready,
    /// `Ready=False` (kubelet reports a problem).
    NotReady,
    /// `Ready=True` but `NetworkUnavailable=True` (the CNI has not set the node up).
    NetworkUnavailable,
}

/// State of one endpoint as its EndpointSlice conditions tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// ready, serving, not terminating.
    Ready,
    /// not ready, not serving (readiness probe failing), not terminating.
    NotReady,
    /// being deleted but still serving: ready false, serving true, terminating true.
    Terminating,
}

impl EndpointState {
    fn conditions(self) -> EndpointConditions {
        let (ready, serving, terminating) = match self {
            EndpointState::Ready => (true, true, false),
            EndpointState::NotReady => (false, false, false),
            EndpointState::Terminating => (false, true, true),
        };
        EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }
    }
}

/// A port of an EndpointSlice (the pods' target port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    /// Port name; must equal the Service port's name (empty for an unnamed port).
    pub name: String,
    /// Port number on the pods.
    pub port: u16,
    /// Protocol.
    pub proto: Proto,
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The Namespace object `name`.
pub fn namespace_object(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
    })
}

/// Conditions of a Node in `health`, with `time` as heartbeat and transition time.
pub fn node_conditions(health: NodeHealth, time: &Time) -> Vec<NodeCondition> {
    let (ready, net_unavailable) = match health {
        NodeHealth::Ready => (true, false),
        NodeHealth::NotReady => (false, false),
        NodeHealth::NetworkUnavailable => (true, true),
    };
    let cond = |type_: &str, ok: bool, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(time.clone()),
        last_transition_time: Some(time.clone()),
    };
    vec![
        if ready {
            cond(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
            )
        } else {
            cond("Ready", false, "KubeletNotReady", "set NotReady by the lab")
        },
        if net_unavailable {
            cond(
                "NetworkUnavailable",
                true,
                "NoRouteCreated",
                "set NetworkUnavailable by the lab",
            )
        } else {
            cond(
                "NetworkUnavailable",
                false,
                "RouteCreated",
                "the lab routes this node",
            )
        },
    ]
}

/// The Node object of a lab node: name, labels, pod CIDRs, addresses, and `health`.
pub fn node_object(node: &NodePlan, health: NodeHealth) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "kubernetes.io/arch".to_string(),
            std::env::consts::ARCH.to_string(),
        ),
    ]);
    let cidrs: Vec<String> = node
        .pod_cidr_v4
        .iter()
        .chain(node.pod_cidr_v6.iter())
        .cloned()
        .collect();
    let mut addresses: Vec<NodeAddress> = node
        .uplink
        .all()
        .into_iter()
        .map(|a| NodeAddress {
            type_: "InternalIP".into(),
            address: a.to_string(),
        })
        .collect();
    addresses.push(NodeAddress {
        type_: "Hostname".into(),
        address: node.name.clone(),
    });
    Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cidrs.first().cloned(),
            pod_cidrs: Some(cidrs),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(addresses),
            conditions: Some(node_conditions(health, &now())),
            ..NodeStatus::default()
        }),
    }
}

/// Creates the Namespaces and one Ready Node per lab node (seeded with status); returns
/// the Nodes.
pub fn seed_cluster(api: &ApiServer, plan: &Plan) -> anyhow::Result<Vec<Node>> {
    for ns in [SYSTEM_NAMESPACE, SERVICE_NAMESPACE] {
        api.insert(namespace_object(ns))
            .map_err(|e| anyhow::anyhow!("create Namespace {ns}: {}", e.message))?;
    }
    let mut nodes = Vec::new();
    for n in &plan.nodes {
        let node = node_object(n, NodeHealth::Ready);
        let v = serde_json::to_value(&node).context("serialise Node")?;
        api.insert(v)
            .map_err(|e| anyhow::anyhow!("create Node {}: {}", n.name, e.message))?;
        nodes.push(node);
    }
    Ok(nodes)
}

/// The EndpointSlices of Service `namespace/service` with every pod of the lab as an
/// endpoint: one slice per family present in the plan (`<service>-ipv4`, `<service>-ipv6`).
pub fn endpoint_slices(
    plan: &Plan,
    namespace: &str,
    service: &str,
    ports: &[SlicePort],
) -> Vec<EndpointSlice> {
    let mut out = Vec::new();
    for family in Family::ALL {
        let endpoints: Vec<Endpoint> = plan
            .nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
            .filter_map(|(n, p)| {
                let addr: IpAddr = match family {
                    Family::V4 => p.addr.v4?.into(),
                    Family::V6 => p.addr.v6?.into(),
                };
                Some(Endpoint {
                    addresses: vec![addr.to_string()],
                    conditions: Some(EndpointState::Ready.conditions()),
                    node_name: Some(n.name.clone()),
                    target_ref: Some(ObjectReference {
                        kind: Some("Pod".into()),
                        namespace: Some(namespace.into()),
                        name: Some(p.name.clone()),
                        ..ObjectReference::default()
                    }),
                    ..Endpoint::default()
                })
            })
            .collect();
        if endpoints.is_empty() {
            continue;
        }
        let (suffix, address_type) = match family {
            Family::V4 => ("ipv4", "IPv4"),
            Family::V6 => ("ipv6", "IPv6"),
        };
        out.push(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service}-{suffix}")),
                namespace: Some(namespace.into()),
                labels: Some(BTreeMap::from([
                    (SERVICE_NAME_LABEL.to_string(), service.to_string()),
                    (
                        "endpointslice.kubernetes.io/managed-by".to_string(),
                        MANAGED_BY.to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            address_type: address_type.into(),
            endpoints,
            ports: Some(
                ports
                    .iter()
                    .map(|p| EndpointPort {
                        name: Some(p.name.clone()),
                        port: Some(i32::from(p.port)),
                        protocol: Some(p.proto.as_str().to_uppercase()),
                        app_protocol: None,
                    })
                    .collect(),
            ),
        });
    }
    out
}

/// Sets the conditions of pod `pod`'s endpoint in `slice`; false if the slice has none.
pub fn set_endpoint_state(slice: &mut EndpointSlice, pod: &str, state: EndpointState) -> bool {
    let mut found = false;
    for e in &mut slice.endpoints {
        if e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(pod) {
            e.conditions = Some(state.conditions());
            found = true;
        }
    }
    found
}

/// State changes of the emulated cluster, through a kube-rs client (real HTTP requests).
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cluster")
    }
}

impl Cluster {
    /// Uses `client` (e.g. [`ApiServer::client`]).
    pub fn new(client: kube::Client) -> Cluster {
        Cluster { client }
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Creates the EndpointSlices of [`endpoint_slices`] for Service `namespace/service`.
    pub async fn create_endpoint_slices(
        &self,
        plan: &Plan,
        namespace: &str,
        service: &str,
        ports: &[SlicePort],
    ) -> anyhow::Result<Vec<EndpointSlice>> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        let mut out = Vec::new();
        for s in endpoint_slices(plan, namespace, service, ports) {
            let name = s.metadata.name.clone().unwrap_or_default();
            out.push(
                api.create(&PostParams::default(), &s)
                    .await
                    .with_context(|| format!("create EndpointSlice {namespace}/{name}"))?,
            );
        }
        Ok(out)
    }

    /// Sets pod `pod`'s endpoint conditions in every EndpointSlice of Service
    /// `namespace/service`; fails if no slice has that pod.
    pub async fn set_endpoint_state(
        &self,
        namespace: &str,
        service: &str,
        pod: &str,
        state: EndpointState,
    ) -> anyhow::Result<()> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={service}"));
        let mut found = false;
        for mut s in api
            .list(&lp)
            .await
            .with_context(|| format!("list EndpointSlices of {namespace}/{service}"))?
        {
            if set_endpoint_state(&mut s, pod, state) {
                found = true;
                let name = s.metadata.name.clone().unwrap_or_default();
                api.replace(&name, &PostParams::default(), &s)
                    .await
                    .with_context(|| format!("update EndpointSlice {namespace}/{name}"))?;
            }
        }
        anyhow::ensure!(
            found,
            "no EndpointSlice of {namespace}/{service} has an endpoint for pod {pod}"
        );
        Ok(())
    }

    /// Writes Node `node`'s conditions for `health` (a `/status` write, as the kubelet does).
    pub async fn set_node_health(&self, node: &str, health: NodeHealth) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut n = api
            .get(node)
            .await
            .with_context(|| format!("get Node {node}"))?;
        n.status.get_or_insert_with(NodeStatus::default).conditions =
            Some(node_conditions(health, &now()));
        api.replace_status(node, &PostParams::default(), &n)
            .await
            .with_context(|| format!("write status of Node {node}"))?;
        Ok(())
    }

    /// Adds (`true`) or removes the exclude-from-external-load-balancers label of `node`.
    pub async fn set_node_excluded(&self, node: &str, excluded: bool) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let value = if excluded {
            serde_json::Value::String(String::new())
        } else {
            serde_json::Value::Null
        };
        let patch = serde_json::json!({"metadata": {"labels": {EXCLUDE_LABEL: value}}});
        api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("label Node {node}"))?;
        Ok(())
    }
}

/// Why example manifests were not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Parsing (per file) or whole-config validation failed.
    Invalid {
        /// The file, or `None` for whole-config errors that span files.
        path: Option<PathBuf>,
        /// Every problem, as `ferrolb-config` reports them.
        errors: Vec<ConfigError>,
    },
    /// The API server refused an object.
    Load {
        /// The file.
        path: PathBuf,
        /// The API server's message.
        message: String,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Read { path, error } => write!(f, "read {}: {error}", path.display()),
            ApplyError::Invalid { path, errors } => {
                match path {
                    Some(p) => write!(f, "{} is invalid:", p.display())?,
                    None => write!(f, "the configuration is invalid:")?,
                }
                for line in render_errors(errors).lines() {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            ApplyError::Load { path, message } => {
                write!(f, "load {} into the API server: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ApplyError {}

/// Manifests that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Every object read from them.
    pub resources: Resources,
    /// The configuration `ferrolb-config` built from them.
    pub config: Config,
}

fn append(into: &mut Resources, from: Resources) {
    into.pools.extend(from.pools);
    into.l2_advertisements.extend(from.l2_advertisements);
    into.bgp_advertisements.extend(from.bgp_advertisements);
    into.peers.extend(from.peers);
    into.bfd_profiles.extend(from.bfd_profiles);
    into.communities.extend(from.communities);
    into.namespaces.extend(from.namespaces);
    into.nodes.extend(from.nodes);
    into.secrets.extend(from.secrets);
    into.services.extend(from.services);
    into.service_l2_statuses.extend(from.service_l2_statuses);
    into.service_bgp_statuses.extend(from.service_bgp_statuses);
}

/// The manifest files of `path`: the file itself, or a directory's `*.yaml`/`*.yml` files
/// in name order.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, ApplyError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd = std::fs::read_dir(path).map_err(|error| ApplyError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses every file strictly and validates the whole configuration with `ferrolb-config`,
/// with `nodes` in the snapshot (for the node-overlap rules). Nothing is loaded anywhere.
pub fn validate_manifests(
    paths: &[PathBuf],
    nodes: &[Node],
) -> Result<(ValidatedConfig, Vec<String>), ApplyError> {
    let mut resources = Resources::default();
    let mut texts = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|error| ApplyError::Read {
            path: path.clone(),
            error,
        })?;
        let r = parse_manifests(&text).map_err(|errors| ApplyError::Invalid {
            path: Some(path.clone()),
            errors,
        })?;
        append(&mut resources, r);
        texts.push(text);
    }
    let mut snapshot = resources.clone();
    snapshot.nodes.extend(nodes.iter().cloned());
    let config = build(&snapshot, &BuildOptions::default())
        .map_err(|errors| ApplyError::Invalid { path: None, errors })?;
    Ok((
        ValidatedConfig {
            files: paths.to_vec(),
            resources,
            config,
        },
        texts,
    ))
}

/// [`validate_manifests`], then loads every object of the files into `api` (creating or
/// replacing them; CRDs must be loaded before).
pub fn apply_manifests(
    api: &ApiServer,
    paths: &[PathBuf],
    nodes: &[Node],
) -> Result<ValidatedConfig, ApplyError> {
    let (validated, texts) = validate_manifests(paths, nodes)?;
    for (path, text) in paths.iter().zip(texts) {
        api.load_yaml(&text).map_err(|e| ApplyError::Load {
            path: path.clone(),
            message: e.message,
        })?;
    }
    Ok(validated)
}

fn join<I: IntoIterator<Item = S>, S: ToString>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.to_string()).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// Pools with their addresses and exact sizes per family.
pub fn pool_table(config: &Config) -> Table {
    let mut t = Table::new([
        "pool",
        "addresses",
        "IPv4 size",
        "IPv6 size",
        "autoAssign",
        "avoidBuggyIPs",
    ]);
    for (name, p) in &config.pools {
        let ranges = p.v4().iter().chain(p.v6().iter());
        t.row([
            name.clone(),
            join(ranges),
            p.count(Family::V4).to_string(),
            p.count(Family::V6).to_string(),
            p.auto_assign().to_string(),
            p.avoid_buggy_ips().to_string(),
        ]);
    }
    t
}

/// BGP peers with sessions parameters.
pub fn peer_table(config: &Config) -> Table {
    let mut t = Table::new([
        "peer",
        "address",
        "myASN",
        "peerASN",
        "hold",
        "keepalive",
        "BFD",
        "nodes",
    ]);
    for (name, p) in &config.peers {
        let peer_asn = match p.peer_asn {
            PeerAsn::Fixed(a) => a.to_string(),
            PeerAsn::Internal => "dynamic (internal)".to_string(),
            PeerAsn::External => "dynamic (external)".to_string(),
        };
        let bfd = p.bfd_profile.as_ref().map_or("-".to_string(), |b| {
            format!(
                "{} ({} ms x {})",
                b.name,
                b.transmit_interval.as_millis(),
                b.detect_multiplier
            )
        });
        let nodes = if p.node_selectors.0.is_empty() {
            "all".to_string()
        } else {
            join(&p.node_selectors.0)
        };
        t.row([
            name.clone(),
            format!("{}:{}", p.address, p.port),
            p.my_asn.to_string(),
            peer_asn,
            format!("{}s", p.hold_time.as_secs()),
            format!("{}s", p.keepalive_time.as_secs()),
            bfd,
            nodes,
        ]);
    }
    t
}

/// BGP and L2 advertisements.
pub fn advertisement_table(config: &Config) -> Table {
    let mut t = Table::new(["advertisement", "mode", "pools", "details"]);
    for (name, a) in &config.bgp_advertisements {
        t.row([
            name.clone(),
            "BGP".into(),
            join(&a.pools),
            format!(
                "aggregation /{} /{}, communities {}, peers {}",
                a.aggregation_length,
                a.aggregation_length_v6,
                join(&a.communities),
                if a.peers.is_empty() {
                    "all".to_string()
                } else {
                    join(&a.peers)
                }
            ),
        ]);
    }
    for (name, a) in &config.l2_advertisements {
        t.row([
            name.clone(),
            "L2".into(),
            join(&a.pools),
            format!(
                "interfaces {}",
                if a.interfaces.is_empty() {
                    "all".to_string()
                } else {
                    join(&a.interfaces)
                }
            ),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabSpec;

    fn plan() -> Plan {
        LabSpec {
            nodes: 2,
            pods_per_node: 2,
            ..LabSpec::default()
        }
        .plan("flb-1-0")
        .expect("plan")
    }

    #[test]
    fn node_objects_carry_labels_addresses_and_conditions() {
        let p = plan();
        let n = node_object(&p.nodes[1], NodeHealth::Ready);
        assert_eq!(n.metadata.name.as_deref(), Some("node2"));
        let labels = n.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "node2");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        let st = n.status.as_ref().expect("status");
        let addrs: Vec<&str> = st
            .addresses
            .as_ref()
            .expect("addresses")
            .iter()
            .map(|a| a.address.as_str())
            .collect();
        assert_eq!(addrs, ["10.0.2.2", "fd00:10:2::2", "node2"]);
        assert_eq!(
            n.spec.as_ref().and_then(|s| s.pod_cidrs.clone()),
            Some(vec!["10.244.2.0/24".into(), "fd00:244:2::/64".into()])
        );
        let v = serde_json::to_value(&n).expect("json");
        assert_eq!(v["kind"], "Node");
        assert_eq!(v["apiVersion"], "v1");
    }

    #[test]
    fn node_health_conditions() {
        let t = now();
        let cases = [
            (NodeHealth::Ready, "True", "False"),
            (NodeHealth::NotReady, "False", "False"),
            (NodeHealth::NetworkUnavailable, "True", "True"),
        ];
        for (h, ready, net) in cases {
            let c = node_conditions(h, &t);
            let get = |ty: &str| {
                c.iter()
                    .find(|x| x.type_ == ty)
                    .map(|x| x.status.clone())
                    .expect("condition")
            };
            assert_eq!(get("Ready"), ready, "{h:?}");
            assert_eq!(get("NetworkUnavailable"), net, "{h:?}");
        }
    }

    #[test]
    fn slices_per_family_with_every_pod() {
        let p = plan();
        let ports = [SlicePort {
            name: "http".into(),
            port: 8080,
            proto: Proto::Tcp,
        }];
        let s = endpoint_slices(&p, "default", "web", &ports);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].metadata.name.as_deref(), Some("web-ipv4"));
        assert_eq!(s[0].address_type, "IPv4");
        assert_eq!(s[1].address_type, "IPv6");
        let e = &s[0].endpoints;
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].addresses, ["10.244.1.11"]);
        assert_eq!(e[3].node_name.as_deref(), Some("node2"));
        assert_eq!(
            e[3].target_ref.as_ref().and_then(|r| r.name.as_deref()),
            Some("pod-2-2")
        );
        assert_eq!(s[1].endpoints[0].addresses, ["fd00:244:1::11"]);
        let port = &s[0].ports.as_ref().expect("ports")[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), Some(8080), Some("TCP"))
        );
        assert_eq!(
            s[0].metadata.labels.as_ref().expect("labels")[SERVICE_NAME_LABEL],
            "web"
        );
    }

    #[test]
    fn endpoint_state_changes() {
        let p = plan();
        let mut s = endpoint_slices(&p, "default", "web", &[]).remove(0);
        let cases = [
            (EndpointState::NotReady, (false, false, false)),
            (EndpointState::Terminating, (false, true, true)),
            (EndpointState::Ready, (true, true, false)),
        ];
        for (state, (r, sv, t)) in cases {
            assert!(set_endpoint_state(&mut s, "pod-1-2", state));
            let c = s.endpoints[1].conditions.clone().expect("conditions");
            assert_eq!(
                (c.ready, c.serving, c.terminating),
                (Some(r), Some(sv), Some(t))
            );
        }
        assert!(!set_endpoint_state(&mut s, "pod-9-9", EndpointState::Ready));
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples")
            .join(name)
    }

    #[test]
    fn examples_validate_with_exact_pool_sizes() {
        let files = manifest_files(&example("")).expect("files");
        assert_eq!(files.len(), 2, "{files:?}");
        let nodes: Vec<Node> = plan()
            .nodes
            .iter()
            .map(|n| node_object(n, NodeHealth::Ready))
            .collect();
        let (v, texts) = validate_manifests(&files, &nodes).expect("valid");
        assert_eq!(texts.len(), 2);
        assert_eq!(v.resources.services.len(), 4);
        let t = pool_table(&v.config).render("");
        assert!(t.contains("18446744073709551616"), "{t}");
        assert!(t.contains("198.51.100.0/24, fd00:5100::/64"), "{t}");
        let peers = peer_table(&v.config);
        assert_eq!(peers.len(), 6);
        assert!(peers.render("").contains("fast (100 ms x 3)"));
        let ads = advertisement_table(&v.config).render("");
        assert!(ads.contains("64512:100"), "{ads}");
    }

    #[test]
    fn invalid_manifest_names_file_object_and_field() {
        let dir = std::env::temp_dir().join(format!("flb-cluster-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("bad.yaml");
        std::fs::write(
            &f,
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  namespace: ferrolb-system\nspec:\n  addresses: [\"10.0.0.1/24\"]\n",
        )
        .expect("write");
        let err = validate_manifests(std::slice::from_ref(&f), &[]).expect_err("invalid");
        let msg = err.to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            msg.contains("IPAddressPool ferrolb-system/p: spec.addresses[0]"),
            "{msg}"
        );
        let missing = validate_manifests(&[dir.join("nope.yaml")], &[]).expect_err("missing");
        assert!(matches!(missing, ApplyError::Read { .. }));
    }
}
