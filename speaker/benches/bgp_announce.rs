//! BGP announce benchmark and speaker memory report (needs root and FRR).
//!
//! `cargo bench -p ferrolb-speaker --bench bgp_announce` builds a lab of
//! network namespaces (router + 2 nodes on a bridge) with a private FRR ToR
//! (zebra + bgpd + bfdd), then, on node 1, one speaker at a time (ferrolb's
//! `SessionManager` in a child process, GoBGP, BIRD 2, FRR) announces and
//! withdraws 1,000 and 10,000 /32s; the end point is the ToR's kernel FIB,
//! watched through rtnetlink. It reads the speakers' RSS, then measures BFD
//! failover detection of node 2's manager. Writes
//! `target/bench-reports/bgp-announce.md` and prints it.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Frr, FrrNeighbor, Lab, NodeRt, bfdd_conf, bgpd_conf};
use ferrolb_e2e::bench::{
    RunClock, exit_on_error, have, loadavg, machine_note, rss_kib, stats, version_line, wait_until,
    write_report,
};
use ferrolb_speaker::bgp::open::PeerAsPolicy;
use ferrolb_speaker::bgp::update::{RouteAttrs, RouteSet};
use ferrolb_speaker::net::{BfdConfig, ManagerConfig, PeerConfig, RouteTarget, SessionManager};
use ipnet::IpNet;
use support::fibwatch::{FibWatch, mono_ns, ms};
use support::gobgp_api;
use support::host;

const CHILD_ARG: &str = "--flb-speaker-child";
const ROUTER_AS: u32 = 64500;
const NODE1_AS: u32 = 64601;
const NODE2_AS: u32 = 64602;
const ROUTER: &str = "10.0.0.1";
const REPS: usize = 5;
const SIZES: [usize; 2] = [1_000, 10_000];
const FAILOVER_TRIALS: usize = 20;
const WAIT: Duration = Duration::from_secs(20);

fn prefixes(n: usize) -> Vec<Ipv4Addr> {
    (0..n as u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i))
        .collect()
}

fn route_set(n: usize) -> RouteSet {
    prefixes(n)
        .into_iter()
        .map(|p| (IpNet::from(IpAddr::V4(p)), RouteAttrs::default()))
        .collect()
}

fn peer(id: &str, local_as: u32, rid: Ipv4Addr) -> PeerConfig {
    let mut p = PeerConfig::new(
        id,
        local_as,
        PeerAsPolicy::Fixed(ROUTER_AS),
        IpAddr::V4(ROUTER.parse().expect("router address")),
        rid,
    );
    p.gtsm = false;
    p.connect_time = Duration::from_secs(1);
    p
}

// ---------------------------------------------------------------------------
// Child process: ferrolb's SessionManager alone in a process (for its RSS).

fn child_main(ns: &str) -> anyhow::Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mgr = SessionManager::start(ManagerConfig::default())?;
        mgr.set_peers(vec![peer("tor", NODE1_AS, Ipv4Addr::new(10, 0, 0, 11))])
            .await?;
        let mut lines =
            tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
        let mut out = std::io::stdout();
        writeln!(out, "ready")?;
        out.flush()?;
        while let Some(line) = lines.next_line().await? {
            let mut it = line.split_whitespace();
            match (it.next(), it.next().and_then(|n| n.parse::<usize>().ok())) {
                (Some("routes"), Some(n)) => {
                    let set = route_set(n);
                    let t0 = mono_ns();
                    mgr.set_routes(RouteTarget::All, set).await?;
                    let t1 = mono_ns();
                    writeln!(out, "ok {t0} {t1}")?;
                }
                _ => break,
            }
            out.flush()?;
        }
        mgr.shutdown().await;
        anyhow::Ok(())
    })
}

// ---------------------------------------------------------------------------
// Speakers under test.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ferrolb,
    GoBgp,
    Bird,
    Frr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ferrolb => "ferrolb SessionManager",
            Kind::GoBgp => "GoBGP 3.10",
            Kind::Bird => "BIRD 2",
            Kind::Frr => "FRR 8.4 (bgpd+zebra)",
        }
    }
}

struct FerroChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

enum Speaker {
    Ferrolb(FerroChild),
    GoBgp {
        proc: Child,
        rt: NodeRt,
        client: std::sync::Arc<tokio::sync::Mutex<gobgp_api::Client>>,
    },
    Bird {
        proc: Child,
        dir: PathBuf,
    },
    Frr(Frr),
}

