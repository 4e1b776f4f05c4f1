//! Deployments: a revision being applied, its status, and the inventory of objects it
//! applied. Exactly one deployment per app is active (a partial unique index says so);
//! [`activate`] moves that mark and supersedes the previous one in one transaction.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::events::{self, Actor, NewEvent};
use super::{DbError, Page, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Applying,
    Ready,
    Failed,
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Applying => "applying",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Superseded => "superseded",
        }
    }

    /// The statuses a deployment may reach this one from through [`set_status`]; ready
    /// is reached only through [`activate`], superseded only as a side effect of it.
    fn allowed_from(self) -> &'static [&'static str] {
        match self {
            Status::Applying => &["pending"],
            Status::Failed => &["pending", "applying"],
            Status::Pending | Status::Ready | Status::Superseded => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: i64,
    pub app_id: i64,
    pub revision_id: i64,
    /// The deployment whose pod template this one runs; `None` means its own. See
    /// [`Deployment::template_id`].
    pub template_deployment_id: Option<i64>,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub inventory: serde_json::Value,
    pub active: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Deployment {
    /// The id of the deployment that introduced the pod template this one runs (its
    /// LOCO_DEPLOYMENT_ID): its own, unless it only changed the replica count or the
    /// sleep state of the deployment it started from, which then rolls no pods.
    pub fn template_id(&self) -> i64 {
        self.template_deployment_id.unwrap_or(self.id)
    }
}

struct Owner {
    org_id: i64,
    workspace_id: i64,
}

async fn owner_of_app(db: impl PgExecutor<'_>, app_id: i64) -> Result<Owner, DbError> {
    sqlx::query_as!(
        Owner,
        "SELECT org_id, workspace_id FROM apps WHERE id = $1",
        app_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("app"))
}

/// Records an audit event of one of an app's deployments (what the progress stream reads).
pub(crate) async fn record_event(
    tx: &mut Tx<'_>,
    app_id: i64,
    deployment_id: i64,
    actor: Actor,
    reason: &'static str,
    message: String,
) -> Result<(), DbError> {
    let owner = owner_of_app(&mut **tx, app_id).await?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id: owner.org_id,
            workspace_id: Some(owner.workspace_id),
            app_id: Some(app_id),
            deployment_id: Some(deployment_id),
            actor,
            reason,
            message: message.chars().take(4000).collect(),
        },
    )
    .await
    .map(|_| ())
}

/// Creates a pending deployment of one of the app's revisions and records it. It starts
/// a new pod template (its own id is its LOCO_DEPLOYMENT_ID).
pub async fn create(
    tx: &mut Tx<'_>,
    app_id: i64,
    revision_id: i64,
    actor: &Actor,
) -> Result<i64, DbError> {
    insert(tx, app_id, revision_id, None, actor).await
}

/// Like [`create`], for a revision whose pod template is the same as the one deployment
/// `template_deployment_id` runs (pass that one's [`Deployment::template_id`]).
pub async fn create_keeping_template(
    tx: &mut Tx<'_>,
    app_id: i64,
    revision_id: i64,
    template_deployment_id: i64,
    actor: &Actor,
) -> Result<i64, DbError> {
    insert(tx, app_id, revision_id, Some(template_deployment_id), actor).await
}

async fn insert(
    tx: &mut Tx<'_>,
    app_id: i64,
    revision_id: i64,
    template_deployment_id: Option<i64>,
    actor: &Actor,
) -> Result<i64, DbError> {
    super::lock_app(tx, app_id).await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO deployments (app_id, revision_id, template_deployment_id, created_by)
         VALUES ($1, $2, $3, $4) RETURNING id",
        app_id,
        revision_id,
        template_deployment_id,
        actor.user_id()
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match e.as_database_error() {
        // The composite key refuses a revision of another app.
        Some(db) if db.is_foreign_key_violation() => DbError::NotFound("revision"),
        _ => DbError::from(e),
    })?;
    record_event(
        tx,
        app_id,
        id,
        actor.clone(),
        "deployment_created",
        format!("deployment of revision {revision_id} created"),
    )
    .await?;
    Ok(id)
}

