//! Property tests of `ferrolb_config::ipset` against naive models, on IPv4 and IPv6, with
//! domains placed at the bottom, the middle and the very top of each address space.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_config::ipset::{
    AddrCount, Family, IntervalSet, IpRange, addr_from_key, addr_key, parse_pool_entry,
};
use proptest::prelude::*;

/// Size of the small domains the naive model enumerates.
const DOMAIN: u128 = 48;

fn ip_of(family: Family, key: u128) -> IpAddr {
    addr_from_key(family, key).expect("key inside family")
}

/// A small domain `base..base+DOMAIN` of one family, at an edge or in the middle.
fn domain() -> impl Strategy<Value = (Family, u128)> {
    prop_oneof![Just(Family::V4), Just(Family::V6)].prop_flat_map(|family| {
        let top = family.max_key() - (DOMAIN - 1);
        let mid = family.max_key() / 2 - 7;
        (Just(family), prop_oneof![Just(0u128), Just(mid), Just(top)])
    })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u128, u128),
    Remove(u128, u128),
}

fn op() -> impl Strategy<Value = Op> {
    (any::<bool>(), 0..DOMAIN, 0..DOMAIN, 0u128..6).prop_map(|(ins, a, b, short)| {
        // Mix long ranges and short ones (short ranges make more fragments).
        let (lo, hi) = if short < 3 {
            (a, (a + short).min(DOMAIN - 1))
        } else {
            (a.min(b), a.max(b))
        };
        if ins {
            Op::Insert(lo, hi)
        } else {
            Op::Remove(lo, hi)
        }
    })
}

fn range_of(family: Family, base: u128, lo: u128, hi: u128) -> IpRange {
    IpRange::new(ip_of(family, base + lo), ip_of(family, base + hi)).expect("ordered range")
}

/// Builds a set and its model from ops on the domain.
fn build(family: Family, base: u128, ops: &[Op]) -> (IntervalSet, BTreeSet<u128>) {
    let mut set = IntervalSet::new(family);
    let mut model = BTreeSet::new();
    for op in ops {
        match *op {
            Op::Insert(lo, hi) => {
                set.insert_range(range_of(family, base, lo, hi)).unwrap();
                model.extend(lo..=hi);
            }
            Op::Remove(lo, hi) => {
                set.remove_range(range_of(family, base, lo, hi)).unwrap();
                for k in lo..=hi {
                    model.remove(&k);
                }
            }
        }
    }
    (set, model)
}

/// Checks every observable of `set` against the model.
fn check_against_model(set: &IntervalSet, family: Family, base: u128, model: &BTreeSet<u128>) {
    assert_eq!(set.count(), AddrCount::from(model.len() as u64));
    assert_eq!(set.is_empty(), model.is_empty());
    // Canonical form: ascending, disjoint, non-adjacent.
    let ranges: Vec<IpRange> = set.iter().collect();
    for pair in ranges.windows(2) {
        let gap_start = addr_key(pair[0].end()) + 1;
        assert!(
            gap_start < addr_key(pair[1].start()),
            "not merged: {pair:?}"
        );
    }
    let sum: AddrCount = ranges.iter().map(IpRange::count).sum();
    assert_eq!(sum, set.count());
    for k in 0..DOMAIN {
        let addr = ip_of(family, base + k);
        assert_eq!(set.contains(addr), model.contains(&k), "contains {addr}");
        let want_next = model.range(k..).next().map(|&m| ip_of(family, base + m));
        assert_eq!(
            set.first_at_or_after(addr),
            want_next,
            "first_at_or_after {addr}"
        );
        let want_wrap = want_next.or_else(|| model.first().map(|&m| ip_of(family, base + m)));
        assert_eq!(set.first_at_or_after_wrapping(addr), want_wrap);
        let want_prev = model
            .range(..=k)
            .next_back()
            .map(|&m| ip_of(family, base + m));
        assert_eq!(
            set.last_at_or_before(addr),
            want_prev,
            "last_at_or_before {addr}"
        );
        let from: Vec<u128> = set
            .ranges_from(addr)
            .flat_map(|r| (addr_key(r.start())..=addr_key(r.end())).map(|x| x - base))
            .collect();
        let want_from: Vec<u128> = model.range(k..).copied().collect();
        assert_eq!(from, want_from, "ranges_from {addr}");
        if let Some(r) = set.range_containing(addr) {
            assert!(r.contains(addr));
        }
    }
    for (i, &m) in model.iter().enumerate() {
        assert_eq!(
            set.nth(i as u128),
            Some(ip_of(family, base + m)),
            "nth({i})"
        );
    }
    assert_eq!(set.nth(model.len() as u128), None);
    assert_eq!(set.first(), model.first().map(|&m| ip_of(family, base + m)));
    assert_eq!(set.last(), model.last().map(|&m| ip_of(family, base + m)));
}

