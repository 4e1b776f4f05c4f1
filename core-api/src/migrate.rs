//! `loco-api migrate`: applies pending database migrations and exits.

use crate::flags::DbArgs;

pub async fn run(a: DbArgs) -> anyhow::Result<()> {
    let pool = loco_db::connect(&a.database_url).await?;
    loco_db::migrate(&pool).await?;
    tracing::info!(
        target_db = %loco_db::redacted_target(&a.database_url),
        "database migrations applied"
    );
    Ok(())
}
