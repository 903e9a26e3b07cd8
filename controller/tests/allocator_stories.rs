//! Allocator stories: tables of steps (allocate, share, release, pool change, restore,
//! restart) with the expected outcome of each, on IPv4, IPv6 and dual-stack. After every
//! step the internal invariants are checked; after every failed step the whole visible
//! state (allocations, counters, free generation) must be unchanged.

mod allocator_support;

use std::collections::BTreeMap;

use allocator_support::*;
use ferrolb_config::ipset::Family;
use ferrolb_controller::allocator::{
    Allocator, Change, DEFAULT_QUARANTINE_CAP, FailureReason, ServiceKey, ServiceRequest,
};

use FailureReason::*;

enum S {
    /// Allocate; expect (pool, ips) or a failure reason.
    A(
        R,
        Result<(&'static str, &'static [&'static str]), FailureReason>,
    ),
    /// The change kind of the previous successful allocate.
    Ch(&'static str),
    /// Release; expect the freed addresses.
    Rel(&'static str, &'static [&'static str]),
    /// Replace the pools; expect the evicted Services.
    Pools(Vec<P>, &'static [&'static str]),
    /// Restore status addresses; expect the kept ones and the rejection reasons.
    Restore(
        R,
        &'static [&'static str],
        &'static [&'static str],
        &'static [FailureReason],
    ),
    /// Exact counters: pool, family, assigned, available.
    Count(&'static str, Family, &'static str, &'static str),
    /// Whether an address is quarantined.
    Quar(&'static str, bool),
    /// Rebuild a fresh allocator from the allocations (restore in reverse order, then
    /// allocate every Service again): nothing may change.
    Restart,
}

use S::*;

struct Story {
    name: &'static str,
    pools: Vec<P>,
    cap: usize,
    steps: Vec<S>,
}

type Snapshot = (
    Vec<(ServiceKey, ferrolb_controller::allocator::Allocation)>,
    BTreeMap<String, ferrolb_controller::allocator::PoolCounters>,
    u64,
);

fn snapshot(a: &Allocator) -> Snapshot {
    (a.allocations(), a.all_counters(), a.free_generation())
}

fn change_kind(c: &Change) -> &'static str {
    match c {
        Change::Unchanged => "Unchanged",
        Change::New => "New",
        Change::ToppedUp => "ToppedUp",
        Change::Replaced { .. } => "Replaced",
    }
}

fn run(story: Story) {
    let name = story.name;
    let mut current_pools = story.pools.clone();
    let mut alloc = Allocator::with_quarantine_cap(pools(&story.pools), story.cap);
    let mut reqs: BTreeMap<ServiceKey, ServiceRequest> = BTreeMap::new();
    let mut last_change = None;
    for (i, step) in story.steps.into_iter().enumerate() {
        let at = format!("{name}, step {i}");
        match step {
            A(r, want) => {
                let before = snapshot(&alloc);
                let got = alloc.allocate(&r.req);
                match (got, want) {
                    (Ok(out), Ok((pool, want_ips))) => {
                        assert_eq!(out.allocation.pool, pool, "{at}: {out:?}");
                        assert_eq!(out.allocation.ips, ips(want_ips), "{at}");
                        assert_eq!(alloc.allocation(&r.req.key), Some(out.allocation), "{at}");
                        for ip in ips(want_ips) {
                            assert!(alloc.users(ip).contains(&r.req.key), "{at}");
                        }
                        last_change = Some(out.change);
                        reqs.insert(r.req.key.clone(), r.req);
                    }
                    (Err(e), Err(reason)) => {
                        assert_eq!(e.reason, reason, "{at}: {e}");
                        assert!(!e.message.is_empty(), "{at}");
                        assert_eq!(snapshot(&alloc), before, "{at}: state moved on failure");
                    }
                    (got, want) => panic!("{at}: got {got:?}, want {want:?}"),
                }
            }
            Ch(kind) => {
                let c = last_change.as_ref().expect("no previous allocation");
                assert_eq!(change_kind(c), kind, "{at}: {c:?}");
            }
            Rel(s, freed) => {
                let r = alloc.release(&key(s)).expect("nothing to release");
                assert_eq!(r.freed, ips(freed), "{at}");
                assert!(alloc.allocation(&key(s)).is_none(), "{at}");
            }
            Pools(list, want) => {
                let ev = alloc.set_pools(pools(&list));
                current_pools = list;
                let got: Vec<ServiceKey> = ev.iter().map(|e| e.key.clone()).collect();
                let want: Vec<ServiceKey> = want.iter().map(|s| key(s)).collect();
                assert_eq!(got, want, "{at}");
                for e in &ev {
                    assert!(!e.lost.is_empty(), "{at}");
                    assert!(alloc.allocation(&e.key).is_none(), "{at}");
                }
            }
            Restore(r, status, kept, rejected) => {
                let out = alloc.restore(&r.req, &ips(status));
                let got_kept = out.allocation.map(|a| a.ips).unwrap_or_default();
                assert_eq!(got_kept, ips(kept), "{at}");
                let reasons: Vec<FailureReason> =
                    out.rejected.iter().map(|x| x.error.reason).collect();
                assert_eq!(reasons, rejected, "{at}: {:?}", out.rejected);
                if !kept.is_empty() {
                    reqs.insert(r.req.key.clone(), r.req);
                }
            }
            Count(pool, f, assigned, available) => {
                let c = alloc.counters(pool).expect("unknown pool");
                let fc = if f == Family::V4 { c.v4 } else { c.v6 };
                assert_eq!(fc.assigned.to_string(), assigned, "{at}");
                assert_eq!(fc.available.to_string(), available, "{at}");
            }
            Quar(a, want) => assert_eq!(alloc.is_quarantined(ip(a)), want, "{at}"),
            Restart => {
                let before = alloc.allocations();
                let counters = alloc.all_counters();
                let mut fresh = Allocator::with_quarantine_cap(pools(&current_pools), story.cap);
                for (k, a) in before.iter().rev() {
                    let out = fresh.restore(&reqs[k], &a.ips);
                    assert!(out.rejected.is_empty(), "{at}: {k}: {:?}", out.rejected);
                    assert_eq!(out.allocation.as_ref(), Some(a), "{at}: {k}");
                }
                for (k, a) in &before {
                    let out = fresh.allocate(&reqs[k]).expect("re-allocate after restart");
                    assert_eq!(out.change, Change::Unchanged, "{at}: {k}");
                    assert_eq!(&out.allocation, a, "{at}: {k}");
                }
                assert_eq!(fresh.allocations(), before, "{at}");
                assert_eq!(fresh.all_counters(), counters, "{at}");
                fresh.check_invariants().unwrap();
                alloc = fresh;
            }
        }
        if let Err(e) = alloc.check_invariants() {
            panic!("{at}: invariant broken: {e}");
        }
    }
}

fn story(name: &'static str, pools: Vec<P>, steps: Vec<S>) -> Story {
    Story {
        name,
        pools,
        cap: DEFAULT_QUARANTINE_CAP,
        steps,
    }
}

#[test]
fn v4_lowest_first_quarantine_and_exhaustion() {
    run(story(
        "v4 quarantine",
        vec![pool("a", &["10.0.0.0/29"])],
        vec![
            A(svc("a"), Ok(("a", &["10.0.0.0"]))),
            Ch("New"),
            A(svc("a"), Ok(("a", &["10.0.0.0"]))),
            Ch("Unchanged"),
            A(svc("b"), Ok(("a", &["10.0.0.1"]))),
            A(svc("c"), Ok(("a", &["10.0.0.2"]))),
            Rel("b", &["10.0.0.1"]),
            Quar("10.0.0.1", true),
            Count("a", Family::V4, "2", "6"),
            // A different Service does not get the just-released address...
            A(svc("d"), Ok(("a", &["10.0.0.3"]))),
            // ...but the one that released it gets it back.
            A(svc("b"), Ok(("a", &["10.0.0.1"]))),
            Quar("10.0.0.1", false),
            Rel("a", &["10.0.0.0"]),
            A(svc("e"), Ok(("a", &["10.0.0.4"]))),
            A(svc("f"), Ok(("a", &["10.0.0.5"]))),
            A(svc("g"), Ok(("a", &["10.0.0.6"]))),
            A(svc("h"), Ok(("a", &["10.0.0.7"]))),
            // Nothing fresh left: the oldest quarantined address goes to a newcomer.
            A(svc("i"), Ok(("a", &["10.0.0.0"]))),
            Count("a", Family::V4, "8", "0"),
            A(svc("j"), Err(PoolExhausted)),
            Rel("c", &["10.0.0.2"]),
            Rel("d", &["10.0.0.3"]),
            Count("a", Family::V4, "6", "2"),
            A(svc("j"), Ok(("a", &["10.0.0.2"]))),
            Restart,
            A(svc("k"), Ok(("a", &["10.0.0.3"]))),
        ],
    ));
}

#[test]
fn quarantine_bound() {
    run(Story {
        name: "cap 1",
        pools: vec![pool("a", &["10.0.0.0/29"])],
        cap: 1,
        steps: vec![
            A(svc("a"), Ok(("a", &["10.0.0.0"]))),
            A(svc("b"), Ok(("a", &["10.0.0.1"]))),
            A(svc("c"), Ok(("a", &["10.0.0.2"]))),
            Rel("a", &["10.0.0.0"]),
            Quar("10.0.0.0", true),
            Rel("b", &["10.0.0.1"]),
            // Over the bound: the oldest entry is an ordinary free address again.
            Quar("10.0.0.0", false),
            Quar("10.0.0.1", true),
            A(svc("d"), Ok(("a", &["10.0.0.0"]))),
            A(svc("a"), Ok(("a", &["10.0.0.3"]))),
            A(svc("b"), Ok(("a", &["10.0.0.1"]))),
        ],
    });
    run(Story {
        name: "cap 0 reuses lowest",
        pools: vec![pool("a", &["10.0.0.0/29"])],
        cap: 0,
        steps: vec![
            A(svc("a"), Ok(("a", &["10.0.0.0"]))),
            A(svc("b"), Ok(("a", &["10.0.0.1"]))),
            Rel("a", &["10.0.0.0"]),
            Quar("10.0.0.0", false),
            A(svc("c"), Ok(("a", &["10.0.0.0"]))),
        ],
    });
}

#[test]
fn pool_order_selection_and_priority() {
    let prod = |s: &str, app: &str| svc(s).labels(&[("app", app)]).ns_labels(&[("env", "prod")]);
    run(story(
        "pool order",
        vec![
            pool("z-plain", &["10.1.0.0/24"]),
            pool("a-plain", &["10.2.0.0/24"]),
            pool("manual", &["10.3.0.0/24"]).manual(),
            pool("p0", &["10.4.0.0/24"])
                .priority(0)
                .namespaces(&["prod"]),
            pool("p20", &["10.5.0.0/24"])
                .priority(20)
                .namespaces(&["prod"]),
            pool("p10b", &["10.6.0.0/24"])
                .priority(10)
                .ns_selector("env", "prod"),
            pool("p10a", &["10.7.0.0/30"])
                .priority(10)
                .svc_selector("app", "web"),
            pool("p5-manual", &["10.8.0.0/24"]).priority(5).manual(),
        ],
        vec![
            // Unselective autoAssign pools, by name.
            A(svc("dev/x"), Ok(("a-plain", &["10.2.0.0"]))),
            // Priority 10 twice: the tie goes to the smaller name; manual pools skipped.
            A(prod("prod/web", "web"), Ok(("p10a", &["10.7.0.0"]))),
            A(prod("prod/db", "db"), Ok(("p10b", &["10.6.0.0"]))),
            // Namespace listed but its labels do not match p10b: p20 before p0.
            A(
                svc("prod/db2").labels(&[("app", "db")]),
                Ok(("p20", &["10.5.0.0"])),
            ),
            A(
                svc("other/w2").labels(&[("app", "web")]),
                Ok(("p10a", &["10.7.0.1"])),
            ),
            A(
                svc("other/w3").labels(&[("app", "web")]),
                Ok(("p10a", &["10.7.0.2"])),
            ),
            A(
                svc("other/w4").labels(&[("app", "web")]),
                Ok(("p10a", &["10.7.0.3"])),
            ),
            // Selecting pools exhausted: fall back to unselective ones.
            A(
                svc("other/w5").labels(&[("app", "web")]),
                Ok(("a-plain", &["10.2.0.1"])),
            ),
            // A requested pool ignores autoAssign.
            A(svc("dev/m").pool("manual"), Ok(("manual", &["10.3.0.0"]))),
            A(svc("dev/q").pool("nope"), Err(NoPool)),
            A(svc("dev/r").pool("p20"), Err(NoPool)),
            A(svc("prod/r").pool("p20"), Ok(("p20", &["10.5.0.1"]))),
            A(
                svc("dev/s").ips(&["10.3.0.9"]),
                Ok(("manual", &["10.3.0.9"])),
            ),
            Restart,
        ],
    ));
    run(story(
        "priority 0 is last",
        vec![
            pool("a", &["10.4.0.0/24"]).priority(0),
            pool("b", &["10.5.0.0/24"]).priority(7),
        ],
        vec![A(svc("x"), Ok(("b", &["10.5.0.0"])))],
    ));
    run(story(
        "no pool at all",
        vec![pool("m", &["10.3.0.0/24"]).manual()],
        vec![A(svc("x"), Err(NoPool))],
    ));
}

#[test]
fn requested_ips_and_bad_input() {
    run(story(
        "requested",
        vec![
            pool("a", &["10.0.0.0/24"]).avoid_buggy(),
            pool("m", &["10.9.0.0/24"]).manual(),
            pool("v6", &["fc00::/64"]),
            pool("ns", &["10.8.0.0/24"]).namespaces(&["prod"]),
        ],
        vec![
            A(svc("x").ips(&["10.0.0.5"]), Ok(("a", &["10.0.0.5"]))),
            A(svc("y").ips(&["10.0.0.5"]), Err(RequestedIpUnavailable)),
            A(
                svc("y").ips(&["10.0.0.5"]).share("k"),
                Err(RequestedIpUnavailable),
            ),
            A(svc("y").ips(&["192.168.1.1"]), Err(RequestedIpUnavailable)),
            A(svc("y").ips(&["fc00::1"]), Err(RequestedIpUnavailable)),
            A(svc("y").ips(&["10.0.0.255"]), Err(RequestedIpUnavailable)),
            A(svc("y").ips(&["10.0.0.0"]), Err(RequestedIpUnavailable)),
            A(
                svc("y").ips(&["10.9.0.4"]).pool("a"),
                Err(RequestedIpUnavailable),
            ),
            A(
                svc("y").ips(&["10.9.0.4"]).pool("m"),
                Ok(("m", &["10.9.0.4"])),
            ),
            A(svc("z").ips(&["10.8.0.1"]), Err(RequestedIpUnavailable)),
            A(svc("prod/z").ips(&["10.8.0.1"]), Ok(("ns", &["10.8.0.1"]))),
            A(svc("y2").pool("nope"), Err(NoPool)),
            A(svc("y3").require_dual(), Err(DualStackUnavailable)),
            A(
                svc("y4").require_dual().ips(&["10.0.0.7"]),
                Err(DualStackUnavailable),
            ),
            A(
                svc("y5").require_dual().ips(&["10.0.0.7", "fc00::7"]),
                Err(RequestedIpUnavailable),
            ),
            // A failed request of a Service that holds addresses keeps them.
            A(svc("x").ips(&["10.99.0.1"]), Err(RequestedIpUnavailable)),
            Count("a", Family::V4, "1", "253"),
            // Changing the request moves the Service.
            A(svc("x").ips(&["10.0.0.6"]), Ok(("a", &["10.0.0.6"]))),
            Ch("Replaced"),
            Quar("10.0.0.5", true),
            // An explicit request may take a quarantined address.
            A(svc("w").ips(&["10.0.0.5"]), Ok(("a", &["10.0.0.5"]))),
            // Automatic allocation skips .0 with avoidBuggyIPs.
            A(svc("auto"), Ok(("a", &["10.0.0.1"]))),
            Restart,
        ],
    ));
}

#[test]
fn sharing_keys() {
    let k = |s: &str| svc(s).share("k");
    run(story(
        "sharing",
        vec![pool("a", &["10.0.0.0/28"])],
        vec![
            A(k("s1").tcp(&[80]), Ok(("a", &["10.0.0.0"]))),
            // Automatic allocation co-locates on an address carrying the key.
            A(k("s2").tcp(&[443]), Ok(("a", &["10.0.0.0"]))),
            A(k("s3").tcp(&[80]), Ok(("a", &["10.0.0.1"]))),
            A(k("s4").udp(80), Ok(("a", &["10.0.0.0"]))),
            A(
                k("s5").local("app=x").tcp(&[8080]),
                Ok(("a", &["10.0.0.2"])),
            ),
            A(
                k("s6").local("app=x").tcp(&[9090]),
                Ok(("a", &["10.0.0.2"])),
            ),
            A(svc("plain"), Ok(("a", &["10.0.0.3"]))),
            A(k("s7").ips(&["10.0.0.0"]).tcp(&[443]), Err(SharingConflict)),
            A(
                k("s7").ips(&["10.0.0.0"]).local("app=y").tcp(&[22]),
                Err(SharingConflict),
            ),
            A(
                svc("s7").share("other").ips(&["10.0.0.0"]).tcp(&[22]),
                Err(RequestedIpUnavailable),
            ),
            A(
                k("s7").ips(&["10.0.0.3"]).tcp(&[22]),
                Err(RequestedIpUnavailable),
            ),
            A(
                k("s7").ips(&["10.0.0.0"]).tcp(&[22]),
                Ok(("a", &["10.0.0.0"])),
            ),
            Count("a", Family::V4, "4", "12"),
            Rel("s1", &[]),
            Rel("s2", &[]),
            Rel("s4", &[]),
            Rel("s7", &["10.0.0.0"]),
            // A Service alone on its address may change its key in place.
            A(svc("s3").share("k2").tcp(&[80]), Ok(("a", &["10.0.0.1"]))),
            Ch("Unchanged"),
            A(svc("s8").share("k2").tcp(&[81]), Ok(("a", &["10.0.0.1"]))),
            // A co-tenant changing its ports to collide moves away.
            A(svc("s8").share("k2").tcp(&[80]), Ok(("a", &["10.0.0.4"]))),
            Ch("Replaced"),
            Restart,
        ],
    ));
}

#[test]
fn ipv6_exact_counts() {
    run(story(
        "v6",
        vec![
            pool("v6", &["fc00::/64"]),
            pool("m6", &["fd00::/120"]).manual(),
        ],
        vec![
            A(svc("a").v6(), Ok(("v6", &["fc00::"]))),
            A(svc("b").v6(), Ok(("v6", &["fc00::1"]))),
            Count("v6", Family::V6, "2", "18446744073709551614"),
            Count("v6", Family::V4, "0", "0"),
            A(svc("c").v6().ips(&["fd00::10"]), Ok(("m6", &["fd00::10"]))),
            A(
                svc("d").v6().ips(&["fd00::10"]),
                Err(RequestedIpUnavailable),
            ),
            A(svc("e"), Err(NoPool)),
            Rel("a", &["fc00::"]),
            A(svc("f").v6(), Ok(("v6", &["fc00::2"]))),
            Restart,
        ],
    ));
    run(story(
        "whole v6 space",
        vec![pool("all", &["::/0"])],
        vec![
            A(svc("a").v6(), Ok(("all", &["::"]))),
            Count(
                "all",
                Family::V6,
                "1",
                "340282366920938463463374607431768211455",
            ),
        ],
    ));
}

#[test]
fn dual_stack() {
    run(story(
        "dual",
        vec![
            pool("d", &["10.0.0.0/30", "fc00::/126"]),
            pool("v4only", &["10.1.0.0/24"]),
        ],
        vec![
            A(svc("r").require_dual(), Ok(("d", &["10.0.0.0", "fc00::"]))),
            A(svc("p").prefer_dual(), Ok(("d", &["10.0.0.1", "fc00::1"]))),
            A(svc("s").v6(), Ok(("d", &["fc00::2"]))),
            A(
                svc("q").prefer_dual().families(&[Family::V6, Family::V4]),
                Ok(("d", &["fc00::3", "10.0.0.2"])),
            ),
            A(svc("r2").require_dual(), Err(PoolExhausted)),
            // One family is fine for PreferDualStack: the primary one, from the first pool.
            A(svc("p2").prefer_dual(), Ok(("d", &["10.0.0.3"]))),
            A(
                svc("r3").require_dual().pool("v4only"),
                Err(DualStackUnavailable),
            ),
            Count("d", Family::V6, "4", "0"),
            Pools(
                vec![
                    pool("d", &["10.0.0.0/30", "fc00::/120"]),
                    pool("v4only", &["10.1.0.0/24"]),
                ],
                &[],
            ),
            // The pool gained room: the PreferDualStack Service is topped up in place.
            A(svc("p2").prefer_dual(), Ok(("d", &["10.0.0.3", "fc00::4"]))),
            Ch("ToppedUp"),
            A(svc("r2").require_dual(), Err(PoolExhausted)),
            A(
                svc("v4").prefer_dual().pool("v4only"),
                Ok(("v4only", &["10.1.0.0"])),
            ),
            Restart,
        ],
    ));
    run(story(
        "prefer a pool with both families",
        vec![
            pool("hi", &["10.5.0.0/24"]).priority(1),
            pool("lo", &["10.6.0.0/24", "fc00:6::/64"]).priority(2),
        ],
        vec![
            A(
                svc("p").prefer_dual(),
                Ok(("lo", &["10.6.0.0", "fc00:6::"])),
            ),
            A(svc("s"), Ok(("hi", &["10.5.0.0"]))),
            A(
                svc("r").require_dual(),
                Ok(("lo", &["10.6.0.1", "fc00:6::1"])),
            ),
            A(svc("s6").v6(), Ok(("lo", &["fc00:6::2"]))),
            A(
                svc("rq").require_dual().ips(&["fc00:6::9", "10.6.0.9"]),
                Ok(("lo", &["10.6.0.9", "fc00:6::9"])),
            ),
            // A family change replaces the address; changing back returns the old one.
            A(svc("s").v6(), Ok(("lo", &["fc00:6::3"]))),
            Ch("Replaced"),
            Quar("10.5.0.0", true),
            A(svc("s"), Ok(("hi", &["10.5.0.0"]))),
            Ch("Replaced"),
            Restart,
        ],
    ));
}

#[test]
fn pool_changes() {
    run(story(
        "pools",
        vec![pool("a", &["10.0.0.0/29"]), pool("b", &["10.1.0.0/29"])],
        vec![
            A(svc("x"), Ok(("a", &["10.0.0.0"]))),
            A(svc("y"), Ok(("a", &["10.0.0.1"]))),
            A(svc("z").pool("b"), Ok(("b", &["10.1.0.0"]))),
            A(svc("w").share("k"), Ok(("a", &["10.0.0.2"]))),
            A(svc("w2").share("k").tcp(&[443]), Ok(("a", &["10.0.0.2"]))),
            // Shrink and rename: x and y move with their addresses, w and w2 lose theirs.
            Pools(
                vec![pool("c", &["10.0.0.0/31"]), pool("b", &["10.1.0.0/29"])],
                &["default/w", "default/w2"],
            ),
            Count("c", Family::V4, "2", "0"),
            Count("b", Family::V4, "1", "7"),
            A(svc("x"), Ok(("c", &["10.0.0.0"]))),
            Ch("Unchanged"),
            A(svc("w").share("k"), Ok(("b", &["10.1.0.1"]))),
            A(svc("w2").share("k").tcp(&[443]), Ok(("b", &["10.1.0.1"]))),
            // avoidBuggyIPs switched on: 10.1.0.0 is no longer allocatable.
            Pools(
                vec![
                    pool("c", &["10.0.0.0/31"]),
                    pool("b", &["10.1.0.0/29"]).avoid_buggy(),
                ],
                &["default/z"],
            ),
            A(svc("z").pool("b"), Ok(("b", &["10.1.0.2"]))),
            Restart,
            Pools(
                vec![],
                &[
                    "default/w",
                    "default/w2",
                    "default/x",
                    "default/y",
                    "default/z",
                ],
            ),
            A(svc("x"), Err(NoPool)),
            Pools(vec![pool("a", &["10.0.0.0/29"])], &[]),
            // Quarantine entries outside every pool were dropped: lowest first again.
            A(svc("q"), Ok(("a", &["10.0.0.0"]))),
            A(svc("x"), Ok(("a", &["10.0.0.1"]))),
            Restart,
        ],
    ));
    run(story(
        "dual-stack service split across pools is evicted",
        vec![pool("d", &["10.0.0.0/30", "fc00::/126"])],
        vec![
            A(svc("r").require_dual(), Ok(("d", &["10.0.0.0", "fc00::"]))),
            Pools(
                vec![pool("d4", &["10.0.0.0/30"]), pool("d6", &["fc00::/126"])],
                &["default/r"],
            ),
            A(svc("r").require_dual(), Err(DualStackUnavailable)),
            Pools(vec![pool("d", &["10.0.0.0/30", "fc00::/126"])], &[]),
            A(
                svc("other").require_dual(),
                Ok(("d", &["10.0.0.1", "fc00::1"])),
            ),
            // Its own quarantined addresses come back.
            A(svc("r").require_dual(), Ok(("d", &["10.0.0.0", "fc00::"]))),
        ],
    ));
}

#[test]
fn restore_after_restart() {
    run(story(
        "restore",
        vec![pool("a", &["10.0.0.0/24"]).avoid_buggy()],
        vec![
            Restore(svc("x"), &["10.0.0.5"], &["10.0.0.5"], &[]),
            Restore(svc("x"), &["10.0.0.5"], &["10.0.0.5"], &[]),
            Restore(svc("y"), &["10.0.0.5"], &[], &[RequestedIpUnavailable]),
            Restore(svc("z"), &["10.9.9.9"], &[], &[RequestedIpUnavailable]),
            Restore(svc("u"), &["10.0.0.255"], &[], &[RequestedIpUnavailable]),
            Restore(
                svc("v").prefer_dual(),
                &["10.0.0.6", "fc00::1"],
                &["10.0.0.6"],
                &[RequestedIpUnavailable],
            ),
            Restore(
                svc("v2"),
                &["10.0.0.8", "10.0.0.9"],
                &["10.0.0.8"],
                &[RequestedIpUnavailable],
            ),
            A(svc("v").prefer_dual(), Ok(("a", &["10.0.0.6"]))),
            Ch("Unchanged"),
            A(svc("y"), Ok(("a", &["10.0.0.1"]))),
            A(svc("x"), Ok(("a", &["10.0.0.5"]))),
            Ch("Unchanged"),
            Restore(svc("w").share("k"), &["10.0.0.7"], &["10.0.0.7"], &[]),
            Restore(
                svc("w2").share("k").tcp(&[443]),
                &["10.0.0.7"],
                &["10.0.0.7"],
                &[],
            ),
            Restore(svc("w3").share("k"), &["10.0.0.7"], &[], &[SharingConflict]),
            // Restoring the same address under a changed key is checked again.
            Restore(
                svc("w2").share("k2"),
                &["10.0.0.7"],
                &[],
                &[RequestedIpUnavailable],
            ),
            Restore(
                svc("w2").share("k").tcp(&[443]),
                &["10.0.0.7"],
                &["10.0.0.7"],
                &[],
            ),
            // The status no longer matches the request: re-allocated.
            Restore(
                svc("s").ips(&["10.0.0.10"]),
                &["10.0.0.11"],
                &["10.0.0.11"],
                &[],
            ),
            A(svc("s").ips(&["10.0.0.10"]), Ok(("a", &["10.0.0.10"]))),
            Ch("Replaced"),
            Count("a", Family::V4, "6", "248"),
            Restart,
        ],
    ));
}
