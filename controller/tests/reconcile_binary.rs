//! The `ferrolb-controller` binary against the in-memory API server: it allocates, serves
//! `/healthz`, `/readyz` and `/metrics`, starts the admission webhook (its certificate
//! Secret appears and the HTTPS port listens), and exits cleanly on SIGTERM.

mod reconcile_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reconcile_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills the child on drop if the test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_health_allocates_and_stops_on_sigterm() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/30"])).expect("pool");
    server.insert(service("web")).expect("service");
    let dir = std::env::temp_dir().join(format!("flb-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let hook_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let hook_addr = format!("127.0.0.1:{hook_port}");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .args(["--metrics-addr", &addr, "--log-json"])
        .args(["--webhook-addr", &hook_addr])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the controller");
    let mut guard = Guard(child);

    let start = Instant::now();
    loop {
        if let Some(r) = get(&addr, "/readyz").await
            && r.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = get(&addr, "/healthz").await.expect("healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let missing = get(&addr, "/nope").await.expect("404");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    wait_condition(&server, "web", "True").await;
    assert_eq!(ingress(&server, "web"), vec!["10.0.0.0"]);
    let metrics = get(&addr, "/metrics").await.expect("metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    for line in [
        "ferrolb_leader 1",
        "ferrolb_pool_addresses_used{pool=\"p\",family=\"IPv4\"} 1",
        "ferrolb_allocations_total{pool=\"p\",family=\"IPv4\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "/metrics lacks {line:?}:\n{metrics}"
        );
    }
    let start = Instant::now();
    while server
        .object("v1", "Secret", Some(NS), "ferrolb-webhook-cert")
        .is_none()
        || tokio::net::TcpStream::connect(&hook_addr).await.is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the webhook never stored its certificate or never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = guard.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = guard.0.try_wait().expect("wait") {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}
