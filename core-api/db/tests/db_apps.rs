//! Apps: routes and gRPC services unique per domain, tenant scoping, deletion with the
//! data key (crypto-shredding).

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::apps;
use loco_db::events::{self, EventFilter};
use loco_db::{DbError, Page};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn host_and_path_prefix_are_unique_per_domain(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;

    let mut tx = pool.begin().await.unwrap();
    apps::create(
        &mut tx,
        &kek,
        &new_app(&a, "web", "shop.example.com", "/"),
        &a.actor(),
    )
    .await
    .unwrap();
    apps::create(
        &mut tx,
        &kek,
        &new_app(&a, "api", "shop.example.com", "/api"),
        &a.actor(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Another org cannot take the same host + path either: the domain is shared.
    let mut tx = pool.begin().await.unwrap();
    let err = apps::create(
        &mut tx,
        &kek,
        &new_app(&b, "web", "shop.example.com", "/api"),
        &b.actor(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "route_taken", "{err}");
    drop(tx);

    // Same name in the same workspace is refused too.
    let mut tx = pool.begin().await.unwrap();
    let err = apps::create(
        &mut tx,
        &kek,
        &new_app(&a, "web", "other.example.com", "/"),
        &a.actor(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "app_name_taken", "{err}");
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn grpc_service_names_are_unique_per_host(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let svc = vec!["acme.v1.Orders".to_string()];

    let mut tx = pool.begin().await.unwrap();
    let first = apps::create(
        &mut tx,
        &kek,
        &apps::NewApp {
            grpc_services: &svc,
            ..new_app(&t, "orders", "grpc.example.com", "/orders")
        },
        &t.actor(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(apps::grpc_services(&pool, first).await.unwrap(), svc);

    let mut tx = pool.begin().await.unwrap();
    let err = apps::create(
        &mut tx,
        &kek,
        &apps::NewApp {
            grpc_services: &svc,
            ..new_app(&t, "orders2", "grpc.example.com", "/orders2")
        },
        &t.actor(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "grpc_service_taken", "{err}");
    drop(tx);

    // The same service name on another host is another domain: allowed.
    let mut tx = pool.begin().await.unwrap();
    apps::create(
        &mut tx,
        &kek,
        &apps::NewApp {
            grpc_services: &svc,
            ..new_app(&t, "orders3", "grpc2.example.com", "/")
        },
        &t.actor(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn apps_are_scoped_to_their_org(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;
    let app = app(&pool, &kek, &a, "web").await;

    assert_eq!(apps::get(&pool, a.org, app).await.unwrap().name, "web");
    assert!(matches!(
        apps::get(&pool, b.org, app).await,
        Err(DbError::NotFound("app"))
    ));
    assert!(
        apps::list(&pool, b.org, a.workspace, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        apps::list(&pool, a.org, a.workspace, Page::default())
            .await
            .unwrap()
            .len(),
        1
    );

    // An app cannot be put into another org's workspace.
    let mut tx = pool.begin().await.unwrap();
    let err = apps::create(
        &mut tx,
        &kek,
        &apps::NewApp {
            workspace_id: a.workspace,
            ..new_app(&b, "sneaky", "sneaky.example.com", "/")
        },
        &b.actor(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::NotFound("workspace")), "{err}");
    drop(tx);

    // Deleting through another org is a not-found, and deletes nothing.
    let mut tx = pool.begin().await.unwrap();
    let err = apps::delete(&mut tx, b.org, app, &b.actor())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "not_found");
    drop(tx);
    assert!(apps::get(&pool, a.org, app).await.is_ok());
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn pagination_walks_every_app_once(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    for i in 0..5 {
        app(&pool, &kek, &t, &format!("app{i}")).await;
    }
    let mut seen = vec![];
    let mut page = Page::first(2);
    loop {
        let rows = apps::list(&pool, t.org, t.workspace, page).await.unwrap();
        let Some(last) = rows.last() else { break };
        page = Page::after(last.id, 2);
        seen.extend(rows.into_iter().map(|a| a.name));
    }
    assert_eq!(seen, ["app0", "app1", "app2", "app3", "app4"]);
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn route_lookup_takes_the_longest_prefix(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let mut tx = pool.begin().await.unwrap();
    let root = apps::create(
        &mut tx,
        &kek,
        &new_app(&t, "web", "h.example.com", "/"),
        &t.actor(),
    )
    .await
    .unwrap();
    let api = apps::create(
        &mut tx,
        &kek,
        &new_app(&t, "api", "h.example.com", "/api"),
        &t.actor(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let find = |path: &'static str| {
        let pool = pool.clone();
        async move {
            apps::find_by_route(&pool, "h.example.com", path)
                .await
                .unwrap()
                .map(|a| a.id)
        }
    };
    assert_eq!(find("/api/orders").await, Some(api));
    assert_eq!(find("/about").await, Some(root));
    assert_eq!(
        apps::find_by_route(&pool, "nope.example.com", "/")
            .await
            .unwrap(),
        None
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn deleting_an_app_removes_its_rows_and_data_key(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let keep = app_in(&pool, &kek, &t, "keep").await;
    let rev = revision_with_env(&pool, &kek, app, &[("TOKEN", "abc")]).await;
    revision_with_env(&pool, &kek, keep, &[("TOKEN", "xyz")]).await;
    let mut tx = pool.begin().await.unwrap();
    let dep = loco_db::deployments::create(&mut tx, app, rev, &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("INSERT INTO activity (app_id, host, path_prefix, last_seen_at, source) VALUES ($1, 'x', '/', now(), 'reviver')")
        .bind(app)
        .execute(&pool)
        .await
        .unwrap();
    let dek_before: Vec<u8> = sqlx::query_scalar("SELECT dek_wrapped FROM apps WHERE id = $1")
        .bind(app)
        .fetch_one(&pool)
        .await
        .unwrap();

    let mut tx = pool.begin().await.unwrap();
    apps::delete(&mut tx, t.org, app, &t.actor()).await.unwrap();
    tx.commit().await.unwrap();

    for sql in [
        "SELECT count(*) FROM apps WHERE id = $1",
        "SELECT count(*) FROM app_revisions WHERE app_id = $1",
        "SELECT count(*) FROM deployments WHERE app_id = $1",
        "SELECT count(*) FROM activity WHERE app_id = $1",
    ] {
        assert_eq!(count(&pool, sql, app).await, 0, "{sql}");
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM app_revision_env WHERE revision_id = $1",
            rev
        )
        .await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM deployments WHERE id = $1", dep).await,
        0
    );
    // The wrapped DEK is nowhere in the database any more.
    let dek_left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM apps WHERE dek_wrapped = $1) + (SELECT count(*) FROM clusters WHERE dek_wrapped = $1)",
    )
    .bind(&dek_before)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dek_left, 0);
    // The other app is untouched, and the deletion is on record.
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM app_revisions WHERE app_id = $1",
            keep
        )
        .await,
        1
    );
    let trail = events::list(
        &pool,
        t.org,
        EventFilter {
            app_id: Some(app),
            ..Default::default()
        },
        Page::default(),
    )
    .await
    .unwrap();
    assert_eq!(trail[0].reason, "app_deleted");
    assert_eq!(trail[0].actor, format!("user:{}", t.user));
}

async fn app_in(pool: &PgPool, kek: &Kek, t: &Tenant, name: &str) -> i64 {
    app(pool, kek, t, name).await
}
