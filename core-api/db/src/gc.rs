//! Garbage collection of the database (`loco-api gc`): audit events past retention,
//! expired or revoked credentials, and per app the deployments and revisions beyond the
//! newest N.
//!
//! What is kept, and why (the rules a rollback and a rebuild depend on):
//! - a deployment is kept when it is among the app's newest N, active (what the cluster
//!   runs) or unfinished (pending/applying: an apply is working on it);
//! - a revision is kept when it is among the app's newest N (the newest is the app's
//!   intended state, the base of its next change), a kept deployment points at it (the
//!   active one's included: rollback and rebuild render it), or one of loco's image
//!   records names its digest for this app (the registry janitor's view of what is in
//!   use; dropping the revision would orphan the push record's meaning).
//!
//! Which rows go is decided by [`plan`], a plain function over the app's rows; the
//! DELETEs repeat the reference checks in SQL, so a wrong plan can only drop less.
//! Each batch is one transaction under the app's advisory lock ([`super::lock_app`]),
//! so a deploy of the app never interleaves with its collection.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};

use super::{DbError, Tx};

/// What `gc` keeps and how it works through the rest.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Events created before this are dropped.
    pub events_before: DateTime<Utc>,
    /// API tokens and sessions that expired or were revoked before this are dropped.
    pub credentials_before: DateTime<Utc>,
    /// Deployments and revisions kept per app, newest first; at least 1.
    pub keep_per_app: usize,
    /// Rows deleted per transaction.
    pub batch: usize,
    /// How long to wait for an app's lock (an apply may hold it) before skipping the app
    /// until the next run.
    pub lock_timeout: Duration,
}

/// Counts of what was dropped (or, in a dry run, would be).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub events: u64,
    pub api_tokens: u64,
    pub sessions: u64,
    pub deployments: u64,
    pub revisions: u64,
    /// Apps whose lock was busy past the lock timeout; collected on a later run.
    pub apps_skipped_locked: u64,
}

/// One revision of an app as [`plan`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRow {
    pub id: i64,
    /// An image record (`images`) of this app names the revision's digest.
    pub image_referenced: bool,
}

/// One deployment of an app as [`plan`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    pub id: i64,
    pub revision_id: i64,
    pub active: bool,
    pub status: String,
}

/// The ids of one app's rows that may go, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub deployments: Vec<i64>,
    pub revisions: Vec<i64>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.deployments.is_empty() && self.revisions.is_empty()
    }
}

/// Decides which of one app's deployments and revisions may be dropped (see the module
/// doc for the rules). `keep` below 1 is treated as 1: the newest revision always stays.
pub fn plan(keep: usize, revisions: &[RevisionRow], deployments: &[DeploymentRow]) -> Plan {
    let keep = keep.max(1);
    let mut deps: Vec<&DeploymentRow> = deployments.iter().collect();
    deps.sort_by_key(|d| std::cmp::Reverse(d.id));
    let (mut referenced, mut drop_deps) = (HashSet::new(), vec![]);
    for (i, d) in deps.iter().enumerate() {
        if i < keep || d.active || matches!(d.status.as_str(), "pending" | "applying") {
            referenced.insert(d.revision_id);
        } else {
            drop_deps.push(d.id);
        }
    }

    let mut revs: Vec<&RevisionRow> = revisions.iter().collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.id));
    let mut drop_revs: Vec<i64> = revs
        .iter()
        .enumerate()
        .filter(|(i, r)| *i >= keep && !r.image_referenced && !referenced.contains(&r.id))
        .map(|(_, r)| r.id)
        .collect();
    drop_revs.sort_unstable();
    drop_deps.sort_unstable();
    Plan {
        deployments: drop_deps,
        revisions: drop_revs,
    }
}

/// Runs one collection. With `dry_run` nothing is deleted and the report says what
/// would be.
pub async fn run(pool: &PgPool, policy: &Policy, dry_run: bool) -> Result<Report, DbError> {
    let batch = i64::try_from(policy.batch.max(1)).unwrap_or(i64::MAX);
    let mut report = Report::default();
    if dry_run {
        report.events = count_events(pool, policy.events_before).await?;
        report.api_tokens = count_api_tokens(pool, policy.credentials_before).await?;
        report.sessions = count_sessions(pool, policy.credentials_before).await?;
    } else {
        report.events = drop_events(pool, policy.events_before, batch).await?;
        report.api_tokens = drop_api_tokens(pool, policy.credentials_before, batch).await?;
        report.sessions = drop_sessions(pool, policy.credentials_before, batch).await?;
    }
    let keep = i64::try_from(policy.keep_per_app.max(1)).unwrap_or(i64::MAX);
    let mut after = 0i64;
    loop {
        let apps = apps_over(pool, keep, after, 500).await?;
        let Some(&last) = apps.last() else { break };
        after = last;
        for app_id in apps {
            if dry_run {
                let mut conn = pool.acquire().await?;
                let p = plan_app(&mut conn, app_id, policy.keep_per_app).await?;
                report.deployments += p.deployments.len() as u64;
                report.revisions += p.revisions.len() as u64;
                continue;
            }
            match collect_app(pool, app_id, policy).await? {
                Some((deployments, revisions)) => {
                    report.deployments += deployments;
                    report.revisions += revisions;
                }
                None => report.apps_skipped_locked += 1,
            }
        }
    }
    Ok(report)
}

