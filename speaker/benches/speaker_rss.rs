//! Speaker memory benchmark of the real `ferrolb-speaker` binary (issue 4; needs root and
//! FRR).
//!
//! `cargo bench -p ferrolb-speaker --bench speaker_rss` builds a router namespace with a
//! private FRR (zebra + bgpd, AS 64500, static neighbour) and one node namespace on a
//! bridge (the `tests/common` lab of the `bgp_announce` bench), starts the in-memory API
//! server in the bench process and relays it into the node namespace
//! (`ferrolb_e2e::cluster::ApiRelay`), then per run: seeds the ferrolb configuration, starts
//! the speaker binary in the node namespace, reads its VmRSS idle (session Established, no
//! Services), inserts N LoadBalancer Services with an address in status and an
//! EndpointSlice each, times until the router's RIB and kernel FIB hold all N /32s, and
//! reads VmRSS/VmHWM again. Writes `target/bench-reports/speaker-rss.md` and prints it.
//! With `FERROLB_RSS_HEAPTRACK=<dir>` it instead runs once at N = 10,000 with the speaker
//! under `heaptrack` (Debian package) and leaves the profile in `<dir>`.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "support/fibwatch.rs"]
mod fibwatch;
#[path = "support/host.rs"]
mod host;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{Frr, FrrNeighbor, Lab, bfdd_conf, bgpd_conf};
use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::bench::{
    BenchChild, DIAG_ENV, RunClock, arena_diag_section, exit_on_error, fmt_stats as fmt,
    machine_note, rss_kib, stats, version_line, wait_until, write_report,
};
use ferrolb_e2e::cluster::speakers::ApiRelay;
use fibwatch::{FibWatch, mono_ns, ms};
use serde_json::{Value, json};

const ROUTER_AS: u32 = 64500;
const NODE_AS: u32 = 64601;
const ROUTER: &str = "10.0.0.1";
const NODE: &str = "node1";
const NS: &str = "ferrolb-system";
const SVC_NS: &str = "default";
/// Pool of the Service addresses (65,536 addresses).
const POOL: &str = "198.18.0.0/16";
/// Scales and repetitions per scale.
const PLAN: [(usize, usize); 2] = [(1_000, 3), (10_000, 3)];
/// Set to a directory: one run at N = 10,000 with the speaker under `heaptrack`, the
/// profile written there, no report (a developer's tool for finding the heap peak).
const PROFILE_ENV: &str = "FERROLB_RSS_HEAPTRACK";
/// Limit of each wait.
const WAIT: Duration = Duration::from_secs(120);

/// The speaker process, killed on drop.
struct Speaker {
    proc: BenchChild,
}

impl Speaker {
    fn start(
        ns: &str,
        kubeconfig: &Path,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Speaker> {
        // `ip netns exec` execs the binary: the child's pid is the speaker's.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        // Profile mode: the speaker runs under heaptrack (the pid read is then heaptrack's).
        if let Some(out) = std::env::var_os(PROFILE_ENV) {
            cmd.arg("heaptrack")
                .arg("-o")
                .arg(Path::new(&out).join("speaker"));
        }
        cmd.arg(env!("CARGO_BIN_EXE_ferrolb-speaker"))
            .args(["--node-name", NODE, "--bgp-port", "179"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let proc = BenchChild::spawn(&mut cmd, log, "speaker")?;
        Ok(Speaker { proc })
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        self.proc.check_running()
    }

    /// SIGTERM (the speaker sends a Cease), then waits up to 10 s for the exit.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.proc.take() else {
            return Ok(());
        };
        let _ = ferrolb_e2e::bench::sigterm(child.id());
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                anyhow::ensure!(st.success(), "speaker exit status {st}");
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("speaker did not exit 10 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The router's view of the node's session: (state, prefixes received).
fn router_peer(frr: &Frr) -> Option<(String, u64)> {
    let out = frr.try_vtysh("show bgp summary json")?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let p = &v["ipv4Unicast"]["peers"]["10.0.0.11"];
    Some((p["state"].as_str()?.to_owned(), p["pfxRcd"].as_u64()?))
}

fn vip(i: usize) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    Ipv4Addr::from(base + 1 + i as u32)
}

fn insert(api: &ApiServer, v: Value) -> anyhow::Result<()> {
    api.insert(v)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("seed: {}", e.message))
}

/// Namespaces, the pool, one BGPAdvertisement, the BGPPeer toward the router and the
/// Ready Node object.
fn seed_config(api: &ApiServer) -> anyhow::Result<()> {
    for ns in [NS, SVC_NS] {
        insert(
            api,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )?;
    }
    api.load_yaml(&format!(
        r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bench, namespace: {NS}}}
spec: {{addresses: ["{POOL}"]}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: all, namespace: {NS}}}
spec: {{}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: tor, namespace: {NS}}}
spec: {{myASN: {NODE_AS}, peerASN: {ROUTER_AS}, peerAddress: {ROUTER}, connectTime: 1s}}
"#
    ))
    .map_err(|e| anyhow::anyhow!("config: {}", e.message))?;
    insert(
        api,
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
            "status": {
                "addresses": [{"type": "InternalIP", "address": Lab::node_v4(1)}],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }),
    )
}

