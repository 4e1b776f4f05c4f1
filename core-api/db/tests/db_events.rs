//! The audit trail: filters, newest-first pagination, tenant scoping, snake_case reasons.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::Page;
use loco_db::events::{self, Actor, EventFilter, NewEvent};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn events_filter_and_page_newest_first(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let a = tenant(&pool, &kek, "acme").await;
    let b = tenant(&pool, &kek, "globex").await;
    let app = app(&pool, &kek, &a, "web").await;
    for i in 0..5 {
        events::record(
            &pool,
            &NewEvent {
                org_id: a.org,
                workspace_id: Some(a.workspace),
                app_id: Some(app),
                actor: Actor::System("sleeper"),
                reason: "app_slept",
                message: format!("slept {i}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let filter = EventFilter {
        app_id: Some(app),
        ..Default::default()
    };
    let first = events::list(&pool, a.org, filter, Page::first(3))
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0].message, "slept 4");
    assert_eq!(first[0].actor, "system:sleeper");
    let rest = events::list(&pool, a.org, filter, Page::after(first[2].id, 3))
        .await
        .unwrap();
    // slept 1, slept 0, then app_created.
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[2].reason, "app_created");
    assert!(
        events::list(&pool, b.org, filter, Page::default())
            .await
            .unwrap()
            .is_empty()
    );

    let bad = events::record(
        &pool,
        &NewEvent {
            org_id: a.org,
            reason: "Not Snake",
            message: "x".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(bad.is_err());
}
