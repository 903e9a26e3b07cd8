//! The restart rule: addresses in Service status are taken back before anything new is
//! allocated, so a controller restart changes no address.

mod reconcile_support;

use std::collections::BTreeMap;
use std::time::Duration;

use reconcile_support::*;
use serde_json::json;

fn with_status(name: &str, ip: &str) -> serde_json::Value {
    let mut s = service(name);
    s["metadata"]["annotations"] = json!({"ferrolb.io/ip-allocated-from-pool": "p"});
    s["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    s
}

#[tokio::test]
async fn preseeded_status_addresses_are_kept_and_new_services_get_others() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/29"])).expect("pool");
    // `zz` holds the lowest address, which a fresh lowest-first allocation would give to
    // `aa` (sorted first); `mm` holds one in the middle.
    server.insert(with_status("zz", "10.0.0.0")).expect("zz");
    server.insert(with_status("mm", "10.0.0.2")).expect("mm");
    server.insert(service("aa")).expect("aa");
    server.insert(service("bb")).expect("bb");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    for n in ["zz", "mm", "aa", "bb"] {
        wait_condition(&server, n, "True").await;
    }
    assert_eq!(ingress(&server, "zz"), vec!["10.0.0.0"]);
    assert_eq!(ingress(&server, "mm"), vec!["10.0.0.2"]);
    assert_eq!(ingress(&server, "aa"), vec!["10.0.0.1"]);
    assert_eq!(ingress(&server, "bb"), vec!["10.0.0.3"]);
    // A pre-seeded address outside every pool is cleared with an Event and replaced.
    ctl.stop().await;
    server
        .insert(with_status("gone", "192.168.0.1"))
        .expect("gone");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    wait("gone re-allocated", Duration::from_secs(20), || {
        ingress(&server, "gone") == vec!["10.0.0.4".to_owned()]
    })
    .await;
    let evs = events(&server, "gone").await;
    assert!(
        evs.iter()
            .any(|e| e.1 == "ClearAssignment" && e.2.contains("192.168.0.1")),
        "{evs:?}"
    );
    assert_eq!(ingress(&server, "zz"), vec!["10.0.0.0"]);
    ctl.stop().await;
    server.shutdown().await;
}

/// Number of Services of the scale test: 2,000 by default (each costs three API writes
/// against the in-memory server in a debug build); `FERROLB_RESTART_SCALE=10000` runs the
/// brief's 10,000 (about 75 s in a debug build, 13 s with `--release`). The allocator's
/// own restart test covers 10,000 without the API server.
fn scale() -> usize {
    std::env::var("FERROLB_RESTART_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_at_scale_changes_no_address() {
    let scale = scale();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "ferrolb_controller=info",
        ))
        .with_test_writer()
        .try_init();
    let server = server().await;
    server.insert(pool("big", &["10.0.0.0/16"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    for i in 0..scale {
        server
            .insert(service(&format!("s{i:05}")))
            .expect("service");
    }
    wait("every Service allocated", Duration::from_secs(300), || {
        get_pool(&server, "big").is_some_and(|p| {
            p["status"]["assignedIPv4"].as_str() == Some(scale.to_string().as_str())
        })
    })
    .await;
    let snapshot = |server: &ferrolb_e2e::apiserver::ApiServer| -> BTreeMap<String, Vec<String>> {
        (0..scale)
            .map(|i| {
                let n = format!("s{i:05}");
                let ips = ingress(server, &n);
                (n, ips)
            })
            .collect()
    };
    wait("every status written", Duration::from_secs(300), || {
        snapshot(&server).values().all(|ips| ips.len() == 1)
    })
    .await;
    let before = snapshot(&server);
    ctl.stop().await;
    // Free some low addresses while the controller is down, so a naive restart would
    // hand them to the Services listed first.
    let client = server.client().expect("client");
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client, "default");
    for i in [scale - 1, scale - 2] {
        api.delete(&format!("s{i:05}"), &Default::default())
            .await
            .expect("delete");
    }
    let patches = server.request_count("patch");
    let started = std::time::Instant::now();
    let ctl = Controller::start(&server);
    ctl.ready().await;
    // Informational only (debug build, in-memory server); no timing is asserted.
    eprintln!(
        "restart with {scale} Services: ready after {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = snapshot(&server);
    let changed = (0..scale - 2)
        .map(|i| format!("s{i:05}"))
        .filter(|n| before[n] != after[n])
        .count();
    assert_eq!(changed, 0, "no address may change across a restart");
    // Only the pool counters were rewritten (two Services fewer), no Service.
    let writes = server.request_count("patch") - patches;
    assert!(writes <= 1, "{writes} patches after a restart");
    ctl.stop().await;
    server.shutdown().await;
}