/// N EndpointSlices (one ready endpoint on the node each), then N Services (ETP Cluster,
/// address in status). Returns (first insert, last insert) in CLOCK_MONOTONIC ns.
fn seed_services(api: &ApiServer, n: usize) -> anyhow::Result<(u64, u64)> {
    let t_first = mono_ns();
    for i in 0..n {
        insert(
            api,
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("s{i:05}-1"), "namespace": SVC_NS,
                             "labels": {"kubernetes.io/service-name": format!("s{i:05}")}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [format!("10.244.{}.{}", 1 + i / 250, 1 + i % 250)],
                               "conditions": {"ready": true}, "nodeName": NODE}],
                "ports": [{"port": 8443, "protocol": "TCP"}],
            }),
        )?;
    }
    for i in 0..n {
        insert(
            api,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("s{i:05}"), "namespace": SVC_NS},
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
                         "ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}]},
                "status": {"loadBalancer": {"ingress": [{"ip": vip(i).to_string()}]}},
            }),
        )?;
    }
    Ok((t_first, mono_ns()))
}

/// One run's figures: times in ms, memory in KiB.
#[derive(Debug, Clone, Default)]
struct Run {
    idle: (u64, u64),
    insert_ms: f64,
    rib_ms: f64,
    rib_poll_ms: f64,
    fib_ms: f64,
    fib_first_ms: f64,
    after_fib: (u64, u64),
    status_ms: Option<f64>,
    after_status: (u64, u64),
    status_requests: u64,
}

/// Writes to `servicebgpstatuses` seen by the server.
fn status_writes(api: &ApiServer) -> (u64, u64) {
    let c = api.request_counts();
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    let all = ["create", "update", "patch", "delete"]
        .iter()
        .map(|v| get(&format!("{v} servicebgpstatuses")))
        .sum();
    (get("patch servicebgpstatuses"), all)
}

