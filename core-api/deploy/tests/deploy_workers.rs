//! The worker loop and the engine's per-cluster state, against Postgres only: a
//! panicking deployment does not block its app's queue (issue 14, finding 2); a cluster's
//! client and preflight cache follow its stored credentials, and its render settings
//! live in the database (issue 14, item 7).

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::{clusters, deployments, queue};
use loco_deploy::{DeployConfig, Deployer, GateSource};
use loco_preflight::CapacityGate;
use loco_telemetry::Metrics;
use sqlx::PgPool;

fn kek() -> Kek {
    Kek::from_bytes([5u8; 32])
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

/// Polls the database until `f` holds, or panics after `secs` seconds.
async fn until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_panicking_deployment_does_not_block_its_apps_queue(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = app(&pool, &kek(), &t, "web").await;
    let poison = pending(&pool, &t, app).await;
    let config = DeployConfig {
        // Long enough that only a released lease lets the retries happen in time.
        lease: Duration::from_secs(600),
        poll: Duration::from_millis(50),
        ..DeployConfig::default()
    };
    let d = Deployer::new(pool.clone(), kek(), config, &Metrics::new("workers-test"));
    let runs = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = {
        let (d, runs) = (d.clone(), runs.clone());
        tokio::spawn(async move {
            d.run_queue(
                async {
                    let _ = stopped.await;
                },
                move |d, claimed, held| {
                    let runs = runs.clone();
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        if claimed.deployment_id == poison {
                            panic!("a bug in this deployment");
                        }
                        let mut tx = d.db.begin().await?;
                        queue::fence(&mut tx, held.lease()).await?;
                        deployments::activate(&mut tx, claimed.deployment_id).await?;
                        tx.commit().await?;
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    // Queued behind the poisoned one once it runs (queued before, it would be superseded).
    until(30, "the first attempt", || async {
        runs.load(Ordering::SeqCst) >= 1
    })
    .await;
    let next = pending(&pool, &t, app).await;
    until(30, "the next deployment to be ready", || async {
        deployments::get(&pool, t.org, next).await.unwrap().status == "ready"
    })
    .await;
    let _ = stop.send(());
    workers.await.unwrap();
    let gave_up = deployments::get(&pool, t.org, poison).await.unwrap();
    assert_eq!(
        (gave_up.status.as_str(), gave_up.reason.as_deref()),
        ("failed", Some("attempts_exhausted"))
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        4,
        "3 attempts, then the next deployment"
    );
}

fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
}

/// Counts the clusters whose gates were dropped.
#[derive(Default)]
struct Forgets(Mutex<Vec<i64>>);

impl GateSource for Forgets {
    fn gate(&self, _cluster_id: i64, _client: &kube::Client) -> Arc<dyn CapacityGate> {
        unreachable!("no check runs in this test")
    }
    fn forget(&self, cluster_id: i64) {
        self.0.lock().unwrap().push(cluster_id);
    }
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_cluster_client_follows_its_stored_credentials(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    clusters::set_credentials(
        &pool,
        &kek(),
        t.cluster,
        &loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(kubeconfig(
            "https://127.0.0.1:1",
        )))
        .unwrap(),
    )
    .await
    .unwrap();
    let forgets = Arc::new(Forgets::default());
    let d = Deployer::with_gates(
        pool.clone(),
        kek(),
        DeployConfig::default(),
        forgets.clone(),
        &Metrics::new("clients-test"),
    );
    let first = d.client(t.cluster).await.unwrap();
    assert_eq!(first.default_namespace(), "default");
    assert!(
        !d.clusters
            .fetch(&pool, &kek(), t.cluster)
            .await
            .unwrap()
            .replaced
    );

    // The resurrector wrote a new kubeconfig after recreating the cluster.
    clusters::set_credentials(
        &pool,
        &kek(),
        t.cluster,
        &loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(kubeconfig(
            "https://127.0.0.1:2",
        )))
        .unwrap(),
    )
    .await
    .unwrap();
    d.client(t.cluster).await.unwrap();
    assert_eq!(
        *forgets.0.lock().unwrap(),
        [t.cluster],
        "the preflight cache goes too"
    );
    assert!(
        !d.clusters
            .fetch(&pool, &kek(), t.cluster)
            .await
            .unwrap()
            .replaced
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn render_settings_live_in_the_database_and_flags_only_seed_them(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let mut seeded = DeployConfig::default();
    seeded.render.gateway_name = "first".into();
    seeded.render.loco_version = "1.0.0".into();
    let a = Deployer::new(pool.clone(), kek(), seeded, &Metrics::new("settings-a"));
    assert_eq!(
        a.render_settings(t.cluster).await.unwrap().gateway_name,
        "first"
    );

    // Another process (a newer loco-api, the resurrector) starts with other flags.
    let mut other = DeployConfig::default();
    other.render.gateway_name = "second".into();
    other.render.loco_version = "2.0.0".into();
    let b = Deployer::new(pool.clone(), kek(), other, &Metrics::new("settings-b"));
    let in_force = b.render_settings(t.cluster).await.unwrap();
    assert_eq!(
        (
            in_force.gateway_name.as_str(),
            in_force.loco_version.as_str()
        ),
        ("first", "1.0.0"),
        "what the cluster was last rendered with"
    );

    // A change is a new revision row; the newest is in force.
    let mut changed = in_force.clone();
    changed.gateway_name = "third".into();
    let mut tx = pool.begin().await.unwrap();
    clusters::set_render_settings(
        &mut tx,
        t.cluster,
        &serde_json::to_value(&changed).unwrap(),
        "operator",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(b.render_settings(t.cluster).await.unwrap(), changed);
    let rows = count(
        &pool,
        "SELECT count(*) FROM cluster_render_settings WHERE cluster_id = $1",
        t.cluster,
    )
    .await;
    assert_eq!(rows, 2);
}
