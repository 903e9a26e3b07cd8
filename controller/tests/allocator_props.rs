//! Allocator properties and scale: random sequences of allocate / release / restore /
//! set_pools / restart over small pools, and a restart with 10,000 Services.

mod allocator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use allocator_support::*;
use ferrolb_config::ipset::{AddrCount, Family};
use ferrolb_config::pool::Pool;
use ferrolb_controller::allocator::{Allocator, Change, ServiceKey, ServiceRequest};
use proptest::prelude::*;

/// Pool configurations the random sequences switch between (never overlapping).
fn pool_variant(i: u8) -> Vec<Pool> {
    let list = match i % 5 {
        0 => vec![
            pool("a", &["10.0.0.0/29", "fc00::/126"]),
            pool("b", &["10.0.1.0/30"]).avoid_buggy(),
            pool("m", &["10.0.2.0/30", "fc00:2::/127"]).manual(),
        ],
        // a shrinks, b gains IPv6.
        1 => vec![
            pool("a", &["10.0.0.0/30", "fc00::/127"]),
            pool("b", &["10.0.1.0/30", "fc00:1::/126"]),
            pool("m", &["10.0.2.0/30"]).manual(),
        ],
        // a renamed to c, b gone.
        2 => vec![
            pool("c", &["10.0.0.0/29", "fc00::/126"]),
            pool("m", &["10.0.2.0/30", "fc00:2::/127"]).manual(),
        ],
        // Selective pools with priorities.
        3 => vec![
            pool("a", &["10.0.0.0/29"]).priority(2).namespaces(&["ns1"]),
            pool("b", &["10.0.1.0/30", "fc00:1::/126"]).priority(1),
            pool("m", &["10.0.2.0/30", "fc00:2::/127"]).manual(),
        ],
        _ => vec![],
    };
    pools(&list)
}

const CANDIDATE_IPS: [&str; 8] = [
    "10.0.0.1",
    "10.0.0.6",
    "10.0.1.0",
    "10.0.1.2",
    "10.0.2.1",
    "fc00::1",
    "fc00:2::1",
    "192.168.0.1",
];

#[derive(Debug, Clone)]
struct Template {
    svc: u8,
    policy: u8,
    key: u8,
    port: u8,
    local: bool,
    ip: Option<u8>,
    pool: u8,
}

fn request(t: &Template) -> ServiceRequest {
    let ns = if t.svc.is_multiple_of(2) {
        "ns1"
    } else {
        "ns2"
    };
    let mut r = svc(&format!("{ns}/s{}", t.svc));
    r = match t.policy % 4 {
        0 => r,
        1 => r.v6(),
        2 => r.prefer_dual(),
        _ => r.require_dual(),
    };
    if !t.key.is_multiple_of(3) {
        r = r.share(&format!("k{}", t.key % 3));
    }
    r = match t.port % 3 {
        0 => r.tcp(&[80]),
        1 => r.tcp(&[443]),
        _ => r.udp(80),
    };
    if t.local {
        r = r.local("app=x");
    }
    if let Some(i) = t.ip {
        let a = ip(CANDIDATE_IPS[usize::from(i) % CANDIDATE_IPS.len()]);
        // Keep the parser's guarantee: requested IPs are of the Service's families.
        if r.req.lb.ip_families.contains(&Family::of(a)) {
            r.req.lb.requested_ips = vec![a];
        }
    }
    r = match t.pool % 5 {
        0 | 1 => r,
        2 => r.pool("a"),
        3 => r.pool("m"),
        _ => r.pool("nope"),
    };
    r.req
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(Template),
    Release(u8),
    Restore(Template, Vec<u8>),
    SetPools(u8),
    Restart(u64),
}

