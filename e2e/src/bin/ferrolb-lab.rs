//! `ferrolb-lab`: the lab's command line.
//!
//! - `demo`: the README's walk-through (see `ferrolb_e2e::cluster::demo`).
//! - `up`: builds the lab, starts the in-memory API server and (when built) ferrolb's
//!   speakers and controller, then returns leaving them running for `ferrolbctl`: it
//!   starts a detached `ferrolb-lab hold --state <dir>/state.json` process that owns the lab (its namespaces carry the hold process's pid, so `cleanup_stale` keeps
//!   them while it lives), hosts the API server, the pod servers and the DNAT watcher, and
//!   writes the state file once everything is ready. `up` waits for that file and prints
//!   how to explore.
//! - `down`: stops the `hold` process of the state file (it tears the lab down), then
//!   removes leftovers of killed runs; idempotent.
//! - `apiserver`: the in-memory API server alone with the CRDs loaded.
//! - `failover-bench`: the failover benchmark (see `ferrolb_e2e::failover`).
//!
//! Ctrl-C (or SIGTERM) during `demo` and `hold` tears the lab down before exiting.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferrolb_e2e::apiserver::{ApiServer, ApiServerOptions};
use ferrolb_e2e::cluster::demo::{self, DemoOptions, POD_PORT};
use ferrolb_e2e::cluster::dnat::DnatWatcher;
use ferrolb_e2e::cluster::speakers::{CONTROLLER_BIN, FerrolbSpeakers, SPEAKER_BIN, locate_binary};
use ferrolb_e2e::cluster::{self, Cluster, SERVICE_NAMESPACE, SlicePort};
use ferrolb_e2e::failover::{
    self, BenchMode, BenchOptions, FamilySelection, MachineNotes, SpeakerKind,
};
use ferrolb_e2e::lab::{self, BfdTimers, Lab, Proto, TeardownHandle};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "ferrolb-lab",
    about = "ferrolb's network-namespace lab (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

