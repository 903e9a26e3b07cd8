//! ferrolb's speaker binaries in the lab: one `ferrolb-speaker` process per node, started
//! with `ip netns exec` inside the node's network namespace so that its BGP and BFD sockets
//! use the node's uplink.
//!
//! Reaching the API server: the in-memory API server listens on 127.0.0.1 of the root
//! namespace, which a process inside a node namespace cannot reach. [`ApiRelay`] opens a
//! listener on the **same address and port inside the node namespace** (a socket keeps the
//! namespace it was created in, so a short-lived thread that entered the namespace binds it
//! and hands it back) and forwards each accepted connection to the API server from the root
//! namespace. The node's speaker then uses the very same kubeconfig as everything else. An
//! API outage ([`crate::apiserver::ApiServer::pause`]) passes through unchanged.
//!
//! ferrolb's controller runs the same way in one node's namespace
//! ([`FerrolbSpeakers::start_controller`]), as if it were a pod on that node.
//!
//! [`FerrolbSpeakers::kill_node`] and [`FerrolbSpeakers::restart_node`] crash and restart
//! one node's speaker (graceful-restart tests); the restarted process appends to the same
//! log and uses the same relay.
//!
//! The binaries are found next to the running executable (`target/<profile>/`, or its
//! parent for test executables in `target/<profile>/deps/`), or in `$FERROLB_BIN_DIR`.
//! `scripts/demo` builds them; for `cargo test` run `cargo build -p ferrolb-speaker` first.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::task::{JoinHandle, JoinSet};

use crate::lab::{Lab, LabError, netns};

/// Name of ferrolb's speaker binary.
pub const SPEAKER_BIN: &str = "ferrolb-speaker";
/// Name of ferrolb's controller binary.
pub const CONTROLLER_BIN: &str = "ferrolb-controller";

/// Finds binary `name` of this workspace: in `$FERROLB_BIN_DIR`, next to the running
/// executable, one directory up (test executables live in `deps/`), or in
/// `target/debug` of the workspace. The error names the places searched and the build
/// command.
pub fn locate_binary(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("FERROLB_BIN_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            dirs.push(up.to_path_buf());
        }
    }
    dirs.push(super::demo::workspace_root().join("target").join("debug"));
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name} not found in {}; build it with: cargo build -p {name}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Forwards TCP connections made to `target`'s address inside a network namespace to
/// `target` in the root namespace. Stops (with every forwarded connection) on drop.
#[derive(Debug)]
pub struct ApiRelay {
    ns: String,
    task: JoinHandle<()>,
}

impl ApiRelay {
    /// Binds `target`'s address inside namespace `ns` (its loopback must be up) and starts
    /// forwarding on the current tokio runtime.
    pub fn start(ns: &str, target: SocketAddr) -> anyhow::Result<ApiRelay> {
        let listener = netns::run_in(ns, move || {
            std::net::TcpListener::bind(target).map_err(|e| {
                LabError::new(
                    format!("bind the API relay on {target}"),
                    e.to_string(),
                    None,
                )
            })
        })?;
        listener
            .set_nonblocking(true)
            .context("make the API relay non-blocking")?;
        let listener =
            tokio::net::TcpListener::from_std(listener).context("register the API relay")?;
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        conns.spawn(async move {
                            if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(ApiRelay {
            ns: ns.to_string(),
            task,
        })
    }

    /// The namespace the relay listens in.
    pub fn namespace(&self) -> &str {
        &self.ns
    }
}

impl Drop for ApiRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One ferrolb binary running in a node namespace of the lab (a speaker, or the
/// controller). Killed on drop if still running.
#[derive(Debug)]
pub struct FerrolbProcess {
    node: String,
    child: Option<Child>,
    log: PathBuf,
}

/// Spawns `argv` with `KUBECONFIG=kubeconfig`, stdout and stderr to `log`.
fn spawn_logged(argv: &[&std::ffi::OsStr], kubeconfig: &Path, log: &Path) -> anyhow::Result<Child> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("empty command line"))?;
    let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("open {}", log.display()))?;
    Command::new(prog)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("start {}", Path::new(prog).display()))
}

impl FerrolbProcess {
    /// The node it runs on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Its log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Fails naming the process and the end of its log if it has exited.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if self.running() {
            return Ok(());
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        anyhow::bail!(
            "ferrolb's process on {} exited; last log lines: {}",
            self.node,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }

    /// Sends SIGKILL (nothing is sent to the router: its sockets just close) and reaps
    /// the process. Returns the exit description.
    pub fn kill(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".into();
        };
        let _ = child.kill();
        match child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("wait failed: {e}"),
        }
    }

    /// Sends SIGTERM (the speaker closes its sessions with a Cease) and waits up to
    /// `grace` for it to exit, then kills it. Returns the exit description.
    pub fn stop(&mut self, grace: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".into();
        };
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return format!("killed after {} ms", grace.as_millis());
                }
            }
        }
    }
}

impl Drop for FerrolbProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// ferrolb's speaker on every node of a lab, with the API relays it needs.
#[derive(Debug)]
pub struct FerrolbSpeakers {
    relays: Vec<ApiRelay>,
    procs: Vec<FerrolbProcess>,
    /// Node namespace per process (same order as `procs`).
    namespaces: Vec<String>,
    binary: PathBuf,
    kubeconfig: PathBuf,
}

