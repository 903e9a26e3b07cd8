//! A private BIRD 2 instance as the router in a namespace: its config,
//! control socket, pid file and log live in a temporary directory; the daemon
//! is killed on drop (also when a test panics). Kernel protocols with
//! `merge paths on` export the BGP routes (ECMP) into the namespace's FIB.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use ferrolb_e2e::lab::query::{bird_bfd_sessions, bird_protocols};

use super::{Netns, sh, try_sh, wait_for};

/// One BGP neighbour (a node) of the BIRD router.
#[derive(Debug, Clone, Default)]
pub struct BirdNeighbor {
    /// Protocol name (`n1v4`, ...).
    pub name: String,
    /// The node's address.
    pub addr: String,
    /// The node's AS.
    pub asn: u32,
    /// TCP-MD5 password.
    pub password: Option<String>,
    /// `bfd on` for this session.
    pub bfd: bool,
    /// `ttl security on` (GTSM, as the speaker's single-hop eBGP default).
    pub gtsm: bool,
}

/// A bird.conf for AS `asn`: device and kernel protocols (ECMP with
/// `merge paths on limit 8`), BFD at `bfd_ms` x 3 when given, and one BGP
/// protocol per neighbour importing everything and exporting nothing, with
/// short connect/error timers so reconnects take seconds, not a minute.
pub fn bird_conf(
    asn: u32,
    router_id: &str,
    bfd_ms: Option<u32>,
    neighbors: &[BirdNeighbor],
) -> String {
    let mut c = format!(
        "router id {router_id};\ndebug protocols {{ states, events }};\n\
         protocol device {{ scan time 10; }}\n\
         protocol kernel k4 {{ ipv4 {{ import none; export all; }}; merge paths on limit 8; }}\n\
         protocol kernel k6 {{ ipv6 {{ import none; export all; }}; merge paths on limit 8; }}\n"
    );
    if let Some(ms) = bfd_ms {
        let _ = writeln!(
            c,
            "protocol bfd {{ interface \"*\" {{ min rx interval {ms} ms; min tx interval {ms} ms; \
             idle tx interval {ms} ms; multiplier 3; }}; }}"
        );
    }
    for n in neighbors {
        let af = if n.addr.contains(':') { "ipv6" } else { "ipv4" };
        let _ = writeln!(
            c,
            "protocol bgp {} {{\n  local as {asn};\n  neighbor {} as {};\n  direct;\n  \
             connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;",
            n.name, n.addr, n.asn
        );
        if let Some(p) = &n.password {
            let _ = writeln!(c, "  password \"{p}\";");
        }
        if n.bfd {
            c.push_str("  bfd on;\n");
        }
        if n.gtsm {
            c.push_str("  ttl security on;\n");
        }
        let _ = writeln!(c, "  {af} {{ import all; export none; }};\n}}");
    }
    c
}

/// One path of a route in `birdc show route <prefix> all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BirdPath {
    /// The protocol it came from (`n1v4`, ...).
    pub protocol: String,
    /// `via` gateway.
    pub via: Option<String>,
    /// `BGP.as_path` (empty for iBGP routes from the node).
    pub as_path: String,
    /// `BGP.local_pref`.
    pub local_pref: Option<u32>,
    /// `BGP.community` as BIRD prints it, e.g. `(64601,100)`.
    pub community: String,
    /// `BGP.large_community`, e.g. `(64601, 1, 2)`.
    pub large_community: String,
    /// `BGP.ext_community`.
    pub ext_community: String,
}

