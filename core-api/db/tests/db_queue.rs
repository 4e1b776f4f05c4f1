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

fn rules(max_per_cluster: i64, lease: Duration) -> queue::ClaimRules {
    queue::ClaimRules::new(max_per_cluster, lease)
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn at_most_n_per_cluster_and_one_per_app_in_order(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let (a, b, c) = (
        app(&pool, &kek(), &t, "a").await,
        app(&pool, &kek(), &t, "b").await,
        app(&pool, &kek(), &t, "c").await,
    );
    let a1 = pending(&pool, &t, a).await;
    let b1 = pending(&pool, &t, b).await;
    let c1 = pending(&pool, &t, c).await;

    let first = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    let second = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    assert_eq!(
        (first.deployment_id, second.deployment_id),
        (a1, b1),
        "oldest first"
    );
    assert_eq!(first.cluster_id, t.cluster);
    assert!(!first.resumed);
    assert_eq!((first.lease.epoch, first.attempt), (1, 1));
    assert_eq!(
        queue::claim(&pool, rules(2, LEASE)).await.unwrap(),
        None,
        "the cluster's 2 slots are taken"
    );
    // Queued while a1 runs: waits for it, however many slots free up.
    let a2 = pending(&pool, &t, a).await;
    assert_eq!(queue::depth(&pool).await.unwrap(), (2, 2));

    let mut tx = pool.begin().await.unwrap();
    queue::fence(&mut tx, &second.lease).await.unwrap();
    deployments::activate(&mut tx, b1).await.unwrap();
    tx.commit().await.unwrap();
    let third = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    assert_eq!(third.deployment_id, c1, "a2 waits for a1");
    assert_eq!(queue::claim(&pool, rules(3, LEASE)).await.unwrap(), None);

    let mut tx = pool.begin().await.unwrap();
    queue::fence(&mut tx, &first.lease).await.unwrap();
    deployments::activate(&mut tx, a1).await.unwrap();
    tx.commit().await.unwrap();
    let fourth = queue::claim(&pool, rules(3, LEASE)).await.unwrap().unwrap();
    assert_eq!(fourth.deployment_id, a2);
}

/// Issue 14, finding 1: a queued deployment with a newer one of the same app behind it
/// is superseded (the newer revision was built on it), never applied.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_queued_deployment_with_a_newer_one_behind_it_is_superseded(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let older = pending(&pool, &t, a).await;
    let newer = pending(&pool, &t, a).await;
    let claimed = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    assert_eq!(claimed.deployment_id, newer, "the newest intent runs");
    let d = deployments::get(&pool, t.org, older).await.unwrap();
    assert_eq!(
        (d.status.as_str(), d.reason.as_deref(), d.started_at),
        ("superseded", Some("superseded_in_queue"), None)
    );
    assert_eq!(queue::claim(&pool, rules(2, LEASE)).await.unwrap(), None);
}

/// Ends a lease now, as if its worker had stopped renewing it long ago.
async fn expire(pool: &PgPool, deployment_id: i64) {
    sqlx::query(
        "UPDATE deployments SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(deployment_id)
    .execute(pool)
    .await
    .unwrap();
}

/// Issue 14, finding 2: a worker whose lease was taken over can neither activate nor fail
/// the deployment, nor renew its lease; the worker that took over can.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_worker_whose_lease_was_taken_over_cannot_finish_the_deployment(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let d = pending(&pool, &t, a).await;
    let stale = queue::claim(&pool, rules(1, LEASE)).await.unwrap().unwrap();
    expire(&pool, d).await;
    let live = queue::claim(&pool, rules(1, LEASE)).await.unwrap().unwrap();
    assert_eq!((live.deployment_id, live.resumed), (d, true));
    assert!(
        live.lease.epoch > stale.lease.epoch,
        "each claim a higher epoch"
    );
    assert_eq!(live.attempt, 2);

    assert!(!queue::renew(&pool, &stale.lease, LEASE).await.unwrap());
    let mut tx = pool.begin().await.unwrap();
    let e = queue::fence(&mut tx, &stale.lease).await.unwrap_err();
    assert_eq!(e.reason(), "lease_lost");
    drop(tx);

    let mut tx = pool.begin().await.unwrap();
    queue::fence(&mut tx, &live.lease).await.unwrap();
    deployments::activate(&mut tx, d).await.unwrap();
    tx.commit().await.unwrap();
    // Even once the deployment is finished, the stale claim stays fenced off.
    let mut tx = pool.begin().await.unwrap();
    assert!(queue::fence(&mut tx, &stale.lease).await.is_err());
    assert!(queue::fence(&mut tx, &live.lease).await.is_err());
}

