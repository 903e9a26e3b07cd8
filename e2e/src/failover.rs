//! Failover benchmark: how long a client's flows go unanswered when a node announcing a VIP
//! dies silently, and how long the router takes to drop the node's next hop.
//!
//! Per trial: every node announces the VIP (per family) and DNATs it to its own pods (as
//! with `externalTrafficPolicy: Local`, so a flow only depends on the node it enters
//! through); a [`probe::Probe`] sends UDP probes from the client over many source ports;
//! one node fails silently ([`Lab::node_fail`]: links down inside the node, no BGP
//! NOTIFICATION, no BFD AdminDown); the trial records
//! - the **client-seen outage**: the largest gap in replies among flows that were answered
//!   through the failed node ([`probe::outages`]), and
//! - the **detection time** of the [`FailureSignal`]: for BGP, until the router's kernel
//!   route for the VIP no longer points to the node.
//!
//! then restores the node and waits for the announcement (and BFD) to be back. The
//! [`BenchMode`] says how the VIP reaches the client (BGP now; L2 later, whose failure
//! signal will be the client's neighbour entry for the VIP) and the [`SpeakerKind`] what
//! announces it in that mode: the lab's reference speakers (the bench's baselines) or
//! ferrolb's own speaker, which [`prepare`] runs from a Service's status in the in-memory
//! API server ([`ferrolb::FerrolbAnnouncer`]). [`render_report`] writes the markdown report
//! with percentiles per family and speaker kind.

pub mod ferrolb;
pub mod probe;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::cluster::table::Table;
use crate::lab::{self, BfdTimers, FrrPeering, Lab, LabError, LabResult, LabSpec, NodeAsns, Proto};
use probe::Probe;

/// How the VIP reaches the client, the bench's mode. Each [`SpeakerKind`] belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// Every node announces the VIP to the ToR router by BGP; the router does ECMP and the
    /// failure signal is the router's FIB ([`FailureSignal::RouterFib`]).
    Bgp,
}

impl BenchMode {
    /// Every mode.
    pub const ALL: [BenchMode; 1] = [BenchMode::Bgp];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Bgp => "bgp",
        }
    }

    /// The speaker kinds of this mode, in report order.
    pub fn speakers(self) -> Vec<SpeakerKind> {
        SpeakerKind::ALL
            .into_iter()
            .filter(|k| k.mode() == self)
            .collect()
    }
}

impl std::fmt::Display for BenchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BenchMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BenchMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?}; expected bgp (L2 is not built yet)"))
    }
}

/// What announces the VIP from the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerKind {
    /// BIRD 2 with BFD on the uplink (the lab's reference speaker; hold time 9 s, so BFD is
    /// what detects the failure).
    BirdBfd,
    /// GoBGP 3.10 without BFD (reference speaker; hold time 3 s, the hold timer detects).
    GobgpHold,
    /// ferrolb's own speaker (`ferrolb-speaker` on every node, BFD from the BGPPeers'
    /// `fast` profile set to the bench's timers, hold time 9 s). It announces what Service
    /// status and EndpointSlices say, so [`prepare`] gives it a cluster
    /// ([`ferrolb::FerrolbAnnouncer`]).
    FerrolbBgp,
}

/// How a failure shows up to the client's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSignal {
    /// The router's kernel route for the VIP drops the node's next hop (BGP modes).
    RouterFib,
}

impl SpeakerKind {
    /// Every kind, in report order.
    pub const ALL: [SpeakerKind; 3] = [
        SpeakerKind::FerrolbBgp,
        SpeakerKind::BirdBfd,
        SpeakerKind::GobgpHold,
    ];

    /// The mode this speaker announces in.
    pub fn mode(self) -> BenchMode {
        match self {
            SpeakerKind::BirdBfd | SpeakerKind::GobgpHold | SpeakerKind::FerrolbBgp => {
                BenchMode::Bgp
            }
        }
    }

