//! Validated, normalised address pools: the controller's view of an IPAddressPool.
//!
//! A [`Pool`] holds its addresses as one [`IntervalSet`] per family, its allocation policy
//! (`autoAssign`, `avoidBuggyIPs`) and its optional [`ServiceAllocation`] constraint
//! (priority, namespaces, namespace and Service selectors). It is built from already parsed
//! parts ([`Pool::new`]), independent of the CRD types. `avoidBuggyIPs` is applied
//! arithmetically (IPv4 addresses ending in `.0` or `.255` are skipped), never by
//! enumerating or splitting the address sets.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::ipset::{AddrCount, Family, IntervalSet, IpRange, addr_from_key, addr_key};
use crate::selector::LabelSelector;

/// True for an IPv4 address ending in `.0` or `.255`, which `avoidBuggyIPs` excludes
/// (some old clients and routers mishandle them). Always false for IPv6.
pub fn is_buggy_v4(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => matches!(a.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// Number of `.0`/`.255` keys in `0..n` (IPv4 keys, `n <= 2^32`).
fn buggy_below(n: u128) -> u128 {
    2 * (n / 256) + u128::from(n % 256 >= 1)
}

/// Number of `.0`/`.255` addresses in an IPv4 range.
fn buggy_in(range: &IpRange) -> u128 {
    let (s, e) = (addr_key(range.start()), addr_key(range.end()));
    buggy_below(e + 1) - buggy_below(s)
}

/// The `serviceAllocation` constraint of a pool: which Services it serves, and its
/// priority among the pools that select a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAllocation {
    /// Lower is preferred; 0 means unset and sorts after every non-zero priority.
    pub priority: u32,
    /// Namespaces whose Services the pool serves (OR with `namespace_selectors`).
    pub namespaces: BTreeSet<String>,
    /// Selectors on Namespace labels (OR with `namespaces`).
    pub namespace_selectors: Vec<LabelSelector>,
    /// Selectors on Service labels; the pool serves Services matching any of them.
    pub service_selectors: Vec<LabelSelector>,
}

impl ServiceAllocation {
    /// True if the namespace part allows namespace `ns` with labels `ns_labels`: no
    /// namespace constraint at all, or `ns` is listed, or any namespace selector matches.
    pub fn selects_namespace(&self, ns: &str, ns_labels: &BTreeMap<String, String>) -> bool {
        (self.namespaces.is_empty() && self.namespace_selectors.is_empty())
            || self.namespaces.contains(ns)
            || self
                .namespace_selectors
                .iter()
                .any(|s| s.matches(ns_labels))
    }

    /// True if the label part allows a Service with `svc_labels`: no Service selector, or
    /// any of them matches.
    pub fn selects_service_labels(&self, svc_labels: &BTreeMap<String, String>) -> bool {
        self.service_selectors.is_empty()
            || self.service_selectors.iter().any(|s| s.matches(svc_labels))
    }
}

/// Allocation policy of a pool, the non-address part of [`Pool::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPolicy {
    /// `autoAssign`: whether Services that asked for nothing specific may get addresses
    /// from this pool. Default true.
    pub auto_assign: bool,
    /// `avoidBuggyIPs`: never hand out IPv4 addresses ending in `.0` or `.255`. Default
    /// false.
    pub avoid_buggy_ips: bool,
    /// `serviceAllocation`, if present (even empty or priority-only).
    pub service_allocation: Option<ServiceAllocation>,
}

impl Default for PoolPolicy {
    fn default() -> PoolPolicy {
        PoolPolicy {
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }
    }
}

/// Why [`Pool::new`] rejected a pool's entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Two `addresses` entries of the same pool share addresses.
    #[error(
        "addresses[{second}] `{second_entry}` overlaps addresses[{first}] `{first_entry}` at {overlap}"
    )]
    OverlappingEntries {
        /// Index of the earlier entry.
        first: usize,
        /// The earlier entry.
        first_entry: IpRange,
        /// Index of the later entry.
        second: usize,
        /// The later entry.
        second_entry: IpRange,
        /// The lowest shared stretch.
        overlap: IpRange,
    },
}

