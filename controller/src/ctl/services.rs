//! `ferrolbctl services`: LoadBalancer Services with their VIPs, pool, the
//! `ferrolb.io/LoadBalancerReady` condition, sharing key, traffic policy and the nodes that
//! announce them.

use ferrolb_crds::annotations::{ALLOW_SHARED_IP, CONDITION_LB_READY, IP_ALLOCATED_FROM_POOL};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::table::Table;
use super::{
    Announcement, announcements_of, announcers_text, ingress_addresses, service_annotation,
    service_condition,
};

/// One LoadBalancer Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `status.loadBalancer.ingress` addresses; empty while pending.
    pub vips: Vec<String>,
    /// `ferrolb.io/ip-allocated-from-pool`.
    pub pool: Option<String>,
    /// Status of `ferrolb.io/LoadBalancerReady`: `True`, `False`, or `Unknown` when absent.
    pub ready: String,
    /// Reason of the condition (empty when absent).
    pub reason: String,
    /// Message of the condition (empty when absent).
    pub message: String,
    /// `ferrolb.io/allow-shared-ip` (or a MetalLB spelling).
    pub sharing_key: Option<String>,
    /// `spec.externalTrafficPolicy` (`Cluster` when unset).
    pub external_traffic_policy: String,
    /// `spec.loadBalancerClass`, if set.
    pub load_balancer_class: Option<String>,
    /// Who announces the VIPs.
    pub announced_by: Vec<Announcement>,
}

/// Whether `svc` is `type: LoadBalancer`.
pub fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// The row of one Service.
pub fn service_row(svc: &Service, anns: &[Announcement]) -> ServiceRow {
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let cond = service_condition(svc, CONDITION_LB_READY);
    let spec = svc.spec.clone().unwrap_or_default();
    let announced_by = announcements_of(anns, &namespace, &name).cloned().collect();
    ServiceRow {
        vips: ingress_addresses(svc),
        pool: service_annotation(svc, IP_ALLOCATED_FROM_POOL).map(str::to_owned),
        ready: cond.map_or_else(|| "Unknown".to_owned(), |c| c.status.clone()),
        reason: cond.map(|c| c.reason.clone()).unwrap_or_default(),
        message: cond.map(|c| c.message.clone()).unwrap_or_default(),
        sharing_key: service_annotation(svc, ALLOW_SHARED_IP).map(str::to_owned),
        external_traffic_policy: spec
            .external_traffic_policy
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "Cluster".to_owned()),
        load_balancer_class: spec.load_balancer_class.filter(|c| !c.is_empty()),
        announced_by,
        namespace,
        name,
    }
}

