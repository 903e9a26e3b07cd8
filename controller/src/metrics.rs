//! Prometheus metrics of the controller: a shared registry ([`Metrics`]) the reconciler
//! updates after each batch, and the pure text exposition ([`render`], format 0.0.4).
//!
//! # Series
//! | name | type | labels |
//! |---|---|---|
//! | `ferrolb_pool_addresses_total` | gauge | `pool`, `family` |
//! | `ferrolb_pool_addresses_used` | gauge | `pool`, `family` |
//! | `ferrolb_pool_addresses_free` | gauge | `pool`, `family` |
//! | `ferrolb_allocations_total` | counter | `pool`, `family` |
//! | `ferrolb_allocation_failures_total` | counter | `reason` |
//! | `ferrolb_releases_total` | counter | |
//! | `ferrolb_reconcile_duration_seconds` | histogram | |
//! | `ferrolb_services_pending` | gauge | |
//! | `ferrolb_config_valid` | gauge | |
//! | `ferrolb_leader` | gauge | |
//! | `ferrolb_api_write_errors_total` | counter | `write` |
//!
//! Pool gauges are exact address counts (an IPv6 pool may hold up to 2^128 addresses) and
//! are written as exact decimal integers. Prometheus parses every sample value as a
//! float64, so counts beyond 2^53 arrive rounded to 53 significant bits; the text itself
//! stays exact for other readers. Pool gauges and the pending count describe the leader's
//! allocator: a standby exports no pool series and 0 pending.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrolb_config::ipset::{AddrCount, Family};

use crate::allocator::PoolCounters;

/// Upper bounds (seconds) of the `ferrolb_reconcile_duration_seconds` buckets.
pub const RECONCILE_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every reason a Service's allocation can fail with (the `reason` of its
/// `ferrolb.io/LoadBalancerReady=False` condition); each is exported from the start, at 0.
pub const FAILURE_REASONS: [&str; 6] = [
    "NoPool",
    "PoolExhausted",
    "RequestedIPUnavailable",
    "SharingConflict",
    "DualStackUnavailable",
    "InvalidRequest",
];

/// The kinds of API writes the reconciler performs (label `write` of
/// `ferrolb_api_write_errors_total`).
pub const WRITE_KINDS: [&str; 4] = ["ServiceMetadata", "ServiceStatus", "Event", "ConfigStatus"];

/// Usage of one family of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    /// Addresses the pool may hand out.
    pub total: AddrCount,
    /// Distinct addresses held by at least one Service.
    pub used: AddrCount,
    /// Addresses still available.
    pub free: AddrCount,
}

/// A histogram with fixed bucket bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds, ascending (`+Inf` is implied).
    pub bounds: Vec<f64>,
    /// Observations per bucket, not cumulative: `counts[i]` holds those in
    /// `(bounds[i-1], bounds[i]]`; the last entry (index `bounds.len()`) those above every
    /// bound.
    pub counts: Vec<u64>,
    /// Sum of the observations.
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram with `bounds` (sorted and deduplicated here; NaN bounds are
    /// dropped).
    pub fn new(bounds: &[f64]) -> Histogram {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|v| !v.is_nan()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let n = b.len() + 1;
        Histogram {
            bounds: b,
            counts: vec![0; n],
            sum: 0.0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Every value the controller exports, as of one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Usage per (pool, family).
    pub pools: BTreeMap<(String, Family), PoolUsage>,
    /// Addresses assigned to Services per (pool, family).
    pub allocations: BTreeMap<(String, Family), u64>,
    /// Failed allocations per condition reason.
    pub failures: BTreeMap<String, u64>,
    /// Allocations given up (Service deleted or no longer ours, failure after holding
    /// addresses, eviction by a pool change, replacement).
    pub releases: u64,
    /// Duration of a reconcile batch (decision plus writes).
    pub reconcile: Histogram,
    /// Managed Services without addresses.
    pub services_pending: u64,
    /// The newest configuration built without errors.
    pub config_valid: bool,
    /// This replica holds the lease.
    pub leader: bool,
    /// Failed API writes per kind of write.
    pub write_errors: BTreeMap<String, u64>,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            pools: BTreeMap::new(),
            allocations: BTreeMap::new(),
            failures: FAILURE_REASONS
                .iter()
                .map(|r| ((*r).to_owned(), 0))
                .collect(),
            releases: 0,
            reconcile: Histogram::new(&RECONCILE_BUCKETS),
            services_pending: 0,
            config_valid: false,
            leader: false,
            write_errors: WRITE_KINDS.iter().map(|k| ((*k).to_owned(), 0)).collect(),
        }
    }
}

