//! `loco-api keys ...`: operator commands for the key-encryption key.

use std::path::PathBuf;

use clap::Subcommand;

use crate::flags::DbArgs;
use loco_crypto::Kek;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rewraps every data key (apps' and clusters') from the old KEK to the new one in a
    /// single transaction; stored secrets are not re-encrypted and stay readable. Restart
    /// loco-api and the resurrector with the new KEK afterwards. Safe to run again.
    Rotate(RotateArgs),
    /// Shows how many data keys each KEK id wraps (ids are fingerprints, never keys).
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A file holding the current KEK (base64 of 32 bytes).
    #[arg(long, env = "LOCO_OLD_KEK_FILE")]
    pub old_kek_file: PathBuf,
    /// A file holding the new KEK (base64 of 32 bytes, e.g. `head -c 32 /dev/urandom | base64`).
    #[arg(long, env = "LOCO_NEW_KEK_FILE")]
    pub new_kek_file: PathBuf,
    /// How the result is printed.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How the result is printed.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub use crate::output::Output;

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate(a) => {
            let old = Kek::from_file(&a.old_kek_file)?;
            let new = Kek::from_file(&a.new_kek_file)?;
            if old.id() == new.id() {
                anyhow::bail!(
                    "the old and the new KEK are the same key ({}); generate a new one first",
                    old.id()
                );
            }
            let pool = loco_db::connect(&a.db.database_url).await?;
            let mut tx = pool.begin().await.map_err(loco_db::DbError::from)?;
            let report = loco_db::keys::rotate(&mut tx, &old, &new).await?;
            tx.commit().await.map_err(loco_db::DbError::from)?;
            tracing::info!(
                old_kek = old.id(),
                new_kek = new.id(),
                apps = report.apps_rewrapped,
                clusters = report.clusters_rewrapped,
                already_current = report.already_current,
                "data keys rewrapped"
            );
            match a.output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({
                        "old_kek_id": old.id(),
                        "new_kek_id": new.id(),
                        "apps_rewrapped": report.apps_rewrapped,
                        "clusters_rewrapped": report.clusters_rewrapped,
                        "already_current": report.already_current,
                    })
                ),
                Output::Text => println!(
                    "Rewrapped {} app and {} cluster data key(s) from {} to {} ({} already under the new KEK). Restart loco-api and the resurrector with the new KEK.",
                    report.apps_rewrapped,
                    report.clusters_rewrapped,
                    old.id(),
                    new.id(),
                    report.already_current
                ),
            }
            pool.close().await;
            Ok(())
        }
        KeysCommand::Status(a) => {
            let pool = loco_db::connect(&a.db.database_url).await?;
            let usage = loco_db::keys::kek_usage(&pool).await?;
            match a.output {
                Output::Json => {
                    let rows: Vec<_> = usage
                        .iter()
                        .map(|(id, n)| serde_json::json!({"kek_id": id, "data_keys": n}))
                        .collect();
                    println!("{}", serde_json::Value::Array(rows));
                }
                Output::Text => {
                    for (id, n) in &usage {
                        println!("{id}\t{n} data key(s)");
                    }
                }
            }
            pool.close().await;
            Ok(())
        }
    }
}
