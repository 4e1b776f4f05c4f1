//! The `loco-preflight` command line: parse, LIST once, print, exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::Error;
use crate::gate::{CapacityGate, ListGate};
use crate::model::{
    ComponentSelector, Purpose, Request, TaintEffect, Toleration, TolerationOperator,
};
use crate::placement::Verdict;
use crate::quantity::{self, Cpu, Mem};

/// Exit code: the cluster can take the request.
pub const EXIT_PASS: i32 = 0;
/// Exit code: the check ran and the cluster cannot take the request.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: the command line or the request is not valid.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the cluster could not be asked (no kubeconfig, unreachable, forbidden).
pub const EXIT_UNREACHABLE: i32 = 3;

/// loco-preflight checks that the cluster's nodes are Ready and can hold the requested
/// replicas, placed node by node as the scheduler would, before loco deploys, wakes or
/// rebuilds an app.
#[derive(Debug, Parser)]
#[command(name = "loco-preflight", version)]
pub struct Args {
    /// Log lines as JSON (for machines) instead of text.
    #[arg(long, env = "LOCO_LOG_JSON", global = true)]
    pub log_json: bool,

    /// The kubeconfig file to use; several paths may be joined with ':' as in KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", global = true)]
    pub kubeconfig: Option<String>,

    /// The kubeconfig context to use instead of its current context.
    #[arg(long, env = "LOCO_KUBE_CONTEXT", global = true)]
    pub context: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks once whether the cluster can take the request, and exits 0 (pass) or 1 (fail).
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// CPU request of one replica, in Kubernetes quantity syntax (500m, 0.5, 2).
    #[arg(long, env = "LOCO_PREFLIGHT_CPU")]
    pub cpu: String,

    /// Memory request of one replica, in Kubernetes quantity syntax (256Mi, 1Gi, 512M).
    #[arg(long, env = "LOCO_PREFLIGHT_MEMORY")]
    pub memory: String,

    /// The most replicas the app may run (the autoscaler's maximum when it autoscales).
    #[arg(long, env = "LOCO_PREFLIGHT_REPLICAS", default_value_t = 1)]
    pub replicas: u32,

    /// What the check is for: deploy and wake need twice the request, rebuild exactly the request.
    #[arg(long, env = "LOCO_PREFLIGHT_PURPOSE", value_enum, default_value_t = Purpose::Deploy)]
    pub purpose: Purpose,

    /// Headroom factor that overrides the purpose's (for example 1.5).
    #[arg(long, env = "LOCO_PREFLIGHT_FACTOR")]
    pub factor: Option<f64>,

    /// A node label the app's pods require, as key=value; repeat the flag (or separate with commas) for more.
    #[arg(
        long = "node-selector",
        env = "LOCO_PREFLIGHT_NODE_SELECTOR",
        value_delimiter = ','
    )]
    pub node_selector: Vec<String>,

    /// A taint the app's pods tolerate, as key[=value][:Effect]; without a value any value is tolerated.
    #[arg(
        long = "toleration",
        env = "LOCO_PREFLIGHT_TOLERATIONS",
        value_delimiter = ','
    )]
    pub tolerations: Vec<String>,

    /// The loco.toml profile the request comes from, named in the advice (for example prod).
    #[arg(long, env = "LOCO_PREFLIGHT_PROFILE")]
    pub profile: Option<String>,

    /// The namespace where loco's own components run.
    #[arg(long, env = "LOCO_COMPONENTS_NAMESPACE", default_value = "loco-system")]
    pub components_namespace: String,

    /// The label selector of loco's own Deployments in that namespace.
    #[arg(
        long,
        env = "LOCO_COMPONENTS_SELECTOR",
        default_value = "app.kubernetes.io/part-of=loco"
    )]
    pub components_selector: String,

    /// Skips the check of loco's own components (for clusters where loco is not installed yet).
    #[arg(long, env = "LOCO_PREFLIGHT_SKIP_COMPONENTS")]
    pub skip_components: bool,

    /// How the answer is printed: text for people, json for scripts.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Seconds to wait for the Kubernetes API before giving up.
    #[arg(long, env = "LOCO_PREFLIGHT_TIMEOUT", default_value_t = 15)]
    pub timeout: u64,
}

/// Logs to stderr; loco-telemetry is not used here, so this leaf stays free of loco crates.
pub fn init_logging(json: bool) {
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        );
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn parse_selector(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut m = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::InvalidRequest(format!(
                "node selector {item:?} is not key=value"
            )));
        };
        if k.trim().is_empty() {
            return Err(Error::InvalidRequest(format!(
                "node selector {item:?} has an empty key"
            )));
        }
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

