//! A Service whose annotations, loadBalancerIP, class and families come from fuzz input:
//! parsing it into an allocation request never panics.
#![no_main]

use std::collections::BTreeMap;

use ferrolb_config::service::parse_service;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 8] = [
    "ferrolb.io/loadBalancerIPs",
    "metallb.io/loadBalancerIPs",
    "metallb.universe.tf/loadBalancerIPs",
    "ferrolb.io/address-pool",
    "metallb.io/allow-shared-ip",
    "ferrolb.io/allow-shared-ip",
    "ferrolb.io/ip-allocated-from-pool",
    "metallb.universe.tf/address-pool",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let mut annotations = BTreeMap::new();
    for key in KEYS {
        if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
            annotations.insert(key.to_string(), v.to_string());
        }
    }
    let mut svc = Service::default();
    svc.metadata.name = Some("fuzz".into());
    svc.metadata.namespace = Some("default".into());
    svc.metadata.annotations = Some(annotations);
    svc.spec = Some(ServiceSpec {
        type_: Some("LoadBalancer".into()),
        load_balancer_ip: parts.next().map(str::to_string),
        load_balancer_class: parts.next().map(str::to_string),
        ip_family_policy: parts.next().map(str::to_string),
        ip_families: parts.next().map(|f| f.split(',').map(str::to_string).collect()),
        external_traffic_policy: parts.next().map(str::to_string),
        ..Default::default()
    });
    let _ = parse_service(&svc, parts.next());
});
