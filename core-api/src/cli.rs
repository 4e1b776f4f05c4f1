//! `loco-api` command line: the HTTP API server and the operator's one-shot commands.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use loco_telemetry::{LogArgs, Metrics};
use loco_db as db;
use loco_telemetry::ops;

/// loco-api serves loco's HTTP API and runs the operator's one-shot commands against the
/// loco database, which is the only source of truth for every cluster loco manages.
#[derive(Debug, Parser)]
#[command(name = "loco-api", version)]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies the database migrations, then serves the API with /metrics, /healthz and /readyz.
    Serve(ServeArgs),
    /// Applies pending database migrations and exits; safe to run more than once.
    Migrate(DbArgs),
    /// Works with loco.toml app specs offline: `spec validate FILE` checks one as a deploy would.
    Spec(crate::spec::SpecArgs),
    /// Prints the Kubernetes objects of one app as YAML, rendered as a deploy would render them.
    Render(crate::render::RenderArgs),
    /// Manages the key-encryption key: `keys rotate` rewraps every data key under a new KEK.
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
    /// Manages API tokens: `tokens create` mints one for a member of an org and prints it once.
    #[command(subcommand)]
    Tokens(crate::tokens::TokensCommand),
    /// Creates (or reuses) the first user, their org and the owner membership, and mints
    /// an admin API token printed once: the way in before anyone can sign in.
    Bootstrap(crate::bootstrap::BootstrapArgs),
    /// Registers clusters (`clusters add`, with the kubeconfig sealed), lists them, and
    /// stores their registry pull login (`clusters set-pull-credential`).
    #[command(subcommand)]
    Clusters(crate::clusters::ClustersCommand),
    /// Drops old events, expired credentials, and deployments and revisions beyond the
    /// newest N per app (never one still in use); `--once` for a CronJob, `--dry-run` to count only.
    Gc(crate::gc::GcArgs),
}

#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The Postgres URL of the loco database, e.g. postgres://loco:...@127.0.0.1:5432/loco.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

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
    pub auth: Box<loco_http::login::AuthArgs>,
    #[command(flatten)]
    pub rate_limits: loco_http::ratelimit::RateLimitArgs,
    #[command(flatten)]
    pub deploy: crate::deploy_args::DeployArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Migrate(a) => {
            let pool = db::connect(&a.database_url).await?;
            db::migrate(&pool).await?;
            tracing::info!(
                target_db = %db::redacted_target(&a.database_url),
                "database migrations applied"
            );
            Ok(())
        }
        Command::Serve(a) => serve(a).await,
        // Exit codes carry meaning here (1 invalid spec, 2 unreadable file), which an
        // anyhow error at main could not express.
        Command::Spec(a) => std::process::exit(crate::spec::run(a)),
        Command::Render(a) => std::process::exit(crate::render::run(a)),
        Command::Keys(c) => crate::keys::run(c).await,
        Command::Tokens(c) => crate::tokens::run(c).await,
        Command::Bootstrap(a) => crate::bootstrap::run(a).await,
        Command::Clusters(c) => crate::clusters::run(c).await,
        Command::Gc(a) => crate::gc::run(a).await,
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
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
    let ctx = loco_http::Ctx::new(pool.clone(), kek, metrics.clone(), {
        let (deploy, preflight_components) = a.deploy.config();
        loco_http::ApiConfig {
            body_limit: a.body_limit,
            rate_limits: (&a.rate_limits).into(),
            deploy,
            preflight_components,
        }
    });
    let login = loco_http::login::AuthArgs::into_config(*a.auth.clone())
        .map_err(|e| anyhow::anyhow!("loco-api serve cannot start: {e}"))?;
    tracing::info!(
        github = login.github.is_some(),
        google = login.google.is_some(),
        deploy_gate_token = login.github_token.is_some(),
        "login providers configured"
    );
    let ctx = ctx.with_login(loco_http::login::Login::new(login)?);
    tracing::info!(kek_id = ctx.kek.id(), "key-encryption key loaded");
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
    ops::serve(listener, app, ops::shutdown_signal()).await?;
    let _ = stop.send(true);
    if let Some(w) = workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), w).await;
    }
    pool.close().await;
    Ok(())
}
