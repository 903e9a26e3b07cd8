//! The webhook over HTTPS against the in-memory API server: certificate generation into a
//! Secret, the caBundle, reviews, reuse by a second replica, rotation and file reloads.

mod reconcile_support;
mod webhook_support;

use std::time::{Duration, SystemTime};

use ferrolb_controller::webhook::certs::{self, Lifetimes};
use ferrolb_controller::webhook::{CertSource, WebhookOptions};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use webhook_support::*;

const DAY: Duration = Duration::from_secs(86_400);

fn leaf_of(pem: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid PEM")
}

/// A Secret object holding `bundle`.
fn secret_with(bundle: &certs::Bundle) -> Secret {
    let data = [
        ("ca.crt", &bundle.ca_crt),
        ("ca.key", &bundle.ca_key),
        ("tls.crt", &bundle.tls_crt),
        ("tls.key", &bundle.tls_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET.to_owned()),
            namespace: Some(NS.to_owned()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Default::default()
    }
}

/// A bundle whose CA and serving certificate expire within days.
fn short_lived_bundle() -> certs::Bundle {
    let lifetimes = Lifetimes {
        ca: 2 * DAY,
        serving: DAY,
        ..Lifetimes::default()
    };
    certs::generate(&options().dns_names(), SystemTime::now(), &lifetimes).expect("generate")
}

#[tokio::test]
async fn generated_certificate_serves_reviews() {
    let server = server().await;
    server
        .insert(pool("pool-a", &["10.0.0.0/24"]))
        .expect("pool");
    let webhook = Webhook::start(&server, options()).await;

    let secret = wait_for("the certificate Secret", || secret(&server)).await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let ca = secret_text(&secret, "ca.crt").expect("ca.crt");
    let bundles = wait_for("the caBundle", || async {
        let b = ca_bundles(&server).await;
        b.iter().all(|x| *x == ca).then_some(b)
    })
    .await;
    assert_eq!(bundles.len(), 2, "both webhooks of the manifest get the CA");

    let overlapping = admission_review("uid-1", "CREATE", pool("pool-b", &["10.0.0.128/25"]));
    let resp = request(
        webhook.addr,
        &ca,
        "POST",
        "/validate",
        overlapping.to_string().as_bytes(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.leaf,
        leaf_of(&secret_text(&secret, "tls.crt").expect("tls.crt"))
    );
    let review = resp.json();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["uid"], "uid-1");
    assert_eq!(review["response"]["allowed"], false);
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("pool-a")
            && message.contains("pool-b")
            && message.contains("spec.addresses"),
        "{message}"
    );

    let good = admission_review("uid-2", "CREATE", pool("pool-b", &["10.0.1.0/24"]));
    let resp = request(
        webhook.addr,
        &ca,
        "POST",
        "/validate",
        good.to_string().as_bytes(),
    )
    .await
    .expect("request");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["response"]["uid"], "uid-2");
    assert_eq!(resp.json()["response"]["allowed"], true);

    for garbage in [
        &b"{not json"[..],
        b"{\"apiVersion\":\"admission.k8s.io/v1\"}",
        b"[1,2]",
        b"",
    ] {
        let resp = request(webhook.addr, &ca, "POST", "/validate", garbage)
            .await
            .expect("request");
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(garbage));
    }
    let health = request(webhook.addr, &ca, "GET", "/healthz", b"")
        .await
        .expect("request");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    let missing = request(webhook.addr, &ca, "POST", "/nope", b"{}")
        .await
        .expect("request");
    assert_eq!(missing.status, 404);

    // A client trusting another CA refuses the server.
    let other = certs::generate(
        &options().dns_names(),
        SystemTime::now(),
        &Lifetimes::default(),
    )
    .expect("generate");
    assert!(
        request(webhook.addr, &other.ca_crt, "GET", "/healthz", b"")
            .await
            .is_err()
    );

    webhook.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn second_replica_reuses_the_certificate() {
    let server = server().await;
    let first = Webhook::start(&server, options()).await;
    let secret1 = wait_for("the certificate Secret", || secret(&server)).await;
    let ca = secret_text(&secret1, "ca.crt").expect("ca.crt");
    let tls = secret_text(&secret1, "tls.crt").expect("tls.crt");
    request(first.addr, &ca, "GET", "/healthz", b"")
        .await
        .expect("first serves");

    let second = Webhook::start(&server, options()).await;
    let resp = wait_for("the second replica", || async {
        request(second.addr, &ca, "GET", "/healthz", b"").await.ok()
    })
    .await;
    assert_eq!(
        resp.leaf,
        leaf_of(&tls),
        "the second replica serves the stored certificate"
    );
    let secret2 = secret(&server).await.expect("secret");
    assert_eq!(
        secret2.metadata.resource_version,
        secret1.metadata.resource_version
    );
    assert_eq!(ca_bundles(&server).await, vec![ca.clone(), ca]);

    first.stop().await;
    second.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_replicas_agree_on_one_certificate() {
    let server = server().await;
    let replicas = [
        Webhook::start(&server, options()).await,
        Webhook::start(&server, options()).await,
        Webhook::start(&server, options()).await,
    ];
    let secret = wait_for("the certificate Secret", || secret(&server)).await;
    assert!(secret_text(&secret, "ca.crt").is_some());
    // Every replica ends up serving a certificate the stored CA verifies; if one lost a
    // race after another's write, it re-read and adopted the winner's.
    let mut ca = String::new();
    for r in &replicas {
        let (resp, stored_ca) = wait_for("a replica serving the stored certificate", || async {
            let s = webhook_support::secret(&server).await?;
            let ca = secret_text(&s, "ca.crt")?;
            let resp = request(r.addr, &ca, "GET", "/healthz", b"").await.ok()?;
            Some((resp, ca))
        })
        .await;
        assert_eq!(resp.status, 200);
        ca = stored_ca;
    }
    let final_secret = webhook_support::secret(&server).await.expect("secret");
    assert_eq!(
        secret_text(&final_secret, "ca.crt").as_deref(),
        Some(ca.as_str())
    );
    for r in replicas {
        r.stop().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn expiring_certificate_is_replaced_at_start() {
    let server = server().await;
    let old = short_lived_bundle();
    let api: Api<Secret> = Api::namespaced(server.client().expect("client"), NS);
    api.create(&PostParams::default(), &secret_with(&old))
        .await
        .expect("create the old Secret");

    let webhook = Webhook::start(&server, options()).await;
    let secret = wait_for("a replaced certificate", || async {
        let s = secret(&server).await?;
        (secret_text(&s, "tls.crt")? != old.tls_crt).then_some(s)
    })
    .await;
    let ca = secret_text(&secret, "ca.crt").expect("ca.crt");
    assert_ne!(
        ca, old.ca_crt,
        "the CA expires within the margin, so it is replaced"
    );
    let cas: Vec<_> = CertificateDer::pem_slice_iter(ca.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM");
    assert_eq!(
        cas.len(),
        2,
        "the old CA stays in the bundle while still valid"
    );
    assert_eq!(cas[1], leaf_of(&old.ca_crt));
    wait_for("the caBundle", || async {
        ca_bundles(&server)
            .await
            .iter()
            .all(|b| *b == ca)
            .then_some(())
    })
    .await;
    // Only the new CA is needed to verify the served certificate.
    let new_ca_only = String::from_utf8(
        ca.as_bytes()[..ca.find("-----END CERTIFICATE-----").expect("end") + 25].to_vec(),
    )
    .expect("utf-8");
    let resp = request(webhook.addr, &new_ca_only, "GET", "/healthz", b"")
        .await
        .expect("request");
    assert_eq!(
        resp.leaf,
        leaf_of(&secret_text(&secret, "tls.crt").expect("tls.crt"))
    );

    webhook.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn running_webhook_rotates_and_swaps_the_certificate() {
    let server = server().await;
    let opts = WebhookOptions {
        check_interval: Duration::from_millis(100),
        ..options()
    };
    let webhook = Webhook::start(&server, opts).await;
    let first = wait_for("the certificate Secret", || secret(&server)).await;
    let ca1 = secret_text(&first, "ca.crt").expect("ca.crt");
    let leaf1 = request(webhook.addr, &ca1, "GET", "/healthz", b"")
        .await
        .expect("request")
        .leaf;

    // Someone (or time) leaves an almost expired bundle in the Secret.
    let old = short_lived_bundle();
    let api: Api<Secret> = Api::namespaced(server.client().expect("client"), NS);
    let mut s = api.get(SECRET).await.expect("secret");
    s.data = secret_with(&old).data;
    api.replace(SECRET, &PostParams::default(), &s)
        .await
        .expect("replace the Secret");

    let rotated = wait_for("the rotated certificate", || async {
        let s = secret(&server).await?;
        let tls = secret_text(&s, "tls.crt")?;
        (tls != old.tls_crt).then_some(s)
    })
    .await;
    let ca2 = secret_text(&rotated, "ca.crt").expect("ca.crt");
    let tls2 = secret_text(&rotated, "tls.crt").expect("tls.crt");
    assert_ne!(ca2, ca1);
    wait_for("the caBundle", || async {
        ca_bundles(&server)
            .await
            .iter()
            .all(|b| *b == ca2)
            .then_some(())
    })
    .await;
    let resp = wait_for("the swapped certificate", || async {
        let r = request(webhook.addr, &ca2, "GET", "/healthz", b"")
            .await
            .ok()?;
        (r.leaf == leaf_of(&tls2)).then_some(r)
    })
    .await;
    assert_ne!(resp.leaf, leaf1);

    webhook.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn file_certificate_is_reloaded_when_it_changes() {
    let server = server().await;
    let dir = std::env::temp_dir().join(format!("flb-{}-webhook-files", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let names = options().dns_names();
    let write = |b: &certs::Bundle| {
        std::fs::write(dir.join("tls.crt"), &b.tls_crt).expect("write cert");
        std::fs::write(dir.join("tls.key"), &b.tls_key).expect("write key");
    };
    let one = certs::generate(&names, SystemTime::now(), &Lifetimes::default()).expect("gen");
    write(&one);
    let opts = WebhookOptions {
        cert: CertSource::Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        },
        file_poll_interval: Duration::from_millis(50),
        ..options()
    };
    let webhook = Webhook::start(&server, opts).await;
    let resp = wait_for("the webhook", || async {
        request(webhook.addr, &one.ca_crt, "GET", "/healthz", b"")
            .await
            .ok()
    })
    .await;
    assert_eq!(resp.leaf, leaf_of(&one.tls_crt));

    // A half-written key is ignored (the old certificate stays), then the new pair is used.
    std::fs::write(dir.join("tls.key"), "garbage").expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let still = request(webhook.addr, &one.ca_crt, "GET", "/healthz", b"")
        .await
        .expect("old certificate still served");
    assert_eq!(still.leaf, leaf_of(&one.tls_crt));

    let two = certs::generate(&names, SystemTime::now(), &Lifetimes::default()).expect("gen");
    write(&two);
    wait_for("the reloaded certificate", || async {
        let r = request(webhook.addr, &two.ca_crt, "GET", "/healthz", b"")
            .await
            .ok()?;
        (r.leaf == leaf_of(&two.tls_crt)).then_some(())
    })
    .await;
    assert!(
        secret(&server).await.is_none(),
        "files mode writes no Secret"
    );

    webhook.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn reviews_see_secrets_and_warn_on_dangling_deletes() {
    let server = server().await;
    server
        .insert(pool("pool-a", &["10.0.0.0/24"]))
        .expect("pool");
    server
        .insert(serde_json::json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": "l2-a", "namespace": NS},
            "spec": {"ipAddressPools": ["pool-a"]},
        }))
        .expect("advertisement");
    server
        .insert(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
            "metadata": {"name": "md5", "namespace": NS},
            "data": {"password": "czNjcmV0"},
        }))
        .expect("password Secret");
    let webhook = Webhook::start(&server, options()).await;
    let secret = wait_for("the certificate Secret", || secret(&server)).await;
    let ca = secret_text(&secret, "ca.crt").expect("ca.crt");
    let peer = |secret: &str| {
        serde_json::json!({
            "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
            "metadata": {"name": "peer", "namespace": NS},
            "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1",
                     "passwordSecret": {"name": secret}},
        })
    };
    let post = |body: serde_json::Value| {
        let ca = ca.clone();
        async move {
            request(
                webhook.addr,
                &ca,
                "POST",
                "/validate",
                body.to_string().as_bytes(),
            )
            .await
            .expect("request")
            .json()
        }
    };

    let ok = post(admission_review("p1", "CREATE", peer("md5"))).await;
    assert_eq!(ok["response"]["allowed"], true, "{ok}");
    let missing = post(admission_review("p2", "CREATE", peer("absent"))).await;
    assert_eq!(missing["response"]["allowed"], false);
    let message = missing["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("spec.passwordSecret.name") && message.contains("absent"),
        "{message}"
    );

    let mut delete = admission_review("d1", "DELETE", pool("pool-a", &["10.0.0.0/24"]));
    delete["request"]["oldObject"] = delete["request"]["object"].take();
    let deleted = post(delete).await;
    assert_eq!(deleted["response"]["allowed"], true);
    let warnings = deleted["response"]["warnings"].to_string();
    assert!(
        warnings.contains("L2Advertisement ferrolb-system/l2-a"),
        "{warnings}"
    );

    webhook.stop().await;
    server.shutdown().await;
}
