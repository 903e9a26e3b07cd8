//! CEL (`x-kubernetes-validations`) rules of every CRD, evaluated client-side with kube's CEL
//! validator the way the API server would: one accepted and at least one rejected object per
//! kind, plus a case for every single-object rule.

use kube::core::cel::Validator;
use serde_json::{Value, json};

fn schema_of(kind: &str) -> Value {
    let crd = ferrolb_crds::all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .and_then(|s| s.open_api_v3_schema)
        .expect("schema");
    serde_json::to_value(schema).expect("schema serialises")
}

fn object(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1",
        "kind": kind,
        "metadata": { "name": "x", "namespace": "ferrolb-system" },
        "spec": spec,
    })
}

/// Validates `spec` of `kind`; returns the messages of the failed rules.
fn errors(kind: &str, spec: Value) -> Vec<String> {
    errors_update(kind, spec, None)
}

fn errors_update(kind: &str, spec: Value, old_spec: Option<Value>) -> Vec<String> {
    let obj = object(kind, spec);
    let old = old_spec.map(|s| object(kind, s));
    match Validator::new().validate(&schema_of(kind), &obj, old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

fn assert_accepted(kind: &str, spec: Value) {
    let errs = errors(kind, spec.clone());
    assert!(
        errs.is_empty(),
        "{kind} {spec} should be accepted, got {errs:?}"
    );
}

fn assert_rejected(kind: &str, spec: Value, message: &str) {
    let errs = errors(kind, spec.clone());
    assert!(
        errs.iter().any(|e| e.contains(message)),
        "{kind} {spec} should be rejected with {message:?}, got {errs:?}"
    );
}

#[test]
fn ipaddresspool() {
    assert_accepted(
        "IPAddressPool",
        json!({ "addresses": ["10.0.0.0/24", "10.0.1.1-10.0.1.9", "fc00::/64"],
                "serviceAllocation": { "priority": 10, "namespaces": ["a", "b"] } }),
    );
    assert_rejected(
        "IPAddressPool",
        json!({ "addresses": ["10.0.0.1"] }),
        "CIDR",
    );
    assert_rejected(
        "IPAddressPool",
        json!({ "addresses": ["10.0.0.0/24"], "serviceAllocation": { "namespaces": ["a", "a"] } }),
        "duplicates",
    );
    assert_rejected(
        "IPAddressPool",
        json!({ "addresses": ["10.0.0.0/24"], "serviceAllocation": { "priority": -1 } }),
        "priority must be >= 0",
    );
}

#[test]
fn l2advertisement() {
    assert_accepted(
        "L2Advertisement",
        json!({ "ipAddressPools": ["a"], "interfaces": ["eth0"],
                "preferredNodeSelectors": [{ "weight": 100, "preference": { "matchLabels": { "z": "1" } } }] }),
    );
    for weight in [0, 101] {
        assert_rejected(
            "L2Advertisement",
            json!({ "preferredNodeSelectors": [{ "weight": weight, "preference": {} }] }),
            "weight must be between 1 and 100",
        );
    }
    assert_rejected(
        "L2Advertisement",
        json!({ "interfaces": ["a-very-long-interface-name"] }),
        "interface names",
    );
}

#[test]
fn bgpadvertisement() {
    assert_accepted(
        "BGPAdvertisement",
        json!({ "aggregationLength": 24, "aggregationLengthV6": 64, "localPref": 100,
                "communities": ["65000:1", "large:1:2:3", "my-alias"] }),
    );
    assert_accepted("BGPAdvertisement", json!({}));
    assert_rejected(
        "BGPAdvertisement",
        json!({ "aggregationLength": 33 }),
        "between 1 and 32",
    );
    assert_rejected(
        "BGPAdvertisement",
        json!({ "aggregationLength": 0 }),
        "between 1 and 32",
    );
    assert_rejected(
        "BGPAdvertisement",
        json!({ "aggregationLengthV6": 129 }),
        "between 1 and 128",
    );
    assert_rejected(
        "BGPAdvertisement",
        json!({ "aggregationLength": 24, "serviceSelectors": [{ "matchLabels": { "a": "b" } }] }),
        "serviceSelectors cannot be combined",
    );
    assert_accepted(
        "BGPAdvertisement",
        json!({ "serviceSelectors": [{ "matchLabels": { "a": "b" } }] }),
    );
}

fn peer(extra: Value) -> Value {
    let mut spec = json!({ "myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1" });
    for (k, v) in extra.as_object().expect("object").clone() {
        if v.is_null() {
            spec.as_object_mut().expect("object").remove(&k);
        } else {
            spec[k] = v;
        }
    }
    spec
}

#[test]
fn bgppeer() {
    assert_accepted(
        "BGPPeer",
        peer(
            json!({ "holdTime": "9s", "keepaliveTime": "3s", "connectTime": "5s",
                     "routerID": "10.0.0.1", "sourceAddress": "fd00::1", "peerPort": 1179 }),
        ),
    );
    assert_accepted(
        "BGPPeer",
        peer(json!({ "peerASN": null, "dynamicASN": "external" })),
    );
    assert_accepted(
        "BGPPeer",
        peer(json!({ "holdTime": "0s", "keepaliveTime": "0s" })),
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "dynamicASN": "internal" })),
        "exactly one of peerASN",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "peerASN": null })),
        "exactly one of peerASN",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "holdTime": "30s", "keepaliveTime": "60s" })),
        "keepaliveTime must be lower than or equal to holdTime",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "holdTime": "2s" })),
        "holdTime must be 0 or between 3s",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "connectTime": "1500ms" })),
        "connectTime must be whole seconds",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "peerAddress": "router-1" })),
        "peerAddress must be an IP",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "routerID": "fd00::1" })),
        "routerID must be an IPv4",
    );
    assert_rejected(
        "BGPPeer",
        peer(json!({ "peerPort": 0 })),
        "peerPort must be between 1 and 65535",
    );
}

