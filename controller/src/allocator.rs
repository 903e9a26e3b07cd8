//! Pure IP allocation engine: which addresses each LoadBalancer Service holds.
//!
//! No I/O, no clocks, no async: the reconciler feeds in pools ([`Allocator::set_pools`]),
//! Service requests ([`Allocator::allocate`]), status addresses after a restart
//! ([`Allocator::restore`]) and deletions ([`Allocator::release`]), and writes back what
//! it is told.
//!
//! # Data model
//! Per pool and family the never-recently-used free addresses are an [`IntervalSet`]
//! (the pool minus addresses in use minus quarantined ones), so taking the lowest free
//! address, freeing one and "is it free" cost O(log n) in the number of intervals; a /64
//! costs what a /24 costs and no range is ever enumerated. Addresses in use are a hash map
//! from address to its users (several only when shared). Counters are exact
//! ([`AddrCount`]).
//!
//! # Order of choice ([`Allocator::allocate`])
//! 1. Addresses the Service already holds, while still valid for its request (see
//!    [`Allocator::allocate`]); a dual-stack Service missing a family is topped up from
//!    the same pool.
//! 2. Requested addresses (`loadBalancerIPs` / `spec.loadBalancerIP`): the pool is the one
//!    containing them (`autoAssign: false` allowed; with an `address-pool` annotation the
//!    two must agree); `avoidBuggyIPs` and the pool's `serviceAllocation` apply.
//! 3. The requested pool (`address-pool`), `autoAssign` ignored.
//! 4. Pools with a `serviceAllocation` that select the Service and have `autoAssign`, by
//!    ascending priority with 0 last, **ties broken by pool name** (MetalLB picks at
//!    random); then pools without `serviceAllocation` and with `autoAssign`, by name.
//!
//! Within a pool, per family: the Service's own quarantined address, then (with a sharing
//! key) the lowest address already carrying that key that it may share (at most
//! [`SHARE_SCAN_LIMIT`] examined), then the lowest never-recently-used free address, then
//! the oldest quarantined address.
//!
//! # Sharing
//! Services share an address only with the same non-empty sharing key, the same backend
//! key (empty for ETP Cluster, the pod selector for ETP Local) and no (protocol, port) in
//! common. A Service alone on an address may change its key in place.
//!
//! # Dual-stack
//! SingleStack takes the first of `ipFamilies`. RequireDualStack takes both families from
//! one pool or fails with [`FailureReason::DualStackUnavailable`] (no serving pool has
//! both) or [`FailureReason::PoolExhausted`]. PreferDualStack takes the first pool, in the
//! order above, that can give both; otherwise the first that can give the primary family,
//! otherwise the first that can give the other one.
//!
//! # Stability and quarantine
//! An address whose last user leaves goes to a FIFO quarantine of its pool and family,
//! bounded by [`Allocator::quarantine_cap`] entries ([`DEFAULT_QUARANTINE_CAP`] = 256 per
//! pool and family). Quarantined addresses count as available but are handed to other
//! Services only when the pool has no other free address, oldest first; the Service that
//! released an address gets it back first when it asks again (also after a delete and
//! re-create under the same name). When more than `cap` addresses are quarantined the
//! oldest becomes an ordinary free address. Order is a logical counter, never a clock.
//!
//! # Failures
//! A failed [`Allocator::allocate`] changes nothing: not the Service's previous
//! addresses, not anyone else's, not the counters.

mod quarantine;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ferrolb_config::ipset::{AddrCount, Family, IntervalSet};
use ferrolb_config::pool::{Pool, priority_order};
use ferrolb_config::service::{IpFamilyPolicy, LbRequest, PortKey};

pub use types::{
    AllocError, AllocOutcome, Allocation, Change, Evicted, FailureReason, FamilyCounters,
    PoolCounters, RejectedIp, Released, RestoreOutcome, ServiceKey, ServiceRequest,
};

use quarantine::Quarantine;

/// Default bound of the quarantine of recently released addresses, per pool and family.
pub const DEFAULT_QUARANTINE_CAP: usize = 256;

/// At most this many addresses carrying a Service's sharing key are examined for
/// co-location per pool and family, so an allocation stays O(log n) even when thousands
/// of addresses carry one key and none fits (co-location is best effort, as in MetalLB;
/// a requested address forces it).
pub const SHARE_SCAN_LIMIT: usize = 64;

fn fidx(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// What decides whether two Services may share an address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShareMeta {
    sharing_key: Option<String>,
    backend_key: String,
    ports: Vec<PortKey>,
}

impl ShareMeta {
    fn of(lb: &LbRequest) -> ShareMeta {
        let mut ports = lb.ports.clone();
        ports.sort();
        ports.dedup();
        ShareMeta {
            sharing_key: lb.sharing_key.clone().filter(|k| !k.is_empty()),
            backend_key: lb.backend_key.clone(),
            ports,
        }
    }
}

fn describe_backend(key: &str) -> String {
    if key.is_empty() {
        "externalTrafficPolicy Cluster".to_owned()
    } else {
        format!("externalTrafficPolicy Local with selector `{key}`")
    }
}

/// First element common to two sorted slices.
fn first_common(a: &[PortKey], b: &[PortKey]) -> Option<PortKey> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return Some(a[i]),
        }
    }
    None
}

