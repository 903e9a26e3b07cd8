//! ferrolb's own speaker as the bench's announcer ([`super::SpeakerKind::FerrolbBgp`]).
//!
//! ferrolb's speaker announces what the cluster says, not per prefix, so the bench gives it a
//! cluster: the in-memory API server (a test component) with the CRDs, the Nodes of the lab,
//! `deploy/examples/ferrolb-config.yaml` (BGPPeers towards the ToR, hold time 9 s) with the
//! `fast` BFDProfile set to the bench's BFD timers, and one dual-stack `LoadBalancer` Service
//! (`externalTrafficPolicy: Cluster`, so every node announces) whose status carries the
//! bench's VIPs of the measured families, with EndpointSlices listing every pod. Then
//! `ferrolb-speaker` runs in every node namespace ([`FerrolbSpeakers`]). The per-node DNAT of
//! the VIP to the node's own pods is the bench's, as for the reference speakers; the
//! speakers reach the API server through relays on the nodes' loopbacks, which a silent node
//! failure (uplink and L2 port down) leaves up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio::runtime::Runtime;

use super::BenchOptions;
use crate::apiserver::{ApiServer, ApiServerOptions};
use crate::cluster::demo::workspace_root;
use crate::cluster::speakers::{FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use crate::cluster::{Cluster, SERVICE_NAMESPACE, SlicePort, seed_cluster};
use crate::lab::{Lab, LabError, LabResult, Proto};

/// Name of the Service whose VIPs the bench measures.
pub const BENCH_SERVICE: &str = "failover-bench";

/// The Service object of the bench: its VIPs (of `families`, `true` = IPv6) in status.
pub fn bench_service(opts: &BenchOptions, families: &[bool]) -> serde_json::Value {
    let ingress: Vec<serde_json::Value> = families
        .iter()
        .map(|v6| json!({"ip": opts.vip(*v6).to_string()}))
        .collect();
    let ip_families: Vec<&str> = families
        .iter()
        .map(|v6| if *v6 { "IPv6" } else { "IPv4" })
        .collect();
    let policy = if families.len() > 1 {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": BENCH_SERVICE, "namespace": SERVICE_NAMESPACE},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": policy,
            "ipFamilies": ip_families,
            "selector": {"app": "web"},
            "ports": [
                {"name": "probe", "port": opts.port, "targetPort": opts.port, "protocol": "UDP"},
                {"name": "http", "port": opts.port, "targetPort": opts.port, "protocol": "TCP"},
            ],
        },
        "status": {"loadBalancer": {"ingress": ingress}},
    })
}

/// The `fast` BFDProfile of `deploy/examples` with the bench's timers.
pub fn bfd_profile(opts: &BenchOptions) -> serde_json::Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "BFDProfile",
        "metadata": {"name": "fast", "namespace": crate::cluster::SYSTEM_NAMESPACE},
        "spec": {
            "receiveInterval": opts.bfd.interval_ms,
            "transmitInterval": opts.bfd.interval_ms,
            "detectMultiplier": opts.bfd.multiplier,
        },
    })
}

/// ferrolb's speakers on every node of a lab with the cluster they read. Stopped (speakers,
/// API server, runtime) by [`FerrolbAnnouncer::stop`] or on drop.
pub struct FerrolbAnnouncer {
    rt: Option<Runtime>,
    api: Option<ApiServer>,
    speakers: Option<FerrolbSpeakers>,
    kubeconfig: PathBuf,
}

impl std::fmt::Debug for FerrolbAnnouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FerrolbAnnouncer")
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

fn lab_err(step: &str) -> impl FnOnce(anyhow::Error) -> LabError + '_ {
    move |e| LabError::new(step, format!("{e:#}"), None)
}

impl FerrolbAnnouncer {
    /// Starts the API server with the cluster described in the module docs and
    /// `ferrolb-speaker` in every node namespace of `lab`, announcing `families` (`true` =
    /// IPv6) of the bench's VIPs. Must not run inside a tokio runtime's context (it owns
    /// one; call it from a plain thread or `block_in_place`).
    pub fn start(lab: &Lab, opts: &BenchOptions, families: &[bool]) -> LabResult<Self> {
        let step = "start ferrolb's speakers for the failover bench";
        let binary = locate_binary(SPEAKER_BIN).map_err(|e| {
            LabError::new(
                step,
                format!("{e:#}"),
                Some("cargo build -p ferrolb-speaker".into()),
            )
        })?;
        Self::start_with(lab, opts, families, &binary).map_err(lab_err(step))
    }