/// Counts of decisions since the last time they were taken (see
/// [`crate::reconcile::state::State::take_counts`]), added to the registry's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Addresses assigned per (pool, family).
    pub allocations: BTreeMap<(String, Family), u64>,
    /// Failures per condition reason.
    pub failures: BTreeMap<String, u64>,
    /// Allocations released.
    pub releases: u64,
}

impl Counts {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty() && self.failures.is_empty() && self.releases == 0
    }
}

/// The shared registry: cheap to clone (one `Arc`), safe to update from the reconciler
/// and read from the HTTP endpoint at once.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Snapshot>>,
}

impl Metrics {
    /// A registry with every counter at 0.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of every value.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// The Prometheus text exposition (format 0.0.4) of every value.
    pub fn render(&self) -> String {
        render(&self.lock())
    }

    /// Adds decision counts to the counters.
    pub fn add(&self, counts: &Counts) {
        if counts.is_empty() {
            return;
        }
        let mut s = self.lock();
        for (k, n) in &counts.allocations {
            *s.allocations.entry(k.clone()).or_default() += n;
        }
        for (r, n) in &counts.failures {
            *s.failures.entry(r.clone()).or_default() += n;
        }
        s.releases += counts.releases;
    }

    /// Replaces the pool gauges with the allocator's counters. A family a pool has no
    /// address of is left out.
    pub fn set_pools(&self, counters: &BTreeMap<String, PoolCounters>) {
        let mut pools = BTreeMap::new();
        for (name, c) in counters {
            for (family, fc) in [(Family::V4, c.v4), (Family::V6, c.v6)] {
                let total = fc
                    .assigned
                    .checked_add(fc.available)
                    .unwrap_or(AddrCount::MAX);
                if total.is_zero() {
                    continue;
                }
                pools.insert(
                    (name.clone(), family),
                    PoolUsage {
                        total,
                        used: fc.assigned,
                        free: fc.available,
                    },
                );
            }
        }
        self.lock().pools = pools;
    }

    /// Drops the pool gauges (a standby knows no allocations).
    pub fn clear_pools(&self) {
        self.lock().pools.clear();
    }

    /// Sets the number of pending Services.
    pub fn set_pending(&self, n: usize) {
        self.lock().services_pending = n as u64;
    }

    /// Sets whether the newest configuration is valid.
    pub fn set_config_valid(&self, valid: bool) {
        self.lock().config_valid = valid;
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.lock().leader = leader;
    }

    /// Records the duration of one reconcile batch.
    pub fn observe_reconcile(&self, d: Duration) {
        self.lock().reconcile.observe(d.as_secs_f64());
    }

    /// Counts a failed API write of kind `write` (one of [`WRITE_KINDS`]).
    pub fn write_error(&self, write: &str) {
        *self
            .lock()
            .write_errors
            .entry(write.to_owned())
            .or_default() += 1;
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float in the exposition format (`+Inf`, `-Inf`, `NaN` spelled as Prometheus does).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn pool_labels(pool: &str, family: Family) -> String {
    format!("{{pool=\"{}\",family=\"{family}\"}}", escape(pool))
}

/// Picks one value of a [`PoolUsage`].
type PoolField = fn(&PoolUsage) -> AddrCount;

/// Renders `s` in the Prometheus text format, version 0.0.4.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let gauges: [(&str, &str, PoolField); 3] = [
        (
            "ferrolb_pool_addresses_total",
            "Addresses the pool may hand out, per family.",
            |u| u.total,
        ),
        (
            "ferrolb_pool_addresses_used",
            "Distinct addresses of the pool held by Services, per family.",
            |u| u.used,
        ),
        (
            "ferrolb_pool_addresses_free",
            "Addresses of the pool still available, per family.",
            |u| u.free,
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, "gauge", help);
        for ((pool, family), u) in &s.pools {
            let _ = writeln!(out, "{name}{} {}", pool_labels(pool, *family), value(u));
        }
    }

    let name = "ferrolb_allocations_total";
    header(
        &mut out,
        name,
        "counter",
        "Addresses assigned to Services, per pool and family.",
    );
    for ((pool, family), n) in &s.allocations {
        let _ = writeln!(out, "{name}{} {n}", pool_labels(pool, *family));
    }

    let name = "ferrolb_allocation_failures_total";
    header(
        &mut out,
        name,
        "counter",
        "Services whose allocation failed, per condition reason (once per distinct failure).",
    );
    for (reason, n) in &s.failures {
        let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", escape(reason));
    }

    let name = "ferrolb_releases_total";
    header(
        &mut out,
        name,
        "counter",
        "Allocations given up by Services.",
    );
    let _ = writeln!(out, "{name} {}", s.releases);

