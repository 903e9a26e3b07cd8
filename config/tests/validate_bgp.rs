//! Table tests: BGPPeer, BFDProfile, Community and BGPAdvertisement rules.

#[path = "fixtures/harness.rs"]
mod harness;

use harness::{Want, doc, peer, pool, run_ok_table, run_table};

const PEER: &str = "BGPPeer";
const ADV: &str = "BGPAdvertisement";
const BFD: &str = "BFDProfile";
const COMM: &str = "Community";

fn secret(name: &str, ty: &str, data: &[&str]) -> String {
    let mut s = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: ferrolb-system\ntype: {ty}\nstringData:\n"
    );
    for d in data {
        s.push_str(&format!("  {d}\n"));
    }
    if data.is_empty() {
        s = s.replace("stringData:\n", "");
    }
    s
}

#[test]
fn bad_peers() {
    let table: Vec<(&str, String, &[Want])> = vec![
        (
            "peerASN and dynamicASN both set",
            peer("p", "10.0.0.1", &["peerASN: 64500", "dynamicASN: external"]),
            &[(PEER, "p", "spec.dynamicASN", "exactly one")],
        ),
        (
            "neither peerASN nor dynamicASN",
            peer("p", "10.0.0.1", &["dynamicASN: external"])
                .replace("  dynamicASN: external\n", ""),
            &[(PEER, "p", "spec.peerASN", "neither")],
        ),
        (
            "AS 0",
            peer("p", "10.0.0.1", &["peerASN: 0"]).replace("myASN: 64512", "myASN: 0"),
            &[
                (PEER, "p", "spec.myASN", "reserved"),
                (PEER, "p", "spec.peerASN", "reserved"),
            ],
        ),
        (
            "bad addresses",
            peer("p", "10.0.0.300", &["sourceAddress: 0.0.0.0"]),
            &[
                (PEER, "p", "spec.peerAddress", "not an IPv4 or IPv6 address"),
                (PEER, "p", "spec.sourceAddress", "unspecified"),
            ],
        ),
        (
            "source address of the other family",
            peer("p", "10.0.0.1", &["sourceAddress: \"fc00::1\""]),
            &[(
                PEER,
                "p",
                "spec.sourceAddress",
                "different address families",
            )],
        ),
        (
            "keepalive above hold",
            peer("p", "10.0.0.1", &["holdTime: 9s", "keepaliveTime: 10s"]),
            &[(
                PEER,
                "p",
                "spec.keepaliveTime",
                "lower than or equal to holdTime 9s",
            )],
        ),
        (
            "hold below 3s",
            peer("p", "10.0.0.1", &["holdTime: 2s"]),
            &[(PEER, "p", "spec.holdTime", "0 or between 3s and 65535s")],
        ),
        (
            "hold 0 needs keepalive 0",
            peer("p", "10.0.0.1", &["holdTime: 0s", "keepaliveTime: 1s"]),
            &[(
                PEER,
                "p",
                "spec.keepaliveTime",
                "must be 0 when holdTime is 0",
            )],
        ),
        (
            "fractional connect time and unparsable hold",
            peer("p", "10.0.0.1", &["connectTime: 1500ms", "holdTime: soon"]),
            &[
                (PEER, "p", "spec.connectTime", "whole seconds"),
                (PEER, "p", "spec.holdTime", "not a duration"),
            ],
        ),
        (
            "derived hold time too large",
            peer("p", "10.0.0.1", &["keepaliveTime: 30000s"]),
            &[(
                PEER,
                "p",
                "spec.keepaliveTime",
                "3 x keepaliveTime = 90000s",
            )],
        ),
        (
            "router ID must be IPv4",
            peer("p", "10.0.0.1", &["routerID: \"fc00::1\""]),
            &[(PEER, "p", "spec.routerID", "IPv4")],
        ),
        (
            "port out of range",
            peer("p", "10.0.0.1", &["peerPort: 70000"]),
            &[(PEER, "p", "spec.peerPort", "between 1 and 65535")],
        ),
        (
            "ebgpMultiHop on iBGP",
            peer("p", "10.0.0.1", &["peerASN: 64512", "ebgpMultiHop: true"]),
            &[(PEER, "p", "spec.ebgpMultiHop", "iBGP")],
        ),
        (
            "missing password secret",
            peer("p", "10.0.0.1", &["passwordSecret: {name: md5}"]),
            &[(
                PEER,
                "p",
                "spec.passwordSecret.name",
                "Secret ferrolb-system/md5 not found",
            )],
        ),
        (
            "password secret of the wrong type",
            peer("p", "10.0.0.1", &["passwordSecret: {name: md5}"])
                + &secret("md5", "Opaque", &["password: x"]),
            &[(
                PEER,
                "p",
                "spec.passwordSecret.name",
                "must be kubernetes.io/basic-auth",
            )],
        ),
        (
            "password secret without the key",
            peer("p", "10.0.0.1", &["passwordSecret: {name: md5}"])
                + &secret("md5", "kubernetes.io/basic-auth", &["username: x"]),
            &[(PEER, "p", "spec.passwordSecret.name", "no `password` key")],
        ),
        (
            "password secret in another namespace",
            peer(
                "p",
                "10.0.0.1",
                &["passwordSecret: {name: md5, namespace: default}"],
            ),
            &[(PEER, "p", "spec.passwordSecret.namespace", "ferrolb-system")],
        ),
        (
            "unknown BFD profile",
            peer("p", "10.0.0.1", &["bfdProfile: fast"]),
            &[(PEER, "p", "spec.bfdProfile", "no BFDProfile named fast")],
        ),
        (
            "echo mode on an IPv6 session",
            peer("p", "fc00::1", &["bfdProfile: echo"]) + &doc(BFD, "echo", &["echoMode: true"]),
            &[(PEER, "p", "spec.bfdProfile", "IPv4 sessions only")],
        ),
        (
            "duplicate session on overlapping nodes",
            peer("p1", "10.0.0.1", &[])
                + &peer(
                    "p2",
                    "10.0.0.1",
                    &["nodeSelectors: [{matchLabels: {rack: a}}]"],
                ),
            &[(
                PEER,
                "p2",
                "spec.peerAddress",
                "duplicate session: BGPPeer p1",
            )],
        ),
        (
            "same address, different myASN, overlapping nodes",
            peer("p1", "10.0.0.1", &[])
                + &peer("p2", "10.0.0.1", &["peerPort: 1179"])
                    .replace("myASN: 64512", "myASN: 64513"),
            &[(
                PEER,
                "p2",
                "spec.myASN",
                "differs from myASN 64512 of BGPPeer p1",
            )],
        ),
        (
            "invalid node selector",
            peer(
                "p",
                "10.0.0.1",
                &["nodeSelectors: [{matchExpressions: [{key: rack, operator: In}]}]"],
            ),
            &[(
                PEER,
                "p",
                "spec.nodeSelectors[0].matchExpressions[0].values",
                "",
            )],
        ),
    ];
    run_table(&table);
}

