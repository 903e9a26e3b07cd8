//! Serving certificates of the webhook: generation with `rcgen`, checks with `rustls`'s
//! certificate verifier, and the decision to keep, re-issue or replace a stored bundle.
//!
//! Pure: no kube client, no tokio, no clock (the caller passes the time). A bundle is four
//! PEM strings as stored in the Secret. The check is the one the API server performs, run
//! at a future instant: the serving certificate must chain to a CA of `ca.crt`, carry every
//! DNS name, be valid at `now + rotate_before`, and match its key. The CA certificate is
//! never parsed: whether the stored CA key can still sign is tested by issuing a
//! certificate with it and verifying that one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;

/// Key of the serving certificate chain in the Secret.
pub const TLS_CRT: &str = "tls.crt";
/// Key of the serving private key in the Secret.
pub const TLS_KEY: &str = "tls.key";
/// Key of the CA bundle (PEM, current CA first) in the Secret.
pub const CA_CRT: &str = "ca.crt";
/// Key of the CA private key in the Secret.
pub const CA_KEY: &str = "ca.key";

/// Common name of the generated CA (also its whole subject, which a re-issued serving
/// certificate names as issuer).
const CA_COMMON_NAME: &str = "ferrolb-webhook-ca";

/// Lifetimes and the rotation margin of generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a generated CA.
    pub ca: Duration,
    /// Validity of a generated serving certificate.
    pub serving: Duration,
    /// A certificate that is not valid anymore `rotate_before` from now is replaced.
    pub rotate_before: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            ca: Duration::from_secs(10 * 365 * 86_400),
            serving: Duration::from_secs(365 * 86_400),
            rotate_before: Duration::from_secs(30 * 86_400),
        }
    }
}

/// A CA and a serving certificate, as PEM text.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// CA certificates (the current CA first, possibly followed by the previous one during
    /// a CA rotation).
    pub ca_crt: String,
    /// Private key of the current CA (PKCS#8).
    pub ca_key: String,
    /// Serving certificate.
    pub tls_crt: String,
    /// Private key of the serving certificate.
    pub tls_key: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_crt", &self.ca_crt)
            .field("tls_crt", &self.tls_crt)
            .finish_non_exhaustive()
    }
}

/// What to do with a stored bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The stored bundle is good: use it as is.
    Keep,
    /// Write this bundle; `reason` says why the stored one was not kept.
    Replace {
        /// The new bundle.
        bundle: Bundle,
        /// Whether a new CA was generated (so the CA bundle of the webhook configuration
        /// changes).
        new_ca: bool,
        /// Why the stored bundle was not kept.
        reason: String,
    },
}

/// Errors of certificate generation or loading.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed to generate or sign.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM document or key could not be read.
    #[error("{0}")]
    Invalid(String),
}

/// The DNS names a Service `service` in `namespace` is reached by.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// The ring crypto provider all TLS code of the webhook uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and key into a rustls [`CertifiedKey`], checking that the
/// key matches the first certificate.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, CertError> {
    let chain = parse_certs(cert_pem)?;
    if chain.is_empty() {
        return Err(CertError::Invalid("no certificate in the PEM data".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| CertError::Invalid(format!("private key: {e}")))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| CertError::Invalid(format!("certificate and key: {e}")))
}

/// Parses every certificate of a PEM document.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Invalid(format!("certificate PEM: {e}")))
}

