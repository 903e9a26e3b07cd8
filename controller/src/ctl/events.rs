//! Events regarding one object, from both Event APIs (`events.k8s.io/v1`, which the
//! controller writes, and `core/v1`, which older tools write), merged into one timeline.
//!
//! On a real API server both APIs are views of the same objects, so an Event listed through
//! both appears once (deduplicated by namespace and name).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::jiff::Timestamp;

use super::age;
use super::table::Table;

/// One Event, whichever API it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// CamelCase reason.
    pub reason: String,
    /// When it was last seen (series, event time or timestamps), if known.
    pub last_seen: Option<Timestamp>,
    /// How many times it occurred (at least 1).
    pub count: i32,
    /// Reporting component (and instance).
    pub from: String,
    /// The note / message.
    pub message: String,
}

/// What the Events must regard.
#[derive(Debug, Clone, Copy)]
pub struct Regarding<'a> {
    /// Kind, e.g. `Service`.
    pub kind: &'a str,
    /// Namespace of the object.
    pub namespace: &'a str,
    /// Name of the object.
    pub name: &'a str,
    /// UID of the object, if known; Events about an earlier object of the same name (another
    /// UID) are left out.
    pub uid: Option<&'a str>,
}

impl Regarding<'_> {
    fn matches(&self, r: &ObjectReference, event_ns: Option<&str>) -> bool {
        let ns = r.namespace.as_deref().or(event_ns).unwrap_or_default();
        r.kind.as_deref() == Some(self.kind)
            && r.name.as_deref() == Some(self.name)
            && ns == self.namespace
            && match (self.uid, r.uid.as_deref()) {
                (Some(a), Some(b)) if !b.is_empty() => a == b,
                _ => true,
            }
    }
}

/// The Events regarding `target`, oldest first (unknown times first), deduplicated.
pub fn events_regarding(
    target: Regarding<'_>,
    v1: &[EventV1],
    core: &[CoreEvent],
) -> Vec<EventLine> {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut first_time = |ns: &Option<String>, name: &Option<String>| {
        seen.insert((
            ns.clone().unwrap_or_default(),
            name.clone().unwrap_or_default(),
        ))
    };
    for e in v1 {
        let Some(r) = &e.regarding else { continue };
        if !target.matches(r, e.metadata.namespace.as_deref())
            || !first_time(&e.metadata.namespace, &e.metadata.name)
        {
            continue;
        }
        let last_seen = e
            .series
            .as_ref()
            .map(|s| s.last_observed_time.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.deprecated_last_timestamp.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let count = e
            .series
            .as_ref()
            .map(|s| s.count)
            .or(e.deprecated_count)
            .unwrap_or(1)
            .max(1);
        out.push(EventLine {
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            last_seen,
            count,
            from: from_text(
                e.reporting_controller.as_deref(),
                e.reporting_instance.as_deref(),
            ),
            message: e.note.clone().unwrap_or_default(),
        });
    }
    for e in core {
        if !target.matches(&e.involved_object, e.metadata.namespace.as_deref())
            || !first_time(&e.metadata.namespace, &e.metadata.name)
        {
            continue;
        }
        let last_seen = e
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
            .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let count = e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1)
            .max(1);
        let component = e
            .reporting_component
            .as_deref()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.as_deref()));
        let instance = e
            .reporting_instance
            .as_deref()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.host.as_deref()));
        out.push(EventLine {
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            last_seen,
            count,
            from: from_text(component, instance),
            message: e.message.clone().unwrap_or_default(),
        });
    }
    out.sort_by_key(|e| e.last_seen);
    out
}

