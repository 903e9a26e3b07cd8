//! Validated Kubernetes label selectors, evaluated without a kube client.
//!
//! [`LabelSelector::from_k8s`] checks a `metav1.LabelSelector` the way the API server does
//! (operators, values per operator, label key and value syntax) and reports every problem
//! with its field path relative to the selector (`matchExpressions[1].operator`).
//! [`LabelSelector::matches`] then evaluates it against a label map.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

/// Longest label name (the part after an optional `prefix/`) and longest label value.
pub const MAX_LABEL_NAME_LEN: usize = 63;
/// Longest DNS-subdomain prefix of a label key.
pub const MAX_LABEL_PREFIX_LEN: usize = 253;

/// One `matchExpressions` operator with its values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// The label is present and its value is one of these (never empty).
    In(BTreeSet<String>),
    /// The label is absent, or present with a value not among these (never empty).
    NotIn(BTreeSet<String>),
    /// The label is present, whatever its value.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One validated `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
}

impl Requirement {
    /// The label key the requirement tests.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator and its values.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// True if `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.operator {
            Operator::In(values) => value.is_some_and(|v| values.contains(v)),
            Operator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// What is wrong with a selector field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorErrorKind {
    /// The operator is not `In`, `NotIn`, `Exists` or `DoesNotExist` (case-sensitive).
    #[error("unknown operator `{operator}`; expected In, NotIn, Exists or DoesNotExist")]
    UnknownOperator {
        /// The operator as written.
        operator: String,
    },
    /// `In` or `NotIn` without values.
    #[error("operator {operator} needs at least one value")]
    MissingValues {
        /// `In` or `NotIn`.
        operator: &'static str,
    },
    /// `Exists` or `DoesNotExist` with values.
    #[error("operator {operator} takes no values")]
    UnexpectedValues {
        /// `Exists` or `DoesNotExist`.
        operator: &'static str,
    },
    /// A label key with bad syntax.
    #[error("invalid label key `{key}`: {reason}")]
    InvalidKey {
        /// The key as written.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A label value with bad syntax.
    #[error("invalid label value `{value}`: {reason}")]
    InvalidValue {
        /// The value as written.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

/// A selector problem with the path of the offending field, relative to the selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct SelectorError {
    /// Field path relative to the selector: `matchLabels`, `matchLabels[app]`,
    /// `matchExpressions[1].key`, `matchExpressions[1].operator`,
    /// `matchExpressions[1].values`, `matchExpressions[1].values[0]`.
    pub path: String,
    /// The problem.
    pub kind: SelectorErrorKind,
}

impl SelectorError {
    /// The same error with `prefix` and a `.` put before its path, to place it inside a
    /// larger object (`spec.serviceAllocation.serviceSelectors[0]`).
    pub fn with_prefix(mut self, prefix: &str) -> SelectorError {
        if !prefix.is_empty() {
            self.path = format!("{prefix}.{}", self.path);
        }
        self
    }
}

/// A validated label selector: all `matchLabels` pairs and all `matchExpressions` must hold.
///
/// The empty selector matches every label set. Requirements are kept sorted, so selectors
/// that differ only in expression order compare equal and display the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSelector {
    match_labels: BTreeMap<String, String>,
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// Validates a Kubernetes `LabelSelector`, returning every problem found.
    pub fn from_k8s(selector: &metav1::LabelSelector) -> Result<LabelSelector, Vec<SelectorError>> {
        let mut errors = Vec::new();
        let match_labels = selector.match_labels.clone().unwrap_or_default();
        check_match_labels(&match_labels, &mut errors);

        let mut requirements = Vec::new();
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let at = |field: &str| format!("matchExpressions[{i}].{field}");
            let mut ok = true;
            if let Err(reason) = validate_label_key(&expr.key) {
                ok = false;
                errors.push(SelectorError {
                    path: at("key"),
                    kind: SelectorErrorKind::InvalidKey {
                        key: expr.key.clone(),
                        reason,
                    },
                });
            }
            let values = expr.values.as_deref().unwrap_or_default();
            for (j, value) in values.iter().enumerate() {
                if let Err(reason) = validate_label_value(value) {
                    ok = false;
                    errors.push(SelectorError {
                        path: at(&format!("values[{j}]")),
                        kind: SelectorErrorKind::InvalidValue {
                            value: value.clone(),
                            reason,
                        },
                    });
                }
            }
            let set = || values.iter().cloned().collect::<BTreeSet<_>>();
            let operator = match expr.operator.as_str() {
                op @ ("In" | "NotIn") if values.is_empty() => {
                    errors.push(SelectorError {
                        path: at("values"),
                        kind: SelectorErrorKind::MissingValues {
                            operator: if op == "In" { "In" } else { "NotIn" },
                        },
                    });
                    None
                }
                op @ ("Exists" | "DoesNotExist") if !values.is_empty() => {
                    errors.push(SelectorError {
                        path: at("values"),
                        kind: SelectorErrorKind::UnexpectedValues {
                            operator: if op == "Exists" {
                                "Exists"
                            } else {
                                "DoesNotExist"
                            },
                        },
                    });
                    None
                }
                "In" => Some(Operator::In(set())),
                "NotIn" => Some(Operator::NotIn(set())),
                "Exists" => Some(Operator::Exists),
                "DoesNotExist" => Some(Operator::DoesNotExist),
                other => {
                    errors.push(SelectorError {
                        path: at("operator"),
                        kind: SelectorErrorKind::UnknownOperator {
                            operator: other.to_owned(),
                        },
                    });
                    None
                }
            };
            if let (true, Some(operator)) = (ok, operator) {
                requirements.push(Requirement {
                    key: expr.key.clone(),
                    operator,
                });
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        requirements.sort();
        requirements.dedup();
        Ok(LabelSelector {
            match_labels,
            requirements,
        })
    }

    /// A selector of `matchLabels` only (like a Service's `spec.selector`), validated.
    pub fn from_match_labels(
        labels: &BTreeMap<String, String>,
    ) -> Result<LabelSelector, Vec<SelectorError>> {
        let mut errors = Vec::new();
        check_match_labels(labels, &mut errors);
        if errors.is_empty() {
            Ok(LabelSelector {
                match_labels: labels.clone(),
                requirements: Vec::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// True if the selector has no constraint (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.requirements.is_empty()
    }

    /// The `matchLabels` pairs.
    pub fn match_labels(&self) -> &BTreeMap<String, String> {
        &self.match_labels
    }

    /// The `matchExpressions` requirements, sorted.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True if `labels` satisfy every `matchLabels` pair and every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl TryFrom<&metav1::LabelSelector> for LabelSelector {
    type Error = Vec<SelectorError>;

    fn try_from(selector: &metav1::LabelSelector) -> Result<LabelSelector, Vec<SelectorError>> {
        LabelSelector::from_k8s(selector)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical Kubernetes text form, e.g. `app=web,tier in (a,b),!legacy,zone`:
    /// `matchLabels` as `k=v`, then requirements as `k in (..)`, `k notin (..)`, `k`, `!k`,
    /// each group sorted. The empty selector displays as the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if std::mem::take(&mut first) {
                Ok(())
            } else {
                f.write_str(",")
            }
        };
        for (k, v) in &self.match_labels {
            sep(f)?;
            write!(f, "{k}={v}")?;
        }
        let list = |values: &BTreeSet<String>| values.iter().cloned().collect::<Vec<_>>().join(",");
        for r in &self.requirements {
            sep(f)?;
            match &r.operator {
                Operator::In(values) => write!(f, "{} in ({})", r.key, list(values))?,
                Operator::NotIn(values) => write!(f, "{} notin ({})", r.key, list(values))?,
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

fn check_match_labels(labels: &BTreeMap<String, String>, errors: &mut Vec<SelectorError>) {
    for (key, value) in labels {
        if let Err(reason) = validate_label_key(key) {
            errors.push(SelectorError {
                path: "matchLabels".to_owned(),
                kind: SelectorErrorKind::InvalidKey {
                    key: key.clone(),
                    reason,
                },
            });
        }
        if let Err(reason) = validate_label_value(value) {
            errors.push(SelectorError {
                path: format!("matchLabels[{key}]"),
                kind: SelectorErrorKind::InvalidValue {
                    value: value.clone(),
                    reason,
                },
            });
        }
    }
}

/// True for `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// True for a DNS-1123 subdomain: dot-separated labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`,
/// at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_LABEL_PREFIX_LEN
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
                    alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Checks a label key: an optional DNS-subdomain prefix (at most 253 characters, lower
/// case) and `/`, then a name of 1 to 63 characters matching
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`. Returns the rule broken.
pub fn validate_label_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("the prefix before `/` must not be empty");
        }
        if name.contains('/') {
            return Err("a key may contain at most one `/`");
        }
        if prefix.len() > MAX_LABEL_PREFIX_LEN {
            return Err("the prefix must be at most 253 characters");
        }
        if !is_dns1123_subdomain(prefix) {
            return Err(
                "the prefix must be a DNS subdomain: lower-case alphanumeric labels, `-` inside, separated by `.`",
            );
        }
    }
    if name.is_empty() {
        return Err("the name must not be empty");
    }
    if name.len() > MAX_LABEL_NAME_LEN {
        return Err("the name must be at most 63 characters");
    }
    if !is_qualified_name_part(name) {
        return Err(
            "the name must consist of alphanumerics, `-`, `_` or `.`, and start and end with an alphanumeric",
        );
    }
    Ok(())
}

/// Checks a label value: empty, or 1 to 63 characters matching
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`. Returns the rule broken.
pub fn validate_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > MAX_LABEL_NAME_LEN {
        return Err("a value must be at most 63 characters");
    }
    if !is_qualified_name_part(value) {
        return Err(
            "a value must be empty or consist of alphanumerics, `-`, `_` or `.`, and start and end with an alphanumeric",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: Option<&[&str]>) -> metav1::LabelSelectorRequirement {
        metav1::LabelSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn sel(
        match_labels: &[(&str, &str)],
        exprs: Vec<metav1::LabelSelectorRequirement>,
    ) -> metav1::LabelSelector {
        metav1::LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    #[test]
    fn matching_table() {
        let app_web = labels(&[("app", "web"), ("tier", "front")]);
        let app_db = labels(&[("app", "db")]);
        let none = labels(&[]);
        #[rustfmt::skip]
        let cases: Vec<(&str, metav1::LabelSelector, &BTreeMap<String, String>, bool)> = vec![
            ("empty matches all", sel(&[], vec![]), &app_web, true),
            ("empty matches no labels", sel(&[], vec![]), &none, true),
            ("matchLabels hit", sel(&[("app", "web")], vec![]), &app_web, true),
            ("matchLabels miss value", sel(&[("app", "web")], vec![]), &app_db, false),
            ("matchLabels miss key", sel(&[("app", "web")], vec![]), &none, false),
            ("matchLabels all must hold", sel(&[("app", "web"), ("tier", "back")], vec![]), &app_web, false),
            ("In hit", sel(&[], vec![expr("app", "In", Some(&["db", "web"]))]), &app_web, true),
            ("In miss", sel(&[], vec![expr("app", "In", Some(&["x"]))]), &app_web, false),
            ("In absent", sel(&[], vec![expr("app", "In", Some(&["web"]))]), &none, false),
            ("NotIn hit", sel(&[], vec![expr("app", "NotIn", Some(&["web"]))]), &app_web, false),
            ("NotIn other", sel(&[], vec![expr("app", "NotIn", Some(&["web"]))]), &app_db, true),
            ("NotIn absent", sel(&[], vec![expr("app", "NotIn", Some(&["web"]))]), &none, true),
            ("Exists", sel(&[], vec![expr("tier", "Exists", None)]), &app_web, true),
            ("Exists absent", sel(&[], vec![expr("tier", "Exists", None)]), &app_db, false),
            ("Exists empty values list", sel(&[], vec![expr("tier", "Exists", Some(&[]))]), &app_web, true),
            ("DoesNotExist", sel(&[], vec![expr("tier", "DoesNotExist", None)]), &app_db, true),
            ("DoesNotExist present", sel(&[], vec![expr("tier", "DoesNotExist", None)]), &app_web, false),
            ("labels and exprs", sel(&[("app", "web")], vec![expr("tier", "In", Some(&["front"]))]), &app_web, true),
            ("labels and failing expr", sel(&[("app", "web")], vec![expr("tier", "NotIn", Some(&["front"]))]), &app_web, false),
        ];
        for (name, k8s, labels, want) in cases {
            let s = LabelSelector::from_k8s(&k8s).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(s.matches(labels), want, "{name}");
        }
    }

    #[test]
    fn validation_table() {
        let long = "a".repeat(64);
        let ok63 = "a".repeat(63);
        let long_prefix = format!("{}/x", "a".repeat(254));
        // name, selector, expected (path, message fragment) per error
        type Case<'a> = (&'a str, metav1::LabelSelector, &'a [(&'a str, &'a str)]);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("unknown operator", sel(&[], vec![expr("a", "in", Some(&["x"]))]),
                &[("matchExpressions[0].operator", "unknown operator `in`")]),
            ("In without values", sel(&[], vec![expr("a", "Exists", None), expr("b", "In", None)]),
                &[("matchExpressions[1].values", "operator In needs at least one value")]),
            ("NotIn with empty list", sel(&[], vec![expr("b", "NotIn", Some(&[]))]),
                &[("matchExpressions[0].values", "operator NotIn needs")]),
            ("Exists with values", sel(&[], vec![expr("b", "Exists", Some(&["x"]))]),
                &[("matchExpressions[0].values", "operator Exists takes no values")]),
            ("DoesNotExist with values", sel(&[], vec![expr("b", "DoesNotExist", Some(&["x"]))]),
                &[("matchExpressions[0].values", "operator DoesNotExist takes no values")]),
            ("bad key chars", sel(&[], vec![expr("a b", "Exists", None)]),
                &[("matchExpressions[0].key", "invalid label key `a b`")]),
            ("empty key", sel(&[], vec![expr("", "Exists", None)]),
                &[("matchExpressions[0].key", "name must not be empty")]),
            ("key too long", sel(&[], vec![expr(&long, "Exists", None)]),
                &[("matchExpressions[0].key", "at most 63")]),
            ("empty prefix", sel(&[], vec![expr("/a", "Exists", None)]),
                &[("matchExpressions[0].key", "prefix before `/` must not be empty")]),
            ("upper-case prefix", sel(&[], vec![expr("Example.com/a", "Exists", None)]),
                &[("matchExpressions[0].key", "DNS subdomain")]),
            ("two slashes", sel(&[], vec![expr("a/b/c", "Exists", None)]),
                &[("matchExpressions[0].key", "at most one `/`")]),
            ("prefix too long", sel(&[], vec![expr(&long_prefix, "Exists", None)]),
                &[("matchExpressions[0].key", "at most 253")]),
            ("name ends with dash", sel(&[("app-", "x")], vec![]),
                &[("matchLabels", "invalid label key `app-`")]),
            ("bad value", sel(&[("app", "-x")], vec![]),
                &[("matchLabels[app]", "invalid label value `-x`")]),
            ("value too long", sel(&[("app", &long)], vec![]),
                &[("matchLabels[app]", "at most 63")]),
            ("bad expression value", sel(&[], vec![expr("a", "In", Some(&["ok", "no way"]))]),
                &[("matchExpressions[0].values[1]", "invalid label value `no way`")]),
            ("several problems reported", sel(&[("app", "a b")], vec![expr("k!", "Bogus", None)]),
                &[("matchLabels[app]", "invalid label value"),
                  ("matchExpressions[0].key", "invalid label key `k!`"),
                  ("matchExpressions[0].operator", "unknown operator `Bogus`")]),
        ];
        for (name, k8s, want) in cases {
            let errors = LabelSelector::from_k8s(&k8s).expect_err(name);
            assert_eq!(errors.len(), want.len(), "{name}: {errors:?}");
            for (err, (path, text)) in errors.iter().zip(want.iter()) {
                assert_eq!(err.path, *path, "{name}");
                assert!(
                    err.to_string().contains(text),
                    "{name}: `{err}` lacks `{text}`"
                );
            }
        }
        // Valid edge cases.
        for key in [
            "a",
            "A-b_c.d",
            "example.com/name",
            "kubernetes.io/hostname",
            &ok63,
            "a1.b-2.c/Z",
        ] {
            assert_eq!(validate_label_key(key), Ok(()), "{key}");
        }
        for value in ["", "x", "A.b-c_d", &ok63] {
            assert_eq!(validate_label_value(value), Ok(()), "{value}");
        }
    }

    #[test]
    fn canonical_text_and_prefix() {
        let a = LabelSelector::from_k8s(&sel(
            &[("app", "web")],
            vec![
                expr("zone", "Exists", None),
                expr("legacy", "DoesNotExist", None),
                expr("tier", "In", Some(&["b", "a"])),
                expr("env", "NotIn", Some(&["dev"])),
            ],
        ))
        .unwrap();
        let b = LabelSelector::from_k8s(&sel(
            &[("app", "web")],
            vec![
                expr("env", "NotIn", Some(&["dev"])),
                expr("tier", "In", Some(&["a", "b"])),
                expr("legacy", "DoesNotExist", None),
                expr("zone", "Exists", None),
            ],
        ))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.to_string(),
            "app=web,env notin (dev),!legacy,tier in (a,b),zone"
        );
        assert_eq!(LabelSelector::everything().to_string(), "");
        assert!(LabelSelector::everything().is_empty());
        let err = LabelSelector::from_k8s(&sel(&[], vec![expr("a", "X", None)])).unwrap_err();
        let err = err[0].clone().with_prefix("spec.serviceSelectors[2]");
        assert_eq!(
            err.path,
            "spec.serviceSelectors[2].matchExpressions[0].operator"
        );
        assert!(LabelSelector::from_match_labels(&labels(&[("app", "web")])).is_ok());
        assert!(LabelSelector::from_match_labels(&labels(&[("app", "w b")])).is_err());
    }
}