/// A validated address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    name: String,
    v4: IntervalSet,
    v6: IntervalSet,
    auto_assign: bool,
    avoid_buggy_ips: bool,
    service_allocation: Option<ServiceAllocation>,
    /// Cached allocatable IPv4 count (differs from `v4.count()` with `avoid_buggy_ips`).
    allocatable_v4: AddrCount,
}

impl Pool {
    /// Builds a pool from parsed `addresses` entries (see
    /// [`crate::ipset::parse_pool_entry`]) and its policy. Entries may be adjacent (they
    /// merge) but must not overlap: the first overlap is reported with both entry indices.
    /// O(k log k) for k entries, plus O(intervals) once to count allocatable IPv4 addresses.
    pub fn new(
        name: impl Into<String>,
        entries: &[IpRange],
        policy: PoolPolicy,
    ) -> Result<Pool, PoolError> {
        // Per family: start key -> (end key, entry index), of the entries seen so far.
        let mut seen: [BTreeMap<u128, (u128, usize)>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut v4 = IntervalSet::new(Family::V4);
        let mut v6 = IntervalSet::new(Family::V6);
        for (i, entry) in entries.iter().enumerate() {
            let family = entry.family();
            let map = &mut seen[usize::from(family == Family::V6)];
            let (s, e) = (addr_key(entry.start()), addr_key(entry.end()));
            let clash = map
                .range(..=s)
                .next_back()
                .filter(|&(_, &(pe, _))| pe >= s)
                .or_else(|| map.range(s..=e).next())
                .map(|(_, &(_, j))| j);
            if let Some(j) = clash {
                let first_entry = entries[j];
                return Err(PoolError::OverlappingEntries {
                    first: j,
                    first_entry,
                    second: i,
                    second_entry: *entry,
                    overlap: first_entry.intersection(entry).unwrap_or(*entry),
                });
            }
            map.insert(s, (e, i));
            let set = if family == Family::V4 {
                &mut v4
            } else {
                &mut v6
            };
            // The family matches by construction.
            let _ = set.insert_range(*entry);
        }
        let allocatable_v4 = if policy.avoid_buggy_ips {
            v4.iter()
                .map(|r| {
                    // A range of IPv4 keys is at most 2^32 long, so this is exact.
                    let total = r.count().to_u128().unwrap_or(0);
                    AddrCount::from(total - buggy_in(&r))
                })
                .sum()
        } else {
            v4.count()
        };
        Ok(Pool {
            name: name.into(),
            v4,
            v6,
            auto_assign: policy.auto_assign,
            avoid_buggy_ips: policy.avoid_buggy_ips,
            service_allocation: policy.service_allocation,
            allocatable_v4,
        })
    }

    /// The pool's name (the IPAddressPool's `metadata.name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All IPv4 addresses of the pool, including `.0`/`.255` ones.
    pub fn v4(&self) -> &IntervalSet {
        &self.v4
    }

    /// All IPv6 addresses of the pool.
    pub fn v6(&self) -> &IntervalSet {
        &self.v6
    }

    /// All addresses of `family`.
    pub fn addresses(&self, family: Family) -> &IntervalSet {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// True if the pool has at least one address of `family`.
    pub fn has_family(&self, family: Family) -> bool {
        !self.addresses(family).is_empty()
    }

    /// `autoAssign`.
    pub fn auto_assign(&self) -> bool {
        self.auto_assign
    }

    /// `avoidBuggyIPs`.
    pub fn avoid_buggy_ips(&self) -> bool {
        self.avoid_buggy_ips
    }

    /// `serviceAllocation.priority`, 0 when unset or without `serviceAllocation`.
    pub fn priority(&self) -> u32 {
        self.service_allocation.as_ref().map_or(0, |a| a.priority)
    }

    /// The `serviceAllocation` constraint, if any.
    pub fn service_allocation(&self) -> Option<&ServiceAllocation> {
        self.service_allocation.as_ref()
    }

    /// The namespaces listed in `serviceAllocation.namespaces` (empty without one).
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.service_allocation
            .iter()
            .flat_map(|a| a.namespaces.iter().map(String::as_str))
    }

    /// The `serviceAllocation.serviceSelectors` (empty without one).
    pub fn service_selectors(&self) -> &[LabelSelector] {
        self.service_allocation
            .as_ref()
            .map_or(&[], |a| a.service_selectors.as_slice())
    }

    /// True if the pool has a `serviceAllocation` (even an empty or priority-only one).
    ///
    /// Such a pool takes part in the priority-ordered pass over the pools that select a
    /// Service and is left out of the final pass over unselective `autoAssign` pools
    /// (MetalLB's semantics: an empty constraint selects every Service).
    pub fn is_selective(&self) -> bool {
        self.service_allocation.is_some()
    }

    /// True if the pool's namespace constraint allows namespace `ns` with `ns_labels`
    /// (always true without `serviceAllocation`).
    pub fn selects_namespace(&self, ns: &str, ns_labels: &BTreeMap<String, String>) -> bool {
        self.service_allocation
            .as_ref()
            .is_none_or(|a| a.selects_namespace(ns, ns_labels))
    }

    /// True if the pool may serve a Service in namespace `ns` (with Namespace labels
    /// `ns_labels`) carrying `svc_labels`: no `serviceAllocation`, or both its namespace
    /// part (listed namespace OR matching namespace selector, or none given) and its label
    /// part (any matching Service selector, or none given) hold.
    pub fn selects(
        &self,
        ns: &str,
        ns_labels: &BTreeMap<String, String>,
        svc_labels: &BTreeMap<String, String>,
    ) -> bool {
        self.service_allocation.as_ref().is_none_or(|a| {
            a.selects_namespace(ns, ns_labels) && a.selects_service_labels(svc_labels)
        })
    }

    /// True if `addr` is one of the pool's addresses (whether allocatable or not).
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.addresses(Family::of(addr)).contains(addr)
    }

