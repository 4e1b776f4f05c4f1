//! Loco's records of the images it deployed (the registry janitor orders by these, gc
//! protects the revisions they name). A record belongs to one org and one app for good:
//! the key is (org, repository, tag) and a trigger refuses any change of org or app
//! (migration 0007), so no tenant can move another's record or its protection.

use super::{DbError, Tx};

/// One deployed image.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub org_id: i64,
    pub app_id: i64,
    /// `registry/repository`.
    pub repository: &'a str,
    pub tag: &'a str,
    pub digest: &'a str,
    pub size_bytes: i64,
}

/// Records `image` for its org: a new row, or the org's own row of that repository and
/// tag moved to the new digest (pushed_at kept when the digest is the same). The app of
/// an existing row is kept.
pub async fn record(tx: &mut Tx<'_>, image: &NewImage<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO images (org_id, app_id, repository, tag, digest, size_bytes, pushed_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (org_id, repository, tag) DO UPDATE
            SET digest = EXCLUDED.digest, size_bytes = EXCLUDED.size_bytes,
                pushed_at = CASE WHEN images.digest = EXCLUDED.digest THEN images.pushed_at ELSE now() END",
        image.org_id,
        image.app_id,
        image.repository,
        image.tag,
        image.digest,
        image.size_bytes
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