fn one_run(
    lab: &Lab,
    fib: &FibWatch,
    rt: &tokio::runtime::Runtime,
    n: usize,
    dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<Run> {
    let frr = lab.frr();
    let mut run = Run::default();
    anyhow::ensure!(
        fib.wait_count(0, WAIT),
        "router FIB not empty before the run ({} routes)",
        fib.count()
    );
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let api = rt.block_on(ApiServer::start(ApiServerOptions {
        manifests: vec![crds],
        // Room for the 2N seeded objects and the speaker's status writes in the watch
        // history.
        history_limit: 100_000,
        ..ApiServerOptions::default()
    }))?;
    let result = (|| {
        seed_config(&api)?;
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig)?;
        let relay = {
            let _g = rt.enter();
            ApiRelay::start(&lab.node(1).name, api.addr())?
        };
        let mut sp = Speaker::start(
            &lab.node(1).name,
            &kubeconfig,
            dir.join(format!("speaker-{n}.log")),
            env,
        )?;
        let r = (|| {
            anyhow::ensure!(
                wait_until(Duration::from_secs(30), || {
                    router_peer(frr).is_some_and(|(s, _)| s == "Established")
                }),
                "session not Established within 30 s"
            );
            // Established and idle for 1 s, as in bgp-announce.md.
            std::thread::sleep(Duration::from_secs(1));
            sp.check_running()?;
            run.idle = rss_kib(sp.pid()).context("speaker /proc status")?;

            fib.arm(n);
            let stop = AtomicBool::new(false);
            let (t_first, t0, rib) = std::thread::scope(|s| {
                // RIB poller: `show bgp summary json` until pfxRcd = N; the end of the
                // call that first shows N is the (upper-bound) stamp.
                let poller = s.spawn(|| {
                    let mut calls = 0u64;
                    let start = mono_ns();
                    while !stop.load(Ordering::Relaxed) {
                        let r = router_peer(frr);
                        let now = mono_ns();
                        calls += 1;
                        if r.is_some_and(|(_, p)| p as usize >= n) {
                            return Some((now, ms(start, now) / calls as f64));
                        }
                        if ms(start, now) > WAIT.as_secs_f64() * 1e3 {
                            return None;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    None
                });
                let seeded = seed_services(&api, n);
                let rib = match &seeded {
                    Ok(_) => poller.join().ok().flatten(),
                    Err(_) => {
                        stop.store(true, Ordering::Relaxed);
                        None
                    }
                };
                seeded.map(|(a, b)| (a, b, rib))
            })?;
            let (rib_at, poll_ms) = rib.ok_or_else(|| {
                anyhow::anyhow!(
                    "router RIB did not reach {n} prefixes (at {:?})",
                    router_peer(frr)
                )
            })?;
            let (first, hit) = fib
                .wait(WAIT)
                .ok_or_else(|| anyhow::anyhow!("FIB did not reach {n} (at {})", fib.count()))?;
            run.insert_ms = ms(t_first, t0);
            run.rib_ms = ms(t0, rib_at);
            run.rib_poll_ms = poll_ms;
            run.fib_ms = ms(t0, hit);
            run.fib_first_ms = if first >= t0 {
                ms(t0, first)
            } else {
                -ms(first, t0)
            };
            std::thread::sleep(Duration::from_secs(1));
            sp.check_running()?;
            run.after_fib = rss_kib(sp.pid()).context("speaker /proc status")?;
            // The ServiceBGPStatus writer: one status patch per Service once done.
            let done = wait_until(WAIT, || status_writes(&api).0 as usize >= n);
            run.status_ms = done.then(|| ms(t0, mono_ns()));
            // Let it go quiet, then read again.
            let mut last = status_writes(&api).1;
            let mut since = Instant::now();
            let begin = Instant::now();
            while since.elapsed() < Duration::from_secs(1) && begin.elapsed() < WAIT {
                std::thread::sleep(Duration::from_millis(50));
                let now = status_writes(&api).1;
                if now != last {
                    last = now;
                    since = Instant::now();
                }
            }
            run.status_requests = last;
            sp.check_running()?;
            run.after_status = rss_kib(sp.pid()).context("speaker /proc status")?;
            anyhow::Ok(())
        })();
        let stopped = sp.stop();
        drop(relay);
        r?;
        stopped?;
        // The Cease withdraws everything at the router.
        anyhow::ensure!(
            fib.wait_count(0, WAIT),
            "router FIB kept {} routes after the speaker stopped",
            fib.count()
        );
        anyhow::Ok(())
    })();
    rt.block_on(api.shutdown());
    result.map(|()| run)
}

struct Meta {
    started: String,
    took: Duration,
    loads: (String, String),
    tor: Vec<(&'static str, u64, u64)>,
    diag: Option<Run>,
}

/// Scale of the diagnostic run.
const DIAG_N: usize = 10_000;

fn report(results: &BTreeMap<usize, Vec<Run>>, failures: &[String], meta: &Meta) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# Speaker memory benchmark: the `ferrolb-speaker` binary (issue 4)\n"
    );
    let _ = writeln!(
        r,
        "Reproduce: `cargo bench -p ferrolb-speaker --bench speaker_rss` (as root; FRR installed). \
         Run started {}, took {:.0} s.\n",
        meta.started,
        meta.took.as_secs_f64()
    );
    let _ = writeln!(
        r,
        "Machine: {}. {}. Release build (`bench` profile: fat LTO, one codegen unit) of the speaker binary.\n",
        machine_note(&meta.loads, "may run"),
        version_line(&["/usr/lib/frr/bgpd", "--version"]),
    );
    let _ = writeln!(r, "## Method\n");
    let _ = writeln!(
        r,
        "* Namespaces (the lab of `bgp_announce`): router {ROUTER} with a private FRR (zebra + \
         bgpd, AS {ROUTER_AS}, static neighbour 10.0.0.11, `no bgp ebgp-requires-policy`, no \
         BFD) and node 1 {} on one bridge.",
        Lab::node_v4(1)
    );
    let _ = writeln!(
        r,
        "* The in-memory API server (`ferrolb_e2e::apiserver`) runs in the bench process in \
         the root namespace; an `ApiRelay` listens on its address inside the node namespace, \
         so the speaker uses an ordinary kubeconfig. A fresh server per run with ferrolb's \
         CRDs, an IPAddressPool `{POOL}`, one BGPAdvertisement (no selectors), a BGPPeer \
         (myASN {NODE_AS}, peerASN {ROUTER_AS}, peerAddress {ROUTER}) and a Ready Node \
         `{NODE}` (InternalIP {}).",
        Lab::node_v4(1)
    );
    let _ = writeln!(
        r,
        "* The real `ferrolb-speaker` binary runs in the node namespace (`--node-name {NODE} \
         --bgp-port 179`, defaults otherwise: 100 ms debounce, `/metrics` on 0.0.0.0:7473, \
         `RUST_LOG=info` to a file), a new process per run. Once the router shows the session \
         Established it idles 1 s and its VmRSS is read (**idle**: all caches listed, no \
         Service)."
    );
    let _ = writeln!(
        r,
        "* Then the bench inserts N EndpointSlices (one ready endpoint on `{NODE}`, \
         `kubernetes.io/service-name` label) and N LoadBalancer Services \
         (`externalTrafficPolicy: Cluster`, one address from the pool in \
         `status.loadBalancer.ingress`) straight into the server's store (the \"insert\" \
         row). **t0** = the last Service inserted (every Service exists). **RIB** = the end \
         of the first `vtysh -c 'show bgp summary json'` (polled every ~10 ms plus the call) \
         that shows `pfxRcd` = N for the node: an upper bound, one poll cycle coarse. **FIB** \
         = the router's kernel table main holding all N `proto bgp` routes, from an rtnetlink \
         listener in the router namespace (stamped when read; the measure of \
         bgp-announce.md)."
    );
    let _ = writeln!(
        r,
        "* Memory from `/proc/<pid>/status`: VmRSS 1 s after the FIB was complete; VmRSS and \
         VmHWM again once the speaker's `ServiceBGPStatus` writer is done (one status patch \
         per Service seen by the server, then 1 s without status writes). Then SIGTERM (Cease; \
         the router's FIB must drop to 0) before the next run."
    );
    let _ = writeln!(
        r,
        "* Values are **median** [min..max] over the runs; times in ms, memory in MiB.\n"
    );
    let _ = writeln!(r, "## Results\n");
    let _ = writeln!(
        r,
        "| N | runs | insert N slices + N Services | t0 → RIB has N | t0 → FIB has N | first insert → FIB has N | t0 → first FIB route | t0 → all statuses written |"
    );
    let _ = writeln!(r, "|---:|---:|---|---|---|---|---|---|");
    for (n, runs) in results {
        let col = |f: &dyn Fn(&Run) -> f64| -> Vec<f64> { runs.iter().map(f).collect() };
        let status: Vec<f64> = runs.iter().filter_map(|x| x.status_ms).collect();
        let _ = writeln!(
            r,
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            fmt(&col(&|x| x.insert_ms), 0),
            fmt(&col(&|x| x.rib_ms), 0),
            fmt(&col(&|x| x.fib_ms), 0),
            fmt(&col(&|x| x.insert_ms + x.fib_ms), 0),
            fmt(&col(&|x| x.fib_first_ms), 0),
            fmt(&status, 0),
        );
    }
    let _ = writeln!(
        r,
        "\nRIB poll cycle (mean time per `vtysh` call incl. the 10 ms pause): {}.\n",
        results
            .iter()
            .map(|(n, runs)| format!(
                "N = {n}: {:.0} ms",
                stats(&runs.iter().map(|x| x.rib_poll_ms).collect::<Vec<_>>())
                    .map_or(f64::NAN, |s| s.0)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        r,
        "| N | speaker VmRSS idle | VmRSS 1 s after FIB complete | VmRSS after status writes | VmHWM (peak) |"
    );
    let _ = writeln!(r, "|---:|---|---|---|---|");
    for (n, runs) in results {
        let col = |f: &dyn Fn(&Run) -> f64| -> Vec<f64> { runs.iter().map(f).collect() };
        let _ = writeln!(
            r,
            "| {n} | {} | {} | {} | {} |",
            fmt(&col(&|x| mib(x.idle.0)), 1),
            fmt(&col(&|x| mib(x.after_fib.0)), 1),
            fmt(&col(&|x| mib(x.after_status.0)), 1),
            fmt(&col(&|x| mib(x.after_status.1)), 1),
        );
    }
    let _ = writeln!(r, "\nRaw (run order):\n");
    for (n, runs) in results {
        let _ = writeln!(
            r,
            "* N = {n}: t0 → FIB {} ms; VmRSS after statuses {} MiB; status requests {}",
            runs.iter()
                .map(|x| format!("{:.0}", x.fib_ms))
                .collect::<Vec<_>>()
                .join(" "),
            runs.iter()
                .map(|x| format!("{:.1}", mib(x.after_status.0)))
                .collect::<Vec<_>>()
                .join(" "),
            runs.iter()
                .map(|x| x.status_requests.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if !meta.tor.is_empty() {
        let _ = writeln!(
            r,
            "\nThe router (FRR receiving and installing) at the end of the run: {}.",
            meta.tor
                .iter()
                .map(|(d, rss, hwm)| format!("{d} {:.1} MiB (peak {:.1})", mib(*rss), mib(*hwm)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(d) = &meta.diag {
        let base = results.get(&DIAG_N);
        let med = |f: &dyn Fn(&Run) -> f64| -> f64 {
            base.and_then(|r| stats(&r.iter().map(f).collect::<Vec<_>>()))
                .map_or(f64::NAN, |s| s.0)
        };
        r += &arena_diag_section(
            DIAG_N,
            "speaker",
            &[
                ("VmRSS idle (MiB)", med(&|x| mib(x.idle.0)), mib(d.idle.0)),
                (
                    "VmRSS 1 s after FIB complete (MiB)",
                    med(&|x| mib(x.after_fib.0)),
                    mib(d.after_fib.0),
                ),
                (
                    "VmRSS after status writes (MiB)",
                    med(&|x| mib(x.after_status.0)),
                    mib(d.after_status.0),
                ),
                (
                    "VmHWM (MiB)",
                    med(&|x| mib(x.after_status.1)),
                    mib(d.after_status.1),
                ),
                ("t0 → FIB has N (ms)", med(&|x| x.fib_ms), d.fib_ms),
            ],
        );
    }
    let _ = writeln!(r, "\n## Comparison with bgp-announce.md\n");
    let medof = |n: usize, f: &dyn Fn(&Run) -> f64| -> Option<f64> {
        stats(&results.get(&n)?.iter().map(f).collect::<Vec<_>>()).map(|s| s.0)
    };
    let idle = stats(
        &results
            .values()
            .flatten()
            .map(|x| mib(x.idle.0))
            .collect::<Vec<_>>(),
    )
    .map(|s| s.0);
    if let (Some(idle), Some(k1), Some(k10), Some(f1), Some(f10)) = (
        idle,
        medof(1_000, &|x| mib(x.after_status.0)),
        medof(10_000, &|x| mib(x.after_status.0)),
        medof(1_000, &|x| x.fib_ms),
        medof(10_000, &|x| x.fib_ms),
    ) {
        let _ = writeln!(
            r,
            "This run, full binary (medians): VmRSS {idle:.1} MiB idle, {k1:.1} MiB at 1,000 and \
             **{k10:.1} MiB at 10,000** Services announced, i.e. {:.1}x the `SessionManager`-only \
             figure (7.6 MiB) and {:.1}x BIRD's (10.2 MiB) at 10,000; t0 → FIB {f1:.0} ms at \
             1,000 and {f10:.0} ms at 10,000.\n",
            k10 / 7.6,
            k10 / 10.2,
        );
        let _ = writeln!(
            r,
            "Target (BRIEF §5): speaker memory < 30 MiB at 10,000 announced prefixes, its \
             Kubernetes caches included: **{}** (median {k10:.1} MiB after the status writes; \
             worst run {:.1} MiB).\n",
            if k10 < 30.0 { "met" } else { "missed" },
            results
                .get(&10_000)
                .into_iter()
                .flatten()
                .map(|x| mib(x.after_status.0))
                .fold(0.0, f64::max),
        );
    }
    let _ = writeln!(
        r,
        "bgp-announce.md measured a process running only the `SessionManager` (one peer, the \
         route set handed over directly): VmRSS 4.5 MiB idle, 5.0 MiB at 1,000 and 7.6 MiB at \
         10,000 announced /32s, and 311 ms (median) from `set_routes` to the same router's FIB \
         at 10,000 (84.8 ms at 1,000); BIRD 2 as the node speaker used 10.2 MiB at 10,000. \
         Those are other runs on a shared machine, so the comparison is indicative only. On top \
         of the session, the full binary caches compact projections of N Services and N \
         EndpointSlices (plus kube-rs reflector caches of Nodes, Namespaces, configuration, \
         Secrets), runs the decision pass over them in place, writes N `ServiceBGPStatus` \
         objects and serves metrics; this bench does not split the resident set among those \
         parts (set `FERROLB_RSS_HEAPTRACK=<dir>` for a heaptrack profile of one 10,000 run). The one-arena run above shows \
         whether it is mostly per-thread malloc arenas or data the process holds. Its t0 → \
         FIB time adds watch delivery over HTTP, the 100 ms debounce and the decision to the \
         session's own work. BIRD's figure has no Kubernetes side at all, so it bounds only \
         the routing part."
    );
    if !failures.is_empty() {
        let _ = writeln!(r, "\n## Failed runs\n");
        for f in failures {
            let _ = writeln!(r, "* {f}");
        }
    }
    r
}

fn main() {
    if !host::can_run("speaker_rss") {
        return;
    }
    exit_on_error("speaker_rss", run());
}

fn run() -> anyhow::Result<()> {
    let clock = RunClock::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut lab = Lab::new("srss", 1);
    let neighbors = [FrrNeighbor {
        addr: Lab::node_v4(1),
        remote_as: NODE_AS,
        no_gtsm: true,
        ..Default::default()
    }];
    lab.start_frr(&bgpd_conf(ROUTER_AS, ROUTER, &neighbors), &bfdd_conf(300));
    let fib = FibWatch::start(&lab.router.name)?;
    let tmp = tempfile::Builder::new().prefix("flb-srss-").tempdir()?;
    let mut results: BTreeMap<usize, Vec<Run>> = BTreeMap::new();
    let mut failures = Vec::new();
    if std::env::var_os(PROFILE_ENV).is_some() {
        let dir = tmp.path().join("profile");
        std::fs::create_dir_all(&dir)?;
        let r = one_run(&lab, &fib, &rt, DIAG_N, &dir, &[]);
        eprintln!("speaker_rss: profile run: {:?}", r.map(|x| x.fib_ms));
        return Ok(());
    }
    for (n, reps) in PLAN {
        for rep in 0..reps {
            eprintln!("speaker_rss: N = {n}, run {}", rep + 1);
            let dir = tmp.path().join(format!("{n}-{rep}"));
            std::fs::create_dir_all(&dir)?;
            match one_run(&lab, &fib, &rt, n, &dir, &[]) {
                Ok(x) => {
                    eprintln!(
                        "  RIB {:.0} ms, FIB {:.0} ms, RSS idle {} / after {} / HWM {} KiB",
                        x.rib_ms, x.fib_ms, x.idle.0, x.after_status.0, x.after_status.1
                    );
                    results.entry(n).or_default().push(x);
                }
                Err(e) => {
                    eprintln!("  failed: {e:#}");
                    failures.push(format!("N = {n}, run {}: {e:#}", rep + 1));
                }
            }
        }
    }
    // Diagnostic: live data or allocator arenas? One run with glibc limited to one malloc
    // arena (not a product setting).
    eprintln!("speaker_rss: diagnostic N = {DIAG_N} with {DIAG_ENV}=1");
    let dir = tmp.path().join("diag");
    std::fs::create_dir_all(&dir)?;
    let diag = match one_run(&lab, &fib, &rt, DIAG_N, &dir, &[(DIAG_ENV, "1")]) {
        Ok(x) => Some(x),
        Err(e) => {
            eprintln!("  failed: {e:#}");
            failures.push(format!("diagnostic run: {e:#}"));
            None
        }
    };
    let tor = host::frr_rss(lab.frr().dir());
    drop(fib);
    drop(lab);
    drop(rt);
    let (took, loads) = clock.finish();
    let meta = Meta {
        started: clock.started.clone(),
        took,
        loads,
        tor,
        diag,
    };
    let text = report(&results, &failures, &meta);
    write_report("speaker-rss.md", &text)?;
    anyhow::ensure!(failures.is_empty(), "{} runs failed", failures.len());
    Ok(())
}
