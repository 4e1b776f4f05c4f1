//! `loco-api clusters ...`: registering the clusters workspaces run on. A cluster's
//! kubeconfig is sealed with the cluster's own data key before it is stored, and is never
//! printed or logged; only the deploy workers open it (`deploy::cluster`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use loco_db::kubeconfig::InlineKubeconfig;
use sqlx::PgPool;

use crate::flags::DbArgs;
use crate::output::Output;
use loco_crypto::{Kek, Secret};
use loco_db::DbError;
use loco_db::clusters::{self, Cluster, PullCredential};
use loco_http::validate::is_dns_label;

#[derive(Debug, Subcommand)]
pub enum ClustersCommand {
    /// Registers a cluster in a region: checks that its kubeconfig works, then stores it
    /// sealed with the cluster's own data key. Needs the KEK (LOCO_KEK_FILE or LOCO_KEK).
    Add(AddArgs),
    /// Lists the clusters with their region, endpoint and health.
    List(ListArgs),
    /// Stores (or replaces) the read-only registry login a cluster's apps pull images
    /// with (every app namespace's imagePullSecret). Needs the KEK.
    SetPullCredential(PullArgs),
    /// Stores (or replaces) the cluster's installer credential: the identity
    /// `loco-api platform apply` and loco-resurrect install the platform layer with and
    /// rebuild an emptied cluster with. It must not depend on the cluster's own state (a
    /// client certificate or a cloud IAM identity, not a ServiceAccount token, which dies
    /// with etcd). Checked, then stored sealed. Needs the KEK.
    SetInstallerCredential(InstallerArgs),
}

#[derive(Debug, clap::Args)]
pub struct InstallerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The cluster, by name.
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub cluster: String,
    /// A kubeconfig with an identity that may install CRDs, ClusterRoles and namespaces,
    /// certificates inline, no exec plugin (`kubectl config view --raw --flatten --minify`).
    #[arg(long, env = "LOCO_INSTALLER_KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Stores the kubeconfig without first checking that it reaches the cluster.
    #[arg(long)]
    pub skip_check: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The region as PROVIDER/NAME, e.g. hetzner/fsn1; registered when new.
    #[arg(long, env = "LOCO_CLUSTER_REGION")]
    pub region: String,
    /// The cluster's name, unique across loco (a DNS label, e.g. fsn1-a).
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub name: String,
    /// The API server's https:// URL; defaults to the kubeconfig's server.
    #[arg(long, env = "LOCO_CLUSTER_ENDPOINT")]
    pub endpoint: Option<String>,
    /// A kubeconfig for loco-api's ServiceAccount (core-api/rbac/loco-api.yaml), with its
    /// certificates inline (`kubectl config view --raw --flatten --minify`).
    #[arg(long, env = "LOCO_CLUSTER_KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Stores the kubeconfig without first checking that it reaches the cluster.
    #[arg(long, env = "LOCO_CLUSTER_SKIP_CHECK")]
    pub skip_check: bool,
    /// How the result is printed.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How the clusters are printed.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The cluster, by name.
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub cluster: String,
    /// The registry host (and port) as image references name it, e.g. registry.deploy-app.com.
    #[arg(long, env = "LOCO_PULL_REGISTRY")]
    pub registry: String,
    /// The read-only login's user.
    #[arg(long, env = "LOCO_PULL_USERNAME")]
    pub username: String,
    /// Its password; set it through the environment, not the command line.
    #[arg(long, env = "LOCO_PULL_PASSWORD", hide_env_values = true)]
    pub password: String,
}

/// A cluster to register.
#[derive(Debug, Clone, Copy)]
pub struct NewCluster<'a> {
    /// PROVIDER/NAME.
    pub region: &'a str,
    pub name: &'a str,
    /// `None`: the kubeconfig's server.
    pub endpoint: Option<&'a str>,
    pub kubeconfig: &'a Path,
    /// Whether to list namespaces with the kubeconfig before storing it.
    pub check: bool,
}

