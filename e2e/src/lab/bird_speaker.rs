//! BIRD 2 as a reference speaker in a node namespace: like GoBGP it announces prefixes with
//! the node as next hop, and unlike GoBGP 3.10 it runs BFD, so failover by BFD can be tested
//! and measured before (or beside) ferrolb's own speaker.
//!
//! Announced prefixes are static routes of the speaker's configuration; announcing or
//! withdrawing rewrites the file and runs `birdc configure`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{LabError, LabResult};
use super::exec::{require_program, run, run_in};
use super::spec::BfdTimers;

/// One session of the node speaker towards the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Router address.
    pub peer: IpAddr,
    /// Router ASN.
    pub peer_as: u32,
    /// Node address on the link.
    pub local: IpAddr,
}

/// Settings of a node's BIRD speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Router ID.
    pub router_id: String,
    /// The node's ASN.
    pub asn: u32,
    /// Hold time in seconds (0: BIRD's default).
    pub hold_secs: u16,
    /// BFD on the uplink, `None` for none.
    pub bfd: Option<BfdTimers>,
    /// Uplink interface (BFD runs there).
    pub uplink_if: String,
    /// Sessions, one per family.
    pub sessions: Vec<Session>,
    /// Log file.
    pub log: PathBuf,
}

/// Renders the speaker's `bird.conf` announcing `prefixes`.
pub fn render(cfg: &SpeakerConfig, prefixes: &BTreeSet<String>) -> String {
    let mut c = format!(
        "router id {};\nlog \"{}\" all;\nprotocol device {{ scan time 10; }}\n\n",
        cfg.router_id,
        cfg.log.display()
    );
    for (af, v6) in [("ipv4", false), ("ipv6", true)] {
        let _ = writeln!(c, "protocol static s{} {{\n  {af};", if v6 { 6 } else { 4 });
        for p in prefixes.iter().filter(|p| p.contains(':') == v6) {
            let _ = writeln!(c, "  route {p} blackhole;");
        }
        c.push_str("}\n\n");
    }
    if let Some(b) = cfg.bfd {
        let _ = writeln!(
            c,
            "protocol bfd {{\n  interface \"{}\" {{\n    interval {} ms;\n    multiplier {};\n  }};\n}}\n",
            cfg.uplink_if, b.interval_ms, b.multiplier
        );
    }
    for (i, s) in cfg.sessions.iter().enumerate() {
        let af = if s.peer.is_ipv4() { "ipv4" } else { "ipv6" };
        let _ = writeln!(
            c,
            "protocol bgp up{i} {{\n  local {} as {};\n  neighbor {} as {};",
            s.local, cfg.asn, s.peer, s.peer_as
        );
        if cfg.hold_secs != 0 {
            let _ = writeln!(
                c,
                "  hold time {};\n  keepalive time {};",
                cfg.hold_secs,
                (cfg.hold_secs / 3).max(1)
            );
        }
        c.push_str("  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n  direct;\n");
        if cfg.bfd.is_some() {
            c.push_str("  bfd on;\n");
        }
        let _ = writeln!(
            c,
            "  {af} {{ import none; export where source = RTS_STATIC; next hop self; }};\n}}\n"
        );
    }
    c
}

/// A BIRD speaker running in a node namespace.
#[derive(Debug)]
pub struct BirdSpeaker {
    ns: String,
    cfg: SpeakerConfig,
    conf: PathBuf,
    ctl: PathBuf,
    pid_file: PathBuf,
    birdc: String,
    prefixes: BTreeSet<String>,
}

