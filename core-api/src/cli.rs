//! `loco-api` command line: the HTTP API server and the operator's one-shot commands.

use clap::{Parser, Subcommand};
use loco_telemetry::LogArgs;

use crate::flags::DbArgs;

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
    // Serve and Render are boxed: the render settings they share outweigh every other
    // command's flags several times over.
    Serve(Box<crate::serve::ServeArgs>),
    /// Applies pending database migrations and exits; safe to run more than once.
    Migrate(DbArgs),
    /// Works with loco.toml app specs offline: `spec validate FILE` checks one as a deploy would.
    Spec(crate::spec::SpecArgs),
    /// Prints the Kubernetes objects of one app as YAML, rendered as a deploy would render them.
    Render(Box<crate::render::RenderArgs>),
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
    /// The platform layer of a cluster (Gateway API CRDs, GatewayClass and Gateway, the
    /// charts/loco release) from what Postgres records: `set-values`, `apply`, `show`.
    #[command(subcommand)]
    Platform(crate::platform::PlatformCommand),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Migrate(a) => crate::migrate::run(a).await,
        Command::Serve(a) => crate::serve::run(*a).await,
        // Exit codes carry meaning here (1 invalid spec, 2 unreadable file), which an
        // anyhow error at main could not express.
        Command::Spec(a) => std::process::exit(crate::spec::run(a)),
        Command::Render(a) => std::process::exit(crate::render::run(*a)),
        Command::Keys(c) => crate::keys::run(c).await,
        Command::Tokens(c) => crate::tokens::run(c).await,
        Command::Bootstrap(a) => crate::bootstrap::run(a).await,
        Command::Clusters(c) => crate::clusters::run(c).await,
        Command::Gc(a) => crate::gc::run(a).await,
        Command::Platform(c) => crate::platform::run(c).await,
    }
}
