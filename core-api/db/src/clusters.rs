//! Regions and clusters: where workspaces run, the cluster credentials (sealed with the
//! cluster's own data key, associated data = cluster id) and the health the resurrector
//! writes.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::kubeconfig::InlineKubeconfig;
use super::{DbError, Tx};
use loco_crypto::{Dek, DekOwner, Kek, Sealed, Secret, WrappedDek};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: i64,
    pub provider: String,
    pub name: String,
}

/// A cluster row without its credentials (read those with [`credentials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: i64,
    pub region_id: i64,
    pub provider: String,
    pub region: String,
    pub name: String,
    pub endpoint: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// Health as the resurrector's probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Healthy,
    Degraded,
    Unreachable,
    Rebuilding,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unreachable => "unreachable",
            Health::Rebuilding => "rebuilding",
        }
    }
}

/// Registers a region (idempotent) and returns its id.
pub async fn upsert_region(
    db: impl PgExecutor<'_>,
    provider: &str,
    name: &str,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO regions (provider, name) VALUES ($1, $2)
         ON CONFLICT (provider, name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id",
        provider,
        name
    )
    .fetch_one(db)
    .await?)
}

pub async fn list_regions(db: impl PgExecutor<'_>) -> Result<Vec<Region>, DbError> {
    Ok(sqlx::query_as!(
        Region,
        "SELECT id, provider, name FROM regions ORDER BY provider, name"
    )
    .fetch_all(db)
    .await?)
}

