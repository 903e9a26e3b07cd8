//! Strict parsing of multi-document YAML manifests into a [`Resources`] snapshot.
//!
//! This is what `ferrolbctl validate`, the admission webhook and the lab use to read
//! objects that did not come through the API server. Unlike the lenient API types (which
//! must decode objects written by newer versions), manifests are checked strictly:
//!
//! * invalid YAML is reported with its line and column;
//! * every document must carry `apiVersion` and `kind`; accepted are the
//!   `ferrolb.io/v1beta1` kinds, `v1` `Namespace`, `Node`, `Secret` and `Service`, and `v1` `List`
//!   (whose `items` are read the same way); anything else is an error;
//! * unknown fields are errors naming the full field path (`spec.adresses`);
//! * values of the wrong type are errors naming the field path (`spec.myASN`).
//!
//! Empty documents (`---` with nothing after it, comments only) are skipped. Every problem
//! in every document is reported; nothing panics on any input.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

pub use crate::build::Resources;
use crate::error::{ConfigError, sort_errors};

/// Kind used in errors about a document that has no usable identity.
pub const MANIFEST_KIND: &str = "Manifest";

/// Parses every document of `yaml` into a snapshot; errors for all documents, sorted.
pub fn parse_manifests(yaml: &str) -> Result<Resources, Vec<ConfigError>> {
    let mut resources = Resources::default();
    let mut errors = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let doc_name = format!("#{}", index + 1);
        match Value::deserialize(document) {
            Ok(value) => read_document(value, &doc_name, &mut resources, &mut errors),
            Err(e) => {
                errors.push(yaml_error(&doc_name, &e));
                // The YAML stream is unusable past a syntax error.
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(resources)
    } else {
        sort_errors(&mut errors);
        Err(errors)
    }
}

/// Renders a snapshot as a multi-document YAML manifest that [`parse_manifests`] reads back
/// into an equal snapshot.
pub fn to_yaml(resources: &Resources) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    fn push<T: Serialize>(out: &mut String, items: &[T]) -> Result<(), serde_yaml::Error> {
        for item in items {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(item)?);
        }
        Ok(())
    }
    push(&mut out, &resources.namespaces)?;
    push(&mut out, &resources.nodes)?;
    push(&mut out, &resources.secrets)?;
    push(&mut out, &resources.pools)?;
    push(&mut out, &resources.bfd_profiles)?;
    push(&mut out, &resources.communities)?;
    push(&mut out, &resources.peers)?;
    push(&mut out, &resources.bgp_advertisements)?;
    push(&mut out, &resources.l2_advertisements)?;
    push(&mut out, &resources.services)?;
    push(&mut out, &resources.service_l2_statuses)?;
    push(&mut out, &resources.service_bgp_statuses)?;
    Ok(out)
}

fn yaml_error(doc_name: &str, e: &serde_yaml::Error) -> ConfigError {
    let reason = match e.location() {
        Some(loc) => format!(
            "invalid YAML at line {}, column {}: {}",
            loc.line(),
            loc.column(),
            strip_location(&e.to_string())
        ),
        None => format!("invalid YAML: {e}"),
    };
    ConfigError::new(MANIFEST_KIND, "", doc_name, "", reason)
}

/// serde_yaml appends " at line L column C" to its messages; the location is reported
/// separately, so drop the duplicate.
fn strip_location(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Identity of a document, read leniently before the typed decode so that even a document
/// that fails to decode is reported under its kind and name.
struct Identity {
    kind: String,
    namespace: String,
    name: String,
}

impl Identity {
    fn error(&self, field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(
            self.kind.clone(),
            self.namespace.clone(),
            self.name.clone(),
            field,
            reason,
        )
    }
}

fn str_at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let mut v = value;
    for k in keys {
        v = v.as_mapping()?.get(*k)?;
    }
    v.as_str()
}