fn model_to_set(family: Family, base: u128, model: &BTreeSet<u128>) -> IntervalSet {
    let mut set = IntervalSet::new(family);
    for &k in model {
        set.insert(ip_of(family, base + k)).unwrap();
    }
    set
}

/// An arbitrary range anywhere in a family, biased towards the edges of the space.
fn any_range(family: Family) -> impl Strategy<Value = IpRange> {
    let max = family.max_key();
    let key = prop_oneof![
        Just(0u128),
        Just(max),
        0..=max,
        (0u128..1000).prop_map(move |d| max - d),
        0u128..1000,
    ];
    (key.clone(), key).prop_map(move |(a, b)| {
        IpRange::new(ip_of(family, a.min(b)), ip_of(family, a.max(b))).unwrap()
    })
}

fn any_family_ranges() -> impl Strategy<Value = (Family, Vec<IpRange>)> {
    prop_oneof![Just(Family::V4), Just(Family::V6)]
        .prop_flat_map(|f| (Just(f), proptest::collection::vec(any_range(f), 0..12)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ops_agree_with_model(
        (family, base) in domain(),
        ops in proptest::collection::vec(op(), 0..24),
    ) {
        let (set, model) = build(family, base, &ops);
        check_against_model(&set, family, base, &model);
        // Structural equality: the same members always give the same representation.
        prop_assert_eq!(&set, &model_to_set(family, base, &model));
    }

    #[test]
    fn insert_remove_report_changes(
        (family, base) in domain(),
        ops in proptest::collection::vec(op(), 0..12),
        (lo, hi) in (0..DOMAIN, 0..DOMAIN),
    ) {
        let (mut set, model) = build(family, base, &ops);
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let range = range_of(family, base, lo, hi);
        let missing = (lo..=hi).filter(|k| !model.contains(k)).count() as u64;
        let before = set.count();
        prop_assert_eq!(set.insert_range(range).unwrap(), AddrCount::from(missing));
        prop_assert!(set.contains_range(&range));
        prop_assert_eq!(set.remove_range(range).unwrap(), AddrCount::from(hi - lo + 1));
        let present = (hi - lo + 1) as u64 - missing;
        prop_assert_eq!(set.count().checked_add(AddrCount::from(present)), Some(before));
        prop_assert!(set.ranges_from(range.start()).all(|r| !r.overlaps(&range)));
    }

    #[test]
    fn set_algebra_matches_model(
        (family, base) in domain(),
        ops_a in proptest::collection::vec(op(), 0..16),
        ops_b in proptest::collection::vec(op(), 0..16),
    ) {
        let (a, ma) = build(family, base, &ops_a);
        let (b, mb) = build(family, base, &ops_b);
        let union = a.union(&b).unwrap();
        let inter = a.intersection(&b);
        let diff = a.difference(&b);
        let m_union: BTreeSet<u128> = ma.union(&mb).copied().collect();
        let m_inter: BTreeSet<u128> = ma.intersection(&mb).copied().collect();
        let m_diff: BTreeSet<u128> = ma.difference(&mb).copied().collect();
        check_against_model(&union, family, base, &m_union);
        check_against_model(&inter, family, base, &m_inter);
        check_against_model(&diff, family, base, &m_diff);
        // Laws.
        prop_assert_eq!(&union, &b.union(&a).unwrap());
        prop_assert_eq!(&inter, &b.intersection(&a));
        prop_assert_eq!(&diff.union(&inter).unwrap(), &a);
        prop_assert!(diff.intersection(&b).is_empty());
        prop_assert_eq!(union.count() + inter.count(), a.count() + b.count());
        prop_assert_eq!(&union.difference(&b), &diff);
        // In-place forms agree with the functional ones.
        let mut c = a.clone();
        let added = c.union_with(&b).unwrap();
        prop_assert_eq!(&c, &union);
        prop_assert_eq!(a.count() + added, union.count());
        let mut d = a.clone();
        let removed = d.subtract(&b);
        prop_assert_eq!(&d, &diff);
        prop_assert_eq!(removed, inter.count());
        // overlap is the lowest maximal range of the intersection.
        prop_assert_eq!(a.overlap(&b), inter.iter().next());
        prop_assert_eq!(b.overlap(&a), inter.iter().next());
    }

    #[test]
    fn merged_count_is_sum_of_disjoint_parts((family, ranges) in any_family_ranges()) {
        let set = IntervalSet::from_ranges(family, ranges.iter().copied()).unwrap();
        let parts: AddrCount = set.iter().map(|r| r.count()).sum();
        prop_assert_eq!(parts, set.count());
        prop_assert!(set.count() <= family.size());
        for r in &ranges {
            prop_assert!(set.contains_range(r));
            prop_assert!(set.contains(r.start()) && set.contains(r.end()));
        }
        // Complement within the full space.
        let complement = IntervalSet::full(family).difference(&set);
        prop_assert_eq!(complement.count() + set.count(), family.size());
        prop_assert_eq!(complement.overlap(&set), None);
        prop_assert_eq!(complement.union(&set).unwrap(), IntervalSet::full(family));
        // Removing every range empties the set.
        let mut emptied = set.clone();
        for r in &ranges {
            emptied.remove_range(*r).unwrap();
        }
        prop_assert!(emptied.is_empty());
        prop_assert_eq!(emptied.count(), AddrCount::ZERO);
    }

    #[test]
    fn split_then_merge_is_identity(
        family in prop_oneof![Just(Family::V4), Just(Family::V6)],
        seed in any::<(u128, u128, u128)>(),
    ) {
        let max = family.max_key();
        let pick = |x: u128| if family == Family::V4 { x % (max + 1) } else { x };
        let mut keys = [pick(seed.0), pick(seed.1)];
        keys.sort();
        let range = IpRange::new(ip_of(family, keys[0]), ip_of(family, keys[1])).unwrap();
        let at = ip_of(family, pick(seed.2));
        let (lo, hi) = range.split_at(at);
        let mut merged = IntervalSet::new(family);
        let mut total = AddrCount::ZERO;
        for part in [lo, hi].into_iter().flatten() {
            total += part.count();
            merged.insert_range(part).unwrap();
        }
        prop_assert_eq!(total, range.count());
        prop_assert_eq!(merged, IntervalSet::from_range(range));
        if let Some(lo) = lo {
            prop_assert!(addr_key(lo.end()) < addr_key(at));
        }
        if let Some(hi) = hi {
            prop_assert!(addr_key(hi.start()) >= addr_key(at));
        }
    }

    #[test]
    fn cidrs_cover_range_minimally(range in prop_oneof![any_range(Family::V4), any_range(Family::V6)]) {
        let cidrs = range.to_cidrs();
        let bits = range.family().bits();
        let mut covered = IntervalSet::new(range.family());
        let mut total = AddrCount::ZERO;
        for net in &cidrs {
            let part = IpRange::from_network(*net);
            prop_assert_eq!(net.ip(), net.network(), "canonical");
            total += part.count();
            covered.insert_range(part).unwrap();
        }
        prop_assert_eq!(total, range.count(), "no double cover");
        prop_assert_eq!(covered, IntervalSet::from_range(range));
        // Minimal: no two neighbouring blocks are buddies of one larger aligned block.
        for pair in cidrs.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.prefix() == b.prefix() && a.prefix() > 0 {
                let size_bits = bits - u32::from(a.prefix());
                let parent_bits = size_bits + 1;
                let aligned = parent_bits >= 128 || addr_key(a.ip()).is_multiple_of(1u128 << parent_bits);
                prop_assert!(!aligned, "{a} and {b} should merge");
            }
        }
        prop_assert!(cidrs.len() <= 2 * bits as usize);
        prop_assert_eq!(range.as_cidr().is_some(), cidrs.len() == 1);
    }

    #[test]
    fn display_parses_back(range in prop_oneof![any_range(Family::V4), any_range(Family::V6)]) {
        prop_assert_eq!(parse_pool_entry(&range.to_string()), Ok(range));
        let spaced = format!("  {} - {}  ", range.start(), range.end());
        prop_assert_eq!(parse_pool_entry(&spaced), Ok(range));
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = parse_pool_entry(&s);
    }

    #[test]
    fn parse_never_panics_near_valid(s in "[0-9a-f:./ -]{0,40}") {
        if let Ok(range) = parse_pool_entry(&s) {
            prop_assert!(addr_key(range.start()) <= addr_key(range.end()));
        }
    }

    #[test]
    fn count_text_round_trips(hi in any::<u128>(), lo in any::<u128>(), shift in 0u32..129) {
        let n = if shift == 128 { AddrCount::ZERO } else { AddrCount::from(hi >> shift) };
        let n = (0..128).fold(n, |acc, _| acc + acc) + AddrCount::from(lo);
        prop_assert_eq!(n.to_string().parse::<AddrCount>(), Ok(n));
        if let Some(v) = n.to_u128() {
            prop_assert_eq!(n.to_string(), v.to_string());
        }
    }
}

#[test]
fn exact_counts_at_the_big_edges() {
    let cases: &[(&str, AddrCount, Option<u128>)] = &[
        ("0.0.0.0/0", AddrCount::pow2(32), Some(1 << 32)),
        ("::/0", AddrCount::pow2(128), None),
        ("2001:db8::/64", AddrCount::pow2(64), Some(1 << 64)),
        ("2001:db8::/48", AddrCount::pow2(80), Some(1 << 80)),
        ("::/1", AddrCount::pow2(127), Some(1 << 127)),
        ("::1/128", AddrCount::ONE, Some(1)),
        ("255.255.255.255/32", AddrCount::ONE, Some(1)),
    ];
    for (entry, want, as_u128) in cases {
        let range = parse_pool_entry(entry).unwrap();
        assert_eq!(range.count(), *want, "{entry}");
        assert_eq!(range.count().to_u128(), *as_u128, "{entry}");
        let set = IntervalSet::from_range(range);
        assert_eq!(set.count(), *want, "{entry}");
    }
    // Two halves of ::/0 merge into one interval counting 2^128.
    let mut set = IntervalSet::new(Family::V6);
    set.insert_range(parse_pool_entry("8000::/1").unwrap())
        .unwrap();
    set.insert_range(parse_pool_entry("::/1").unwrap()).unwrap();
    assert_eq!(set.range_count(), 1);
    assert_eq!(
        set.count().to_string(),
        "340282366920938463463374607431768211456"
    );
    assert_eq!(set, IntervalSet::full(Family::V6));
    // nth reaches the last address of ::/0.
    let full = IntervalSet::full(Family::V6);
    assert_eq!(full.nth(u128::MAX), Some(ip_of(Family::V6, u128::MAX)));
    assert_eq!(full.nth(0), Some(ip_of(Family::V6, 0)));
    // Single-address sets at both ends of both families.
    for family in Family::ALL {
        for key in [0, family.max_key()] {
            let addr = ip_of(family, key);
            let set = IntervalSet::from_range(IpRange::single(addr));
            assert_eq!(set.count(), AddrCount::ONE);
            assert_eq!(set.first(), Some(addr));
            assert_eq!(set.last(), Some(addr));
            assert_eq!(set.first_at_or_after_wrapping(addr), Some(addr));
            let full = IntervalSet::full(family);
            assert_eq!(
                full.difference(&set).count() + AddrCount::ONE,
                family.size()
            );
        }
    }
}
