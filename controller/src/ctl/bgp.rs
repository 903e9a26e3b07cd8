//! `ferrolbctl bgp`: the BGPPeers with the nodes they apply to, and which node advertises
//! which Service to which peers (from `ServiceBGPStatus`).
//!
//! Session state (Idle, Established, BFD up or down) is not in the Kubernetes API; the
//! report says so and points at the speakers' `/metrics`.

use std::collections::BTreeMap;

use ferrolb_config::selector::LabelSelector as ParsedSelector;
use ferrolb_crds::{BGPPeer, DynamicAsn};
use k8s_openapi::api::core::v1::{Node, Service};
use serde::Serialize;

use super::describe::SESSION_STATE_HINT;
use super::table::Table;
use super::{Announcement, Mode, find_condition, format_selectors, ingress_addresses};
use crate::reconcile::status::CONDITION_VALID;

/// One BGPPeer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRow {
    /// Object name.
    pub name: String,
    /// `peerAddress:peerPort` (IPv6 in brackets).
    pub address: String,
    /// `myASN`.
    pub my_asn: u32,
    /// `peerASN`, or `internal` / `external` for `dynamicASN`.
    pub peer_asn: String,
    /// `holdTime`/`keepaliveTime` as written (`90s/30s` defaults when unset).
    pub timers: String,
    /// `bfdProfile`, if any.
    pub bfd_profile: Option<String>,
    /// `nodeSelectors` as text (`<all>` when empty).
    pub node_selectors: String,
    /// Names of the Nodes the selectors match, when the Nodes could be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
    /// Status of the `Valid` condition (`Unknown` when not written).
    pub valid: String,
}

/// One node advertising one Service by BGP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpAnnouncementRow {
    /// Node.
    pub node: String,
    /// `namespace/name` of the Service.
    pub service: String,
    /// The Service's VIPs.
    pub vips: Vec<String>,
    /// Peers the node advertises it to.
    pub peers: Vec<String>,
}

/// Everything `ferrolbctl bgp -o json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpReport {
    /// The peers, by name.
    pub peers: Vec<PeerRow>,
    /// The announcements, by node and Service.
    pub announcements: Vec<BgpAnnouncementRow>,
    /// Where session state lives.
    pub note: String,
}