/// Hand-over result: (t0, the hand-over call returned), mono ns.
type Handover = (u64, u64);

fn spawn_in(ns: &str, args: &[&str], log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)?;
    Ok(Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

impl Speaker {
    fn start(kind: Kind, lab: &Lab, dir: &Path) -> anyhow::Result<Self> {
        let ns = &lab.node(1).name;
        match kind {
            Kind::Ferrolb => {
                let mut child = Command::new(std::env::current_exe()?)
                    .args([CHILD_ARG, ns])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()?;
                let stdin = child.stdin.take().expect("piped stdin");
                let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
                let mut l = String::new();
                stdout.read_line(&mut l)?;
                anyhow::ensure!(l.trim() == "ready", "speaker child: {l:?}");
                Ok(Speaker::Ferrolb(FerroChild {
                    child,
                    stdin,
                    stdout,
                }))
            }
            Kind::GoBgp => {
                let conf = dir.join("gobgpd.toml");
                std::fs::write(
                    &conf,
                    format!(
                        "[global.config]\n  as = {NODE1_AS}\n  router-id = \"10.0.0.11\"\n\n\
                         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{ROUTER}\"\n    peer-as = {ROUTER_AS}\n  \
                         [neighbors.timers.config]\n    connect-retry = 1\n  \
                         [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n"
                    ),
                )?;
                let proc = spawn_in(
                    ns,
                    &[
                        "gobgpd",
                        "-f",
                        conf.to_str().expect("utf-8"),
                        "-p",
                        "-l",
                        "warn",
                        "--api-hosts",
                        "127.0.0.1:50051",
                        "--pprof-disable",
                    ],
                    &dir.join("gobgpd.log"),
                )?;
                let rt = NodeRt::new(lab.node(1));
                let start = Instant::now();
                let client = loop {
                    match rt.run(gobgp_api::Client::connect("127.0.0.1:50051")) {
                        Ok(c) => break c,
                        Err(e) if start.elapsed() > Duration::from_secs(10) => {
                            anyhow::bail!("gobgpd API: {e}")
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                };
                Ok(Speaker::GoBgp {
                    proc,
                    rt,
                    client: std::sync::Arc::new(tokio::sync::Mutex::new(client)),
                })
            }
            Kind::Bird => {
                let routes = dir.join("routes.conf");
                std::fs::write(&routes, "")?;
                let conf = dir.join("bird.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "router id 10.0.0.11;\nprotocol device {{}}\n\
                         protocol static flb_routes {{\n  ipv4;\ninclude \"{}\";\n}}\n\
                         protocol bgp tor {{ local 10.0.0.11 as {NODE1_AS}; neighbor {ROUTER} as {ROUTER_AS}; \
                         connect delay time 1; connect retry time 1; \
                         ipv4 {{ import none; export where proto = \"flb_routes\"; }}; }}\n",
                        routes.display()
                    ),
                )?;
                let ctl = dir.join("bird.ctl");
                let proc = spawn_in(
                    ns,
                    &[
                        "bird",
                        "-f",
                        "-c",
                        conf.to_str().expect("utf-8"),
                        "-s",
                        ctl.to_str().expect("utf-8"),
                    ],
                    &dir.join("bird.log"),
                )?;
                anyhow::ensure!(
                    wait_until(Duration::from_secs(10), || UnixStream::connect(&ctl)
                        .is_ok()),
                    "bird control socket did not appear"
                );
                Ok(Speaker::Bird {
                    proc,
                    dir: dir.to_owned(),
                })
            }
            Kind::Frr => {
                let conf = format!(
                    "hostname n1\n!\nrouter bgp {NODE1_AS}\n bgp router-id 10.0.0.11\n \
                     no bgp ebgp-requires-policy\n no bgp network import-check\n \
                     neighbor {ROUTER} remote-as {ROUTER_AS}\n neighbor {ROUTER} timers connect 1\n \
                     neighbor {ROUTER} advertisement-interval 0\n!\n"
                );
                Ok(Speaker::Frr(Frr::start(
                    lab.node(1),
                    &conf,
                    &bfdd_conf(300),
                )))
            }
        }
    }

    /// The speaker's own processes, with labels.
    fn pids(&self) -> Vec<(&'static str, u32)> {
        match self {
            Speaker::Ferrolb(c) => vec![("speaker", c.child.id())],
            Speaker::GoBgp { proc, .. } => vec![("gobgpd", proc.id())],
            Speaker::Bird { proc, .. } => vec![("bird", proc.id())],
            Speaker::Frr(f) => ["bgpd", "zebra"]
                .into_iter()
                .filter_map(|d| {
                    let p = std::fs::read_to_string(f.dir().join(format!("{d}.pid"))).ok()?;
                    Some((d, p.trim().parse().ok()?))
                })
                .collect(),
        }
    }

    /// Tells the speaker to announce exactly the first `n` prefixes
    /// (`n == 0`: withdraw all); `prev` is what it announces now.
    fn announce(&mut self, n: usize, prev: usize) -> anyhow::Result<Handover> {
        match self {
            Speaker::Ferrolb(c) => {
                writeln!(c.stdin, "routes {n}")?;
                c.stdin.flush()?;
                let mut l = String::new();
                c.stdout.read_line(&mut l)?;
                let v: Vec<&str> = l.split_whitespace().collect();
                anyhow::ensure!(v.len() == 3 && v[0] == "ok", "speaker child: {l:?}");
                Ok((v[1].parse()?, v[2].parse()?))
            }
            Speaker::GoBgp { rt, client, .. } => {
                let frames = if n == 0 {
                    gobgp_api::delete_all_v4()
                } else {
                    gobgp_api::add_path_stream(&prefixes(n), 1_000)
                };
                let method = if n == 0 {
                    "DeletePath"
                } else {
                    "AddPathStream"
                };
                let client = client.clone();
                rt.run(async move {
                    let mut c = client.lock().await;
                    let t0 = mono_ns();
                    c.call(method, frames).await?;
                    anyhow::Ok((t0, mono_ns()))
                })
            }
            Speaker::Bird { dir, .. } => {
                let mut text = String::with_capacity(n * 40);
                for p in prefixes(n) {
                    let _ = writeln!(text, "route {p}/32 blackhole;");
                }
                std::fs::write(dir.join("routes.conf"), text)?;
                let mut s = UnixStream::connect(dir.join("bird.ctl"))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut r = BufReader::new(s.try_clone()?);
                let mut l = String::new();
                r.read_line(&mut l)?; // greeting
                let t0 = mono_ns();
                s.write_all(b"configure\n")?;
                loop {
                    l.clear();
                    anyhow::ensure!(r.read_line(&mut l)? > 0, "bird closed the socket");
                    let b = l.as_bytes();
                    if b.len() >= 5 && b[4] == b' ' {
                        anyhow::ensure!(l.starts_with("0003"), "birdc configure: {l}");
                        break;
                    }
                }
                Ok((t0, mono_ns()))
            }
            Speaker::Frr(f) => {
                let mut text = format!("router bgp {NODE1_AS}\n address-family ipv4 unicast\n");
                let (list, neg) = if n == 0 {
                    (prefixes(prev), "no ")
                } else {
                    (prefixes(n), "")
                };
                for p in list {
                    let _ = writeln!(text, "  {neg}network {p}/32");
                }
                let file = f.dir().join("announce.vtysh");
                std::fs::write(&file, text)?;
                let vty = f.dir().to_string_lossy().into_owned();
                let t0 = mono_ns();
                let out = Command::new("vtysh")
                    .args(["--vty_socket", &vty, "-f", file.to_str().expect("utf-8")])
                    .output()?;
                let t1 = mono_ns();
                anyhow::ensure!(out.status.success(), "vtysh -f failed");
                Ok((t0, t1))
            }
        }
    }

    fn stop(self) {
        match self {
            Speaker::Ferrolb(mut c) => {
                let _ = writeln!(c.stdin, "quit");
                drop(c.stdin);
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(3) {
                    if let Ok(Some(_)) = c.child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = c.child.kill();
                let _ = c.child.wait();
            }
            Speaker::GoBgp { mut proc, rt, .. } => {
                drop(rt);
                let _ = proc.kill();
                let _ = proc.wait();
            }
            Speaker::Bird { mut proc, .. } => {
                let _ = proc.kill();
                let _ = proc.wait();
            }
            Speaker::Frr(f) => drop(f),
        }
    }
}

// ---------------------------------------------------------------------------
// Measurements.

#[derive(Default)]
struct Results {
    /// (kind, n, "announce"/"withdraw") -> samples.
    fib: BTreeMap<(Kind, usize, &'static str), Vec<Sample>>,
    /// (kind, label, state) -> RSS KiB samples.
    rss: BTreeMap<(Kind, &'static str, String), Vec<f64>>,
    failures: Vec<String>,
}

#[derive(Clone, Copy)]
struct Sample {
    fib_ms: f64,
    first_ms: f64,
    cmd_ms: f64,
}

fn measure(w: &FibWatch, sp: &mut Speaker, n: usize, prev: usize) -> anyhow::Result<Sample> {
    w.arm(n);
    let (t0, t1) = sp.announce(n, prev)?;
    let (first, hit) = w
        .wait(WAIT)
        .ok_or_else(|| anyhow::anyhow!("FIB did not reach {n} routes (at {})", w.count()))?;
    Ok(Sample {
        fib_ms: ms(t0, hit),
        first_ms: ms(t0, first),
        cmd_ms: ms(t0, t1),
    })
}

fn established(lab: &Lab, addr: &str) -> bool {
    lab.frr()
        .try_vtysh(&format!("show bgp neighbors {addr} json"))
        .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
        .and_then(|v| v.get(addr)?.get("bgpState")?.as_str().map(str::to_owned))
        .as_deref()
        == Some("Established")
}

fn one_speaker(
    kind: Kind,
    lab: &Lab,
    w: &FibWatch,
    dir: &Path,
    res: &mut Results,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        w.wait_count(0, WAIT),
        "router FIB not empty before start ({} routes)",
        w.count()
    );
    let mut sp = Speaker::start(kind, lab, dir)?;
    let r = (|| {
        anyhow::ensure!(
            wait_until(Duration::from_secs(30), || established(lab, "10.0.0.11")),
            "session not Established"
        );
        // Established and idle for 1 s, as in baselines.md.
        std::thread::sleep(Duration::from_secs(1));
        let rec_rss = |res: &mut Results, sp: &Speaker, state: &str| {
            for (label, pid) in sp.pids() {
                if let Some((rss, _hwm)) = rss_kib(pid) {
                    res.rss
                        .entry((kind, label, state.to_owned()))
                        .or_default()
                        .push(rss as f64 / 1024.0);
                }
            }
        };
        rec_rss(res, &sp, "idle");
        let mut prev = 0;
        for n in SIZES {
            let s = measure(w, &mut sp, n, prev)?;
            res.fib.entry((kind, n, "announce")).or_default().push(s);
            prev = n;
            std::thread::sleep(Duration::from_secs(1));
            rec_rss(res, &sp, &format!("{n}"));
            let s = measure(w, &mut sp, 0, prev)?;
            res.fib.entry((kind, n, "withdraw")).or_default().push(s);
            prev = 0;
            std::thread::sleep(Duration::from_millis(300));
        }
        anyhow::Ok(())
    })();
    sp.stop();
    // The next speaker binds port 179 in the same namespace.
    let ns = lab.node(1).name.clone();
    wait_until(Duration::from_secs(10), || {
        common::try_sh(&["ip", "netns", "pids", &ns]).is_some_and(|o| o.trim().is_empty())
    });
    r
}

/// Failover trials: (detection ms, `ip link` spawn ms, notes on failed trials).
type Failover = (Vec<f64>, Vec<f64>, Vec<String>);

fn failover_diag(lab: &Lab, mgr: &SessionManager) -> String {
    let frr = lab.frr();
    let bfd = frr.bfd_status("10.0.0.12");
    let bgp = frr.neighbor_state("10.0.0.12");
    let ours = mgr.peer_status("tor").map(|s| {
        format!(
            "{:?}/bfd {:?}/last_down {:?}/est {}",
            s.state, s.bfd, s.last_down, s.established_count
        )
    });
    format!("FRR bfd {bfd:?}, FRR bgp {bgp:?}, ours {ours:?}")
}

fn failover(lab: &Lab, w: &FibWatch) -> anyhow::Result<Failover> {
    let rt = NodeRt::new(lab.node(2));
    let mgr = rt.run(async { SessionManager::start(ManagerConfig::default()) })?;
    let mut p = peer("tor", NODE2_AS, Ipv4Addr::new(10, 0, 0, 12));
    p.bfd = Some(BfdConfig {
        transmit_interval_us: 100_000,
        receive_interval_us: 100_000,
        detect_multiplier: 3,
        passive: false,
    });
    let m = mgr.clone();
    rt.run(async move { m.set_peers(vec![p]).await })?;
    let m = mgr.clone();
    rt.run(async move {
        m.set_routes(
            RouteTarget::All,
            [(
                "198.51.100.10/32".parse::<IpNet>().expect("prefix"),
                RouteAttrs::default(),
            )]
            .into_iter()
            .collect(),
        )
        .await
    })?;
    let node = lab.node(2);
    let (mut det, mut spawn, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let bfd_up = |s: &SessionManager| {
        s.peer_status("tor").is_some_and(|st| {
            st.state == ferrolb_speaker::bgp::fsm::State::Established
                && st.bfd == Some(ferrolb_speaker::bfd::packet::SessionState::Up)
        })
    };
    for trial in 0..FAILOVER_TRIALS {
        let ready = wait_until(Duration::from_secs(30), || {
            w.count() == 1
                && bfd_up(&mgr)
                && lab.frr().bfd_status("10.0.0.12").as_deref() == Some("up")
        });
        if !ready {
            notes.push(format!(
                "trial {}: route/BGP/BFD not up again within 30 s ({}); stopped",
                trial + 1,
                failover_diag(lab, &mgr)
            ));
            break;
        }
        // Vary the phase against the BFD transmit timer.
        std::thread::sleep(Duration::from_millis(500 + (trial as u64 * 37) % 100));
        w.arm(0);
        let t0 = mono_ns();
        node.exec(&["ip", "link", "set", "eth0", "down"]);
        let t_cmd = mono_ns();
        match w.wait(Duration::from_secs(10)) {
            Some((_, hit)) => {
                det.push(ms(t0, hit));
                spawn.push(ms(t0, t_cmd));
            }
            None => notes.push(format!(
                "trial {}: route not removed within 10 s ({})",
                trial + 1,
                failover_diag(lab, &mgr)
            )),
        }
        // Let both sides see the loss before the link returns.
        std::thread::sleep(Duration::from_millis(500));
        node.exec(&["ip", "link", "set", "eth0", "up"]);
    }
    let m = mgr.clone();
    rt.run(async move { m.shutdown().await });
    Ok((det, spawn, notes))
}

// ---------------------------------------------------------------------------
// Report.

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[i.clamp(1, s.len()) - 1]
}

/// `**median** [min..max]`: 3 decimals when every value is below 1, else 1.
fn fmt_stats(v: &[f64]) -> String {
    let digits = match stats(v) {
        Some((_, _, hi)) if hi < 1.0 => 3,
        _ => 1,
    };
    ferrolb_e2e::bench::fmt_stats(v, digits)
}

#[allow(clippy::too_many_arguments)]
fn report(
    res: &Results,
    kinds: &[Kind],
    skipped: &[String],
    fo: &Result<Failover, String>,
    tor_rss: &[(&str, u64, u64)],
    overruns: u64,
    started: &str,
    took: Duration,
    loads: &(String, String),
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# BGP announce benchmark and speaker memory\n");
    let _ = writeln!(
        r,
        "Reproduce: `cargo bench -p ferrolb-speaker --bench bgp_announce` (as root; FRR, GoBGP and BIRD 2 \
         installed). Run started {started}, took {:.0} s.\n",
        took.as_secs_f64()
    );
    let _ = writeln!(
        r,
        "Machine: {}. {}; {}; {}.\n",
        machine_note(loads, "ran"),
        version_line(&["/usr/lib/frr/bgpd", "--version"]),
        version_line(&["gobgpd", "--version"]),
        version_line(&["bird", "--version"]),
    );
    let _ = writeln!(
        r,
        "## Method\n\n\
         Namespaces: router 10.0.0.1 (FRR ToR, AS {ROUTER_AS}: zebra + bgpd + bfdd, static neighbours, \
         `no bgp ebgp-requires-policy`, `maximum-paths 8`), node 1 10.0.0.11 (AS {NODE1_AS}) and node 2 \
         10.0.0.12 (AS {NODE2_AS}) on one bridge. Every speaker runs on node 1, one at a time, and is \
         restarted for each repetition; its session is brought to Established and left idle for 1 s. \
         Then it announces 1,000 /32s (198.18.0.0 upwards), withdraws them, announces 10,000, withdraws them. \
         {REPS} repetitions, the speaker order rotates every repetition. Values are **median** [min..max] in ms.\n\n\
         * **t0** (the speaker is told): ferrolb = just before `SessionManager::set_routes` (in the speaker's \
         process; the route set is built before t0); GoBGP = just before one `AddPathStream` gRPC stream \
         (1,000 paths per message, ORIGIN IGP, NEXT_HOP 0.0.0.0, client already connected, messages pre-encoded; \
         withdraw = one `DeletePath(family ipv4-unicast)` = `gobgp global rib -a ipv4 del all`) — the same API \
         path as baselines.md (the `gobgp` CLI per route is too slow for 10k, `gobgp mrt inject` is lossy); \
         BIRD = `configure` written on the control socket (include file with `route X/32 blackhole;` lines \
         written before t0; withdraw = empty file); FRR = spawning `vtysh -f` with `network X/32` lines \
         (`no network` to withdraw).\n\
         * **t1** = the moment the router's kernel FIB (table main, `proto bgp`, IPv4) holds all N (announce) \
         or none (withdraw): an rtnetlink listener in the router namespace (one dump, then RTMGRP_IPV4_ROUTE \
         notifications with a 64 MiB buffer, each stamped with CLOCK_MONOTONIC when read; {overruns} overruns). \
         \"first\" = first FIB change after t0; \"call\" = how long the hand-over call took.\n"
    );
    let _ = writeln!(
        r,
        "## 1. Announce / withdraw until the ToR's kernel FIB is complete\n"
    );
    for n in SIZES.iter().rev() {
        let _ = writeln!(
            r,
            "### N = {n}\n\n| speaker | announce → FIB | first route | ToR install span | call | withdraw → FIB empty | first removal | call | runs |\n|---|---|---|---|---|---|---|---|---|"
        );
        for k in kinds {
            let a = res
                .fib
                .get(&(*k, *n, "announce"))
                .cloned()
                .unwrap_or_default();
            let wd = res
                .fib
                .get(&(*k, *n, "withdraw"))
                .cloned()
                .unwrap_or_default();
            let f = |v: &[Sample], g: fn(&Sample) -> f64| {
                fmt_stats(&v.iter().map(g).collect::<Vec<_>>())
            };
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                k.name(),
                f(&a, |s| s.fib_ms),
                f(&a, |s| s.first_ms),
                f(&a, |s| s.fib_ms - s.first_ms),
                f(&a, |s| s.cmd_ms),
                f(&wd, |s| s.fib_ms),
                f(&wd, |s| s.first_ms),
                f(&wd, |s| s.cmd_ms),
                a.len()
            );
        }
        let _ = writeln!(
            r,
            "\nRatio ours / theirs (medians, announce → FIB; withdraw → FIB):\n"
        );
        let med = |k: Kind, what: &'static str| {
            res.fib
                .get(&(k, *n, what))
                .and_then(|v| stats(&v.iter().map(|s| s.fib_ms).collect::<Vec<_>>()))
                .map(|s| s.0)
        };
        for k in kinds.iter().filter(|k| **k != Kind::Ferrolb) {
            let ra = med(Kind::Ferrolb, "announce").zip(med(*k, "announce"));
            let rw = med(Kind::Ferrolb, "withdraw").zip(med(*k, "withdraw"));
            let _ = writeln!(
                r,
                "* ferrolb / {}: announce {}, withdraw {}",
                k.name(),
                ra.map_or("n/a".into(), |(a, b)| format!("{:.2}", a / b)),
                rw.map_or("n/a".into(), |(a, b)| format!("{:.2}", a / b)),
            );
        }
        let _ = writeln!(r, "\nRaw announce → FIB (ms, in run order):\n");
        for k in kinds {
            let v = res
                .fib
                .get(&(*k, *n, "announce"))
                .cloned()
                .unwrap_or_default();
            let _ = writeln!(
                r,
                "* {}: {}",
                k.name(),
                v.iter()
                    .map(|s| format!("{:.1}", s.fib_ms))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let _ = writeln!(r);
    }
    let med10k = |k: Kind, g: fn(&Sample) -> f64| {
        res.fib
            .get(&(k, 10_000, "announce"))
            .and_then(|v| stats(&v.iter().map(g).collect::<Vec<_>>()))
            .map(|s| s.0)
    };
    let others: Vec<Kind> = kinds.iter().copied().filter(|k| *k != Kind::Frr).collect();
    let min_of = |g: fn(&Sample) -> f64| {
        others
            .iter()
            .filter_map(|k| med10k(*k, g))
            .fold(f64::INFINITY, f64::min)
    };
    let (first, span) = (min_of(|s| s.first_ms), min_of(|s| s.fib_ms - s.first_ms));
    if first.is_finite() && span.is_finite() {
        let _ = writeln!(
            r,
            "**The FRR ToR's own floor (N = 10,000), estimated.** With ferrolb, GoBGP and BIRD the first route \
             reaches the ToR's FIB no earlier than {first:.1} ms after t0 (fastest speaker's median), although \
             their hand-over is done long before (ferrolb's `set_routes` returns in µs, BIRD's `configure` in {}): \
             the ToR holds its bgpd/zebra work queues before it writes to the kernel. From the first to the last \
             route it then needs at least {span:.1} ms (\"ToR install span\", fastest median). Their sum, \
             **≈{:.0} ms**, estimates the floor this ToR imposed in this run. Both terms come from the measured \
             speakers themselves (as in baselines.md, which took BIRD's result with the RIB complete after 15 ms, \
             ≈110–125 ms on a quieter machine), so it is an upper bound, not an independent measurement; the \
             run's load slows the ToR as much as the speakers. For N = 1,000 the ToR's hold (first route ≈62–65 ms \
             after t0) dominates every speaker's time.\n",
            med10k(Kind::Bird, |s| s.cmd_ms).map_or("n/a".into(), |c| format!("{c:.1} ms")),
            first + span
        );
    }
    let _ = writeln!(
        r,
        "## 2. Speaker memory (VmRSS, MiB, read 1 s after the FIB was complete)\n\n\
         | speaker | process | idle (Established, 0 routes) | 1,000 announced | 10,000 announced |\n|---|---|---|---|---|"
    );
    let labels: Vec<(Kind, &str)> = {
        let mut v: Vec<(Kind, &str)> = res.rss.keys().map(|(k, l, _)| (*k, *l)).collect();
        v.dedup();
        v
    };
    for (k, l) in labels {
        let g = |s: &str| {
            fmt_stats(
                res.rss
                    .get(&(k, l, s.to_owned()))
                    .map_or(&[][..], |v| &v[..]),
            )
        };
        let _ = writeln!(
            r,
            "| {} | {l} | {} | {} | {} |",
            k.name(),
            g("idle"),
            g("1000"),
            g("10000")
        );
    }
    let _ = writeln!(
        r,
        "\nferrolb's figure is a process that runs only the `SessionManager` (current-thread tokio runtime, \
         one peer, the route set handed over), the session part of the speaker alone; the whole \
         `ferrolb-speaker` binary with its Kubernetes caches is measured by `speaker_rss` \
         (speaker-rss.md). The routes come back from the \
         ToR (AS-path loop) and are parsed and dropped by every speaker. FRR = the same FRR build run as a \
         speaker on the node (bgpd + zebra). The ToR itself (FRR receiving and installing the routes) at the end of the run: {}.\n",
        tor_rss
            .iter()
            .map(|(d, rss, hwm)| format!(
                "{d} {:.1} MiB (peak {:.1})",
                *rss as f64 / 1024.0,
                *hwm as f64 / 1024.0
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(
        r,
        "## 3. Failover detection: BFD 100 ms x 3, silent link loss\n"
    );
    match fo {
        Ok((det, spawn, notes)) if !det.is_empty() => {
            let _ = writeln!(
                r,
                "Node 2 runs a `SessionManager` (in the bench process, in node 2's namespace) with BFD 100 ms x 3 \
                 toward FRR bfdd (`neighbor 10.0.0.12 bfd profile fast`, 100 ms x 3) and announces one /32. \
                 Each trial takes node 2's link down (`ip link set eth0 down` in node 2; the router's port keeps \
                 its carrier behind the bridge) and times until the router's FIB drops the route (= our only \
                 nexthop), then restores the link and waits for BGP + BFD + route again. t0 is taken before \
                 spawning `ip` (spawn to return: {} ms, included).\n\n\
                 | trials | p50 | p90 | p99 | max | min |\n|---|---|---|---|---|---|\n| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n\n\
                 Raw (ms): {}\n",
                fmt_stats(spawn),
                det.len(),
                pct(det, 50.0),
                pct(det, 90.0),
                pct(det, 99.0),
                pct(det, 100.0),
                stats(det).map_or(0.0, |s| s.1),
                det.iter()
                    .map(|d| format!("{d:.0}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for n in notes {
                let _ = writeln!(r, "* {n}");
            }
            let _ = writeln!(r);
        }
        Ok((_, _, notes)) => {
            let _ = writeln!(r, "No trial succeeded. {}\n", notes.join("; "));
        }
        Err(e) => {
            let _ = writeln!(r, "Failed: {e}\n");
        }
    }
    if !skipped.is_empty() || !res.failures.is_empty() {
        let _ = writeln!(r, "## Skipped / failed\n");
        for s in skipped.iter().chain(&res.failures) {
            let _ = writeln!(r, "* {s}");
        }
        let _ = writeln!(r);
    }
    r
}

// ---------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == CHILD_ARG {
        if let Err(e) = child_main(&args[2]) {
            eprintln!("speaker child: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if !host::can_run("bgp_announce") {
        return;
    }
    exit_on_error("bgp_announce", run());
}

fn run() -> anyhow::Result<()> {
    let clock = RunClock::start();
    let mut kinds = vec![Kind::Ferrolb];
    let mut skipped = Vec::new();
    for (k, progs) in [
        (Kind::GoBgp, &["gobgpd"][..]),
        (Kind::Bird, &["bird"][..]),
        (Kind::Frr, &[][..]),
    ] {
        match progs.iter().find(|p| !have(p)) {
            Some(p) => skipped.push(format!("{}: `{p}` not installed", k.name())),
            None => kinds.push(k),
        }
    }
    let mut lab = Lab::new("bgpa", 2);
    let neighbors = [
        FrrNeighbor {
            addr: Lab::node_v4(1),
            remote_as: NODE1_AS,
            no_gtsm: true,
            ..Default::default()
        },
        FrrNeighbor {
            addr: Lab::node_v4(2),
            remote_as: NODE2_AS,
            no_gtsm: true,
            bfd: true,
            ..Default::default()
        },
    ];
    lab.start_frr(&bgpd_conf(ROUTER_AS, ROUTER, &neighbors), &bfdd_conf(100));
    let w = FibWatch::start(&lab.router.name)?;
    let tmp = tempfile::Builder::new().prefix("flb-bgpa-").tempdir()?;
    let mut res = Results::default();
    // FLB_BGPA_PHASES=announce,failover (default both): for debugging one phase.
    let phases = std::env::var("FLB_BGPA_PHASES").unwrap_or_else(|_| "announce,failover".into());
    let reps = if phases.contains("announce") { REPS } else { 0 };
    // Load average at the start of the measurements (after the lab is up).
    let load_start = loadavg();
    for rep in 0..reps {
        for i in 0..kinds.len() {
            let k = kinds[(i + rep) % kinds.len()];
            let dir = tmp.path().join(format!("{k:?}-{rep}"));
            std::fs::create_dir_all(&dir)?;
            eprintln!("bgp_announce: rep {} {}", rep + 1, k.name());
            if let Err(e) = one_speaker(k, &lab, &w, &dir, &mut res) {
                eprintln!("  failed: {e:#}");
                res.failures
                    .push(format!("rep {} {}: {e:#}", rep + 1, k.name()));
            }
        }
    }
    let tor_rss = host::frr_rss(lab.frr().dir());
    eprintln!("bgp_announce: failover trials");
    let fo = if phases.contains("failover") {
        failover(&lab, &w).map_err(|e| format!("{e:#}"))
    } else {
        Err("not run (FLB_BGPA_PHASES)".into())
    };
    let load_end = loadavg();
    let loads = (load_start, load_end);
    let overruns = w.overruns();
    drop(w);
    drop(lab);
    let text = report(
        &res,
        &kinds,
        &skipped,
        &fo,
        &tor_rss,
        overruns,
        &clock.started,
        clock.finish().0,
        &loads,
    );
    write_report("bgp-announce.md", &text)?;
    let _ = std::io::stdout().flush();
    Ok(())
}