/// `key[=value][:Effect]`, or `*` for every taint.
pub fn parse_toleration(s: &str) -> Result<Toleration, Error> {
    let s = s.trim();
    let (rest, effect) = match s.rsplit_once(':') {
        Some((rest, e)) => {
            let effect = TaintEffect::parse(e);
            if effect == TaintEffect::Unknown {
                return Err(Error::InvalidRequest(format!(
                    "toleration {s:?}: effect {e:?} is not NoSchedule, PreferNoSchedule or NoExecute"
                )));
            }
            (rest, Some(effect))
        }
        None => (s, None),
    };
    if rest == "*" {
        return Ok(Toleration {
            operator: TolerationOperator::Exists,
            effect,
            ..Toleration::default()
        });
    }
    let (key, value) = match rest.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (rest, None),
    };
    if key.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "toleration {s:?} has an empty key (use * to tolerate every taint)"
        )));
    }
    Ok(Toleration {
        key: Some(key.to_string()),
        operator: if value.is_some() {
            TolerationOperator::Equal
        } else {
            TolerationOperator::Exists
        },
        value,
        effect,
    })
}

impl CheckArgs {
    pub fn request(&self) -> Result<Request, Error> {
        let mut r = Request::new(
            self.purpose,
            quantity::cpu_millis(&self.cpu)?,
            quantity::bytes(&self.memory)?,
            self.replicas,
        );
        r.factor = self.factor;
        r.node_selector = parse_selector(&self.node_selector)?;
        r.tolerations = self
            .tolerations
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| parse_toleration(t))
            .collect::<Result<_, _>>()?;
        r.profile = self.profile.clone();
        crate::placement::validate(&r)?;
        Ok(r)
    }

    fn components(&self) -> Option<ComponentSelector> {
        (!self.skip_components).then(|| ComponentSelector {
            namespace: self.components_namespace.clone(),
            label_selector: self.components_selector.clone(),
        })
    }
}

/// A client from --kubeconfig (or KUBECONFIG), else the in-cluster service account.
pub async fn client(
    kubeconfig: Option<&str>,
    context: Option<&str>,
    timeout: Duration,
) -> Result<Client, Error> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let mut config = match kubeconfig.filter(|k| !k.is_empty()) {
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for p in std::env::split_paths(paths) {
                let k = Kubeconfig::read_from(&p)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", p.display())))?;
                merged = Some(match merged {
                    None => k,
                    Some(m) => m.merge(k).map_err(|e| Error::Kubeconfig(e.to_string()))?,
                });
            }
            let k = merged.ok_or_else(|| Error::Kubeconfig("the path list is empty".into()))?;
            Config::from_custom_kubeconfig(k, &options)
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?
        }
        None => Config::incluster().map_err(|e| {
            Error::Kubeconfig(format!("not in a cluster and no kubeconfig given ({e})"))
        })?,
    };
    // Only the connect timeout: a read timeout shorter than a watch's quiet periods would
    // break the cache's watches (kube's default read timeout outlasts the watch timeout).
    // One-shot callers bound the whole check instead (see `run`).
    config.connect_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| Error::from_kube("build a client", e))
}

/// Runs the command and returns the process exit code.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let Command::Check(check) = &args.command;
    let result = async {
        let req = check.request()?;
        let timeout = Duration::from_secs(check.timeout.max(1));
        let client = client(args.kubeconfig.as_deref(), args.context.as_deref(), timeout).await?;
        let gate = ListGate::new(client, check.components());
        match tokio::time::timeout(timeout * 2, gate.check(&req)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unreachable(format!(
                "no answer within {}s",
                timeout.as_secs() * 2
            ))),
        }
    }
    .await;
    // The exit code is the answer; a closed stdout (`| head`) must not change it.
    let mut out = std::io::stdout().lock();
    let code = match result {
        Ok(v) => {
            let _ = match check.output {
                Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&v)?),
                Output::Text => write!(out, "{}", render_text(&v)),
            };
            if v.pass { EXIT_PASS } else { EXIT_FAIL }
        }
        Err(e) => {
            let code = exit_code(&e);
            match check.output {
                Output::Json => {
                    let j = serde_json::json!({
                        "pass": false,
                        "error": {"reason": e.reason(), "message": e.to_string()}
                    });
                    let _ = writeln!(out, "{j}");
                }
                Output::Text => eprintln!("loco-preflight: {e}"),
            }
            code
        }
    };
    Ok(code)
}

pub fn exit_code(e: &Error) -> i32 {
    match e {
        Error::InvalidRequest(_) | Error::InvalidQuantity(_) => EXIT_USAGE,
        _ => EXIT_UNREACHABLE,
    }
}

/// At most this many node lines in text; --output json has them all.
const TEXT_NODES: usize = 30;

