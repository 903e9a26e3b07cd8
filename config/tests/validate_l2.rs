//! Table tests: L2Advertisement rules and object identity rules.

#[path = "fixtures/harness.rs"]
mod harness;

use harness::{Want, doc, pool, run_ok_table, run_table};

const L2: &str = "L2Advertisement";

#[test]
fn bad_l2_advertisements() {
    let base = || pool("a", &["10.0.0.0/24"]);
    let table: Vec<(&str, String, &[Want])> = vec![
        (
            "weight out of range",
            base()
                + &doc(
                    L2,
                    "l",
                    &[
                        "preferredNodeSelectors:",
                        "- {weight: 0, preference: {matchLabels: {a: b}}}",
                        "- {weight: 101, preference: {matchLabels: {a: c}}}",
                    ],
                ),
            &[
                (
                    L2,
                    "l",
                    "spec.preferredNodeSelectors[0].weight",
                    "between 1 and 100",
                ),
                (
                    L2,
                    "l",
                    "spec.preferredNodeSelectors[1].weight",
                    "between 1 and 100",
                ),
            ],
        ),
        (
            "invalid preference selector",
            base()
                + &doc(
                    L2,
                    "l",
                    &[
                        "preferredNodeSelectors:",
                        "- {weight: 5, preference: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}",
                    ],
                ),
            &[(
                L2,
                "l",
                "spec.preferredNodeSelectors[0].preference.matchExpressions[0].values",
                "",
            )],
        ),
        (
            "interface names",
            base()
                + &doc(
                    L2,
                    "l",
                    &["interfaces: [eth0, \"\", averyveryverylongname0, \"a/b\", \"..\", \"e 1\"]"],
                ),
            &[
                (L2, "l", "spec.interfaces[1]", "1 to 15"),
                (L2, "l", "spec.interfaces[2]", "1 to 15"),
                (L2, "l", "spec.interfaces[3]", "'/'"),
                (L2, "l", "spec.interfaces[4]", "`..`"),
                (L2, "l", "spec.interfaces[5]", "whitespace"),
            ],
        ),
        (
            "unknown pool",
            base() + &doc(L2, "l", &["ipAddressPools: [a, b]"]),
            &[(
                L2,
                "l",
                "spec.ipAddressPools[1]",
                "no IPAddressPool named b",
            )],
        ),
        (
            "invalid node selector",
            base()
                + &doc(
                    L2,
                    "l",
                    &["nodeSelectors: [{matchExpressions: [{key: \"\", operator: Exists}]}]"],
                ),
            &[(L2, "l", "spec.nodeSelectors[0].matchExpressions[0].key", "")],
        ),
        (
            "duplicate names",
            base() + &doc(L2, "l", &[]) + &doc(L2, "l", &["interfaces: [eth1]"]),
            &[(
                L2,
                "l",
                "metadata.name",
                "duplicate name: another L2Advertisement",
            )],
        ),
    ];
    run_table(&table);
}

#[test]
fn good_l2_advertisements() {
    let table: Vec<(&str, String)> = vec![
        (
            "all defaults",
            pool("a", &["10.0.0.0/24"]) + &doc(L2, "l", &[]),
        ),
        (
            "15-character interface and a pool that is referenced but also selected",
            pool("a", &["10.0.0.0/24"])
                + &doc(
                    L2,
                    "l",
                    &[
                        "interfaces: [abcdefghijklmno]",
                        "ipAddressPools: [a]",
                        "ipAddressPoolSelectors: [{matchLabels: {x: y}}]",
                    ],
                ),
        ),
    ];
    run_ok_table(&table);
}

#[test]
fn l2_resolves_pools_by_name_and_label() {
    let yaml = pool("a", &["10.0.0.0/24"])
        + &pool("b", &["10.0.1.0/24"]).replace(
            "  namespace: ferrolb-system\n",
            "  namespace: ferrolb-system\n  labels: {tier: edge}\n",
        )
        + &pool("c", &["10.0.2.0/24"])
        + &doc(
            L2,
            "named",
            &[
                "ipAddressPools: [a]",
                "ipAddressPoolSelectors: [{matchLabels: {tier: edge}}]",
            ],
        )
        + &doc(L2, "all", &[]);
    let cfg = harness::parse_and_build(&yaml).expect("builds");
    let named: Vec<&str> = cfg.l2_advertisements["named"]
        .pools
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(named, ["a", "b"]);
    let all: Vec<&str> = cfg.l2_advertisements["all"]
        .pools
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(all, ["a", "b", "c"]);
    let for_b: Vec<&str> = cfg
        .l2_advertisements_for_pool("b")
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(for_b, ["all", "named"]);
}
