//! Lab topology specification and its pure address plan (names, addresses, prefixes).
//!
//! Nothing here touches the system: [`LabSpec::plan`] turns a spec and a run name into a
//! [`Plan`] that the builder then realises, so the numbering is unit-tested on its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::error::LabError;

/// Router software running in the ToR namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// FRR (zebra, bgpd, bfdd) with dynamic neighbours from `bgp listen range`.
    Frr,
    /// BIRD 2 with one static neighbour per node link and family.
    Bird,
}

/// How the FRR router learns its BGP neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrrPeering {
    /// `bgp listen range <node link subnet> peer-group ...`: passive, accepts any ASN of
    /// the right kind (external or internal); BFD starts only once BGP is up.
    Listen,
    /// `neighbor <node address> peer-group ...`: the router also connects actively (retry
    /// every second), so sessions come up and recover without waiting on the node's
    /// connect timer; BFD starts at once.
    Static,
}

/// Address families configured in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// IPv4 addresses, routes and BGP sessions.
    pub v4: bool,
    /// IPv6 addresses, routes and BGP sessions.
    pub v6: bool,
}

impl Default for Families {
    fn default() -> Self {
        Self { v4: true, v6: true }
    }
}

/// How the nodes' BGP autonomous system numbers are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAsns {
    /// Every node uses this ASN (eBGP unless it equals the router's ASN).
    Same(u32),
    /// Node `n` (1-based) uses `first + n - 1`.
    Sequential {
        /// ASN of node 1.
        first: u32,
    },
    /// One ASN per node, in node order; must have exactly `nodes` entries.
    Explicit(Vec<u32>),
}

/// BFD timers of the router's profile (applied to every node session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdTimers {
    /// Desired minimum transmit and receive interval in milliseconds.
    pub interval_ms: u32,
    /// Detection multiplier.
    pub multiplier: u8,
}

impl Default for BfdTimers {
    fn default() -> Self {
        Self {
            interval_ms: 100,
            multiplier: 3,
        }
    }
}

/// What a lab looks like. `LabSpec::default()` is the three-node FRR dual-stack lab.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Number of node namespaces (1..=50).
    pub nodes: u8,
    /// Router software in the ToR namespace.
    pub router: RouterKind,
    /// How FRR learns its neighbours (BIRD always has one static session per node and
    /// family).
    pub frr_peering: FrrPeering,
    /// Address families.
    pub families: Families,
    /// Pod namespaces behind each node (0..=50).
    pub pods_per_node: u8,
    /// ASN of the router.
    pub router_asn: u32,
    /// ASNs of the nodes.
    pub node_asns: NodeAsns,
    /// Hold time in seconds the router offers (the negotiated value is the smaller of both
    /// sides'); keepalive is a third of it.
    pub hold_time_secs: u16,
    /// BFD profile on the router, `None` for no BFD.
    pub bfd: Option<BfdTimers>,
    /// Directory holding the FRR daemons (`zebra`, `bgpd`, `bfdd`).
    pub frr_dir: PathBuf,
    /// FRR's `vtysh`.
    pub vtysh_bin: PathBuf,
    /// BIRD 2 daemon.
    pub bird_bin: PathBuf,
    /// BIRD 2 control client.
    pub birdc_bin: PathBuf,
    /// Parent directory of the per-run directory (default: the system temp dir).
    pub base_dir: PathBuf,
    /// Run name to use instead of the next automatic `flb-<pid>-<k>`, so a caller knows
    /// every namespace name before the build (e.g. to test a name collision). Must have
    /// the shape `flb-<pid>-<tag>` ([`validate_run_name`]); use this process's pid so
    /// `cleanup_stale` leaves the lab alone while the process runs. `None` (the default):
    /// automatic.
    pub run_name: Option<String>,
}

impl Default for LabSpec {
    fn default() -> Self {
        Self {
            nodes: 3,
            router: RouterKind::Frr,
            frr_peering: FrrPeering::Listen,
            families: Families::default(),
            pods_per_node: 2,
            router_asn: 64512,
            node_asns: NodeAsns::Same(64513),
            hold_time_secs: 90,
            bfd: Some(BfdTimers::default()),
            frr_dir: PathBuf::from("/usr/lib/frr"),
            vtysh_bin: PathBuf::from("/usr/bin/vtysh"),
            bird_bin: PathBuf::from("/usr/sbin/bird"),
            birdc_bin: PathBuf::from("/usr/sbin/birdc"),
            base_dir: std::env::temp_dir(),
            run_name: None,
        }
    }
}

