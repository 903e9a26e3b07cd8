//! ToR router configuration (FRR and BIRD 2), rendered from the plan, and starting the
//! daemons as private instances whose files all live in the run directory.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{LabError, LabResult};
use super::exec::{render_argv, require_program, run, run_in};
use super::spec::{FrrPeering, LabSpec, Plan, RouterKind};

/// Name of the router's BFD profile (FRR).
pub const BFD_PROFILE: &str = "flb";

/// FRR daemons started, in start order.
pub fn frr_daemons(spec: &LabSpec) -> Vec<&'static str> {
    let mut d = vec!["zebra", "bgpd"];
    if spec.bfd.is_some() {
        d.push("bfdd");
    }
    d
}

/// `addr/len` with the host bits cleared, e.g. `10.0.2.2`/30 -> `10.0.2.0/30`.
pub fn network(addr: IpAddr, len: u8) -> String {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            format!("{}/{len}", Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            format!("{}/{len}", Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn keepalive(hold: u16) -> u16 {
    hold / 3
}

/// Peer-group name for a family (4/6) and session kind (internal when the node's ASN is the
/// router's).
fn peer_group(v6: bool, internal: bool) -> String {
    format!(
        "N{}{}",
        if v6 { 6 } else { 4 },
        if internal { "I" } else { "E" }
    )
}

/// Renders FRR's `zebra.conf`, `bgpd.conf` and (with BFD) `bfdd.conf`, as (file name, text).
///
/// Each node's link subnet is a `bgp listen range` (or each node address a static
/// neighbour, per [`FrrPeering`]) of a peer group per family and session kind (external,
/// or internal when the node's ASN is the router's).
/// `no bgp fast-external-failover` keeps a link-down from resetting sessions at once, so
/// failure detection is by hold timer or BFD, as with a node that dies behind a switch.
pub fn render_frr(spec: &LabSpec, plan: &Plan, dir: &Path) -> Vec<(String, String)> {
    let d = dir.display();
    let host = "flb-tor";
    let mut files = vec![(
        "zebra.conf".to_string(),
        format!("hostname {host}\nlog file {d}/zebra.log\n"),
    )];
    let rid = plan
        .router_loopback
        .v4
        .map_or_else(|| "10.255.0.254".to_string(), |a| a.to_string());
    let mut b = String::new();
    let _ = writeln!(
        b,
        "hostname {host}\nlog file {d}/bgpd.log\n!\nrouter bgp {}",
        spec.router_asn
    );
    let _ = writeln!(b, " bgp router-id {rid}");
    for l in [
        "no bgp ebgp-requires-policy",
        "no bgp default ipv4-unicast",
        "no bgp network import-check",
        "no bgp fast-external-failover",
        "bgp bestpath as-path multipath-relax",
    ] {
        let _ = writeln!(b, " {l}");
    }
    let mut groups: Vec<(String, bool)> = Vec::new();
    let mut ranges = String::new();
    for n in &plan.nodes {
        let internal = n.asn == spec.router_asn;
        let nets = [
            (false, n.uplink.v4.map(IpAddr::V4), 30),
            (true, n.uplink.v6.map(IpAddr::V6), 64),
        ];
        for (v6, addr, len) in nets {
            let Some(addr) = addr else { continue };
            let net = network(addr, len);
            let g = peer_group(v6, internal);
            if !groups.iter().any(|(x, _)| *x == g) {
                groups.push((g.clone(), v6));
            }
            match spec.frr_peering {
                FrrPeering::Listen => {
                    let _ = writeln!(ranges, " bgp listen range {net} peer-group {g}");
                }
                FrrPeering::Static => {
                    let _ = writeln!(ranges, " neighbor {addr} peer-group {g}");
                }
            }
        }
    }
    for (g, _) in &groups {
        let kind = if g.ends_with('I') {
            "internal"
        } else {
            "external"
        };
        let _ = writeln!(
            b,
            " neighbor {g} peer-group\n neighbor {g} remote-as {kind}"
        );
        let _ = writeln!(
            b,
            " neighbor {g} timers {} {}\n neighbor {g} timers connect 1",
            keepalive(spec.hold_time_secs),
            spec.hold_time_secs
        );
        if spec.bfd.is_some() {
            let _ = writeln!(b, " neighbor {g} bfd profile {BFD_PROFILE}");
        }
    }
    b.push_str(&ranges);
    for (af, v6) in [("ipv4", false), ("ipv6", true)] {
        let active: Vec<&String> = groups
            .iter()
            .filter(|(_, g6)| *g6 == v6)
            .map(|(g, _)| g)
            .collect();
        if active.is_empty() {
            continue;
        }
        let _ = writeln!(b, " address-family {af} unicast");
        for g in active {
            let _ = writeln!(b, "  neighbor {g} activate");
        }
        let _ = writeln!(
            b,
            "  maximum-paths 8\n  maximum-paths ibgp 8\n exit-address-family"
        );
    }
    b.push_str("exit\n");
    files.push(("bgpd.conf".to_string(), b));
    if let Some(bfd) = spec.bfd {
        files.push((
            "bfdd.conf".to_string(),
            format!(
                "hostname {host}\nlog file {d}/bfdd.log\n!\nbfd\n profile {BFD_PROFILE}\n  detect-multiplier {}\n  receive-interval {}\n  transmit-interval {}\n exit\nexit\n",
                bfd.multiplier, bfd.interval_ms, bfd.interval_ms
            ),
        ));
    }
    files
}

/// BIRD protocol name of node `n`'s session in a family.
pub fn bird_protocol(node: u8, v6: bool) -> String {
    format!("n{node}v{}", if v6 { 6 } else { 4 })
}

/// Renders BIRD 2's `bird.conf`: kernel protocols with `merge paths on limit 8`, short
/// connect/error timers, BFD on every session if the spec has it, and one BGP protocol per
/// node and family (BIRD connects actively; nodes may connect too).
pub fn render_bird(spec: &LabSpec, plan: &Plan, dir: &Path) -> String {
    let d = dir.display();
    let rid = plan
        .router_loopback
        .v4
        .map_or_else(|| "10.255.0.254".to_string(), |a| a.to_string());
    let mut c = String::new();
    let _ = writeln!(c, "router id {rid};\nlog \"{d}/bird.log\" all;\n");
    c.push_str("protocol device { scan time 10; }\n\n");
    if spec.families.v4 {
        c.push_str("protocol kernel k4 {\n  ipv4 { import none; export all; };\n  merge paths on limit 8;\n}\n\n");
    }
    if spec.families.v6 {
        c.push_str("protocol kernel k6 {\n  ipv6 { import none; export all; };\n  merge paths on limit 8;\n}\n\n");
    }
    if let Some(bfd) = spec.bfd {
        let _ = writeln!(
            c,
            "protocol bfd {{\n  interface \"*\" {{\n    interval {} ms;\n    multiplier {};\n  }};\n}}\n",
            bfd.interval_ms, bfd.multiplier
        );
    }
    let _ = writeln!(c, "template bgp nodes {{\n  local as {};", spec.router_asn);
    if spec.hold_time_secs != 0 {
        let _ = writeln!(
            c,
            "  hold time {};\n  keepalive time {};",
            spec.hold_time_secs,
            keepalive(spec.hold_time_secs).max(1)
        );
    }
    c.push_str(
        "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n  direct;\n",
    );
    if spec.bfd.is_some() {
        c.push_str("  bfd on;\n");
    }
    c.push_str("}\n\n");
    for n in &plan.nodes {
        for (v6, peer, local) in [
            (
                false,
                n.uplink.v4.map(|a| a.to_string()),
                n.router_side.v4.map(|a| a.to_string()),
            ),
            (
                true,
                n.uplink.v6.map(|a| a.to_string()),
                n.router_side.v6.map(|a| a.to_string()),
            ),
        ] {
            let (Some(peer), Some(local)) = (peer, local) else {
                continue;
            };
            let af = if v6 { "ipv6" } else { "ipv4" };
            let _ = writeln!(
                c,
                "protocol bgp {} from nodes {{\n  neighbor {peer} as {};\n  source address {local};\n  {af} {{ import all; export none; }};\n}}\n",
                bird_protocol(n.index, v6),
                n.asn
            );
        }
    }
    c
}

fn write_file(step: &str, path: &Path, text: &str) -> LabResult<()> {
    std::fs::write(path, text)
        .map_err(|e| LabError::new(step, format!("write {}: {e}", path.display()), None))
}

fn wait_for_path(step: &str, path: &Path, timeout: Duration, log: &Path) -> LabResult<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if path.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(5).collect();
    Err(LabError::new(
        step,
        format!(
            "{} did not appear within {timeout:?}; last log lines ({}): {:?}",
            path.display(),
            log.display(),
            tail
        ),
        Some("check the daemon's configuration and log in the run directory".into()),
    ))
}

/// Writes the router configuration into `dir` and starts the daemons in the router
/// namespace. Returns the pid files to kill at teardown (added as soon as each daemon is
/// launched, through `started`).
pub fn start_router(
    spec: &LabSpec,
    plan: &Plan,
    dir: &Path,
    started: &mut dyn FnMut(PathBuf),
) -> LabResult<()> {
    let ns = &plan.router_ns;
    match spec.router {
        RouterKind::Frr => {
            let step = format!("write FRR configuration in {}", dir.display());
            for (name, text) in render_frr(spec, plan, dir) {
                write_file(&step, &dir.join(name), &text)?;
            }
            let d = dir.to_string_lossy().to_string();
            run(
                &format!("chown {d} to frr:frr"),
                &["chown", "-R", "frr:frr", &d],
            )
            .map_err(|e| e.with_hint("FRR needs the frr user and group: apt-get install -y frr"))?;
            for daemon in frr_daemons(spec) {
                let step = format!("start FRR {daemon} in {ns}");
                let bin = spec.frr_dir.join(daemon);
                let bin = require_program(&step, &bin.to_string_lossy())?
                    .to_string_lossy()
                    .to_string();
                let (conf, pid, zapi) = (
                    format!("{d}/{daemon}.conf"),
                    format!("{d}/{daemon}.pid"),
                    format!("{d}/zserv.api"),
                );
                let bfdctl = format!("{d}/bfdd.sock");
                let mut argv = vec![
                    bin.as_str(),
                    "-d",
                    "-f",
                    &conf,
                    "-i",
                    &pid,
                    "-z",
                    &zapi,
                    "--vty_socket",
                    &d,
                    "-P",
                    "0",
                    "-u",
                    "frr",
                    "-g",
                    "frr",
                ];
                if daemon == "bfdd" {
                    argv.extend(["--bfdctl", bfdctl.as_str()]);
                }
                started(PathBuf::from(&pid));
                run_in(&step, ns, &argv)?;
                wait_for_path(
                    &step,
                    &dir.join(format!("{daemon}.vty")),
                    Duration::from_secs(10),
                    &dir.join(format!("{daemon}.log")),
                )?;
            }
            Ok(())
        }
        RouterKind::Bird => {
            let step = format!("write BIRD configuration in {}", dir.display());
            let conf = dir.join("bird.conf");
            write_file(&step, &conf, &render_bird(spec, plan, dir))?;
            let step = format!("start BIRD in {ns}");
            let bin = require_program(&step, &spec.bird_bin.to_string_lossy())?
                .to_string_lossy()
                .to_string();
            let (c, s, p) = (
                conf.to_string_lossy().to_string(),
                dir.join("bird.ctl").to_string_lossy().to_string(),
                dir.join("bird.pid").to_string_lossy().to_string(),
            );
            run(
                &format!("check BIRD configuration {c}"),
                &[&bin, "-p", "-c", &c],
            )?;
            started(PathBuf::from(&p));
            run_in(&step, ns, &[&bin, "-c", &c, "-s", &s, "-P", &p])?;
            wait_for_path(
                &step,
                Path::new(&s),
                Duration::from_secs(10),
                &dir.join("bird.log"),
            )
        }
    }
}

/// `vtysh --vty_socket <dir> -c <cmd>` output.
pub fn vtysh(spec: &LabSpec, dir: &Path, cmd: &str) -> LabResult<String> {
    let vtysh = spec.vtysh_bin.to_string_lossy().to_string();
    let d = dir.to_string_lossy().to_string();
    let argv = [vtysh.as_str(), "--vty_socket", &d, "-c", cmd];
    run(&format!("query FRR: {}", render_argv(&argv)), &argv)
}

/// `birdc -s <dir>/bird.ctl <cmd...>` output.
pub fn birdc(spec: &LabSpec, dir: &Path, cmd: &str) -> LabResult<String> {
    let birdc = spec.birdc_bin.to_string_lossy().to_string();
    let s = dir.join("bird.ctl").to_string_lossy().to_string();
    let mut argv = vec![birdc.as_str(), "-s", &s];
    argv.extend(cmd.split_whitespace());
    run(&format!("query BIRD: {}", render_argv(&argv)), &argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::spec::{BfdTimers, NodeAsns};

    fn spec(asns: NodeAsns) -> LabSpec {
        LabSpec {
            nodes: 2,
            node_asns: asns,
            hold_time_secs: 3,
            ..LabSpec::default()
        }
    }

    #[test]
    fn networks_clear_host_bits() {
        let cases = [
            ("10.0.2.2", 30, "10.0.2.0/30"),
            ("10.0.2.2", 0, "0.0.0.0/0"),
            ("10.0.2.2", 32, "10.0.2.2/32"),
            ("fd00:10:1::2", 64, "fd00:10:1::/64"),
            ("fd00::1", 128, "fd00::1/128"),
        ];
        for (a, l, want) in cases {
            assert_eq!(network(a.parse().expect("ip"), l), want);
        }
    }

    #[test]
    fn frr_config_has_ranges_multipath_and_bfd() {
        let s = spec(NodeAsns::Same(64513));
        let plan = s.plan("flb-1-0").expect("plan");
        let files = render_frr(&s, &plan, Path::new("/run/x"));
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zebra.conf", "bgpd.conf", "bfdd.conf"]);
        let bgpd = &files[1].1;
        for want in [
            "router bgp 64512",
            "no bgp ebgp-requires-policy",
            "bgp bestpath as-path multipath-relax",
            " neighbor N4E remote-as external",
            " neighbor N4E timers 1 3",
            " neighbor N6E bfd profile flb",
            " bgp listen range 10.0.2.0/30 peer-group N4E",
            " bgp listen range fd00:10:1::/64 peer-group N6E",
            " address-family ipv6 unicast\n  neighbor N6E activate\n  maximum-paths 8\n",
            "log file /run/x/bgpd.log",
        ] {
            assert!(bgpd.contains(want), "bgpd.conf lacks {want:?}:\n{bgpd}");
        }
        assert!(
            files[2]
                .1
                .contains("profile flb\n  detect-multiplier 3\n  receive-interval 100")
        );
    }

    #[test]
    fn frr_config_mixes_internal_and_external_groups() {
        let s = LabSpec {
            bfd: None,
            ..spec(NodeAsns::Explicit(vec![64512, 65001]))
        };
        let plan = s.plan("r").expect("plan");
        let files = render_frr(&s, &plan, Path::new("/d"));
        assert_eq!(files.len(), 2, "no bfdd without BFD");
        let bgpd = &files[1].1;
        assert!(bgpd.contains("neighbor N4I remote-as internal"));
        let st = LabSpec {
            frr_peering: FrrPeering::Static,
            ..s.clone()
        };
        let stat = &render_frr(&st, &plan, Path::new("/d"))[1].1;
        assert!(
            stat.contains(
                " neighbor 10.0.1.2 peer-group N4I\n neighbor fd00:10:1::2 peer-group N6I\n"
            ),
            "{stat}"
        );
        assert!(!stat.contains("listen range"));
        assert!(bgpd.contains("bgp listen range 10.0.1.0/30 peer-group N4I"));
        assert!(bgpd.contains("bgp listen range 10.0.2.0/30 peer-group N4E"));
        assert!(!bgpd.contains("bfd profile"));
    }

    #[test]
    fn bird_config_has_merge_paths_timers_and_sessions() {
        let s = LabSpec {
            bfd: Some(BfdTimers {
                interval_ms: 50,
                multiplier: 4,
            }),
            ..spec(NodeAsns::Sequential { first: 65001 })
        };
        let plan = s.plan("r").expect("plan");
        let c = render_bird(&s, &plan, Path::new("/d"));
        for want in [
            "merge paths on limit 8;",
            "connect retry time 1;",
            "hold time 3;",
            "interval 50 ms;",
            "multiplier 4;",
            "bfd on;",
            "protocol bgp n2v4 from nodes {\n  neighbor 10.0.2.2 as 65002;\n  source address 10.0.2.1;\n  ipv4",
            "protocol bgp n1v6 from nodes {\n  neighbor fd00:10:1::2 as 65001;",
        ] {
            assert!(c.contains(want), "bird.conf lacks {want:?}:\n{c}");
        }
    }
}
