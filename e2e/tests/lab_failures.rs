//! The lab on bad input (issue 5): a namespace name that is taken, a run directory that
//! exists, and fixed ports that are in use (the API server's, the pod servers', gobgpd's
//! API port). Each fails at a named step with a hint, leaves what is not the lab's alone
//! and tears down what it built. Needs root; tests run in parallel (unique run names).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::lab::{self, Lab, LabSpec, netns};

mod lab_common;
use lab_common::{assert_torn_down, namespaces_with_prefix, root};

/// A namespace made by the test (someone else's, from the lab's point of view) with a
/// process in it; both removed on drop, also when the test panics.
struct Foreign {
    ns: String,
    sleeper: Child,
}

impl Foreign {
    fn create(ns: &str) -> Foreign {
        lab::exec::run("create a foreign namespace", &["ip", "netns", "add", ns])
            .expect("ip netns add");
        let sleeper = Command::new("ip")
            .args(["netns", "exec", ns, "sleep", "60"])
            .spawn()
            .expect("sleeper");
        let f = Foreign {
            ns: ns.to_string(),
            sleeper,
        };
        lab::wait_until(
            "sleeper in the foreign namespace",
            Duration::from_secs(5),
            || Ok(!lab::ns_pids(ns).is_empty()),
        )
        .expect("sleeper");
        f
    }

