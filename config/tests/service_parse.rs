//! Table tests of `ferrolb_config::service::parse_service`, one table per rule, and a
//! property test that arbitrary annotation and spec strings never panic.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_config::ipset::Family;
use ferrolb_config::service::{
    AnnotationKey, Handling, IpFamilyPolicy, LbRequest, PortKey, Protocol, ServiceError,
    ServiceView, TrafficPolicy, parse_service,
};
use k8s_openapi::api::core::v1::Service;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A LoadBalancer Service `ns/web` with `annotations` and `spec` merged over defaults
/// (type LoadBalancer, ipFamilies [IPv4], one TCP port 80).
fn svc(annotations: &[(&str, &str)], spec: Value) -> Service {
    let mut base = json!({
        "type": "LoadBalancer",
        "ipFamilies": ["IPv4"],
        "ports": [{"port": 80}],
        "selector": {"app": "web"},
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "web", "annotations": annotations, "labels": {"tier": "front"}},
        "spec": base,
    }))
    .expect("valid Service JSON")
}

/// Annotation (key, value) pairs of a table row.
type Pairs = Vec<(&'static str, &'static str)>;

/// A row's expectation: a value, or the (path, message fragment) of an expected error.
type Expect<T> = Result<T, (&'static str, &'static str)>;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn request(view: &ServiceView) -> &LbRequest {
    match &view.request {
        Ok(r) => r,
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

fn errors(view: &ServiceView) -> &[ServiceError] {
    match &view.request {
        Ok(r) => panic!("expected errors, got {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn handling_by_type_and_class() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Option<&str>, Handling)> = vec![
        ("plain LB, no class configured", json!({}), None, Handling::Managed),
        ("ClusterIP", json!({"type": "ClusterIP"}), None, Handling::NotLoadBalancer),
        ("NodePort", json!({"type": "NodePort"}), None, Handling::NotLoadBalancer),
        ("type absent", json!({"type": null}), None, Handling::NotLoadBalancer),
        ("type lower case", json!({"type": "loadbalancer"}), None, Handling::NotLoadBalancer),
        ("class set, none configured", json!({"loadBalancerClass": "x.io/lb"}), None,
            Handling::OtherClass { class: Some("x.io/lb".into()) }),
        ("class matches", json!({"loadBalancerClass": "ferrolb.io/lb"}), Some("ferrolb.io/lb"), Handling::Managed),
        ("class differs", json!({"loadBalancerClass": "x.io/lb"}), Some("ferrolb.io/lb"),
            Handling::OtherClass { class: Some("x.io/lb".into()) }),
        ("no class, one configured", json!({}), Some("ferrolb.io/lb"), Handling::OtherClass { class: None }),
        ("empty class is no class", json!({"loadBalancerClass": ""}), None, Handling::Managed),
    ];
    for (name, spec, class, want) in cases {
        let view = parse_service(&svc(&[], spec), class);
        assert_eq!(view.handling, want, "{name}");
        assert_eq!((view.namespace.as_str(), view.name.as_str()), ("ns", "web"));
        assert_eq!(view.labels.get("tier").map(String::as_str), Some("front"));
    }
}

#[test]
fn annotation_prefix_precedence() {
    type Row = (
        &'static str,
        Pairs,
        Option<&'static str>,
        Option<&'static str>,
        &'static [&'static str],
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        // name, annotations, pool, sharing key, deprecated keys used
        ("none", vec![], None, None, &[]),
        ("ferrolb only", vec![("ferrolb.io/address-pool", "a")], Some("a"), None, &[]),
        ("metallb.io only", vec![("metallb.io/address-pool", "b")], Some("b"), None, &["metallb.io/address-pool"]),
        ("universe only", vec![("metallb.universe.tf/address-pool", "c")], Some("c"), None,
            &["metallb.universe.tf/address-pool"]),
        ("ferrolb wins over both", vec![("ferrolb.io/address-pool", "a"), ("metallb.io/address-pool", "b"),
            ("metallb.universe.tf/address-pool", "c")], Some("a"), None, &[]),
        ("metallb.io wins over universe", vec![("metallb.io/address-pool", "b"),
            ("metallb.universe.tf/address-pool", "c")], Some("b"), None, &["metallb.io/address-pool"]),
        ("empty current value wins and means none", vec![("ferrolb.io/address-pool", ""),
            ("metallb.io/address-pool", "b")], None, None, &[]),
        ("sharing key old spelling", vec![("metallb.universe.tf/allow-shared-ip", "k1")], None, Some("k1"),
            &["metallb.universe.tf/allow-shared-ip"]),
        ("sharing key empty", vec![("ferrolb.io/allow-shared-ip", "")], None, None, &[]),
        ("several deprecated", vec![("metallb.io/allow-shared-ip", "k"), ("metallb.universe.tf/address-pool", "p")],
            Some("p"), Some("k"), &["metallb.universe.tf/address-pool", "metallb.io/allow-shared-ip"]),
        ("unrelated prefix ignored", vec![("example.com/address-pool", "x")], None, None, &[]),
    ];
    for (name, annotations, pool, key, deprecated) in cases {
        let view = parse_service(&svc(&annotations, json!({})), None);
        let req = request(&view);
        assert_eq!(req.pool.as_deref(), pool, "{name}");
        assert_eq!(req.sharing_key.as_deref(), key, "{name}");
        let used: Vec<&str> = view
            .deprecated_annotations
            .iter()
            .map(|d| d.used.as_str())
            .collect();
        assert_eq!(used, deprecated, "{name}");
        for d in &view.deprecated_annotations {
            assert!(d.replacement().starts_with("ferrolb.io/"), "{name}");
            assert!(d.used.ends_with(d.key.name()), "{name}");
        }
    }
}

#[test]
fn requested_ips() {
    let dual = json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"});
    let v6 = json!({"ipFamilies": ["IPv6"]});
    type Row = (
        &'static str,
        Pairs,
        Value,
        Expect<(&'static [&'static str], Option<&'static str>)>,
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("none", vec![], json!({}), Ok((&[], None))),
        ("one v4", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.5")], json!({}),
            Ok((&["10.0.0.5"], Some("metadata.annotations[ferrolb.io/loadBalancerIPs]")))),
        ("dual, spaces", vec![("ferrolb.io/loadBalancerIPs", " fc00::5 , 10.0.0.5 ")], dual.clone(),
            Ok((&["fc00::5", "10.0.0.5"], Some("metadata.annotations[ferrolb.io/loadBalancerIPs]")))),
        ("old prefix", vec![("metallb.universe.tf/loadBalancerIPs", "10.0.0.5")], json!({}),
            Ok((&["10.0.0.5"], Some("metadata.annotations[metallb.universe.tf/loadBalancerIPs]")))),
        ("spec field", vec![], json!({"loadBalancerIP": "10.0.0.7"}), Ok((&["10.0.0.7"], Some("spec.loadBalancerIP")))),
        ("empty spec field", vec![], json!({"loadBalancerIP": ""}), Ok((&[], None))),
        ("empty annotation", vec![("ferrolb.io/loadBalancerIPs", "")], json!({"loadBalancerIP": "10.0.0.7"}),
            Ok((&["10.0.0.7"], Some("spec.loadBalancerIP")))),
        ("v6 only service", vec![("ferrolb.io/loadBalancerIPs", "fc00::9")], v6, Ok((&["fc00::9"], None))),
        ("both set", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.5")], json!({"loadBalancerIP": "10.0.0.7"}),
            Err(("spec.loadBalancerIP", "both spec.loadBalancerIP and annotation ferrolb.io/loadBalancerIPs are set"))),
        ("both set, old key", vec![("metallb.io/loadBalancerIPs", "10.0.0.5")], json!({"loadBalancerIP": "10.0.0.7"}),
            Err(("spec.loadBalancerIP", "annotation metallb.io/loadBalancerIPs"))),
        ("garbage", vec![("ferrolb.io/loadBalancerIPs", "nope")], json!({}),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "`nope` is not an IP address"))),
        ("cidr is not an ip", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.5/32")], json!({}),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "`10.0.0.5/32` is not an IP address"))),
        ("trailing comma", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.5,")], json!({}),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "empty entry"))),
        ("two v4", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.5,10.0.0.6")], dual.clone(),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "more than one IPv4 address requested (10.0.0.5 and 10.0.0.6)"))),
        ("v6 on a v4 service", vec![("ferrolb.io/loadBalancerIPs", "fc00::1")], json!({}),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "requested fc00::1 is IPv6 but the Service's ipFamilies are [IPv4]"))),
        ("dual request on single stack", vec![("ferrolb.io/loadBalancerIPs", "10.0.0.1,fc00::1")], json!({}),
            Err(("metadata.annotations[ferrolb.io/loadBalancerIPs]", "is IPv6 but"))),
        ("bad spec ip", vec![], json!({"loadBalancerIP": "10.0.0.300"}),
            Err(("spec.loadBalancerIP", "`10.0.0.300` is not an IP address"))),
        ("v4 spec ip on v6 service", vec![], json!({"ipFamilies": ["IPv6"], "loadBalancerIP": "10.0.0.1"}),
            Err(("spec.loadBalancerIP", "requested 10.0.0.1 is IPv4 but the Service's ipFamilies are [IPv6]"))),
    ];
    for (name, annotations, spec, want) in cases {
        let view = parse_service(&svc(&annotations, spec), None);
        match want {
            Ok((ips, path)) => {
                let req = request(&view);
                let want_ips: Vec<IpAddr> = ips.iter().map(|s| ip(s)).collect();
                assert_eq!(req.requested_ips, want_ips, "{name}");
                if let Some(path) = path {
                    assert_eq!(req.requested_ips_path.as_deref(), Some(path), "{name}");
                }
                for f in Family::ALL {
                    assert_eq!(
                        req.requested_ip(f),
                        want_ips.iter().copied().find(|a| Family::of(*a) == f)
                    );
                }
            }
            Err((path, text)) => {
                let errs = errors(&view);
                assert!(
                    errs.iter()
                        .any(|e| e.path == path && e.to_string().contains(text)),
                    "{name}: {errs:?} lacks {path}: {text}"
                );
            }
        }
    }
}

#[test]
fn families_and_policy() {
    use Family::{V4, V6};
    type Row = (
        &'static str,
        Value,
        Expect<(IpFamilyPolicy, &'static [Family])>,
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("default", json!({}), Ok((IpFamilyPolicy::SingleStack, &[V4]))),
        ("v6 single", json!({"ipFamilies": ["IPv6"]}), Ok((IpFamilyPolicy::SingleStack, &[V6]))),
        ("prefer, one family", json!({"ipFamilyPolicy": "PreferDualStack"}), Ok((IpFamilyPolicy::PreferDualStack, &[V4]))),
        ("prefer, v6 first", json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}),
            Ok((IpFamilyPolicy::PreferDualStack, &[V6, V4]))),
        ("require", json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}),
            Ok((IpFamilyPolicy::RequireDualStack, &[V4, V6]))),
        ("derived from clusterIPs", json!({"ipFamilies": null, "clusterIPs": ["fc00::10", "10.96.0.10"],
            "ipFamilyPolicy": "PreferDualStack"}), Ok((IpFamilyPolicy::PreferDualStack, &[V6, V4]))),
        ("derived, single keeps primary", json!({"ipFamilies": null, "clusterIPs": ["fc00::10", "10.96.0.10"]}),
            Ok((IpFamilyPolicy::SingleStack, &[V6]))),
        ("derived, headless", json!({"ipFamilies": null, "clusterIP": "None"}), Ok((IpFamilyPolicy::SingleStack, &[V4]))),
        ("derived, require completes", json!({"ipFamilies": null, "clusterIP": "fc00::1",
            "ipFamilyPolicy": "RequireDualStack"}), Ok((IpFamilyPolicy::RequireDualStack, &[V6, V4]))),
        ("unknown policy", json!({"ipFamilyPolicy": "DualStack"}), Err(("spec.ipFamilyPolicy", "unknown value `DualStack`"))),
        ("unknown family", json!({"ipFamilies": ["IPv5"]}), Err(("spec.ipFamilies[0]", "unknown value `IPv5`"))),
        ("duplicate family", json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv4"]}),
            Err(("spec.ipFamilies[1]", "IPv4 is listed twice"))),
        ("require with one", json!({"ipFamilyPolicy": "RequireDualStack"}),
            Err(("spec.ipFamilies", "ipFamilyPolicy RequireDualStack does not fit 1 ipFamilies"))),
        ("single with two", json!({"ipFamilies": ["IPv4", "IPv6"]}),
            Err(("spec.ipFamilies", "SingleStack does not fit 2"))),
    ];
    for (name, spec, want) in cases {
        let view = parse_service(&svc(&[], spec), None);
        match want {
            Ok((policy, families)) => {
                let req = request(&view);
                assert_eq!(req.ip_family_policy, policy, "{name}");
                assert_eq!(req.ip_families, families, "{name}");
                assert_eq!(req.primary_family(), families[0], "{name}");
            }
            Err((path, text)) => {
                let errs = errors(&view);
                assert!(
                    errs.iter()
                        .any(|e| e.path == path && e.to_string().contains(text)),
                    "{name}: {errs:?} lacks {path}: {text}"
                );
            }
        }
    }
}