    /// Whether this is ferrolb itself (not a reference speaker).
    pub fn is_ferrolb(self) -> bool {
        matches!(self, SpeakerKind::FerrolbBgp)
    }

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            SpeakerKind::BirdBfd => "bird-bfd",
            SpeakerKind::GobgpHold => "gobgp-hold",
            SpeakerKind::FerrolbBgp => "ferrolb-bgp",
        }
    }

    /// What the trial measures as detection.
    pub fn failure_signal(self) -> FailureSignal {
        match self {
            SpeakerKind::BirdBfd | SpeakerKind::GobgpHold | SpeakerKind::FerrolbBgp => {
                FailureSignal::RouterFib
            }
        }
    }

    /// Hold time the lab uses with this speaker.
    pub fn hold_time_secs(self) -> u16 {
        match self {
            SpeakerKind::BirdBfd | SpeakerKind::FerrolbBgp => 9,
            SpeakerKind::GobgpHold => 3,
        }
    }

    /// Whether the speaker runs BFD (and trials wait for BFD Up first).
    pub fn uses_bfd(self) -> bool {
        matches!(self, SpeakerKind::BirdBfd | SpeakerKind::FerrolbBgp)
    }

    /// Starts a reference speaker on node `n` (ferrolb's runs per lab, see [`prepare`]).
    fn start(self, lab: &Lab, n: u8) -> LabResult<()> {
        match self {
            SpeakerKind::BirdBfd => lab.start_bird_speaker(n),
            SpeakerKind::GobgpHold => lab.start_gobgp(n),
            SpeakerKind::FerrolbBgp => Ok(()),
        }
    }

    /// Makes node `n`'s reference speaker announce `prefix` (ferrolb's announces the bench
    /// Service's status).
    fn announce(self, lab: &Lab, n: u8, prefix: &str) -> LabResult<()> {
        match self {
            SpeakerKind::BirdBfd => lab.bird_speaker_announce(n, prefix),
            SpeakerKind::GobgpHold => lab.gobgp_announce(n, prefix),
            SpeakerKind::FerrolbBgp => Ok(()),
        }
    }
}

impl std::fmt::Display for SpeakerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SpeakerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpeakerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown speaker kind {s:?}; expected ferrolb-bgp, bird-bfd or gobgp-hold")
            })
    }
}

/// Address families to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilySelection {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both, probed at the same time in each trial.
    Both,
}

impl FamilySelection {
    /// The families, IPv4 first (`true` = IPv6).
    pub fn families(self) -> Vec<bool> {
        match self {
            FamilySelection::V4 => vec![false],
            FamilySelection::V6 => vec![true],
            FamilySelection::Both => vec![false, true],
        }
    }
}

impl FromStr for FamilySelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v4" => Ok(FamilySelection::V4),
            "v6" => Ok(FamilySelection::V6),
            "both" => Ok(FamilySelection::Both),
            _ => Err(format!("unknown family {s:?}; expected v4, v6 or both")),
        }
    }
}

fn fam(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// Benchmark parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Trials (node failures) to run.
    pub trials: usize,
    /// Families.
    pub families: FamilySelection,
    /// What announces.
    pub speaker: SpeakerKind,
    /// Nodes in the lab (at least 2).
    pub nodes: u8,
    /// Pods per node (at least 1).
    pub pods_per_node: u8,
    /// UDP flows per family.
    pub flows: u16,
    /// Probe interval of each flow.
    pub interval: Duration,
    /// BFD timers of the router (and the BIRD speakers).
    pub bfd: BfdTimers,
    /// Pods' server port (also the VIP's port).
    pub port: u16,
    /// IPv4 VIP.
    pub vip_v4: IpAddr,
    /// IPv6 VIP.
    pub vip_v6: IpAddr,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            trials: 5,
            families: FamilySelection::Both,
            speaker: SpeakerKind::BirdBfd,
            nodes: 3,
            pods_per_node: 2,
            flows: 16,
            interval: Duration::from_millis(2),
            bfd: BfdTimers::default(),
            port: 8080,
            vip_v4: IpAddr::from([198, 51, 100, 200]),
            vip_v6: IpAddr::from([0xfd00, 0x5100, 0, 0, 0, 0, 0, 0x200]),
        }
    }
}

impl BenchOptions {
    /// The VIP of a family.
    pub fn vip(&self, v6: bool) -> IpAddr {
        if v6 { self.vip_v6 } else { self.vip_v4 }
    }

    /// The host prefix of a family's VIP.
    pub fn prefix(&self, v6: bool) -> String {
        let len = if v6 { 128 } else { 32 };
        format!("{}/{len}", self.vip(v6))
    }

    /// The lab this benchmark needs.
    pub fn lab_spec(&self) -> LabSpec {
        LabSpec {
            nodes: self.nodes,
            pods_per_node: self.pods_per_node,
            frr_peering: FrrPeering::Static,
            node_asns: NodeAsns::Same(64513),
            hold_time_secs: self.speaker.hold_time_secs(),
            bfd: Some(self.bfd),
            ..LabSpec::default()
        }
    }
}

