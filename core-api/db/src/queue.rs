//! The deploy queue: deployments themselves. A worker claims the oldest pending
//! deployment (or an applying one whose lease ran out: its worker died) of a cluster that
//! has fewer than `max_per_cluster` live leases, and of an app with no live lease, then
//! renews its lease while it applies. One transaction-scoped advisory lock serialises
//! claims, so two workers (in one process or several) never exceed the limit.

use std::time::Duration;

use sqlx::PgPool;

use super::DbError;

/// Advisory-lock key of the claim step (apps use their id; this is negative, never an id).
const QUEUE_LOCK: i64 = -0x6c6f_636f_7175;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub deployment_id: i64,
    pub app_id: i64,
    pub cluster_id: i64,
    /// True when a dead worker's deployment is taken over.
    pub resumed: bool,
}

/// Claims the next runnable deployment, if any, and leases it for `lease`.
pub async fn claim(
    db: &PgPool,
    max_per_cluster: i64,
    lease: Duration,
) -> Result<Option<Claimed>, DbError> {
    let lease_secs = lease.as_secs_f64();
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", QUEUE_LOCK)
        .execute(&mut *tx)
        .await?;
    let next = sqlx::query!(
        r#"WITH live AS (
               SELECT d.app_id, w.cluster_id
                 FROM deployments d
                 JOIN apps a ON a.id = d.app_id
                 JOIN workspaces w ON w.id = a.workspace_id
                WHERE d.status = 'applying' AND d.lease_expires_at > now())
           SELECT d.id AS "id!", d.app_id AS "app_id!", w.cluster_id AS "cluster_id!",
                  (d.status = 'applying') AS "resumed!"
             FROM deployments d
             JOIN apps a ON a.id = d.app_id
             JOIN workspaces w ON w.id = a.workspace_id
            WHERE (d.status = 'pending'
                   OR (d.status = 'applying' AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())))
              AND NOT EXISTS (SELECT 1 FROM live WHERE live.app_id = d.app_id)
              AND (SELECT count(*) FROM live WHERE live.cluster_id = w.cluster_id) < $1
              -- An app's deployments run in the order they were made.
              AND NOT EXISTS (SELECT 1 FROM deployments e
                               WHERE e.app_id = d.app_id AND e.id < d.id
                                 AND e.status IN ('pending', 'applying'))
            ORDER BY d.id
            LIMIT 1"#,
        max_per_cluster
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(next) = next else {
        tx.commit().await?;
        return Ok(None);
    };
    sqlx::query!(
        "UPDATE deployments
            SET status = 'applying', started_at = coalesce(started_at, now()),
                lease_expires_at = now() + make_interval(secs => $2)
          WHERE id = $1",
        next.id,
        lease_secs
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Claimed {
        deployment_id: next.id,
        app_id: next.app_id,
        cluster_id: next.cluster_id,
        resumed: next.resumed,
    }))
}

/// Extends the lease of a deployment still applying; false when it is no longer ours
/// to extend (finished, or taken over after the lease ran out).
pub async fn renew(db: &PgPool, deployment_id: i64, lease: Duration) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE deployments SET lease_expires_at = now() + make_interval(secs => $2)
          WHERE id = $1 AND status = 'applying' AND lease_expires_at > now()",
        deployment_id,
        lease.as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many deployments wait in the queue (pending) and run (live lease), per status.
pub async fn depth(db: &PgPool) -> Result<(i64, i64), DbError> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'pending') AS "pending!",
                  count(*) FILTER (WHERE status = 'applying' AND lease_expires_at > now()) AS "applying!"
             FROM deployments WHERE status IN ('pending', 'applying')"#
    )
    .fetch_one(db)
    .await?;
    Ok((row.pending, row.applying))
}

/// Before an app is deleted: cancels its queued deployments (under the claim lock, so no
/// worker takes one meanwhile) and returns the one still applying, if any.
pub async fn cancel_pending(db: &PgPool, app_id: i64) -> Result<Option<i64>, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", QUEUE_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE deployments
            SET status = 'failed', reason = 'cancelled',
                message = 'cancelled: the app is being deleted', finished_at = now()
          WHERE app_id = $1 AND status = 'pending'",
        app_id
    )
    .execute(&mut *tx)
    .await?;
    let applying = sqlx::query_scalar!(
        "SELECT id FROM deployments
          WHERE app_id = $1 AND status = 'applying' AND lease_expires_at > now()
          ORDER BY id LIMIT 1",
        app_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(applying)
}
