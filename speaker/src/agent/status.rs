//! `ServiceBGPStatus` objects: one per (Service, node) in the ferrolb namespace, labelled
//! [`NODE_LABEL`], [`SERVICE_NAME_LABEL`] and [`SERVICE_NAMESPACE_LABEL`], content written
//! through the status subresource. [`desired_objects`] is pure; [`sync`] makes the
//! API server match it, deleting the objects of this node that are no longer wanted. To
//! stay small with thousands of Services, [`sync`] builds one object at a time and lists
//! the existing ones in pages of [`LIST_PAGE`], keeping only their labels and status.

use std::collections::BTreeMap;

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
        node: Some(st.node.clone()),
        service_name: Some(svc.name.clone()),
        service_namespace: Some(svc.namespace.clone()),
        peers: st.peers.clone(),
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
        (SERVICE_NAME_LABEL.to_owned(), svc.name.clone()),
        (SERVICE_NAMESPACE_LABEL.to_owned(), svc.namespace.clone()),
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

/// What [`sync`] keeps of an existing object: its labels and status.
type Existing = (
    Option<BTreeMap<String, String>>,
    Option<ServiceBGPStatusStatus>,
);

/// The objects labelled with `node`, listed page by page.
async fn list_existing(
    api: &Api<ServiceBGPStatus>,
    node: &str,
) -> Result<BTreeMap<String, Existing>, kube::Error> {
    let mut out = BTreeMap::new();
    let mut params = ListParams::default()
        .labels(&format!("{NODE_LABEL}={node}"))
        .limit(LIST_PAGE);
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for o in page.items {
            if let Some(name) = o.metadata.name {
                out.insert(name, (o.metadata.labels, o.status));
            }
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Makes the API server hold exactly the objects of `statuses` (see [`desired_objects`])
/// among the objects labelled with `node`.
pub async fn sync(
    client: &Client,
    namespace: &str,
    node: &str,
    statuses: &BTreeMap<ServiceKey, BgpStatus>,
) -> Result<(), kube::Error> {
    let api: Api<ServiceBGPStatus> = Api::namespaced(client.clone(), namespace);
    let mut current = list_existing(&api, node).await?;
    for (svc, st) in statuses {
        let (name, mut want) = desired_object(node, namespace, svc, st);
        let have = current.remove(&name);
        if let Some((labels, status)) = &have
            && *status == want.status
            && *labels == want.metadata.labels
        {
            continue;
        }
        let status = serde_json::json!({"status": want.status.take()});
        if have.is_none() {
            match api.create(&PostParams::default(), &want).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        } else {
            let labels = serde_json::json!({"metadata": {"labels": want.metadata.labels}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&labels))
                .await?;
        }
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    for name in current.keys() {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
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
        let a = object_name("node1", &ServiceKey::new("default", &long_name));
        let b = object_name("node2", &ServiceKey::new("default", &long_name));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            object_name("node1", &ServiceKey::new("default", &long_name))
        );
    }

    #[test]
    fn desired_objects_carry_labels_and_status() {
        let statuses = BTreeMap::from([(
            ServiceKey::new("ns1", "web"),
            BgpStatus {
                node: "node1".to_owned(),
                peers: vec!["tor-v4".to_owned(), "tor-v6".to_owned()],
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
