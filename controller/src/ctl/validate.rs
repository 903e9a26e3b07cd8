//! `ferrolbctl validate`: offline validation of manifests, the same checks the controller
//! runs ([`ferrolb_config::manifest::parse_manifests`] then
//! [`ferrolb_config::build::build`]), plus the Service annotations ferrolb reads. No
//! cluster is needed, so it fits a GitOps CI step.

use ferrolb_config::build::{BuildOptions, Resources, build};
use ferrolb_config::ipset::Family;
use ferrolb_config::manifest::parse_manifests;
use ferrolb_config::service::{Handling, parse_service};

/// One manifest file: its name (for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path or name shown in errors.
    pub path: String,
    /// The YAML text (one or more documents).
    pub text: String,
}

/// Options of [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Namespace ferrolb is installed in (objects without a namespace are taken to be in it).
    pub namespace: String,
    /// Accept references to a BFD profile, password Secret or community alias that are not
    /// in the files (e.g. Secrets managed elsewhere).
    pub allow_missing_references: bool,
}

/// Validates `files` as one configuration. Ok: a summary of what was found. Err: every
/// problem, one per line as `Kind namespace/name: field: reason`; problems of parsing are
/// prefixed with the file. Cross-object rules run only when every file parses.
pub fn validate(files: &[ManifestFile], opts: &ValidateOptions) -> Result<String, Vec<String>> {
    let mut all = Resources::default();
    let mut errors = Vec::new();
    for f in files {
        match parse_manifests(&f.text) {
            Ok(mut r) => {
                all.pools.append(&mut r.pools);
                all.l2_advertisements.append(&mut r.l2_advertisements);
                all.bgp_advertisements.append(&mut r.bgp_advertisements);
                all.peers.append(&mut r.peers);
                all.bfd_profiles.append(&mut r.bfd_profiles);
                all.communities.append(&mut r.communities);
                all.namespaces.append(&mut r.namespaces);
                all.nodes.append(&mut r.nodes);
                all.secrets.append(&mut r.secrets);
                all.services.append(&mut r.services);
                all.service_l2_statuses.append(&mut r.service_l2_statuses);
                all.service_bgp_statuses.append(&mut r.service_bgp_statuses);
            }
            Err(errs) => errors.extend(errs.iter().map(|e| format!("{}: {e}", f.path))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for svc in &all.services {
        let view = parse_service(svc, None);
        if view.handling == Handling::NotLoadBalancer {
            continue;
        }
        if let Err(errs) = &view.request {
            for e in errs {
                errors.push(format!(
                    "Service {}/{}: {e}",
                    if view.namespace.is_empty() {
                        "default"
                    } else {
                        &view.namespace
                    },
                    view.name
                ));
            }
        }
    }
    let build_opts = BuildOptions {
        namespace: opts.namespace.clone(),
        allow_missing_references: opts.allow_missing_references,
    };
    let config = match build(&all, &build_opts) {
        Ok(c) => Some(c),
        Err(errs) => {
            errors.extend(errs.iter().map(|e| e.to_string()));
            None
        }
    };
    let Some(config) = config.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let mut out = format!(
        "valid: {} file{} with {} IPAddressPool(s), {} L2Advertisement(s), {} \
         BGPAdvertisement(s), {} BGPPeer(s), {} BFDProfile(s), {} Community object(s), {} \
         Service(s)\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        all.pools.len(),
        all.l2_advertisements.len(),
        all.bgp_advertisements.len(),
        all.peers.len(),
        all.bfd_profiles.len(),
        all.communities.len(),
        all.services.len(),
    );
    for (name, pool) in &config.pools {
        let parts: Vec<String> = Family::ALL
            .iter()
            .filter(|f| pool.has_family(**f))
            .map(|f| format!("{} {f}", pool.allocatable_count(*f)))
            .collect();
        let ads: Vec<&str> = config
            .l2_advertisements_for_pool(name)
            .map(|a| a.name.as_str())
            .chain(
                config
                    .bgp_advertisements_for_pool(name)
                    .map(|a| a.name.as_str()),
            )
            .collect();
        out.push_str(&format!(
            "  pool {name}: {} allocatable addresses; {}\n",
            parts.join(" + "),
            if ads.is_empty() {
                "not advertised (no L2Advertisement or BGPAdvertisement selects it)".to_owned()
            } else {
                format!("advertised by {}", ads.join(", "))
            }
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            text: text.into(),
        }
    }

    fn opts() -> ValidateOptions {
        ValidateOptions {
            namespace: "ferrolb-system".into(),
            allow_missing_references: false,
        }
    }

    const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: a\n\
                        spec:\n  addresses: [10.0.0.0/30, 'fd00::/126']\n";
    const L2: &str = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n\
                      spec:\n  ipAddressPools: [a]\n";

    #[test]
    fn validate_table() {
        type Case<'a> = (
            &'a str,
            Vec<ManifestFile>,
            Result<Vec<&'a str>, Vec<&'a str>>,
        );
        let cases: Vec<Case> = vec![
            (
                "valid across two files",
                vec![file("pool.yaml", POOL), file("l2.yaml", L2)],
                Ok(vec![
                    "valid: 2 files with 1 IPAddressPool(s), 1 L2Advertisement(s)",
                    "  pool a: 4 IPv4 + 4 IPv6 allocatable addresses; advertised by l2\n",
                ]),
            ),
            (
                "not advertised is said",
                vec![file("pool.yaml", POOL)],
                Ok(vec![
                    "pool a: 4 IPv4 + 4 IPv6 allocatable addresses; not advertised",
                ]),
            ),
            (
                "unknown field names the file and path",
                vec![file("bad.yaml", &format!("{POOL}  avoidBuggyIps: true\n"))],
                Err(vec![
                    "bad.yaml: IPAddressPool a: spec.avoidBuggyIps: unknown field",
                ]),
            ),
            (
                "cross-object rule",
                vec![file("l2.yaml", L2)],
                Err(vec![
                    "L2Advertisement ferrolb-system/l2: spec.ipAddressPools[0]",
                ]),
            ),
            (
                "bad address",
                vec![file("p.yaml", &POOL.replace("10.0.0.0/30", "10.0.0.1/30"))],
                Err(vec!["IPAddressPool ferrolb-system/a: spec.addresses[0]"]),
            ),
            (
                "bad Service annotation",
                vec![file(
                    "s.yaml",
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: web\n  \
                     annotations:\n    ferrolb.io/loadBalancerIPs: nope\nspec:\n  type: LoadBalancer\n",
                )],
                Err(vec![
                    "Service web/s: metadata.annotations[ferrolb.io/loadBalancerIPs]: `nope` is not an IP address",
                ]),
            ),
            (
                "invalid YAML",
                vec![file("y.yaml", "kind: [")],
                Err(vec!["y.yaml: Manifest #1: invalid YAML at line"]),
            ),
        ];
        for (what, files, want) in cases {
            let got = validate(&files, &opts());
            match (got, want) {
                (Ok(text), Ok(frags)) => {
                    for f in frags {
                        assert!(text.contains(f), "{what}: missing {f:?} in {text}");
                    }
                }
                (Err(errs), Err(frags)) => {
                    let text = errs.join("\n");
                    for f in frags {
                        assert!(text.contains(f), "{what}: missing {f:?} in {text}");
                    }
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}
