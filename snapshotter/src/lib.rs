//! loco-snapshot: saves what the database cannot rebuild (gateway TLS Secrets, objects
//! loco did not render, the database dump) to S3, and restores it.

use clap::{Parser, Subcommand};
use loco_telemetry::LogArgs;
use loco_telemetry::NotBuiltYet;

/// loco-snapshot saves the parts of a cluster that the loco database cannot rebuild to
/// S3, and restores them after a rebuild.
#[derive(Debug, Parser)]
#[command(name = "loco-snapshot", version)]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Takes a snapshot now.
    Take {
        /// Takes one snapshot and exits, as a Kubernetes CronJob does.
        #[arg(long)]
        once: bool,
    },
    /// Restores a snapshot, skipping objects the database renders unless asked.
    Restore,
}

pub async fn run(args: Args) -> Result<(), NotBuiltYet> {
    let command = match args.command {
        Command::Take { .. } => "loco-snapshot take",
        Command::Restore => "loco-snapshot restore",
    };
    Err(NotBuiltYet {
        command,
        planned: "the snapshotter issue",
    })
}