/// A kubeconfig file larger than this is not a kubeconfig.
const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;
/// How long the reachability check waits for the API server.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Splits PROVIDER/NAME by the rules the regions table enforces.
pub fn parse_region(text: &str) -> anyhow::Result<(&str, &str)> {
    let valid = |s: &str, max: usize, first_letter: bool| {
        let b = s.as_bytes();
        (1..=max).contains(&b.len())
            && (b[0].is_ascii_lowercase() || (!first_letter && b[0].is_ascii_digit()))
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    };
    match text.split_once('/') {
        Some((provider, name)) if valid(provider, 32, true) && valid(name, 63, false) => {
            Ok((provider, name))
        }
        _ => anyhow::bail!(
            "--region {text:?} is not PROVIDER/NAME: pass e.g. hetzner/fsn1 (provider: a letter, then up to 31 of a-z, 0-9, '-'; name: up to 63 of a-z, 0-9, '-', not starting with '-')"
        ),
    }
}

/// A kubeconfig read from a file and checked to be usable, held as a secret.
struct CheckedKubeconfig {
    yaml: InlineKubeconfig,
    config: kube::Config,
}

/// Reads the kubeconfig file and checks that loco could build a client from it alone.
/// Error messages never quote the file's content.
async fn read_kubeconfig(path: &Path) -> anyhow::Result<CheckedKubeconfig> {
    let unreadable = |cause: String| {
        anyhow::anyhow!(
            "cannot read the kubeconfig file {}: {cause}. Pass --kubeconfig the path of a kubeconfig for loco-api's ServiceAccount (see core-api/rbac/loco-api.yaml)",
            path.display()
        )
    };
    let size = std::fs::metadata(path)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if size > MAX_KUBECONFIG_BYTES {
        return Err(unreadable(format!(
            "it has {size} bytes, more than a kubeconfig's {MAX_KUBECONFIG_BYTES}"
        )));
    }
    let yaml = Secret::new(std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?);
    let invalid = |cause: String| {
        anyhow::anyhow!(
            "{} is not a usable kubeconfig: {cause}. Write one with `kubectl config view --raw --flatten --minify > FILE` and pass that",
            path.display()
        )
    };
    // The same type `set_credentials` and the deploy engine's cluster cache take.
    let yaml = InlineKubeconfig::parse(yaml).map_err(|e| invalid(e.to_string()))?;
    let parsed = Kubeconfig::from_yaml(yaml.expose())
        .map_err(|e| invalid(without_quotes(&e.to_string())))?;
    let config = kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid(without_quotes(&e.to_string())))?;
    Ok(CheckedKubeconfig { yaml, config })
}

