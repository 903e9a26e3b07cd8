//! Allocator benchmark: 10,000 allocations in a /16 IPv4 and a /64 IPv6 pool, a restart
//! rebuilding 10,000 assignments, and release/allocate churn. Prints a Markdown report
//! and writes it to `target/bench-reports/allocator.md`. Memory: peak heap bytes from a
//! counting global allocator (`peak_alloc`), and the process's VmHWM.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrolb_config::ipset::{Family, parse_pool_entry};
use ferrolb_config::pool::{Pool, PoolPolicy};
use ferrolb_config::service::{IpFamilyPolicy, LbRequest, PortKey, Protocol, TrafficPolicy};
use ferrolb_controller::allocator::{Allocator, ServiceKey, ServiceRequest};
use peak_alloc::PeakAlloc;

/// Live and peak heap bytes, counted by `peak_alloc` on top of the system allocator.
#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

const N: usize = 10_000;
const REPS: usize = 5;

fn pool(name: &str, cidr: &str) -> Pool {
    Pool::new(
        name,
        &[parse_pool_entry(cidr).expect("pool entry")],
        PoolPolicy::default(),
    )
    .expect("pool")
}

fn request(i: usize, family: Family, prefix: &str) -> ServiceRequest {
    ServiceRequest::new(
        ServiceKey::new(format!("ns{}", i % 50), format!("{prefix}{i}")),
        LbRequest {
            pool: None,
            requested_ips: Vec::new(),
            requested_ips_path: None,
            sharing_key: None,
            ip_family_policy: IpFamilyPolicy::SingleStack,
            ip_families: vec![family],
            traffic_policy: TrafficPolicy::Cluster,
            ports: vec![PortKey {
                protocol: Protocol::Tcp,
                port: 443,
            }],
            backend_key: String::new(),
        },
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

struct Row {
    what: String,
    ops: usize,
    median: Duration,
    peak_bytes: usize,
    target: &'static str,
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs `f` REPS times; each run gets fresh input from `setup` (not timed) and returns
/// the timed duration. Peak heap is measured above the live bytes at the start of a run.
fn measure<S, I>(mut setup: S, mut f: impl FnMut(I) -> Duration) -> (Duration, usize)
where
    S: FnMut() -> I,
{
    let mut times = Vec::with_capacity(REPS);
    let mut peak = 0;
    for _ in 0..REPS {
        let input = setup();
        let base = GLOBAL.current_usage();
        GLOBAL.reset_peak_usage();
        times.push(f(input));
        peak = peak.max(GLOBAL.peak_usage().saturating_sub(base));
    }
    (median(times), peak)
}

fn allocate_all(pools: Vec<Pool>, reqs: &[ServiceRequest]) -> Allocator {
    let mut a = Allocator::new(pools);
    for r in reqs {
        a.allocate(r).expect("allocation");
    }
    a
}

fn main() {
    let mut rows = Vec::new();
    let v4_reqs: Vec<ServiceRequest> = (0..N).map(|i| request(i, Family::V4, "s")).collect();
    let v6_reqs: Vec<ServiceRequest> = (0..N).map(|i| request(i, Family::V6, "s")).collect();
    let v4_pools = || vec![pool("v4", "10.0.0.0/16")];
    let v6_pools = || vec![pool("v6", "fd00::/64")];

    for (what, pools, reqs) in [
        (
            "allocate 10k Services, one /16 IPv4 pool",
            v4_pools(),
            &v4_reqs,
        ),
        (
            "allocate 10k Services, one /64 IPv6 pool",
            v6_pools(),
            &v6_reqs,
        ),
    ] {
        let (t, peak) = measure(
            || Allocator::new(pools.clone()),
            |mut a| {
                let start = Instant::now();
                for r in reqs {
                    black_box(a.allocate(r).expect("allocation"));
                }
                let t = start.elapsed();
                drop(black_box(a));
                t
            },
        );
        rows.push(Row {
            what: what.to_owned(),
            ops: N,
            median: t,
            peak_bytes: peak,
            target: "< 100 ms total",
        });
    }

    // Restart: restore 10k status allocations in shuffled order, then reconcile each.
    let reference = allocate_all(v4_pools(), &v4_reqs);
    let mut status: Vec<(usize, Vec<std::net::IpAddr>)> = v4_reqs
        .iter()
        .enumerate()
        .map(|(i, r)| (i, reference.allocation(&r.key).expect("allocated").ips))
        .collect();
    shuffle(&mut status, 0x2545_f491_4f6c_dd1d);
    let (t_restore, peak_restore) = measure(
        || (),
        |()| {
            let start = Instant::now();
            let mut a = Allocator::new(v4_pools());
            for (i, ips) in &status {
                let out = a.restore(&v4_reqs[*i], ips);
                assert!(out.rejected.is_empty());
            }
            let t = start.elapsed();
            drop(black_box(a));
            t
        },
    );
    rows.push(Row {
        what: "restart: restore 10k assignments (shuffled)".to_owned(),
        ops: N,
        median: t_restore,
        peak_bytes: peak_restore,
        target: "< 1 s total",
    });
    let (t_rebuild, peak_rebuild) = measure(
        || (),
        |()| {
            let start = Instant::now();
            let mut a = Allocator::new(v4_pools());
            for (i, ips) in &status {
                a.restore(&v4_reqs[*i], ips);
            }
            for (i, _) in &status {
                let out = a.allocate(&v4_reqs[*i]).expect("reconcile");
                assert_eq!(out.change, ferrolb_controller::allocator::Change::Unchanged);
            }
            let t = start.elapsed();
            drop(black_box(a));
            t
        },
    );
    rows.push(Row {
        what: "restart: restore + reconcile 10k (zero IPs changed)".to_owned(),
        ops: 2 * N,
        median: t_rebuild,
        peak_bytes: peak_rebuild,
        target: "< 1 s total",
    });

    // Churn: 10k cycles of releasing one Service and allocating a new one on a pool
    // holding 10k Services (quarantine active, so reuse goes through it).
    let churn_reqs: Vec<ServiceRequest> = (0..N).map(|i| request(i, Family::V4, "c")).collect();
    let (t_churn, peak_churn) = measure(
        || allocate_all(v4_pools(), &v4_reqs),
        |mut a| {
            let start = Instant::now();
            for i in 0..N {
                black_box(a.release(&v4_reqs[i].key));
                black_box(a.allocate(&churn_reqs[i]).expect("churn"));
            }
            let t = start.elapsed();
            drop(black_box(a));
            t
        },
    );
    rows.push(Row {
        what: "churn: release + allocate, 10k cycles at 10k Services".to_owned(),
        ops: N,
        median: t_churn,
        peak_bytes: peak_churn,
        target: "-",
    });

    // Retained size of the state for 10k Services.
    let before = GLOBAL.current_usage();
    let held = allocate_all(v4_pools(), &v4_reqs);
    let retained = GLOBAL.current_usage().saturating_sub(before);
    drop(black_box(held));

    let mut out = String::new();
    let _ = writeln!(out, "# Allocator benchmark\n");
    let _ = writeln!(
        out,
        "Median of {REPS} runs each; release build; ns/op = median total / operations.\n"
    );
    let _ = writeln!(
        out,
        "| Scenario | ops | total (ms) | ns/op | peak heap (KiB) | target |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.0} | {} | {} |",
            r.what,
            r.ops,
            r.median.as_secs_f64() * 1e3,
            r.median.as_nanos() as f64 / r.ops as f64,
            r.peak_bytes / 1024,
            r.target
        );
    }
    let _ = writeln!(
        out,
        "\nAllocator state for 10k Services (retained heap): {} KiB.  ",
        retained / 1024
    );
    let _ = writeln!(
        out,
        "Process VmHWM (whole bench run, peak RSS): {}; controller target < 60 MiB RSS at 10k Services.",
        vm_hwm()
    );
    print!("{out}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            manifest
                .parent()
                .map_or_else(|| manifest.join("target"), |root| root.join("target"))
        })
        .join("bench-reports");
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("allocator.md");
        match std::fs::write(&path, &out) {
            Ok(()) => println!("\nreport written to {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
    }
}
