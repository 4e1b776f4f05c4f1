//! Regions and clusters: sealed credentials and the health the resurrector writes.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::clusters::{self, Health};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn credentials_are_sealed_and_health_is_recorded(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let c = clusters::get(&pool, t.cluster).await.unwrap();
    assert_eq!(
        (c.provider.as_str(), c.region.as_str(), c.status.as_str()),
        ("hetzner", "fsn1", "unknown")
    );
    assert_eq!(clusters::list_regions(&pool).await.unwrap().len(), 1);

    clusters::set_credentials(&pool, &kek, t.cluster, &Secret::new("new-kubeconfig"))
        .await
        .unwrap();
    assert_eq!(
        clusters::credentials(&pool, &kek, t.cluster)
            .await
            .unwrap()
            .expose(),
        "new-kubeconfig"
    );
    let other = Kek::generate().unwrap();
    assert_eq!(
        clusters::credentials(&pool, &other, t.cluster)
            .await
            .unwrap_err()
            .reason(),
        "kek_mismatch"
    );

    clusters::set_health(&pool, t.cluster, Health::Degraded, Some("node_not_ready"))
        .await
        .unwrap();
    let c = clusters::get(&pool, t.cluster).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_reason.as_deref()),
        ("degraded", Some("node_not_ready"))
    );
    assert!(c.checked_at.is_some());
    assert_eq!(clusters::list(&pool).await.unwrap().len(), 1);

    let mut tx = pool.begin().await.unwrap();
    let region = clusters::upsert_region(&mut *tx, "hetzner", "fsn1")
        .await
        .unwrap();
    assert_eq!(region, c.region_id);
    let err = clusters::create(
        &mut tx,
        &kek,
        region,
        "acme-cluster",
        "https://x",
        &Secret::new("k"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "cluster_name_taken");
}
