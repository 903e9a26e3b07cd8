//! Every generated CRD parses as an `apiextensions.k8s.io/v1` CustomResourceDefinition and
//! its schema is structural (the rules the API server enforces for v1 CRDs).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// Keywords that may not appear inside `anyOf`/`allOf`/`oneOf`/`not` branches.
const FORBIDDEN_IN_JUNCTORS: [&str; 7] = [
    "type",
    "description",
    "default",
    "additionalProperties",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
];

/// Returns every violation of the structural-schema rules below `path`.
fn structural_errors(schema: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        out.push(format!("{path}: schema is not an object"));
        return;
    };
    if obj.contains_key("$ref") {
        out.push(format!("{path}: $ref is not allowed"));
    }
    if obj.contains_key("definitions") || obj.contains_key("$defs") {
        out.push(format!("{path}: definitions are not allowed"));
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !int_or_string && !preserve {
        out.push(format!("{path}: type is not specified"));
    }
    if let Some(t) = obj.get("type").filter(|t| !t.is_string()) {
        out.push(format!("{path}: type must be a single string, got {t}"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }
    if obj.get("type").and_then(Value::as_str) == Some("array") && !obj.contains_key("items") {
        out.push(format!("{path}: array without items"));
    }
    if root {
        for key in ["additionalProperties", "nullable"] {
            if obj.contains_key(key) {
                out.push(format!("{path}: {key} is not allowed at the root"));
            }
        }
    }
    for junctor in ["anyOf", "allOf", "oneOf"] {
        if let Some(branches) = obj.get(junctor).and_then(Value::as_array) {
            for (i, b) in branches.iter().enumerate() {
                junctor_errors(b, &format!("{path}.{junctor}[{i}]"), out);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        junctor_errors(not, &format!("{path}.not"), out);
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            if root && name == "metadata" {
                metadata_errors(sub, &format!("{path}.metadata"), out);
            }
            structural_errors(sub, &format!("{path}.properties.{name}"), false, out);
        }
    }
    if let Some(items) = obj.get("items") {
        structural_errors(items, &format!("{path}.items"), false, out);
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        structural_errors(ap, &format!("{path}.additionalProperties"), false, out);
    }
}

/// Inside junctors only value validations are allowed, never structure.
fn junctor_errors(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(obj) = schema.as_object() {
        for key in FORBIDDEN_IN_JUNCTORS {
            if obj.contains_key(key) {
                out.push(format!("{path}: {key} is not allowed inside a junctor"));
            }
        }
    }
}

/// At the root, `metadata` may only restrict `name` and `generateName`.
fn metadata_errors(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for name in props.keys() {
            if name != "name" && name != "generateName" {
                out.push(format!(
                    "{path}: only name and generateName may be specified"
                ));
            }
        }
    }
}

#[test]
fn generated_crds_parse_and_are_structural() {
    for crd in ferrolb_crds::all_crds() {
        let yaml = ferrolb_crds::crd_yaml(&crd);
        let parsed: CustomResourceDefinition =
            serde_yaml::from_str(&yaml).expect("generated CRD YAML parses as a CRD");
        let name = parsed.metadata.name.clone().unwrap_or_default();
        assert_eq!(parsed.spec.group, "ferrolb.io", "{name}");
        assert_eq!(parsed.spec.scope, "Namespaced", "{name}");
        assert_eq!(
            name,
            format!("{}.{}", parsed.spec.names.plural, parsed.spec.group),
            "CRD name must be <plural>.<group>"
        );
        assert_eq!(parsed.spec.versions.len(), 1, "{name}");
        let version = &parsed.spec.versions[0];
        assert_eq!(version.name, "v1beta1");
        assert!(version.served && version.storage, "{name}");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: every ferrolb kind has a status subresource"
        );
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema present");
        let schema = serde_json::to_value(schema).expect("schema serialises");
        let mut errors = Vec::new();
        structural_errors(&schema, "openAPIV3Schema", true, &mut errors);
        assert!(errors.is_empty(), "{name} is not structural: {errors:#?}");
    }
}

#[test]
fn structural_checker_rejects_non_structural_schemas() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "a": { "description": "no type" },
            "b": { "$ref": "#/definitions/x", "type": "object" },
            "c": { "type": "string", "anyOf": [{ "type": "integer" }] },
            "d": { "type": "array" }
        }
    });
    let mut errors = Vec::new();
    structural_errors(&bad, "root", true, &mut errors);
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn printer_columns_and_categories() {
    for crd in ferrolb_crds::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["ferrolb".to_string()][..]),
            "{name}"
        );
        let version = &crd.spec.versions[0];
        if name != "communities.ferrolb.io" {
            assert!(
                version
                    .additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| !c.is_empty()),
                "{name} has printer columns"
            );
        }
    }
}
