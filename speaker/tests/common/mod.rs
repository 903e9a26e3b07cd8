//! Shared fixtures for the network tests: network namespaces named
//! `flb-<pid>-<tag>-...`, a tokio runtime per namespace, and a private FRR
//! instance (zebra, bgpd, bfdd) in a router namespace. Everything is torn down
//! in `Drop`, so a failing assertion (a panic) cleans up too.
//!
//! Namespace approach: a node's `SessionManager` runs on a dedicated thread
//! that entered the node's namespace with `setns(CLONE_NEWNET)` and drives a
//! current-thread tokio runtime; every socket the manager opens is created on
//! that thread, hence inside the namespace. The test thread talks to it with
//! `NodeRt::run`, which spawns a future there and waits for its output.

#![allow(dead_code)]

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

pub mod bird;
pub mod gobgp;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails the test with a clear message unless it runs as root.
pub fn require_root() {
    let euid = nix::unistd::geteuid();
    assert!(
        euid.is_root(),
        "this test needs root (network namespaces, veths, FRR); it runs as root in CI. \
         Run it with sudo or as root."
    );
}

/// A unique name `flb-<pid>-<tag><n>`.
pub fn unique(tag: &str) -> String {
    format!(
        "flb-{}-{tag}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, panicking with its output on failure; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, returning stdout or `None` on failure.
pub fn try_sh(args: &[&str]) -> Option<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace deleted on drop (after killing what still runs in it).
#[derive(Debug)]
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates `name` with `lo` up and IPv6 addresses kept on link down.
    pub fn new(name: &str) -> Self {
        sh(&["ip", "netns", "add", name]);
        let ns = Self {
            name: name.to_owned(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        for k in [
            "net.ipv6.conf.all.keep_addr_on_down=1",
            "net.ipv6.conf.default.keep_addr_on_down=1",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ] {
            ns.exec(&["sysctl", "-qw", k]);
        }
        ns
    }

    /// Runs a command inside the namespace (panics on failure).
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command inside the namespace, `None` on failure.
    pub fn try_exec(&self, args: &[&str]) -> Option<String> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        try_sh(&v)
    }

    /// Enters the namespace on the calling thread.
    pub fn enter(&self) {
        let f = fs::File::open(format!("/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("open netns {}: {e}", self.name));
        setns(f, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {}: {e}", self.name));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(pids) = try_sh(&["ip", "netns", "pids", &self.name]) {
            for pid in pids.split_whitespace() {
                let _ = try_sh(&["kill", "-9", pid]);
            }
        }
        let _ = try_sh(&["ip", "netns", "del", &self.name]);
    }
}

/// A current-thread tokio runtime on a thread inside a network namespace.
pub struct NodeRt {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeRt {
    /// Starts the thread, enters `ns` and runs a runtime there.
    pub fn new(ns: &Netns) -> Self {
        let path = format!("/run/netns/{}", ns.name);
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let f = fs::File::open(&path).expect("open netns");
            setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            htx.send(rt.handle().clone()).expect("send handle");
            rt.block_on(async move {
                let _ = stop_rx.await;
            });
        });
        let handle = hrx.recv().expect("node runtime thread");
        Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `f` on the namespace's runtime and waits for its output.
    pub fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("node runtime did not answer")
    }
}

impl Drop for NodeRt {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A private FRR instance (zebra, bgpd, bfdd) in a namespace, killed on drop.
pub struct Frr {
    ns: String,
    dir: tempfile::TempDir,
}

impl Frr {
    /// Writes the configs and starts the daemons in `ns`.
    pub fn start(ns: &Netns, bgpd_conf: &str, bfdd_conf: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("flb-frr-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        fs::write(d.join("zebra.conf"), "hostname r\n").expect("zebra.conf");
        fs::write(d.join("bgpd.conf"), bgpd_conf).expect("bgpd.conf");
        fs::write(d.join("bfdd.conf"), bfdd_conf).expect("bfdd.conf");
        sh(&["chown", "-R", "frr:frr", d.to_str().expect("utf-8 path")]);
        let frr = Self {
            ns: ns.name.clone(),
            dir,
        };
        frr.daemon("zebra", &[]);
        let api = d.join("zserv.api");
        wait_for(Duration::from_secs(5), "zebra socket", || {
            api.exists().then_some(())
        });
        frr.daemon("bfdd", &["--bfdctl", &frr.path("bfdd.sock")]);
        frr.daemon("bgpd", &[]);
        wait_for(Duration::from_secs(10), "bgpd vty", || {
            frr.try_vtysh("show bgp summary json")
        });
        frr
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).to_string_lossy().into_owned()
    }

    fn daemon(&self, name: &str, extra: &[&str]) {
        let bin = format!("/usr/lib/frr/{name}");
        let conf = self.path(&format!("{name}.conf"));
        let pid = self.path(&format!("{name}.pid"));
        let api = self.path("zserv.api");
        let vty = self.dir.path().to_string_lossy().into_owned();
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            &bin,
            "-d",
            "-f",
            &conf,
            "-i",
            &pid,
            "-z",
            &api,
            "--vty_socket",
            &vty,
            "-P",
            "0",
            "-u",
            "frr",
            "-g",
            "frr",
        ];
        args.extend_from_slice(extra);
        sh(&args);
    }

    /// The directory holding configs, sockets and pid files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a vtysh command, `None` on failure.
    pub fn try_vtysh(&self, cmd: &str) -> Option<String> {
        let vty = self.dir.path().to_string_lossy().into_owned();
        try_sh(&["vtysh", "--vty_socket", &vty, "-c", cmd])
    }

    /// Runs a vtysh command returning JSON.
    pub fn json(&self, cmd: &str) -> serde_json::Value {
        let out = self
            .try_vtysh(cmd)
            .unwrap_or_else(|| panic!("vtysh {cmd} failed"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("vtysh {cmd}: {e}: {out}"))
    }

    /// bgpd's state of a neighbour ("Established", "Active", ...), if known.
    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
        let v = self.json(&format!("show bgp neighbors {addr} json"));
        v.get(addr)?.get("bgpState")?.as_str().map(str::to_owned)
    }

    /// bfdd's status of a peer ("up", "down", ...), if it has a session.
    pub fn bfd_status(&self, addr: &str) -> Option<String> {
        let v = self.json("show bfd peers json");
        v.as_array()?
            .iter()
            .find(|p| p.get("peer").and_then(|x| x.as_str()) == Some(addr))?
            .get("status")?
            .as_str()
            .map(str::to_owned)
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for d in ["bgpd", "bfdd", "zebra"] {
            let pidfile: PathBuf = self.dir.path().join(format!("{d}.pid"));
            if let Ok(pid) = fs::read_to_string(&pidfile) {
                let pid = pid.trim().to_owned();
                if !pid.is_empty() {
                    let _ = try_sh(&["kill", "-9", &pid]);
                }
            }
        }
    }
}

/// Gateways of the kernel route to `prefix` in `ns` (one per ECMP nexthop).
pub fn fib_nexthops(ns: &Netns, prefix: &str) -> Vec<String> {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let Some(out) = ns.try_exec(&["ip", "-j", fam, "route", "show", prefix]) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    let mut gws = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        if let Some(g) = r.get("gateway").and_then(|g| g.as_str()) {
            gws.push(g.to_owned());
        }
        for nh in r
            .get("nexthops")
            .and_then(|n| n.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(g) = nh.get("gateway").and_then(|g| g.as_str()) {
                gws.push(g.to_owned());
            }
        }
    }
    gws.sort();
    gws
}

/// One L2 segment (a bridge in a switch namespace) joining a router namespace
/// and `n` node namespaces: router 10.0.0.1 / fd00::1, node `i` (from 1)
/// 10.0.0.(10+i) / fd00::(10+i). Taking a node's link down leaves the
/// router's link up, so the router sees a silent loss.
pub struct Lab {
    /// The router's FRR, if started (dropped first).
    pub frr: Option<Frr>,
    /// The router namespace.
    pub router: Netns,
    /// The node namespaces, index 0 = node 1.
    pub nodes: Vec<Netns>,
    /// The switch namespace with the bridge.
    pub switch: Netns,
}

impl Lab {
    /// Builds the namespaces, bridge, veths and addresses.
    pub fn new(tag: &str, n: usize) -> Self {
        require_root();
        let base = unique(tag);
        let switch = Netns::new(&format!("{base}-sw"));
        let router = Netns::new(&format!("{base}-r"));
        let mut lab = Self {
            frr: None,
            router,
            nodes: Vec::new(),
            switch,
        };
        lab.switch.exec(&[
            "ip",
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ]);
        lab.switch.exec(&["ip", "link", "set", "br0", "up"]);
        lab.attach(&lab.router.name.clone(), "r", "10.0.0.1", "fd00::1");
        for k in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            lab.router.exec(&["sysctl", "-qw", k]);
        }
        for i in 1..=n {
            let ns = Netns::new(&format!("{base}-n{i}"));
            let name = ns.name.clone();
            lab.nodes.push(ns);
            lab.attach(
                &name,
                &format!("n{i}"),
                &Self::node_v4(i),
                &Self::node_v6(i),
            );
        }
        lab
    }

    fn attach(&self, ns: &str, port: &str, v4: &str, v6: &str) {
        sh(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            &self.switch.name,
        ]);
        self.switch
            .exec(&["ip", "link", "set", port, "master", "br0", "up"]);
        let n = |args: &[&str]| {
            let mut v = vec!["ip", "-n", ns];
            v.extend_from_slice(args);
            sh(&v)
        };
        n(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        n(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
        n(&["link", "set", "eth0", "up"]);
    }

    /// Node `i`'s IPv4 address.
    pub fn node_v4(i: usize) -> String {
        format!("10.0.0.{}", 10 + i)
    }

    /// Node `i`'s IPv6 address.
    pub fn node_v6(i: usize) -> String {
        format!("fd00::{}", 10 + i)
    }

    /// Node `i`'s namespace.
    pub fn node(&self, i: usize) -> &Netns {
        &self.nodes[i - 1]
    }

    /// Takes node `i`'s link down (no NOTIFICATION can leave it).
    pub fn node_link_down(&self, i: usize) {
        self.node(i).exec(&["ip", "link", "set", "eth0", "down"]);
    }

    /// Starts FRR in the router namespace.
    pub fn start_frr(&mut self, bgpd_conf: &str, bfdd_conf: &str) {
        self.frr = Some(Frr::start(&self.router, bgpd_conf, bfdd_conf));
    }

    /// The router's FRR.
    pub fn frr(&self) -> &Frr {
        self.frr.as_ref().expect("FRR started")
    }
}

/// One neighbour in the router's bgpd.conf.
#[derive(Debug, Clone, Default)]
pub struct FrrNeighbor {
    /// Address.
    pub addr: String,
    /// Its AS.
    pub remote_as: u32,
    /// TCP-MD5 password.
    pub password: Option<String>,
    /// Enable BFD with profile `fast`.
    pub bfd: bool,
    /// No `ttl-security hops 1` for this eBGP neighbour (FRR runs BFD as
    /// multi-hop on GTSM neighbours).
    pub no_gtsm: bool,
}

/// A bgpd.conf for AS `asn` with static neighbours, ECMP across ASes, and
/// single-hop eBGP neighbours using GTSM (as the speaker does).
pub fn bgpd_conf(asn: u32, router_id: &str, neighbors: &[FrrNeighbor]) -> String {
    let mut c = format!(
        "hostname r\nlog stdout\n!\nrouter bgp {asn}\n bgp router-id {router_id}\n \
         no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
         bgp bestpath as-path multipath-relax\n"
    );
    for n in neighbors {
        let a = &n.addr;
        c += &format!(
            " neighbor {a} remote-as {}\n neighbor {a} timers connect 1\n",
            n.remote_as
        );
        if n.remote_as != asn && !n.no_gtsm {
            c += &format!(" neighbor {a} ttl-security hops 1\n");
        }
        if let Some(p) = &n.password {
            c += &format!(" neighbor {a} password {p}\n");
        }
        if n.bfd {
            c += &format!(" neighbor {a} bfd profile fast\n");
        }
    }
    for (af, v6) in [("ipv4", false), ("ipv6", true)] {
        c += &format!(" address-family {af} unicast\n  maximum-paths 8\n  maximum-paths ibgp 8\n");
        for n in neighbors.iter().filter(|n| n.addr.contains(':') == v6) {
            c += &format!("  neighbor {} activate\n", n.addr);
        }
        c += " exit-address-family\n";
    }
    c + "!\n"
}

/// A bfdd.conf with profile `fast`: `ms` x 3.
pub fn bfdd_conf(ms: u32) -> String {
    format!(
        "hostname r\n!\nbfd\n profile fast\n  receive-interval {ms}\n  transmit-interval {ms}\n  detect-multiplier 3\n !\n!\n"
    )
}

/// Whether bgpd's summary shows `addr` Established.
pub fn summary_established(frr: &Frr, addr: &str) -> bool {
    let v = frr.json("show bgp summary json");
    ["ipv4Unicast", "ipv6Unicast"].iter().any(|af| {
        v.get(af)
            .and_then(|a| a.get("peers"))
            .and_then(|p| p.get(addr))
            .and_then(|p| p.get("state"))
            .and_then(|s| s.as_str())
            == Some("Established")
    })
}

/// A node running ferrolb's `SessionManager` on a runtime inside its
/// namespace (for the BIRD and GoBGP router tests); shut down on drop.
pub struct SpeakerNode {
    /// The manager.
    pub mgr: ferrolb_speaker::net::SessionManager,
    rt: NodeRt,
}

impl SpeakerNode {
    /// Starts a manager (listening on port 179) in `ns` with `peers`.
    pub fn start(ns: &Netns, peers: Vec<ferrolb_speaker::net::PeerConfig>) -> Self {
        use ferrolb_speaker::net::{ManagerConfig, SessionManager};
        let rt = NodeRt::new(ns);
        let mgr = rt
            .run(async { SessionManager::start(ManagerConfig::default()) })
            .expect("manager starts");
        let m = mgr.clone();
        rt.run(async move { m.set_peers(peers).await })
            .expect("peers accepted");
        Self { mgr, rt }
    }

    /// Replaces the routes announced to every peer.
    pub fn set_routes(&self, routes: ferrolb_speaker::bgp::update::RouteSet) {
        let m = self.mgr.clone();
        self.rt
            .run(async move {
                m.set_routes(ferrolb_speaker::net::RouteTarget::All, routes)
                    .await
            })
            .expect("routes accepted");
    }

    /// The FSM state of peer `id`.
    pub fn state(&self, id: &str) -> Option<ferrolb_speaker::bgp::fsm::State> {
        self.mgr.peer_status(id).map(|s| s.state)
    }

    /// Whether peer `id` is Established.
    pub fn established(&self, id: &str) -> bool {
        self.state(id) == Some(ferrolb_speaker::bgp::fsm::State::Established)
    }

    /// How many times peer `id` has reached Established (`None`: no such peer).
    pub fn established_count(&self, id: &str) -> Option<u64> {
        self.mgr.peer_status(id).map(|s| s.established_count)
    }
}

impl Drop for SpeakerNode {
    fn drop(&mut self) {
        let m = self.mgr.clone();
        self.rt.run(async move { m.shutdown().await });
    }
}

/// A route set from `(prefix, attributes)` pairs.
pub fn route_set(
    entries: &[(&str, ferrolb_speaker::bgp::update::RouteAttrs)],
) -> ferrolb_speaker::bgp::update::RouteSet {
    entries
        .iter()
        .map(|(p, a)| (p.parse::<ipnet::IpNet>().expect("prefix"), a.clone()))
        .collect()
}

/// AS of the router namespace's BGP daemon in the interop tests.
pub const ROUTER_AS: u32 = 64500;
/// The IPv4 VIP the interop tests announce.
pub const VIP4: &str = "198.51.100.10/32";
/// The IPv6 VIP the interop tests announce.
pub const VIP6: &str = "2001:db8:100::10/128";

/// Peers of node `i` towards the router (AS [`ROUTER_AS`]): `r4` to 10.0.0.1 and, if
/// `v6`, `r6` to fd00::1; router id 10.0.0.(10 + i), connect retry 1 s.
pub fn router_peers(i: usize, local_as: u32, v6: bool) -> Vec<ferrolb_speaker::net::PeerConfig> {
    use ferrolb_speaker::bgp::open::PeerAsPolicy;
    use ferrolb_speaker::net::PeerConfig;
    use std::net::{IpAddr, Ipv4Addr};
    let rid = Ipv4Addr::new(10, 0, 0, 10 + i as u8);
    let mut v = vec![PeerConfig::new(
        "r4",
        local_as,
        PeerAsPolicy::Fixed(ROUTER_AS),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        rid,
    )];
    if v6 {
        v.push(PeerConfig::new(
            "r6",
            local_as,
            PeerAsPolicy::Fixed(ROUTER_AS),
            "fd00::1".parse().expect("addr"),
            rid,
        ));
    }
    for p in &mut v {
        p.connect_time = Duration::from_secs(1);
    }
    v
}

/// The standard community `a:b` as its 32-bit value.
pub fn community(a: u16, b: u16) -> u32 {
    (u32::from(a) << 16) | u32::from(b)
}

/// The TCP-MD5 password the interop tests configure on the router and on node 1.
pub const MD5_PASSWORD: &str = "s3cret-pw";

/// IPv4 peer of node `i` (AS 64600 + i) towards the router, keyed with TCP-MD5
/// `password`.
pub fn md5_peers(i: usize, password: &str) -> Vec<ferrolb_speaker::net::PeerConfig> {
    let mut v = router_peers(i, 64600 + i as u32, false);
    v[0].password = Some(password.into());
    v
}

/// Peers of node `i` (AS 64600 + i, IPv4 and IPv6) towards the router with BFD at 100 ms
/// intervals, multiplier 3, active.
pub fn bfd_peers(i: usize) -> Vec<ferrolb_speaker::net::PeerConfig> {
    let bfd = ferrolb_speaker::net::BfdConfig {
        transmit_interval_us: 100_000,
        receive_interval_us: 100_000,
        detect_multiplier: 3,
        passive: false,
    };
    let mut v = router_peers(i, 64600 + i as u32, true);
    for p in &mut v {
        p.bfd = Some(bfd);
    }
    v
}

/// Waits up to `timeout` until each `(node, peer id)` session is Established on our side.
pub fn wait_ours_established(sessions: &[(&SpeakerNode, &str)], timeout: Duration) {
    for (n, id) in sessions {
        wait_for(timeout, &format!("our {id} Established"), || {
            n.established(id).then_some(())
        });
    }
}

/// For 6 s (several 1 s connect retries on each side) asserts that neither the router
/// (`router_up`) nor node `n2` brings up the wrong-password session `r4`, then that
/// `n2`'s status was never Established and its last error names a TCP-MD5 timeout.
/// Returns that status.
pub fn assert_md5_refused(
    n2: &SpeakerNode,
    mut router_up: impl FnMut() -> bool,
) -> ferrolb_speaker::net::PeerStatus {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(6) {
        assert!(!router_up(), "wrong password Established");
        assert!(!n2.established("r4"), "wrong password Established (ours)");
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = n2.mgr.peer_status("r4").expect("status");
    assert_eq!(st.established_count, 0, "{st:?}");
    assert_ne!(
        st.state,
        ferrolb_speaker::bgp::fsm::State::Established,
        "{st:?}"
    );
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out") && e.contains("TCP-MD5")),
        "the status names the likely cause: {st:?}"
    );
    st
}