fn default_deploy() -> PathBuf {
    DemoOptions::default().deploy_dir
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab, show ferrolb's configuration and the data path step by step, tear down.
    Demo {
        /// Directory with crds/ and examples/.
        #[arg(long, default_value_os_t = default_deploy())]
        deploy_dir: PathBuf,
        /// Nodes (2 to 8).
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        /// Pods per node (1 to 8).
        #[arg(long, default_value_t = 2)]
        pods_per_node: u8,
    },
    /// Build the lab, the API server and ferrolb's speakers and controller, and leave them
    /// running (stop with `down`).
    Up {
        /// Directory for the state file, kubeconfig and log.
        #[arg(long, default_value = "/tmp/ferrolb-lab")]
        dir: PathBuf,
        /// Directory with crds/ and examples/.
        #[arg(long, default_value_os_t = default_deploy())]
        deploy_dir: PathBuf,
    },
    /// Host a lab until SIGTERM/SIGINT (started by `up`).
    #[command(hide = true)]
    Hold {
        /// State file to write when ready.
        #[arg(long)]
        state: PathBuf,
        /// Directory with crds/ and examples/.
        #[arg(long, default_value_os_t = default_deploy())]
        deploy_dir: PathBuf,
    },
    /// Stop what `up` left running and remove leftovers of killed runs.
    Down {
        /// The directory given to `up`.
        #[arg(long, default_value = "/tmp/ferrolb-lab")]
        dir: PathBuf,
    },
    /// Run the in-memory API server (a test component) with ferrolb's CRDs until Ctrl-C.
    Apiserver {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Directory with crds/ (and examples/ when --examples is given).
        #[arg(long, default_value_os_t = default_deploy())]
        deploy_dir: PathBuf,
        /// Also load deploy/examples.
        #[arg(long)]
        examples: bool,
        /// Where to write the kubeconfig.
        #[arg(long, default_value = "/tmp/ferrolb-lab-apiserver.kubeconfig")]
        kubeconfig: PathBuf,
    },
    /// Measure client-seen failover on silent node loss and write a markdown report.
    FailoverBench {
        /// Trials (node failures).
        #[arg(long, default_value_t = 5)]
        trials: usize,
        /// v4, v6 or both.
        #[arg(long, default_value = "both")]
        family: FamilySelection,
        /// Mode: bgp (l2 once ferrolb's L2 mode exists).
        #[arg(long, default_value = "bgp")]
        mode: BenchMode,
        /// ferrolb-bgp (ferrolb's own speaker), bird-bfd or gobgp-hold (references).
        #[arg(long, default_value = "ferrolb-bgp")]
        speaker: SpeakerKind,
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        /// UDP flows per family.
        #[arg(long, default_value_t = 16)]
        flows: u16,
        /// Probe interval per flow, ms.
        #[arg(long, default_value_t = 2)]
        interval_ms: u64,
        /// BFD interval, ms.
        #[arg(long, default_value_t = 100)]
        bfd_interval_ms: u32,
        /// BFD detection multiplier.
        #[arg(long, default_value_t = 3)]
        bfd_multiplier: u8,
        /// Report path (default target/bench-reports/`failover-<speaker>.md`).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

type Slot = Arc<Mutex<Option<TeardownHandle>>>;

/// On SIGINT or SIGTERM: tear the lab in `slot` down and exit 130.
fn teardown_on_signal(slot: Slot) -> anyhow::Result<()> {
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        eprintln!("\ninterrupted: tearing the lab down");
        let handle = slot.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = handle {
            let problems = tokio::task::spawn_blocking(move || h.teardown())
                .await
                .unwrap_or_default();
            for p in problems {
                eprintln!("teardown: {p}");
            }
        }
        std::process::exit(130);
    });
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Demo {
            deploy_dir,
            nodes,
            pods_per_node,
        } => {
            run_demo(DemoOptions {
                deploy_dir,
                nodes,
                pods_per_node,
                ..DemoOptions::default()
            })
            .await
        }
        Cmd::Up { dir, deploy_dir } => up(&dir, &deploy_dir).await,
        Cmd::Hold { state, deploy_dir } => hold(&state, &deploy_dir).await,
        Cmd::Down { dir } => down(&dir),
        Cmd::Apiserver {
            port,
            deploy_dir,
            examples,
            kubeconfig,
        } => apiserver(port, &deploy_dir, examples, &kubeconfig).await,
        Cmd::FailoverBench {
            trials,
            family,
            mode,
            speaker,
            nodes,
            flows,
            interval_ms,
            bfd_interval_ms,
            bfd_multiplier,
            report,
        } => {
            if speaker.mode() != mode {
                eprintln!(
                    "error: speaker {speaker} runs in {} mode, not {mode}",
                    speaker.mode()
                );
                return ExitCode::FAILURE;
            }
            let opts = BenchOptions {
                trials,
                families: family,
                speaker,
                nodes,
                flows,
                interval: Duration::from_millis(interval_ms),
                bfd: BfdTimers {
                    interval_ms: bfd_interval_ms,
                    multiplier: bfd_multiplier,
                },
                ..BenchOptions::default()
            };
            bench(opts, report).await
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_demo(opts: DemoOptions) -> anyhow::Result<()> {
    let slot: Slot = Arc::default();
    teardown_on_signal(slot.clone())?;
    let mut stdout = std::io::stdout();
    let mut on_lab = |h: TeardownHandle| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(h);
        }
    };
    demo::run(&opts, &mut stdout, &mut on_lab).await?;
    Ok(())
}

/// What `up` leaves in `<dir>/state.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    pid: u32,
    run: String,
    api_url: String,
    kubeconfig: PathBuf,
    namespaces: Vec<String>,
    client_ns: String,
    router_ns: String,
    run_dir: PathBuf,
    /// What runs of ferrolb itself.
    #[serde(default)]
    ferrolb: String,
}