/// The first line of an error from the kubeconfig parser, with quoted text removed:
/// parsers quote the offending value, which may be a token.
fn without_quotes(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut open: Option<char> = None;
    for c in line.chars() {
        match open {
            Some(q) if c == q => {
                out.push_str("...");
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if matches!(c, '"' | '`' | '\'') => {
                out.push(c);
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push_str("...");
    }
    out.chars().take(300).collect()
}

/// Lists one namespace with the kubeconfig: proves the server answers and accepts the
/// credentials (loco-api's ClusterRole may list namespaces).
async fn check_reachable(config: kube::Config) -> anyhow::Result<()> {
    let server = config.cluster_url.to_string();
    let failed = |cause: String| {
        anyhow::anyhow!(
            "the kubeconfig does not reach the cluster at {server}: {cause}. Check that the API server runs and the token is valid (and bound to core-api/rbac/loco-api.yaml), or pass --skip-check to store it anyway"
        )
    };
    let client =
        kube::Client::try_from(config).map_err(|e| failed(without_quotes(&e.to_string())))?;
    let namespaces: Api<Namespace> = Api::all(client);
    match tokio::time::timeout(
        CHECK_TIMEOUT,
        namespaces.list_metadata(&ListParams::default().limit(1)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(without_quotes(&e.to_string()))),
        Err(_) => Err(failed(format!("no answer within {CHECK_TIMEOUT:?}"))),
    }
}

/// Registers a cluster: region upserted, cluster row with a fresh data key and the
/// sealed kubeconfig, in one transaction.
pub async fn add(pool: &PgPool, kek: &Kek, req: &NewCluster<'_>) -> anyhow::Result<Cluster> {
    let (provider, region) = parse_region(req.region)?;
    if !is_dns_label(req.name) {
        anyhow::bail!(
            "--name {:?} is not a valid cluster name: use 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. \"fsn1-a\"",
            req.name
        );
    }
    if let Some(e) = req.endpoint {
        check_endpoint(e)?;
    }
    let kubeconfig = read_kubeconfig(req.kubeconfig).await?;
    let server = kubeconfig
        .config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let endpoint = req.endpoint.map_or(server.clone(), str::to_owned);
    check_endpoint(&endpoint)?;
    if endpoint.trim_end_matches('/') != server {
        tracing::warn!(%endpoint, %server, "the endpoint is not the kubeconfig's server; loco deploys through the kubeconfig's");
    }
    if req.check {
        check_reachable(kubeconfig.config.clone()).await?;
    }
    refuse_another_kek(pool, kek).await?;
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let region_id = clusters::upsert_region(&mut *tx, provider, region).await?;
    let id = match clusters::create(
        &mut tx,
        kek,
        region_id,
        req.name,
        &endpoint,
        &kubeconfig.yaml,
    )
    .await
    {
        Err(DbError::Conflict {
            reason: "cluster_name_taken",
            ..
        }) => anyhow::bail!(
            "a cluster named {:?} already exists (`loco-api clusters list` shows it); choose another --name",
            req.name
        ),
        other => other?,
    };
    tx.commit().await.map_err(DbError::from)?;
    Ok(clusters::get(pool, id).await?)
}

/// A cluster sealed under a KEK loco-api serve does not run with could never be opened
/// by a deploy; the data keys already stored say which KEK that is.
async fn refuse_another_kek(pool: &PgPool, kek: &Kek) -> anyhow::Result<()> {
    let usage = loco_db::keys::kek_usage(pool).await?;
    if usage.is_empty() || usage.iter().any(|(id, _)| id == kek.id()) {
        return Ok(());
    }
    let ids: Vec<&str> = usage.iter().map(|(id, _)| id.as_str()).collect();
    anyhow::bail!(
        "the loaded KEK is {}, but the database's data keys are wrapped by {}: load the KEK loco-api serve runs with (LOCO_KEK_FILE), or finish `loco-api keys rotate` first",
        kek.id(),
        ids.join(", ")
    )
}

fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let ok = reqwest::Url::parse(endpoint)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()));
    if !ok {
        anyhow::bail!(
            "the endpoint {endpoint:?} is not an https:// URL: loco talks to API servers over TLS only; pass --endpoint https://HOST:PORT or fix the kubeconfig's server"
        );
    }
    Ok(())
}

/// The cluster called `name`.
pub async fn by_name(pool: &PgPool, name: &str) -> anyhow::Result<Cluster> {
    clusters::list(pool)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no cluster named {name:?}: `loco-api clusters list` shows the registered ones"
            )
        })
}

fn cluster_json(c: &Cluster) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "region": format!("{}/{}", c.provider, c.region),
        "region_id": c.region_id,
        "name": c.name,
        "endpoint": c.endpoint,
        "status": c.status,
        "status_reason": c.status_reason,
        "checked_at": c.checked_at,
    })
}

fn load_kek(command: &str) -> anyhow::Result<Kek> {
    Kek::from_env().map_err(|e| {
        anyhow::anyhow!(
            "loco-api {command} needs the key-encryption key loco-api serve runs with: {e}"
        )
    })
}