#[test]
fn good_peers() {
    let table: Vec<(&str, String)> = vec![
        (
            "same address on disjoint racks",
            peer(
                "p1",
                "169.254.0.1",
                &["nodeSelectors: [{matchLabels: {rack: a}}]"],
            ) + &peer(
                "p2",
                "169.254.0.1",
                &["nodeSelectors: [{matchLabels: {rack: b}}]"],
            ),
        ),
        (
            "hold 0 and keepalive 0",
            peer("p", "10.0.0.1", &["holdTime: \"0\"", "keepaliveTime: 0s"]),
        ),
        (
            "dynamic external",
            peer(
                "p",
                "10.0.0.1",
                &["dynamicASN: external", "ebgpMultiHop: true"],
            ),
        ),
        (
            "secret with base64 data",
            peer("p", "10.0.0.1", &["passwordSecret: {name: md5}"])
                + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: md5, namespace: ferrolb-system}\ntype: kubernetes.io/basic-auth\ndata: {password: c2VjcmV0}\n",
        ),
    ];
    run_ok_table(&table);
}

#[test]
fn bad_bfd_and_communities() {
    let table: Vec<(&str, String, &[Want])> = vec![
        (
            "BFD ranges",
            doc(
                BFD,
                "b",
                &[
                    "receiveInterval: 5",
                    "transmitInterval: 60001",
                    "detectMultiplier: 1",
                    "echoInterval: 9",
                    "minimumTtl: 255",
                ],
            ),
            &[
                (BFD, "b", "spec.receiveInterval", "between 10 and 60000"),
                (BFD, "b", "spec.transmitInterval", "between 10 and 60000"),
                (BFD, "b", "spec.detectMultiplier", "between 2 and 255"),
                (BFD, "b", "spec.echoInterval", "between 10 and 60000"),
                (BFD, "b", "spec.minimumTtl", "between 1 and 254"),
            ],
        ),
        (
            "community syntax and ranges",
            doc(
                COMM,
                "c",
                &[
                    "communities:",
                    "- {name: a, value: \"65536:1\"}",
                    "- {name: b, value: \"large:1:2\"}",
                    "- {name: \"x:y\", value: \"1:1\"}",
                ],
            ),
            &[
                (
                    COMM,
                    "c",
                    "spec.communities[0].value",
                    "out of range (0 to 65535)",
                ),
                (COMM, "c", "spec.communities[1].value", "large:A:B:C"),
                (COMM, "c", "spec.communities[2].name", "no ':'"),
            ],
        ),
        (
            "duplicate alias across objects and inside one",
            doc(
                COMM,
                "c1",
                &["communities:", "- {name: dup, value: \"1:1\"}"],
            ) + &doc(
                COMM,
                "c2",
                &[
                    "communities:",
                    "- {name: dup, value: \"1:2\"}",
                    "- {name: x, value: \"1:3\"}",
                    "- {name: x, value: \"1:4\"}",
                ],
            ),
            &[
                (
                    COMM,
                    "c2",
                    "spec.communities[0].name",
                    "already defined by Community c1",
                ),
                (
                    COMM,
                    "c2",
                    "spec.communities[2].name",
                    "also defined at spec.communities[1]",
                ),
            ],
        ),
    ];
    run_table(&table);
}

