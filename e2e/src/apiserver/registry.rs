//! Registry of served resource types: the built-ins the lab uses plus resources registered
//! from `CustomResourceDefinition` objects, and the discovery documents built from them.

use serde_json::{Value, json};

use super::errors::ApiError;

/// The verbs every served resource supports.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Group of CustomResourceDefinitions.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";
/// Plural of CustomResourceDefinitions.
pub const CRD_PLURAL: &str = "customresourcedefinitions";

/// One served resource: a (group, version, plural) with its kind and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// API version (`v1`, `v1beta1`).
    pub version: String,
    /// Plural resource name used in paths (`services`).
    pub plural: String,
    /// Singular name (`service`).
    pub singular: String,
    /// Kind (`Service`).
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether the resource has a `/status` subresource.
    pub status_subresource: bool,
    /// Short names (`svc`).
    pub short_names: Vec<String>,
    /// Whether this entry came from a CRD (and goes away with it).
    pub from_crd: bool,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key shared by all versions of the resource.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// A resource independent of version: objects of all versions share one store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

/// The set of served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    resources: Vec<ResourceInfo>,
}

fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
) -> ResourceInfo {
    ResourceInfo {
        group: group.to_string(),
        version: "v1".to_string(),
        plural: plural.to_string(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.to_string(),
        namespaced,
        status_subresource: status,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        from_crd: false,
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in resources the lab uses (all at version v1).
    pub fn builtin() -> Self {
        let resources = vec![
            builtin("", "namespaces", "Namespace", false, true, &["ns"]),
            builtin("", "nodes", "Node", false, true, &["no"]),
            builtin("", "services", "Service", true, true, &["svc"]),
            builtin("", "endpoints", "Endpoints", true, false, &["ep"]),
            builtin("", "pods", "Pod", true, true, &["po"]),
            builtin("", "secrets", "Secret", true, false, &[]),
            builtin("", "configmaps", "ConfigMap", true, false, &["cm"]),
            builtin(
                "",
                "serviceaccounts",
                "ServiceAccount",
                true,
                false,
                &["sa"],
            ),
            builtin("", "events", "Event", true, false, &["ev"]),
            builtin(
                "discovery.k8s.io",
                "endpointslices",
                "EndpointSlice",
                true,
                false,
                &[],
            ),
            builtin("coordination.k8s.io", "leases", "Lease", true, false, &[]),
            builtin("events.k8s.io", "events", "Event", true, false, &["ev"]),
            builtin(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                false,
                false,
                &[],
            ),
            builtin(
                CRD_GROUP,
                CRD_PLURAL,
                "CustomResourceDefinition",
                false,
                true,
                &["crd", "crds"],
            ),
        ];
        Registry { resources }
    }

    /// The resource served at `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Every served resource.
    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Registers (or re-registers) the served versions of a CRD; returns the new entries.
    pub fn register_crd(&mut self, crd: &Value) -> Result<Vec<ResourceInfo>, ApiError> {
        let infos = parse_crd(crd)?;
        if let Some(first) = infos.first() {
            let (group, plural) = (first.group.clone(), first.plural.clone());
            if self
                .resources
                .iter()
                .any(|r| r.group == group && r.plural == plural && !r.from_crd)
            {
                return Err(ApiError::invalid(format!(
                    "CustomResourceDefinition {plural}.{group}: spec.group: resource is built in"
                )));
            }
            self.unregister(&group, &plural);
        }
        self.resources.extend(infos.iter().cloned());
        Ok(infos)
    }

    /// Removes every version of a CRD-defined resource.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.resources
            .retain(|r| !(r.from_crd && r.group == group && r.plural == plural));
    }

    /// Versions served for a non-core group, in registration order (the first is preferred).
    fn group_versions(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for r in self.resources.iter().filter(|r| r.group == group) {
            if !versions.contains(&r.version) {
                versions.push(r.version.clone());
            }
        }
        versions
    }

    /// Non-core groups in first-registration order.
    fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            if !groups.contains(&r.group) {
                groups.push(r.group.clone());
            }
        }
        groups
    }

    /// `/api`: the core APIVersions document.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    /// `/apis/<group>`: one APIGroup, `None` if nothing is served in it.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let versions = self.group_versions(group);
        let preferred = versions.first()?;
        let entries: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        Some(json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred},
        }))
    }

    /// `/apis`: the APIGroupList.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .filter_map(|g| self.api_group(g))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/api/v1` or `/apis/<group>/<version>`: the APIResourceList, `None` if not served.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut entries = Vec::new();
        for r in self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
        {
            let mut entry = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            entries.push(entry);
            if r.status_subresource {
                entries.push(json!({
                    "name": format!("{}/status", r.plural),
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        if entries.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": entries,
        }))
    }
}

/// Splits `group/version` (`v1` alone is the core group).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