/// Result of one trial for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialResult {
    /// Trial number (1-based).
    pub trial: usize,
    /// IPv6 (`true`) or IPv4.
    pub v6: bool,
    /// The node that failed.
    pub failed_node: u8,
    /// Flows that were answered through it.
    pub affected_flows: usize,
    /// Client-seen outage: the largest reply gap among those flows.
    pub outage: Duration,
    /// From the start of the failure command until the router's route no longer pointed
    /// to the node.
    pub detection: Duration,
    /// How precise `detection` is: from the start of the last route poll that still saw the
    /// node to the end of the first one that did not (each poll runs `ip`, slow on a loaded
    /// machine). `detection` is the upper bound.
    pub detection_resolution: Duration,
    /// How long the failure command (links down inside the node) took: the links went down
    /// somewhere within it.
    pub fail_command: Duration,
    /// Largest gap of the flows that were not through the failed node, and of affected
    /// flows after their recovery ([`probe::OutageReport::collateral`]; at most
    /// [`MAX_COLLATERAL_GAP`]): the measurement's noise floor.
    pub collateral: Duration,
}

/// What [`prepare`] started beside the lab: ferrolb's speakers and their cluster (nothing
/// for the reference speakers, which the lab owns). Keep it until the trials are done.
#[derive(Debug, Default)]
pub struct Prepared {
    ferrolb: Option<ferrolb::FerrolbAnnouncer>,
}

impl Prepared {
    /// Fails if one of ferrolb's speakers has exited (nothing to check otherwise).
    pub fn check(&mut self) -> LabResult<()> {
        self.ferrolb
            .as_mut()
            .map_or(Ok(()), ferrolb::FerrolbAnnouncer::check_running)
    }

    /// Stops what was started; one `node: exit` line per ferrolb speaker.
    pub fn stop(self) -> Vec<String> {
        self.ferrolb
            .map(ferrolb::FerrolbAnnouncer::stop)
            .unwrap_or_default()
    }
}

/// Starts the pod servers, the speaker on every node announcing the VIPs (ferrolb's from a
/// Service's status, see [`ferrolb::FerrolbAnnouncer`]), and per-node DNAT of each VIP to
/// the node's own pods (UDP and TCP); waits for ECMP over every node (and BFD Up with a BFD
/// speaker). Must not run inside a tokio runtime's context with ferrolb's speaker.
pub fn prepare(lab: &Lab, opts: &BenchOptions) -> LabResult<Prepared> {
    lab.serve_pods(opts.port)?;
    let mut prepared = Prepared::default();
    if opts.speaker.is_ferrolb() {
        prepared.ferrolb = Some(ferrolb::FerrolbAnnouncer::start(
            lab,
            opts,
            &opts.families.families(),
        )?);
    }
    for node in lab.nodes() {
        let n = node.index;
        opts.speaker.start(lab, n)?;
        for v6 in opts.families.families() {
            opts.speaker.announce(lab, n, &opts.prefix(v6))?;
            let local: Vec<SocketAddr> = node
                .pods
                .iter()
                .filter_map(|p| {
                    if v6 {
                        p.addr.v6.map(IpAddr::V6)
                    } else {
                        p.addr.v4.map(IpAddr::V4)
                    }
                })
                .map(|ip| SocketAddr::new(ip, opts.port))
                .collect();
            for proto in [Proto::Udp, Proto::Tcp] {
                lab.install_kube_proxy_nft(n, opts.vip(v6), opts.port, proto, &local)?;
            }
        }
    }
    wait_ready(lab, opts)?;
    Ok(prepared)
}

/// Waits until the router routes each VIP via every node and, with a BFD speaker, every
/// BFD session is Up.
pub fn wait_ready(lab: &Lab, opts: &BenchOptions) -> LabResult<()> {
    let all: Vec<u8> = lab.nodes().iter().map(|n| n.index).collect();
    let timeout = Duration::from_secs(60);
    for v6 in opts.families.families() {
        lab.wait_router_route_nodes(&opts.prefix(v6), &all, timeout)?;
    }
    if opts.speaker.uses_bfd() {
        let want = lab.nodes().len() * lab.nodes()[0].uplink.all().len();
        lab::wait_until(
            &format!("{want} BFD sessions Up on the router"),
            timeout,
            || Ok(lab.bfd_peers()?.iter().filter(|p| p.up).count() >= want),
        )?;
    }
    Ok(())
}

