//! The `ferrolbctl` binary against the in-memory API server, seeded with ferrolb's CRDs, a
//! pool with status, an allocated and a pending Service, a ServiceBGPStatus, a BGPPeer and
//! an Event; and `validate` on files.

mod reconcile_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use reconcile_support::NS;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flb-ctl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn ctl(kubeconfig: Option<&Path>, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferrolbctl"));
    cmd.args(args)
        .env_remove("FERROLB_NAMESPACE")
        .env_remove("FERROLB_LB_CLASS")
        .env("HOME", std::env::temp_dir());
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        None => cmd.env_remove("KUBECONFIG"),
    };
    let out = cmd.output().await.expect("run ferrolbctl");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn now_json() -> Value {
    serde_json::to_value(MicroTime(Timestamp::now())).expect("time")
}

fn condition(status: &str, reason: &str, message: &str) -> Value {
    json!([{
        "type": "ferrolb.io/LoadBalancerReady",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }])
}

async fn seeded() -> ApiServer {
    let server = reconcile_support::server().await;
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1",
            "labels": {"kubernetes.io/hostname": "node1"}}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node2",
            "labels": {"kubernetes.io/hostname": "node2"}}}),
        json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "pool-a", "namespace": NS},
            "spec": {"addresses": ["10.0.0.0/30"], "autoAssign": true},
            "status": {"assignedIPv4": "1", "availableIPv4": "3", "conditions": [{
                "type": "Valid", "status": "True", "reason": "Accepted",
                "message": "part of the running configuration",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }),
        json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPAdvertisement",
            "metadata": {"name": "adv", "namespace": NS},
            "spec": {"ipAddressPools": ["pool-a"]},
        }),
        json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
            "metadata": {"name": "tor", "namespace": NS},
            "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "10.9.1.1",
                "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "node1"}}]},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default",
                "annotations": {"ferrolb.io/ip-allocated-from-pool": "pool-a"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]},
                "conditions": condition("True", "Allocated", "[10.0.0.1] from pool `pool-a`")},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "pending", "namespace": "default",
                "annotations": {"ferrolb.io/loadBalancerIPs": "1.2.3.4"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]},
            "status": {"conditions": condition("False", "RequestedIPUnavailable",
                "requested 1.2.3.4 is outside every address pool")},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "internal", "namespace": "default"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
        }),
        json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceBGPStatus",
            "metadata": {"name": "node1-default-web", "namespace": NS, "labels": {
                "ferrolb.io/node": "node1", "ferrolb.io/service-name": "web",
                "ferrolb.io/service-namespace": "default"}},
            "spec": {},
            "status": {"node": "node1", "serviceName": "web", "serviceNamespace": "default",
                "peers": ["tor"]},
        }),
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "pending.1", "namespace": "default"},
            "eventTime": now_json(),
            "type": "Warning", "reason": "AllocationFailed", "action": "Allocate",
            "note": "requested 1.2.3.4 is outside every address pool",
            "regarding": {"apiVersion": "v1", "kind": "Service", "namespace": "default",
                "name": "pending"},
            "reportingController": "ferrolb-controller", "reportingInstance": "c-0",
        }),
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": now_json(),
            "type": "Normal", "reason": "IPAllocated", "action": "Allocate",
            "note": "assigned 10.0.0.1",
            "regarding": {"apiVersion": "v1", "kind": "Service", "namespace": "default",
                "name": "web"},
            "reportingController": "ferrolb-controller", "reportingInstance": "c-0",
        }),
    ];
    for o in objects {
        server.insert(o).expect("seed object");
    }
    server
}

