//! The lab's error type: which step failed, what happened, and how to fix it.

use std::fmt;

/// A lab operation that failed.
///
/// Rendered as `step '<step>': <detail>[; <hint>]`, e.g.
/// `step 'start FRR bgpd in flb-123-0-r': /usr/lib/frr/bgpd not found; install it with: apt-get install -y frr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError {
    /// The step that failed (what the lab was doing).
    pub step: String,
    /// What went wrong (command, exit status, output, OS error).
    pub detail: String,
    /// How to fix it, when known.
    pub hint: Option<String>,
}

impl LabError {
    /// Creates an error for `step`.
    pub fn new(step: impl Into<String>, detail: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            step: step.into(),
            detail: detail.into(),
            hint,
        }
    }

    /// Replaces the step name (keeps detail and hint).
    pub fn in_step(mut self, step: impl Into<String>) -> Self {
        self.step = step.into();
        self
    }

    /// Adds a hint unless one is already set.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_none() {
            self.hint = Some(hint.into());
        }
        self
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step '{}': {}", self.step, self.detail)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LabError {}

/// Result of lab operations.
pub type LabResult<T> = Result<T, LabError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_step_detail_and_hint() {
        let cases = [
            (LabError::new("a", "b", None), "step 'a': b"),
            (LabError::new("a", "b", Some("c".into())), "step 'a': b; c"),
            (
                LabError::new("a", "b", None)
                    .in_step("z")
                    .with_hint("h")
                    .with_hint("ignored"),
                "step 'z': b; h",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
