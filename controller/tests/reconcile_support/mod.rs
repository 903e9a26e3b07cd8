//! Shared fixtures of the reconciler tests: an in-memory API server with ferrolb's CRDs,
//! a controller running against it, object builders and polling helpers.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrolb_controller::reconcile::{Handle, Options, run};
use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// ferrolb's namespace in the tests.
pub const NS: &str = "ferrolb-system";

/// An API server with the CRDs and the namespaces `ferrolb-system` and `default`.
pub async fn server() -> ApiServer {
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let server = ApiServer::start(ApiServerOptions {
        manifests: vec![crds],
        ..Default::default()
    })
    .await
    .expect("start the in-memory API server");
    for ns in [NS, "default"] {
        server
            .insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .expect("namespace");
    }
    server
}

/// A running controller.
pub struct Controller {
    /// Readiness.
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<anyhow::Result<()>>,
}

impl Controller {
    /// Starts a controller against `server`.
    pub fn start(server: &ApiServer) -> Controller {
        Controller::start_with(server, Options::new(NS))
    }

    /// Starts a controller with `opts`.
    pub fn start_with(server: &ApiServer, opts: Options) -> Controller {
        let client = server.client().expect("client");
        let handle = Handle::new();
        let (tx, rx) = oneshot::channel::<()>();
        let h = handle.clone();
        let join = tokio::spawn(async move {
            run(client, opts, h, async move {
                let _ = rx.await;
            })
            .await
        });
        Controller {
            handle,
            stop: Some(tx),
            join,
        }
    }

    /// Waits until the initial load is done.
    pub async fn ready(&self) {
        let h = self.handle.clone();
        wait("controller ready", Duration::from_secs(60), || h.is_ready()).await;
    }

    /// Stops the controller and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.join)
            .await
            .expect("controller task")
            .expect("controller result");
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `IPAddressPool` in [`NS`].
pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"addresses": addresses},
    })
}

/// A LoadBalancer Service `default/<name>` on TCP 80.
pub fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    })
}

/// Reads Service `default/<name>`.
pub fn get_service(server: &ApiServer, name: &str) -> Option<Value> {
    server.object("v1", "Service", Some("default"), name)
}

/// Reads pool `<name>`.
pub fn get_pool(server: &ApiServer, name: &str) -> Option<Value> {
    server.object("ferrolb.io/v1beta1", "IPAddressPool", Some(NS), name)
}

/// The ingress IPs of Service `default/<name>`.
pub fn ingress(server: &ApiServer, name: &str) -> Vec<String> {
    get_service(server, name)
        .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str().map(str::to_owned))
        .collect()
}

/// The condition of type `type_` in an object's `status.conditions`.
pub fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// `(status, reason)` of the Service's `ferrolb.io/LoadBalancerReady` condition.
pub fn ready_condition(server: &ApiServer, name: &str) -> Option<(String, String, String)> {
    let svc = get_service(server, name)?;
    let c = condition(&svc, "ferrolb.io/LoadBalancerReady")?;
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str()?.to_owned(),
        c["message"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// Events regarding Service `default/<name>`: `(type, reason, note)`.
pub async fn events(server: &ApiServer, name: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(server.client().expect("client"), "default");
    let list = api.list(&ListParams::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Waits until Service `name` has a `LoadBalancerReady` condition with `status`.
pub async fn wait_condition(
    server: &ApiServer,
    name: &str,
    status: &str,
) -> (String, String, String) {
    wait(
        &format!("condition {status} on {name}"),
        Duration::from_secs(30),
        || ready_condition(server, name).is_some_and(|c| c.0 == status),
    )
    .await;
    ready_condition(server, name).expect("condition")
}
