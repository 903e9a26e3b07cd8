//! Checks shared by the lab's own tests: root, and that a run left nothing behind.

// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::path::Path;

use ferrolb_e2e::lab;

/// Panics unless root (the lab builds network namespaces).
pub fn root() {
    if let Err(e) = lab::require_root() {
        panic!("this test builds network namespaces: {e}");
    }
}

/// Network namespaces whose name starts with `prefix`, sorted.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/var/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Asserts that run `run` left no namespace and no run directory.
pub fn assert_torn_down(run: &str, run_dir: &Path) {
    assert_eq!(
        namespaces_with_prefix(&format!("{run}-")),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    assert!(
        !run_dir.exists(),
        "run dir {} left behind",
        run_dir.display()
    );
}
