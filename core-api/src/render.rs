//! `loco-api render FILE --workspace W`: prints the Kubernetes objects of one app as
//! multi-document YAML, from the same `render` function a deploy uses ("export my loco.toml
//! as Kubernetes YAML"). Secret values print as `<redacted>` unless `--show-secrets`.
//!
//! Exit codes: 0 rendered, 1 invalid spec or input, 2 usage or I/O error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::spec::PlatformArgs;
use loco_render::{RenderInput, RenderSettings, Secrets};
use loco_spec::{BuildSource, EnvValues};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The loco.toml to render.
    pub file: PathBuf,
    /// The id of the workspace the app belongs to; it names the namespace wks-<W>-app-<N>.
    #[arg(long, env = "LOCO_WORKSPACE_ID")]
    pub workspace: i64,
    /// The [Profile.<name>] of the file to apply, as `loco deploy --profile` would.
    #[arg(long, env = "LOCO_PROFILE")]
    pub profile: Option<String>,
    /// The image to run; defaults to the file's Build.Image. Pin it by digest for a real deploy.
    #[arg(long, env = "LOCO_IMAGE")]
    pub image: Option<String>,
    /// The app's id, the N of the namespace wks-<W>-app-<N>.
    #[arg(long, env = "LOCO_APP_ID", default_value_t = 1)]
    pub app_id: i64,
    /// The org's id, written in the org label.
    #[arg(long, env = "LOCO_ORG_ID", default_value_t = 1)]
    pub org_id: i64,
    /// The deployment id to annotate the Deployment with; 0 outside a deployment.
    #[arg(long, env = "LOCO_DEPLOYMENT_ID", default_value_t = 0)]
    pub deployment_id: i64,
    /// The deployment that introduced the pod template, injected as LOCO_DEPLOYMENT_ID;
    /// defaults to --deployment-id (a replica-only scale, sleep or wake keeps an older one).
    #[arg(long, env = "LOCO_TEMPLATE_DEPLOYMENT_ID")]
    pub template_deployment_id: Option<i64>,
    /// The replica count without autoscaling; defaults to the spec's minimum.
    #[arg(long)]
    pub replicas: Option<u32>,
    /// Renders the app asleep: 0 replicas and routes to the reviver.
    #[arg(long)]
    pub asleep: bool,
    /// Prints the Secrets' real values (base64) instead of `<redacted>`.
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub settings: RenderSettingsArgs,
}

/// The installation's render settings and platform limits: the same flags (and
/// environment variables) for `loco-api render` and `loco-api serve`, so an export renders
/// what the server deploys.
#[derive(Debug, Clone, Args)]
pub struct RenderSettingsArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The namespace of the Gateway and the reviver.
    #[arg(long, env = "LOCO_GATEWAY_NAMESPACE", default_value = "loco-system")]
    pub gateway_namespace: String,
    /// The Gateway every route attaches to.
    #[arg(long, env = "LOCO_GATEWAY_NAME", default_value = "loco")]
    pub gateway_name: String,
    /// Renders IdleTimeout as an Envoy Gateway BackendTrafficPolicy (its CRD must be installed).
    #[arg(long, env = "LOCO_BACKEND_TRAFFIC_POLICY")]
    pub backend_traffic_policy: bool,
    /// Injected into apps as LOCO_METRICS_ENDPOINT.
    #[arg(long, env = "LOCO_METRICS_ENDPOINT", default_value = "")]
    pub metrics_endpoint: String,
    /// Injected into apps as LOCO_TRACING_ENDPOINT.
    #[arg(long, env = "LOCO_TRACING_ENDPOINT", default_value = "")]
    pub tracing_endpoint: String,
    /// Size limit of every app's /tmp (an emptyDir), a Kubernetes quantity.
    #[arg(long, env = "LOCO_TMP_SIZE_LIMIT", default_value = "256Mi")]
    pub tmp_size_limit: String,
    /// Whether app pods may open connections to the internet (DNS and their own
    /// workspace are always allowed).
    #[arg(long, env = "LOCO_EGRESS_INTERNET", default_value_t = true, action = clap::ArgAction::Set)]
    pub egress_internet: bool,
    /// Address ranges app pods may never reach (comma-separated IPv4/IPv6 CIDRs): the
    /// metadata endpoints and the nodes', Pods', Services' and control plane's ranges.
    /// Default: link-local (with 169.254.169.254), the private ranges, fd00:ec2::254.
    #[arg(long, env = "LOCO_EGRESS_DENIED_CIDRS", value_delimiter = ',',
          default_values_t = loco_render::DEFAULT_EGRESS_DENIED.iter().map(|s| s.parse::<ipnet::IpNet>().unwrap()))]
    pub egress_denied_cidrs: Vec<ipnet::IpNet>,
    /// Namespace of the cluster DNS (pods labelled k8s-app=kube-dns) app pods may ask.
    #[arg(long, env = "LOCO_EGRESS_DNS_NAMESPACE", default_value = "kube-system")]
    pub egress_dns_namespace: String,
    /// Node labels app pods must land on, `key=value` (repeat the flag, or comma-separate
    /// in the env variable), e.g. a dedicated node pool.
    #[arg(long = "node-selector", env = "LOCO_NODE_SELECTOR", value_delimiter = ',',
          value_parser = parse_label)]
    pub node_selector: Vec<(String, String)>,
    /// Taints app pods tolerate, `key=value:Effect` or `key:Effect` (repeat the flag, or
    /// comma-separate in the env variable).
    #[arg(long = "toleration", env = "LOCO_TOLERATIONS", value_delimiter = ',')]
    pub tolerations: Vec<loco_render::PlacementToleration>,
}

