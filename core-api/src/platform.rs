//! `loco-api platform`: the platform layer of a cluster from what Postgres records.
//!
//! - `set-values --cluster NAME -f values.yaml`: validates the file against the chart's
//!   values.schema.json, refuses anything that looks like a secret value, and records a
//!   new `platform_releases` row (chart version + values) when they changed.
//! - `apply --cluster NAME [--dry-run] [--no-chart]`: the Gateway API CRDs, the Gateway,
//!   then `helm upgrade --install --atomic` with the recorded release
//!   ([`loco_platform::apply`], the function the resurrector calls too).
//! - `show --cluster NAME`: the recorded releases, newest first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::flags::DbArgs;
use crate::output::Output;
use loco_crypto::Kek;
use loco_platform::{ApplyOptions, HelmConfig, Release};

#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Installs or upgrades the platform layer of a cluster from its recorded release:
    /// Gateway API CRDs (server-side apply), GatewayClass and Gateway, then the chart.
    Apply(ApplyArgs),
    /// Validates a values file against the chart's schema and records it (with the
    /// chart's version) as the cluster's new platform release.
    SetValues(SetValuesArgs),
    /// Lists a cluster's recorded platform releases, newest first.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ChartArgs {
    /// The chart directory (loco's charts/loco).
    #[arg(long = "chart", env = "LOCO_CHART_DIR", default_value = "charts/loco")]
    pub chart_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The cluster, by name.
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub cluster: String,
    /// The API server (and helm with --dry-run=server) validate everything; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Applies the CRDs and the Gateway only, not the chart.
    #[arg(long)]
    pub no_chart: bool,
    #[command(flatten)]
    pub chart: ChartArgs,
    /// A kubeconfig to install with instead of the cluster's stored installer credential
    /// (`loco-api clusters set-installer-credential`): certificates inline, no exec plugin.
    #[arg(long, env = "LOCO_PLATFORM_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The helm 3 binary.
    #[arg(long, env = "LOCO_HELM", default_value = "helm")]
    pub helm: PathBuf,
    /// How long helm waits for the release to be Ready before it rolls back.
    #[arg(long, env = "LOCO_HELM_TIMEOUT_SECONDS", default_value_t = 300)]
    pub helm_timeout_seconds: u64,
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct SetValuesArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub cluster: String,
    /// The values file (YAML or JSON).
    #[arg(short = 'f', long = "values")]
    pub values: PathBuf,
    #[command(flatten)]
    pub chart: ChartArgs,
    /// Who records it (kept with the row).
    #[arg(long, env = "LOCO_OPERATOR", default_value = "operator")]
    pub set_by: String,
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long, env = "LOCO_CLUSTER_NAME")]
    pub cluster: String,
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Keys whose string value would be a secret: values name existing Secrets instead.
const SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "kek",
    "clientsecret",
    "privatekey",
    "secretaccesskey",
    "databaseurl",
];

/// Refuses values that hold a secret: a key like `password` with a string value, or a
/// URL with a password in it. Returns the path of the first one.
pub fn find_secret(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            let key = k.to_ascii_lowercase().replace(['_', '-'], "");
            if SECRET_KEYS.contains(&key.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()) {
                return Some(p);
            }
            find_secret(v, &p)
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_secret(v, &format!("{path}[{i}]"))),
        Value::String(s) => {
            let creds = s
                .split_once("://")
                .and_then(|(_, rest)| rest.split('/').next())
                .is_some_and(|auth| {
                    auth.contains('@') && auth.split('@').next().is_some_and(|u| u.contains(':'))
                });
            creds.then(|| path.to_owned())
        }
        _ => None,
    }
}

/// Validates `values` against the chart's values.schema.json; the error names each
/// failing value's path.
pub fn validate_values(chart_dir: &Path, values: &Value) -> anyhow::Result<()> {
    let schema_path = chart_dir.join("values.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).with_context(|| {
            format!(
                "reading {} (point --chart at loco's charts/loco)",
                schema_path.display()
            )
        })?)
        .with_context(|| format!("{} is not JSON", schema_path.display()))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("{} is not a JSON schema: {e}", schema_path.display()))?;
    let errors: Vec<String> = validator
        .iter_errors(values)
        .map(|e| {
            let path = e.instance_path.to_string();
            let path = if path.is_empty() {
                "(top level)".to_owned()
            } else {
                path.trim_start_matches('/').replace('/', ".")
            };
            format!("{path}: {e}")
        })
        .collect();
    if !errors.is_empty() {
        anyhow::bail!(
            "the values do not match the chart's schema ({}):\n  {}\nFix them and run `loco-api platform set-values` again; nothing was recorded",
            schema_path.display(),
            errors.join("\n  ")
        );
    }
    if let Some(p) = find_secret(values, "") {
        anyhow::bail!(
            "the value at {p} looks like a secret: platform values are stored in the database in plain text. Put it in a Kubernetes Secret and name that Secret in the values instead; nothing was recorded"
        );
    }
    Ok(())
}