/// Creates a cluster with a fresh data key; `credentials` are sealed before they leave memory.
pub async fn create(
    tx: &mut Tx<'_>,
    kek: &Kek,
    region_id: i64,
    name: &str,
    endpoint: &str,
    credentials: &InlineKubeconfig,
) -> Result<i64, DbError> {
    // The id is taken first because both the wrap and the seal are bound to it.
    let id =
        sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('clusters', 'id')) AS "id!""#)
            .fetch_one(&mut **tx)
            .await?;
    let dek = Dek::generate()?;
    let wrapped = kek.wrap(&dek, DekOwner::Cluster(id))?;
    let sealed = dek.seal_cluster_credentials(id, credentials.secret())?;
    sqlx::query!(
        "INSERT INTO clusters (id, region_id, name, endpoint, credentials_ciphertext, credentials_nonce,
                               dek_wrapped, dek_nonce, dek_kek_id)
         OVERRIDING SYSTEM VALUE
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        region_id,
        name,
        endpoint,
        sealed.ciphertext,
        sealed.nonce,
        wrapped.ciphertext,
        wrapped.nonce,
        wrapped.kek_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn get(db: impl PgExecutor<'_>, cluster_id: i64) -> Result<Cluster, DbError> {
    sqlx::query_as!(
        Cluster,
        "SELECT c.id, c.region_id, r.provider, r.name AS region, c.name, c.endpoint,
                c.status, c.status_reason, c.checked_at
           FROM clusters c JOIN regions r ON r.id = c.region_id
          WHERE c.id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Cluster>, DbError> {
    Ok(sqlx::query_as!(
        Cluster,
        "SELECT c.id, c.region_id, r.provider, r.name AS region, c.name, c.endpoint,
                c.status, c.status_reason, c.checked_at
           FROM clusters c JOIN regions r ON r.id = c.region_id
          ORDER BY c.id"
    )
    .fetch_all(db)
    .await?)
}

/// Decrypts a cluster's credentials, in memory only.
pub async fn credentials(
    db: impl PgExecutor<'_>,
    kek: &Kek,
    cluster_id: i64,
) -> Result<InlineKubeconfig, DbError> {
    let row = sqlx::query!(
        "SELECT credentials_ciphertext, credentials_nonce, dek_wrapped, dek_nonce, dek_kek_id
           FROM clusters WHERE id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    let wrapped = WrappedDek {
        kek_id: row.dek_kek_id,
        nonce: row.dek_nonce,
        ciphertext: row.dek_wrapped,
    };
    let dek = kek.unwrap(&wrapped, DekOwner::Cluster(cluster_id))?;
    let sealed = Sealed {
        nonce: row.credentials_nonce,
        ciphertext: row.credentials_ciphertext,
    };
    // Checked again on the way out: a row written before every path checked, or by
    // hand, must not make loco run a plugin or read a file.
    Ok(InlineKubeconfig::parse(
        dek.open_cluster_credentials(cluster_id, &sealed)?,
    )?)
}

/// Replaces a cluster's credentials (after a recreate writes a new kubeconfig). The
/// cluster's data key stays: its pull credential, sealed with the same key, stays readable.
pub async fn set_credentials(
    db: impl PgExecutor<'_> + Copy,
    kek: &Kek,
    cluster_id: i64,
    credentials: &InlineKubeconfig,
) -> Result<(), DbError> {
    let dek = data_key(db, kek, cluster_id).await?;
    let sealed = dek.seal_cluster_credentials(cluster_id, credentials.secret())?;
    let done = sqlx::query!(
        "UPDATE clusters SET credentials_ciphertext = $2, credentials_nonce = $3, updated_at = now()
          WHERE id = $1",
        cluster_id,
        sealed.ciphertext,
        sealed.nonce,
    )
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound("cluster"));
    }
    Ok(())
}

/// The cluster's data key, unwrapped in memory.
async fn data_key(db: impl PgExecutor<'_>, kek: &Kek, cluster_id: i64) -> Result<Dek, DbError> {
    let row = sqlx::query!(
        "SELECT dek_wrapped, dek_nonce, dek_kek_id FROM clusters WHERE id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    let wrapped = WrappedDek {
        kek_id: row.dek_kek_id,
        nonce: row.dek_nonce,
        ciphertext: row.dek_wrapped,
    };
    Ok(kek.unwrap(&wrapped, DekOwner::Cluster(cluster_id))?)
}

/// The cluster's read-only registry login, rendered as every app namespace's
/// imagePullSecret. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct PullCredential {
    /// Registry host (and port) as image references name it.
    pub registry: String,
    pub username: String,
    pub password: Secret,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SealedLogin {
    username: String,
    password: String,
}

/// Stores (or replaces) the cluster's pull credential, sealed with the cluster's data key.
pub async fn set_pull_credential(
    db: impl PgExecutor<'_> + Copy,
    kek: &Kek,
    cluster_id: i64,
    cred: &PullCredential,
) -> Result<(), DbError> {
    let dek = data_key(db, kek, cluster_id).await?;
    let login = serde_json::to_string(&SealedLogin {
        username: cred.username.clone(),
        password: cred.password.expose().to_owned(),
    })
    .map_err(|e| DbError::Corrupt(format!("pull credential: {e}")))?;
    let sealed = dek.seal_pull_credential(cluster_id, &Secret::new(login))?;
    sqlx::query!(
        "UPDATE clusters SET pull_registry = $2, pull_credential_ciphertext = $3,
                pull_credential_nonce = $4, updated_at = now()
          WHERE id = $1",
        cluster_id,
        cred.registry,
        sealed.ciphertext,
        sealed.nonce
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The cluster's pull credential, decrypted in memory; `None` when it has none (public
/// images only).
pub async fn pull_credential(
    db: impl PgExecutor<'_> + Copy,
    kek: &Kek,
    cluster_id: i64,
) -> Result<Option<PullCredential>, DbError> {
    let row = sqlx::query!(
        "SELECT pull_registry, pull_credential_ciphertext, pull_credential_nonce
           FROM clusters WHERE id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    let (Some(registry), Some(ciphertext), Some(nonce)) = (
        row.pull_registry,
        row.pull_credential_ciphertext,
        row.pull_credential_nonce,
    ) else {
        return Ok(None);
    };
    let dek = data_key(db, kek, cluster_id).await?;
    let plain = dek.open_pull_credential(cluster_id, &Sealed { nonce, ciphertext })?;
    let login: SealedLogin = serde_json::from_str(plain.expose())
        .map_err(|_| DbError::Corrupt("pull credential is not the JSON loco seals".into()))?;
    Ok(Some(PullCredential {
        registry,
        username: login.username,
        password: Secret::new(login.password),
    }))
}

/// Records a probe result; `reason` is snake_case (e.g. `api_server_unreachable`).
pub async fn set_health(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
    health: Health,
    reason: Option<&str>,
) -> Result<(), DbError> {
    let done = sqlx::query!(
        "UPDATE clusters SET status = $2, status_reason = $3, checked_at = now(), updated_at = now()
          WHERE id = $1",
        cluster_id,
        health.as_str(),
        reason
    )
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound("cluster"));
    }
    Ok(())
}