fn pick_node(nodes: u8, trial: usize, probes: &[(bool, Probe)]) -> u8 {
    let counts: Vec<usize> = (1..=nodes)
        .map(|n| {
            probes
                .iter()
                .map(|(_, p)| p.current_nodes().iter().filter(|x| **x == Some(n)).count())
                .min()
                .unwrap_or(0)
        })
        .collect();
    let preferred = (trial % usize::from(nodes)) as u8 + 1;
    if counts[usize::from(preferred - 1)] > 0 {
        return preferred;
    }
    let best = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map_or(0, |(i, _)| i);
    best as u8 + 1
}

/// Largest collateral gap ([`probe::OutageReport::collateral`]) a trial accepts: flows that
/// were not through the failed node go on being answered every probe interval (at most
/// rehashed to another node), so a longer silence means the lab itself was disturbed, e.g.
/// BFD sessions of healthy nodes flapping (100 ms x 3) on an overloaded machine, and the
/// trial measures that instead of the failover.
pub const MAX_COLLATERAL_GAP: Duration = Duration::from_millis(100);

/// The 1, 5 and 15 minute load averages from `/proc/loadavg` (`None` if unreadable).
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<&str> = text.split_whitespace().take(3).collect();
    (v.len() == 3).then(|| v.join(" "))
}

fn load_note() -> String {
    load_average().map_or_else(String::new, |l| format!(" (load average {l})"))
}

/// One trial attempt: measured, or thrown away because the lab was disturbed (the node is
/// restored and the lab ready again in both cases).
enum Attempt {
    Measured(Vec<TrialResult>),
    Disturbed(String),
}

/// Runs one trial (number `trial`, 1-based) on a prepared lab: probes every family in
/// `families` at `port` of its VIP, fails a node that carries flows of every family (node
/// `trial` modulo the node count when it does), measures, restores the node and waits until
/// it announces again. A trial during which the lab was disturbed (the router dropped a
/// healthy node too, or flows not through the failed node went unanswered for more than
/// [`MAX_COLLATERAL_GAP`]) is an error: its figures would not measure the failover.
pub fn run_trial(
    lab: &Lab,
    opts: &BenchOptions,
    trial: usize,
    families: &[bool],
) -> LabResult<Vec<TrialResult>> {
    match attempt(lab, opts, trial, families)? {
        Attempt::Measured(r) => Ok(r),
        Attempt::Disturbed(why) => Err(LabError::new(
            format!("failover trial {trial}"),
            why,
            Some("the machine is probably overloaded: retry when it is quieter".into()),
        )),
    }
}

/// [`run_trial`], repeating an attempt during which the lab was disturbed up to `attempts`
/// times in all; `log` receives a line per discarded attempt.
pub fn run_trial_retrying(
    lab: &Lab,
    opts: &BenchOptions,
    trial: usize,
    families: &[bool],
    attempts: usize,
    log: &mut dyn FnMut(&str),
) -> LabResult<Vec<TrialResult>> {
    let attempts = attempts.max(1);
    let mut last = String::new();
    for k in 1..=attempts {
        match attempt(lab, opts, trial, families)? {
            Attempt::Measured(r) => return Ok(r),
            Attempt::Disturbed(why) => {
                log(&format!(
                    "trial {trial}, attempt {k} of {attempts} discarded: {why}"
                ));
                last = why;
            }
        }
    }
    Err(LabError::new(
        format!("failover trial {trial}"),
        format!("every one of {attempts} attempts was disturbed; the last: {last}"),
        Some("the machine is probably overloaded: retry when it is quieter".into()),
    ))
}

/// Restores `node`, waits for the lab to be ready and returns `outcome`.
fn restored(lab: &Lab, opts: &BenchOptions, node: u8, outcome: Attempt) -> LabResult<Attempt> {
    lab.node_restore(node)?;
    wait_ready(lab, opts)?;
    Ok(outcome)
}

