//! Regions and clusters: sealed credentials and the health the resurrector writes.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::clusters::{self, Health};
use loco_db::events::Actor;
use loco_db::kubeconfig::InlineKubeconfig;
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

    clusters::set_credentials(
        &pool,
        &kek,
        t.cluster,
        &InlineKubeconfig::parse(Secret::new("new-kubeconfig")).unwrap(),
    )
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
        &InlineKubeconfig::parse(Secret::new("k")).unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "cluster_name_taken");
}

/// Finding: a kubeconfig with `exec` or file references was refused only by the
/// `clusters add` CLI. Now the type every store and use goes through refuses it, and a
/// row that holds one anyway (written by an older loco, or by hand) is refused on read,
/// which is what the deploy engine's cluster client cache reads.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_kubeconfig_that_runs_a_plugin_or_reads_a_file_is_never_stored_or_used(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let exec = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    exec:\n      command: /bin/sh\n      args: [-c, id]\n";
    let e = InlineKubeconfig::parse(Secret::new(exec)).unwrap_err();
    assert_eq!(e.reason(), "kubeconfig_not_inline");

    // A row sealed with the exec kubeconfig, bypassing every writer.
    let (ciphertext, nonce, kek_id): (Vec<u8>, Vec<u8>, String) =
        sqlx::query_as("SELECT dek_wrapped, dek_nonce, dek_kek_id FROM clusters WHERE id = $1")
            .bind(t.cluster)
            .fetch_one(&pool)
            .await
            .unwrap();
    let dek = kek
        .unwrap(
            &loco_crypto::WrappedDek {
                kek_id,
                nonce,
                ciphertext,
            },
            loco_crypto::DekOwner::Cluster(t.cluster),
        )
        .unwrap();
    let sealed = dek
        .seal_cluster_credentials(t.cluster, &Secret::new(exec))
        .unwrap();
    sqlx::query(
        "UPDATE clusters SET credentials_ciphertext = $2, credentials_nonce = $3 WHERE id = $1",
    )
    .bind(t.cluster)
    .bind(sealed.ciphertext)
    .bind(sealed.nonce)
    .execute(&pool)
    .await
    .unwrap();
    let e = clusters::credentials(&pool, &kek, t.cluster)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "kubeconfig_not_inline", "{e}");
}

/// Issue 14, item 7: what a rebuild reads, every app of one cluster with its active
/// deployment and that deployment's revision, in one query.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn every_app_of_a_cluster_with_its_active_deployment(pool: PgPool) {
    use loco_db::{deployments, workspaces};
    let kek = Kek::generate().unwrap();
    let acme = tenant(&pool, &kek, "acme").await;
    let other = tenant(&pool, &kek, "other").await;
    let web = app(&pool, &kek, &acme, "web").await;
    let idle = app(&pool, &kek, &acme, "idle").await;
    let elsewhere = app(&pool, &kek, &other, "far").await;
    // A second workspace of acme on the same cluster.
    let mut tx = pool.begin().await.unwrap();
    let ws2 = workspaces::create(&mut tx, acme.org, acme.cluster, "second", &acme.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let second = Tenant {
        workspace: ws2,
        ..acme
    };
    let api = app(&pool, &kek, &second, "api").await;
    let mut active = Vec::new();
    for a in [web, elsewhere, api] {
        let rev = revision_with_env(&pool, &kek, a, &[("K", "v")]).await;
        let mut tx = pool.begin().await.unwrap();
        let d = deployments::create(&mut tx, a, rev, &Actor::System("test"))
            .await
            .unwrap();
        deployments::activate(&mut tx, d).await.unwrap();
        tx.commit().await.unwrap();
        active.push((a, d, rev));
    }
    let listed = clusters::apps_with_active(&pool, acme.cluster)
        .await
        .unwrap();
    let got: Vec<(i64, Option<i64>, Option<i64>)> = listed
        .iter()
        .map(|c| {
            (
                c.app.id,
                c.deployment.as_ref().map(|d| d.id),
                c.revision.as_ref().map(|r| r.id),
            )
        })
        .collect();
    let (w, a) = (active[0], active[2]);
    assert_eq!(
        got,
        [
            (web, Some(w.1), Some(w.2)),
            (idle, None, None),
            (api, Some(a.1), Some(a.2)),
        ],
        "workspace by workspace, only this cluster's apps"
    );
    assert_eq!(listed[0].revision.as_ref().unwrap().image_digest, DIGEST);
    assert!(listed[0].deployment.as_ref().unwrap().active);
}
