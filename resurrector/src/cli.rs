//! The command line: what to do with which cluster, and the bundle (database URL, KEK),
//! every flag also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use loco_telemetry::LogArgs;

/// loco-resurrect checks a cluster that loco manages and rebuilds what is missing or
/// drifted from the loco database. It runs outside the cluster and needs only the
/// bundle: the database URL and the key-encryption key (LOCO_KEK_FILE or LOCO_KEK); the
/// cluster's credentials come from the database, decrypted in memory. Without a mode it
/// diagnoses and changes nothing.
#[derive(Debug, Parser)]
#[command(name = "loco-resurrect", version)]
pub struct Args {
    /// The name of the cluster in the loco database (`loco-api clusters list`).
    #[arg(long, env = "LOCO_CLUSTER", global = true)]
    pub cluster: Option<String>,
    /// The loco database.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true,
        default_value = ""
    )]
    pub database_url: String,
    /// Probe, then repair what the probe found: platform first, then apps workspace by
    /// workspace, then wait until they are Ready.
    #[arg(long, conflicts_with_all = ["watch", "dry_run"])]
    pub once: bool,
    /// Keep probing; after --failures-before-action failed probes in a row, re-apply.
    #[arg(long, conflicts_with = "dry_run")]
    pub watch: bool,
    /// Probe and print what --once would do; nothing is written anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// How the report is printed.
    #[arg(long, env = "LOCO_OUTPUT", value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    /// Also delete loco-labelled app namespaces that no app in the database owns
    /// (otherwise they are only reported).
    #[arg(long, env = "LOCO_PRUNE_ORPHANS", global = true)]
    pub prune_orphans: bool,
    /// Act even when the database looks too empty for the cluster (the guard prints
    /// what it would otherwise refuse).
    #[arg(long)]
    pub force: bool,
    /// Apps applied per wave (whole workspaces, so siblings come together).
    #[arg(long, env = "LOCO_RESURRECT_WAVE", default_value_t = 200)]
    pub wave_size: usize,
    /// Objects in flight at once.
    #[arg(
        long,
        env = "LOCO_RESURRECT_CONCURRENCY",
        default_value_t = 32,
        global = true
    )]
    pub concurrency: usize,
    /// How long the rebuilt apps may take to be Ready.
    #[arg(long, env = "LOCO_RESURRECT_READY_SECONDS", default_value_t = 300)]
    pub ready_deadline_seconds: u64,
    /// Install the platform without the chart (loco-api runs outside the cluster): the
    /// CRDs, the Gateway and loco-api's identity only, as `loco-api platform apply --no-chart`.
    #[arg(long, env = "LOCO_PLATFORM_NO_CHART", global = true)]
    pub no_chart: bool,
    /// The chart directory (loco's charts/loco), for the platform's Helm release.
    #[arg(
        long = "chart",
        env = "LOCO_CHART_DIR",
        default_value = "charts/loco",
        global = true
    )]
    pub chart_dir: PathBuf,
    /// The helm 3 binary.
    #[arg(long, env = "LOCO_HELM", default_value = "helm", global = true)]
    pub helm: PathBuf,
    /// The gateway's address (http://host:port): awake apps are asked through it whether
    /// they answer. Unset: not checked.
    #[arg(long, env = "LOCO_GATEWAY_URL", global = true)]
    pub gateway_url: Option<String>,
    /// Lifetime of the token loco-api gets when the rebuild issues it a new one (its old
    /// one died with the cluster's ServiceAccount).
    #[arg(long, env = "LOCO_API_TOKEN_HOURS", default_value_t = 168)]
    pub api_token_hours: i64,
    /// Watch: time between probes: `30s`, `2m`, `1h`, or plain seconds (with 3 failures
    /// in a row, a dead API server is acted on 30-45 s after it died at the default).
    #[arg(long, env = "LOCO_RESURRECT_INTERVAL", default_value = "15s", value_parser = parse_seconds)]
    pub interval: u64,
    /// Watch: failed probes in a row before the re-apply.
    #[arg(long, env = "LOCO_RESURRECT_FAILURES", default_value_t = 3)]
    pub failures_before_action: u32,
    /// Watch: where /metrics and /healthz listen.
    #[arg(long, env = "LOCO_RESURRECT_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Watch: a URL that gets a JSON POST when an incident opens and when it closes.
    #[arg(long, env = "LOCO_RESURRECT_WEBHOOK")]
    pub webhook_url: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probes the cluster once and prints what is healthy and what is not, changing
    /// nothing (the default).
    Diagnose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Diagnose,
    DryRun,
    Once,
    Watch,
}

/// `30s`, `2m`, `1h` or `45` (seconds) as seconds, at least 1.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| {
        format!("'{text}' is not a duration: write 30s, 2m, 1h or a number of seconds")
    })?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}'; use s, m or h (30s, 2m, 1h)"
            ));
        }
    };
    match n.checked_mul(factor) {
        Some(0) => Err("the interval must be at least 1s".to_owned()),
        Some(s) => Ok(s),
        None => Err(format!("'{text}' is too long")),
    }
}

impl Args {
    pub fn mode(&self) -> Mode {
        if self.once {
            Mode::Once
        } else if self.watch {
            Mode::Watch
        } else if self.dry_run {
            Mode::DryRun
        } else {
            Mode::Diagnose
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_take_units_or_plain_seconds() {
        assert_eq!(parse_seconds("30s"), Ok(30));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("45"), Ok(45));
        assert!(parse_seconds("0s").unwrap_err().contains("at least 1s"));
        assert!(parse_seconds("5d").unwrap_err().contains("unknown unit"));
        assert!(
            parse_seconds("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        let a = Args::try_parse_from(["loco-resurrect", "--watch", "--interval", "1m"]).unwrap();
        assert_eq!(a.interval, 60);
        let a = Args::try_parse_from(["loco-resurrect", "--watch"]).unwrap();
        assert_eq!(a.interval, 15, "the default");
    }
}
