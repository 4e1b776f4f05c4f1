//! `loco-api gc` against real Postgres: what goes, and each protection of what stays.
//! Rows are written with plain SQL so the tests pin down exactly which ids exist.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::time::Duration;

use chrono::Utc;
use db_support::{Tenant, tenant};
use loco_crypto::Kek;
use loco_db::gc::{self, Policy, Report};
use sqlx::PgPool;

fn kek() -> Kek {
    Kek::from_bytes([7u8; 32])
}

fn policy(keep: usize) -> Policy {
    Policy {
        events_before: Utc::now() - chrono::Duration::days(90),
        credentials_before: Utc::now() - chrono::Duration::days(7),
        keep_per_app: keep,
        batch: 1000,
        lock_timeout: Duration::from_secs(5),
    }
}

fn digest(n: i64) -> String {
    format!("sha256:{n:064x}")
}

/// A revision with digest `digest(n)`.
async fn revision(pool: &PgPool, app: i64, n: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO app_revisions (app_id, spec, image_digest, replicas, cause)
         VALUES ($1, '{}', $2, 1, 'deploy') RETURNING id",
    )
    .bind(app)
    .bind(digest(n))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn deployment(pool: &PgPool, app: i64, revision: i64, status: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO deployments (app_id, revision_id, status, active, started_at, finished_at)
         VALUES ($1, $2, $3, $3 = 'ready', now() - interval '2 minutes',
                 CASE WHEN $3 IN ('pending', 'applying') THEN NULL ELSE now() END)
         RETURNING id",
    )
    .bind(app)
    .bind(revision)
    .bind(status)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn image(pool: &PgPool, org: i64, app: Option<i64>, n: i64, tag: &str) {
    sqlx::query(
        "INSERT INTO images (org_id, app_id, repository, tag, digest, size_bytes, pushed_at)
         VALUES ($1, $2, 'team/app', $3, $4, 1, now())",
    )
    .bind(org)
    .bind(app)
    .bind(tag)
    .bind(digest(n))
    .execute(pool)
    .await
    .unwrap();
}