#[test]
fn bgppeer_graceful_restart_is_immutable() {
    let before = peer(json!({ "enableGracefulRestart": false }));
    let after = peer(json!({ "enableGracefulRestart": true }));
    let errs = errors_update("BGPPeer", after, Some(before.clone()));
    assert!(errs.iter().any(|e| e.contains("immutable")), "{errs:?}");
    assert!(errors_update("BGPPeer", before.clone(), Some(before)).is_empty());
}

#[test]
fn bfdprofile() {
    assert_accepted(
        "BFDProfile",
        json!({ "receiveInterval": 100, "transmitInterval": 100, "detectMultiplier": 3 }),
    );
    assert_accepted("BFDProfile", json!({}));
    assert_rejected(
        "BFDProfile",
        json!({ "receiveInterval": 9 }),
        "receiveInterval must be between 10 and 60000",
    );
    assert_rejected(
        "BFDProfile",
        json!({ "transmitInterval": 60001 }),
        "transmitInterval must be between",
    );
    assert_rejected(
        "BFDProfile",
        json!({ "detectMultiplier": 1 }),
        "detectMultiplier must be between 2 and 255",
    );
    assert_rejected(
        "BFDProfile",
        json!({ "minimumTtl": 255 }),
        "minimumTtl must be between 1 and 254",
    );
    assert_rejected(
        "BFDProfile",
        json!({ "echoInterval": 5 }),
        "echoInterval must be between",
    );
}

#[test]
fn community() {
    assert_accepted(
        "Community",
        json!({ "communities": [{ "name": "no-export", "value": "65535:65281" },
                                { "name": "big", "value": "large:64512:1:2" }] }),
    );
    assert_rejected(
        "Community",
        json!({ "communities": [{ "name": "a", "value": "1:2:3" }] }),
        "A:B or large:A:B:C",
    );
    assert_rejected(
        "Community",
        json!({ "communities": [{ "name": "a", "value": "1:2" }, { "name": "a", "value": "1:3" }] }),
        "unique",
    );
}

fn status_object(kind: &str, node: &str) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": kind,
        "metadata": { "name": "s", "namespace": "ferrolb-system" },
        "spec": {},
        "status": { "node": node, "serviceName": "web", "serviceNamespace": "default" },
    })
}

#[test]
fn status_kinds_pin_node_and_service() {
    for kind in ["ServiceL2Status", "ServiceBGPStatus"] {
        let schema = schema_of(kind);
        let validator = Validator::new();
        let a = status_object(kind, "node-a");
        let b = status_object(kind, "node-b");
        assert!(
            validator.validate(&schema, &a, None).is_ok(),
            "{kind} create accepted"
        );
        assert!(
            validator.validate(&schema, &a, Some(&a)).is_ok(),
            "{kind} unchanged update accepted"
        );
        let errs = validator
            .validate(&schema, &b, Some(&a))
            .expect_err("node change rejected");
        assert!(
            errs.into_vec()
                .iter()
                .any(|e| e.message.contains("node is immutable")),
            "{kind}"
        );
    }
}
