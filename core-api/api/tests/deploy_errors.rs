//! What users read when a deployment fails for reasons that are loco's, not theirs: the
//! database fails in the middle of a deployment, and the API must show loco's own
//! sentence, the reason code and the deployment id, never the driver's text.
//! Needs Postgres only (the failure comes before any cluster is reached).

#[path = "../../testsupport/api_support/mod.rs"]
mod api_support;
#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use api_support::{ctx, get, kek, token};
use db_support::{app, revision_with_env, tenant};
use loco_db::{deployments, queue};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_database_failure_mid_deployment_shows_loco_words_and_the_id_only(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let app_id = app(&pool, &kek(), &t, "web").await;
    let revision = revision_with_env(&pool, &kek(), app_id, &[]).await;
    let mut tx = pool.begin().await.unwrap();
    let id = deployments::create(&mut tx, app_id, revision, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The deployment starts (its first event is written), then reading the cluster's
    // credentials fails in the database.
    sqlx::query("ALTER TABLE clusters RENAME COLUMN credentials_ciphertext TO gone")
        .execute(&pool)
        .await
        .unwrap();
    let ctx = ctx(&pool);
    let lease = std::time::Duration::from_secs(30);
    let claimed = queue::claim(&pool, queue::ClaimRules::new(3, lease))
        .await
        .unwrap()
        .expect("the deployment is runnable");
    assert_eq!(claimed.deployment_id, id);
    let held = loco_deploy::lease::Held::new(claimed.lease, tokio::time::Instant::now(), lease);
    loco_deploy::flow::run(&ctx.deployer, &claimed, &held)
        .await
        .unwrap();

    let app = loco_http::router(ctx);
    let tok = token(&pool, t.org, t.user).await;
    let d = get(&app, &format!("/v1/orgs/{}/deployments/{id}", t.org), &tok).await;
    assert_eq!(d.json["status"], "failed", "{}", d.text);
    assert_eq!(d.json["reason"], "database_error", "{}", d.text);
    let shown = d.text.to_lowercase();
    for leak in [
        "gone",
        "column",
        "credentials_ciphertext",
        "sqlx",
        "database returned",
        "does not exist",
    ] {
        assert!(!shown.contains(leak), "the API shows {leak:?}: {}", d.text);
    }
    let message = d.json["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("deployment id {id}")),
        "{message}"
    );
    let events = d.json["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{}", d.text);
}

/// On the platform's registry a repository belongs to the org named by its first path
/// component: org acme naming bolt's repository is refused (403) before the registry is
/// asked, with a next step.
#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn another_orgs_repository_on_the_platform_registry_is_refused(pool: PgPool) {
    let t = tenant(&pool, &kek(), "acme").await;
    let mut tx = pool.begin().await.unwrap();
    let new = db_support::new_app(&t, "web", "web.deploy-app.com", "/");
    let app_id = loco_db::apps::create(&mut tx, &kek(), &new, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let spec = "[Metadata]\nName = \"web\"\n[Routing]\nPort = 8080\n[Health]\nPath = \"/health\"\n";
    let app = loco_http::router(ctx(&pool));
    let tok = token(&pool, t.org, t.user).await;
    let platform = loco_deploy::RegistryConfig::default().default_registry;
    for image in [
        format!("{platform}/bolt/web:v1"),
        "bolt/web:v1".to_owned(),
        format!("{platform}/acme-evil/web:v1"),
    ] {
        let r = api_support::call(
            &app,
            axum::http::Method::POST,
            &format!("/v1/orgs/{}/apps/{app_id}/deployments", t.org),
            Some(&tok),
            Some(serde_json::json!({"image": image, "spec": spec})),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (axum::http::StatusCode::FORBIDDEN, "image_not_owned"),
            "{image}: {}",
            r.text
        );
        assert!(
            r.json["next_step"].as_str().unwrap().contains("acme/"),
            "{}",
            r.text
        );
    }
}
