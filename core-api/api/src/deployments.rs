//! Deployments and the changes that make them: deploy (image and/or loco.toml), rollback,
//! scale, sleep and wake. Each writes a revision and a pending deployment and returns the
//! deployment's id at once; the deploy workers apply it. Progress is the deployment's
//! events: `GET .../deployments/{id}` returns them, `.../stream` sends them as
//! server-sent events until the deployment is ready or failed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::OrgAccess;
use super::error::{ApiError, ErrorBody};
use super::extract::{Id, Json, Path, Query};
use super::orgs::{PageParams, next_after};
use super::ratelimit::RateAction;
use super::{Created, Ctx};
use loco_db::events::{self, Event};
use loco_db::tokens::Scope;
use loco_db::{apps, deployments, revisions};
use loco_deploy::request::{Change, DeployRequest, Outcome, RequestError};

/// Largest loco.toml accepted with a deploy.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Invalid {
                field,
                message,
                next_step,
            } => ApiError::Invalid {
                field: field.to_owned(),
                message,
                next_step,
            },
            RequestError::Spec(errors) => ApiError::Invalid {
                field: "spec".to_owned(),
                message: errors.to_string(),
                next_step: "fix every listed error (`loco-api spec validate loco.toml` shows the same) and deploy again".to_owned(),
            },
            // One status for "not allowed", "not found" and "unreachable" (the registry
            // module logs which): a different answer per case would scan ports.
            RequestError::Registry(e) => ApiError::Conflict {
                reason: e.reason(),
                next_step: e.next_step().to_owned(),
                message: e.to_string(),
            },
            RequestError::Conflict {
                reason,
                message,
                next_step,
            } => ApiError::Conflict {
                reason,
                message,
                next_step,
            },
            RequestError::Forbidden {
                reason,
                message,
                next_step,
            } => ApiError::Forbidden {
                reason,
                message,
                next_step,
            },
            RequestError::Unavailable {
                reason,
                message,
                next_step,
            } => ApiError::Unavailable {
                reason,
                message,
                next_step,
            },
            RequestError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AppPath {
    #[allow(dead_code)]
    org_id: Id,
    app_id: Id,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentPath {
    #[allow(dead_code)]
    org_id: Id,
    deployment_id: Id,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// The image to run, e.g. `registry.deploy-app.com/team/app:v1` or `...@sha256:<digest>`;
    /// resolved to its digest now. Omit to redeploy the running image with a new spec.
    pub image: Option<String>,
    /// The loco.toml text. Required on the first deploy; omit to keep the deployed spec.
    pub spec: Option<String>,
    /// A `[Profile.<name>]` of the loco.toml.
    pub profile: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The revision to go back to; default: the one deployed before the active one.
    pub revision_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Replica count (not with autoscaling).
    #[schema(minimum = 0, maximum = 1000)]
    pub replicas: Option<i64>,
    /// CPU request per replica, a Kubernetes quantity such as `500m`.
    pub cpu: Option<String>,
    /// Memory request per replica, e.g. `512Mi`.
    pub memory: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub app_id: i64,
    pub revision_id: i64,
    /// pending, applying, ready, failed or superseded.
    pub status: String,
    /// snake_case reason of a failure.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// True for the one deployment whose objects the cluster should run.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<deployments::Deployment> for Deployment {
    fn from(d: deployments::Deployment) -> Self {
        Deployment {
            id: d.id,
            app_id: d.app_id,
            revision_id: d.revision_id,
            status: d.status,
            reason: d.reason,
            message: d.message,
            active: d.active,
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
    pub next_after: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub id: i64,
    pub reason: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl From<Event> for Progress {
    fn from(e: Event) -> Self {
        Progress {
            id: e.id,
            reason: e.reason,
            message: e.message,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The objects this deployment applied (kind, namespace, name).
    #[schema(value_type = Vec<Object>)]
    pub inventory: serde_json::Value,
    /// Its events, oldest first.
    pub events: Vec<Progress>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revision {
    pub id: i64,
    /// deploy, env, scale, rollback, sleep, wake.
    pub cause: String,
    pub image: Option<String>,
    pub replicas: i32,
    pub asleep: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionList {
    pub revisions: Vec<Revision>,
    pub next_after: Option<i64>,
}

/// Who may queue a deployment: member or higher, under the org's deploy rate limit and
/// (when the org has one) its GitHub collaborator gate. Every change that starts a
/// rollout (deploy, env, scale, rollback, sleep, wake) passes here.
pub(crate) async fn may_deploy(ctx: &Ctx, a: &OrgAccess) -> Result<(), ApiError> {
    a.require(Scope::Write)?;
    ctx.rate_limits
        .check(ctx.db(), a.org_id, RateAction::Deploy)
        .await?;
    super::login::check_deploy_gate(ctx, a.org_id, a.principal.user_id).await
}

/// Looks the app up (404 for another org's), checks the caller may deploy, and queues
/// `change`.
async fn queue_change(
    ctx: &Ctx,
    a: &OrgAccess,
    app_id: i64,
    change: impl FnOnce() -> Result<Change, ApiError>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    let app = apps::get(ctx.db(), a.org_id, app_id).await?;
    may_deploy(ctx, a).await?;
    let change = change()?;
    Ok(answer(
        ctx.deployer
            .request_change(&app, change, &a.actor())
            .await?,
    ))
}

fn answer(outcome: Outcome) -> (StatusCode, axum::Json<Created>) {
    match outcome {
        Outcome::Queued { deployment_id, .. } => (
            StatusCode::CREATED,
            axum::Json(Created { id: deployment_id }),
        ),
        Outcome::Unchanged { deployment_id } => {
            (StatusCode::OK, axum::Json(Created { id: deployment_id }))
        }
    }
}

fn check_len(field: &str, value: Option<&String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > max => Err(ApiError::invalid(
            field,
            format!("at most {max} bytes"),
            format!("shorten {field}"),
        )),
        _ => Ok(()),
    }
}

/// Queues a deploy. 201 with the new deployment's id; 200 with the active deployment's id
/// when nothing would change (nothing is written then).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/apps/{app_id}/deployments", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    request_body = NewDeployment,
    responses((status = 201, body = Created), (status = 200, body = Created),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Json(body): Json<NewDeployment>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    let app = apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    may_deploy(&ctx, &a).await?;
    check_len(
        "image",
        body.image.as_ref(),
        loco_deploy::image::MAX_REFERENCE_LEN,
    )?;
    check_len("spec", body.spec.as_ref(), MAX_SPEC_BYTES)?;
    check_len("profile", body.profile.as_ref(), 63)?;
    if body.image.is_none() && body.spec.is_none() {
        return Err(ApiError::invalid(
            "image",
            "a deploy needs an image, a loco.toml, or both",
            "send `image` (and `spec` on the first deploy)",
        ));
    }
    let req = DeployRequest {
        image: body.image,
        spec: body.spec,
        profile: body.profile,
    };
    let outcome = ctx.deployer.request_deploy(&app, &req, &a.actor()).await?;
    Ok(answer(outcome))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/apps/{app_id}/deployments", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1), PageParams),
    responses((status = 200, body = DeploymentList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<DeploymentList>, ApiError> {
    let page = q.page()?;
    apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    let rows = deployments::list(ctx.db(), a.org_id, p.app_id.0, page).await?;
    let next_after = next_after(rows.len(), page, rows.last().map(|d| d.id));
    Ok(axum::Json(DeploymentList {
        deployments: rows.into_iter().map(Deployment::from).collect(),
        next_after,
    }))
}

/// A deployment with its status and its events (oldest first).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/deployments/{deployment_id}", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("deployment_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DeploymentDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<DeploymentPath>,
) -> Result<axum::Json<DeploymentDetail>, ApiError> {
    let d = deployments::get(ctx.db(), a.org_id, p.deployment_id.0).await?;
    let events = events::of_deployment(ctx.db(), a.org_id, d.id, 0, 500).await?;
    Ok(axum::Json(DeploymentDetail {
        inventory: d.inventory.clone(),
        deployment: Deployment::from(d),
        events: events.into_iter().map(Progress::from).collect(),
    }))
}

fn terminal(status: &str) -> bool {
    matches!(status, "ready" | "failed" | "superseded")
}

/// The deployment's events as server-sent events (`event: progress`, data = a Progress
/// JSON), then one `event: done` with the final Deployment, then the stream ends.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/deployments/{deployment_id}/stream", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("deployment_id" = i64, Path, minimum = 1)),
    responses((status = 200, content_type = "text/event-stream", description = "progress events"),
        (status = 404, body = ErrorBody)))]
pub async fn stream(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<DeploymentPath>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let d = deployments::get(ctx.db(), a.org_id, p.deployment_id.0).await?;
    let (org_id, id) = (a.org_id, d.id);
    let db = ctx.db().clone();
    let s = async_stream(db, org_id, id);
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Polls the events table (which every API replica and worker writes), so a client
/// connected to any replica sees every step. Ends at a terminal status, or after an hour.
fn async_stream(
    db: sqlx::PgPool,
    org_id: i64,
    id: i64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    struct St {
        db: sqlx::PgPool,
        after: i64,
        done: bool,
        started: tokio::time::Instant,
        queue: std::collections::VecDeque<SseEvent>,
    }
    let st = St {
        db,
        after: 0,
        done: false,
        started: tokio::time::Instant::now(),
        queue: Default::default(),
    };
    futures::stream::unfold(st, move |mut st| async move {
        loop {
            if let Some(e) = st.queue.pop_front() {
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            // Read the status first: events written before a terminal status are then
            // all visible to the read below.
            let status = deployments::get(&st.db, org_id, id).await;
            let events = events::of_deployment(&st.db, org_id, id, st.after, 200).await;
            match (status, events) {
                (Ok(d), Ok(evs)) => {
                    let caught_up = evs.len() < 200;
                    for e in evs {
                        st.after = e.id;
                        let data = serde_json::to_string(&Progress::from(e)).unwrap_or_default();
                        st.queue
                            .push_back(SseEvent::default().event("progress").data(data));
                    }
                    if caught_up && terminal(&d.status) {
                        let data = serde_json::to_string(&Deployment::from(d)).unwrap_or_default();
                        st.queue
                            .push_back(SseEvent::default().event("done").data(data));
                        st.done = true;
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(deployment_id = id, error = %e, "deployment stream cannot read the database");
                    let msg = serde_json::json!({
                        "error": "stream_interrupted",
                        "message": "the progress stream stopped; the deployment continues",
                        "next_step": "GET the deployment for its status",
                    });
                    st.queue
                        .push_back(SseEvent::default().event("error").data(msg.to_string()));
                    st.done = true;
                }
            }
            if st.queue.is_empty() {
                if st.started.elapsed() > Duration::from_secs(3600) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    })
}

/// Rolls back: a new revision equal to an earlier one, deployed like any other.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/apps/{app_id}/rollback", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    request_body = RollbackRequest,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn rollback(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Json(body): Json<RollbackRequest>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    queue_change(&ctx, &a, p.app_id.0, || {
        if body.revision_id.is_some_and(|id| id < 1) {
            return Err(ApiError::invalid(
                "revision_id",
                "must be a revision id (1 or more)",
                "list the app's revisions with GET .../revisions",
            ));
        }
        Ok(Change::Rollback {
            revision_id: body.revision_id,
        })
    })
    .await
}

/// Changes replicas, CPU or memory: a new revision, applied without a new image.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/apps/{app_id}/scale", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    request_body = ScaleRequest,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn scale(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Json(body): Json<ScaleRequest>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    queue_change(&ctx, &a, p.app_id.0, || {
        let replicas = match body.replicas {
            None => None,
            Some(n) => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= 1000)
                    .ok_or_else(|| {
                        ApiError::invalid("replicas", "must be 0 to 1000", "send a replica count")
                    })?,
            ),
        };
        check_len("cpu", body.cpu.as_ref(), 32)?;
        check_len("memory", body.memory.as_ref(), 32)?;
        Ok(Change::Scale {
            replicas,
            cpu: body.cpu,
            memory: body.memory,
        })
    })
    .await
}

/// Puts the app to sleep: 0 replicas, its routes to the reviver (which wakes it on the
/// next request).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/apps/{app_id}/sleep", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn sleep(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    queue_change(&ctx, &a, p.app_id.0, || Ok(Change::Sleep)).await
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/apps/{app_id}/wake", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1)),
    responses((status = 201, body = Created), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn wake(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
) -> Result<(StatusCode, axum::Json<Created>), ApiError> {
    queue_change(&ctx, &a, p.app_id.0, || Ok(Change::Wake)).await
}

/// The app's revisions, newest first (no env values, ever).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/apps/{app_id}/revisions", tag = "deployments",
    security(("bearer" = [])),
    params(("org_id" = i64, Path, minimum = 1), ("app_id" = i64, Path, minimum = 1), PageParams),
    responses((status = 200, body = RevisionList), (status = 404, body = ErrorBody)))]
pub async fn revisions(
    State(ctx): State<Ctx>,
    a: OrgAccess,
    Path(p): Path<AppPath>,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<RevisionList>, ApiError> {
    let page = q.page()?;
    apps::get(ctx.db(), a.org_id, p.app_id.0).await?;
    let rows = revisions::list(ctx.db(), a.org_id, p.app_id.0, page).await?;
    let next_after = next_after(rows.len(), page, rows.last().map(|r| r.id));
    Ok(axum::Json(RevisionList {
        revisions: rows
            .into_iter()
            .map(|r| Revision {
                id: r.id,
                cause: r.cause,
                image: r.image,
                replicas: r.replicas,
                asleep: r.asleep,
                created_at: r.created_at,
            })
            .collect(),
        next_after,
    }))
}