/// The answer for people.
pub fn render_text(v: &Verdict) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let per = v.per_replica;
    let need = v.per_replica_scaled;
    let _ = writeln!(
        s,
        "{}  {} preflight: {} of {} replicas placed at {}x ({} CPU, {} memory each, {} pod slots)",
        if v.pass { "PASS" } else { "FAIL" },
        v.purpose.as_str(),
        v.placed,
        v.replicas,
        v.factor,
        Cpu(need.cpu_millis),
        Mem(need.memory_bytes),
        need.pods,
    );
    let _ = writeln!(
        s,
        "  request per replica: {} CPU, {} memory",
        Cpu(per.cpu_millis),
        Mem(per.memory_bytes)
    );
    let eligible = v.nodes.iter().filter(|n| n.eligible).count();
    let _ = writeln!(s, "  nodes: {} ({} eligible)", v.nodes.len(), eligible);
    let width = v
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(0)
        .min(40);
    for n in v.nodes.iter().take(TEXT_NODES) {
        let status = if !n.eligible {
            "skip"
        } else if n.fits > 0 {
            "ok"
        } else {
            "full"
        };
        let detail = if n.eligible {
            format!(
                "free {} CPU, {} memory, {} pods{}; fits {}, placed {}",
                Cpu(n.free.cpu_millis),
                Mem(n.free.memory_bytes),
                n.free.pods,
                if n.daemonset_requested.pods > 0 {
                    format!(
                        " (DaemonSets take {} CPU, {})",
                        Cpu(n.daemonset_requested.cpu_millis),
                        Mem(n.daemonset_requested.memory_bytes)
                    )
                } else {
                    String::new()
                },
                if n.fits == u64::MAX {
                    "any".to_string()
                } else {
                    n.fits.to_string()
                },
                n.placed
            )
        } else {
            n.problems
                .iter()
                .filter(|p| {
                    !matches!(
                        p.reason(),
                        "insufficient_cpu" | "insufficient_memory" | "too_many_pods"
                    )
                })
                .map(|p| p.message())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(s, "    {:<width$}  {:<4}  {}", n.name, status, detail);
    }
    if v.nodes.len() > TEXT_NODES {
        let _ = writeln!(
            s,
            "    ... and {} more (--output json lists all)",
            v.nodes.len() - TEXT_NODES
        );
    }
    if v.pods_pending > 0 {
        let _ = writeln!(
            s,
            "  {} pods wait for the scheduler and are not counted yet",
            v.pods_pending
        );
    }
    let c = &v.components;
    match &c.selector {
        Some(sel) => {
            let _ = writeln!(
                s,
                "  loco components ({} in {}): {}",
                sel.label_selector,
                sel.namespace,
                c.state.replace('_', " ")
            );
            for d in &c.deployments {
                let _ = writeln!(
                    s,
                    "    {}  {}/{} ready",
                    d.name,
                    d.ready.min(d.available),
                    d.desired
                );
            }
        }
        None => {
            let _ = writeln!(s, "  loco components: not checked");
        }
    }
    for f in &v.failures {
        let _ = writeln!(s, "  why: {} ({})", f.message, f.reason);
    }
    for step in &v.next_steps {
        let _ = writeln!(s, "  next step: {step}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_a_check() {
        let a = Args::try_parse_from([
            "loco-preflight",
            "check",
            "--cpu",
            "500m",
            "--memory",
            "256Mi",
            "--replicas",
            "3",
            "--purpose",
            "wake",
            "--node-selector",
            "pool=apps,zone=a",
            "--toleration",
            "dedicated=loco:NoSchedule",
            "--output",
            "json",
        ])
        .unwrap();
        let Command::Check(c) = &a.command;
        let r = c.request().unwrap();
        assert_eq!(
            (r.cpu_millis, r.memory_bytes, r.replicas),
            (500, 256 << 20, 3)
        );
        assert_eq!(r.purpose, Purpose::Wake);
        assert_eq!(r.factor(), 2.0);
        assert_eq!(r.node_selector.len(), 2);
        assert_eq!(r.tolerations[0].value.as_deref(), Some("loco"));
        assert_eq!(c.output, Output::Json);
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for (cpu, mem, extra) in [
            ("lots", "1Gi", None),
            ("1", "-1Gi", None),
            ("1", "1Gi", Some("--node-selector=novalue")),
            ("1", "1Gi", Some("--factor=0")),
            ("1", "1Gi", Some("--toleration=a:Sometimes")),
        ] {
            let (cpu, mem) = (format!("--cpu={cpu}"), format!("--memory={mem}"));
            let mut argv = vec!["loco-preflight", "check", &cpu, &mem];
            argv.extend(extra);
            let a = Args::try_parse_from(argv).unwrap();
            let Command::Check(c) = &a.command;
            let e = c.request().unwrap_err();
            assert_eq!(exit_code(&e), EXIT_USAGE, "{e}");
        }
    }

    #[test]
    fn tolerations() {
        let t = parse_toleration("*").unwrap();
        assert_eq!((t.key, t.operator), (None, TolerationOperator::Exists));
        let t = parse_toleration("gpu:NoExecute").unwrap();
        assert_eq!(t.operator, TolerationOperator::Exists);
        assert_eq!(t.effect, Some(TaintEffect::NoExecute));
        assert!(parse_toleration("=x").is_err());
    }
}
