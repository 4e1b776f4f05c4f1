//! Flag groups that several `loco-api` commands share (each flag also an env variable).

pub mod auth;
pub mod deploy;
pub mod ratelimit;

#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The Postgres URL of the loco database, e.g. postgres://loco:...@127.0.0.1:5432/loco.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}
