//! Workspaces: an org's unit of placement, pinned to one cluster of a region.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::OrgAccess;
use super::error::{ApiError, ErrorBody};
use super::extract::{Id, Json, Path, Query};
use super::orgs::{PageParams, next_after};
use super::{Created, Ctx, validate};
use loco_db::tokens::Scope;
use loco_db::{DbError, clusters, workspaces};

#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub cluster_id: i64,
    pub created_at: DateTime<Utc>,
}

impl From<workspaces::Workspace> for Workspace {
    fn from(w: workspaces::Workspace) -> Self {
        Workspace {
            id: w.id,
            org_id: w.org_id,
            name: w.name,
            cluster_id: w.cluster_id,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<Workspace>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// DNS-1123 label, unique in the org.
    pub name: String,
    /// A region from GET /v1/regions; loco picks a cluster there.
    pub region_id: i64,
}

#[derive(Debug, Deserialize)]
pub struct WorkspacePath {
    #[allow(dead_code)]
    org_id: Id,
    workspace_id: Id,
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/workspaces", tag = "workspaces",
    security(("bearer" = [])), params(("org_id" = i64, Path, minimum = 1), PageParams),
    responses((status = 200, body = WorkspaceList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<WorkspaceList>, ApiError> {
    let page = q.page()?;
    let rows = workspaces::list(ctx.db(), a.org_id, page).await?;
    let next_after = next_after(rows.len(), page, rows.last().map(|w| w.id));
    Ok(axum::Json(WorkspaceList {
        workspaces: rows.into_iter().map(Workspace::from).collect(),
        next_after,
    }))
}

/// Creates a workspace on a healthy (or not yet probed) cluster of the region. Needs
/// the admin or owner role.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/workspaces", tag = "workspaces",
    security(("bearer" = [])), params(("org_id" = i64, Path, minimum = 1)),
    request_body = NewWorkspace,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    a.require(Scope::Admin)?;
    validate::dns_label("name", &body.name)?;
    let candidates: Vec<_> = clusters::list(ctx.db())
        .await?
        .into_iter()
        .filter(|c| c.region_id == body.region_id)
        .collect();
    let cluster = candidates
        .iter()
        .find(|c| c.status == "healthy")
        .or_else(|| candidates.iter().find(|c| c.status == "unknown"))
        .ok_or_else(|| {
            ApiError::invalid(
                "region_id",
                "no cluster in this region can take a workspace now",
                "pick another region from GET /v1/regions, or ask the operator to add or repair a cluster there",
            )
        })?;
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    let id = workspaces::create(&mut tx, a.org_id, cluster.id, &body.name, &a.actor()).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/workspaces/{workspace_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("workspace_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<WorkspacePath>,
) -> Result<axum::Json<Workspace>, ApiError> {
    let w = workspaces::get(ctx.db(), a.org_id, p.workspace_id.0).await?;
    Ok(axum::Json(w.into()))
}

/// Deletes a workspace with all its apps: each app's namespace in the cluster first
/// (through apply, as deleting an app does), then the rows, env values and data keys.
/// Needs the admin or owner role; refused while a deployment of the workspace runs.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/workspaces/{workspace_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("workspace_id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<WorkspacePath>,
) -> Result<StatusCode, ApiError> {
    // Looked up before the role check: another tenant's workspace is a 404 whatever
    // the caller's role, and a 403 only ever concerns the caller's own org's objects.
    workspaces::get(ctx.db(), a.org_id, p.workspace_id.0).await?;
    a.require(Scope::Admin)?;
    // The cluster first: rows deleted before the namespaces would orphan them (with
    // their plaintext env Secrets) where no later prune can reach.
    ctx.deployer
        .remove_workspace(a.org_id, p.workspace_id.0)
        .await?;
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    workspaces::delete(&mut tx, a.org_id, p.workspace_id.0, &a.actor()).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
