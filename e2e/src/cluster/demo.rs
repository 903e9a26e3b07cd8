//! `ferrolb-lab demo`: builds the lab, the in-memory API server (a test component) and the
//! emulated cluster, validates and loads `deploy/examples/`, and shows the data path end to
//! end with **ferrolb's speaker** (`ferrolb-speaker`, one process per node namespace, see
//! [`super::speakers`]) announcing the VIPs to the FRR ToR by BGP with BFD, and the VIPs
//! allocated by **ferrolb's controller** (`ferrolb-controller` in node1's namespace). With
//! [`DemoOptions::controller`] off the demo writes Service status itself, standing in for the
//! controller, and says so. Every step is printed in plain words and small tables; a failure
//! names its step. Everything is torn down before [`run`] returns.
//!
//! Blocking lab calls run under `tokio::task::block_in_place`, so [`run`] needs the
//! multi-threaded tokio runtime (the default of `#[tokio::main]`; tests use
//! `#[tokio::test(flavor = "multi_thread")]`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ferrolb_crds::ServiceBGPStatus;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use super::dnat::DnatWatcher;
use super::speakers::{CONTROLLER_BIN, FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use super::table::Table;
use super::{
    Cluster, SERVICE_NAMESPACE, SYSTEM_NAMESPACE, SlicePort, advertisement_table, apply_manifests,
    manifest_files, peer_table, pool_table, seed_cluster,
};
use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::failover::{self, BenchOptions, FamilySelection, SpeakerKind};
use crate::lab::exec::{find_program, package_of};
use crate::lab::{
    self, BfdTimers, FrrPeering, Lab, LabSpec, NodeAsns, Proto, TeardownHandle, require_root,
};

/// The repository root this crate was built from (`deploy/` and `target/` live there).
pub fn workspace_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Directory with `crds/` and `examples/` (the repository's `deploy/`).
    pub deploy_dir: PathBuf,
    /// Nodes in the lab (2 to 8).
    pub nodes: u8,
    /// Pods per node (1 to 8).
    pub pods_per_node: u8,
    /// Requests sent through the VIP to show the spread.
    pub requests: usize,
    /// Start ferrolb's controller to allocate the VIPs (else the demo writes Service
    /// status itself, standing in for it).
    pub controller: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            deploy_dir: workspace_root().join("deploy"),
            nodes: 3,
            pods_per_node: 2,
            requests: 100,
            controller: true,
        }
    }
}

/// A failed demo step.
#[derive(Debug)]
pub struct DemoError {
    /// The step's title.
    pub step: String,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "demo step '{}' failed: {:#}", self.step, self.error)
    }
}

impl std::error::Error for DemoError {}

/// What the demo showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Lab run name.
    pub run: String,
    /// Pods that answered through the VIP, with their answer counts (IPv4 and IPv6 summed).
    pub spread: BTreeMap<String, usize>,
    /// The node failed in the failover step.
    pub failed_node: u8,
    /// Client-seen outage of the flows through it.
    pub outage: Duration,
    /// Until the router dropped its next hop.
    pub detection: Duration,
    /// Whether ferrolb's controller allocated the VIPs (else the demo wrote them).
    pub controller: bool,
    /// The VIPs shown: web's IPv4 and IPv6, the probe Service's IPv4.
    pub vips: Vec<IpAddr>,
}

/// VIP the demo writes into the `web` Service (IPv4).
pub const WEB_VIP_V4: &str = "198.51.100.1";
/// VIP the demo writes into the `web` Service (IPv6).
pub const WEB_VIP_V6: &str = "fd00:5100::1";
/// VIP of the demo's UDP probe Service (`externalTrafficPolicy: Local`).
pub const PROBE_VIP: &str = "198.51.100.2";
/// Name of the demo's UDP probe Service.
pub const PROBE_SERVICE: &str = "demo-udp";
/// Port of the pods' servers.
pub const POD_PORT: u16 = 8080;

struct Out<'a> {
    w: &'a mut (dyn Write + Send),
    n: usize,
    total: usize,
    current: String,
}

