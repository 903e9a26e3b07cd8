//! Benchmarks of the interval-set primitives on allocator-shaped workloads.
//!
//! Run with `cargo bench -p ferrolb-config --bench ipset`. Plain `std` timing (no
//! benchmark framework): each workload runs several times and the fastest and median
//! runs are printed. The product target is allocating 10k Services from one /16 in under
//! 100 ms with O(log n) work per allocation (BRIEF.md section 5).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_config::ipset::{Family, IntervalSet, IpRange, next_addr, parse_pool_entry};
use ferrolb_config::pool::{Pool, PoolPolicy};

const RUNS: usize = 7;

fn entry(s: &str) -> IpRange {
    parse_pool_entry(s).expect("valid bench entry")
}

/// Allocates `n` addresses one after another the way the allocator does: lowest free
/// address at or after a cursor, then mark it used.
fn allocate(pool: &Pool, family: Family, n: usize) -> Vec<IpAddr> {
    let mut free = pool.addresses(family).clone();
    let mut cursor = free.first().expect("non-empty pool");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(ip) = pool.first_allocatable(&free, cursor) else {
            break;
        };
        let _ = free.remove(ip);
        cursor = next_addr(ip).unwrap_or(ip);
        out.push(ip);
    }
    out
}

/// Allocates `n`, frees every other one (fragmenting the free set), then allocates
/// `n / 2` again from the lowest free address.
fn churn(pool: &Pool, n: usize) -> usize {
    let mut free = pool.v4().clone();
    let mut used = Vec::with_capacity(n);
    let mut cursor = free.first().expect("non-empty pool");
    for _ in 0..n {
        let Some(ip) = pool.first_allocatable(&free, cursor) else {
            break;
        };
        let _ = free.remove(ip);
        cursor = next_addr(ip).unwrap_or(ip);
        used.push(ip);
    }
    for ip in used.iter().step_by(2) {
        let _ = free.insert(*ip);
    }
    let start = pool.v4().first().expect("non-empty pool");
    let mut again = 0;
    for _ in 0..n / 2 {
        if let Some(ip) = pool.first_allocatable(&free, start) {
            let _ = free.remove(ip);
            again += 1;
        }
    }
    again + free.range_count()
}

/// Builds `n` disjoint /24 pools into one set and checks each new pool for overlap, as
/// whole-config validation does.
fn overlap_check(n: u32) -> usize {
    let mut all = IntervalSet::new(Family::V4);
    let mut overlaps = 0;
    for i in 0..n {
        let net = entry(&format!("10.{}.{}.0/24", i / 256, i % 256));
        let set = IntervalSet::from_range(net);
        if all.overlap(&set).is_some() {
            overlaps += 1;
        }
        let _ = all.union_with(&set);
    }
    overlaps + all.range_count()
}

fn measure(name: &str, per: usize, mut f: impl FnMut() -> usize) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    let best = times[0];
    let median = times[RUNS / 2];
    let per_op = median.as_nanos() / per.max(1) as u128;
    println!(
        "{name:<48} best {:>9.3} ms  median {:>9.3} ms  {per_op:>6} ns/op",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
    );
}

fn main() {
    let v4 = Pool::new("v4", &[entry("10.0.0.0/16")], PoolPolicy::default()).expect("pool");
    let v4_avoid = Pool::new(
        "v4-avoid",
        &[entry("10.0.0.0/16")],
        PoolPolicy {
            avoid_buggy_ips: true,
            ..PoolPolicy::default()
        },
    )
    .expect("pool");
    let v6 = Pool::new("v6", &[entry("fc00::/64")], PoolPolicy::default()).expect("pool");
    let v6_huge = Pool::new("v6-all", &[entry("::/0")], PoolPolicy::default()).expect("pool");

    measure("allocate 10k from a /16", 10_000, || {
        allocate(&v4, Family::V4, 10_000).len()
    });
    measure("allocate 10k from a /16, avoidBuggyIPs", 10_000, || {
        allocate(&v4_avoid, Family::V4, 10_000).len()
    });
    measure("allocate 10k from an IPv6 /64", 10_000, || {
        allocate(&v6, Family::V6, 10_000).len()
    });
    measure("allocate 10k from ::/0", 10_000, || {
        allocate(&v6_huge, Family::V6, 10_000).len()
    });
    measure(
        "10k allocate, free half, 5k lowest-free again",
        15_000,
        || churn(&v4, 10_000),
    );
    measure("overlap-check and merge 10k /24 pools", 10_000, || {
        overlap_check(10_000)
    });
}