/// Checks that `bundle` serves every name of `dns_names` at time `at`: the serving
/// certificate matches its key and chains to a CA of `ca_crt`, all valid at `at`.
pub fn check(bundle: &Bundle, dns_names: &[String], at: SystemTime) -> Result<(), String> {
    let key = certified_key(bundle.tls_crt.as_bytes(), bundle.tls_key.as_bytes())
        .map_err(|e| e.to_string())?;
    let cas = parse_certs(bundle.ca_crt.as_bytes()).map_err(|e| e.to_string())?;
    let Some(ca) = cas.into_iter().next() else {
        return Err(format!("{CA_CRT} holds no certificate"));
    };
    // webpki does not look at the validity of trust anchors; the API server does.
    let ca_not_after =
        not_after(&ca).ok_or_else(|| format!("{CA_CRT}: cannot read the validity period"))?;
    if ca_not_after < at {
        return Err(format!(
            "the CA certificate expires before {}",
            unix_secs(at)
        ));
    }
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| format!("{CA_CRT} is not a usable CA certificate: {e}"))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("building the verifier: {e}"))?;
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (end_entity, intermediates) = key
        .cert
        .split_first()
        .ok_or_else(|| "empty certificate chain".to_owned())?;
    for name in dns_names {
        let server_name = ServerName::try_from(name.as_str())
            .map_err(|e| format!("invalid DNS name {name:?}: {e}"))?;
        verifier
            .verify_server_cert(
                end_entity,
                intermediates,
                &server_name,
                &[],
                UnixTime::since_unix_epoch(since_epoch),
            )
            .map_err(|e| format!("serving certificate for {name}: {e}"))?;
    }
    Ok(())
}

/// Decides what to do with the stored `existing` bundle (`None` when the Secret is missing
/// or does not hold the four keys) for `dns_names` at `now`:
///
/// * keep it when [`check`] passes at `now + rotate_before`;
/// * otherwise re-issue the serving certificate with the stored CA key when a certificate
///   issued that way passes the check (the CA bundle does not change);
/// * otherwise generate a new CA and serving certificate. The previous CA stays in
///   `ca.crt`, after the new one, while the previous serving certificate is still valid
///   at `now`, so that callers holding the old CA bundle keep working during the switch.
pub fn plan(
    existing: Option<&Bundle>,
    dns_names: &[String],
    now: SystemTime,
    lifetimes: &Lifetimes,
) -> Result<Plan, CertError> {
    let horizon = now + lifetimes.rotate_before;
    let reason = match existing {
        None => "no stored certificate".to_owned(),
        Some(b) => match check(b, dns_names, horizon) {
            Ok(()) => return Ok(Plan::Keep),
            Err(e) => e,
        },
    };
    if let Some(old) = existing
        && let Ok(ca_key) = KeyPair::from_pem(&old.ca_key)
    {
        let (tls_crt, tls_key) = issue_serving(&ca_key, dns_names, now, lifetimes.serving)?;
        let candidate = Bundle {
            ca_crt: old.ca_crt.clone(),
            ca_key: old.ca_key.clone(),
            tls_crt,
            tls_key,
        };
        if check(&candidate, dns_names, horizon).is_ok() {
            return Ok(Plan::Replace {
                bundle: candidate,
                new_ca: false,
                reason,
            });
        }
    }
    let mut bundle = generate(dns_names, now, lifetimes)?;
    if let Some(old) = existing
        && check(old, dns_names, now).is_ok()
        && let Some(previous_ca) = first_pem_certificate(&old.ca_crt)
    {
        bundle.ca_crt.push_str(&previous_ca);
    }
    Ok(Plan::Replace {
        bundle,
        new_ca: true,
        reason,
    })
}

/// Generates a new CA and a serving certificate for `dns_names`, valid from `now`.
pub fn generate(
    dns_names: &[String],
    now: SystemTime,
    lifetimes: &Lifetimes,
) -> Result<Bundle, CertError> {
    let ca_key = KeyPair::generate()?;
    let ca_crt = ca_params(now, now + lifetimes.ca)
        .self_signed(&ca_key)?
        .pem();
    let (tls_crt, tls_key) = issue_serving(&ca_key, dns_names, now, lifetimes.serving)?;
    Ok(Bundle {
        ca_crt,
        ca_key: ca_key.serialize_pem(),
        tls_crt,
        tls_key,
    })
}

