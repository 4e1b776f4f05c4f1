//! `GET /status`: the public health page of the platform. No authentication, so it
//! names no org, workspace or app, and shows clusters only by name, region, status and
//! reason (never an endpoint or a credential).
//!
//! Figures (over the last 24 hours):
//! - API latency p50/p99 and uptime of this loco-api process ([`super::latency`]);
//! - the number and average duration (`finished_at - started_at`) of deployments that
//!   finished, whether ready or failed;
//! - clusters whose health row (written by the resurrector) is not `healthy`;
//! - open incidents from the audit trail, as defined by
//!   [`loco_db::status::INCIDENT_KINDS`] (7-day look-back).
//!
//! The answer is cached for [`CACHE_FOR`] and rebuilt by one request at a time, so
//! however often the page is asked for, the database sees at most three cheap queries
//! every few seconds. When the database does not answer, the page still answers (200)
//! with the process's own figures and `database_ok: false`: a status page must work
//! precisely when things are broken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Ctx;
use super::latency::LatencyRecorder;
use loco_db::DbError;

/// How long an answer is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// The window of the latency, uptime and deploy figures.
const WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// How far back an incident's opening event is looked for.
const INCIDENT_LOOKBACK: chrono::Duration = chrono::Duration::days(7);
/// Most clusters and incidents listed.
const LIST_LIMIT: i64 = 100;
/// The database gets this long to answer before the page goes out without its figures.
const DB_DEADLINE: Duration = Duration::from_secs(3);

/// The process's latency ring and the cached page.
#[derive(Debug, Default)]
pub struct StatusState {
    pub latency: LatencyRecorder,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Status>)>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    pub generated_at: DateTime<Utc>,
    /// The window of the figures below, in seconds (24 h).
    pub window_seconds: i64,
    pub api: ApiFigures,
    /// False when the database did not answer; the database-backed sections are then null.
    pub database_ok: bool,
    pub deploys: Option<DeployFigures>,
    pub unhealthy_clusters: Option<Vec<ClusterHealth>>,
    pub open_incidents: Option<Vec<Incident>>,
}

/// This loco-api process's view of the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiFigures {
    pub requests: u64,
    pub server_errors: u64,
    /// Upper bound of the histogram bucket (at most 25 % above the true value); null
    /// without requests.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Share of the observed minutes in which this process was serving (running, and
    /// answering at least half of the minute's requests without a 5xx).
    pub uptime_ratio: f64,
    /// How much of the window this process has observed (it started within it when
    /// this is below the window).
    pub observed_seconds: u64,
    pub process_started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeployFigures {
    /// Deployments that finished (ready or failed) in the window.
    pub finished: i64,
    /// Their mean duration from start of apply to finish; null without any.
    pub average_duration_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterHealth {
    pub name: String,
    pub provider: String,
    pub region: String,
    /// unknown, degraded, unreachable or rebuilding.
    pub status: String,
    pub reason: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Incident {
    /// `cluster_unreachable` or `cluster_rebuild`.
    pub kind: String,
    /// The cluster affected; null for a platform-wide incident.
    pub cluster: Option<String>,
    pub since: DateTime<Utc>,
    /// Workspaces the incident was recorded for.
    pub workspaces: i64,
}

/// The platform's health over the last 24 hours. Public; cached for 5 seconds.
#[utoipa::path(get, path = "/status", tag = "status",
    responses((status = 200, body = Status)))]
pub async fn get(State(ctx): State<Ctx>) -> Response {
    let status = current(&ctx).await;
    let mut resp = axum::Json(status.as_ref().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    resp
}

/// The cached page, rebuilt when older than [`CACHE_FOR`]. Holding the lock while
/// rebuilding makes concurrent callers wait for one rebuild instead of each running it.
async fn current(ctx: &Ctx) -> Arc<Status> {
    let mut cache = ctx.status.cache.lock().await;
    if let Some((at, status)) = cache.as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return status.clone();
    }
    let status = Arc::new(build(ctx).await);
    *cache = Some((Instant::now(), status.clone()));
    status
}

async fn build(ctx: &Ctx) -> Status {
    let s = ctx.status.latency.summary();
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let api = ApiFigures {
        requests: s.requests,
        server_errors: s.server_errors,
        latency_p50_ms: s.p50.map(ms),
        latency_p99_ms: s.p99.map(ms),
        uptime_ratio: s.uptime_ratio,
        observed_seconds: s.observed_seconds,
        process_started_at: s.started_at,
    };
    let now = Utc::now();
    let from_db = match tokio::time::timeout(DB_DEADLINE, database_figures(ctx, now)).await {
        Ok(Ok(figures)) => Some(figures),
        Ok(Err(e)) => {
            tracing::error!(reason = e.reason(), error = %e, "status: database figures unavailable");
            None
        }
        Err(_) => {
            tracing::error!(
                reason = "database_timeout",
                "status: the database did not answer within {DB_DEADLINE:?}"
            );
            None
        }
    };
    let (deploys, clusters, incidents) = match from_db {
        Some((d, c, i)) => (Some(d), Some(c), Some(i)),
        None => (None, None, None),
    };
    Status {
        generated_at: now,
        window_seconds: WINDOW.num_seconds(),
        api,
        database_ok: deploys.is_some(),
        deploys,
        unhealthy_clusters: clusters,
        open_incidents: incidents,
    }
}

async fn database_figures(
    ctx: &Ctx,
    now: DateTime<Utc>,
) -> Result<(DeployFigures, Vec<ClusterHealth>, Vec<Incident>), DbError> {
    let d = loco_db::status::deploy_durations(ctx.db(), now - WINDOW).await?;
    let clusters = loco_db::status::unhealthy_clusters(ctx.db(), LIST_LIMIT).await?;
    let incidents =
        loco_db::status::open_incidents(ctx.db(), now - INCIDENT_LOOKBACK, LIST_LIMIT).await?;
    Ok((
        DeployFigures {
            finished: d.finished,
            average_duration_seconds: d.average_seconds.map(|s| (s * 1000.0).round() / 1000.0),
        },
        clusters
            .into_iter()
            .map(|c| ClusterHealth {
                name: c.name,
                provider: c.provider,
                region: c.region,
                status: c.status,
                reason: c.reason,
                checked_at: c.checked_at,
            })
            .collect(),
        incidents
            .into_iter()
            .map(|i| Incident {
                kind: i.kind,
                cluster: i.cluster,
                since: i.since,
                workspaces: i.workspaces,
            })
            .collect(),
    ))
}

/// Middleware: records every API request's duration and status into the latency ring.
pub async fn track_latency(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    ctx.status
        .latency
        .record(started.elapsed(), resp.status().as_u16());
    resp
}
