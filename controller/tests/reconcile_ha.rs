//! Two controllers with Lease-based leader election against one API server: only the
//! leader writes, no address is handed out twice, and the standby takes over when the
//! leader stops.

mod reconcile_support;

use std::collections::BTreeSet;
use std::time::Duration;

use ferrolb_controller::reconcile::{LeaderElection, Options};
use reconcile_support::*;

fn ha_options(identity: &str) -> Options {
    let mut o = Options::new(NS);
    let mut le = LeaderElection::new(identity);
    le.duration_secs = 3;
    le.grace_secs = 1;
    o.leader_election = Some(le);
    o.instance = Some(identity.into());
    o
}

fn all_ips(server: &ferrolb_e2e::apiserver::ApiServer, names: &[String]) -> Vec<String> {
    names.iter().flat_map(|n| ingress(server, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_without_duplicates() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/24"])).expect("pool");
    let a = Controller::start_with(&server, ha_options("ctl-a"));
    let b = Controller::start_with(&server, ha_options("ctl-b"));
    wait("a leader", Duration::from_secs(30), || {
        a.handle.is_leader() || b.handle.is_leader()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        a.handle.is_leader() ^ b.handle.is_leader(),
        "exactly one leader"
    );
    let (leader, standby) = if a.handle.is_leader() { (a, b) } else { (b, a) };
    leader.ready().await;
    wait("standby synced", Duration::from_secs(30), || {
        standby.handle.is_synced()
    })
    .await;
    assert!(!standby.handle.is_ready(), "a standby never decides");

    let mut names: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
    for n in &names {
        server.insert(service(n)).expect("service");
    }
    for n in &names {
        wait_condition(&server, n, "True").await;
    }
    let before: Vec<Vec<String>> = names.iter().map(|n| ingress(&server, n)).collect();
    let ips = all_ips(&server, &names);
    assert_eq!(ips.len(), names.len());
    assert_eq!(
        ips.iter().collect::<BTreeSet<_>>().len(),
        ips.len(),
        "duplicate address: {ips:?}"
    );
    // Only the leader reported Events.
    let client = server.client().expect("client");
    let api: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client, "default");
    let evs = api.list(&Default::default()).await.expect("events");
    let instances: BTreeSet<String> = evs
        .items
        .iter()
        .filter_map(|e| e.reporting_instance.clone())
        .collect();
    assert_eq!(instances.len(), 1, "{instances:?}");

    // The leader stops (releasing the Lease); the standby takes over.
    leader.stop().await;
    wait("takeover", Duration::from_secs(30), || {
        standby.handle.is_ready()
    })
    .await;
    let more: Vec<String> = (20..30).map(|i| format!("s{i:02}")).collect();
    for n in &more {
        server.insert(service(n)).expect("service");
    }
    for n in &more {
        wait_condition(&server, n, "True").await;
    }
    let after: Vec<Vec<String>> = names.iter().map(|n| ingress(&server, n)).collect();
    assert_eq!(before, after, "takeover moved an address");
    names.extend(more);
    let ips = all_ips(&server, &names);
    assert_eq!(ips.len(), names.len());
    assert_eq!(
        ips.iter().collect::<BTreeSet<_>>().len(),
        ips.len(),
        "duplicate address: {ips:?}"
    );
    standby.stop().await;
    server.shutdown().await;
}