fn load_kek(command: &str) -> anyhow::Result<Kek> {
    Kek::from_env().map_err(|e| {
        anyhow::anyhow!(
            "loco-api {command} needs the key-encryption key loco-api serve runs with: {e}"
        )
    })
}

pub async fn run(cmd: PlatformCommand) -> anyhow::Result<()> {
    match cmd {
        PlatformCommand::SetValues(a) => set_values(a).await,
        PlatformCommand::Apply(a) => apply(a).await,
        PlatformCommand::Show(a) => show(a).await,
    }
}

async fn set_values(a: SetValuesArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.values)
        .with_context(|| format!("reading the values file {}", a.values.display()))?;
    let values: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not YAML or JSON", a.values.display()))?;
    let values = if values.is_null() {
        Value::Object(Default::default())
    } else {
        values
    };
    validate_values(&a.chart.chart_dir, &values)?;
    loco_platform::GatewayValues::from_values(&values)?;
    let version = loco_platform::chart_version(&a.chart.chart_dir)?;
    let pool = loco_db::connect(&a.db.database_url).await?;
    let cluster = crate::clusters::by_name(&pool, &a.cluster).await?;
    let mut tx = pool.begin().await?;
    let (row, new) =
        loco_db::platform::record(&mut tx, cluster.id, &version, &values, &a.set_by).await?;
    tx.commit().await?;
    pool.close().await;
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"cluster": cluster.name, "release_id": row.id, "chart_version": row.chart_version, "recorded": new})
        ),
        Output::Text if new => println!(
            "cluster {}: platform release {} recorded (chart {}); `loco-api platform apply --cluster {}` installs it",
            cluster.name, row.id, row.chart_version, cluster.name
        ),
        Output::Text => println!(
            "cluster {}: the values equal release {} (chart {}); nothing recorded",
            cluster.name, row.id, row.chart_version
        ),
    }
    Ok(())
}

async fn apply(a: ApplyArgs) -> anyhow::Result<()> {
    let pool = loco_db::connect(&a.db.database_url).await?;
    let cluster = crate::clusters::by_name(&pool, &a.cluster).await?;
    let row = loco_db::platform::current(&pool, cluster.id).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "cluster {} has no recorded platform release: record one with `loco-api platform set-values --cluster {} -f values.yaml`",
            cluster.name,
            cluster.name
        )
    })?;
    // Decrypted in memory; helm gets it in a private temporary file only.
    let creds = match &a.kubeconfig {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            loco_db::kubeconfig::InlineKubeconfig::parse(loco_crypto::Secret::new(text))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let kek = load_kek("platform apply")?;
            loco_db::clusters::installer_credentials(&pool, &kek, cluster.id)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "cluster {} has no installer credential (loco-api's own identity may not create CRDs or ClusterRoles): store one with `loco-api clusters set-installer-credential --cluster {} --kubeconfig FILE`, or pass --kubeconfig",
                        cluster.name,
                        cluster.name
                    )
                })?
        }
    };
    pool.close().await;
    let client = loco_deploy::cluster::client_from(&creds, cluster.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = ApplyOptions {
        dry_run: a.dry_run,
        helm: (!a.no_chart).then(|| HelmConfig {
            helm: a.helm.clone(),
            chart_dir: a.chart.chart_dir.clone(),
            timeout: Duration::from_secs(a.helm_timeout_seconds),
        }),
        ..ApplyOptions::default()
    };
    let release = Release {
        chart_version: row.chart_version.clone(),
        values: row.values.clone(),
    };
    let report = loco_platform::apply(&client, creds.secret(), &release, &opts).await?;
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"cluster": cluster.name, "release_id": row.id, "report": report})
        ),
        Output::Text => {
            let dry = if report.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            };
            println!(
                "cluster {}: platform release {} applied{dry}",
                cluster.name, row.id
            );
            for c in &report.crds {
                println!(
                    "  CRD {}: {} -> {}",
                    c.name,
                    c.from.as_deref().unwrap_or("(missing)"),
                    c.to
                );
            }
            for g in &report.gateway {
                println!("  {g}");
            }
            match &report.chart {
                Some(h) => println!(
                    "  chart {} {} in {}: {}",
                    h.release, h.chart_version, h.namespace, h.summary
                ),
                None => {
                    for i in &report.identity {
                        println!("  {i} (loco-api's identity)");
                    }
                    println!("  chart: not applied (--no-chart)")
                }
            }
            println!(
                "  took {:.1}s (CRDs) + {:.1}s (gateway) + {:.1}s (chart)",
                report.seconds_crds, report.seconds_gateway, report.seconds_chart
            );
        }
    }
    Ok(())
}

