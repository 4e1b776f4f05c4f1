//! The platform layer of a workload cluster, as `loco-api platform apply` and the
//! resurrector install it (DESIGN.md, "What is where"): first the Gateway API CRDs
//! pinned in this crate (server-side apply, never Helm's `crds/`), then loco's namespace,
//! GatewayClass and Gateway from the recorded values' `gateway` section, then the Helm
//! release of charts/loco at the recorded chart version with the recorded values.
//!
//! The release (chart version + values, no secrets) is a row in Postgres per change
//! (`loco_db::platform`); this crate takes it as an argument and needs no database, so
//! the resurrector and loco-api call the same [`apply`].

mod crds;
mod error;
mod gateway;
mod helm;
mod identity;
mod secret_refs;
mod ssa;

use std::time::{Duration, Instant};

use loco_crypto::Secret;

pub use crds::{
    BUNDLE_VERSION_ANNOTATION, CrdChange, CrdState, GATEWAY_API_VERSION, check_upgrade,
    gateway_api_crds, live as live_crds,
};
pub use error::PlatformError;
pub use gateway::{GatewayValues, ROUTES_LABEL};
pub use helm::{HelmConfig, HelmOutcome, RELEASE, chart_version};
pub use identity::{API_NAMESPACE, API_SERVICE_ACCOUNT, api_identity_objects, api_kubeconfig};

/// A platform release to install: what a `platform_releases` row holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub chart_version: String,
    pub values: serde_json::Value,
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The API server validates every write and persists none; helm runs `--dry-run=server`.
    pub dry_run: bool,
    /// helm and the chart; `None` applies the CRDs, the Gateway and loco-api's identity
    /// (core-api/rbac/loco-api.yaml) only: loco-api runs outside the cluster.
    pub helm: Option<HelmConfig>,
    /// How long the CRDs may take to become Established.
    pub crd_deadline: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            dry_run: false,
            helm: None,
            crd_deadline: Duration::from_secs(60),
        }
    }
}

/// What [`apply`] did, phase by phase.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub gateway_api_version: &'static str,
    pub crds: Vec<CrdChange>,
    /// `Kind/name` of the namespace, GatewayClass and Gateway.
    pub gateway: Vec<String>,
    /// `Kind/name` of loco-api's identity objects, applied when there is no chart (the
    /// chart carries the same file).
    pub identity: Vec<String>,
    /// `None` when helm was not asked for.
    pub chart: Option<HelmOutcome>,
    pub seconds_crds: f64,
    pub seconds_gateway: f64,
    pub seconds_chart: f64,
}

/// Applies the platform layer: CRDs, then the Gateway, then the chart (when `opts.helm`
/// is set; without it, loco-api's identity). Stops at the first failure, having changed only the phases before it.
/// With the chart, first renders it and refuses, changing nothing, when the Secrets its
/// pods need are missing from the namespace.
pub async fn apply(
    client: &kube::Client,
    kubeconfig: &Secret,
    release: &Release,
    opts: &ApplyOptions,
) -> Result<Report, PlatformError> {
    let gateway_values = GatewayValues::from_values(&release.values)?;
    // With the chart: its version and the Secrets its pods need, before any change.
    let run = match &opts.helm {
        Some(cfg) => {
            let run = helm::Run::new(
                cfg,
                kubeconfig,
                &gateway_values.namespace,
                &release.chart_version,
                &release.values,
            )?;
            let needed = secret_refs::referenced(&run.template().await?)?;
            secret_refs::check(client, &gateway_values.namespace, &needed).await?;
            Some(run)
        }
        None => None,
    };
    let t = Instant::now();
    let crds = crds::apply(client, opts.dry_run, opts.crd_deadline).await?;
    let seconds_crds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gateway = if opts.dry_run && crds.iter().any(|c| c.from.is_none()) {
        // A dry run cannot validate a Gateway whose CRD it did not really create.
        Vec::new()
    } else {
        gateway::apply(client, &gateway_values, opts.dry_run).await?
    };
    let seconds_gateway = t.elapsed().as_secs_f64();
    let identity = match &opts.helm {
        // Its namespace may not exist before the real apply; the identity is fixed text.
        None if opts.dry_run => Vec::new(),
        None => identity::apply(client, opts.dry_run).await?,
        Some(_) => Vec::new(),
    };
    let t = Instant::now();
    let chart = match &run {
        Some(run) => Some(run.upgrade_install(opts.dry_run).await?),
        None => None,
    };
    Ok(Report {
        dry_run: opts.dry_run,
        gateway_api_version: GATEWAY_API_VERSION,
        crds,
        gateway,
        identity,
        chart,
        seconds_crds,
        seconds_gateway,
        seconds_chart: t.elapsed().as_secs_f64(),
    })
}
