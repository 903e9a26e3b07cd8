//! `ferrolbctl`: the operator's view of ferrolb, for when a Service stays `<pending>` or its
//! traffic does not arrive.
//!
//! This binary is the I/O edge: it reads the objects with a kube client (kubeconfig from
//! `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account)
//! and prints what [`ferrolb_controller::ctl`] renders. `validate` needs no cluster.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ferrolb_config::build::Resources;
use ferrolb_controller::ctl::describe::{DescribeInput, describe_service};
use ferrolb_controller::ctl::events::{Regarding, events_regarding};
use ferrolb_controller::ctl::validate::{ManifestFile, ValidateOptions, validate};
use ferrolb_controller::ctl::{announcements, bgp, pools, services};
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
    ServiceBGPStatus, ServiceL2Status,
};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Node, Service};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Command-line interface.
#[derive(Parser, Debug)]
#[command(
    name = "ferrolbctl",
    version,
    about = "Inspect ferrolb: pools, LoadBalancer Services, BGP announcements; validate manifests"
)]
struct Cli {
    /// Path of the kubeconfig (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace ferrolb is installed in (its pools, peers and status objects live there).
    #[arg(long, global = true, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    ferrolb_namespace: String,
    #[command(subcommand)]
    command: Command,
}

/// Output format of the list commands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Aligned plain-text table.
    Table,
    /// JSON array or object.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Address pools per family: addresses, total / used / free, autoAssign, priority, Valid.
    #[command(alias = "pool", alias = "ipaddresspools")]
    Pools {
        /// Namespace of the pools (default: --ferrolb-namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// LoadBalancer Services: VIPs, pool, LoadBalancerReady, sharing key, ETP, announcers.
    #[command(alias = "service", alias = "svc")]
    Services {
        /// Namespace of the Services (default: the kubeconfig context's namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        /// List Services in every namespace.
        #[arg(short = 'A', long, conflicts_with = "namespace")]
        all_namespaces: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Everything about one object and why it is pending: `describe service <ns>/<name>`.
    Describe {
        /// Kind of object: `service` (alias `svc`).
        kind: String,
        /// `<namespace>/<name>`, or `<name>` with -n.
        name: String,
        /// Namespace of the Service when NAME has none (default: the context's namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        /// The controller's --lb-class, if it runs with one.
        #[arg(long, env = "FERROLB_LB_CLASS")]
        lb_class: Option<String>,
    },
    /// BGPPeers with the nodes they apply to, and what each node advertises to them.
    #[command(alias = "peers")]
    Bgp {
        /// Namespace of the peers and status objects (default: --ferrolb-namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Validate manifests offline (no cluster): exit code 1 with every error.
    Validate {
        /// Manifest file, directory (every *.yaml / *.yml / *.json below it), or `-` for
        /// stdin; repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Namespace ferrolb is installed in (default: --ferrolb-namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Accept references to BFD profiles, password Secrets and community aliases that are
        /// not among the files.
        #[arg(long)]
        allow_missing_references: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ferrolb_ns = cli.ferrolb_namespace.clone();
    let kubeconfig = cli.kubeconfig.clone();
    let connect = || client(kubeconfig.as_deref(), cli.context.clone());
    match cli.command {
        Command::Validate {
            files,
            namespace,
            allow_missing_references,
        } => {
            return run_validate(
                &files,
                namespace.unwrap_or(ferrolb_ns),
                allow_missing_references,
            );
        }
        Command::Pools { namespace, output } => {
            let client = connect().await?;
            let ns = namespace.unwrap_or(ferrolb_ns);
            let list = list_ferrolb::<IPAddressPool>(&client, &ns, true).await?;
            let rows = pools::pool_rows(&list);
            print_output(output, &rows, || pools::pools_table(&rows, &ns))?;
        }
        Command::Services {
            namespace,
            all_namespaces,
            output,
        } => {
            let client = connect().await?;
            let (api, scope) = if all_namespaces {
                (
                    Api::<Service>::all(client.clone()),
                    "any namespace".to_owned(),
                )
            } else {
                let ns = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
                (
                    Api::<Service>::namespaced(client.clone(), &ns),
                    format!("namespace {ns}"),
                )
            };
            let svcs = api
                .list(&ListParams::default())
                .await
                .context("listing Services")?
                .items;
            let anns = status_announcements(&client, &ferrolb_ns).await?;
            let rows = services::service_rows(&svcs, &anns);
            print_output(output, &rows, || {
                services::services_table(&rows, all_namespaces, &scope)
            })?;
        }
        Command::Describe {
            kind,
            name,
            namespace,
            lb_class,
        } => {
            if !matches!(kind.as_str(), "service" | "services" | "svc") {
                anyhow::bail!("cannot describe `{kind}`: only `service` (or `svc`) is supported");
            }
            let client = connect().await?;
            let (ns, name) = match name.split_once('/') {
                Some((ns, n)) => (ns.to_owned(), n.to_owned()),
                None => (
                    namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
                    name,
                ),
            };
            let text = describe(&client, &ferrolb_ns, &ns, &name, lb_class.as_deref()).await?;
            print!("{text}");
        }
        Command::Bgp { namespace, output } => {
            let client = connect().await?;
            let ns = namespace.unwrap_or(ferrolb_ns);
            let peers = list_ferrolb::<BGPPeer>(&client, &ns, true).await?;
            // Without permission to list Nodes, the NODES column says `?`.
            let nodes = Api::<Node>::all(client.clone())
                .list(&ListParams::default())
                .await
                .ok()
                .map(|l| l.items);
            let anns = status_announcements(&client, &ns).await?;
            let svcs = Api::<Service>::all(client.clone())
                .list(&ListParams::default())
                .await
                .context("listing Services")?
                .items;
            let report = bgp::bgp_report(
                bgp::peer_rows(&peers, nodes.as_deref()),
                bgp::bgp_announcement_rows(&anns, &svcs),
            );
            print_output(output, &report, || bgp::bgp_text(&report, &ns))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_output<T: Serialize + ?Sized>(
    output: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Table => print!("{}", table()),
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

async fn client(kubeconfig: Option<&Path>, context: Option<String>) -> anyhow::Result<Client> {
    let opts = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None if opts.context.is_some() => Config::from_kubeconfig(&opts)
            .await
            .context("loading the kubeconfig")?,
        None => Config::infer()
            .await
            .context("no kubeconfig found and not running in a cluster")?,
    };
    Client::try_from(config).context("creating the Kubernetes client")
}

/// Lists a ferrolb kind in `ns`. A missing CRD is an error when `required`, else empty.
async fn list_ferrolb<K>(client: &Client, ns: &str, required: bool) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    match Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 && !required => Ok(Vec::new()),
        Err(kube::Error::Api(s)) if s.code == 404 => anyhow::bail!(
            "{kind} is not served by the API server: are ferrolb's CRDs installed \
             (kubectl apply -f deploy/crds)? ({})",
            s.message
        ),
        Err(e) => Err(e).with_context(|| format!("listing {kind} in namespace {ns}")),
    }
}

async fn status_announcements(
    client: &Client,
    ns: &str,
) -> anyhow::Result<Vec<ferrolb_controller::ctl::Announcement>> {
    let bgp = list_ferrolb::<ServiceBGPStatus>(client, ns, false).await?;
    let l2 = list_ferrolb::<ServiceL2Status>(client, ns, false).await?;
    Ok(announcements(&bgp, &l2))
}

async fn describe(
    client: &Client,
    ferrolb_ns: &str,
    ns: &str,
    name: &str,
    lb_class: Option<&str>,
) -> anyhow::Result<String> {
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading Service {ns}/{name}"))?
        .with_context(|| format!("Service {ns}/{name} not found"))?;
    let namespace_labels: Option<BTreeMap<String, String>> =
        match Api::<Namespace>::all(client.clone()).get_opt(ns).await {
            Ok(Some(n)) => Some(n.metadata.labels.unwrap_or_default()),
            _ => None,
        };
    let resources = Resources {
        pools: list_ferrolb::<IPAddressPool>(client, ferrolb_ns, true).await?,
        l2_advertisements: list_ferrolb::<L2Advertisement>(client, ferrolb_ns, false).await?,
        bgp_advertisements: list_ferrolb::<BGPAdvertisement>(client, ferrolb_ns, false).await?,
        peers: list_ferrolb::<BGPPeer>(client, ferrolb_ns, false).await?,
        bfd_profiles: list_ferrolb::<BFDProfile>(client, ferrolb_ns, false).await?,
        communities: list_ferrolb::<Community>(client, ferrolb_ns, false).await?,
        services: Api::<Service>::all(client.clone())
            .list(&ListParams::default())
            .await
            .context("listing Services")?
            .items,
        // Password Secrets are not read (ferrolbctl needs no access to Secrets): the
        // configuration is built as the admission webhook builds it, tolerating them.
        ..Resources::default()
    };
    let anns = status_announcements(client, ferrolb_ns).await?;
    // Events are best effort: a user may lack permission to list them.
    let v1: Vec<EventV1> = Api::<EventV1>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let core: Vec<CoreEvent> = Api::<CoreEvent>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let events = events_regarding(
        Regarding {
            kind: "Service",
            namespace: ns,
            name,
            uid: svc.metadata.uid.as_deref(),
        },
        &v1,
        &core,
    );
    Ok(describe_service(&DescribeInput {
        service: &svc,
        namespace_labels: namespace_labels.as_ref(),
        resources: &resources,
        ferrolb_namespace: ferrolb_ns,
        lb_class,
        announcements: &anns,
        events: &events,
        now: Timestamp::now(),
    }))
}

fn run_validate(
    paths: &[PathBuf],
    namespace: String,
    allow_missing_references: bool,
) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading stdin")?;
            files.push(ManifestFile {
                path: "<stdin>".to_owned(),
                text,
            });
        } else {
            collect_files(p, &mut files)?;
        }
    }
    if files.is_empty() {
        anyhow::bail!("no *.yaml, *.yml or *.json file found");
    }
    let opts = ValidateOptions {
        namespace,
        allow_missing_references,
    };
    match validate(&files, &opts) {
        Ok(summary) => {
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!(
                "{} error{} found",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads `path`, or every manifest file below it in name order.
fn collect_files(path: &Path, out: &mut Vec<ManifestFile>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let is_manifest = e
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
            if e.is_dir() || is_manifest {
                collect_files(&e, out)?;
            }
        }
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    out.push(ManifestFile {
        path: path.display().to_string(),
        text,
    });
    Ok(())
}
