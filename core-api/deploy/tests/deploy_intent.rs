//! Issue 14, finding 1: every change builds on the app's intended state (the newest
//! revision that did not fail, queued or not), and the queue runs the newest intent.
//! Database only: the changes are queued and claimed here, no cluster is written.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use std::sync::Arc;
use std::time::Duration;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::deployments;
use loco_db::events::Actor;
use loco_db::queue::{self, ClaimRules};
use loco_db::revisions::{self, EnvChange, NewRevision};
use loco_deploy::request::{Change, DeployRequest, Outcome};
use loco_deploy::{DeployConfig, Deployer};
use loco_telemetry::Metrics;
use sqlx::PgPool;

const V1: &str = "registry.example/team/web:v1@sha256:0000000000000000000000000000000000000000000000000000000000000001";
const V2: &str = "registry.example/team/web:v2@sha256:0000000000000000000000000000000000000000000000000000000000000002";

fn kek() -> Kek {
    Kek::from_bytes([9u8; 32])
}

fn deployer(pool: &PgPool) -> Deployer {
    let mut config = DeployConfig::default();
    config.spec.base_domain = "apps.example.com".into();
    Deployer::new(
        pool.clone(),
        kek(),
        config,
        &Metrics::new("deploy-intent-test"),
    )
}

fn loco_toml(extra: &str) -> String {
    format!(
        "[Metadata]\nName = \"web\"\n[Routing]\nPort = 8080\n[Health]\nPath = \"/health\"\n{extra}"
    )
}

fn spec_json() -> serde_json::Value {
    let opts = loco_spec::Options {
        base_domain: "apps.example.com".into(),
        ..Default::default()
    };
    let v = loco_spec::validate(&loco_toml(""), "loco.toml", &opts).unwrap();
    serde_json::to_value(v.spec).unwrap()
}

/// Writes a revision running `image` and a pending deployment of it.
async fn queued(pool: &PgPool, t: &Tenant, app: i64, image: &str, asleep: bool) -> (i64, i64) {
    let spec = spec_json();
    let digest = image.rsplit_once('@').unwrap().1;
    let mut tx = pool.begin().await.unwrap();
    let rev = revisions::create(
        &mut tx,
        &kek(),
        &NewRevision {
            app_id: app,
            spec: &spec,
            image_digest: digest,
            image,
            replicas: 1,
            asleep,
            cause: "deploy",
            env: EnvChange::Replace(vec![]),
            created_by: None,
        },
    )
    .await
    .unwrap();
    let d = deployments::create(&mut tx, app, rev, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (rev, d)
}

/// Claims the app's next deployment and marks it ready, as a worker would.
async fn run_next(pool: &PgPool) -> i64 {
    let c = queue::claim(pool, ClaimRules::new(3, Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("a runnable deployment");
    let mut tx = pool.begin().await.unwrap();
    queue::fence(&mut tx, &c.lease).await.unwrap();
    deployments::activate(&mut tx, c.deployment_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    c.deployment_id
}

async fn app_row(pool: &PgPool, t: &Tenant, id: i64) -> loco_db::apps::App {
    loco_db::apps::get(pool, t.org, id).await.unwrap()
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_scale_after_a_queued_deploy_scales_the_new_image(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = app_row(&pool, &t, db_support::app(&pool, &kek(), &t, "web").await).await;
    queued(&pool, &t, app.id, V1, false).await;
    run_next(&pool).await;
    let (_, v2) = queued(&pool, &t, app.id, V2, false).await;

    let d = deployer(&pool);
    let scale = Change::Scale {
        replicas: Some(3),
        cpu: None,
        memory: None,
    };
    let Outcome::Queued { deployment_id, .. } =
        d.request_change(&app, scale, &t.actor()).await.unwrap()
    else {
        panic!("a scale is queued");
    };
    assert_eq!(
        run_next(&pool).await,
        deployment_id,
        "the newest intent runs"
    );
    let ran = revisions::deployed(&pool, app.id).await.unwrap().unwrap();
    assert_eq!((ran.image.as_deref(), ran.replicas), (Some(V2), 3));
    let skipped = deployments::get(&pool, t.org, v2).await.unwrap();
    assert_eq!(
        skipped.status, "superseded",
        "v2 rides along with the scale"
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_env_change_after_a_queued_deploy_keeps_both_and_a_deploy_keeps_the_env(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = app_row(&pool, &t, db_support::app(&pool, &kek(), &t, "web").await).await;
    queued(&pool, &t, app.id, V1, false).await;
    run_next(&pool).await;
    queued(&pool, &t, app.id, V2, false).await;

    let d = deployer(&pool);
    let env = Change::Env(vec![("TOKEN".into(), Secret::new("t0p"))]);
    d.request_change(&app, env, &t.actor()).await.unwrap();
    // A deploy of a loco.toml with inline env, while both are still queued.
    let req = DeployRequest {
        image: None,
        spec: Some(loco_toml("[Env.Variables]\nMODE = \"fast\"\n")),
        profile: None,
    };
    let Outcome::Queued { revision_id, .. } =
        d.request_deploy(&app, &req, &t.actor()).await.unwrap()
    else {
        panic!("the deploy is queued");
    };
    let rev = revisions::get(&pool, t.org, revision_id).await.unwrap();
    assert_eq!(rev.image.as_deref(), Some(V2), "the queued deploy's image");
    let mut conn = pool.acquire().await.unwrap();
    let env: Vec<(String, String)> = revisions::env(&mut conn, &kek(), app.id, revision_id)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect();
    assert_eq!(
        env,
        [
            ("MODE".into(), "fast".into()),
            ("TOKEN".into(), "t0p".into())
        ]
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn twenty_concurrent_wakes_make_one_revision(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app = app_row(&pool, &t, db_support::app(&pool, &kek(), &t, "web").await).await;
    queued(&pool, &t, app.id, V1, true).await;
    run_next(&pool).await;

    let d = deployer(&pool);
    let app = Arc::new(app);
    let mut wakes = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (d, app) = (d.clone(), app.clone());
        wakes.spawn(async move {
            d.request_change(&app, Change::Wake, &Actor::System("reviver"))
                .await
                .unwrap()
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(outcome) = wakes.join_next().await {
        ids.insert(match outcome.unwrap() {
            Outcome::Queued { deployment_id, .. } | Outcome::Unchanged { deployment_id } => {
                deployment_id
            }
        });
    }
    let wake_revisions = count(
        &pool,
        "SELECT count(*) FROM app_revisions WHERE app_id = $1 AND cause = 'wake'",
        app.id,
    )
    .await;
    assert_eq!(wake_revisions, 1);
    assert_eq!(ids.len(), 1, "every caller waits on the same deployment");
}
