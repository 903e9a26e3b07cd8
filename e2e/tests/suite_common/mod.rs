//! Shared set-up of the end-to-end suites: a three-node lab (FRR ToR, one pod per node serving
//! on [`PORT`]), the in-memory API server with the CRDs and `deploy/examples/ferrolb-config.yaml`
//! loaded, and the cluster seeded (Namespaces, Nodes).

use std::sync::Arc;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::demo::{DemoOptions, demo_spec, workspace_root};
use ferrolb_e2e::cluster::{Cluster, SlicePort, seed_cluster};
use ferrolb_e2e::lab::{Lab, Proto};
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
        let lab = Arc::new(
            Lab::up(demo_spec(&DemoOptions {
                nodes: 3,
                pods_per_node: 1,
                ..DemoOptions::default()
            }))
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
        api.load_path(&deploy.join("examples/ferrolb-config.yaml"))
            .expect("example config");
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

/// The EndpointSlice port of the suites' Services.
pub fn slice_port() -> [SlicePort; 1] {
    [SlicePort {
        name: "http".into(),
        port: PORT,
        proto: Proto::Tcp,
    }]
}