/// Issue 14, finding 2: after the configured number of claims a deployment that never
/// finishes fails `attempts_exhausted`, and the app's next deployment runs.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_deployment_that_never_finishes_fails_after_its_attempts(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let d = pending(&pool, &t, a).await;
    for attempt in 1..=3 {
        let c = queue::claim(&pool, rules(1, LEASE)).await.unwrap().unwrap();
        assert_eq!((c.deployment_id, c.attempt), (d, attempt));
        queue::release(&pool, &c.lease).await.unwrap();
        if attempt == 1 {
            // A release frees the app at once: no waiting for the lease to run out.
            let next = pending(&pool, &t, a).await;
            let _ = next;
        }
    }
    let next = queue::claim(&pool, rules(1, LEASE)).await.unwrap().unwrap();
    assert_ne!(next.deployment_id, d);
    let gave_up = deployments::get(&pool, t.org, d).await.unwrap();
    assert_eq!(
        (gave_up.status.as_str(), gave_up.reason.as_deref()),
        ("failed", Some("attempts_exhausted"))
    );
}

/// Issue 14, findings 4 and 7: no deployment of an app being deleted, or of a cluster
/// being rebuilt, is claimed or resumed.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn deleted_apps_and_rebuilding_clusters_are_fenced_off(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let b = app(&pool, &kek(), &t, "b").await;
    let resumable = pending(&pool, &t, a).await;
    let c = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    assert_eq!(c.deployment_id, resumable);
    assert_eq!(
        queue::fence_app(&pool, a).await.unwrap(),
        Some(resumable),
        "a live lease: the deletion must wait"
    );
    // Its worker died mid-apply; then a change was queued during the delete.
    expire(&pool, resumable).await;
    let queued = pending(&pool, &t, a).await;
    assert_eq!(queue::fence_app(&pool, a).await.unwrap(), None);
    let late = pending(&pool, &t, a).await;
    assert_eq!(queue::claim(&pool, rules(2, LEASE)).await.unwrap(), None);
    for id in [resumable, queued] {
        let d = deployments::get(&pool, t.org, id).await.unwrap();
        assert_eq!(
            (d.status.as_str(), d.reason.as_deref()),
            ("failed", Some("cancelled"))
        );
    }
    let d = deployments::get(&pool, t.org, late).await.unwrap();
    assert_eq!(d.status, "pending", "queued after the fence: never claimed");

    let b1 = pending(&pool, &t, b).await;
    loco_db::clusters::set_health(
        &pool,
        t.cluster,
        loco_db::clusters::Health::Rebuilding,
        None,
    )
    .await
    .unwrap();
    assert_eq!(queue::claim(&pool, rules(2, LEASE)).await.unwrap(), None);
    loco_db::clusters::set_health(&pool, t.cluster, loco_db::clusters::Health::Healthy, None)
        .await
        .unwrap();
    let c = queue::claim(&pool, rules(2, LEASE)).await.unwrap().unwrap();
    assert_eq!(c.deployment_id, b1);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_dead_workers_deployment_is_resumed_after_its_lease(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let a = app(&pool, &kek(), &t, "a").await;
    let d = pending(&pool, &t, a).await;
    let short = Duration::from_millis(300);
    let claimed = queue::claim(&pool, rules(1, short)).await.unwrap().unwrap();
    assert_eq!(claimed.deployment_id, d);
    assert!(
        queue::renew(&pool, &claimed.lease, short).await.unwrap(),
        "its worker renews it"
    );
    assert_eq!(queue::claim(&pool, rules(1, short)).await.unwrap(), None);
    expire(&pool, d).await;
    assert!(
        !queue::renew(&pool, &claimed.lease, short).await.unwrap(),
        "a lapsed lease cannot be renewed"
    );
    let again = queue::claim(&pool, rules(1, LEASE)).await.unwrap().unwrap();
    assert_eq!((again.deployment_id, again.resumed), (d, true));

    // A finished deployment is never claimed again.
    let mut tx = pool.begin().await.unwrap();
    deployments::set_status(&mut tx, d, Status::Failed, Some("test"), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queue::claim(&pool, rules(1, LEASE)).await.unwrap(), None);
}
