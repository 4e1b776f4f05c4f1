//! The platform layer's recorded releases: chart version and values (no secrets) per
//! cluster, one row per change; the newest row is in force.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::DbError;

/// One recorded release of a cluster's platform layer.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformRelease {
    pub id: i64,
    pub cluster_id: i64,
    pub chart_version: String,
    pub values: serde_json::Value,
    pub set_by: String,
    pub created_at: DateTime<Utc>,
}

/// The release in force for a cluster (its newest row), if any was recorded.
pub async fn current(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
) -> Result<Option<PlatformRelease>, DbError> {
    Ok(sqlx::query_as!(
        PlatformRelease,
        r#"SELECT id, cluster_id, chart_version, "values" AS "values!", set_by, created_at
             FROM platform_releases WHERE cluster_id = $1 ORDER BY id DESC LIMIT 1"#,
        cluster_id
    )
    .fetch_optional(db)
    .await?)
}

/// Every recorded release of a cluster, newest first.
pub async fn history(
    db: impl PgExecutor<'_>,
    cluster_id: i64,
) -> Result<Vec<PlatformRelease>, DbError> {
    Ok(sqlx::query_as!(
        PlatformRelease,
        r#"SELECT id, cluster_id, chart_version, "values" AS "values!", set_by, created_at
             FROM platform_releases WHERE cluster_id = $1 ORDER BY id DESC"#,
        cluster_id
    )
    .fetch_all(db)
    .await?)
}

/// Records a new release unless it equals the one in force; returns the row in force
/// and whether it is new. The caller has validated `values` (the chart's schema) and
/// made sure they hold no secret.
pub async fn record(
    tx: &mut super::Tx<'_>,
    cluster_id: i64,
    chart_version: &str,
    values: &serde_json::Value,
    set_by: &str,
) -> Result<(PlatformRelease, bool), DbError> {
    sqlx::query!(
        "SELECT id FROM clusters WHERE id = $1 FOR UPDATE",
        cluster_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("cluster"))?;
    if let Some(c) = current(&mut **tx, cluster_id).await?
        && c.chart_version == chart_version
        && &c.values == values
    {
        return Ok((c, false));
    }
    let row = sqlx::query_as!(
        PlatformRelease,
        r#"INSERT INTO platform_releases (cluster_id, chart_version, "values", set_by)
           VALUES ($1, $2, $3, $4)
           RETURNING id, cluster_id, chart_version, "values" AS "values!", set_by, created_at"#,
        cluster_id,
        chart_version,
        values,
        set_by
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((row, true))
}
