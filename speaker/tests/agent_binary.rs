//! The `ferrolb-speaker` binary (no root): started with a kubeconfig pointing at the
//! in-memory API server and `--bgp-port 0`, it brings up its session to a loopback
//! "router", serves `/healthz` and `/metrics`, and on SIGTERM closes the session with a
//! Cease and exits 0.

mod agent_common;
use agent_common::{api_with_crds, loopback_router};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_speaker::bgp::fsm::State;
use serde_json::json;

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Kills the child on drop (a failing test must not leave the speaker running).
struct Speaker(Child);

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_metrics_and_ceases_on_sigterm() {
    let api = api_with_crds().await;
    let (router, port) = loopback_router(None).await;

    api.load_yaml(&format!(
        r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: ferrolb-system}}
spec: {{addresses: [198.51.100.0/24]}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: all, namespace: ferrolb-system}}
spec: {{}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: tor, namespace: ferrolb-system}}
spec: {{myASN: 64513, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, connectTime: 1s}}
"#
    ))
    .expect("config");
    api.insert(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node1", "labels": {"kubernetes.io/hostname": "node1"}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.1.2"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("node");
    api.insert(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}},
    }))
    .expect("service");
    api.insert(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.10"], "nodeName": "node1"}],
    }))
    .expect("slice");

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let metrics_port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut speaker = Speaker(
        Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"))
            .args([
                "--node-name",
                "node1",
                "--bgp-port",
                "0",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn speaker"),
    );

    wait_until("session with the VIP", Duration::from_secs(20), || {
        router
            .peer_status("node1")
            .is_some_and(|s| s.state == State::Established && s.prefixes_received >= 1)
    })
    .await;
    let health = http_get(metrics_port, "/healthz").expect("healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let mut metrics = String::new();
    wait_until("metrics show the session", Duration::from_secs(10), || {
        metrics = http_get(metrics_port, "/metrics").unwrap_or_default();
        metrics.contains("ferrolb_bgp_prefixes_advertised{peer=\"tor\"} 1")
    })
    .await;
    assert!(
        metrics.contains("ferrolb_bgp_session_up{peer=\"tor\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ferrolb_config_valid 1"), "{metrics}");

    let status = Command::new("kill")
        .args(["-TERM", &speaker.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = speaker.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "speaker did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    wait_until("router received the Cease", Duration::from_secs(10), || {
        router
            .peer_status("node1")
            .is_some_and(|s| s.state != State::Established && s.notifications_received >= 1)
    })
    .await;
    router.shutdown().await;
    api.shutdown().await;
}