fn nodes_matching(p: &BGPPeer, nodes: &[Node]) -> Vec<String> {
    let parsed: Result<Vec<ParsedSelector>, _> = p
        .spec
        .node_selectors
        .iter()
        .map(ParsedSelector::from_k8s)
        .collect();
    let Ok(parsed) = parsed else {
        return Vec::new();
    };
    let empty = BTreeMap::new();
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| {
            let labels = n.metadata.labels.as_ref().unwrap_or(&empty);
            parsed.is_empty() || parsed.iter().any(|s| s.matches(labels))
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    out.sort();
    out
}

/// The rows of `peers` sorted by name; `nodes` (when listed) resolves node selectors.
pub fn peer_rows(peers: &[BGPPeer], nodes: Option<&[Node]>) -> Vec<PeerRow> {
    let mut rows: Vec<PeerRow> = peers
        .iter()
        .map(|p| {
            let s = &p.spec;
            let address = if s.peer_address.contains(':') {
                format!("[{}]:{}", s.peer_address, s.peer_port)
            } else {
                format!("{}:{}", s.peer_address, s.peer_port)
            };
            let peer_asn = match (s.peer_asn, s.dynamic_asn) {
                (Some(a), _) => a.to_string(),
                (None, Some(DynamicAsn::Internal)) => "internal".to_owned(),
                (None, Some(DynamicAsn::External)) => "external".to_owned(),
                (None, None) => "-".to_owned(),
            };
            let timers = match (&s.hold_time, &s.keepalive_time) {
                (None, None) => "90s/30s".to_owned(),
                (h, k) => format!(
                    "{}/{}",
                    h.as_deref().unwrap_or("-"),
                    k.as_deref().unwrap_or("-")
                ),
            };
            let conditions = p
                .status
                .as_ref()
                .map(|st| st.conditions.as_slice())
                .unwrap_or_default();
            PeerRow {
                name: p.metadata.name.clone().unwrap_or_default(),
                address,
                my_asn: s.my_asn,
                peer_asn,
                timers,
                bfd_profile: s.bfd_profile.clone(),
                node_selectors: format_selectors(&s.node_selectors),
                nodes: nodes.map(|n| nodes_matching(p, n)),
                valid: find_condition(conditions, CONDITION_VALID)
                    .map_or_else(|| "Unknown".to_owned(), |c| c.status.clone()),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The BGP announcements among `anns`, with the VIPs of the Services in `services`, sorted
/// by node and Service.
pub fn bgp_announcement_rows(
    anns: &[Announcement],
    services: &[Service],
) -> Vec<BgpAnnouncementRow> {
    let vips: BTreeMap<(String, String), Vec<String>> = services
        .iter()
        .map(|s| {
            (
                (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                ),
                ingress_addresses(s),
            )
        })
        .collect();
    let mut rows: Vec<BgpAnnouncementRow> = anns
        .iter()
        .filter(|a| a.mode == Mode::Bgp)
        .map(|a| BgpAnnouncementRow {
            node: a.node.clone(),
            service: a.service(),
            vips: vips
                .get(&(a.service_namespace.clone(), a.service_name.clone()))
                .cloned()
                .unwrap_or_default(),
            peers: a.via.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.node, &a.service).cmp(&(&b.node, &b.service)));
    rows
}

/// The report of `ferrolbctl bgp`.
pub fn bgp_report(peers: Vec<PeerRow>, announcements: Vec<BgpAnnouncementRow>) -> BgpReport {
    BgpReport {
        peers,
        announcements,
        note: SESSION_STATE_HINT.to_owned(),
    }
}

/// The report as text: the peers table, the announcements table and the note on sessions.
pub fn bgp_text(report: &BgpReport, namespace: &str) -> String {
    let mut out = String::new();
    if report.peers.is_empty() {
        out.push_str(&format!("No BGPPeers found in namespace {namespace}.\n"));
    } else {
        let mut t = Table::new(&[
            "PEER",
            "ADDRESS",
            "MY-ASN",
            "PEER-ASN",
            "HOLD/KEEPALIVE",
            "BFD",
            "NODE-SELECTORS",
            "NODES",
            "VALID",
        ]);
        for p in &report.peers {
            t.push(vec![
                p.name.clone(),
                p.address.clone(),
                p.my_asn.to_string(),
                p.peer_asn.clone(),
                p.timers.clone(),
                p.bfd_profile.clone().unwrap_or_else(|| "-".to_owned()),
                p.node_selectors.clone(),
                match &p.nodes {
                    None => "?".to_owned(),
                    Some(n) if n.is_empty() => "<none>".to_owned(),
                    Some(n) => n.join(","),
                },
                p.valid.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push('\n');
    if report.announcements.is_empty() {
        out.push_str("No node reports advertising any Service by BGP (no ServiceBGPStatus).\n");
    } else {
        let mut t = Table::new(&["NODE", "SERVICE", "VIPS", "PEERS"]);
        for a in &report.announcements {
            t.push(vec![
                a.node.clone(),
                a.service.clone(),
                if a.vips.is_empty() {
                    "-".to_owned()
                } else {
                    a.vips.join(",")
                },
                a.peers.join(","),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push('\n');
    out.push_str(&report.note);
    out.push_str(".\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::BGPPeerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn peer(name: &str, addr: &str, f: impl FnOnce(&mut BGPPeerSpec)) -> BGPPeer {
        let mut spec = BGPPeerSpec {
            my_asn: 64513,
            peer_asn: Some(64512),
            peer_address: addr.into(),
            peer_port: 179,
            ..Default::default()
        };
        f(&mut spec);
        BGPPeer::new(name, spec)
    }

    fn node(name: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some([("kubernetes.io/hostname".to_owned(), name.to_owned())].into());
        n
    }

    #[test]
    fn report_table() {
        let on = |host: &str| {
            let host = host.to_owned();
            move |s: &mut BGPPeerSpec| {
                s.node_selectors = vec![LabelSelector {
                    match_labels: Some([("kubernetes.io/hostname".to_owned(), host)].into()),
                    ..Default::default()
                }];
                s.hold_time = Some("9s".into());
                s.keepalive_time = Some("3s".into());
                s.bfd_profile = Some("fast".into());
            }
        };
        let peers = [
            peer("tor-v6", "fd00::1", |s| {
                s.peer_asn = None;
                s.dynamic_asn = Some(DynamicAsn::External);
            }),
            peer("tor-n1", "10.0.1.1", on("node1")),
        ];
        let nodes = [node("node1"), node("node2")];
        let rows = peer_rows(&peers, Some(&nodes));
        let mut web = Service::default();
        web.metadata.namespace = Some("default".into());
        web.metadata.name = Some("web".into());
        web.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
            load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
                ingress: Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                    ip: Some("198.51.100.1".into()),
                    ..Default::default()
                }]),
            }),
            conditions: None,
        });
        let anns = [
            Announcement {
                service_namespace: "default".into(),
                service_name: "web".into(),
                node: "node1".into(),
                mode: Mode::Bgp,
                via: vec!["tor-n1".into()],
            },
            Announcement {
                service_namespace: "default".into(),
                service_name: "web".into(),
                node: "node2".into(),
                mode: Mode::L2,
                via: vec!["eth0".into()],
            },
        ];
        let report = bgp_report(rows, bgp_announcement_rows(&anns, &[web]));
        let text = bgp_text(&report, "ferrolb-system");
        let want = "\
PEER     ADDRESS         MY-ASN   PEER-ASN   HOLD/KEEPALIVE   BFD    NODE-SELECTORS                 NODES         VALID
tor-n1   10.0.1.1:179    64513    64512      9s/3s            fast   kubernetes.io/hostname=node1   node1         Unknown
tor-v6   [fd00::1]:179   64513    external   90s/30s          -      <all>                          node1,node2   Unknown

NODE    SERVICE       VIPS           PEERS
node1   default/web   198.51.100.1   tor-n1

BGP/BFD session state is not in the Kubernetes API";
        assert!(text.starts_with(want), "{text}");
        let empty = bgp_text(&bgp_report(vec![], vec![]), "ns");
        assert!(empty.starts_with("No BGPPeers found in namespace ns.\n\nNo node reports"));
        // Without Nodes the NODES column says it does not know.
        let rows = peer_rows(&peers, None);
        assert!(rows.iter().all(|r| r.nodes.is_none()));
        let v = serde_json::to_value(&report).expect("json");
        assert_eq!(v["peers"][0]["peerAsn"], "64512");
        assert_eq!(v["announcements"][0]["peers"][0], "tor-n1");
    }
}
