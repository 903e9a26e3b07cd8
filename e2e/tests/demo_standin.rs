//! The demo without ferrolb's controller (needs root and the `ferrolb-speaker` binary): the
//! demo writes the Services' status itself, says so naming issue 3, and ferrolb's speaker
//! still announces the VIPs it wrote.

use std::net::IpAddr;

use ferrolb_e2e::cluster::demo::{self, DemoOptions, PROBE_VIP, WEB_VIP_V4, WEB_VIP_V6};
use ferrolb_e2e::lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_without_the_controller_writes_status_and_says_so() {
    if let Err(e) = lab::require_root() {
        panic!("the demo builds network namespaces: {e}");
    }
    let opts = DemoOptions {
        controller: false,
        ..DemoOptions::default()
    };
    let mut out: Vec<u8> = Vec::new();
    let mut on_lab = |_h: lab::TeardownHandle| {};
    let summary = demo::run(&opts, &mut out, &mut on_lab)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{}", String::from_utf8_lossy(&out)));
    let text = String::from_utf8_lossy(&out);
    assert!(!summary.controller);
    let want: Vec<IpAddr> = [WEB_VIP_V4, WEB_VIP_V6, PROBE_VIP]
        .iter()
        .map(|v| v.parse().expect("VIP"))
        .collect();
    assert_eq!(summary.vips, want);
    for want in [
        "ferrolb's controller is not wired into the demo yet (VIP allocation: issue 3)",
        "Not shown yet: VIP allocation by ferrolb's controller (issue 3)",
        "ferrolb-speaker on node1  Established  up",
        "[12/12] tear down",
    ] {
        assert!(text.contains(want), "output lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("ferrolb-controller"), "{text}");
    assert_eq!(summary.spread.len(), 6, "{:?}", summary.spread);
}
