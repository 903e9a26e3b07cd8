//! End-to-end suite, the parts that need only the Kubernetes API (no lab, no root).
//!
//! By default it runs against the in-memory API server (a test component) with ferrolb's
//! CRDs and starts the real `ferrolb-controller` binary against it, so CI exercises it.
//! With `FERROLB_E2E_KUBECONFIG` set it runs against that cluster instead and starts
//! nothing: ferrolb must be installed there (see `docs/e2e.md`).
//!
//! Everything it creates carries a unique `ferrolb-e2e-<pid>-<n>` name and is deleted at
//! the end, also when an assertion fails: a test Namespace with the Services, and an
//! `IPAddressPool` with `autoAssign: false` (so it never takes another Service) in
//! ferrolb's namespace. Checked through the API only:
//! - allocation: a Service asking for the pool gets an address of each of its families from
//!   it in `status.loadBalancer.ingress`, the `ferrolb.io/ip-allocated-from-pool`
//!   annotation, `ferrolb.io/LoadBalancerReady=True` (reason `Allocated`) and an
//!   `IPAllocated` Event; the pool's status counts the assigned addresses;
//! - sharing: a UDP Service on the same port with the same `ferrolb.io/allow-shared-ip` key
//!   gets the same addresses; a TCP one asking for them gets `False` / `SharingConflict`
//!   and an `AllocationFailed` Warning Event, and gets them once the sharers are deleted;
//! - a bad request (an address outside every pool) gets `False` /
//!   `RequestedIPUnavailable` with a message saying so.
//!
//! Settings (environment): `FERROLB_E2E_KUBECONFIG` (a real cluster), `FERROLB_E2E_NAMESPACE`
//! (ferrolb's namespace, default `ferrolb-system`), `FERROLB_E2E_IP_FAMILIES` (`IPv4,IPv6`
//! by default; `IPv4` or `IPv6` on a single-stack cluster), `FERROLB_E2E_POOL` (the test
//! pool's addresses, default `192.0.2.0/28,2001:db8:e2e::/124`; must not overlap the
//! cluster's pools), `FERROLB_E2E_OUTSIDE_IP` (an address outside every pool, default
//! `192.0.2.254` or `2001:db8:e2e::ffff`). Needs the controller binary in the default mode:
//! `cargo build -p ferrolb-controller`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::demo::workspace_root;
use ferrolb_e2e::cluster::speakers::{CONTROLLER_BIN, locate_binary};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use tokio::runtime::Runtime;

const WAIT: Duration = Duration::from_secs(30);
const CONDITION: &str = "ferrolb.io/LoadBalancerReady";
const SHARE_KEY: &str = "ferrolb.io/allow-shared-ip";
const POOL_ANNOTATION: &str = "ferrolb.io/address-pool";
const FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";
const LB_IPS: &str = "ferrolb.io/loadBalancerIPs";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// An address block `a/len` of the test pool.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    len: u32,
}

impl Cidr {
    fn parse(s: &str) -> Cidr {
        let (a, l) = s
            .trim()
            .split_once('/')
            .unwrap_or_else(|| panic!("FERROLB_E2E_POOL entry {s:?} is not a CIDR"));
        Cidr {
            net: a.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")),
            len: l.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")),
        }
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX.checked_shl(128 - self.len).unwrap_or(0);
                u128::from(n) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }
}

/// Where the suite runs and what it uses.
struct Settings {
    kubeconfig: Option<PathBuf>,
    system_ns: String,
    families: Vec<String>,
    pool: Vec<Cidr>,
    outside: IpAddr,
}

impl Settings {
    fn from_env() -> Settings {
        let families: Vec<String> = env_or("FERROLB_E2E_IP_FAMILIES", "IPv4,IPv6")
            .split(',')
            .map(|f| f.trim().to_string())
            .collect();
        for f in &families {
            assert!(
                f == "IPv4" || f == "IPv6",
                "FERROLB_E2E_IP_FAMILIES: {f:?} is not IPv4 or IPv6"
            );
        }
        let default_outside = if families[0] == "IPv4" {
            "192.0.2.254"
        } else {
            "2001:db8:e2e::ffff"
        };
        let outside_s = env_or("FERROLB_E2E_OUTSIDE_IP", default_outside);
        Settings {
            kubeconfig: std::env::var_os("FERROLB_E2E_KUBECONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system_ns: env_or("FERROLB_E2E_NAMESPACE", "ferrolb-system"),
            pool: env_or("FERROLB_E2E_POOL", "192.0.2.0/28,2001:db8:e2e::/124")
                .split(',')
                .map(Cidr::parse)
                .collect(),
            outside: outside_s
                .parse()
                .unwrap_or_else(|e| panic!("FERROLB_E2E_OUTSIDE_IP {outside_s:?}: {e}")),
            families,
        }
    }

    fn family_of(ip: &IpAddr) -> &'static str {
        if ip.is_ipv4() { "IPv4" } else { "IPv6" }
    }
}

