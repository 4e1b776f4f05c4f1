//! The Helm release of charts/loco: `helm upgrade --install --atomic` with the recorded
//! values, against the cluster's kubeconfig. helm reads both from files: they are written
//! to a private temporary directory (mode 700, files 600) that is removed when the apply
//! ends; the values hold no secret (they name existing Secrets).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loco_crypto::Secret;
use tokio::process::Command;

use super::error::PlatformError;

/// The release name of loco's chart.
pub const RELEASE: &str = "loco";

/// Where helm and the chart are.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    /// The helm binary (on PATH by default).
    pub helm: PathBuf,
    /// The chart directory (charts/loco of this release of loco).
    pub chart_dir: PathBuf,
    /// How long helm waits for the release to become Ready before rolling back.
    pub timeout: Duration,
}

/// The chart's version, from its Chart.yaml.
pub fn chart_version(dir: &Path) -> Result<String, PlatformError> {
    let missing = |cause: String| PlatformError::ChartMissing {
        dir: dir.to_owned(),
        cause,
    };
    let text =
        std::fs::read_to_string(dir.join("Chart.yaml")).map_err(|e| missing(e.to_string()))?;
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| missing(format!("Chart.yaml: {e}")))?;
    chart["version"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| missing("Chart.yaml has no version".to_owned()))
}

/// What helm did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HelmOutcome {
    pub release: String,
    pub namespace: String,
    pub chart_version: String,
    /// helm's own summary (STATUS and REVISION lines).
    pub summary: String,
}

/// One release's helm calls (`template`, then `upgrade --install`) on one set of private
/// files: the values and the kubeconfig, in a directory removed when the `Run` is dropped.
/// Made once per apply, after the chart's version was checked against the recorded one.
pub(crate) struct Run {
    cfg: HelmConfig,
    namespace: String,
    chart_version: String,
    dir: tempfile::TempDir,
    values: PathBuf,
    kubeconfig: PathBuf,
}

impl Run {
    pub(crate) fn new(
        cfg: &HelmConfig,
        kubeconfig: &Secret,
        namespace: &str,
        chart_version: &str,
        values: &serde_json::Value,
    ) -> Result<Run, PlatformError> {
        let found = self::chart_version(&cfg.chart_dir)?;
        if found != chart_version {
            return Err(PlatformError::ChartVersion {
                dir: cfg.chart_dir.clone(),
                found,
                recorded: chart_version.to_owned(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("loco-platform-")
            .tempdir()
            .map_err(|e| PlatformError::Io(e.to_string()))?;
        let kubeconfig = private_file(dir.path(), "kubeconfig", kubeconfig.expose().as_bytes())?;
        let values = private_file(
            dir.path(),
            "values.json",
            serde_json::to_string(values)
                .map_err(|e| PlatformError::Io(e.to_string()))?
                .as_bytes(),
        )?;
        Ok(Run {
            cfg: cfg.clone(),
            namespace: namespace.to_owned(),
            chart_version: chart_version.to_owned(),
            dir,
            values,
            kubeconfig,
        })
    }

    /// The chart's manifests for the values (`helm template`; no cluster is asked), to see
    /// what the release needs before it is installed.
    pub(crate) async fn template(&self) -> Result<String, PlatformError> {
        let out = self.output(self.command("template")).await?;
        if !out.status.success() {
            return Err(PlatformError::Template {
                code: out.status.code().unwrap_or(-1),
                summary: last_line(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Installs or upgrades the release (`helm upgrade --install`, `--atomic --wait`, or
    /// `--dry-run=server`).
    pub(crate) async fn upgrade_install(
        &self,
        dry_run: bool,
    ) -> Result<HelmOutcome, PlatformError> {
        let mut cmd = self.command("upgrade");
        cmd.arg("--install")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--timeout",
                &format!("{}s", self.cfg.timeout.as_secs().max(1)),
            ]);
        if dry_run {
            cmd.arg("--dry-run=server");
        } else {
            cmd.args(["--atomic", "--wait"]);
        }
        let out = self.output(cmd).await?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            tracing::warn!(stderr = %stderr, "helm upgrade --install failed");
            return Err(PlatformError::Helm {
                code: out.status.code().unwrap_or(-1),
                summary: last_line(&out.stderr),
            });
        }
        let summary = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("STATUS:") || l.starts_with("REVISION:"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(HelmOutcome {
            release: RELEASE.to_owned(),
            namespace: self.namespace.clone(),
            chart_version: self.chart_version.clone(),
            summary,
        })
    }

    /// `helm VERB loco CHART --namespace NS -f values`, with helm's homes in the private
    /// directory and no KUBECONFIG from the caller's environment.
    fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(&self.cfg.helm);
        cmd.args([verb, RELEASE])
            .arg(&self.cfg.chart_dir)
            .args(["--namespace", &self.namespace])
            .arg("-f")
            .arg(&self.values)
            .env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", self.dir.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("config"))
            .env("HELM_DATA_HOME", self.dir.path().join("data"))
            .kill_on_drop(true);
        cmd
    }

    async fn output(&self, mut cmd: Command) -> Result<std::process::Output, PlatformError> {
        cmd.output().await.map_err(|e| PlatformError::HelmMissing {
            cause: format!("{}: {e}", self.cfg.helm.display()),
        })
    }
}

/// helm's error: its last non-empty line, without the "Error: " prefix.
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim_start_matches("Error: ")
        .to_owned()
}

fn private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, PlatformError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| PlatformError::Io(e.to_string()))?;
    f.write_all(bytes)
        .map_err(|e| PlatformError::Io(e.to_string()))?;
    Ok(path)
}