/// Parameters of the CA. The subject and key-identifier method are constant, so an issuer
/// rebuilt from them names the stored CA exactly.
fn ca_params(not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Backdated by an hour against clock skew between the controller and the API server.
    params.not_before = not_before
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(not_before)
        .into();
    params.not_after = not_after.into();
    params
}

/// Issues a serving certificate for `dns_names` signed by `ca_key`; returns (cert, key) PEM.
fn issue_serving(
    ca_key: &KeyPair,
    dns_names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<(String, String), CertError> {
    let ca = ca_params(now, now + validity);
    let issuer = Issuer::from_params(&ca, ca_key);
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names.first().map_or("ferrolb-webhook", String::as_str),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(now)
        .into();
    params.not_after = (now + validity).into();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The first `CERTIFICATE` PEM block of `pem`, as text, if it parses.
fn first_pem_certificate(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)?;
    let end = start + pem[start..].find(END)? + END.len();
    let block = format!("{}\n", &pem[start..end]);
    (parse_certs(block.as_bytes()).ok()?.len() == 1).then_some(block)
}

/// Seconds since the Unix epoch (0 before it), for messages.
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `notAfter` time of a DER certificate (RFC 5280 section 4.1: Certificate ->
/// tbsCertificate -> [version] serialNumber signature issuer validity), `None` if the
/// structure cannot be read.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (tag, certificate, _) = der_next(cert.as_ref())?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_next(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (mut tag, _, mut after) = der_next(rest)?;
    if tag == 0xa0 {
        // Explicit version.
        rest = after;
        (tag, _, after) = der_next(rest)?;
    }
    // serialNumber, then signature algorithm, issuer.
    if tag != 0x02 {
        return None;
    }
    rest = after;
    for expected in [0x30, 0x30] {
        let (tag, _, after) = der_next(rest)?;
        if tag != expected {
            return None;
        }
        rest = after;
    }
    let (tag, validity, _) = der_next(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after) = der_next(validity)?;
    let (tag, time, _) = der_next(after)?;
    parse_der_time(tag, time)
}

/// Splits one DER element off `data`: (tag, contents, rest).
fn der_next(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, tail) = rest.split_at(n);
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, tail) = rest.split_at(len);
    Some((tag, contents, tail))
}

