//! Arbitrary text as a multi-document manifest: parsing and whole-config validation never
//! panic, whatever the YAML holds.
#![no_main]

use ferrolb_config::build::{BuildOptions, build};
use ferrolb_config::manifest::parse_manifests;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(resources) = parse_manifests(text) {
        let _ = build(&resources, &BuildOptions::default());
    }
});