/// The in-memory API server and the controller process of the default mode.
struct Local {
    api: ApiServer,
    controller: Process,
    log: PathBuf,
    _dir: TempDir,
}

/// A child process, killed on drop if still running.
struct Process(Child);

impl Process {
    /// SIGTERM, then up to 5 s to exit, then SIGKILL; returns the exit description.
    fn stop(&mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        "killed after 5 s".into()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the test created, deleted on drop (also while unwinding from a failed assertion).
struct Created {
    rt: tokio::runtime::Handle,
    client: kube::Client,
    pool: Api<DynamicObject>,
    pool_name: String,
    namespace: String,
}

impl Drop for Created {
    fn drop(&mut self) {
        let (client, pool, pool_name, ns) = (
            self.client.clone(),
            self.pool.clone(),
            self.pool_name.clone(),
            self.namespace.clone(),
        );
        let dp = DeleteParams::default();
        self.rt.block_on(async move {
            let services: Api<Service> = Api::namespaced(client.clone(), &ns);
            if let Ok(list) = services.list(&ListParams::default()).await {
                for s in list {
                    let name = s.metadata.name.unwrap_or_default();
                    let _ = services.delete(&name, &dp).await;
                }
            }
            let _ = Api::<Namespace>::all(client).delete(&ns, &dp).await;
            let _ = pool.delete(&pool_name, &dp).await;
        });
    }
}

fn pool_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "ferrolb.io",
        "v1beta1",
        "IPAddressPool",
    ))
}

/// A Service of the test: `ports` as (name, port, protocol), `families`, annotations.
fn service(
    name: &str,
    ports: &[(&str, u16, &str)],
    families: &[String],
    annotations: BTreeMap<&str, String>,
) -> Service {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .map(|(n, p, proto)| json!({"name": n, "port": p, "targetPort": 8080, "protocol": proto}))
        .collect();
    let policy = if families.len() > 1 {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "type": "LoadBalancer",
            "ipFamilyPolicy": policy,
            "ipFamilies": families,
            "selector": {"app": name},
            "ports": ports,
        },
    }))
    .expect("service object")
}

/// Polls `f` every 100 ms until it returns `Some`, failing with `what` and the last value
/// seen after [`WAIT`].
async fn eventually<T, D: std::fmt::Debug>(
    what: &str,
    mut f: impl AsyncFnMut() -> Result<T, D>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what} within {WAIT:?}; last seen: {last:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ingress IPs and the `LoadBalancerReady` condition (status, reason, message).
type Seen = (Vec<IpAddr>, Option<(String, String, String)>);

async fn seen(services: &Api<Service>, name: &str) -> Seen {
    let Ok(s) = services.get(name).await else {
        return (Vec::new(), None);
    };
    let status = s.status.unwrap_or_default();
    let ips = status
        .load_balancer
        .and_then(|l| l.ingress)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip?.parse().ok())
        .collect();
    let cond = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == CONDITION)
        .map(|c| (c.status, c.reason, c.message));
    (ips, cond)
}

/// Waits until `name` has one address per family of `families`, all in `pool`, and
/// `LoadBalancerReady=True` with reason `Allocated`.
async fn wait_allocated(
    services: &Api<Service>,
    name: &str,
    families: &[String],
    pool: &[Cidr],
) -> Vec<IpAddr> {
    eventually(
        &format!("Service {name} allocated from the test pool"),
        async || {
            let (ips, cond) = seen(services, name).await;
            let fams: Vec<&str> = ips.iter().map(Settings::family_of).collect();
            let ok = fams.len() == families.len()
                && families.iter().all(|f| fams.contains(&f.as_str()))
                && ips.iter().all(|ip| pool.iter().any(|c| c.contains(ip)))
                && cond
                    .as_ref()
                    .is_some_and(|c| c.0 == "True" && c.1 == "Allocated");
            if ok { Ok(ips) } else { Err((ips, cond)) }
        },
    )
    .await
}

