//! loco-resurrect: probe a cluster, diagnose what broke, and rebuild it from the loco
//! database (render + apply). Runs outside the cluster it protects.

use clap::{Parser, Subcommand};
use loco_telemetry::LogArgs;
use loco_telemetry::NotBuiltYet;

/// loco-resurrect checks a cluster that loco manages and rebuilds what is missing from
/// the loco database. In watch mode its only automatic action is to re-apply; recreating
/// a cluster needs an explicit flag and never destroys a reachable cluster.
#[derive(Debug, Parser)]
#[command(name = "loco-resurrect", version)]
pub struct Args {
    /// The name of the cluster in the loco database to check or rebuild.
    #[arg(long, env = "LOCO_CLUSTER")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probes the cluster once and prints what is healthy and what is not, changing nothing.
    Diagnose,
    /// Keeps probing and re-applies the database's state when the cluster drifts.
    Watch,
}

pub async fn run(args: Args) -> Result<(), NotBuiltYet> {
    let command = match args.command {
        Some(Command::Diagnose) => "loco-resurrect diagnose",
        Some(Command::Watch) => "loco-resurrect watch",
        None => "loco-resurrect",
    };
    Err(NotBuiltYet {
        command,
        planned: "the resurrector issue",
    })
}