fn attempt(lab: &Lab, opts: &BenchOptions, trial: usize, families: &[bool]) -> LabResult<Attempt> {
    let step = format!("failover trial {trial}");
    let mut probes = Vec::new();
    for &v6 in families {
        let target = SocketAddr::new(opts.vip(v6), opts.port);
        probes.push((
            v6,
            Probe::start(lab.client_ns(), target, opts.flows, opts.interval)?,
        ));
    }
    // Warm up until every flow has an answer.
    lab::wait_until(
        &format!("{step}: every probe flow answered"),
        Duration::from_secs(10),
        || {
            Ok(probes
                .iter()
                .all(|(_, p)| p.current_nodes().iter().all(Option::is_some)))
        },
    )?;
    std::thread::sleep(Duration::from_millis(200));
    let node = pick_node(lab.nodes().len() as u8, trial - 1, &probes);
    let node_if = lab.node(node)?.router_if.clone();
    let healthy: Vec<(u8, String)> = lab
        .nodes()
        .iter()
        .filter(|n| n.index != node)
        .map(|n| (n.index, n.router_if.clone()))
        .collect();

    // The time base is the start of the failure command: the links go down somewhere
    // inside it, and under load it can take a second (reported as `fail_command`).
    let t_fail = Instant::now();
    lab.node_fail(node)?;
    let fail_command = t_fail.elapsed();
    let mut detection: Vec<Option<Duration>> = vec![None; families.len()];
    // Start of the last poll that still saw the node, per family: each poll spawns `ip`,
    // which can take long on a loaded machine, so the route changed between this and the
    // end of the first poll that no longer saw the node.
    let mut still_there: Vec<Duration> = vec![Duration::ZERO; families.len()];
    let mut resolution: Vec<Duration> = vec![Duration::ZERO; families.len()];
    let limit = Duration::from_secs(u64::from(opts.speaker.hold_time_secs()) * 2 + 10);
    while detection.iter().any(Option::is_none) {
        for (i, &v6) in families.iter().enumerate() {
            if detection[i].is_some() {
                continue;
            }
            let prefix = opts.prefix(v6);
            let polled = t_fail.elapsed();
            let hops = lab.router_nexthops(&prefix)?;
            let at = t_fail.elapsed();
            let lost: Vec<u8> = healthy
                .iter()
                .filter(|(_, dev)| !hops.iter().any(|h| h.dev == *dev))
                .map(|(n, _)| *n)
                .collect();
            if !lost.is_empty() {
                drop(probes);
                let why = format!(
                    "{} ms after node {node} failed, the router's route for {prefix} had lost \
                     healthy node(s) {lost:?} too (next hops via {:?}){}",
                    at.as_millis(),
                    hops.iter().map(|h| h.dev.as_str()).collect::<Vec<_>>(),
                    load_note()
                );
                return restored(lab, opts, node, Attempt::Disturbed(why));
            }
            if hops.iter().any(|h| h.dev == node_if) {
                still_there[i] = polled;
            } else {
                detection[i] = Some(at);
                resolution[i] = at.saturating_sub(still_there[i]);
            }
        }
        if t_fail.elapsed() > limit {
            let _ = lab.node_restore(node);
            return Err(LabError::new(
                step,
                format!("the router still routes the VIP via node {node} after {limit:?}"),
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let affected flows recover: answered through another node (they are rehashed onto
    // the remaining nodes).
    let recover_until = Instant::now() + Duration::from_secs(5);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let done = probes.iter().all(|(_, p)| {
            let rep = probe::outages(&p.replies(), p.flows(), p.at(t_fail), p.elapsed(), node);
            rep.unrecovered.is_empty()
        });
        if done || Instant::now() > recover_until {
            break;
        }
    }
    let mut reports = Vec::new();
    for (v6, p) in probes {
        let fail_at = p.at(t_fail);
        let flows = p.flows();
        let rec = p.stop()?;
        reports.push((
            v6,
            probe::outages(&rec.replies, flows, fail_at, rec.end, node),
        ));
    }
    for (v6, rep) in &reports {
        let collateral = rep.collateral.unwrap_or_default();
        if collateral > MAX_COLLATERAL_GAP {
            let why = format!(
                "{} flows not through node {node} (or after recovering) went {} ms without a \
                     reply (more than {} ms: the lab itself was disturbed){}",
                fam(*v6),
                collateral.as_millis(),
                MAX_COLLATERAL_GAP.as_millis(),
                load_note()
            );
            return restored(lab, opts, node, Attempt::Disturbed(why));
        }
    }
    let mut out = Vec::new();
    for (i, (v6, rep)) in reports.into_iter().enumerate() {
        if !rep.unrecovered.is_empty() {
            let _ = lab.node_restore(node);
            return Err(LabError::new(
                &step,
                format!(
                    "{} flows ({}) through node {node} got no reply through another node after \
                     the failure",
                    rep.unrecovered.len(),
                    fam(v6)
                ),
                None,
            ));
        }
        let Some(outage) = rep.worst() else {
            let _ = lab.node_restore(node);
            return Err(LabError::new(
                &step,
                format!("no {} flow went through node {node}", fam(v6)),
                Some("use more flows (--flows)".into()),
            ));
        };
        out.push(TrialResult {
            trial,
            v6,
            failed_node: node,
            affected_flows: rep.affected.len(),
            outage,
            detection: detection[i].unwrap_or_default(),
            detection_resolution: resolution[i],
            fail_command,
            collateral: rep.collateral.unwrap_or_default(),
        });
    }
    restored(lab, opts, node, Attempt::Measured(out))
}

/// Facts about the machine for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineNotes {
    /// `(what, value)` lines.
    pub lines: Vec<(String, String)>,
}

fn first_line(argv: &[&str]) -> Option<String> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let s = String::from_utf8_lossy(&text)
        .lines()
        .next()?
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

impl MachineNotes {
    /// Reads kernel, CPU and tool versions (best effort: unknown values are left out).
    pub fn collect() -> MachineNotes {
        let mut lines = Vec::new();
        if let Some(k) = first_line(&["uname", "-sr"]) {
            lines.push(("kernel".into(), k));
        }
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        lines.push(("CPU".into(), format!("{cpus} x {model}")));
        for (what, argv) in [
            ("FRR (router)", &["/usr/lib/frr/zebra", "--version"][..]),
            ("BIRD", &["bird", "--version"][..]),
            ("GoBGP", &["gobgpd", "--version"][..]),
        ] {
            if let Some(v) = first_line(argv) {
                lines.push((what.into(), v));
            }
        }
        MachineNotes { lines }
    }
}

/// Nearest-rank percentile `p` (0 to 100) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn stats(mut v: Vec<Duration>) -> [String; 4] {
    v.sort();
    [50.0, 90.0, 99.0, 100.0].map(|p| percentile(&v, p).map_or("-".into(), ms))
}

/// Summary rows (one per family) of `results` for `speaker`: trials, flows, outage and
/// detection percentiles in milliseconds.
pub fn summary_table(speaker: SpeakerKind, results: &[TrialResult]) -> Table {
    let mut t = Table::new([
        "speaker",
        "family",
        "trials",
        "flows hit",
        "outage p50",
        "p90",
        "p99",
        "max",
        "detect p50",
        "p90",
        "p99",
        "max",
    ]);
    for v6 in [false, true] {
        let r: Vec<&TrialResult> = results.iter().filter(|r| r.v6 == v6).collect();
        if r.is_empty() {
            continue;
        }
        let o = stats(r.iter().map(|x| x.outage).collect());
        let d = stats(r.iter().map(|x| x.detection).collect());
        let mut row = vec![
            speaker.name().to_string(),
            fam(v6).to_string(),
            r.len().to_string(),
            r.iter()
                .map(|x| x.affected_flows)
                .sum::<usize>()
                .to_string(),
        ];
        row.extend(o);
        row.extend(d);
        t.row(row);
    }
    t
}

fn md_table(t: &Table) -> String {
    // Convert the aligned text table into a markdown table.
    let text = t.render("");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(cells.len()));
        }
    }
    out
}

