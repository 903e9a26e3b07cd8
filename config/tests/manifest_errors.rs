//! Table tests: strict manifest parsing (YAML syntax, kinds, unknown fields, wrong types).

#[path = "fixtures/harness.rs"]
mod harness;

use ferrolb_config::manifest::parse_manifests;
use harness::{Want, assert_errors};

fn run(table: &[(&str, &str, &[Want])]) {
    for (case, yaml, want) in table {
        match parse_manifests(yaml) {
            Ok(r) => panic!("{case}: expected errors {want:?}, parsed {r:?}"),
            Err(got) => assert_errors(case, &got, want),
        }
    }
}

#[test]
fn bad_manifests() {
    let table: &[(&str, &str, &[Want])] = &[
        (
            "invalid YAML reports line and column",
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: a\nspec:\n  addresses: [10.0.0.0/24\n",
            &[("Manifest", "#1", "", "invalid YAML at line")],
        ),
        (
            "tab indentation in the second document",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\nkind: Node\n\tmetadata: {}\n",
            &[("Manifest", "#2", "", "invalid YAML at line 7")],
        ),
        (
            "unknown spec field",
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: a\nspec:\n  adresses: [10.0.0.0/24]\n  addresses: [10.0.0.0/24]\n",
            &[("IPAddressPool", "a", "spec.adresses", "unknown field")],
        ),
        (
            "unknown nested field inside a list",
            "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l\nspec:\n  preferredNodeSelectors:\n  - weight: 1\n    preference: {}\n    wieght: 2\n",
            &[(
                "L2Advertisement",
                "l",
                "spec.preferredNodeSelectors[0].wieght",
                "unknown field",
            )],
        ),
        (
            "unknown metadata and top-level fields",
            "apiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata:\n  name: c\n  labelz: {}\nspek: {}\nspec: {}\n",
            &[
                ("Community", "c", "metadata.labelz", "unknown field"),
                ("Community", "c", "spek", "unknown field"),
            ],
        ),
        (
            "unknown field inside a label selector",
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: b\nspec:\n  nodeSelectors:\n  - matchLabel: {a: b}\n",
            &[(
                "BGPAdvertisement",
                "b",
                "spec.nodeSelectors[0].matchLabel",
                "unknown field",
            )],
        ),
        (
            "wrong type: string ASN",
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  myASN: \"sixty\"\n  peerASN: 1\n  peerAddress: 10.0.0.1\n",
            &[("BGPPeer", "p", "spec.myASN", "invalid type")],
        ),
        (
            "wrong type: scalar addresses",
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: a\nspec:\n  addresses: 10.0.0.0/24\n",
            &[("IPAddressPool", "a", "spec.addresses", "invalid type")],
        ),
        (
            "wrong type inside a list",
            "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l\nspec:\n  interfaces: [eth0, {a: b}]\n",
            &[("L2Advertisement", "l", "spec.interfaces[1]", "invalid type")],
        ),
        (
            "negative number for an unsigned field",
            "apiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata:\n  name: b\nspec:\n  detectMultiplier: -3\n",
            &[("BFDProfile", "b", "spec.detectMultiplier", "invalid value")],
        ),
        (
            "missing required field",
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  myASN: 1\n",
            &[("BGPPeer", "p", "spec", "missing field `peerAddress`")],
        ),
        (
            "unknown kind",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
            &[("ConfigMap", "cm", "kind", "unsupported kind")],
        ),
        (
            "wrong version of a ferrolb kind",
            "apiVersion: ferrolb.io/v1\nkind: IPAddressPool\nmetadata:\n  name: a\nspec: {addresses: [10.0.0.0/24]}\n",
            &[("IPAddressPool", "a", "apiVersion", "unsupported apiVersion")],
        ),
        (
            "missing apiVersion and kind",
            "metadata:\n  name: a\n",
            &[
                ("Manifest", "a", "apiVersion", "required"),
                ("Manifest", "a", "kind", "required"),
            ],
        ),
        (
            "empty kind and an unknown ferrolb kind",
            "apiVersion: ferrolb.io/v1beta1\nkind: \"\"\nmetadata: {name: a}\n---\napiVersion: ferrolb.io/v1beta1\nkind: IPPool\nmetadata: {name: b}\n",
            &[
                ("Manifest", "a", "kind", "required"),
                (
                    "IPPool",
                    "b",
                    "kind",
                    "unsupported kind \"IPPool\" in ferrolb.io/v1beta1",
                ),
            ],
        ),
        (
            "document that is not a mapping",
            "- a\n- b\n",
            &[("Manifest", "#1", "", "must be a mapping")],
        ),
        (
            "missing name",
            "apiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata: {}\nspec: {}\n",
            &[("Community", "#1", "metadata.name", "required")],
        ),
        (
            "errors in several documents are all reported",
            "apiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec: {x: 1}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: b}\nspec: {echoMode: maybe}\n",
            &[
                ("Community", "c", "spec.x", "unknown field"),
                ("BFDProfile", "b", "spec.echoMode", "invalid type"),
            ],
        ),
        (
            "items of a List are read",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: ok}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: pod}\n",
            &[("Pod", "pod", "kind", "unsupported kind")],
        ),
        (
            "invalid base64 in a Secret",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: \"!!!\"}\n",
            &[("Secret", "s", "data.password", "")],
        ),
    ];
    run(table);
}

#[test]
fn empty_documents_are_skipped() {
    let yaml = "---\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n";
    let r = parse_manifests(yaml).expect("parses");
    assert_eq!(r.namespaces.len(), 1);
    assert!(parse_manifests("").expect("empty is fine").pools.is_empty());
}

#[test]
fn error_display_names_object_and_field() {
    let errs = parse_manifests(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool-a, namespace: ferrolb-system}\nspec: {addresses: [a], autoAsign: true}\n",
    )
    .expect_err("unknown field");
    assert_eq!(
        errs[0].to_string(),
        "IPAddressPool ferrolb-system/pool-a: spec.autoAsign: unknown field"
    );
}
