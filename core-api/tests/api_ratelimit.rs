//! Per-org rate limits through the API: app creation past the burst gets 429 with
//! `Retry-After` and the standard error body, and one org's use never limits another's.

mod api_support;
mod db_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use db_support::tenant;
use loco_core::api::ratelimit::{Limit, RateAction, RateLimitConfig};
use loco_core::api::{self, ApiConfig, Ctx};
use loco_core::telemetry::Metrics;
use serde_json::json;
use sqlx::PgPool;

/// Two app creations at once, then one a minute.
fn tight(pool: &PgPool) -> Ctx {
    let limit = Limit {
        per_minute: 1.0,
        burst: 2.0,
    };
    Ctx::new(
        pool.clone(),
        kek(),
        Metrics::new("loco-api-test"),
        ApiConfig {
            rate_limits: RateLimitConfig {
                deploy: limit,
                create_app: limit,
            },
            ..ApiConfig::default()
        },
    )
}

async fn create_app(app: &axum::Router, tok: &str, org: i64, ws: i64, name: &str) -> Reply {
    call(
        app,
        Method::POST,
        &format!("/v1/orgs/{org}/workspaces/{ws}/apps"),
        Some(tok),
        Some(json!({"name": name, "host": format!("{name}-{org}.apps.example.com")})),
    )
    .await
}

#[sqlx::test(migrator = "loco_core::db::MIGRATOR")]
async fn app_creation_past_the_burst_is_429_with_retry_after_per_org(pool: PgPool) {
    let a = tenant(&pool, &kek(), "acme").await;
    let b = tenant(&pool, &kek(), "bravo").await;
    let ctx = tight(&pool);
    let app = api::router(ctx.clone());
    let tok_a = token(&pool, a.org, a.user).await;
    let tok_b = token(&pool, b.org, b.user).await;

    for name in ["one", "two"] {
        let r = create_app(&app, &tok_a, a.org, a.workspace, name).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = create_app(&app, &tok_a, a.org, a.workspace, "three").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.error(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        r.json["next_step"]
            .as_str()
            .unwrap()
            .contains("retry after"),
        "{}",
        r.text
    );
    let apps: i64 = sqlx::query_scalar("SELECT count(*) FROM apps WHERE org_id = $1")
        .bind(a.org)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(apps, 2, "the refused create wrote nothing");

    // A request that is invalid anyway is refused for what it is, not counted.
    let r = create_app(&app, &tok_a, a.org, a.workspace, "Not_A_Name").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Another org has its own bucket.
    let r = create_app(&app, &tok_b, b.org, b.workspace, "one").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Deploys are limited separately from app creation: acme can still deploy twice.
    ctx.rate_limits.check(a.org, RateAction::Deploy).unwrap();
    ctx.rate_limits.check(a.org, RateAction::Deploy).unwrap();
    let e = ctx
        .rate_limits
        .check(a.org, RateAction::Deploy)
        .unwrap_err();
    assert_eq!(e.reason(), "rate_limited");
}

#[sqlx::test(migrator = "loco_core::db::MIGRATOR")]
async fn default_limits_allow_a_burst_of_five_app_creations(pool: PgPool) {
    let a = tenant(&pool, &kek(), "acme").await;
    let app = router(&pool);
    let tok = token(&pool, a.org, a.user).await;
    for i in 0..5 {
        let r = create_app(&app, &tok, a.org, a.workspace, &format!("app{i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = create_app(&app, &tok, a.org, a.workspace, "app5").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}
