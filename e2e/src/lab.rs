//! Network-namespace lab: a small virtual data centre for the demo, the e2e suite and the
//! failover benchmarks.
//!
//! Namespaces of one run `flb-<pid>-<k>`: router `-r`, switch `-s`, client `-c`, nodes
//! `-n<i>`, pods `-n<i>p<j>`. Links (router address `.1`/`::1` on routed links):
//!
//! | link | subnets |
//! |---|---|
//! | node `up0` ⇄ switch bridge `up<i>` ⇄ router `n<i>` | `10.0.<i>.0/30`, `fd00:10:<i>::/64` (node `.2`) |
//! | client `up0` ⇄ router `cl` | `10.1.0.0/30`, `fd00:11::/64` (client `.2`) |
//! | node `l2`, client `l2` ⇄ switch bridge `br0` | `192.168.50.0/24`, `fd00:50::/64` (node `.<10+i>`, client `.100`) |
//! | pod `eth0` ⇄ node bridge `cbr0` port `p<j>` | `10.244.<i>.0/24`, `fd00:244:<i>::/64` (gateway `.1`, pod `.<10+j>`) |
//!
//! Loopbacks: node `10.255.0.<i>/32`, `fd00:255::<i>/128`; router `10.255.0.254`.
//!
//! - The router peers with every node by BGP, one session per family (FRR: `bgp listen
//!   range` per node link or static neighbours, see [`FrrPeering`]; BIRD: static sessions),
//!   with multipath to up to 8 nodes and BFD when the spec asks for it, and has static routes to each node's pod CIDR and loopback, so a node can DNAT to pods on
//!   any node through it.
//! - Each node's uplink passes through a bridge of its own in the switch namespace, so when
//!   a node's link goes down ([`Lab::node_fail`]) the router's port keeps its carrier, as
//!   behind a real switch: the router notices only by hold timer or BFD.
//! - The shared L2 segment is a bridge in the switch namespace joining every node and the
//!   client (not the router), so L2-mode tests see only nodes and client on it: `192.168.50.0/24`
//!   and `fd00:50::/64` (VIPs for L2 mode: [`spec::L2_VIP_RANGE_V4`], [`spec::L2_VIP_RANGE_V6`]).
//! - The client reaches BGP VIPs ([`spec::BGP_VIP_POOL_V4`], [`spec::BGP_VIP_POOL_V6`]) by its
//!   default route through the router, and L2 VIPs directly on the segment.
//! - Every namespace has `keep_addr_on_down=1`, `accept_dad=0` (addresses are also `nodad`)
//!   and loose `rp_filter`; router and nodes forward; the router hashes ECMP on L4 ports.
//!
//! The [`Lab`] owns everything it creates: dropping it (also while unwinding from a panic),
//! [`Lab::down`] or a [`TeardownHandle`] kill its daemons, delete its namespaces and remove
//! its run directory. A build that fails half-way tears down what it built and returns a
//! [`LabError`] naming the step and the fix. [`cleanup_stale`] removes what a killed run left.

pub mod bird_speaker;
pub mod error;
pub mod exec;
pub mod gobgp;
pub mod kube_proxy;
pub mod netns;
pub mod pod_server;
pub mod query;
pub mod router;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use error::{LabError, LabResult};
pub use kube_proxy::{Proto, Service};
pub use query::{BfdPeer, BgpNeighbor, Nexthop};
pub use spec::{
    BfdTimers, DualAddr, Families, FrrPeering, LabSpec, NodeAsns, NodePlan, Plan, PodPlan,
    RouterKind,
};

use bird_speaker::BirdSpeaker;
use exec::{ip_batch, require_program, run, run_in, run_with_input};
use gobgp::{GoBgp, GoBgpNeighbor};
use pod_server::PodServer;

/// Default prefix of every lab namespace and run directory.
pub const PREFIX: &str = "flb-";

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fails unless the process runs as root (the lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN).
pub fn require_root() -> LabResult<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::new(
            "check privileges",
            format!(
                "running as uid {}, the lab needs root",
                nix::unistd::geteuid()
            ),
            Some("run the tests as root (e.g. sudo -E cargo test -p ferrolb-e2e)".into()),
        ))
    }
}

#[derive(Default)]
struct State {
    namespaces: Vec<String>,
    pid_files: Vec<PathBuf>,
    run_dir_created: bool,
    gobgp: BTreeMap<u8, GoBgp>,
    bird_speakers: BTreeMap<u8, BirdSpeaker>,
    pods: Vec<PodServer>,
    services: BTreeMap<u8, Vec<Service>>,
}

struct Inner {
    spec: LabSpec,
    plan: Plan,
    run_dir: PathBuf,
    state: Mutex<State>,
    down: AtomicBool,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Idempotent teardown; returns the problems met (it always goes on to the end).
    fn teardown(&self) -> Vec<String> {
        if self.down.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        let mut problems = Vec::new();
        let mut st = self.state();
        for mut p in st.pods.drain(..) {
            p.stop();
        }
        for (_, mut g) in std::mem::take(&mut st.gobgp) {
            g.stop();
        }
        st.bird_speakers.clear();
        let namespaces = std::mem::take(&mut st.namespaces);
        let mut pids: Vec<i32> = Vec::new();
        for f in std::mem::take(&mut st.pid_files) {
            if let Some(pid) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                && namespaces.iter().any(|ns| ns_pids(ns).contains(&pid))
            {
                pids.push(pid);
            }
        }
        for ns in &namespaces {
            pids.extend(ns_pids(ns));
        }
        pids.sort_unstable();
        pids.dedup();
        problems.extend(kill_all(&pids));
        problems.extend(delete_namespaces(&namespaces));
        if st.run_dir_created
            && let Err(e) = std::fs::remove_dir_all(&self.run_dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            problems.push(format!("remove {}: {e}", self.run_dir.display()));
        }
        st.run_dir_created = false;
        problems
    }
}

