//! The controller's command line: `rlscale controller` and the slim `rlscale-controller` binary
//! (feature `cli`), which share these arguments, their checks and the logging setup.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

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
    /// Elect a leader over a coordination.k8s.io/v1 Lease before reconciling, so that of several
    /// replicas exactly one writes (the others stand by). The identity is $POD_NAME, else host_pid.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "rlscale-controller", value_name = "NAME")]
    pub leader_election_id: String,
    /// Namespace of the Lease [default: $POD_NAMESPACE, else "default"].
    #[arg(long, value_name = "NS")]
    pub leader_election_namespace: Option<String>,
    /// How long a Lease holds without renewal before a standby may take it over.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub lease_duration: std::time::Duration,
    /// How long the leader keeps trying to renew before it stops leading (< --lease-duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub renew_deadline: std::time::Duration,
    /// Abandon and retry a reconcile that takes longer than this (a hung API server or Prometheus).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub reconcile_timeout: std::time::Duration,
    /// Reconciles in flight at most (> 0). After a restart every object is due at once: more drains
    /// that first pass faster when Prometheus is slow, fewer keeps each reconcile short on few cores.
    #[arg(long, default_value_t = crate::controller::DEFAULT_MAX_CONCURRENT_RECONCILES, value_name = "N")]
    pub max_concurrent_reconciles: u16,
    /// How often to try to acquire or renew the Lease (< --renew-deadline).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub retry_period: std::time::Duration,
}

/// A duration: `500ms`, `15s`, `2m`, `6h`, `14d`, or bare seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86_400.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 15s, 2m, 6h, 14d)"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 1e9 {
        return Err(format!("{text:?} is not a duration between 0 and 1e9 s"));
    }
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

/// Where the Lease's namespace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseNamespaceFrom {
    Flag,
    Env,
    Default,
}

impl LeaseNamespaceFrom {
    fn as_str(self) -> &'static str {
        match self {
            LeaseNamespaceFrom::Flag => "--leader-election-namespace",
            LeaseNamespaceFrom::Env => "$POD_NAMESPACE",
            LeaseNamespaceFrom::Default => "default",
        }
    }
}

/// The Lease's namespace: `--leader-election-namespace`, else `$POD_NAMESPACE` (when not empty),
/// else `default`; and which of the three it was.
fn lease_namespace(flag: Option<&str>, env: Option<&str>) -> (String, LeaseNamespaceFrom) {
    if let Some(ns) = flag {
        return (ns.to_string(), LeaseNamespaceFrom::Flag);
    }
    match env.filter(|n| !n.is_empty()) {
        Some(ns) => (ns.to_string(), LeaseNamespaceFrom::Env),
        None => ("default".into(), LeaseNamespaceFrom::Default),
    }
}

/// This process's leader-election identity: $POD_NAME, else `<hostname>_<pid>`.
fn identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME")
        && !p.is_empty()
    {
        return p;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rlscale".into());
    format!("{host}_{}", std::process::id())
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

/// Run the controller until it is stopped: the flags checked (bad ones are [`BadInput`]), the Lease's
/// namespace logged, the Kubernetes client built, then [`crate::run`].
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.reconcile_timeout.is_zero() {
        return Err(anyhow::Error::new(BadInput(
            "--reconcile-timeout must be > 0".into(),
        )));
    }
    if args.max_concurrent_reconciles == 0 {
        return Err(anyhow::Error::new(BadInput(
            "--max-concurrent-reconciles must be > 0".into(),
        )));
    }
    let leader_election = if args.leader_elect {
        let env = std::env::var("POD_NAMESPACE").ok();
        let (ns, from) = lease_namespace(args.leader_election_namespace.as_deref(), env.as_deref());
        match from {
            LeaseNamespaceFrom::Default => tracing::warn!(
                namespace = %ns,
                "leader election: neither --leader-election-namespace nor $POD_NAMESPACE is set; the \
                 Lease goes to namespace \"default\" (the shipped RBAC grants Leases in the \
                 controller's own namespace only)"
            ),
            _ => {
                tracing::info!(namespace = %ns, from = from.as_str(), "leader election: the Lease's namespace")
            }
        }
        let mut le = crate::LeaseConfig::new(&args.leader_election_id, &ns, &identity());
        le.lease_duration = args.lease_duration;
        le.renew_deadline = args.renew_deadline;
        le.retry_period = args.retry_period;
        le.validate().map_err(|e| anyhow::Error::new(BadInput(e)))?;
        Some(le)
    } else {
        None
    };
    rt.block_on(async move {
        let cfg = kube_config(args.kubeconfig.as_ref(), args.context.as_ref()).await?;
        let client = kube::Client::try_from(cfg).context("building the Kubernetes client")?;
        let opts = crate::Options {
            namespace: args.namespace,
            metrics_addr: args.metrics_addr,
            decision_log: args.decision_log,
            reporter: args.reporter,
            leader_election,
            reconcile_timeout: args.reconcile_timeout,
            max_concurrent_reconciles: args.max_concurrent_reconciles,
        };
        crate::run(client, opts, std::future::pending())
            .await
            .context("controller")
    })
}

/// An error caused by the user's input (exit code 2), as opposed to a failure while working (exit
/// code 1). The `rlscale` CLI uses the same type.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Logs go to stderr, filtered by `RUST_LOG`. The controller logs JSON lines at `info` by default (one
/// line per decision); the `rlscale` CLI's other subcommands log text at `warn`.
pub fn init_tracing(controller: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if controller { "info" } else { "warn" };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // kube-client logs an ERROR for every failed request: during an API-server outage, one per
    // object every 5 s. The controller logs each failure itself, rate-limited
    // (`crate::loglimit`); kube-client's own line only when RUST_LOG names kube_client.
    let names_kube = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("kube_client"));
    if controller
        && !names_kube
        && let Ok(quiet) = "kube_client::client::builder=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if controller {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The exit code for an error: 2 when it (or its cause) is bad input, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<BadInput>()) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_namespace_and_where_it_came_from() {
        use LeaseNamespaceFrom::*;
        assert_eq!(lease_namespace(Some("a"), Some("b")), ("a".into(), Flag));
        assert_eq!(lease_namespace(None, Some("b")), ("b".into(), Env));
        assert_eq!(lease_namespace(None, Some("")), ("default".into(), Default));
        assert_eq!(lease_namespace(None, None), ("default".into(), Default));
    }
}