async fn hold(state: &Path, deploy_dir: &Path) -> anyhow::Result<()> {
    let slot: Slot = Arc::default();
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    tokio::task::block_in_place(|| lab::cleanup_stale(lab::PREFIX))?;
    let spec = demo::demo_spec(&DemoOptions::default());
    let lab = Arc::new(tokio::task::block_in_place(|| Lab::up(spec))?);
    *slot.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(lab.teardown_handle());
    let res = async {
        tokio::task::block_in_place(|| lab.serve_pods(POD_PORT))?;
        let api = ApiServer::start(ApiServerOptions {
            manifests: vec![deploy_dir.join("crds")],
            ..ApiServerOptions::default()
        })
        .await?;
        let nodes = cluster::seed_cluster(&api, lab.plan())?;
        let files = cluster::manifest_files(&deploy_dir.join("examples"))?;
        cluster::apply_manifests(&api, &files, &nodes)?;
        let client = api.client()?;
        Cluster::new(client.clone())
            .create_endpoint_slices(
                lab.plan(),
                SERVICE_NAMESPACE,
                "web",
                &[SlicePort {
                    name: "http".into(),
                    port: POD_PORT,
                    proto: Proto::Tcp,
                }],
            )
            .await?;
        let watcher = DnatWatcher::spawn(client, lab.clone());
        let dir = state.parent().unwrap_or(Path::new("."));
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig)?;
        // ferrolb itself: a speaker per node namespace and the controller in node1's, as
        // in the demo, when the binaries are built (`scripts/demo` builds them).
        let mut ferrolb = None;
        let ferrolb_note = match (locate_binary(SPEAKER_BIN), locate_binary(CONTROLLER_BIN)) {
            (Ok(speaker), Ok(controller)) => {
                let speakers = tokio::task::block_in_place(|| {
                    FerrolbSpeakers::start(&lab, &speaker, api.addr(), &kubeconfig)
                })?;
                let ctrl = speakers.start_controller(&lab, &controller, &kubeconfig, 1)?;
                ferrolb = Some((speakers, ctrl));
                format!(
                    "ferrolb-speaker runs in every node namespace and ferrolb-controller in \
                     node1's (logs in {})",
                    lab.run_dir().display()
                )
            }
            (Err(e), _) | (_, Err(e)) => {
                format!(
                    "ferrolb's binaries were not found ({e:#}), so no speaker or controller \
                     runs: build them with `cargo build --release -p ferrolb-speaker -p \
                     ferrolb-controller` and run `up` again"
                )
            }
        };
        let st = State {
            pid: std::process::id(),
            run: lab.run_name().to_string(),
            api_url: api.url(),
            kubeconfig,
            namespaces: lab.plan().namespaces(),
            client_ns: lab.client_ns().to_string(),
            router_ns: lab.router_ns().to_string(),
            run_dir: lab.run_dir().to_path_buf(),
            ferrolb: ferrolb_note,
        };
        let tmp = state.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&st)?)?;
        std::fs::rename(&tmp, state)?;
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        if let Some((speakers, mut ctrl)) = ferrolb {
            ctrl.stop(Duration::from_secs(5));
            tokio::task::block_in_place(|| speakers.stop());
        }
        drop(watcher);
        api.shutdown().await;
        anyhow::Ok(())
    }
    .await;
    let problems = tokio::task::block_in_place(|| lab.teardown_handle().teardown());
    let _ = std::fs::remove_file(state);
    res?;
    anyhow::ensure!(problems.is_empty(), "teardown: {}", problems.join("; "));
    Ok(())
}

