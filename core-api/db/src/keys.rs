//! KEK rotation: every wrapped data key (apps' and clusters') rewrapped under a new KEK
//! in one transaction, so the database never holds a mix that no single KEK opens.

use sqlx::PgExecutor;

use super::{DbError, Tx};
use loco_crypto::{CryptoError, DekOwner, Kek, WrappedDek};

/// What a rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub apps_rewrapped: u64,
    pub clusters_rewrapped: u64,
    /// Keys already wrapped by the new KEK (a rotation that is run again skips them).
    pub already_current: u64,
}

/// Rewraps every data key wrapped by `old` under `new`. Keys already under `new` are
/// left alone; a key under any other KEK aborts the whole rotation (nothing changes).
/// The data keys themselves do not change, so every stored ciphertext stays valid.
pub async fn rotate(tx: &mut Tx<'_>, old: &Kek, new: &Kek) -> Result<RotationReport, DbError> {
    let mut report = RotationReport::default();
    let apps = sqlx::query!(
        "SELECT id, dek_wrapped, dek_nonce, dek_kek_id FROM apps ORDER BY id FOR UPDATE"
    )
    .fetch_all(&mut **tx)
    .await?;
    for row in apps {
        let wrapped = WrappedDek {
            kek_id: row.dek_kek_id,
            nonce: row.dek_nonce,
            ciphertext: row.dek_wrapped,
        };
        let Some(w) = rewrap(old, new, &wrapped, DekOwner::App(row.id), &mut report)? else {
            continue;
        };
        sqlx::query!(
            "UPDATE apps SET dek_wrapped = $2, dek_nonce = $3, dek_kek_id = $4 WHERE id = $1",
            row.id,
            w.ciphertext,
            w.nonce,
            w.kek_id
        )
        .execute(&mut **tx)
        .await?;
        report.apps_rewrapped += 1;
    }
    let clusters = sqlx::query!(
        "SELECT id, dek_wrapped, dek_nonce, dek_kek_id FROM clusters ORDER BY id FOR UPDATE"
    )
    .fetch_all(&mut **tx)
    .await?;
    for row in clusters {
        let wrapped = WrappedDek {
            kek_id: row.dek_kek_id,
            nonce: row.dek_nonce,
            ciphertext: row.dek_wrapped,
        };
        let Some(w) = rewrap(old, new, &wrapped, DekOwner::Cluster(row.id), &mut report)? else {
            continue;
        };
        sqlx::query!(
            "UPDATE clusters SET dek_wrapped = $2, dek_nonce = $3, dek_kek_id = $4, updated_at = now()
              WHERE id = $1",
            row.id,
            w.ciphertext,
            w.nonce,
            w.kek_id
        )
        .execute(&mut **tx)
        .await?;
        report.clusters_rewrapped += 1;
    }
    Ok(report)
}

fn rewrap(
    old: &Kek,
    new: &Kek,
    wrapped: &WrappedDek,
    owner: DekOwner,
    report: &mut RotationReport,
) -> Result<Option<WrappedDek>, CryptoError> {
    if wrapped.kek_id == new.id() {
        report.already_current += 1;
        return Ok(None);
    }
    // `unwrap` refuses a key under a third KEK with kek_mismatch.
    old.rewrap(new, wrapped, owner).map(Some)
}

/// How many data keys each KEK id wraps (for `keys status` and tests).
pub async fn kek_usage(db: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT kek_id AS "kek_id!", count(*) AS "keys!"
             FROM (SELECT dek_kek_id AS kek_id FROM apps
                   UNION ALL SELECT dek_kek_id FROM clusters) k
            GROUP BY kek_id ORDER BY kek_id"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kek_id, r.keys)).collect())
}
