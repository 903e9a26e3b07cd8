//! Reconciler against the in-memory API server: two Services with the same sharing key and
//! different protocols on the same port share one IP; a third with the same key and an
//! overlapping port does not.

mod reconcile_support;

use std::time::Duration;

use reconcile_support::*;
use serde_json::{Value, json};

fn shared(name: &str, protocol: &str) -> Value {
    let mut svc = service(name);
    svc["metadata"]["annotations"] = json!({ "ferrolb.io/allow-shared-ip": "dns" });
    svc["spec"]["ports"] = json!([{ "name": "dns", "port": 53, "protocol": protocol }]);
    svc
}

#[tokio::test]
async fn same_key_different_protocols_share_one_ip() {
    let server = server().await;
    server.insert(pool("main", &["10.0.0.0/29"])).expect("pool");
    let ctl = Controller::start(&server);
    ctl.ready().await;
    server.insert(shared("dns-tcp", "TCP")).expect("tcp");
    server.insert(shared("dns-udp", "UDP")).expect("udp");
    wait("both allocated", Duration::from_secs(20), || {
        !ingress(&server, "dns-tcp").is_empty() && !ingress(&server, "dns-udp").is_empty()
    })
    .await;
    assert_eq!(ingress(&server, "dns-tcp"), ingress(&server, "dns-udp"));
    // Same key and the same (protocol, port): the IP cannot be shared, so it gets another one.
    server.insert(shared("dns-tcp-2", "TCP")).expect("tcp 2");
    wait("third allocated", Duration::from_secs(20), || {
        !ingress(&server, "dns-tcp-2").is_empty()
    })
    .await;
    assert_ne!(ingress(&server, "dns-tcp-2"), ingress(&server, "dns-tcp"));
    ctl.stop().await;
}