/// Waits until `name` has `LoadBalancerReady=False`; returns (reason, message).
async fn wait_failed(services: &Api<Service>, name: &str) -> (String, String) {
    eventually(
        &format!("Service {name} LoadBalancerReady=False"),
        async || match seen(services, name).await {
            (ips, Some((s, r, m))) if s == "False" && ips.is_empty() => Ok((r, m)),
            other => Err(other),
        },
    )
    .await
}

/// Waits for an Event about Service `name` with `reason` and `type_`; returns its note.
async fn wait_event(events: &Api<Event>, name: &str, reason: &str, type_: &str) -> String {
    eventually(
        &format!("{type_} Event {reason} for Service {name}"),
        async || {
            let list = events
                .list(&ListParams::default())
                .await
                .map_err(|e| vec![e.to_string()])?;
            let mine: Vec<&Event> = list
                .items
                .iter()
                .filter(|e| {
                    e.regarding
                        .as_ref()
                        .is_some_and(|r| r.name.as_deref() == Some(name))
                })
                .collect();
            mine.iter()
                .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some(type_))
                .map(|e| e.note.clone().unwrap_or_default())
                .ok_or_else(|| {
                    mine.iter()
                        .map(|e| format!("{:?} {:?}", e.type_, e.reason))
                        .collect::<Vec<_>>()
                })
        },
    )
    .await
}

/// Starts the in-memory API server with the CRDs and ferrolb's namespace, and the
/// controller binary against it.
fn start_local(rt: &Runtime, system_ns: &str) -> Local {
    let controller_bin = locate_binary(CONTROLLER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let api = rt
        .block_on(ApiServer::start(ApiServerOptions {
            manifests: vec![workspace_root().join("deploy/crds")],
            ..ApiServerOptions::default()
        }))
        .expect("in-memory API server");
    api.insert(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": system_ns},
    }))
    .expect("ferrolb's namespace");
    let dir = std::env::temp_dir().join(format!(
        "flb-{}-api-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let log = dir.join("ferrolb-controller.log");
    let out = std::fs::File::create(&log).expect("controller log");
    let controller = Command::new(&controller_bin)
        .args(["--metrics-addr", "127.0.0.1:0", "--namespace", system_ns])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", controller_bin.display()));
    Local {
        api,
        controller: Process(controller),
        log,
        _dir: TempDir(dir),
    }
}

#[test]
fn api_allocation_sharing_and_bad_requests() {
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut local = None;
    let client = match &settings.kubeconfig {
        Some(path) => {
            println!(
                "real cluster from FERROLB_E2E_KUBECONFIG={} (ferrolb must be installed)",
                path.display()
            );
            rt.block_on(async {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()));
                kube::Client::try_from(cfg).expect("kube client")
            })
        }
        None => {
            let l = start_local(&rt, &settings.system_ns);
            let _g = rt.enter();
            let c = l.api.client().expect("client");
            local = Some(l);
            c
        }
    };
    let unique = format!(
        "ferrolb-e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() % 100_000)
    );
    let pools: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &settings.system_ns, &pool_resource());
    let created = Created {
        rt: rt.handle().clone(),
        client: client.clone(),
        pool: pools.clone(),
        pool_name: unique.clone(),
        namespace: unique.clone(),
    };
    let started = Instant::now();
    rt.block_on(body(&settings, &client, &pools, &unique));
    println!("suite_api body: {} ms", started.elapsed().as_millis());
    drop(created);
    if let Some(Local {
        api,
        mut controller,
        log,
        _dir,
    }) = local
    {
        if let Ok(Some(status)) = controller.0.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the controller exited ({status}):\n{text}");
        }
        assert_eq!(controller.stop(), "exit status: 0");
        rt.block_on(api.shutdown());
    }
}