#[test]
fn bad_bgp_advertisements() {
    let base = || {
        pool("v4", &["10.0.0.0/26"]) + &pool("v6", &["fc00::/64"]) + &peer("p1", "10.0.0.1", &[])
    };
    let table: Vec<(&str, String, &[Want])> = vec![
        (
            "aggregation ranges",
            base()
                + &doc(
                    ADV,
                    "a",
                    &["aggregationLength: 33", "aggregationLengthV6: 0"],
                ),
            &[
                (ADV, "a", "spec.aggregationLength", "between 1 and 32"),
                (ADV, "a", "spec.aggregationLengthV6", "between 1 and 128"),
            ],
        ),
        (
            "aggregation shorter than the pool prefix",
            base()
                + &doc(
                    ADV,
                    "a",
                    &[
                        "aggregationLength: 24",
                        "aggregationLengthV6: 48",
                        "ipAddressPools: [v4, v6]",
                    ],
                ),
            &[
                (
                    ADV,
                    "a",
                    "spec.aggregationLength",
                    "/24 is shorter than /26 of IPAddressPool v4 spec.addresses[0] (10.0.0.0/26)",
                ),
                (
                    ADV,
                    "a",
                    "spec.aggregationLengthV6",
                    "/48 is shorter than /64 of IPAddressPool v6",
                ),
            ],
        ),
        (
            "aggregation against a range's covering CIDRs",
            pool("r", &["10.1.0.1-10.1.0.10"])
                + &doc(ADV, "a", &["aggregationLength: 29", "ipAddressPools: [r]"]),
            &[(
                ADV,
                "a",
                "spec.aggregationLength",
                "/29 is shorter than /30",
            )],
        ),
        (
            "unknown references",
            base()
                + &doc(
                    ADV,
                    "a",
                    &[
                        "ipAddressPools: [v4, nope]",
                        "peers: [p1, ghost]",
                        "communities: [no-such-alias]",
                    ],
                ),
            &[
                (
                    ADV,
                    "a",
                    "spec.ipAddressPools[1]",
                    "no IPAddressPool named nope",
                ),
                (ADV, "a", "spec.peers[1]", "no BGPPeer named ghost"),
                (ADV, "a", "spec.communities[0]", "known Community alias"),
            ],
        ),
        (
            "bad community values",
            base()
                + &doc(
                    ADV,
                    "a",
                    &["communities: [\"1:70000\", \"large:1:2:99999999999\"]"],
                ),
            &[
                (ADV, "a", "spec.communities[0]", "out of range"),
                (ADV, "a", "spec.communities[1]", "out of range"),
            ],
        ),
        (
            "service selectors with aggregation",
            base()
                + &doc(
                    ADV,
                    "a",
                    &[
                        "aggregationLength: 28",
                        "serviceSelectors: [{matchLabels: {a: b}}]",
                    ],
                ),
            &[(ADV, "a", "spec.serviceSelectors", "aggregated")],
        ),
        (
            "conflicting localPref",
            base()
                + &doc(ADV, "a", &["localPref: 100", "ipAddressPools: [v4]"])
                + &doc(ADV, "b", &["localPref: 200", "peers: [p1]"]),
            &[(
                ADV,
                "b",
                "spec.localPref",
                "localPref 200 conflicts with localPref 100 of BGPAdvertisement a: both advertise IPAddressPool v4 as /32",
            )],
        ),
        (
            "invalid pool selector",
            base()
                + &doc(
                    ADV,
                    "a",
                    &["ipAddressPoolSelectors: [{matchLabels: {\"-bad\": x}}]"],
                ),
            &[(ADV, "a", "spec.ipAddressPoolSelectors[0].matchLabels", "")],
        ),
    ];
    run_table(&table);
}

