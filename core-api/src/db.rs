//! Database access: the connection pool and the migrations. Queries live in submodules
//! per table group (added with the data model).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The migrations of `core-api/migrations`, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Database errors as an operator sees them. The URL's password is never printed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to Postgres at {target}: {source}. Check DATABASE_URL and that the server runs (tests/minikube/stack status)."
    )]
    Connect { target: String, source: sqlx::Error },
    #[error(
        "applying database migrations failed: {0}. The database was left at its previous version."
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    pub fn reason(&self) -> &'static str {
        match self {
            DbError::Connect { .. } => "database_unreachable",
            DbError::Migrate(_) => "migration_failed",
        }
    }
}

/// `host:port/dbname` of a database URL, without user or password, for messages.
pub fn redacted_target(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_string()
}

/// Connects with a short acquire timeout so a dead database fails fast with a clear error.
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            target: redacted_target(url),
            source,
        })
}

/// Applies pending migrations (idempotent; concurrent callers are serialised by sqlx's
/// advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redacted_target;

    #[test]
    fn password_never_appears_in_target() {
        assert_eq!(
            redacted_target("postgres://loco:s3cret@127.0.0.1:25432/loco?sslmode=disable"),
            "127.0.0.1:25432/loco"
        );
        assert_eq!(redacted_target("postgres://h/db"), "h/db");
    }
}