impl BirdSpeaker {
    /// Writes the configuration under `dir` (files named after `tag`) and starts BIRD in `ns`.
    pub fn start(
        ns: &str,
        dir: &Path,
        tag: &str,
        cfg: SpeakerConfig,
        bird: &Path,
        birdc: &Path,
    ) -> LabResult<Self> {
        let step = format!("start BIRD speaker in {ns}");
        let bird = require_program(&step, &bird.to_string_lossy())?
            .to_string_lossy()
            .to_string();
        let birdc = require_program(&step, &birdc.to_string_lossy())?
            .to_string_lossy()
            .to_string();
        let me = Self {
            ns: ns.to_string(),
            conf: dir.join(format!("bird-{tag}.conf")),
            ctl: dir.join(format!("bird-{tag}.ctl")),
            pid_file: dir.join(format!("bird-{tag}.pid")),
            cfg,
            birdc,
            prefixes: BTreeSet::new(),
        };
        me.write(&step)?;
        let (c, s, p) = (
            me.conf.to_string_lossy().to_string(),
            me.ctl.to_string_lossy().to_string(),
            me.pid_file.to_string_lossy().to_string(),
        );
        run(
            &format!("check BIRD speaker configuration {c}"),
            &[&bird, "-p", "-c", &c],
        )?;
        run_in(&step, ns, &[&bird, "-c", &c, "-s", &s, "-P", &p])?;
        let start = Instant::now();
        while !me.ctl.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(LabError::new(
                    step,
                    format!("{} did not appear within 10 s", me.ctl.display()),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    fn write(&self, step: &str) -> LabResult<()> {
        std::fs::write(&self.conf, render(&self.cfg, &self.prefixes))
            .map_err(|e| LabError::new(step, format!("write {}: {e}", self.conf.display()), None))
    }

    /// The pid file (for teardown).
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    /// `birdc` against this speaker.
    pub fn birdc(&self, cmd: &str) -> LabResult<String> {
        let s = self.ctl.to_string_lossy().to_string();
        let mut argv = vec![self.birdc.as_str(), "-s", &s];
        argv.extend(cmd.split_whitespace());
        run(&format!("birdc {cmd} (speaker in {})", self.ns), &argv)
    }

    fn apply(&mut self, prefixes: BTreeSet<String>, what: &str) -> LabResult<()> {
        let step = format!("{what} on BIRD speaker in {}", self.ns);
        let old = std::mem::replace(&mut self.prefixes, prefixes);
        self.write(&step)?;
        let out = self.birdc("configure").map_err(|e| e.in_step(&step))?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            self.prefixes = old;
            let _ = self.write(&step);
            Err(LabError::new(
                step,
                format!("birdc configure said: {}", out.trim()),
                None,
            ))
        }
    }

    /// Announces `prefix` (e.g. `198.51.100.1/32`).
    pub fn announce(&mut self, prefix: &str) -> LabResult<()> {
        let mut p = self.prefixes.clone();
        p.insert(prefix.to_string());
        self.apply(p, &format!("announce {prefix}"))
    }

    /// Withdraws `prefix`.
    pub fn withdraw(&mut self, prefix: &str) -> LabResult<()> {
        let mut p = self.prefixes.clone();
        p.remove(prefix);
        self.apply(p, &format!("withdraw {prefix}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_static_routes_bfd_and_sessions() {
        let cfg = SpeakerConfig {
            router_id: "10.255.0.1".into(),
            asn: 64513,
            hold_secs: 30,
            bfd: Some(BfdTimers::default()),
            uplink_if: "up0".into(),
            sessions: vec![
                Session {
                    peer: "10.0.1.1".parse().expect("ip"),
                    peer_as: 64512,
                    local: "10.0.1.2".parse().expect("ip"),
                },
                Session {
                    peer: "fd00:10:1::1".parse().expect("ip"),
                    peer_as: 64512,
                    local: "fd00:10:1::2".parse().expect("ip"),
                },
            ],
            log: "/d/bird-node1.log".into(),
        };
        let prefixes: BTreeSet<String> = ["198.51.100.1/32", "fd00:5100::1/128"]
            .into_iter()
            .map(String::from)
            .collect();
        let c = render(&cfg, &prefixes);
        for want in [
            "protocol static s4 {\n  ipv4;\n  route 198.51.100.1/32 blackhole;\n}",
            "protocol static s6 {\n  ipv6;\n  route fd00:5100::1/128 blackhole;\n}",
            "interface \"up0\" {\n    interval 100 ms;\n    multiplier 3;",
            "protocol bgp up0 {\n  local 10.0.1.2 as 64513;\n  neighbor 10.0.1.1 as 64512;\n  hold time 30;\n  keepalive time 10;",
            "protocol bgp up1 {\n  local fd00:10:1::2 as 64513;",
            "  ipv6 { import none; export where source = RTS_STATIC; next hop self; };",
            "bfd on;",
        ] {
            assert!(c.contains(want), "lacks {want:?}:\n{c}");
        }
        let empty = render(&SpeakerConfig { bfd: None, ..cfg }, &BTreeSet::new());
        assert!(
            !empty.contains("route ") && !empty.contains("bfd"),
            "{empty}"
        );
    }
}
