//! `loco-api serve`: migrations, then the HTTP API with /metrics, /healthz and /readyz,
//! and the deploy workers beside it.

use std::net::SocketAddr;

use loco_db as db;
use loco_telemetry::{Metrics, ops};

use crate::flags::DbArgs;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The address to listen on; port 0 picks a free port and logs it.
    #[arg(long, env = "LOCO_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The largest request body the API accepts, in bytes; larger ones get 413.
    #[arg(long, env = "LOCO_API_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Boxed: the login flags are many, and `Command` should stay small.
    #[command(flatten)]
    pub auth: Box<crate::flags::auth::AuthArgs>,
    #[command(flatten)]
    pub rate_limits: crate::flags::ratelimit::RateLimitArgs,
    #[command(flatten)]
    pub deploy: crate::flags::deploy::DeployArgs,
    /// Seconds between SIGTERM and closing the listener: /readyz answers 503 while the API
    /// still serves, so a Service stops sending connections before the pod stops taking
    /// them. Keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "LOCO_API_SHUTDOWN_DELAY", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay_seconds: u64,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    // Before anything else: without the KEK no app env can be sealed or opened, so a
    // server that started anyway would fail later, request by request.
    let kek = loco_crypto::Kek::from_env().map_err(|e| {
        anyhow::anyhow!("loco-api serve cannot start: {e}. The KEK never enters the database; keep it where the resurrector can read it too.")
    })?;
    let metrics = Metrics::new("loco-api");
    let ready = ops::Readiness::default();
    let pool = db::connect(&a.db.database_url).await?;
    db::migrate(&pool).await?;
    let (listener, addr) = ops::bind(a.listen).await?;
    let deployer = loco_deploy::Deployer::new(pool.clone(), kek, a.deploy.config(), &metrics);
    let ctx = loco_http::Ctx::new(
        deployer,
        metrics.clone(),
        loco_http::ApiConfig {
            body_limit: a.body_limit,
            rate_limits: (&a.rate_limits).into(),
        },
    );
    let login = crate::flags::auth::AuthArgs::into_config(*a.auth.clone())
        .map_err(|e| anyhow::anyhow!("loco-api serve cannot start: {e}"))?;
    tracing::info!(
        github = login.github.is_some(),
        google = login.google.is_some(),
        deploy_gate_token = login.github_token.is_some(),
        "login providers configured"
    );
    let ctx = ctx.with_login(loco_http::login::Login::new(login)?);
    tracing::info!(kek_id = ctx.kek().id(), "key-encryption key loaded");
    // Deploy workers run beside the API and stop with it; a deployment cut off by the
    // stop is resumed by the next worker once its lease runs out.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = (a.deploy.deploy_workers > 0).then(|| {
        let deployer = ctx.deployer.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            deployer
                .run_workers(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        })
    });
    let app = loco_http::router(ctx).merge(ops::router(metrics, ready.clone()));
    ready.set(true);
    tracing::info!(%addr, workers = a.deploy.deploy_workers, "loco-api listening");
    let drain = ops::drain(
        ops::shutdown_signal(),
        ready.clone(),
        std::time::Duration::from_secs(a.shutdown_delay_seconds),
    );
    ops::serve(listener, app, drain).await?;
    let _ = stop.send(true);
    if let Some(w) = workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), w).await;
    }
    pool.close().await;
    Ok(())
}
