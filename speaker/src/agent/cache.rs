//! Caches of compact projections of watched objects, for the kinds that come in
//! thousands (Services, EndpointSlices): each object is reduced to what the decisions
//! read as it arrives, so the full typed object never stays in memory.
//!
//! Same semantics as a kube-rs reflector store: not ready before the first list is
//! complete, a re-list is buffered and swapped in only once complete, and a watch error
//! changes nothing. An object whose projection is `None` is not kept (and an update
//! turning it into `None` removes the old projection).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt as _;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::decide::ServiceKey;

/// Namespace (empty for cluster-scoped objects) and name of a watched object.
pub(crate) type ObjectKey = ServiceKey;

fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    let meta = obj.meta();
    ServiceKey::new(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

#[derive(Debug)]
struct State<V> {
    live: BTreeMap<ObjectKey, V>,
    /// A list in progress (between `Init` and `InitDone`).
    pending: Option<BTreeMap<ObjectKey, V>>,
}

/// A cache of projections `V`, shared between its watch task and the reconciler.
#[derive(Debug)]
pub(crate) struct Projected<V> {
    state: Arc<Mutex<State<V>>>,
    ready: watch::Receiver<bool>,
}

impl<V> Clone for Projected<V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<V> Projected<V> {
    /// Waits until the first list is complete; `false` if the watch task ended first.
    pub(crate) async fn wait_ready(&self) -> bool {
        let mut rx = self.ready.clone();
        rx.wait_for(|r| *r).await.is_ok()
    }

    /// Runs `f` on the current projections.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&BTreeMap<ObjectKey, V>) -> R) -> R {
        f(&self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .live)
    }
}

/// What one watch event does to the cache; `true` when the live set changed.
fn apply<K: Resource, V>(
    st: &mut State<V>,
    ev: watcher::Event<K>,
    project: &impl Fn(&ObjectKey, &K) -> Option<V>,
) -> bool {
    match ev {
        watcher::Event::Init => {
            st.pending = Some(BTreeMap::new());
            false
        }
        watcher::Event::InitApply(obj) => {
            let key = key_of(&obj);
            if let Some(v) = project(&key, &obj) {
                st.pending.get_or_insert_with(BTreeMap::new).insert(key, v);
            }
            false
        }
        watcher::Event::InitDone => {
            st.live = st.pending.take().unwrap_or_default();
            true
        }
        watcher::Event::Apply(obj) => {
            let mut key = key_of(&obj);
            // An update reuses the stored key, so the projection can share its strings.
            if let Some((k, _)) = st.live.get_key_value(&key) {
                key = k.clone();
            }
            match project(&key, &obj) {
                Some(v) => {
                    st.live.insert(key, v);
                    true
                }
                None => st.live.remove(&key).is_some(),
            }
        }
        watcher::Event::Delete(obj) => st.live.remove(&key_of(&obj)).is_some(),
    }
}

/// Starts watching `api` (with backoff), keeping `project`ed objects; `notify` is woken
/// on every change of the live set.
pub(crate) fn spawn<K, V>(
    api: Api<K>,
    project: impl Fn(&ObjectKey, &K) -> Option<V> + Send + 'static,
    notify: Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Projected<V>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    V: Send + 'static,
{
    let state = Arc::new(Mutex::new(State {
        live: BTreeMap::new(),
        pending: None,
    }));
    let (ready_tx, ready) = watch::channel(false);
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let shared = state.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut failing = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if failing {
                        info!(kind, "watch recovered");
                        failing = false;
                    }
                    let listed = matches!(ev, watcher::Event::InitDone);
                    let changed = {
                        let mut st = shared.lock().unwrap_or_else(PoisonError::into_inner);
                        apply(&mut st, ev, &project)
                    };
                    if listed {
                        ready_tx.send_if_modified(|r| !std::mem::replace(r, true));
                    }
                    if changed {
                        notify.notify_one();
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!(kind, error = %e, "watch failed; keeping the last known state");
                    }
                    failing = true;
                }
            }
        }
    }));
    Projected { state, ready }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn cm(name: &str, value: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some("ns".to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: value.map(|v| BTreeMap::from([("v".to_owned(), v.to_owned())])),
            ..ConfigMap::default()
        }
    }

    fn project(_: &ObjectKey, c: &ConfigMap) -> Option<String> {
        c.data.as_ref()?.get("v").cloned()
    }

    fn live(st: &State<String>) -> Vec<(&str, &str)> {
        st.live
            .iter()
            .map(|(k, v)| (&*k.name, v.as_str()))
            .collect()
    }

    #[test]
    fn events_table() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let mut st = State {
            live: BTreeMap::new(),
            pending: None,
        };
        // (event, live set changed, live set after)
        type Live = Vec<(&'static str, &'static str)>;
        let table: Vec<(watcher::Event<ConfigMap>, bool, Live)> = vec![
            (Init, false, vec![]),
            (InitApply(cm("a", Some("1"))), false, vec![]),
            (InitApply(cm("skip", None)), false, vec![]),
            (InitDone, true, vec![("a", "1")]),
            (
                Apply(cm("b", Some("2"))),
                true,
                vec![("a", "1"), ("b", "2")],
            ),
            (
                Apply(cm("b", Some("3"))),
                true,
                vec![("a", "1"), ("b", "3")],
            ),
            // No longer projected: dropped.
            (Apply(cm("b", None)), true, vec![("a", "1")]),
            (Apply(cm("c", None)), false, vec![("a", "1")]),
            (Delete(cm("a", Some("1"))), true, vec![]),
            (Delete(cm("a", Some("1"))), false, vec![]),
            (Apply(cm("a", Some("1"))), true, vec![("a", "1")]),
            // A re-list keeps the old set until it is complete, then replaces it.
            (Init, false, vec![("a", "1")]),
            (InitApply(cm("d", Some("4"))), false, vec![("a", "1")]),
            (InitDone, true, vec![("d", "4")]),
        ];
        for (i, (ev, changed, want)) in table.into_iter().enumerate() {
            let got = apply(&mut st, ev, &project);
            assert_eq!((got, live(&st)), (changed, want), "step {i}");
        }
    }
}
