//! Apps: name, route (host + path prefix, unique on the platform domain), ports, kind,
//! sleep policy, gRPC services (unique per host) and the app's wrapped data key.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::events::{self, Actor, NewEvent};
use super::{DbError, Page, Tx};
use loco_crypto::{Dek, DekOwner, Kek, WrappedDek};

#[derive(Debug, Clone, PartialEq)]
pub struct NewApp<'a> {
    pub org_id: i64,
    pub workspace_id: i64,
    pub name: &'a str,
    pub kind: &'a str,
    pub host: &'a str,
    pub path_prefix: &'a str,
    /// `[{"name", "port", "protocol", "routed"}, ...]`
    pub ports: serde_json::Value,
    pub sleep_enabled: bool,
    pub sleep_idle_window_seconds: i32,
    pub grpc_services: &'a [String],
}

/// An app row; its data key stays in the database (read it with [`data_key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub id: i64,
    pub org_id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub kind: String,
    pub host: String,
    pub path_prefix: String,
    pub ports: serde_json::Value,
    pub sleep_enabled: bool,
    pub sleep_idle_window_seconds: i32,
    pub created_at: DateTime<Utc>,
}

/// Creates an app with a fresh data key wrapped by `kek`, and records it.
pub async fn create(
    tx: &mut Tx<'_>,
    kek: &Kek,
    app: &NewApp<'_>,
    actor: &Actor,
) -> Result<i64, DbError> {
    // The id is taken first because the DEK's wrap is bound to it.
    let id =
        sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('apps', 'id')) AS "id!""#)
            .fetch_one(&mut **tx)
            .await?;
    let wrapped = kek.wrap(&Dek::generate()?, DekOwner::App(id))?;
    sqlx::query!(
        "INSERT INTO apps (id, org_id, workspace_id, name, kind, host, path_prefix, ports,
                           sleep_enabled, sleep_idle_window_seconds, dek_wrapped, dek_nonce, dek_kek_id)
         OVERRIDING SYSTEM VALUE
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        id,
        app.org_id,
        app.workspace_id,
        app.name,
        app.kind,
        app.host,
        app.path_prefix,
        app.ports,
        app.sleep_enabled,
        app.sleep_idle_window_seconds,
        wrapped.ciphertext,
        wrapped.nonce,
        wrapped.kek_id
    )
    .execute(&mut **tx)
    .await
    .map_err(|e| match e.as_database_error() {
        // The workspace is missing or another org's: the composite key refuses both.
        // The host is claimed by another workspace (migration 0007): host_taken.
        Some(db)
            if db.is_foreign_key_violation() && db.constraint() != Some("apps_host_claim_fkey") =>
        {
            DbError::NotFound("workspace")
        }
        _ => DbError::from(e),
    })?;
    insert_grpc_services(tx, id, app.grpc_services).await?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id: app.org_id,
            workspace_id: Some(app.workspace_id),
            app_id: Some(id),
            actor: actor.clone(),
            reason: "app_created",
            message: format!("app {} created", app.name),
            ..Default::default()
        },
    )
    .await?;
    Ok(id)
}

async fn insert_grpc_services(
    tx: &mut Tx<'_>,
    app_id: i64,
    services: &[String],
) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO app_grpc_services (app_id, host, service)
         SELECT a.id, a.host, s FROM apps a, unnest($2::text[]) AS s WHERE a.id = $1",
        app_id,
        services
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces the gRPC services of an app (the caller holds the app's lock).
pub async fn set_grpc_services(
    tx: &mut Tx<'_>,
    app_id: i64,
    services: &[String],
) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM app_grpc_services WHERE app_id = $1", app_id)
        .execute(&mut **tx)
        .await?;
    insert_grpc_services(tx, app_id, services).await
}

pub async fn grpc_services(db: impl PgExecutor<'_>, app_id: i64) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!(
        "SELECT service FROM app_grpc_services WHERE app_id = $1 ORDER BY service",
        app_id
    )
    .fetch_all(db)
    .await?)
}

