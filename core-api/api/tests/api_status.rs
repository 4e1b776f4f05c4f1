//! `GET /status`: public, built from the latency ring and the database, cached, and
//! still answering when the database does not.

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use db_support::tenant;
use loco_http::ApiConfig;
use serde_json::json;
use sqlx::PgPool;

async fn status(app: &axum::Router) -> Reply {
    let r = call(app, Method::GET, "/status", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}

async fn event(pool: &PgPool, org: i64, workspace: Option<i64>, reason: &str, age: &str) {
    sqlx::query(
        "INSERT INTO events (org_id, workspace_id, actor, reason, message, created_at)
         VALUES ($1, $2, 'system:resurrector', $3, 'probe', now() - $4::interval)",
    )
    .bind(org)
    .bind(workspace)
    .bind(reason)
    .bind(age)
    .execute(pool)
    .await
    .unwrap();
}

/// A finished deployment of a fresh revision that took `seconds`, finished `ago`.
async fn finished_deployment(pool: &PgPool, app: i64, seconds: i32, ago: &str) {
    let rev: i64 = sqlx::query_scalar(
        "INSERT INTO app_revisions (app_id, spec, image_digest, replicas, cause)
         VALUES ($1, '{}', $2, 1, 'deploy') RETURNING id",
    )
    .bind(app)
    .bind(db_support::DIGEST)
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO deployments (app_id, revision_id, status, started_at, finished_at)
         VALUES ($1, $2, 'failed', now() - $3::interval - make_interval(secs => $4),
                 now() - $3::interval)",
    )
    .bind(app)
    .bind(rev)
    .bind(ago)
    .bind(seconds)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn status_is_public_and_reports_deploys_clusters_and_open_incidents(pool: PgPool) {
    let a = tenant(&pool, &kek(), "acme").await;
    let b = tenant(&pool, &kek(), "bravo").await;
    let web = db_support::app(&pool, &kek(), &a, "web").await;
    finished_deployment(&pool, web, 60, "1 hour").await;
    finished_deployment(&pool, web, 120, "2 hours").await;
    finished_deployment(&pool, web, 3600, "2 days").await; // outside the 24 h window
    sqlx::query(
        "UPDATE clusters SET status = 'degraded', status_reason = 'nodes_not_ready', checked_at = now()
          WHERE id = $1",
    )
    .bind(a.cluster)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE clusters SET status = 'healthy' WHERE id = $1")
        .bind(b.cluster)
        .execute(&pool)
        .await
        .unwrap();
    // Open: acme's cluster is unreachable, and a platform rebuild started an hour ago.
    event(
        &pool,
        a.org,
        Some(a.workspace),
        "cluster_unreachable",
        "10 minutes",
    )
    .await;
    event(&pool, a.org, None, "rebuild_started", "1 hour").await;
    // Closed: bravo's cluster recovered; and a rebuild opened 8 days ago is past look-back.
    event(
        &pool,
        b.org,
        Some(b.workspace),
        "cluster_unreachable",
        "30 minutes",
    )
    .await;
    event(
        &pool,
        b.org,
        Some(b.workspace),
        "cluster_recovered",
        "20 minutes",
    )
    .await;
    event(&pool, b.org, Some(b.workspace), "rebuild_started", "8 days").await;

    let app = router(&pool);
    // Some traffic for the latency figures (401s are requests too).
    for _ in 0..3 {
        call(&app, Method::GET, "/v1/orgs", None, None).await;
    }
    let r = status(&app).await;
    let s = &r.json;
    assert_eq!(r.headers.get("cache-control").unwrap(), "public, max-age=5");
    assert_eq!(s["window_seconds"], 86400);
    assert_eq!(s["database_ok"], true);
    assert!(s["api"]["requests"].as_u64().unwrap() >= 3, "{}", r.text);
    assert!(
        s["api"]["latency_p50_ms"].as_f64().unwrap() > 0.0,
        "{}",
        r.text
    );
    assert!(
        s["api"]["latency_p99_ms"].as_f64().unwrap()
            >= s["api"]["latency_p50_ms"].as_f64().unwrap()
    );
    assert_eq!(s["api"]["uptime_ratio"], 1.0);
    assert_eq!(s["deploys"]["finished"], 2, "{}", r.text);
    assert_eq!(s["deploys"]["average_duration_seconds"], 90.0);
    assert_eq!(
        s["unhealthy_clusters"],
        json!([{
            "name": "acme-cluster", "provider": "hetzner", "region": "fsn1",
            "status": "degraded", "reason": "nodes_not_ready",
            "checked_at": s["unhealthy_clusters"][0]["checked_at"],
        }]),
        "{}",
        r.text
    );
    assert!(s["unhealthy_clusters"][0]["checked_at"].is_string());
    let incidents: Vec<_> = s["open_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].clone(),
                i["cluster"].clone(),
                i["workspaces"].clone(),
            )
        })
        .collect();
    assert_eq!(
        incidents,
        [
            (json!("cluster_rebuild"), json!(null), json!(1)),
            (
                json!("cluster_unreachable"),
                json!("acme-cluster"),
                json!(1)
            ),
        ],
        "{}",
        r.text
    );
    // Public means nothing of a tenant or a cluster's access: no endpoint, org, app.
    for secret in ["127.0.0.1:6443", "acme\"", "web", "org_id", "apiVersion"] {
        assert!(!r.text.contains(secret), "{secret} leaked: {}", r.text);
    }

    // Cached: a change within 5 s is not seen, and the page is the same one.
    sqlx::query("UPDATE clusters SET status = 'unreachable' WHERE id = $1")
        .bind(b.cluster)
        .execute(&pool)
        .await
        .unwrap();
    let again = status(&app).await;
    assert_eq!(again.json["generated_at"], s["generated_at"]);
    assert_eq!(
        again.json["unhealthy_clusters"].as_array().unwrap().len(),
        1
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn status_without_data_has_nulls_not_errors(pool: PgPool) {
    let r = status(&router(&pool)).await;
    assert_eq!(r.json["deploys"]["finished"], 0);
    assert_eq!(r.json["deploys"]["average_duration_seconds"], json!(null));
    assert_eq!(
        r.json["api"]["latency_p99_ms"],
        json!(null),
        "no request yet"
    );
    assert_eq!(r.json["open_incidents"], json!([]));
}

#[tokio::test]
async fn status_answers_with_its_own_figures_when_the_database_is_down() {
    // Nothing listens on port 1: every query fails at once.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://loco:loco@127.0.0.1:1/none")
        .unwrap();
    let ctx = api_support::ctx_with(pool, ApiConfig::default());
    let app = loco_http::router(ctx);
    let r = status(&app).await;
    assert_eq!(r.json["database_ok"], false, "{}", r.text);
    assert_eq!(r.json["deploys"], json!(null));
    assert_eq!(r.json["unhealthy_clusters"], json!(null));
    assert!(r.json["api"]["uptime_ratio"].is_number());
    assert!(
        !r.text.contains("127.0.0.1:1"),
        "no database detail: {}",
        r.text
    );
}