async fn up(dir: &Path, deploy_dir: &Path) -> anyhow::Result<()> {
    lab::require_root()?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let state = dir.join("state.json");
    if let Ok(text) = std::fs::read_to_string(&state)
        && let Ok(st) = serde_json::from_str::<State>(&text)
        && Path::new(&format!("/proc/{}", st.pid)).exists()
    {
        anyhow::bail!(
            "a lab is already up (hold pid {}, run {}); stop it with: ferrolb-lab down --dir {}",
            st.pid,
            st.run,
            dir.display()
        );
    }
    let _ = std::fs::remove_file(&state);
    let log = dir.join("hold.log");
    let logf = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let exe = std::env::current_exe().context("find own executable")?;
    use std::os::unix::process::CommandExt as _;
    let mut child = std::process::Command::new(exe)
        .arg("hold")
        .arg("--state")
        .arg(&state)
        .arg("--deploy-dir")
        .arg(deploy_dir)
        .stdin(std::process::Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .process_group(0)
        .spawn()
        .context("start the hold process")?;
    println!(
        "building the lab (hold process {}, log {})",
        child.id(),
        log.display()
    );
    let start = Instant::now();
    let st: State = loop {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!(
                "the hold process exited with {status} before the lab was ready:\n{text}"
            );
        }
        if let Ok(text) = std::fs::read_to_string(&state) {
            break serde_json::from_str(&text).context("read state file")?;
        }
        if start.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the lab was not ready within 120 s; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("lab {} is up, hosted by process {}.", st.run, st.pid);
    println!("API server (in-memory test component): {}", st.api_url);
    println!("kubeconfig: {}", st.kubeconfig.display());
    println!(
        "Nodes, EndpointSlices and deploy/examples are loaded; {}.",
        st.ferrolb
    );
    println!("\nexplore:");
    println!(
        "  KUBECONFIG={} ferrolbctl services -A     # VIPs, pools, who announces",
        st.kubeconfig.display()
    );
    println!(
        "  KUBECONFIG={} ferrolbctl pools | bgp | describe service default/web",
        st.kubeconfig.display()
    );
    println!(
        "  KUBECONFIG={} kubectl get nodes,endpointslices -A",
        st.kubeconfig.display()
    );
    println!(
        "  vtysh --vty_socket {} -c 'show bgp summary'   # the FRR ToR in {}",
        st.run_dir.display(),
        st.router_ns
    );
    println!(
        "  ip netns exec {} ping -c1 10.244.1.11                        # client to a pod",
        st.client_ns
    );
    println!("  ip netns list | grep {}", st.run);
    println!("\nstop with: ferrolb-lab down --dir {}", dir.display());
    Ok(())
}

fn down(dir: &Path) -> anyhow::Result<()> {
    lab::require_root()?;
    let state = dir.join("state.json");
    match std::fs::read_to_string(&state) {
        Ok(text) => {
            let st: State = serde_json::from_str(&text).context("read state file")?;
            let pid = nix::unistd::Pid::from_raw(st.pid as i32);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
                println!("stopping hold process {} (lab {})", st.pid, st.run);
                let start = Instant::now();
                while Path::new(&format!("/proc/{}", st.pid)).exists()
                    && start.elapsed() < Duration::from_secs(20)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let _ = std::fs::remove_file(&state);
        }
        Err(_) => println!("no lab state in {}", dir.display()),
    }
    let r = lab::cleanup_stale(lab::PREFIX)?;
    println!(
        "removed {} stale namespaces, {} processes, {} run directories",
        r.namespaces.len(),
        r.killed.len(),
        r.dirs.len()
    );
    Ok(())
}

async fn apiserver(
    port: u16,
    deploy_dir: &Path,
    examples: bool,
    kubeconfig: &Path,
) -> anyhow::Result<()> {
    let mut manifests = vec![deploy_dir.join("crds")];
    if examples {
        manifests.push(deploy_dir.join("examples"));
    }
    let api = ApiServer::start(ApiServerOptions {
        port,
        manifests,
        ..ApiServerOptions::default()
    })
    .await?;
    api.write_kubeconfig(kubeconfig)?;
    println!(
        "in-memory API server (a test component of the lab, not ferrolb) at {}",
        api.url()
    );
    println!("kubeconfig: {}", kubeconfig.display());
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    api.shutdown().await;
    Ok(())
}

async fn bench(opts: BenchOptions, report: Option<PathBuf>) -> anyhow::Result<()> {
    let slot: Slot = Arc::default();
    teardown_on_signal(slot.clone())?;
    let report = report.unwrap_or_else(|| {
        demo::workspace_root()
            .join("target/bench-reports")
            .join(format!("failover-{}.md", opts.speaker))
    });
    let vips: Vec<IpAddr> = vec![opts.vip_v4, opts.vip_v6];
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    tokio::task::block_in_place(|| lab::cleanup_stale(lab::PREFIX))?;
    let results = tokio::task::block_in_place(|| {
        failover::run_bench(&opts, &mut |line| println!("{line}"), &mut |h| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(h);
            }
        })
    })?;
    let text = failover::render_report(&opts, &results, &command, &MachineNotes::collect());
    if let Some(p) = report.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
    }
    std::fs::write(&report, &text).with_context(|| format!("write {}", report.display()))?;
    print!(
        "\n{}",
        failover::summary_table(opts.speaker, &results).render("  ")
    );
    println!(
        "\nreport ({} VIPs {:?}): {}",
        opts.speaker,
        vips,
        report.display()
    );
    Ok(())
}
