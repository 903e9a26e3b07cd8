//! End-to-end suite, BGP graceful restart (RFC 4724) with ferrolb's speaker (root): speaker
//! restart with no traffic loss.
//!
//! A lab per scenario: an FRR ToR (a graceful-restart helper, FRR's default) peering with
//! three nodes, one pod per node running a TCP echo server, the in-memory API server with
//! the `deploy/examples` configuration (`enableGracefulRestart: true` on every peer), the
//! lab's kube-proxy emulation and `ferrolb-speaker` in every node namespace. The Service
//! (`externalTrafficPolicy: Cluster`, dual-stack) has its VIPs written into status by the
//! test. Two scenarios:
//! - without BFD (the router's BFD and the peers' `bfdProfile` removed);
//! - with BFD (100 ms x 3, as in the example). A killed speaker also stops answering BFD,
//!   and FRR treats BFD Down as a forwarding failure; but the kernel closes the killed
//!   process's TCP connections at once, so FRR sees the session end (and starts helping
//!   the restart) about 300 ms before BFD times out, and the later BFD Down no longer
//!   removes the stale routes (observed with FRR 8.4). A dead node (no FIN) is still
//!   detected by BFD and its routes are removed, as wanted.
//!
//! The test runs one long TCP connection per family from the client to the VIP, a small
//! message every [`TICK`] echoed back, and while it runs:
//! 1. kills every speaker with SIGKILL: FRR keeps both routes with all three nodes as next
//!    hops, marked stale, and the kernel FIB keeps them;
//! 2. restarts the speakers: the sessions come back, the speakers re-announce and send
//!    End-of-RIB, FRR's routes are no longer stale;
//! 3. checks the connections: every message echoed intact, none waited longer than
//!    [`MAX_STALL`].
//!
//! Needs the binary: `cargo build -p ferrolb-speaker` (`cargo test --workspace` builds it).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_e2e::cluster::SlicePort;
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::{FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use ferrolb_e2e::lab::{self, Lab, LabError, LabSpec, Proto, netns};
use serde_json::{Value, json};

mod suite_common;
use suite_common::Env;

const NS: &str = "default";
const SVC: &str = "e2e-gr";
const VIP4: &str = "198.51.100.30";
const VIP6: &str = "fd00:5100::30";
/// Port of the pods' echo servers.
const ECHO_PORT: u16 = 8081;
const WAIT: Duration = Duration::from_secs(20);
/// One message per tick on each connection.
const TICK: Duration = Duration::from_millis(10);
/// Bytes per message.
const MSG: usize = 32;
/// The longest a message may wait for its echo (a retransmission or two, no outage).
const MAX_STALL: Duration = Duration::from_secs(1);
/// How long the speakers stay dead.
const DEAD_FOR: Duration = Duration::from_secs(3);

/// TCP echo servers in every pod namespace, on [`ECHO_PORT`]. Stop on drop.
struct EchoServers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServers {
    fn start(lab: &Lab) -> Result<Self, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for pod in lab.nodes().iter().flat_map(|n| n.pods.iter()) {
            let listener = netns::run_in(&pod.ns, || {
                TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, ECHO_PORT)))
                    .map_err(|e| LabError::new("bind the echo server", e.to_string(), None))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| LabError::new("echo server", e.to_string(), None))?;
            let s = stop.clone();
            threads.push(std::thread::spawn(move || echo_accept(&listener, &s)));
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for EchoServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn echo_accept(l: &TcpListener, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((s, _)) => {
                let stop = stop.clone();
                std::thread::spawn(move || echo(s, &stop));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn echo(mut s: TcpStream, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// What one long connection saw.
#[derive(Debug)]
struct TransferReport {
    to: SocketAddr,
    messages: u64,
    bytes_echoed: u64,
    max_round_trip: Duration,
    error: Option<String>,
}

/// A message every [`TICK`] over one connection from the client to `to`, until `stop`;
/// `done` counts the messages echoed so far.
fn start_transfer(
    lab: &Lab,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> JoinHandle<TransferReport> {
    let client_ns = lab.client_ns().to_string();
    std::thread::spawn(move || {
        let mut report = TransferReport {
            to,
            messages: 0,
            bytes_echoed: 0,
            max_round_trip: Duration::ZERO,
            error: None,
        };
        let conn = netns::run_in(&client_ns, move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(5))
                .map_err(|e| LabError::new(format!("connect to {to}"), e.to_string(), None))
        });
        let mut s = match conn {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let mut seq = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let msg: Vec<u8> = (0..MSG).map(|i| (seq as usize + i) as u8).collect();
            let sent = Instant::now();
            let mut back = vec![0u8; MSG];
            let r = s.write_all(&msg).and_then(|()| s.read_exact(&mut back));
            if let Err(e) = r {
                report.error = Some(format!("message {seq}: {e}"));
                return report;
            }
            if back != msg {
                report.error = Some(format!("message {seq} came back changed"));
                return report;
            }
            report.max_round_trip = report.max_round_trip.max(sent.elapsed());
            report.messages += 1;
            done.store(report.messages, Ordering::SeqCst);
            report.bytes_echoed += MSG as u64;
            seq += 1;
            std::thread::sleep(TICK);
        }
        report
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SVC, "namespace": NS},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4", "IPv6"],
            "selector": {"app": "web"},
            "ports": [{"name": "echo", "port": 80, "targetPort": ECHO_PORT, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": VIP4}, {"ip": VIP6}]}},
    })
}

fn prefixes() -> [(String, &'static str); 2] {
    [
        (format!("{VIP4}/32"), "ipv4"),
        (format!("{VIP6}/128"), "ipv6"),
    ]
}

/// FRR's paths for `prefix`: (next hop addresses, stale) per path.
fn frr_paths(lab: &Lab, prefix: &str, afi: &str) -> Vec<(Vec<String>, bool)> {
    let v = lab
        .frr_json(&format!("show bgp {afi} unicast {prefix}"))
        .unwrap_or(Value::Null);
    v.get("paths")
        .and_then(Value::as_array)
        .map(|paths| {
            paths
                .iter()
                .map(|p| {
                    let nhs = p
                        .get("nexthops")
                        .and_then(Value::as_array)
                        .map(|n| {
                            n.iter()
                                .filter_map(|h| h.get("ip").and_then(Value::as_str))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let stale = p.get("stale").and_then(Value::as_bool).unwrap_or(false);
                    (nhs, stale)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until both prefixes have `paths` paths in FRR, all stale or all fresh.
fn wait_paths(lab: &Lab, paths: usize, stale: bool, timeout: Duration) {
    let what = format!(
        "{paths} {} paths per VIP",
        if stale { "stale" } else { "fresh" }
    );
    let mut last = Vec::new();
    let r = lab::wait_until(&what, timeout, || {
        last = prefixes()
            .iter()
            .map(|(p, afi)| frr_paths(lab, p, afi))
            .collect();
        Ok(last
            .iter()
            .all(|ps| ps.len() == paths && ps.iter().all(|(_, s)| *s == stale)))
    });
    if let Err(e) = r {
        panic!("{e}; last: {last:?}");
    }
}

fn established(lab: &Lab) -> usize {
    lab.bgp_neighbors()
        .map(|v| v.iter().filter(|n| n.established).count())
        .unwrap_or(0)
}

fn bfd_up(lab: &Lab) -> usize {
    lab.bfd_peers()
        .map(|v| v.iter().filter(|p| p.state == "up").count())
        .unwrap_or(0)
}

fn fib_nodes(lab: &Lab) -> Vec<Vec<u8>> {
    prefixes()
        .iter()
        .map(|(p, _)| lab.router_route_nodes(p).expect("read route"))
        .collect()
}

/// Waits until the kube-proxy emulation on every node DNATs both VIPs to the three pods.
fn dnat_ready(watcher: &DnatWatcher) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rules = watcher.applied();
        let ok = [VIP4, VIP6].iter().all(|vip| {
            let vip: IpAddr = vip.parse().expect("VIP");
            ["node1", "node2", "node3"].iter().all(|n| {
                rules
                    .get(*n)
                    .is_some_and(|v| v.iter().any(|s| s.vip == vip && s.endpoints.len() == 3))
            })
        });
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "DNAT not ready: {rules:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The two scenarios share the machine's two cores; one lab at a time.
static ONE_LAB: Mutex<()> = Mutex::new(());

#[test]
fn speaker_restart_without_bfd_keeps_routes_and_traffic() {
    let _one = ONE_LAB.lock().unwrap_or_else(PoisonError::into_inner);
    speaker_restart(false);
}

#[test]
fn speaker_restart_with_bfd_keeps_routes_and_traffic() {
    let _one = ONE_LAB.lock().unwrap_or_else(PoisonError::into_inner);
    speaker_restart(true);
}

/// The scenario of the module docs; with `bfd`, the router runs BFD (100 ms x 3) with the
/// peers, which use the example's BFD profile.
fn speaker_restart(bfd: bool) {
    lab::require_root().unwrap_or_else(|e| panic!("the suite builds network namespaces: {e}"));
    let binary = locate_binary(SPEAKER_BIN).unwrap_or_else(|e| panic!("{e}"));
    let env = Env::up_with(
        |spec| {
            assert!(spec.bfd.is_some(), "the demo lab runs BFD");
            LabSpec {
                bfd: if bfd { spec.bfd } else { None },
                ..spec
            }
        },
        |example| {
            assert!(example.contains("enableGracefulRestart: true"));
            example
                .lines()
                .filter(|l| bfd || l.trim() != "bfdProfile: fast")
                .map(|l| format!("{l}\n"))
                .collect()
        },
    );
    let Env {
        lab,
        rt,
        api,
        client,
        cluster,
    } = env;
    let guard = rt.enter();
    let _echo = EchoServers::start(&lab).expect("echo servers");
    api.insert(service()).expect("service");
    let ports = [SlicePort {
        name: "echo".into(),
        port: ECHO_PORT,
        proto: Proto::Tcp,
    }];
    rt.block_on(cluster.create_endpoint_slices(lab.plan(), NS, SVC, &ports))
        .expect("endpoint slices");
    let kubeconfig = lab.run_dir().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let watcher = DnatWatcher::spawn(client.clone(), lab.clone());
    let mut speakers =
        FerrolbSpeakers::start(&lab, &binary, api.addr(), &kubeconfig).expect("speakers");
    dnat_ready(&watcher);
    for (p, _) in prefixes() {
        lab.wait_router_route_nodes(&p, &[1, 2, 3], WAIT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    wait_paths(&lab, 3, false, WAIT);
    lab::wait_until(
        "6 sessions established",
        WAIT,
        || Ok(established(&lab) == 6),
    )
    .expect("sessions");
    if bfd {
        lab::wait_until("6 BFD sessions up", WAIT, || Ok(bfd_up(&lab) == 6)).expect("BFD");
    }

    // Long connections through the VIPs.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let transfers: Vec<_> = [VIP4, VIP6]
        .iter()
        .zip(&progress)
        .map(|(v, done)| {
            let to = SocketAddr::new(v.parse().expect("VIP"), 80);
            start_transfer(&lab, to, stop.clone(), done.clone())
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let count = || {
        progress
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    };

    // 1. Crash every speaker: FRR keeps the routes (stale), the FIB keeps them.
    let killed = Instant::now();
    for n in ["node1", "node2", "node3"] {
        speakers.kill_node(n).expect("kill");
    }
    let at_kill = count();
    wait_paths(&lab, 3, true, WAIT);
    let stale_after = killed.elapsed();
    assert_eq!(established(&lab), 0, "sessions are down");
    while killed.elapsed() < DEAD_FOR {
        assert_eq!(
            fib_nodes(&lab),
            [vec![1, 2, 3], vec![1, 2, 3]],
            "FIB while the speakers are dead"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fib_nodes(&lab), [vec![1, 2, 3], vec![1, 2, 3]]);
    // Both connections kept going while no speaker ran (each message needs its echo
    // before the next goes out, so this is traffic through the VIP meanwhile).
    for (before, now) in at_kill.iter().zip(count()) {
        assert!(
            now - before >= 10,
            "only {} messages while the speakers were dead",
            now - before
        );
    }

    // 2. Restart: sessions back, routes re-announced, End-of-RIB clears the stale marks.
    let restarted = Instant::now();
    for n in ["node1", "node2", "node3"] {
        speakers.restart_node(n).expect("restart");
    }
    lab::wait_until("6 sessions established again", WAIT, || {
        Ok(established(&lab) == 6)
    })
    .expect("sessions");
    let sessions_after = restarted.elapsed();
    wait_paths(&lab, 3, false, WAIT);
    let fresh_after = restarted.elapsed();
    assert_eq!(fib_nodes(&lab), [vec![1, 2, 3], vec![1, 2, 3]]);
    if bfd {
        lab::wait_until("6 BFD sessions up again", WAIT, || Ok(bfd_up(&lab) == 6)).expect("BFD");
    }
    std::thread::sleep(Duration::from_secs(1));

    // 3. The connections carried on.
    stop.store(true, Ordering::SeqCst);
    let reports: Vec<TransferReport> = transfers
        .into_iter()
        .map(|t| t.join().expect("transfer thread"))
        .collect();
    println!(
        "graceful restart (BFD {}): routes stale {} ms after the kill; sessions back {} ms and routes \
         fresh (End-of-RIB) {} ms after the restart",
        if bfd { "on" } else { "off" },
        stale_after.as_millis(),
        sessions_after.as_millis(),
        fresh_after.as_millis()
    );
    for r in &reports {
        println!(
            "transfer to {}: {} messages, {} bytes echoed, longest round trip {} ms",
            r.to,
            r.messages,
            r.bytes_echoed,
            r.max_round_trip.as_millis()
        );
    }
    for r in &reports {
        assert_eq!(r.error, None, "transfer to {}", r.to);
        assert!(
            r.max_round_trip <= MAX_STALL,
            "transfer to {} stalled {} ms",
            r.to,
            r.max_round_trip.as_millis()
        );
        assert!(r.messages > 100, "transfer to {}: {r:?}", r.to);
    }

    drop(guard);
    suite_common::finish(lab, rt, api, watcher, speakers);
}
