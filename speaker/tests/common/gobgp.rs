//! A private gobgpd as the router in a namespace: its TOML config and log in
//! a temporary directory, its gRPC API on 127.0.0.1:50051 inside the
//! namespace (each namespace has its own loopback), the process killed on
//! drop (also when a test panics). Zebra is off, so gobgpd installs nothing
//! into the kernel: tests assert on its RIB.

use std::fmt::Write as _;
use std::time::Duration;

use ferrolb_e2e::lab::gobgp::GoBgp;
use serde_json::Value;

use super::{Netns, wait_for};

/// One BGP neighbour (a node) of the gobgpd router.
#[derive(Debug, Clone, Default)]
pub struct GoBgpNeighbor {
    /// The node's address.
    pub addr: String,
    /// The node's AS.
    pub asn: u32,
    /// TCP-MD5 password (`auth-password`).
    pub password: Option<String>,
    /// GTSM: `ttl-security` with `ttl-min = 255` (the speaker's single-hop
    /// eBGP default).
    pub gtsm: bool,
}

/// A gobgpd TOML config for AS `asn`: one neighbour per node with the
/// family of its address and a one-second connect retry.
pub fn gobgpd_conf(asn: u32, router_id: &str, neighbors: &[GoBgpNeighbor]) -> String {
    let mut c = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n\n");
    for n in neighbors {
        let afi = if n.addr.contains(':') {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        let _ = writeln!(
            c,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
            n.addr, n.asn
        );
        if let Some(p) = &n.password {
            let _ = writeln!(c, "    auth-password = \"{p}\"");
        }
        c.push_str(
            "  [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n",
        );
        if n.gtsm {
            c.push_str(
                "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = 255\n",
            );
        }
        let _ = writeln!(
            c,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{afi}\"\n"
        );
    }
    c
}

/// One path of a prefix in gobgpd's global RIB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoBgpPath {
    /// The neighbour it came from (`neighbor-ip`).
    pub neighbor: String,
    /// NEXT_HOP (IPv4) or the MP_REACH next hop (IPv6).
    pub next_hop: String,
    /// AS numbers of the AS_PATH, in order.
    pub as_path: Vec<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// COMMUNITIES as 32-bit values.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITIES as (global, local 1, local 2).
    pub large_communities: Vec<(u32, u32, u32)>,
    /// EXTENDED_COMMUNITIES, each as gobgp prints it (JSON).
    pub ext_communities: Vec<Value>,
}

fn u32_of(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// Paths of `prefix` in `gobgp global rib -a <afi> <prefix> -j` output (an
/// object keyed by prefix, each an array of paths with typed `attrs`),
/// sorted by neighbour.
pub fn parse_rib(json: &str, prefix: &str) -> Vec<GoBgpPath> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for p in v
        .get(prefix)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut path = GoBgpPath {
            neighbor: p["neighbor-ip"].as_str().unwrap_or_default().to_owned(),
            ..Default::default()
        };
        for a in p["attrs"].as_array().into_iter().flatten() {
            match a["type"].as_u64() {
                Some(2) => {
                    for seg in a["as_paths"].as_array().into_iter().flatten() {
                        path.as_path.extend(
                            seg["asns"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(u32_of),
                        );
                    }
                }
                Some(3) | Some(14) => {
                    path.next_hop = a["nexthop"].as_str().unwrap_or_default().to_owned();
                }
                Some(5) => path.local_pref = u32_of(&a["value"]),
                Some(8) => {
                    path.communities = a["communities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(u32_of)
                        .collect();
                }
                Some(16) => {
                    path.ext_communities = a["value"].as_array().cloned().unwrap_or_default();
                }
                Some(32) => {
                    path.large_communities = a["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|l| {
                            Some((
                                u32_of(&l["ASN"])?,
                                u32_of(&l["LocalData1"])?,
                                u32_of(&l["LocalData2"])?,
                            ))
                        })
                        .collect();
                }
                _ => {}
            }
        }
        out.push(path);
    }
    out.sort_by(|a, b| a.neighbor.cmp(&b.neighbor));
    out
}

/// gobgpd running in a namespace, killed on drop.
pub struct GoBgpRouter {
    ns: String,
    daemon: GoBgp,
    dir: tempfile::TempDir,
}

impl GoBgpRouter {
    /// Writes `conf` and starts gobgpd in `ns`, waiting until its API answers.
    pub fn start(ns: &Netns, conf: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("flb-gobgp-")
            .tempdir()
            .expect("tempdir");
        let daemon = GoBgp::start(&ns.name, dir.path(), "r", conf)
            .unwrap_or_else(|e| panic!("gobgpd in {}: {e}", ns.name));
        Self {
            ns: ns.name.clone(),
            daemon,
            dir,
        }
    }

    /// Runs `gobgp <args>` against this instance, `None` on failure.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        self.daemon.cli(args).ok()
    }

    /// gobgpd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gobgpd-r.log")).unwrap_or_default()
    }

    /// The session state of neighbour `addr` as gobgp reports it (e.g.
    /// `established`, `active`), lower case.
    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
        let out = self.cli(&["neighbor", addr, "-j"])?;
        let v: Value = serde_json::from_str(&out).ok()?;
        let st = &v["state"]["session_state"];
        if let Some(s) = st.as_str() {
            return Some(s.to_ascii_lowercase());
        }
        // The numeric form of the API enum.
        let names = [
            "unknown",
            "idle",
            "connect",
            "active",
            "opensent",
            "openconfirm",
            "established",
        ];
        st.as_u64()
            .and_then(|i| names.get(usize::try_from(i).ok()?))
            .map(|s| (*s).to_owned())
    }

    /// Whether neighbour `addr` is Established.
    pub fn established(&self, addr: &str) -> bool {
        self.neighbor_state(addr).as_deref() == Some("established")
    }

    /// Waits until every address in `addrs` is Established.
    pub fn wait_established(&self, addrs: &[String], timeout: Duration) {
        for a in addrs {
            wait_for(
                timeout,
                &format!("{a} Established in gobgpd ({})", self.ns),
                || self.established(a).then_some(()),
            );
        }
    }

    /// Paths of `prefix` in the global RIB (empty when it has none).
    pub fn rib(&self, prefix: &str) -> Vec<GoBgpPath> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "-a", afi, prefix, "-j"])
            .map(|out| parse_rib(&out, prefix))
            .unwrap_or_default()
    }
}
