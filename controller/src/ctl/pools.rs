//! `ferrolbctl pools`: one row per pool and address family with the exact counts the
//! controller writes into the pool status.
//!
//! TOTAL is computed here from `spec.addresses` (allocatable addresses, so `avoidBuggyIPs`
//! excludes `.0`/`.255`); USED and FREE are the status counters (`assignedIPv4`,
//! `availableIPv4`, ...), `-` until the controller has written them.

use std::collections::BTreeMap;

use ferrolb_config::ipset::{Family, IpRange, parse_pool_entry};
use ferrolb_config::pool::{Pool, PoolPolicy};
use ferrolb_crds::IPAddressPool;
use serde::Serialize;

use super::find_condition;
use super::table::Table;
use crate::reconcile::status::CONDITION_VALID;

/// One pool and family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRow {
    /// Pool name.
    pub name: String,
    /// `IPv4`, `IPv6`, or `-` when no entry of the pool parses.
    pub family: String,
    /// The `spec.addresses` entries of this family, as written (unparsable entries are
    /// listed on the `-` row).
    pub addresses: Vec<String>,
    /// Allocatable addresses of this family, exact decimal; `-` when the pool's entries
    /// do not parse or overlap.
    pub total: String,
    /// Assigned addresses from the status; `-` when not written.
    pub used: String,
    /// Available addresses from the status; `-` when not written.
    pub free: String,
    /// `spec.autoAssign`.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`.
    #[serde(rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation.priority` (0: unset, tried last).
    pub priority: i32,
    /// Status of the `Valid` condition: `True`, `False` or `Unknown` (not written yet).
    pub valid: String,
    /// Message of a `Valid=False` condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
}

/// The rows of `pools`, sorted by name, IPv4 before IPv6.
pub fn pool_rows(pools: &[IPAddressPool]) -> Vec<PoolRow> {
    let mut sorted: Vec<&IPAddressPool> = pools.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    sorted.into_iter().flat_map(rows_of).collect()
}

fn rows_of(p: &IPAddressPool) -> Vec<PoolRow> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let (valid, invalid_message) = match find_condition(&status.conditions, CONDITION_VALID) {
        Some(c) if c.status == "False" => ("False".to_owned(), Some(c.message.clone())),
        Some(c) => (c.status.clone(), None),
        None => ("Unknown".to_owned(), None),
    };
    let mut by_family: BTreeMap<Family, Vec<String>> = BTreeMap::new();
    let mut unparsed: Vec<String> = Vec::new();
    let mut ranges: Vec<IpRange> = Vec::new();
    for entry in &p.spec.addresses {
        match parse_pool_entry(entry) {
            Ok(r) => {
                by_family.entry(r.family()).or_default().push(entry.clone());
                ranges.push(r);
            }
            Err(_) => unparsed.push(entry.clone()),
        }
    }
    let policy = PoolPolicy {
        auto_assign: p.spec.auto_assign,
        avoid_buggy_ips: p.spec.avoid_buggy_ips,
        service_allocation: None,
    };
    let pool = if unparsed.is_empty() {
        Pool::new(name.clone(), &ranges, policy).ok()
    } else {
        None
    };
    let priority = p
        .spec
        .service_allocation
        .as_ref()
        .and_then(|a| a.priority)
        .unwrap_or(0);
    let dash = || "-".to_owned();
    let row = |family: String,
               addresses: Vec<String>,
               total,
               used: &Option<String>,
               free: &Option<String>| {
        PoolRow {
            name: name.clone(),
            family,
            addresses,
            total,
            used: used.clone().unwrap_or_else(dash),
            free: free.clone().unwrap_or_else(dash),
            auto_assign: p.spec.auto_assign,
            avoid_buggy_ips: p.spec.avoid_buggy_ips,
            priority,
            valid: valid.clone(),
            invalid_message: invalid_message.clone(),
        }
    };
    let mut rows = Vec::new();
    for (family, addresses) in by_family {
        let total = pool
            .as_ref()
            .map_or_else(dash, |pl| pl.allocatable_count(family).to_string());
        let (used, free) = match family {
            Family::V4 => (&status.assigned_ipv4, &status.available_ipv4),
            Family::V6 => (&status.assigned_ipv6, &status.available_ipv6),
        };
        rows.push(row(family.to_string(), addresses, total, used, free));
    }
    if !unparsed.is_empty() || rows.is_empty() {
        rows.push(row(dash(), unparsed, dash(), &None, &None));
    }
    rows
}

