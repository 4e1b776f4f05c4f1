//! Deployments: pending -> applying -> ready/failed, exactly one active per app, the
//! previous one superseded in the same transaction.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::deployments::{self, Status};
use loco_db::events::{self, EventFilter};
use loco_db::{Page, revisions};
use sqlx::PgPool;

async fn deploy(pool: &PgPool, t: &Tenant, app: i64, rev: i64) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let id = deployments::create(&mut tx, app, rev, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn set(
    pool: &PgPool,
    id: i64,
    to: Status,
    reason: Option<&str>,
) -> Result<(), loco_db::DbError> {
    let mut tx = pool.begin().await.unwrap();
    deployments::set_status(&mut tx, id, to, reason, None).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn activate(pool: &PgPool, id: i64) {
    let mut tx = pool.begin().await.unwrap();
    deployments::activate(&mut tx, id).await.unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn activating_supersedes_the_previous_deployment(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let r1 = revision_with_env(&pool, &kek, app, &[]).await;
    let d1 = deploy(&pool, &t, app, r1).await;
    assert_eq!(
        deployments::get(&pool, t.org, d1).await.unwrap().status,
        "pending"
    );
    set(&pool, d1, Status::Applying, None).await.unwrap();
    deployments::set_inventory(
        &pool,
        d1,
        &serde_json::json!([{"kind": "Namespace", "name": "wks-1-app-1"}]),
    )
    .await
    .unwrap();
    activate(&pool, d1).await;
    assert_eq!(
        revisions::deployed(&pool, app).await.unwrap().unwrap().id,
        r1
    );

    let r2 = revision_with_env(&pool, &kek, app, &[]).await;
    let d2 = deploy(&pool, &t, app, r2).await;
    set(&pool, d2, Status::Applying, None).await.unwrap();
    activate(&pool, d2).await;

    let old = deployments::get(&pool, t.org, d1).await.unwrap();
    assert_eq!((old.status.as_str(), old.active), ("superseded", false));
    assert_eq!(old.inventory[0]["kind"], "Namespace");
    let new = deployments::active(&pool, app).await.unwrap().unwrap();
    assert_eq!(
        (new.id, new.status.as_str(), new.active),
        (d2, "ready", true)
    );
    assert!(new.finished_at.is_some() && new.started_at.is_some());
    assert_eq!(
        revisions::deployed(&pool, app).await.unwrap().unwrap().id,
        r2
    );

    let listed = deployments::list(&pool, t.org, app, Page::default())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [d2, d1]);
    let trail = events::list(
        &pool,
        t.org,
        EventFilter {
            deployment_id: Some(d2),
            ..Default::default()
        },
        Page::default(),
    )
    .await
    .unwrap();
    let reasons: Vec<_> = trail.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "deployment_ready",
            "deployment_applying",
            "deployment_created"
        ]
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn the_index_rejects_a_second_active_deployment(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let rev = revision_with_env(&pool, &kek, app, &[]).await;
    let d1 = deploy(&pool, &t, app, rev).await;
    let d2 = deploy(&pool, &t, app, rev).await;
    activate(&pool, d1).await;

    // Bypassing `activate` (which supersedes first), the database itself says no.
    let err = sqlx::query("UPDATE deployments SET status = 'ready', active = true WHERE id = $1")
        .bind(d2)
        .execute(&pool)
        .await
        .unwrap_err();
    let err = loco_db::DbError::from(err);
    assert_eq!(err.reason(), "active_deployment_exists", "{err}");
    // An active deployment must be ready.
    assert!(
        sqlx::query("UPDATE deployments SET status = 'failed' WHERE id = $1")
            .bind(d1)
            .execute(&pool)
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn status_moves_only_forward(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let rev = revision_with_env(&pool, &kek, app, &[]).await;
    let d = deploy(&pool, &t, app, rev).await;
    set(&pool, d, Status::Applying, None).await.unwrap();
    set(&pool, d, Status::Failed, Some("rollout_timeout"))
        .await
        .unwrap();
    let failed = deployments::get(&pool, t.org, d).await.unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_deref()),
        ("failed", Some("rollout_timeout"))
    );
    assert!(failed.finished_at.is_some());

    for to in [Status::Applying, Status::Ready, Status::Pending] {
        let err = set(&pool, d, to, None).await.unwrap_err();
        assert_eq!(err.reason(), "invalid_status_transition");
    }
    let mut tx = pool.begin().await.unwrap();
    let err = deployments::activate(&mut tx, d).await.unwrap_err();
    assert_eq!(err.reason(), "invalid_status_transition");
    drop(tx);
    // A reason that is not snake_case is refused by the schema.
    let d2 = deploy(&pool, &t, app, rev).await;
    assert!(
        set(&pool, d2, Status::Failed, Some("Rollout Timeout"))
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_deployment_takes_only_its_own_apps_revisions(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;
    let app_a = app(&pool, &kek, &a, "web").await;
    let app_b = app(&pool, &kek, &b, "site").await;
    let rev_b = revision_with_env(&pool, &kek, app_b, &[]).await;
    let mut tx = pool.begin().await.unwrap();
    let err = deployments::create(&mut tx, app_a, rev_b, &a.actor())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "not_found");
    drop(tx);
    let d = deploy(&pool, &b, app_b, rev_b).await;
    assert_eq!(
        deployments::get(&pool, a.org, d)
            .await
            .unwrap_err()
            .reason(),
        "not_found"
    );
    assert!(
        deployments::list(&pool, a.org, app_b, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
}