/// The markdown report: summary, per-trial rows, method, reproduction command and machine.
pub fn render_report(
    opts: &BenchOptions,
    results: &[TrialResult],
    command: &str,
    notes: &MachineNotes,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Failover benchmark: {} ({} mode)\n",
        opts.speaker,
        opts.speaker.mode()
    );
    let _ = writeln!(
        s,
        "Silent node loss (links down inside the node namespace, no NOTIFICATION, no BFD \
         AdminDown) in a {}-node lab, {} pods per node. Times in milliseconds.\n",
        opts.nodes, opts.pods_per_node
    );
    s.push_str(&md_table(&summary_table(opts.speaker, results)));
    let _ = writeln!(
        s,
        "\n- **outage**: client-seen, the largest gap between replies among the UDP flows \
         that were answered through the failed node, until each is answered through another \
         node ({} flows per family, one probe per flow every {} ms, so the resolution is \
         about that interval).\n\
         - **detect**: from the start of the failure command until the router's kernel route \
         for the VIP no longer had the node's next hop (polled every few ms; **detect res**: \
         from the start of the last poll that still saw the node, since polls run `ip` and \
         are slow under load); **fail cmd**: \
         how long that command took (the links went down within it).\n\
         - **others' gap**: the largest gap of the flows not through the failed node (and of \
         the affected ones after recovering), the noise floor; an attempt where it exceeded \
         {} ms, or where the router also dropped a healthy node, was discarded and repeated \
         (the lab was disturbed, e.g. BFD of healthy nodes flapping under load).\n\
         - Speaker: {}; hold time {} s; BFD on the router {} ms x {}{}.\n\
         - Every node DNATs the VIP to its own pods (nftables, as kube-proxy with \
         externalTrafficPolicy: Local), so a flow depends only on the node it enters through.\n\
         - {}\n",
        opts.flows,
        opts.interval.as_millis(),
        MAX_COLLATERAL_GAP.as_millis(),
        opts.speaker,
        opts.speaker.hold_time_secs(),
        opts.bfd.interval_ms,
        opts.bfd.multiplier,
        if opts.speaker.uses_bfd() {
            " (the speaker runs BFD with the same timers)"
        } else {
            " (the speaker has no BFD: the session stays down and the hold timer detects)"
        },
        if opts.speaker.is_ferrolb() {
            "This is **ferrolb's own speaker** (`ferrolb-speaker` in every node namespace, \
             announcing a dual-stack Service's status from the in-memory API server, BGPPeers \
             of `deploy/examples` with the `fast` BFDProfile at the timers above). Targets \
             (BRIEF): < 0.5 s detection, < 1 s outage."
        } else {
            "This is one of the lab's **reference** speakers, not ferrolb: the baseline \
             ferrolb's speaker must beat (BRIEF: < 0.5 s detection, < 1 s outage)."
        }
    );
    let mut t = Table::new([
        "trial",
        "family",
        "failed node",
        "flows hit",
        "outage",
        "detect",
        "detect res",
        "fail cmd",
        "others' gap",
    ]);
    for r in results {
        t.row([
            r.trial.to_string(),
            fam(r.v6).to_string(),
            format!("node{}", r.failed_node),
            r.affected_flows.to_string(),
            ms(r.outage),
            ms(r.detection),
            ms(r.detection_resolution),
            ms(r.fail_command),
            ms(r.collateral),
        ]);
    }
    let _ = writeln!(s, "## Trials\n");
    s.push_str(&md_table(&t));
    let _ = writeln!(s, "\n## Reproduce\n\n```sh\n{command}\n```\n\n## Machine\n");
    for (k, v) in &notes.lines {
        let _ = writeln!(s, "- {k}: {v}");
    }
    s.push_str(
        "\nTwo shared cores run the router, the nodes, the speakers and the probe: figures are \
         noisy; compare medians of runs made side by side.\n",
    );
    s
}