/// `key=value` of `--node-selector`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!(
            "node selector '{s}' is not key=value, e.g. loco.deploy-app.com/node=real"
        )),
    }
}

impl RenderSettingsArgs {
    pub fn settings(&self) -> RenderSettings {
        RenderSettings {
            gateway_namespace: self.gateway_namespace.clone(),
            gateway_name: self.gateway_name.clone(),
            metrics_endpoint: self.metrics_endpoint.clone(),
            tracing_endpoint: self.tracing_endpoint.clone(),
            backend_traffic_policy: self.backend_traffic_policy,
            tmp_size_limit: self.tmp_size_limit.clone(),
            egress: loco_render::EgressSettings {
                internet: self.egress_internet,
                denied_cidrs: self
                    .egress_denied_cidrs
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
                dns_namespace: self.egress_dns_namespace.clone(),
            },
            placement: loco_render::Placement {
                node_selector: self.node_selector.iter().cloned().collect(),
                tolerations: self.tolerations.clone(),
            },
            ..RenderSettings::default()
        }
    }
}

/// Runs `render` and returns the process exit code.
pub fn run(args: RenderArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    render(&args, &mut stdout.lock(), &mut stderr.lock())
}

/// `render`, writing to the given streams (tests pass buffers).
pub fn render(a: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let opts = a.settings.platform.options(a.profile.clone());
    let validated = match loco_spec::load(&a.file, &opts) {
        Ok(v) => v,
        Err(e @ loco_spec::LoadError::Io { .. }) => {
            let _ = writeln!(err, "{e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return EXIT_INVALID;
        }
    };
    let image = match (&a.image, &validated.spec.build) {
        (Some(i), _) => i.clone(),
        (None, BuildSource::Image { reference }) => reference.clone(),
        (None, BuildSource::Dockerfile { .. }) => {
            let _ = writeln!(
                err,
                "{} builds from a Dockerfile: pass the built image with --image REF",
                a.file.display()
            );
            return EXIT_USAGE;
        }
    };
    let env = match env_values(&a.file, &validated.spec.env.file, &validated.env_values) {
        Ok(e) => e,
        Err(message) => {
            let _ = writeln!(err, "{message}");
            return EXIT_USAGE;
        }
    };
    let input = RenderInput {
        org_id: a.org_id,
        workspace_id: a.workspace,
        app_id: a.app_id,
        deployment_id: a.deployment_id,
        template_deployment_id: a.template_deployment_id.unwrap_or(a.deployment_id),
        revision_id: 0,
        spec: validated.spec,
        image,
        replicas: a.replicas,
        asleep: a.asleep,
        env,
        checksum_key: loco_render::ChecksumKey::default(),
        pull_secret: None,
        workspace_apps: Vec::new(),
        settings: a.settings.settings(),
    };
    let secrets = if a.show_secrets {
        Secrets::Shown
    } else {
        Secrets::Masked
    };
    match loco_render::render(&input).and_then(|r| r.to_yaml(secrets)) {
        Ok(yaml) => {
            if out
                .write_all(yaml.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return EXIT_USAGE;
            }
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "cannot render {}: {e}", a.file.display());
            EXIT_INVALID
        }
    }
}

/// The inline values, over the values of the spec's Env.file (a dotenv file next to the
/// loco.toml), as the client would send them.
fn env_values(
    toml_path: &Path,
    env_file: &Option<String>,
    inline: &EnvValues,
) -> Result<EnvValues, String> {
    let Some(rel) = env_file else {
        return Ok(inline.clone());
    };
    let path = toml_path.parent().unwrap_or(Path::new(".")).join(rel);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the Env.file {}: {e}", path.display()))?;
    let mut values = parse_dotenv(&text)
        .map_err(|line| format!("{}:{line}: expected NAME=value", path.display()))?;
    for (k, v) in inline.iter() {
        values.insert(k.to_owned(), v.to_owned());
    }
    Ok(EnvValues::new(values))
}

/// A small dotenv reader: `NAME=value`, optional `export `, `#` comments, and one layer of
/// matching single or double quotes. Returns the 1-based number of a malformed line.
fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, value) = line.split_once('=').ok_or(n + 1)?;
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(n + 1);
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        out.insert(name.to_owned(), value.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_dotenv;

    #[test]
    fn dotenv_reads_names_values_quotes_and_comments() {
        let v = parse_dotenv("# c\nexport A=1\nB = \"two words\"\nC='x=y'\n\n").unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "x=y");
        assert_eq!(parse_dotenv("A=1\nnot a line\n"), Err(2));
        assert_eq!(parse_dotenv("1A=1\n"), Err(1));
    }
}
