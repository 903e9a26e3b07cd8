//! Shared set-up of the end-to-end suites: a three-node lab (FRR ToR, one pod per node serving
//! on [`PORT`]), the in-memory API server with the CRDs and `deploy/examples/ferrolb-config.yaml`
//! loaded, and the cluster seeded (Namespaces, Nodes).

// Every suite binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::demo::{DemoOptions, demo_spec, workspace_root};
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::FerrolbSpeakers;
use ferrolb_e2e::cluster::{Cluster, SlicePort, seed_cluster};
use ferrolb_e2e::lab::{Lab, LabSpec, Proto};
use tokio::runtime::Runtime;

/// Port the pods serve on (TCP and UDP).
pub const PORT: u16 = 8080;

/// What a suite test works with.
pub struct Env {
    /// The lab (shared with watchers and speaker processes).
    pub lab: Arc<Lab>,
    /// Runtime for the API server, kube clients and watchers.
    pub rt: Runtime,
    /// The in-memory API server.
    pub api: ApiServer,
    /// A kube client for the API server.
    pub client: kube::Client,
    /// Cluster emulation helpers on that client.
    pub cluster: Cluster,
}

impl Env {
    /// Builds the lab and the API server; panics with the failing step.
    pub fn up() -> Env {
        Env::up_with(|spec| spec, str::to_string)
    }

    /// [`Env::up`] with the lab spec adjusted by `spec` and the example configuration's
    /// text by `config` before it is loaded.
    pub fn up_with(
        spec: impl FnOnce(LabSpec) -> LabSpec,
        config: impl FnOnce(&str) -> String,
    ) -> Env {
        let lab = Arc::new(
            Lab::up(spec(demo_spec(&DemoOptions {
                nodes: 3,
                pods_per_node: 1,
                ..DemoOptions::default()
            })))
            .expect("lab up"),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let guard = rt.enter();
        let deploy = workspace_root().join("deploy");
        let api = rt
            .block_on(ApiServer::start(ApiServerOptions {
                manifests: vec![deploy.join("crds")],
                ..ApiServerOptions::default()
            }))
            .expect("api server");
        seed_cluster(&api, lab.plan()).expect("seed cluster");
        let example = std::fs::read_to_string(deploy.join("examples/ferrolb-config.yaml"))
            .expect("example config");
        api.load_yaml(&config(&example)).expect("configuration");
        lab.serve_pods(PORT).expect("pod servers");
        let client = api.client().expect("client");
        let cluster = Cluster::new(client.clone());
        drop(guard);
        Env {
            lab,
            rt,
            api,
            client,
            cluster,
        }
    }
}

/// Ends a suite: every speaker must still run and exit 0 on SIGTERM; then the DNAT watcher,
/// the API server and the lab are stopped (the lab must come down cleanly).
pub fn finish(
    lab: Arc<Lab>,
    rt: Runtime,
    api: ApiServer,
    watcher: DnatWatcher,
    mut speakers: FerrolbSpeakers,
) {
    speakers.check_running().expect("speakers still running");
    let stopped = speakers.stop();
    assert!(
        stopped.iter().all(|s| s.ends_with("exit status: 0")),
        "{stopped:?}"
    );
    rt.block_on(watcher.stop());
    rt.block_on(api.shutdown());
    drop(rt);
    let lab = Arc::try_unwrap(lab).expect("no other lab handle left");
    lab.down().expect("lab down");
}

/// The EndpointSlice port of the suites' Services.
pub fn slice_port() -> [SlicePort; 1] {
    [SlicePort {
        name: "http".into(),
        port: PORT,
        proto: Proto::Tcp,
    }]
}