/// Starts `binary` for node `node` in namespace `ns`, logging to `log` (appending if
/// `append`, else truncating).
fn spawn_speaker(
    binary: &Path,
    kubeconfig: &Path,
    node: &str,
    ns: &str,
    log: &Path,
    append: bool,
) -> anyhow::Result<Child> {
    let out = if append {
        OpenOptions::new().create(true).append(true).open(log)
    } else {
        File::create(log)
    }
    .with_context(|| format!("open {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("open {}", log.display()))?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(binary)
        .args([
            "--node-name",
            node,
            "--bgp-port",
            "179",
            "--metrics-addr",
            "",
            "--debounce-ms",
            "50",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("start {} on {node}", binary.display()))
}

impl FerrolbSpeakers {
    /// Starts a relay to `api` and `binary --node-name <node> --bgp-port 179` with
    /// `KUBECONFIG=kubeconfig` in every node namespace (logs in the lab's run directory).
    /// Needs a tokio runtime (the relays run on it).
    pub fn start(
        lab: &Lab,
        binary: &Path,
        api: SocketAddr,
        kubeconfig: &Path,
    ) -> anyhow::Result<FerrolbSpeakers> {
        let mut relays = Vec::new();
        let mut procs = Vec::new();
        let mut namespaces = Vec::new();
        for n in lab.nodes() {
            relays.push(ApiRelay::start(&n.ns, api)?);
            let log = lab
                .run_dir()
                .join(format!("ferrolb-speaker-{}.log", n.name));
            let child = spawn_speaker(binary, kubeconfig, &n.name, &n.ns, &log, false)?;
            procs.push(FerrolbProcess {
                node: n.name.clone(),
                child: Some(child),
                log,
            });
            namespaces.push(n.ns.clone());
        }
        Ok(FerrolbSpeakers {
            relays,
            procs,
            namespaces,
            binary: binary.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }

    fn index_of(&self, node: &str) -> anyhow::Result<usize> {
        self.procs
            .iter()
            .position(|p| p.node == node)
            .ok_or_else(|| anyhow::anyhow!("no speaker for node {node}"))
    }

    /// Kills node `node`'s speaker with SIGKILL (a crash: no Cease, no BFD AdminDown)
    /// and reaps it; the other speakers and the relays keep running. Returns the exit
    /// description.
    pub fn kill_node(&mut self, node: &str) -> anyhow::Result<String> {
        let i = self.index_of(node)?;
        Ok(self.procs[i].kill())
    }

    /// Starts node `node`'s speaker again (after [`FerrolbSpeakers::kill_node`] or a
    /// stop), with the same arguments, appending to its log. Fails if it still runs.
    pub fn restart_node(&mut self, node: &str) -> anyhow::Result<()> {
        let i = self.index_of(node)?;
        anyhow::ensure!(
            !self.procs[i].running(),
            "the speaker on {node} is still running"
        );
        // Reap a process that exited on its own.
        if let Some(mut c) = self.procs[i].child.take() {
            let _ = c.wait();
        }
        let log = self.procs[i].log.clone();
        let child = spawn_speaker(
            &self.binary,
            &self.kubeconfig,
            node,
            &self.namespaces[i],
            &log,
            true,
        )?;
        self.procs[i].child = Some(child);
        Ok(())
    }

    /// The processes, in node order.
    pub fn processes(&mut self) -> &mut [FerrolbProcess] {
        &mut self.procs
    }

    /// Starts ferrolb's controller `binary` in the namespace of node `node` (as if it were
    /// a pod there, reaching the API server through that node's relay), with
    /// `--metrics-addr 127.0.0.1:0`, logging to `ferrolb-controller.log` in the run
    /// directory. Running inside the lab means the lab's teardown stops it in every case.
    pub fn start_controller(
        &self,
        lab: &Lab,
        binary: &Path,
        kubeconfig: &Path,
        node: u8,
    ) -> anyhow::Result<FerrolbProcess> {
        self.start_controller_logged(
            lab,
            binary,
            kubeconfig,
            node,
            &lab.run_dir().join("ferrolb-controller.log"),
        )
    }

    /// [`FerrolbSpeakers::start_controller`] with the log file `log`.
    pub fn start_controller_logged(
        &self,
        lab: &Lab,
        binary: &Path,
        kubeconfig: &Path,
        node: u8,
        log: &Path,
    ) -> anyhow::Result<FerrolbProcess> {
        let n = lab.node(node)?;
        anyhow::ensure!(
            self.relays.iter().any(|r| r.namespace() == n.ns),
            "no API relay in {}'s namespace",
            n.name
        );
        let prefix = ["ip", "netns", "exec", n.ns.as_str()];
        let args = ["--metrics-addr", "127.0.0.1:0"];
        let argv: Vec<&std::ffi::OsStr> = prefix
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([binary.as_os_str()])
            .chain(args.iter().map(std::ffi::OsStr::new))
            .collect();
        let child =
            spawn_logged(&argv, kubeconfig, log).with_context(|| format!("on {}", n.name))?;
        Ok(FerrolbProcess {
            node: n.name.clone(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Fails naming the node and the end of its log if a speaker has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.procs.iter_mut().try_for_each(FerrolbProcess::check)
    }

    /// Stops every speaker with SIGTERM (Cease to the router), then the relays. Returns
    /// one `node: exit` line per speaker.
    pub fn stop(mut self) -> Vec<String> {
        let out = self
            .procs
            .iter_mut()
            .map(|p| {
                let exit = p.stop(Duration::from_secs(5));
                format!("{}: {exit}", p.node)
            })
            .collect();
        self.relays.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_places_and_the_build_command() {
        let e = locate_binary("ferrolb-no-such-binary").expect_err("not built");
        let msg = e.to_string();
        assert!(
            msg.starts_with("ferrolb-no-such-binary not found in "),
            "{msg}"
        );
        assert!(
            msg.ends_with("; build it with: cargo build -p ferrolb-no-such-binary"),
            "{msg}"
        );
        assert!(msg.contains("target/debug"), "{msg}");
    }
}