async fn show(a: ShowArgs) -> anyhow::Result<()> {
    let pool = loco_db::connect(&a.db.database_url).await?;
    let cluster = crate::clusters::by_name(&pool, &a.cluster).await?;
    let rows = loco_db::platform::history(&pool, cluster.id).await?;
    pool.close().await;
    match a.output {
        Output::Json => {
            let rows: Vec<Value> = rows
                .iter()
                .map(|r| serde_json::json!({"id": r.id, "chart_version": r.chart_version, "values": r.values, "set_by": r.set_by, "created_at": r.created_at}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"cluster": cluster.name, "releases": rows})
            );
        }
        Output::Text if rows.is_empty() => {
            println!("cluster {}: no platform release recorded", cluster.name)
        }
        Output::Text => {
            for (i, r) in rows.iter().enumerate() {
                let mark = if i == 0 { " (in force)" } else { "" };
                println!(
                    "release {} chart {} set by {} at {}{mark}",
                    r.id,
                    r.chart_version,
                    r.set_by,
                    r.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_in_values_are_found_by_key_or_url() {
        assert_eq!(
            find_secret(&json!({"db": {"existingSecret": "loco-db"}}), ""),
            None
        );
        assert_eq!(
            find_secret(&json!({"db": {"password": "hunter2"}}), ""),
            Some("db.password".to_owned())
        );
        assert_eq!(
            find_secret(&json!({"x": ["ok", "postgres://loco:pw@db:5432/loco"]}), ""),
            Some("x[1]".to_owned())
        );
        assert_eq!(
            find_secret(&json!({"url": "https://example.com/a@b"}), ""),
            None
        );
        assert_eq!(
            find_secret(&json!({"oauth": {"client_secret": "s"}}), ""),
            Some("oauth.client_secret".to_owned())
        );
    }

    /// The chart this binary ships: its schema takes the chart's own value sets and the
    /// values the demo records, and refuses a wrong one naming the value's path.
    #[test]
    fn the_shipped_charts_schema_takes_its_value_sets_and_names_a_bad_path() {
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/loco");
        for set in ["minimal", "all", "ha"] {
            let text =
                std::fs::read_to_string(chart.join(format!("ci/{set}-values.yaml"))).unwrap();
            let v: Value = serde_yaml::from_str(&text).unwrap();
            let v = if v.is_null() { json!({}) } else { v };
            validate_values(&chart, &v).unwrap_or_else(|e| panic!("{set}: {e}"));
        }
        let demo = json!({"gateway": {"controllerName": "traefik.io/gateway-controller",
                                      "hostname": "*.loco.test", "httpPort": 28080, "httpsPort": 28443}});
        validate_values(&chart, &demo).unwrap();
        assert!(loco_platform::GatewayValues::from_values(&demo).is_ok());
        let e = validate_values(&chart, &json!({"gateway": {"httpPort": "eighty"}})).unwrap_err();
        assert!(e.to_string().contains("gateway.httpPort"), "{e}");
        let e = validate_values(&chart, &json!({"gatewy": {}})).unwrap_err();
        assert!(e.to_string().contains("gatewy"), "{e}");
        assert_eq!(loco_platform::chart_version(&chart).unwrap(), "0.1.1");
    }

    #[test]
    fn values_are_checked_against_the_schema_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("values.schema.json"),
            r#"{"type":"object","properties":{"api":{"type":"object","properties":{"replicas":{"type":"integer","minimum":1}}}}}"#,
        )
        .unwrap();
        assert!(validate_values(dir.path(), &json!({"api": {"replicas": 2}})).is_ok());
        let e = validate_values(dir.path(), &json!({"api": {"replicas": "two"}})).unwrap_err();
        assert!(e.to_string().contains("api.replicas"), "{e}");
        let e = validate_values(dir.path(), &json!({"api": {"password": "x"}})).unwrap_err();
        assert!(e.to_string().contains("api.password"), "{e}");
    }
}
