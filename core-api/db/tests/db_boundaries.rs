//! Tenant boundaries the database itself enforces (migration 0007): a host belongs to
//! the workspace whose app claimed it first, and an image record never changes org or
//! app.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::apps;
use loco_db::images::{self, NewImage};
use loco_db::workspaces;
use sqlx::PgPool;

async fn add_app(
    pool: &PgPool,
    kek: &Kek,
    t: &Tenant,
    name: &str,
    host: &str,
    path: &str,
) -> Result<i64, loco_db::DbError> {
    let mut tx = pool.begin().await.unwrap();
    let id = apps::create(&mut tx, kek, &new_app(t, name, host, path), &t.actor()).await?;
    tx.commit().await.unwrap();
    Ok(id)
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_host_belongs_to_the_workspace_that_claimed_it(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "bolt").await;
    let host = "shop.deploy-app.com";
    let shop = add_app(&pool, &kek, &a, "shop", host, "/").await.unwrap();

    // Another org cannot add a longer prefix on the host and take its /api traffic.
    let e = add_app(&pool, &kek, &b, "thief", host, "/api")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "host_taken", "{e}");
    // Nor can another workspace of the same org (by default a host is per workspace).
    let mut tx = pool.begin().await.unwrap();
    let other_ws = workspaces::create(&mut tx, a.org, a.cluster, "staging", &a.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let staging = Tenant {
        workspace: other_ws,
        ..a
    };
    let e = add_app(&pool, &kek, &staging, "api", host, "/api")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "host_taken", "{e}");
    // The claiming workspace adds prefixes freely.
    let api = add_app(&pool, &kek, &a, "api", host, "/api").await.unwrap();

    // The claim goes with the host's last app; then anyone may claim it.
    for id in [shop, api] {
        sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    add_app(&pool, &kek, &b, "shop", host, "/").await.unwrap();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_image_record_never_changes_org_or_app(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "bolt").await;
    let app_a = app(&pool, &kek, &a, "web").await;
    let app_b = app(&pool, &kek, &b, "api").await;
    let image = |org_id, app_id, digest| NewImage {
        org_id,
        app_id,
        repository: "ghcr.io/public/tool",
        tag: "v1",
        digest,
        size_bytes: 10,
    };
    let d2 = "sha256:0000000000000000000000000000000000000000000000000000000000000002";
    for (org, app, digest) in [(a.org, app_a, DIGEST), (b.org, app_b, d2)] {
        let mut tx = pool.begin().await.unwrap();
        images::record(&mut tx, &image(org, app, digest))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let rows: Vec<(i64, Option<i64>, String)> =
        sqlx::query_as("SELECT org_id, app_id, digest FROM images ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (a.org, Some(app_a), DIGEST.to_owned()),
            (b.org, Some(app_b), d2.to_owned())
        ],
        "org B's deploy of the same repository and tag rewrote org A's record"
    );
    for (change, value) in [
        ("UPDATE images SET org_id = $1 WHERE org_id = $2", b.org),
        ("UPDATE images SET app_id = $1 WHERE org_id = $2", app_b),
    ] {
        let e = sqlx::query(change)
            .bind(value)
            .bind(a.org)
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("never changes org or app"),
            "{change}: {e}"
        );
    }
    // Deleting the app keeps the record (the janitor still collects it), without app.
    sqlx::query("DELETE FROM apps WHERE id = $1")
        .bind(app_a)
        .execute(&pool)
        .await
        .unwrap();
}
