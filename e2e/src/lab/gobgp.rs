//! GoBGP as a reference BGP speaker in a node namespace (smoke tests and baselines before or
//! beside ferrolb's own speaker). GoBGP 3.10 has no BFD, so its sessions fail over by hold
//! timer only.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{LabError, LabResult};
use super::exec::{require_program, run_in};

/// gRPC port of gobgpd inside its namespace (each namespace has its own loopback).
pub const API_PORT: u16 = 50051;

/// One BGP neighbour of a GoBGP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBgpNeighbor {
    /// Peer address.
    pub address: IpAddr,
    /// Peer ASN.
    pub peer_as: u32,
    /// Local address for the session.
    pub local: IpAddr,
}

/// Renders a gobgpd TOML configuration (one AFI/SAFI per neighbour, matching its family).
pub fn render_config(
    asn: u32,
    router_id: &str,
    hold_secs: u16,
    neighbors: &[GoBgpNeighbor],
) -> String {
    let mut c = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n\n");
    let keepalive = (hold_secs / 3).max(1);
    for n in neighbors {
        let afi = if n.address.is_ipv4() {
            "ipv4-unicast"
        } else {
            "ipv6-unicast"
        };
        let _ = write!(
            c,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = {hold_secs}\n    keepalive-interval = {keepalive}\n    idle-hold-time-after-reset = 1\n  [neighbors.transport.config]\n    local-address = \"{}\"\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{afi}\"\n\n",
            n.address, n.peer_as, n.local
        );
    }
    c
}

/// A gobgpd process in a namespace; killed on drop.
#[derive(Debug)]
pub struct GoBgp {
    ns: String,
    child: Option<Child>,
}

impl GoBgp {
    /// Writes `config` to `<dir>/gobgpd-<tag>.toml` and starts gobgpd in `ns`, waiting until
    /// its API answers.
    pub fn start(ns: &str, dir: &Path, tag: &str, config: &str) -> LabResult<Self> {
        let step = format!("start gobgpd in {ns}");
        let bin = require_program(&step, "gobgpd")?;
        require_program(&step, "gobgp")?;
        let conf = dir.join(format!("gobgpd-{tag}.toml"));
        std::fs::write(&conf, config)
            .map_err(|e| LabError::new(&step, format!("write {}: {e}", conf.display()), None))?;
        let log_path = dir.join(format!("gobgpd-{tag}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| {
            LabError::new(&step, format!("create {}: {e}", log_path.display()), None)
        })?;
        let log2 = log
            .try_clone()
            .map_err(|e| LabError::new(&step, e.to_string(), None))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin)
            .arg("-f")
            .arg(&conf)
            .args([
                "-p",
                "--pprof-disable",
                &format!("--api-hosts=127.0.0.1:{API_PORT}"),
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| LabError::new(&step, format!("spawn: {e}"), None))?;
        let mut me = Self {
            ns: ns.to_string(),
            child: Some(child),
        };
        let start = Instant::now();
        loop {
            if me.cli(&["global"]).is_ok() {
                return Ok(me);
            }
            let exited = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                me.stop();
                return Err(LabError::new(
                    step,
                    format!(
                        "gobgpd did not come up (exit: {exited:?}); log {}: {}",
                        log_path.display(),
                        log.trim()
                    ),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `gobgp -p <port> <args...>` in the namespace.
    pub fn cli(&self, args: &[&str]) -> LabResult<String> {
        let port = API_PORT.to_string();
        let mut argv = vec!["gobgp", "-u", "127.0.0.1", "-p", port.as_str()];
        argv.extend_from_slice(args);
        run_in(
            &format!("gobgp {} in {}", args.join(" "), self.ns),
            &self.ns,
            &argv,
        )
    }

    /// Announces `prefix` (e.g. `198.51.100.1/32`) with this node as next hop.
    pub fn announce(&self, prefix: &str) -> LabResult<()> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "add", "-a", afi, prefix])
            .map(|_| ())
    }

    /// Withdraws `prefix`.
    pub fn withdraw(&self, prefix: &str) -> LabResult<()> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", "-a", afi, prefix])
            .map(|_| ())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills gobgpd (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_one_family_per_neighbor() {
        let n = [
            GoBgpNeighbor {
                address: "10.0.1.1".parse().expect("ip"),
                peer_as: 64512,
                local: "10.0.1.2".parse().expect("ip"),
            },
            GoBgpNeighbor {
                address: "fd00:10:1::1".parse().expect("ip"),
                peer_as: 64512,
                local: "fd00:10:1::2".parse().expect("ip"),
            },
        ];
        let c = render_config(64513, "10.255.0.1", 3, &n);
        for want in [
            "as = 64513",
            "router-id = \"10.255.0.1\"",
            "neighbor-address = \"10.0.1.1\"\n    peer-as = 64512",
            "hold-time = 3\n    keepalive-interval = 1",
            "local-address = \"fd00:10:1::2\"\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv6-unicast\"",
        ] {
            assert!(c.contains(want), "lacks {want:?}:\n{c}");
        }
        assert_eq!(c.matches("ipv4-unicast").count(), 1);
    }
}
