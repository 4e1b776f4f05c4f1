//! The lookups `loco-api bootstrap` needs beyond the other modules' queries: it reuses
//! what an earlier run (or a real login) created instead of overwriting it.

use sqlx::PgExecutor;

use super::DbError;
use super::orgs::{Provider, User};

/// The user of an identity, if one signed in or was bootstrapped before.
pub async fn user_by_identity(
    db: impl PgExecutor<'_>,
    provider: Provider,
    provider_uid: &str,
) -> Result<Option<User>, DbError> {
    Ok(sqlx::query_as!(
        User,
        "SELECT id, provider, provider_uid, login, email FROM users
          WHERE provider = $1 AND provider_uid = $2",
        provider.as_str(),
        provider_uid
    )
    .fetch_optional(db)
    .await?)
}
