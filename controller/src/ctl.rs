//! `ferrolbctl` views: pure functions that turn lists of API objects into plain-text tables,
//! JSON rows and plain-words explanations. No kube client here; the binary
//! (`src/bin/ferrolbctl.rs`) fetches the objects and prints what these functions return.
//!
//! - [`pools`]: per pool and family, addresses and exact counts from the pool status.
//! - [`services`]: LoadBalancer Services with their VIPs, pool, readiness and announcers.
//! - [`describe`]: everything about one Service, its Events ([`events`]) and a diagnosis.
//! - [`bgp`]: BGP peers and per-node announcements.
//! - [`validate`]: offline validation of manifests.

pub mod bgp;
pub mod describe;
pub mod events;
pub mod pools;
pub mod services;
pub mod table;
pub mod validate;

use std::collections::BTreeMap;

use ferrolb_crds::annotations::{LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE, LEGACY_PREFIXES};
use ferrolb_crds::{ServiceBGPStatus, ServiceL2Status};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// How a node announces a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BGP: the node advertises the VIPs to peers (`ServiceBGPStatus`).
    Bgp,
    /// Layer 2: the node answers ARP/NDP for the VIPs (`ServiceL2Status`).
    L2,
}

impl Mode {
    /// `bgp` or `l2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bgp => "bgp",
            Mode::L2 => "l2",
        }
    }
}

/// One node announcing one Service, read from a speaker's status object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Announcement {
    /// Namespace of the Service.
    pub service_namespace: String,
    /// Name of the Service.
    pub service_name: String,
    /// Announcing node.
    pub node: String,
    /// BGP or L2.
    pub mode: Mode,
    /// BGP peers (BGP mode) or interfaces (L2 mode).
    pub via: Vec<String>,
}

impl Announcement {
    /// `<namespace>/<name>` of the Service.
    pub fn service(&self) -> String {
        format!("{}/{}", self.service_namespace, self.service_name)
    }
}

/// Reads the announcements of speaker status objects, sorted by Service, node and mode.
/// The Service and node come from the status block, else from the object's labels; objects
/// naming no Service or node are skipped.
pub fn announcements(bgp: &[ServiceBGPStatus], l2: &[ServiceL2Status]) -> Vec<Announcement> {
    let label = |labels: &Option<BTreeMap<String, String>>, key: &str| -> Option<String> {
        labels.as_ref()?.get(key).filter(|v| !v.is_empty()).cloned()
    };
    let mut out = Vec::new();
    let mut push = |ns: Option<String>, name: Option<String>, node: Option<String>, mode, via| {
        if let (Some(service_namespace), Some(service_name), Some(node)) = (ns, name, node) {
            out.push(Announcement {
                service_namespace,
                service_name,
                node,
                mode,
                via,
            });
        }
    };
    for o in bgp {
        let st = o.status.clone().unwrap_or_default();
        let labels = &o.metadata.labels;
        push(
            st.service_namespace
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, LABEL_SERVICE_NAMESPACE)),
            st.service_name
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, LABEL_SERVICE_NAME)),
            st.node
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, ferrolb_crds::annotations::LABEL_NODE)),
            Mode::Bgp,
            st.peers,
        );
    }
    for o in l2 {
        let st = o.status.clone().unwrap_or_default();
        let labels = &o.metadata.labels;
        push(
            st.service_namespace
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, LABEL_SERVICE_NAMESPACE)),
            st.service_name
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, LABEL_SERVICE_NAME)),
            st.node
                .filter(|s| !s.is_empty())
                .or_else(|| label(labels, ferrolb_crds::annotations::LABEL_NODE)),
            Mode::L2,
            st.interfaces.into_iter().map(|i| i.name).collect(),
        );
    }
    out.sort();
    out
}

/// The announcements of Service `namespace/name`.
pub fn announcements_of<'a>(
    all: &'a [Announcement],
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a Announcement> + 'a {
    all.iter()
        .filter(move |a| a.service_namespace == namespace && a.service_name == name)
}

