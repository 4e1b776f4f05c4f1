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
    loco_db::images::record(
        tx,
        &loco_db::images::NewImage {
            org_id: app.org_id,
            app_id: app.id,
            repository: &repository,
            tag: &tag,
            digest: &i.digest,
            size_bytes: i64::try_from(i.size_bytes).unwrap_or(i64::MAX),
        },
    )
    .await
}