/// The table of `rows`, followed by one line per invalid pool with the controller's
/// message. `No IPAddressPools found in <namespace>.` when there are none.
pub fn pools_table(rows: &[PoolRow], namespace: &str) -> String {
    if rows.is_empty() {
        return format!("No IPAddressPools found in namespace {namespace}.\n");
    }
    let mut t = Table::new(&[
        "NAME",
        "FAMILY",
        "ADDRESSES",
        "TOTAL",
        "USED",
        "FREE",
        "AUTO-ASSIGN",
        "AVOID-BUGGY-IPS",
        "PRIORITY",
        "VALID",
    ]);
    let mut notes = Vec::new();
    for r in rows {
        t.push(vec![
            r.name.clone(),
            r.family.clone(),
            if r.addresses.is_empty() {
                "<none>".to_owned()
            } else {
                r.addresses.join(",")
            },
            r.total.clone(),
            r.used.clone(),
            r.free.clone(),
            r.auto_assign.to_string(),
            r.avoid_buggy_ips.to_string(),
            r.priority.to_string(),
            r.valid.clone(),
        ]);
        if let Some(m) = &r.invalid_message {
            let note = format!("pool {} is not valid: {m}", r.name);
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let mut out = t.render();
    if rows.iter().any(|r| r.valid == "Unknown") {
        notes.push(
            "VALID Unknown: the controller has not written this pool's status yet \
             (is ferrolb-controller running?)"
                .to_owned(),
        );
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::{IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn valid(status: &str, msg: &str) -> Condition {
        Condition {
            type_: "Valid".into(),
            status: status.into(),
            reason: "r".into(),
            message: msg.into(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }
    }

    fn pool(name: &str, addrs: &[&str], status: Option<IPAddressPoolStatus>) -> IPAddressPool {
        let mut p = IPAddressPool::new(
            name,
            IPAddressPoolSpec {
                addresses: addrs.iter().map(|a| (*a).into()).collect(),
                auto_assign: true,
                ..Default::default()
            },
        );
        p.status = status;
        p
    }

    #[test]
    fn rows_table() {
        let full = IPAddressPoolStatus {
            assigned_ipv4: Some("2".into()),
            available_ipv4: Some("252".into()),
            assigned_ipv6: Some("1".into()),
            available_ipv6: Some("18446744073709551615".into()),
            conditions: vec![valid("True", "")],
        };
        let mut buggy = pool("b-buggy", &["10.1.0.0/24"], None);
        buggy.spec.avoid_buggy_ips = true;
        buggy.spec.auto_assign = false;
        buggy.spec.service_allocation = Some(ServiceAllocation {
            priority: Some(5),
            ..Default::default()
        });
        let bad = pool(
            "c-bad",
            &["10.2.0.0/33"],
            Some(IPAddressPoolStatus {
                conditions: vec![valid("False", "spec.addresses[0]: bad prefix")],
                ..Default::default()
            }),
        );
        let pools = [
            bad,
            buggy,
            pool("a", &["fd00::/64", "10.0.0.0/24"], Some(full)),
        ];
        let rows = pool_rows(&pools);
        type Row<'a> = (
            &'a str,
            &'a str,
            String,
            &'a str,
            &'a str,
            &'a str,
            i32,
            &'a str,
        );
        let got: Vec<Row> = rows
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.family.as_str(),
                    r.addresses.join(","),
                    r.total.as_str(),
                    r.used.as_str(),
                    r.free.as_str(),
                    r.priority,
                    r.valid.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "a",
                    "IPv4",
                    "10.0.0.0/24".into(),
                    "256",
                    "2",
                    "252",
                    0,
                    "True"
                ),
                (
                    "a",
                    "IPv6",
                    "fd00::/64".into(),
                    "18446744073709551616",
                    "1",
                    "18446744073709551615",
                    0,
                    "True"
                ),
                (
                    "b-buggy",
                    "IPv4",
                    "10.1.0.0/24".into(),
                    "254",
                    "-",
                    "-",
                    5,
                    "Unknown"
                ),
                (
                    "c-bad",
                    "-",
                    "10.2.0.0/33".into(),
                    "-",
                    "-",
                    "-",
                    0,
                    "False"
                ),
            ]
        );
        let text = pools_table(&rows, "ferrolb-system");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAME      FAMILY   ADDRESSES"),
            "{text}"
        );
        assert!(
            lines[2].contains("18446744073709551616   1      18446744073709551615"),
            "{text}"
        );
        assert!(text.contains("pool c-bad is not valid: spec.addresses[0]: bad prefix"));
        assert!(text.contains("VALID Unknown: the controller has not written"));
        assert_eq!(
            pools_table(&[], "ns"),
            "No IPAddressPools found in namespace ns.\n"
        );
    }

    #[test]
    fn overlapping_entries_have_no_total() {
        let rows = pool_rows(&[pool("o", &["10.0.0.0/24", "10.0.0.128/25"], None)]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].total, "-");
        assert_eq!(rows[0].addresses.len(), 2);
    }

    #[test]
    fn json_shape() {
        let rows = pool_rows(&[pool("a", &["10.0.0.0/30"], None)]);
        let v = serde_json::to_value(&rows).expect("json");
        assert_eq!(v[0]["avoidBuggyIPs"], false);
        assert_eq!(v[0]["autoAssign"], true);
        assert_eq!(v[0]["total"], "4");
        assert!(v[0].get("invalidMessage").is_none());
    }
}