fn pid_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// How to fix a namespace name that is taken, from the owner pid in its name (with whether
/// that process runs) and this process's pid `me`. Pure.
fn taken_namespace_hint(ns: &str, owner: Option<(i32, bool)>, me: i32) -> String {
    match owner {
        Some((pid, true)) if pid == me => format!(
            "namespace {ns} was not created by this lab but carries this process's pid {me}: \
             another lab of this process uses the same run name; give each lab its own \
             LabSpec::run_name"
        ),
        Some((pid, true)) => format!(
            "namespace {ns} belongs to the live process {pid} (another lab run?): stop that \
             run (e.g. `ferrolb-lab down`) or pick another run name"
        ),
        Some((pid, false)) => format!(
            "namespace {ns} exists and is not ours (no live owner pid: {pid} has exited): \
             remove it with `ip netns del {ns}` or run `ferrolb-lab down`"
        ),
        None => format!(
            "namespace {ns} exists and is not ours (no owner pid in its name): remove it with \
             `ip netns del {ns}`"
        ),
    }
}

/// Pids of the processes whose network namespace is the named namespace `ns` (never this
/// process itself).
pub fn ns_pids(ns: &str) -> Vec<i32> {
    let Ok(target) = std::fs::metadata(netns::netns_path(ns)) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only its parent can reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// SIGTERM, up to 2 s grace, then SIGKILL.
fn kill_all(pids: &[i32]) -> Vec<String> {
    for &p in pids {
        let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
    }
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut problems = Vec::new();
    for &p in pids.iter().filter(|&&p| alive(p)) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &p in pids.iter().filter(|&&p| alive(p)) {
        problems.push(format!("process {p} survived SIGKILL"));
    }
    problems
}

fn delete_namespaces(namespaces: &[String]) -> Vec<String> {
    if namespaces.is_empty() {
        return Vec::new();
    }
    let script: String = namespaces
        .iter()
        .rev()
        .map(|ns| format!("netns del {ns}\n"))
        .collect();
    let _ = run_with_input(
        "delete lab namespaces",
        &["ip", "-force", "-batch", "-"],
        Some(&script),
    );
    namespaces
        .iter()
        .filter(|ns| netns::netns_path(ns).exists())
        .map(|ns| format!("namespace {ns} still exists"))
        .collect()
}

/// A handle that tears the lab down from another thread (e.g. a Ctrl-C handler thread such
/// as `tokio::signal::ctrl_c` or the `ctrlc` crate's). Idempotent; it takes a mutex and runs
/// commands, so call it from a signal-handling thread, not inside an async-signal handler.
#[derive(Clone)]
pub struct TeardownHandle {
    inner: Arc<Inner>,
}

impl TeardownHandle {
    /// Tears the lab down (no-op after the first call); returns the problems met.
    pub fn teardown(&self) -> Vec<String> {
        self.inner.teardown()
    }
}

impl std::fmt::Debug for TeardownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeardownHandle({})", self.inner.plan.run)
    }
}

/// A running lab. See the module documentation for the topology.
pub struct Lab {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("run", &self.inner.plan.run)
            .field("run_dir", &self.inner.run_dir)
            .finish()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in self.inner.teardown() {
            eprintln!("lab {}: teardown: {p}", self.inner.plan.run);
        }
    }
}

fn sysctl_script(keys: &[String]) -> Vec<String> {
    let mut argv = vec!["sysctl".to_string(), "-q".to_string(), "-w".to_string()];
    argv.extend(keys.iter().cloned());
    argv
}