/// Moves a deployment to applying or failed (with a snake_case reason and a message),
/// and records the change.
pub async fn set_status(
    tx: &mut Tx<'_>,
    deployment_id: i64,
    to: Status,
    reason: Option<&str>,
    message: Option<&str>,
) -> Result<(), DbError> {
    let app_id = app_of(&mut **tx, deployment_id).await?;
    super::lock_app(tx, app_id).await?;
    let from = sqlx::query_scalar!(
        "SELECT status FROM deployments WHERE id = $1",
        deployment_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if !to.allowed_from().contains(&from.as_str()) {
        return Err(DbError::InvalidTransition {
            from,
            to: to.as_str(),
        });
    }
    sqlx::query!(
        "UPDATE deployments
            SET status = $2, reason = $3, message = $4,
                started_at = CASE WHEN $2 = 'applying' THEN now() ELSE started_at END,
                finished_at = CASE WHEN $2 = 'failed' THEN now() ELSE finished_at END
          WHERE id = $1",
        deployment_id,
        to.as_str(),
        reason,
        message
    )
    .execute(&mut **tx)
    .await?;
    record_event(
        tx,
        app_id,
        deployment_id,
        Actor::System("apply"),
        match to {
            Status::Failed => "deployment_failed",
            _ => "deployment_applying",
        },
        message
            .map(str::to_string)
            .unwrap_or_else(|| format!("deployment {deployment_id} is {}", to.as_str())),
    )
    .await?;
    Ok(())
}

/// Marks a deployment ready and active, and the app's previously active one superseded,
/// in the caller's transaction under the app's lock.
pub async fn activate(tx: &mut Tx<'_>, deployment_id: i64) -> Result<(), DbError> {
    let app_id = app_of(&mut **tx, deployment_id).await?;
    super::lock_app(tx, app_id).await?;
    let from = sqlx::query_scalar!(
        "SELECT status FROM deployments WHERE id = $1",
        deployment_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if !["pending", "applying"].contains(&from.as_str()) {
        return Err(DbError::InvalidTransition { from, to: "ready" });
    }
    let superseded = sqlx::query_scalar!(
        "UPDATE deployments SET active = false, status = 'superseded'
          WHERE app_id = $1 AND active RETURNING id",
        app_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    sqlx::query!(
        "UPDATE deployments
            SET status = 'ready', active = true, reason = NULL,
                started_at = coalesce(started_at, now()), finished_at = now()
          WHERE id = $1",
        deployment_id
    )
    .execute(&mut **tx)
    .await?;
    record_event(
        tx,
        app_id,
        deployment_id,
        Actor::System("apply"),
        "deployment_ready",
        match superseded {
            Some(old) => format!("deployment {deployment_id} is ready; it supersedes {old}"),
            None => format!("deployment {deployment_id} is ready"),
        },
    )
    .await?;
    Ok(())
}

/// Records the objects a deployment applied (what the next one prunes against).
pub async fn set_inventory(
    db: impl PgExecutor<'_>,
    deployment_id: i64,
    inventory: &serde_json::Value,
) -> Result<(), DbError> {
    let done = sqlx::query!(
        "UPDATE deployments SET inventory = $2 WHERE id = $1",
        deployment_id,
        inventory
    )
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound("deployment"));
    }
    Ok(())
}

/// The inventories the next deployment of an app prunes against, newest first: the
/// active deployment's and those of every deployment that failed after it (what a failed
/// deploy applied and its revert did not remove stays in the cluster until then).
pub async fn prune_inventories(
    db: impl PgExecutor<'_>,
    app_id: i64,
) -> Result<Vec<(i64, serde_json::Value)>, DbError> {
    let rows = sqlx::query!(
        "SELECT d.id, d.inventory FROM deployments d
          WHERE d.app_id = $1
            AND (d.active OR (d.status = 'failed' AND d.id > coalesce(
                    (SELECT a.id FROM deployments a WHERE a.app_id = $1 AND a.active), 0)))
          ORDER BY d.id DESC",
        app_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.inventory)).collect())
}

/// The newest deployment of a revision (each change writes one revision and one
/// deployment of it).
pub async fn of_revision(
    db: impl PgExecutor<'_>,
    revision_id: i64,
) -> Result<Option<Deployment>, DbError> {
    Ok(sqlx::query_as!(
        Deployment,
        "SELECT id, app_id, revision_id, template_deployment_id, status, reason, message,
                inventory, active, created_by, created_at, started_at, finished_at
           FROM deployments WHERE revision_id = $1 ORDER BY id DESC LIMIT 1",
        revision_id
    )
    .fetch_optional(db)
    .await?)
}

async fn app_of(db: impl PgExecutor<'_>, deployment_id: i64) -> Result<i64, DbError> {
    sqlx::query_scalar!(
        "SELECT app_id FROM deployments WHERE id = $1",
        deployment_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("deployment"))
}

/// A deployment of an app of `org_id`; another org's reads as not found.
pub async fn get(
    db: impl PgExecutor<'_>,
    org_id: i64,
    deployment_id: i64,
) -> Result<Deployment, DbError> {
    sqlx::query_as!(
        Deployment,
        "SELECT d.id, d.app_id, d.revision_id, d.template_deployment_id, d.status, d.reason,
                d.message, d.inventory, d.active, d.created_by, d.created_at, d.started_at, d.finished_at
           FROM deployments d JOIN apps a ON a.id = d.app_id
          WHERE a.org_id = $1 AND d.id = $2",
        org_id,
        deployment_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("deployment"))
}

/// The app's active deployment, if any.
pub async fn active(db: impl PgExecutor<'_>, app_id: i64) -> Result<Option<Deployment>, DbError> {
    Ok(sqlx::query_as!(
        Deployment,
        "SELECT id, app_id, revision_id, template_deployment_id, status, reason, message,
                inventory, active, created_by, created_at, started_at, finished_at
           FROM deployments WHERE app_id = $1 AND active",
        app_id
    )
    .fetch_optional(db)
    .await?)
}

/// Deployments of an app of `org_id`, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    app_id: i64,
    page: Page,
) -> Result<Vec<Deployment>, DbError> {
    Ok(sqlx::query_as!(
        Deployment,
        "SELECT d.id, d.app_id, d.revision_id, d.template_deployment_id, d.status, d.reason,
                d.message, d.inventory, d.active, d.created_by, d.created_at, d.started_at, d.finished_at
           FROM deployments d JOIN apps a ON a.id = d.app_id
          WHERE a.org_id = $1 AND d.app_id = $2 AND ($3::bigint IS NULL OR d.id < $3)
          ORDER BY d.id DESC LIMIT $4",
        org_id,
        app_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}
