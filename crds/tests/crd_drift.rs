//! The committed `deploy/crds/*.yaml` must be exactly what `crdgen` produces.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds")
}

#[test]
fn committed_crds_match_generated() {
    let mut drift = Vec::new();
    for crd in ferrolb_crds::all_crds() {
        let name = ferrolb_crds::crd_file_name(&crd);
        let path = crd_dir().join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != ferrolb_crds::crd_yaml(&crd) {
            drift.push(name);
        }
    }
    assert!(
        drift.is_empty(),
        "deploy/crds is out of date for {drift:?}; run `cargo run -p ferrolb-crds --bin crdgen` and commit"
    );
}

#[test]
fn no_stale_crd_files() {
    let expected: BTreeSet<String> = ferrolb_crds::all_crds()
        .iter()
        .map(ferrolb_crds::crd_file_name)
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(crd_dir())
        .expect("deploy/crds exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(
        present, expected,
        "deploy/crds holds files crdgen does not write"
    );
}
