//! Adapters from the CRD types to the primitives of [`crate::selector`] and
//! [`crate::pool`], turning their errors into field paths relative to the caller's field.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;

use crate::error::ObjectErrors;
use crate::ipset::IpRange;
use crate::pool::{Pool, PoolError, PoolPolicy};
use crate::selector::LabelSelector;

/// Validates a selector; on failure returns `(suffix, reason)` pairs where `suffix` is the
/// path inside the selector with a leading `.` (`.matchExpressions[0].operator`).
pub(super) fn selector(sel: &K8sSelector) -> Result<LabelSelector, Vec<(String, String)>> {
    LabelSelector::from_k8s(sel).map_err(|errs| {
        errs.into_iter()
            .map(|e| {
                let suffix = if e.path.is_empty() {
                    String::new()
                } else {
                    format!(".{}", e.path)
                };
                (suffix, e.kind.to_string())
            })
            .collect()
    })
}

/// Builds the normalised pool from its parsed entries and policy.
pub(super) fn pool(
    name: &str,
    entries: &[IpRange],
    policy: PoolPolicy,
    e: &mut ObjectErrors<'_>,
) -> Option<Pool> {
    match Pool::new(name, entries, policy) {
        Ok(p) => Some(p),
        Err(err @ PoolError::OverlappingEntries { second, .. }) => {
            e.push(format!("spec.addresses[{second}]"), err.to_string());
            None
        }
    }
}
