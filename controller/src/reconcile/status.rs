//! Pure helpers that compute the writes for one object: the Service's
//! `ferrolb.io/LoadBalancerReady` condition, ingress and pool annotation, and the `Valid`
//! condition and counters of configuration objects. Every function compares with what the
//! object already carries so that nothing is written when nothing changed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_crds::annotations::CONDITION_LB_READY;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

/// Condition type written on configuration objects.
pub const CONDITION_VALID: &str = "Valid";
/// Reason of a `ferrolb.io/LoadBalancerReady=True` condition.
pub const REASON_ALLOCATED: &str = "Allocated";
/// Reason of a `False` condition when the Service's request does not parse.
pub const REASON_INVALID_REQUEST: &str = "InvalidRequest";
/// Reason of a `Valid=False` condition.
pub const REASON_CONFIGURATION_ERROR: &str = "ConfigurationError";
/// Reason of a `Valid=True` condition.
pub const REASON_ACCEPTED: &str = "Accepted";

/// The parts of a condition ferrolb decides (the transition time is kept while the status
/// does not change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondSpec {
    /// Condition type.
    pub type_: String,
    /// `True` or `False`.
    pub ok: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human message.
    pub message: String,
    /// `metadata.generation` the condition was computed for.
    pub observed_generation: Option<i64>,
}

impl CondSpec {
    /// Whether `existing` already says exactly this.
    pub fn matches(&self, existing: &Condition) -> bool {
        existing.type_ == self.type_
            && (existing.status == "True") == self.ok
            && existing.status != "Unknown"
            && existing.reason == self.reason
            && existing.message == self.message
            && existing.observed_generation == self.observed_generation
    }
}

/// `conditions` with the condition of `spec.type_` replaced by `spec`, or `None` when it is
/// already there unchanged. The transition time is kept when the status did not flip.
pub fn merge_condition(
    conditions: &[Condition],
    spec: &CondSpec,
    now: &Time,
) -> Option<Vec<Condition>> {
    let old = conditions.iter().find(|c| c.type_ == spec.type_);
    if old.is_some_and(|c| spec.matches(c)) {
        return None;
    }
    let status = if spec.ok { "True" } else { "False" };
    let last_transition_time = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now.clone(),
    };
    let new = Condition {
        type_: spec.type_.clone(),
        status: status.to_owned(),
        reason: spec.reason.clone(),
        message: spec.message.clone(),
        observed_generation: spec.observed_generation,
        last_transition_time,
    };
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ != spec.type_)
        .cloned()
        .collect();
    out.push(new);
    Some(out)
}

/// What the controller wants a Service to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// `status.loadBalancer.ingress[].ip`, in order.
    pub ips: Vec<IpAddr>,
    /// `ferrolb.io/ip-allocated-from-pool` (`None`: absent).
    pub pool: Option<String>,
    /// The `ferrolb.io/LoadBalancerReady` condition (`None`: remove it).
    pub condition: Option<CondSpec>,
}

/// The parts of a Service's status that [`observed_patches`] compares with a target: a
/// few dozen bytes instead of the whole object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedStatus {
    /// `status.loadBalancer.ingress`, one entry per item: the address of an entry that has
    /// a parsable `ip` and no `hostname`, `None` for any other entry.
    pub ingress: Vec<Option<IpAddr>>,
    /// `status.conditions`, kept whole because a merge patch replaces the list.
    pub conditions: Vec<Condition>,
}

impl ObservedStatus {
    /// The observed parts of `svc.status`, `None` when the Service has no status.
    pub fn of(svc: &Service) -> Option<ObservedStatus> {
        let status = svc.status.as_ref()?;
        let ingress = status
            .load_balancer
            .as_ref()
            .and_then(|lb| lb.ingress.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|i| {
                i.ip.as_deref()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .filter(|_| i.hostname.is_none())
            })
            .collect();
        Some(ObservedStatus {
            ingress,
            conditions: status.conditions.clone().unwrap_or_default(),
        })
    }
}

/// The raw `ferrolb.io/ip-allocated-from-pool` annotation of `svc` (`None`: absent).
pub fn pool_annotation(svc: &Service) -> Option<String> {
    let pool_key =
        ferrolb_crds::annotations::key(ferrolb_crds::annotations::IP_ALLOCATED_FROM_POOL);
    svc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&pool_key))
        .cloned()
}

