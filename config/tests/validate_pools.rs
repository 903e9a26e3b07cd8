//! Table tests: IPAddressPool rules, single-object and across pools.

#[path = "fixtures/harness.rs"]
mod harness;

use ferrolb_config::ipset::Family;
use harness::{Want, doc, pool, run_ok_table, run_table};

const P: &str = "IPAddressPool";

#[test]
fn bad_pools() {
    let table: Vec<(&str, String, &[Want])> = vec![
        (
            "prefix too long",
            pool("a", &["10.0.0.0/33"]),
            &[(P, "a", "spec.addresses[0]", "/33")],
        ),
        (
            "reversed range",
            pool("a", &["1.2.3.4-1.2.3.1"]),
            &[(P, "a", "spec.addresses[0]", "reversed")],
        ),
        (
            "mixed families in one range",
            pool("a", &["10.0.0.1-fc00::1"]),
            &[(P, "a", "spec.addresses[0]", "mixes families")],
        ),
        (
            "non-canonical CIDR names the canonical form",
            pool("a", &["10.0.0.0/24", "10.0.1.5/24"]),
            &[(P, "a", "spec.addresses[1]", "10.0.1.0/24")],
        ),
        (
            "garbage and bare address, every error reported",
            pool("a", &["hello", "10.0.0.1", "10.0.0.0/24"]),
            &[
                (P, "a", "spec.addresses[0]", "not a CIDR"),
                (P, "a", "spec.addresses[1]", "10.0.0.1/32"),
            ],
        ),
        (
            "empty addresses",
            pool("a", &[]).replace("  addresses:\n", "  addresses: []\n"),
            &[(P, "a", "spec.addresses", "at least one")],
        ),
        (
            "overlap across pools names both pools and the range",
            pool("a", &["10.0.0.0/24"]) + &pool("b", &["10.0.0.128-10.0.1.5"]),
            &[
                (
                    P,
                    "a",
                    "spec.addresses[0]",
                    "IPAddressPool b spec.addresses[0]",
                ),
                (
                    P,
                    "b",
                    "spec.addresses[0]",
                    "overlaps IPAddressPool a spec.addresses[0] (10.0.0.0/24) in 10.0.0.128/25",
                ),
            ],
        ),
        (
            "overlap inside one pool",
            pool("a", &["10.0.0.0/24", "10.0.0.7-10.0.0.9"]),
            &[(
                P,
                "a",
                "spec.addresses[1]",
                "overlaps spec.addresses[0] (10.0.0.0/24) of the same pool in 10.0.0.7-10.0.0.9",
            )],
        ),
        (
            "IPv6 overlap between a /48 and a /64",
            pool("a", &["fc00:1::/48"]) + &pool("b", &["fc00:1:0:5::/64"]),
            &[
                (P, "a", "spec.addresses[0]", "fc00:1:0:5::/64"),
                (P, "b", "spec.addresses[0]", "IPAddressPool a"),
            ],
        ),
        (
            "duplicate pool names",
            pool("a", &["10.0.0.0/24"]) + &pool("a", &["10.0.9.0/24"]),
            &[(P, "a", "metadata.name", "duplicate name")],
        ),
        (
            "wrong namespace",
            pool("a", &["10.0.0.0/24"]).replace("namespace: ferrolb-system", "namespace: default"),
            &[(
                P,
                "a",
                "metadata.namespace",
                "must be in namespace ferrolb-system",
            )],
        ),
        (
            "negative priority",
            doc(
                P,
                "a",
                &[
                    "addresses: [10.0.0.0/24]",
                    "serviceAllocation:",
                    "  priority: -1",
                ],
            ),
            &[(P, "a", "spec.serviceAllocation.priority", ">= 0")],
        ),
        (
            "duplicate and invalid namespaces",
            doc(
                P,
                "a",
                &[
                    "addresses: [10.0.0.0/24]",
                    "serviceAllocation:",
                    "  namespaces: [team-a, Team_B, team-a]",
                ],
            ),
            &[
                (
                    P,
                    "a",
                    "spec.serviceAllocation.namespaces[1]",
                    "not a namespace name",
                ),
                (
                    P,
                    "a",
                    "spec.serviceAllocation.namespaces[2]",
                    "duplicate namespace `team-a`",
                ),
            ],
        ),
        (
            "invalid selector operator",
            doc(
                P,
                "a",
                &[
                    "addresses: [10.0.0.0/24]",
                    "serviceAllocation:",
                    "  serviceSelectors:",
                    "  - matchExpressions:",
                    "    - {key: app, operator: Equals, values: [x]}",
                ],
            ),
            &[(
                P,
                "a",
                "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].operator",
                "",
            )],
        ),
        (
            "invalid label value and duplicate selector",
            doc(
                P,
                "a",
                &[
                    "addresses: [10.0.0.0/24]",
                    "serviceAllocation:",
                    "  namespaceSelectors:",
                    "  - matchLabels: {team: \"a b\"}",
                    "  - matchLabels: {team: a}",
                    "  - matchLabels: {team: a}",
                ],
            ),
            &[
                (
                    P,
                    "a",
                    "spec.serviceAllocation.namespaceSelectors[0].matchLabels[team]",
                    "",
                ),
                (
                    P,
                    "a",
                    "spec.serviceAllocation.namespaceSelectors[2]",
                    "duplicate of spec.serviceAllocation.namespaceSelectors[1]",
                ),
            ],
        ),
    ];
    run_table(&table);
}

#[test]
fn good_pools() {
    let table: Vec<(&str, String)> = vec![
        (
            "adjacent pools do not overlap",
            pool("a", &["10.0.0.0/25"]) + &pool("b", &["10.0.0.128/25"]),
        ),
        (
            "same range in different families",
            pool("a", &["10.0.0.0/24", "fc00::/120"]) + &pool("b", &["::ffff:0:0/120"]),
        ),
        (
            "single addresses",
            pool("a", &["10.0.0.1/32", "10.0.0.2-10.0.0.2", "::1/128"]),
        ),
        ("whole IPv6 space", pool("a", &["::/0"])),
    ];
    run_ok_table(&table);
}

#[test]
fn pool_model_counts_are_exact() {
    let cfg = harness::parse_and_build(&pool("big", &["fc00::/48", "10.0.0.0/16", "fd00::/64"]))
        .expect("builds");
    let p = cfg.pools.get("big").expect("pool");
    assert_eq!(p.count(Family::V4).to_string(), "65536");
    let v6 = (1u128 << 80) + (1u128 << 64);
    assert_eq!(p.count(Family::V6).to_string(), v6.to_string());
    assert_eq!(p.v6().range_count(), 2);
}