#[test]
fn traffic_policy_ports_and_backend_key() {
    let tcp = |port| PortKey {
        protocol: Protocol::Tcp,
        port,
    };
    let udp = |port| PortKey {
        protocol: Protocol::Udp,
        port,
    };
    type Row = (
        &'static str,
        Value,
        Expect<(TrafficPolicy, Vec<PortKey>, &'static str)>,
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("defaults", json!({}), Ok((TrafficPolicy::Cluster, vec![tcp(80)], ""))),
        ("local uses selector", json!({"externalTrafficPolicy": "Local", "selector": {"b": "2", "a": "1"}}),
            Ok((TrafficPolicy::Local, vec![tcp(80)], "a=1,b=2"))),
        ("local without selector", json!({"externalTrafficPolicy": "Local", "selector": null}),
            Ok((TrafficPolicy::Local, vec![tcp(80)], ""))),
        ("cluster ignores selector", json!({"externalTrafficPolicy": "Cluster"}), Ok((TrafficPolicy::Cluster, vec![tcp(80)], ""))),
        ("ports sorted and deduplicated", json!({"ports": [{"port": 53, "protocol": "UDP"}, {"port": 443},
            {"port": 53, "protocol": "TCP"}, {"port": 443, "protocol": "TCP", "name": "again"}]}),
            Ok((TrafficPolicy::Cluster, vec![tcp(53), tcp(443), udp(53)], ""))),
        ("sctp", json!({"ports": [{"port": 9, "protocol": "SCTP"}]}),
            Ok((TrafficPolicy::Cluster, vec![PortKey { protocol: Protocol::Sctp, port: 9 }], ""))),
        ("no ports", json!({"ports": null}), Ok((TrafficPolicy::Cluster, vec![], ""))),
        ("unknown etp", json!({"externalTrafficPolicy": "Global"}), Err(("spec.externalTrafficPolicy", "unknown value `Global`"))),
        ("unknown protocol", json!({"ports": [{"port": 80, "protocol": "tcp"}]}), Err(("spec.ports[0].protocol", "unknown value `tcp`"))),
        ("port zero", json!({"ports": [{"port": 80}, {"port": 0}]}), Err(("spec.ports[1].port", "port 0 is outside 1-65535"))),
        ("port too big", json!({"ports": [{"port": 65536}]}), Err(("spec.ports[0].port", "port 65536"))),
        ("negative port", json!({"ports": [{"port": -1}]}), Err(("spec.ports[0].port", "port -1"))),
    ];
    for (name, spec, want) in cases {
        let view = parse_service(&svc(&[], spec), None);
        match want {
            Ok((policy, ports, backend)) => {
                let req = request(&view);
                assert_eq!(req.traffic_policy, policy, "{name}");
                assert_eq!(req.ports, ports, "{name}");
                assert_eq!(req.backend_key, backend, "{name}");
            }
            Err((path, text)) => {
                let errs = errors(&view);
                assert!(
                    errs.iter()
                        .any(|e| e.path == path && e.to_string().contains(text)),
                    "{name}: {errs:?} lacks {path}: {text}"
                );
            }
        }
    }
}

#[test]
fn current_allocation_from_status_and_annotation() {
    type Row = (
        &'static str,
        Pairs,
        Value,
        &'static [&'static str],
        Option<&'static str>,
        &'static [&'static str],
    );
    #[rustfmt::skip]
    let cases: Vec<Row> = vec![
        ("nothing", vec![], json!({}), &[], None, &[]),
        ("two ips and pool", vec![("ferrolb.io/ip-allocated-from-pool", "prod")],
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}, {"ip": "fc00::5"}]}}),
            &["10.0.0.5", "fc00::5"], Some("prod"), &[]),
        ("metallb pool annotation", vec![("metallb.io/ip-allocated-from-pool", "old")],
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.5", "ipMode": "VIP"}]}}), &["10.0.0.5"], Some("old"), &[]),
        ("hostname entries skipped", vec![], json!({"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "10.0.0.9"}]}}),
            &["10.0.0.9"], None, &[]),
        ("bad status ip reported", vec![], json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "bogus"}]}}),
            &["10.0.0.1"], None, &["status.loadBalancer.ingress[1].ip"]),
        ("empty ingress", vec![], json!({"loadBalancer": {}}), &[], None, &[]),
    ];
    for (name, annotations, status, ips, pool, error_paths) in cases {
        let mut service = svc(&annotations, json!({}));
        service.status = serde_json::from_value(status).unwrap();
        let view = parse_service(&service, None);
        let want: Vec<IpAddr> = ips.iter().map(|s| ip(s)).collect();
        assert_eq!(view.current.ips, want, "{name}");
        assert_eq!(view.current.pool.as_deref(), pool, "{name}");
        let paths: Vec<&str> = view
            .current_errors
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(paths, error_paths, "{name}");
        assert!(
            view.request.is_ok(),
            "{name}: status problems do not spoil the request"
        );
    }
    // The pool annotation read from an old prefix is reported like the others.
    let view = parse_service(
        &svc(&[("metallb.io/ip-allocated-from-pool", "old")], json!({})),
        None,
    );
    assert_eq!(view.deprecated_annotations.len(), 1);
    assert_eq!(
        view.deprecated_annotations[0].key,
        AnnotationKey::IpAllocatedFromPool
    );
}

