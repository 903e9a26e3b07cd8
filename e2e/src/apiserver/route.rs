//! Request path and query parsing for the Kubernetes REST layout.

use std::collections::HashMap;

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/version`.
    Version,
    /// `/api`: core API versions.
    CoreApi,
    /// `/apis`: the group list.
    Apis,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`: a resource list.
    Discovery {
        /// Group, empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// A resource, collection or subresource path.
    Resource(ResourcePath),
}

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace segment, if any.
    pub namespace: Option<String>,
    /// Resource plural.
    pub plural: String,
    /// Object name, if any.
    pub name: Option<String>,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// The deprecated `/watch/` path prefix was used.
    pub legacy_watch: bool,
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let (legacy_watch, rest) = match rest.split_first() {
        Some((&"watch", tail)) => (true, tail),
        _ => (false, rest),
    };
    // `namespaces/<ns>/<plural>...` is a namespaced path unless the third segment is one of
    // the Namespace object's own subresources.
    let (namespace, rest) = match rest {
        ["namespaces", ns, third, tail @ ..] if !matches!(*third, "status" | "finalize") => (
            Some(ns.to_string()),
            std::iter::once(*third)
                .chain(tail.iter().copied())
                .collect::<Vec<_>>(),
        ),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
        legacy_watch,
    }))
}

/// Parses a request path (without query).
pub fn parse_path(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => Some(Route::Health),
        ["version"] => Some(Route::Version),
        ["api"] => Some(Route::CoreApi),
        ["api", version] => Some(Route::Discovery {
            group: String::new(),
            version: version.to_string(),
        }),
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis"] => Some(Route::Apis),
        ["apis", group] => Some(Route::Group(group.to_string())),
        ["apis", group, version] => Some(Route::Discovery {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

/// Parses a URL query string (`a=b&c=d`, percent-decoded; empty pairs skipped).
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        ns: Option<&str>,
        plural: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Option<Route> {
        Some(Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(Into::into),
            plural: plural.into(),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
            legacy_watch: false,
        }))
    }

    #[test]
    fn path_table() {
        let cases = [
            ("/api", Some(Route::CoreApi)),
            ("/apis", Some(Route::Apis)),
            ("/version", Some(Route::Version)),
            ("/healthz", Some(Route::Health)),
            (
                "/api/v1",
                Some(Route::Discovery {
                    group: "".into(),
                    version: "v1".into(),
                }),
            ),
            ("/apis/g.io", Some(Route::Group("g.io".into()))),
            (
                "/apis/g.io/v1",
                Some(Route::Discovery {
                    group: "g.io".into(),
                    version: "v1".into(),
                }),
            ),
            ("/api/v1/nodes", res("", None, "nodes", None, None)),
            (
                "/api/v1/nodes/n1/status",
                res("", None, "nodes", Some("n1"), Some("status")),
            ),
            ("/api/v1/services", res("", None, "services", None, None)),
            (
                "/api/v1/namespaces",
                res("", None, "namespaces", None, None),
            ),
            (
                "/api/v1/namespaces/default",
                res("", None, "namespaces", Some("default"), None),
            ),
            (
                "/api/v1/namespaces/default/status",
                res("", None, "namespaces", Some("default"), Some("status")),
            ),
            (
                "/api/v1/namespaces/default/finalize",
                res("", None, "namespaces", Some("default"), Some("finalize")),
            ),
            (
                "/api/v1/namespaces/ns/services",
                res("", Some("ns"), "services", None, None),
            ),
            (
                "/api/v1/namespaces/ns/services/a/",
                res("", Some("ns"), "services", Some("a"), None),
            ),
            (
                "/api/v1/namespaces/ns/services/a/status",
                res("", Some("ns"), "services", Some("a"), Some("status")),
            ),
            (
                "/apis/g.io/v1/namespaces/ns/things/t",
                res("g.io", Some("ns"), "things", Some("t"), None),
            ),
            ("/api/v1/namespaces/ns/services/a/status/x", None),
            ("/nope", None),
        ];
        for (path, want) in cases {
            assert_eq!(parse_path(path), want, "{path}");
        }
        let Some(Route::Resource(w)) = parse_path("/api/v1/watch/namespaces/ns/pods") else {
            panic!("watch path")
        };
        assert!(w.legacy_watch && w.namespace.as_deref() == Some("ns") && w.plural == "pods");
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some(
            "&watch=true&labelSelector=app%3Dweb%2Ctier+in+(a)&resourceVersion=",
        ));
        assert_eq!(q["watch"], "true");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["resourceVersion"], "");
        assert!(parse_query(None).is_empty());
    }
}
