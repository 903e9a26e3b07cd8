//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge
//! patch (simplified) and server-side apply (simplified).
//!
//! Simplifications, acceptable for a test server:
//! - **Strategic merge patch** is applied as a JSON merge patch after dropping `$`-directive
//!   keys (`$patch`, `$retainKeys`, `$setElementOrder/...`): lists are replaced, never merged by
//!   their merge key. ferrolb patches maps and whole lists, for which the results agree.
//! - **Server-side apply** merges the applied configuration into the live object like a merge
//!   patch (lists are atomic, never merged by key) and creates the object if missing; field
//!   ownership, conflicts, `force` and removal of fields a manager stopped applying follow
//!   the simplified model of [`super::fields`].

use serde_json::Value;

use super::errors::ApiError;

/// The patch flavours, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchKind {
    /// The kind for a `Content-Type` header value (parameters after `;` ignored).
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// Parses an apply body (YAML, which includes JSON) into a JSON object.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_yaml::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("error decoding YAML apply configuration: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "apply configuration must be an object",
        ));
    }
    Ok(value)
}

fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Applies a patch body of `kind` to `target`, returning the patched object.
pub fn apply_patch(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match kind {
        PatchKind::Merge | PatchKind::Strategic => {
            let mut patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            if kind == PatchKind::Strategic {
                strip_directives(&mut patch);
            }
            json_patch::merge(&mut out, &patch);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            json_patch::patch(&mut out, &patch).map_err(|e| {
                ApiError::invalid(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Apply => {
            // Ownership-aware apply lives in `fields::apply`; this is the plain merge.
            let applied = parse_apply_body(body)?;
            json_patch::merge(&mut out, &applied);
        }
    }
    if !out.is_object() {
        return Err(ApiError::invalid("the patched document is not an object"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        let cases = [
            ("application/merge-patch+json", Some(PatchKind::Merge)),
            (
                "application/json-patch+json; charset=utf-8",
                Some(PatchKind::Json),
            ),
            (
                "application/strategic-merge-patch+json",
                Some(PatchKind::Strategic),
            ),
            ("application/apply-patch+yaml", Some(PatchKind::Apply)),
            ("application/json", None),
        ];
        for (ct, want) in cases {
            assert_eq!(PatchKind::from_content_type(ct).ok(), want, "{ct}");
        }
    }

    #[test]
    fn patch_table() {
        let target = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"ports": [1, 2]}});
        let cases: [(PatchKind, &str, Value); 5] = [
            (
                PatchKind::Merge,
                r#"{"metadata":{"labels":{"x":null,"z":"3"}}}"#,
                json!({"metadata": {"name": "a", "labels": {"y": "2", "z": "3"}}, "spec": {"ports": [1, 2]}}),
            ),
            (
                PatchKind::Json,
                r#"[{"op":"replace","path":"/spec/ports/0","value":9},{"op":"remove","path":"/metadata/labels/y"}]"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"ports": [9, 2]}}),
            ),
            (
                PatchKind::Strategic,
                r#"{"$setElementOrder/ports":[{"port":1}],"spec":{"ports":[3],"$retainKeys":["ports"]}}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"ports": [3]}}),
            ),
            (
                PatchKind::Apply,
                "metadata:\n  labels:\n    w: \"4\"\n",
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2", "w": "4"}}, "spec": {"ports": [1, 2]}}),
            ),
            (
                PatchKind::Apply,
                r#"{"spec":{"ports":[5]}}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"ports": [5]}}),
            ),
        ];
        for (kind, body, want) in cases {
            assert_eq!(
                apply_patch(kind, &target, body.as_bytes()).expect(body),
                want,
                "{body}"
            );
        }
    }

    #[test]
    fn bad_patches_are_errors() {
        let target = json!({"spec": {}});
        let cases = [
            (PatchKind::Merge, "not json", 400),
            (PatchKind::Merge, "[1]", 400),
            (PatchKind::Json, r#"{"op":"add"}"#, 400),
            (
                PatchKind::Json,
                r#"[{"op":"test","path":"/spec","value":1}]"#,
                422,
            ),
            (
                PatchKind::Json,
                r#"[{"op":"replace","path":"","value":1}]"#,
                422,
            ),
            (PatchKind::Apply, "- a\n- b\n", 400),
        ];
        for (kind, body, code) in cases {
            let err = apply_patch(kind, &target, body.as_bytes()).expect_err(body);
            assert_eq!(err.code, code, "{body}");
        }
    }
}
