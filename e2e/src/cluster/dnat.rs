//! kube-proxy emulation hook: when a LoadBalancer Service has an IP in
//! `status.loadBalancer.ingress`, install nftables DNAT from that IP and each Service port to
//! the Service's endpoints on every lab node, as kube-proxy would. This carries VIP traffic
//! in the lab until ferrolb's eBPF forwarding stage exists.
//!
//! [`desired_rules`] is pure: Services and EndpointSlices in, per-node DNAT services out
//! (ready endpoints of the VIP's family, or serving-and-terminating ones when none is ready,
//! as kube-proxy does; with `externalTrafficPolicy: Local` only the node's own endpoints,
//! so a node without one rejects). [`DnatWatcher::spawn`] runs it on every change seen by
//! two reflectors (Services, EndpointSlices) and applies the difference through
//! [`Lab::install_kube_proxy_nft`] / [`Lab::remove_kube_proxy_nft`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SERVICE_NAME_LABEL;
use crate::lab::kube_proxy::Service as DnatService;
use crate::lab::{Lab, Proto};

/// Per node name, the DNAT services it should have, sorted by (VIP, port, protocol).
pub type Rules = BTreeMap<String, Vec<DnatService>>;

fn parse_proto(p: Option<&str>) -> Option<Proto> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Proto::Tcp),
        "UDP" => Some(Proto::Udp),
        _ => None,
    }
}

/// The DNAT services every node in `nodes` should have for `services` (LoadBalancer
/// Services with ingress IPs) and their `slices`. Nodes with nothing get an empty list.
pub fn desired_rules(nodes: &[String], services: &[Service], slices: &[EndpointSlice]) -> Rules {
    let mut out: Rules = nodes.iter().map(|n| (n.clone(), Vec::new())).collect();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        if spec.type_.as_deref() != Some("LoadBalancer") {
            continue;
        }
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let Some(name) = svc.metadata.name.as_deref() else {
            continue;
        };
        let local = spec.external_traffic_policy.as_deref() == Some("Local");
        let vips: Vec<IpAddr> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect();
        let own: Vec<&EndpointSlice> = slices
            .iter()
            .filter(|s| {
                s.metadata.namespace.as_deref().unwrap_or("default") == ns
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                        .map(String::as_str)
                        == Some(name)
            })
            .collect();
        for vip in vips {
            for port in spec.ports.iter().flatten() {
                let Some(proto) = parse_proto(port.protocol.as_deref()) else {
                    continue;
                };
                let Ok(svc_port) = u16::try_from(port.port) else {
                    continue;
                };
                let pname = port.name.as_deref().unwrap_or("");
                // (node name, endpoint, ready, serving-and-terminating)
                let mut eps: Vec<(Option<&str>, SocketAddr, bool, bool)> = Vec::new();
                for s in &own {
                    let family_ok = matches!(
                        (s.address_type.as_str(), vip),
                        ("IPv4", IpAddr::V4(_)) | ("IPv6", IpAddr::V6(_))
                    );
                    if !family_ok {
                        continue;
                    }
                    let Some(target) = s
                        .ports
                        .iter()
                        .flatten()
                        .find(|p| {
                            p.name.as_deref().unwrap_or("") == pname
                                && parse_proto(p.protocol.as_deref()) == Some(proto)
                        })
                        .and_then(|p| u16::try_from(p.port?).ok())
                    else {
                        continue;
                    };
                    for e in &s.endpoints {
                        let c = e.conditions.clone().unwrap_or_default();
                        // Unset `ready` means ready (discovery.k8s.io/v1 semantics).
                        let ready = c.ready.unwrap_or(true) && !c.terminating.unwrap_or(false);
                        let serving_terminating =
                            c.serving.unwrap_or(false) && c.terminating.unwrap_or(false);
                        for a in &e.addresses {
                            let Ok(ip) = a.parse::<IpAddr>() else {
                                continue;
                            };
                            if ip.is_ipv4() != vip.is_ipv4() {
                                continue;
                            }
                            eps.push((
                                e.node_name.as_deref(),
                                SocketAddr::new(ip, target),
                                ready,
                                serving_terminating,
                            ));
                        }
                    }
                }
                for (node, rules) in &mut out {
                    let candidates: Vec<_> = eps
                        .iter()
                        .filter(|e| !local || e.0 == Some(node.as_str()))
                        .collect();
                    let ready: Vec<SocketAddr> =
                        candidates.iter().filter(|e| e.2).map(|e| e.1).collect();
                    let mut endpoints = if ready.is_empty() {
                        candidates.iter().filter(|e| e.3).map(|e| e.1).collect()
                    } else {
                        ready
                    };
                    endpoints.sort();
                    endpoints.dedup();
                    rules.push(DnatService {
                        vip,
                        port: svc_port,
                        proto,
                        endpoints,
                    });
                }
            }
        }
    }
    for rules in out.values_mut() {
        rules.sort_by_key(DnatService::key);
        rules.dedup_by_key(|s| s.key());
    }
    out
}

