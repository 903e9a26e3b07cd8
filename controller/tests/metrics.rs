//! The reconciler's metrics against the in-memory API server: pool gauges per family,
//! allocation, failure and release counters, pending Services, leadership and the
//! reconcile histogram.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use serde_json::json;

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

#[tokio::test]
async fn metrics_follow_allocations_failures_and_releases() {
    let server = server().await;
    server
        .insert(pool("main", &["10.0.0.0/29", "fd00::/120"]))
        .expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    let metrics = ctl.handle.metrics().clone();

    for name in ["a", "b"] {
        server.insert(service(name)).expect("service");
    }
    let mut dual = service("dual");
    dual["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    dual["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    server.insert(dual).expect("dual");
    let mut outside = service("outside");
    outside["metadata"]["annotations"] = json!({"ferrolb.io/loadBalancerIPs": "192.168.1.1"});
    server.insert(outside).expect("outside");
    let mut unknown = service("unknown-pool");
    unknown["metadata"]["annotations"] = json!({"ferrolb.io/address-pool": "nope"});
    server.insert(unknown).expect("unknown-pool");
    for name in ["a", "b", "dual"] {
        wait_condition(&server, name, "True").await;
    }
    for name in ["outside", "unknown-pool"] {
        wait_condition(&server, name, "False").await;
    }

    let want = [
        (
            "ferrolb_pool_addresses_total{pool=\"main\",family=\"IPv4\"}",
            "8",
        ),
        (
            "ferrolb_pool_addresses_used{pool=\"main\",family=\"IPv4\"}",
            "3",
        ),
        (
            "ferrolb_pool_addresses_free{pool=\"main\",family=\"IPv4\"}",
            "5",
        ),
        (
            "ferrolb_pool_addresses_total{pool=\"main\",family=\"IPv6\"}",
            "256",
        ),
        (
            "ferrolb_pool_addresses_used{pool=\"main\",family=\"IPv6\"}",
            "1",
        ),
        (
            "ferrolb_pool_addresses_free{pool=\"main\",family=\"IPv6\"}",
            "255",
        ),
        (
            "ferrolb_allocations_total{pool=\"main\",family=\"IPv4\"}",
            "3",
        ),
        (
            "ferrolb_allocations_total{pool=\"main\",family=\"IPv6\"}",
            "1",
        ),
        (
            "ferrolb_allocation_failures_total{reason=\"RequestedIPUnavailable\"}",
            "1",
        ),
        ("ferrolb_allocation_failures_total{reason=\"NoPool\"}", "1"),
        (
            "ferrolb_allocation_failures_total{reason=\"PoolExhausted\"}",
            "0",
        ),
        (
            "ferrolb_allocation_failures_total{reason=\"InvalidRequest\"}",
            "0",
        ),
        ("ferrolb_releases_total", "0"),
        ("ferrolb_services_pending", "2"),
        ("ferrolb_config_valid", "1"),
        ("ferrolb_leader", "1"),
        (
            "ferrolb_api_write_errors_total{write=\"ServiceStatus\"}",
            "0",
        ),
    ];
    // The conditions are written after the registry is updated, but poll anyway.
    wait("metrics after allocation", Duration::from_secs(20), || {
        let text = metrics.render();
        want.iter()
            .all(|(s, v)| sample(&text, s).as_deref() == Some(*v))
    })
    .await;
    let text = metrics.render();
    let batches: u64 = sample(&text, "ferrolb_reconcile_duration_seconds_count")
        .expect("histogram count")
        .parse()
        .expect("count");
    assert!(batches > 0, "{text}");
    assert_eq!(
        sample(
            &text,
            "ferrolb_reconcile_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(batches.to_string()),
        "+Inf bucket equals the count"
    );

    // Deleting an allocated Service releases its address.
    let client = server.client().expect("client");
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client, "default");
    api.delete("a", &Default::default()).await.expect("delete");
    wait("metrics after release", Duration::from_secs(20), || {
        let text = metrics.render();
        sample(&text, "ferrolb_releases_total").as_deref() == Some("1")
            && sample(
                &text,
                "ferrolb_pool_addresses_used{pool=\"main\",family=\"IPv4\"}",
            )
            .as_deref()
                == Some("2")
    })
    .await;
    let text = metrics.render();
    // Counters never go down; nothing new was allocated or failed.
    assert_eq!(
        sample(
            &text,
            "ferrolb_allocations_total{pool=\"main\",family=\"IPv4\"}"
        )
        .as_deref(),
        Some("3")
    );
    assert_eq!(
        sample(
            &text,
            "ferrolb_allocation_failures_total{reason=\"NoPool\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&text, "ferrolb_services_pending").as_deref(),
        Some("2")
    );

    ctl.stop().await;
    // A stopped controller no longer leads and exports no pool usage.
    let text = metrics.render();
    assert_eq!(sample(&text, "ferrolb_leader").as_deref(), Some("0"));
    assert!(!text.contains("ferrolb_pool_addresses_used{"), "{text}");
    server.shutdown().await;
}