fn read_document(
    value: Value,
    doc_name: &str,
    resources: &mut Resources,
    errors: &mut Vec<ConfigError>,
) {
    if value.is_null() {
        return;
    }
    if value.as_mapping().is_none() {
        errors.push(ConfigError::new(
            MANIFEST_KIND,
            "",
            doc_name,
            "",
            "document must be a mapping with apiVersion, kind and metadata",
        ));
        return;
    }
    let non_empty = |keys: &[&str]| {
        str_at(&value, keys)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = non_empty(&["kind"]);
    let api_version = non_empty(&["apiVersion"]);
    let id = Identity {
        kind: kind.clone().unwrap_or_else(|| MANIFEST_KIND.to_owned()),
        namespace: str_at(&value, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_owned(),
        name: str_at(&value, &["metadata", "name"])
            .map(str::to_owned)
            .unwrap_or_else(|| doc_name.to_owned()),
    };
    let kind_missing = kind.is_none();
    let (Some(kind), Some(api_version)) = (kind, api_version.clone()) else {
        if api_version.is_none() {
            errors.push(id.error("apiVersion", "required (a non-empty string)"));
        }
        if kind_missing {
            errors.push(id.error("kind", "required (a non-empty string)"));
        }
        return;
    };
    match (api_version.as_str(), kind.as_str()) {
        (ferrolb_crds::API_VERSION, "IPAddressPool") => {
            decode_into(value, &id, &mut resources.pools, errors)
        }
        (ferrolb_crds::API_VERSION, "L2Advertisement") => {
            decode_into(value, &id, &mut resources.l2_advertisements, errors)
        }
        (ferrolb_crds::API_VERSION, "BGPAdvertisement") => {
            decode_into(value, &id, &mut resources.bgp_advertisements, errors)
        }
        (ferrolb_crds::API_VERSION, "BGPPeer") => {
            decode_into(value, &id, &mut resources.peers, errors)
        }
        (ferrolb_crds::API_VERSION, "BFDProfile") => {
            decode_into(value, &id, &mut resources.bfd_profiles, errors)
        }
        (ferrolb_crds::API_VERSION, "Community") => {
            decode_into(value, &id, &mut resources.communities, errors)
        }
        (ferrolb_crds::API_VERSION, "ServiceL2Status") => {
            decode_into(value, &id, &mut resources.service_l2_statuses, errors)
        }
        (ferrolb_crds::API_VERSION, "ServiceBGPStatus") => {
            decode_into(value, &id, &mut resources.service_bgp_statuses, errors)
        }
        ("v1", "Namespace") => decode_into(value, &id, &mut resources.namespaces, errors),
        ("v1", "Node") => decode_into(value, &id, &mut resources.nodes, errors),
        ("v1", "Secret") => decode_into(value, &id, &mut resources.secrets, errors),
        ("v1", "Service") => decode_into(value, &id, &mut resources.services, errors),
        ("v1", "List") => read_list(value, &id, resources, errors),
        (ferrolb_crds::API_VERSION, kind) => {
            errors.push(id.error(
                "kind",
                format!(
                    "unsupported kind {kind:?} in {}; expected IPAddressPool, \
                     L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community, \
                     ServiceL2Status or ServiceBGPStatus",
                    ferrolb_crds::API_VERSION
                ),
            ));
        }
        (api_version, kind) if api_version.starts_with("ferrolb.io/") => {
            errors.push(id.error(
                "apiVersion",
                format!(
                    "unsupported apiVersion {api_version:?} for kind {kind:?}; \
                     ferrolb kinds are served as {}",
                    ferrolb_crds::API_VERSION
                ),
            ));
        }
        (api_version, kind) => {
            errors.push(id.error(
                "kind",
                format!(
                    "unsupported kind {kind:?} (apiVersion {api_version:?}); expected a \
                     {} kind or v1 Namespace, Node, Secret, Service or List",
                    ferrolb_crds::API_VERSION
                ),
            ));
        }
    }
}

fn read_list(
    value: Value,
    id: &Identity,
    resources: &mut Resources,
    errors: &mut Vec<ConfigError>,
) {
    let Value::Mapping(mut map) = value else {
        return;
    };
    for key in map.keys() {
        match key.as_str() {
            Some("apiVersion" | "kind" | "items" | "metadata") => {}
            Some(other) => errors.push(id.error(other, "unknown field")),
            None => errors.push(id.error("", "mapping keys must be strings")),
        }
    }
    match map.remove("items") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let item_name = format!("{}.items[{i}]", id.name);
                read_document(item, &item_name, resources, errors);
            }
        }
        Some(_) => errors.push(id.error("items", "must be a list of objects")),
    }
}

fn decode_into<T: DeserializeOwned>(
    value: Value,
    id: &Identity,
    out: &mut Vec<T>,
    errors: &mut Vec<ConfigError>,
) {
    if str_at(&value, &["metadata", "name"]).is_none_or(str::is_empty) {
        errors.push(id.error("metadata.name", "required (a non-empty string)"));
    }
    let mut unknown: Vec<String> = Vec::new();
    let result = {
        let mut record = |path: serde_ignored::Path<'_>| {
            let field = ignored_path(&path);
            // kube's generated root types skip `apiVersion` and `kind` rather than read
            // them; both were checked when dispatching.
            if field != "apiVersion" && field != "kind" {
                unknown.push(field);
            }
        };
        let de = serde_ignored::Deserializer::new(value, &mut record);
        serde_path_to_error::deserialize::<_, T>(de)
    };
    match result {
        Ok(obj) => {
            if unknown.is_empty() {
                out.push(obj);
            } else {
                for field in unknown {
                    errors.push(id.error(field, "unknown field"));
                }
            }
        }
        Err(e) => {
            let field = error_path(e.path());
            let reason = strip_location(&e.inner().to_string()).to_owned();
            errors.push(id.error(field, reason));
        }
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    match path {
        serde_ignored::Path::Root => String::new(),
        serde_ignored::Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        serde_ignored::Path::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

fn error_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key }
            | serde_path_to_error::Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}