#[test]
fn good_bgp_advertisements() {
    let base = || {
        pool("v4", &["10.0.0.0/26"])
            + &pool("v6", &["fc00::/64"])
            + &peer("p1", "10.0.0.1", &[])
            + &peer("p2", "10.0.0.2", &[])
    };
    let table: Vec<(&str, String)> = vec![
        (
            "different localPref, different aggregation",
            base()
                + &doc(ADV, "a", &["localPref: 100"])
                + &doc(
                    ADV,
                    "b",
                    &[
                        "localPref: 200",
                        "aggregationLength: 26",
                        "aggregationLengthV6: 64",
                    ],
                ),
        ),
        (
            "different localPref, disjoint peers",
            base()
                + &doc(ADV, "a", &["localPref: 100", "peers: [p1]"])
                + &doc(ADV, "b", &["localPref: 200", "peers: [p2]"]),
        ),
        (
            "different localPref, disjoint nodes",
            base()
                + &doc(
                    ADV,
                    "a",
                    &[
                        "localPref: 100",
                        "nodeSelectors: [{matchLabels: {zone: a}}]",
                    ],
                )
                + &doc(
                    ADV,
                    "b",
                    &[
                        "localPref: 200",
                        "nodeSelectors: [{matchLabels: {zone: b}}]",
                    ],
                ),
        ),
        (
            "unset localPref is compatible",
            base() + &doc(ADV, "a", &["localPref: 100"]) + &doc(ADV, "b", &[]),
        ),
        (
            "aggregation equal to the prefix",
            base()
                + &doc(
                    ADV,
                    "a",
                    &["aggregationLength: 26", "aggregationLengthV6: 64"],
                ),
        ),
    ];
    run_ok_table(&table);
}

#[test]
fn node_overlap_uses_nodes_when_present() {
    let peers = peer(
        "p1",
        "10.0.0.1",
        &["nodeSelectors: [{matchLabels: {rack: a}}]"],
    ) + &peer(
        "p2",
        "10.0.0.1",
        &["nodeSelectors: [{matchLabels: {zone: x}}]"],
    );
    let node = |name: &str, labels: &str| {
        format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {labels}\n")
    };
    // Without Nodes the selectors may overlap (a node could carry both labels).
    run_table(&[(
        "no nodes: statically overlapping",
        peers.clone(),
        &[(PEER, "p2", "spec.peerAddress", "duplicate session")],
    )]);
    // With Nodes, only what the cluster looks like counts.
    run_ok_table(&[(
        "nodes: no node carries both labels",
        peers.clone() + &node("n1", "{rack: a}") + &node("n2", "{zone: x}"),
    )]);
    run_table(&[(
        "nodes: one node carries both labels",
        peers + &node("n1", "{rack: a, zone: x}"),
        &[(PEER, "p2", "spec.peerAddress", "duplicate session")],
    )]);
}