fn template() -> impl Strategy<Value = Template> {
    (
        0u8..8,
        0u8..4,
        0u8..3,
        0u8..3,
        any::<bool>(),
        proptest::option::weighted(0.3, 0u8..8),
        0u8..5,
    )
        .prop_map(|(svc, policy, key, port, local, ip, pool)| Template {
            svc,
            policy,
            key,
            port,
            local,
            ip,
            pool,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => template().prop_map(Op::Allocate),
        2 => (0u8..8).prop_map(Op::Release),
        2 => (template(), proptest::collection::vec(0u8..8, 0..3))
            .prop_map(|(t, ips)| Op::Restore(t, ips)),
        1 => (0u8..5).prop_map(Op::SetPools),
        1 => any::<u64>().prop_map(Op::Restart),
    ]
}

/// Deterministic shuffle (xorshift), so a failing case replays.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Checks the state against a naive recount from the allocations and the requests.
fn check_naive(
    alloc: &Allocator,
    pools: &[Pool],
    reqs: &BTreeMap<ServiceKey, ServiceRequest>,
) -> Result<(), String> {
    alloc.check_invariants()?;
    let by_name: BTreeMap<&str, &Pool> = pools.iter().map(|p| (p.name(), p)).collect();
    let mut on_ip: BTreeMap<IpAddr, Vec<&ServiceKey>> = BTreeMap::new();
    let mut used: BTreeMap<(String, Family), BTreeSet<IpAddr>> = BTreeMap::new();
    let all = alloc.allocations();
    for (k, a) in &all {
        let p = by_name
            .get(a.pool.as_str())
            .ok_or(format!("{k}: unknown pool {}", a.pool))?;
        for ip in &a.ips {
            if !p.is_allocatable(*ip) {
                return Err(format!("{k}: {ip} not allocatable in {}", a.pool));
            }
            on_ip.entry(*ip).or_default().push(k);
            used.entry((a.pool.clone(), Family::of(*ip)))
                .or_default()
                .insert(*ip);
        }
    }
    for (ip, users) in &on_ip {
        if users.len() < 2 {
            continue;
        }
        for pair in users.windows(2) {
            let (a, b) = (&reqs[pair[0]].lb, &reqs[pair[1]].lb);
            let ports_disjoint = a.ports.iter().all(|p| !b.ports.contains(p));
            if a.sharing_key.is_none()
                || a.sharing_key != b.sharing_key
                || a.backend_key != b.backend_key
                || !ports_disjoint
            {
                return Err(format!(
                    "{ip} given to {} and {} without valid sharing",
                    pair[0], pair[1]
                ));
            }
        }
    }
    let counters = alloc.all_counters();
    for p in pools {
        let c = counters.get(p.name()).ok_or("missing counters")?;
        for f in Family::ALL {
            let n = used
                .get(&(p.name().to_owned(), f))
                .map_or(0, |s| s.len() as u128);
            let fc = if f == Family::V4 { c.v4 } else { c.v6 };
            let assigned = AddrCount::from(n);
            if fc.assigned != assigned
                || fc.available != p.allocatable_count(f).checked_sub(assigned).unwrap()
            {
                return Err(format!("{} {f}: counters {fc:?}, recount {n}", p.name()));
            }
        }
    }
    Ok(())
}

fn rebuild(
    alloc: &Allocator,
    pools: &[Pool],
    reqs: &BTreeMap<ServiceKey, ServiceRequest>,
    seed: u64,
) -> Result<Allocator, String> {
    let mut list = alloc.allocations();
    shuffle(&mut list, seed);
    let mut fresh = Allocator::with_quarantine_cap(pools.to_vec(), alloc.quarantine_cap());
    for (k, a) in &list {
        let out = fresh.restore(&reqs[k], &a.ips);
        if !out.rejected.is_empty() || out.allocation.as_ref() != Some(a) {
            return Err(format!("{k}: restore gave {out:?}, want {a:?}"));
        }
    }
    if fresh.allocations() != alloc.allocations() || fresh.all_counters() != alloc.all_counters() {
        return Err("rebuilt state differs".into());
    }
    Ok(fresh)
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn random_sequences_keep_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut pools = pool_variant(0);
        let mut alloc = Allocator::with_quarantine_cap(pools.clone(), 2);
        let mut reqs: BTreeMap<ServiceKey, ServiceRequest> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Allocate(t) => {
                    let req = request(&t);
                    let before = (alloc.allocations(), alloc.all_counters(), alloc.free_generation());
                    match alloc.allocate(&req) {
                        Ok(out) => {
                            prop_assert_eq!(alloc.allocation(&req.key), Some(out.allocation.clone()));
                            if out.change == Change::Unchanged {
                                prop_assert_eq!(&before.0, &alloc.allocations());
                            }
                            reqs.insert(req.key.clone(), req);
                        }
                        Err(e) => {
                            prop_assert!(!e.message.is_empty());
                            prop_assert_eq!(before, (alloc.allocations(), alloc.all_counters(), alloc.free_generation()));
                        }
                    }
                }
                Op::Release(s) => {
                    let ns = if s.is_multiple_of(2) { "ns1" } else { "ns2" };
                    let k = ServiceKey::new(ns, format!("s{s}"));
                    let generation = alloc.free_generation();
                    if let Some(r) = alloc.release(&k) {
                        for ip in &r.freed {
                            prop_assert!(alloc.is_free(*ip) || alloc.pools().all(|p| !p.contains(*ip)));
                        }
                        prop_assert_eq!(r.freed.is_empty(), alloc.free_generation() == generation);
                    }
                    prop_assert!(alloc.allocation(&k).is_none());
                }
                Op::Restore(t, list) => {
                    let req = request(&t);
                    let status: Vec<IpAddr> = list
                        .iter()
                        .map(|&i| ip(CANDIDATE_IPS[usize::from(i) % CANDIDATE_IPS.len()]))
                        .collect();
                    let before: Vec<IpAddr> = alloc.allocations().iter().flat_map(|(k, a)| {
                        if *k == req.key { Vec::new() } else { a.ips.clone() }
                    }).collect();
                    let out = alloc.restore(&req, &status);
                    if let Some(a) = &out.allocation {
                        // Restore never invents or moves an address.
                        for ip in &a.ips {
                            prop_assert!(status.contains(ip));
                        }
                        reqs.insert(req.key.clone(), req.clone());
                    }
                    // Nobody else lost an address.
                    let after: Vec<IpAddr> = alloc.allocations().iter().flat_map(|(k, a)| {
                        if *k == req.key { Vec::new() } else { a.ips.clone() }
                    }).collect();
                    prop_assert_eq!(before, after);
                }
                Op::SetPools(v) => {
                    pools = pool_variant(v);
                    let ev = alloc.set_pools(pools.clone());
                    for e in &ev {
                        prop_assert!(alloc.allocation(&e.key).is_none());
                    }
                }
                Op::Restart(seed) => {
                    alloc = rebuild(&alloc, &pools, &reqs, seed).map_err(TestCaseError::fail)?;
                }
            }
            check_naive(&alloc, &pools, &reqs).map_err(TestCaseError::fail)?;
        }
        rebuild(&alloc, &pools, &reqs, 7).map_err(TestCaseError::fail)?;
    }
}

