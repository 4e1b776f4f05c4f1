//! Token buckets of the per-org rate limits (`api::ratelimit` holds the limits and the
//! error a client sees). One statement takes a token, so concurrent requests on any
//! number of loco-api replicas share one bucket: the row lock of the upsert orders them.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::DbError;

/// What [`take`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Taken {
    /// A token was taken.
    Yes,
    /// The bucket held fewer than one token; `tokens` is its refilled content now.
    No { tokens: f64 },
}

/// Takes one token from `org_id`'s bucket for `action`, refilled at `per_second` up to
/// `burst` since its last use. `at` is "now" (`None`: the database's clock, the same
/// for every replica; tests pass instants).
pub async fn take(
    db: impl PgExecutor<'_> + Copy,
    org_id: i64,
    action: &str,
    per_second: f64,
    burst: f64,
    at: Option<DateTime<Utc>>,
) -> Result<Taken, DbError> {
    // The refill is clamped at zero elapsed time: a replica's earlier `at` (or a clock
    // step back) never drains a bucket.
    let taken = sqlx::query_scalar!(
        r#"INSERT INTO rate_limit_buckets AS b (org_id, action, tokens, updated_at)
           VALUES ($1, $2, $3::float8 - 1, COALESCE($5::timestamptz, now()))
           ON CONFLICT (org_id, action) DO UPDATE
              SET tokens = LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - b.updated_at)::float8) * $4) - 1,
                  updated_at = GREATEST(b.updated_at, EXCLUDED.updated_at)
            WHERE LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - b.updated_at)::float8) * $4) >= 1
           RETURNING tokens"#,
        org_id,
        action,
        burst,
        per_second,
        at
    )
    .fetch_optional(db)
    .await?;
    if taken.is_some() {
        return Ok(Taken::Yes);
    }
    let tokens = sqlx::query_scalar!(
        r#"SELECT LEAST($3::float8, tokens + GREATEST(0, EXTRACT(EPOCH FROM COALESCE($5::timestamptz, now()) - updated_at)::float8) * $4) AS "tokens!"
             FROM rate_limit_buckets WHERE org_id = $1 AND action = $2"#,
        org_id,
        action,
        burst,
        per_second,
        at
    )
    .fetch_optional(db)
    .await?
    .unwrap_or(0.0);
    Ok(Taken::No { tokens })
}