pub async fn run(cmd: ClustersCommand) -> anyhow::Result<()> {
    match cmd {
        ClustersCommand::Add(a) => {
            let kek = load_kek("clusters add")?;
            let pool = loco_db::connect(&a.db.database_url).await?;
            let c = add(
                &pool,
                &kek,
                &NewCluster {
                    region: &a.region,
                    name: &a.name,
                    endpoint: a.endpoint.as_deref(),
                    kubeconfig: &a.kubeconfig,
                    check: !a.skip_check,
                },
            )
            .await?;
            pool.close().await;
            tracing::info!(cluster_id = c.id, cluster = %c.name, region = %format!("{}/{}", c.provider, c.region), kek_id = kek.id(), "cluster added");
            match a.output {
                Output::Json => println!("{}", cluster_json(&c)),
                Output::Text => println!(
                    "cluster {} ({}) added in region {}/{}, endpoint {}; its kubeconfig is stored sealed under KEK {}",
                    c.name,
                    c.id,
                    c.provider,
                    c.region,
                    c.endpoint,
                    kek.id()
                ),
            }
            Ok(())
        }
        ClustersCommand::List(a) => {
            let pool = loco_db::connect(&a.db.database_url).await?;
            let rows = clusters::list(&pool).await?;
            pool.close().await;
            match a.output {
                Output::Json => println!(
                    "{}",
                    serde_json::Value::Array(rows.iter().map(cluster_json).collect())
                ),
                Output::Text => {
                    println!(
                        "{:<6} {:<20} {:<24} {:<40} STATUS",
                        "ID", "REGION", "NAME", "ENDPOINT"
                    );
                    for c in &rows {
                        println!(
                            "{:<6} {:<20} {:<24} {:<40} {}{}",
                            c.id,
                            format!("{}/{}", c.provider, c.region),
                            c.name,
                            c.endpoint,
                            c.status,
                            c.status_reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        ClustersCommand::SetInstallerCredential(a) => {
            let kek = load_kek("clusters set-installer-credential")?;
            let kubeconfig = read_kubeconfig(&a.kubeconfig).await?;
            if !a.skip_check {
                check_reachable(kubeconfig.config.clone()).await?;
            }
            let pool = loco_db::connect(&a.db.database_url).await?;
            let c = by_name(&pool, &a.cluster).await?;
            let server = kubeconfig.config.cluster_url.to_string();
            if server.trim_end_matches('/') != c.endpoint.trim_end_matches('/') {
                tracing::warn!(cluster = %c.name, %server, endpoint = %c.endpoint,
                    "the installer kubeconfig's server is not the cluster's endpoint");
            }
            clusters::set_installer_credentials(&pool, &kek, c.id, &kubeconfig.yaml).await?;
            pool.close().await;
            tracing::info!(cluster_id = c.id, "installer credential stored");
            println!(
                "cluster {}: installer credential stored sealed; `loco-api platform apply` and loco-resurrect use it",
                c.name
            );
            Ok(())
        }
        ClustersCommand::SetPullCredential(a) => {
            let kek = load_kek("clusters set-pull-credential")?;
            if a.registry.trim().is_empty() || a.registry.contains('/') || a.registry.contains(' ')
            {
                anyhow::bail!(
                    "--registry {:?} is not a registry host: pass host[:port] as image references name it, e.g. registry.deploy-app.com",
                    a.registry
                );
            }
            if a.username.is_empty() || a.password.is_empty() {
                anyhow::bail!(
                    "--username and LOCO_PULL_PASSWORD must both be set: the login's user and its password"
                );
            }
            let pool = loco_db::connect(&a.db.database_url).await?;
            let c = by_name(&pool, &a.cluster).await?;
            clusters::set_pull_credential(
                &pool,
                &kek,
                c.id,
                &PullCredential {
                    registry: a.registry.clone(),
                    username: a.username.clone(),
                    password: Secret::new(a.password),
                },
            )
            .await?;
            pool.close().await;
            tracing::info!(cluster_id = c.id, registry = %a.registry, "pull credential stored");
            println!(
                "cluster {}: apps pull from {} as {}; the next deployment of each app renders the new imagePullSecret",
                c.name, a.registry, a.username
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(parse_region("hetzner/fsn1").unwrap(), ("hetzner", "fsn1"));
        assert_eq!(parse_region("aws/us-east-1").unwrap(), ("aws", "us-east-1"));
        for bad in [
            "",
            "fsn1",
            "/fsn1",
            "hetzner/",
            "Hetzner/fsn1",
            "1cloud/x",
            "a/b/c",
            "a/-b",
            "a b/c",
        ] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoted_values_never_reach_a_message() {
        let m = without_quotes(
            "invalid type: string \"loco-secret-token\", expected a map at line 3\nsnippet: loco-secret-token",
        );
        assert!(!m.contains("loco-secret-token"), "{m}");
        assert!(m.contains("expected a map at line 3"), "{m}");
        assert!(!without_quotes("unclosed `abc").contains("abc"));
    }
}
