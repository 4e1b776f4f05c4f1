//! `loco-api gc`: the database's garbage collection, as a one-shot (`--once`, what the
//! chart's CronJob runs) or a loop every `--interval-minutes` for running off-cluster.
//! What is kept and why is documented in [`loco_db::gc`].

use std::time::Duration;

use chrono::Utc;

use crate::flags::DbArgs;
use loco_db::gc;

pub use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Collects once and exits. Without it, collects every --interval-minutes until SIGTERM.
    #[arg(long, env = "LOCO_GC_ONCE")]
    pub once: bool,
    /// Prints what would be dropped and deletes nothing.
    #[arg(long, env = "LOCO_GC_DRY_RUN")]
    pub dry_run: bool,
    /// Audit events older than this many days are dropped.
    #[arg(long, env = "LOCO_GC_EVENT_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub event_retention_days: u32,
    /// Deployments and revisions kept per app, newest first; older ones go unless still
    /// in use (active, unfinished, pointed at by a kept deployment, or named by an image record).
    #[arg(long, env = "LOCO_GC_KEEP_DEPLOYMENTS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub keep_deployments: u32,
    /// API tokens and sessions are dropped this many days after they expired or were
    /// revoked; until then their holder is told "expired" rather than "unknown token".
    #[arg(long, env = "LOCO_GC_CREDENTIAL_GRACE_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub credential_grace_days: u32,
    /// Rows deleted per transaction, so no transaction holds locks for long.
    #[arg(long, env = "LOCO_GC_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Seconds to wait for an app's lock (held during its deploys) before leaving the app
    /// to the next run.
    #[arg(long, env = "LOCO_GC_LOCK_TIMEOUT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=600))]
    pub lock_timeout_seconds: u32,
    /// Minutes between collections without --once.
    #[arg(long, env = "LOCO_GC_INTERVAL_MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub interval_minutes: u32,
    /// How the counts are printed: text for people, json for scripts.
    #[arg(long, env = "LOCO_GC_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl GcArgs {
    /// The policy of a run starting now.
    pub fn policy(&self) -> gc::Policy {
        let now = Utc::now();
        gc::Policy {
            events_before: now - chrono::Duration::days(i64::from(self.event_retention_days)),
            credentials_before: now - chrono::Duration::days(i64::from(self.credential_grace_days)),
            keep_per_app: self.keep_deployments as usize,
            batch: self.batch as usize,
            lock_timeout: Duration::from_secs(u64::from(self.lock_timeout_seconds)),
        }
    }
}

/// One line (or JSON object) of counts.
pub fn describe(r: &gc::Report, dry_run: bool, output: Output) -> String {
    if output == Output::Json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        v["dry_run"] = serde_json::Value::Bool(dry_run);
        return v.to_string();
    }
    let verb = if dry_run { "would drop" } else { "dropped" };
    let mut line = format!(
        "gc {verb}: {} events, {} API tokens, {} sessions, {} deployments, {} revisions",
        r.events, r.api_tokens, r.sessions, r.deployments, r.revisions
    );
    if r.apps_skipped_locked > 0 {
        line.push_str(&format!(
            "; {} app(s) skipped because a deploy held the lock (collected next run)",
            r.apps_skipped_locked
        ));
    }
    line
}

pub async fn run(a: GcArgs) -> anyhow::Result<()> {
    let pool = loco_db::connect(&a.db.database_url).await?;
    if a.once {
        return collect(&pool, &a).await;
    }
    let interval = Duration::from_secs(u64::from(a.interval_minutes) * 60);
    tracing::info!(
        interval_minutes = a.interval_minutes,
        "gc: collecting every interval until SIGTERM"
    );
    let shutdown = loco_telemetry::ops::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // A failed run is logged and retried next interval: a daemon that exits on a
        // database hiccup would need a supervisor to be useful.
        if let Err(e) = collect(&pool, &a).await {
            tracing::error!(error = %format!("{e:#}"), "gc run failed; retrying next interval");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    pool.close().await;
    Ok(())
}

async fn collect(pool: &sqlx::PgPool, a: &GcArgs) -> anyhow::Result<()> {
    let report = gc::run(pool, &a.policy(), a.dry_run).await?;
    tracing::info!(
        dry_run = a.dry_run,
        events = report.events,
        api_tokens = report.api_tokens,
        sessions = report.sessions,
        deployments = report.deployments,
        revisions = report.revisions,
        apps_skipped_locked = report.apps_skipped_locked,
        "gc finished"
    );
    println!("{}", describe(&report, a.dry_run, a.output));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gc: GcArgs,
    }

    #[test]
    fn defaults_and_refusals() {
        let c = Cli::try_parse_from(["gc", "--database-url", "postgres://x/y", "--once"]).unwrap();
        assert_eq!(c.gc.event_retention_days, 90);
        assert_eq!(c.gc.keep_deployments, 20);
        assert!(c.gc.once && !c.gc.dry_run);
        let p = c.gc.policy();
        assert!(p.events_before < Utc::now() - chrono::Duration::days(89));
        for bad in [["--keep-deployments", "0"], ["--event-retention-days", "0"]] {
            let mut argv = vec!["gc", "--database-url", "postgres://x/y"];
            argv.extend(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_are_printed_for_people_and_scripts() {
        let r = gc::Report {
            events: 3,
            revisions: 2,
            apps_skipped_locked: 1,
            ..Default::default()
        };
        let text = describe(&r, true, Output::Text);
        assert!(text.starts_with("gc would drop: 3 events"), "{text}");
        assert!(text.contains("1 app(s) skipped"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&describe(&r, false, Output::Json)).unwrap();
        assert_eq!(json["revisions"], 2);
        assert_eq!(json["dry_run"], false);
    }
}
