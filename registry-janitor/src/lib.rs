//! loco-registry-janitor: deletes old images by loco's own push records and never one
//! that a deployment (active, asleep, rollback target or pending) may still use.

use clap::Parser;
use loco_telemetry::LogArgs;
use loco_telemetry::NotBuiltYet;

/// loco-registry-janitor deletes images from loco's registry that no deployment can use
/// any more, oldest first by loco's own push records.
#[derive(Debug, Parser)]
#[command(name = "loco-registry-janitor", version)]
pub struct Args {
    /// Runs one pass and exits, as a Kubernetes CronJob does.
    #[arg(long)]
    pub once: bool,
    /// Prints what would be deleted and deletes nothing.
    #[arg(long, env = "LOCO_JANITOR_DRY_RUN")]
    pub dry_run: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

pub async fn run(_args: Args) -> Result<(), NotBuiltYet> {
    Err(NotBuiltYet {
        command: "loco-registry-janitor",
        planned: "the registry janitor issue",
    })
}
