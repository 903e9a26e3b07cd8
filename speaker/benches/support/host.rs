//! Host checks and readings shared by the speaker benchmarks: whether the bench can run
//! here (root, FRR installed) and the memory of FRR's daemons.

use std::path::Path;

use ferrolb_e2e::bench::{have, rss_kib};

/// FRR daemons the benchmark labs start.
const FRR_DAEMONS: [&str; 3] = [
    "/usr/lib/frr/zebra",
    "/usr/lib/frr/bgpd",
    "/usr/lib/frr/bfdd",
];

/// Whether bench `name` can run here: prints why it is SKIPPED (not root, FRR missing)
/// and returns false otherwise.
pub fn can_run(name: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("{name}: SKIPPED — needs root (network namespaces, veths, FRR). Run as root.");
        return false;
    }
    let missing: Vec<&str> = FRR_DAEMONS
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .chain((!have("vtysh")).then_some("vtysh"))
        .collect();
    if !missing.is_empty() {
        println!(
            "{name}: SKIPPED — FRR is missing ({}); install frr.",
            missing.join(", ")
        );
        return false;
    }
    true
}

/// `(daemon, VmRSS, VmHWM)` in KiB of FRR's `bgpd` and `zebra` whose pid files are in
/// `frr_dir`; a daemon without a readable pid or status is left out.
pub fn frr_rss(frr_dir: &Path) -> Vec<(&'static str, u64, u64)> {
    ["bgpd", "zebra"]
        .into_iter()
        .filter_map(|d| {
            let pid: u32 = std::fs::read_to_string(frr_dir.join(format!("{d}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let (rss, hwm) = rss_kib(pid)?;
            Some((d, rss, hwm))
        })
        .collect()
}