/// The families to allocate for a request, primary first.
fn wanted_families(lb: &LbRequest) -> Vec<Family> {
    let mut fams: Vec<Family> = Vec::with_capacity(2);
    for f in &lb.ip_families {
        if !fams.contains(f) {
            fams.push(*f);
        }
    }
    if fams.is_empty() {
        fams.push(Family::V4);
    }
    match lb.ip_family_policy {
        IpFamilyPolicy::SingleStack => fams.truncate(1),
        IpFamilyPolicy::RequireDualStack if fams.len() < 2 => fams.push(fams[0].other()),
        _ => {}
    }
    fams
}

fn family_list(fams: &[Family]) -> String {
    fams.iter()
        .map(|f| f.as_k8s_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone)]
struct Assignment {
    pool: usize,
    ips: Vec<IpAddr>,
    meta: ShareMeta,
}

#[derive(Debug, Clone)]
struct IpUse {
    pool: usize,
    users: Vec<ServiceKey>,
}

#[derive(Debug, Clone)]
struct FamilyState {
    /// Addresses neither in use nor quarantined (`.0`/`.255` included; skipped on pick).
    fresh: IntervalSet,
    quarantine: Quarantine,
    /// Distinct addresses in use.
    assigned: u128,
}

#[derive(Debug, Clone)]
struct PoolState {
    pool: Pool,
    fam: [FamilyState; 2],
}

impl PoolState {
    fn new(pool: Pool) -> PoolState {
        let fam = |f: Family| FamilyState {
            fresh: pool.addresses(f).clone(),
            quarantine: Quarantine::default(),
            assigned: 0,
        };
        let fam = [fam(Family::V4), fam(Family::V6)];
        PoolState { pool, fam }
    }
}

fn build_pools(pools: impl IntoIterator<Item = Pool>) -> Vec<PoolState> {
    let by_name: BTreeMap<String, Pool> = pools
        .into_iter()
        .map(|p| (p.name().to_owned(), p))
        .collect();
    by_name.into_values().map(PoolState::new).collect()
}

/// The first pool (by name) that may hand out `ip`.
fn home(pools: &[PoolState], ip: IpAddr) -> Option<usize> {
    pools.iter().position(|p| p.pool.is_allocatable(ip))
}

/// The allocation state of every pool and Service. See the module documentation.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// Sorted by name, names unique.
    pools: Vec<PoolState>,
    services: HashMap<ServiceKey, Assignment>,
    ips: HashMap<IpAddr, IpUse>,
    /// Sharing key -> addresses whose users carry it.
    by_sharing_key: HashMap<String, BTreeSet<IpAddr>>,
    /// Previous user -> its quarantined addresses.
    quarantined_by_owner: HashMap<ServiceKey, Vec<IpAddr>>,
    quarantine_cap: usize,
    seq: u64,
    free_generation: u64,
}

/// A planned allocation: pool index and addresses.
type Plan = (usize, Vec<IpAddr>);

impl Allocator {
    /// An allocator over `pools` (a later pool with the same name replaces an earlier
    /// one) with the default quarantine bound.
    pub fn new(pools: impl IntoIterator<Item = Pool>) -> Allocator {
        Allocator::with_quarantine_cap(pools, DEFAULT_QUARANTINE_CAP)
    }

    /// An allocator whose quarantine holds at most `cap` released addresses per pool and
    /// family (0 disables the quarantine: released addresses are reused lowest first).
    pub fn with_quarantine_cap(pools: impl IntoIterator<Item = Pool>, cap: usize) -> Allocator {
        Allocator {
            pools: build_pools(pools),
            services: HashMap::new(),
            ips: HashMap::new(),
            by_sharing_key: HashMap::new(),
            quarantined_by_owner: HashMap::new(),
            quarantine_cap: cap,
            seq: 0,
            free_generation: 0,
        }
    }

    /// The quarantine bound per pool and family.
    pub fn quarantine_cap(&self) -> usize {
        self.quarantine_cap
    }

