//! The deploy flow every writer shares: a change (deploy, env, scale, rollback, sleep,
//! wake) is written as a revision plus a pending deployment in one transaction
//! ([`request`]); workers ([`Deployer::run_workers`]) take deployments from the queue in
//! the database, at most `max_concurrent_app_deployments` per cluster, and run them
//! ([`flow`]): render -> preflight gate -> apply (prune, rollout wait, revert) -> ready.
//!
//! DESIGN.md "The one idea": nothing here writes to a cluster except through `apply`, and
//! nothing is applied that is not a revision row first. The API, the sleeper and the
//! resurrector hold a [`Deployer`]; none of them talks to a cluster another way.

pub mod address;
pub mod cluster;
pub mod flow;
pub mod gate;
pub mod image;
pub mod input;
pub mod registry;
pub mod remove;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore};

use loco_apply::ApplyConfig;
use loco_crypto::Kek;
use loco_db::{DbError, queue};
use loco_render::RenderSettings;
use loco_telemetry::Metrics;

pub use cluster::ClusterClients;
pub use gate::{CachedGates, GateSource, ListGates, StaticGate};
pub use registry::{RegistryClient, RegistryConfig};

/// Everything an installation chooses about deploying.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub render: RenderSettings,
    pub apply: ApplyConfig,
    pub registry: RegistryConfig,
    /// How loco.toml files sent with a deploy are validated (base domain, replica cap).
    pub spec: loco_spec::Options,
    /// Applies running at once per cluster; the rest wait in the queue.
    pub max_concurrent_app_deployments: i64,
    /// Deployments this process runs at once, over all clusters.
    pub workers: usize,
    /// How long a claimed deployment is ours without renewal; a dead worker's
    /// deployment is taken over after this.
    pub lease: Duration,
    /// Overrides preflight's factor (2 for deploys and wakes).
    pub preflight_factor: Option<f64>,
    /// How often idle workers look at the queue (a new deployment in this process wakes
    /// them at once).
    pub poll: Duration,
    /// Where loco's own Deployments live, checked Ready by the preflight gate before a
    /// deploy; `None` skips that check (a cluster without loco's chart).
    pub preflight_components: Option<loco_preflight::ComponentSelector>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            render: RenderSettings::default(),
            apply: ApplyConfig::default(),
            registry: RegistryConfig::default(),
            spec: loco_spec::Options::default(),
            max_concurrent_app_deployments: 3,
            workers: 8,
            lease: Duration::from_secs(60),
            preflight_factor: None,
            poll: Duration::from_secs(2),
            preflight_components: None,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Deploy metrics: finished deployments by outcome.
#[derive(Clone, Debug, Default)]
pub struct DeployMetrics {
    finished: Family<OutcomeLabel, Counter>,
}

impl DeployMetrics {
    pub fn register(registry: &Metrics) -> Self {
        let m = DeployMetrics::default();
        registry.register(
            "deployments_finished",
            "Deployments that reached ready or failed",
            m.finished.clone(),
        );
        m
    }

    fn finished(&self, outcome: &str) {
        self.finished
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// The deploy engine of one process. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    pub db: PgPool,
    pub kek: Arc<Kek>,
    pub config: Arc<DeployConfig>,
    pub clusters: ClusterClients,
    pub registry: RegistryClient,
    pub gates: Arc<dyn GateSource>,
    pub metrics: DeployMetrics,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Deployer {
    /// The deploy engine of a process: what `loco-api serve` and every daemon build once
    /// at start-up (database pool, KEK, configuration); it creates the cluster client
    /// cache, the registry client and the preflight watch caches itself, and registers
    /// its metrics into `metrics`.
    pub fn new(db: PgPool, kek: Kek, config: DeployConfig, metrics: &Metrics) -> Self {
        let gates = Arc::new(CachedGates::new(config.preflight_components.clone()));
        Self::with_gates(db, kek, config, gates, metrics)
    }

    /// As [`Deployer::new`], with another source of preflight gates (a CLI that LISTs
    /// once, or a literal cluster in tests).
    pub fn with_gates(
        db: PgPool,
        kek: Kek,
        config: DeployConfig,
        gates: Arc<dyn GateSource>,
        metrics: &Metrics,
    ) -> Self {
        Deployer {
            db,
            kek: Arc::new(kek),
            registry: RegistryClient::new(config.registry.clone()),
            config: Arc::new(config),
            clusters: ClusterClients::default(),
            gates,
            metrics: DeployMetrics::register(metrics),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells idle workers of this process that a deployment was queued.
    pub fn notify(&self) {
        self.wake.notify_waiters();
    }

    /// Runs deployments from the queue until `shutdown` resolves. A deployment cut off by
    /// shutdown keeps its row `applying`; its lease runs out and a worker (this process
    /// after a restart, or another replica) starts it over: apply is idempotent.
    pub async fn run_workers(&self, shutdown: impl std::future::Future<Output = ()>) {
        let slots = Arc::new(Semaphore::new(self.config.workers.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // Claim while there are free slots and runnable deployments.
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                match queue::claim(
                    &self.db,
                    self.config.max_concurrent_app_deployments,
                    self.config.lease,
                )
                .await
                {
                    Ok(Some(claimed)) => {
                        let d = self.clone();
                        tasks.spawn(async move {
                            let _permit = permit;
                            if let Err(e) = flow::run(&d, &claimed).await {
                                tracing::error!(deployment_id = claimed.deployment_id, error = %e,
                                    "deployment stopped on a database error; it is retried when its lease runs out");
                            }
                            // Finishing frees a per-cluster slot another worker may be waiting for.
                            d.notify();
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the deploy queue; retrying");
                        break;
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
        tasks.abort_all();
    }
}

/// Errors that end a deployment as failed: a reason for the row and the event.
pub trait FailReason: std::fmt::Display {
    fn fail_reason(&self) -> &'static str;
    /// The text is loco's internals (a query, a driver, a kubeconfig parser): logged
    /// with the deployment id, never shown.
    fn is_internal(&self) -> bool;
}

impl FailReason for DbError {
    fn fail_reason(&self) -> &'static str {
        self.reason()
    }
    fn is_internal(&self) -> bool {
        true
    }
}

impl FailReason for cluster::ClusterError {
    fn fail_reason(&self) -> &'static str {
        self.reason()
    }
    fn is_internal(&self) -> bool {
        true
    }
}

impl FailReason for input::InputError {
    fn fail_reason(&self) -> &'static str {
        self.reason()
    }
    fn is_internal(&self) -> bool {
        matches!(self, input::InputError::Db(_))
    }
}
