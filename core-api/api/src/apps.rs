//! Apps and their env. Env is write-only: values go in sealed with the app's data key
//! and never come out of the API; reads return names and revision ids.
//!
//! Handlers look an object up before checking the caller's role, so another tenant's
//! object is a 404 whatever the role, and a 403 only ever concerns the caller's own org.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
use loco_crypto::Secret;
use loco_db::revisions;
use loco_db::tokens::Scope;
use loco_db::{DbError, apps, workspaces};
use loco_deploy::request::{Change, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Grpc,
    Tcp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Kubernetes port name: 1 to 15 characters of a-z, 0-9 and '-'.
    pub name: String,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    pub protocol: Protocol,
    /// Whether the gateway routes the app's host + path prefix to this port.
    #[serde(default)]
    pub routed: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// DNS-1123 label, unique in the workspace.
    pub name: String,
    /// The route's host; host + path prefix are unique across loco.
    pub host: String,
    /// Defaults to "/".
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub sleep_enabled: bool,
    /// Idle time before the app sleeps, 60 s to 7 days; defaults to 1800.
    #[schema(minimum = 60, maximum = 604800)]
    pub sleep_idle_window_seconds: Option<i64>,
}

pub const MAX_PORTS: usize = 16;

fn validate_ports(ports: &[Port]) -> Result<(), ApiError> {
    if ports.len() > MAX_PORTS {
        return Err(ApiError::invalid(
            "ports",
            format!("at most {MAX_PORTS} ports"),
            "drop ports the app does not serve",
        ));
    }
    let (mut names, mut numbers) = (BTreeSet::new(), BTreeSet::new());
    for p in ports {
        validate::dns_label("ports[].name", &p.name)?;
        if p.name.len() > 15 {
            return Err(ApiError::invalid(
                "ports[].name",
                "must be at most 15 characters (a Kubernetes port name)",
                "shorten the port name, e.g. \"http\"",
            ));
        }
        validate::range(
            "ports[].port",
            p.port,
            1..=65535,
            "use the port the app listens on",
        )?;
        if !names.insert(&p.name) || !numbers.insert(p.port) {
            return Err(ApiError::invalid(
                "ports",
                "port names and numbers must be unique",
                "list each port once",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct App {
    pub id: i64,
    pub org_id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub kind: String,
    pub host: String,
    pub path_prefix: String,
    #[schema(value_type = Vec<Port>)]
    pub ports: serde_json::Value,
    pub sleep_enabled: bool,
    pub sleep_idle_window_seconds: i32,
    /// The newest revision (the app's intended state); only on GET of one app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<apps::App> for App {
    fn from(a: apps::App) -> Self {
        App {
            id: a.id,
            org_id: a.org_id,
            workspace_id: a.workspace_id,
            name: a.name,
            kind: a.kind,
            host: a.host,
            path_prefix: a.path_prefix,
            ports: a.ports,
            sleep_enabled: a.sleep_enabled,
            sleep_idle_window_seconds: a.sleep_idle_window_seconds,
            current_revision_id: None,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<App>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct WorkspacePath {
    #[allow(dead_code)]
    org_id: Id,
    workspace_id: Id,
}

#[derive(Debug, Deserialize)]
pub struct AppPath {
    #[allow(dead_code)]
    org_id: Id,
    app_id: Id,
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("workspace_id" = i64, Path, minimum = 1), PageParams),
    responses((status = 200, body = AppList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<WorkspacePath>,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<AppList>, ApiError> {
    let page = q.page()?;
    let rows = apps::list(ctx.db(), a.org_id, p.workspace_id.0, page).await?;
    if rows.is_empty() {
        // Only an empty page needs to tell "no apps" from "no such workspace" (404);
        // a page with rows proves the workspace is the org's (the query filters by both).
        workspaces::get(ctx.db(), a.org_id, p.workspace_id.0).await?;
    }
    let next_after = next_after(rows.len(), page, rows.last().map(|a| a.id));
    Ok(axum::Json(AppList {
        apps: rows.into_iter().map(App::from).collect(),
        next_after,
    }))
}

/// Creates an app with a fresh data key. Needs the member role or higher.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/workspaces/{workspace_id}/apps", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("workspace_id" = i64, Path, minimum = 1)),
    request_body = NewApp,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<WorkspacePath>,
    Json(body): Json<NewApp>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    workspaces::get(ctx.db(), a.org_id, p.workspace_id.0).await?;
    a.require(Scope::Write)?;
    validate::dns_label("name", &body.name)?;
    validate::hostname("host", &body.host)?;
    let path_prefix = body.path_prefix.as_deref().unwrap_or("/");
    validate::path_prefix("path_prefix", path_prefix)?;
    validate_ports(&body.ports)?;
    let window = body.sleep_idle_window_seconds.unwrap_or(1800);
    validate::range(
        "sleep_idle_window_seconds",
        window,
        60..=604_800,
        "send a window between a minute and a week, in seconds",
    )?;
    let ports = serde_json::to_value(&body.ports).map_err(ApiError::internal)?;
    let new = apps::NewApp {
        org_id: a.org_id,
        workspace_id: p.workspace_id.0,
        name: &body.name,
        kind: "service",
        host: &body.host,
        path_prefix,
        ports,
        sleep_enabled: body.sleep_enabled,
        // In range: checked just above.
        sleep_idle_window_seconds: i32::try_from(window).map_err(ApiError::internal)?,
        grpc_services: &[],
    };
    // Last, so a refused or invalid request does not use up the org's allowance.
    ctx.rate_limits
        .check(ctx.db(), a.org_id, super::ratelimit::RateAction::CreateApp)
        .await?;
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    let id = apps::create(&mut tx, ctx.kek(), &new, &a.actor()).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/apps/{app_id}", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
) -> Result<axum::Json<App>, ApiError> {
    let app = apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    let current = revisions::intended(ctx.db(), app.id).await?;
    let mut out = App::from(app);
    out.current_revision_id = current.map(|r| r.id);
    Ok(axum::Json(out))
}

/// Deletes an app: its namespace in the cluster first, then its revisions, env values
/// and data key (its secrets in old snapshots become unreadable). Needs the member role
/// or higher; refused while a deployment of it runs.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/apps/{app_id}", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
) -> Result<StatusCode, ApiError> {
    let app = apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    a.require(Scope::Write)?;
    // The cluster first: rows deleted before the namespace would orphan it.
    ctx.deployer.remove_app(&app).await?;
    let mut tx = ctx.db().begin().await.map_err(DbError::from)?;
    apps::delete(&mut tx, a.org_id, p.app_id.0, &a.actor()).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"NAME": "value", ...}`: the complete env of the app's next revision.
#[derive(Deserialize, ToSchema)]
#[serde(transparent)]
pub struct EnvValues(pub BTreeMap<String, String>);

// Values never reach a log line, not even at debug level.
impl fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvNames {
    /// The revision the names are from (the newest); absent before the first deploy.
    pub revision_id: Option<i64>,
    /// Variable names, sorted. Values are never returned.
    pub names: Vec<String>,
}

/// The names of the app's env in its newest revision; never the values.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/apps/{app_id}/env", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = EnvNames), (status = 404, body = ErrorBody)))]
pub async fn get_env(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
) -> Result<axum::Json<EnvNames>, ApiError> {
    let app = apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    let Some(current) = revisions::intended(ctx.db(), app.id).await? else {
        return Ok(axum::Json(EnvNames {
            revision_id: None,
            names: vec![],
        }));
    };
    let names = revisions::env_names(ctx.db(), current.id).await?;
    Ok(axum::Json(EnvNames {
        revision_id: Some(current.id),
        names,
    }))
}

/// Replaces the app's env: writes a new revision (cause `env`) with the values sealed
/// by the app's data key and queues its deployment (a rolling restart); returns the
/// deployment's id. Needs the member role or higher.
#[utoipa::path(put, path = "/v1/orgs/{org_id}/apps/{app_id}/env", tag = "apps",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    request_body = EnvValues,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_env(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Json(body): Json<EnvValues>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    let app = apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    a.require(Scope::Write)?;
    if body.0.len() > validate::MAX_ENV_VARS {
        return Err(ApiError::invalid(
            "env",
            format!("at most {} variables", validate::MAX_ENV_VARS),
            "drop variables the app does not read",
        ));
    }
    for (name, value) in &body.0 {
        validate::env_name(name)?;
        validate::env_value(name, value)?;
    }
    let env: Vec<(String, Secret)> = body
        .0
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect();

    // The same gate a deploy passes: an env change is a rolling restart.
    super::deployments::may_deploy(&ctx, &a).await?;
    let outcome = ctx
        .deployer
        .request_change(&app, Change::Env(env), &a.actor())
        .await?;
    let id = match outcome {
        Outcome::Queued { deployment_id, .. } | Outcome::Unchanged { deployment_id } => {
            deployment_id
        }
    };
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}
