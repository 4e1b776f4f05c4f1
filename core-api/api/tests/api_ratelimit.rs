//! Per-org rate limits: app creation past the burst gets 429 with `Retry-After` and the
//! standard error body; one org's use never limits another's; the buckets are rows, so
//! several loco-api replicas share them and concurrent requests cannot overdraw one.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use db_support::tenant;
use loco_http::ratelimit::{Limit, RateAction, RateLimitConfig, RateLimits};
use loco_http::{ApiConfig, Ctx};
use serde_json::json;
use sqlx::PgPool;

/// Two app creations at once, then one a minute.
fn tight(pool: &PgPool) -> Ctx {
    let limit = Limit {
        per_minute: 1.0,
        burst: 2.0,
    };
    api_support::ctx_with(
        pool.clone(),
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

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn app_creation_past_the_burst_is_429_with_retry_after_per_org(pool: PgPool) {
    let a = tenant(&pool, &kek(), "acme").await;
    let b = tenant(&pool, &kek(), "bravo").await;
    let ctx = tight(&pool);
    let app = loco_http::router(ctx.clone());
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
    let limits = &ctx.rate_limits;
    limits
        .check(&pool, a.org, RateAction::Deploy)
        .await
        .unwrap();
    limits
        .check(&pool, a.org, RateAction::Deploy)
        .await
        .unwrap();
    let e = limits
        .check(&pool, a.org, RateAction::Deploy)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "rate_limited");
}

/// The limiter alone, at chosen instants.
fn limits(per_minute: f64, burst: f64) -> RateLimits {
    let l = Limit { per_minute, burst };
    RateLimits::new(RateLimitConfig {
        deploy: l,
        create_app: l,
    })
}

fn retry_after(e: loco_http::error::ApiError) -> u64 {
    match e {
        loco_http::error::ApiError::RateLimited {
            retry_after_seconds,
            ..
        } => retry_after_seconds,
        other => panic!("not rate limited: {other:?}"),
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_bucket_allows_the_burst_then_refills_at_the_rate(pool: PgPool) {
    let org = tenant(&pool, &kek(), "acme").await.org;
    let r = limits(6.0, 2.0); // a token every 10 s
    let t = Utc::now();
    let at = |s: i64| Some(t + TimeDelta::seconds(s));
    r.check_at(&pool, org, RateAction::Deploy, at(0))
        .await
        .unwrap();
    r.check_at(&pool, org, RateAction::Deploy, at(0))
        .await
        .unwrap();
    let e = r
        .check_at(&pool, org, RateAction::Deploy, at(0))
        .await
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 429);
    assert_eq!(retry_after(e), 10);
    let e = r
        .check_at(&pool, org, RateAction::Deploy, at(4))
        .await
        .unwrap_err();
    assert_eq!(retry_after(e), 6, "4 of the 10 s have passed");
    r.check_at(&pool, org, RateAction::Deploy, at(10))
        .await
        .unwrap();
    // A replica whose clock is behind does not drain the bucket or refill it twice.
    assert!(
        r.check_at(&pool, org, RateAction::Deploy, at(5))
            .await
            .is_err()
    );
    // An hour idle refills to the burst, not beyond.
    for _ in 0..2 {
        r.check_at(&pool, org, RateAction::Deploy, at(3600))
            .await
            .unwrap();
    }
    assert!(
        r.check_at(&pool, org, RateAction::Deploy, at(3600))
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn orgs_and_actions_have_their_own_buckets_shared_by_every_replica(pool: PgPool) {
    let a = tenant(&pool, &kek(), "acme").await.org;
    let b = tenant(&pool, &kek(), "bravo").await.org;
    // Two loco-api processes: each with its own limiter, one database.
    let (one, two) = (limits(1.0, 1.0), limits(1.0, 1.0));
    one.check(&pool, a, RateAction::Deploy).await.unwrap();
    assert!(
        two.check(&pool, a, RateAction::Deploy).await.is_err(),
        "the second replica sees the token the first took"
    );
    two.check(&pool, b, RateAction::Deploy).await.unwrap();
    two.check(&pool, a, RateAction::CreateApp).await.unwrap();

    // Many at once on a fresh bucket of 5: exactly 5 get through.
    let c = tenant(&pool, &kek(), "charlie").await.org;
    let r = std::sync::Arc::new(limits(1.0, 5.0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (r, pool) = (r.clone(), pool.clone());
            tokio::spawn(async move { r.check(&pool, c, RateAction::Deploy).await.is_ok() })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 5);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
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