/// Compact "who announces" text: `bgp:node1,node2 l2:node3`, or `-` when nobody does.
pub fn announcers_text<'a>(anns: impl IntoIterator<Item = &'a Announcement>) -> String {
    let mut by_mode: BTreeMap<Mode, Vec<&str>> = BTreeMap::new();
    for a in anns {
        by_mode.entry(a.mode).or_default().push(&a.node);
    }
    if by_mode.is_empty() {
        return "-".to_owned();
    }
    by_mode
        .iter()
        .map(|(m, nodes)| format!("{}:{}", m.as_str(), nodes.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Service annotation read under `ferrolb.io/`, else under the MetalLB prefixes (as the
/// controller reads them); empty values count as absent.
pub fn service_annotation<'a>(svc: &'a Service, suffix: &str) -> Option<&'a str> {
    let annotations = svc.metadata.annotations.as_ref()?;
    std::iter::once(ferrolb_crds::annotations::PREFIX)
        .chain(LEGACY_PREFIXES)
        .find_map(|p| annotations.get(&format!("{p}{suffix}")))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// `namespace/name` of a Service.
pub fn service_key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The addresses of `status.loadBalancer.ingress` (IPs, or host names when no IP is set).
pub fn ingress_addresses(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ing| {
            ing.iter()
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The Service's condition of type `type_`, if any.
pub fn service_condition<'a>(svc: &'a Service, type_: &str) -> Option<&'a Condition> {
    find_condition(
        svc.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default(),
        type_,
    )
}

/// The condition of type `type_` in `conditions`, if any.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// One label selector as kubectl prints it: `a=b,c!=d,e in (f,g),h,!i`; `<all>` when empty.
pub fn format_selector(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    if parts.is_empty() {
        "<all>".to_owned()
    } else {
        parts.join(",")
    }
}

/// A list of selectors of which any may match: joined by ` | `; `<all>` when empty.
pub fn format_selectors(sels: &[LabelSelector]) -> String {
    if sels.is_empty() {
        return "<all>".to_owned();
    }
    sels.iter()
        .map(format_selector)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Age as kubectl prints it: `42s`, `5m`, `3h`, `2d`; `<unknown>` for a time in the future
/// by more than a minute (clock skew).
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second() - then.as_second();
    if secs < -60 {
        return "<unknown>".to_owned();
    }
    let secs = secs.max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::{ServiceBGPStatusStatus, ServiceL2StatusStatus, StatusInterface};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn bgp(node: &str, ns: &str, name: &str, peers: &[&str]) -> ServiceBGPStatus {
        let mut o = ServiceBGPStatus::new("x", Default::default());
        o.status = Some(ServiceBGPStatusStatus {
            node: Some(node.into()),
            service_name: Some(name.into()),
            service_namespace: Some(ns.into()),
            peers: peers.iter().map(|p| (*p).into()).collect(),
        });
        o
    }

    #[test]
    fn announcements_from_status_and_labels() {
        let mut by_label = ServiceL2Status::new("y", Default::default());
        by_label.metadata.labels = Some(
            [
                ("ferrolb.io/node", "n3"),
                ("ferrolb.io/service-name", "web"),
                ("ferrolb.io/service-namespace", "default"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        by_label.status = Some(ServiceL2StatusStatus {
            interfaces: vec![StatusInterface {
                name: "eth0".into(),
            }],
            ..Default::default()
        });
        let nameless = ServiceBGPStatus::new("z", Default::default());
        let anns = announcements(
            &[
                bgp("n2", "default", "web", &["tor"]),
                bgp("n1", "default", "web", &["tor"]),
                nameless,
            ],
            &[by_label],
        );
        let got: Vec<(String, &str, Mode, Vec<String>)> = anns
            .iter()
            .map(|a| (a.service(), a.node.as_str(), a.mode, a.via.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("default/web".into(), "n1", Mode::Bgp, vec!["tor".into()]),
                ("default/web".into(), "n2", Mode::Bgp, vec!["tor".into()]),
                ("default/web".into(), "n3", Mode::L2, vec!["eth0".into()]),
            ]
        );
        assert_eq!(announcers_text(&anns), "bgp:n1,n2 l2:n3");
        assert_eq!(announcers_text(&[]), "-");
        assert_eq!(announcements_of(&anns, "default", "other").count(), 0);
    }

    #[test]
    fn selector_formats() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).into()).collect()),
        };
        let cases: Vec<(LabelSelector, &str)> = vec![
            (LabelSelector::default(), "<all>"),
            (
                LabelSelector {
                    match_labels: Some([("a".to_owned(), "b".to_owned())].into()),
                    match_expressions: Some(vec![
                        req("zone", "In", &["x", "y"]),
                        req("rack", "NotIn", &["r1"]),
                        req("gpu", "Exists", &[]),
                        req("spot", "DoesNotExist", &[]),
                    ]),
                },
                "a=b,zone in (x,y),rack notin (r1),gpu,!spot",
            ),
        ];
        for (sel, want) in &cases {
            assert_eq!(format_selector(sel), *want);
        }
        assert_eq!(format_selectors(&[]), "<all>");
        assert_eq!(
            format_selectors(&[cases[1].0.clone(), LabelSelector::default()]),
            "a=b,zone in (x,y),rack notin (r1),gpu,!spot | <all>"
        );
    }

    #[test]
    fn age_table() {
        let now = Timestamp::from_second(1_000_000).expect("time");
        let cases = [
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (7199, "119m"),
            (7200, "2h"),
            (2 * 86_400, "2d"),
            (-30, "0s"),
            (-61, "<unknown>"),
        ];
        for (ago, want) in cases {
            let then = Timestamp::from_second(1_000_000 - ago).expect("time");
            assert_eq!(age(then, now), want, "{ago}");
        }
    }

    #[test]
    fn annotation_prefixes() {
        let mut svc = Service::default();
        svc.metadata.annotations = Some(
            [
                ("metallb.universe.tf/allow-shared-ip", "old"),
                ("ferrolb.io/address-pool", ""),
                ("metallb.io/address-pool", "p"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        assert_eq!(service_annotation(&svc, "allow-shared-ip"), Some("old"));
        // An empty current key shadows the legacy one, as the controller reads it.
        assert_eq!(service_annotation(&svc, "address-pool"), None);
        assert_eq!(service_annotation(&svc, "loadBalancerIPs"), None);
    }
}