/// The two patches that bring `svc` to `target` (merge patches on the main resource and
/// on the status subresource); each `None` when that part is already right.
pub fn service_patches(
    svc: &Service,
    target: &ServiceTarget,
    now: &Time,
) -> (Option<Value>, Option<Value>) {
    observed_patches(
        pool_annotation(svc).as_deref(),
        ObservedStatus::of(svc).as_ref(),
        target,
        now,
    )
}

/// [`service_patches`] from the observed parts of a Service: its raw pool annotation and
/// [`ObservedStatus`].
pub fn observed_patches(
    pool_annotation: Option<&str>,
    status: Option<&ObservedStatus>,
    target: &ServiceTarget,
    now: &Time,
) -> (Option<Value>, Option<Value>) {
    let pool_key =
        ferrolb_crds::annotations::key(ferrolb_crds::annotations::IP_ALLOCATED_FROM_POOL);
    let current_pool = pool_annotation.filter(|p| !p.is_empty());
    let meta_patch = if current_pool != target.pool.as_deref() {
        Some(json!({"metadata": {"annotations": {pool_key: target.pool}}}))
    } else {
        None
    };

    let ingress: &[Option<IpAddr>] = status.map(|s| s.ingress.as_slice()).unwrap_or_default();
    let ingress_ok = ingress.len() == target.ips.len()
        && ingress
            .iter()
            .zip(&target.ips)
            .all(|(i, ip)| *i == Some(*ip));
    let conditions: &[Condition] = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let new_conditions = match &target.condition {
        Some(spec) => merge_condition(conditions, spec, now),
        None if conditions.iter().any(|c| c.type_ == CONDITION_LB_READY) => Some(
            conditions
                .iter()
                .filter(|c| c.type_ != CONDITION_LB_READY)
                .cloned()
                .collect(),
        ),
        None => None,
    };
    let mut st = serde_json::Map::new();
    if !ingress_ok {
        let v = if target.ips.is_empty() {
            Value::Null
        } else {
            Value::Array(
                target
                    .ips
                    .iter()
                    .map(|ip| json!({"ip": ip.to_string()}))
                    .collect(),
            )
        };
        st.insert("loadBalancer".into(), json!({ "ingress": v }));
    }
    if let Some(c) = new_conditions {
        st.insert(
            "conditions".into(),
            serde_json::to_value(c).unwrap_or(Value::Null),
        );
    }
    let status_patch = if st.is_empty() {
        None
    } else {
        Some(json!({ "status": Value::Object(st) }))
    };
    (meta_patch, status_patch)
}

