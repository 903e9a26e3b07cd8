//! Controller restart benchmark: the release `ferrolb-controller` binary against the
//! in-memory API server (`ferrolb_e2e::apiserver`) with one /16 IPv4 pool and N = 1,000
//! and 10,000 LoadBalancer Services.
//!
//! Per repetition: a fresh API server is seeded (CRDs, namespaces, pool, N Services
//! without status); the bench lists the N Services itself with kube-rs as a baseline;
//! then (a) cold allocation: controller start until every Service has an address in its
//! status, (b) restart: SIGTERM, a new controller, time until `/readyz` answers 200, with
//! the check that no address changed and no Service was written, and (c) the
//! controller's VmRSS/VmHWM after each phase. Writes `target/bench-reports/restart.md`
//! and prints it. No root needed (no namespaces).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::bench::{
    BenchChild, DIAG_ENV, RunClock, arena_diag_section, exit_on_error, fmt_stats, machine_note,
    median, rss_kib, sigterm, write_report,
};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Namespace of ferrolb's objects.
const NS: &str = "ferrolb-system";
/// Namespace of the Services.
const SVC_NS: &str = "default";
/// Pool of the run: 65,536 addresses.
const POOL: &str = "10.0.0.0/16";
/// Scales and repetitions per scale.
const PLAN: [(usize, usize); 2] = [(1_000, 3), (10_000, 3)];
/// Page size the controller's watchers list with (`LIST_PAGE_SIZE` in reconcile.rs).
const PAGE: u32 = 5_000;
/// Limit for every wait of the bench.
const WAIT: Duration = Duration::from_secs(180);
/// Poll interval of the in-process status checks and of `/readyz`.
const POLL: Duration = Duration::from_millis(10);

/// A controller process, killed on drop (a failing run leaves nothing behind).
struct Ctl {
    proc: BenchChild,
    addr: String,
}

impl Ctl {
    fn start(
        kubeconfig: &Path,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Ctl, Instant)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
        cmd.args(["--metrics-addr", &addr, "--log-json", "--namespace", NS])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let proc = BenchChild::spawn(&mut cmd, log, "controller")?;
        let t0 = proc.spawned_at();
        Ok((Ctl { proc, addr }, t0))
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        self.proc.check_running()
    }

    async fn ready(&self) -> bool {
        get(&self.addr, "/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    }

    /// SIGTERM, then waits for the exit; returns how long that took.
    async fn stop(&mut self) -> anyhow::Result<Duration> {
        let Some(mut child) = self.proc.take() else {
            anyhow::bail!("controller not running");
        };
        let t0 = Instant::now();
        anyhow::ensure!(sigterm(child.id())?, "kill -TERM failed");
        loop {
            if let Some(st) = child.try_wait()? {
                anyhow::ensure!(st.success(), "controller exit status {st}");
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("no exit 20 s after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `(since_start_ms, initial_load_ms)` of the "every watch listed" and "initial
    /// load done" log lines (the controller's own clock, from the start of `run`).
    fn log_marks(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let text = std::fs::read_to_string(self.proc.log()).unwrap_or_default();
        let mut listed = None;
        let mut ready = None;
        let mut load = None;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            match f["message"].as_str() {
                Some("every watch listed") if listed.is_none() => {
                    listed = f["since_start_ms"].as_f64();
                }
                Some("initial load done; controller ready") if ready.is_none() => {
                    ready = f["since_start_ms"].as_f64();
                    load = f["initial_load_ms"].as_f64();
                }
                _ => {}
            }
        }
        (listed, ready, load)
    }
}

/// Removes the bench's temporary directory, also when unwinding.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

fn name(i: usize) -> String {
    format!("s{i:05}")
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name(i), "namespace": SVC_NS},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]},
    })
}