/// A running watcher installing DNAT rules on the lab's nodes. Aborted on drop.
#[derive(Debug)]
pub struct DnatWatcher {
    task: JoinHandle<anyhow::Result<()>>,
    applied: watch::Receiver<Rules>,
}

impl Drop for DnatWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn apply(lab: Arc<Lab>, old: Rules, new: Rules) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for node in lab.nodes() {
            let empty = Vec::new();
            let before = old.get(&node.name).unwrap_or(&empty);
            let after = new.get(&node.name).unwrap_or(&empty);
            for s in before {
                if !after.iter().any(|x| x.key() == s.key()) {
                    lab.remove_kube_proxy_nft(node.index, s.vip, s.port, s.proto)?;
                }
            }
            for s in after {
                if !before.contains(s) {
                    lab.install_kube_proxy_nft(node.index, s.vip, s.port, s.proto, &s.endpoints)?;
                }
            }
        }
        Ok(())
    })
    .await?
}

impl DnatWatcher {
    /// Starts watching Services and EndpointSlices in all namespaces through `client` and
    /// keeps every node of `lab` programmed. The task ends with an error if a rule cannot be
    /// installed (see [`DnatWatcher::error`]).
    pub fn spawn(client: kube::Client, lab: Arc<Lab>) -> DnatWatcher {
        let (tx, applied) = watch::channel(Rules::new());
        let task = tokio::spawn(async move {
            let (svc_store, svc_writer) = reflector::store::<Service>();
            let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
            let cfg = watcher::Config::default();
            let svcs = reflector(
                svc_writer,
                watcher(Api::<Service>::all(client.clone()), cfg.clone()),
            )
            .default_backoff()
            .map(|e| e.map(|_| ()));
            let eps = reflector(eps_writer, watcher(Api::<EndpointSlice>::all(client), cfg))
                .default_backoff()
                .map(|e| e.map(|_| ()));
            let mut events = std::pin::pin!(futures::stream::select(svcs, eps));
            let nodes: Vec<String> = lab.nodes().iter().map(|n| n.name.clone()).collect();
            let mut current = Rules::new();
            while let Some(ev) = events.next().await {
                if let Err(e) = ev {
                    tracing::debug!("DNAT watcher: watch error (retrying): {e}");
                    continue;
                }
                let services: Vec<Service> =
                    svc_store.state().iter().map(|s| (**s).clone()).collect();
                let slices: Vec<EndpointSlice> =
                    eps_store.state().iter().map(|s| (**s).clone()).collect();
                let want = desired_rules(&nodes, &services, &slices);
                if want != current {
                    apply(lab.clone(), current.clone(), want.clone()).await?;
                    current = want;
                    tx.send_replace(current.clone());
                }
            }
            Ok(())
        });
        DnatWatcher { task, applied }
    }

    /// Stops the watcher and waits until its task (and its handle on the lab) is gone.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// The rules installed now.
    pub fn applied(&self) -> Rules {
        self.applied.borrow().clone()
    }

    /// Waits until every node has a DNAT service for `vip` with at least one endpoint.
    pub async fn wait_for_vip(&mut self, vip: IpAddr, timeout: Duration) -> anyhow::Result<Rules> {
        let has = |r: &Rules| {
            !r.is_empty()
                && r.values()
                    .all(|v| v.iter().any(|s| s.vip == vip && !s.endpoints.is_empty()))
        };
        let res = tokio::time::timeout(timeout, self.applied.wait_for(has))
            .await
            .map(|r| r.map(|rules| rules.clone()));
        match res {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(self.error().await.unwrap_or_else(|| {
                anyhow::anyhow!("the DNAT watcher stopped before installing rules for {vip}")
            })),
            Err(_) => anyhow::bail!(
                "no DNAT rules for {vip} on every node within {timeout:?}; installed: {:?}",
                self.applied.borrow().clone()
            ),
        }
    }