fn str_field<'a>(value: &'a Value, path: &[&str], crd: &str) -> Result<&'a str, ApiError> {
    let mut cur = value;
    for key in path {
        cur = cur.get(*key).unwrap_or(&Value::Null);
    }
    match cur.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid(format!(
            "CustomResourceDefinition {crd:?}: {}: Required value",
            path.join(".")
        ))),
    }
}

/// The resources a CRD object defines (one per served version).
pub fn parse_crd(crd: &Value) -> Result<Vec<ResourceInfo>, ApiError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = str_field(crd, &["spec", "group"], name)?;
    let plural = str_field(crd, &["spec", "names", "plural"], name)?;
    let kind = str_field(crd, &["spec", "names", "kind"], name)?;
    let scope = str_field(crd, &["spec", "scope"], name)?;
    let namespaced = match scope {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "CustomResourceDefinition {name:?}: spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            )));
        }
    };
    if !name.is_empty() && name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(format!(
            "CustomResourceDefinition {name:?}: metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let singular = crd
        .pointer("/spec/names/singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let short_names: Vec<String> = crd
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "CustomResourceDefinition {name:?}: spec.versions: Required value"
            ))
        })?;
    let mut infos = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "CustomResourceDefinition {name:?}: spec.versions[{i}].name: Required value"
                ))
            })?;
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        infos.push(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            kind: kind.to_string(),
            namespaced,
            status_subresource: v.pointer("/subresources/status").is_some(),
            short_names: short_names.clone(),
            from_crd: true,
        });
    }
    if infos.is_empty() {
        return Err(ApiError::invalid(format!(
            "CustomResourceDefinition {name:?}: spec.versions: Invalid value: must have at least one served version"
        )));
    }
    Ok(infos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(scope: &str, status: bool) -> Value {
        let mut v = json!({"name": "v1alpha1", "served": true, "storage": true});
        if status {
            v["subresources"] = json!({"status": {}});
        }
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.test"},
            "spec": {
                "group": "example.test",
                "scope": scope,
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [v, {"name": "v0", "served": false}],
            }
        })
    }

    #[test]
    fn builtins_scope_and_status() {
        let reg = Registry::builtin();
        let cases = [
            ("", "services", true, true),
            ("", "nodes", false, true),
            ("", "namespaces", false, true),
            ("", "endpoints", true, false),
            ("coordination.k8s.io", "leases", true, false),
            ("discovery.k8s.io", "endpointslices", true, false),
            ("events.k8s.io", "events", true, false),
        ];
        for (group, plural, namespaced, status) in cases {
            let info = reg.lookup(group, "v1", plural).expect(plural);
            assert_eq!(
                (info.namespaced, info.status_subresource),
                (namespaced, status),
                "{plural}"
            );
        }
        assert!(reg.lookup("", "v1", "widgets").is_none());
        assert_eq!(
            reg.lookup_kind("coordination.k8s.io/v1", "Lease")
                .map(|r| r.plural.as_str()),
            Some("leases")
        );
    }

    #[test]
    fn crd_registration_and_discovery() {
        let mut reg = Registry::builtin();
        let infos = reg
            .register_crd(&crd("Namespaced", true))
            .expect("register");
        assert_eq!(infos.len(), 1, "unserved version skipped");
        let info = reg
            .lookup("example.test", "v1alpha1", "widgets")
            .expect("served");
        assert!(info.namespaced && info.status_subresource);
        let list = reg
            .api_resource_list("example.test", "v1alpha1")
            .expect("discovery");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["widgets", "widgets/status"]);
        assert!(
            reg.api_group_list()["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "example.test")
        );
        // Re-registering replaces, scope change included.
        reg.register_crd(&crd("Cluster", false))
            .expect("re-register");
        let info = reg
            .lookup("example.test", "v1alpha1", "widgets")
            .expect("served");
        assert!(!info.namespaced && !info.status_subresource);
        assert_eq!(
            reg.resources()
                .iter()
                .filter(|r| r.plural == "widgets")
                .count(),
            1
        );
        reg.unregister("example.test", "widgets");
        assert!(reg.api_group("example.test").is_none());
    }

    #[test]
    fn crd_validation_errors_name_the_field() {
        let cases: [(&str, Value, &str); 4] = [
            ("/spec/group", Value::Null, "spec.group"),
            ("/spec/scope", json!("Global"), "spec.scope"),
            ("/spec/names/kind", json!(""), "spec.names.kind"),
            ("/metadata/name", json!("wrong.name"), "metadata.name"),
        ];
        for (pointer, value, field) in cases {
            let mut c = crd("Namespaced", false);
            *c.pointer_mut(pointer).unwrap() = value;
            let err = parse_crd(&c).expect_err(field);
            assert_eq!(err.code, 422);
            assert!(err.message.contains(field), "{}", err.message);
        }
        let mut builtin_clash = crd("Namespaced", false);
        builtin_clash["spec"]["group"] = json!("");
        assert!(Registry::builtin().register_crd(&builtin_clash).is_err());
    }
}
