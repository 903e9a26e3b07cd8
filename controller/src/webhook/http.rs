//! The HTTP side: `POST /validate` decodes an `AdmissionReview`, reads the configuration
//! objects from the API server and answers with [`super::review::review`]'s decision;
//! `GET /healthz` answers `ok`.
//!
//! The objects are listed on every request (no cache): admission of ferrolb objects is
//! rare, and a fresh read cannot miss an object applied a moment earlier, which matters
//! for `kubectl apply -f` of a pool followed by its advertisement.

use std::sync::Arc;

use anyhow::Context as _;
use ferrolb_config::build::{BuildOptions, Resources};
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::review::{referenced_secrets, review};

/// Path the API server posts reviews to.
pub const VALIDATE_PATH: &str = "/validate";
/// Largest accepted request body (an AdmissionReview carries the object and the old one;
/// objects are at most about 1.5 MiB).
const MAX_BODY: usize = 4 << 20;

/// What the handler needs.
#[derive(Clone)]
pub struct State {
    /// API client.
    pub client: kube::Client,
    /// Build options (the ferrolb namespace, strict references).
    pub options: BuildOptions,
}

/// Answers one HTTP request.
pub async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok"),
        (&Method::POST, VALIDATE_PATH) => validate(&state, request).await,
        (_, VALIDATE_PATH | "/healthz") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

/// A plain-text response.
fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Handles `POST /validate`.
async fn validate(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    let review_in: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("the body is not an AdmissionReview: {e}"),
            );
        }
    };
    let admission: AdmissionRequest<DynamicObject> = match review_in.try_into() {
        Ok(r) => r,
        Err(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "the AdmissionReview has no request",
            );
        }
    };
    let answer = match snapshot(state, &admission).await {
        Ok(resources) => review(&admission, &resources, &state.options),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "webhook cannot read the configuration");
            AdmissionResponse::from(&admission).deny(format!(
                "the ferrolb webhook cannot read the current configuration: {e:#}"
            ))
        }
    };
    if !answer.allowed {
        tracing::info!(
            kind = %admission.kind.kind,
            name = %admission.name,
            message = %answer.result.message,
            "admission denied"
        );
    }
    let body = match serde_json::to_vec(&answer.into_review()) {
        Ok(b) => b,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("encoding the response: {e}"),
            );
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Reads the configuration objects of the ferrolb namespace, the Nodes (for the node
/// overlap checks) and the password Secrets the peers reference.
async fn snapshot(
    state: &State,
    request: &AdmissionRequest<DynamicObject>,
) -> anyhow::Result<Resources> {
    let client = &state.client;
    let ns = state.options.namespace.as_str();
    let lp = ListParams::default();
    let (pools, l2, bgp, peers, bfd, communities, nodes) = futures::try_join!(
        async {
            Api::<IPAddressPool>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing IPAddressPools")
        },
        async {
            Api::<L2Advertisement>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing L2Advertisements")
        },
        async {
            Api::<BGPAdvertisement>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing BGPAdvertisements")
        },
        async {
            Api::<BGPPeer>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing BGPPeers")
        },
        async {
            Api::<BFDProfile>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing BFDProfiles")
        },
        async {
            Api::<Community>::namespaced(client.clone(), ns)
                .list(&lp)
                .await
                .context("listing Communities")
        },
        async {
            Api::<Node>::all(client.clone())
                .list(&lp)
                .await
                .context("listing Nodes")
        },
    )?;
    let mut resources = Resources {
        pools: pools.items,
        l2_advertisements: l2.items,
        bgp_advertisements: bgp.items,
        peers: peers.items,
        bfd_profiles: bfd.items,
        communities: communities.items,
        nodes: nodes.items,
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in referenced_secrets(request, &resources) {
        if let Some(s) = secrets
            .get_opt(&name)
            .await
            .with_context(|| format!("reading Secret {ns}/{name}"))?
        {
            resources.secrets.push(s);
        }
    }
    Ok(resources)
}