    /// The error the task ended with, if it has ended (`None` while running).
    pub async fn error(&mut self) -> Option<anyhow::Error> {
        if !self.task.is_finished() {
            return None;
        }
        match (&mut self.task).await {
            Ok(Ok(())) => Some(anyhow::anyhow!("the DNAT watcher's streams ended")),
            Ok(Err(e)) => Some(e),
            Err(e) => Some(anyhow::anyhow!("the DNAT watcher task failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{EndpointState, SlicePort, endpoint_slices, set_endpoint_state};
    use crate::lab::LabSpec;

    fn service(name: &str, local: bool, ips: &[&str]) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": if local { "Local" } else { "Cluster" },
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                          {"name": "sctp", "port": 90, "protocol": "SCTP"}],
            },
            "status": {"loadBalancer": {"ingress": ips.iter().map(|i| serde_json::json!({"ip": i})).collect::<Vec<_>>()}},
        }))
        .expect("service")
    }

    fn slices() -> Vec<EndpointSlice> {
        let plan = LabSpec {
            nodes: 2,
            pods_per_node: 2,
            ..LabSpec::default()
        }
        .plan("flb-1-0")
        .expect("plan");
        let ports = [SlicePort {
            name: "http".into(),
            port: 8080,
            proto: Proto::Tcp,
        }];
        endpoint_slices(&plan, "default", "web", &ports)
    }

    fn eps(r: &Rules, node: &str, vip: &str) -> Vec<String> {
        let vip: IpAddr = vip.parse().expect("vip");
        r[node]
            .iter()
            .find(|s| s.vip == vip)
            .map(|s| s.endpoints.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn rules_per_family_policy_and_condition() {
        let nodes = vec!["node1".to_string(), "node2".to_string()];
        let all4 = [
            "10.244.1.11:8080",
            "10.244.1.12:8080",
            "10.244.2.11:8080",
            "10.244.2.12:8080",
        ];
        let s = slices();

        let r = desired_rules(
            &nodes,
            &[service("web", false, &["198.51.100.1", "fd00:5100::1"])],
            &s,
        );
        assert_eq!(eps(&r, "node1", "198.51.100.1"), all4);
        assert_eq!(eps(&r, "node2", "fd00:5100::1")[0], "[fd00:244:1::11]:8080");
        assert_eq!(r["node1"].len(), 2, "SCTP is skipped: {r:?}");

        let r = desired_rules(&nodes, &[service("web", true, &["198.51.100.1"])], &s);
        assert_eq!(
            eps(&r, "node2", "198.51.100.1"),
            ["10.244.2.11:8080", "10.244.2.12:8080"]
        );

        // Not ready and terminating endpoints leave; serving+terminating ones are the
        // fallback when nothing else is ready.
        let mut s2 = s.clone();
        set_endpoint_state(&mut s2[0], "pod-2-1", EndpointState::NotReady);
        set_endpoint_state(&mut s2[0], "pod-2-2", EndpointState::Terminating);
        let r = desired_rules(&nodes, &[service("web", true, &["198.51.100.1"])], &s2);
        assert_eq!(eps(&r, "node2", "198.51.100.1"), ["10.244.2.12:8080"]);
        set_endpoint_state(&mut s2[0], "pod-2-2", EndpointState::NotReady);
        let r = desired_rules(&nodes, &[service("web", true, &["198.51.100.1"])], &s2);
        assert_eq!(eps(&r, "node2", "198.51.100.1"), Vec::<String>::new());
        assert_eq!(r["node2"].len(), 1, "an empty service rejects");

        // No IP yet, another Service's slices, or not a LoadBalancer: nothing.
        let r = desired_rules(&nodes, &[service("web", false, &[])], &s);
        assert!(r.values().all(Vec::is_empty));
        let r = desired_rules(&nodes, &[service("other", false, &["198.51.100.2"])], &s);
        assert_eq!(eps(&r, "node1", "198.51.100.2"), Vec::<String>::new());
        let mut cip = service("web", false, &["198.51.100.1"]);
        cip.spec.as_mut().expect("spec").type_ = Some("ClusterIP".into());
        assert!(
            desired_rules(&nodes, &[cip], &s)
                .values()
                .all(Vec::is_empty)
        );
    }
}
