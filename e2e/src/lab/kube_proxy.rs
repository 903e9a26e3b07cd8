//! kube-proxy emulation: nftables DNAT from a VIP to endpoints, as kube-proxy's nftables mode
//! does it (per-service chain, `numgen random mod N vmap`, one DNAT rule per endpoint chain,
//! prerouting at `priority dstnat` and output at `-100`).
//!
//! The whole table is rendered from the node's current service list and replaced atomically
//! by one `nft -f` transaction, so re-installing a service with new endpoints is idempotent.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::error::{LabError, LabResult};

/// Name of the lab's nftables table (family `inet`) in each node namespace.
pub const TABLE: &str = "flb_kube_proxy";

/// Transport protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// nftables keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One service port on a VIP and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The load-balancer IP.
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// Protocol.
    pub proto: Proto,
    /// Endpoints (same family as the VIP). Empty: connections are rejected.
    pub endpoints: Vec<SocketAddr>,
}

impl Service {
    /// Identity of the service port (VIP, port, protocol).
    pub fn key(&self) -> (IpAddr, u16, Proto) {
        (self.vip, self.port, self.proto)
    }

    fn validate(&self) -> LabResult<()> {
        for ep in &self.endpoints {
            if ep.is_ipv4() != self.vip.is_ipv4() {
                return Err(LabError::new(
                    format!(
                        "render kube-proxy rules for {} {}:{}",
                        self.proto.as_str(),
                        self.vip,
                        self.port
                    ),
                    format!("endpoint {ep} is not in the VIP's address family"),
                    None,
                ));
            }
        }
        Ok(())
    }
}

fn daddr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("ip daddr {a}"),
        IpAddr::V6(a) => format!("ip6 daddr {a}"),
    }
}

/// Renders the `nft -f` script replacing the table with `services`. Traffic DNATed to an
/// endpoint that leaves through `uplink_if` (a pod on another node) is masqueraded, so
/// replies return through this node's conntrack as with kube-proxy and ETP Cluster.
pub fn render(services: &[Service], uplink_if: &str) -> LabResult<String> {
    let mut matches = String::new();
    let mut rejects = String::new();
    let mut chains = String::new();
    for (i, s) in services.iter().enumerate() {
        s.validate()?;
        let m = format!("{} {} dport {}", daddr(s.vip), s.proto.as_str(), s.port);
        if s.endpoints.is_empty() {
            let _ = writeln!(rejects, "    {m} reject");
            continue;
        }
        let _ = writeln!(matches, "    {m} goto svc_{i}");
        let vmap: Vec<String> = (0..s.endpoints.len())
            .map(|k| format!("{k} : goto svc_{i}_ep_{k}"))
            .collect();
        let _ = writeln!(
            chains,
            "  chain svc_{i} {{\n    numgen random mod {} vmap {{ {} }}\n  }}",
            s.endpoints.len(),
            vmap.join(", ")
        );
        for (k, ep) in s.endpoints.iter().enumerate() {
            let to = match ep {
                SocketAddr::V4(a) => format!("ip to {}:{}", a.ip(), a.port()),
                SocketAddr::V6(a) => format!("ip6 to [{}]:{}", a.ip(), a.port()),
            };
            let _ = writeln!(
                chains,
                "  chain svc_{i}_ep_{k} {{\n    meta l4proto {} dnat {to}\n  }}",
                s.proto.as_str()
            );
        }
    }
    let mut t =
        format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    let _ = writeln!(
        t,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{matches}  }}"
    );
    let _ = writeln!(
        t,
        "  chain output {{\n    type nat hook output priority -100; policy accept;\n{matches}  }}"
    );
    let _ = writeln!(
        t,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{uplink_if}\" ct status dnat masquerade\n  }}"
    );
    let _ = writeln!(
        t,
        "  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{rejects}  }}"
    );
    t.push_str(&chains);
    t.push_str("}\n");
    Ok(t)
}

/// Inserts or replaces `svc` (by VIP, port, protocol) in `list`, keeping a stable order.
pub fn upsert(list: &mut Vec<Service>, svc: Service) {
    match list.iter_mut().find(|s| s.key() == svc.key()) {
        Some(s) => *s = svc,
        None => list.push(svc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(vip: &str, port: u16, proto: Proto, eps: &[&str]) -> Service {
        Service {
            vip: vip.parse().expect("vip"),
            port,
            proto,
            endpoints: eps.iter().map(|e| e.parse().expect("ep")).collect(),
        }
    }

    #[test]
    fn renders_chains_vmap_and_dnat_per_family() {
        let s = [
            svc(
                "198.51.100.1",
                80,
                Proto::Tcp,
                &["10.244.1.11:8080", "10.244.2.11:8080"],
            ),
            svc("fd00:5100::1", 53, Proto::Udp, &["[fd00:244:1::11]:8080"]),
            svc("198.51.100.2", 81, Proto::Tcp, &[]),
        ];
        let t = render(&s, "up0").expect("render");
        for want in [
            "table inet flb_kube_proxy {}\ndelete table inet flb_kube_proxy\n",
            "type nat hook prerouting priority dstnat; policy accept;\n    ip daddr 198.51.100.1 tcp dport 80 goto svc_0\n    ip6 daddr fd00:5100::1 udp dport 53 goto svc_1\n",
            "type nat hook output priority -100;",
            "numgen random mod 2 vmap { 0 : goto svc_0_ep_0, 1 : goto svc_0_ep_1 }",
            "chain svc_0_ep_1 {\n    meta l4proto tcp dnat ip to 10.244.2.11:8080\n  }",
            "meta l4proto udp dnat ip6 to [fd00:244:1::11]:8080",
            "oifname \"up0\" ct status dnat masquerade",
            "    ip daddr 198.51.100.2 tcp dport 81 reject\n",
        ] {
            assert!(t.contains(want), "lacks {want:?}:\n{t}");
        }
        assert!(
            !t.contains("svc_2"),
            "no chains for a service without endpoints"
        );
    }

    #[test]
    fn rejects_family_mismatch() {
        let err = render(
            &[svc("198.51.100.1", 80, Proto::Tcp, &["[fd00::1]:80"])],
            "up0",
        )
        .expect_err("mismatch");
        assert!(
            err.to_string()
                .contains("endpoint [fd00::1]:80 is not in the VIP's address family"),
            "{err}"
        );
    }

    #[test]
    fn upsert_replaces_by_key() {
        let mut l = vec![];
        upsert(
            &mut l,
            svc("198.51.100.1", 80, Proto::Tcp, &["10.244.1.11:80"]),
        );
        upsert(
            &mut l,
            svc("198.51.100.1", 80, Proto::Udp, &["10.244.1.11:80"]),
        );
        upsert(
            &mut l,
            svc("198.51.100.1", 80, Proto::Tcp, &["10.244.1.12:80"]),
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].endpoints[0].to_string(), "10.244.1.12:80");
    }
}