fn from_text(component: Option<&str>, instance: Option<&str>) -> String {
    match (
        component.filter(|c| !c.is_empty()),
        instance.filter(|c| !c.is_empty()),
    ) {
        (Some(c), Some(i)) if c == i => c.to_owned(),
        (Some(c), Some(i)) => format!("{c}/{i}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(i)) => i.to_owned(),
        (None, None) => "-".to_owned(),
    }
}

/// The Events as kubectl's describe prints them (the last `limit`, with a note on how many
/// older ones were left out), or `<none>`. Each line is indented by two spaces.
pub fn events_table(events: &[EventLine], now: Timestamp, limit: usize) -> String {
    if events.is_empty() {
        return "  <none>\n".to_owned();
    }
    let skip = events.len().saturating_sub(limit);
    let mut t = Table::new(&["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]);
    for e in &events[skip..] {
        let mut when = e
            .last_seen
            .map_or_else(|| "<unknown>".to_owned(), |t| age(t, now));
        if e.count > 1 {
            when = format!("{when} (x{})", e.count);
        }
        t.push(vec![
            e.type_.clone(),
            e.reason.clone(),
            when,
            e.from.clone(),
            e.message.clone(),
        ]);
    }
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("  ({skip} older Events not shown)\n"));
    }
    for line in t.render().lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EventSource;
    use k8s_openapi::api::events::v1::EventSeries;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("time")
    }

    fn reference(kind: &str, ns: &str, name: &str, uid: Option<&str>) -> ObjectReference {
        ObjectReference {
            kind: Some(kind.into()),
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: uid.map(str::to_owned),
            ..Default::default()
        }
    }

    fn v1(name: &str, r: ObjectReference, at: i64, reason: &str, note: &str) -> EventV1 {
        let mut e = EventV1 {
            regarding: Some(r),
            event_time: Some(MicroTime(ts(at))),
            reason: Some(reason.into()),
            note: Some(note.into()),
            type_: Some("Warning".into()),
            reporting_controller: Some("ferrolb-controller".into()),
            reporting_instance: Some("c-0".into()),
            ..Default::default()
        };
        e.metadata.name = Some(name.into());
        e.metadata.namespace = Some("default".into());
        e
    }

    #[test]
    fn merge_filter_and_order() {
        let target = Regarding {
            kind: "Service",
            namespace: "default",
            name: "web",
            uid: Some("u1"),
        };
        let mut repeated = v1(
            "e2",
            reference("Service", "default", "web", None),
            10,
            "AllocationFailed",
            "no pool",
        );
        repeated.series = Some(EventSeries {
            count: 4,
            last_observed_time: MicroTime(ts(50)),
        });
        let mut core_ev = CoreEvent {
            involved_object: reference("Service", "default", "web", Some("u1")),
            reason: Some("DeprecatedAnnotation".into()),
            message: Some("use ferrolb.io/".into()),
            type_: Some("Warning".into()),
            last_timestamp: Some(Time(ts(30))),
            count: Some(2),
            source: Some(EventSource {
                component: Some("old-tool".into()),
                host: None,
            }),
            ..Default::default()
        };
        core_ev.metadata.name = Some("c1".into());
        core_ev.metadata.namespace = Some("default".into());
        // The same object seen through core/v1 is not listed twice.
        let mut dup = core_ev.clone();
        dup.metadata.name = Some("e1".into());
        let v1s = [
            v1(
                "e1",
                reference("Service", "default", "web", Some("u1")),
                20,
                "IPAllocated",
                "got 10.0.0.1",
            ),
            repeated,
            v1(
                "e3",
                reference("Service", "default", "web", Some("old")),
                5,
                "X",
                "earlier object",
            ),
            v1(
                "e4",
                reference("Service", "other", "web", None),
                5,
                "X",
                "other namespace",
            ),
            v1(
                "e5",
                reference("Pod", "default", "web", None),
                5,
                "X",
                "other kind",
            ),
        ];
        let events = events_regarding(target, &v1s, &[core_ev, dup]);
        let got: Vec<(&str, i32, &str)> = events
            .iter()
            .map(|e| (e.reason.as_str(), e.count, e.from.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("IPAllocated", 1, "ferrolb-controller/c-0"),
                ("DeprecatedAnnotation", 2, "old-tool"),
                ("AllocationFailed", 4, "ferrolb-controller/c-0"),
            ]
        );
        let text = events_table(&events, ts(110), 2);
        assert_eq!(
            text,
            "  (1 older Events not shown)\n\
             \x20 TYPE      REASON                 AGE        FROM                     MESSAGE\n\
             \x20 Warning   DeprecatedAnnotation   80s (x2)   old-tool                 use ferrolb.io/\n\
             \x20 Warning   AllocationFailed       60s (x4)   ferrolb-controller/c-0   no pool\n"
        );
        assert_eq!(events_table(&[], ts(0), 5), "  <none>\n");
    }
}