/// Parses a UTCTime (tag 0x17, `YYMMDDHHMMSSZ`) or GeneralizedTime (tag 0x18,
/// `YYYYMMDDHHMMSSZ`).
fn parse_der_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn names() -> Vec<String> {
        service_dns_names("ferrolb-webhook", "ferrolb-system")
    }

    fn now() -> SystemTime {
        // 2026-11-22T00:00:00Z.
        UNIX_EPOCH + Duration::from_secs(1_795_305_600)
    }

    #[test]
    fn dns_names() {
        assert_eq!(
            names(),
            [
                "ferrolb-webhook",
                "ferrolb-webhook.ferrolb-system",
                "ferrolb-webhook.ferrolb-system.svc",
                "ferrolb-webhook.ferrolb-system.svc.cluster.local"
            ]
        );
    }

    #[test]
    fn der_time_parsing() {
        let cases: [(u8, &str, Option<u64>); 7] = [
            (0x17, "700101000000Z", Some(0)),
            (0x17, "261122000000Z", Some(1_795_305_600)),
            (0x18, "20261122000000Z", Some(1_795_305_600)),
            (0x18, "20000229120000Z", Some(951_825_600)),
            (0x17, "2611220000Z", None),
            (0x17, "261322000000Z", None),
            (0x18, "2026112200000xZ", None),
        ];
        for (tag, text, want) in cases {
            let got = parse_der_time(tag, text.as_bytes())
                .map(|t| t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs());
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn not_after_of_generated_certificates() {
        let lifetimes = Lifetimes::default();
        let b = generate(&names(), now(), &lifetimes).expect("generate");
        let ca = parse_certs(b.ca_crt.as_bytes()).expect("ca")[0].clone();
        let tls = parse_certs(b.tls_crt.as_bytes()).expect("tls")[0].clone();
        assert_eq!(not_after(&ca), Some(now() + lifetimes.ca));
        assert_eq!(not_after(&tls), Some(now() + lifetimes.serving));
        assert_eq!(
            not_after(&CertificateDer::from(vec![0x30, 0x03, 0x02])),
            None
        );
        assert_eq!(not_after(&CertificateDer::from(Vec::new())), None);
    }

    #[test]
    fn check_accepts_fresh_and_rejects_wrong_names_or_expired() {
        let lifetimes = Lifetimes::default();
        let b = generate(&names(), now(), &lifetimes).expect("generate");
        assert_eq!(check(&b, &names(), now()), Ok(()));
        assert!(check(&b, &["other.example".to_owned()], now()).is_err());
        assert!(check(&b, &names(), now() + lifetimes.serving + DAY).is_err());
        let mut mixed = b.clone();
        mixed.tls_key = generate(&names(), now(), &lifetimes).expect("g").tls_key;
        assert!(check(&mixed, &names(), now()).is_err());
        let garbage = Bundle {
            ca_crt: "nope".into(),
            ca_key: "nope".into(),
            tls_crt: "nope".into(),
            tls_key: "nope".into(),
        };
        assert!(check(&garbage, &names(), now()).is_err());
    }

    #[test]
    fn plan_keeps_reissues_or_replaces() {
        let lifetimes = Lifetimes::default();
        // Nothing stored: new CA.
        let Plan::Replace { bundle, new_ca, .. } =
            plan(None, &names(), now(), &lifetimes).expect("plan")
        else {
            panic!("expected a new bundle");
        };
        assert!(new_ca);
        // A fresh bundle is kept.
        assert_eq!(
            plan(Some(&bundle), &names(), now(), &lifetimes).expect("plan"),
            Plan::Keep
        );
        // Serving certificate within the rotation margin: re-issued with the same CA.
        let later = now() + lifetimes.serving - DAY;
        let Plan::Replace {
            bundle: reissued,
            new_ca,
            ..
        } = plan(Some(&bundle), &names(), later, &lifetimes).expect("plan")
        else {
            panic!("expected a re-issued certificate");
        };
        assert!(!new_ca);
        assert_eq!(reissued.ca_crt, bundle.ca_crt);
        assert_ne!(reissued.tls_crt, bundle.tls_crt);
        assert_eq!(
            check(&reissued, &names(), later + lifetimes.rotate_before),
            Ok(())
        );
        // CA within the margin: new CA, old one kept in the bundle while still valid.
        let short = Lifetimes {
            ca: 10 * DAY,
            serving: 5 * DAY,
            ..lifetimes
        };
        let old = generate(&names(), now(), &short).expect("generate");
        let Plan::Replace {
            bundle: fresh,
            new_ca,
            ..
        } = plan(Some(&old), &names(), now(), &lifetimes).expect("plan")
        else {
            panic!("expected a new CA");
        };
        assert!(new_ca);
        assert!(fresh.ca_crt.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(fresh.ca_crt.ends_with(&old.ca_crt.replace("\r\n", "\n")));
        assert_eq!(parse_certs(fresh.ca_crt.as_bytes()).expect("pem").len(), 2);
        assert_eq!(
            check(&fresh, &names(), now() + lifetimes.rotate_before),
            Ok(())
        );
        // A different service name forces a new serving certificate (same CA).
        let other = service_dns_names("other", "ns");
        let Plan::Replace { new_ca, .. } =
            plan(Some(&bundle), &other, now(), &lifetimes).expect("plan")
        else {
            panic!("expected a new certificate");
        };
        assert!(!new_ca);
    }

    #[test]
    fn certified_key_rejects_bad_pem() {
        assert!(certified_key(b"", b"").is_err());
        assert!(
            certified_key(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                b"x"
            )
            .is_err()
        );
    }
}
