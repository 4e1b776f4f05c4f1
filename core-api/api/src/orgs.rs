//! Orgs, their members, and the regions workspaces can be placed in.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{OrgAccess, Principal};
use super::error::{ApiError, ErrorBody};
use super::extract::{Id, Json, Query};
use super::{Created, Ctx, validate};
use loco_db::tokens::Scope;
use loco_db::{Page, clusters, orgs};

#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    pub id: i64,
    pub name: String,
    /// The caller's role in the org.
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    pub orgs: Vec<Org>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// DNS-1123 label, unique across loco.
    pub name: String,
}

/// Keyset pagination: `after` is the last id of the previous page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[param(value_type = Option<i64>, minimum = 1)]
    pub after: Option<Id>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl PageParams {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = validate::limit(self.limit)?;
        Ok(match self.after {
            Some(Id(after)) => Page::after(after, limit),
            None => Page::first(limit),
        })
    }
}

/// The orgs the caller's credential reaches (an API token: its own org; a session: the
/// user's orgs, the first 200 by id).
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])),
    responses((status = 200, body = OrgList), (status = 401, body = ErrorBody)))]
pub async fn list(State(ctx): State<Ctx>, p: Principal) -> Result<axum::Json<OrgList>, ApiError> {
    let reached = match p.reachable_org() {
        Some(org_id) => vec![orgs::get_org(ctx.db(), org_id).await?],
        None => orgs::list_orgs_of_user(ctx.db(), p.user_id, Page::first(Page::MAX_LIMIT)).await?,
    };
    let mut out = vec![];
    for o in reached {
        if let Some(role) = orgs::role_of(ctx.db(), o.id, p.user_id).await? {
            out.push(Org {
                id: o.id,
                name: o.name,
                role: role.as_str().to_string(),
                created_at: o.created_at,
            });
        }
    }
    Ok(axum::Json(OrgList { orgs: out }))
}

/// Creates an org with the caller as its owner. An API token keeps reaching only its
/// own org; reach the new one with a token minted for it.
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])),
    request_body = NewOrg,
    responses((status = 201, body = Created), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<Ctx>,
    p: Principal,
    Json(body): Json<NewOrg>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    p.require_scope(Scope::Admin)?;
    validate::dns_label("name", &body.name)?;
    let mut tx = ctx.db().begin().await.map_err(loco_db::DbError::from)?;
    let id = orgs::create_org(&mut tx, &body.name, p.user_id).await?;
    tx.commit().await.map_err(loco_db::DbError::from)?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}", tag = "orgs", security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody)))]
pub async fn get(State(ctx): State<Ctx>, a: OrgAccess) -> Result<axum::Json<Org>, ApiError> {
    let o = orgs::get_org(ctx.db(), a.org_id).await?;
    Ok(axum::Json(Org {
        id: o.id,
        name: o.name,
        role: a.role.as_str().to_string(),
        created_at: o.created_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub provider: String,
    pub login: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<Member>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "orgs", security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), PageParams),
    responses((status = 200, body = MemberList), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<MemberList>, ApiError> {
    let page = q.page()?;
    let rows = orgs::members(ctx.db(), a.org_id, page).await?;
    let next_after = next_after(rows.len(), page, rows.last().map(|m| m.user_id));
    Ok(axum::Json(MemberList {
        members: rows
            .into_iter()
            .map(|m| Member {
                user_id: m.user_id,
                provider: m.provider,
                login: m.login,
                role: m.role,
                created_at: m.created_at,
            })
            .collect(),
        next_after,
    }))
}

/// The id to continue from when the page came back full.
pub fn next_after(len: usize, page: Page, last: Option<i64>) -> Option<i64> {
    if i64::try_from(len).is_ok_and(|n| n == page.limit) {
        last
    } else {
        None
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Region {
    pub id: i64,
    pub provider: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionList {
    pub regions: Vec<Region>,
}

/// Regions a workspace can be placed in.
#[utoipa::path(get, path = "/v1/regions", tag = "regions", security(("bearer" = [])),
    responses((status = 200, body = RegionList), (status = 401, body = ErrorBody)))]
pub async fn regions(
    State(ctx): State<Ctx>,
    _p: Principal,
) -> Result<axum::Json<RegionList>, ApiError> {
    let regions = clusters::list_regions(ctx.db())
        .await?
        .into_iter()
        .map(|r| Region {
            id: r.id,
            provider: r.provider,
            name: r.name,
        })
        .collect();
    Ok(axum::Json(RegionList { regions }))
}
