//! The deploy queue: per-cluster limit, one deployment per app at a time in order, and a
//! dead worker's deployment taken over when its lease runs out.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::time::Duration;

use db_support::*;
use loco_crypto::Kek;
use loco_db::deployments::{self, Status};
use loco_db::queue;
use sqlx::PgPool;

fn kek() -> Kek {
    Kek::from_bytes([7u8; 32])
}

async fn pending(pool: &PgPool, t: &Tenant, app: i64) -> i64 {
    let rev = revision_with_env(pool, &kek(), app, &[]).await;
    let mut tx = pool.begin().await.unwrap();
    let id = deployments::create(&mut tx, app, rev, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

const LEASE: Duration = Duration::from_secs(60);

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn at_most_n_per_cluster_and_one_per_app_in_order(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let (a, b, c) = (
        app(&pool, &kek(), &t, "a").await,
        app(&pool, &kek(), &t, "b").await,
        app(&pool, &kek(), &t, "c").await,
    );
    let a1 = pending(&pool, &t, a).await;
    let a2 = pending(&pool, &t, a).await;
    let b1 = pending(&pool, &t, b).await;
    let c1 = pending(&pool, &t, c).await;

    let first = queue::claim(&pool, 2, LEASE).await.unwrap().unwrap();
    let second = queue::claim(&pool, 2, LEASE).await.unwrap().unwrap();
    assert_eq!(
        (first.deployment_id, second.deployment_id),
        (a1, b1),
        "oldest first, one per app"
    );
    assert_eq!(first.cluster_id, t.cluster);
    assert!(!first.resumed);
    assert_eq!(
        queue::claim(&pool, 2, LEASE).await.unwrap(),
        None,
        "the cluster's 2 slots are taken"
    );
    assert_eq!(queue::depth(&pool).await.unwrap(), (2, 2));

    // a1 finishes: the next claim may take c1 (a2 waits for nothing now either, but is newer).
    let mut tx = pool.begin().await.unwrap();
    deployments::activate(&mut tx, a1).await.unwrap();
    tx.commit().await.unwrap();
    let third = queue::claim(&pool, 2, LEASE).await.unwrap().unwrap();
    assert_eq!(third.deployment_id, a2);
    assert_eq!(queue::claim(&pool, 2, LEASE).await.unwrap(), None);
    let _ = c1;
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_dead_workers_deployment_is_resumed_after_its_lease(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let d = pending(&pool, &t, a).await;
    let short = Duration::from_millis(300);
    let claimed = queue::claim(&pool, 1, short).await.unwrap().unwrap();
    assert_eq!(claimed.deployment_id, d);
    assert!(
        queue::renew(&pool, d, short).await.unwrap(),
        "its worker renews it"
    );
    assert_eq!(queue::claim(&pool, 1, short).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !queue::renew(&pool, d, short).await.unwrap(),
        "a lapsed lease cannot be renewed"
    );
    let again = queue::claim(&pool, 1, LEASE).await.unwrap().unwrap();
    assert_eq!((again.deployment_id, again.resumed), (d, true));

    // A finished deployment is never claimed again.
    let mut tx = pool.begin().await.unwrap();
    deployments::set_status(&mut tx, d, Status::Failed, Some("test"), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queue::claim(&pool, 1, LEASE).await.unwrap(), None);
}
