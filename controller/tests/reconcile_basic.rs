//! Reconciler against the in-memory API server: allocation writes, bad input, invalid
//! configuration, deletion and type changes.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use serde_json::json;

#[tokio::test]
async fn new_service_gets_status_annotation_condition_and_event() {
    let server = server().await;
    server.insert(pool("main", &["10.0.0.0/30"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("web")).expect("service");
    let (status, reason, message) = wait_condition(&server, "web", "True").await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Allocated"));
    assert!(message.contains("10.0.0.0"), "{message}");
    assert_eq!(ingress(&server, "web"), vec!["10.0.0.0"]);
    let svc = get_service(&server, "web").expect("svc");
    assert_eq!(
        svc["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"],
        "main"
    );
    let evs = events(&server, "web").await;
    assert!(
        evs.iter()
            .any(|(t, r, n)| t == "Normal" && r == "IPAllocated" && n.contains("10.0.0.0")),
        "{evs:?}"
    );
    // Pool counters are exact decimal strings.
    wait("pool counters", Duration::from_secs(10), || {
        get_pool(&server, "main").is_some_and(|p| {
            p["status"]["assignedIPv4"] == "1" && p["status"]["availableIPv4"] == "3"
        })
    })
    .await;
    let p = get_pool(&server, "main").expect("pool");
    assert_eq!(p["status"]["assignedIPv6"], "0");
    assert_eq!(condition(&p, "Valid").expect("Valid")["status"], "True");
    // Nothing more is written once converged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let patches = server.request_count("patch");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.request_count("patch"),
        patches,
        "writes without a change"
    );
    // A Service whose status was wiped gets its own address back.
    server
        .insert(service("web"))
        .expect("same service, no status");
    wait("status restored", Duration::from_secs(20), || {
        ingress(&server, "web") == vec!["10.0.0.0".to_owned()]
    })
    .await;
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_stays_pending_with_reason_and_warning() {
    let server = server().await;
    server.insert(pool("v4", &["10.0.0.0/29"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("owner")).expect("owner");
    wait_condition(&server, "owner", "True").await;
    let owner_ip = ingress(&server, "owner");
    assert_eq!(owner_ip, vec!["10.0.0.0"]);

    let mut cases = Vec::new();
    let mut s = service("outside");
    s["metadata"]["annotations"] = json!({"ferrolb.io/loadBalancerIPs": "192.168.1.1"});
    cases.push((s, "RequestedIPUnavailable", "192.168.1.1"));
    let mut s = service("wrong-family");
    s["metadata"]["annotations"] = json!({"ferrolb.io/loadBalancerIPs": "fd00::1"});
    cases.push((s, "InvalidRequest", "fd00::1"));
    let mut s = service("taken");
    s["metadata"]["annotations"] = json!({"ferrolb.io/loadBalancerIPs": "10.0.0.0"});
    cases.push((s, "RequestedIPUnavailable", "10.0.0.0"));
    let mut s = service("both");
    s["metadata"]["annotations"] = json!({"ferrolb.io/loadBalancerIPs": "10.0.0.5"});
    s["spec"]["loadBalancerIP"] = json!("10.0.0.5");
    cases.push((s, "InvalidRequest", "spec.loadBalancerIP"));
    let mut s = service("unknown-pool");
    s["metadata"]["annotations"] = json!({"ferrolb.io/address-pool": "nope"});
    cases.push((s, "NoPool", "nope"));
    let mut s = service("dual");
    s["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    s["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    cases.push((s, "DualStackUnavailable", ""));

    for (obj, _, _) in &cases {
        server.insert(obj.clone()).expect("insert");
    }
    for (obj, reason, needle) in &cases {
        let name = obj["metadata"]["name"].as_str().expect("name");
        let (_, got, message) = wait_condition(&server, name, "False").await;
        assert_eq!(&got, reason, "{name}: {message}");
        assert!(
            message.contains(needle),
            "{name}: `{message}` should name `{needle}`"
        );
        assert!(
            ingress(&server, name).is_empty(),
            "{name} must stay pending"
        );
        let svc = get_service(&server, name).expect("svc");
        assert!(svc["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"].is_null());
    }
    for (obj, _, _) in &cases {
        let name = obj["metadata"]["name"].as_str().expect("name");
        let mut evs = Vec::new();
        for _ in 0..100 {
            evs = events(&server, name).await;
            if !evs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            evs.iter()
                .any(|(t, r, _)| t == "Warning" && r == "AllocationFailed"),
            "{name}: {evs:?}"
        );
    }
    // Nothing else moved.
    assert_eq!(ingress(&server, "owner"), owner_ip);
    let p = get_pool(&server, "v4").expect("pool");
    assert_eq!(p["status"]["assignedIPv4"], "1");
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_config_keeps_last_good_and_marks_the_object() {
    let server = server().await;
    server.insert(pool("good", &["10.0.0.0/30"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("a")).expect("a");
    wait_condition(&server, "a", "True").await;
    // An overlapping pool makes the whole snapshot invalid.
    server
        .insert(pool("bad", &["10.0.0.2/31", "10.9.0.0/30"]))
        .expect("bad pool");
    wait(
        "Valid=False on the bad pool",
        Duration::from_secs(20),
        || {
            get_pool(&server, "bad")
                .and_then(|p| condition(&p, "Valid"))
                .is_some_and(|c| c["status"] == "False")
        },
    )
    .await;
    let c = condition(&get_pool(&server, "bad").expect("bad"), "Valid").expect("cond");
    assert_eq!(c["reason"], "ConfigurationError");
    assert!(
        c["message"]
            .as_str()
            .expect("msg")
            .contains("spec.addresses"),
        "{c}"
    );
    // The last good configuration keeps running: new Services still get `good` addresses,
    // never one of the rejected pool's.
    server.insert(service("b")).expect("b");
    server.insert(service("c")).expect("c");
    server.insert(service("d")).expect("d");
    server.insert(service("e")).expect("e");
    for n in ["b", "c", "d"] {
        wait_condition(&server, n, "True").await;
        let svc = get_service(&server, n).expect("svc");
        assert_eq!(
            svc["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"],
            "good"
        );
    }
    let (_, reason, _) = wait_condition(&server, "e", "False").await;
    assert_eq!(reason, "PoolExhausted");
    assert_eq!(ingress(&server, "a"), vec!["10.0.0.0"]);
    // Fixing the bad pool applies it and the pending Service gets an address from it.
    server.insert(pool("bad", &["10.9.0.0/30"])).expect("fixed");
    let (_, reason, _) = wait_condition(&server, "e", "True").await;
    assert_eq!(reason, "Allocated");
    assert_eq!(ingress(&server, "e"), vec!["10.9.0.0"]);
    wait("Valid=True after the fix", Duration::from_secs(20), || {
        get_pool(&server, "bad")
            .and_then(|p| condition(&p, "Valid"))
            .is_some_and(|c| c["status"] == "True")
    })
    .await;
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn deletion_frees_the_ip_for_a_pending_service() {
    let server = server().await;
    server.insert(pool("one", &["10.0.0.7/32"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("first")).expect("first");
    wait_condition(&server, "first", "True").await;
    server.insert(service("second")).expect("second");
    let (_, reason, _) = wait_condition(&server, "second", "False").await;
    assert_eq!(reason, "PoolExhausted");
    let client = server.client().expect("client");
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client, "default");
    api.delete("first", &Default::default())
        .await
        .expect("delete");
    // The only address leaves quarantine at once because the pool has no other free one.
    wait_condition(&server, "second", "True").await;
    assert_eq!(ingress(&server, "second"), vec!["10.0.0.7"]);
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn pool_shrink_reallocates_with_clear_assignment() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/30"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("a")).expect("a");
    server.insert(service("b")).expect("b");
    for n in ["a", "b"] {
        wait_condition(&server, n, "True").await;
    }
    assert_eq!(ingress(&server, "a"), vec!["10.0.0.0"]);
    assert_eq!(ingress(&server, "b"), vec!["10.0.0.1"]);
    // The pool loses 10.0.0.0: `a` moves, `b` stays.
    server
        .insert(pool("p", &["10.0.0.1/32", "10.0.0.2/31"]))
        .expect("shrink");
    wait("a moved", Duration::from_secs(20), || {
        ingress(&server, "a") == vec!["10.0.0.2".to_owned()]
    })
    .await;
    assert_eq!(ingress(&server, "b"), vec!["10.0.0.1"]);
    let mut evs = Vec::new();
    for _ in 0..100 {
        evs = events(&server, "a").await;
        if evs.iter().any(|e| e.1 == "ClearAssignment") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        evs.iter()
            .any(|e| e.1 == "ClearAssignment" && e.2.contains("10.0.0.0")),
        "{evs:?}"
    );
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn type_change_releases_and_clears() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/31"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("lb")).expect("lb");
    wait_condition(&server, "lb", "True").await;
    let mut s = get_service(&server, "lb").expect("svc");
    s["spec"]["type"] = json!("ClusterIP");
    server.insert(s).expect("to ClusterIP");
    wait("cleared", Duration::from_secs(20), || {
        ingress(&server, "lb").is_empty() && ready_condition(&server, "lb").is_none()
    })
    .await;
    let svc = get_service(&server, "lb").expect("svc");
    assert!(svc["metadata"]["annotations"]["ferrolb.io/ip-allocated-from-pool"].is_null());
    wait("pool freed", Duration::from_secs(10), || {
        get_pool(&server, "p").is_some_and(|p| p["status"]["assignedIPv4"] == "0")
    })
    .await;
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn deprecated_annotation_warns_and_other_classes_are_ignored() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/29"])).expect("pool");
    server.insert(pool("q", &["10.1.0.0/29"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    let mut s = service("legacy");
    s["metadata"]["annotations"] = json!({"metallb.io/address-pool": "q"});
    server.insert(s).expect("legacy");
    let mut other = service("other");
    other["spec"]["loadBalancerClass"] = json!("example.com/other");
    server.insert(other).expect("other");
    wait_condition(&server, "legacy", "True").await;
    assert_eq!(ingress(&server, "legacy"), vec!["10.1.0.0"]);
    let mut evs = Vec::new();
    for _ in 0..100 {
        evs = events(&server, "legacy").await;
        if evs.iter().any(|e| e.1 == "DeprecatedAnnotation") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        evs.iter().any(|(t, r, n)| t == "Warning"
            && r == "DeprecatedAnnotation"
            && n.contains("ferrolb.io/address-pool")),
        "{evs:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ingress(&server, "other").is_empty());
    assert!(ready_condition(&server, "other").is_none());
    ctl.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn namespace_labels_select_pools() {
    let server = server().await;
    let mut p = pool("team", &["10.5.0.0/30"]);
    p["spec"]["serviceAllocation"] = json!({
        "priority": 1,
        "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
    });
    server.insert(p).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(service("s")).expect("s");
    let (_, reason, _) = wait_condition(&server, "s", "False").await;
    assert_eq!(reason, "NoPool");
    // Labelling the namespace makes the pool select the pending Service.
    server
        .insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "labels": {"team": "a"}}}))
        .expect("label namespace");
    wait_condition(&server, "s", "True").await;
    assert_eq!(ingress(&server, "s"), vec!["10.5.0.0"]);
    ctl.stop().await;
    server.shutdown().await;
}