/// The rows of the LoadBalancer Services among `services`, sorted by namespace and name.
pub fn service_rows(services: &[Service], anns: &[Announcement]) -> Vec<ServiceRow> {
    let mut rows: Vec<ServiceRow> = services
        .iter()
        .filter(|s| is_load_balancer(s))
        .map(|s| service_row(s, anns))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

/// The table of `rows` (with a NAMESPACE column when `all_namespaces`), then a hint for
/// pending Services. `scope` names what was listed for the empty message.
pub fn services_table(rows: &[ServiceRow], all_namespaces: bool, scope: &str) -> String {
    if rows.is_empty() {
        return format!("No LoadBalancer Services found in {scope}.\n");
    }
    let mut header = vec![
        "NAME",
        "VIPS",
        "POOL",
        "READY",
        "REASON",
        "SHARING-KEY",
        "ETP",
        "ANNOUNCED-BY",
    ];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut t = Table::new(&header);
    let none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    for r in rows {
        let mut cells = vec![
            r.name.clone(),
            if r.vips.is_empty() {
                "<pending>".to_owned()
            } else {
                r.vips.join(",")
            },
            none(&r.pool),
            r.ready.clone(),
            if r.reason.is_empty() {
                "-".to_owned()
            } else {
                r.reason.clone()
            },
            none(&r.sharing_key),
            r.external_traffic_policy.clone(),
            announcers_text(&r.announced_by),
        ];
        if all_namespaces {
            cells.insert(0, r.namespace.clone());
        }
        t.push(cells);
    }
    let mut out = t.render();
    if let Some(p) = rows.iter().find(|r| r.vips.is_empty()) {
        out.push_str(&format!(
            "\n{} pending; see why with: ferrolbctl describe service {}/{}\n",
            match rows.iter().filter(|r| r.vips.is_empty()).count() {
                1 => "1 Service is".to_owned(),
                n => format!("{n} Services are"),
            },
            p.namespace,
            p.name
        ));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Mode;
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    pub(crate) fn lb_service(
        ns: &str,
        name: &str,
        ips: &[&str],
        annotations: &[(&str, &str)],
        cond: Option<(&str, &str, &str)>,
    ) -> Service {
        let mut s = Service::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        s.spec = Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ..Default::default()
        });
        s.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    ips.iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some((*ip).into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            conditions: cond.map(|(status, reason, message)| {
                vec![Condition {
                    type_: CONDITION_LB_READY.into(),
                    status: status.into(),
                    reason: reason.into(),
                    message: message.into(),
                    observed_generation: None,
                    last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::from_second(900).expect("time"),
                    ),
                }]
            }),
        });
        s
    }

    #[test]
    fn rows_and_table() {
        let mut local = lb_service(
            "b",
            "local",
            &["10.0.0.2"],
            &[],
            Some(("True", "Allocated", "")),
        );
        if let Some(spec) = local.spec.as_mut() {
            spec.external_traffic_policy = Some("Local".into());
        }
        let mut cluster_ip = lb_service("a", "internal", &[], &[], None);
        if let Some(spec) = cluster_ip.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
        }
        let services = [
            local,
            lb_service(
                "a",
                "web",
                &["10.0.0.1", "fd00::1"],
                &[
                    ("ferrolb.io/ip-allocated-from-pool", "pool-a"),
                    ("metallb.universe.tf/allow-shared-ip", "k"),
                ],
                Some((
                    "True",
                    "Allocated",
                    "[10.0.0.1, fd00::1] from pool `pool-a`",
                )),
            ),
            lb_service(
                "a",
                "pending",
                &[],
                &[],
                Some((
                    "False",
                    "NoPool",
                    "no autoAssign address pool serves a/pending",
                )),
            ),
            cluster_ip,
        ];
        let anns = vec![
            Announcement {
                service_namespace: "a".into(),
                service_name: "web".into(),
                node: "n1".into(),
                mode: Mode::Bgp,
                via: vec!["tor".into()],
            },
            Announcement {
                service_namespace: "a".into(),
                service_name: "web".into(),
                node: "n2".into(),
                mode: Mode::Bgp,
                via: vec!["tor".into()],
            },
        ];
        let rows = service_rows(&services, &anns);
        let got: Vec<(String, String, String, String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", r.namespace, r.name),
                    r.vips.join(","),
                    r.pool.clone().unwrap_or_default(),
                    format!("{} {}", r.ready, r.reason),
                    r.sharing_key.clone().unwrap_or_default(),
                    format!(
                        "{} {}",
                        r.external_traffic_policy,
                        announcers_text(&r.announced_by)
                    ),
                )
            })
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            got,
            vec![
                (
                    s("a/pending"),
                    s(""),
                    s(""),
                    s("False NoPool"),
                    s(""),
                    s("Cluster -")
                ),
                (
                    s("a/web"),
                    s("10.0.0.1,fd00::1"),
                    s("pool-a"),
                    s("True Allocated"),
                    s("k"),
                    s("Cluster bgp:n1,n2")
                ),
                (
                    s("b/local"),
                    s("10.0.0.2"),
                    s(""),
                    s("True Allocated"),
                    s(""),
                    s("Local -")
                ),
            ]
        );
        let text = services_table(&rows, true, "all namespaces");
        let want = "\
NAMESPACE   NAME      VIPS               POOL     READY   REASON      SHARING-KEY   ETP       ANNOUNCED-BY
a           pending   <pending>          -        False   NoPool      -             Cluster   -
a           web       10.0.0.1,fd00::1   pool-a   True    Allocated   k             Cluster   bgp:n1,n2
b           local     10.0.0.2           -        True    Allocated   -             Local     -

1 Service is pending; see why with: ferrolbctl describe service a/pending
";
        assert_eq!(text, want);
        let one_ns = services_table(&rows[1..2], false, "namespace a");
        assert!(one_ns.starts_with("NAME   VIPS"), "{one_ns}");
        assert!(!one_ns.contains("pending"));
        assert_eq!(
            services_table(&[], false, "namespace x"),
            "No LoadBalancer Services found in namespace x.\n"
        );
    }
}