fn assert_has(out: &Out, fragments: &[&str]) {
    for f in fragments {
        assert!(
            out.stdout.contains(f),
            "missing {f:?} in stdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_lists_and_describes_against_the_api_server() {
    let server = seeded().await;
    let dir = TempDir::new();
    let kc = dir.0.join("kubeconfig");
    server.write_kubeconfig(&kc).expect("kubeconfig");
    let kc = Some(kc.as_path());

    let pools = ctl(kc, &["pools"]).await;
    assert_eq!(pools.code, 0, "{}", pools.stderr);
    let lines: Vec<&str> = pools.stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "NAME     FAMILY   ADDRESSES     TOTAL   USED   FREE   AUTO-ASSIGN   AVOID-BUGGY-IPS   PRIORITY   VALID",
            "pool-a   IPv4     10.0.0.0/30   4       1      3      true          false             0          True",
        ]
    );
    let json = ctl(kc, &["pools", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).expect("pools json");
    assert_eq!(v[0]["name"], "pool-a");
    assert_eq!(v[0]["free"], "3");

    let svcs = ctl(kc, &["services", "-A"]).await;
    assert_eq!(svcs.code, 0, "{}", svcs.stderr);
    assert_eq!(
        svcs.stdout,
        "\
NAMESPACE   NAME      VIPS        POOL     READY   REASON                   SHARING-KEY   ETP       ANNOUNCED-BY
default     pending   <pending>   -        False   RequestedIPUnavailable   -             Cluster   -
default     web       10.0.0.1    pool-a   True    Allocated                -             Cluster   bgp:node1

1 Service is pending; see why with: ferrolbctl describe service default/pending
"
    );
    // The kubeconfig's namespace is `default`, so plain `services` lists the same rows.
    let json = ctl(kc, &["services", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).expect("services json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[1]["announcedBy"][0]["node"], "node1");
    assert_eq!(v[1]["announcedBy"][0]["via"][0], "tor");
    let other_ns = ctl(kc, &["services", "-n", NS]).await;
    assert_eq!(
        other_ns.stdout,
        "No LoadBalancer Services found in namespace ferrolb-system.\n"
    );

    let pending = ctl(kc, &["describe", "service", "default/pending"]).await;
    assert_eq!(pending.code, 0, "{}", pending.stderr);
    assert_has(
        &pending,
        &[
            "VIPs:                    <pending>\n",
            "Requested IPs:           1.2.3.4 (from metadata.annotations[ferrolb.io/loadBalancerIPs])\n",
            "LoadBalancerReady:       False RequestedIPUnavailable: requested 1.2.3.4 is outside every address pool",
            "Pending. The controller says RequestedIPUnavailable: requested 1.2.3.4 is outside every address pool",
            "Requested IP 1.2.3.4 (from metadata.annotations[ferrolb.io/loadBalancerIPs]) is outside every pool (pools: pool-a 10.0.0.0/30).",
            "Warning   AllocationFailed",
            "ferrolb-controller/c-0   requested 1.2.3.4 is outside every address pool",
        ],
    );
    assert!(
        !pending.stdout.contains("IPAllocated"),
        "{}",
        pending.stdout
    );

    let web = ctl(kc, &["describe", "svc", "web", "-n", "default"]).await;
    assert_eq!(web.code, 0, "{}", web.stderr);
    assert_has(
        &web,
        &[
            "Allocated from pool:     pool-a\n",
            "Announced by:\n  NODE    MODE   VIA\n  node1   bgp    tor\n",
            "Allocated 10.0.0.1 and announced by node1 (bgp).",
            "Normal   IPAllocated",
        ],
    );
    let missing = ctl(kc, &["describe", "service", "default/nope"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("Service default/nope not found"),
        "{}",
        missing.stderr
    );
    let bad_kind = ctl(kc, &["describe", "pod", "default/web"]).await;
    assert_eq!(bad_kind.code, 1);
    assert!(
        bad_kind.stderr.contains("only `service`"),
        "{}",
        bad_kind.stderr
    );

    let bgp = ctl(kc, &["bgp"]).await;
    assert_eq!(bgp.code, 0, "{}", bgp.stderr);
    assert_has(
        &bgp,
        &[
            "PEER   ADDRESS        MY-ASN   PEER-ASN   HOLD/KEEPALIVE   BFD   NODE-SELECTORS                 NODES   VALID\n\
             tor    10.9.1.1:179   64513    64512      90s/30s          -     kubernetes.io/hostname=node1   node1   Unknown\n",
            "NODE    SERVICE       VIPS       PEERS\nnode1   default/web   10.0.0.1   tor\n",
            "BGP/BFD session state is not in the Kubernetes API",
            "/metrics",
        ],
    );
    let json = ctl(kc, &["bgp", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).expect("bgp json");
    assert_eq!(v["peers"][0]["nodes"][0], "node1");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_reports_missing_crds() {
    let server = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("start");
    let dir = TempDir::new();
    let kc = dir.0.join("kubeconfig");
    server.write_kubeconfig(&kc).expect("kubeconfig");
    // The kubeconfig given by flag (no KUBECONFIG in the environment).
    let kc_flag = kc.display().to_string();
    let out = ctl(None, &["--kubeconfig", &kc_flag, "pools"]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("are ferrolb's CRDs installed"),
        "{}",
        out.stderr
    );
    // `services` works without the CRDs (no status objects means nobody announces).
    server
        .insert(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"type": "LoadBalancer"}}))
        .expect("service");
    let out = ctl(Some(&kc), &["services"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("s      <pending>   -      Unknown"),
        "{}",
        out.stdout
    );
    server.shutdown().await;
}

#[tokio::test]
async fn ctl_validates_files() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let ok = ctl(None, &["validate", "-f", &examples.display().to_string()]).await;
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout
            .starts_with("valid: 2 files with 2 IPAddressPool(s)"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("pool bgp-pool: 254 IPv4 + 18446744073709551616 IPv6 allocatable addresses; advertised by bgp-vips"),
        "{}",
        ok.stdout
    );

    let dir = TempDir::new();
    let broken = dir.0.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  namespace: ferrolb-system\n\
         spec:\n  addresses: [10.0.0.1/24]\n---\n\
         apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: tor\nspec:\n  myASN: 64513\n  \
         peerASN: 64512\n  peerAddress: 10.0.0.1\n  holdTime: 9s\n  keepaliveTime: 30s\n",
    )
    .expect("write");
    let bad = ctl(None, &["validate", "-f", &broken.display().to_string()]).await;
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    let lines: Vec<&str> = bad.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", bad.stdout);
    assert!(
        lines[0].starts_with("BGPPeer ferrolb-system/tor: spec.keepaliveTime: "),
        "{}",
        bad.stdout
    );
    assert!(
        lines[1].starts_with("IPAddressPool ferrolb-system/p: spec.addresses[0]: "),
        "{}",
        bad.stdout
    );
    assert!(bad.stderr.contains("2 errors found"), "{}", bad.stderr);

    let typo = dir.0.join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\nspec:\n  interface: [eth0]\n",
    )
    .expect("write");
    let bad = ctl(None, &["validate", "-f", &typo.display().to_string()]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stdout
            .contains("typo.yaml: L2Advertisement l2: spec.interface: unknown field"),
        "{}",
        bad.stdout
    );
}
