//! The deploy queue: deployments themselves. A worker claims the oldest runnable
//! deployment (pending, or applying with a lease that ran out: its worker died) of a
//! cluster that has fewer than `max_per_cluster` live leases, is not being rebuilt, and of
//! an app with no live lease that is not being deleted, then renews its lease while it
//! applies. One transaction-scoped advisory lock serialises claims, so two workers (in
//! one process or several) never exceed the limit.
//!
//! Every claim increments the deployment's epoch (a fencing token, [`Lease`]): status
//! writes check it ([`fence`]), so a worker whose lease was taken over can neither
//! activate nor fail the deployment. A queued deployment with a newer one of the same
//! app behind it is superseded at claim time: the newer revision was built on it.

use std::time::Duration;

use sqlx::PgPool;

use super::deployments::record_event;
use super::events::Actor;
use super::{DbError, Tx};

/// Advisory-lock key of the claim step (apps use their id; this is negative, never an id).
const QUEUE_LOCK: i64 = -0x6c6f_636f_7175;

/// A worker's hold on a deployment: the epoch it was claimed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub deployment_id: i64,
    pub epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub deployment_id: i64,
    pub app_id: i64,
    pub cluster_id: i64,
    /// True when a dead worker's deployment is taken over.
    pub resumed: bool,
    pub lease: Lease,
    /// This claim's number, 1 for the first.
    pub attempt: i32,
}

/// How the queue hands out work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRules {
    /// Live leases per cluster at most.
    pub max_per_cluster: i64,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// Claims of one deployment at most; the next one fails it `attempts_exhausted`.
    pub max_attempts: i32,
}

impl ClaimRules {
    pub fn new(max_per_cluster: i64, lease: Duration) -> Self {
        ClaimRules {
            max_per_cluster,
            lease,
            max_attempts: 3,
        }
    }
}

/// Claims the next runnable deployment, if any, and leases it.
pub async fn claim(db: &PgPool, rules: ClaimRules) -> Result<Option<Claimed>, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", QUEUE_LOCK)
        .execute(&mut *tx)
        .await?;
    supersede_queued(&mut tx).await?;
    give_up_exhausted(&mut tx, rules.max_attempts).await?;
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
             JOIN clusters c ON c.id = w.cluster_id
            WHERE (d.status = 'pending'
                   OR (d.status = 'applying' AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())))
              -- A deleted app's queue is fenced; a cluster being rebuilt is the resurrector's.
              AND a.deleting_since IS NULL
              AND c.status <> 'rebuilding'
              AND NOT EXISTS (SELECT 1 FROM live WHERE live.app_id = d.app_id)
              AND (SELECT count(*) FROM live WHERE live.cluster_id = w.cluster_id) < $1
              -- An app's deployments run in the order they were made.
              AND NOT EXISTS (SELECT 1 FROM deployments e
                               WHERE e.app_id = d.app_id AND e.id < d.id
                                 AND e.status IN ('pending', 'applying'))
            ORDER BY d.id
            LIMIT 1"#,
        rules.max_per_cluster
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(next) = next else {
        tx.commit().await?;
        return Ok(None);
    };
    // The status is checked again: a finishing worker may hold the row (see [`fence`]).
    let held = sqlx::query!(
        "UPDATE deployments
            SET status = 'applying', started_at = coalesce(started_at, now()),
                lease_expires_at = now() + make_interval(secs => $2),
                lease_epoch = lease_epoch + 1, attempts = attempts + 1
          WHERE id = $1 AND status IN ('pending', 'applying')
          RETURNING lease_epoch, attempts",
        next.id,
        rules.lease.as_secs_f64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(held.map(|h| Claimed {
        deployment_id: next.id,
        app_id: next.app_id,
        cluster_id: next.cluster_id,
        resumed: next.resumed,
        lease: Lease {
            deployment_id: next.id,
            epoch: h.lease_epoch,
        },
        attempt: h.attempts,
    }))
}

/// Queued deployments with a newer queued one of the same app become superseded: each
/// change builds on the newest revision, so the newer one carries this one's change.
async fn supersede_queued(tx: &mut Tx<'_>) -> Result<(), DbError> {
    let gone = sqlx::query!(
        "UPDATE deployments d
            SET status = 'superseded', reason = 'superseded_in_queue', finished_at = now(),
                message = 'a newer change of the app was queued; it carries this one'
          WHERE d.status = 'pending'
            AND EXISTS (SELECT 1 FROM deployments n
                         WHERE n.app_id = d.app_id AND n.id > d.id AND n.status = 'pending')
          RETURNING d.id, d.app_id"
    )
    .fetch_all(&mut **tx)
    .await?;
    for d in gone {
        record_event(
            tx,
            d.app_id,
            d.id,
            Actor::System("queue"),
            "deployment_superseded",
            format!(
                "deployment {} was superseded while queued: a newer change of the app carries it",
                d.id
            ),
        )
        .await?;
    }
    Ok(())
}

