//! Driving the API router in-process: a context on the test's own database, tokens
//! minted the way `loco-api tokens create` mints them, and one-call requests.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{Duration, Utc};
use loco_crypto::Kek;
use loco_db::events::Actor;
use loco_db::orgs::{self, Provider, Role};
use loco_db::tokens::{self, NewToken, Scope};
use loco_http::{ApiConfig, Ctx};
use loco_telemetry::Metrics;
use sqlx::PgPool;
use tower::ServiceExt;

/// The KEK of every API test; two `Kek`s from the same bytes are the same key.
pub fn kek() -> Kek {
    Kek::from_bytes([42u8; 32])
}

pub fn ctx(pool: &PgPool) -> Ctx {
    ctx_with(pool.clone(), ApiConfig::default())
}

/// An API context on `pool` with `config` and the default deploy engine.
pub fn ctx_with(pool: PgPool, config: ApiConfig) -> Ctx {
    let metrics = Metrics::new("loco-api-test");
    let deployer = loco_deploy::Deployer::new(pool, kek(), Default::default(), &metrics);
    Ctx::new(deployer, metrics, config)
}

pub fn router(pool: &PgPool) -> Router {
    loco_http::router(ctx(pool))
}

/// Mints a token for `user` in `org`.
pub async fn token_with(
    pool: &PgPool,
    org: i64,
    user: i64,
    scopes: &[Scope],
    ttl: Duration,
) -> String {
    let mut tx = pool.begin().await.unwrap();
    let (_, plaintext) = tokens::mint(
        &mut tx,
        &NewToken {
            org_id: org,
            user_id: user,
            name: "test",
            scopes,
            expires_at: Utc::now() + ttl,
        },
        &Actor::System("test"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    plaintext.to_string()
}

/// An admin-scoped token valid for an hour (the user's role decides the rest).
pub async fn token(pool: &PgPool, org: i64, user: i64) -> String {
    token_with(pool, org, user, &[Scope::Admin], Duration::hours(1)).await
}

/// A new user with `role` in `org`.
pub async fn member(pool: &PgPool, org: i64, login: &str, role: Role) -> i64 {
    let user = orgs::upsert_user(pool, Provider::Github, &format!("uid-{login}"), login, None)
        .await
        .unwrap();
    orgs::add_member(pool, org, user, role).await.unwrap();
    user
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

impl Reply {
    /// Asserts the error shape and returns the `error` reason.
    pub fn error(&self) -> &str {
        for field in ["error", "message", "next_step", "request_id"] {
            assert!(
                self.json[field].as_str().is_some_and(|s| !s.is_empty()),
                "error body lacks {field}: {}",
                self.text
            );
        }
        assert_eq!(
            self.json["request_id"].as_str(),
            self.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            "the body's request id is the header's"
        );
        self.json["error"].as_str().unwrap()
    }
}

/// Sends one request; `body` is sent as JSON when given.
pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&b).unwrap())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    send(app, req).await
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

pub async fn get(app: &Router, path: &str, token: &str) -> Reply {
    call(app, Method::GET, path, Some(token), None).await
}
