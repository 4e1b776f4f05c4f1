//! Revisions: every change is a new row, env sealed per app + name, the current revision
//! derivable, and writers of one app serialised by its advisory lock.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use db_support::*;
use loco_crypto::Kek;
use loco_db::Page;
use loco_db::revisions::{self, EnvChange, NewRevision};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn every_change_is_a_new_revision_and_env_is_inherited(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    assert_eq!(revisions::intended(&pool, app).await.unwrap(), None);

    let first = revision_with_env(&pool, &kek, app, &[("B", "2"), ("A", "1")]).await;
    // A scale change: same spec, new replicas, env inherited as ciphertext.
    let spec = spec();
    let mut tx = pool.begin().await.unwrap();
    let scaled = revisions::create(
        &mut tx,
        &kek,
        &NewRevision {
            app_id: app,
            spec: &spec,
            image_digest: DIGEST,
            image: IMAGE,
            replicas: 3,
            asleep: false,
            cause: "scale",
            env: EnvChange::CopyFrom(first),
            created_by: Some(t.user),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(scaled > first);

    let current = revisions::intended(&pool, app).await.unwrap().unwrap();
    assert_eq!(
        (current.id, current.replicas, current.cause.as_str()),
        (scaled, 3, "scale")
    );
    assert_eq!(
        revisions::env_names(&pool, scaled).await.unwrap(),
        ["A", "B"]
    );
    let mut conn = pool.acquire().await.unwrap();
    let env = revisions::env(&mut conn, &kek, app, scaled).await.unwrap();
    let plain: Vec<_> = env.iter().map(|(n, v)| (n.as_str(), v.expose())).collect();
    assert_eq!(plain, [("A", "1"), ("B", "2")]);
    // The first revision is unchanged.
    assert_eq!(
        revisions::get(&pool, t.org, first).await.unwrap().replicas,
        1
    );

    let listed = revisions::list(&pool, t.org, app, Page::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [scaled, first]
    );
    // Another org sees none of it.
    let other = tenant(&pool, &kek, "globex").await;
    assert!(
        revisions::list(&pool, other.org, app, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        revisions::get(&pool, other.org, first)
            .await
            .unwrap_err()
            .reason(),
        "not_found"
    );
    // Env of a revision is read only through its own app.
    let other_app = db_support::app(&pool, &kek, &other, "site").await;
    assert!(
        revisions::env(&mut conn, &kek, other_app, scaled)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn writers_of_one_app_are_serialised_by_its_lock(pool: PgPool) {
    let kek = Arc::new(Kek::generate().unwrap());
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let other = db_support::app(&pool, &kek, &t, "other").await;

    // Writer 1 holds the app's lock inside its transaction.
    let mut first = pool.begin().await.unwrap();
    loco_db::lock_app(&mut first, app).await.unwrap();

    // A writer of another app is not held up.
    revision_with_env(&pool, &kek, other, &[]).await;

    // Writer 2 of the same app must wait for it.
    let second = tokio::spawn({
        let (pool, kek) = (pool.clone(), kek.clone());
        async move { revision_with_env(&pool, &kek, app, &[("X", "1")]).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND ((classid::bigint << 32) | objid::bigint) = $1",
        )
        .bind(loco_db::app_lock_key(app))
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writer 2 never queued on the app's lock"
        );
        tokio::task::yield_now().await;
    }
    assert!(!second.is_finished());
    assert_eq!(revisions::intended(&pool, app).await.unwrap(), None);

    // Writer 1 writes and commits; only then does writer 2 get through, after it.
    let spec = spec();
    let one = revisions::create(
        &mut first,
        &kek,
        &NewRevision {
            app_id: app,
            spec: &spec,
            image_digest: DIGEST,
            image: IMAGE,
            replicas: 1,
            asleep: false,
            cause: "deploy",
            env: EnvChange::Replace(vec![]),
            created_by: None,
        },
    )
    .await
    .unwrap();
    first.commit().await.unwrap();
    let two = tokio::time::timeout(Duration::from_secs(20), second)
        .await
        .unwrap()
        .unwrap();
    assert!(two > one);
}