/// Suggested IPv4 VIP pool for BGP mode (routed to the nodes by the router).
pub const BGP_VIP_POOL_V4: &str = "198.51.100.0/24";
/// Suggested IPv6 VIP pool for BGP mode.
pub const BGP_VIP_POOL_V6: &str = "fd00:5100::/64";
/// Suggested IPv4 VIP range for L2 mode (inside the shared L2 segment's subnet).
pub const L2_VIP_RANGE_V4: &str = "192.168.50.200-192.168.50.250";
/// Suggested IPv6 VIP range for L2 mode (inside the shared L2 segment's subnet).
pub const L2_VIP_RANGE_V6: &str = "fd00:50::200-fd00:50::250";
/// Prefix length of the shared L2 segment (IPv4).
pub const L2_PREFIX_LEN_V4: u8 = 24;
/// Prefix length of the shared L2 segment (IPv6).
pub const L2_PREFIX_LEN_V6: u8 = 64;

/// One IPv4 and/or IPv6 address (each present when its family is enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualAddr {
    /// IPv4 address.
    pub v4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub v6: Option<Ipv6Addr>,
}

impl DualAddr {
    fn new(f: Families, v4: Ipv4Addr, v6: Ipv6Addr) -> Self {
        Self {
            v4: f.v4.then_some(v4),
            v6: f.v6.then_some(v6),
        }
    }

    /// The enabled addresses, IPv4 first.
    pub fn all(&self) -> Vec<IpAddr> {
        self.v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.v6.map(IpAddr::V6))
            .collect()
    }
}

/// A pod namespace behind a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    /// Pod name, answered by its test server (`pod-<node>-<index>`).
    pub name: String,
    /// Namespace name.
    pub ns: String,
    /// Interface name on the node side (a port of the node's pod bridge `cbr0`).
    pub node_if: String,
    /// Pod addresses (on `eth0`).
    pub addr: DualAddr,
}

/// A node namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// 1-based node index.
    pub index: u8,
    /// Node name (`node<index>`).
    pub name: String,
    /// Namespace name.
    pub ns: String,
    /// The node's BGP ASN.
    pub asn: u32,
    /// Uplink interface name in the node namespace.
    pub uplink_if: String,
    /// Router-side interface name of this node's uplink.
    pub router_if: String,
    /// Bridge in the switch namespace carrying this node's uplink (a per-node "access
    /// VLAN"): the router's port stays up when the node's link goes down, as behind a real
    /// switch, so the router notices a dead node only by hold timer or BFD.
    pub uplink_bridge: String,
    /// Port of [`NodePlan::uplink_bridge`] facing the node.
    pub uplink_node_port: String,
    /// Port of [`NodePlan::uplink_bridge`] facing the router.
    pub uplink_router_port: String,
    /// Node addresses on the uplink.
    pub uplink: DualAddr,
    /// Router addresses on the uplink (the node's BGP peer and default gateway).
    pub router_side: DualAddr,
    /// Loopback ("router ID") addresses.
    pub loopback: DualAddr,
    /// Interface on the shared L2 segment, in the node namespace.
    pub l2_if: String,
    /// Switch-side port name of this node on the L2 segment.
    pub switch_port: String,
    /// Node addresses on the L2 segment.
    pub l2: DualAddr,
    /// Pod CIDR (IPv4), e.g. 10.244.1.0/24.
    pub pod_cidr_v4: Option<String>,
    /// Pod CIDR (IPv6), e.g. fd00:244:1::/64.
    pub pod_cidr_v6: Option<String>,
    /// Gateway address of the pod bridge (the node side of every pod).
    pub pod_gateway: DualAddr,
    /// Pods behind this node.
    pub pods: Vec<PodPlan>,
}

