//! `ServiceBGPStatus` objects: one per (Service, node) in the ferrolb namespace, labelled
//! [`NODE_LABEL`], [`SERVICE_NAME_LABEL`] and [`SERVICE_NAMESPACE_LABEL`], content written
//! through the status subresource. [`desired_objects`] is pure; [`sync`] makes the
//! API server match it, deleting the objects of this node that are no longer wanted. To
//! stay small with thousands of Services, [`sync`] builds one object at a time, writes
//! only the difference to its previous successful run, and when it must list (first
//! run, after an error, periodically) compares the pages as they arrive.

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::{ServiceBGPStatus, ServiceBGPStatusSpec, ServiceBGPStatusStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::decide::{BgpStatus, ServiceKey};

/// Label naming the node that wrote a status object.
pub const NODE_LABEL: &str = "ferrolb.io/node";
/// Label naming the Service of a status object.
pub const SERVICE_NAME_LABEL: &str = "ferrolb.io/service-name";
/// Label naming the Service's namespace.
pub const SERVICE_NAMESPACE_LABEL: &str = "ferrolb.io/service-namespace";

/// Objects per page when listing the existing status objects.
pub const LIST_PAGE: u32 = 500;

/// Longest object name Kubernetes accepts.
const MAX_NAME: usize = 253;

/// FNV-1a, 64 bits: a stable short suffix for names that must be shortened.
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Name of the status object of `svc` written by `node`: `<node>-<namespace>-<name>`,
/// shortened with a hash suffix when longer than 253 characters.
pub fn object_name(node: &str, svc: &ServiceKey) -> String {
    let full = format!("{node}-{}-{}", svc.namespace, svc.name);
    if full.len() <= MAX_NAME {
        return full;
    }
    let suffix = format!("-{:016x}", fnv64(&full));
    let mut cut = MAX_NAME - suffix.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", full[..cut].trim_end_matches(['-', '.']))
}

/// The status block of one object.
pub fn status_of(svc: &ServiceKey, st: &BgpStatus) -> ServiceBGPStatusStatus {
    ServiceBGPStatusStatus {
        node: Some(st.node.to_string()),
        service_name: Some(svc.name.to_string()),
        service_namespace: Some(svc.namespace.to_string()),
        peers: st.peers.iter().map(ToString::to_string).collect(),
    }
}

/// The objects `node` should have in `namespace`, by name.
pub fn desired_objects(
    node: &str,
    namespace: &str,
    statuses: &BTreeMap<ServiceKey, BgpStatus>,
) -> BTreeMap<String, ServiceBGPStatus> {
    statuses
        .iter()
        .map(|(svc, st)| desired_object(node, namespace, svc, st))
        .collect()
}

/// The object `node` should have in `namespace` for `svc`, with its name.
pub fn desired_object(
    node: &str,
    namespace: &str,
    svc: &ServiceKey,
    st: &BgpStatus,
) -> (String, ServiceBGPStatus) {
    let name = object_name(node, svc);
    let labels = BTreeMap::from([
        (NODE_LABEL.to_owned(), node.to_owned()),
        (SERVICE_NAME_LABEL.to_owned(), svc.name.to_string()),
        (
            SERVICE_NAMESPACE_LABEL.to_owned(),
            svc.namespace.to_string(),
        ),
    ]);
    let obj = ServiceBGPStatus {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: ServiceBGPStatusSpec {},
        status: Some(status_of(svc, st)),
    };
    (name, obj)
}

/// The Service an existing object stands for, if it is exactly the object this node
/// would write for it (name and labels).
fn service_of(node: &str, obj: &ServiceBGPStatus) -> Option<ServiceKey> {
    let labels = obj.metadata.labels.as_ref()?;
    let key = ServiceKey::new(
        labels.get(SERVICE_NAMESPACE_LABEL)?.as_str(),
        labels.get(SERVICE_NAME_LABEL)?.as_str(),
    );
    (obj.metadata.name.as_deref() == Some(object_name(node, &key).as_str())).then_some(key)
}

/// Creates or updates the object of `svc` (`exists`: whether the server has one).
async fn write(
    api: &Api<ServiceBGPStatus>,
    node: &str,
    namespace: &str,
    svc: &ServiceKey,
    st: &BgpStatus,
    exists: bool,
) -> Result<(), kube::Error> {
    let (name, mut want) = desired_object(node, namespace, svc, st);
    let status = serde_json::json!({"status": want.status.take()});
    if exists {
        let labels = serde_json::json!({"metadata": {"labels": want.metadata.labels}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&labels))
            .await?;
    } else {
        match api.create(&PostParams::default(), &want).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn delete(api: &Api<ServiceBGPStatus>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the API server hold exactly the objects of `statuses` (see [`desired_objects`])
/// among the objects labelled with `node`.
///
/// With `last`, the statuses of the previous successful call, only the difference is
/// written (the objects are this node's own, so nobody else changes them). Without it
/// the existing objects are listed page by page and compared as they arrive: a stale
/// or foreign-shaped object is deleted at once, and only the keys of up-to-date and of
/// outdated objects are kept, so memory stays at a small multiple of the key set.
pub async fn sync(
    client: &Client,
    namespace: &str,
    node: &str,
    statuses: &BTreeMap<ServiceKey, BgpStatus>,
    last: Option<&BTreeMap<ServiceKey, BgpStatus>>,
) -> Result<(), kube::Error> {
    let api: Api<ServiceBGPStatus> = Api::namespaced(client.clone(), namespace);
    if let Some(last) = last {
        for (svc, st) in statuses {
            let old = last.get(svc);
            if old != Some(st) {
                write(&api, node, namespace, svc, st, old.is_some()).await?;
            }
        }
        for svc in last.keys().filter(|k| !statuses.contains_key(*k)) {
            delete(&api, &object_name(node, svc)).await?;
        }
        return Ok(());
    }
    let mut current: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut outdated: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut params = ListParams::default()
        .labels(&format!("{NODE_LABEL}={node}"))
        .limit(LIST_PAGE);
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for o in page.items {
            let want = service_of(node, &o).and_then(|k| statuses.get_key_value(&k));
            match want {
                Some((svc, st)) => {
                    let (_, w) = desired_object(node, namespace, svc, st);
                    if o.status == w.status && o.metadata.labels == w.metadata.labels {
                        current.insert(svc.clone());
                    } else {
                        outdated.insert(svc.clone());
                    }
                }
                None => {
                    if let Some(name) = &o.metadata.name {
                        delete(&api, name).await?;
                    }
                }
            }
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    for (svc, st) in statuses.iter().filter(|(k, _)| !current.contains(*k)) {
        write(&api, node, namespace, svc, st, outdated.contains(svc)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        let short = object_name("node1", &ServiceKey::new("default", "web"));
        assert_eq!(short, "node1-default-web");
        let long_name = "a".repeat(250);
        let a = object_name("node1", &ServiceKey::new("default", long_name.as_str()));
        let b = object_name("node2", &ServiceKey::new("default", long_name.as_str()));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            object_name("node1", &ServiceKey::new("default", long_name.as_str()))
        );
    }

    #[test]
    fn desired_objects_carry_labels_and_status() {
        let statuses = BTreeMap::from([(
            ServiceKey::new("ns1", "web"),
            BgpStatus {
                node: "node1".into(),
                peers: vec!["tor-v4".into(), "tor-v6".into()],
            },
        )]);
        let objs = desired_objects("node1", "ferrolb-system", &statuses);
        let o = &objs["node1-ns1-web"];
        assert_eq!(o.metadata.namespace.as_deref(), Some("ferrolb-system"));
        let labels = o.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[NODE_LABEL], "node1");
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[SERVICE_NAMESPACE_LABEL], "ns1");
        let st = o.status.as_ref().unwrap();
        assert_eq!(st.node.as_deref(), Some("node1"));
        assert_eq!(st.service_name.as_deref(), Some("web"));
        assert_eq!(st.service_namespace.as_deref(), Some("ns1"));
        assert_eq!(st.peers, ["tor-v4", "tor-v6"]);
    }
}
