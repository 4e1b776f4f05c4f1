//! loco-sleeper: `scan` puts idle workspaces to sleep (a sleep revision, then render +
//! apply); `serve` is the reviver behind sleeping routes and `/revive-app`.

use clap::{Parser, Subcommand};
use loco_telemetry::LogArgs;
use loco_telemetry::NotBuiltYet;

/// loco-sleeper puts workspaces whose routes saw no traffic for their idle window to
/// sleep, and wakes them when someone opens one of their URLs.
#[derive(Debug, Parser)]
#[command(name = "loco-sleeper", version)]
pub struct Args {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Finds idle workspaces and puts them to sleep; missing metrics count as unknown, never idle.
    Scan {
        /// Runs one scan and exits, as a Kubernetes CronJob does.
        #[arg(long)]
        once: bool,
    },
    /// Serves the waiting page and /revive-app for sleeping apps.
    Serve,
}

pub async fn run(args: Args) -> Result<(), NotBuiltYet> {
    let command = match args.command {
        Command::Scan { .. } => "loco-sleeper scan",
        Command::Serve => "loco-sleeper serve",
    };
    Err(NotBuiltYet {
        command,
        planned: "the sleeper issue",
    })
}