impl Lab {
    /// Builds the lab described by `spec`. On failure everything built so far is torn down
    /// and the error names the failing step.
    pub fn up(spec: LabSpec) -> LabResult<Lab> {
        require_root()?;
        for p in ["ip", "sysctl"] {
            require_program("check required programs", p)?;
        }
        let run_name = match &spec.run_name {
            Some(name) => name.clone(),
            None => format!(
                "{PREFIX}{}-{}",
                std::process::id(),
                RUN_COUNTER.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let plan = spec.plan(&run_name)?;
        let run_dir = spec.base_dir.join(&run_name);
        let lab = Lab {
            inner: Arc::new(Inner {
                spec,
                plan,
                run_dir,
                state: Mutex::new(State::default()),
                down: AtomicBool::new(false),
            }),
        };
        lab.build()?;
        Ok(lab)
    }

    fn build(&self) -> LabResult<()> {
        let plan = &self.inner.plan;
        let spec = &self.inner.spec;
        let dir = &self.inner.run_dir;
        std::fs::create_dir(dir).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} exists and is not this lab's: remove it with `rm -r {}` or run \
                     `ferrolb-lab down` (removes leftovers of killed runs)",
                    dir.display(),
                    dir.display()
                )
            } else {
                "remove leftovers of killed runs with cleanup_stale(\"flb-\")".into()
            };
            LabError::new(
                format!("create run directory {}", dir.display()),
                e.to_string(),
                Some(hint),
            )
        })?;
        self.inner.state().run_dir_created = true;

        for ns in plan.namespaces() {
            let step = format!("create namespace {ns}");
            if let Err(e) = run(&step, &["ip", "netns", "add", &ns]) {
                // Never delete it: only namespaces this lab created are in its state.
                return Err(if netns::netns_path(&ns).exists() {
                    let owner = owner_pid(PREFIX, &ns).map(|pid| (pid, pid_exists(pid)));
                    LabError::new(
                        step,
                        format!("namespace {ns} already exists; {}", e.detail),
                        Some(taken_namespace_hint(&ns, owner, std::process::id() as i32)),
                    )
                } else {
                    e
                });
            }
            self.inner.state().namespaces.push(ns);
        }

        // Links, created directly inside their namespaces (names are per namespace, so no
        // clash with other runs in the root namespace).
        let r = &plan.router_ns;
        let s = &plan.switch_ns;
        let c = &plan.client;
        let mut links = String::new();
        let _ = writeln!(
            links,
            "link add name {} netns {s} type bridge mcast_snooping 0",
            spec::SWITCH_BRIDGE
        );
        let _ = writeln!(
            links,
            "link add name {} netns {} type veth peer name {} netns {r}",
            c.uplink_if, c.ns, c.router_if
        );
        let _ = writeln!(
            links,
            "link add name {} netns {} type veth peer name {} netns {s}",
            c.l2_if, c.ns, c.switch_port
        );
        for n in &plan.nodes {
            let _ = writeln!(
                links,
                "link add name {} netns {s} type bridge",
                n.uplink_bridge
            );
            let _ = writeln!(
                links,
                "link add name {} netns {} type veth peer name {} netns {s}",
                n.uplink_if, n.ns, n.uplink_node_port
            );
            let _ = writeln!(
                links,
                "link add name {} netns {r} type veth peer name {} netns {s}",
                n.router_if, n.uplink_router_port
            );
            let _ = writeln!(
                links,
                "link add name {} netns {} type veth peer name {} netns {s}",
                n.l2_if, n.ns, n.switch_port
            );
            let _ = writeln!(
                links,
                "link add name {} netns {} type bridge",
                spec::POD_BRIDGE,
                n.ns
            );
            for p in &n.pods {
                let _ = writeln!(
                    links,
                    "link add name {} netns {} type veth peer name {} netns {}",
                    spec::POD_IF,
                    p.ns,
                    p.node_if,
                    n.ns
                );
            }
        }
        run_with_input("create links", &["ip", "-batch", "-"], Some(&links)).map_err(|e| {
            LabError {
                detail: format!("{}; batch was:\n{links}", e.detail),
                ..e
            }
        })?;

        // sysctls, per namespace: defaults, all, and each interface.
        let base = |ifs: &[&str], forward: bool| -> Vec<String> {
            let mut k: Vec<String> = Vec::new();
            for scope in ["all", "default"] {
                k.push(format!("net.ipv6.conf.{scope}.keep_addr_on_down=1"));
                k.push(format!("net.ipv6.conf.{scope}.accept_dad=0"));
                k.push(format!("net.ipv4.conf.{scope}.rp_filter=2"));
            }
            for i in ifs.iter().chain(["lo"].iter()) {
                k.push(format!("net.ipv6.conf.{i}.keep_addr_on_down=1"));
                k.push(format!("net.ipv6.conf.{i}.accept_dad=0"));
                k.push(format!("net.ipv4.conf.{i}.rp_filter=2"));
            }
            if forward {
                k.push("net.ipv4.ip_forward=1".into());
                k.push("net.ipv6.conf.all.forwarding=1".into());
            }
            k
        };
        let mut sysctls: Vec<(String, Vec<String>)> = Vec::new();
        let mut rifs: Vec<&str> = plan.nodes.iter().map(|n| n.router_if.as_str()).collect();
        rifs.push(&c.router_if);
        let mut rkeys = base(&rifs, true);
        rkeys.push("net.ipv4.fib_multipath_hash_policy=1".into());
        rkeys.push("net.ipv6.fib_multipath_hash_policy=1".into());
        sysctls.push((r.clone(), rkeys));
        let mut sifs: Vec<&str> = plan.nodes.iter().map(|n| n.switch_port.as_str()).collect();
        sifs.push(&c.switch_port);
        sifs.push(spec::SWITCH_BRIDGE);
        for n in &plan.nodes {
            sifs.extend([
                n.uplink_bridge.as_str(),
                &n.uplink_node_port,
                &n.uplink_router_port,
            ]);
        }
        sysctls.push((s.clone(), base(&sifs, false)));
        sysctls.push((c.ns.clone(), base(&[&c.uplink_if, &c.l2_if], false)));
        for n in &plan.nodes {
            let mut ifs = vec![n.uplink_if.as_str(), n.l2_if.as_str(), spec::POD_BRIDGE];
            ifs.extend(n.pods.iter().map(|p| p.node_if.as_str()));
            sysctls.push((n.ns.clone(), base(&ifs, true)));
            for p in &n.pods {
                sysctls.push((p.ns.clone(), base(&[spec::POD_IF], false)));
            }
        }
        for (ns, keys) in &sysctls {
            let argv = sysctl_script(keys);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            run_in(&format!("set sysctls in {ns}"), ns, &argv)?;
        }

        // Links up and addresses.
        let addr = |b: &mut String, a: &DualAddr, v4len: u8, v6len: u8, dev: &str| {
            if let Some(v4) = a.v4 {
                let _ = writeln!(b, "addr add {v4}/{v4len} dev {dev}");
            }
            if let Some(v6) = a.v6 {
                let _ = writeln!(b, "addr add {v6}/{v6len} dev {dev} nodad");
            }
        };
        let mut rb = String::from("link set lo up\n");
        addr(&mut rb, &plan.router_loopback, 32, 128, "lo");
        for n in &plan.nodes {
            let _ = writeln!(rb, "link set {} up", n.router_if);
            addr(&mut rb, &n.router_side, 30, 64, &n.router_if);
        }
        let _ = writeln!(rb, "link set {} up", c.router_if);
        addr(&mut rb, &c.router_side, 30, 64, &c.router_if);
        ip_batch(&format!("configure links in {r}"), r, &rb)?;

        let mut sb = format!("link set lo up\nlink set {} up\n", spec::SWITCH_BRIDGE);
        for port in plan
            .nodes
            .iter()
            .map(|n| n.switch_port.as_str())
            .chain([c.switch_port.as_str()])
        {
            let _ = writeln!(
                sb,
                "link set {port} master {}\nlink set {port} up",
                spec::SWITCH_BRIDGE
            );
        }
        for n in &plan.nodes {
            let _ = writeln!(sb, "link set {} up", n.uplink_bridge);
            for port in [&n.uplink_node_port, &n.uplink_router_port] {
                let _ = writeln!(
                    sb,
                    "link set {port} master {}\nlink set {port} up",
                    n.uplink_bridge
                );
            }
        }
        ip_batch(&format!("configure switch in {s}"), s, &sb)?;

        let mut cb = format!(
            "link set lo up\nlink set {} up\nlink set {} up\n",
            c.uplink_if, c.l2_if
        );
        addr(&mut cb, &c.uplink, 30, 64, &c.uplink_if);
        addr(
            &mut cb,
            &c.l2,
            spec::L2_PREFIX_LEN_V4,
            spec::L2_PREFIX_LEN_V6,
            &c.l2_if,
        );
        ip_batch(&format!("configure links in {}", c.ns), &c.ns, &cb)?;

        for n in &plan.nodes {
            let mut nb = format!(
                "link set lo up\nlink set {} up\nlink set {} up\nlink set {} up\n",
                n.uplink_if,
                n.l2_if,
                spec::POD_BRIDGE
            );
            addr(&mut nb, &n.loopback, 32, 128, "lo");
            addr(&mut nb, &n.uplink, 30, 64, &n.uplink_if);
            addr(
                &mut nb,
                &n.l2,
                spec::L2_PREFIX_LEN_V4,
                spec::L2_PREFIX_LEN_V6,
                &n.l2_if,
            );
            addr(&mut nb, &n.pod_gateway, 24, 64, spec::POD_BRIDGE);
            for p in &n.pods {
                let _ = writeln!(
                    nb,
                    "link set {} master {}\nlink set {} up",
                    p.node_if,
                    spec::POD_BRIDGE,
                    p.node_if
                );
            }
            ip_batch(&format!("configure links in {}", n.ns), &n.ns, &nb)?;
            for p in &n.pods {
                let mut pb = format!("link set lo up\nlink set {} up\n", spec::POD_IF);
                addr(&mut pb, &p.addr, 24, 64, spec::POD_IF);
                ip_batch(&format!("configure links in {}", p.ns), &p.ns, &pb)?;
            }
        }

        // Routes (after every link is up so gateways resolve).
        let mut rr = String::new();
        for n in &plan.nodes {
            if let (Some(cidr), Some(gw)) = (&n.pod_cidr_v4, n.uplink.v4) {
                let _ = writeln!(rr, "route replace {cidr} via {gw}");
            }
            if let (Some(cidr), Some(gw)) = (&n.pod_cidr_v6, n.uplink.v6) {
                let _ = writeln!(rr, "route replace {cidr} via {gw}");
            }
            if let (Some(lo), Some(gw)) = (n.loopback.v4, n.uplink.v4) {
                let _ = writeln!(rr, "route replace {lo}/32 via {gw}");
            }
            if let (Some(lo), Some(gw)) = (n.loopback.v6, n.uplink.v6) {
                let _ = writeln!(rr, "route replace {lo}/128 via {gw}");
            }
        }
        ip_batch(&format!("add routes in {r}"), r, &rr)?;
        ip_batch(
            &format!("add routes in {}", c.ns),
            &c.ns,
            &default_routes(&c.router_side),
        )?;
        for n in &plan.nodes {
            ip_batch(
                &format!("add routes in {}", n.ns),
                &n.ns,
                &default_routes(&n.router_side),
            )?;
            for p in &n.pods {
                ip_batch(
                    &format!("add routes in {}", p.ns),
                    &p.ns,
                    &default_routes(&n.pod_gateway),
                )?;
            }
        }

        router::start_router(spec, plan, dir, &mut |pid_file| {
            self.inner.state().pid_files.push(pid_file)
        })
    }

    /// Tears the lab down now, reporting problems (a namespace or process that would not go).
    pub fn down(self) -> LabResult<()> {
        let problems = self.inner.teardown();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LabError::new(
                format!("tear down lab {}", self.inner.plan.run),
                problems.join("; "),
                None,
            ))
        }
    }

    /// A cloneable handle for tearing down from another thread (Ctrl-C).
    pub fn teardown_handle(&self) -> TeardownHandle {
        TeardownHandle {
            inner: self.inner.clone(),
        }
    }

    /// Whether the lab has been torn down.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }

    /// The spec the lab was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.inner.spec
    }

    /// Names and addresses of everything in the lab.
    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }

    /// The run name (`flb-<pid>-<k>`), prefix of every namespace.
    pub fn run_name(&self) -> &str {
        &self.inner.plan.run
    }

    /// The per-run directory (daemon configs, sockets, pid files and logs).
    pub fn run_dir(&self) -> &Path {
        &self.inner.run_dir
    }

    /// Router namespace.
    pub fn router_ns(&self) -> &str {
        &self.inner.plan.router_ns
    }

    /// Client namespace.
    pub fn client_ns(&self) -> &str {
        &self.inner.plan.client.ns
    }

    /// Namespace of the L2 segment's bridge.
    pub fn switch_ns(&self) -> &str {
        &self.inner.plan.switch_ns
    }

    /// Node `n` (1-based).
    pub fn node(&self, n: u8) -> LabResult<&NodePlan> {
        self.inner
            .plan
            .nodes
            .get(usize::from(n).wrapping_sub(1))
            .ok_or_else(|| {
                LabError::new(
                    format!("look up node {n}"),
                    format!("the lab has nodes 1..={}", self.inner.plan.nodes.len()),
                    None,
                )
            })
    }

    /// Every node.
    pub fn nodes(&self) -> &[NodePlan] {
        &self.inner.plan.nodes
    }

    /// Runs `argv` in namespace `ns`; the error shows command, status, stdout and stderr.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> LabResult<String> {
        run_in(&format!("exec in {ns}"), ns, argv)
    }

    /// Next hops (gateway and interface) of the router's kernel route for exactly `prefix`
    /// (e.g. `198.51.100.1/32`): one per node for an ECMP route, empty without a route.
    /// The interface tells the node (`n<i>`) also when the gateway is link-local, as FRR
    /// installs for IPv6 peers that send one.
    pub fn router_nexthops(&self, prefix: &str) -> LabResult<Vec<Nexthop>> {
        let fam = if prefix.contains(':') { "-6" } else { "-4" };
        let out = run_in(
            &format!("read route {prefix} in {}", self.router_ns()),
            self.router_ns(),
            &["ip", "-j", fam, "route", "show", "exact", prefix],
        )?;
        if out.trim().is_empty() {
            return Ok(Vec::new());
        }
        query::route_nexthop_entries(&out)
    }

    /// Gateways of [`Lab::router_nexthops`].
    pub fn router_routes(&self, prefix: &str) -> LabResult<Vec<IpAddr>> {
        let mut v: Vec<IpAddr> = self
            .router_nexthops(prefix)?
            .into_iter()
            .map(|n| n.gateway)
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// Nodes (1-based indices) the router's route for `prefix` points to, by interface.
    pub fn router_route_nodes(&self, prefix: &str) -> LabResult<Vec<u8>> {
        let nhs = self.router_nexthops(prefix)?;
        let mut v: Vec<u8> = self
            .inner
            .plan
            .nodes
            .iter()
            .filter(|n| nhs.iter().any(|h| h.dev == n.router_if))
            .map(|n| n.index)
            .collect();
        v.dedup();
        Ok(v)
    }

    /// Waits until the router's route for `prefix` points to exactly the nodes `nodes`
    /// (1-based, ascending); returns them.
    pub fn wait_router_route_nodes(
        &self,
        prefix: &str,
        nodes: &[u8],
        timeout: Duration,
    ) -> LabResult<Vec<u8>> {
        let mut last = Vec::new();
        wait_until(
            &format!("wait for the router's route {prefix} via nodes {nodes:?}"),
            timeout,
            || {
                last = self.router_route_nodes(prefix)?;
                Ok(last == nodes)
            },
        )
        .map_err(|e| LabError {
            detail: format!("{}; last: via nodes {last:?}", e.detail),
            ..e
        })?;
        Ok(last)
    }

    /// Waits until the router's route for `prefix` has exactly `count` next hops.
    pub fn wait_router_routes(
        &self,
        prefix: &str,
        count: usize,
        timeout: Duration,
    ) -> LabResult<Vec<IpAddr>> {
        let mut last = Vec::new();
        wait_until(
            &format!("wait for {count} next hops for {prefix} on the router"),
            timeout,
            || {
                last = self.router_routes(prefix)?;
                Ok(last.len() == count)
            },
        )
        .map_err(|e| LabError {
            detail: format!("{}; last next hops: {last:?}", e.detail),
            ..e
        })?;
        Ok(last)
    }

    fn frr_only(&self, what: &str) -> LabResult<()> {
        match self.inner.spec.router {
            RouterKind::Frr => Ok(()),
            RouterKind::Bird => Err(LabError::new(what, "the router runs BIRD, not FRR", None)),
        }
    }

    /// `vtysh -c '<cmd> json'` on the router, parsed (FRR only).
    pub fn frr_json(&self, cmd: &str) -> LabResult<serde_json::Value> {
        let step = format!("FRR query '{cmd} json'");
        self.frr_only(&step)?;
        let out = router::vtysh(
            &self.inner.spec,
            &self.inner.run_dir,
            &format!("{cmd} json"),
        )?;
        serde_json::from_str(&out)
            .map_err(|e| LabError::new(step, format!("{e}; output: {out:?}"), None))
    }

    /// `vtysh -c '<cmd>'` text output (FRR only).
    pub fn vtysh(&self, cmd: &str) -> LabResult<String> {
        self.frr_only(&format!("FRR query '{cmd}'"))?;
        router::vtysh(&self.inner.spec, &self.inner.run_dir, cmd)
    }

    /// `birdc <cmd>` output (BIRD only).
    pub fn birdc(&self, cmd: &str) -> LabResult<String> {
        if self.inner.spec.router != RouterKind::Bird {
            return Err(LabError::new(
                format!("BIRD query '{cmd}'"),
                "the router runs FRR, not BIRD",
                None,
            ));
        }
        router::birdc(&self.inner.spec, &self.inner.run_dir, cmd)
    }

    /// BGP sessions with the nodes as the router sees them.
    pub fn bgp_neighbors(&self) -> LabResult<Vec<BgpNeighbor>> {
        match self.inner.spec.router {
            RouterKind::Frr => {
                let out = router::vtysh(
                    &self.inner.spec,
                    &self.inner.run_dir,
                    "show bgp neighbors json",
                )?;
                query::frr_neighbors(&out)
            }
            RouterKind::Bird => {
                let out = self.birdc("show protocols")?;
                let mut v: Vec<BgpNeighbor> = query::bird_protocols(&out)
                    .into_iter()
                    .filter_map(|p| {
                        let addr = self.inner.plan.nodes.iter().find_map(|n| {
                            if p.name == router::bird_protocol(n.index, false) {
                                n.uplink.v4.map(IpAddr::V4)
                            } else if p.name == router::bird_protocol(n.index, true) {
                                n.uplink.v6.map(IpAddr::V6)
                            } else {
                                None
                            }
                        })?;
                        let state = if p.info.is_empty() { p.state } else { p.info };
                        Some(BgpNeighbor {
                            address: addr,
                            established: state == "Established",
                            state,
                        })
                    })
                    .collect();
                v.sort_by_key(|n| n.address);
                Ok(v)
            }
        }
    }

    /// Number of Established sessions.
    pub fn established_count(&self) -> LabResult<usize> {
        Ok(self
            .bgp_neighbors()?
            .iter()
            .filter(|n| n.established)
            .count())
    }

    /// BFD sessions with the nodes as the router sees them.
    pub fn bfd_peers(&self) -> LabResult<Vec<BfdPeer>> {
        match self.inner.spec.router {
            RouterKind::Frr => {
                let out =
                    router::vtysh(&self.inner.spec, &self.inner.run_dir, "show bfd peers json")?;
                query::frr_bfd_peers(&out)
            }
            RouterKind::Bird => Ok(query::bird_bfd_sessions(&self.birdc("show bfd sessions")?)),
        }
    }

    /// Fails node `n` silently: its uplink and L2 port go down inside the node namespace (no
    /// BGP NOTIFICATION, no BFD AdminDown). The router's port is behind the switch and keeps
    /// its carrier, so the router notices by hold timer or BFD (FRR also has
    /// `no bgp fast-external-failover`).
    pub fn node_fail(&self, n: u8) -> LabResult<()> {
        let node = self.node(n)?;
        ip_batch(
            &format!("fail node {n}"),
            &node.ns,
            &format!(
                "link set {} down\nlink set {} down\n",
                node.uplink_if, node.l2_if
            ),
        )
    }

    /// Undoes [`Lab::node_fail`]: links up and the node's default routes back.
    pub fn node_restore(&self, n: u8) -> LabResult<()> {
        let node = self.node(n)?;
        let step = format!("restore node {n}");
        ip_batch(
            &step,
            &node.ns,
            &format!(
                "link set {} up\nlink set {} up\n",
                node.uplink_if, node.l2_if
            ),
        )?;
        ip_batch(&step, &node.ns, &default_routes(&node.router_side))
    }

    /// Starts GoBGP in node `n`'s namespace peering with the router (one session per family,
    /// the spec's hold time, no BFD); replaces a running one.
    pub fn start_gobgp(&self, n: u8) -> LabResult<()> {
        let node = self.node(n)?;
        let mut neighbors = Vec::new();
        if let (Some(r), Some(l)) = (node.router_side.v4, node.uplink.v4) {
            neighbors.push(GoBgpNeighbor {
                address: r.into(),
                peer_as: self.inner.spec.router_asn,
                local: l.into(),
            });
        }
        if let (Some(r), Some(l)) = (node.router_side.v6, node.uplink.v6) {
            neighbors.push(GoBgpNeighbor {
                address: r.into(),
                peer_as: self.inner.spec.router_asn,
                local: l.into(),
            });
        }
        let rid = node
            .loopback
            .v4
            .map_or_else(|| format!("10.255.0.{n}"), |a| a.to_string());
        let conf = gobgp::render_config(node.asn, &rid, self.inner.spec.hold_time_secs, &neighbors);
        self.stop_gobgp(n);
        // gobgpd's API port is fixed: if something else listens there, gobgpd fails (or the
        // readiness check would talk to the other listener), so check it first.
        let step = format!("start gobgpd in {}", node.ns);
        let ns = node.ns.clone();
        netns::run_in(&node.ns, move || {
            let api = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, gobgp::API_PORT));
            std::net::TcpListener::bind(api).map(drop).map_err(|e| {
                let port = gobgp::API_PORT;
                let hint = (e.kind() == std::io::ErrorKind::AddrInUse).then(|| {
                    format!(
                        "gobgpd's API port {port} is in use in {ns}: stop what listens there \
                         (see `ip netns exec {ns} ss -ltnp 'sport = :{port}'`)"
                    )
                });
                LabError::new(step, format!("bind {api} for gobgpd's API: {e}"), hint)
            })
        })?;
        let g = GoBgp::start(&node.ns, &self.inner.run_dir, &node.name, &conf)?;
        self.inner.state().gobgp.insert(n, g);
        Ok(())
    }

    /// Stops node `n`'s GoBGP if running.
    pub fn stop_gobgp(&self, n: u8) {
        if let Some(mut g) = self.inner.state().gobgp.remove(&n) {
            g.stop();
        }
    }

    fn with_gobgp<T>(&self, n: u8, f: impl FnOnce(&GoBgp) -> LabResult<T>) -> LabResult<T> {
        let st = self.inner.state();
        let g = st.gobgp.get(&n).ok_or_else(|| {
            LabError::new(
                format!("use GoBGP on node {n}"),
                "GoBGP is not running there",
                Some("call start_gobgp first".into()),
            )
        })?;
        f(g)
    }

    /// Announces `prefix` from node `n`'s GoBGP.
    pub fn gobgp_announce(&self, n: u8, prefix: &str) -> LabResult<()> {
        self.with_gobgp(n, |g| g.announce(prefix))
    }

    /// Withdraws `prefix` from node `n`'s GoBGP.
    pub fn gobgp_withdraw(&self, n: u8, prefix: &str) -> LabResult<()> {
        self.with_gobgp(n, |g| g.withdraw(prefix))
    }

    /// Starts BIRD as the BGP speaker of node `n` (one session per family to the router,
    /// the spec's hold time, and BFD on the uplink with the spec's timers), announcing
    /// nothing yet. Unlike GoBGP it runs BFD.
    pub fn start_bird_speaker(&self, n: u8) -> LabResult<()> {
        let node = self.node(n)?;
        let spec = &self.inner.spec;
        let mut sessions = Vec::new();
        if let (Some(r), Some(l)) = (node.router_side.v4, node.uplink.v4) {
            sessions.push(bird_speaker::Session {
                peer: r.into(),
                peer_as: spec.router_asn,
                local: l.into(),
            });
        }
        if let (Some(r), Some(l)) = (node.router_side.v6, node.uplink.v6) {
            sessions.push(bird_speaker::Session {
                peer: r.into(),
                peer_as: spec.router_asn,
                local: l.into(),
            });
        }
        let cfg = bird_speaker::SpeakerConfig {
            router_id: node
                .loopback
                .v4
                .map_or_else(|| format!("10.255.0.{n}"), |a| a.to_string()),
            asn: node.asn,
            hold_secs: spec.hold_time_secs,
            bfd: spec.bfd,
            uplink_if: node.uplink_if.clone(),
            sessions,
            log: self.inner.run_dir.join(format!("bird-{}.log", node.name)),
        };
        if self.inner.state().bird_speakers.contains_key(&n) {
            return Err(LabError::new(
                format!("start BIRD speaker on node {n}"),
                "one is already running there",
                None,
            ));
        }
        let sp = BirdSpeaker::start(
            &node.ns,
            &self.inner.run_dir,
            &node.name,
            cfg,
            &spec.bird_bin,
            &spec.birdc_bin,
        );
        // Register the pid file even on failure: the daemon may have started.
        let pid_file = self.inner.run_dir.join(format!("bird-{}.pid", node.name));
        let mut st = self.inner.state();
        st.pid_files.push(pid_file);
        st.bird_speakers.insert(n, sp?);
        Ok(())
    }

    fn with_bird_speaker<T>(
        &self,
        n: u8,
        f: impl FnOnce(&mut BirdSpeaker) -> LabResult<T>,
    ) -> LabResult<T> {
        let mut st = self.inner.state();
        let sp = st.bird_speakers.get_mut(&n).ok_or_else(|| {
            LabError::new(
                format!("use the BIRD speaker on node {n}"),
                "no BIRD speaker runs there",
                Some("call start_bird_speaker first".into()),
            )
        })?;
        f(sp)
    }

    /// Announces `prefix` from node `n`'s BIRD speaker.
    pub fn bird_speaker_announce(&self, n: u8, prefix: &str) -> LabResult<()> {
        self.with_bird_speaker(n, |s| s.announce(prefix))
    }

    /// Withdraws `prefix` from node `n`'s BIRD speaker.
    pub fn bird_speaker_withdraw(&self, n: u8, prefix: &str) -> LabResult<()> {
        self.with_bird_speaker(n, |s| s.withdraw(prefix))
    }

    /// `birdc <cmd>` against node `n`'s BIRD speaker.
    pub fn bird_speaker_birdc(&self, n: u8, cmd: &str) -> LabResult<String> {
        self.with_bird_speaker(n, |s| s.birdc(cmd))
    }

    /// Starts a test server on `port` (TCP and UDP) in every pod, answering its pod name.
    /// All or nothing: when one pod's server cannot start (e.g. the port is taken in that
    /// pod) the servers this call started are stopped and the error names pod, port and
    /// namespace.
    pub fn serve_pods(&self, port: u16) -> LabResult<()> {
        if port == 0 {
            return Err(LabError::new(
                "start pod servers on port 0",
                "port 0 would give every pod a different random port",
                Some("pass a fixed port, e.g. 8080".into()),
            ));
        }
        let mut started = Vec::new();
        for n in &self.inner.plan.nodes {
            for p in &n.pods {
                let (name, ns, step) = (
                    p.name.clone(),
                    p.ns.clone(),
                    format!("start pod server {} on port {port} in {}", p.name, p.ns),
                );
                // On error `started` is dropped, which stops those servers.
                started.push(netns::run_in(&p.ns, move || {
                    PodServer::start(&name, port).map_err(|e| {
                        let hint = (e.kind() == std::io::ErrorKind::AddrInUse).then(|| {
                            format!(
                                "port {port} is in use in pod {name} (namespace {ns}): pick \
                                 another port, or see what holds it with `ip netns exec {ns} \
                                 ss -ltunp 'sport = :{port}'`"
                            )
                        });
                        LabError::new(step, e.to_string(), hint)
                    })
                })?);
            }
        }
        self.inner.state().pods.extend(started);
        Ok(())
    }

    /// Endpoints `<pod address>:port` of every pod in the family of `v6`.
    pub fn pod_endpoints(&self, port: u16, v6: bool) -> Vec<SocketAddr> {
        self.inner
            .plan
            .nodes
            .iter()
            .flat_map(|n| n.pods.iter())
            .filter_map(|p| {
                if v6 {
                    p.addr.v6.map(IpAddr::V6)
                } else {
                    p.addr.v4.map(IpAddr::V4)
                }
            })
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    }

    /// Connects from the client namespace to `addr` over TCP; returns the pod name.
    pub fn client_tcp(&self, addr: SocketAddr) -> LabResult<String> {
        self.client_tcp_many(addr, 1).map(|mut v| v.remove(0))
    }

    /// Makes `count` TCP connections from the client namespace to `addr`, one after the
    /// other; returns the answering pod names in order. Fails on the first failed connection.
    pub fn client_tcp_many(&self, addr: SocketAddr, count: usize) -> LabResult<Vec<String>> {
        let step = format!("TCP to {addr} from {}", self.client_ns());
        netns::run_in(self.client_ns(), move || {
            (0..count.max(1))
                .map(|i| {
                    pod_server::tcp_ask(addr, Duration::from_secs(3)).map_err(|e| {
                        LabError::new(&step, format!("connection {}: {e}", i + 1), None)
                    })
                })
                .collect()
        })
    }

    /// MAC address of interface `dev` in namespace `ns`.
    pub fn link_mac(&self, ns: &str, dev: &str) -> LabResult<String> {
        let out = run_in(
            &format!("read MAC of {dev} in {ns}"),
            ns,
            &["ip", "-j", "link", "show", "dev", dev],
        )?;
        query::link_mac(&out).ok_or_else(|| {
            LabError::new(
                format!("read MAC of {dev} in {ns}"),
                format!("no address in {out:?}"),
                None,
            )
        })
    }

    /// The client's neighbour entry for `ip` on its L2 interface: the MAC it would send to
    /// (`None` without a usable entry; FAILED and INCOMPLETE entries count as none).
    pub fn client_neighbor(&self, ip: IpAddr) -> LabResult<Option<String>> {
        let c = &self.inner.plan.client;
        let ip_s = ip.to_string();
        let out = run_in(
            &format!("read neighbour {ip} in {}", c.ns),
            &c.ns,
            &["ip", "-j", "neigh", "show", "to", &ip_s, "dev", &c.l2_if],
        )?;
        query::neighbor_lladdr(&out)
    }

    /// Sends a UDP datagram from the client namespace to `addr`; returns the pod name.
    pub fn client_udp(&self, addr: SocketAddr) -> LabResult<String> {
        let step = format!("UDP to {addr} from {}", self.client_ns());
        netns::run_in(self.client_ns(), move || {
            pod_server::udp_ask(addr, Duration::from_secs(3))
                .map_err(|e| LabError::new(step, e.to_string(), None))
        })
    }

    /// Installs (or replaces, by VIP, port and protocol) a kube-proxy-style nftables DNAT of
    /// `vip:port/proto` to `endpoints` in node `n`'s namespace. Traffic DNATed to a pod on
    /// another node is masqueraded so replies come back through this node.
    pub fn install_kube_proxy_nft(
        &self,
        n: u8,
        vip: IpAddr,
        port: u16,
        proto: Proto,
        endpoints: &[SocketAddr],
    ) -> LabResult<()> {
        let svc = Service {
            vip,
            port,
            proto,
            endpoints: endpoints.to_vec(),
        };
        self.update_services(n, |list| kube_proxy::upsert(list, svc))
    }

    /// Removes a service installed by [`Lab::install_kube_proxy_nft`] from node `n`.
    pub fn remove_kube_proxy_nft(
        &self,
        n: u8,
        vip: IpAddr,
        port: u16,
        proto: Proto,
    ) -> LabResult<()> {
        self.update_services(n, |list| list.retain(|s| s.key() != (vip, port, proto)))
    }

    fn update_services(&self, n: u8, f: impl FnOnce(&mut Vec<Service>)) -> LabResult<()> {
        let node = self.node(n)?;
        let step = format!("install kube-proxy nftables rules in {}", node.ns);
        require_program(&step, "nft")?;
        let mut st = self.inner.state();
        let mut list = st.services.get(&n).cloned().unwrap_or_default();
        f(&mut list);
        let script = kube_proxy::render(&list, &node.uplink_if)?;
        run_with_input(
            &step,
            &["ip", "netns", "exec", &node.ns, "nft", "-f", "-"],
            Some(&script),
        )
        .map_err(|e| LabError {
            detail: format!("{}; script was:\n{script}", e.detail),
            ..e
        })?;
        st.services.insert(n, list);
        Ok(())
    }
}