/// Deployments whose lease ran out `max_attempts` times fail: a deployment that kills
/// its worker (or keeps losing its lease) must not block its app's queue forever.
async fn give_up_exhausted(tx: &mut Tx<'_>, max_attempts: i32) -> Result<(), DbError> {
    let gone = sqlx::query!(
        "UPDATE deployments
            SET status = 'failed', reason = 'attempts_exhausted', finished_at = now(),
                lease_expires_at = NULL,
                message = 'gave up after ' || attempts || ' attempts: each ended without a result (the worker stopped, crashed or lost its lease). Check the loco-api logs for this deployment id, then deploy again.'
          WHERE status = 'applying' AND attempts >= $1
            AND (lease_expires_at IS NULL OR lease_expires_at <= now())
          RETURNING id, app_id, message AS \"message!\"",
        max_attempts
    )
    .fetch_all(&mut **tx)
    .await?;
    for d in gone {
        record_event(
            tx,
            d.app_id,
            d.id,
            Actor::System("queue"),
            "deployment_failed",
            d.message,
        )
        .await?;
    }
    Ok(())
}

/// Extends a lease still held; false when it is no longer ours to extend (finished,
/// taken over, or run out).
pub async fn renew(db: &PgPool, lease: &Lease, duration: Duration) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE deployments SET lease_expires_at = now() + make_interval(secs => $3)
          WHERE id = $1 AND lease_epoch = $2 AND status = 'applying' AND lease_expires_at > now()",
        lease.deployment_id,
        lease.epoch,
        duration.as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lease back at once (its run ended without a result: a panic or an error), so
/// the next claim retries it without waiting for the lease to run out; the attempt counts.
pub async fn release(db: &PgPool, lease: &Lease) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE deployments SET lease_expires_at = now()
          WHERE id = $1 AND lease_epoch = $2 AND status = 'applying'",
        lease.deployment_id,
        lease.epoch
    )
    .execute(db)
    .await?;
    Ok(())
}

/// In a transaction that finishes a deployment: fails with [`DbError::LeaseLost`] unless
/// `lease` is still the deployment's newest claim, and holds the row until the end of
/// the transaction so no claim can take it over meanwhile.
pub async fn fence(tx: &mut Tx<'_>, lease: &Lease) -> Result<(), DbError> {
    let held = sqlx::query_scalar!(
        r#"SELECT true AS "held!" FROM deployments
            WHERE id = $1 AND lease_epoch = $2 AND status = 'applying' FOR UPDATE"#,
        lease.deployment_id,
        lease.epoch
    )
    .fetch_optional(&mut **tx)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(DbError::LeaseLost {
            deployment_id: lease.deployment_id,
            epoch: lease.epoch,
        }),
    }
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

/// The start of an app's deletion: cancels its queued deployments and returns the one
/// still applying under a live lease, if any (the deletion must wait for it). Otherwise
/// it fences the app's queue: from now on no deployment of it is claimed or resumed (a
/// dead worker's is cancelled too) and no change of it is accepted.
pub async fn fence_app(db: &PgPool, app_id: i64) -> Result<Option<i64>, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", QUEUE_LOCK)
        .execute(&mut *tx)
        .await?;
    super::lock_app(&mut tx, app_id).await?;
    let applying = sqlx::query_scalar!(
        "SELECT id FROM deployments
          WHERE app_id = $1 AND status = 'applying' AND lease_expires_at > now()
          ORDER BY id LIMIT 1",
        app_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if applying.is_none() {
        sqlx::query!(
            "UPDATE apps SET deleting_since = coalesce(deleting_since, now()) WHERE id = $1",
            app_id
        )
        .execute(&mut *tx)
        .await?;
    }
    // Queued ones, and any a dead worker left applying: none may run again.
    sqlx::query!(
        "UPDATE deployments
            SET status = 'failed', reason = 'cancelled', lease_expires_at = NULL,
                message = 'cancelled: the app is being deleted', finished_at = now()
          WHERE app_id = $1 AND (status = 'pending'
                OR (status = 'applying' AND $2::bigint IS NULL))",
        app_id,
        applying
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(applying)
}