    let name = "ferrolb_reconcile_duration_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Duration of one reconcile batch: decisions and API writes.",
    );
    let mut cumulative = 0u64;
    for (i, bound) in s.reconcile.bounds.iter().enumerate() {
        cumulative += s.reconcile.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            float(*bound)
        );
    }
    let count = s.reconcile.count();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {}", float(s.reconcile.sum));
    let _ = writeln!(out, "{name}_count {count}");

    let singles: [(&str, &str, &str, u64); 3] = [
        (
            "ferrolb_services_pending",
            "gauge",
            "LoadBalancer Services handled by ferrolb that have no address (leader only).",
            s.services_pending,
        ),
        (
            "ferrolb_config_valid",
            "gauge",
            "1 when the newest configuration built without errors (as evaluated while leading).",
            u64::from(s.config_valid),
        ),
        (
            "ferrolb_leader",
            "gauge",
            "1 when this replica holds the leader-election Lease (or runs alone).",
            u64::from(s.leader),
        ),
    ];
    for (name, kind, help, v) in singles {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }

    let name = "ferrolb_api_write_errors_total";
    header(
        &mut out,
        name,
        "counter",
        "API writes that failed (and were retried unless an Event), per kind of write.",
    );
    for (write, n) in &s.write_errors {
        let _ = writeln!(out, "{name}{{write=\"{}\"}} {n}", escape(write));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::FamilyCounters;

    fn fixture() -> Snapshot {
        let mut reconcile = Histogram::new(&[0.5, 0.1, 1.0]);
        for v in [0.05, 0.1, 0.3, 2.0] {
            reconcile.observe(v);
        }
        Snapshot {
            pools: BTreeMap::from([(
                ("we\"ird\\pool\n".to_owned(), Family::V6),
                PoolUsage {
                    total: AddrCount::pow2(128),
                    used: AddrCount::from(2u64),
                    free: AddrCount::pow2(128)
                        .checked_sub(AddrCount::from(2u64))
                        .expect("sub"),
                },
            )]),
            allocations: BTreeMap::from([(("p".to_owned(), Family::V4), 3)]),
            failures: BTreeMap::from([("NoPool".to_owned(), 2)]),
            releases: 1,
            reconcile,
            services_pending: 4,
            config_valid: true,
            leader: false,
            write_errors: BTreeMap::from([("Event".to_owned(), 5)]),
        }
    }

    #[test]
    fn renders_the_exact_text() {
        let want = r#"# HELP ferrolb_pool_addresses_total Addresses the pool may hand out, per family.
# TYPE ferrolb_pool_addresses_total gauge
ferrolb_pool_addresses_total{pool="we\"ird\\pool\n",family="IPv6"} 340282366920938463463374607431768211456
# HELP ferrolb_pool_addresses_used Distinct addresses of the pool held by Services, per family.
# TYPE ferrolb_pool_addresses_used gauge
ferrolb_pool_addresses_used{pool="we\"ird\\pool\n",family="IPv6"} 2
# HELP ferrolb_pool_addresses_free Addresses of the pool still available, per family.
# TYPE ferrolb_pool_addresses_free gauge
ferrolb_pool_addresses_free{pool="we\"ird\\pool\n",family="IPv6"} 340282366920938463463374607431768211454
# HELP ferrolb_allocations_total Addresses assigned to Services, per pool and family.
# TYPE ferrolb_allocations_total counter
ferrolb_allocations_total{pool="p",family="IPv4"} 3
# HELP ferrolb_allocation_failures_total Services whose allocation failed, per condition reason (once per distinct failure).
# TYPE ferrolb_allocation_failures_total counter
ferrolb_allocation_failures_total{reason="NoPool"} 2
# HELP ferrolb_releases_total Allocations given up by Services.
# TYPE ferrolb_releases_total counter
ferrolb_releases_total 1
# HELP ferrolb_reconcile_duration_seconds Duration of one reconcile batch: decisions and API writes.
# TYPE ferrolb_reconcile_duration_seconds histogram
ferrolb_reconcile_duration_seconds_bucket{le="0.1"} 2
ferrolb_reconcile_duration_seconds_bucket{le="0.5"} 3
ferrolb_reconcile_duration_seconds_bucket{le="1"} 3
ferrolb_reconcile_duration_seconds_bucket{le="+Inf"} 4
ferrolb_reconcile_duration_seconds_sum 2.45
ferrolb_reconcile_duration_seconds_count 4
# HELP ferrolb_services_pending LoadBalancer Services handled by ferrolb that have no address (leader only).
# TYPE ferrolb_services_pending gauge
ferrolb_services_pending 4
# HELP ferrolb_config_valid 1 when the newest configuration built without errors (as evaluated while leading).
# TYPE ferrolb_config_valid gauge
ferrolb_config_valid 1
# HELP ferrolb_leader 1 when this replica holds the leader-election Lease (or runs alone).
# TYPE ferrolb_leader gauge
ferrolb_leader 0
# HELP ferrolb_api_write_errors_total API writes that failed (and were retried unless an Event), per kind of write.
# TYPE ferrolb_api_write_errors_total counter
ferrolb_api_write_errors_total{write="Event"} 5
"#;
        assert_eq!(render(&fixture()), want);
    }

    #[test]
    fn histogram_buckets() {
        // (bounds, observations, per-bucket counts incl. +Inf)
        let cases: [(&[f64], &[f64], &[u64]); 4] = [
            (&[1.0, 2.0], &[], &[0, 0, 0]),
            (&[1.0, 2.0], &[1.0, 1.5, 2.0, 2.1], &[1, 2, 1]),
            (&[2.0, 1.0, 2.0, f64::NAN], &[0.0, 3.0], &[1, 0, 1]),
            (&[], &[7.0], &[1]),
        ];
        for (bounds, obs, want) in cases {
            let mut h = Histogram::new(bounds);
            for v in obs {
                h.observe(*v);
            }
            assert_eq!(h.counts, want, "{bounds:?} {obs:?}");
            assert_eq!(h.count(), obs.len() as u64);
        }
    }

    #[test]
    fn a_fresh_registry_exports_every_reason_and_write_kind_at_zero() {
        let text = Metrics::new().render();
        for r in FAILURE_REASONS {
            let line = format!("ferrolb_allocation_failures_total{{reason=\"{r}\"}} 0\n");
            assert!(text.contains(&line), "{line}");
        }
        for w in WRITE_KINDS {
            let line = format!("ferrolb_api_write_errors_total{{write=\"{w}\"}} 0\n");
            assert!(text.contains(&line), "{line}");
        }
        for line in [
            "ferrolb_reconcile_duration_seconds_bucket{le=\"0.001\"} 0\n",
            "ferrolb_reconcile_duration_seconds_bucket{le=\"30\"} 0\n",
            "ferrolb_reconcile_duration_seconds_bucket{le=\"+Inf\"} 0\n",
            "ferrolb_reconcile_duration_seconds_sum 0\n",
            "ferrolb_leader 0\n",
            "ferrolb_config_valid 0\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        // Every family has exactly one HELP and one TYPE line.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!((types, helps), (11, 11));
    }

    #[test]
    fn registry_updates() {
        let m = Metrics::new();
        let clone = m.clone();
        let counts = Counts {
            allocations: BTreeMap::from([(("p".to_owned(), Family::V4), 2)]),
            failures: BTreeMap::from([("PoolExhausted".to_owned(), 1)]),
            releases: 1,
        };
        m.add(&counts);
        clone.add(&counts);
        m.set_pools(&BTreeMap::from([(
            "p".to_owned(),
            PoolCounters {
                v4: FamilyCounters {
                    assigned: AddrCount::from(3u64),
                    available: AddrCount::from(1u64),
                },
                v6: FamilyCounters::default(),
            },
        )]));
        m.set_pending(2);
        m.set_config_valid(true);
        m.set_leader(true);
        m.observe_reconcile(Duration::from_millis(3));
        m.write_error("ServiceStatus");
        let s = clone.snapshot();
        assert_eq!(s.allocations[&("p".to_owned(), Family::V4)], 4);
        assert_eq!(s.failures["PoolExhausted"], 2);
        assert_eq!(s.failures["NoPool"], 0);
        assert_eq!(s.releases, 2);
        // The empty IPv6 side of the pool is not exported.
        assert_eq!(
            s.pools.keys().collect::<Vec<_>>(),
            vec![&("p".to_owned(), Family::V4)]
        );
        let u = s.pools[&("p".to_owned(), Family::V4)];
        assert_eq!(
            (u.total, u.used, u.free),
            (
                AddrCount::from(4u64),
                AddrCount::from(3u64),
                AddrCount::from(1u64)
            )
        );
        assert_eq!(s.services_pending, 2);
        assert!(s.config_valid && s.leader);
        assert_eq!(s.reconcile.counts[2], 1, "3 ms falls in (2.5 ms, 5 ms]");
        assert_eq!(s.write_errors["ServiceStatus"], 1);
        m.clear_pools();
        assert!(clone.snapshot().pools.is_empty());
    }
}
