//! KEK rotation against the database, and ciphertexts that fail once moved.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::Kek;
use loco_db::{clusters, keys, revisions};
use sqlx::PgPool;

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn rotation_rewraps_every_data_key_and_old_ciphertexts_still_open(pool: PgPool) {
    let old = Kek::generate().unwrap();
    let new = Kek::generate().unwrap();
    let t = tenant(&pool, &old, "acme").await;
    let a1 = app(&pool, &old, &t, "one").await;
    let a2 = app(&pool, &old, &t, "two").await;
    let r1 = revision_with_env(&pool, &old, a1, &[("DB_PASSWORD", "p1")]).await;
    let r2 = revision_with_env(&pool, &old, a2, &[("DB_PASSWORD", "p2")]).await;
    let env_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM app_revision_env ORDER BY revision_id")
            .fetch_all(&pool)
            .await
            .unwrap();

    let mut tx = pool.begin().await.unwrap();
    let report = keys::rotate(&mut tx, &old, &new).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (
            report.apps_rewrapped,
            report.clusters_rewrapped,
            report.already_current
        ),
        (2, 1, 0)
    );
    assert_eq!(
        keys::kek_usage(&pool).await.unwrap(),
        [(new.id().to_string(), 3)]
    );

    // The values were not re-encrypted, and they open under the new KEK only.
    let env_after: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM app_revision_env ORDER BY revision_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(env_before, env_after);
    let mut conn = pool.acquire().await.unwrap();
    for (app, rev, want) in [(a1, r1, "p1"), (a2, r2, "p2")] {
        let env = revisions::env(&mut conn, &new, app, rev).await.unwrap();
        assert_eq!(env[0].1.expose(), want);
        let err = revisions::env(&mut conn, &old, app, rev).await.unwrap_err();
        assert_eq!(err.reason(), "kek_mismatch");
    }
    assert_eq!(
        clusters::credentials(&pool, &new, t.cluster)
            .await
            .unwrap()
            .expose(),
        "apiVersion: v1\nkind: Config\n"
    );

    // Running it again changes nothing; a third KEK aborts the whole rotation.
    let mut tx = pool.begin().await.unwrap();
    let again = keys::rotate(&mut tx, &old, &new).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((again.apps_rewrapped, again.already_current), (0, 3));
    let stranger = Kek::generate().unwrap();
    let newer = Kek::generate().unwrap();
    let mut tx = pool.begin().await.unwrap();
    let err = keys::rotate(&mut tx, &stranger, &newer).await.unwrap_err();
    assert_eq!(err.reason(), "kek_mismatch");
    drop(tx);
    assert_eq!(
        keys::kek_usage(&pool).await.unwrap(),
        [(new.id().to_string(), 3)]
    );
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_ciphertext_moved_to_another_app_or_variable_does_not_decrypt(pool: PgPool) {
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let a = app(&pool, &kek, &t, "one").await;
    let b = app(&pool, &kek, &t, "two").await;
    let ra = revision_with_env(&pool, &kek, a, &[("SECRET", "for-a")]).await;
    let rb = revision_with_env(&pool, &kek, b, &[("SECRET", "for-b")]).await;
    let mut conn = pool.acquire().await.unwrap();

    // Renamed variable within the same app.
    sqlx::query("UPDATE app_revision_env SET name = 'OTHER' WHERE revision_id = $1")
        .bind(ra)
        .execute(&pool)
        .await
        .unwrap();
    let err = revisions::env(&mut conn, &kek, a, ra).await.unwrap_err();
    assert_eq!(err.reason(), "secret_decrypt_failed");

    // App a's ciphertext copied into app b's revision under the same name.
    sqlx::query(
        "UPDATE app_revision_env SET nonce = src.nonce, ciphertext = src.ciphertext
           FROM (SELECT nonce, ciphertext FROM app_revision_env WHERE revision_id = $1) src
          WHERE revision_id = $2",
    )
    .bind(ra)
    .bind(rb)
    .execute(&pool)
    .await
    .unwrap();
    let err = revisions::env(&mut conn, &kek, b, rb).await.unwrap_err();
    assert_eq!(err.reason(), "secret_decrypt_failed");

    // App a's wrapped DEK copied onto app b: the wrap is bound to app a.
    sqlx::query(
        "UPDATE apps SET dek_wrapped = src.dek_wrapped, dek_nonce = src.dek_nonce
           FROM (SELECT dek_wrapped, dek_nonce FROM apps WHERE id = $1) src WHERE id = $2",
    )
    .bind(a)
    .bind(b)
    .execute(&pool)
    .await
    .unwrap();
    let err = loco_db::apps::data_key(&mut *conn, &kek, b)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "dek_unwrap_failed");
}
