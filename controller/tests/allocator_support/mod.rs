//! Shared builders for the allocator integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_config::ipset::{Family, parse_pool_entry};
use ferrolb_config::pool::{Pool, PoolPolicy, ServiceAllocation};
use ferrolb_config::selector::LabelSelector;
use ferrolb_config::service::{IpFamilyPolicy, LbRequest, PortKey, Protocol, TrafficPolicy};
use ferrolb_controller::allocator::{ServiceKey, ServiceRequest};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

pub fn key(s: &str) -> ServiceKey {
    let (ns, name) = s.split_once('/').unwrap_or(("default", s));
    ServiceKey::new(ns, name)
}

/// A pool builder.
#[derive(Clone)]
pub struct P {
    name: String,
    entries: Vec<String>,
    policy: PoolPolicy,
}

pub fn pool(name: &str, entries: &[&str]) -> P {
    P {
        name: name.into(),
        entries: entries.iter().map(|s| s.to_string()).collect(),
        policy: PoolPolicy::default(),
    }
}

impl P {
    pub fn manual(mut self) -> P {
        self.policy.auto_assign = false;
        self
    }
    pub fn avoid_buggy(mut self) -> P {
        self.policy.avoid_buggy_ips = true;
        self
    }
    fn alloc(&mut self) -> &mut ServiceAllocation {
        self.policy
            .service_allocation
            .get_or_insert_with(ServiceAllocation::default)
    }
    pub fn priority(mut self, p: u32) -> P {
        self.alloc().priority = p;
        self
    }
    pub fn namespaces(mut self, ns: &[&str]) -> P {
        self.alloc().namespaces = ns.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn ns_selector(mut self, k: &str, v: &str) -> P {
        self.alloc()
            .namespace_selectors
            .push(LabelSelector::from_match_labels(&labels(&[(k, v)])).unwrap());
        self
    }
    pub fn svc_selector(mut self, k: &str, v: &str) -> P {
        self.alloc()
            .service_selectors
            .push(LabelSelector::from_match_labels(&labels(&[(k, v)])).unwrap());
        self
    }
    pub fn build(&self) -> Pool {
        let entries: Vec<_> = self
            .entries
            .iter()
            .map(|e| parse_pool_entry(e).unwrap())
            .collect();
        Pool::new(self.name.clone(), &entries, self.policy.clone()).unwrap()
    }
}

pub fn pools(list: &[P]) -> Vec<Pool> {
    list.iter().map(P::build).collect()
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A request builder: SingleStack IPv4, port 80/TCP, ETP Cluster, nothing requested.
#[derive(Clone)]
pub struct R {
    pub req: ServiceRequest,
}

pub fn svc(name: &str) -> R {
    R {
        req: ServiceRequest::new(
            key(name),
            LbRequest {
                pool: None,
                requested_ips: Vec::new(),
                requested_ips_path: None,
                sharing_key: None,
                ip_family_policy: IpFamilyPolicy::SingleStack,
                ip_families: vec![Family::V4],
                traffic_policy: TrafficPolicy::Cluster,
                ports: vec![PortKey {
                    protocol: Protocol::Tcp,
                    port: 80,
                }],
                backend_key: String::new(),
            },
        ),
    }
}

impl R {
    pub fn pool(mut self, p: &str) -> R {
        self.req.lb.pool = Some(p.into());
        self
    }
    pub fn ips(mut self, list: &[&str]) -> R {
        self.req.lb.requested_ips = ips(list);
        self.req.lb.requested_ips_path =
            Some("metadata.annotations[ferrolb.io/loadBalancerIPs]".into());
        self
    }
    pub fn share(mut self, k: &str) -> R {
        self.req.lb.sharing_key = Some(k.into());
        self
    }
    pub fn tcp(mut self, ports: &[u16]) -> R {
        self.req.lb.ports = ports
            .iter()
            .map(|&port| PortKey {
                protocol: Protocol::Tcp,
                port,
            })
            .collect();
        self
    }
    pub fn udp(mut self, port: u16) -> R {
        self.req.lb.ports = vec![PortKey {
            protocol: Protocol::Udp,
            port,
        }];
        self
    }
    pub fn local(mut self, selector: &str) -> R {
        self.req.lb.traffic_policy = TrafficPolicy::Local;
        self.req.lb.backend_key = selector.into();
        self
    }
    pub fn v6(mut self) -> R {
        self.req.lb.ip_families = vec![Family::V6];
        self
    }
    pub fn require_dual(mut self) -> R {
        self.req.lb.ip_family_policy = IpFamilyPolicy::RequireDualStack;
        self.req.lb.ip_families = vec![Family::V4, Family::V6];
        self
    }
    pub fn prefer_dual(mut self) -> R {
        self.req.lb.ip_family_policy = IpFamilyPolicy::PreferDualStack;
        self.req.lb.ip_families = vec![Family::V4, Family::V6];
        self
    }
    pub fn families(mut self, f: &[Family]) -> R {
        self.req.lb.ip_families = f.to_vec();
        self
    }
    pub fn labels(mut self, pairs: &[(&str, &str)]) -> R {
        self.req.labels = labels(pairs);
        self
    }
    pub fn ns_labels(mut self, pairs: &[(&str, &str)]) -> R {
        self.req.namespace_labels = labels(pairs);
        self
    }
}
