//! Two `ferrolb-controller` processes with Lease-based leader election against the
//! in-memory API server; the leader is killed with SIGKILL, so its Lease is never
//! released. The standby, caches warm, takes over only once the Lease expired, allocates a
//! Service created meanwhile a fresh address, and moves no existing one.

mod reconcile_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::ApiServer;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use reconcile_support::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEASE: &str = "ferrolb-controller";
const LEASE_SECS: i64 = 3;

/// A controller process, killed on drop if the test fails half-way.
struct Proc {
    id: String,
    addr: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the temporary directory on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    format!("127.0.0.1:{port}")
}

fn spawn(id: &str, kubeconfig: &std::path::Path, log_dir: &std::path::Path) -> Proc {
    let addr = free_addr();
    let log = std::fs::File::create(log_dir.join(format!("{id}.log"))).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .args([
            "--namespace",
            NS,
            "--metrics-addr",
            &addr,
            "--leader-elect",
            "--instance",
            id,
            "--lease-duration",
            &LEASE_SECS.to_string(),
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn the controller");
    Proc {
        id: id.into(),
        addr,
        child,
    }
}

/// `GET path`: (status code, body).
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Some((code, body))
}

/// Polls `/readyz` until it answers 200 with a body starting with `body`.
async fn wait_readyz(p: &Proc, body: &str) {
    let start = Instant::now();
    loop {
        if let Some((200, b)) = get(&p.addr, "/readyz").await
            && b.starts_with(body)
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}: /readyz never answered `{body}`",
            p.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lease(server: &ApiServer) -> Option<Value> {
    server.object("coordination.k8s.io/v1", "Lease", Some(NS), LEASE)
}

fn holder(lease: &Value) -> Option<String> {
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

fn time(lease: &Value, field: &str) -> Option<Timestamp> {
    lease["spec"][field].as_str()?.parse().ok()
}

fn ips(server: &ApiServer, names: &[String]) -> Vec<Vec<String>> {
    names.iter().map(|n| ingress(server, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_after_the_crashed_leaders_lease_expired() {
    let server = server().await;
    server.insert(pool("p", &["10.0.0.0/24"])).expect("pool");
    let dir = TempDir(std::env::temp_dir().join(format!("flb-{}-ha-crash", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let kubeconfig = dir.0.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let a = spawn("ctl-a", &kubeconfig, &dir.0);
    let b = spawn("ctl-b", &kubeconfig, &dir.0);

    wait("a Lease holder", Duration::from_secs(60), || {
        lease(&server)
            .and_then(|l| holder(&l))
            .is_some_and(|h| h == a.id || h == b.id)
    })
    .await;
    let first = lease(&server).and_then(|l| holder(&l)).expect("holder");
    let (leader, standby) = if first == a.id { (a, b) } else { (b, a) };
    wait_readyz(&leader, "ok").await;
    // The standby keeps warm caches: every watch listed.
    wait_readyz(&standby, "standby").await;

    let mut names: Vec<String> = (0..10).map(|i| format!("s{i:02}")).collect();
    for n in &names {
        server.insert(service(n)).expect("service");
    }
    for n in &names {
        wait_condition(&server, n, "True").await;
    }
    let before = ips(&server, &names);
    let held: BTreeSet<String> = before.iter().flatten().cloned().collect();
    assert_eq!(held.len(), names.len(), "distinct addresses: {before:?}");

    // Kill right after a renewal, so the Lease still has most of its time to run.
    let renewed = lease(&server)
        .and_then(|l| time(&l, "renewTime"))
        .expect("renewTime");
    wait("a Lease renewal", Duration::from_secs(30), || {
        lease(&server).is_some_and(|l| {
            holder(&l).as_deref() == Some(leader.id.as_str())
                && time(&l, "renewTime").is_some_and(|t| t > renewed)
        })
    })
    .await;
    let mut leader = leader;
    leader.child.kill().expect("SIGKILL the leader");
    leader.child.wait().expect("reap the leader");
    let after_kill = lease(&server).expect("lease");
    assert_eq!(
        holder(&after_kill).as_deref(),
        Some(leader.id.as_str()),
        "a killed leader does not release its Lease"
    );
    let transitions = after_kill["spec"]["leaseTransitions"].as_i64().unwrap_or(0);

    let late = "late".to_owned();
    server.insert(service(&late)).expect("late service");

    // Until the standby holds the Lease, nobody allocates. The Service is read before the
    // Lease: if the Lease is not the standby's yet, it was not when the Service was read.
    let mut last_renew = time(&after_kill, "renewTime").expect("renewTime");
    let start = Instant::now();
    let taken = loop {
        let late_ips = ingress(&server, &late);
        let l = lease(&server).expect("lease");
        match holder(&l) {
            Some(h) if h == standby.id => break l,
            Some(h) if h == leader.id => {
                if let Some(t) = time(&l, "renewTime") {
                    last_renew = last_renew.max(t);
                }
            }
            None => {}
            Some(other) => panic!("unexpected Lease holder {other}"),
        }
        assert!(
            late_ips.is_empty(),
            "allocated {late_ips:?} while the dead leader's Lease was valid"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the standby never took the Lease over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let acquired = time(&taken, "acquireTime").expect("acquireTime");
    let expiry = last_renew + SignedDuration::from_secs(LEASE_SECS);
    assert!(
        acquired >= expiry,
        "acquired at {acquired}, before the dead leader's Lease expired at {expiry}"
    );
    // The transition count follows in a second write of the new holder.
    wait("leaseTransitions counted", Duration::from_secs(30), || {
        lease(&server).is_some_and(|l| {
            holder(&l).as_deref() == Some(standby.id.as_str())
                && l["spec"]["leaseTransitions"].as_i64().unwrap_or(0) > transitions
        })
    })
    .await;

    wait_readyz(&standby, "ok").await;
    wait_condition(&server, &late, "True").await;
    let late_ips = ingress(&server, &late);
    assert_eq!(late_ips.len(), 1, "{late_ips:?}");
    assert!(
        !held.contains(&late_ips[0]),
        "{} was already held: {before:?}",
        late_ips[0]
    );
    assert_eq!(
        ips(&server, &names),
        before,
        "the takeover moved an address"
    );
    names.push(late);
    let all: Vec<String> = ips(&server, &names).into_iter().flatten().collect();
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "duplicate address: {all:?}"
    );

    drop(standby);
    drop(leader);
    server.shutdown().await;
}
