//! The audit trail of an org, newest first, filtered by workspace or app.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::OrgAccess;
use super::error::{ApiError, ErrorBody};
use super::extract::{Id, Query};
use super::orgs::next_after;
use super::{Ctx, validate};
use loco_db::Page;
use loco_db::events::{self, EventFilter};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    #[param(value_type = Option<i64>, minimum = 1)]
    pub workspace_id: Option<Id>,
    #[param(value_type = Option<i64>, minimum = 1)]
    pub app_id: Option<Id>,
    /// The `next_after` of the previous page: events older than this id.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub after: Option<Id>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: i64,
    pub workspace_id: Option<i64>,
    pub app_id: Option<i64>,
    pub deployment_id: Option<i64>,
    /// `user:<id>`, `token:<id>` or `system:<component>`.
    pub actor: String,
    pub reason: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<Event>,
    /// Pass as `after` for the next (older) page; absent on the last page.
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/events", tag = "events",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), EventParams),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Query(q): Query<EventParams>,
) -> Result<axum::Json<EventList>, ApiError> {
    let limit = validate::limit(q.limit)?;
    let page = match q.after {
        Some(Id(after)) => Page::after(after, limit),
        None => Page::first(limit),
    };
    let filter = EventFilter {
        workspace_id: q.workspace_id.map(|i| i.0),
        app_id: q.app_id.map(|i| i.0),
        deployment_id: None,
    };
    let rows = events::list(ctx.db(), a.org_id, filter, page).await?;
    let next_after = next_after(rows.len(), page, rows.last().map(|e| e.id));
    Ok(axum::Json(EventList {
        events: rows
            .into_iter()
            .map(|e| Event {
                id: e.id,
                workspace_id: e.workspace_id,
                app_id: e.app_id,
                deployment_id: e.deployment_id,
                actor: e.actor,
                reason: e.reason,
                message: e.message,
                created_at: e.created_at,
            })
            .collect(),
        next_after,
    }))
}