/// An app of `org_id`; another org's reads as not found.
pub async fn get(db: impl PgExecutor<'_>, org_id: i64, app_id: i64) -> Result<App, DbError> {
    sqlx::query_as!(
        App,
        "SELECT id, org_id, workspace_id, name, kind, host, path_prefix, ports,
                sleep_enabled, sleep_idle_window_seconds, created_at
           FROM apps WHERE org_id = $1 AND id = $2",
        org_id,
        app_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("app"))
}

/// Apps of a workspace of `org_id`, by id.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    workspace_id: i64,
    page: Page,
) -> Result<Vec<App>, DbError> {
    Ok(sqlx::query_as!(
        App,
        "SELECT id, org_id, workspace_id, name, kind, host, path_prefix, ports,
                sleep_enabled, sleep_idle_window_seconds, created_at
           FROM apps
          WHERE org_id = $1 AND workspace_id = $2 AND ($3::bigint IS NULL OR id > $3)
          ORDER BY id LIMIT $4",
        org_id,
        workspace_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}

/// An app of a workspace as its siblings see it: name and routed port of its newest
/// revision (apps never deployed have none and are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub id: i64,
    pub name: String,
    pub port: i32,
}

/// The apps of a workspace that have a revision, for the LOCO_<APP>_URL variables.
pub async fn siblings(db: impl PgExecutor<'_>, workspace_id: i64) -> Result<Vec<Sibling>, DbError> {
    Ok(sqlx::query_as!(
        Sibling,
        r#"SELECT a.id, a.name, (r.spec->'routing'->>'port')::int AS "port!"
             FROM apps a
             JOIN LATERAL (SELECT spec FROM app_revisions
                            WHERE app_id = a.id ORDER BY id DESC LIMIT 1) r ON true
            WHERE a.workspace_id = $1 AND r.spec->'routing'->>'port' IS NOT NULL
            ORDER BY a.id"#,
        workspace_id
    )
    .fetch_all(db)
    .await?)
}

/// The app serving `path` on `host`: the longest matching path prefix (the reviver's lookup).
pub async fn find_by_route(
    db: impl PgExecutor<'_>,
    host: &str,
    path: &str,
) -> Result<Option<App>, DbError> {
    Ok(sqlx::query_as!(
        App,
        "SELECT id, org_id, workspace_id, name, kind, host, path_prefix, ports,
                sleep_enabled, sleep_idle_window_seconds, created_at
           FROM apps
          WHERE host = $1 AND starts_with($2, path_prefix)
          ORDER BY length(path_prefix) DESC LIMIT 1",
        host,
        path
    )
    .fetch_optional(db)
    .await?)
}

/// Unwraps an app's data key (in memory only).
pub async fn data_key(db: impl PgExecutor<'_>, kek: &Kek, app_id: i64) -> Result<Dek, DbError> {
    let row = sqlx::query!(
        "SELECT dek_wrapped, dek_nonce, dek_kek_id FROM apps WHERE id = $1",
        app_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("app"))?;
    let wrapped = WrappedDek {
        kek_id: row.dek_kek_id,
        nonce: row.dek_nonce,
        ciphertext: row.dek_wrapped,
    };
    Ok(kek.unwrap(&wrapped, DekOwner::App(app_id))?)
}

/// Deletes an app of `org_id` with its revisions, env values, deployments, activity and
/// data key (so its secrets in old snapshots become unreadable), and records the deletion.
pub async fn delete(
    tx: &mut Tx<'_>,
    org_id: i64,
    app_id: i64,
    actor: &Actor,
) -> Result<(), DbError> {
    super::lock_app(tx, app_id).await?;
    let gone = sqlx::query!(
        "DELETE FROM apps WHERE org_id = $1 AND id = $2 RETURNING workspace_id, name",
        org_id,
        app_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("app"))?;
    events::record(
        &mut **tx,
        &NewEvent {
            org_id,
            workspace_id: Some(gone.workspace_id),
            app_id: Some(app_id),
            actor: actor.clone(),
            reason: "app_deleted",
            message: format!("app {} deleted with its data key", gone.name),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Whether the app's deletion has started ([`super::queue::fence_app`]): no change of it
/// is accepted any more.
pub async fn deleting(db: impl PgExecutor<'_>, app_id: i64) -> Result<bool, DbError> {
    sqlx::query_scalar!(
        "SELECT deleting_since IS NOT NULL AS \"deleting!\" FROM apps WHERE id = $1",
        app_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("app"))
}
