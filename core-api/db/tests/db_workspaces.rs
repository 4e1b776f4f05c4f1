//! Workspaces: tenant scoping and deletion with everything in them.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::events::{self, EventFilter};
use loco_db::{Page, workspaces};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn workspaces_are_scoped_and_deleted_with_their_apps(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;
    assert_eq!(
        workspaces::get(&pool, a.org, a.workspace)
            .await
            .unwrap()
            .cluster_id,
        a.cluster
    );
    assert_eq!(
        workspaces::get(&pool, b.org, a.workspace)
            .await
            .unwrap_err()
            .reason(),
        "not_found"
    );
    assert_eq!(
        workspaces::list(&pool, b.org, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let mut tx = pool.begin().await.unwrap();
    let err = workspaces::create(&mut tx, a.org, a.cluster, "default", &a.actor())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "workspace_name_taken");
    drop(tx);

    let app = app(&pool, &kek, &a, "web").await;
    let rev = revision_with_env(&pool, &kek, app, &[("K", "v")]).await;
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(
        workspaces::delete(&mut tx, b.org, a.workspace, &b.actor())
            .await
            .unwrap_err()
            .reason(),
        "not_found"
    );
    drop(tx);
    let mut tx = pool.begin().await.unwrap();
    workspaces::delete(&mut tx, a.org, a.workspace, &a.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        count(&pool, "SELECT count(*) FROM apps WHERE id = $1", app).await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM app_revision_env WHERE revision_id = $1",
            rev
        )
        .await,
        0
    );
    let trail = events::list(
        &pool,
        a.org,
        EventFilter {
            workspace_id: Some(a.workspace),
            ..Default::default()
        },
        Page::default(),
    )
    .await
    .unwrap();
    assert_eq!(trail[0].reason, "workspace_deleted");
}
