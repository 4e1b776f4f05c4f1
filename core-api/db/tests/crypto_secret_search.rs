//! The secret search: a value written through loco's API is nowhere in a dump of the
//! database and nowhere in the Debug output of the types it passes through.

#[path = "../../testsupport/db_support/mod.rs"]
mod db_support;

use db_support::*;
use loco_crypto::{Kek, Secret};
use loco_db::{apps, clusters, revisions};
use sqlx::PgPool;

fn canary() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    format!("s3cr3t-canary-{}", hex::encode(bytes))
}

fn pg_dump(url: &str) -> Vec<u8> {
    let bin = ["/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"]
        .into_iter()
        .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
        .unwrap();
    let out = std::process::Command::new(bin)
        .args(["--no-owner", "--inserts", "--dbname", url])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[sqlx::test(migrator = "loco_db::MIGRATOR")]
async fn a_secret_written_through_the_api_is_nowhere_in_the_dump_or_debug_output(pool: PgPool) {
    let env_value = canary();
    let cluster_secret = canary();
    let kek = Kek::generate().unwrap();
    let t = tenant(&pool, &kek, "acme").await;
    let app = app(&pool, &kek, &t, "web").await;
    let rev = revision_with_env(&pool, &kek, app, &[("API_KEY", &env_value)]).await;
    clusters::set_credentials(
        &pool,
        &kek,
        t.cluster,
        &loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(cluster_secret.clone())).unwrap(),
    )
    .await
    .unwrap();

    // The values are really there: they decrypt.
    let mut conn = pool.acquire().await.unwrap();
    let env = revisions::env(&mut conn, &kek, app, rev).await.unwrap();
    assert_eq!(env[0].1.expose(), env_value);
    let creds = clusters::credentials(&pool, &kek, t.cluster).await.unwrap();
    assert_eq!(creds.expose(), cluster_secret);

    let dump = pg_dump(&database_url(&pool).await);
    assert!(
        contains(&dump, b"API_KEY"),
        "the dump holds the variable's name"
    );
    for secret in [&env_value, &cluster_secret] {
        assert!(
            !contains(&dump, secret.as_bytes()),
            "a secret value is in the database dump"
        );
        // Nor hex-encoded (how pg_dump prints bytea).
        assert!(!contains(&dump, hex::encode(secret).as_bytes()));
    }

    // Nothing that carries or touched the values prints them.
    let dek = apps::data_key(&mut *conn, &kek, app).await.unwrap();
    let shown = format!(
        "{env:?} {creds:?} {dek:?} {kek:?} {:?} {:?} {:?}",
        revisions::intended(&pool, app).await.unwrap(),
        revisions::EnvChange::Replace(vec![("API_KEY".into(), Secret::new(env_value.clone()))]),
        clusters::get(&pool, t.cluster).await.unwrap(),
    );
    for secret in [&env_value, &cluster_secret] {
        assert!(
            !shown.contains(secret.as_str()),
            "a secret value is in Debug output: {shown}"
        );
    }
}