/// The client namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPlan {
    /// Namespace name.
    pub ns: String,
    /// Routed interface towards the router.
    pub uplink_if: String,
    /// Router-side interface name.
    pub router_if: String,
    /// Client addresses on the routed link.
    pub uplink: DualAddr,
    /// Router addresses on the routed link (client's default gateway).
    pub router_side: DualAddr,
    /// Interface on the L2 segment.
    pub l2_if: String,
    /// Switch-side port name.
    pub switch_port: String,
    /// Client addresses on the L2 segment.
    pub l2: DualAddr,
}

/// Every name and address of one lab run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Run name `flb-<pid>-<k>`, the prefix of every namespace.
    pub run: String,
    /// Router namespace.
    pub router_ns: String,
    /// Router loopback / router ID.
    pub router_loopback: DualAddr,
    /// Namespace of the switch: the L2 segment's bridge (`br0`) and one bridge per node
    /// uplink.
    pub switch_ns: String,
    /// Nodes, in order.
    pub nodes: Vec<NodePlan>,
    /// The client.
    pub client: ClientPlan,
}

fn fmt_dual(a: &DualAddr) -> String {
    a.all()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// A human-readable summary of namespaces and addresses (for the demo's output).
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "lab {}", self.run);
        let _ = writeln!(
            s,
            "  router  {}  loopback {}",
            self.router_ns,
            fmt_dual(&self.router_loopback)
        );
        let _ = writeln!(
            s,
            "  switch  {}  (L2 segment {SWITCH_BRIDGE}, node uplink bridges)",
            self.switch_ns
        );
        let c = &self.client;
        let _ = writeln!(
            s,
            "  client  {}  {}: {}  {}: {}",
            c.ns,
            c.uplink_if,
            fmt_dual(&c.uplink),
            c.l2_if,
            fmt_dual(&c.l2)
        );
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "  {}   {}  AS{}  {}: {}  {}: {}  lo: {}",
                n.name,
                n.ns,
                n.asn,
                n.uplink_if,
                fmt_dual(&n.uplink),
                n.l2_if,
                fmt_dual(&n.l2),
                fmt_dual(&n.loopback)
            );
            for p in &n.pods {
                let _ = writeln!(s, "    {}  {}  {}", p.name, p.ns, fmt_dual(&p.addr));
            }
        }
        s
    }

    /// Every namespace of the run, router first, pods last.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![
            self.router_ns.clone(),
            self.switch_ns.clone(),
            self.client.ns.clone(),
        ];
        v.extend(self.nodes.iter().map(|n| n.ns.clone()));
        v.extend(
            self.nodes
                .iter()
                .flat_map(|n| n.pods.iter().map(|p| p.ns.clone())),
        );
        v
    }
}

/// Longest run name accepted by [`validate_run_name`] (namespace names append up to seven
/// more characters, e.g. `-n50p50`).
pub const MAX_RUN_NAME_LEN: usize = 32;

/// Checks a run name given in [`LabSpec::run_name`]: `flb-<pid>-<tag>` with a decimal pid,
/// a tag of ASCII lowercase letters, digits and `-`, at most [`MAX_RUN_NAME_LEN`]
/// characters. The shape lets `cleanup_stale` find the owner of leftovers. Pure.
pub fn validate_run_name(name: &str) -> Result<(), LabError> {
    let bad = |why: &str| {
        Err(LabError::new(
            "validate lab spec",
            format!("run_name = {name:?}: {why}"),
            Some("use flb-<this process's pid>-<tag>, e.g. flb-1234-collide".into()),
        ))
    };
    if name.len() > MAX_RUN_NAME_LEN {
        return bad(&format!(
            "longer than {MAX_RUN_NAME_LEN} characters ({})",
            name.len()
        ));
    }
    let Some(rest) = name.strip_prefix(super::PREFIX) else {
        return bad(&format!("must start with {:?}", super::PREFIX));
    };
    let Some((pid, tag)) = rest.split_once('-') else {
        return bad("must have the shape flb-<pid>-<tag>");
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid.parse::<u32>().is_err() {
        return bad("the part after flb- must be a decimal pid");
    }
    if tag.is_empty() || tag.ends_with('-') {
        return bad("the tag after the pid must not be empty or end with '-'");
    }
    if !tag
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("the tag may hold only a-z, 0-9 and '-'");
    }
    Ok(())
}