    fn start_with(
        lab: &Lab,
        opts: &BenchOptions,
        families: &[bool],
        binary: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flb-bench-rt")
            .enable_all()
            .build()
            .context("build a tokio runtime")?;
        let deploy = workspace_root().join("deploy");
        let api = rt
            .block_on(ApiServer::start(ApiServerOptions {
                manifests: vec![deploy.join("crds")],
                ..ApiServerOptions::default()
            }))
            .context("start the in-memory API server")?;
        let mut me = FerrolbAnnouncer {
            rt: None,
            api: None,
            speakers: None,
            kubeconfig: lab.run_dir().join("bench-kubeconfig"),
        };
        seed_cluster(&api, lab.plan())?;
        api.load_path(&deploy.join("examples/ferrolb-config.yaml"))?;
        let insert = |v: serde_json::Value, what: &str| {
            api.insert(v)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{what}: {}", e.message))
        };
        insert(bfd_profile(opts), "set the BFDProfile")?;
        insert(bench_service(opts, families), "create the bench Service")?;
        let client = {
            let _g = rt.enter();
            api.client().context("kube client")?
        };
        let ports = [Proto::Udp, Proto::Tcp].map(|proto| SlicePort {
            name: if proto == Proto::Udp { "probe" } else { "http" }.into(),
            port: opts.port,
            proto,
        });
        rt.block_on(Cluster::new(client).create_endpoint_slices(
            lab.plan(),
            SERVICE_NAMESPACE,
            BENCH_SERVICE,
            &ports,
        ))?;
        api.write_kubeconfig(&me.kubeconfig)
            .with_context(|| format!("write {}", me.kubeconfig.display()))?;
        let addr: SocketAddr = api.addr();
        me.api = Some(api);
        let speakers = {
            let _g = rt.enter();
            FerrolbSpeakers::start(lab, binary, addr, &me.kubeconfig)?
        };
        me.speakers = Some(speakers);
        me.rt = Some(rt);
        Ok(me)
    }

    /// Fails naming the node and its log's end if a speaker has exited.
    pub fn check_running(&mut self) -> LabResult<()> {
        match self.speakers.as_mut() {
            Some(s) => s
                .check_running()
                .map_err(lab_err("check ferrolb's speakers")),
            None => Ok(()),
        }
    }

    /// Stops the speakers (SIGTERM, a Cease to the router), the API server and the runtime;
    /// returns one `node: exit` line per speaker.
    pub fn stop(mut self) -> Vec<String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Vec<String> {
        let out = self.speakers.take().map(|s| s.stop()).unwrap_or_default();
        if let Some(rt) = self.rt.take() {
            if let Some(api) = self.api.take() {
                rt.block_on(api.shutdown());
            }
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        out
    }
}

impl Drop for FerrolbAnnouncer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::BfdTimers;

    #[test]
    fn service_carries_the_measured_families_vips() {
        let opts = BenchOptions::default();
        let cases: [(&[bool], &[&str], &str); 3] = [
            (
                &[false, true],
                &["198.51.100.200", "fd00:5100::200"],
                "RequireDualStack",
            ),
            (&[false], &["198.51.100.200"], "SingleStack"),
            (&[true], &["fd00:5100::200"], "SingleStack"),
        ];
        for (families, ips, policy) in cases {
            let s = bench_service(&opts, families);
            let got: Vec<&str> = s["status"]["loadBalancer"]["ingress"]
                .as_array()
                .expect("ingress")
                .iter()
                .filter_map(|i| i["ip"].as_str())
                .collect();
            assert_eq!(got, ips, "{families:?}");
            assert_eq!(s["spec"]["ipFamilyPolicy"], policy, "{families:?}");
            assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
            assert_eq!(s["spec"]["ports"][0]["protocol"], "UDP");
            assert_eq!(s["spec"]["ports"][0]["port"], 8080);
        }
    }

    #[test]
    fn bfd_profile_follows_the_bench_timers() {
        let opts = BenchOptions {
            bfd: BfdTimers {
                interval_ms: 50,
                multiplier: 4,
            },
            ..BenchOptions::default()
        };
        let p = bfd_profile(&opts);
        assert_eq!(p["metadata"]["name"], "fast");
        assert_eq!(p["spec"]["transmitInterval"], 50);
        assert_eq!(p["spec"]["receiveInterval"], 50);
        assert_eq!(p["spec"]["detectMultiplier"], 4);
    }
}
