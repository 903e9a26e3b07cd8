//! Minimal server-side-apply field ownership (`metadata.managedFields`).
//!
//! Model, simpler than the real structured-merge-diff but with the same observable rules for
//! maps of scalars: a field is a leaf path (objects are recursed, lists and scalars are
//! atomic leaves). Every write records its manager: `Apply` owns exactly the fields it
//! applied; other writes (`Update`: create, replace, merge/JSON/strategic patch) take over the
//! fields whose value they changed. An apply that would change a field owned by another
//! manager fails with 409 Conflict unless `force` is set, which transfers ownership. Fields a
//! manager applied before and omits now are removed unless another manager owns them.
//! Entries are encoded in the real `FieldsV1` shape (`{"f:spec": {"f:x": {}}}`); a client's
//! own edits to `managedFields` are ignored.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::errors::ApiError;

/// A field: the keys from the object root to a leaf.
pub type Path = Vec<String>;

/// Metadata fields the server owns; never tracked.
const SERVER_METADATA: [&str; 11] = [
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Which part of the object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource of a kind without a status subresource: every field.
    All,
    /// The main resource of a kind with a status subresource: everything but `.status`.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

impl Scope {
    fn admits(self, path: &Path) -> bool {
        let is_status = path.first().is_some_and(|k| k == "status");
        match self {
            Scope::All => true,
            Scope::Main => !is_status,
            Scope::Status => is_status,
        }
    }

    fn subresource(self) -> Option<&'static str> {
        (self == Scope::Status).then_some("status")
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `Some("status")` for status-subresource writes.
    pub subresource: Option<String>,
    /// apiVersion the manager wrote with.
    pub api_version: String,
    /// Time of the last write.
    pub time: String,
    /// Owned fields.
    pub fields: BTreeSet<Path>,
}

fn leaves_into(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                leaves_into(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The tracked leaf paths of an object (type and server-owned metadata excluded).
pub fn leaf_paths(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta
                        .iter()
                        .filter(|(mk, _)| !SERVER_METADATA.contains(&mk.as_str()))
                    {
                        leaves_into(mv, &mut vec!["metadata".into(), mk.clone()], &mut out);
                    }
                }
            }
            _ => leaves_into(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

/// The value at `path`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(obj, |cur, k| cur.as_object()?.get(k))
}

fn remove_path(obj: &mut Value, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
    }
}

/// Leaf paths whose value differs between two objects (added, removed or changed).
pub fn changed_paths(old: &Value, new: &Value) -> BTreeSet<Path> {
    leaf_paths(old)
        .union(&leaf_paths(new))
        .filter(|p| value_at(old, p) != value_at(new, p))
        .cloned()
        .collect()
}

fn encode(fields: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut cur = &mut root;
        for k in path {
            let next = cur.entry(format!("f:{k}")).or_insert_with(|| json!({}));
            match next {
                Value::Object(m) => cur = m,
                _ => break,
            }
        }
    }
    Value::Object(root)
}

fn decode_into(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                if let Some(key) = k.strip_prefix("f:") {
                    prefix.push(key.to_string());
                    decode_into(v, prefix, out);
                    prefix.pop();
                }
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// The entries recorded in an object's `metadata.managedFields`.
pub fn entries(obj: &Value) -> Vec<Entry> {
    let list = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .map(|e| {
            let s = |f: &str| e.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let mut fields = BTreeSet::new();
            if let Some(f) = e.get("fieldsV1") {
                decode_into(f, &mut Vec::new(), &mut fields);
            }
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                api_version: s("apiVersion"),
                time: s("time"),
                fields,
            }
        })
        .collect()
}

/// Writes entries (empty ones dropped) into `metadata.managedFields`.
pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        return;
    }
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn entry_mut<'a>(
    entries: &'a mut Vec<Entry>,
    manager: &str,
    operation: &str,
    scope: Scope,
) -> &'a mut Entry {
    let sub = scope.subresource().map(str::to_string);
    let pos = entries
        .iter()
        .position(|e| e.manager == manager && e.operation == operation && e.subresource == sub);
    let pos = pos.unwrap_or_else(|| {
        entries.push(Entry {
            manager: manager.to_string(),
            operation: operation.to_string(),
            subresource: sub,
            api_version: String::new(),
            time: String::new(),
            fields: BTreeSet::new(),
        });
        entries.len() - 1
    });
    &mut entries[pos]
}