/// Name of the pod bridge inside every node namespace.
pub const POD_BRIDGE: &str = "cbr0";
/// Name of the L2 bridge inside the switch namespace.
pub const SWITCH_BRIDGE: &str = "br0";
/// Name of the pod's interface.
pub const POD_IF: &str = "eth0";

impl LabSpec {
    /// ASN of node `n` (1-based).
    pub fn node_asn(&self, n: u8) -> u32 {
        match &self.node_asns {
            NodeAsns::Same(a) => *a,
            NodeAsns::Sequential { first } => first.saturating_add(u32::from(n) - 1),
            NodeAsns::Explicit(v) => v.get(usize::from(n) - 1).copied().unwrap_or(0),
        }
    }

    /// Checks the spec for values the builder cannot realise.
    pub fn validate(&self) -> Result<(), LabError> {
        let bad = |detail: String| Err(LabError::new("validate lab spec", detail, None));
        if self.nodes == 0 || self.nodes > 50 {
            return bad(format!("nodes = {}: must be between 1 and 50", self.nodes));
        }
        if self.pods_per_node > 50 {
            return bad(format!(
                "pods_per_node = {}: must be at most 50",
                self.pods_per_node
            ));
        }
        if !self.families.v4 && !self.families.v6 {
            return bad("families: at least one of v4 and v6 must be enabled".into());
        }
        if self.router_asn == 0 {
            return bad("router_asn = 0: ASN 0 is reserved".into());
        }
        if let NodeAsns::Explicit(v) = &self.node_asns
            && v.len() != usize::from(self.nodes)
        {
            return bad(format!(
                "node_asns: {} ASNs given for {} nodes (need one per node)",
                v.len(),
                self.nodes
            ));
        }
        for n in 1..=self.nodes {
            if self.node_asn(n) == 0 {
                return bad(format!("node_asns: node {n} has ASN 0 (reserved)"));
            }
        }
        if self.hold_time_secs != 0 && self.hold_time_secs < 3 {
            return bad(format!(
                "hold_time_secs = {}: must be 0 or at least 3 (RFC 4271)",
                self.hold_time_secs
            ));
        }
        if let Some(b) = self.bfd
            && (b.interval_ms < 10 || b.multiplier == 0)
        {
            return bad(format!(
                "bfd: interval {} ms and multiplier {}: need at least 10 ms and 1",
                b.interval_ms, b.multiplier
            ));
        }
        if let Some(name) = &self.run_name {
            validate_run_name(name)?;
        }
        Ok(())
    }

