//! Watch semantics of the in-memory API server through kube-rs: raw watch events, the
//! `watcher` state machine (list then watch, streaming lists), 410 Gone recovery, bookmarks,
//! timeouts, selector transitions and simulated outages.

use std::time::Duration;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

/// Upper bound for anything that should happen "soon"; a liveness guard, not a timing target.
const SOON: Duration = Duration::from_secs(20);

async fn server_with(opts: ApiServerOptions) -> (ApiServer, Api<ConfigMap>) {
    let server = ApiServer::start(opts).await.expect("start");
    let client: Client = server.client().expect("client");
    (server, Api::namespaced(client, "default"))
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
        .expect("configmap")
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(SOON, stream.next())
        .await
        .expect("an event in time")
        .expect("stream still open")
}

fn describe(ev: &WatchEvent<ConfigMap>) -> String {
    match ev {
        WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

/// Collects raw watch events (bookmarks skipped) until `count` are seen.
async fn collect<S>(stream: &mut S, count: usize) -> Vec<String>
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < count {
        let ev = next(stream).await.expect("watch event");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            out.push(describe(&ev));
        }
    }
    out
}

#[tokio::test]
async fn raw_watch_reports_added_modified_deleted_in_order() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    cms.create(&PostParams::default(), &cm("old", json!({})))
        .await
        .expect("create");
    let rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut from_rv = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut from_zero = cms
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .expect("create b");
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .expect("modify b");
    cms.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    assert_eq!(
        collect(&mut from_rv, 3).await,
        ["ADDED b", "MODIFIED b", "DELETED b"]
    );
    assert_eq!(
        collect(&mut from_zero, 4).await,
        ["ADDED old", "ADDED b", "MODIFIED b", "DELETED b"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watcher_sees_changes_in_order() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create a");
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    loop {
        match next(&mut events).await.expect("watcher event") {
            watcher::Event::Init => seen.push("init".to_string()),
            watcher::Event::InitApply(o) => seen.push(format!("init-apply {}", o.name_any())),
            watcher::Event::InitDone => break,
            other => panic!("unexpected before InitDone: {other:?}"),
        }
    }
    assert_eq!(seen, ["init", "init-apply a"]);
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .expect("create b");
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .expect("modify b");
    cms.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    let mut changes = Vec::new();
    while changes.len() < 3 {
        match next(&mut events).await.expect("watcher event") {
            watcher::Event::Apply(o) => {
                changes.push(format!("apply {} {:?}", o.name_any(), o.data))
            }
            watcher::Event::Delete(o) => changes.push(format!("delete {}", o.name_any())),
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(
        changes,
        ["apply b None", "apply b Some({\"k\": \"v\"})", "delete b"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn expired_resource_version_is_gone() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    let old = server.resource_version().to_string();
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create");
    server.compact();
    let mut stream = cms
        .watch(&WatchParams::default(), &old)
        .await
        .expect("watch")
        .boxed();
    match next(&mut stream).await.expect("event") {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {}", describe(&other)),
    }
    let exact = ListParams::default()
        .at(&old)
        .matching(kube::api::VersionMatch::Exact);
    match cms.list(&exact).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410 for an exact list of an old version, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn watcher_relists_after_gone_and_converges() {
    let (server, cms) = server_with(ApiServerOptions {
        history_limit: 4,
        ..Default::default()
    })
    .await;
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create a");
    let mut events = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while !matches!(next(&mut events).await, Ok(watcher::Event::InitDone)) {}
    let lists_before = server.request_count("list configmaps");
    server.pause();
    for i in 0..10 {
        server
            .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("n{i}"), "namespace": "default"}}))
            .expect("seed");
    }
    server.resume();
    // The resumed watch gets 410 (its version fell out of the 4-event history) and relists.
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await {
            Ok(watcher::Event::InitApply(o)) => relisted.push(o.name_any()),
            Ok(watcher::Event::InitDone) if !relisted.is_empty() => break,
            _ => {}
        }
    }
    relisted.sort();
    let mut want: Vec<String> = (0..10)
        .map(|i| format!("n{i}"))
        .chain(["a".to_string()])
        .collect();
    want.sort();
    assert_eq!(relisted, want);
    assert!(
        server.request_count("list configmaps") > lists_before,
        "watcher relisted"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bookmarks_arrive_with_the_current_version() {
    let opts = ApiServerOptions {
        bookmark_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let (server, cms) = server_with(opts).await;
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .expect("create");
    let rv = server.resource_version().to_string();
    let mut stream = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    loop {
        if let WatchEvent::Bookmark(bm) = next(&mut stream).await.expect("event") {
            assert_eq!(bm.metadata.resource_version, rv);
            assert_eq!(bm.types.kind, "ConfigMap");
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_list_sends_initial_events_then_marked_bookmark() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(name, json!({})))
            .await
            .expect("create");
    }
    let mut stream = cms
        .watch(&WatchParams::default().initial_events(), "")
        .await
        .expect("watch")
        .boxed();
    assert_eq!(collect(&mut stream, 2).await, ["ADDED a", "ADDED b"]);
    match next(&mut stream).await.expect("event") {
        WatchEvent::Bookmark(bm) => {
            assert_eq!(
                bm.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!(
            "expected the initial-events-end bookmark, got {}",
            describe(&other)
        ),
    }
    let mut events = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        match next(&mut events).await.expect("watcher event") {
            watcher::Event::InitApply(o) => names.push(o.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, ["a", "b"]);
    server.shutdown().await;
}

#[tokio::test]
async fn watch_timeout_ends_the_stream() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    let rv = server.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .boxed();
    let end = tokio::time::timeout(SOON, async { while stream.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "the stream ended after timeoutSeconds");
    server.shutdown().await;
}

#[tokio::test]
async fn selector_watch_reports_transitions() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    let rv = server.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &cm("x", json!({"app": "db"})))
        .await
        .expect("create unmatched");
    cms.create(&PostParams::default(), &cm("a", json!({"app": "web"})))
        .await
        .expect("create");
    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    cms.patch("a", &PatchParams::default(), &relabel("db"))
        .await
        .expect("stop matching");
    cms.patch("a", &PatchParams::default(), &relabel("web"))
        .await
        .expect("match again");
    cms.patch("x", &PatchParams::default(), &relabel("web"))
        .await
        .expect("x starts matching");
    assert_eq!(
        collect(&mut stream, 4).await,
        ["ADDED a", "DELETED a", "ADDED a", "ADDED x"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pause_and_resume_make_the_watcher_reconnect() {
    let (server, cms) = server_with(ApiServerOptions::default()).await;
    let mut events = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while !matches!(next(&mut events).await, Ok(watcher::Event::InitDone)) {}
    let watches_before = server.request_count("watch configmaps");
    server.pause();
    assert!(server.is_paused());
    assert!(
        cms.get("anything").await.is_err(),
        "requests fail during the outage"
    );
    server
        .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "during", "namespace": "default"}}))
        .expect("seed");
    server.resume();
    loop {
        if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = next(&mut events).await
            && o.name_any() == "during"
        {
            break;
        }
    }
    assert!(
        server.request_count("watch configmaps") > watches_before,
        "watch re-established"
    );
    // A hanging outage leaves requests unanswered until it ends.
    server.pause_hang();
    let pending = tokio::time::timeout(Duration::from_millis(300), cms.get("during")).await;
    assert!(
        pending.is_err() || pending.is_ok_and(|r| r.is_err()),
        "no answer while hanging"
    );
    server.resume();
    let got = tokio::time::timeout(SOON, async {
        loop {
            if let Ok(o) = cms.get("during").await {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("answers after resume");
    assert_eq!(got.name_any(), "during");
    server.shutdown().await;
}