/// A non-apply write by `manager`: it takes over the fields it changed (within `scope`).
/// `new` gets the resulting `managedFields`, derived from `old`'s.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
    api_version: &str,
    now: &str,
) {
    let mut list = old.map(entries).unwrap_or_default();
    let changed: BTreeSet<Path> = match old {
        Some(old) => changed_paths(old, new),
        None => leaf_paths(new),
    };
    let changed: BTreeSet<Path> = changed.into_iter().filter(|p| scope.admits(p)).collect();
    if !changed.is_empty() {
        for e in list.iter_mut() {
            e.fields.retain(|p| !changed.contains(p));
        }
        let present: BTreeSet<Path> = changed
            .into_iter()
            .filter(|p| value_at(new, p).is_some())
            .collect();
        let entry = entry_mut(&mut list, manager, "Update", scope);
        entry.fields.extend(present);
        entry.api_version = api_version.to_string();
        entry.time = now.to_string();
    }
    // A removed field is owned by nobody.
    for e in list.iter_mut() {
        e.fields.retain(|p| value_at(new, p).is_some());
    }
    set_entries(new, &list);
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` when creating): conflict
/// check, merge, removal of fields the manager no longer applies, ownership bookkeeping.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    scope: Scope,
    api_version: &str,
    now: &str,
) -> Result<Value, ApiError> {
    let empty = json!({});
    let base = live.unwrap_or(&empty);
    let applied_paths: BTreeSet<Path> = leaf_paths(applied)
        .into_iter()
        .filter(|p| scope.admits(p))
        .collect();
    let mut list = entries(base);
    let mut conflicts = Vec::new();
    for e in list.iter().filter(|e| e.manager != manager) {
        for p in e.fields.intersection(&applied_paths) {
            if value_at(base, p) != value_at(applied, p) {
                conflicts.push((e.manager.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let detail: Vec<String> = conflicts
            .iter()
            .map(|(m, p)| format!("conflict with {m:?}: .{}", p.join(".")))
            .collect();
        return Err(ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Apply failed with {} conflict(s): {}",
                conflicts.len(),
                detail.join(", ")
            ),
            details: None,
        });
    }
    for (m, p) in &conflicts {
        for e in list.iter_mut().filter(|e| &e.manager == m) {
            e.fields.remove(p);
        }
    }
    let mut merged = base.clone();
    json_patch::merge(&mut merged, applied);
    let previous = entry_mut(&mut list, manager, "Apply", scope).fields.clone();
    for dropped in previous.difference(&applied_paths) {
        let owned_elsewhere = list.iter().any(|e| {
            !(e.manager == manager
                && e.operation == "Apply"
                && e.subresource.as_deref() == scope.subresource())
                && e.fields.contains(dropped)
        });
        if !owned_elsewhere {
            remove_path(&mut merged, dropped);
        }
    }
    let entry = entry_mut(&mut list, manager, "Apply", scope);
    entry.fields = applied_paths;
    entry.api_version = api_version.to_string();
    entry.time = now.to_string();
    set_entries(&mut merged, &list);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn p(s: &str) -> Path {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn leaf_paths_skip_server_metadata() {
        let obj = json!({
            "apiVersion": "v1", "kind": "X",
            "metadata": {"name": "a", "uid": "u", "labels": {"app.kubernetes.io/name": "w"}},
            "spec": {"a": 1, "b": {"c": [1, 2]}, "e": {}},
        });
        let got = leaf_paths(&obj);
        let want: BTreeSet<Path> = [
            vec![
                "metadata".to_string(),
                "labels".into(),
                "app.kubernetes.io/name".into(),
            ],
            p("spec.a"),
            p("spec.b.c"),
            p("spec.e"),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn fields_v1_round_trip() {
        let fields: BTreeSet<Path> = [p("spec.a"), p("spec.b.c"), p("metadata.labels.x")]
            .into_iter()
            .collect();
        let mut obj = json!({"metadata": {}});
        let entry = Entry {
            manager: "m".into(),
            operation: "Apply".into(),
            subresource: None,
            api_version: "v1".into(),
            time: NOW.into(),
            fields: fields.clone(),
        };
        set_entries(&mut obj, &[entry]);
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:b"]["f:c"],
            json!({})
        );
        assert_eq!(entries(&obj)[0].fields, fields);
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let a = apply(
            None,
            &json!({"spec": {"holder": "a", "dur": 10}}),
            "ma",
            false,
            Scope::All,
            "v1",
            NOW,
        )
        .unwrap();
        // Same value from another manager: shared, no conflict.
        let shared = apply(
            Some(&a),
            &json!({"spec": {"dur": 10}}),
            "mb",
            false,
            Scope::All,
            "v1",
            NOW,
        )
        .unwrap();
        // Different value: conflict naming the owner and field.
        let err = apply(
            Some(&shared),
            &json!({"spec": {"holder": "b"}}),
            "mb",
            false,
            Scope::All,
            "v1",
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("\"ma\"") && err.message.contains(".spec.holder"),
            "{}",
            err.message
        );
        // Force takes it over; ma then no longer owns it.
        let both = json!({"spec": {"holder": "b", "dur": 10}});
        let forced = apply(Some(&shared), &both, "mb", true, Scope::All, "v1", NOW).unwrap();
        assert_eq!(forced["spec"]["holder"], "b");
        let ma = entries(&forced)
            .into_iter()
            .find(|e| e.manager == "ma")
            .unwrap();
        assert_eq!(ma.fields, [p("spec.dur")].into_iter().collect());
        // ma stops applying dur: still owned by mb, so it stays.
        let other = json!({"metadata": {"labels": {"m": "a"}}});
        let kept = apply(Some(&forced), &other, "ma", false, Scope::All, "v1", NOW).unwrap();
        assert_eq!(kept["spec"]["dur"], 10);
        // mb stops applying holder and dur: nobody else owns them, so they go.
        let labels = json!({"metadata": {"labels": {"x": "1"}}});
        let gone = apply(Some(&kept), &labels, "mb", false, Scope::All, "v1", NOW).unwrap();
        assert_eq!(gone["spec"], json!({}));
    }

    #[test]
    fn updates_take_over_changed_fields() {
        let a = apply(
            None,
            &json!({"spec": {"holder": "a", "dur": 10}}),
            "ma",
            false,
            Scope::All,
            "v1",
            NOW,
        )
        .unwrap();
        let mut b = a.clone();
        b["spec"]["holder"] = json!("b");
        record_update(Some(&a), &mut b, "patcher", Scope::All, "v1", NOW);
        let owners: Vec<(String, String, usize)> = entries(&b)
            .into_iter()
            .map(|e| (e.manager, e.operation, e.fields.len()))
            .collect();
        assert_eq!(
            owners,
            [
                ("ma".into(), "Apply".into(), 1),
                ("patcher".into(), "Update".into(), 1)
            ]
        );
        // Re-applying the old holder now conflicts with the updater.
        let err = apply(
            Some(&b),
            &json!({"spec": {"holder": "a"}}),
            "ma",
            false,
            Scope::All,
            "v1",
            NOW,
        )
        .unwrap_err();
        assert!(err.message.contains("patcher"), "{}", err.message);
        // Status scope ignores main fields and vice versa.
        let st = apply(
            Some(&b),
            &json!({"spec": {"holder": "z"}, "status": {"ok": true}}),
            "ms",
            false,
            Scope::Status,
            "v1",
            NOW,
        )
        .unwrap();
        let ms = entries(&st)
            .into_iter()
            .find(|e| e.manager == "ms")
            .unwrap();
        assert_eq!(
            (ms.fields, ms.subresource),
            (
                [p("status.ok")].into_iter().collect(),
                Some("status".to_string())
            )
        );
    }
}