    /// Computes names and addresses for run `run` (e.g. `flb-1234-0`). Pure.
    ///
    /// Numbering (node `i`, pod `j`, both 1-based):
    /// - node uplink: `10.0.<i>.0/30` (router `.1`, node `.2`) and `fd00:10:<i>::/64`
    ///   (router `::1`, node `::2`);
    /// - client uplink: `10.1.0.0/30` and `fd00:11::/64` (router `1`, client `2`);
    /// - L2 segment: `192.168.50.0/24` and `fd00:50::/64`, node `.<10+i>`, client `.100`;
    /// - loopbacks: `10.255.0.<i>/32`, `fd00:255::<i>/128`, router `10.255.0.254`;
    /// - pods: `10.244.<i>.0/24` and `fd00:244:<i>::/64`, gateway `.1` on the node's bridge
    ///   `cbr0`, pod `j` at `.<10+j>`.
    pub fn plan(&self, run: &str) -> Result<Plan, LabError> {
        self.validate()?;
        let f = self.families;
        let v6 = |s: String| -> Ipv6Addr {
            // The strings are built from numbers below 256 in decimal notation, which are
            // also valid hexadecimal groups, so parsing cannot fail.
            s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
        };
        let nodes = (1..=self.nodes)
            .map(|i| {
                let pods = (1..=self.pods_per_node)
                    .map(|j| PodPlan {
                        name: format!("pod-{i}-{j}"),
                        ns: format!("{run}-n{i}p{j}"),
                        node_if: format!("p{j}"),
                        addr: DualAddr::new(
                            f,
                            Ipv4Addr::new(10, 244, i, 10 + j),
                            v6(format!("fd00:244:{i}::{}", 10 + u16::from(j))),
                        ),
                    })
                    .collect();
                NodePlan {
                    index: i,
                    name: format!("node{i}"),
                    ns: format!("{run}-n{i}"),
                    asn: self.node_asn(i),
                    uplink_if: "up0".into(),
                    router_if: format!("n{i}"),
                    uplink_bridge: format!("up{i}"),
                    uplink_node_port: format!("up{i}n"),
                    uplink_router_port: format!("up{i}r"),
                    uplink: DualAddr::new(
                        f,
                        Ipv4Addr::new(10, 0, i, 2),
                        v6(format!("fd00:10:{i}::2")),
                    ),
                    router_side: DualAddr::new(
                        f,
                        Ipv4Addr::new(10, 0, i, 1),
                        v6(format!("fd00:10:{i}::1")),
                    ),
                    loopback: DualAddr::new(
                        f,
                        Ipv4Addr::new(10, 255, 0, i),
                        v6(format!("fd00:255::{i}")),
                    ),
                    l2_if: "l2".into(),
                    switch_port: format!("n{i}"),
                    l2: DualAddr::new(
                        f,
                        Ipv4Addr::new(192, 168, 50, 10 + i),
                        v6(format!("fd00:50::{}", 10 + u16::from(i))),
                    ),
                    pod_cidr_v4: f.v4.then(|| format!("10.244.{i}.0/24")),
                    pod_cidr_v6: f.v6.then(|| format!("fd00:244:{i}::/64")),
                    pod_gateway: DualAddr::new(
                        f,
                        Ipv4Addr::new(10, 244, i, 1),
                        v6(format!("fd00:244:{i}::1")),
                    ),
                    pods,
                }
            })
            .collect();
        Ok(Plan {
            run: run.to_string(),
            router_ns: format!("{run}-r"),
            router_loopback: DualAddr::new(
                f,
                Ipv4Addr::new(10, 255, 0, 254),
                v6("fd00:255::254".into()),
            ),
            switch_ns: format!("{run}-s"),
            nodes,
            client: ClientPlan {
                ns: format!("{run}-c"),
                uplink_if: "up0".into(),
                router_if: "cl".into(),
                uplink: DualAddr::new(f, Ipv4Addr::new(10, 1, 0, 2), v6("fd00:11::2".into())),
                router_side: DualAddr::new(f, Ipv4Addr::new(10, 1, 0, 1), v6("fd00:11::1".into())),
                l2_if: "l2".into(),
                switch_port: "cl".into(),
                l2: DualAddr::new(
                    f,
                    Ipv4Addr::new(192, 168, 50, 100),
                    v6("fd00:50::100".into()),
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_numbers_nodes_pods_and_links() {
        let spec = LabSpec {
            nodes: 2,
            pods_per_node: 2,
            ..LabSpec::default()
        };
        let p = spec.plan("flb-7-0").expect("valid");
        assert_eq!(p.router_ns, "flb-7-0-r");
        assert_eq!(p.namespaces().len(), 3 + 2 + 4);
        let n2 = &p.nodes[1];
        assert_eq!(n2.ns, "flb-7-0-n2");
        assert_eq!(n2.uplink.v4, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(n2.router_side.v6, Some("fd00:10:2::1".parse().expect("v6")));
        assert_eq!(n2.l2.v6, Some("fd00:50::12".parse().expect("v6")));
        assert_eq!(n2.pod_cidr_v4.as_deref(), Some("10.244.2.0/24"));
        assert_eq!(n2.pods[1].addr.v4, Some(Ipv4Addr::new(10, 244, 2, 12)));
        assert_eq!(n2.pods[1].name, "pod-2-2");
        assert_eq!(n2.pods[1].ns, "flb-7-0-n2p2");
        let d = p.describe();
        assert!(
            d.contains("node2   flb-7-0-n2  AS64513  up0: 10.0.2.2, fd00:10:2::2"),
            "{d}"
        );
        assert!(
            d.contains("pod-2-2  flb-7-0-n2p2  10.244.2.12, fd00:244:2::12"),
            "{d}"
        );
    }

    #[test]
    fn plan_leaves_disabled_family_out() {
        let spec = LabSpec {
            nodes: 1,
            families: Families {
                v4: false,
                v6: true,
            },
            ..LabSpec::default()
        };
        let p = spec.plan("r").expect("valid");
        assert_eq!(p.nodes[0].uplink.v4, None);
        assert_eq!(p.nodes[0].uplink.all().len(), 1);
        assert_eq!(p.nodes[0].pod_cidr_v4, None);
    }

    #[test]
    fn asn_plans() {
        let cases: &[(NodeAsns, [u32; 3])] = &[
            (NodeAsns::Same(65000), [65000, 65000, 65000]),
            (NodeAsns::Sequential { first: 65001 }, [65001, 65002, 65003]),
            (NodeAsns::Explicit(vec![1, 2, 3]), [1, 2, 3]),
        ];
        for (asns, want) in cases {
            let spec = LabSpec {
                node_asns: asns.clone(),
                ..LabSpec::default()
            };
            let got: Vec<u32> = (1..=3).map(|n| spec.node_asn(n)).collect();
            assert_eq!(got, want, "{asns:?}");
        }
    }

    #[test]
    fn validate_rejects_bad_specs() {
        let cases: Vec<(LabSpec, &str)> = vec![
            (
                LabSpec {
                    nodes: 0,
                    ..LabSpec::default()
                },
                "nodes = 0",
            ),
            (
                LabSpec {
                    nodes: 51,
                    ..LabSpec::default()
                },
                "nodes = 51",
            ),
            (
                LabSpec {
                    pods_per_node: 60,
                    ..LabSpec::default()
                },
                "pods_per_node",
            ),
            (
                LabSpec {
                    families: Families {
                        v4: false,
                        v6: false,
                    },
                    ..LabSpec::default()
                },
                "families",
            ),
            (
                LabSpec {
                    node_asns: NodeAsns::Explicit(vec![1]),
                    ..LabSpec::default()
                },
                "1 ASNs given for 3",
            ),
            (
                LabSpec {
                    node_asns: NodeAsns::Same(0),
                    ..LabSpec::default()
                },
                "ASN 0",
            ),
            (
                LabSpec {
                    hold_time_secs: 2,
                    ..LabSpec::default()
                },
                "hold_time_secs = 2",
            ),
            (
                LabSpec {
                    bfd: Some(BfdTimers {
                        interval_ms: 1,
                        multiplier: 3,
                    }),
                    ..LabSpec::default()
                },
                "bfd",
            ),
        ];
        for (name, want) in [
            ("flb-12-x", None),
            ("flb-12-0", None),
            ("flb-12-a-b2", None),
            ("flb-12345678901234567890123-abcdef", Some("longer than 32")),
            ("lab-12-x", Some("must start with \"flb-\"")),
            ("flb-12", Some("shape flb-<pid>-<tag>")),
            ("flb--x", Some("decimal pid")),
            ("flb-1a-x", Some("decimal pid")),
            ("flb-99999999999-x", Some("decimal pid")),
            ("flb-12-", Some("must not be empty")),
            ("flb-12-x-", Some("must not be empty")),
            ("flb-12-X", Some("only a-z")),
            ("flb-12-a/b", Some("only a-z")),
            ("flb-12-a b", Some("only a-z")),
        ] {
            let got = validate_run_name(name);
            match want {
                None => got.unwrap_or_else(|e| panic!("{name}: {e}")),
                Some(w) => {
                    let e = got.expect_err(name).to_string();
                    assert!(e.contains(w), "{name}: {e} should contain {w}");
                    assert!(e.contains("validate lab spec"), "{e}");
                }
            }
        }
        let with_name = |n: &str| LabSpec {
            run_name: Some(n.into()),
            ..LabSpec::default()
        };
        with_name("flb-7-t").validate().expect("good run name");
        assert!(with_name("x").validate().is_err());
        for (spec, want) in cases {
            let err = spec.validate().expect_err(want).to_string();
            assert!(err.contains(want), "{err} should contain {want}");
            assert!(err.contains("validate lab spec"), "{err}");
        }
        LabSpec::default()
            .validate()
            .expect("default spec is valid");
    }
}
