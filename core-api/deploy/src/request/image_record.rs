//! Loco's own push records: the registry janitor orders images by these, not by the
//! registry's timestamps.

use super::super::registry::ResolvedImage;
use loco_db::{DbError, Tx, apps};

/// Loco's record of an image it deployed (the janitor orders by these).
pub(super) async fn record_image(
    tx: &mut Tx<'_>,
    app: &apps::App,
    i: &ResolvedImage,
) -> Result<(), DbError> {
    let tag = i.reference.tag.clone().unwrap_or_else(|| {
        // An untagged reference is recorded under its digest's hex prefix.
        format!("sha256-{}", &i.digest["sha256:".len()..][..16])
    });
    let repository = format!("{}/{}", i.reference.registry, i.reference.repository);
    sqlx::query!(
        "INSERT INTO images (org_id, app_id, repository, tag, digest, size_bytes, pushed_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (repository, tag) DO UPDATE
            SET digest = EXCLUDED.digest, size_bytes = EXCLUDED.size_bytes,
                app_id = EXCLUDED.app_id,
                pushed_at = CASE WHEN images.digest = EXCLUDED.digest THEN images.pushed_at ELSE now() END",
        app.org_id,
        app.id,
        repository,
        tag,
        i.digest,
        i64::try_from(i.size_bytes).unwrap_or(i64::MAX)
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