/// Builds the lab, prepares it and runs `opts.trials` trials; `log` receives progress lines.
/// The lab is torn down before returning.
/// `on_lab` receives the lab's teardown handle once it exists (for a Ctrl-C handler).
pub fn run_bench(
    opts: &BenchOptions,
    log: &mut dyn FnMut(&str),
    on_lab: &mut dyn FnMut(lab::TeardownHandle),
) -> LabResult<Vec<TrialResult>> {
    if opts.nodes < 2 || opts.pods_per_node == 0 || opts.trials == 0 {
        return Err(LabError::new(
            "check benchmark options",
            "need at least 2 nodes, 1 pod per node and 1 trial",
            None,
        ));
    }
    log(&format!(
        "building a {}-node lab (FRR router, {} speakers)",
        opts.nodes, opts.speaker
    ));
    let lab = Lab::up(opts.lab_spec())?;
    on_lab(lab.teardown_handle());
    let mut prepared = prepare(&lab, opts)?;
    let families = opts.families.families();
    let mut out = Vec::new();
    for trial in 1..=opts.trials {
        let r = run_trial_retrying(&lab, opts, trial, &families, 3, log)?;
        for x in &r {
            log(&format!(
                "trial {trial}: {} node{} failed: outage {} ms over {} flows, detected in {} ms \
                 (polls resolve it to {} ms; failure command {} ms, other flows' largest gap {} ms){}",
                fam(x.v6),
                x.failed_node,
                ms(x.outage),
                x.affected_flows,
                ms(x.detection),
                ms(x.detection_resolution),
                ms(x.fail_command),
                ms(x.collateral),
                load_note()
            ));
        }
        out.extend(r);
        prepared.check()?;
    }
    for line in prepared.stop() {
        log(&format!("stopped ferrolb's speaker on {line}"));
    }
    lab.down()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=10).map(|i| d(i * 10)).collect();
        let cases = [
            (50.0, 50),
            (90.0, 90),
            (99.0, 100),
            (100.0, 100),
            (0.0, 10),
            (10.0, 10),
        ];
        for (p, want) in cases {
            assert_eq!(percentile(&v, p), Some(d(want)), "p{p}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[d(7)], 99.0), Some(d(7)));
    }

    #[test]
    fn parse_kinds_and_families() {
        for k in SpeakerKind::ALL {
            assert_eq!(k.name().parse::<SpeakerKind>(), Ok(k));
        }
        assert!("ferrolb".parse::<SpeakerKind>().is_err());
        assert_eq!(
            "ferrolb-bgp".parse::<SpeakerKind>(),
            Ok(SpeakerKind::FerrolbBgp)
        );
        assert_eq!("bgp".parse::<BenchMode>(), Ok(BenchMode::Bgp));
        assert!("l2".parse::<BenchMode>().is_err());
        assert_eq!(BenchMode::Bgp.speakers(), SpeakerKind::ALL);
        assert!(SpeakerKind::ALL.iter().filter(|k| k.is_ferrolb()).count() == 1);
        let k = SpeakerKind::FerrolbBgp;
        assert_eq!(
            (
                k.name(),
                k.uses_bfd(),
                k.hold_time_secs(),
                k.failure_signal()
            ),
            ("ferrolb-bgp", true, 9, FailureSignal::RouterFib)
        );
        assert_eq!(
            "both".parse::<FamilySelection>().map(|f| f.families()),
            Ok(vec![false, true])
        );
        assert_eq!(
            "v6".parse::<FamilySelection>().map(|f| f.families()),
            Ok(vec![true])
        );
        assert!("v5".parse::<FamilySelection>().is_err());
    }

    #[test]
    fn report_has_percentiles_per_family_and_the_command() {
        let opts = BenchOptions::default();
        let results: Vec<TrialResult> = (1..=4)
            .flat_map(|t| {
                [false, true].map(|v6| TrialResult {
                    trial: t,
                    v6,
                    failed_node: 1,
                    affected_flows: 5,
                    outage: d(300 + t as u64 * 10 + u64::from(v6)),
                    detection: d(280 + t as u64),
                    detection_resolution: d(5),
                    fail_command: d(4),
                    collateral: d(3),
                })
            })
            .collect();
        let notes = MachineNotes {
            lines: vec![("kernel".into(), "Linux 6.18".into())],
        };
        let r = render_report(
            &opts,
            &results,
            "ferrolb-lab failover-bench --trials 4",
            &notes,
        );
        assert!(
            r.contains(
                "| bird-bfd | IPv4 | 4 | 20 | 320 | 340 | 340 | 340 | 282 | 284 | 284 | 284 |"
            ),
            "{r}"
        );
        assert!(r.contains("| bird-bfd | IPv6 | 4 | 20 | 321 |"), "{r}");
        assert!(r.contains("ferrolb-lab failover-bench --trials 4"));
        assert!(r.contains("- kernel: Linux 6.18"));
        assert!(
            r.starts_with("# Failover benchmark: bird-bfd (bgp mode)"),
            "{r}"
        );
        assert!(r.contains("lab's **reference** speakers"), "{r}");
        let ours = BenchOptions {
            speaker: SpeakerKind::FerrolbBgp,
            ..BenchOptions::default()
        };
        let r = render_report(&ours, &results, "ferrolb-lab failover-bench", &notes);
        assert!(
            r.starts_with("# Failover benchmark: ferrolb-bgp (bgp mode)"),
            "{r}"
        );
        assert!(r.contains("**ferrolb's own speaker**"), "{r}");
        assert!(r.contains("| ferrolb-bgp | IPv4 | 4 |"), "{r}");
        assert!(
            r.contains("| 3 | IPv6 | node1 | 5 | 331 | 283 | 5 | 4 | 3 |"),
            "{r}"
        );
    }

    #[test]
    fn lab_spec_follows_the_speaker() {
        let mut o = BenchOptions::default();
        assert_eq!(o.lab_spec().hold_time_secs, 9);
        o.speaker = SpeakerKind::GobgpHold;
        assert_eq!(o.lab_spec().hold_time_secs, 3);
        assert_eq!(o.prefix(true), "fd00:5100::200/128");
        assert_eq!(o.prefix(false), "198.51.100.200/32");
    }
}