    /// The pools, by name.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.iter().map(|p| &p.pool)
    }

    /// Number of Services holding addresses.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// What `key` holds.
    pub fn allocation(&self, key: &ServiceKey) -> Option<Allocation> {
        self.services.get(key).map(|a| self.to_allocation(a))
    }

    /// Every Service's allocation, sorted by Service.
    pub fn allocations(&self) -> Vec<(ServiceKey, Allocation)> {
        let mut all: Vec<_> = self
            .services
            .iter()
            .map(|(k, a)| (k.clone(), self.to_allocation(a)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The Services holding `ip` (several only when shared), in the order they got it.
    pub fn users(&self, ip: IpAddr) -> &[ServiceKey] {
        self.ips.get(&ip).map_or(&[], |u| u.users.as_slice())
    }

    /// True if a pool may hand out `ip` and no Service holds it (quarantined addresses
    /// are free).
    pub fn is_free(&self, ip: IpAddr) -> bool {
        !self.ips.contains_key(&ip) && home(&self.pools, ip).is_some()
    }

    /// True if `ip` is free but in quarantine after a recent release.
    pub fn is_quarantined(&self, ip: IpAddr) -> bool {
        self.pools
            .iter()
            .any(|p| p.fam[fidx(Family::of(ip))].quarantine.contains(ip))
    }

    /// Incremented whenever an address becomes free or the pools change: a caller that
    /// remembers the value when a Service failed retries it once the value moved.
    pub fn free_generation(&self) -> u64 {
        self.free_generation
    }

    /// Exact usage of pool `name`.
    pub fn counters(&self, name: &str) -> Option<PoolCounters> {
        self.pool_index(name).map(|i| self.pool_counters(i))
    }

    /// Exact usage of every pool, by name.
    pub fn all_counters(&self) -> BTreeMap<String, PoolCounters> {
        (0..self.pools.len())
            .map(|i| (self.pools[i].pool.name().to_owned(), self.pool_counters(i)))
            .collect()
    }

    fn pool_counters(&self, i: usize) -> PoolCounters {
        let ps = &self.pools[i];
        let fam = |f: Family| {
            let assigned = AddrCount::from(ps.fam[fidx(f)].assigned);
            FamilyCounters {
                assigned,
                available: ps
                    .pool
                    .allocatable_count(f)
                    .checked_sub(assigned)
                    .unwrap_or(AddrCount::ZERO),
            }
        };
        PoolCounters {
            v4: fam(Family::V4),
            v6: fam(Family::V6),
        }
    }

    fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools
            .binary_search_by(|p| p.pool.name().cmp(name))
            .ok()
    }

    fn to_allocation(&self, a: &Assignment) -> Allocation {
        Allocation {
            pool: self.pools[a.pool].pool.name().to_owned(),
            ips: a.ips.clone(),
        }
    }

    fn selects(&self, i: usize, req: &ServiceRequest) -> bool {
        self.pools[i]
            .pool
            .selects(&req.key.namespace, &req.namespace_labels, &req.labels)
    }

    fn pool_name(&self, i: usize) -> &str {
        self.pools[i].pool.name()
    }

    fn pool_list(&self, list: &[usize]) -> String {
        list.iter()
            .map(|&i| format!("`{}`", self.pool_name(i)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether Service `me` with `meta` may hold `ip` next to its current users.
    fn check_sharing(
        &self,
        me: &ServiceKey,
        meta: &ShareMeta,
        ip: IpAddr,
    ) -> Result<(), AllocError> {
        let Some(u) = self.ips.get(&ip) else {
            return Ok(());
        };
        for other in u.users.iter().filter(|k| *k != me) {
            let Some(oa) = self.services.get(other) else {
                continue;
            };
            let unavailable = |why: String| {
                Err(AllocError::new(
                    FailureReason::RequestedIpUnavailable,
                    format!("{ip} is in use by {other}{why}"),
                ))
            };
            match (&meta.sharing_key, &oa.meta.sharing_key) {
                (Some(a), Some(b)) if a == b => {}
                (None, _) => {
                    return unavailable(format!(" and {me} has no sharing key (allow-shared-ip)"));
                }
                (Some(_), None) => return unavailable(", which does not allow sharing".into()),
                (Some(a), Some(b)) => {
                    return unavailable(format!(" with sharing key `{b}`, not `{a}`"));
                }
            }
            if oa.meta.backend_key != meta.backend_key {
                return Err(AllocError::new(
                    FailureReason::SharingConflict,
                    format!(
                        "{ip} is shared by {other} with {}, but {me} has {}",
                        describe_backend(&oa.meta.backend_key),
                        describe_backend(&meta.backend_key)
                    ),
                ));
            }
            if let Some(p) = first_common(&meta.ports, &oa.meta.ports) {
                return Err(AllocError::new(
                    FailureReason::SharingConflict,
                    format!("port {p} on {ip} is already used by {other}"),
                ));
            }
        }
        Ok(())
    }

    /// The address of family `f` that pool `p` would give Service `me`, without changing
    /// anything.
    fn pick(&self, me: &ServiceKey, meta: &ShareMeta, p: usize, f: Family) -> Option<IpAddr> {
        let ps = &self.pools[p];
        let fs = &ps.fam[fidx(f)];
        if let Some(own) = self.quarantined_by_owner.get(me)
            && let Some(ip) = own
                .iter()
                .copied()
                .filter(|ip| Family::of(*ip) == f && fs.quarantine.contains(*ip))
                .min()
        {
            return Some(ip);
        }
        if let Some(key) = &meta.sharing_key
            && let Some(set) = self.by_sharing_key.get(key)
        {
            let mut examined = 0;
            for &ip in set {
                if Family::of(ip) != f {
                    continue;
                }
                let Some(u) = self.ips.get(&ip) else { continue };
                if u.pool != p || u.users.iter().all(|k| k == me) {
                    continue;
                }
                if self.check_sharing(me, meta, ip).is_ok() {
                    return Some(ip);
                }
                examined += 1;
                if examined >= SHARE_SCAN_LIMIT {
                    break;
                }
            }
        }
        if let Some(start) = fs.fresh.first()
            && let Some(ip) = ps.pool.first_allocatable(&fs.fresh, start)
        {
            return Some(ip);
        }
        fs.quarantine.oldest()
    }

    /// Pools to try for an automatic allocation, in order.
    fn candidates(&self, req: &ServiceRequest) -> Result<Vec<usize>, AllocError> {
        let me = &req.key;
        if let Some(name) = &req.lb.pool {
            let Some(i) = self.pool_index(name) else {
                return Err(AllocError::new(
                    FailureReason::NoPool,
                    format!("requested pool `{name}` does not exist"),
                ));
            };
            if !self.selects(i, req) {
                return Err(AllocError::new(
                    FailureReason::NoPool,
                    format!("requested pool `{name}` does not serve {me} (serviceAllocation)"),
                ));
            }
            return Ok(vec![i]);
        }
        let n = self.pools.len();
        let mut list: Vec<usize> = (0..n)
            .filter(|&i| {
                let p = &self.pools[i].pool;
                p.is_selective() && p.auto_assign() && self.selects(i, req)
            })
            .collect();
        list.sort_by(|&a, &b| priority_order(&self.pools[a].pool, &self.pools[b].pool));
        list.extend((0..n).filter(|&i| {
            let p = &self.pools[i].pool;
            !p.is_selective() && p.auto_assign()
        }));
        if list.is_empty() {
            return Err(AllocError::new(
                FailureReason::NoPool,
                format!("no autoAssign address pool serves {me}"),
            ));
        }
        Ok(list)
    }

    fn plan_auto(&self, req: &ServiceRequest, meta: &ShareMeta) -> Result<Plan, AllocError> {
        let me = &req.key;
        let cands = self.candidates(req)?;
        let fams = wanted_families(&req.lb);
        let has = |p: usize, f: Family| self.pools[p].pool.has_family(f);
        let with_any: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&p| fams.iter().any(|&f| has(p, f)))
            .collect();
        if with_any.is_empty() {
            return Err(AllocError::new(
                FailureReason::NoPool,
                format!(
                    "no pool serving {me} has {} addresses (serving pools: {})",
                    fams.iter()
                        .map(|f| f.as_k8s_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    self.pool_list(&cands)
                ),
            ));
        }
        match req.lb.ip_family_policy {
            IpFamilyPolicy::RequireDualStack => {
                let both: Vec<usize> = with_any
                    .iter()
                    .copied()
                    .filter(|&p| fams.iter().all(|&f| has(p, f)))
                    .collect();
                if both.is_empty() {
                    let desc = with_any
                        .iter()
                        .map(|&p| {
                            let f = if has(p, Family::V4) { "IPv4" } else { "IPv6" };
                            format!("`{}` ({f} only)", self.pool_name(p))
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(AllocError::new(
                        FailureReason::DualStackUnavailable,
                        format!(
                            "RequireDualStack needs IPv4 and IPv6 from one pool, but no pool serving {me} has both: {desc}"
                        ),
                    ));
                }
                for &p in &both {
                    let picks: Option<Vec<IpAddr>> =
                        fams.iter().map(|&f| self.pick(me, meta, p, f)).collect();
                    if let Some(ips) = picks {
                        return Ok((p, ips));
                    }
                }
                Err(AllocError::new(
                    FailureReason::PoolExhausted,
                    format!(
                        "no free IPv4 and IPv6 pair for {me} in dual-stack pools {}",
                        self.pool_list(&both)
                    ),
                ))
            }
            IpFamilyPolicy::SingleStack => {
                let f = fams[0];
                for &p in &with_any {
                    if let Some(ip) = self.pick(me, meta, p, f) {
                        return Ok((p, vec![ip]));
                    }
                }
                Err(AllocError::new(
                    FailureReason::PoolExhausted,
                    format!(
                        "no free {f} address for {me} in pools {}",
                        self.pool_list(&with_any)
                    ),
                ))
            }
            IpFamilyPolicy::PreferDualStack => {
                let mut partial: [Option<Plan>; 2] = [None, None];
                for &p in &with_any {
                    let picks: Vec<Option<IpAddr>> =
                        fams.iter().map(|&f| self.pick(me, meta, p, f)).collect();
                    if picks.iter().all(Option::is_some) {
                        return Ok((p, picks.into_iter().flatten().collect()));
                    }
                    for (i, ip) in picks.into_iter().enumerate() {
                        if let Some(ip) = ip
                            && partial[i].is_none()
                        {
                            partial[i] = Some((p, vec![ip]));
                        }
                    }
                }
                let [primary, secondary] = partial;
                primary.or(secondary).ok_or_else(|| {
                    AllocError::new(
                        FailureReason::PoolExhausted,
                        format!(
                            "no free {} address for {me} in pools {}",
                            fams.iter()
                                .map(|f| f.as_k8s_str())
                                .collect::<Vec<_>>()
                                .join(" or "),
                            self.pool_list(&with_any)
                        ),
                    )
                })
            }
        }
    }

    fn plan_requested(&self, req: &ServiceRequest, meta: &ShareMeta) -> Result<Plan, AllocError> {
        let me = &req.key;
        let fams = wanted_families(&req.lb);
        let unavailable =
            |msg: String| Err(AllocError::new(FailureReason::RequestedIpUnavailable, msg));
        let mut pool: Option<usize> = None;
        let mut ips: Vec<IpAddr> = Vec::with_capacity(2);
        for &ip in &req.lb.requested_ips {
            let f = Family::of(ip);
            if !fams.contains(&f) {
                return unavailable(format!(
                    "requested {ip} is {f} but {me} allocates [{}]",
                    family_list(&fams)
                ));
            }
            if let Some(first) = ips.iter().find(|a| Family::of(**a) == f) {
                return unavailable(format!(
                    "requested {ip} and {first} are both {f}; at most one per family"
                ));
            }
            let Some(p) = self.pools.iter().position(|ps| ps.pool.contains(ip)) else {
                return unavailable(format!("requested {ip} is outside every address pool"));
            };
            let name = self.pool_name(p);
            if let Some(want) = &req.lb.pool
                && want != name
            {
                return unavailable(format!(
                    "requested {ip} is in pool `{name}` but {me} asks for pool `{want}`"
                ));
            }
            if let Some(q) = pool
                && q != p
            {
                return unavailable(format!(
                    "requested {} and {ip} are in different pools `{}` and `{name}`; they must come from one pool",
                    ips[0],
                    self.pool_name(q)
                ));
            }
            if !self.selects(p, req) {
                return unavailable(format!(
                    "requested {ip} is in pool `{name}`, which does not serve {me} (serviceAllocation)"
                ));
            }
            if !self.pools[p].pool.is_allocatable(ip) {
                return unavailable(format!(
                    "requested {ip} ends in .0 or .255 and pool `{name}` has avoidBuggyIPs"
                ));
            }
            self.check_sharing(me, meta, ip)?;
            pool = Some(p);
            ips.push(ip);
        }
        let Some(p) = pool else {
            return unavailable(format!("{me} requests no address"));
        };
        if req.lb.ip_family_policy == IpFamilyPolicy::RequireDualStack && ips.len() < 2 {
            return Err(AllocError::new(
                FailureReason::DualStackUnavailable,
                format!(
                    "RequireDualStack needs one requested address per family, but {me} requests only {}",
                    ips[0]
                ),
            ));
        }
        ips.sort_by_key(|ip| fams.iter().position(|f| *f == Family::of(*ip)));
        Ok((p, ips))
    }

    /// If the Service's current addresses still fit its request, the families it lacks
    /// (to top up from the same pool); `None` if they must be replaced.
    fn check_current(
        &self,
        req: &ServiceRequest,
        meta: &ShareMeta,
        a: &Assignment,
    ) -> Option<Vec<Family>> {
        let lb = &req.lb;
        let fams = wanted_families(lb);
        let held: Vec<Family> = a.ips.iter().map(|ip| Family::of(*ip)).collect();
        if held.is_empty()
            || held.iter().any(|f| !fams.contains(f))
            || (held.len() == 2 && held[0] == held[1])
        {
            return None;
        }
        let pool = &self.pools[a.pool].pool;
        if !lb.requested_ips.is_empty() {
            let mut want = lb.requested_ips.clone();
            let mut have = a.ips.clone();
            want.sort();
            have.sort();
            if want != have {
                return None;
            }
        }
        if let Some(want) = &lb.pool
            && want != pool.name()
        {
            return None;
        }
        if !self.selects(a.pool, req) {
            return None;
        }
        if lb.ip_family_policy == IpFamilyPolicy::SingleStack && held != fams[..1] {
            return None;
        }
        for &ip in &a.ips {
            if !pool.is_allocatable(ip) || self.check_sharing(&req.key, meta, ip).is_err() {
                return None;
            }
        }
        if !lb.requested_ips.is_empty() {
            if lb.ip_family_policy == IpFamilyPolicy::RequireDualStack && held.len() < 2 {
                return None;
            }
            return Some(Vec::new());
        }
        Some(fams.into_iter().filter(|f| !held.contains(f)).collect())
    }

    /// Gives Service `req.key` addresses for its request, or tells why it cannot.
    ///
    /// Idempotent: a Service whose current addresses still fit its request keeps them
    /// ([`Change::Unchanged`]), and one missing a family of a dual-stack request is topped
    /// up from the same pool ([`Change::ToppedUp`]). Current addresses fit when they are of
    /// the wanted families (SingleStack: exactly the first one), equal the requested
    /// addresses if any, are in the requested pool if any, their pool still selects the
    /// Service (a later `autoAssign: false` does not evict), and their co-tenants still
    /// allow sharing. Otherwise the Service gets a new allocation as described in the
    /// module documentation ([`Change::New`] or [`Change::Replaced`], the old addresses
    /// being released). Requested addresses are given exactly as requested, without a
    /// dual-stack top-up.
    ///
    /// On error nothing changes, including the Service's previous addresses: the caller
    /// decides whether to [`Allocator::release`] them.
    pub fn allocate(&mut self, req: &ServiceRequest) -> Result<AllocOutcome, AllocError> {
        let me = &req.key;
        let meta = ShareMeta::of(&req.lb);
        if let Some(a) = self.services.get(me)
            && let Some(missing) = self.check_current(req, &meta, a)
        {
            let pool = a.pool;
            let mut ips = a.ips.clone();
            let before = ips.len();
            for f in missing {
                if let Some(ip) = self.pick(me, &meta, pool, f) {
                    ips.push(ip);
                }
            }
            let dual_ok =
                req.lb.ip_family_policy != IpFamilyPolicy::RequireDualStack || ips.len() >= 2;
            if dual_ok {
                let change = if ips.len() == before {
                    Change::Unchanged
                } else {
                    Change::ToppedUp
                };
                let freed = self.commit(me, meta, pool, ips);
                let allocation = self.allocation(me).unwrap_or_else(|| Allocation {
                    pool: String::new(),
                    ips: Vec::new(),
                });
                return Ok(AllocOutcome {
                    allocation,
                    change,
                    freed,
                });
            }
        }
        let (pool, ips) = if req.lb.requested_ips.is_empty() {
            self.plan_auto(req, &meta)?
        } else {
            self.plan_requested(req, &meta)?
        };
        let previous = self.allocation(me);
        let freed = self.commit(me, meta, pool, ips);
        let allocation = self.allocation(me).unwrap_or_else(|| Allocation {
            pool: String::new(),
            ips: Vec::new(),
        });
        let change = match previous {
            None => Change::New,
            Some(p) if p == allocation => Change::Unchanged,
            Some(previous) => Change::Replaced { previous },
        };
        Ok(AllocOutcome {
            allocation,
            change,
            freed,
        })
    }

    /// Takes back the addresses a Service's status lists, after a restart or for a
    /// Service seen for the first time. Never moves an address: each one is kept if a pool
    /// may still hand it out, it is the only one of its family, it is in the same pool as
    /// the others kept, and its co-tenants allow sharing (the first Service restored wins a
    /// conflict). The others are returned in [`RestoreOutcome::rejected`] for the caller to
    /// clear and re-allocate. Restoring the same addresses again changes nothing. Whether
    /// the kept addresses still fit the request (families, requested IPs or pool, pool
    /// selectors) is checked by the following [`Allocator::allocate`].
    pub fn restore(&mut self, req: &ServiceRequest, ips: &[IpAddr]) -> RestoreOutcome {
        let me = &req.key;
        let meta = ShareMeta::of(&req.lb);
        if let Some(a) = self.services.get(me) {
            let mut want: Vec<IpAddr> = ips.to_vec();
            want.sort();
            want.dedup();
            let mut have = a.ips.clone();
            have.sort();
            if want == have && a.meta == meta {
                return RestoreOutcome {
                    allocation: Some(self.to_allocation(a)),
                    rejected: Vec::new(),
                };
            }
        }
        let mut pool: Option<usize> = None;
        let mut kept: Vec<IpAddr> = Vec::with_capacity(2);
        let mut rejected = Vec::new();
        for &ip in ips {
            if kept.contains(&ip) {
                continue;
            }
            let f = Family::of(ip);
            let reject = |msg: String| RejectedIp {
                ip,
                error: AllocError::new(FailureReason::RequestedIpUnavailable, msg),
            };
            if let Some(first) = kept.iter().find(|a| Family::of(**a) == f) {
                rejected.push(reject(format!(
                    "status of {me} lists a second {f} address {ip} after {first}"
                )));
                continue;
            }
            let Some(p) = self.pools.iter().position(|ps| ps.pool.contains(ip)) else {
                rejected.push(reject(format!(
                    "{ip} of {me} is no longer in any address pool"
                )));
                continue;
            };
            let name = self.pool_name(p);
            if !self.pools[p].pool.is_allocatable(ip) {
                rejected.push(reject(format!(
                    "{ip} of {me} ends in .0 or .255 and pool `{name}` has avoidBuggyIPs"
                )));
                continue;
            }
            if let Some(q) = pool
                && q != p
            {
                rejected.push(reject(format!(
                    "{ip} of {me} is in pool `{name}` but {} is in pool `{}`",
                    kept[0],
                    self.pool_name(q)
                )));
                continue;
            }
            if let Err(error) = self.check_sharing(me, &meta, ip) {
                rejected.push(RejectedIp { ip, error });
                continue;
            }
            pool = Some(p);
            kept.push(ip);
        }
        match pool {
            Some(p) => {
                self.commit(me, meta, p, kept);
            }
            None => {
                self.release(me);
            }
        }
        RestoreOutcome {
            allocation: self.allocation(me),
            rejected,
        }
    }

    /// Releases everything `key` holds (Service deleted, no longer a LoadBalancer, or of
    /// another class). Addresses nobody else uses become free (quarantined first).
    pub fn release(&mut self, key: &ServiceKey) -> Option<Released> {
        let a = self.services.remove(key)?;
        let allocation = self.to_allocation(&a);
        let freed: Vec<IpAddr> = a
            .ips
            .iter()
            .copied()
            .filter(|&ip| self.detach(ip, key, a.meta.sharing_key.as_deref()))
            .collect();
        if !freed.is_empty() {
            self.free_generation += 1;
        }
        Some(Released { allocation, freed })
    }

    /// Replaces the pools. Assignments whose addresses a new pool may hand out are moved
    /// to it (by name, the pool containing the address); Services with an address no pool
    /// may hand out any more, or whose addresses now fall in two pools, are released and
    /// returned (sorted by Service) for the caller to clear and re-allocate. Their
    /// addresses still inside a pool are quarantined for them, so re-allocating gives them
    /// back. Counters are recomputed exactly.
    pub fn set_pools(&mut self, pools: impl IntoIterator<Item = Pool>) -> Vec<Evicted> {
        let new = build_pools(pools);
        let mut doomed: Vec<(ServiceKey, Vec<IpAddr>)> = Vec::new();
        for (k, a) in &self.services {
            let homes: Vec<Option<usize>> = a.ips.iter().map(|&ip| home(&new, ip)).collect();
            let first = homes.iter().flatten().next().copied();
            let lost: Vec<IpAddr> = a
                .ips
                .iter()
                .zip(&homes)
                .filter(|(_, h)| h.is_none() || **h != first)
                .map(|(ip, _)| *ip)
                .collect();
            if !lost.is_empty() {
                doomed.push((k.clone(), lost));
            }
        }
        doomed.sort();
        let mut evicted = Vec::with_capacity(doomed.len());
        for (key, lost) in doomed {
            if let Some(r) = self.release(&key) {
                evicted.push(Evicted {
                    key,
                    previous: r.allocation,
                    lost,
                });
            }
        }
        let old = std::mem::replace(&mut self.pools, new);
        for (&ip, u) in self.ips.iter_mut() {
            // Every address still in use has a home: otherwise all its users were evicted.
            let Some(p) = home(&self.pools, ip) else {
                continue;
            };
            u.pool = p;
            let fs = &mut self.pools[p].fam[fidx(Family::of(ip))];
            let _ = fs.fresh.remove(ip);
            fs.assigned += 1;
        }
        for a in self.services.values_mut() {
            if let Some(u) = a.ips.first().and_then(|ip| self.ips.get(ip)) {
                a.pool = u.pool;
            }
        }
        let mut entries: Vec<(u64, IpAddr, ServiceKey)> = old
            .iter()
            .flat_map(|ps| ps.fam.iter())
            .flat_map(|fs| fs.quarantine.entries())
            .map(|(seq, ip, owner)| (seq, ip, owner.clone()))
            .collect();
        entries.sort();
        self.quarantined_by_owner.clear();
        for (seq, ip, owner) in entries {
            if self.ips.contains_key(&ip) {
                continue;
            }
            let Some(p) = home(&self.pools, ip) else {
                continue;
            };
            self.quarantined_by_owner
                .entry(owner.clone())
                .or_default()
                .push(ip);
            let fs = &mut self.pools[p].fam[fidx(Family::of(ip))];
            let _ = fs.fresh.remove(ip);
            let overflow = fs.quarantine.push(ip, owner, seq, self.quarantine_cap);
            if let Some((back, who)) = overflow {
                let _ = fs.fresh.insert(back);
                self.unown(&who, back);
            }
        }
        self.free_generation += 1;
        evicted
    }

    /// Makes `me` hold exactly `ips` from pool `pool` with `meta`; returns the addresses
    /// that became free.
    fn commit(
        &mut self,
        me: &ServiceKey,
        meta: ShareMeta,
        pool: usize,
        ips: Vec<IpAddr>,
    ) -> Vec<IpAddr> {
        let old = self.services.remove(me);
        let mut freed = Vec::new();
        let new_key = meta.sharing_key.clone();
        if let Some(old) = &old {
            for &ip in &old.ips {
                if ips.contains(&ip) {
                    if old.meta.sharing_key != new_key {
                        self.unindex(ip, me, old.meta.sharing_key.as_deref());
                    }
                } else if self.detach(ip, me, old.meta.sharing_key.as_deref()) {
                    freed.push(ip);
                }
            }
        }
        for &ip in &ips {
            if !old.as_ref().is_some_and(|o| o.ips.contains(&ip)) {
                self.attach(ip, me, pool);
            }
            if let Some(k) = &new_key {
                self.by_sharing_key.entry(k.clone()).or_default().insert(ip);
            }
        }
        self.services
            .insert(me.clone(), Assignment { pool, ips, meta });
        if !freed.is_empty() {
            self.free_generation += 1;
        }
        freed
    }

    /// Adds `me` as a user of `ip` (in pool `pool`), taking it out of the free set or the
    /// quarantine if nobody held it.
    fn attach(&mut self, ip: IpAddr, me: &ServiceKey, pool: usize) {
        if let Some(u) = self.ips.get_mut(&ip) {
            if !u.users.contains(me) {
                u.users.push(me.clone());
            }
            return;
        }
        let fs = &mut self.pools[pool].fam[fidx(Family::of(ip))];
        let was_fresh = fs.fresh.remove(ip).unwrap_or(false);
        let owner = if was_fresh {
            None
        } else {
            fs.quarantine.take(ip)
        };
        fs.assigned += 1;
        if let Some(owner) = owner {
            self.unown(&owner, ip);
        }
        self.ips.insert(
            ip,
            IpUse {
                pool,
                users: vec![me.clone()],
            },
        );
    }

    /// Removes `me` from the users of `ip`; if nobody is left, quarantines the address
    /// for `me` and returns true.
    fn detach(&mut self, ip: IpAddr, me: &ServiceKey, key: Option<&str>) -> bool {
        let Some(u) = self.ips.get_mut(&ip) else {
            return false;
        };
        u.users.retain(|k| k != me);
        if !u.users.is_empty() {
            return false;
        }
        let pool = u.pool;
        self.ips.remove(&ip);
        self.unindex(ip, me, key);
        self.seq += 1;
        self.quarantined_by_owner
            .entry(me.clone())
            .or_default()
            .push(ip);
        let (seq, cap) = (self.seq, self.quarantine_cap);
        let fs = &mut self.pools[pool].fam[fidx(Family::of(ip))];
        fs.assigned = fs.assigned.saturating_sub(1);
        let overflow = fs.quarantine.push(ip, me.clone(), seq, cap);
        if let Some((back, who)) = overflow {
            let _ = fs.fresh.insert(back);
            self.unown(&who, back);
        }
        true
    }

    /// Drops `ip` from the index of sharing key `key` unless a user other than `me`
    /// still carries that key.
    fn unindex(&mut self, ip: IpAddr, me: &ServiceKey, key: Option<&str>) {
        let Some(key) = key else { return };
        let still = self.ips.get(&ip).is_some_and(|u| {
            u.users.iter().any(|k| {
                k != me
                    && self
                        .services
                        .get(k)
                        .is_some_and(|a| a.meta.sharing_key.as_deref() == Some(key))
            })
        });
        if still {
            return;
        }
        if let Some(set) = self.by_sharing_key.get_mut(key) {
            set.remove(&ip);
            if set.is_empty() {
                self.by_sharing_key.remove(key);
            }
        }
    }

    fn unown(&mut self, owner: &ServiceKey, ip: IpAddr) {
        if let Some(list) = self.quarantined_by_owner.get_mut(owner) {
            list.retain(|a| *a != ip);
            if list.is_empty() {
                self.quarantined_by_owner.remove(owner);
            }
        }
    }

    /// Checks every internal invariant (free, quarantined and used addresses partition
    /// each pool; counters, users, indexes and assignments agree; co-tenants may share).
    /// O(total size of the state); meant for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut used = [vec![0u128; self.pools.len()], vec![0u128; self.pools.len()]];
        for (&ip, u) in &self.ips {
            let f = fidx(Family::of(ip));
            let ps = self
                .pools
                .get(u.pool)
                .ok_or(format!("{ip}: pool index {} out of range", u.pool))?;
            if !ps.pool.is_allocatable(ip) {
                return Err(format!(
                    "{ip} in use but not allocatable in `{}`",
                    ps.pool.name()
                ));
            }
            if ps.fam[f].fresh.contains(ip) || ps.fam[f].quarantine.contains(ip) {
                return Err(format!("{ip} in use and free"));
            }
            if u.users.is_empty() {
                return Err(format!("{ip} in use by nobody"));
            }
            used[f][u.pool] += 1;
            for (i, k) in u.users.iter().enumerate() {
                let a = self
                    .services
                    .get(k)
                    .ok_or(format!("{ip}: user {k} has no assignment"))?;
                if !a.ips.contains(&ip) || a.pool != u.pool {
                    return Err(format!("{ip}: user {k} disagrees"));
                }
                if let Some(key) = &a.meta.sharing_key
                    && !self
                        .by_sharing_key
                        .get(key)
                        .is_some_and(|s| s.contains(&ip))
                {
                    return Err(format!("{ip}: not indexed under `{key}`"));
                }
                for other in &u.users[..i] {
                    let b = &self.services[other];
                    let ok = a.meta.sharing_key.is_some()
                        && a.meta.sharing_key == b.meta.sharing_key
                        && a.meta.backend_key == b.meta.backend_key
                        && first_common(&a.meta.ports, &b.meta.ports).is_none();
                    if !ok {
                        return Err(format!(
                            "{ip} held by {k} and {other} without valid sharing"
                        ));
                    }
                }
            }
        }
        for (k, a) in &self.services {
            for ip in &a.ips {
                if !self.ips.get(ip).is_some_and(|u| u.users.contains(k)) {
                    return Err(format!("{k} holds {ip} but is not its user"));
                }
            }
        }
        for (i, ps) in self.pools.iter().enumerate() {
            for f in Family::ALL {
                let fs = &ps.fam[fidx(f)];
                if fs.assigned != used[fidx(f)][i] {
                    return Err(format!(
                        "`{}` {f}: counter {} but {} in use",
                        ps.pool.name(),
                        fs.assigned,
                        used[fidx(f)][i]
                    ));
                }
                let total = fs.fresh.count()
                    + AddrCount::from(fs.quarantine.len() as u128)
                    + AddrCount::from(fs.assigned);
                if total != ps.pool.count(f) {
                    return Err(format!("`{}` {f}: partition broken", ps.pool.name()));
                }
                if fs.quarantine.len() > self.quarantine_cap {
                    return Err(format!(
                        "`{}` {f}: quarantine over its bound",
                        ps.pool.name()
                    ));
                }
                for (_, ip, owner) in fs.quarantine.entries() {
                    if fs.fresh.contains(ip) || !ps.pool.is_allocatable(ip) {
                        return Err(format!("{ip} quarantined and fresh or not allocatable"));
                    }
                    if !self
                        .quarantined_by_owner
                        .get(owner)
                        .is_some_and(|l| l.contains(&ip))
                    {
                        return Err(format!("{ip} quarantined for {owner} but not indexed"));
                    }
                }
            }
        }
        for (owner, list) in &self.quarantined_by_owner {
            for ip in list {
                let ok = self
                    .pools
                    .iter()
                    .any(|ps| ps.fam[fidx(Family::of(*ip))].quarantine.owner(*ip) == Some(owner));
                if !ok {
                    return Err(format!("{owner} indexed for {ip} which it does not own"));
                }
            }
        }
        for (key, set) in &self.by_sharing_key {
            for ip in set {
                let ok = self.ips.get(ip).is_some_and(|u| {
                    u.users
                        .iter()
                        .any(|k| self.services[k].meta.sharing_key.as_deref() == Some(key.as_str()))
                });
                if !ok {
                    return Err(format!("{ip} indexed under `{key}` but no user carries it"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_config::service::{Protocol, TrafficPolicy};

    fn port(protocol: Protocol, port: u16) -> PortKey {
        PortKey { protocol, port }
    }

    #[test]
    fn common_ports() {
        let (t80, t443, u80) = (
            port(Protocol::Tcp, 80),
            port(Protocol::Tcp, 443),
            port(Protocol::Udp, 80),
        );
        #[rustfmt::skip]
        let cases: &[(&[PortKey], &[PortKey], Option<PortKey>)] = &[
            (&[], &[], None),
            (&[t80], &[u80], None),
            (&[t80, t443], &[t443], Some(t443)),
            (&[t80, u80], &[t443, u80], Some(u80)),
        ];
        for (a, b, want) in cases {
            assert_eq!(first_common(a, b), *want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn families_per_policy() {
        let lb = |policy, fams: &[Family]| LbRequest {
            pool: None,
            requested_ips: Vec::new(),
            requested_ips_path: None,
            sharing_key: None,
            ip_family_policy: policy,
            ip_families: fams.to_vec(),
            traffic_policy: TrafficPolicy::Cluster,
            ports: Vec::new(),
            backend_key: String::new(),
        };
        use Family::{V4, V6};
        use IpFamilyPolicy::*;
        #[rustfmt::skip]
        let cases: &[(IpFamilyPolicy, &[Family], &[Family])] = &[
            (SingleStack, &[], &[V4]),
            (SingleStack, &[V6, V4], &[V6]),
            (PreferDualStack, &[V6], &[V6]),
            (PreferDualStack, &[V6, V4], &[V6, V4]),
            (RequireDualStack, &[V6], &[V6, V4]),
            (RequireDualStack, &[V4, V4], &[V4, V6]),
            (RequireDualStack, &[], &[V4, V6]),
        ];
        for (policy, given, want) in cases {
            assert_eq!(
                wanted_families(&lb(*policy, given)),
                *want,
                "{policy:?} {given:?}"
            );
        }
    }

    #[test]
    fn backend_descriptions() {
        assert_eq!(describe_backend(""), "externalTrafficPolicy Cluster");
        assert_eq!(
            describe_backend("app=web"),
            "externalTrafficPolicy Local with selector `app=web`"
        );
    }
}