    /// True if `addr` is in the pool and may be handed out (not excluded by
    /// `avoidBuggyIPs`). Requested IPs are checked with this too.
    pub fn is_allocatable(&self, addr: IpAddr) -> bool {
        self.contains(addr) && !(self.avoid_buggy_ips && is_buggy_v4(addr))
    }

    /// Exact number of addresses of `family` in the pool.
    pub fn count(&self, family: Family) -> AddrCount {
        self.addresses(family).count()
    }

    /// Exact number of addresses of `family` that may be handed out, O(1).
    pub fn allocatable_count(&self, family: Family) -> AddrCount {
        match family {
            Family::V4 => self.allocatable_v4,
            Family::V6 => self.v6.count(),
        }
    }

    /// Exact number of allocatable addresses of both families.
    pub fn allocatable_total(&self) -> AddrCount {
        self.allocatable_v4 + self.v6.count()
    }

    /// The lowest address `>= cursor` in `free` that this pool may hand out, wrapping
    /// around to the lowest one of `free` if there is none above the cursor.
    ///
    /// `free` is the caller's set of unused addresses of this pool (normally the pool's
    /// set minus the addresses in use), of the family to allocate from; only the
    /// `avoidBuggyIPs` rule is applied on top. O(log n) plus the number of free ranges
    /// made only of `.0`/`.255` addresses that are skipped.
    pub fn first_allocatable(&self, free: &IntervalSet, cursor: IpAddr) -> Option<IpAddr> {
        self.first_allocatable_from(free, cursor).or_else(|| {
            let first = free.first()?;
            self.first_allocatable_from(free, first)
        })
    }

    fn first_allocatable_from(&self, free: &IntervalSet, from: IpAddr) -> Option<IpAddr> {
        free.ranges_from(from)
            .find_map(|r| self.first_allocatable_in(&r))
    }

