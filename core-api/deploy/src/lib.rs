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
pub mod lease;
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
    /// Claims of one deployment at most (a worker that died, panicked or lost its lease
    /// used one); the deployment then fails `attempts_exhausted`.
    pub max_attempts: i32,
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
            max_attempts: 3,
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

    /// The client of a cluster. When its stored credentials changed since the cached
    /// client was built (the resurrector wrote a new kubeconfig), the client is rebuilt
    /// and the cluster's preflight watch cache dropped with it.
    pub async fn client(&self, cluster_id: i64) -> Result<kube::Client, cluster::ClusterError> {
        let fetched = self.clusters.fetch(&self.db, &self.kek, cluster_id).await?;
        if fetched.replaced {
            self.gates.forget(cluster_id);
            tracing::info!(cluster_id, "cluster credentials changed; new client");
        }
        Ok(fetched.client)
    }

    /// The render settings of a cluster: its newest stored row; a cluster without one
    /// gets this process's configured settings stored as its first (they only seed it).
    pub async fn render_settings(&self, cluster_id: i64) -> Result<RenderSettings, DbError> {
        let corrupt = |e: serde_json::Error| {
            DbError::Corrupt(format!("render settings of cluster {cluster_id}: {e}"))
        };
        if let Some((_, stored)) = loco_db::clusters::render_settings(&self.db, cluster_id).await? {
            return serde_json::from_value(stored).map_err(corrupt);
        }
        let seed = serde_json::to_value(&self.config.render).map_err(corrupt)?;
        let mut tx = self.db.begin().await?;
        let in_force = loco_db::clusters::seed_render_settings(&mut tx, cluster_id, &seed).await?;
        tx.commit().await?;
        serde_json::from_value(in_force).map_err(corrupt)
    }

    /// Tells idle workers of this process that a deployment was queued.
    pub fn notify(&self) {
        self.wake.notify_waiters();
    }

    /// Runs deployments from the queue until `shutdown` resolves. A deployment cut off by
    /// shutdown keeps its row `applying`; its lease runs out and a worker (this process
    /// after a restart, or another replica) starts it over: apply is idempotent.
    pub async fn run_workers(&self, shutdown: impl std::future::Future<Output = ()>) {
        self.run_queue(shutdown, |d, claimed, held| async move {
            flow::run(&d, &claimed, &held).await
        })
        .await;
    }

    /// The worker loop of [`Deployer::run_workers`] around any `run` of one claimed
    /// deployment (tests put a scripted one here). Each claim is renewed while `run`
    /// runs; when `run` panics or returns an error its lease is released at once, so the
    /// deployment is retried (up to `max_attempts` claims) instead of blocking its app.
    pub async fn run_queue<F, Fut>(&self, shutdown: impl std::future::Future<Output = ()>, run: F)
    where
        F: Fn(Deployer, queue::Claimed, Arc<lease::Held>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), DbError>> + Send + 'static,
    {
        let run = Arc::new(run);
        let rules = queue::ClaimRules {
            max_per_cluster: self.config.max_concurrent_app_deployments,
            lease: self.config.lease,
            max_attempts: self.config.max_attempts,
        };
        let slots = Arc::new(Semaphore::new(self.config.workers.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // Claim while there are free slots and runnable deployments.
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                let claimed_at = tokio::time::Instant::now();
                match queue::claim(&self.db, rules).await {
                    Ok(Some(claimed)) => {
                        let d = self.clone();
                        let run = run.clone();
                        tasks.spawn(async move {
                            let _permit = permit;
                            let id = claimed.deployment_id;
                            let held = lease::Held::new(claimed.lease, claimed_at, d.config.lease);
                            let renewer =
                                lease::Renewer::start(d.db.clone(), held.clone(), d.config.lease);
                            // Its own task, so a panic ends there and is seen here.
                            let inner = tokio::spawn(run(d.clone(), claimed, held.clone()));
                            // Shutdown aborts this task; the run must stop with it.
                            let _stop = lease::AbortOnDrop(inner.abort_handle());
                            let outcome = inner.await;
                            drop(renewer);
                            let stopped = match outcome {
                                Ok(Ok(())) => false,
                                Ok(Err(e)) => {
                                    tracing::error!(deployment_id = id, error = %e,
                                        "deployment stopped on a database error; it is retried");
                                    true
                                }
                                Err(e) => {
                                    tracing::error!(deployment_id = id, error = %e,
                                        "deployment panicked; it is retried");
                                    true
                                }
                            };
                            if stopped && let Err(e) = queue::release(&d.db, held.lease()).await {
                                tracing::warn!(deployment_id = id, error = %e,
                                    "cannot release the lease; it runs out by itself");
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