impl Out<'_> {
    fn step(&mut self, title: &str) {
        self.n += 1;
        self.current = title.to_string();
        let _ = writeln!(self.w, "\n[{}/{}] {title}", self.n, self.total);
    }

    fn say(&mut self, text: &str) {
        for line in text.lines() {
            let _ = writeln!(self.w, "  {line}");
        }
    }

    fn table(&mut self, t: &Table) {
        let _ = write!(self.w, "{}", t.render("    "));
    }

    fn fail(&self, e: impl Into<anyhow::Error>) -> DemoError {
        DemoError {
            step: self.current.clone(),
            error: e.into(),
        }
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Programs the demo needs, as (program or path, Debian package).
pub fn required_programs(spec: &LabSpec) -> Vec<(String, &'static str)> {
    let mut v: Vec<String> = ["ip", "nft", "sysctl"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for d in ["zebra", "bgpd", "bfdd"] {
        v.push(spec.frr_dir.join(d).to_string_lossy().into_owned());
    }
    v.push(spec.vtysh_bin.to_string_lossy().into_owned());
    v.into_iter()
        .map(|p| {
            let pkg = package_of(&p).unwrap_or("iproute2");
            (p, pkg)
        })
        .collect()
}

/// Root, every program present and ferrolb's speaker binary built, or an error naming what
/// is missing and the command that installs or builds it. (The controller binary is checked
/// by [`run`] when [`DemoOptions::controller`] is on.)
pub fn preflight(spec: &LabSpec) -> anyhow::Result<Vec<(String, PathBuf)>> {
    require_root().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut found = Vec::new();
    let mut missing: Vec<(String, &str)> = Vec::new();
    for (p, pkg) in required_programs(spec) {
        match find_program(&p) {
            Some(path) => found.push((p, path)),
            None => missing.push((p, pkg)),
        }
    }
    if !missing.is_empty() {
        let mut pkgs: Vec<&str> = missing.iter().map(|(_, k)| *k).collect();
        pkgs.sort_unstable();
        pkgs.dedup();
        let progs: Vec<&str> = missing.iter().map(|(p, _)| p.as_str()).collect();
        anyhow::bail!(
            "missing {}; install with: apt-get install -y {}",
            progs.join(", "),
            pkgs.join(" ")
        );
    }
    found.push((SPEAKER_BIN.to_string(), locate_binary(SPEAKER_BIN)?));
    Ok(found)
}

/// The lab spec of the demo: FRR ToR in AS 64512 peering statically with every node (AS
/// 64513), hold 9 s and BFD 100 ms x 3 as in `deploy/examples/ferrolb-config.yaml`.
pub fn demo_spec(opts: &DemoOptions) -> LabSpec {
    LabSpec {
        nodes: opts.nodes,
        pods_per_node: opts.pods_per_node,
        frr_peering: FrrPeering::Static,
        node_asns: NodeAsns::Same(64513),
        router_asn: 64512,
        hold_time_secs: 9,
        bfd: Some(BfdTimers {
            interval_ms: 100,
            multiplier: 3,
        }),
        ..LabSpec::default()
    }
}

fn dual(a: &lab::DualAddr) -> String {
    a.all()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the demo, printing to `out`. `on_lab` receives the lab's teardown handle as soon as
/// the lab exists (for a Ctrl-C handler). Everything started is stopped before returning.
pub async fn run(
    opts: &DemoOptions,
    out: &mut (dyn Write + Send),
    on_lab: &mut (dyn FnMut(TeardownHandle) + Send),
) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    let mut o = Out {
        w: out,
        n: 0,
        total: 12,
        current: String::new(),
    };
    let _ = writeln!(
        o.w,
        "ferrolb lab demo: a virtual data centre in network namespaces, step by step."
    );

    o.step("preflight: root and the programs the lab runs");
    let spec = demo_spec(opts);
    if !(2..=8).contains(&opts.nodes) || !(1..=8).contains(&opts.pods_per_node) {
        return Err(o.fail(anyhow::anyhow!(
            "nodes must be 2 to 8 and pods per node 1 to 8 (got {} and {})",
            opts.nodes,
            opts.pods_per_node
        )));
    }
    let mut found = preflight(&spec).map_err(|e| o.fail(e))?;
    if opts.controller {
        let c = locate_binary(CONTROLLER_BIN).map_err(|e| o.fail(e))?;
        found.push((CONTROLLER_BIN.to_string(), c));
    }
    let mut t = Table::new(["program", "found at"]);
    for (p, path) in &found {
        t.row([p.clone(), path.display().to_string()]);
    }
    o.say("running as root; every program is present and ferrolb's binaries are built:");
    o.table(&t);

    o.step("clean up leftovers of killed runs");
    let stale = blocking(|| lab::cleanup_stale(lab::PREFIX)).map_err(|e| o.fail(e))?;
    o.say(&format!(
        "removed {} stale namespaces, {} processes and {} run directories",
        stale.namespaces.len(),
        stale.killed.len(),
        stale.dirs.len()
    ));

    o.step("build the topology");
    let lab = Arc::new(blocking(|| Lab::up(spec.clone())).map_err(|e| o.fail(e))?);
    on_lab(lab.teardown_handle());
    let result = with_lab(opts, &mut o, lab.clone()).await;
    // Tear down whatever happened (the DNAT watcher and API server are gone by now).
    let down = blocking(|| lab.teardown_handle().teardown());
    let summary = result?;
    o.step("tear down");
    if !down.is_empty() {
        return Err(o.fail(anyhow::anyhow!("teardown problems: {}", down.join("; "))));
    }
    o.say(&format!(
        "lab {} removed: namespaces deleted, daemons stopped, run directory gone.",
        summary.run
    ));
    let _ = writeln!(
        o.w,
        "\nDemo succeeded in {:.1} s. What ran: a {}-node lab with an FRR ToR, the in-memory \
         API server with ferrolb's CRDs, the example configuration validated by ferrolb-config \
         and loaded, Nodes and EndpointSlices, and nftables DNAT driven by Service status. \
         What ferrolb did: {}its speaker ran on every node, brought up BGP and BFD (100 ms x 3) \
         with the ToR from the BGPPeers, announced the VIPs (ECMP over every node) and wrote \
         ServiceBGPStatus; {} pods answered through the VIP, and a silent node failure cost \
         the client {} ms (router detection {} ms).",
        started.elapsed().as_secs_f64(),
        opts.nodes,
        if summary.controller {
            "its controller allocated the VIPs from the IPAddressPools; "
        } else {
            ""
        },
        summary.spread.len(),
        summary.outage.as_millis(),
        summary.detection.as_millis()
    );
    if !summary.controller {
        let _ = writeln!(
            o.w,
            "Not shown yet: VIP allocation by ferrolb's controller (issue 3); the demo wrote \
             the Services' status itself."
        );
    }
    Ok(summary)
}

async fn with_lab(
    opts: &DemoOptions,
    o: &mut Out<'_>,
    lab: Arc<Lab>,
) -> Result<DemoSummary, DemoError> {
    let plan = lab.plan().clone();
    let mut t = Table::new(["name", "namespace", "AS", "uplink", "L2 segment", "pods"]);
    t.row([
        "router (FRR)".to_string(),
        plan.router_ns.clone(),
        lab.spec().router_asn.to_string(),
        plan.nodes
            .iter()
            .filter_map(|n| n.router_side.v4)
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        "-".into(),
        "-".into(),
    ]);
    for n in &plan.nodes {
        t.row([
            n.name.clone(),
            n.ns.clone(),
            n.asn.to_string(),
            dual(&n.uplink),
            dual(&n.l2),
            n.pods
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    t.row([
        "client".to_string(),
        plan.client.ns.clone(),
        "-".into(),
        dual(&plan.client.uplink),
        dual(&plan.client.l2),
        "-".into(),
    ]);
    o.say(&format!(
        "lab {}: a ToR router, a switch, {} nodes with {} pods each, and a client:",
        plan.run,
        plan.nodes.len(),
        opts.pods_per_node
    ));
    o.table(&t);
    let mut t = Table::new(["pod", "node", "addresses"]);
    for n in &plan.nodes {
        for p in &n.pods {
            t.row([p.name.clone(), n.name.clone(), dual(&p.addr)]);
        }
    }
    o.table(&t);

    o.step("start the in-memory Kubernetes API server (a test component of the lab)");
    let api = ApiServer::start(ApiServerOptions {
        manifests: vec![opts.deploy_dir.join("crds")],
        ..ApiServerOptions::default()
    })
    .await
    .map_err(|e| o.fail(e))?;
    let result = with_api(opts, o, lab, &api).await;
    api.shutdown().await;
    result
}

async fn with_api(
    opts: &DemoOptions,
    o: &mut Out<'_>,
    lab: Arc<Lab>,
    api: &ApiServer,
) -> Result<DemoSummary, DemoError> {
    let kubeconfig = lab.run_dir().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).map_err(|e| o.fail(e))?;
    o.say(&format!(
        "serving {} (plain HTTP, no auth). It is the lab's stand-in for kube-apiserver, not \
         part of ferrolb; kubeconfig for this run: {}",
        api.url(),
        kubeconfig.display()
    ));
    let crds = crd_rows(opts).map_err(|e| o.fail(e))?;
    o.say(&format!(
        "loaded {} CRDs from {}:",
        crds.len(),
        opts.deploy_dir.join("crds").display()
    ));
    o.table(&crds);
    let client = api.client().map_err(|e| o.fail(e))?;
    let cluster = Cluster::new(client.clone());

    o.step("emulate the cluster: Namespaces and Nodes");
    let nodes = seed_cluster(api, lab.plan()).map_err(|e| o.fail(e))?;
    let listed = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&Default::default())
        .await
        .map_err(|e| o.fail(e))?;
    let mut t = Table::new(["node", "Ready", "InternalIP", "pod CIDRs"]);
    for n in &listed {
        let st = n.status.clone().unwrap_or_default();
        let ready = st
            .conditions
            .unwrap_or_default()
            .iter()
            .find(|c| c.type_ == "Ready")
            .map_or("?".to_string(), |c| c.status.clone());
        t.row([
            n.metadata.name.clone().unwrap_or_default(),
            ready,
            st.addresses
                .unwrap_or_default()
                .iter()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone())
                .collect::<Vec<_>>()
                .join(", "),
            n.spec
                .as_ref()
                .and_then(|s| s.pod_cidrs.clone())
                .unwrap_or_default()
                .join(", "),
        ]);
    }
    o.say("Namespaces ferrolb-system and default; Nodes as read back through kube-rs:");
    o.table(&t);

    o.step("validate deploy/examples with ferrolb-config and load them");
    let files = manifest_files(&opts.deploy_dir.join("examples")).map_err(|e| o.fail(e))?;
    let validated = apply_manifests(api, &files, &nodes).map_err(|e| o.fail(e))?;
    o.say(&format!(
        "{} valid (the same validation the controller runs); pools with exact sizes:",
        files
            .iter()
            .map(|f| f
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    o.table(&pool_table(&validated.config));
    o.say("BGP peers (one per node and family, selected by kubernetes.io/hostname):");
    o.table(&peer_table(&validated.config));
    o.say("advertisements:");
    o.table(&advertisement_table(&validated.config));
    let mut t = Table::new(["Service", "type", "externalTrafficPolicy", "ports"]);
    for s in &validated.resources.services {
        let spec = s.spec.clone().unwrap_or_default();
        t.row([
            format!(
                "{}/{}",
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default()
            ),
            spec.type_.unwrap_or_default(),
            spec.external_traffic_policy
                .unwrap_or_else(|| "Cluster".into()),
            spec.ports
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.port,
                        p.protocol.clone().unwrap_or_else(|| "TCP".into())
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    o.say("Services:");
    o.table(&t);

    o.step("pods and EndpointSlices");
    blocking(|| lab.serve_pods(POD_PORT)).map_err(|e| o.fail(e))?;
    let svc_api: Api<Service> = Api::namespaced(client.clone(), SERVICE_NAMESPACE);
    let probe_svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": PROBE_SERVICE, "namespace": SERVICE_NAMESPACE},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "web"},
            "ports": [{"name": "udp", "port": 80, "targetPort": POD_PORT, "protocol": "UDP"}],
        },
    }))
    .map_err(|e| o.fail(e))?;
    svc_api
        .create(&PostParams::default(), &probe_svc)
        .await
        .map_err(|e| o.fail(e))?;
    let mut slices = cluster
        .create_endpoint_slices(
            lab.plan(),
            SERVICE_NAMESPACE,
            "web",
            &[SlicePort {
                name: "http".into(),
                port: POD_PORT,
                proto: Proto::Tcp,
            }],
        )
        .await
        .map_err(|e| o.fail(e))?;
    slices.extend(
        cluster
            .create_endpoint_slices(
                lab.plan(),
                SERVICE_NAMESPACE,
                PROBE_SERVICE,
                &[SlicePort {
                    name: "udp".into(),
                    port: POD_PORT,
                    proto: Proto::Udp,
                }],
            )
            .await
            .map_err(|e| o.fail(e))?,
    );
    o.say(&format!(
        "every pod serves its name on TCP and UDP port {POD_PORT}. The demo adds Service \
         {PROBE_SERVICE} (UDP, externalTrafficPolicy: Local) for the outage probe."
    ));
    let mut t = Table::new(["EndpointSlice", "type", "ready endpoints", "port"]);
    for s in &slices {
        let ready = s
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        let p = s.ports.clone().unwrap_or_default();
        t.row([
            s.metadata.name.clone().unwrap_or_default(),
            s.address_type.clone(),
            format!("{ready} of {}", s.endpoints.len()),
            p.first()
                .map(|p| {
                    format!(
                        "{} {}/{}",
                        p.name.clone().unwrap_or_default(),
                        p.port.unwrap_or(0),
                        p.protocol.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
        ]);
    }
    o.table(&t);
    let mut watcher = DnatWatcher::spawn(client.clone(), lab.clone());

    o.step(if opts.controller {
        "VIPs and announcing: ferrolb's speaker on every node, its controller allocating"
    } else {
        "VIPs and announcing: ferrolb's speaker on every node"
    });
    let binary = locate_binary(SPEAKER_BIN).map_err(|e| o.fail(e))?;
    let mut speakers = blocking(|| FerrolbSpeakers::start(&lab, &binary, api.addr(), &kubeconfig))
        .map_err(|e| o.fail(e))?;
    o.say(&format!(
        "{} started in every node namespace (ferrolb's BGP speaker, BFD included). It reads \
         the BGPPeers, the BFDProfile and the BGPAdvertisement, the Services and the \
         EndpointSlices through the API server (reached from each node namespace through a \
         relay on {} inside it) and announces each VIP to the ToR by BGP, with BFD 100 ms x 3 \
         (their sessions come up now; they announce once Services have VIPs):",
        binary.display(),
        api.addr()
    ));
    let mut t = Table::new(["node", "process", "log"]);
    for p in speakers.processes() {
        t.row([
            p.node().to_string(),
            SPEAKER_BIN.to_string(),
            p.log().display().to_string(),
        ]);
    }
    o.table(&t);
    let mut controller = None;
    let (web_v4, web_v6, probe_v4) = if opts.controller {
        let binary = locate_binary(CONTROLLER_BIN).map_err(|e| o.fail(e))?;
        let mut p = speakers
            .start_controller(&lab, &binary, &kubeconfig, 1)
            .map_err(|e| o.fail(e))?;
        let got = wait_allocations(
            &svc_api,
            &[
                ("web", 2),
                (PROBE_SERVICE, 1),
                ("web-local", 1),
                ("dns-tcp", 1),
                ("dns-udp", 1),
            ],
        )
        .await;
        p.check().map_err(|e| o.fail(e))?;
        let got = got.map_err(|e| o.fail(e))?;
        o.say(&format!(
            "{} started in node1's namespace (as if it were a pod there; log {}); it \
             allocated the VIPs from the IPAddressPools and wrote them into the Services' \
             status:",
            binary.display(),
            p.log().display()
        ));
        let mut t = Table::new(["Service", "VIPs (status.loadBalancer.ingress)"]);
        for (name, ips) in &got {
            t.row([
                format!("{SERVICE_NAMESPACE}/{name}"),
                ips.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        o.table(&t);
        controller = Some(p);
        let pick = |svc: &str, v6: bool| {
            got.get(svc)
                .and_then(|v| v.iter().find(|ip| ip.is_ipv6() == v6).copied())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "Service {svc} has no {} VIP",
                        if v6 { "IPv6" } else { "IPv4" }
                    )
                })
        };
        (
            pick("web", false).map_err(|e| o.fail(e))?,
            pick("web", true).map_err(|e| o.fail(e))?,
            pick(PROBE_SERVICE, false).map_err(|e| o.fail(e))?,
        )
    } else {
        o.say(&format!(
            "ferrolb's controller is not wired into the demo yet (VIP allocation: issue 3), so \
             the demo writes the VIPs into the Services' status itself ({WEB_VIP_V4} and \
             {WEB_VIP_V6} for web, {PROBE_VIP} for {PROBE_SERVICE})."
        ));
        for (name, ips) in [
            ("web", vec![WEB_VIP_V4, WEB_VIP_V6]),
            (PROBE_SERVICE, vec![PROBE_VIP]),
        ] {
            let ingress: Vec<serde_json::Value> =
                ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect();
            let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
            svc_api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("write status of Service {name}"))
                .map_err(|e| o.fail(e))?;
        }
        let parse = |v: &str| -> Result<IpAddr, DemoError> {
            v.parse().map_err(|e| o.fail(anyhow::anyhow!("{v}: {e}")))
        };
        (parse(WEB_VIP_V4)?, parse(WEB_VIP_V6)?, parse(PROBE_VIP)?)
    };
    o.say("The lab's kube-proxy emulation turns Service status into nftables DNAT on every node.");
    let vips: Vec<IpAddr> = vec![web_v4, web_v6, probe_v4];
    for vip in &vips {
        watcher
            .wait_for_vip(*vip, Duration::from_secs(20))
            .await
            .map_err(|e| o.fail(e))?;
    }
    let prefixes: Vec<String> = vips
        .iter()
        .map(|v| format!("{v}/{}", if v.is_ipv4() { 32 } else { 128 }))
        .collect();
    let all: Vec<u8> = lab.nodes().iter().map(|n| n.index).collect();
    let mut t = Table::new(["VIP route on the router", "next hop", "via"]);
    for p in &prefixes {
        let hops = blocking(|| -> lab::LabResult<Vec<lab::Nexthop>> {
            lab.wait_router_route_nodes(p, &all, Duration::from_secs(60))?;
            lab.router_nexthops(p)
        })
        .map_err(|e| o.fail(e))?;
        for (i, h) in hops.iter().enumerate() {
            let node = lab
                .nodes()
                .iter()
                .find(|n| n.router_if == h.dev)
                .map_or("?".to_string(), |n| n.name.clone());
            t.row([
                if i == 0 { p.clone() } else { String::new() },
                h.gateway.to_string(),
                format!("{} ({node})", h.dev),
            ]);
        }
    }
    speakers.check_running().map_err(|e| o.fail(e))?;
    o.say(
        "nftables DNAT installed on every node from Service status; ferrolb's speakers \
         announced the VIPs; ECMP on the router, one next hop per node:",
    );
    o.table(&t);

    o.step("BGP and BFD sessions on the router, all with ferrolb's speakers");
    let (neighbors, bfd) = blocking(|| -> lab::LabResult<_> {
        let want = lab.nodes().len() * lab.nodes()[0].uplink.all().len();
        lab::wait_until("BFD Up with every node", Duration::from_secs(30), || {
            Ok(lab.bfd_peers()?.iter().filter(|p| p.up).count() >= want)
        })?;
        Ok((lab.bgp_neighbors()?, lab.bfd_peers()?))
    })
    .map_err(|e| o.fail(e))?;
    let mut t = Table::new(["neighbor", "speaker", "BGP state", "BFD"]);
    for n in &neighbors {
        let b = bfd
            .iter()
            .find(|p| p.address == n.address)
            .map_or("-", |p| if p.up { "up" } else { "down" });
        let node = lab
            .nodes()
            .iter()
            .find(|x| x.uplink.all().contains(&n.address))
            .map_or("?".to_string(), |x| {
                format!("ferrolb-speaker on {}", x.name)
            });
        t.row([n.address.to_string(), node, n.state.clone(), b.to_string()]);
    }
    o.table(&t);
    let statuses = bgp_statuses(&client, lab.nodes().len() * 2)
        .await
        .map_err(|e| o.fail(e))?;
    o.say("ServiceBGPStatus objects the speakers wrote (one per node and announced Service):");
    o.table(&statuses);

    o.step(&format!(
        "{} requests from the client through the VIP",
        opts.requests
    ));
    let web_prefixes: Vec<String> = [web_v4, web_v6]
        .iter()
        .map(|v| format!("{v}/{}", if v.is_ipv4() { 32 } else { 128 }))
        .collect();
    // Under load BFD can flap and the router briefly withdraw a node's next hop; send only
    // once the route has every node again.
    blocking(|| wait_ecmp_all(&lab, &web_prefixes, &all)).map_err(|e| o.fail(e))?;
    let pods = lab.nodes().iter().map(|n| n.pods.len()).sum::<usize>();
    let mut per = blocking(|| spread_once(&lab, web_v4, web_v6, opts.requests));
    let first_miss = spread_shortfall(&per, pods);
    if let Some(why) = &first_miss {
        // Once only, and only after the route has every node again: a real failure fails
        // twice and is reported below.
        let route = blocking(|| wait_ecmp_all(&lab, &web_prefixes, &all));
        let bfd = blocking(|| lab.bfd_peers())
            .map(|b| {
                format!(
                    "{} of {} BFD sessions up",
                    b.iter().filter(|p| p.up).count(),
                    b.len()
                )
            })
            .unwrap_or_else(|e| format!("BFD state unknown: {e}"));
        route.map_err(|e| {
            o.fail(anyhow::anyhow!(
                "first spread: {why}; then the router's route lost a node: {e}"
            ))
        })?;
        o.say(&format!(
            "first spread: {why}; the router's route has every node again ({bfd}), so the \
             spread is sent once more:"
        ));
        per = blocking(|| spread_once(&lab, web_v4, web_v6, opts.requests));
    }
    let per = per
        .map_err(|e| match &first_miss {
            Some(why) => anyhow::anyhow!("{e} (retry; the first spread: {why})"),
            None => anyhow::anyhow!("{e}"),
        })
        .map_err(|e| o.fail(e))?;
    let mut spread: BTreeMap<String, usize> = BTreeMap::new();
    let mut t = Table::new(["pod", "node", "IPv4 answers", "IPv6 answers"]);
    for (pod, (a, b)) in &per {
        let node = failover::probe::pod_node(pod).map_or("?".into(), |n| format!("node{n}"));
        t.row([pod.clone(), node, a.to_string(), b.to_string()]);
        spread.insert(pod.clone(), a + b);
    }
    o.say(&format!(
        "TCP to {web_v4}:80 and [{web_v6}]:80, a new connection (new source port) each:"
    ));
    o.table(&t);
    if spread.len() < pods {
        return Err(o.fail(anyhow::anyhow!(
            "only {} of {pods} pods answered: {spread:?}{}",
            spread.len(),
            first_miss.as_ref().map_or(String::new(), |w| format!(
                " (retry; the first spread: {w})"
            ))
        )));
    }

    o.step("fail a node silently and measure the client-seen outage");
    let bench = BenchOptions {
        trials: 1,
        families: FamilySelection::V4,
        speaker: SpeakerKind::FerrolbBgp,
        nodes: opts.nodes,
        pods_per_node: opts.pods_per_node,
        flows: 16,
        interval: Duration::from_millis(2),
        bfd: lab.spec().bfd.unwrap_or_default(),
        port: 80,
        vip_v4: probe_v4,
        vip_v6: web_v6,
    };
    let fail_trial = usize::from(opts.nodes);
    let load = failover::load_average();
    let mut discarded = Vec::new();
    let r = blocking(|| {
        failover::run_trial_retrying(&lab, &bench, fail_trial, &[false], 3, &mut |l| {
            discarded.push(l.to_string())
        })
    });
    for l in &discarded {
        o.say(l);
    }
    let r = r.map_err(|e| o.fail(e))?;
    let r = r
        .into_iter()
        .next()
        .ok_or_else(|| o.fail(anyhow::anyhow!("the trial returned no result")))?;
    o.say(&format!(
        "16 UDP flows to {probe_v4}:80 ({PROBE_SERVICE}, each node DNATs to its own pods), a \
         probe per flow every 2 ms; node{} lost its links (no BGP NOTIFICATION, no BFD \
         AdminDown):",
        r.failed_node
    ));
    let mut t = Table::new(["measure", "value"]);
    t.row([
        "flows that went through the failed node".to_string(),
        r.affected_flows.to_string(),
    ]);
    t.row([
        "router dropped the node's next hop after (BFD 100 ms x 3)".to_string(),
        format!(
            "{} ms (polls resolve it to {} ms)",
            r.detection.as_millis(),
            r.detection_resolution.as_millis()
        ),
    ]);
    t.row([
        "client-seen outage of those flows (largest reply gap)".to_string(),
        format!("{} ms", r.outage.as_millis()),
    ]);
    t.row([
        "the failure command (links down in the node) took".to_string(),
        format!("{} ms", r.fail_command.as_millis()),
    ]);
    t.row([
        "largest reply gap of the other flows (noise floor)".to_string(),
        format!("{} ms", r.collateral.as_millis()),
    ]);
    t.row([
        "machine load average (1, 5, 15 min) before the trial".to_string(),
        load.unwrap_or_else(|| "unknown".into()),
    ]);
    o.table(&t);
    o.say(&format!(
        "node{} restored; the router routes the VIP via every node again.",
        r.failed_node
    ));
    speakers.check_running().map_err(|e| o.fail(e))?;
    if let Some(e) = watcher.error().await {
        return Err(o.fail(e));
    }
    watcher.stop().await;
    if let Some(c) = controller.as_mut() {
        c.check().map_err(|e| o.fail(e))?;
    }
    let stopped = blocking(|| speakers.stop());
    o.say(&format!(
        "ferrolb's speakers stopped with SIGTERM (each closes its sessions with a Cease): {}",
        stopped.join(", ")
    ));
    if let Some(mut c) = controller {
        let exit = blocking(|| c.stop(Duration::from_secs(5)));
        o.say(&format!(
            "ferrolb's controller stopped with SIGTERM: {exit}"
        ));
    }
    Ok(DemoSummary {
        run: lab.run_name().to_string(),
        spread,
        failed_node: r.failed_node,
        outage: r.outage,
        detection: r.detection,
        controller: opts.controller,
        vips,
    })
}

/// Waits until the router's route for each of `prefixes` points to exactly the nodes `all`.
fn wait_ecmp_all(lab: &Lab, prefixes: &[String], all: &[u8]) -> lab::LabResult<()> {
    for p in prefixes {
        lab.wait_router_route_nodes(p, all, Duration::from_secs(60))?;
    }
    Ok(())
}

/// Why a spread is not good enough: a failed connection, or fewer than `pods` pods answered
/// (named); `None` when every pod answered. Pure.
fn spread_shortfall(
    per: &lab::LabResult<BTreeMap<String, (usize, usize)>>,
    pods: usize,
) -> Option<String> {
    match per {
        Ok(p) if p.len() >= pods => None,
        Ok(p) => Some(format!(
            "only {} of {pods} pods answered ({})",
            p.len(),
            p.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// `requests` TCP connections from the client to `v4:80` and `[v6]:80`; answers per pod as
/// (IPv4, IPv6) counts.
fn spread_once(
    lab: &Lab,
    v4: IpAddr,
    v6: IpAddr,
    requests: usize,
) -> lab::LabResult<BTreeMap<String, (usize, usize)>> {
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (vip, is_v6) in [(v4, false), (v6, true)] {
        for n in lab.client_tcp_many(SocketAddr::new(vip, 80), requests)? {
            let e = per.entry(n).or_default();
            if is_v6 {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }
    Ok(per)
}

/// Waits until each `(Service, count)` has at least `count` ingress IPs in its status
/// (written by ferrolb's controller); returns every Service's ingress IPs by name.
async fn wait_allocations(
    api: &Api<Service>,
    want: &[(&str, usize)],
) -> anyhow::Result<BTreeMap<String, Vec<IpAddr>>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = api
            .list(&Default::default())
            .await
            .context("list Services")?;
        let got: BTreeMap<String, Vec<IpAddr>> = list
            .items
            .iter()
            .map(|s| {
                let ips = s
                    .status
                    .as_ref()
                    .and_then(|st| st.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip.as_deref()?.parse().ok())
                    .collect();
                (s.metadata.name.clone().unwrap_or_default(), ips)
            })
            .collect();
        let missing: Vec<&str> = want
            .iter()
            .filter(|(n, c)| got.get(*n).is_none_or(|v: &Vec<IpAddr>| v.len() < *c))
            .map(|(n, _)| *n)
            .collect();
        if missing.is_empty() {
            return Ok(got);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "ferrolb's controller did not allocate VIPs for {} within 30 s",
            missing.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until at least `want` `ServiceBGPStatus` objects name a peer, and tabulates them.
async fn bgp_statuses(client: &kube::Client, want: usize) -> anyhow::Result<Table> {
    let api: Api<ServiceBGPStatus> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = api
            .list(&Default::default())
            .await
            .context("list ServiceBGPStatus")?;
        let done: Vec<&ServiceBGPStatus> = list
            .items
            .iter()
            .filter(|s| s.status.as_ref().is_some_and(|st| !st.peers.is_empty()))
            .collect();
        if done.len() >= want {
            let mut t = Table::new(["ServiceBGPStatus", "node", "Service", "peers"]);
            for s in done {
                let st = s.status.clone().unwrap_or_default();
                t.row([
                    s.metadata.name.clone().unwrap_or_default(),
                    st.node.unwrap_or_default(),
                    format!(
                        "{}/{}",
                        st.service_namespace.unwrap_or_default(),
                        st.service_name.unwrap_or_default()
                    ),
                    st.peers.join(", "),
                ]);
            }
            return Ok(t);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {want} ServiceBGPStatus objects name a peer after 20 s",
            done.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn crd_rows(opts: &DemoOptions) -> anyhow::Result<Table> {
    let mut t = Table::new(["CRD", "kind", "scope"]);
    for f in manifest_files(&opts.deploy_dir.join("crds")).map_err(|e| anyhow::anyhow!("{e}"))? {
        let text = std::fs::read_to_string(&f).with_context(|| format!("read {}", f.display()))?;
        let v: serde_json::Value =
            serde_yaml::from_str(&text).with_context(|| format!("parse {}", f.display()))?;
        t.row([
            v["metadata"]["name"].as_str().unwrap_or("?").to_string(),
            v["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            v["spec"]["scope"].as_str().unwrap_or("?").to_string(),
        ]);
    }
    anyhow::ensure!(
        !t.is_empty(),
        "no CRDs in {}",
        opts.deploy_dir.join("crds").display()
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_spec_matches_the_examples() {
        let s = demo_spec(&DemoOptions::default());
        assert_eq!(
            (s.router_asn, s.node_asn(1), s.hold_time_secs),
            (64512, 64513, 9)
        );
        assert_eq!(
            s.bfd,
            Some(BfdTimers {
                interval_ms: 100,
                multiplier: 3
            })
        );
        let progs = required_programs(&s);
        assert!(
            progs
                .iter()
                .any(|(p, k)| p.ends_with("/bgpd") && *k == "frr")
        );
        assert!(!progs.iter().any(|(p, _)| p.contains("bird")), "{progs:?}");
    }

    #[test]
    fn spread_shortfall_names_missing_pods_and_errors() {
        let per = |names: &[&str]| -> lab::LabResult<BTreeMap<String, (usize, usize)>> {
            Ok(names.iter().map(|n| (n.to_string(), (1, 1))).collect())
        };
        let cases = [
            (per(&["pod-1-1", "pod-2-1"]), 2, None),
            (per(&["pod-1-1", "pod-2-1", "pod-3-1"]), 2, None),
            (
                per(&["pod-1-1"]),
                2,
                Some("only 1 of 2 pods answered (pod-1-1)"),
            ),
            (per(&[]), 1, Some("only 0 of 1 pods answered ()")),
            (
                Err(lab::LabError::new(
                    "TCP to x",
                    "connection 3: refused",
                    None,
                )),
                2,
                Some("step 'TCP to x': connection 3: refused"),
            ),
        ];
        for (p, pods, want) in cases {
            assert_eq!(spread_shortfall(&p, pods).as_deref(), want, "{p:?}");
        }
    }

    #[test]
    fn crd_table_lists_every_crd() {
        let t = crd_rows(&DemoOptions::default()).expect("crds");
        let r = t.render("");
        assert!(
            r.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["ipaddresspools.ferrolb.io", "IPAddressPool", "Namespaced"]),
            "{r}"
        );
        assert_eq!(t.len(), 8);
    }
}
