//! Platform releases: one row per change, the newest in force, per cluster.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::platform;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn every_change_is_a_row_and_the_newest_is_in_force(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    assert_eq!(platform::current(&pool, t.cluster).await.unwrap(), None);

    let v1 = json!({"api": {"replicas": 1}});
    let mut tx = pool.begin().await.unwrap();
    let (first, new) = platform::record(&mut tx, t.cluster, "0.1.0", &v1, "ops")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(new);

    // The same values again: no new row.
    let mut tx = pool.begin().await.unwrap();
    let (same, new) = platform::record(&mut tx, t.cluster, "0.1.0", &v1, "someone-else")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!new);
    assert_eq!(same.id, first.id);

    let v2 = json!({"api": {"replicas": 3}});
    let mut tx = pool.begin().await.unwrap();
    let (second, new) = platform::record(&mut tx, t.cluster, "0.1.0", &v2, "ops")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(new && second.id > first.id);
    let current = platform::current(&pool, t.cluster).await.unwrap().unwrap();
    assert_eq!((current.id, &current.values), (second.id, &v2));
    let history = platform::history(&pool, t.cluster).await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.id).collect::<Vec<_>>(),
        [second.id, first.id]
    );

    // An unknown cluster is named, not a foreign-key error.
    let mut tx = pool.begin().await.unwrap();
    let e = platform::record(&mut tx, t.cluster + 1000, "0.1.0", &v1, "ops")
        .await
        .unwrap_err();
    assert!(matches!(e, loco_db::DbError::NotFound("cluster")), "{e:?}");
}
