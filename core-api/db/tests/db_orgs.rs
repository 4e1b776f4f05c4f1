//! Orgs, users and memberships.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::Page;
use loco_db::orgs::{self, Provider, Role};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_org_starts_with_its_owner_and_roles_are_per_org(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;
    assert_eq!(
        orgs::role_of(&pool, a.org, a.user).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(orgs::role_of(&pool, a.org, b.user).await.unwrap(), None);

    orgs::add_member(&pool, a.org, b.user, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        orgs::role_of(&pool, a.org, b.user).await.unwrap(),
        Some(Role::Viewer)
    );
    orgs::add_member(&pool, a.org, b.user, Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        orgs::role_of(&pool, a.org, b.user).await.unwrap(),
        Some(Role::Admin)
    );
    let names: Vec<_> = orgs::list_orgs_of_user(&pool, b.user, Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["acme", "globex"]);

    let mut tx = pool.begin().await.unwrap();
    let err = orgs::create_org(&mut tx, "acme", b.user).await.unwrap_err();
    assert_eq!(err.reason(), "org_name_taken");
    drop(tx);

    orgs::set_deploy_gate(&pool, a.org, &["acme/app".to_string()])
        .await
        .unwrap();
    assert_eq!(
        orgs::get_org(&pool, a.org).await.unwrap().deploy_gate_repos,
        ["acme/app"]
    );
    assert_eq!(
        orgs::get_org(&pool, 999_999).await.unwrap_err().reason(),
        "not_found"
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn an_identity_maps_to_one_user(pool: PgPool) {
    let first = orgs::upsert_user(&pool, Provider::Github, "42", "octo", None)
        .await
        .unwrap();
    let again = orgs::upsert_user(
        &pool,
        Provider::Github,
        "42",
        "octocat",
        Some("o@example.com"),
    )
    .await
    .unwrap();
    assert_eq!(first, again);
    let user = orgs::get_user(&pool, first).await.unwrap();
    assert_eq!(
        (user.login.as_str(), user.email.as_deref()),
        ("octocat", Some("o@example.com"))
    );
    // The same uid at another provider is another person.
    let google = orgs::upsert_user(&pool, Provider::Google, "42", "octo", None)
        .await
        .unwrap();
    assert_ne!(google, first);
}
