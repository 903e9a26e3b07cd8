//! Validation errors: one per problem, naming the object, the field and the reason.
//!
//! [`crate::build::build`] and [`crate::manifest::parse_manifests`] collect every error they
//! find (never only the first) and return them sorted with [`sort_errors`], so the output is
//! deterministic whatever order the objects arrived in.

use std::fmt;

/// One problem in the configuration.
///
/// Displayed as `IPAddressPool ferrolb-system/pool-a: spec.addresses[2]: <reason>`; the
/// namespace part is left out when empty (a document with no identity, e.g. invalid YAML),
/// and so is the field part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigError {
    /// Kind of the offending object (`IPAddressPool`, `BGPPeer`, ...), or `Manifest` for a
    /// document that could not be identified.
    pub kind: String,
    /// Namespace of the offending object.
    pub namespace: String,
    /// Name of the offending object (`#3` for the third document of a manifest when the
    /// document has no readable name).
    pub name: String,
    /// JSON-path-like location inside the object, e.g. `spec.addresses[2]`; empty when the
    /// problem concerns the object as a whole.
    pub field: String,
    /// Human-readable explanation.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error from its parts.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        f.write_str(" ")?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Sorts errors by (kind, namespace, name, field, reason) and drops exact duplicates.
pub fn sort_errors(errors: &mut Vec<ConfigError>) {
    errors.sort();
    errors.dedup();
}

/// Renders a list of errors one per line, as the CLI and the admission webhook print them.
pub fn render_errors(errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&e.to_string());
    }
    out
}

/// Collects errors for one object, so rule code only names the field and the reason.
#[derive(Debug)]
pub(crate) struct ObjectErrors<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    out: &'a mut Vec<ConfigError>,
}

impl<'a> ObjectErrors<'a> {
    /// Starts collecting for `kind namespace/name` into `out`.
    pub(crate) fn new(
        kind: &'static str,
        namespace: &'a str,
        name: &'a str,
        out: &'a mut Vec<ConfigError>,
    ) -> Self {
        Self {
            kind,
            namespace,
            name,
            out,
        }
    }

    /// Records one problem at `field`.
    pub(crate) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.out.push(ConfigError::new(
            self.kind,
            self.namespace,
            self.name,
            field,
            reason,
        ));
    }

    /// Number of errors recorded so far in the shared list.
    pub(crate) fn count(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_formats() {
        let cases = [
            (
                ConfigError::new(
                    "IPAddressPool",
                    "ferrolb-system",
                    "pool-a",
                    "spec.addresses[2]",
                    "bad",
                ),
                "IPAddressPool ferrolb-system/pool-a: spec.addresses[2]: bad",
            ),
            (
                ConfigError::new("Manifest", "", "#2", "", "invalid YAML"),
                "Manifest #2: invalid YAML",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn sort_is_deterministic_and_dedups() {
        let a = ConfigError::new("BGPPeer", "ns", "b", "spec.x", "r");
        let b = ConfigError::new("BGPPeer", "ns", "a", "spec.y", "r");
        let mut v = vec![a.clone(), b.clone(), a.clone()];
        sort_errors(&mut v);
        assert_eq!(v, vec![b, a]);
    }
}