fn default_routes(gw: &DualAddr) -> String {
    let mut b = String::new();
    if let Some(g) = gw.v4 {
        let _ = writeln!(b, "route replace default via {g}");
    }
    if let Some(g) = gw.v6 {
        let _ = writeln!(b, "route replace ::/0 via {g}");
    }
    b
}

/// Polls `f` every 50 ms until it returns true; errors name `what` after `timeout`. An error
/// from `f` is returned at once.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> LabResult<bool>,
) -> LabResult<()> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(LabError::new(
                what,
                format!("not reached within {timeout:?}"),
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What [`cleanup_stale`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaleReport {
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Processes killed (they ran in those namespaces).
    pub killed: Vec<i32>,
    /// Run directories removed.
    pub dirs: Vec<PathBuf>,
}

/// The owning pid of a lab name `<prefix><pid>-...`, if it has that shape.
pub fn owner_pid(prefix: &str, name: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Removes namespaces and run directories (in the temp dir) named `<prefix><pid>-...` whose
/// owning process `pid` no longer runs: kills the processes inside those namespaces, deletes
/// the namespaces and removes the directories. Labs of live processes are left alone.
pub fn cleanup_stale(prefix: &str) -> LabResult<StaleReport> {
    cleanup_stale_in(prefix, &std::env::temp_dir())
}

/// [`cleanup_stale`] with run directories looked for under `base_dir`.
pub fn cleanup_stale_in(prefix: &str, base_dir: &Path) -> LabResult<StaleReport> {
    let step = format!("clean up stale labs with prefix {prefix:?}");
    if prefix.is_empty() {
        return Err(LabError::new(
            step,
            "empty prefix would match everything",
            None,
        ));
    }
    let dead = |name: &str| owner_pid(prefix, name).is_some_and(|pid| !pid_exists(pid));
    let mut report = StaleReport::default();
    if let Ok(entries) = std::fs::read_dir("/var/run/netns") {
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| dead(n))
            .collect();
        names.sort();
        for ns in &names {
            report.killed.extend(ns_pids(ns));
        }
        report.killed.sort_unstable();
        report.killed.dedup();
        let problems: Vec<String> = kill_all(&report.killed)
            .into_iter()
            .chain(delete_namespaces(&names))
            .collect();
        if !problems.is_empty() {
            return Err(LabError::new(step, problems.join("; "), None));
        }
        report.namespaces = names;
    }
    if let Ok(entries) = std::fs::read_dir(base_dir) {
        for e in entries.filter_map(Result::ok) {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if dead(&name) && e.path().is_dir() {
                std::fs::remove_dir_all(e.path()).map_err(|err| {
                    LabError::new(&step, format!("remove {}: {err}", e.path().display()), None)
                })?;
                report.dirs.push(e.path());
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids() {
        let cases = [
            ("flb-123-0-r", Some(123)),
            ("flb-123-0", Some(123)),
            ("flb-123-", None),
            ("flb-x-0", None),
            ("other-123-0", None),
            ("flb-123", None),
        ];
        for (name, want) in cases {
            assert_eq!(owner_pid("flb-", name), want, "{name}");
        }
    }

    #[test]
    fn default_routes_per_family() {
        let gw = DualAddr {
            v4: Some("10.0.1.1".parse().expect("ip")),
            v6: Some("fd00:10:1::1".parse().expect("ip")),
        };
        assert_eq!(
            default_routes(&gw),
            "route replace default via 10.0.1.1\nroute replace ::/0 via fd00:10:1::1\n"
        );
        assert_eq!(default_routes(&DualAddr { v4: None, v6: None }), "");
    }

    #[test]
    fn wait_until_times_out_and_passes_errors() {
        let err =
            wait_until("thing", Duration::from_millis(10), || Ok(false)).expect_err("times out");
        assert_eq!(err.step, "thing");
        let mut n = 0;
        wait_until("thing", Duration::from_secs(5), || {
            n += 1;
            Ok(n == 3)
        })
        .expect("third time");
        let err = wait_until("x", Duration::from_secs(5), || {
            Err(LabError::new("inner", "boom", None))
        })
        .expect_err("error");
        assert_eq!(err.step, "inner");
    }

    #[test]
    fn taken_namespace_hints_name_owner_and_fix() {
        let ns = "flb-5-x-r";
        type Owner = Option<(i32, bool)>;
        let cases: &[(Owner, &[&str])] = &[
            (
                Some((5, false)),
                &[
                    "flb-5-x-r exists and is not ours (no live owner pid",
                    "`ip netns del flb-5-x-r`",
                    "`ferrolb-lab down`",
                ],
            ),
            (
                None,
                &["no owner pid in its name", "`ip netns del flb-5-x-r`"],
            ),
            (Some((5, true)), &["live process 5", "another run name"]),
            (
                Some((9, true)),
                &["this process's pid 9", "LabSpec::run_name"],
            ),
        ];
        for (owner, want) in cases {
            let h = taken_namespace_hint(ns, *owner, 9);
            for w in *want {
                assert!(h.contains(w), "{owner:?}: {h} lacks {w}");
            }
        }
    }

    #[test]
    fn cleanup_rejects_empty_prefix() {
        assert!(cleanup_stale("").is_err());
    }
}
