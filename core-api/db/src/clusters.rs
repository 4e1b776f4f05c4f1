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

/// Stores (or replaces) the cluster's installer credential: the identity the platform
/// layer is installed with and the resurrector rebuilds with (see migration 0010).
pub async fn set_installer_credentials(
    db: impl PgExecutor<'_> + Copy,
    kek: &Kek,
    cluster_id: i64,
    credentials: &InlineKubeconfig,
) -> Result<(), DbError> {
    let dek = data_key(db, kek, cluster_id).await?;
    let sealed = dek.seal_installer_credentials(cluster_id, credentials.secret())?;
    let done = sqlx::query!(
        "UPDATE clusters SET installer_credentials_ciphertext = $2, installer_credentials_nonce = $3,
                updated_at = now()
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

/// The cluster's installer credential, decrypted in memory; `None` when none was set.
pub async fn installer_credentials(
    db: impl PgExecutor<'_> + Copy,
    kek: &Kek,
    cluster_id: i64,
) -> Result<Option<InlineKubeconfig>, DbError> {
    let row = sqlx::query!(
        "SELECT installer_credentials_ciphertext, installer_credentials_nonce
           FROM clusters WHERE id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    let (Some(ciphertext), Some(nonce)) = (
        row.installer_credentials_ciphertext,
        row.installer_credentials_nonce,
    ) else {
        return Ok(None);
    };
    let dek = data_key(db, kek, cluster_id).await?;
    let plain = dek.open_installer_credentials(cluster_id, &Sealed { nonce, ciphertext })?;
    Ok(Some(InlineKubeconfig::parse(plain)?))
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

/// A version of a cluster's stored credentials: it changes whenever they are replaced
/// (each seal draws a new nonce), so a cached client can tell it is stale.
pub async fn credentials_version(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
) -> Result<Vec<u8>, DbError> {
    sqlx::query_scalar!(
        "SELECT credentials_nonce FROM clusters WHERE id = $1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DbError::NotFound("cluster"))
}

/// The render settings in force for a cluster (its newest row), as JSON, with its id.
pub async fn render_settings(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
) -> Result<Option<(i64, serde_json::Value)>, DbError> {
    Ok(sqlx::query!(
        "SELECT id, settings FROM cluster_render_settings
          WHERE cluster_id = $1 ORDER BY id DESC LIMIT 1",
        cluster_id
    )
    .fetch_optional(db)
    .await?
    .map(|r| (r.id, r.settings)))
}

/// Writes a new revision of a cluster's render settings (unless they equal the newest)
/// and returns the id of the row in force.
pub async fn set_render_settings(
    tx: &mut super::Tx<'_>,
    cluster_id: i64,
    settings: &serde_json::Value,
    source: &str,
) -> Result<i64, DbError> {
    sqlx::query!(
        "SELECT id FROM clusters WHERE id = $1 FOR UPDATE",
        cluster_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    if let Some((id, current)) = render_settings(&mut **tx, cluster_id).await?
        && &current == settings
    {
        return Ok(id);
    }
    Ok(sqlx::query_scalar!(
        "INSERT INTO cluster_render_settings (cluster_id, settings, source)
         VALUES ($1, $2, $3) RETURNING id",
        cluster_id,
        settings,
        source
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// Seeds a cluster's render settings if it has none yet (what `loco-api serve`'s flags
/// do at start-up); returns the settings in force, which win over the seed.
pub async fn seed_render_settings(
    tx: &mut super::Tx<'_>,
    cluster_id: i64,
    seed: &serde_json::Value,
) -> Result<serde_json::Value, DbError> {
    sqlx::query!(
        "SELECT id FROM clusters WHERE id = $1 FOR UPDATE",
        cluster_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    if let Some((_, current)) = render_settings(&mut **tx, cluster_id).await? {
        return Ok(current);
    }
    set_render_settings(tx, cluster_id, seed, "serve_flags").await?;
    Ok(seed.clone())
}

/// One app of a cluster as a rebuild sees it: the app, its active deployment and the
/// revision that deployment applied (`None` for an app never deployed).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterApp {
    pub app: super::apps::App,
    pub deployment: Option<super::deployments::Deployment>,
    pub revision: Option<super::revisions::Revision>,
}

/// Every app of every workspace on `cluster_id`, with its active deployment and that
/// deployment's revision, in one query (workspace by workspace, then by app id).
pub async fn apps_with_active(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
) -> Result<Vec<ClusterApp>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.org_id, a.workspace_id, a.name, a.kind, a.host, a.path_prefix, a.ports,
                  a.sleep_enabled, a.sleep_idle_window_seconds, a.created_at,
                  d.id AS "d_id?", d.revision_id AS "d_revision_id?",
                  d.template_deployment_id AS "d_template?", d.status AS "d_status?",
                  d.reason AS "d_reason?", d.message AS "d_message?", d.inventory AS "d_inventory?",
                  d.created_by AS "d_created_by?", d.created_at AS "d_created_at?",
                  d.started_at AS "d_started_at?", d.finished_at AS "d_finished_at?",
                  r.spec AS "r_spec?", r.image_digest AS "r_image_digest?", r.image AS "r_image?",
                  r.replicas AS "r_replicas?", r.asleep AS "r_asleep?", r.cause AS "r_cause?",
                  r.created_by AS "r_created_by?", r.created_at AS "r_created_at?"
             FROM apps a
             JOIN workspaces w ON w.id = a.workspace_id
             LEFT JOIN deployments d ON d.app_id = a.id AND d.active
             LEFT JOIN app_revisions r ON r.id = d.revision_id
            WHERE w.cluster_id = $1 AND a.deleting_since IS NULL
            ORDER BY a.workspace_id, a.id"#,
        cluster_id
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|row| {
            let app = super::apps::App {
                id: row.id,
                org_id: row.org_id,
                workspace_id: row.workspace_id,
                name: row.name,
                kind: row.kind,
                host: row.host,
                path_prefix: row.path_prefix,
                ports: row.ports,
                sleep_enabled: row.sleep_enabled,
                sleep_idle_window_seconds: row.sleep_idle_window_seconds,
                created_at: row.created_at,
            };
            let corrupt = || DbError::Corrupt(format!("active deployment of app {}", app.id));
            let (deployment, revision) = match row.d_id {
                None => (None, None),
                Some(id) => {
                    let revision_id = row.d_revision_id.ok_or_else(corrupt)?;
                    let deployment = super::deployments::Deployment {
                        id,
                        app_id: app.id,
                        revision_id,
                        template_deployment_id: row.d_template,
                        status: row.d_status.ok_or_else(corrupt)?,
                        reason: row.d_reason,
                        message: row.d_message,
                        inventory: row.d_inventory.ok_or_else(corrupt)?,
                        active: true,
                        created_by: row.d_created_by,
                        created_at: row.d_created_at.ok_or_else(corrupt)?,
                        started_at: row.d_started_at,
                        finished_at: row.d_finished_at,
                    };
                    let revision = super::revisions::Revision {
                        id: revision_id,
                        app_id: app.id,
                        spec: row.r_spec.ok_or_else(corrupt)?,
                        image_digest: row.r_image_digest.ok_or_else(corrupt)?,
                        image: row.r_image,
                        replicas: row.r_replicas.ok_or_else(corrupt)?,
                        asleep: row.r_asleep.ok_or_else(corrupt)?,
                        cause: row.r_cause.ok_or_else(corrupt)?,
                        created_by: row.r_created_by,
                        created_at: row.r_created_at.ok_or_else(corrupt)?,
                    };
                    (Some(deployment), Some(revision))
                }
            };
            Ok(ClusterApp {
                app,
                deployment,
                revision,
            })
        })
        .collect()
}

/// Apps of `cluster_id` with a deployment a worker is applying right now (claimed, lease
/// not run out): a rebuild leaves them to that worker.
pub async fn apps_applying(db: impl PgExecutor<'_>, cluster_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT d.app_id AS "app_id!"
             FROM deployments d
             JOIN apps a ON a.id = d.app_id
             JOIN workspaces w ON w.id = a.workspace_id
            WHERE w.cluster_id = $1 AND d.status = 'applying' AND d.lease_expires_at > now()"#,
        cluster_id
    )
    .fetch_all(db)
    .await?)
}