/// 10,000 Services (single-stack, dual-stack, shared), rebuilt in shuffled order by a new
/// allocator, then every Service reconciled again and 100 new ones allocated: zero
/// addresses change.
#[test]
fn restart_at_scale_changes_nothing() {
    let pool_list = pools(&[
        pool("v4", &["10.0.0.0/16"]),
        pool("dual", &["10.1.0.0/20", "fd00::/64"])
            .priority(1)
            .namespaces(&["dual"]),
    ]);
    let mut alloc = Allocator::new(pool_list.clone());
    let mut reqs: Vec<ServiceRequest> = Vec::new();
    for i in 0..10_000u32 {
        let mut r = if i % 5 == 0 {
            svc(&format!("dual/s{i}")).prefer_dual()
        } else {
            svc(&format!("app/s{i}"))
        };
        if i % 7 == 0 {
            r = r
                .share(&format!("k{}", i % 3))
                .tcp(&[(1000 + i % 60_000) as u16]);
        }
        let out = alloc.allocate(&r.req).expect("allocate");
        assert_eq!(out.change, Change::New);
        reqs.push(r.req);
    }
    alloc.check_invariants().unwrap();
    let before = alloc.allocations();
    assert_eq!(before.len(), 10_000);

    let mut order: Vec<usize> = (0..reqs.len()).collect();
    shuffle(&mut order, 0x9e37_79b9_7f4a_7c15);
    let mut fresh = Allocator::new(pool_list);
    let current: BTreeMap<ServiceKey, Vec<IpAddr>> = before
        .iter()
        .map(|(k, a)| (k.clone(), a.ips.clone()))
        .collect();
    for &i in &order {
        let r = &reqs[i];
        let out = fresh.restore(r, &current[&r.key]);
        assert!(out.rejected.is_empty(), "{}: {:?}", r.key, out.rejected);
    }
    for &i in &order {
        let out = fresh.allocate(&reqs[i]).expect("reconcile");
        assert_eq!(out.change, Change::Unchanged, "{}", reqs[i].key);
    }
    for i in 0..100u32 {
        let r = if i % 2 == 0 {
            svc(&format!("new/n{i}"))
        } else {
            svc(&format!("dual/n{i}")).prefer_dual()
        };
        fresh.allocate(&r.req).expect("new service");
    }
    fresh.check_invariants().unwrap();
    let after: BTreeMap<ServiceKey, _> = fresh.allocations().into_iter().collect();
    let mut changed = 0;
    for (k, a) in &before {
        if after.get(k) != Some(a) {
            changed += 1;
        }
    }
    assert_eq!(changed, 0);
    assert_eq!(after.len(), 10_100);
    assert_eq!(alloc.all_counters()["v4"].v4.assigned.to_string(), {
        // 8,000 single-stack Services, minus those co-located on a shared address.
        let shared: BTreeSet<IpAddr> = before
            .iter()
            .filter(|(k, _)| k.namespace == "app")
            .flat_map(|(_, a)| a.ips.clone())
            .collect();
        shared.len().to_string()
    });
}