/// The status patch (merge) that gives a configuration object `desired_valid` and, for a
/// pool, the `counters` (`assignedIPv4`, ... as decimal strings); `None` when nothing
/// differs from `current_status` (the object's `.status` as JSON).
pub fn config_status_patch(
    current_status: &Value,
    desired_valid: Option<&CondSpec>,
    counters: Option<&BTreeMap<&'static str, String>>,
    now: &Time,
) -> Option<Value> {
    let mut st = serde_json::Map::new();
    if let Some(counters) = counters {
        for (k, v) in counters {
            if current_status.get(*k).and_then(Value::as_str) != Some(v.as_str()) {
                st.insert((*k).to_owned(), Value::String(v.clone()));
            }
        }
    }
    if let Some(spec) = desired_valid {
        let conditions: Vec<Condition> = current_status
            .get("conditions")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        if let Some(c) = merge_condition(&conditions, spec, now) {
            st.insert(
                "conditions".into(),
                serde_json::to_value(c).unwrap_or(Value::Null),
            );
        }
    }
    if st.is_empty() {
        None
    } else {
        Some(json!({ "status": Value::Object(st) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid time"))
    }

    fn ready(ok: bool, reason: &str, msg: &str) -> CondSpec {
        CondSpec {
            type_: CONDITION_LB_READY.into(),
            ok,
            reason: reason.into(),
            message: msg.into(),
            observed_generation: Some(1),
        }
    }

    fn svc_with(ips: &[&str], pool: Option<&str>, cond: Option<Condition>) -> Service {
        let mut s = Service::default();
        if let Some(p) = pool {
            s.metadata.annotations =
                Some([("ferrolb.io/ip-allocated-from-pool".to_owned(), p.to_owned())].into());
        }
        s.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    ips.iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some((*ip).into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            conditions: cond.map(|c| vec![c]),
        });
        s
    }

    #[test]
    fn merge_condition_keeps_time_and_skips_equal() {
        let spec = ready(true, "Allocated", "m");
        let first = merge_condition(&[], &spec, &t(10)).expect("new condition");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].last_transition_time, t(10));
        assert!(merge_condition(&first, &spec, &t(20)).is_none());
        let changed =
            merge_condition(&first, &ready(true, "Allocated", "other"), &t(20)).expect("changed");
        assert_eq!(
            changed[0].last_transition_time,
            t(10),
            "same status keeps the time"
        );
        let flipped =
            merge_condition(&first, &ready(false, "NoPool", "x"), &t(30)).expect("flipped");
        assert_eq!(flipped[0].last_transition_time, t(30));
        assert_eq!(flipped[0].status, "False");
    }

    #[test]
    fn service_patches_table() {
        let now = t(5);
        let spec = ready(true, "Allocated", "m");
        let cond = merge_condition(&[], &spec, &now).expect("cond").remove(0);
        let target = ServiceTarget {
            ips: vec!["10.0.0.1".parse().expect("ip")],
            pool: Some("a".into()),
            condition: Some(spec.clone()),
        };
        // Everything already right: no patch.
        let done = svc_with(&["10.0.0.1"], Some("a"), Some(cond.clone()));
        assert_eq!(service_patches(&done, &target, &now), (None, None));
        // Wrong pool only.
        let wrong_pool = svc_with(&["10.0.0.1"], Some("b"), Some(cond.clone()));
        let (m, s) = service_patches(&wrong_pool, &target, &now);
        assert_eq!(
            m,
            Some(json!({"metadata": {"annotations": {"ferrolb.io/ip-allocated-from-pool": "a"}}}))
        );
        assert_eq!(s, None);
        // Wrong ip only.
        let wrong_ip = svc_with(&["10.0.0.2"], Some("a"), Some(cond));
        let (m, s) = service_patches(&wrong_ip, &target, &now);
        assert_eq!(m, None);
        assert_eq!(
            s,
            Some(json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}))
        );
        // Clearing: null ingress, null annotation, condition removed.
        let clear = ServiceTarget {
            ips: vec![],
            pool: None,
            condition: None,
        };
        let (m, s) = service_patches(&done, &clear, &now);
        assert_eq!(
            m,
            Some(json!({"metadata": {"annotations": {"ferrolb.io/ip-allocated-from-pool": null}}}))
        );
        assert_eq!(
            s,
            Some(json!({"status": {"loadBalancer": {"ingress": null}, "conditions": []}}))
        );
        // Nothing to clear on a fresh Service.
        assert_eq!(
            service_patches(&Service::default(), &clear, &now),
            (None, None)
        );
    }

    #[test]
    fn config_status_patch_writes_only_differences() {
        let now = t(1);
        let counters: BTreeMap<&'static str, String> = [
            ("assignedIPv4", "1".to_owned()),
            ("availableIPv4", "255".to_owned()),
        ]
        .into();
        let spec = CondSpec {
            type_: CONDITION_VALID.into(),
            ok: true,
            reason: REASON_ACCEPTED.into(),
            message: "ok".into(),
            observed_generation: Some(2),
        };
        let p =
            config_status_patch(&Value::Null, Some(&spec), Some(&counters), &now).expect("patch");
        assert_eq!(p["status"]["assignedIPv4"], "1");
        assert_eq!(p["status"]["conditions"][0]["reason"], "Accepted");
        let merged = p["status"].clone();
        assert_eq!(
            config_status_patch(&merged, Some(&spec), Some(&counters), &now),
            None
        );
        let mut more = counters.clone();
        more.insert("assignedIPv4", "2".into());
        assert_eq!(
            config_status_patch(&merged, Some(&spec), Some(&more), &now),
            Some(json!({"status": {"assignedIPv4": "2"}}))
        );
    }
}