async fn ids(pool: &PgPool, sql: &'static str, app: i64) -> Vec<i64> {
    sqlx::query_scalar(sql)
        .bind(app)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn revision_ids(pool: &PgPool, app: i64) -> Vec<i64> {
    ids(
        pool,
        "SELECT id FROM app_revisions WHERE app_id = $1 ORDER BY id",
        app,
    )
    .await
}

async fn deployment_ids(pool: &PgPool, app: i64) -> Vec<i64> {
    ids(
        pool,
        "SELECT id FROM deployments WHERE app_id = $1 ORDER BY id",
        app,
    )
    .await
}

async fn app(pool: &PgPool, t: &Tenant, name: &str) -> i64 {
    db_support::app(pool, &kek(), t, name).await
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn old_deployments_and_revisions_go_but_every_reference_keeps_its_revision(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let other = tenant(&pool, &kek(), "other").await;
    let web = app(&pool, &t, "web").await;
    let other_app = app(&pool, &other, "api").await;
    let mut r = vec![0];
    for n in 1..=8 {
        r.push(revision(&pool, web, n).await);
    }
    // d1 is old but active; d2..d6 are finished and older than the newest two.
    let d1 = deployment(&pool, web, r[1], "ready").await;
    deployment(&pool, web, r[2], "failed").await;
    deployment(&pool, web, r[3], "superseded").await;
    deployment(&pool, web, r[4], "superseded").await;
    let d5 = deployment(&pool, web, r[5], "failed").await;
    let d6 = deployment(&pool, web, r[6], "superseded").await;
    // An image record of this app names r3's digest; one of another app names r2's,
    // which protects nothing of this app.
    image(&pool, t.org, Some(web), 3, "v3").await;
    image(&pool, other.org, Some(other_app), 2, "v2").await;

    let dry = gc::run(&pool, &policy(2), true).await.unwrap();
    assert_eq!((dry.deployments, dry.revisions), (3, 2), "{dry:?}");
    assert_eq!(
        revision_ids(&pool, web).await.len(),
        8,
        "a dry run deletes nothing"
    );
    assert_eq!(deployment_ids(&pool, web).await.len(), 6);

    let report = gc::run(&pool, &policy(2), false).await.unwrap();
    assert_eq!(report, dry, "the dry run counted what the real run dropped");
    // Kept: the newest two (d5, d6) and the active one (d1).
    assert_eq!(deployment_ids(&pool, web).await, [d1, d5, d6]);
    // Kept: r7, r8 (newest; r8 is current), r5 and r6 (kept deployments), r1 (active),
    // r3 (image record). Gone: r2 and r4, whose deployments went too.
    assert_eq!(
        revision_ids(&pool, web).await,
        [r[1], r[3], r[5], r[6], r[7], r[8]]
    );

    // A second run finds nothing more.
    let again = gc::run(&pool, &policy(2), false).await.unwrap();
    assert_eq!(again, Report::default());
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_template_id_outlives_the_deployment_it_names(pool: PgPool) {
    // d1 deployed r1; d2 only scaled it (same pod template), so its pods carry d1's id.
    // Dropping d1 must neither fail nor change what d2 renders.
    let t = tenant(&pool, &kek(), "acme").await;
    let web = app(&pool, &t, "web").await;
    let r1 = revision(&pool, web, 1).await;
    let r2 = revision(&pool, web, 2).await;
    let d1 = deployment(&pool, web, r1, "superseded").await;
    let d2 = deployment(&pool, web, r2, "ready").await;
    sqlx::query("UPDATE deployments SET template_deployment_id = $1 WHERE id = $2")
        .bind(d1)
        .bind(d2)
        .execute(&pool)
        .await
        .unwrap();
    let report = gc::run(&pool, &policy(1), false).await.unwrap();
    assert_eq!(report.deployments, 1, "{report:?}");
    assert_eq!(deployment_ids(&pool, web).await, [d2]);
    let active = loco_db::deployments::active(&pool, web)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.template_id(), d1);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_current_revision_stays_even_with_keep_one_and_no_deployments(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let web = app(&pool, &t, "web").await;
    let r: Vec<i64> = revisions(&pool, web, 3).await;
    let report = gc::run(&pool, &policy(1), false).await.unwrap();
    assert_eq!(report.revisions, 2);
    assert_eq!(revision_ids(&pool, web).await, [r[2]]);
}

async fn revisions(pool: &PgPool, app: i64, n: i64) -> Vec<i64> {
    let mut out = vec![];
    for i in 1..=n {
        out.push(revision(pool, app, i).await);
    }
    out
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn unfinished_deployments_and_unattached_image_records_protect_their_revisions(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let web = app(&pool, &t, "web").await;
    let r = revisions(&pool, web, 5).await;
    // An old deployment still applying (its worker holds a lease) must not vanish.
    let applying = deployment(&pool, web, r[0], "applying").await;
    // An image record whose app link is unset (pushed before the app row existed)
    // still protects the org's revisions of that digest.
    image(&pool, t.org, None, 2, "v2").await;
    let report = gc::run(&pool, &policy(1), false).await.unwrap();
    assert_eq!(report.deployments, 0);
    assert_eq!(deployment_ids(&pool, web).await, [applying]);
    // r[0]: the applying deployment's; r[1]: the image's; r[4]: current.
    assert_eq!(revision_ids(&pool, web).await, [r[0], r[1], r[4]]);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn batches_smaller_than_the_work_still_finish_it(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let web = app(&pool, &t, "web").await;
    let r = revisions(&pool, web, 12).await;
    for rev in &r[..10] {
        deployment(&pool, web, *rev, "superseded").await;
    }
    let p = Policy {
        batch: 3,
        ..policy(2)
    };
    let report = gc::run(&pool, &p, false).await.unwrap();
    // Deployments on r[0..8] go (r[8], r[9] are the newest two's); then their revisions.
    assert_eq!((report.deployments, report.revisions), (8, 8), "{report:?}");
    assert_eq!(revision_ids(&pool, web).await, &r[8..]);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_app_whose_lock_is_held_is_skipped_not_waited_for(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let web = app(&pool, &t, "web").await;
    let r = revisions(&pool, web, 3).await;
    // A deploy in progress holds the app's lock.
    let mut deploy = pool.begin().await.unwrap();
    loco_db::lock_app(&mut deploy, web).await.unwrap();
    let p = Policy {
        lock_timeout: Duration::from_millis(200),
        ..policy(1)
    };
    let report = gc::run(&pool, &p, false).await.unwrap();
    assert_eq!(report.apps_skipped_locked, 1);
    assert_eq!(report.revisions, 0);
    assert_eq!(revision_ids(&pool, web).await, r);
    deploy.rollback().await.unwrap();
    let report = gc::run(&pool, &p, false).await.unwrap();
    assert_eq!((report.revisions, report.apps_skipped_locked), (2, 0));
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn events_past_retention_go_and_recent_ones_stay(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    sqlx::query("DELETE FROM events")
        .execute(&pool)
        .await
        .unwrap();
    for age in [400, 200, 91, 91, 91, 89, 10, 0] {
        sqlx::query(
            "INSERT INTO events (org_id, actor, reason, message, created_at)
             VALUES ($1, 'system:test', 'test', 'x', now() - make_interval(days => $2))",
        )
        .bind(t.org)
        .bind(age)
        .execute(&pool)
        .await
        .unwrap();
    }
    let p = Policy {
        batch: 2,
        ..policy(20)
    };
    assert_eq!(gc::run(&pool, &p, true).await.unwrap().events, 5);
    assert_eq!(gc::run(&pool, &p, false).await.unwrap().events, 5);
    let ages: Vec<i32> = sqlx::query_scalar(
        "SELECT extract(day FROM now() - created_at)::int FROM events ORDER BY created_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ages, [89, 10, 0]);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn expired_and_revoked_credentials_go_after_the_grace_period(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    // (name, expires in days, revoked days ago, gone?)
    let cases: [(&str, i32, Option<i32>, bool); 5] = [
        ("expired-long-ago", -30, None, true),
        ("revoked-long-ago", 300, Some(10), true),
        ("expired-yesterday", -1, None, false),
        ("revoked-yesterday", 300, Some(1), false),
        ("valid", 30, None, false),
    ];
    for (i, (name, expires, revoked, _)) in cases.iter().enumerate() {
        let hash = vec![i as u8; 32];
        sqlx::query(
            "INSERT INTO api_tokens (org_id, user_id, name, token_sha256, scopes, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, '{read}', now() + make_interval(days => $5),
                     now() - make_interval(days => $6))",
        )
        .bind(t.org)
        .bind(t.user)
        .bind(name)
        .bind(&hash)
        .bind(expires)
        .bind(revoked)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sessions (user_id, refresh_token_sha256, expires_at, revoked_at)
             VALUES ($1, $2, now() + make_interval(days => $3), now() - make_interval(days => $4))",
        )
        .bind(t.user)
        .bind(&hash)
        .bind(expires)
        .bind(revoked)
        .execute(&pool)
        .await
        .unwrap();
    }
    let report = gc::run(&pool, &policy(20), false).await.unwrap();
    assert_eq!((report.api_tokens, report.sessions), (2, 2), "{report:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT name FROM api_tokens ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let expected: Vec<&str> = cases.iter().filter(|c| !c.3).map(|c| c.0).collect();
    assert_eq!(left, expected);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 3);
}