#[test]
fn every_error_is_collected() {
    let view = parse_service(
        &svc(
            &[("ferrolb.io/loadBalancerIPs", "x,y")],
            json!({"ipFamilyPolicy": "Nope", "externalTrafficPolicy": "Nope", "ports": [{"port": 0}]}),
        ),
        None,
    );
    let paths: Vec<&str> = errors(&view).iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.ipFamilyPolicy",
            "metadata.annotations[ferrolb.io/loadBalancerIPs]",
            "metadata.annotations[ferrolb.io/loadBalancerIPs]",
            "spec.externalTrafficPolicy",
            "spec.ports[0].port",
        ]
    );
    // An object without spec or metadata parses without panicking.
    let view = parse_service(&Service::default(), None);
    assert_eq!(view.handling, Handling::NotLoadBalancer);
    assert!(view.request.is_ok());
}

fn annotation_key() -> impl Strategy<Value = String> {
    let known = prop::sample::select(
        AnnotationKey::ALL
            .iter()
            .flat_map(|k| {
                ["ferrolb.io/", "metallb.io/", "metallb.universe.tf/"]
                    .iter()
                    .map(move |p| format!("{p}{}", k.name()))
            })
            .collect::<Vec<_>>(),
    );
    prop_oneof![4 => known, 1 => "\\PC{0,20}"]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        "[0-9a-f:., ]{0,40}",
        prop::collection::vec(
            prop_oneof![
                "10\\.0\\.0\\.[0-9]{1,3}",
                "fc00::[0-9a-f]{1,4}",
                "[ ,]{0,2}"
            ],
            0..4
        )
        .prop_map(|v| v.join(",")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(
        annotations in prop::collection::btree_map(annotation_key(), value(), 0..8),
        lb_ip in prop::option::of(value()),
        policy in prop::option::of(prop_oneof![Just("SingleStack".to_owned()), Just("PreferDualStack".to_owned()),
            Just("RequireDualStack".to_owned()), "\\PC{0,12}"]),
        families in prop::option::of(prop::collection::vec(prop_oneof![Just("IPv4".to_owned()), Just("IPv6".to_owned()), "\\PC{0,6}"], 0..3)),
        etp in prop::option::of("\\PC{0,8}"),
        class in prop::option::of(prop_oneof![Just("c".to_owned()), "\\PC{0,8}"]),
        ports in prop::collection::vec((any::<i32>(), prop::option::of("\\PC{0,5}")), 0..4),
        status_ips in prop::collection::vec(prop::option::of(value()), 0..3),
    ) {
        let annotation_pairs: Vec<(&str, &str)> =
            annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ports: Vec<Value> = ports.iter().map(|(p, proto)| json!({"port": p, "protocol": proto})).collect();
        let mut service = svc(&annotation_pairs, json!({
            "loadBalancerIP": lb_ip, "ipFamilyPolicy": policy, "ipFamilies": families,
            "externalTrafficPolicy": etp, "loadBalancerClass": class, "ports": ports,
        }));
        service.status = serde_json::from_value(json!({"loadBalancer": {"ingress":
            status_ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}})).unwrap();
        for configured in [None, Some("c")] {
            let view = parse_service(&service, configured);
            if let Ok(req) = &view.request {
                prop_assert!(req.requested_ips.len() <= 2);
                prop_assert!(!req.ip_families.is_empty() && req.ip_families.len() <= 2);
                for ip in &req.requested_ips {
                    prop_assert!(req.ip_families.contains(&Family::of(*ip)));
                }
                prop_assert!(req.ports.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(req.ports.iter().all(|p| p.port != 0));
            } else if let Err(errs) = &view.request {
                prop_assert!(!errs.is_empty());
                for e in errs {
                    prop_assert!(!e.path.is_empty() && !e.to_string().is_empty());
                }
            }
            for d in &view.deprecated_annotations {
                prop_assert!(annotations.contains_key(&d.used));
            }
        }
    }
}
