//! App revisions: every change of spec, image, env, scale or sleep state is a new row.
//!
//! Two revisions matter and neither is copied into `apps`: the intended one
//! ([`intended`]: the newest that did not fail, queued or applied) is the app's intended
//! state, the one every change builds on, merges env into and checks conflicts against;
//! the one the active deployment points at ([`deployed`]) is what the cluster runs now.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::{DbError, Page, Tx, apps};
use loco_crypto::{Kek, Sealed, Secret};

/// Where the env values of a new revision come from.
#[derive(Debug, Clone)]
pub enum EnvChange {
    /// Exactly these values, sealed with the app's data key.
    Replace(Vec<(String, Secret)>),
    /// The values of an earlier revision of the same app (the one a scale, sleep, wake or
    /// image-only deploy builds on, or a rollback's target), copied sealed: the
    /// ciphertexts stay bound to this app and name.
    CopyFrom(i64),
}

#[derive(Debug, Clone)]
pub struct NewRevision<'a> {
    pub app_id: i64,
    /// The resolved spec as JSON (no env values in it).
    pub spec: &'a serde_json::Value,
    pub image_digest: &'a str,
    /// `registry/repository[:tag]@<image_digest>`: what render runs.
    pub image: &'a str,
    pub replicas: i32,
    pub asleep: bool,
    /// snake_case: deploy, env, scale, sleep, wake, rollback, ...
    pub cause: &'a str,
    pub env: EnvChange,
    pub created_by: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub id: i64,
    pub app_id: i64,
    pub spec: serde_json::Value,
    pub image_digest: String,
    /// `None` only on rows written before revisions recorded their image reference.
    pub image: Option<String>,
    pub replicas: i32,
    pub asleep: bool,
    pub cause: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// Writes a new revision (under the app's lock) and returns its id.
pub async fn create(tx: &mut Tx<'_>, kek: &Kek, rev: &NewRevision<'_>) -> Result<i64, DbError> {
    super::lock_app(tx, rev.app_id).await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO app_revisions (app_id, spec, image_digest, image, replicas, asleep, cause, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        rev.app_id,
        rev.spec,
        rev.image_digest,
        rev.image,
        rev.replicas,
        rev.asleep,
        rev.cause,
        rev.created_by
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_foreign_key_violation() => DbError::NotFound("app"),
        _ => DbError::from(e),
    })?;
    match &rev.env {
        EnvChange::CopyFrom(source) => {
            sqlx::query!(
                "INSERT INTO app_revision_env (revision_id, name, nonce, ciphertext)
                 SELECT $1, e.name, e.nonce, e.ciphertext
                   FROM app_revision_env e JOIN app_revisions r ON r.id = e.revision_id
                  WHERE e.revision_id = $2 AND r.app_id = $3",
                id,
                source,
                rev.app_id
            )
            .execute(&mut **tx)
            .await?;
        }
        EnvChange::Replace(values) => {
            let dek = apps::data_key(&mut **tx, kek, rev.app_id).await?;
            let (mut names, mut nonces, mut ciphertexts) = (vec![], vec![], vec![]);
            for (name, value) in values {
                let sealed = dek.seal_env(rev.app_id, name, value)?;
                names.push(name.clone());
                nonces.push(sealed.nonce);
                ciphertexts.push(sealed.ciphertext);
            }
            sqlx::query!(
                "INSERT INTO app_revision_env (revision_id, name, nonce, ciphertext)
                 SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::bytea[])",
                id,
                &names,
                &nonces,
                &ciphertexts
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(id)
}

/// The app's intended state: its newest revision whose deployment did not fail, queued
/// or applied. A failed deployment's revision is not intent: its deploy put the cluster
/// back on the previous revision, and the next change builds on that one.
pub async fn intended(db: impl PgExecutor<'_>, app_id: i64) -> Result<Option<Revision>, DbError> {
    Ok(sqlx::query_as!(
        Revision,
        "SELECT r.id, r.app_id, r.spec, r.image_digest, r.image, r.replicas, r.asleep, r.cause,
                r.created_by, r.created_at
           FROM app_revisions r
          WHERE r.app_id = $1
            AND NOT EXISTS (SELECT 1 FROM deployments d
                             WHERE d.revision_id = r.id AND d.status = 'failed')
          ORDER BY r.id DESC LIMIT 1",
        app_id
    )
    .fetch_optional(db)
    .await?)
}

/// The revision the app's active deployment applied, if it has one.
pub async fn deployed(db: impl PgExecutor<'_>, app_id: i64) -> Result<Option<Revision>, DbError> {
    Ok(sqlx::query_as!(
        Revision,
        "SELECT r.id, r.app_id, r.spec, r.image_digest, r.image, r.replicas, r.asleep, r.cause,
                r.created_by, r.created_at
           FROM deployments d JOIN app_revisions r ON r.id = d.revision_id
          WHERE d.app_id = $1 AND d.active",
        app_id
    )
    .fetch_optional(db)
    .await?)
}

/// A revision of an app of `org_id`; another org's reads as not found.
pub async fn get(
    db: impl PgExecutor<'_>,
    org_id: i64,
    revision_id: i64,
) -> Result<Revision, DbError> {
    sqlx::query_as!(
        Revision,
        "SELECT r.id, r.app_id, r.spec, r.image_digest, r.image, r.replicas, r.asleep, r.cause,
                r.created_by, r.created_at
           FROM app_revisions r JOIN apps a ON a.id = r.app_id
          WHERE a.org_id = $1 AND r.id = $2",
        org_id,
        revision_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("revision"))
}

/// Revisions of an app of `org_id`, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    app_id: i64,
    page: Page,
) -> Result<Vec<Revision>, DbError> {
    Ok(sqlx::query_as!(
        Revision,
        "SELECT r.id, r.app_id, r.spec, r.image_digest, r.image, r.replicas, r.asleep, r.cause,
                r.created_by, r.created_at
           FROM app_revisions r JOIN apps a ON a.id = r.app_id
          WHERE a.org_id = $1 AND r.app_id = $2 AND ($3::bigint IS NULL OR r.id < $3)
          ORDER BY r.id DESC LIMIT $4",
        org_id,
        app_id,
        page.after,
        page.limit
    )
    .fetch_all(db)
    .await?)
}

/// The names (never the values) of a revision's env, sorted.
pub async fn env_names(db: impl PgExecutor<'_>, revision_id: i64) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!(
        "SELECT name FROM app_revision_env WHERE revision_id = $1 ORDER BY name",
        revision_id
    )
    .fetch_all(db)
    .await?)
}

/// Decrypts a revision's env in memory (for render), sorted by name. The revision must
/// be one of `app_id`'s.
pub async fn env(
    conn: &mut PgConnection,
    kek: &Kek,
    app_id: i64,
    revision_id: i64,
) -> Result<Vec<(String, Secret)>, DbError> {
    let rows = sqlx::query!(
        "SELECT e.name, e.nonce, e.ciphertext
           FROM app_revision_env e JOIN app_revisions r ON r.id = e.revision_id
          WHERE r.app_id = $1 AND e.revision_id = $2
          ORDER BY e.name",
        app_id,
        revision_id
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let dek = apps::data_key(&mut *conn, kek, app_id).await?;
    rows.into_iter()
        .map(|row| {
            let sealed = Sealed {
                nonce: row.nonce,
                ciphertext: row.ciphertext,
            };
            let value = dek.open_env(app_id, &row.name, &sealed)?;
            Ok((row.name, value))
        })
        .collect()
}