/// Apps (after `after`, ascending) with more than `keep` deployments or revisions: the
/// only ones [`plan`] can drop anything of.
async fn apps_over(pool: &PgPool, keep: i64, after: i64, limit: i64) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        "SELECT a.id FROM apps a
          WHERE a.id > $2
            AND ((SELECT count(*) FROM app_revisions r WHERE r.app_id = a.id) > $1
              OR (SELECT count(*) FROM deployments d WHERE d.app_id = a.id) > $1)
          ORDER BY a.id LIMIT $3",
        keep,
        after,
        limit
    )
    .fetch_all(pool)
    .await?)
}

async fn plan_app(db: &mut sqlx::PgConnection, app_id: i64, keep: usize) -> Result<Plan, DbError> {
    let revisions = sqlx::query_as!(
        RevisionRow,
        r#"SELECT r.id,
                  EXISTS (SELECT 1 FROM images i
                           WHERE i.digest = r.image_digest
                             AND (i.app_id = r.app_id OR (i.app_id IS NULL AND i.org_id = a.org_id))
                  ) AS "image_referenced!"
             FROM app_revisions r JOIN apps a ON a.id = r.app_id
            WHERE r.app_id = $1"#,
        app_id
    )
    .fetch_all(&mut *db)
    .await?;
    let deployments = sqlx::query_as!(
        DeploymentRow,
        "SELECT id, revision_id, active, status FROM deployments WHERE app_id = $1",
        app_id
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(plan(keep, &revisions, &deployments))
}

/// Collects one app in batches, each a transaction under the app's lock. `None` when
/// the lock stayed busy past the policy's timeout.
async fn collect_app(
    pool: &PgPool,
    app_id: i64,
    policy: &Policy,
) -> Result<Option<(u64, u64)>, DbError> {
    let batch = policy.batch.max(1);
    let (mut deployments, mut revisions) = (0u64, 0u64);
    loop {
        let mut tx = pool.begin().await?;
        if !lock_with_timeout(&mut tx, app_id, policy.lock_timeout).await? {
            return Ok(None);
        }
        let p = plan_app(&mut tx, app_id, policy.keep_per_app).await?;
        if p.is_empty() {
            tx.commit().await?;
            break;
        }
        let deps: Vec<i64> = p.deployments.iter().copied().take(batch).collect();
        let dropped_deps = delete_deployments(&mut tx, app_id, &deps).await?;
        // A revision's deployments must be gone before it can go: only once every planned
        // deployment is deleted are the planned revisions free of references.
        let dropped_revs = if deps.len() == p.deployments.len() {
            let revs: Vec<i64> = p
                .revisions
                .iter()
                .copied()
                .take(batch - deps.len())
                .collect();
            delete_revisions(&mut tx, app_id, &revs).await?
        } else {
            0
        };
        tx.commit().await?;
        deployments += dropped_deps;
        revisions += dropped_revs;
        let planned = p.deployments.len() + p.revisions.len();
        let done = (dropped_deps + dropped_revs) as usize;
        if done == planned {
            break;
        }
        if done == 0 {
            // The SQL guards refused what the plan chose (a concurrent change, or a
            // reference the plan missed): stop rather than loop; the next run retries.
            tracing::warn!(
                app_id,
                "gc: planned rows were refused by the reference checks; left for the next run"
            );
            break;
        }
    }
    Ok(Some((deployments, revisions)))
}

/// Takes the app's lock, waiting at most `timeout`; false when it stayed busy.
async fn lock_with_timeout(
    tx: &mut Tx<'_>,
    app_id: i64,
    timeout: Duration,
) -> Result<bool, DbError> {
    let ms = format!("{}ms", timeout.as_millis().max(1));
    sqlx::query_scalar!(
        r#"SELECT set_config('lock_timeout', $1, true) AS "set!""#,
        ms
    )
    .fetch_one(&mut **tx)
    .await?;
    match super::lock_app(tx, app_id).await {
        Ok(()) => Ok(true),
        // 55P03 lock_not_available: lock_timeout expired while an apply held the lock.
        Err(DbError::Query(e))
            if e.as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "55P03") =>
        {
            tracing::info!(
                app_id,
                "gc: app lock busy; skipping the app until the next run"
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn delete_deployments(tx: &mut Tx<'_>, app_id: i64, ids: &[i64]) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query!(
        "DELETE FROM deployments
          WHERE app_id = $1 AND id = ANY($2) AND NOT active AND status NOT IN ('pending', 'applying')",
        app_id,
        ids
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes revisions of the app, re-checking in SQL that none is the newest, pointed at
/// by a deployment or named by an image record.
async fn delete_revisions(tx: &mut Tx<'_>, app_id: i64, ids: &[i64]) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query!(
        "DELETE FROM app_revisions r
          WHERE r.app_id = $1 AND r.id = ANY($2)
            AND r.id <> (SELECT max(id) FROM app_revisions WHERE app_id = $1)
            AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.revision_id = r.id)
            AND NOT EXISTS (SELECT 1 FROM images i JOIN apps a ON a.id = r.app_id
                             WHERE i.digest = r.image_digest
                               AND (i.app_id = r.app_id OR (i.app_id IS NULL AND i.org_id = a.org_id)))",
        app_id,
        ids
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Repeats a bounded DELETE (each statement its own transaction) until a batch comes
/// back short.
macro_rules! drain {
    ($pool:expr, $batch:expr, $query:expr) => {{
        let mut total = 0u64;
        loop {
            let n = $query.execute($pool).await?.rows_affected();
            total += n;
            if n < $batch as u64 {
                break;
            }
        }
        total
    }};
}

async fn drop_events(pool: &PgPool, before: DateTime<Utc>, batch: i64) -> Result<u64, DbError> {
    Ok(drain!(
        pool,
        batch,
        sqlx::query!(
            "DELETE FROM events WHERE id IN
               (SELECT id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
            before,
            batch
        )
    ))
}

async fn drop_api_tokens(pool: &PgPool, before: DateTime<Utc>, batch: i64) -> Result<u64, DbError> {
    Ok(drain!(
        pool,
        batch,
        sqlx::query!(
            "DELETE FROM api_tokens WHERE id IN
               (SELECT id FROM api_tokens WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2)",
            before,
            batch
        )
    ))
}

async fn drop_sessions(pool: &PgPool, before: DateTime<Utc>, batch: i64) -> Result<u64, DbError> {
    Ok(drain!(
        pool,
        batch,
        sqlx::query!(
            "DELETE FROM sessions WHERE id IN
               (SELECT id FROM sessions WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2)",
            before,
            batch
        )
    ))
}

async fn count_events(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> Result<u64, DbError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM events WHERE created_at < $1"#,
        before
    )
    .fetch_one(db)
    .await?;
    Ok(n.max(0) as u64)
}

async fn count_api_tokens(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> Result<u64, DbError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM api_tokens WHERE expires_at < $1 OR revoked_at < $1"#,
        before
    )
    .fetch_one(db)
    .await?;
    Ok(n.max(0) as u64)
}

async fn count_sessions(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> Result<u64, DbError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM sessions WHERE expires_at < $1 OR revoked_at < $1"#,
        before
    )
    .fetch_one(db)
    .await?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: i64) -> RevisionRow {
        RevisionRow {
            id,
            image_referenced: false,
        }
    }

    fn dep(id: i64, revision_id: i64, status: &str) -> DeploymentRow {
        DeploymentRow {
            id,
            revision_id,
            active: status == "ready",
            status: status.to_string(),
        }
    }

    #[test]
    fn keeps_the_newest_n_of_each() {
        let revs: Vec<_> = (1..=5).map(rev).collect();
        let deps: Vec<_> = (1..=5).map(|i| dep(i, i, "superseded")).collect();
        let p = plan(2, &revs, &deps);
        assert_eq!(p.deployments, [1, 2, 3]);
        assert_eq!(p.revisions, [1, 2, 3]);
    }

    #[test]
    fn an_old_active_deployment_and_its_revision_stay() {
        let revs: Vec<_> = (1..=5).map(rev).collect();
        let mut deps = vec![dep(1, 1, "ready")];
        deps.extend((2..=5).map(|i| dep(i, i, "failed")));
        let p = plan(1, &revs, &deps);
        assert_eq!(p.deployments, [2, 3, 4]);
        assert_eq!(p.revisions, [2, 3, 4]);
    }

    #[test]
    fn unfinished_deployments_and_image_referenced_revisions_stay() {
        let mut revs: Vec<_> = (1..=4).map(rev).collect();
        revs[0].image_referenced = true;
        let deps = vec![
            dep(1, 2, "applying"),
            dep(2, 3, "pending"),
            dep(3, 4, "failed"),
        ];
        let p = plan(1, &revs, &deps);
        assert!(p.deployments.is_empty(), "{p:?}");
        assert!(p.revisions.is_empty(), "{p:?}");
    }

    #[test]
    fn a_revision_of_a_dropped_deployment_goes_with_it_and_keep_zero_means_one() {
        let revs: Vec<_> = (1..=3).map(rev).collect();
        let deps = vec![dep(1, 1, "superseded"), dep(2, 1, "superseded")];
        let p = plan(0, &revs, &deps);
        // Deployment 2 is the newest (kept) and points at revision 1.
        assert_eq!(p.deployments, [1]);
        assert_eq!(p.revisions, [2]);
    }
}