fn ingress_ip(server: &ApiServer, name: &str) -> Option<String> {
    let s = server.object("v1", "Service", Some(SVC_NS), name)?;
    s["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .map(str::to_owned)
}

/// Tracks which Services have an address, re-reading only those that had none. A scan
/// stops after 64 misses, so a poll stays cheap while most Services are still waiting;
/// the Services behind them are read once the ones before them are done.
struct Progress {
    pending: Vec<usize>,
    ips: Vec<Option<String>>,
}

impl Progress {
    fn new(n: usize) -> Progress {
        Progress {
            pending: (0..n).collect(),
            ips: vec![None; n],
        }
    }

    fn scan(&mut self, server: &ApiServer) -> bool {
        let mut misses = 0;
        let mut keep = Vec::new();
        for (pos, &i) in self.pending.iter().enumerate() {
            if misses >= 64 {
                keep.extend_from_slice(&self.pending[pos..]);
                break;
            }
            match ingress_ip(server, &name(i)) {
                Some(ip) => self.ips[i] = Some(ip),
                None => {
                    misses += 1;
                    keep.push(i);
                }
            }
        }
        self.pending = keep;
        self.pending.is_empty()
    }
}

/// Every Service's first ingress address.
fn snapshot(server: &ApiServer, n: usize) -> Vec<Option<String>> {
    (0..n).map(|i| ingress_ip(server, &name(i))).collect()
}

/// Sum of the counters of write verbs on `plural`.
fn writes(counts: &BTreeMap<String, u64>, plural: &str) -> u64 {
    ["create", "update", "patch", "delete", "deletecollection"]
        .iter()
        .map(|v| counts.get(&format!("{v} {plural}")).copied().unwrap_or(0))
        .sum()
}

/// Counters that grew between `a` and `b` (write verbs only), as `key +delta`.
fn write_diff(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> Vec<String> {
    b.iter()
        .filter(|(k, _)| {
            k.contains(' ')
                && ["create ", "update ", "patch ", "delete"]
                    .iter()
                    .any(|v| k.starts_with(v))
        })
        .filter_map(|(k, v)| {
            let d = v - a.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("`{k}` +{d}"))
        })
        .collect()
}

/// Waits until the write counters stop moving for `quiet`.
async fn settle(server: &ApiServer, quiet: Duration) {
    let total = |c: &BTreeMap<String, u64>| -> u64 {
        ["create", "update", "patch", "delete"]
            .iter()
            .map(|v| c.get(*v).copied().unwrap_or(0))
            .sum()
    };
    let mut last = total(&server.request_counts());
    let mut since = Instant::now();
    let start = Instant::now();
    while since.elapsed() < quiet && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = total(&server.request_counts());
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// One repetition's figures (milliseconds, KiB).
#[derive(Debug, Default, Clone)]
struct Rep {
    list_ms: f64,
    list_paged_ms: f64,
    relist_ms: f64,
    relist_paged_ms: f64,
    json_bytes: f64,
    managed_bytes: f64,
    raw: RawList,
    seed_ms: f64,
    cold_ready_ms: f64,
    cold_all_ms: f64,
    cold_listed_log_ms: Option<f64>,
    cold_rss: (u64, u64),
    cold_writes: Vec<String>,
    stop_ms: f64,
    restart_ready_ms: f64,
    restart_listed_log_ms: Option<f64>,
    restart_ready_log_ms: Option<f64>,
    restart_load_log_ms: Option<f64>,
    restart_rss: (u64, u64),
    changed: usize,
    service_writes: u64,
    restart_writes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn baseline_list(client: &kube::Client) -> anyhow::Result<(f64, f64, usize)> {
    let api: Api<Service> = Api::all(client.clone());
    let t = Instant::now();
    let all = api.list(&ListParams::default()).await?;
    let one = ms(t.elapsed());
    let t = Instant::now();
    let mut seen = 0;
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(tok) = token.take() {
            lp = lp.continue_token(&tok);
        }
        let page = api.list(&lp).await?;
        seen += page.items.len();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => token = Some(c),
            _ => break,
        }
    }
    let paged = ms(t.elapsed());
    anyhow::ensure!(
        seen == all.items.len(),
        "paged list saw {seen}, single list {}",
        all.items.len()
    );
    Ok((one, paged, seen))
}

/// The unpaged list of the allocated Services split in three: the HTTP GET until the last
/// byte (server: lock, copy and serialise; transport), parsing the body into a
/// `serde_json::Value`, and deserialising it into kube's typed `ObjectList<Service>`.
#[derive(Debug, Default, Clone)]
struct RawList {
    bytes: usize,
    http_ms: f64,
    value_ms: f64,
    typed_ms: f64,
}

/// Removes HTTP/1.1 chunked framing.
fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(b.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

async fn raw_list(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<RawList> {
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = "GET /api/v1/services HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\
               Connection: close\r\n\r\n";
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let http_ms = ms(t.elapsed());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of HTTP headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    anyhow::ensure!(head.starts_with("http/1.1 200"), "list: {head}");
    let body = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    let t = Instant::now();
    let v: Value = serde_json::from_slice(&body)?;
    let value_ms = ms(t.elapsed());
    drop(v);
    let t = Instant::now();
    let list: kube::core::ObjectList<Service> = serde_json::from_slice(&body)?;
    let typed_ms = ms(t.elapsed());
    anyhow::ensure!(
        list.items.len() == n,
        "raw list has {} items",
        list.items.len()
    );
    Ok(RawList {
        bytes: body.len(),
        http_ms,
        value_ms,
        typed_ms,
    })
}

/// Median of 3 baseline lists: (unpaged ms, paged ms).
async fn baseline(client: &kube::Client, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut ones = Vec::new();
    let mut pageds = Vec::new();
    for _ in 0..3 {
        let (one, paged, seen) = baseline_list(client).await?;
        anyhow::ensure!(seen == n, "listed {seen} Services, seeded {n}");
        ones.push(one);
        pageds.push(paged);
    }
    Ok((median(&ones), median(&pageds)))
}

/// Mean JSON size of a Service as stored (and served), and of its `managedFields`,
/// over every 10th Service.
fn json_sizes(server: &ApiServer, n: usize) -> (f64, f64) {
    let mut total = 0usize;
    let mut managed = 0usize;
    let mut count = 0usize;
    for i in (0..n).step_by(10) {
        if let Some(v) = server.object("v1", "Service", Some(SVC_NS), &name(i)) {
            total += serde_json::to_vec(&v).map_or(0, |b| b.len());
            managed += serde_json::to_vec(&v["metadata"]["managedFields"]).map_or(0, |b| b.len());
            count += 1;
        }
    }
    let c = count.max(1) as f64;
    (total as f64 / c, managed as f64 / c)
}

async fn one_rep(n: usize, dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Rep> {
    let mut rep = Rep::default();
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let server = ApiServer::start(ApiServerOptions {
        manifests: vec![crds],
        ..Default::default()
    })
    .await?;
    let t = Instant::now();
    for ns in [NS, SVC_NS] {
        server
            .insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .map_err(|e| anyhow::anyhow!("namespace {ns}: {}", e.message))?;
    }
    server
        .insert(json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": {"name": "bench", "namespace": NS},
            "spec": {"addresses": [POOL]},
        }))
        .map_err(|e| anyhow::anyhow!("pool: {}", e.message))?;
    for i in 0..n {
        server
            .insert(service(i))
            .map_err(|e| anyhow::anyhow!("service {i}: {}", e.message))?;
    }
    rep.seed_ms = ms(t.elapsed());

    // Baseline: the same N Services listed by kube-rs from this process (3 tries, median).
    let client = server.client()?;
    (rep.list_ms, rep.list_paged_ms) = baseline(&client, n).await?;

    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;

    // (a) Cold allocation.
    let before = server.request_counts();
    let (mut ctl, t0) = Ctl::start(&kubeconfig, dir.join(format!("cold-{n}.log")), env)?;
    let mut progress = Progress::new(n);
    let mut ready_at = None;
    loop {
        if ready_at.is_none() && ctl.ready().await {
            ready_at = Some(t0.elapsed());
        }
        if progress.scan(&server) {
            rep.cold_all_ms = ms(t0.elapsed());
            break;
        }
        ctl.check_running()?;
        anyhow::ensure!(
            t0.elapsed() < WAIT,
            "cold allocation: {} of {n} Services still without an address",
            progress.pending.len()
        );
        tokio::time::sleep(POLL).await;
    }
    while ready_at.is_none() {
        if ctl.ready().await {
            ready_at = Some(t0.elapsed());
        }
        anyhow::ensure!(t0.elapsed() < WAIT, "cold controller never ready");
        tokio::time::sleep(POLL).await;
    }
    rep.cold_ready_ms = ready_at.map(ms).unwrap_or_default();
    rep.cold_listed_log_ms = ctl.log_marks().0;
    settle(&server, Duration::from_millis(500)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    rep.cold_rss = rss_kib(ctl.pid()).context("controller /proc status")?;
    rep.cold_writes = write_diff(&before, &server.request_counts());
    let ips: Vec<Option<String>> = progress.ips.clone();
    let distinct: std::collections::BTreeSet<&String> = ips.iter().flatten().collect();
    anyhow::ensure!(
        distinct.len() == n,
        "{} distinct addresses for {n}",
        distinct.len()
    );
    rep.stop_ms = ms(ctl.stop().await?);
    drop(ctl);

    // Baseline again: the Services as the restart will list them (annotation, status,
    // condition and the server's managedFields).
    (rep.relist_ms, rep.relist_paged_ms) = baseline(&client, n).await?;
    (rep.json_bytes, rep.managed_bytes) = json_sizes(&server, n);
    let mut raws = Vec::new();
    for _ in 0..3 {
        raws.push(raw_list(server.addr(), n).await?);
    }
    raws.sort_by(|a, b| a.http_ms.total_cmp(&b.http_ms));
    rep.raw = raws[1].clone();

    // (b) Restart.
    let before = server.request_counts();
    let (mut ctl, t0) = Ctl::start(&kubeconfig, dir.join(format!("restart-{n}.log")), env)?;
    loop {
        if ctl.ready().await {
            rep.restart_ready_ms = ms(t0.elapsed());
            break;
        }
        ctl.check_running()?;
        anyhow::ensure!(t0.elapsed() < WAIT, "restarted controller never ready");
        tokio::time::sleep(POLL).await;
    }
    // Give it a second to write anything it would write, then compare.
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle(&server, Duration::from_millis(500)).await;
    let after = server.request_counts();
    rep.service_writes = writes(&after, "services") - writes(&before, "services");
    rep.restart_writes = write_diff(&before, &after);
    let now = snapshot(&server, n);
    rep.changed = ips.iter().zip(&now).filter(|(a, b)| a != b).count();
    (
        rep.restart_listed_log_ms,
        rep.restart_ready_log_ms,
        rep.restart_load_log_ms,
    ) = ctl.log_marks();
    rep.restart_rss = rss_kib(ctl.pid()).context("controller /proc status")?;
    ctl.stop().await?;
    drop(ctl);
    server.shutdown().await;
    Ok(rep)
}

fn fmt(v: &[f64]) -> String {
    fmt_stats(v, 0)
}

fn fmt_mib(v: &[f64]) -> String {
    fmt_stats(v, 1)
}

fn report(results: &[(usize, Vec<Rep>)], failures: &[String], run: &RunInfo) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Controller restart and memory benchmark (issue 3)\n");
    let _ = writeln!(
        r,
        "Reproduce: `cargo bench -p ferrolb-controller --bench restart` (no root needed). \
         Run started {}, took {:.0} s.\n",
        run.started,
        run.took.as_secs_f64()
    );
    let _ = writeln!(
        r,
        "Machine: {}. Release build (`bench` profile: fat LTO, one codegen unit) of the controller binary.\n",
        machine_note(&run.loads, "may run"),
    );
    let _ = writeln!(
        r,
        "Target (BRIEF §5): restart rebuild < 1 s, controller RSS < 60 MiB at 10k Services.\n"
    );
    let _ = writeln!(r, "## Method\n");
    let _ = writeln!(
        r,
        "* One fresh in-memory API server (`ferrolb_e2e::apiserver`, plain HTTP/JSON on \
         127.0.0.1, running on a 2-worker tokio runtime **inside the bench process**, so it \
         shares the 2 CPUs with the controller) per repetition, seeded directly: ferrolb's \
         CRDs, namespaces `{NS}` and `{SVC_NS}`, one IPAddressPool `{POOL}`, and N \
         LoadBalancer Services (`{SVC_NS}/s00000`…, TCP 443, no status)."
    );
    let _ = writeln!(
        r,
        "* The real `ferrolb-controller` binary (`--log-json`, `RUST_LOG=info`, log to a \
         file, no leader election) is started with a kubeconfig for that server. t0 = just \
         before `spawn`."
    );
    let _ = writeln!(
        r,
        "* **Cold allocation**: t0 until every Service has an address in \
         `status.loadBalancer.ingress`, read from the server's store in-process every {} ms \
         (only Services still without an address are re-read). `/readyz` is polled over HTTP \
         at the same time. Then the bench waits until the server has seen no write for 0.5 s \
         (the controller also writes the pool annotation, the condition and an Event per \
         Service) and 1 s more, and reads VmRSS and VmHWM from `/proc/<pid>/status`.",
        POLL.as_millis()
    );
    let _ = writeln!(
        r,
        "* **Restart**: SIGTERM (time to exit shown), a new controller process, t0 until \
         `/readyz` answers 200 = initial load done: every watch listed once and every \
         Service's status address restored into the allocator. 1 s later (plus 0.5 s without \
         writes) every Service's address is compared with the one after the cold run, and \
         the server's request counters give the writes the restarted controller made. \
         VmRSS/VmHWM are read at that point."
    );
    let _ = writeln!(
        r,
        "* **Baseline**: before the controller starts, the bench lists the same N Services \
         with kube-rs (`Api::<Service>::all(..).list`, deserialised into `k8s_openapi` \
         Services) once unpaged and once in pages of {PAGE} as the controller's watchers do; \
         median of 3 each. That is the HTTP/JSON cost the restart cannot avoid against this \
         server. The controller's own log lines split its readiness further: \
         \"every watch listed\" and \"initial load done\" carry `since_start_ms` (from the \
         start of its reconciler, after process start-up and client set-up) and \
         `initial_load_ms` (the restore step itself)."
    );
    let _ = writeln!(
        r,
        "* Values are **median** [min..max] over the repetitions; times in ms, memory in MiB.\n"
    );
    for (n, reps) in results {
        let _ = writeln!(r, "## N = {n} Services ({} repetitions)\n", reps.len());
        let col = |f: &dyn Fn(&Rep) -> f64| -> Vec<f64> { reps.iter().map(f).collect() };
        let opt =
            |f: &dyn Fn(&Rep) -> Option<f64>| -> Vec<f64> { reps.iter().filter_map(f).collect() };
        let mib = |x: u64| x as f64 / 1024.0;
        let _ = writeln!(r, "| phase | measure | value |");
        let _ = writeln!(r, "|---|---|---|");
        let rows: Vec<(&str, &str, String)> = vec![
            (
                "seed",
                "insert N Services in-process (not HTTP)",
                fmt(&col(&|x| x.seed_ms)),
            ),
            (
                "baseline",
                "kube-rs list of N Services, unpaged",
                fmt(&col(&|x| x.list_ms)),
            ),
            (
                "baseline",
                "kube-rs list of N Services, pages of 5000",
                fmt(&col(&|x| x.list_paged_ms)),
            ),
            (
                "cold",
                "start → `/readyz` 200",
                fmt(&col(&|x| x.cold_ready_ms)),
            ),
            (
                "cold",
                "reconciler start → every watch listed (log)",
                fmt(&opt(&|x| x.cold_listed_log_ms)),
            ),
            (
                "cold",
                "**start → all N Services have an address**",
                fmt(&col(&|x| x.cold_all_ms)),
            ),
            (
                "cold",
                "VmRSS after allocation (settled)",
                fmt_mib(&col(&|x| mib(x.cold_rss.0))),
            ),
            (
                "cold",
                "VmHWM (peak RSS so far)",
                fmt_mib(&col(&|x| mib(x.cold_rss.1))),
            ),
            ("stop", "SIGTERM → exit", fmt(&col(&|x| x.stop_ms))),
            (
                "baseline",
                "kube-rs list of the allocated N Services, unpaged",
                fmt(&col(&|x| x.relist_ms)),
            ),
            (
                "baseline",
                "kube-rs list of the allocated N Services, pages of 5000",
                fmt(&col(&|x| x.relist_paged_ms)),
            ),
            (
                "baseline",
                "split of the unpaged list: HTTP GET to last byte (server + transport)",
                fmt(&col(&|x| x.raw.http_ms)),
            ),
            (
                "baseline",
                "split: parse the body into `serde_json::Value`",
                fmt(&col(&|x| x.raw.value_ms)),
            ),
            (
                "baseline",
                "split: deserialise the body into `ObjectList<Service>`",
                fmt(&col(&|x| x.raw.typed_ms)),
            ),
            (
                "baseline",
                "list body size (MiB)",
                fmt_mib(&col(&|x| x.raw.bytes as f64 / 1048576.0)),
            ),
            (
                "baseline",
                "JSON bytes per allocated Service (of which `managedFields`)",
                format!(
                    "{:.0} ({:.0})",
                    median(&col(&|x| x.json_bytes)),
                    median(&col(&|x| x.managed_bytes))
                ),
            ),
            (
                "restart",
                "**start → `/readyz` 200 (initial load done)**",
                fmt(&col(&|x| x.restart_ready_ms)),
            ),
            (
                "restart",
                "reconciler start → every watch listed (log)",
                fmt(&opt(&|x| x.restart_listed_log_ms)),
            ),
            (
                "restart",
                "reconciler start → initial load done (log)",
                fmt(&opt(&|x| x.restart_ready_log_ms)),
            ),
            (
                "restart",
                "initial load step (restore N, log)",
                fmt(&opt(&|x| x.restart_load_log_ms)),
            ),
            (
                "restart",
                "VmRSS 1 s after ready",
                fmt_mib(&col(&|x| mib(x.restart_rss.0))),
            ),
            (
                "restart",
                "VmHWM (peak RSS of the restarted process)",
                fmt_mib(&col(&|x| mib(x.restart_rss.1))),
            ),
        ];
        for (p, m, v) in rows {
            let _ = writeln!(r, "| {p} | {m} | {v} |");
        }
        let changed: usize = reps.iter().map(|x| x.changed).sum();
        let svc_writes: u64 = reps.iter().map(|x| x.service_writes).sum();
        let _ = writeln!(
            r,
            "\nAcross the restarts: **{changed}** addresses changed, **{svc_writes}** writes to \
             Services (create/update/patch/delete, main resource and status)."
        );
        for (i, x) in reps.iter().enumerate() {
            let _ = writeln!(
                r,
                "* rep {}: cold writes {}; restart writes {}.",
                i + 1,
                if x.cold_writes.is_empty() {
                    "none".to_owned()
                } else {
                    x.cold_writes.join(", ")
                },
                if x.restart_writes.is_empty() {
                    "none".to_owned()
                } else {
                    x.restart_writes.join(", ")
                }
            );
        }
        let _ = writeln!(
            r,
            "\nRaw restart → ready (ms, run order): {}  ",
            reps.iter()
                .map(|x| format!("{:.0}", x.restart_ready_ms))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            r,
            "Raw cold → all allocated (ms, run order): {}\n",
            reps.iter()
                .map(|x| format!("{:.0}", x.cold_all_ms))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(r, "## Failed repetitions\n");
        for f in failures {
            let _ = writeln!(r, "* {f}");
        }
        r.push('\n');
    }
    r.push_str(&run.notes);
    r
}

struct RunInfo {
    started: String,
    took: Duration,
    loads: (String, String),
    notes: String,
}

fn summary(results: &[(usize, Vec<Rep>)]) -> String {
    let mut s = String::from("## Reading\n\n");
    for (n, reps) in results {
        if reps.is_empty() {
            continue;
        }
        let med = |f: &dyn Fn(&Rep) -> Option<f64>| -> f64 {
            median(&reps.iter().filter_map(f).collect::<Vec<_>>())
        };
        let ready = med(&|x| Some(x.restart_ready_ms));
        let listed = med(&|x| x.restart_listed_log_ms);
        let load = med(&|x| x.restart_load_log_ms);
        let paged = med(&|x| Some(x.relist_paged_ms));
        let hwm = reps.iter().map(|x| x.cold_rss.1).max().unwrap_or(0) as f64 / 1024.0;
        let rss = med(&|x| Some(x.restart_rss.0 as f64 / 1024.0));
        let cold_rss = med(&|x| Some(x.cold_rss.0 as f64 / 1024.0));
        let http = med(&|x| Some(x.raw.http_ms));
        let typed = med(&|x| Some(x.raw.typed_ms));
        let _ = writeln!(
            s,
            "* N = {n}: restart → ready **{ready:.0} ms** (target < 1000 ms: {}). Of that, the \
             controller's watches had listed everything {listed:.0} ms after its reconciler \
             started, and the restore step took {load:.0} ms; the same Services listed in \
             pages of {PAGE} by the bench take {paged:.0} ms ({}); of an unpaged list, the \
             HTTP GET to the last byte (the in-memory server copying and serialising, plus \
             transport) takes {http:.0} ms and typed deserialisation {typed:.0} ms. Memory: VmRSS {cold_rss:.1} MiB \
             after the cold allocation (highest VmHWM {hwm:.1} MiB), {rss:.1} MiB after a \
             restart (target < 60 MiB: {}).",
            if ready < 1000.0 { "met" } else { "**missed**" },
            if listed - paged <= 0.1 * paged {
                "the controller's watches are done no later than that: listing dominates".to_owned()
            } else {
                format!(
                    "the controller's watches take {:.0} ms more",
                    listed - paged
                )
            },
            if hwm < 60.0 { "met" } else { "**missed**" },
        );
    }
    s.push_str(
        "\nThe remaining restart time is process start-up and client set-up (before the \
         reconciler's clock starts) and the step turning the listed Services into the \
         controller's state. The in-memory server copies every listed object under one store \
         lock and then serialises the whole list, so the figures are about the controller \
         plus this server, not a real kube-apiserver (which \
         adds TLS, auth and etcd or its watch cache). The memory figures are the process's \
         resident set, not live heap: they include the kube-rs watch caches of every Service \
         (with the `managedFields` the server keeps, as a real API server also sends them) \
         and whatever the allocator has not returned to the system.\n",
    );
    s
}

/// Scale of the diagnostic run.
const DIAG_N: usize = 10_000;

fn diag_section(diag: Option<&Rep>, results: &[(usize, Vec<Rep>)]) -> String {
    let Some(d) = diag else {
        return String::new();
    };
    let base = results.iter().find(|(n, _)| *n == DIAG_N).map(|(_, r)| r);
    let med = |f: &dyn Fn(&Rep) -> f64| -> f64 {
        base.map_or(f64::NAN, |r| median(&r.iter().map(f).collect::<Vec<_>>()))
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let mut s = arena_diag_section(
        DIAG_N,
        "controller",
        &[
            (
                "VmRSS after cold allocation (MiB)",
                med(&|x| mib(x.cold_rss.0)),
                mib(d.cold_rss.0),
            ),
            (
                "VmHWM cold (MiB)",
                med(&|x| mib(x.cold_rss.1)),
                mib(d.cold_rss.1),
            ),
            (
                "VmRSS after restart (MiB)",
                med(&|x| mib(x.restart_rss.0)),
                mib(d.restart_rss.0),
            ),
            (
                "start → all allocated (ms)",
                med(&|x| x.cold_all_ms),
                d.cold_all_ms,
            ),
            (
                "restart → ready (ms)",
                med(&|x| x.restart_ready_ms),
                d.restart_ready_ms,
            ),
        ],
    );
    let _ = writeln!(
        s,
        "\nAddresses changed in that restart: {}; writes to Services: {}.",
        d.changed, d.service_writes
    );
    s
}

fn main() {
    exit_on_error("restart bench", run());
}

fn run() -> anyhow::Result<()> {
    let clock = RunClock::start();
    let dir = std::env::temp_dir().join(format!("flb-{}-restart-bench", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tmp = TempDir(dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (n, reps) in PLAN {
        let mut done = Vec::new();
        for rep in 0..reps {
            eprintln!("restart bench: N = {n}, rep {}", rep + 1);
            match rt.block_on(one_rep(n, &tmp.0, &[])) {
                Ok(x) => {
                    eprintln!(
                        "  cold all {:.0} ms, restart ready {:.0} ms, changed {}, service writes {}, \
                         RSS {} / HWM {} KiB",
                        x.cold_all_ms,
                        x.restart_ready_ms,
                        x.changed,
                        x.service_writes,
                        x.restart_rss.0,
                        x.cold_rss.1
                    );
                    done.push(x);
                }
                Err(e) => {
                    eprintln!("  failed: {e:#}");
                    failures.push(format!("N = {n}, rep {}: {e:#}", rep + 1));
                }
            }
        }
        results.push((n, done));
    }
    // Diagnostic: is the resident set live data or allocator arenas? One run with glibc
    // limited to one malloc arena (not a product setting).
    eprintln!("restart bench: diagnostic N = {DIAG_N} with {DIAG_ENV}=1");
    let diag = match rt.block_on(one_rep(DIAG_N, &tmp.0, &[(DIAG_ENV, "1")])) {
        Ok(x) => Some(x),
        Err(e) => {
            eprintln!("  failed: {e:#}");
            failures.push(format!("diagnostic run: {e:#}"));
            None
        }
    };
    drop(rt);
    let (took, loads) = clock.finish();
    let info = RunInfo {
        started: clock.started.clone(),
        took,
        loads,
        notes: summary(&results) + &diag_section(diag.as_ref(), &results),
    };
    let text = report(&results, &failures, &info);
    write_report("restart.md", &text)?;
    anyhow::ensure!(failures.is_empty(), "{} repetitions failed", failures.len());
    let bad: usize = results
        .iter()
        .flat_map(|(_, r)| r)
        .map(|x| x.changed + x.service_writes as usize)
        .sum();
    anyhow::ensure!(bad == 0, "a restart changed addresses or wrote Services");
    Ok(())
}
