//! Workspaces: an org's unit of placement, pinned to one cluster.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::events::{self, Actor, NewEvent};
use super::{DbError, Page, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: i64,
    pub org_id: i64,
    pub cluster_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub async fn create(
    tx: &mut Tx<'_>,
    org_id: i64,
    cluster_id: i64,
    name: &str,
    actor: &Actor,
) -> Result<i64, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO workspaces (org_id, cluster_id, name) VALUES ($1, $2, $3) RETURNING id",
        org_id,
        cluster_id,
        name
    )
    .fetch_one(&mut **tx)
    .await?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id,
            workspace_id: Some(id),
            actor: actor.clone(),
            reason: "workspace_created",
            message: format!("workspace {name} created"),
            ..Default::default()
        },
    )
    .await?;
    Ok(id)
}

/// A workspace of `org_id`; another org's reads as not found.
pub async fn get(
    db: impl PgExecutor<'_>,
    org_id: i64,
    workspace_id: i64,
) -> Result<Workspace, DbError> {
    sqlx::query_as!(
        Workspace,
        "SELECT id, org_id, cluster_id, name, created_at FROM workspaces WHERE org_id = $1 AND id = $2",
        org_id,
        workspace_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("workspace"))
}

pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    page: Page,
) -> Result<Vec<Workspace>, DbError> {
    Ok(sqlx::query_as!(
        Workspace,
        "SELECT id, org_id, cluster_id, name, created_at FROM workspaces
          WHERE org_id = $1 AND ($2::bigint IS NULL OR id > $2)
          ORDER BY id LIMIT $3",
        org_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}

/// Deletes a workspace with all its apps, their revisions, deployments, env values and
/// data keys, and records the deletion. Each app's lock is taken first so no writer of
/// one of its apps is midway.
pub async fn delete(
    tx: &mut Tx<'_>,
    org_id: i64,
    workspace_id: i64,
    actor: &Actor,
) -> Result<(), DbError> {
    let ws = sqlx::query!(
        "SELECT name FROM workspaces WHERE org_id = $1 AND id = $2 FOR UPDATE",
        org_id,
        workspace_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("workspace"))?;
    let app_ids = sqlx::query_scalar!(
        "SELECT id FROM apps WHERE workspace_id = $1 ORDER BY id",
        workspace_id
    )
    .fetch_all(&mut **tx)
    .await?;
    // In id order, the same order every multi-app writer uses, so two never deadlock.
    for app_id in &app_ids {
        super::lock_app(tx, *app_id).await?;
    }
    sqlx::query!("DELETE FROM workspaces WHERE id = $1", workspace_id)
        .execute(&mut **tx)
        .await?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id,
            workspace_id: Some(workspace_id),
            actor: actor.clone(),
            reason: "workspace_deleted",
            message: format!(
                "workspace {} deleted with {} app(s) and their data keys",
                ws.name,
                app_ids.len()
            ),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}
