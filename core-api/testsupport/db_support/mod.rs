//! Rows most database tests start from. Each `#[sqlx::test]` has its own database.
#![allow(dead_code)]

use loco_crypto::{Kek, Secret};
use loco_db::apps::{self, NewApp};
use loco_db::events::Actor;
use loco_db::orgs::{self, Provider};
use loco_db::revisions::{self, EnvChange, NewRevision};
use loco_db::{clusters, workspaces};
use sqlx::PgPool;

pub const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
pub const IMAGE: &str = "registry.example/team/app:v1@sha256:0000000000000000000000000000000000000000000000000000000000000001";

pub struct Tenant {
    pub user: i64,
    pub org: i64,
    pub cluster: i64,
    pub workspace: i64,
}

impl Tenant {
    pub fn actor(&self) -> Actor {
        Actor::User(self.user)
    }
}

/// A user owning an org with one workspace on one cluster.
pub async fn tenant(pool: &PgPool, kek: &Kek, name: &str) -> Tenant {
    let mut tx = pool.begin().await.unwrap();
    let user = orgs::upsert_user(
        &mut *tx,
        Provider::Github,
        &format!("uid-{name}"),
        name,
        None,
    )
    .await
    .unwrap();
    let org = orgs::create_org(&mut tx, name, user).await.unwrap();
    let region = clusters::upsert_region(&mut *tx, "hetzner", "fsn1")
        .await
        .unwrap();
    let cluster = clusters::create(
        &mut tx,
        kek,
        region,
        &format!("{name}-cluster"),
        "https://127.0.0.1:6443",
        &loco_db::kubeconfig::InlineKubeconfig::parse(Secret::new(
            "apiVersion: v1\nkind: Config\n",
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    let workspace = workspaces::create(&mut tx, org, cluster, "default", &Actor::User(user))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Tenant {
        user,
        org,
        cluster,
        workspace,
    }
}

pub fn new_app<'a>(t: &Tenant, name: &'a str, host: &'a str, path: &'a str) -> NewApp<'a> {
    NewApp {
        org_id: t.org,
        workspace_id: t.workspace,
        name,
        kind: "service",
        host,
        path_prefix: path,
        ports: serde_json::json!([{"name": "http", "port": 8080, "protocol": "http", "routed": true}]),
        sleep_enabled: false,
        sleep_idle_window_seconds: 1800,
        grpc_services: &[],
    }
}

pub async fn app(pool: &PgPool, kek: &Kek, t: &Tenant, name: &str) -> i64 {
    let host = format!("{name}.apps.example.com");
    let mut tx = pool.begin().await.unwrap();
    let id = apps::create(&mut tx, kek, &new_app(t, name, &host, "/"), &t.actor())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

pub fn spec() -> serde_json::Value {
    serde_json::json!({"spec_version": 1, "app": {"name": "web", "kind": "service"}})
}

/// Writes a revision with exactly these env values.
pub async fn revision_with_env(pool: &PgPool, kek: &Kek, app_id: i64, env: &[(&str, &str)]) -> i64 {
    let spec = spec();
    let mut tx = pool.begin().await.unwrap();
    let id = revisions::create(
        &mut tx,
        kek,
        &NewRevision {
            app_id,
            spec: &spec,
            image_digest: DIGEST,
            image: IMAGE,
            replicas: 1,
            asleep: false,
            cause: "deploy",
            env: EnvChange::Replace(
                env.iter()
                    .map(|(n, v)| (n.to_string(), Secret::new(*v)))
                    .collect(),
            ),
            created_by: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

pub async fn count(pool: &PgPool, sql: &'static str, id: i64) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The URL of the pool's own database (sqlx::test made it on DATABASE_URL's server).
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for #[sqlx::test]");
    let base = base.split('?').next().unwrap();
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}

/// Moves the id sequences of workspaces and apps of this test's database to a random
/// base: every `#[sqlx::test]` database starts at id 1, and namespaces are named after
/// ids, so tests running side by side on the one cluster would otherwise share them.
pub async fn distinct_ids(pool: &PgPool) {
    // Clock nanoseconds mixed with the process id: distinct enough across the tests of
    // one run, and no extra dependency for the crates that include this file.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed =
        u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    let base = i64::try_from(mixed % 1_000_000).unwrap_or(0) * 1000 + 1000;
    for table in ["workspaces", "apps"] {
        sqlx::query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)")
            .bind(table)
            .bind(base)
            .execute(pool)
            .await
            .unwrap();
    }
}
