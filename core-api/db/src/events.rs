//! The audit trail: who did what to which org, workspace, app or deployment, and why.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::{DbError, Page};

/// Who caused an event; stored as `user:<id>`, `token:<id>` or `system:<component>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    Token(i64),
    System(&'static str),
}

impl Default for Actor {
    fn default() -> Self {
        Actor::System("loco")
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::System(name) => write!(f, "system:{name}"),
        }
    }
}

impl Actor {
    /// The user behind an actor, for `created_by` columns.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User(id) => Some(*id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub org_id: i64,
    pub workspace_id: Option<i64>,
    pub app_id: Option<i64>,
    pub deployment_id: Option<i64>,
    pub actor: Actor,
    /// snake_case, e.g. `app_deleted`, `deployment_failed`.
    pub reason: &'static str,
    /// For people; never a secret value.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub org_id: i64,
    pub workspace_id: Option<i64>,
    pub app_id: Option<i64>,
    pub deployment_id: Option<i64>,
    pub actor: String,
    pub reason: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

pub async fn record(db: impl PgExecutor<'_>, e: &NewEvent) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO events (org_id, workspace_id, app_id, deployment_id, actor, reason, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        e.org_id,
        e.workspace_id,
        e.app_id,
        e.deployment_id,
        e.actor.to_string(),
        e.reason,
        e.message
    )
    .fetch_one(db)
    .await?)
}

/// Records one event in every org `user_id` is a member of: what happens to a person's
/// logins (a session started or ended, a stolen refresh token replayed) concerns each
/// org they can act in, and there is no org-less audit trail. Returns how many rows.
pub async fn record_for_member(
    db: impl PgExecutor<'_>,
    user_id: i64,
    actor: &Actor,
    reason: &str,
    message: &str,
) -> Result<u64, DbError> {
    Ok(sqlx::query!(
        "INSERT INTO events (org_id, actor, reason, message)
         SELECT org_id, $2, $3, $4 FROM memberships WHERE user_id = $1",
        user_id,
        actor.to_string(),
        reason,
        message
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Narrows a listing to one workspace, app or deployment of the org.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub workspace_id: Option<i64>,
    pub app_id: Option<i64>,
    pub deployment_id: Option<i64>,
}

/// Events of an org, newest first; `page.after` is the last id of the previous page.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    filter: EventFilter,
    page: Page,
) -> Result<Vec<Event>, DbError> {
    Ok(sqlx::query_as!(
        Event,
        "SELECT id, org_id, workspace_id, app_id, deployment_id, actor, reason, message, created_at
           FROM events
          WHERE org_id = $1
            AND ($2::bigint IS NULL OR workspace_id = $2)
            AND ($3::bigint IS NULL OR app_id = $3)
            AND ($4::bigint IS NULL OR deployment_id = $4)
            AND ($5::bigint IS NULL OR id < $5)
          ORDER BY id DESC
          LIMIT $6",
        org_id,
        filter.workspace_id,
        filter.app_id,
        filter.deployment_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}

/// A deployment's events oldest first, after event id `after` (0: from the start): its
/// progress, as the API returns and streams it.
pub async fn of_deployment(
    db: impl PgExecutor<'_>,
    org_id: i64,
    deployment_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>, DbError> {
    Ok(sqlx::query_as!(
        Event,
        "SELECT id, org_id, workspace_id, app_id, deployment_id, actor, reason, message, created_at
           FROM events
          WHERE org_id = $1 AND deployment_id = $2 AND id > $3
          ORDER BY id
          LIMIT $4",
        org_id,
        deployment_id,
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}