/// Paths in `birdc show route ... all` output: a path starts at a line with
/// `[<protocol> <since>]` and runs until the next one.
pub fn parse_routes(text: &str) -> Vec<BirdPath> {
    let mut out: Vec<BirdPath> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let (Some(open), true) = (t.find(" ["), t.contains("unicast")) {
            let proto = t[open + 2..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches(']');
            out.push(BirdPath {
                protocol: proto.to_owned(),
                ..Default::default()
            });
            continue;
        }
        let Some(p) = out.last_mut() else { continue };
        if let Some(v) = t.strip_prefix("via ") {
            p.via = v.split_whitespace().next().map(str::to_owned);
        } else if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().to_owned();
            match k {
                "BGP.as_path" | "bgp_path" => p.as_path = v,
                "BGP.local_pref" | "bgp_local_pref" => p.local_pref = v.parse().ok(),
                "BGP.community" | "bgp_community" => p.community = v,
                "BGP.large_community" | "bgp_large_community" => p.large_community = v,
                "BGP.ext_community" | "bgp_ext_community" => p.ext_community = v,
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.protocol.cmp(&b.protocol));
    out
}

/// A BIRD daemon in a namespace, killed on drop.
pub struct Bird {
    ns: String,
    dir: tempfile::TempDir,
}

impl Bird {
    /// Writes `conf` (with a `log` line into the instance's directory),
    /// checks it with `bird -p`, starts BIRD in `ns` and waits until `birdc`
    /// answers on the private control socket.
    pub fn start(ns: &Netns, conf: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("flb-bird-")
            .tempdir()
            .expect("tempdir");
        let me = Self {
            ns: ns.name.clone(),
            dir,
        };
        let conf = format!("log \"{}\" all;\n{conf}", me.path("bird.log"));
        fs::write(me.path("bird.conf"), conf).expect("bird.conf");
        sh(&["bird", "-p", "-c", &me.path("bird.conf")]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &me.ns,
            "bird",
            "-c",
            &me.path("bird.conf"),
            "-s",
            &me.path("bird.ctl"),
            "-P",
            &me.path("bird.pid"),
        ]);
        wait_for(Duration::from_secs(10), "birdc answers", || {
            me.birdc("show status")
        });
        me
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).to_string_lossy().into_owned()
    }

    /// BIRD's log (everything, including protocol state changes).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }

    /// Runs `birdc -s <ctl> <cmd>`, `None` on failure.
    pub fn birdc(&self, cmd: &str) -> Option<String> {
        let ctl = self.path("bird.ctl");
        let mut argv = vec!["birdc", "-s", ctl.as_str()];
        argv.extend(cmd.split_whitespace());
        try_sh(&argv)
    }

    fn birdc_ok(&self, cmd: &str) -> String {
        self.birdc(cmd)
            .unwrap_or_else(|| panic!("birdc {cmd} failed"))
    }

    /// The info column of protocol `name` in `show protocols`
    /// (`Established`, `Active`, `Connect`, ...).
    pub fn protocol_info(&self, name: &str) -> Option<String> {
        bird_protocols(&self.birdc_ok("show protocols"))
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.info)
    }

    /// Whether BGP protocol `name` is Established.
    pub fn established(&self, name: &str) -> bool {
        self.protocol_info(name).as_deref() == Some("Established")
    }

    /// `show protocols all <name>` (for failure messages and state details).
    pub fn protocol_details(&self, name: &str) -> String {
        self.birdc_ok(&format!("show protocols all {name}"))
    }

    /// Paths of `prefix` in BIRD's table, sorted by protocol.
    pub fn route(&self, prefix: &str) -> Vec<BirdPath> {
        // birdc exits non-zero for "Network not found": read stdout anyway.
        let ctl = self.path("bird.ctl");
        let out = std::process::Command::new("birdc")
            .args(["-s", &ctl, "show", "route", prefix, "all"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run birdc: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() || text.contains("Network not found"),
            "birdc show route {prefix} all failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_routes(&text)
    }

    /// BFD state of the session to `addr` (`Up`, `Down`, `Init`, ...).
    pub fn bfd_state(&self, addr: &str) -> Option<String> {
        let ip: std::net::IpAddr = addr.parse().ok()?;
        bird_bfd_sessions(&self.birdc("show bfd sessions")?)
            .into_iter()
            .find(|s| s.address == ip)
            .map(|s| s.state)
    }

    /// The detection time (`Timeout` column) of the BFD session to `addr`:
    /// it drops from the slow start value to multiplier x interval once both
    /// sides have switched to the configured rates.
    pub fn bfd_timeout(&self, addr: &str) -> Option<Duration> {
        let text = self.birdc("show bfd sessions")?;
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(addr))?;
        let secs: f64 = row.split_whitespace().last()?.parse().ok()?;
        Duration::try_from_secs_f64(secs).ok()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.dir.path().join("bird.pid")) {
            let pid = pid.trim();
            if !pid.is_empty() {
                let _ = try_sh(&["kill", "-9", pid]);
            }
        }
    }
}