    /// The lowest allocatable address of `range` under this pool's policy.
    fn first_allocatable_in(&self, range: &IpRange) -> Option<IpAddr> {
        if !self.avoid_buggy_ips || range.family() == Family::V6 {
            return Some(range.start());
        }
        let (s, e) = (addr_key(range.start()), addr_key(range.end()));
        let x = match s % 256 {
            0 => s + 1,
            255 => s + 2,
            _ => s,
        };
        if x <= e {
            addr_from_key(Family::V4, x)
        } else {
            None
        }
    }

    /// The lowest stretch of addresses this pool shares with `other`, if any (IPv4 first).
    pub fn overlap(&self, other: &Pool) -> Option<IpRange> {
        self.v4
            .overlap(&other.v4)
            .or_else(|| self.v6.overlap(&other.v6))
    }
}

/// Orders pools for the selective allocation pass: non-zero priorities ascending, then
/// priority 0 (unset), ties broken by name so the order is deterministic.
pub fn priority_order(a: &Pool, b: &Pool) -> Ordering {
    let rank = |p: &Pool| (p.priority() == 0, p.priority());
    rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipset::parse_pool_entry;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn entries(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|e| parse_pool_entry(e).unwrap()).collect()
    }

    fn pool(list: &[&str], policy: PoolPolicy) -> Pool {
        Pool::new("p", &entries(list), policy).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector::from_k8s(&metav1::LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        })
        .unwrap()
    }

    fn avoid() -> PoolPolicy {
        PoolPolicy {
            avoid_buggy_ips: true,
            ..PoolPolicy::default()
        }
    }

    #[test]
    fn overlapping_entries_rejected() {
        // entries, expected (first index, second index, overlap)
        type Case<'a> = (&'a [&'a str], Option<(usize, usize, &'a str)>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&["10.0.0.0/24", "10.0.1.0/24"], None),
            (&["10.0.0.0/24", "10.0.0.255-10.0.1.3"], Some((0, 1, "10.0.0.255/32"))),
            (&["10.0.0.0/24", "fc00::/64", "10.0.0.128/25"], Some((0, 2, "10.0.0.128/25"))),
            (&["10.0.1.0/24", "10.0.0.0/16"], Some((0, 1, "10.0.1.0/24"))),
            (&["10.0.0.5-10.0.0.9", "10.0.0.1-10.0.0.5"], Some((0, 1, "10.0.0.5/32"))),
            (&["fc00::/64", "fc00::/64"], Some((0, 1, "fc00::/64"))),
            (&["10.0.0.0/24", "fc00::/120", "fc00::100/120"], None),
            (&["::/0", "0.0.0.0/0"], None),
        ];
        for (list, want) in cases {
            let got = Pool::new("p", &entries(list), PoolPolicy::default());
            match (got, want) {
                (Ok(_), None) => {}
                (
                    Err(PoolError::OverlappingEntries {
                        first,
                        second,
                        overlap,
                        ..
                    }),
                    Some((f, s, o)),
                ) => {
                    assert_eq!(
                        (first, second, overlap.to_string().as_str()),
                        (*f, *s, *o),
                        "{list:?}"
                    );
                }
                (got, want) => panic!("{list:?}: got {got:?}, want {want:?}"),
            }
        }
        let err = Pool::new(
            "p",
            &entries(&["10.0.0.0/24", "10.0.0.7/32"]),
            PoolPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "addresses[1] `10.0.0.7/32` overlaps addresses[0] `10.0.0.0/24` at 10.0.0.7/32"
        );
    }

    #[test]
    fn counts_and_buggy_ips() {
        #[rustfmt::skip]
        let cases: &[(&[&str], bool, &str, &str, &str)] = &[
            // entries, avoid, v4 total, v4 allocatable, v6 allocatable
            (&["10.0.0.0/24"], false, "256", "256", "0"),
            (&["10.0.0.0/24"], true, "256", "254", "0"),
            (&["10.0.0.0/16"], true, "65536", "65024", "0"),
            (&["10.0.0.255-10.0.1.0"], true, "2", "0", "0"),
            (&["10.0.0.250-10.0.1.5"], true, "12", "10", "0"),
            (&["10.0.0.1-10.0.0.254"], true, "254", "254", "0"),
            (&["0.0.0.0/0"], true, "4294967296", "4261412864", "0"),
            (&["10.0.0.0/24", "fc00::/64"], true, "256", "254", "18446744073709551616"),
            (&["::/0"], true, "0", "0", "340282366920938463463374607431768211456"),
        ];
        for (list, avoid_buggy, total4, alloc4, alloc6) in cases {
            let policy = PoolPolicy {
                avoid_buggy_ips: *avoid_buggy,
                ..PoolPolicy::default()
            };
            let p = pool(list, policy);
            assert_eq!(p.count(Family::V4).to_string(), *total4, "{list:?}");
            assert_eq!(
                p.allocatable_count(Family::V4).to_string(),
                *alloc4,
                "{list:?}"
            );
            assert_eq!(
                p.allocatable_count(Family::V6).to_string(),
                *alloc6,
                "{list:?}"
            );
        }
        let p = pool(&["10.0.0.0/23", "fc00::/127"], avoid());
        for (addr, want) in [
            ("10.0.0.0", false),
            ("10.0.0.1", true),
            ("10.0.0.255", false),
            ("10.0.1.0", false),
            ("10.0.1.254", true),
            ("10.0.2.1", false),
            ("fc00::", true),
            ("fc00::1", true),
            ("fc00::2", false),
        ] {
            assert_eq!(p.is_allocatable(ip(addr)), want, "{addr}");
        }
        let plain = pool(&["10.0.0.0/24"], PoolPolicy::default());
        assert!(plain.is_allocatable(ip("10.0.0.0")) && plain.is_allocatable(ip("10.0.0.255")));
    }

    #[test]
    fn first_allocatable_skips_buggy_and_wraps() {
        let p = pool(&["10.0.0.0/23"], avoid());
        let mut free = p.v4().clone();
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.0", Some("10.0.0.1")),
            ("10.0.0.200", Some("10.0.0.200")),
            ("10.0.0.255", Some("10.0.1.1")),
            ("10.0.1.255", Some("10.0.0.1")), // wraps
            ("10.9.9.9", Some("10.0.0.1")),   // beyond the pool: wraps
            ("fc00::1", Some("10.0.0.1")),    // other family after v4: wraps
        ];
        for (cursor, want) in cases {
            assert_eq!(
                p.first_allocatable(&free, ip(cursor)),
                want.map(ip),
                "{cursor}"
            );
        }
        // Leave only .255/.0 pairs and one good address free.
        free =
            IntervalSet::from_ranges(Family::V4, entries(&["10.0.0.255-10.0.1.0", "10.0.0.7/32"]))
                .unwrap();
        assert_eq!(
            p.first_allocatable(&free, ip("10.0.0.8")),
            Some(ip("10.0.0.7"))
        );
        free.remove(ip("10.0.0.7")).unwrap();
        assert_eq!(p.first_allocatable(&free, ip("10.0.0.8")), None);
        let plain = pool(&["10.0.0.0/24"], PoolPolicy::default());
        assert_eq!(
            plain.first_allocatable(plain.v4(), ip("10.0.0.255")),
            Some(ip("10.0.0.255"))
        );
        let v6 = pool(&["fc00::/120"], avoid());
        assert_eq!(
            v6.first_allocatable(v6.v6(), ip("fc00::ff")),
            Some(ip("fc00::ff"))
        );
        assert_eq!(
            v6.first_allocatable(&IntervalSet::new(Family::V6), ip("fc00::")),
            None
        );
    }

    #[test]
    fn selection_table() {
        let ns_prod = labels(&[("env", "prod")]);
        let ns_none = labels(&[]);
        let svc_web = labels(&[("app", "web")]);
        let svc_db = labels(&[("app", "db")]);
        let alloc = |namespaces: &[&str],
                     ns_sel: Vec<LabelSelector>,
                     svc_sel: Vec<LabelSelector>| PoolPolicy {
            service_allocation: Some(ServiceAllocation {
                priority: 0,
                namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
                namespace_selectors: ns_sel,
                service_selectors: svc_sel,
            }),
            ..PoolPolicy::default()
        };
        // name, policy, ns, ns labels, svc labels, selects, selective
        type Labels = BTreeMap<String, String>;
        type Case<'a> = (
            &'a str,
            PoolPolicy,
            &'a str,
            &'a Labels,
            &'a Labels,
            bool,
            bool,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("no constraint", PoolPolicy::default(), "a", &ns_none, &svc_db, true, false),
            ("empty constraint", alloc(&[], vec![], vec![]), "a", &ns_none, &svc_db, true, true),
            ("namespace listed", alloc(&["a"], vec![], vec![]), "a", &ns_none, &svc_db, true, true),
            ("namespace not listed", alloc(&["a"], vec![], vec![]), "b", &ns_none, &svc_db, false, true),
            ("namespace selector", alloc(&[], vec![match_labels(&[("env", "prod")])], vec![]), "b", &ns_prod, &svc_db, true, true),
            ("namespace selector miss", alloc(&[], vec![match_labels(&[("env", "prod")])], vec![]), "b", &ns_none, &svc_db, false, true),
            ("listed OR selector", alloc(&["a"], vec![match_labels(&[("env", "prod")])], vec![]), "a", &ns_none, &svc_db, true, true),
            ("service selector", alloc(&[], vec![], vec![match_labels(&[("app", "web")])]), "a", &ns_none, &svc_web, true, true),
            ("service selector miss", alloc(&[], vec![], vec![match_labels(&[("app", "web")])]), "a", &ns_none, &svc_db, false, true),
            ("any service selector", alloc(&[], vec![], vec![match_labels(&[("app", "x")]), match_labels(&[("app", "db")])]), "a", &ns_none, &svc_db, true, true),
            ("namespace AND labels", alloc(&["a"], vec![], vec![match_labels(&[("app", "web")])]), "b", &ns_none, &svc_web, false, true),
            ("namespace AND labels hit", alloc(&["a"], vec![], vec![match_labels(&[("app", "web")])]), "a", &ns_none, &svc_web, true, true),
        ];
        for (name, policy, ns, ns_labels, svc_labels, selects, selective) in cases {
            let p = pool(&["10.0.0.0/24"], policy);
            assert_eq!(p.selects(ns, ns_labels, svc_labels), selects, "{name}");
            assert_eq!(p.is_selective(), selective, "{name}");
        }
    }

    #[test]
    fn priority_ordering() {
        let with_priority = |name: &str, priority: Option<u32>| {
            let policy = PoolPolicy {
                service_allocation: priority.map(|priority| ServiceAllocation {
                    priority,
                    ..ServiceAllocation::default()
                }),
                ..PoolPolicy::default()
            };
            Pool::new(name, &[], policy).unwrap()
        };
        let mut pools = [
            with_priority("zero", Some(0)),
            with_priority("none", None),
            with_priority("b50", Some(50)),
            with_priority("a50", Some(50)),
            with_priority("ten", Some(10)),
        ];
        pools.sort_by(priority_order);
        let names: Vec<&str> = pools.iter().map(Pool::name).collect();
        assert_eq!(names, ["ten", "a50", "b50", "none", "zero"]);
    }

    #[test]
    fn pool_overlap() {
        let a = pool(&["10.0.0.0/24", "fc00::/64"], PoolPolicy::default());
        let b = pool(&["fc00::ff/128", "10.0.1.0/24"], PoolPolicy::default());
        assert_eq!(
            a.overlap(&b),
            Some(parse_pool_entry("fc00::ff/128").unwrap())
        );
        let c = pool(&["10.0.0.128/25"], PoolPolicy::default());
        assert_eq!(
            a.overlap(&c),
            Some(parse_pool_entry("10.0.0.128/25").unwrap())
        );
        assert_eq!(b.overlap(&c), None);
    }
}
