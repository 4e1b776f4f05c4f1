//! `loco-api serve` flags for the deploy engine (each also an environment variable).

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Args;

use crate::render::RenderSettingsArgs;
use loco_apply::ApplyConfig;
use loco_crypto::Secret;
use loco_deploy::{DeployConfig, RegistryConfig};

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Deployments applied at once per cluster; the rest wait in the queue.
    #[arg(long, env = "LOCO_MAX_CONCURRENT_APP_DEPLOYMENTS", default_value_t = 3)]
    pub max_concurrent_app_deployments: u32,
    /// Deployments this process runs at once; 0 runs none (an API replica that only queues).
    #[arg(long, env = "LOCO_DEPLOY_WORKERS", default_value_t = 8)]
    pub deploy_workers: usize,
    /// How long a rollout may take before the deployment fails and is reverted, in seconds.
    #[arg(long, env = "LOCO_ROLLOUT_DEADLINE_SECONDS", default_value_t = 300)]
    pub rollout_deadline_seconds: u64,
    /// How many times a deployment may be claimed (a worker that stopped, crashed or lost
    /// its lease used one) before it fails with attempts_exhausted; 1-100.
    #[arg(
        long,
        env = "LOCO_DEPLOY_MAX_ATTEMPTS",
        default_value_t = 3,
        value_parser = clap::value_parser!(i32).range(1..=100)
    )]
    pub deploy_max_attempts: i32,
    /// The platform's own registry: the registry of image references that name none, and
    /// the only host loco's registry login is ever sent to.
    #[arg(
        long,
        env = "LOCO_DEFAULT_REGISTRY",
        default_value = "registry.deploy-app.com"
    )]
    pub default_registry: String,
    /// Registries spoken to over plain HTTP (comma-separated host:port), e.g. a local test registry.
    #[arg(long, env = "LOCO_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
    /// Further registries a deploy may name (comma-separated host[:port]); loco reads
    /// them anonymously. Any other registry is refused.
    #[arg(
        long,
        env = "LOCO_ALLOWED_REGISTRIES",
        value_delimiter = ',',
        default_value = "ghcr.io"
    )]
    pub allowed_registries: Vec<String>,
    /// Hosts a registry's token realm may be on besides the registry's own host
    /// (comma-separated host[:port]), e.g. auth.docker.io.
    #[arg(long, env = "LOCO_REGISTRY_AUTH_HOSTS", value_delimiter = ',')]
    pub registry_auth_hosts: Vec<String>,
    /// The platform registry's token service (host[:port]): the one realm loco's login is
    /// sent to. Default: the platform registry itself.
    #[arg(long, env = "LOCO_PLATFORM_REGISTRY_AUTH_HOST")]
    pub platform_registry_auth_host: Option<String>,
    /// Registries and auth hosts allowed to resolve to loopback, link-local or private
    /// addresses (comma-separated host[:port]): an in-cluster registry, a test registry.
    #[arg(long, env = "LOCO_PRIVATE_REGISTRIES", value_delimiter = ',')]
    pub private_registries: Vec<String>,
    /// Further address ranges loco never connects to for a registry (comma-separated
    /// CIDRs): the cluster's Pod, Service and node ranges, the control plane.
    #[arg(long, env = "LOCO_REGISTRY_BLOCKED_RANGES", value_delimiter = ',')]
    pub registry_blocked_ranges: Vec<ipnet::IpNet>,
    /// The largest image a deploy accepts, in MiB (compressed config + layers).
    #[arg(long, env = "LOCO_MAX_IMAGE_MIB", default_value_t = 10 * 1024)]
    pub max_image_mib: u64,
    /// User of the read-only registry login loco reads manifests with.
    #[arg(long, env = "LOCO_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,
    /// Its password (set it through the environment, not the command line).
    #[arg(long, env = "LOCO_REGISTRY_PASSWORD", hide_env_values = true)]
    pub registry_password: Option<String>,
    // The installation's render settings and platform limits, shared with `loco-api render`.
    #[command(flatten)]
    pub render: RenderSettingsArgs,
    /// Before a deploy, also require loco's own Deployments in the gateway namespace
    /// (label app.kubernetes.io/part-of=loco) to be Ready.
    #[arg(long, env = "LOCO_PREFLIGHT_CHECK_COMPONENTS")]
    pub preflight_check_components: bool,
}

impl DeployArgs {
    /// The engine's configuration, with where preflight looks for loco's components.
    pub fn config(&self) -> DeployConfig {
        let login = match (&self.registry_username, &self.registry_password) {
            (Some(u), Some(p)) => Some((u.clone(), Secret::new(p.clone()))),
            _ => None,
        };
        DeployConfig {
            render: self.render.settings(),
            apply: ApplyConfig {
                rollout_deadline: Duration::from_secs(self.rollout_deadline_seconds.max(1)),
                ..ApplyConfig::default()
            },
            registry: RegistryConfig {
                default_registry: self.default_registry.clone(),
                insecure: hosts(&self.insecure_registries),
                allowed: hosts(&self.allowed_registries),
                auth_hosts: hosts(&self.registry_auth_hosts),
                platform_auth_host: self.platform_registry_auth_host.clone(),
                private_ok: hosts(&self.private_registries),
                blocked_ranges: self.registry_blocked_ranges.clone(),
                max_image_bytes: self.max_image_mib.saturating_mul(1024 * 1024),
                login,
                ..RegistryConfig::default()
            },
            spec: self.render.platform.options(None),
            max_concurrent_app_deployments: i64::from(self.max_concurrent_app_deployments.max(1)),
            workers: self.deploy_workers,
            max_attempts: self.deploy_max_attempts,
            preflight_components: self.preflight_check_components.then(|| {
                loco_preflight::ComponentSelector {
                    namespace: self.render.gateway_namespace.clone(),
                    ..Default::default()
                }
            }),
            ..DeployConfig::default()
        }
    }
}

fn hosts(list: &[String]) -> BTreeSet<String> {
    list.iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        deploy: DeployArgs,
    }

    fn parse(args: &[&str]) -> Result<DeployConfig, clap::Error> {
        let mut argv = vec!["loco-api"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| c.deploy.config())
    }

    #[test]
    fn max_attempts_defaults_to_three_and_is_bounded() {
        assert_eq!(parse(&[]).unwrap().max_attempts, 3);
        assert_eq!(
            parse(&["--deploy-max-attempts", "5"]).unwrap().max_attempts,
            5
        );
        for bad in ["0", "-1", "101", "many"] {
            let e = parse(&[&format!("--deploy-max-attempts={bad}")]).unwrap_err();
            assert!(e.to_string().contains("--deploy-max-attempts"), "{e}");
        }
    }
}
