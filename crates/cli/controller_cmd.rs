//! `rlscale controller` and `rlscale crdgen`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

use crate::BadInput;

/// Run the controller.
#[derive(Debug, Parser)]
pub struct Args {
    /// Kubeconfig to use [default: in-cluster service account, else $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig [default: its current context].
    #[arg(long)]
    pub context: Option<String>,
    /// Watch RLAutoscalers in this namespace only [default: all namespaces].
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Append every decision (snapshot, ours, the HPA's) to this JSONL file, for `shadow-report`.
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// The name Events are reported under.
    #[arg(long, default_value = "rlscale-controller")]
    pub reporter: String,
}

/// Print the RLAutoscaler CRD.
#[derive(Debug, Parser)]
pub struct CrdgenArgs {}

pub fn run_crdgen(_args: CrdgenArgs) -> anyhow::Result<()> {
    print!("{}", rlscale_controller::crd_yaml());
    Ok(())
}

/// The kube client configuration from the flags.
pub async fn kube_config(
    kubeconfig: Option<&PathBuf>,
    context: Option<&String>,
) -> anyhow::Result<kube::Config> {
    let opts = kube::config::KubeConfigOptions {
        context: context.cloned(),
        ..Default::default()
    };
    match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                anyhow::Error::new(BadInput(format!("kubeconfig {}: {e}", path.display())))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| {
                    anyhow::Error::new(BadInput(format!("kubeconfig {}: {e}", path.display())))
                })
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&opts)
            .await
            .context("reading the kubeconfig"),
        None => kube::Config::infer()
            .await
            .context("no in-cluster service account and no kubeconfig (pass --kubeconfig)"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let cfg = kube_config(args.kubeconfig.as_ref(), args.context.as_ref()).await?;
        let client = kube::Client::try_from(cfg).context("building the Kubernetes client")?;
        let opts = rlscale_controller::Options {
            namespace: args.namespace,
            metrics_addr: args.metrics_addr,
            decision_log: args.decision_log,
            reporter: args.reporter,
        };
        rlscale_controller::run(client, opts, std::future::pending())
            .await
            .context("controller")
    })
}
