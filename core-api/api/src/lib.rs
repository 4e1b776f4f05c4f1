//! The loco-api HTTP API: JSON over axum, documented by an OpenAPI document generated
//! from the handlers (GET /openapi.json).
//!
//! Shape (after launchbadge/realworld-axum-sqlx): one context, [`Ctx`], built once and
//! shared by every handler; one error type, [`ApiError`], that never shows a database
//! error; authentication and per-org authorisation as extractors ([`auth`]).
//!
//! Routes live under `/v1`. Everything an org owns is under `/v1/orgs/{org_id}/...`, and
//! every lookup below it is scoped by that org id, so another tenant's object reads as
//! not found. Creates return `{id}` only, with 201.
//!
//! Deployments (deploy, rollback, scale, sleep, wake, revisions, a progress stream) are
//! queued through the [`Ctx::deployer`]; no handler writes to a cluster itself.
//!
//! Logins (GitHub OAuth, Google OIDC), loco sessions (`Credential::Session` in [`auth`])
//! and the org deploy gate live in [`login`], under `/v1/auth/...`.
//!
//! `GET /status` is public (no token; [`status`]). Deploys and app creation are rate
//! limited per org ([`ratelimit`]).

pub mod auth;
pub mod error;
pub mod extract;
pub mod latency;
pub mod login;
pub mod ratelimit;
pub mod status;
pub mod validate;

mod apps;
mod deployments;
mod events;
mod orgs;
mod workspaces;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ErrorBody};

use loco_crypto::Kek;
use loco_telemetry::Metrics;

/// Settings of the API that tests and `serve` choose.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// Per-org limits of deploys and app creation.
    pub rate_limits: ratelimit::RateLimitConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 1024 * 1024,
            rate_limits: ratelimit::RateLimitConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// The API's metrics, registered once into the process's registry.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    pub registry: Metrics,
    errors: Family<ReasonLabel, Counter>,
}

impl ApiMetrics {
    pub fn new(registry: Metrics) -> Self {
        let errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "api_errors",
            "Error responses of the HTTP API by reason",
            errors.clone(),
        );
        ApiMetrics { registry, errors }
    }

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}

/// Everything a handler needs, built once per process.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub metrics: ApiMetrics,
    pub config: Arc<ApiConfig>,
    /// GitHub / Google logins, sessions and the deploy gate; none configured after
    /// [`Ctx::new`], set with [`Ctx::with_login`].
    pub login: Arc<login::Login>,
    /// Per-org limits: `ctx.rate_limits.check(ctx.db(), org_id, RateAction::Deploy).await?`.
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// The latency ring and the cached page of `GET /status`.
    pub status: Arc<status::StatusState>,
    /// The deploy engine: the database pool, the KEK and the cluster clients every
    /// handler uses. Queues deployments (deploy, env, scale, rollback, sleep, wake) and
    /// deletes apps' cluster objects; `serve` also runs its workers.
    pub deployer: loco_deploy::Deployer,
}

impl Ctx {
    /// The API around `deployer`; registers the API's metrics into `metrics` (the
    /// registry the deployer registered into: call once per registry).
    pub fn new(deployer: loco_deploy::Deployer, metrics: Metrics, config: ApiConfig) -> Self {
        Ctx {
            deployer,
            metrics: ApiMetrics::new(metrics),
            rate_limits: Arc::new(ratelimit::RateLimits::new(config.rate_limits)),
            status: Arc::new(status::StatusState::default()),
            config: Arc::new(config),
            login: Arc::new(login::Login::disabled()),
        }
    }

    /// The loco database.
    pub fn db(&self) -> &PgPool {
        &self.deployer.db
    }

    /// The key-encryption key.
    pub fn kek(&self) -> &Kek {
        &self.deployer.kek
    }
}

/// `{id}`: what every create returns.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub id: i64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "loco API",
        description = "loco's deploy core. Errors are {error, message, next_step, request_id}."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, Created))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The routes and their OpenAPI document.
fn routes() -> (Router<Ctx>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::get))
        .routes(routes!(orgs::members))
        .routes(routes!(orgs::regions))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(workspaces::get, workspaces::delete))
        .routes(routes!(apps::list, apps::create))
        .routes(routes!(apps::get, apps::delete))
        .routes(routes!(apps::get_env, apps::put_env))
        .routes(routes!(deployments::list, deployments::create))
        .routes(routes!(deployments::get))
        .routes(routes!(deployments::stream))
        .routes(routes!(deployments::rollback))
        .routes(routes!(deployments::scale))
        .routes(routes!(deployments::sleep))
        .routes(routes!(deployments::wake))
        .routes(routes!(deployments::revisions))
        .routes(routes!(events::list))
        .routes(routes!(login::web::github_login))
        .routes(routes!(login::web::github_callback))
        .routes(routes!(login::device::github_device_start))
        .routes(routes!(login::device::github_device_poll))
        .routes(routes!(login::web::google_login))
        .routes(routes!(login::web::google_callback))
        .routes(routes!(login::session::refresh))
        .routes(routes!(login::session::logout))
        .routes(routes!(login::gate::get_gate, login::gate::put_gate))
        .routes(routes!(status::get))
        .split_for_parts()
}

/// The OpenAPI document of the API, as served at /openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The API router with its layers: request ids (`x-request-id`, generated unless the
/// client sent one, echoed on the response), a request span carrying the id, the body
/// limit, and the error envelope. Merge the ops router (/metrics, /healthz) beside it.
pub fn router(ctx: Ctx) -> Router {
    let (api, doc) = routes();
    let doc = Arc::new(doc);
    api.route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .fallback(error::no_route)
    .method_not_allowed_fallback(error::method_not_allowed)
    .layer(DefaultBodyLimit::max(ctx.config.body_limit))
    .layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        error::finish_errors,
    ))
    .layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        status::track_latency,
    ))
    .layer(
        TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown");
            // The path only: query strings are not logged.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, org_id = tracing::field::Empty)
        }),
    )
    .layer(PropagateRequestIdLayer::x_request_id())
    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
    .with_state(ctx)
}
