//! `ferrolb-controller`: allocates VIPs from IPAddressPools to LoadBalancer Services.
//!
//! The pure allocation engine lives in the library; the Service reconciler is not built yet,
//! so this binary parses its flags and exits with a clear message.

use clap::Parser;

/// Command-line flags of the controller.
#[derive(Parser, Debug)]
#[command(name = "ferrolb-controller", version, about = "ferrolb controller: VIP allocation for LoadBalancer Services")]
struct Flags {
    /// Namespace ferrolb's custom resources live in.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (default: Services without a class).
    #[arg(long = "lb-class", env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:7472")]
    metrics_addr: String,
    /// Address of the validating admission webhook (HTTPS).
    #[arg(long, default_value = "0.0.0.0:9443")]
    webhook_addr: String,
}

fn main() {
    let flags = Flags::parse();
    eprintln!(
        "ferrolb-controller: the Service reconciler is not built yet (issue 3); \
         flags parsed: namespace={} lb-class={:?} metrics={} webhook={}",
        flags.namespace, flags.lb_class, flags.metrics_addr, flags.webhook_addr
    );
    std::process::exit(2);
}