    fn sleeper_running(&mut self) -> bool {
        matches!(self.sleeper.try_wait(), Ok(None))
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A base directory of this test's own, removed on drop.
struct TempBase(PathBuf);

impl TempBase {
    fn new(tag: &str) -> TempBase {
        let p = std::env::temp_dir().join(format!("flb-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&p).expect("base dir");
        TempBase(p)
    }
}

impl Drop for TempBase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn taken_namespace_fails_at_its_step_and_is_left_alone() {
    root();
    let run = format!("flb-{}-taken", std::process::id());
    // node1's namespace: the router's, the switch's and the client's come before it, so
    // the failed build has something to tear down.
    let taken = format!("{run}-n1");
    let mut foreign = Foreign::create(&taken);
    let base = TempBase::new("taken");
    let spec = LabSpec {
        nodes: 1,
        pods_per_node: 1,
        bfd: None,
        run_name: Some(run.clone()),
        base_dir: base.0.clone(),
        ..LabSpec::default()
    };
    let err = Lab::up(spec).expect_err("the namespace name is taken");
    assert_eq!(err.step, format!("create namespace {taken}"), "{err}");
    assert!(
        err.detail
            .contains(&format!("namespace {taken} already exists")),
        "{err}"
    );
    let hint = err.hint.clone().unwrap_or_default();
    // The name carries this process's pid, which runs: the hint says so and how to avoid it.
    for want in [
        format!("namespace {taken} was not created by this lab"),
        "LabSpec::run_name".to_string(),
    ] {
        assert!(hint.contains(&want), "hint {hint:?} lacks {want:?}");
    }
    // The foreign namespace and its process are untouched; nothing else of the run is left.
    assert_eq!(
        namespaces_with_prefix(&format!("{run}-")),
        vec![taken.clone()]
    );
    assert!(
        foreign.sleeper_running(),
        "the lab killed a foreign process"
    );
    assert!(!base.0.join(&run).exists(), "run dir left behind");
    drop(foreign);
    assert_torn_down(&run, &base.0.join(&run));
}

#[test]
fn existing_run_dir_fails_before_any_namespace_and_is_kept() {
    root();
    let run = format!("flb-{}-olddir", std::process::id());
    let base = TempBase::new("olddir");
    let dir = base.0.join(&run);
    std::fs::create_dir(&dir).expect("run dir");
    std::fs::write(dir.join("keep"), "not the lab's").expect("file");
    let spec = LabSpec {
        nodes: 1,
        pods_per_node: 0,
        bfd: None,
        run_name: Some(run.clone()),
        base_dir: base.0.clone(),
        ..LabSpec::default()
    };
    let err = Lab::up(spec).expect_err("run dir exists");
    assert_eq!(
        err.step,
        format!("create run directory {}", dir.display()),
        "{err}"
    );
    let hint = err.hint.clone().unwrap_or_default();
    assert!(hint.contains(&format!("rm -r {}", dir.display())), "{hint}");
    assert!(
        dir.join("keep").exists(),
        "the lab removed a directory it did not create"
    );
    assert_eq!(
        namespaces_with_prefix(&format!("{run}-")),
        Vec::<String>::new()
    );
}

#[test]
fn bad_run_names_are_refused_before_building() {
    root();
    for name in [
        "other-1-x",
        "flb-x",
        "flb-1-UP",
        "flb-123456789-aaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let err = Lab::up(LabSpec {
            run_name: Some(name.into()),
            ..LabSpec::default()
        })
        .expect_err(name);
        assert_eq!(err.step, "validate lab spec", "{name}: {err}");
        assert!(err.detail.contains(name), "{err}");
        assert!(namespaces_with_prefix(name).is_empty(), "{name}");
    }
}

#[tokio::test]
async fn api_server_port_in_use_names_address_and_fix() {
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("hold a port");
    let port = held.local_addr().expect("addr").port();
    let Err(err) = ApiServer::start(ApiServerOptions {
        port,
        ..ApiServerOptions::default()
    })
    .await
    else {
        panic!("port {port} is held, the API server must not start");
    };
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(
        msg.contains("port in use: pick another with --port or 0"),
        "{msg}"
    );
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    // The held port is fine once released, and port 0 always works.
    drop(held);
    let api = ApiServer::start(ApiServerOptions::default())
        .await
        .expect("port 0");
    api.shutdown().await;
}

/// Binds TCP `[::]:port` (dual-stack) inside namespace `ns`; the socket stays there.
fn hold_in(ns: &str, addr: SocketAddr) -> TcpListener {
    let step = format!("hold {addr} in {ns}");
    netns::run_in(ns, move || {
        TcpListener::bind(addr).map_err(|e| lab::LabError::new(step, e.to_string(), None))
    })
    .expect("hold a port in the namespace")
}

#[test]
fn pod_port_in_use_names_pod_and_port_and_starts_nothing() {
    root();
    let lab = Lab::up(LabSpec {
        nodes: 1,
        pods_per_node: 2,
        bfd: None,
        ..LabSpec::default()
    })
    .expect("lab up");
    let (run, dir) = (lab.run_name().to_string(), lab.run_dir().to_path_buf());
    let (p1, p2) = (
        lab.nodes()[0].pods[0].clone(),
        lab.nodes()[0].pods[1].clone(),
    );
    let port = 18080;
    let held = hold_in(&p2.ns, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));

    let err = lab.serve_pods(port).expect_err("port taken in pod-1-2");
    assert_eq!(
        err.step,
        format!("start pod server pod-1-2 on port {port} in {}", p2.ns),
        "{err}"
    );
    let hint = err.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "port {port} is in use in pod pod-1-2 (namespace {})",
            p2.ns
        )),
        "{hint}"
    );
    // All or nothing: pod-1-1's server, started first, was stopped again.
    let a1 = SocketAddr::new(p1.addr.v4.expect("v4").into(), port);
    assert!(lab.client_tcp(a1).is_err(), "pod-1-1 still serves {port}");

    // Another port works in every pod.
    let other = port + 1;
    lab.serve_pods(other).expect("free port");
    for (p, want) in [(&p1, "pod-1-1"), (&p2, "pod-1-2")] {
        let a = SocketAddr::new(p.addr.v4.expect("v4").into(), other);
        assert_eq!(lab.client_tcp(a).expect("pod answers"), want);
    }
    drop(held);
    lab.down().expect("down");
    assert_torn_down(&run, &dir);
}

#[test]
fn gobgp_api_port_in_use_is_named_before_starting() {
    root();
    lab::exec::require_program("gobgp test", "gobgpd").expect("gobgpd installed");
    let lab = Lab::up(LabSpec {
        nodes: 1,
        pods_per_node: 0,
        bfd: None,
        ..LabSpec::default()
    })
    .expect("lab up");
    let (run, dir) = (lab.run_name().to_string(), lab.run_dir().to_path_buf());
    let ns = lab.nodes()[0].ns.clone();
    let api = SocketAddr::from((Ipv4Addr::LOCALHOST, lab::gobgp::API_PORT));
    let held = hold_in(&ns, api);

    let err = lab.start_gobgp(1).expect_err("API port taken");
    assert_eq!(err.step, format!("start gobgpd in {ns}"), "{err}");
    assert!(err.detail.contains(&format!("bind {api}")), "{err}");
    let hint = err.hint.clone().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "API port {} is in use in {ns}",
            lab::gobgp::API_PORT
        )),
        "{hint}"
    );
    drop(held);
    lab.start_gobgp(1)
        .expect("gobgpd starts once the port is free");
    lab.down().expect("down");
    assert_torn_down(&run, &dir);
}