async fn body(s: &Settings, client: &kube::Client, pools: &Api<DynamicObject>, unique: &str) {
    let ns = unique;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("create the test namespace");
    let pool_addrs: Vec<String> = s
        .pool
        .iter()
        .filter(|c| s.families.iter().any(|f| f == Settings::family_of(&c.net)))
        .map(|c| format!("{}/{}", c.net, c.len))
        .collect();
    let mut pool = DynamicObject::new(unique, &pool_resource()).within(&s.system_ns);
    pool.data = json!({"spec": {"addresses": pool_addrs, "autoAssign": false}});
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create the test pool");
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let create = async |svc: Service| {
        let name = svc.metadata.name.clone().unwrap_or_default();
        services
            .create(&PostParams::default(), &svc)
            .await
            .unwrap_or_else(|e| panic!("create Service {ns}/{name}: {e}"));
    };
    let key = "e2e-shared".to_string();

    // Allocation from the requested pool, with annotation, condition and Event.
    create(service(
        "web-tcp",
        &[("http", 80, "TCP")],
        &s.families,
        BTreeMap::from([
            (POOL_ANNOTATION, unique.to_string()),
            (SHARE_KEY, key.clone()),
        ]),
    ))
    .await;
    let ips = wait_allocated(&services, "web-tcp", &s.families, &s.pool).await;
    let svc = services.get("web-tcp").await.expect("get web-tcp");
    assert_eq!(
        svc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FROM_POOL))
            .map(String::as_str),
        Some(unique),
        "{FROM_POOL}"
    );
    let note = wait_event(&events, "web-tcp", "IPAllocated", "Normal").await;
    println!("web-tcp: {ips:?} ({note})");

    // Sharing: UDP on the same port with the same key gets the same addresses.
    create(service(
        "web-udp",
        &[("dns", 80, "UDP")],
        &s.families,
        BTreeMap::from([
            (POOL_ANNOTATION, unique.to_string()),
            (SHARE_KEY, key.clone()),
        ]),
    ))
    .await;
    let mut shared = wait_allocated(&services, "web-udp", &s.families, &s.pool).await;
    let mut first = ips.clone();
    shared.sort();
    first.sort();
    assert_eq!(shared, first, "same key, different protocols: shared");
    let pool_status = eventually(
        "the pool's status counts the shared addresses",
        async || {
            let p = pools.get(unique).await.map_err(|e| e.to_string())?;
            let st = p.data["status"].clone();
            let want = |f: &str| {
                if s.families.iter().any(|x| x == f) {
                    "1"
                } else {
                    "0"
                }
            };
            let count = |k: &str| match &st[k] {
                serde_json::Value::String(v) => v.clone(),
                v => v.to_string(),
            };
            if count("assignedIPv4") == want("IPv4") && count("assignedIPv6") == want("IPv6") {
                Ok(st)
            } else {
                Err(st.to_string())
            }
        },
    )
    .await;
    println!("pool status: {pool_status}");

    // A TCP Service asking for the shared addresses: port 80/TCP is taken.
    let wanted: Vec<String> = ips.iter().map(ToString::to_string).collect();
    create(service(
        "web-clash",
        &[("http", 80, "TCP")],
        &s.families,
        BTreeMap::from([(LB_IPS, wanted.join(",")), (SHARE_KEY, key.clone())]),
    ))
    .await;
    let (reason, message) = wait_failed(&services, "web-clash").await;
    assert_eq!(reason, "SharingConflict", "{message}");
    let warn = wait_event(&events, "web-clash", "AllocationFailed", "Warning").await;
    println!("web-clash: {reason}: {message} (Event: {warn})");

    // A bad request: an address outside every pool.
    let bad_family = vec![Settings::family_of(&s.outside).to_string()];
    create(service(
        "web-outside",
        &[("http", 80, "TCP")],
        &bad_family,
        BTreeMap::from([(LB_IPS, s.outside.to_string())]),
    ))
    .await;
    let (reason, message) = wait_failed(&services, "web-outside").await;
    assert_eq!(reason, "RequestedIPUnavailable", "{message}");
    assert!(
        message.contains("outside every address pool"),
        "the message says why: {message}"
    );
    wait_event(&events, "web-outside", "AllocationFailed", "Warning").await;
    println!("web-outside: {reason}: {message}");

    // Once the sharers are gone, the clashing Service gets the addresses it asked for.
    for name in ["web-tcp", "web-udp"] {
        services
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    let mut got = wait_allocated(&services, "web-clash", &s.families, &s.pool).await;
    got.sort();
    assert_eq!(got, first, "the freed addresses go to the waiting Service");
}
