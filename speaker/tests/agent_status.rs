//! `ServiceBGPStatus` writing (`agent::status::sync`) against the in-memory API server:
//! the listing mode (first run, after an error, periodic) repairs outdated objects and
//! deletes stale and foreign-shaped ones of this node, never another node's; the
//! difference mode writes only what changed since the previous successful run.

#[allow(
    dead_code,
    reason = "shared helpers; this test needs only the API server"
)]
mod agent_common;
use agent_common::api_with_crds;
use std::collections::BTreeMap;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_speaker::agent::status::{desired_object, object_name, sync};
use ferrolb_speaker::decide::{BgpStatus, ServiceKey};
use serde_json::{Value, json};

const NS: &str = "ferrolb-system";

fn st(node: &str, peers: &[&str]) -> BgpStatus {
    BgpStatus {
        node: node.into(),
        peers: peers.iter().map(|p| (*p).into()).collect(),
    }
}

fn statuses(entries: &[(&str, &[&str])]) -> BTreeMap<ServiceKey, BgpStatus> {
    entries
        .iter()
        .map(|(name, peers)| (ServiceKey::new("default", *name), st("node1", peers)))
        .collect()
}

/// The object as ferrolb would write it, as JSON.
fn object(node: &str, svc: &str, peers: &[&str]) -> Value {
    let (_, obj) = desired_object(node, NS, &ServiceKey::new("default", svc), &st(node, peers));
    let mut v = serde_json::to_value(obj).expect("json");
    v["apiVersion"] = json!("ferrolb.io/v1beta1");
    v["kind"] = json!("ServiceBGPStatus");
    v
}

fn get(api: &ApiServer, name: &str) -> Option<Value> {
    api.object("ferrolb.io/v1beta1", "ServiceBGPStatus", Some(NS), name)
}

fn peers_of(api: &ApiServer, name: &str) -> Option<Vec<String>> {
    let o = get(api, name)?;
    Some(
        o["status"]["peers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn listing_repairs_and_differences_write_only_changes() {
    let api = api_with_crds().await;
    let client = api.client().expect("client");
    // Before the first run: an outdated object, a stale one, a foreign-shaped one of this
    // node (its name does not match its labels) and another node's object.
    api.insert(object("node1", "web", &["old-peer"]))
        .expect("web");
    api.insert(object("node1", "gone", &["tor"])).expect("gone");
    let mut foreign = object("node1", "db", &["tor"]);
    foreign["metadata"]["name"] = json!("handmade");
    api.insert(foreign).expect("foreign");
    api.insert(object("node2", "web", &["tor"])).expect("node2");

    let first = statuses(&[("web", &["tor"]), ("db", &["tor", "tor6"])]);
    sync(&client, NS, "node1", &first, None)
        .await
        .expect("listing sync");
    assert_eq!(
        peers_of(&api, "node1-default-web"),
        Some(vec!["tor".into()])
    );
    assert_eq!(
        peers_of(&api, "node1-default-db"),
        Some(vec!["tor".into(), "tor6".into()])
    );
    assert!(get(&api, "node1-default-gone").is_none(), "stale deleted");
    assert!(get(&api, "handmade").is_none(), "foreign-shaped deleted");
    assert_eq!(
        peers_of(&api, "node2-default-web"),
        Some(vec!["tor".into()]),
        "another node's object is untouched"
    );
    let labels = &get(&api, "node1-default-db").expect("db")["metadata"]["labels"];
    assert_eq!(labels["ferrolb.io/node"], "node1");
    assert_eq!(labels["ferrolb.io/service-name"], "db");
    assert_eq!(labels["ferrolb.io/service-namespace"], "default");

    // Difference mode: web changes, db goes, api comes. An object changed behind the
    // speaker's back for an unchanged key is not looked at (the periodic listing
    // repairs it).
    let web_rv =
        get(&api, "node1-default-web").expect("web")["metadata"]["resourceVersion"].clone();
    let second = statuses(&[("web", &["tor"]), ("api", &["tor6"])]);
    api.insert(object("node1", "tampered", &["x"]))
        .expect("tampered");
    sync(&client, NS, "node1", &second, Some(&first))
        .await
        .expect("difference sync");
    assert_eq!(
        get(&api, "node1-default-web").expect("web")["metadata"]["resourceVersion"],
        web_rv,
        "unchanged object not written"
    );
    assert!(get(&api, "node1-default-db").is_none(), "db deleted");
    assert_eq!(
        peers_of(&api, "node1-default-api"),
        Some(vec!["tor6".into()])
    );
    assert!(get(&api, "node1-default-tampered").is_some());

    // The next listing removes what the difference mode did not know about.
    sync(&client, NS, "node1", &second, None)
        .await
        .expect("listing sync");
    assert!(get(&api, "node1-default-tampered").is_none());
    assert_eq!(
        get(&api, "node1-default-web").expect("web")["metadata"]["resourceVersion"],
        web_rv,
        "an up-to-date object is not rewritten by the listing either"
    );
    assert_eq!(
        object_name("node1", &ServiceKey::new("default", "api")),
        "node1-default-api"
    );
}
